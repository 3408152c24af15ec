//! What clients send: `presence`, `typing` and `presence.leave`, each rate-limited per socket,
//! checked against the visibility policy and applied to the hub's state in the order sent.
use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, SocketRef, TryData},
    socket::Sid,
};

use super::{
    Conn, Entry, Hub, MAX_SEEN, MAX_TICKETS_PER_SOCKET, Requester, SocketState, State, Who, audience_of,
    batch::{list_to, snapshot_to},
    target::{Target, ticket_of_room},
    view::{self, View, slot},
};
use crate::{
    entity::ticket,
    policy::{
        Subject,
        presence::{Activity, Typing, may_announce, may_type},
    },
    realtime::rooms,
};

/// What a client asks for.
#[derive(Clone, Copy)]
pub(super) enum Change {
    Presence(Activity),
    Typing(Typing, bool),
    Leave,
}

#[derive(Deserialize)]
pub(super) struct PresenceRequest {
    ticket_id: String,
    state: String,
}

#[derive(Deserialize)]
pub(super) struct TypingRequest {
    ticket_id: String,
    kind: String,
    #[serde(default = "yes")]
    active: bool,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Deserialize)]
pub(super) struct LeaveRequest {
    /// Every ticket when absent.
    ticket_id: Option<String>,
}

/// Why a request was refused (the ack's `error`).
pub(super) type Refusal = &'static str;

impl Hub {
    /// Whether the socket may send one more presence or typing message now.
    pub(super) fn admit(&self, s: &dyn Target) -> bool {
        let sid = s.sid();
        let mut st = self.lock();
        if !s.connected() {
            return false;
        }
        let Some(socket) = st.sockets.get_mut(&sid) else {
            let mut socket = SocketState::new(sid, &self.config);
            socket.allowance -= 1.0;
            st.sockets.insert(sid, socket);
            return true;
        };
        let now = Instant::now();
        let burst = f64::from(self.config.updates_burst.max(1));
        let earned = now.duration_since(socket.refilled).as_secs_f64() * f64::from(self.config.updates_per_second);
        socket.allowance = (socket.allowance + earned).min(burst);
        socket.refilled = now;
        if socket.allowance >= 1.0 {
            socket.allowance -= 1.0;
            true
        } else {
            false
        }
    }

    /// The ticket's requester (`Ok(None)`: no such ticket), from memory or the database.
    pub(super) async fn requester_of(&self, ticket_id: &str) -> Result<Option<Option<String>>, Refusal> {
        if let Some(Requester::Known(r)) = self.lock().tickets.get(ticket_id).map(|t| t.requester.clone()) {
            return Ok(Some(r));
        }
        use sea_orm::{EntityTrait, QuerySelect};
        let found: Option<Option<String>> = ticket::Entity::find_by_id(ticket_id.to_string())
            .select_only()
            .column(ticket::Column::RequesterId)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(|_| "unavailable")?;
        if let Some(requester) = &found {
            let mut st = self.lock();
            let t = st.tickets.entry(ticket_id.into()).or_default();
            // A ticket event seen meanwhile is newer than this read.
            if !matches!(t.requester, Requester::Known(_)) {
                t.requester = Requester::Known(requester.clone());
            }
            st.dirty.insert(ticket_id.into());
        }
        Ok(found)
    }

