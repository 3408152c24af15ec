"""Issue #4: kill -9 in the middle of a burst and restart: every notification is delivered; a
repeat is only ever the same delivery again (same webhook-id)."""
import threading
import time
import uuid
from collections import defaultdict

from standardwebhooks.webhooks import Webhook

import tw


def test_kill9_mid_burst_loses_nothing(srv, admin, receiver):
    c = tw.make_user(srv, admin, "customer")
    t = c.api.post("/api/tickets", {"subject": "crash me"}, 201)
    path = f"/{uuid.uuid4().hex}"
    ep = c.api.put("/api/users/me/webhook", {"webhook_url": receiver.url(path)})
    receiver.plan[path] = (204, 0.05)  # a little slow, so deliveries are in flight at the kill
    stop = threading.Event()
    ok = [0]

    def writer():
        prios = ["low", "medium", "high", "urgent"]
        i = 0
        while not stop.is_set() and i < 400:
            i += 1
            try:
                # a unique subject: every acknowledged write is a real change (no-op PATCHes record nothing)
                admin.api.patch(f"/api/tickets/{t['id']}", {"priority": prios[i % 4], "subject": f"rev {uuid.uuid4().hex}"})
                ok[0] += 1
            except Exception:
                time.sleep(0.05)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for th in threads:
        th.start()
    while ok[0] < 60:
        time.sleep(0.01)
    before_kill = len(receiver.at(path))
    srv.restart()  # SIGKILL, then start again on the same port and data dir
    time.sleep(1.0)
    stop.set()
    for th in threads:
        th.join()
    def all_notes():
        page = c.api.get("/api/notifications?limit=200")
        found = {n["id"] for n in page["items"]}
        while page.get("next_cursor"):
            page = c.api.get(f"/api/notifications?limit=200&cursor={page['next_cursor']}")
            found |= {n["id"] for n in page["items"]}
        return found

    # Notifications are derived from the event log asynchronously: wait for the dispatcher.
    deadline = time.monotonic() + 15
    ids = all_notes()
    while len(ids) < ok[0] and time.monotonic() < deadline:
        time.sleep(0.2)
        ids = all_notes()
    assert len(ids) == ok[0], f"{ok[0]} acknowledged writes but {len(ids)} notifications"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        delivered = {tw.body_json(r)["notification"]["id"] for r in receiver.at(path)}
        if ids <= delivered:
            break
        time.sleep(0.2)
    reqs = receiver.at(path)
    by_note = defaultdict(set)
    for r in reqs:
        payload = Webhook(ep["secret"]).verify(r["body"], r["headers"])
        by_note[payload["notification"]["id"]].add(r["headers"]["webhook-id"])
    missing = ids - set(by_note)
    print(f"\ncrash: {ok[0]} writes acknowledged, {len(ids)} notifications, {len(reqs)} requests "
          f"({len(reqs) - len(by_note)} repeats), {before_kill} received before the kill")
    assert before_kill > 0 and len(reqs) > before_kill, "the kill did not land mid-burst"
    assert not missing, f"{len(missing)} notifications never delivered"
    assert set(by_note) == ids, "a delivery for an unknown notification"
    assert all(len(v) == 1 for v in by_note.values()), "a notification delivered under two webhook-ids"
