#!/usr/bin/env bash
# The project's test command (README.md): unit, integration, SDK and defect tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests only: --all-targets would also execute the benches (harness = false) as tests.
cargo nextest run --locked --lib --bins --tests --no-fail-fast "$@"
