#!/usr/bin/env bash
# Creates tests/.venv with the official Extend Python SDK, pinned. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=tests/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import extend_ai' 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("extend-ai", m.version("extend-ai"))'
