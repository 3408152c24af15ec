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
mod batch;
mod relay;
mod remote;
mod requests;
mod target;
mod view;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use socketioxide::{adapter::Adapter, extract::SocketRef, socket::Sid};

use super::{Conn, Io};
use crate::{
    auth::Role,
    config::PresenceConfig,
    policy::{
        Subject,
        presence::{Activity, Audience, presence_audience},
    },
};
pub use requests::register_handlers;
use target::ticket_of_room;
use view::{Part, View};

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
    /// When this node last emitted a live event, in microseconds since `started`: a batch's
    /// messages give way to the writes of a fan-out in progress (`PresenceConfig::give_way_ms`).
    last_emit_us: AtomicU64,
    started: Instant,
    /// HTTP writes this node is answering: each may end in a live event.
    writes_in_flight: AtomicUsize,
}

/// A write being answered, until dropped (`Hub::write_started`).
pub struct WriteInFlight(Arc<Hub>);

impl Drop for WriteInFlight {
    fn drop(&mut self) {
        self.0.writes_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
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
            last_emit_us: AtomicU64::new(0),
            started: Instant::now(),
            writes_in_flight: AtomicUsize::new(0),
        });
        let batching = Arc::downgrade(&hub);
        let every = Duration::from_millis(hub.config.batch_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(hub) = batching.upgrade() else { return };
                let (batches, outbound) = hub.flush();
                hub.deliver(outbound).await;
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

    /// A live event was just emitted to this node's sockets.
    pub fn emitted(&self) {
        self.last_emit_us.store(self.started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// An HTTP write is being answered, until the guard is dropped.
    pub fn write_started(self: &Arc<Self>) -> WriteInFlight {
        self.writes_in_flight.fetch_add(1, Ordering::Relaxed);
        WriteInFlight(self.clone())
    }

    /// How long presence should still wait for live traffic to pass: zero when this node is
    /// answering no write and emitted no live event in the last `give_way`.
    fn traffic_ahead(&self, give_way: Duration) -> Duration {
        if self.writes_in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::from_millis(1);
        }
        let at = Duration::from_micros(self.last_emit_us.load(Ordering::Relaxed));
        give_way.saturating_sub(self.started.elapsed().saturating_sub(at))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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

    /// After a join (or the rooms of a new connection): the snapshots of what it entered.
    pub async fn entered<A: Adapter>(&self, s: &SocketRef<A>, joined: &[String]) {
        if joined.iter().any(|r| r == "tickets" || ticket_of_room(r).is_some()) {
            self.joined(s, joined).await;
        }
    }
}
