#!/usr/bin/env bash
# Creates tests/.venv with the official Extend Python SDK (and kubernetes-validate, for the
# deploy manifests) and tests/sdk/ts/node_modules with
# the official TypeScript SDK, both pinned. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=tests/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# kubernetes-validate (the Kubernetes API schemas, offline) checks deploy/*.yaml.
if ! "$VENV/bin/python" -c 'import extend_ai, kubernetes_validate' 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("extend-ai", m.version("extend-ai"))'

# The official Extend TypeScript SDK, pinned by tests/sdk/ts/package-lock.json.
if [ ! -d tests/sdk/ts/node_modules/extend-ai ]; then
  (cd tests/sdk/ts && npm ci --no-audit --no-fund --silent)
fi
node -e 'console.log("extend-ai (TypeScript)", require("./tests/sdk/ts/node_modules/extend-ai/package.json").version)'
