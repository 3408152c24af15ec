//! Webhook deliveries planned with the notifications they carry: written by the dispatcher in
//! the same transaction, handed to the webhook worker after commit.
use std::collections::HashSet;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::dispatcher::Dispatched;
use crate::{
    auth::Role,
    domain::{
        self,
        notifications::{Notification, notification_payload},
    },
    entity::{event, user, webhook_delivery, webhook_endpoint},
    error::Result,
    policy::{self, Viewer},
    webhooks::delivery_id,
};

/// The delivery of each notification whose recipient has an enabled endpoint, for a batch of
/// dispatched events. The dispatcher stamps them ([`stamp_queued`]) and writes them in the
/// transaction that stores the notifications, so a delivery exists if and only if its
/// notification does.
pub async fn plan(db: &impl ConnectionTrait, batch: &[Dispatched]) -> Result<Vec<webhook_delivery::ActiveModel>> {
    let mut users: Vec<&str> = batch.iter().flat_map(|d| &d.notifications).map(|n| n.user_id.as_str()).collect();
    if users.is_empty() {
        return Ok(Vec::new());
    }
    users.sort_unstable();
    users.dedup();
    let mut subscribed = HashSet::new();
    for chunk in users.chunks(500) {
        let ids: Vec<String> = webhook_endpoint::Entity::find()
            .select_only()
            .column(webhook_endpoint::Column::UserId)
            .filter(webhook_endpoint::Column::UserId.is_in(chunk.iter().copied()))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .into_tuple()
            .all(db)
            .await?;
        subscribed.extend(ids);
    }
    // The body is shaped for its recipient ([`policy::shape`]), so a customer's differs where
    // an integration's data is involved.
    let mut customers = HashSet::new();
    for chunk in subscribed.iter().collect::<Vec<_>>().chunks(500) {
        let ids: Vec<String> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.is_in(chunk.iter().map(|s| s.to_string())))
            .filter(user::Column::Role.eq(Role::Customer.as_str()))
            .into_tuple()
            .all(db)
            .await?;
        customers.extend(ids);
    }
    let rows: Vec<webhook_delivery::ActiveModel> = batch
        .iter()
        .flat_map(|d| d.notifications.iter().map(move |n| (&d.event, n)))
        .filter(|(_, n)| subscribed.contains(&n.user_id))
        .map(|(ev, n)| webhook_delivery::ActiveModel {
            id: Set(delivery_id(ev.id, &n.user_id)),
            user_id: Set(n.user_id.clone()),
            notification_id: Set(n.id.clone()),
            event_id: Set(ev.id),
            payload: Set(body_for(ev, n, customers.contains(&n.user_id)).to_string()),
            status: Set(webhook_delivery::Status::Pending.as_str().into()),
            attempt_count: Set(0),
            last_status_code: Set(None),
            last_error: Set(None),
            ..Default::default()
        })
        .collect();
    Ok(rows)
}

/// What the recipient of `n` gets: exactly what its Socket.IO `notification` carries.
pub fn body_for(ev: &event::Model, n: &Notification, customer: bool) -> serde_json::Value {
    let role = if customer { Role::Customer } else { Role::Agent };
    let data = policy::shape(&Viewer::new(&n.user_id, role), &ev.kind, &ev.data);
    notification_payload(ev, n, &data)
}

/// Marks `rows` as queued now, due at once and leased to this node (to be handed to its worker
/// right after commit). Done as they are written, so the first attempt's lag counts from the
/// commit, not from the planning.
pub fn stamp_queued(rows: &mut [webhook_delivery::ActiveModel], lease: chrono::Duration) {
    let now = domain::now();
    for row in rows {
        row.created_at = Set(now);
        row.updated_at = Set(now);
        row.next_attempt_at = Set(now);
        row.locked_until = Set(Some(now + lease));
    }
}
