//! Outbound webhooks: every notification a user receives also goes to their URL, signed per the
//! Standard Webhooks spec, durably queued in the database and retried until it lands.
pub mod endpoints;
pub mod receiver;
mod record;
mod send;
pub mod signing;
pub mod ssrf;
pub mod worker;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TryIntoModel};
use serde_json::json;

use crate::{
    domain::{self, notifications::Notification},
    entity::{event, webhook_delivery, webhook_endpoint},
    error::Result,
};

/// The `webhook-id` of the delivery of event `event_id` to `user_id`. Deterministic, so a
/// re-dispatch could never create a second delivery, and sortable by event.
pub fn delivery_id(event_id: i64, user_id: &str) -> String {
    format!("msg_{event_id:012}_{}", user_id.replace('-', ""))
}

/// The body every receiver gets: exactly what Socket.IO's `notification` event carries.
pub fn payload(ev: &event::Model, n: &Notification) -> serde_json::Value {
    json!({
        "event": "notification.created",
        "event_id": ev.id,
        "notification": n,
        "data": ev.data,
    })
}

/// Queues a delivery for each notification whose recipient has an enabled endpoint. Runs inside
/// the dispatcher's transaction, so a delivery exists if and only if its notification does. The
/// rows come back leased to this node, to be handed to the worker right after commit.
pub async fn enqueue(txn: &impl ConnectionTrait, ev: &event::Model, notes: &[Notification], lease: chrono::Duration) -> Result<Vec<webhook_delivery::Model>> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<&str> = notes.iter().map(|n| n.user_id.as_str()).collect();
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::UserId.is_in(users))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .all(txn)
        .await?;
    let now = domain::now();
    let rows: Vec<webhook_delivery::ActiveModel> = notes
        .iter()
        .filter(|n| endpoints.iter().any(|e| e.user_id == n.user_id))
        .map(|n| webhook_delivery::ActiveModel {
            id: Set(delivery_id(ev.id, &n.user_id)),
            user_id: Set(n.user_id.clone()),
            notification_id: Set(n.id.clone()),
            event_id: Set(ev.id),
            payload: Set(payload(ev, n).to_string()),
            status: Set("pending".into()),
            attempt_count: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(Some(now + lease)),
            last_status_code: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    let queued = rows.iter().cloned().map(TryIntoModel::try_into_model).collect::<Result<Vec<_>, _>>()?;
    domain::insert_in_chunks(txn, rows).await?;
    metrics::counter!("ticketwire_webhook_deliveries_queued_total").increment(queued.len() as u64);
    Ok(queued)
}
