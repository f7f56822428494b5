#!/usr/bin/env bash
# Submission throughput of the harness against a zero-work endpoint, next to oha posting a
# body of the same size at the same concurrency, in the same run. Two harness lines: the
# skeleton fast path (templates without random draws) and the general path a real
# scenario takes ({{uuid}}, {{choice}} and a CSV feeder of 10,000 rows), each with its
# ratio to its reference. Loopback only; each run is bounded by DURATION.
#
#   bash scripts/bench_submit.sh [CONCURRENCY=8] [DURATION=10]
#
# Needs oha on PATH (`cargo install oha --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-8}
D=${2:-10}
PORT=18181
command -v oha >/dev/null || { echo "oha not found: cargo install oha --locked"; exit 2; }
cargo build --release --quiet --bin batchproof --example zero_endpoint
# BATCHPROOF_BIN compares another build (e.g. the previous commit) on the same run.
BIN=${BATCHPROOF_BIN:-./target/release/batchproof}
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
./target/release/examples/zero_endpoint 127.0.0.1:$PORT 2>/dev/null &
SERVER=$!
sleep 0.5

cat > "$WORK/bench.yaml" <<YAML
name: bench-submit
api_version: 2026-02-09
load:
  model: closed
  phases: [{hold: ${D}s, concurrency: $C}]
  inputs_per_batch: 1000
  max_in_flight: $C
inputs:
  file: {url: "https://files.example.test/bench/b{{batch}}/{{index}}.pdf", name: "doc-{{seq}}.pdf"}
  metadata: {customer: "cust-{{batch}}", document: "{{seq}}", position: "{{index}}"}
results: {via: none}
YAML
EXTEND_API_KEY=sk_bench "$BIN" run "$WORK/bench.yaml" --target http://127.0.0.1:$PORT --yes \
  --out "$WORK/reports" --progress none > "$WORK/run.txt"
REPORT=$(ls "$WORK"/reports/*/report.json)

# The general path: a feeder of real-looking documents and random draws per input.
python3 - "$WORK/docs.csv" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["url", "name", "metadata.customer", "metadata.region"])
    for i in range(10000):
        w.writerow([f"https://files.example.test/archive/{i // 100}/invoice-{i}.pdf", f"invoice-{i}.pdf",
                    f"cust-{i % 97}", ["eu", "us", "apac"][i % 3]])
PY
cat > "$WORK/general.yaml" <<YAML
name: bench-submit-general
api_version: 2026-02-09
load:
  model: closed
  phases: [{hold: ${D}s, concurrency: $C}]
  inputs_per_batch: 1000
  max_in_flight: $C
inputs:
  file: {url: "https://unused.example.test/{{seq}}.pdf"}
  feeder: {path: docs.csv}
  metadata: {request: "{{uuid}}", lane: "{{choice:fast|bulk|review}}", document: "{{seq}}"}
results: {via: none}
YAML
EXTEND_API_KEY=sk_bench "$BIN" run "$WORK/general.yaml" --target http://127.0.0.1:$PORT --yes \
  --out "$WORK/general-reports" --progress none > "$WORK/general.txt"
GENERAL=$(ls "$WORK"/general-reports/*/report.json)
# A body of the same shape and size as the harness sends, for oha.
python3 - "$WORK/body.json" <<'PY'
import json, sys
inputs = [{"file": {"url": f"https://files.example.test/bench/b7/{i}.pdf", "name": f"doc-{7000+i}.pdf"},
           "metadata": {"customer": "cust-7", "document": 7000 + i, "position": i, "bp_input": f"7:{i}"}} for i in range(1000)]
open(sys.argv[1], "w").write(json.dumps({"workflow": {"id": "workflow_batchproof_demo"}, "inputs": inputs}))
PY
oha -c "$C" -z "${D}s" -m POST -T application/json -H "x-extend-api-version: 2026-02-09" \
  -H "authorization: Bearer sk_bench" -D "$WORK/body.json" --no-tui --output-format json \
  "http://127.0.0.1:$PORT/workflow_runs/batch" > "$WORK/oha.json"
python3 - "$REPORT" "$WORK/oha.json" "$WORK/body.json" "$C" "$D" "$GENERAL" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2])); g = json.load(open(sys.argv[6]))
size = os.path.getsize(sys.argv[3])
ours = r["throughput"]["batches_per_s"]
theirs = o["summary"]["requestsPerSec"]
ok = o["summary"].get("successRate", 1.0)
print(f"body size      ~{size/1024:.0f} KiB (1,000 inputs), concurrency {sys.argv[4]}, {sys.argv[5]} s each")
print(f"batchproof     {ours:8.1f} batches/s  (accepted {r['batches']['accepted']}, submit p50 {r['operations']['submit']['service']['p50_ms']:.2f} ms, p99 {r['operations']['submit']['service']['p99_ms']:.2f} ms)")
print(f"oha            {theirs:8.1f} requests/s (success rate {ok:.3f}, p50 {o['latencyPercentiles']['p50']*1e3:.2f} ms, p99 {o['latencyPercentiles']['p99']*1e3:.2f} ms)")
print(f"ratio          {ours/theirs:8.2f}  (batchproof / oha; target ≥ 0.8)")
general = g["throughput"]["batches_per_s"]
print(f"general path   {general:8.1f} batches/s  (accepted {g['batches']['accepted']}; uuid, choice and a 10,000-row CSV feeder)")
print(f"general/fast   {general/ours:8.2f}  (target ≥ 0.25, i.e. within 4x of the fast path)")
PY
