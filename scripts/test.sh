#!/usr/bin/env bash
# The project's test command (README.md): unit, integration, SDK and defect tests.
#
# It sets up what the tests need and can set up itself (the official Extend SDK's Python
# venv). A test whose real dependency is missing here (Chromium, Prometheus, or PyPI for
# the SDK) is left out and counted as skipped in nextest's summary, never as passed;
# .ci/run installs them all, so CI runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
filters=()
if ! bash tests/sdk/setup.sh; then
  echo "SKIPPED: the official Extend SDK tests, mock/README's SDK quickstarts and the manifests' schema check (tests/.venv or tests/sdk/ts/node_modules could not be created: are PyPI and npm reachable?)"
  filters+=("binary(sdk_compat)" "binary(quickstarts)" "test(manifests_pass_the_kubernetes_api_schemas)" "test(a_well_behaved_sdk_client_passes_every_client_rule)")
fi
if ! command -v "${BATCHPROOF_CHROMIUM:-chromium}" >/dev/null 2>&1 \
  && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  echo "SKIPPED: the browser test of the HTML report (no chromium; apt-get install chromium)"
  filters+=("binary(browser)")
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: the non-root pod test (it starts the run as another user: needs root, as CI has)"
  filters+=("test(a_non_root_user_on_a_folder_it_cannot_write_is_refused_before_sending)")
fi
if ! command -v "${BATCHPROOF_PROMETHEUS:-prometheus}" >/dev/null 2>&1; then
  echo "SKIPPED: the live-metrics test against a real Prometheus (no prometheus; apt-get install prometheus)"
  filters+=("test(prometheus_scrapes_two_shards_through_the_shipped_job_and_the_mock)")
fi
expr="all()"
if [ ${#filters[@]} -gt 0 ]; then
  expr="not ($(IFS='|'; echo "${filters[*]}" | sed 's/|/ | /g'))"
  [ "${CI:-}" = "true" ] && { echo "CI=true: every test must run; missing: ${filters[*]}"; exit 1; }
fi
# Tests only: --all-targets would also execute the benches (harness = false) as tests.
cargo nextest run --locked --lib --bins --tests --no-fail-fast -E "$expr" "$@"