    /// Reads the requester of a ticket that only other nodes' entries brought here, then sends
    /// its customers' view.
    pub(super) fn load_requester(self: &Arc<Self>, ticket_id: Arc<str>) {
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(hub) = hub.upgrade() else { return };
            match hub.requester_of(&ticket_id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    // Gone (or never was): nothing of it is shown.
                    let mut st = hub.lock();
                    hub.drop_ticket(&mut st, &ticket_id);
                }
                Err(_) => {
                    if let Some(t) = hub.lock().tickets.get_mut(&ticket_id) {
                        t.requester = Requester::Unknown;
                    }
                }
            }
        });
    }

    /// Applies one client request for the socket `s` of `conn`, named `name`. A composer opened
    /// (`replying` or `noting`) is answered with who else is writing a public reply there.
    pub(super) async fn apply(
        &self,
        s: &dyn Target,
        conn: &Arc<Conn>,
        name: &Arc<str>,
        ticket_id: &str,
        change: Change,
    ) -> Result<Option<Vec<Value>>, Refusal> {
        if uuid::Uuid::parse_str(ticket_id).is_err() {
            return Err("invalid");
        }
        let role = conn.role();
        let adds = match change {
            Change::Presence(a) if !may_announce(role, a) => return Err("forbidden"),
            Change::Typing(kind, true) if !may_type(role, kind) => return Err("forbidden"),
            Change::Presence(_) | Change::Typing(_, true) => true,
            Change::Typing(_, false) | Change::Leave => false,
        };
        let audience = if adds {
            // Asked each time, not once: the answer is about the user as they are now.
            let requester = self.requester_of(ticket_id).await?.ok_or("forbidden")?;
            Some(audience_of(conn, Some(&Subject::Ticket { requester_id: requester })).ok_or("forbidden")?)
        } else {
            None
        };
        let sid = s.sid();
        let now = Instant::now();
        let mut st = self.lock();
        if !s.connected() {
            return Ok(None);
        }
        let State { tickets, sockets, dirty, unpublished, .. } = &mut *st;
        let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
        let key = (self.node.clone(), socket.key.clone());
        let tid: Arc<str> = match tickets.get_key_value(ticket_id) {
            Some((k, _)) => k.clone(),
            None => ticket_id.into(),
        };
        if adds && !socket.tickets.contains(&tid) && socket.tickets.len() >= MAX_TICKETS_PER_SOCKET {
            return Err("too_many_tickets");
        }
        if !adds && !tickets.contains_key(&tid) {
            return Ok(None);
        }
        let t = tickets.entry(tid.clone()).or_default();
        let expires = now + Duration::from_millis(self.config.expiry_ms);
        match change {
            Change::Leave => {
                if t.entries.remove(&key).is_some() {
                    socket.tickets.remove(&tid);
                }
            }
            Change::Typing(kind, false) => match t.entries.get_mut(&key) {
                Some(e) => e.typing[kind as usize] = None,
                None => return Ok(None),
            },
            Change::Presence(_) | Change::Typing(_, true) => {
                let e = t.entries.entry(key).or_insert_with(|| Entry {
                    user_id: conn.user_id.as_str().into(),
                    name: name.clone(),
                    who: Who::Local(conn.clone(), sid),
                    // Typing without a word about the composer: it is open.
                    activity: match change {
                        Change::Typing(Typing::Internal, _) => Activity::Noting,
                        _ => Activity::Replying,
                    },
                    expires,
                    typing: [None, None],
                });
                e.expires = expires;
                match change {
                    Change::Presence(a) => e.activity = a,
                    Change::Typing(kind, _) => {
                        e.typing[kind as usize] = Some(now + Duration::from_millis(self.config.typing_expiry_ms))
                    }
                    Change::Leave => {}
                }
                socket.tickets.insert(tid.clone());
            }
        }
        dirty.insert(tid.clone());
        unpublished.insert((tid.clone(), socket.key.clone()));
        // "On first presence": a socket in the ticket's room that has no snapshot yet gets one.
        if let Some(audience) = audience
            && socket.seen.get(&tid) != Some(&audience)
            && s.in_room(&rooms::ticket(&tid))
            && snapshot_to(s, &t.sent[slot(audience)], || view::snapshot(&tid, &t.sent[slot(audience)]))
        {
            socket.seen.insert(tid.clone(), audience);
        }
        let opens_composer = matches!(change, Change::Presence(Activity::Replying | Activity::Noting));
        Ok(match audience {
            Some(audience) if opens_composer => {
                // Only the people with a reply open can be in the answer: the view of them alone
                // (all their connections, as the policy judges a person) spares a ticket watched by
                // a thousand a view of all of them per request.
                let writing: HashSet<&Arc<str>> = t
                    .entries
                    .values()
                    .filter(|e| e.activity == Activity::Replying && *e.user_id != *conn.user_id)
                    .map(|e| &e.user_id)
                    .collect();
                let view = View::of(
                    audience,
                    t.entries.values().filter(|e| writing.contains(&e.user_id)).map(|e| e.part(now)),
                );
                Some(view::replying_besides(&view, &conn.user_id))
            }
            _ => None,
        })
    }

    /// Sends a socket that just entered `joined` the presence there: a snapshot per ticket room,
    /// the list for `tickets` (staff).
    pub(super) async fn joined(&self, s: &dyn Target, joined: &[String]) {
        let Some(conn) = s.conn() else { return };
        let sid = s.sid();
        for room in joined {
            if room == "tickets" {
                if !conn.role().is_staff() {
                    continue;
                }
                let mut st = self.lock();
                if !s.connected() {
                    return;
                }
                let State { tickets, sockets, .. } = &mut *st;
                let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                socket.list_seen = list_to(s, tickets);
            } else if let Some(ticket_id) = ticket_of_room(room) {
                let requester = match self.requester_of(ticket_id).await {
                    Ok(Some(r)) => Requester::Known(r),
                    _ => continue,
                };
                let Some(audience) = audience_of(&conn, requester.subject().as_ref()) else { continue };
                let mut st = self.lock();
                if !s.connected() {
                    return;
                }
                let State { tickets, sockets, .. } = &mut *st;
                let empty = View::default();
                let (tid, sent) = match tickets.get_key_value(ticket_id) {
                    Some((k, t)) => (k.clone(), &t.sent[slot(audience)]),
                    None => (Arc::<str>::from(ticket_id), &empty),
                };
                let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                if snapshot_to(s, sent, || view::snapshot(&tid, sent)) {
                    // Rooms left are not reported here: forget what no room explains any more.
                    if socket.seen.len() >= MAX_SEEN {
                        socket.seen.retain(|t, _| s.in_room(&rooms::ticket(t)));
                    }
                    socket.seen.insert(tid, audience);
                }
            }
        }
    }

    pub(super) fn leave_all(&self, sid: Sid) {
        let mut st = self.lock();
        let State { tickets, sockets, dirty, unpublished, .. } = &mut *st;
        let Some(socket) = sockets.get_mut(&sid) else { return };
        let key = (self.node.clone(), socket.key.clone());
        for tid in socket.tickets.drain() {
            if let Some(t) = tickets.get_mut(&tid) {
                t.entries.remove(&key);
            }
            dirty.insert(tid.clone());
            unpublished.insert((tid, socket.key.clone()));
        }
    }
}

