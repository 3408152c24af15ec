//! Live collaboration on a ticket: who is on it (viewing, replying, writing an internal note,
//! idle) and who is typing. Ephemeral by design: held in memory, kept alive by the clients'
//! confirmations, shared between nodes over Redis pub/sub; never in the database, the event log
//! or a webhook.
//!
//! Entries are per connection and ticket; people are shown once, with their strongest state.
//! What a socket is shown is the visibility policy's answer for its user as they are now
//! (`policy::presence`), worked out once per audience and change, and sent per socket by the
//! node that holds it, so nothing meant for staff ever travels to a customer's node as a
//! broadcast. Changes are batched per ticket: a burst of toggles costs a few messages a second.
mod relay;
mod view;

use std::{
    cell::OnceCell,
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{AckSender, SocketRef, TryData},
    socket::Sid,
};

use super::{Conn, Io, rooms};
use crate::{
    auth::Role,
    config::PresenceConfig,
    entity::{event, ticket},
    policy::{
        Subject,
        presence::{Activity, Audience, Typing, may_announce, may_type, presence_audience},
    },
};
use view::{Diff, Part, View, slot};

/// Tickets one connection may be present on at once.
const MAX_TICKETS_PER_SOCKET: usize = 32;

/// Who is on which ticket, on this node and (as last heard) on the others.
pub struct Hub {
    state: Mutex<State>,
    io: Io,
    db: sea_orm::DatabaseConnection,
    config: PresenceConfig,
    /// This process, as other nodes know it.
    node: Arc<str>,
    relay: Option<relay::Relay>,
}

#[derive(Default)]
struct State {
    tickets: HashMap<Arc<str>, TicketState>,
    sockets: HashMap<Sid, SocketState>,
    /// Tickets whose people may have changed since the last batch.
    dirty: HashSet<Arc<str>>,
    /// This node's entries (ticket, connection) to publish to the others.
    unpublished: HashSet<(Arc<str>, Arc<str>)>,
    /// Another node asked for everything.
    republish_all: bool,
}

#[derive(Default)]
struct TicketState {
    requester: Requester,
    /// By (node, connection).
    entries: HashMap<(Arc<str>, Arc<str>), Entry>,
    /// What each audience was last sent: every later change is sent relative to it.
    sent: [View; 2],
}

/// A ticket's requester as this node last read or heard it (ticket events keep it current).
#[derive(Default, Clone, PartialEq, Eq)]
enum Requester {
    #[default]
    Unknown,
    Loading,
    Known(Option<String>),
}

struct Entry {
    user_id: Arc<str>,
    name: Arc<str>,
    who: Who,
    activity: Activity,
    expires: Instant,
    /// When public and internal typing stop unless confirmed.
    typing: [Option<Instant>; 2],
}

enum Who {
    /// One of this node's sockets: its role is read as it is now.
    Local(Arc<Conn>, Sid),
    /// Another node's connection, with the role it last announced (or a role change since).
    Remote(Role),
}

impl Entry {
    fn role(&self) -> Role {
        match &self.who {
            Who::Local(conn, _) => conn.role(),
            Who::Remote(role) => *role,
        }
    }

    fn part(&self, now: Instant) -> Part<'_> {
        let typing = self.typing.map(|t| t.is_some_and(|t| t > now));
        Part { user_id: &self.user_id, name: &self.name, role: self.role(), activity: self.activity, typing }
    }
}

struct SocketState {
    /// The connection as other nodes know it.
    key: Arc<str>,
    /// The tickets it has entries on.
    tickets: HashSet<Arc<str>>,
    /// The tickets it was sent a snapshot of, and for which audience: diffs follow a snapshot.
    seen: HashMap<Arc<str>, Audience>,
    /// Whether it was sent the ticket list's `presence.list`.
    list_seen: bool,
    /// Messages it may still send now (refilled over time).
    allowance: f64,
    refilled: Instant,
}

impl SocketState {
    fn new(sid: Sid, config: &PresenceConfig) -> Self {
        Self {
            key: sid.to_string().into(),
            tickets: HashSet::new(),
            seen: HashMap::new(),
            list_seen: false,
            allowance: f64::from(config.updates_burst),
            refilled: Instant::now(),
        }
    }
}

/// What a client asks for.
#[derive(Clone, Copy)]
enum Change {
    Presence(Activity),
    Typing(Typing, bool),
    Leave,
}

#[derive(Deserialize)]
struct PresenceRequest {
    ticket_id: String,
    state: String,
}

