#!/usr/bin/env bash
# The harness's own cost at the scale of a bulk job: a run of BATCHES batches of 1,000
# inputs with results by webhook, against `batchproof mock` in its own process (so the
# figures are the harness's alone). Prints runs, wall time, harness CPU-seconds per 100k
# runs and bytes of harness memory per run, next to the same figures for a reference
# binary measured in the same session (BASE=<git rev>, built into target/bench-base), or
# the fixed reference below when BASE is not set. Loopback only.
#
#   bash scripts/bench_scale.sh [BATCHES=500]
#   BASE=960967a bash scripts/bench_scale.sh 500
#
# Bytes per run = (peak RSS of this run − peak RSS of a 1-batch run) / (runs − 1,000): the
# fixed cost of the process (runtime, receiver, histograms) is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-500}
# Measured on 960967a (before the compact accounting) with this script, 500 batches,
# 2026-11-30, this kind of machine: the figures the accounting issue started from.
REF_LABEL="fixed reference (960967a, 500 batches)"
REF_LINE="500000 runs · wall 27.2 s · 3.63 CPU-s per 100k runs · 441 B/run (peak RSS 248 MiB)"

cargo build --release --quiet --locked --bin batchproof
WORK=$(mktemp -d)
MOCK_PID=""
# measure runs in a subshell: stop any mock it left behind by name as well.
trap 'pkill -f "batchproof mock --bind 127.0.0.1:.* --time-scale 1000" 2>/dev/null; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_mock() {
  [ -n "$MOCK_PID" ] && kill $MOCK_PID 2>/dev/null && wait $MOCK_PID 2>/dev/null || true
  MOCK_PORT=$(free_port)
  ./target/release/batchproof mock --bind 127.0.0.1:$MOCK_PORT --profile mock/default.yaml \
    --time-scale 1000 > /dev/null 2> "$WORK/mock.log" &
  MOCK_PID=$!
  # Wait for the line the mock prints once it serves, not for a guessed time.
  for _ in $(seq 1 100); do grep -q "serving" "$WORK/mock.log" && return; sleep 0.1; done
  echo "the mock did not start:"; cat "$WORK/mock.log"; exit 1
}

# measure BINARY BATCHES → "runs wall_s cpu_s rss_kib"
measure() {
  local bin=$1 n=$2 hook
  hook=$(free_port)
  start_mock
  cat > "$WORK/scale.yaml" <<YAML
name: bench-scale
api_version: 2026-02-09
load:
  phases: [{hold: 1000s, rate: 25}]
  batches: $n
  inputs_per_batch: 1000
  max_in_flight: 32
inputs:
  metadata: {customer: "cust-{{batch}}", position: "{{index}}"}
results:
  via: webhooks
  webhooks: {listen: "127.0.0.1:$hook", public_url: "http://127.0.0.1:$hook/"}
  deadline: 300s
YAML
  rm -rf "$WORK/reports"
  EXTEND_API_KEY=sk_batchproof_local /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" \
    "$bin" run "$WORK/scale.yaml" --target "http://127.0.0.1:$MOCK_PORT" --yes --progress none \
    --out "$WORK/reports" > "$WORK/run.txt" 2> "$WORK/run.err" || true
  local seen
  seen=$(python3 -c 'import json,glob,sys; r=json.load(open(glob.glob(sys.argv[1]+"/reports/*/report.json")[0])); print(r["runs"]["seen"])' "$WORK")
  read -r wall user sys rss < "$WORK/time"
  kill $MOCK_PID 2>/dev/null; wait $MOCK_PID 2>/dev/null || true
  echo "$seen $wall $(python3 -c "print($user+$sys)") $rss"
}

figures() {  # label bin
  local small big
  small=$(measure "$2" 1)
  big=$(measure "$2" "$BATCHES")
  python3 - "$1" $small $big <<'PY'
import sys
label = sys.argv[1]
r1, _, _, rss1 = map(float, sys.argv[2:6])
runs, wall, cpu, rss = map(float, sys.argv[6:10])
per_run = (rss - rss1) * 1024 / max(runs - r1, 1)
print(f"{label:<40} {int(runs)} runs · wall {wall:.1f} s · {cpu / runs * 1e5:.2f} CPU-s per 100k runs · {per_run:.0f} B/run (peak RSS {rss/1024:.0f} MiB)")
PY
}

echo "== harness cost at scale: $BATCHES × 1,000 runs, webhooks, mock in its own process"
figures "this commit ($(git rev-parse --short HEAD))" ./target/release/batchproof
if [ -n "${BASE:-}" ]; then
  git worktree add -f "$WORK/base" "$BASE" >/dev/null 2>&1
  CARGO_TARGET_DIR="$(pwd)/target/bench-base" cargo build --release --quiet --locked \
    --manifest-path "$WORK/base/Cargo.toml" --bin batchproof
  figures "reference ($BASE)" ./target/bench-base/release/batchproof
  git worktree remove --force "$WORK/base"
else
  printf '%-40s %s\n' "$REF_LABEL" "$REF_LINE"
fi