fn ack_of(result: Result<Option<Vec<Value>>, Refusal>) -> Value {
    match result {
        // Said only when someone is: a quiet ticket's answer stays `{ok: true}`.
        Ok(Some(replying)) if !replying.is_empty() => json!({ "ok": true, "replying": replying }),
        Ok(_) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

/// Registers `presence`, `presence.leave` and `typing` on a new socket of `conn`, named `name`.
/// Each is answered `{ok: true}` or `{ok: false, error}` and applied in the order sent (with the
/// socket's joins and leaves); beyond the socket's allowance a message is refused with
/// `rate_limited` and changes nothing.
pub fn register_handlers<A: Adapter>(hub: &Arc<Hub>, s: &SocketRef<A>, conn: Arc<Conn>, name: Arc<str>) {
    fn handle<A: Adapter, T: serde::de::DeserializeOwned + Send + Sync + 'static>(
        hub: &Arc<Hub>,
        s: &SocketRef<A>,
        conn: &Arc<Conn>,
        name: &Arc<str>,
        event: &'static str,
        read: fn(T) -> Result<(String, Change), Refusal>,
    ) {
        let (hub, conn, name) = (hub.clone(), conn.clone(), name.clone());
        s.on(event, move |s: SocketRef<A>, TryData(req): TryData<T>, ack: AckSender<A>| {
            let (hub, conn, name) = (hub.clone(), conn.clone(), name.clone());
            let admitted = hub.admit(&s);
            let (previous, done) = conn.queue_room_change();
            async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                let result = if !admitted {
                    metrics::counter!("ticketwire_presence_rate_limited_total").increment(1);
                    Err("rate_limited")
                } else {
                    match req.map_err(|_| "invalid").and_then(read) {
                        Ok((ticket_id, change)) => hub.apply(&s, &conn, &name, &ticket_id, change).await,
                        Err(e) => Err(e),
                    }
                };
                drop(done);
                let _ = ack.send(&ack_of(result));
            }
        });
    }
    handle::<A, PresenceRequest>(hub, s, &conn, &name, "presence", |r| {
        let activity = Activity::parse(&r.state).ok_or("invalid")?;
        Ok((r.ticket_id, Change::Presence(activity)))
    });
    handle::<A, TypingRequest>(hub, s, &conn, &name, "typing", |r| {
        let kind = Typing::parse(&r.kind).ok_or("invalid")?;
        Ok((r.ticket_id, Change::Typing(kind, r.active)))
    });
    let (hub, c) = (hub.clone(), conn);
    s.on("presence.leave", move |s: SocketRef<A>, TryData(req): TryData<LeaveRequest>, ack: AckSender<A>| {
        let (hub, conn) = (hub.clone(), c.clone());
        let admitted = hub.admit(&s);
        let (previous, done) = conn.queue_room_change();
        async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let result = match (admitted, req) {
                (false, _) => Err("rate_limited"),
                (true, Err(_)) => Err("invalid"),
                (true, Ok(LeaveRequest { ticket_id: Some(t) })) => {
                    hub.apply(&s, &conn, &Arc::from(""), &t, Change::Leave).await
                }
                (true, Ok(LeaveRequest { ticket_id: None })) => {
                    hub.leave_all(s.id);
                    Ok(None)
                }
            };
            drop(done);
            let _ = ack.send(&ack_of(result));
        }
    });
}
