//! The built-in receiver: lets a browser watch its own webhooks arrive (relative URL round trip).
use axum::http::HeaderMap;
use sea_orm::EntityTrait;
use serde_json::Value;

use super::signing;
use crate::{
    entity::webhook_endpoint,
    error::{Error, Result},
    state::AppState,
};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| Error::Unauthorized(format!("missing {name} header")))
}

/// Verifies the signature against the owner's secret(s), then re-emits the payload to the
/// owner's Socket.IO room as `webhook`.
pub async fn receive(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    let id = header(headers, "webhook-id")?;
    let ts = header(headers, "webhook-timestamp")?;
    let sig = header(headers, "webhook-signature")?;
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| Error::bad_request(format!("malformed JSON: {e}")))?;
    let owner = payload
        .pointer("/notification/user_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::validation("notification.user_id", "is required"))?;
    let bad = || Error::Unauthorized("invalid webhook signature".into());
    let endpoint = webhook_endpoint::Entity::find_by_id(owner.to_string()).one(&state.db).await?.ok_or_else(bad)?;
    let previous = endpoint
        .previous_secret
        .as_deref()
        .filter(|_| endpoint.previous_secret_expires_at.is_some_and(|t| t > chrono::Utc::now()));
    let valid = std::iter::once(endpoint.secret.as_str())
        .chain(previous)
        .any(|secret| signing::verify(secret, id, ts, body, sig));
    if !valid {
        return Err(bad());
    }
    // Through the adapter: the owner may be connected to another node.
    state.realtime.emit_to_user(owner, "webhook", &payload).await;
    Ok(())
}
