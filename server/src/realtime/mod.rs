//! Socket.IO: connect-time auth, room rules, live emits from the hooks layer, and catch-up from
//! the event log so a client never misses an event, across reconnects, restarts and slow reads.
mod connect;
mod emits;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod fuzz;
mod head;
pub mod presence;
mod replay;
pub mod rooms;

pub use head::detach_request_head;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use std::sync::atomic::AtomicU8;

use emits::Emit;
use socketioxide::{SendError, SocketError, SocketIo, adapter::Adapter};
use tokio::sync::Mutex;

pub use connect::{Gate, register};

use crate::{
    auth::Role,
    domain::notifications::Notification,
    entity::{event, notification},
    hooks::dispatcher::Dispatched,
    policy::{self, Now, Viewer},
};

/// What the server knows about one connected socket (kept in its extensions).
pub struct Conn {
    pub user_id: String,
    /// The user's role as it is now: changed in place when a role change is dispatched, so the
    /// policy judges every later emit by it.
    role: AtomicU8,
    /// Set while live emits to this socket are paused: it is catching up from the log (after a
    /// reconnect, or because it read too slowly and its buffer filled). Cleared by the catch-up
    /// task once it meets the live stream.
    behind: AtomicBool,
    /// The end of this socket's last `join`/`leave`: each waits for the one before, so they take
    /// effect in the order the client sent them (socketioxide runs each handler as its own task).
    last_room_change: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

/// Sockets whose live stream is paused while they catch up (see [`Conn`]): live emits skip this
/// room, so the fast path needs no per-socket lookup.
pub(crate) const BEHIND: &str = "tw:behind";

impl Conn {
    pub fn new(user_id: String, role: Role) -> Self {
        Self {
            user_id,
            role: AtomicU8::new(role as u8),
            behind: AtomicBool::new(false),
            last_room_change: std::sync::Mutex::new(None),
        }
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            r if r == Role::Admin as u8 => Role::Admin,
            r if r == Role::Agent as u8 => Role::Agent,
            _ => Role::Customer,
        }
    }

    fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Release);
    }

    pub fn viewer(&self) -> Viewer<'_> {
        Viewer::new(&self.user_id, self.role())
    }

    /// Takes this socket's place in the order of room changes: called in the handler's
    /// synchronous part (which runs in arrival order), it returns the previous change to wait
    /// for and the sender that marks this one done (on send or drop).
    fn queue_room_change(&self) -> (Option<tokio::sync::oneshot::Receiver<()>>, tokio::sync::oneshot::Sender<()>) {
        let (done, next) = tokio::sync::oneshot::channel();
        let previous = self.last_room_change.lock().unwrap_or_else(|p| p.into_inner()).replace(next);
        (previous, done)
    }
}

/// The Socket.IO server, over the in-process adapter or over Redis (several nodes).
#[derive(Clone)]
pub enum Io {
    Local(SocketIo),
    Redis(SocketIo<socketioxide_redis::RedisAdapter<socketioxide::adapter::Emitter>>),
}

/// The live side of the hooks layer. Cheap to clone.
#[derive(Clone)]
pub struct Realtime(Arc<Inner>);

struct Inner {
    io: Io,
    /// Batches from the dispatcher, emitted in order by one task so the dispatcher's next
    /// transaction overlaps this node's emitting.
    outbox: tokio::sync::mpsc::Sender<Vec<Dispatched>>,
    /// Token expiry per socket, soonest first.
    expiries: std::sync::Mutex<std::collections::BinaryHeap<std::cmp::Reverse<(i64, socketioxide::socket::Sid)>>>,
    /// The newest event emitted live by this node. Held while emitting, and while a catching-up
    /// socket joins the live stream, so replay and live meet with no gap and no duplicate.
    head: Mutex<i64>,
    db: sea_orm::DatabaseConnection,
    /// Who is on which ticket; set once the namespace is installed.
    presence: std::sync::OnceLock<Arc<presence::Hub>>,
}

