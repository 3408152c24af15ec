"""One server and the people on it, as the visibility model sees them.

Every identity has a real python-socketio client (connected with `auth: {token, rooms}`, the
rooms a well-behaved client of that role asks for) and a webhook URL on a shared receiver whose
bodies are verified with `standardwebhooks`. Whatever reaches an identity on any channel lands in
its inbox as an `Item`, to be judged by `oracle.Checker` after the step that caused it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests
import socketio
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import tw

STAFF_ROOMS = ["tickets", "comments", "attachments", "kb"]
# What every `*.update` emit is about.
EMIT_KINDS = {
    "ticket.update": "ticket",
    "comment.update": "comment",
    "attachment.update": "attachment",
    "kb.update": "kb_article",
    "user.update": "user",
}
# The kinds the sentinel (an admin socket in every entity room) receives every event of.
SENTINEL_KINDS = {"ticket", "comment", "attachment", "kb_article", "user"}
PEOPLE = [("c1", "customer"), ("c2", "customer"), ("c3", "customer"), ("a1", "agent"), ("a2", "agent")]


@dataclass
class Item:
    """One thing an identity received: an emit, a webhook body or an item of `GET /api/events`."""

    who: str
    channel: str  # "socket", "webhook" or "events"
    label: str  # the emit's name, "webhook <id>" or "GET /api/events"
    kind: str | None
    action: str | None
    entity_id: str | None
    data: object
    event_id: int | None
    ticket_id: str | None = None
    notification: dict | None = None
    via: str = ""  # which connection (fresh, or resumed from which event)
    raw: object = None

    def brief(self) -> str:
        ev = f"#{self.event_id}" if self.event_id is not None else "#?"
        return f"{self.channel} {self.label} {ev} {self.kind}/{self.action} {short(self.entity_id)}"


def short(x) -> str:
    return str(x)[-6:] if x else "-"


class Identity:
    def __init__(self, name: str, user: tw.User, role: str):
        self.name, self.user, self.role = name, user, role
        self.active = True
        self.ever_staff = role != "customer"
        self.sock: tw.Sock | None = None
        self.sock_seen = 0
        self.conn_no = 0
        self.via = ""
        self.left: set[str] = set()  # rooms this connection left on request
        self.last_event_id: int | None = None
        self.last_event_name: str | None = None
        self.hook_path = f"/{name}"
        self.hook_secret: str | None = None
        self.hook_seen = 0
        self.inbox: list[Item] = []

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def staff(self) -> bool:
        return self.role in ("agent", "admin")

    @property
    def api(self) -> tw.Api:
        return self.user.api

    def connected(self) -> bool:
        return self.sock is not None and self.sock.sio.connected

    def __repr__(self):
        return f"{self.name}({self.role}{'' if self.active else ', inactive'})"


class World:
    """The server, the identities and the model's view of the helpdesk."""

    def __init__(self, srv: tw.Server, quiet_s: float = 0.3, bound_s: float = 8.0):
        self.srv = srv
        self.quiet_s, self.bound_s = quiet_s, bound_s
        self.step = 0
        self.log: list[str] = []
        self.receiver = tw.Receiver()
        admin_user = tw.admin(srv)
        self.people: dict[str, Identity] = {"admin": Identity("admin", admin_user, "admin")}
        for name, role in PEOPLE:
            self.people[name] = Identity(name, tw.make_user(srv, admin_user, role, name=name), role)
        self.by_id = {p.id: p for p in self.people.values()}
        # The model of the helpdesk.
        self.tickets: dict[str, dict] = {}  # id -> {requester, assignee, past_requesters}
        self.comments: dict[str, dict] = {}  # id -> {ticket, author, internal, parent}
        self.articles: dict[str, dict] = {}  # id -> {status}
        self.attachments: dict[str, str] = {}  # id -> ticket id
        # event id -> the step that made it; readability before each step of what it touched.
        self.event_step: dict[int, int] = {}
        self.event_cursor = 0
        self.pre: dict[int, dict[tuple, dict[str, bool]]] = {}
        self.readable_log: dict[tuple, list[tuple[int, bool]]] = {}
        self.rest_errors: list[str] = []
        self.refused_connects = 0
        self.unquiet = 0
        self.setup_events = self.log_new_events()  # the accounts just made (before the sentinel was there)
        # An admin socket in every entity room, never touched by the operations: an instrument
        # for quiescence (what it receives is not judged).
        self.sentinel = tw.Sock(srv, {"token": admin_user.token, "rooms": STAFF_ROOMS + ["users"]})
        self.sentinel_seen, self.sentinel_max = 0, 0
        for p in self.people.values():
            ep = p.api.put("/api/users/me/webhook", {"webhook_url": self.receiver.url(p.hook_path)})
            p.hook_secret = ep["secret"]
            self.connect(p)

    # ---- people -------------------------------------------------------------------------

    def admin(self) -> Identity:
        return self.people["admin"]

    def everyone(self) -> list[Identity]:
        return list(self.people.values())

    def active(self, pred=lambda p: True) -> list[Identity]:
        return [p for p in self.people.values() if p.active and pred(p)]

    def staff(self) -> list[Identity]:
        return self.active(lambda p: p.staff)

    def customers(self) -> list[Identity]:
        return self.active(lambda p: p.role == "customer")

    def rooms_for(self, p: Identity) -> list[str]:
        if p.staff:
            return STAFF_ROOMS + (["users"] if p.role == "admin" else [])
        return ["kb"] + [f"ticket:{t}" for t, v in self.tickets.items() if v["requester"] == p.name]

    def relogin(self, p: Identity) -> bool:
        """Signs in again (a refused token, a reactivated account); False if sign-in is refused."""
        r = requests.post(self.srv.url + "/api/auth/login", json={"email": p.user.email, "password": p.user.password},
                          timeout=30)
        if r.status_code != 200:
            return False
        p.user.relogin()
        return True

    # ---- sockets ------------------------------------------------------------------------

    def connect(self, p: Identity, last_event_id: int | None = None, last_event: str | None = None,
                extra_rooms=()) -> bool:
        """Opens `p`'s socket with its role's rooms (plus `extra_rooms`), resuming after
        `last_event_id` when given. A refused token is renewed by signing in again, once."""
        self.drop_socket(p)
        rooms = self.rooms_for(p) + list(extra_rooms)
        auth = {"token": p.user.token, "rooms": rooms}
        if last_event_id is not None:
            auth["last_event_id"] = last_event_id
            if last_event:
                auth["last_event"] = last_event
        for attempt in range(2):
            try:
                p.sock = tw.Sock(self.srv, auth)
                break
            except socketio.exceptions.ConnectionError:
                self.refused_connects += 1
                if attempt == 0 and p.active and p.api.call("GET", "/api/users/me").status_code == 401 and self.relogin(p):
                    auth["token"] = p.user.token
                    continue
                self.note(f"{p.name}: connection refused")
                return False
        p.sock_seen, p.left = 0, set()
        p.conn_no += 1
        p.via = f"conn {p.conn_no} " + ("fresh" if last_event_id is None else f"resumed after #{last_event_id}"
                                         + (f"/{last_event}" if last_event else ""))
        return True

    def drop_socket(self, p: Identity) -> None:
        """Closes `p`'s socket (if open), keeping what it had received."""
        if p.sock is None:
            return
        self.drain_socket(p)
        try:
            p.sock.close()
        except Exception:  # already closed by the server
            pass
        self.drain_socket(p)
        p.sock = None

    def drain_socket(self, p: Identity) -> None:
        if p.sock is None:
            return
        with p.sock.cond:
            new = p.sock.events[p.sock_seen:]
            p.sock_seen = len(p.sock.events)
        for name, payload in new:
            p.inbox.append(self.emit_item(p, name, payload))
            ev = payload.get("event_id") if isinstance(payload, dict) else None
            if isinstance(ev, int) and (p.last_event_id is None or ev >= p.last_event_id):
                p.last_event_id, p.last_event_name = ev, name

    def emit_item(self, p: Identity, name: str, payload) -> Item:
        if not isinstance(payload, dict):
            return Item(p.name, "socket", name, None, None, None, payload, None, via=p.via, raw=payload)
        if name == "notification":
            return self.notification_item(p, "socket", name, payload, p.via)
        data = payload.get("data")
        eid = data.get("id") if isinstance(data, dict) else None
        tid = data.get("ticket_id") if isinstance(data, dict) else None
        return Item(p.name, "socket", name, EMIT_KINDS.get(name), payload.get("action"), eid, data,
                    payload.get("event_id"), ticket_id=tid, via=p.via, raw=payload)

    @staticmethod
    def notification_item(p: Identity, channel: str, label: str, payload: dict, via: str) -> Item:
        n = payload.get("notification") if isinstance(payload.get("notification"), dict) else {}
        kind_name = str(n.get("type", ""))
        action = "deleted" if kind_name.endswith("_deleted") else "notified"
        return Item(p.name, channel, label, n.get("related_type"), action, n.get("related_id"), payload.get("data"),
                    payload.get("event_id"), ticket_id=n.get("ticket_id"), notification=n, via=via, raw=payload)

    def join(self, p: Identity, room: str) -> dict | None:
        return self._room_call(p, "join", room)

    def leave(self, p: Identity, room: str) -> dict | None:
        ack = self._room_call(p, "leave", room)
        if isinstance(ack, dict) and ack.get("ok"):
            p.left.add(room)
        return ack

    def _room_call(self, p: Identity, what: str, room: str):
        if not p.connected():
            return None
        try:
            return p.sock.sio.call(what, {"room": room}, timeout=5)
        except Exception as e:  # the socket closed under us
            return {"error": type(e).__name__}

    # ---- webhooks and the event log ------------------------------------------------------

    def drain_webhooks(self) -> None:
        for p in self.people.values():
            got = self.receiver.at(p.hook_path)
            for req in got[p.hook_seen:]:
                try:
                    payload = Webhook(p.hook_secret).verify(req["body"], req["headers"])
                except WebhookVerificationError as e:
                    payload = {"_bad_signature": str(e), "_body": req["body"][:200].decode(errors="replace")}
                label = f"webhook {req['headers'].get('webhook-id', '?')}"
                if "_bad_signature" in payload:
                    p.inbox.append(Item(p.name, "webhook", label, "bad_signature", None, None, payload, None))
                else:
                    p.inbox.append(self.notification_item(p, "webhook", label, payload, "webhook"))
            p.hook_seen = len(got)

    def read_events(self, p: Identity, after: int = 0) -> int:
        """`GET /api/events?after=` as `p`, every page; the items go to `p`'s inbox."""
        n = 0
        while True:
            r = p.api.call("GET", f"/api/events?after={after}&limit=500")
            if r.status_code != 200:
                self.note(f"{p.name}: GET /api/events -> {r.status_code}")
                return n
            items = r.json()
            items = items.get("items", items) if isinstance(items, dict) else items
            for it in items:
                data = it.get("data")
                p.inbox.append(Item(p.name, "events", "GET /api/events", it.get("kind"), it.get("action"),
                                    it.get("entity_id"), data, it.get("event_id"), ticket_id=it.get("ticket_id"),
                                    raw=it))
            n += len(items)
            if len(items) < 500:
                return n
            after = items[-1]["event_id"]

    def log_new_events(self) -> list[dict]:
        """The events since the last call, as the admin lists them; each is attributed to this step."""
        out = []
        while True:
            r = self.admin().api.call("GET", f"/api/events?after={self.event_cursor}&limit=500")
            assert r.status_code == 200, f"admin GET /api/events -> {r.status_code} {r.text[:200]}"
            items = r.json()
            items = items.get("items", items) if isinstance(items, dict) else items
            for it in items:
                self.event_step[it["event_id"]] = self.step
                self.event_cursor = max(self.event_cursor, it["event_id"])
            out.extend(items)
            if len(items) < 500:
                return out

    # ---- quiescence ---------------------------------------------------------------------

    def received(self) -> int:
        n = len(self.receiver.requests) + len(self.sentinel.events)
        for p in self.people.values():
            if p.sock is not None:
                n += len(p.sock.events)
        return n

    def sentinel_head(self) -> int:
        with self.sentinel.cond:
            new = self.sentinel.events[self.sentinel_seen:]
            self.sentinel_seen = len(self.sentinel.events)
        for _, d in new:
            ev = d.get("event_id") if isinstance(d, dict) else None
            if isinstance(ev, int):
                self.sentinel_max = max(self.sentinel_max, ev)
        return self.sentinel_max

    def webhooks_pending(self) -> bool:
        for p in self.active():
            r = p.api.call("GET", "/api/users/me/webhook/deliveries?status=pending&limit=1")
            if r.status_code == 200 and r.json().get("items"):
                return True
        return False

    def settle(self) -> list[dict]:
        """Waits until this step's events reached the sentinel, no webhook delivery is pending and
        no channel has received anything for `quiet_s` (all bounded by `bound_s`)."""
        deadline = time.monotonic() + self.bound_s
        new = self.log_new_events()
        want = max([0] + [e["event_id"] for e in new if e["kind"] in SENTINEL_KINDS])
        while self.sentinel_head() < want and time.monotonic() < deadline:
            time.sleep(0.01)
        while self.webhooks_pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        count, since = self.received(), time.monotonic()
        while time.monotonic() - since < self.quiet_s and time.monotonic() < deadline:
            time.sleep(0.02)
            now = self.received()
            if now != count:
                count, since = now, time.monotonic()
        if time.monotonic() >= deadline:
            self.unquiet += 1
            self.note(f"quiescence not reached in {self.bound_s}s")
        return new

    def resume_dropped(self) -> bool:
        """Sockets the server closed (a role change, a deactivation) come back as a client would:
        resuming after the last event they saw. Returns whether any did."""
        any_back = False
        for p in self.people.values():
            if p.sock is not None and not p.sock.sio.connected:
                self.drop_socket(p)
                self.note(f"{p.name}: socket closed by the server")
                if p.active:
                    any_back |= self.connect(p, p.last_event_id, p.last_event_name)
        return any_back

    def collect(self) -> list[Item]:
        for p in self.people.values():
            self.drain_socket(p)
        self.drain_webhooks()
        out = []
        for p in self.people.values():
            out.extend(p.inbox)
            p.inbox = []
        return out

    def note(self, text: str) -> None:
        self.log.append(f"    {text}")

    def close(self) -> None:
        for p in self.people.values():
            self.drop_socket(p)
        try:
            self.sentinel.close()
        except Exception:
            pass
        self.receiver.close()


def compact(data, limit: int = 160) -> str:
    s = json.dumps(data, sort_keys=True, default=str)
    return s if len(s) <= limit else s[:limit] + "…"
