"""Issue #4: kill -9 in the middle of a burst and restart: every notification is delivered; a
repeat is only ever the same delivery again (same webhook-id)."""
import re
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
    # Subjects of acknowledged writes, and of writes that got no answer (the kill can land after
    # such a write committed and before its response left: it may or may not have happened).
    acked, unanswered = set(), set()

    def writer():
        prios = ["low", "medium", "high", "urgent"]
        i = 0
        while not stop.is_set() and i < 400:
            i += 1
            # a unique subject: every acknowledged write is a real change (no-op PATCHes record nothing)
            subject = f"rev {uuid.uuid4().hex}"
            try:
                admin.api.patch(f"/api/tickets/{t['id']}", {"priority": prios[i % 4], "subject": subject})
                acked.add(subject)
                ok[0] += 1
            except Exception:
                unanswered.add(subject)
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
        found = {n["id"]: n["message"] for n in page["items"]}
        while page.get("next_cursor"):
            page = c.api.get(f"/api/notifications?limit=200&cursor={page['next_cursor']}")
            found |= {n["id"]: n["message"] for n in page["items"]}
        return found

    # Notifications are derived from the event log asynchronously: wait for the dispatcher.
    deadline = time.monotonic() + 15
    notes = all_notes()
    while len(notes) < ok[0] and time.monotonic() < deadline:
        time.sleep(0.2)
        notes = all_notes()
    # Each notification names the write's subject: exactly one per acknowledged write, and any
    # other only for a write that got no answer.
    subjects = [re.search(r"Ticket '(rev [0-9a-f]+)' was updated", m).group(1) for m in notes.values()]
    assert len(subjects) == len(set(subjects)), "a write notified twice"
    assert acked <= set(subjects), f"{len(acked - set(subjects))} acknowledged writes without a notification"
    assert set(subjects) - acked <= unanswered, "a notification for a write nobody made"
    ids = set(notes)
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
    print(f"\ncrash: {ok[0]} writes acknowledged, {len(unanswered)} unanswered, {len(ids)} notifications, {len(reqs)} requests "
          f"({len(reqs) - len(by_note)} repeats), {before_kill} received before the kill")
    assert before_kill > 0 and len(reqs) > before_kill, "the kill did not land mid-burst"
    assert not missing, f"{len(missing)} notifications never delivered"
    assert set(by_note) == ids, "a delivery for an unknown notification"
    assert all(len(v) == 1 for v in by_note.values()), "a notification delivered under two webhook-ids"
