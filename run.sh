#!/usr/bin/env bash
# Builds the web-client (when npm is available) and runs the server on http://127.0.0.1:5000
# with an embedded SQLite database under ./data. Extra arguments go to `ticketwire`.
# The first run compiles the server in release mode: expect several minutes (about ten on two
# cores); later runs rebuild only what changed and start in seconds. With no admin yet, the
# server prints a one-time setup link: open it to create the first admin in the browser.
set -euo pipefail
cd "$(dirname "$0")"
if command -v npm >/dev/null 2>&1 && [ -f web-client/package.json ]; then
  (
    cd web-client
    # Reinstall node_modules only when the lock file changed since the last install.
    lock=$(sha256sum package-lock.json | cut -d' ' -f1)
    if [ ! -d node_modules ] || [ "$(cat node_modules/.installed-lock 2>/dev/null)" != "$lock" ]; then
      npm ci --no-audit --no-fund --loglevel=error
      echo "$lock" > node_modules/.installed-lock
    fi
    npm run build --silent
  )
else
  echo "npm not found: serving the API only (the web-client needs Node.js to build)" >&2
fi
if [ ! -x target/release/ticketwire ]; then
  echo "first build of the server (release): this takes several minutes; later runs are quick" >&2
fi
exec cargo run --release --locked -p ticketwire -- "$@"
