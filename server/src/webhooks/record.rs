//! Writes attempt results back in batches: one transaction for many attempts keeps the embedded
//! database's single writer free for everyone else.
use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryTrait, Set, sea_query::Expr};
use tokio::sync::mpsc;

use super::{
    send::{Outcome, Verdict, backoff, judge},
    worker::Webhooks,
};
use crate::{
    domain::{
        self, Action, Change, Kind, Tx,
        change::{WriteTurn, write_turn},
        planned,
    },
    entity::{
        webhook_attempt,
        webhook_delivery::{self, Status},
        webhook_endpoint,
    },
    error::Result,
};

const BATCH: usize = 256;

/// One finished attempt, waiting to be written.
pub struct Finished {
    pub delivery: webhook_delivery::Model,
    pub endpoint: webhook_endpoint::Model,
    pub outcome: Outcome,
    pub latency: Duration,
    pub attempted_at: DateTime<Utc>,
}

/// Runs until every sender is gone, writing what arrives in batches.
pub async fn run(webhooks: Arc<Webhooks>, mut rx: mpsc::UnboundedReceiver<Finished>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // The write turn first, then what finished while waiting for it: one transaction for
        // all of them rather than one more turn for the latecomers.
        // (Only the first try writes in it; a retry after a failure takes a turn of its own.)
        let mut first_turn = write_turn(&webhooks.store().db, &webhooks.store().hooks).await.ok();
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let ids: Vec<String> = batch.iter().map(|f| f.delivery.id.clone()).collect();
        let mut pending = std::mem::take(&mut batch);
        for attempt in 0..5 {
            let written = match first_turn.take() {
                Some(turn) => write_batch(&webhooks, turn, &pending).await,
                None => match write_turn(&webhooks.store().db, &webhooks.store().hooks).await {
                    Ok(turn) => write_batch(&webhooks, turn, &pending).await,
                    Err(e) => Err(e.into()),
                },
            };
            match written {
                Ok(to_disable) => {
                    for (endpoint, reason) in to_disable {
                        if let Err(e) = disable(&webhooks, &endpoint, reason).await {
                            tracing::warn!(error = %e, "could not disable a failing webhook endpoint");
                        }
                    }
                    pending.clear();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "recording webhook attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        if !pending.is_empty() {
            // Their leases expire and they are sent again: at-least-once, same webhook-id.
            tracing::error!(count = pending.len(), "dropping unrecorded webhook attempts");
        }
        webhooks.release(&ids);
        webhooks.store().hooks.wake_deliveries();
    }
}

/// Writes attempts, delivery states and endpoint health; returns endpoints to disable.
async fn write_batch(
    webhooks: &Arc<Webhooks>,
    turn: WriteTurn,
    batch: &[Finished],
) -> Result<Vec<(webhook_endpoint::Model, &'static str)>> {
    let attempts = batch.iter().map(|f| webhook_attempt::ActiveModel {
        id: Set(domain::new_id()),
        delivery_id: Set(f.delivery.id.clone()),
        attempted_at: Set(f.attempted_at),
        status_code: Set(f.outcome.status.map(i32::from)),
        latency_ms: Set(f.latency.as_millis() as i64),
        error: Set(f.outcome.error.clone()),
        response_body: Set(f.outcome.body.clone()),
    });
    let backend = webhooks.store().db.get_database_backend();
    let mut writes = domain::insert_statements(backend, attempts.collect());

    let now = domain::now();
    // Per endpoint: did anything succeed, did anything fail, was it told to go away.
    let mut health: HashMap<&str, (&webhook_endpoint::Model, bool, bool, bool)> = HashMap::new();
    // Deliveries that end in the same webhooks share one UPDATE: under load a batch is hundreds of
    // `succeeded` rows, and each statement here holds the embedded database's one write lock.
    let mut states: HashMap<DeliveryState, Vec<String>> = HashMap::new();
    for f in batch {
        let verdict = judge(&f.outcome);
        let becomes = DeliveryState::after(f, verdict, now, &webhooks.config().retry_schedule_ms);
        let label = match (verdict, becomes.status) {
            (Verdict::Succeeded, _) => "succeeded",
            (_, Status::Pending) => "retrying",
            _ => "failed",
        };
        metrics::counter!("ticketwire_webhook_attempts_total", "outcome" => label).increment(1);
        states.entry(becomes).or_default().push(f.delivery.id.clone());
        let entry = health.entry(f.endpoint.user_id.as_str()).or_insert((&f.endpoint, false, false, false));
        match verdict {
            Verdict::Succeeded => entry.1 = true,
            Verdict::Gone => entry.3 = true,
            _ => entry.2 = true,
        }
    }
    for (becomes, ids) in states {
        let mut update = webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, Expr::value(becomes.status.as_str()))
            .col_expr(webhook_delivery::Column::AttemptCount, Expr::value(becomes.attempts))
            .col_expr(webhook_delivery::Column::LastStatusCode, Expr::value(becomes.status_code))
            .col_expr(webhook_delivery::Column::LastError, Expr::value(becomes.last_error))
            .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now));
        if let Some(next) = becomes.next_attempt_at {
            update = update.col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(next));
        }
        writes.push(update.filter(webhook_delivery::Column::Id.is_in(ids)).build(backend));
    }

    let limit = chrono::Duration::seconds(webhooks.config().disable_after_secs as i64);
    let mut to_disable = Vec::new();
    for (user_id, (endpoint, ok, failed, gone)) in health {
        if gone {
            to_disable.push((endpoint.clone(), "the receiver answered 410 Gone"));
        } else if ok {
            if endpoint.failing_since.is_some() {
                let update = webhook_endpoint::Entity::update_many()
                    .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
                    .filter(webhook_endpoint::Column::UserId.eq(user_id));
                writes.push(update.build(backend));
            }
        } else if failed {
            match endpoint.failing_since {
                Some(since) if now - since >= limit => {
                    to_disable.push((endpoint.clone(), "every delivery failed for too long"))
                }
                Some(_) => {}
                None => {
                    let update = webhook_endpoint::Entity::update_many()
                        .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(now))
                        .filter(webhook_endpoint::Column::UserId.eq(user_id))
                        .filter(webhook_endpoint::Column::FailingSince.is_null());
                    writes.push(update.build(backend));
                }
            }
        }
    }
    // Planned in full, so on SQLite begun and committed in the same hand-off.
    planned::commit(&webhooks.store().db, writes).await?;
    drop(turn);
    Ok(to_disable)
}

