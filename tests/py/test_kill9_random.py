"""Issue #8: kill -9 at random points during 2,000 mixed writes; after the restarts every
committed change has exactly one event, every due notification exists exactly once."""
import random
import threading
import time
from collections import Counter

import tw

TOTAL = 2000


def test_kill9_at_random_points_during_mixed_writes(srv, admin):
    customer = tw.make_user(srv, admin, "customer")
    tickets = [customer.api.post("/api/tickets", {"subject": f"seed {i}"}, 201) for i in range(5)]
    acked = []  # (kind, id, version) of every acknowledged change
    lock = threading.Lock()
    attempts = [0]
    rng = random.Random(7)

    def writer(n):
        local = random.Random(n)
        while True:
            with lock:
                if attempts[0] >= TOTAL:
                    return
                attempts[0] += 1
                i = attempts[0]
            t = local.choice(tickets)
            try:
                op = i % 3
                if op == 0:
                    r = customer.api.call("POST", "/api/tickets", {"subject": f"burst {i}"})
                    kind = "ticket"
                elif op == 1:
                    r = customer.api.call("POST", f"/api/tickets/{t['id']}/comments", {"content": f"comment {i}"})
                    kind = "comment"
                else:
                    r = admin.api.call("PATCH", f"/api/tickets/{t['id']}", {"subject": f"rev {i}"})
                    kind = "ticket"
                if r.status_code in (200, 201):
                    body = r.json()
                    with lock:
                        acked.append((kind, body["id"], body["version"]))
            except Exception:
                time.sleep(0.05)  # the server is down: this write is not acknowledged

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    kills = 0
    while any(th.is_alive() for th in threads) and kills < 3:
        time.sleep(rng.uniform(0.5, 2.0))
        if any(th.is_alive() for th in threads):
            srv.restart()  # SIGKILL, then start again on the same port and data dir
            kills += 1
    for th in threads:
        th.join()

    # Every committed change is in the log exactly once.
    events = []
    after = 0
    deadline = time.monotonic() + 30
    while True:
        page = admin.api.get(f"/api/events?after={after}&limit=500")
        if not page:
            break
        events.extend(page)
        after = page[-1]["event_id"]
    seen = Counter((e["kind"], e["entity_id"], e["data"].get("version")) for e in events if e["kind"] in ("ticket", "comment"))
    dupes = [k for k, n in seen.items() if n > 1]
    assert not dupes, f"changes recorded twice: {dupes[:5]}"
    missing = [a for a in acked if (a[0], a[1], a[2]) not in seen]
    assert not missing, f"{len(missing)} acknowledged changes have no event, e.g. {missing[:3]}"

    # Every new ticket owes the admin one new_ticket notification, once: wait for the dispatcher.
    created = {e["entity_id"] for e in events if e["kind"] == "ticket" and e["action"] == "created"}
    while True:
        notes = []
        cursor = ""
        while True:
            page = admin.api.get(f"/api/notifications?limit=200&cursor={cursor}")
            notes.extend(page["items"])
            if not page.get("next_cursor"):
                break
            cursor = page["next_cursor"]
        per_ticket = Counter(n["related_id"] for n in notes if n["type"] == "new_ticket")
        if set(per_ticket) >= created or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert set(per_ticket) >= created, f"{len(created - set(per_ticket))} new tickets without a notification"
    assert all(n == 1 for n in per_ticket.values()), "a notification was derived twice"
    print(f"\nkill -9 x{kills}: {attempts[0]} writes attempted, {len(acked)} acknowledged, {len(events)} events, "
          f"{len(created)} tickets created, each notified once")
    assert kills >= 2, "the kills landed during the burst"
