"""REST as the judge, and the invariant.

After every step (once everything is quiet) each item an identity received since the last check
must be something REST lets that identity read *now*:

- a full entity (ticket, comment, attachment, KB article, user): `GET` of that entity as that
  identity answers 200 (`/api/tickets/{id}`, `/api/comments/{id}`, `/api/attachments/{id}`,
  `/api/kb/articles/{id}`, `/api/users/me` or, for admins, `/api/users/{id}`), and the item has
  no field that answer lacks (top level, and a ticket's `metadata`);
- and the state it shows is one REST ever shows that identity, whatever the entity is now: a
  customer never gets an internal note, a draft article or a ticket whose requester is not
  them;
- a notification is the identity's own, and its entity and `ticket_id` obey the same rule;
- a redacted marker (action `deleted`, or `deleted: true`, with nothing but ids) is always fine,
  and so is an emit about the stream itself (numbers and flags only, such as `catch_up`);
- anything else no rule covers fails the test as unjudged, rather than passing unexamined;
- an entity's own `deleted` event, and an account's own deactivation, may carry the entity as it
  was if REST let the identity read it just before the step that made the event.

Items are judged against the moment of receipt: the model waits for quiescence after each step,
so all that arrives was caused by the step just done (or replayed from the log now), and REST is
asked right after it. `Checker.before` answers "readable just before the event's step" from what
was asked of REST before that step about the entities it touched.
"""
from __future__ import annotations

from dataclasses import dataclass

from .world import Identity, Item, World, compact, short

MARKER_FLAGS = {"deleted", "internal"}
PATHS = {
    "ticket": "/api/tickets/{}",
    "comment": "/api/comments/{}",
    "attachment": "/api/attachments/{}",
    "kb_article": "/api/kb/articles/{}",
}
CHECKED_KINDS = set(PATHS) | {"user"}


def is_marker(action, data) -> bool:
    """A redaction: says something is gone from sight, with ids only (and the flags and version
    number a client orders and files it by), nothing of its content."""
    if data is None:
        return action == "deleted"
    if not isinstance(data, dict):
        return False
    if not (action == "deleted" or data.get("deleted") is True):
        return False

    def bare(k, v) -> bool:
        if v is None:
            return True
        if k == "id" or k.endswith("_id"):
            return isinstance(v, str)
        if k in MARKER_FLAGS:
            return isinstance(v, bool)
        return k == "version" and isinstance(v, int) and not isinstance(v, bool)

    return all(bare(k, v) for k, v in data.items())


def is_control(payload) -> bool:
    """An emit about the stream itself (say `catch_up {position, recovered}`): numbers and flags
    only, no text, no entity."""
    return isinstance(payload, dict) and all(v is None or isinstance(v, (bool, int)) for v in payload.values())


@dataclass
class Leak:
    seed: int
    step: int
    op: str
    who: str
    role: str
    item: Item
    reason: str
    hint: str

    def line(self) -> str:
        return (f"seed {self.seed} step {self.step} [{self.op}] -> {self.who} ({self.role}) got "
                f"{self.item.brief()} via {self.item.via or self.item.channel}: {self.reason}"
                f"{' [' + self.hint + ']' if self.hint else ''}\n        data: {compact(self.item.data)}")


