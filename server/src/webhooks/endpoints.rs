//! A user's own webhook endpoint and the log of its deliveries.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{signing, ssrf, worker::Webhooks};
use crate::{
    auth::AuthUser,
    domain::{self, Action, Change, Kind, Page, Tx},
    entity::{
        webhook_attempt,
        webhook_delivery::{self, Status},
        webhook_endpoint,
    },
    error::{Error, Result},
};

/// How long a rotated-out secret still signs deliveries.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    pub webhook_url: String,
    /// Shown to its owner only. Verify with any Standard Webhooks library.
    pub secret: String,
    /// The previous secret, still valid (and still signed with) until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    pub max_per_second: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for Endpoint {
    fn from(m: webhook_endpoint::Model) -> Self {
        let overlap = m.previous_secret_expires_at.filter(|t| *t > Utc::now());
        Self {
            webhook_url: m.url,
            secret: m.secret,
            previous_secret: overlap.and(m.previous_secret),
            previous_secret_expires_at: overlap,
            enabled: m.enabled,
            disabled_reason: m.disabled_reason,
            max_per_second: m.max_per_second,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// An http(s) URL, or a path starting with `/` for this server's own router.
    pub webhook_url: String,
    /// Deliveries per second this endpoint accepts; more wait their turn.
    pub max_per_second: Option<i32>,
}

/// Checks a URL for saving: relative paths stay in-process; absolute ones pass the SSRF guard.
async fn check(webhooks: &Webhooks, raw: &str) -> Result<String> {
    let raw = raw.trim();
    if raw.starts_with('/') {
        if raw.starts_with("//") || raw.contains('\\') || raw.len() > 2000 {
            return Err(Error::validation(
                "webhook_url",
                "a relative URL must be a plain path such as /api/notifications/webhooks/notifications",
            ));
        }
        return Ok(raw.to_string());
    }
    if raw.len() > 2000 {
        return Err(Error::validation("webhook_url", "must be at most 2000 characters"));
    }
    ssrf::check_url(raw, &webhooks.config().allow_cidrs)
        .await
        .map(|u| u.to_string())
        .map_err(|reason| Error::validation("webhook_url", reason))
}

pub async fn get(webhooks: &Webhooks, me: &AuthUser) -> Result<webhook_endpoint::Model> {
    webhook_endpoint::Entity::find_by_id(me.id().to_string())
        .one(&webhooks.store().db)
        .await?
        .ok_or(Error::NotFound("webhook"))
}

/// Sets the URL (and re-enables a disabled endpoint). The secret is made on first use only.
pub async fn put(webhooks: &Webhooks, me: &AuthUser, input: EndpointInput) -> Result<Endpoint> {
    let url = check(webhooks, &input.webhook_url).await?;
    if input.max_per_second.is_some_and(|r| !(1..=10_000).contains(&r)) {
        return Err(Error::validation("max_per_second", "must be between 1 and 10000"));
    }
    let now = domain::now();
    let existing = webhook_endpoint::Entity::find_by_id(me.id().to_string()).one(&webhooks.store().db).await?;
    let model = match existing {
        Some(e) => {
            let mut am: webhook_endpoint::ActiveModel = e.into();
            am.url = Set(url);
            am.max_per_second = Set(input.max_per_second);
            am.enabled = Set(true);
            am.failing_since = Set(None);
            am.disabled_reason = Set(None);
            am.updated_at = Set(now);
            am.update(&webhooks.store().db).await?
        }
        None => {
            webhook_endpoint::ActiveModel {
                user_id: Set(me.id().to_string()),
                url: Set(url),
                secret: Set(signing::new_secret()),
                previous_secret: Set(None),
                previous_secret_expires_at: Set(None),
                enabled: Set(true),
                max_per_second: Set(input.max_per_second),
                failing_since: Set(None),
                disabled_reason: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&webhooks.store().db)
            .await?
        }
    };
    webhooks.forget_endpoint(me.id());
    Ok(model.into())
}

pub async fn delete(webhooks: &Webhooks, me: &AuthUser) -> Result<()> {
    let res = webhook_endpoint::Entity::delete_by_id(me.id().to_string()).exec(&webhooks.store().db).await?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound("webhook"));
    }
    webhooks.forget_endpoint(me.id());
    Ok(())
}

/// A new secret; the old one keeps signing for 24 hours so receivers can switch without loss.
pub async fn rotate_secret(webhooks: &Webhooks, me: &AuthUser) -> Result<Endpoint> {
    let current = get(webhooks, me).await?;
    let now = domain::now();
    let mut am: webhook_endpoint::ActiveModel = current.clone().into();
    am.previous_secret = Set(Some(current.secret));
    am.previous_secret_expires_at = Set(Some(now + Duration::hours(ROTATION_OVERLAP_HOURS)));
    am.secret = Set(signing::new_secret());
    am.updated_at = Set(now);
    Ok(am.update(&webhooks.store().db).await?.into())
}

