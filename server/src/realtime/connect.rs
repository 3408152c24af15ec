//! Connect-time authentication and the `join` / `leave` handlers.
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{AckSender, SocketRef, TryData},
    handler::ConnectHandler,
};
use socketioxide_core::adapter::DefinedAdapter;

use super::{Conn, replay, rooms};
use crate::{
    auth::{JwtKeys, Verifier, session_from_token},
    config::Config,
    domain::Store,
};

/// What the connect handler and the room handlers work with.
#[derive(Clone)]
pub struct Gate {
    pub realtime: super::Realtime,
    /// The database (rooms are checked against it) and the signed-in users it remembers.
    pub store: Store,
    pub keys: Arc<JwtKeys>,
    pub config: Arc<Config>,
}

impl Gate {
    fn verifier(&self) -> Verifier<'_> {
        Verifier { keys: &self.keys, db: &self.store.db, signed_in: self.store.hooks.signed_in() }
    }
}

/// Most rooms one socket may be in (its own rooms included).
const MAX_ROOMS_PER_SOCKET: usize = 200;

/// What a client sends as `auth` when it connects.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ConnectAuth {
    token: Option<String>,
    #[serde(default)]
    rooms: Vec<String>,
    last_event_id: Option<i64>,
    /// The name of the last emit received of event `last_event_id` (`"ticket.update"`, say), for
    /// a client that may have dropped between two emits of one event.
    last_event: Option<String>,
}

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A reconnecting client's catch-up, started once the connect packet is out.
#[derive(Clone)]
struct PendingCatchUp {
    from: replay::ResumeAt,
    rooms: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RoomRequest {
    pub(super) room: String,
}

/// Installs the default namespace over the in-process adapter, or over Redis (where the
/// adapter's initialisation must be awaited).
pub async fn register(io: &super::Io, gate: Gate) -> anyhow::Result<()> {
    let redis = gate.config.redis_url.as_deref().map(|url| (url, gate.config.redis_prefix.as_str()));
    gate.realtime.start_presence(&gate.config.presence, redis).await?;
    match io {
        super::Io::Local(io) => install(io, gate),
        super::Io::Redis(io) => install(io, gate).await.map_err(|e| anyhow::anyhow!("Socket.IO Redis adapter: {e}"))?,
    }
    Ok(())
}

fn install<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, gate: Gate) -> A::InitRes {
    let for_middleware = gate.clone();
    let middleware = move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
        let gate = for_middleware.clone();
        async move { authenticate(gate, s, auth.ok()).await }
    };
    let handler = move |s: SocketRef<A>| {
        let gate = gate.clone();
        async move { on_connected(gate, s) }
    };
    io.ns("/", handler.with(middleware))
}

/// Runs before the connect packet is sent: refuses bad tokens, and registers the event handlers
/// here rather than in the connect handler, which socketioxide runs only after the client may
/// already have spoken (its first `join` would be lost).
async fn authenticate<A: Adapter>(gate: Gate, s: SocketRef<A>, auth: Option<Value>) -> Result<(), Refused> {
    // A malformed field is the client's bug, not a bad credential: say so.
    let auth: ConnectAuth = match auth {
        Some(v) => serde_json::from_value(v).map_err(|_| Refused("invalid_auth"))?,
        None => ConnectAuth::default(),
    };
    let token = auth.token.as_deref().ok_or(Refused("unauthorized"))?;
    let session = session_from_token(gate.verifier(), token).await.map_err(|_| Refused("unauthorized"))?;
    let (user, claims) = (session.user, session.claims);
    // A cap per user and node, so one account cannot exhaust the server's connections.
    let open = with_sockets_of(&s, &user.user.id);
    if open >= gate.config.max_sockets_per_user {
        return Err(Refused("too_many_connections"));
    }
    let conn = Arc::new(Conn::new(user.user.id.clone(), user.role));
    s.extensions.insert(conn.clone());

    let own_rooms = [rooms::user(&conn.user_id), rooms::of_role(conn.role()).to_string()];
    let mut permitted = Vec::new();
    for room in auth.rooms.iter().take(MAX_ROOMS_PER_SOCKET) {
        if let Ok(actual) = rooms::resolve(&gate.store.db, &conn, room).await {
            permitted.extend(actual);
        }
    }
    s.join(own_rooms[1].clone());
    // Signing out ends this token's sockets on every node, through this room.
    s.join(rooms::token(&claims.jti));
    match auth.last_event_id {
        Some(from) if from >= 0 => {
            // Rooms are entered only when the replay meets the live stream.
            conn.behind.store(true, std::sync::atomic::Ordering::Release);
            s.join(super::BEHIND);
            permitted.push(own_rooms[0].clone());
            let from = replay::ResumeAt { event_id: from, within: auth.last_event };
            s.extensions.insert(PendingCatchUp { from, rooms: permitted });
        }
        _ => {
            s.join(own_rooms[0].clone());
            s.join(permitted);
        }
    }

    let realtime = gate.realtime.clone();
    s.on_disconnect(move |s: SocketRef<A>| {
        realtime.socket_gone(s.id);
        async { metrics::gauge!("ticketwire_sockets_connected").decrement(1.0) }
    });
    // A socket does not outlive its token: one reaper for all sockets, not a timer task each.
    gate.realtime.expire_at(s.id, claims.exp);
    if let Some(presence) = gate.realtime.presence() {
        super::presence::register_handlers(presence, &s, conn.clone(), user.user.name.as_str().into());
    }
    register_handlers(&gate, &s, conn);
    Ok(())
}

