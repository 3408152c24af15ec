//! Socket.IO: connect-time auth, room rules, live emits from the hooks layer, and catch-up from
//! the event log so a client never misses an event, across reconnects, restarts and slow reads.
mod connect;
mod replay;
pub mod rooms;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::Mutex;

pub use connect::register;
use rooms::Target;

use crate::{auth::Role, hooks::dispatcher::Dispatched};

/// What the server knows about one connected socket (kept in its extensions).
pub struct Conn {
    pub user_id: String,
    pub role: Role,
    /// Set while live emits to this socket are paused: it is catching up from the log (after a
    /// reconnect, or because it read too slowly and its buffer filled). Cleared by the catch-up
    /// task once it meets the live stream.
    behind: AtomicBool,
    /// Cancelled when the socket disconnects, ending its timers.
    closed: tokio_util::sync::CancellationToken,
}

impl Conn {
    pub fn new(user_id: String, role: Role) -> Self {
        Self {
            user_id,
            role,
            behind: AtomicBool::new(false),
            closed: tokio_util::sync::CancellationToken::new(),
        }
    }

    pub fn is_behind(&self) -> bool {
        self.behind.load(Ordering::Acquire)
    }
}

/// The live side of the hooks layer. Cheap to clone.
#[derive(Clone)]
pub struct Realtime(Arc<Inner>);

struct Inner {
    io: SocketIo,
    /// The newest event emitted live. Held while emitting, and while a catching-up socket joins
    /// the live stream, so replay and live meet with no gap and no duplicate.
    head: Mutex<i64>,
    db: sea_orm::DatabaseConnection,
}

impl Realtime {
    /// `head` is the dispatcher's cursor at start: everything up to it has been emitted before.
    pub fn new(io: SocketIo, db: sea_orm::DatabaseConnection, head: i64) -> Self {
        Self(Arc::new(Inner {
            io,
            head: Mutex::new(head),
            db,
        }))
    }

    pub fn io(&self) -> &SocketIo {
        &self.0.io
    }

    /// Emits a dispatched batch to its rooms, in event order.
    pub async fn publish(&self, batch: Vec<Dispatched>) {
        let mut head = self.0.head.lock().await;
        for d in batch {
            if d.event.id <= *head {
                continue;
            }
            for target in rooms::targets(&d.event, &d.notifications) {
                self.send_live(&target, d.event.id);
            }
            self.apply_membership_changes(&d);
            *head = d.event.id;
        }
    }

    fn send_live(&self, target: &Target, event_id: i64) {
        let mut op = self.0.io.to(target.rooms.clone());
        if !target.except.is_empty() {
            op = op.except(target.except.clone());
        }
        for socket in op.sockets() {
            let Some(conn) = socket.extensions.get::<Arc<Conn>>() else {
                continue;
            };
            if conn.is_behind() {
                continue; // its catch-up task replays this event from the log
            }
            if let Some(only) = &target.only {
                if !socket.rooms().iter().any(|r| r.as_ref() == only.as_str()) {
                    continue;
                }
            }
            let sent = socket.emit(target.event, &*target.payload);
            if let Err(SendError::Socket(SocketError::InternalChannelFull)) = sent {
                // socketioxide would drop this packet silently: pause the socket and replay
                // from the log once it reads again.
                metrics::counter!("ticketwire_socket_catch_ups_total", "reason" => "slow_reader").increment(1);
                conn.behind.store(true, Ordering::Release);
                replay::spawn(self.clone(), socket, conn, event_id - 1, None);
            }
        }
    }

    /// A deactivated or re-roled user loses their sockets (they reconnect with what they may now
    /// see); a ticket's former requester leaves its room.
    fn apply_membership_changes(&self, d: &Dispatched) {
        let ev = &d.event;
        match ev.kind.as_str() {
            "user" if ev.action == "updated" => {
                let prev = ev.previous.as_ref();
                let changed = |k: &str| prev.and_then(|p| p.get(k)) != ev.data.get(k);
                if changed("is_active") || changed("role") {
                    self.disconnect_user(&ev.entity_id);
                }
            }
            "ticket" => {
                let field = |v: Option<&serde_json::Value>| v.and_then(|v| v.get("requester_id")).and_then(|v| v.as_str()).map(str::to_string);
                let (old, new) = (field(ev.previous.as_ref()), field(Some(&ev.data)));
                if let Some(old) = old.filter(|o| Some(o) != new.as_ref()) {
                    let room = format!("ticket:{}", ev.entity_id);
                    for s in self.0.io.to(format!("user:{old}")).sockets() {
                        if !s.extensions.get::<Arc<Conn>>().is_some_and(|c| c.role.is_staff()) {
                            s.leave(room.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Closes every socket of `user_id` on this node.
    pub fn disconnect_user(&self, user_id: &str) {
        for s in self.0.io.to(format!("user:{user_id}")).sockets() {
            let _ = s.disconnect();
        }
    }

    /// Sockets connected to this node.
    pub fn connected(&self) -> usize {
        self.0.io.sockets().len()
    }
}