class Checker:
    def __init__(self, world: World):
        self.w = world
        self.cache: dict[tuple, tuple[bool, int]] = {}
        self.bodies: dict[tuple, dict | None] = {}

    # ---- asking REST --------------------------------------------------------------------

    def ask(self, p: Identity, kind: str, eid: str) -> tuple[bool, int]:
        """Whether REST lets `p` read entity `kind/eid` now, and the status it answered."""
        if kind == "user":
            path = "/api/users/me" if eid == p.id else f"/api/users/{eid}"
        else:
            path = PATHS[kind].format(eid)
        r = p.api.call("GET", path)
        if r.status_code == 401 and p.active and self.w.relogin(p):
            r = p.api.call("GET", path)
        body = r.json() if r.status_code == 200 else None
        ok = isinstance(body, dict) and body.get("id") == eid
        self.bodies[(p.name, kind, eid)] = body if ok else None
        return ok, r.status_code

    def readable(self, p: Identity, kind: str, eid: str) -> tuple[bool, int]:
        key = (p.name, kind, eid)
        if key not in self.cache:
            self.cache[key] = self.ask(p, kind, eid)
            self.w.readable_log.setdefault(key, []).append((self.w.step, self.cache[key][0]))
        return self.cache[key]

    def unshown_fields(self, p: Identity, kind: str, eid: str, data: dict) -> list[str]:
        """Fields of `data` that REST's answer to `p` for the same entity does not have (at the
        top level, and inside a ticket's `metadata`): what REST withholds must not come by
        another channel."""
        rest = self.bodies.get((p.name, kind, eid))
        if not isinstance(rest, dict):
            return []
        extra = sorted(set(data) - set(rest))
        meta, rest_meta = data.get("metadata"), rest.get("metadata")
        if kind == "ticket" and isinstance(meta, dict) and isinstance(rest_meta, dict):
            extra += [f"metadata.{k}" for k in sorted(set(meta) - set(rest_meta))]
        return extra

    def pre_probe(self, touches) -> None:
        """Before a step: who may read each entity it is about to touch."""
        snap = self.w.pre.setdefault(self.w.step, {})
        for kind, eid in touches:
            if kind in CHECKED_KINDS and eid and (kind, eid) not in snap:
                snap[(kind, eid)] = {p.name: self.ask(p, kind, eid)[0] for p in self.w.everyone()}

    def before(self, p: Identity, kind: str, eid: str, event_id) -> bool:
        """Whether `p` could read `kind/eid` just before the step that made `event_id`."""
        step = self.w.event_step.get(event_id, self.w.step) if isinstance(event_id, int) else self.w.step
        snap = self.w.pre.get(step, {}).get((kind, eid))
        if snap is not None:
            return snap.get(p.name, False)
        history = [ok for at, ok in self.w.readable_log.get((p.name, kind, eid), []) if at < step]
        return bool(history) and history[-1]

    # ---- the invariant ------------------------------------------------------------------

    def check(self, items: list[Item], seed: int, op: str) -> tuple[list[Leak], list[str]]:
        """Judges `items`; returns the leaks and the items no rule covers."""
        self.cache = {}
        leaks, unjudged = [], []
        for it in items:
            p = self.w.people[it.who]
            reasons = self.violations(p, it, unjudged)
            if reasons:
                leaks.append(Leak(seed, self.w.step, op, p.name, p.role, it, "; ".join(reasons), self.hint(p, it)))
        return leaks, unjudged

    def violations(self, p: Identity, it: Item, unjudged: list[str]) -> list[str]:
        if it.kind == "bad_signature":
            return [f"webhook signature does not verify: {it.data.get('_bad_signature')}"]
        if it.channel == "events" and it.kind == "webhook":
            return []  # one's own webhook test: `GET /api/events` shows it to its owner only
        if it.kind not in CHECKED_KINDS:
            if it.channel == "socket" and is_control(it.raw):
                return []  # a stream position or a flag: nothing of any entity
            unjudged.append(f"{it.who}: {it.brief()} {compact(it.raw)}")
            return []
        out = []
        if it.notification is not None and it.notification.get("user_id") != p.id:
            out.append(f"someone else's notification (for {short(it.notification.get('user_id'))})")
        marker = is_marker(it.action, it.data)
        data = it.data if isinstance(it.data, dict) else {}
        eid = data.get("id") or it.entity_id
        if not marker:
            out += self.state_violations(p, it.kind, data)
            if not eid:
                out.append("an entity without an id")
            else:
                ok, status = self.readable(p, it.kind, eid)
                if not ok and not self.allowed_as_was(p, it, eid, data):
                    out.append(f"REST refuses {it.kind} {short(eid)} to {p.name} (GET -> {status})")
                if ok and (extra := self.unshown_fields(p, it.kind, eid, data)):
                    out.append(f"fields REST does not show {p.name}: {', '.join(extra)}")
        tid = it.ticket_id if it.notification is not None or not marker else None
        if tid and not (it.kind == "ticket" and tid == eid):
            ok, status = self.readable(p, "ticket", tid)
            if not ok and not ((marker or it.action == "deleted") and self.before(p, "ticket", tid, it.event_id)):
                out.append(f"REST refuses its ticket {short(tid)} to {p.name} (GET -> {status})")
        return out

    @staticmethod
    def state_violations(p: Identity, kind: str, data: dict) -> list[str]:
        """The entity in the state the item shows must be one REST ever shows `p`, whatever it
        is now: customers never see an internal note, a draft or someone else's ticket."""
        if p.role != "customer":
            return []
        if kind == "comment" and data.get("internal") is not False:
            return ["an internal note's content reached a customer"]
        if kind == "kb_article" and data.get("status") != "published":
            return ["a draft article's content reached a customer"]
        if kind == "ticket" and data.get("requester_id") != p.id:
            return ["another requester's ticket reached a customer"]
        return []

    def allowed_as_was(self, p: Identity, it: Item, eid: str, data: dict) -> bool:
        """An entity's own deletion, and an account's own deactivation, may show it as it was to
        those who could read it just before."""
        if it.action == "deleted":
            return self.before(p, it.kind, eid, it.event_id)
        if it.kind == "user" and eid == p.id and data.get("is_active") is False:
            return self.before(p, "user", eid, it.event_id)
        return False

    # ---- why (for the report; the verdict does not depend on it) ------------------------

    def hint(self, p: Identity, it: Item) -> str:
        w, data = self.w, it.data if isinstance(it.data, dict) else {}
        hints = []
        tid = data.get("ticket_id") if it.kind in ("comment", "attachment") else data.get("id") if it.kind == "ticket" else None
        tid = tid or it.ticket_id
        if it.channel == "socket" and "role:customer" in p.left and p.role == "customer":
            hints.append("socket left role:customer")
        if p.ever_staff and p.role == "customer":
            hints.append("demoted staff")
        if tid in w.tickets and p.name in w.tickets[tid]["past_requesters"] and w.tickets[tid]["requester"] != p.name:
            hints.append("former requester")
        if it.kind == "comment":
            c = w.comments.get(data.get("id") or it.entity_id)
            if c and c["internal"] and data.get("internal") is False:
                hints.append("comment made internal since")
            if data.get("internal") is True:
                hints.append("internal note")
        if it.kind == "kb_article":
            hints.append("kb draft content" if data.get("status") == "draft" else "kb article unpublished since")
        if it.kind == "ticket" and data.get("requester_id") and data.get("requester_id") != p.id:
            hints.append("another requester's ticket")
        if it.channel == "socket" and isinstance(it.event_id, int) and w.event_step.get(it.event_id, w.step) < w.step:
            hints.append("replay")
        if it.notification is not None:
            hints.append(f"notification {it.notification.get('type')}")
        return ", ".join(hints)
