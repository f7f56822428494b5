#!/usr/bin/env bash
# The project's test command (README.md): unit, integration, SDK and defect tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --locked --all-targets --no-fail-fast "$@"
cargo test --locked --doc
