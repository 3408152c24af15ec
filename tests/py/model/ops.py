"""The operations of a sequence, chosen at random with weights.

Each `plan_*` looks at the model, picks its actors and targets with the sequence's `rng`, and
returns a `Planned` step (what it touches, so their readability can be asked of REST before it
runs, and how to run it), or None when it cannot apply now. Choices depend only on the model, so
a seed replays the same sequence.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from .world import Identity, World, short

PRIORITIES = ["low", "medium", "high", "urgent"]


@dataclass
class Planned:
    desc: str
    run: Callable[[], str]
    touches: list[tuple[str, str]] = field(default_factory=list)


def pick(rng: random.Random, xs):
    xs = list(xs)
    return rng.choice(xs) if xs else None


def answer(r) -> str:
    return f"{r.status_code}" if r.status_code < 300 else f"{r.status_code} {r.text[:120]}"


def expect_ok(w: World, desc: str, r) -> bool:
    if 200 <= r.status_code < 300:
        return True
    w.rest_errors.append(f"step {w.step}: {desc} -> {answer(r)}")
    return False


# ---- tickets --------------------------------------------------------------------------------

def plan_create_ticket(w: World, rng: random.Random):
    tag = f"s{w.step}"
    if rng.random() < 0.5:
        actor = pick(rng, w.customers())
        if actor is None:
            return None
        requester, body = actor, {}
    else:
        actor, requester = pick(rng, w.staff()), pick(rng, w.customers())
        if actor is None or requester is None:
            return None
        body = {"requester_id": requester.id}
        if rng.random() < 0.7:
            assignee = pick(rng, w.staff())
            body["assignee_id"] = assignee.id
    body.update({"subject": f"{tag} subject of {requester.name}", "description": f"{tag} description",
                 "priority": rng.choice(PRIORITIES)})

    def run():
        r = actor.api.call("POST", "/api/tickets", body)
        if not expect_ok(w, "create ticket", r):
            return answer(r)
        t = r.json()
        w.tickets[t["id"]] = {"requester": requester.name, "past_requesters": set(),
                              "assignee": w.by_id[t["assignee_id"]].name if t.get("assignee_id") else None}
        ack = w.join(requester, f"ticket:{t['id']}")  # as a client does for a ticket it now has
        return f"ticket {short(t['id'])}; {requester.name} joins its room: {ack}"

    return Planned(f"{actor.name} opens a ticket for {requester.name}" + (" (assigned)" if "assignee_id" in body else ""), run)


def plan_import(w: World, rng: random.Random):
    """A ticket through the flexible integration route (a staff token, as the import page sends
    it) for a customer's email: its original payload is kept in `metadata.raw`."""
    actor, requester = pick(rng, w.staff()), pick(rng, w.customers())
    if actor is None or requester is None:
        return None
    body = {"subject": f"s{w.step} imported for {requester.name}", "description": f"s{w.step} imported",
            "customer_email": requester.user.email, "id": f"ext-s{w.step}", "platform": "custom",
            "sender_note": f"s{w.step} what the sender sent"}

    def run():
        r = actor.api.call("POST", "/api/integrations/webhook", body)
        if not expect_ok(w, "import", r):
            return answer(r)
        t = r.json()
        if t.get("requester_id") != requester.id:
            w.rest_errors.append(f"step {w.step}: import: requester {t.get('requester_id')} is not {requester.name}")
            return answer(r)
        tid = t["id"]
        w.tickets[tid] = {"requester": requester.name, "past_requesters": set(), "assignee": None}
        return f"ticket {short(tid)}; {requester.name} joins its room: {w.join(requester, f'ticket:{tid}')}"

    return Planned(f"{actor.name} imports a ticket for {requester.name}", run)


def ticket_actors(w: World, tid: str) -> list[Identity]:
    t = w.tickets[tid]
    out = w.staff()
    req = w.people[t["requester"]]
    if req.active and req.role == "customer":
        out.append(req)
    return out