#[derive(Deserialize)]
struct TypingRequest {
    ticket_id: String,
    kind: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct LeaveRequest {
    /// Every ticket when absent.
    ticket_id: Option<String>,
}

/// Why a request was refused (the ack's `error`).
type Refusal = &'static str;

/// A local socket of either adapter, as the hub uses it.
trait Target: Send + Sync {
    fn sid(&self) -> Sid;
    /// False from the moment it starts closing: nothing is kept for it after that.
    fn connected(&self) -> bool;
    fn conn(&self) -> Option<Arc<Conn>>;
    fn send(&self, event: &str, payload: &RawValue) -> bool;
    fn in_room(&self, room: &str) -> bool;
}

impl<A: Adapter> Target for SocketRef<A> {
    fn sid(&self) -> Sid {
        self.id
    }
    fn connected(&self) -> bool {
        socketioxide::socket::Socket::connected(self)
    }
    fn conn(&self) -> Option<Arc<Conn>> {
        self.extensions.get::<Arc<Conn>>()
    }
    fn send(&self, event: &str, payload: &RawValue) -> bool {
        self.emit(event, payload).is_ok()
    }
    fn in_room(&self, room: &str) -> bool {
        self.rooms().iter().any(|r| r == room)
    }
}

fn local_sockets<A: Adapter>(io: &SocketIo<A>, room: &str) -> Vec<Box<dyn Target>> {
    io.to(room.to_string()).sockets().into_iter().map(|s| Box::new(s) as Box<dyn Target>).collect()
}

fn ticket_of_room(room: &str) -> Option<&str> {
    room.strip_prefix("ticket:")
}

/// Rooms' snapshots a socket is remembered to have, at most: it may be in 200 rooms.
const MAX_SEEN: usize = 256;

impl Requester {
    /// The ticket as the policy judges it, when known.
    fn subject(&self) -> Option<Subject> {
        match self {
            Requester::Known(r) => Some(Subject::Ticket { requester_id: r.clone() }),
            _ => None,
        }
    }
}

/// Which view of `ticket` (`None`: its requester is not known here yet) the socket of `conn`
/// gets now. `None` when it gets none, or cannot be told yet.
fn audience_of(conn: &Conn, ticket: Option<&Subject>) -> Option<Audience> {
    match ticket {
        Some(ticket) => presence_audience(&conn.viewer(), ticket),
        None if conn.role().is_staff() => Some(Audience::Staff),
        None => None,
    }
}

/// Sends `s` the snapshot of `view` unless it is empty: a client that has just entered a ticket's
/// room starts from nobody, so an empty snapshot would say nothing (and every join of a quiet
/// ticket would cost a message). True when the socket now knows the view.
fn snapshot_to<P: std::ops::Deref<Target = RawValue>>(s: &dyn Target, view: &View, make: impl FnOnce() -> P) -> bool {
    view.is_empty() || s.send("presence.snapshot", &make())
}

/// Sends a staff socket of the ticket list the staff view of every ticket someone is on, unless
/// nobody is on any. True when the socket now knows them.
fn list_to(s: &dyn Target, tickets: &HashMap<Arc<str>, TicketState>) -> bool {
    let staff = slot(Audience::Staff);
    if tickets.values().all(|t| t.sent[staff].people.is_empty()) {
        return true;
    }
    s.send("presence.list", &view::list(tickets.iter().map(|(id, t)| (id, &t.sent[staff]))))
}

/// A payload made once per batch, when the first socket needs it.
fn cached(cell: &OnceCell<Box<RawValue>>, make: impl FnOnce() -> Box<RawValue>) -> &RawValue {
    cell.get_or_init(make)
}

impl Hub {
    /// Starts the batching task and, with Redis, the exchange with other nodes. Both end when
    /// the hub is dropped.
    pub async fn start(
        io: Io,
        db: sea_orm::DatabaseConnection,
        config: PresenceConfig,
        redis: Option<(&str, &str)>,
    ) -> anyhow::Result<Arc<Self>> {
        let relay = match redis {
            Some((url, prefix)) => Some(relay::Relay::connect(url, prefix).await?),
            None => None,
        };
        let hub = Arc::new(Self {
            state: Mutex::new(State::default()),
            io,
            db,
            node: uuid::Uuid::new_v4().to_string().into(),
            relay: relay.clone(),
            config,
        });
        let batching = Arc::downgrade(&hub);
        let every = Duration::from_millis(hub.config.batch_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(hub) = batching.upgrade() else { return };
                let batches = hub.flush();
                if let Some(relay) = &hub.relay {
                    for batch in &batches {
                        relay.publish(batch).await;
                    }
                }
            }
        });
        if let Some(relay) = relay {
            let following = Arc::downgrade(&hub);
            let asking = following.clone();
            let node = hub.node.to_string();
            tokio::spawn(async move {
                let ask = relay.clone();
                relay
                    .follow(
                        // Whatever was missed while unsubscribed comes back at once.
                        || {
                            if asking.upgrade().is_some() {
                                let (ask, node) = (ask.clone(), node.clone());
                                tokio::spawn(async move {
                                    ask.publish(&relay::Batch { node, sync: true, ..Default::default() }).await
                                });
                            }
                        },
                        |batch| match following.upgrade() {
                            Some(hub) => {
                                hub.apply_remote(batch);
                                true
                            }
                            None => false,
                        },
                    )
                    .await;
            });
        }
        Ok(hub)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the socket may send one more presence or typing message now.
    fn admit(&self, s: &dyn Target) -> bool {
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
    async fn requester_of(&self, ticket_id: &str) -> Result<Option<Option<String>>, Refusal> {
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
    fn load_requester(self: &Arc<Self>, ticket_id: Arc<str>) {
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

    /// Applies one client request for the socket `s` of `conn`, named `name`.
    async fn apply(
        &self,
        s: &dyn Target,
        conn: &Arc<Conn>,
        name: &Arc<str>,
        ticket_id: &str,
        change: Change,
    ) -> Result<(), Refusal> {
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
            return Ok(());
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
            return Ok(());
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
                None => return Ok(()),
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
            socket.seen.insert(tid, audience);
        }
        Ok(())
    }

    /// Sends a socket that just entered `joined` the presence there: a snapshot per ticket room,
    /// the list for `tickets` (staff).
    async fn joined(&self, s: &dyn Target, joined: &[String]) {
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

    /// A socket closed: its entries end now, here and on the other nodes.
    pub fn socket_gone(&self, sid: Sid) {
        let mut st = self.lock();
        let State { tickets, sockets, dirty, unpublished, .. } = &mut *st;
        let Some(socket) = sockets.remove(&sid) else { return };
        let key = (self.node.clone(), socket.key.clone());
        for tid in socket.tickets {
            if let Some(t) = tickets.get_mut(&tid) {
                t.entries.remove(&key);
                dirty.insert(tid.clone());
                unpublished.insert((tid, socket.key.clone()));
            }
        }
    }

    fn drop_ticket(&self, st: &mut State, ticket_id: &str) {
        let Some(t) = st.tickets.remove(ticket_id) else { return };
        for (_, e) in t.entries {
            if let Who::Local(_, sid) = e.who
                && let Some(socket) = st.sockets.get_mut(&sid)
            {
                socket.tickets.remove(ticket_id);
            }
        }
    }

    /// Keeps presence in step with the entities it depends on, as each event is emitted (every
    /// node emits every event): a ticket's new requester, a ticket gone, a user's new role.
    pub fn on_event(&self, ev: &event::Model) {
        let mut st = self.lock();
        match (ev.kind.as_str(), ev.action.as_str()) {
            ("ticket", "deleted") => self.drop_ticket(&mut st, &ev.entity_id),
            ("ticket", _) => {
                let State { tickets, sockets, dirty, unpublished, .. } = &mut *st;
                let Some(tid) = tickets.get_key_value(ev.entity_id.as_str()).map(|(k, _)| k.clone()) else { return };
                let Some(t) = tickets.get_mut(&tid) else { return };
                let tid = &tid;
                let requester = ev.data.get("requester_id").and_then(Value::as_str).map(str::to_string);
                // A customer who is no longer the requester is no longer on it.
                t.entries.retain(|(node, conn), e| {
                    if e.role().is_staff() || requester.as_deref() == Some(&*e.user_id) {
                        return true;
                    }
                    if let Who::Local(_, sid) = e.who {
                        if let Some(socket) = sockets.get_mut(&sid) {
                            socket.tickets.remove(tid);
                        }
                        if *node == self.node {
                            unpublished.insert((tid.clone(), conn.clone()));
                        }
                    }
                    false
                });
                t.requester = Requester::Known(requester);
                dirty.insert(tid.clone());
            }
            ("user", "updated") => {
                let role = ev.data.get("role").and_then(Value::as_str).and_then(Role::parse);
                let State { tickets, dirty, .. } = &mut *st;
                for (tid, t) in tickets.iter_mut() {
                    let mut touched = false;
                    for e in t.entries.values_mut().filter(|e| *e.user_id == *ev.entity_id) {
                        if let (Who::Remote(r), Some(role)) = (&mut e.who, role) {
                            *r = role;
                        }
                        touched = true;
                    }
                    if touched {
                        dirty.insert(tid.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// Another node's batch.
    fn apply_remote(self: &Arc<Self>, batch: relay::Batch) {
        if *batch.node == *self.node {
            return;
        }
        let node: Arc<str> = batch.node.into();
        let now = Instant::now();
        let mut st = self.lock();
        if batch.sync {
            st.republish_all = true;
        }
        let cap =
            |ms: u64| now + Duration::from_millis(ms.min(self.config.expiry_ms.max(self.config.typing_expiry_ms)));
        for up in batch.up {
            let (Some(role), Some(activity)) = (Role::parse(&up.r), Activity::parse(&up.s)) else { continue };
            if uuid::Uuid::parse_str(&up.t).is_err() {
                continue;
            }
            let tid: Arc<str> = match st.tickets.get_key_value(up.t.as_str()) {
                Some((k, _)) => k.clone(),
                None => up.t.as_str().into(),
            };
            let t = st.tickets.entry(tid.clone()).or_default();
            let typing = up.ty.map(|ms| (ms > 0).then(|| cap(ms)));
            t.entries.insert(
                (node.clone(), up.c.into()),
                Entry {
                    user_id: up.u.into(),
                    name: up.n.into(),
                    who: Who::Remote(role),
                    activity,
                    expires: cap(up.ttl),
                    typing,
                },
            );
            st.dirty.insert(tid);
        }
        for rm in batch.rm {
            if let Some(t) = st.tickets.get_mut(rm.t.as_str())
                && t.entries.remove(&(node.clone(), Arc::<str>::from(rm.c))).is_some()
            {
                st.dirty.insert(rm.t.into());
            }
        }
    }

    /// One batch: drops what expired, sends each changed ticket's changes to this node's
    /// sockets, and returns this node's changes for the others.
    fn flush(self: &Arc<Self>) -> Vec<relay::Batch> {
        let now = Instant::now();
        let mut st = self.lock();
        self.expire(&mut st, now);
        match &self.io {
            Io::Local(io) => self.send_changes(io, &mut st, now),
            Io::Redis(io) => self.send_changes(io, &mut st, now),
        }
        metrics::gauge!("ticketwire_presence_entries")
            .set(st.tickets.values().map(|t| t.entries.len()).sum::<usize>() as f64);
        if self.relay.is_some() {
            self.outgoing(&mut st, now)
        } else {
            st.unpublished.clear();
            Vec::new()
        }
    }

    fn expire(&self, st: &mut State, now: Instant) {
        let State { tickets, sockets, dirty, unpublished, .. } = st;
        for (tid, t) in tickets.iter_mut() {
            let before = t.entries.len();
            t.entries.retain(|(_, conn), e| {
                if e.expires > now {
                    return true;
                }
                if let Who::Local(_, sid) = e.who {
                    if let Some(socket) = sockets.get_mut(&sid) {
                        socket.tickets.remove(tid);
                    }
                    unpublished.insert((tid.clone(), conn.clone()));
                }
                false
            });
            let mut changed = t.entries.len() != before;
            for e in t.entries.values_mut() {
                for slot in e.typing.iter_mut() {
                    if slot.is_some_and(|at| at <= now) {
                        *slot = None;
                        changed = true;
                    }
                }
            }
            if changed {
                dirty.insert(tid.clone());
            }
        }
    }

    fn send_changes<A: Adapter>(self: &Arc<Self>, io: &SocketIo<A>, st: &mut State, now: Instant) {
        let dirty: Vec<Arc<str>> = st.dirty.drain().collect();
        let mut wants_list = Vec::new();
        let State { tickets, sockets, .. } = st;
        for tid in dirty {
            let Some(t) = tickets.get_mut(&tid) else { continue };
            let views =
                [Audience::Staff, Audience::Customer].map(|a| View::of(a, t.entries.values().map(|e| e.part(now))));
            let diffs = [0, 1].map(|i| Diff::between(&t.sent[i], &views[i]));
            // [snapshot, presence.update, typing.update] per audience.
            let payloads: [[OnceCell<Box<RawValue>>; 3]; 2] = Default::default();
            let subject = t.requester.subject();
            let mut done = HashSet::new();
            for s in local_sockets(io, &rooms::ticket(&tid)) {
                let (Some(conn), true) = (s.conn(), s.connected()) else { continue };
                let sid = s.sid();
                done.insert(sid);
                let audience = audience_of(&conn, subject.as_ref());
                if audience.is_none() && t.requester == Requester::Unknown {
                    t.requester = Requester::Loading;
                    self.load_requester(tid.clone());
                }
                let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                let Some(audience) = audience else {
                    socket.seen.remove(&tid);
                    continue;
                };
                let (i, p) = (slot(audience), &payloads[slot(audience)]);
                let sent = if socket.seen.get(&tid) == Some(&audience) {
                    (!diffs[i].people_changed()
                        || s.send("presence.update", cached(&p[1], || view::people_update(&tid, &diffs[i]))))
                        && (!diffs[i].typing_changed()
                            || s.send(
                                "typing.update",
                                cached(&p[2], || view::typing_update(&tid, &diffs[i], &views[i])),
                            ))
                } else {
                    snapshot_to(&*s, &views[i], || cached(&p[0], || view::snapshot(&tid, &views[i])))
                };
                if sent {
                    socket.seen.insert(tid.clone(), audience);
                } else {
                    // A packet it missed: the next change brings a whole snapshot instead.
                    socket.seen.remove(&tid);
                }
            }
            if diffs[0].people_changed() {
                let p = &payloads[0];
                for s in local_sockets(io, "tickets") {
                    let sid = s.sid();
                    if done.contains(&sid) || !s.connected() || !s.conn().is_some_and(|c| c.role().is_staff()) {
                        continue;
                    }
                    let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                    if !socket.list_seen
                        || !s.send("presence.update", cached(&p[1], || view::people_update(&tid, &diffs[0])))
                    {
                        socket.list_seen = false;
                        wants_list.push(sid);
                    }
                }
            }
            drop(diffs);
            t.sent = views;
            if t.entries.is_empty() && t.sent.iter().all(View::is_empty) {
                tickets.remove(&tid);
            }
        }
        // After every ticket's changes: the list already holds them.
        for sid in wants_list {
            if let (Some(s), Some(socket)) = (io.get_socket(sid), sockets.get_mut(&sid)) {
                socket.list_seen = list_to(&s, tickets);
            }
        }
    }

    /// This node's entries that changed, as they are now (or ended), in messages of bounded size.
    fn outgoing(&self, st: &mut State, now: Instant) -> Vec<relay::Batch> {
        let mut wanted: Vec<(Arc<str>, Arc<str>)> = st.unpublished.drain().collect();
        if std::mem::take(&mut st.republish_all) {
            for (tid, t) in &st.tickets {
                for (node, conn) in t.entries.keys() {
                    if *node == self.node {
                        wanted.push((tid.clone(), conn.clone()));
                    }
                }
            }
        }
        let left = |at: Instant| at.saturating_duration_since(now).as_millis() as u64;
        let mut batches: Vec<relay::Batch> = Vec::new();
        for (tid, conn) in wanted {
            if batches.last().is_none_or(|b| b.up.len() + b.rm.len() >= relay::MAX_PER_MESSAGE) {
                batches.push(relay::Batch { node: self.node.to_string(), ..Default::default() });
            }
            let batch = batches.last_mut().expect("pushed above");
            let entry = st.tickets.get(&tid).and_then(|t| t.entries.get(&(self.node.clone(), conn.clone())));
            match entry {
                Some(e) => batch.up.push(relay::Up {
                    c: conn.to_string(),
                    t: tid.to_string(),
                    u: e.user_id.to_string(),
                    n: e.name.to_string(),
                    r: e.role().as_str().into(),
                    s: e.activity.as_str().into(),
                    ttl: left(e.expires),
                    ty: e.typing.map(|t| t.map_or(0, left)),
                }),
                None => batch.rm.push(relay::Rm { c: conn.to_string(), t: tid.to_string() }),
            }
        }
        batches
    }
}

fn ack_of(result: Result<(), Refusal>) -> Value {
    match result {
        Ok(()) => json!({ "ok": true }),
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
                    Ok(())
                }
            };
            drop(done);
            let _ = ack.send(&ack_of(result));
        }
    });
}

impl Hub {
    fn leave_all(&self, sid: Sid) {
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

    /// After a join (or the rooms of a new connection): the snapshots of what it entered.
    pub async fn entered<A: Adapter>(&self, s: &SocketRef<A>, joined: &[String]) {
        if joined.iter().any(|r| r == "tickets" || ticket_of_room(r).is_some()) {
            self.joined(s, joined).await;
        }
    }
}
