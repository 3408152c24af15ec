//! `bench-peer`: a bare socketioxide 0.18 + axum 0.8 server doing the fan-out job with no database
//! and no hooks, as the reference for scenarios 1 and 2.
//!
//! Env: `PEER_JWT_SECRET` (HS256), `PEER_LISTEN` (default `127.0.0.1:0`). Socket.IO auth is
//! `{"token": "<jwt>", "rooms": ["tickets"]}`. `POST /broadcast` emits a ~1 KB ticket JSON to the
//! room `tickets` and answers `{"id","version"}` once the emit returned.
use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use axum::{Json, Router, extract::State, routing::post};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    extract::{SocketRef, TryData},
    handler::ConnectHandler,
};

const TICKET_ID: &str = "00000000-0000-7000-8000-000000000000";

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

#[derive(Clone)]
struct Peer {
    io: SocketIo,
    version: Arc<AtomicI64>,
}

fn ticket(version: i64) -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    json!({
        "id": TICKET_ID, "subject": "Printer on fire, third floor", "description": "x".repeat(560),
        "status": "open", "priority": "normal", "category": "general", "tags": ["bench"], "source": "api",
        "external_id": null, "requester_id": "00000000-0000-7000-8000-000000000001",
        "requester_email": "requester@example.com", "assignee_id": null, "metadata": {}, "classification": null,
        "created_at": now.to_string(), "updated_at": now.to_string(), "resolved_at": null, "version": version,
    })
}

async fn broadcast(State(peer): State<Peer>) -> Json<Value> {
    let version = peer.version.fetch_add(1, Ordering::Relaxed) + 1;
    let payload = json!({ "event_id": version, "action": "updated", "data": ticket(version) });
    let _ = peer.io.to("tickets").emit("ticket.update", &payload).await;
    Json(json!({ "id": TICKET_ID, "version": version }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secret = std::env::var("PEER_JWT_SECRET").map_err(|_| anyhow::anyhow!("PEER_JWT_SECRET is required"))?;
    let listen = std::env::var("PEER_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let key = Arc::new(DecodingKey::from_secret(secret.as_bytes()));
    let validation = Arc::new(Validation::new(Algorithm::HS256));

    // Same engine settings as ticketwire (server/src/lib.rs).
    let (layer, io) =
        SocketIo::builder().max_buffer_size(1024).ping_interval(std::time::Duration::from_secs(20)).build_layer();
    let middleware = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let (key, validation) = (key.clone(), validation.clone());
        async move {
            let auth = auth.map_err(|_| Refused)?;
            let token = auth.get("token").and_then(Value::as_str).ok_or(Refused)?;
            jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|_| Refused)?;
            let rooms: Vec<String> = auth
                .get("rooms")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).take(200).map(str::to_string).collect())
                .unwrap_or_default();
            s.join(rooms);
            Ok::<(), Refused>(())
        }
    };
    io.ns("/", (async |_s: SocketRef| {}).with(middleware));

    let peer = Peer { io, version: Arc::new(AtomicI64::new(0)) };
    let app = Router::new().route("/broadcast", post(broadcast)).with_state(peer).layer(layer);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bench-peer listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
