"""No identity ever receives, on any channel, anything REST would refuse it.

A seeded, bounded, model-based test. Each sequence starts a fresh server with three customers,
two agents and an admin, each with a python-socketio client (staff in `tickets`, `comments`,
`attachments` and `kb`, the admin also in `users`; customers in `kb` and their tickets' rooms)
and a webhook receiver verified with `standardwebhooks`. Random operations follow, with weights
(`model/ops.py`): tickets opened by customers or for them by staff, public replies, internal
notes and replies in their threads, comments made internal and public again, tickets moved to
another requester and reassigned, roles changed (an agent demoted to customer and back),
accounts deactivated and reactivated, KB articles written, published, unpublished and edited
(edit and unpublish in one PATCH too), hostile `join`/`leave` on any room (`role:customer`,
`role:staff`, another user's room, another customer's ticket, back to back), disconnects resumed
with `last_event_id` (the last one seen, or 0), and reads of `GET /api/events?after=0`.

After every step, once nothing has arrived for a while (`model/world.py`), everything each
identity received since the last check (emits, `notification`s, webhook bodies, event-log
items) is judged against what REST lets that identity read at that moment (`model/oracle.py`).

The check is calibrated at the end of each sequence: items made up from what the admin reads
(another customer's ticket, an internal note, a draft) must be judged leaks for a customer, and
its own ticket and bare redactions must not. Each sequence ends with two sweeps: every identity reads `GET /api/events?after=0`, then every
identity resumes from `last_event_id: 0`, so that the whole history is judged against the final
state as well.

Environment: `TW_MODEL_SEED` (default 1; sequence i uses seed + i), `TW_MODEL_SEQUENCES`
(default 6), `TW_MODEL_STEPS` (default 50), `TW_MODEL_QUIET_MS` (default 300),
`TW_MODEL_PARALLEL` (sequences run at once, each on its own server; default 6), and
`TW_DATABASE_URL` (a PostgreSQL URL naming any database there) to also run on PostgreSQL, each
sequence on a database of its own (with `CI=true` it runs there anyway, on `TEST_DATABASE_URL` or
the local default).
"""
import logging
import os

import pytest

from model.runner import report, run_all

SEED = int(os.environ.get("TW_MODEL_SEED", "1"))
SEQUENCES = int(os.environ.get("TW_MODEL_SEQUENCES", "6"))
STEPS = int(os.environ.get("TW_MODEL_STEPS", "50"))
PARALLEL = int(os.environ.get("TW_MODEL_PARALLEL", "6"))
# The clients' own chatter when the server closes a socket ("packet queue is empty").
logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
logging.getLogger("socketio.client").setLevel(logging.CRITICAL)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_nobody_receives_what_rest_refuses(backend):
    pg_base = None
    if backend == "postgres":
        pg_base = os.environ.get("TW_DATABASE_URL")
        if not pg_base and os.environ.get("CI") == "true":
            # CI runs both, like the other suites (and fails if PostgreSQL is not there).
            pg_base = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
        if not pg_base:
            pytest.skip("TW_DATABASE_URL not set (a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/test)")
    totals = run_all(SEED, SEQUENCES, STEPS, pg_base, PARALLEL)
    print()
    print(totals.summary(backend))
    if totals.rest_errors:
        print(f"{len(totals.rest_errors)} operations REST refused (the model goes on without them):")
        for e in totals.rest_errors[:20]:
            print(f"  {e}")
    if totals.unquiet:
        print(f"{totals.unquiet} steps did not fall quiet within the bound")
    assert totals.steps == SEQUENCES * STEPS
    assert not totals.blind, "the check misjudged made-up items:\n" + "\n".join(totals.blind)
    assert not totals.leaks and not totals.unjudged, report(totals, backend, STEPS)