def plan_public_reply(w: World, rng: random.Random):
    tid = pick(rng, sorted(w.tickets))
    if tid is None:
        return None
    # Half of the replies are the requester's own (when it is a customer who can still write).
    actors = ticket_actors(w, tid)
    requester = w.people[w.tickets[tid]["requester"]]
    actor = requester if requester in actors and not requester.staff and rng.random() < 0.5 else pick(rng, actors)
    if actor is None:
        return None
    body = {"content": f"s{w.step} public reply by {actor.name}"}
    # Mostly a reply to someone else's comment, as in a conversation.
    parents = [c for c, v in sorted(w.comments.items()) if v["ticket"] == tid and not v["internal"]]
    others = [c for c in parents if w.comments[c]["author"] != actor.name]
    # Staff mostly answer what a customer wrote.
    customers = [c for c in others if w.people[w.comments[c]["author"]].role == "customer"]
    if actor.staff and customers and rng.random() < 0.7:
        others = customers
    parent = pick(rng, others or parents) if rng.random() < 0.75 else None
    if parent:
        body["parent_id"] = parent
    return Planned(f"{actor.name} replies on ticket {short(tid)}" + (f" to comment {short(parent)} of {w.comments[parent]['author']}" if parent else ""),
                   lambda: _comment(w, actor, tid, body))


def plan_internal_note(w: World, rng: random.Random):
    tid, actor = pick(rng, sorted(w.tickets)), pick(rng, w.staff())
    if tid is None or actor is None:
        return None
    body = {"content": f"s{w.step} internal note by {actor.name}", "internal": True}
    return Planned(f"{actor.name} writes an internal note on ticket {short(tid)}", lambda: _comment(w, actor, tid, body))


def plan_reply_to_internal(w: World, rng: random.Random):
    notes = [c for c, v in sorted(w.comments.items()) if v["internal"]]
    parent, actor = pick(rng, notes), pick(rng, w.staff())
    if parent is None or actor is None:
        return None
    tid = w.comments[parent]["ticket"]
    body = {"content": f"s{w.step} reply in an internal thread by {actor.name}", "parent_id": parent}
    return Planned(f"{actor.name} replies to internal note {short(parent)} on ticket {short(tid)}",
                   lambda: _comment(w, actor, tid, body))


def _comment(w: World, actor: Identity, tid: str, body: dict) -> str:
    r = actor.api.call("POST", f"/api/tickets/{tid}/comments", body)
    if not expect_ok(w, "comment", r):
        return answer(r)
    c = r.json()
    w.comments[c["id"]] = {"ticket": tid, "author": actor.name, "internal": c["internal"], "parent": c.get("parent_id")}
    return f"comment {short(c['id'])} internal={c['internal']}"


def plan_toggle_internal(w: World, rng: random.Random):
    cid, actor = pick(rng, sorted(w.comments)), pick(rng, w.staff())
    if cid is None or actor is None:
        return None
    c = w.comments[cid]
    to = not c["internal"]

    def run():
        r = actor.api.call("PATCH", f"/api/comments/{cid}", {"internal": to})
        if expect_ok(w, "toggle internal", r):
            c["internal"] = r.json()["internal"]
        return answer(r)

    return Planned(f"{actor.name} makes comment {short(cid)} of {c['author']} {'internal' if to else 'public'}", run,
                   [("comment", cid), ("ticket", c["ticket"])])


def plan_move_ticket(w: World, rng: random.Random):
    # Mostly a ticket with a conversation (its requester has written on it).
    talked = sorted({v["ticket"] for v in w.comments.values() if v["author"] == w.tickets[v["ticket"]]["requester"]})
    tid = pick(rng, talked) if talked and rng.random() < 0.7 else pick(rng, sorted(w.tickets))
    actor = pick(rng, w.staff())
    if tid is None or actor is None:
        return None
    t = w.tickets[tid]
    to = pick(rng, [p for p in w.customers() if p.name != t["requester"]])
    if to is None:
        return None

    def run():
        r = actor.api.call("PATCH", f"/api/tickets/{tid}", {"requester_id": to.id})
        if not expect_ok(w, "move ticket", r):
            return answer(r)
        t["past_requesters"].add(t["requester"])
        t["requester"] = to.name
        return f"{answer(r)}; {to.name} joins its room: {w.join(to, f'ticket:{tid}')}"

    return Planned(f"{actor.name} moves ticket {short(tid)} from {t['requester']} to {to.name}", run, [("ticket", tid)])


def plan_assign(w: World, rng: random.Random):
    tid, actor = pick(rng, sorted(w.tickets)), pick(rng, w.staff())
    if tid is None or actor is None:
        return None
    to = pick(rng, w.staff()) if rng.random() < 0.85 else None

    def run():
        r = actor.api.call("PATCH", f"/api/tickets/{tid}", {"assignee_id": to.id if to else None})
        if expect_ok(w, "assign", r):
            w.tickets[tid]["assignee"] = to.name if to else None
        return answer(r)

    return Planned(f"{actor.name} assigns ticket {short(tid)} to {to.name if to else 'nobody'}", run, [("ticket", tid)])


