#!/usr/bin/env bash
# End-to-end protocol tests from Node: installs pinned deps, runs every *.test.mjs against a real server.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
if [ -z "${TICKETWIRE_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q -p ticketwire)
  export TICKETWIRE_BIN="$ROOT/target/debug/ticketwire"
fi
npm ci --no-audit --no-fund --loglevel=error
exec timeout --kill-after=10 "${TW_JS_TIMEOUT:-300}" node --test --test-concurrency=1 --test-timeout=240000 ./*.test.mjs