/// What a delivery's row becomes after an attempt.
#[derive(PartialEq, Eq, Hash)]
struct DeliveryState {
    status: Status,
    attempts: i32,
    status_code: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
}

impl DeliveryState {
    fn after(f: &Finished, verdict: Verdict, now: DateTime<Utc>, schedule_ms: &[u64]) -> Self {
        let attempts = f.delivery.attempt_count + 1;
        let (status, next_attempt_at) = match verdict {
            Verdict::Succeeded => (Status::Succeeded, None),
            Verdict::Retry => match backoff(schedule_ms, attempts as usize) {
                Some(delay) => {
                    let delay = f.outcome.retry_after.map_or(delay, |ra| ra.max(delay));
                    (Status::Pending, Some(now + chrono::Duration::from_std(delay).unwrap_or_default()))
                }
                None => (Status::Failed, None),
            },
            Verdict::Failed | Verdict::Gone => (Status::Failed, None),
        };
        let last_error =
            f.outcome.error.clone().or_else(|| {
                f.outcome.status.filter(|s| !(200..300).contains(s)).map(|s| format!("receiver answered {s}"))
            });
        Self { status, attempts, status_code: f.outcome.status.map(i32::from), last_error, next_attempt_at }
    }
}

/// Disables an endpoint and tells its owner (inbox and Socket.IO) through the normal pipeline.
async fn disable(webhooks: &Arc<Webhooks>, endpoint: &webhook_endpoint::Model, reason: &str) -> Result<()> {
    let mut tx = Tx::begin(&webhooks.store().db, &webhooks.store().hooks).await?;
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
        .col_expr(webhook_endpoint::Column::DisabledReason, Expr::value(reason))
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(domain::now()))
        .filter(webhook_endpoint::Column::UserId.eq(endpoint.user_id.clone()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .exec(&tx.txn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(()); // disabled already
    }
    let data = serde_json::json!({
        "type": "webhook_disabled",
        "user_id": endpoint.user_id,
        "webhook_url": endpoint.url,
        "reason": reason,
        "message": format!("Your webhook {} was disabled: {reason}. Set its URL again to re-enable it.", endpoint.url),
    });
    tx.record(
        Change::new(Kind::Webhook, Action::Updated, &endpoint.user_id, &data)
            .owned_by(&endpoint.user_id)
            .staff_only(true),
    )
    .await?;
    tx.commit().await?;
    webhooks.forget_endpoint(&endpoint.user_id);
    metrics::counter!("ticketwire_webhook_endpoints_disabled_total").increment(1);
    Ok(())
}