def plan_edit_ticket(w: World, rng: random.Random):
    tid = pick(rng, sorted(w.tickets))
    if tid is None:
        return None
    actor = pick(rng, ticket_actors(w, tid))
    if actor is None:
        return None
    if actor.staff:
        body = {"priority": rng.choice(PRIORITIES), "status": rng.choice(["open", "in_progress", "pending"])}
    else:
        body = {"subject": f"s{w.step} subject edited by {actor.name}", "status": rng.choice(["open", "resolved"])}

    def run():
        r = actor.api.call("PATCH", f"/api/tickets/{tid}", body)
        expect_ok(w, "edit ticket", r)
        return answer(r)

    return Planned(f"{actor.name} edits ticket {short(tid)} {sorted(body)}", run, [("ticket", tid)])


def plan_upload(w: World, rng: random.Random):
    tid = pick(rng, sorted(w.tickets))
    if tid is None:
        return None
    actor = pick(rng, ticket_actors(w, tid))
    if actor is None:
        return None

    def run():
        files = {"file": (f"s{w.step}-note.txt", f"s{w.step} attachment bytes".encode(), "text/plain")}
        r = actor.api.call("POST", f"/api/tickets/{tid}/attachments", None, files=files)
        if expect_ok(w, "upload", r):
            w.attachments[r.json()["id"]] = tid
        return answer(r)

    return Planned(f"{actor.name} attaches a file to ticket {short(tid)}", run)


# ---- users ----------------------------------------------------------------------------------

def plan_role_change(w: World, rng: random.Random):
    # Mostly an agent demoted (or a demoted one made agent again), sometimes a customer promoted.
    staffish = [p for p in w.everyone() if p.role != "admin" and p.ever_staff]
    others = [p for p in w.everyone() if p.role != "admin" and not p.ever_staff]
    target = pick(rng, staffish if staffish and (rng.random() < 0.7 or not others) else others)
    if target is None:
        return None
    to = "customer" if target.role == "agent" else "agent"
    admin = w.admin()

    def run():
        r = admin.api.call("PATCH", f"/api/users/{target.id}", {"role": to})
        if expect_ok(w, "role change", r):
            target.role = r.json()["role"]
            target.ever_staff |= target.staff
        return answer(r)

    return Planned(f"admin makes {target.name} {to}", run, [("user", target.id)])


def plan_activation(w: World, rng: random.Random):
    target = pick(rng, [p for p in w.everyone() if p.role != "admin"])
    if target is None:
        return None
    admin = w.admin()
    if target.active:
        def run():
            r = admin.api.call("DELETE", f"/api/users/{target.id}")
            if expect_ok(w, "deactivate", r):
                target.active = False
            return answer(r)
        return Planned(f"admin deactivates {target.name}", run, [("user", target.id)])

    def run_back():
        r = admin.api.call("PATCH", f"/api/users/{target.id}", {"is_active": True})
        if not expect_ok(w, "reactivate", r):
            return answer(r)
        target.active = True
        w.relogin(target)
        back = w.connect(target, target.last_event_id, target.last_event_name)
        return f"{answer(r)}; signed in again, socket {'back' if back else 'refused'}"

    return Planned(f"admin reactivates {target.name}", run_back, [("user", target.id)])


# ---- knowledge base -------------------------------------------------------------------------

def plan_kb_create(w: World, rng: random.Random):
    actor = pick(rng, w.staff())
    if actor is None:
        return None
    status = rng.choice(["draft", "published"])
    body = {"title": f"s{w.step} article", "body": f"s{w.step} {status} body", "status": status}

    def run():
        r = actor.api.call("POST", "/api/kb/articles", body)
        if not expect_ok(w, "kb create", r):
            return answer(r)
        a = r.json()
        w.articles[a["id"]] = {"status": a["status"]}
        return f"article {short(a['id'])}"

    return Planned(f"{actor.name} writes a {status} article", run)


def _kb_patch(w: World, rng: random.Random, want_status, body_of, what: str):
    ids = [a for a, v in sorted(w.articles.items()) if want_status is None or v["status"] == want_status]
    aid, actor = pick(rng, ids), pick(rng, w.staff())
    if aid is None or actor is None:
        return None
    body = body_of(w.step)

    def run():
        r = actor.api.call("PATCH", f"/api/kb/articles/{aid}", body)
        if expect_ok(w, what, r):
            w.articles[aid]["status"] = r.json()["status"]
        return answer(r)

    return Planned(f"{actor.name} {what} article {short(aid)}", run, [("kb_article", aid)])


