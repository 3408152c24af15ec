#!/usr/bin/env bash
# End-to-end webhook/Socket.IO tests from Python: venv + pinned deps, then pytest against a real server.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
if [ -z "${TICKETWIRE_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q -p ticketwire)
  export TICKETWIRE_BIN="$ROOT/target/debug/ticketwire"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
exec timeout --kill-after=10 "${TW_PY_TIMEOUT:-240}" .venv/bin/python -m pytest -s -q -rfE "$@"
