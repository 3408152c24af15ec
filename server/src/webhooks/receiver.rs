//! The built-in receiver: a relative webhook URL (`/api/notifications/webhooks/notifications`)
//! sends a user's deliveries back to this server, which checks their signature as any receiver
//! would and shows the payload to its owner live (the `webhook` Socket.IO event), so a browser
//! can watch its own webhooks arrive without running a receiver of its own.
use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::Value;

use super::signing;
use crate::{
    entity::webhook_endpoint,
    error::{Error, Result},
};

/// The path of the built-in receiver: the one relative URL deliveries can reach.
pub const PATH: &str = "/api/notifications/webhooks/notifications";

/// Where a verified delivery to the built-in receiver goes: its owner's live connections. The
/// realtime layer implements it; deliveries reach it as a function call, not an HTTP request.
pub trait BuiltIn: Send + Sync {
    fn show_to_owner(&self, owner: String, payload: Value) -> BoxFuture<'static, ()>;
}

/// A signed delivery as it arrived: its `webhook-*` headers and its body.
pub struct Signed<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// Checks a delivery's signature against its owner's secret(s) and returns the owner and the
/// payload.
pub async fn verify(db: &DatabaseConnection, delivery: Signed<'_>) -> Result<(String, Value)> {
    let payload: Value =
        serde_json::from_slice(delivery.body).map_err(|e| Error::bad_request(format!("malformed JSON: {e}")))?;
    let owner = payload
        .pointer("/notification/user_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::validation("notification.user_id", "is required"))?
        .to_string();
    let bad = || Error::Unauthorized("invalid webhook signature".into());
    let endpoint = webhook_endpoint::Entity::find_by_id(owner.clone()).one(db).await?.ok_or_else(bad)?;
    let previous = endpoint
        .previous_secret
        .as_deref()
        .filter(|_| endpoint.previous_secret_expires_at.is_some_and(|t| t > chrono::Utc::now()));
    let valid = std::iter::once(endpoint.secret.as_str())
        .chain(previous)
        .any(|secret| signing::verify(secret, delivery.id, delivery.timestamp, delivery.body, delivery.signature));
    if !valid {
        return Err(bad());
    }
    Ok((owner, payload))
}