/// `join` and `leave` answer `{ok: true}` or `{ok: false, error}`, and take effect in the order
/// the client sent them.
fn register_handlers<A: Adapter>(gate: &Gate, s: &SocketRef<A>, conn: Arc<Conn>) {
    let (st, c) = (gate.clone(), conn.clone());
    s.on("join", move |s: SocketRef<A>, TryData(req): TryData<RoomRequest>, ack: AckSender<A>| {
        let (gate, conn) = (st.clone(), c.clone());
        let (previous, done) = conn.queue_room_change();
        async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let mut joined = Vec::new();
            let answer = match req {
                Err(_) => json!({ "ok": false, "error": "unknown_room" }),
                Ok(_) if s.rooms().len() >= MAX_ROOMS_PER_SOCKET => json!({ "ok": false, "error": "too_many_rooms" }),
                Ok(req) => match rooms::resolve(&gate.store.db, &conn, &req.room).await {
                    Ok(actual) => {
                        s.join(actual.clone());
                        joined = actual;
                        json!({ "ok": true })
                    }
                    Err(e) => json!({ "ok": false, "error": e.as_str() }),
                },
            };
            drop(done);
            let _ = ack.send(&answer);
            if let Some(presence) = gate.realtime.presence() {
                presence.entered(&s, &joined).await;
            }
        }
    });
    s.on("leave", move |s: SocketRef<A>, TryData(req): TryData<RoomRequest>, ack: AckSender<A>| {
        let conn = conn.clone();
        let (previous, done) = conn.queue_room_change();
        async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let answer =
                match req.map_err(|_| rooms::JoinError::UnknownRoom).and_then(|r| rooms::leave_names(&conn, &r.room)) {
                    Ok(names) => {
                        s.leave(names);
                        json!({ "ok": true })
                    }
                    Err(e) => json!({ "ok": false, "error": e.as_str() }),
                };
            drop(done);
            let _ = ack.send(&answer);
        }
    });
}

fn on_connected<A: Adapter>(gate: Gate, s: SocketRef<A>) {
    metrics::gauge!("ticketwire_sockets_connected").increment(1.0);
    if let Some(presence) = gate.realtime.presence().cloned() {
        let (s, rooms) = (s.clone(), s.rooms().iter().map(|r| r.to_string()).collect::<Vec<_>>());
        tokio::spawn(async move { presence.entered(&s, &rooms).await });
    }
    if let (Some(pending), Some(conn)) = (s.extensions.remove::<PendingCatchUp>(), s.extensions.get::<Arc<Conn>>()) {
        metrics::counter!("ticketwire_socket_catch_ups_total", "reason" => "reconnect").increment(1);
        let window = gate.config.catch_up.clone();
        replay::spawn_reconnect(gate.realtime.clone(), s, conn, pending.from, pending.rooms, window);
    }
}

/// How many sockets `user_id` has on this node.
fn with_sockets_of<A: Adapter>(s: &SocketRef<A>, user_id: &str) -> usize {
    s.within(rooms::user(user_id)).sockets().len()
}