/// Runs `$body` with `$io` bound to the concrete `SocketIo` of either adapter.
macro_rules! with_io {
    ($self:expr, $io:ident => $body:expr) => {
        match &$self.0.io {
            Io::Local($io) => $body,
            Io::Redis($io) => $body,
        }
    };
}

impl Realtime {
    /// `head` is the dispatcher's cursor at start: everything up to it has been emitted before.
    /// Starts the emitter and the token-expiry reaper; both end when the last handle is dropped
    /// or `stop` fires.
    pub fn new(io: Io, db: sea_orm::DatabaseConnection, head: i64, stop: tokio_util::sync::CancellationToken) -> Self {
        let (outbox, mut inbox) = tokio::sync::mpsc::channel::<Vec<Dispatched>>(64);
        let rt = Self(Arc::new(Inner {
            io,
            outbox,
            expiries: std::sync::Mutex::new(std::collections::BinaryHeap::new()),
            head: Mutex::new(head),
            db,
            presence: std::sync::OnceLock::new(),
        }));
        let emitter = Arc::downgrade(&rt.0);
        // On the server's runtime, like the sockets' writer tasks: each emit wakes one of them,
        // which from another thread would cost a cross-thread wake-up per socket.
        tokio::spawn(async move {
            while let Some(batch) = inbox.recv().await {
                let Some(inner) = emitter.upgrade() else { break };
                Realtime(inner).publish(batch).await;
            }
        });
        let reaper = Arc::downgrade(&rt.0);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return,
                }
                let Some(inner) = reaper.upgrade() else { return };
                Realtime(inner).disconnect_expired();
            }
        });
        rt
    }

    /// Queues a dispatched batch for emitting (in order, by the emitter task).
    pub async fn submit(&self, batch: Vec<Dispatched>) {
        if self.0.outbox.send(batch).await.is_err() {
            tracing::warn!("emitter stopped; clients will catch up from the log");
        }
    }

    /// Emits a dispatched batch to this node's sockets, in event order.
    pub async fn publish(&self, batch: Vec<Dispatched>) {
        let mut head = self.0.head.lock().await;
        self.publish_locked(&mut head, batch);
    }

    /// Disconnects `sid` when its token expires at `exp` (unix seconds).
    pub fn expire_at(&self, sid: socketioxide::socket::Sid, exp: i64) {
        self.0.expiries.lock().expect("not poisoned").push(std::cmp::Reverse((exp, sid)));
    }

    fn disconnect_expired(&self) {
        let now = chrono::Utc::now().timestamp();
        let mut due = Vec::new();
        {
            let mut heap = self.0.expiries.lock().expect("not poisoned");
            while heap.peek().is_some_and(|std::cmp::Reverse((exp, _))| *exp <= now) {
                if let Some(std::cmp::Reverse((_, sid))) = heap.pop() {
                    due.push(sid);
                }
            }
        }
        for sid in due {
            with_io!(self, io => if let Some(s) = io.get_socket(sid) { let _ = s.disconnect(); });
        }
    }

    fn publish_locked(&self, head: &mut i64, batch: Vec<Dispatched>) {
        for d in batch {
            if d.event.id <= *head {
                continue;
            }
            // A role change applies before anything else is judged, this event's emits included.
            with_io!(self, io => self.apply_role_change(io, &d.event));
            let emits = emits::for_event(&d.event, &d.notifications);
            for (i, emit) in emits.iter().enumerate() {
                with_io!(self, io => self.send_live(io, &emits[..i], emit, &d.event));
            }
            if let Some(presence) = self.0.presence.get() {
                presence.emitted();
            }
            let lag = (chrono::Utc::now() - d.event.created_at).to_std().unwrap_or_default();
            metrics::histogram!("ticketwire_event_emit_lag_seconds").record(lag.as_secs_f64());
            with_io!(self, io => self.apply_membership_changes(io, &d));
            if let Some(presence) = self.0.presence.get() {
                presence.on_event(&d.event);
            }
            *head = d.event.id;
        }
    }

    /// Emits what another node dispatched, up to `upto`, reading it from the shared log.
    pub async fn advance_to(&self, upto: i64) -> anyhow::Result<()> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        let mut head = self.0.head.lock().await;
        while *head < upto {
            let events = event::Entity::find()
                .filter(event::Column::Id.gt(*head))
                .filter(event::Column::Id.lte(upto))
                .order_by_asc(event::Column::Id)
                .limit(500)
                .all(&self.0.db)
                .await?;
            let Some(last) = events.last().map(|e| e.id) else {
                *head = upto;
                break;
            };
            let notes: Vec<Notification> = notification::Entity::find()
                .filter(notification::Column::EventId.gt(*head))
                .filter(notification::Column::EventId.lte(last))
                .all(&self.0.db)
                .await?
                .into_iter()
                .map(Notification::from)
                .collect();
            let batch = events
                .into_iter()
                .map(|event| {
                    let notifications = notes.iter().filter(|n| n.event_id == event.id).cloned().collect();
                    Dispatched { event, notifications }
                })
                .collect();
            self.publish_locked(&mut head, batch);
        }
        Ok(())
    }

    /// Sends `emit` to each local socket in its rooms that the policy lets have it, with the
    /// payload it may have. `earlier` are the emits of the same event already sent.
    fn send_live<A: Adapter>(&self, io: &SocketIo<A>, earlier: &[Emit], emit: &Emit, ev: &event::Model) {
        // Sockets catching up replay this event from the log instead.
        let op = io.to(emit.rooms.clone()).except(BEHIND);
        // Local sockets only, one by one: each emit says whether that socket's buffer was full.
        // Other nodes emit to their own sockets from the same log.
        for socket in op.sockets() {
            let Some(conn) = socket.extensions.get::<Arc<Conn>>() else { continue };
            let viewer = conn.viewer();
            let access = policy::of_logged_event(&viewer, ev, Now::AsLeft);
            let Some(payload) = emit.payload_for(&viewer, access) else { continue };
            let sent = socket.emit(emit.event, payload);
            if let Err(SendError::Socket(SocketError::InternalChannelFull)) = sent {
                // socketioxide would drop this packet silently: pause the socket and replay
                // from the log once it reads again.
                metrics::counter!("ticketwire_socket_catch_ups_total", "reason" => "slow_reader").increment(1);
                // It got this event's earlier emits that reach it (a socket that had missed one
                // was already behind and skipped), so the replay starts just after them.
                let rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
                let got = |e: &&Emit| e.reaches(&rooms) && e.payload_for(&viewer, access).is_some();
                let from = match earlier.iter().rev().find(got) {
                    Some(last) => replay::ResumeAt { event_id: ev.id, within: Some(last.event.to_string()) },
                    None => replay::ResumeAt::after(ev.id - 1),
                };
                conn.behind.store(true, Ordering::Release);
                socket.join(BEHIND);
                replay::spawn(self.clone(), socket, conn, from, None);
            }
        }
    }

    /// A user whose role changed is judged by the new role from this event on, on this node's
    /// sockets (every node does the same as it emits the event), and leaves the rooms that
    /// role may not be in.
    fn apply_role_change<A: Adapter>(&self, io: &SocketIo<A>, ev: &event::Model) {
        if ev.kind != "user" || ev.action != "updated" {
            return;
        }
        let role_of = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.get("role")).and_then(|r| r.as_str()).and_then(Role::parse)
        };
        let (Some(new), old) = (role_of(Some(&ev.data)), role_of(ev.previous.as_ref())) else { return };
        if old == Some(new) {
            return;
        }
        for s in io.to(rooms::user(&ev.entity_id)).sockets() {
            let Some(conn) = s.extensions.get::<Arc<Conn>>() else { continue };
            conn.set_role(new);
            let current: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
            let leaving = rooms::no_longer_for(new, &current);
            // The articles room follows the role: drafts for staff, published ones for others.
            if new.is_staff() && current.iter().any(|r| r == rooms::KB_PUBLIC) {
                s.leave(rooms::KB_PUBLIC);
                s.join("kb");
            } else if !new.is_staff() && current.iter().any(|r| r == "kb") {
                s.join(rooms::KB_PUBLIC);
            }
            s.leave(leaving);
            s.join(rooms::of_role(new));
        }
    }

    /// A deactivated user loses their sockets; a ticket's former requester leaves its room.
    fn apply_membership_changes<A: Adapter>(&self, io: &SocketIo<A>, d: &Dispatched) {
        let ev = &d.event;
        match ev.kind.as_str() {
            "user" if ev.action == "updated" => {
                // Deactivated, or a new password that ended the tokens these sockets were opened
                // with (the client reconnects with its fresh token).
                let tokens_ended =
                    ev.previous.as_ref().and_then(|p| p.get("tokens_valid_after")) != ev.data.get("tokens_valid_after");
                if ev.data.get("is_active") == Some(&serde_json::Value::Bool(false)) || tokens_ended {
                    for s in io.to(rooms::user(&ev.entity_id)).sockets() {
                        let _ = s.disconnect();
                    }
                }
            }
            "ticket" => {
                let field = |v: Option<&serde_json::Value>| {
                    v.and_then(|v| v.get("requester_id")).and_then(|v| v.as_str()).map(str::to_string)
                };
                let (old, new) = (field(ev.previous.as_ref()), field(Some(&ev.data)));
                if let Some(old) = old.filter(|o| Some(o) != new.as_ref()) {
                    let room = rooms::ticket(&ev.entity_id);
                    for s in io.to(rooms::user(&old)).sockets() {
                        if !s.extensions.get::<Arc<Conn>>().is_some_and(|c| c.role().is_staff()) {
                            s.leave(room.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Closes the sockets opened with token `jti`, on every node (it was signed out).
    pub async fn disconnect_token(&self, jti: &str) {
        let room = rooms::token(jti);
        let closed = with_io!(self, io => io.to(room.clone()).disconnect().await);
        if let Err(e) = closed {
            tracing::debug!(error = %e, "closing the sockets of {room} failed");
        }
    }

    /// Emits an ad-hoc event (not from the log) to a user's sockets on every node.
    async fn emit_to_user(&self, user_id: &str, event: &str, payload: &serde_json::Value) {
        let room = rooms::user(user_id);
        let sent = with_io!(self, io => io.to(room.clone()).emit(event, payload).await);
        if let Err(e) = sent {
            tracing::debug!(error = %e, "emit to {room} failed");
        }
    }

    /// Starts presence (its batches, and its exchange with other nodes over `redis`: url and
    /// prefix). Once: later calls keep the first.
    pub async fn start_presence(
        &self,
        config: &crate::config::PresenceConfig,
        redis: Option<(&str, &str)>,
    ) -> anyhow::Result<()> {
        if self.0.presence.get().is_none() {
            let hub = presence::Hub::start(self.0.io.clone(), self.0.db.clone(), config.clone(), redis).await?;
            let _ = self.0.presence.set(hub);
        }
        Ok(())
    }

    pub fn presence(&self) -> Option<&Arc<presence::Hub>> {
        self.0.presence.get()
    }

    /// A socket closed: what it announced ends with it.
    pub fn socket_gone(&self, sid: socketioxide::socket::Sid) {
        if let Some(presence) = self.0.presence.get() {
            presence.socket_gone(sid);
        }
    }

    /// Sockets connected to this node.
    pub fn connected(&self) -> usize {
        with_io!(self, io => io.sockets().len())
    }
}

/// Deliveries to the built-in receiver end here: shown to their owner as `webhook`, through the
/// adapter, since the owner may be connected to another node.
impl crate::webhooks::BuiltIn for Realtime {
    fn show_to_owner(&self, owner: String, payload: serde_json::Value) -> futures::future::BoxFuture<'static, ()> {
        let realtime = self.clone();
        Box::pin(async move { realtime.emit_to_user(&owner, "webhook", &payload).await })
    }
}

/// Each committed batch, from the dispatcher (on the pipeline's runtime) to the emitter task.
impl crate::hooks::dispatcher::Sink for Realtime {
    fn take(&self, batch: Vec<Dispatched>) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.submit(batch))
    }
}
