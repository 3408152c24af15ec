#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis (pinned, in a venv here):
# a fresh server over a fresh SQLite database (or ST_DATABASE_URL), signed in as an admin, every
# check on, a bounded number of examples per operation. Any failure fails the run: a 5xx, a
# response that breaks the schema, a schema-valid request refused, an undocumented status or
# content type. The few checks switched off for single operations are in schemathesis.toml,
# each with the reason.
#   ST_MAX_EXAMPLES (default 15)  ST_SEED (default: fixed, so CI is repeatable)  ST_VENV
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
if [ -z "${TICKETWIRE_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q -p ticketwire)
  TICKETWIRE_BIN="$ROOT/target/debug/ticketwire"
fi
VENV="${ST_VENV:-$HERE/.venv}"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "4.32.5"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export TICKETWIRE_DATA_DIR="$WORK/data"
export TICKETWIRE_JWT_SECRET="schemathesis-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TICKETWIRE_LISTEN=127.0.0.1:0
export TICKETWIRE_LOGIN_PER_MINUTE=100000 TICKETWIRE_LOGIN_PER_MINUTE_PER_IP=100000 TICKETWIRE_WEBHOOK_MANUAL_SENDS_PER_MINUTE=100000 \
  TICKETWIRE_REGISTER_PER_HOUR_PER_IP=100000
export TICKETWIRE_WEB_DIR="$WORK/no-web"
export RUST_LOG="${RUST_LOG:-warn}"
if [ -n "${ST_DATABASE_URL:-}" ]; then export DATABASE_URL="$ST_DATABASE_URL"; fi
mkdir -p "$TICKETWIRE_DATA_DIR"
"$TICKETWIRE_BIN" create-admin --email admin@example.com --password admin-password --name "Fuzz Admin" >/dev/null
"$TICKETWIRE_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
BASE=""
for _ in $(seq 1 200); do
  BASE=$(grep -o 'listening on http://[0-9.:]*' "$WORK/server.log" | head -1 | sed 's/listening on //' || true)
  [ -n "$BASE" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$BASE" ] || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
TOKEN=$(curl -sf "$BASE/api/auth/login" -H 'content-type: application/json' \
  -d '{"email":"admin@example.com","password":"admin-password"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

LOG="$WORK/schemathesis.log"
set +e
# The token is passed through the environment (see schemathesis.toml), never on the command line.
# Signing out would end that one token for every operation after it, so logout is left out (its
# statuses are proven by tests/tests/authz_matrix.rs and sessions.rs).
(cd "$HERE" && ST_TOKEN="$TOKEN" timeout --kill-after=10 "${ST_TIMEOUT:-300}" "$VENV/bin/schemathesis" --no-color \
  --config-file "$HERE/schemathesis.toml" run "$BASE/api/openapi.json" \
  --exclude-path /api/auth/logout \
  --checks all --workers 1 --max-examples "${ST_MAX_EXAMPLES:-15}" \
  --seed "${ST_SEED:-20261122}" --generation-deterministic "$@") 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
if grep -qE 'panicked|internal error' "$WORK/server.log"; then
  echo "the server logged a panic or an internal error:" >&2
  grep -E 'panicked|internal error' "$WORK/server.log" | head -20 >&2
  status=1
fi
generated=$(grep -oE '[0-9]+ generated' "$LOG" | tail -1 || true)
echo "schemathesis: ${generated:-? generated} test cases, exit status $status"
exit "$status"
