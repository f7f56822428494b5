#!/usr/bin/env bash
# The forecast's calibration over many seeds: each seed forecasts a 3,000-file job on the
# PAYG profile (time scale 400) from a 10-batch sample, runs the whole job, and checks
# time, credits, FAILED / NEEDS_REVIEW shares and end-to-end p95 against the intervals.
# Seeds cycle through three job shapes (closed; open, slower than the target; open ramp
# from a trickle to beyond the target). Prints every check, then the coverage table by
# shape with each figure's mean relative width (shares: width in points of share).
#
#   scripts/calibrate.sh [SEEDS]      # default 30; about 9 s a seed on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-30}"
BATCHPROOF_CALIBRATION_SEEDS="$seeds" cargo nextest run --test forecast \
  forecast_intervals_cover_the_measured_job_over_seeds --no-capture 2>&1 |
  grep -E '^(seed |\||coverage)'
