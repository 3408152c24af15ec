#!/usr/bin/env bash
# Builds the web-client (when npm is available) and runs the server on http://127.0.0.1:5000
# with an embedded SQLite database under ./data. Extra arguments go to `ticketwire`.
set -euo pipefail
cd "$(dirname "$0")"
if command -v npm >/dev/null 2>&1 && [ -f web-client/package.json ]; then
  (cd web-client && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
else
  echo "npm not found: serving the API only (the web-client needs Node.js to build)" >&2
fi
exec cargo run --release --locked -p ticketwire -- "$@"