/// Sends a `webhook_test` notification through the normal pipeline; returns its delivery id.
pub async fn send_test(webhooks: &Webhooks, me: &AuthUser) -> Result<String> {
    let endpoint = get(webhooks, me).await?;
    if !endpoint.enabled {
        return Err(Error::conflict("the webhook is disabled; PUT its URL again to re-enable it"));
    }
    let mut tx = Tx::begin(&webhooks.store().db, &webhooks.store().hooks).await?;
    let data = serde_json::json!({
        "type": "webhook_test",
        "user_id": me.id(),
        "webhook_url": endpoint.url,
        "message": "Test notification for your webhook",
    });
    let event_id = tx
        .record(Change::new(Kind::Webhook, Action::Test, me.id(), &data).owned_by(me.id()).staff_only(true).by(me.id()))
        .await?;
    tx.commit().await?;
    Ok(super::delivery_id(event_id, me.id()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Also the `webhook-id` header: the same on every retry.
    pub id: String,
    pub event_id: i64,
    pub notification_id: String,
    /// pending, succeeded or failed.
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The first 4 KiB of the receiver's answer.
    pub response_body: Option<String>,
}

impl From<webhook_delivery::Model> for Delivery {
    fn from(m: webhook_delivery::Model) -> Self {
        Self {
            next_attempt_at: (m.status == Status::Pending.as_str()).then_some(m.next_attempt_at),
            id: m.id,
            event_id: m.event_id,
            notification_id: m.notification_id,
            status: m.status,
            attempt_count: m.attempt_count,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            created_at: m.created_at,
            updated_at: m.updated_at,
            payload: None,
            attempts: None,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// pending, succeeded or failed.
    pub status: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// The caller's deliveries, newest first.
pub async fn list_deliveries(webhooks: &Webhooks, me: &AuthUser, q: &DeliveryQuery) -> Result<Page<Delivery>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 200"));
    }
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::UserId.eq(me.id()))
        .order_by_desc(webhook_delivery::Column::Id);
    if let Some(status) = q.status.as_deref() {
        let status =
            Status::parse(status).ok_or_else(|| Error::validation("status", "must be pending, succeeded or failed"))?;
        query = query.filter(webhook_delivery::Column::Status.eq(status.as_str()));
    }
    if let Some(cursor) = q.cursor.as_deref().filter(|c| !c.is_empty()) {
        query = query.filter(webhook_delivery::Column::Id.lt(cursor));
    }
    let rows = query.limit(limit + 1).all(&webhooks.store().db).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone(), Delivery::from))
}

async fn own_delivery(webhooks: &Webhooks, me: &AuthUser, id: &str) -> Result<webhook_delivery::Model> {
    webhook_delivery::Entity::find_by_id(id.to_string())
        .filter(webhook_delivery::Column::UserId.eq(me.id()))
        .one(&webhooks.store().db)
        .await?
        .ok_or(Error::NotFound("delivery"))
}

/// One delivery with its payload and every attempt.
pub async fn get_delivery(webhooks: &Webhooks, me: &AuthUser, id: &str) -> Result<Delivery> {
    let m = own_delivery(webhooks, me, id).await?;
    let payload = serde_json::from_str(&m.payload).ok();
    let attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.eq(id))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(&webhooks.store().db)
        .await?
        .into_iter()
        .map(|a| Attempt {
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response_body: a.response_body,
        })
        .collect();
    let mut d = Delivery::from(m);
    d.payload = payload;
    d.attempts = Some(attempts);
    Ok(d)
}

/// Sends a delivery again now (one more attempt, whatever its webhooks).
pub async fn retry(webhooks: &Webhooks, me: &AuthUser, id: &str) -> Result<Delivery> {
    let m = own_delivery(webhooks, me, id).await?;
    let mut am: webhook_delivery::ActiveModel = m.into();
    am.status = Set(Status::Pending.as_str().into());
    am.next_attempt_at = Set(domain::now());
    am.locked_until = Set(None);
    am.updated_at = Set(domain::now());
    let updated = am.update(&webhooks.store().db).await?;
    webhooks.store().hooks.wake_deliveries();
    Ok(updated.into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverInput {
    /// Re-queue failed deliveries created at or after this time.
    pub since: DateTime<Utc>,
}

/// Re-queues every failed delivery since `since` with a fresh retry schedule.
pub async fn recover(webhooks: &Webhooks, me: &AuthUser, since: DateTime<Utc>) -> Result<u64> {
    let res = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, Expr::value(Status::Pending.as_str()))
        .col_expr(webhook_delivery::Column::AttemptCount, Expr::value(0))
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(domain::now()))
        .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(webhook_delivery::Column::UserId.eq(me.id()))
        .filter(webhook_delivery::Column::Status.eq(Status::Failed.as_str()))
        .filter(webhook_delivery::Column::CreatedAt.gte(since))
        .exec(&webhooks.store().db)
        .await?;
    webhooks.store().hooks.wake_deliveries();
    Ok(res.rows_affected)
}