def plan_kb_publish(w, rng):
    return _kb_patch(w, rng, "draft", lambda s: {"status": "published"}, "publishes")


def plan_kb_unpublish(w, rng):
    return _kb_patch(w, rng, "published", lambda s: {"status": "draft"}, "unpublishes")


def plan_kb_edit(w, rng):
    return _kb_patch(w, rng, None, lambda s: {"title": f"s{s} edited title", "body": f"s{s} edited body"}, "edits")


def plan_kb_edit_unpublish(w, rng):
    return _kb_patch(w, rng, "published", lambda s: {"body": f"s{s} DRAFT body, not for readers", "status": "draft"},
                     "edits and unpublishes (one PATCH)")


# ---- sockets and the log --------------------------------------------------------------------

def hostile_rooms(w: World, p: Identity) -> list[str]:
    others = [q for q in w.everyone() if q is not p]
    own = [t for t, v in w.tickets.items() if v["requester"] == p.name]
    theirs = [t for t, v in w.tickets.items() if v["requester"] != p.name]
    rooms = ["role:customer", "role:staff", "tickets", "comments", "attachments", "users", "kb", "kb:public",
             "tw:behind", f"user:{p.id}"]
    rooms += [f"user:{q.id}" for q in others]
    rooms += [f"ticket:{t}" for t in sorted(own + theirs)]
    return rooms


def plan_hostile(w: World, rng: random.Random):
    p = pick(rng, [q for q in w.everyone() if q.connected()])
    if p is None:
        return None
    rooms = hostile_rooms(w, p)
    acts = []
    for _ in range(rng.randint(1, 3)):
        if p.role == "customer" and rng.random() < 0.4:
            acts.append(("leave", "role:customer"))
            continue
        acts.append((rng.choice(["join", "leave", "join+leave"]), rng.choice(rooms)))

    def run():
        out = []
        for what, room in acts:
            if what in ("join", "join+leave"):
                out.append(f"join {room}: {w.join(p, room)}")
            if what in ("leave", "join+leave"):
                out.append(f"leave {room}: {w.leave(p, room)}")
        return "; ".join(out)

    return Planned(f"{p.name} on its socket: " + ", ".join(f"{a} {r[:13]}" for a, r in acts), run)


def plan_resume(w: World, rng: random.Random):
    p = pick(rng, w.active())
    if p is None:
        return None
    mode = rng.choices(["last", "zero", "fresh"], [5, 4, 1])[0]
    extra = [pick(rng, hostile_rooms(w, p))] if rng.random() < 0.3 else []
    with_name = rng.random() < 0.3

    def run():
        w.drop_socket(p)
        after = {"last": p.last_event_id, "zero": 0, "fresh": None}[mode]
        if mode == "last" and after is None:
            after = 0
        name = p.last_event_name if with_name and mode == "last" else None
        ok = w.connect(p, after, name, extra)
        return f"{'resumed' if ok else 'refused'} ({p.via})"

    return Planned(f"{p.name} disconnects and resumes ({mode}{', last_event' if with_name else ''}"
                   f"{', also asks ' + extra[0][:14] if extra else ''})", run)


def plan_read_events(w: World, rng: random.Random):
    p = pick(rng, w.active())
    if p is None:
        return None
    return Planned(f"{p.name} reads GET /api/events?after=0", lambda: f"{w.read_events(p, 0)} items")


WEIGHTS: list[tuple[Callable, int]] = [
    (plan_create_ticket, 10),
    (plan_import, 3),
    (plan_public_reply, 12),
    (plan_internal_note, 9),
    (plan_reply_to_internal, 4),
    (plan_toggle_internal, 7),
    (plan_move_ticket, 8),
    (plan_assign, 6),
    (plan_edit_ticket, 5),
    (plan_upload, 3),
    (plan_role_change, 6),
    (plan_activation, 3),
    (plan_kb_create, 5),
    (plan_kb_publish, 4),
    (plan_kb_unpublish, 3),
    (plan_kb_edit, 2),
    (plan_kb_edit_unpublish, 5),
    (plan_hostile, 9),
    (plan_resume, 6),
    (plan_read_events, 8),
]


def choose(w: World, rng: random.Random) -> Planned:
    plans, weights = zip(*WEIGHTS)
    if len(w.tickets) < 3:  # a helpdesk with something in it first
        weights = [wt * 4 if plan is plan_create_ticket else wt for plan, wt in WEIGHTS]
    for _ in range(50):
        planned = rng.choices(plans, weights)[0](w, rng)
        if planned is not None:
            return planned
    return plan_create_ticket(w, rng) or plan_read_events(w, rng)
