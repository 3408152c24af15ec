//! The delivery worker: claims due deliveries, sends them with bounded concurrency per endpoint
//! and overall, and writes each attempt and the next retry time back to the database.
//!
//! The retry schedule lives in the rows (`next_attempt_at`), not in memory, so it survives
//! restarts and needs no retry helper crate.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use axum::body::Body;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::{Expr, LockBehavior, LockType},
};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use super::{signing, ssrf};
use crate::{
    config::WebhookConfig,
    domain::{self, Action, Change, Kind, Tx, change::begin_write},
    entity::{webhook_attempt, webhook_delivery, webhook_endpoint},
    error::Result,
    state::AppState,
};

const CLAIM_BATCH: u64 = 500;
const RESPONSE_KEEP_BYTES: usize = 4096;

/// Shared delivery machinery: the HTTP client, the concurrency limits and per-endpoint pacing.
pub struct Webhooks {
    client: reqwest::Client,
    global: Arc<Semaphore>,
    endpoints: Mutex<HashMap<String, Arc<EndpointSlot>>>,
    router: OnceLock<axum::Router>,
    config: WebhookConfig,
}

/// Per-endpoint state: how many deliveries may be in flight, and when the next may start.
struct EndpointSlot {
    permits: Arc<Semaphore>,
    next_start: tokio::sync::Mutex<Instant>,
}

impl Webhooks {
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("ticketwire-webhooks/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.max_in_flight_per_endpoint)
            .dns_resolver(Arc::new(ssrf::GuardedResolver {
                allow: Arc::new(config.allow_cidrs.clone()),
            }))
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            global: Arc::new(Semaphore::new(config.max_in_flight)),
            endpoints: Mutex::new(HashMap::new()),
            router: OnceLock::new(),
            config: config.clone(),
        })
    }

    /// The server's own router, for relative URLs.
    pub fn set_router(&self, router: axum::Router) {
        let _ = self.router.set(router);
    }

    /// Drops cached pacing for an endpoint whose settings changed.
    pub fn forget_endpoint(&self, user_id: &str) {
        self.endpoints.lock().expect("not poisoned").remove(user_id);
    }

    fn slot(&self, user_id: &str) -> Arc<EndpointSlot> {
        let mut map = self.endpoints.lock().expect("not poisoned");
        map.entry(user_id.to_string())
            .or_insert_with(|| {
                Arc::new(EndpointSlot {
                    permits: Arc::new(Semaphore::new(self.config.max_in_flight_per_endpoint)),
                    next_start: tokio::sync::Mutex::new(Instant::now()),
                })
            })
            .clone()
    }
}

/// Runs until `shutdown`; then stops claiming and lets in-flight attempts finish.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let wait = match deliver_due(&state, &tracker).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "webhook claim failed; will retry");
                Duration::from_millis(500)
            }
        };
        tokio::select! {
            _ = state.hooks.deliveries().notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tracker.close();
    let grace = state.config.webhooks.timeout() + Duration::from_secs(1);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("webhook attempts still running at shutdown; their claims will expire");
    }
}

/// Claims what is due and starts sending it; returns how long to wait before looking again.
#[tracing::instrument(skip_all, err)]
pub async fn deliver_due(state: &AppState, tracker: &TaskTracker) -> Result<Duration> {
    let hooks = &state.webhooks;
    let free = hooks.global.available_permits();
    if free == 0 {
        return Ok(Duration::from_millis(50));
    }
    let now = domain::now();
    let txn = begin_write(&state.db).await?;
    let mut select = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
        .filter(
            Condition::any()
                .add(webhook_delivery::Column::LockedUntil.is_null())
                .add(webhook_delivery::Column::LockedUntil.lt(now)),
        )
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .limit(CLAIM_BATCH);
    if state.db.get_database_backend() == DbBackend::Postgres {
        // Several nodes claim side by side without waiting on each other's rows.
        select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let due = select.all(&txn).await?;

    // Take only as many per endpoint as it has free slots, so a slow endpoint's backlog stays
    // unclaimed (and claimable by other nodes) instead of holding global capacity.
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut picked = Vec::new();
    for d in due {
        if picked.len() >= free {
            break;
        }
        let room = hooks.slot(&d.user_id).permits.available_permits();
        let n = taken.entry(d.user_id.clone()).or_default();
        if *n < room {
            *n += 1;
            picked.push(d);
        }
    }
    if !picked.is_empty() {
        let lease = now + chrono::Duration::from_std(hooks.config.timeout() + Duration::from_secs(30)).unwrap_or_default();
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(lease))
            .filter(webhook_delivery::Column::Id.is_in(picked.iter().map(|d| d.id.clone())))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;

    for d in picked {
        let slot = hooks.slot(&d.user_id);
        let (Ok(endpoint_permit), Ok(global_permit)) = (slot.permits.clone().try_acquire_owned(), hooks.global.clone().try_acquire_owned()) else {
            continue; // the lease expires and it is picked up again
        };
        let state = state.clone();
        tracker.spawn(async move {
            let permits = (endpoint_permit, global_permit);
            if let Err(e) = attempt(&state, d, &slot).await {
                tracing::warn!(error = %e, "recording a webhook attempt failed");
            }
            // A slot is free again: claim the endpoint's backlog now, not at the next poll.
            drop(permits);
            state.hooks.wake_deliveries();
        });
    }
    next_wait(state).await
}

/// Until the earliest pending delivery is due (at most a second; commits wake us sooner).
async fn next_wait(state: &AppState) -> Result<Duration> {
    let next = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .one(&state.db)
        .await?;
    let cap = Duration::from_secs(1);
    Ok(match next {
        Some(d) => {
            let due = d.locked_until.filter(|l| *l > d.next_attempt_at).unwrap_or(d.next_attempt_at);
            (due - Utc::now()).to_std().unwrap_or(Duration::from_millis(1)).min(cap)
        }
        None => cap,
    })
}

/// What one attempt produced.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    body: Option<String>,
    retry_after: Option<Duration>,
}

async fn attempt(state: &AppState, d: webhook_delivery::Model, slot: &EndpointSlot) -> Result<()> {
    let endpoint = webhook_endpoint::Entity::find_by_id(d.user_id.clone()).one(&state.db).await?;
    let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
        let mut am: webhook_delivery::ActiveModel = d.into();
        am.status = Set("failed".into());
        am.last_error = Set(Some("the webhook endpoint was removed or disabled".into()));
        am.locked_until = Set(None);
        am.updated_at = Set(domain::now());
        am.update(&state.db).await?;
        return Ok(());
    };
    if let Some(rate) = endpoint.max_per_second.filter(|r| *r > 0) {
        let mut next = slot.next_start.lock().await;
        let start = (*next).max(Instant::now());
        *next = start + Duration::from_secs_f64(1.0 / rate as f64);
        drop(next);
        tokio::time::sleep_until(start.into()).await;
    }

    let timestamp = Utc::now().timestamp();
    let previous = endpoint
        .previous_secret
        .as_deref()
        .filter(|_| endpoint.previous_secret_expires_at.is_some_and(|t| t > Utc::now()));
    let secrets: Vec<&str> = std::iter::once(endpoint.secret.as_str()).chain(previous).collect();
    let signature = signing::signature_header(&secrets, &d.id, timestamp, d.payload.as_bytes());
    if d.attempt_count == 0 {
        let lag = (Utc::now() - d.created_at).to_std().unwrap_or_default();
        metrics::histogram!("ticketwire_webhook_first_attempt_seconds").record(lag.as_secs_f64());
    }
    let started = Instant::now();
    let outcome = if endpoint.url.starts_with('/') {
        send_in_process(state, &endpoint.url, &d, timestamp, &signature).await
    } else {
        send_http(state, &endpoint.url, &d, timestamp, &signature).await
    };
    let latency = started.elapsed();
    metrics::histogram!("ticketwire_webhook_attempt_seconds").record(latency.as_secs_f64());
    record(state, d, &endpoint, outcome, latency).await
}

async fn send_http(state: &AppState, url: &str, d: &webhook_delivery::Model, ts: i64, signature: &str) -> Outcome {
    let failed = |error: String| Outcome { status: None, error: Some(error), body: None, retry_after: None };
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return failed(format!("invalid URL: {e}")),
    };
    if let Err(reason) = ssrf::check_literal_host(&parsed, &state.config.webhooks.allow_cidrs) {
        return failed(format!("refused: {reason}"));
    }
    let sent = state
        .webhooks
        .client
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return failed("timed out".into()),
        Err(e) => return failed(error_chain(&e)),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Keep the first 4 KiB and stop reading: a receiver answering a gigabyte costs us 4 KiB.
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_KEEP_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(RESPONSE_KEEP_BYTES);
    Outcome {
        status: Some(status),
        error: None,
        body: Some(String::from_utf8_lossy(&kept).into_owned()),
        retry_after,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn send_in_process(state: &AppState, path: &str, d: &webhook_delivery::Model, ts: i64, signature: &str) -> Outcome {
    let Some(router) = state.webhooks.router.get().cloned() else {
        return Outcome { status: None, error: Some("server is starting".into()), body: None, retry_after: None };
    };
    let request = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .header("user-agent", concat!("ticketwire-webhooks/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(Body::from(d.payload.clone()));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Outcome { status: None, error: Some(e.to_string()), body: None, retry_after: None },
    };
    match router.oneshot(request).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
            let kept = &body[..body.len().min(RESPONSE_KEEP_BYTES)];
            Outcome { status: Some(status), error: None, body: Some(String::from_utf8_lossy(kept).into_owned()), retry_after: None }
        }
        Err(e) => Outcome { status: None, error: Some(e.to_string()), body: None, retry_after: None },
    }
}

enum Verdict {
    Succeeded,
    Retry,
    Failed,
    Gone,
}

fn judge(o: &Outcome) -> Verdict {
    match o.status {
        Some(s) if (200..300).contains(&s) => Verdict::Succeeded,
        Some(410) => Verdict::Gone,
        Some(408 | 429) | None => Verdict::Retry,
        Some(s) if s >= 500 => Verdict::Retry,
        Some(_) => Verdict::Failed,
    }
}

/// The delay before retry number `attempts` (1-based), with ±10 % jitter so many failed
/// deliveries do not all come back at once.
fn backoff(schedule: &[u64], attempts: usize) -> Option<Duration> {
    let base = *schedule.get(attempts.checked_sub(1)?)?;
    let jitter = 0.9 + rand::random::<f64>() * 0.2;
    Some(Duration::from_millis((base as f64 * jitter) as u64))
}

async fn record(state: &AppState, d: webhook_delivery::Model, endpoint: &webhook_endpoint::Model, o: Outcome, latency: Duration) -> Result<()> {
    let now = domain::now();
    webhook_attempt::ActiveModel {
        id: Set(domain::new_id()),
        delivery_id: Set(d.id.clone()),
        attempted_at: Set(now),
        status_code: Set(o.status.map(i32::from)),
        latency_ms: Set(latency.as_millis() as i64),
        error: Set(o.error.clone()),
        response_body: Set(o.body.clone()),
    }
    .insert(&state.db)
    .await?;

    let attempts = d.attempt_count as usize + 1;
    let verdict = judge(&o);
    let mut am: webhook_delivery::ActiveModel = d.into();
    am.attempt_count = Set(attempts as i32);
    am.last_status_code = Set(o.status.map(i32::from));
    am.last_error = Set(o.error.clone().or_else(|| o.status.filter(|s| !(200..300).contains(s)).map(|s| format!("receiver answered {s}"))));
    am.locked_until = Set(None);
    am.updated_at = Set(now);
    let outcome_label = match verdict {
        Verdict::Succeeded => {
            am.status = Set("succeeded".into());
            "succeeded"
        }
        Verdict::Retry => match backoff(&state.config.webhooks.retry_schedule_ms, attempts) {
            Some(delay) => {
                let delay = o.retry_after.map_or(delay, |ra| ra.max(delay));
                am.next_attempt_at = Set(now + chrono::Duration::from_std(delay).unwrap_or_default());
                "retrying"
            }
            None => {
                am.status = Set("failed".into());
                "failed"
            }
        },
        Verdict::Failed | Verdict::Gone => {
            am.status = Set("failed".into());
            "failed"
        }
    };
    am.update(&state.db).await?;
    metrics::counter!("ticketwire_webhook_attempts_total", "outcome" => outcome_label).increment(1);

    match verdict {
        Verdict::Succeeded => {
            if endpoint.failing_since.is_some() {
                webhook_endpoint::Entity::update_many()
                    .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(Option::<chrono::DateTime<Utc>>::None))
                    .filter(webhook_endpoint::Column::UserId.eq(endpoint.user_id.clone()))
                    .exec(&state.db)
                    .await?;
            }
        }
        Verdict::Gone => disable(state, endpoint, "the receiver answered 410 Gone").await?,
        _ => {
            let since = endpoint.failing_since.unwrap_or(now);
            let limit = chrono::Duration::seconds(state.config.webhooks.disable_after_secs as i64);
            if now - since >= limit {
                disable(state, endpoint, "every delivery failed for too long").await?;
            } else if endpoint.failing_since.is_none() {
                webhook_endpoint::Entity::update_many()
                    .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(now))
                    .filter(webhook_endpoint::Column::UserId.eq(endpoint.user_id.clone()))
                    .filter(webhook_endpoint::Column::FailingSince.is_null())
                    .exec(&state.db)
                    .await?;
            }
        }
    }
    if matches!(judge(&o), Verdict::Retry) {
        state.hooks.wake_deliveries();
    }
    Ok(())
}

/// Disables an endpoint and tells its owner (inbox and Socket.IO) through the normal pipeline.
async fn disable(state: &AppState, endpoint: &webhook_endpoint::Model, reason: &str) -> Result<()> {
    let mut tx = Tx::begin(&state.db, &state.hooks).await?;
    let res = webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
        .col_expr(webhook_endpoint::Column::DisabledReason, Expr::value(reason))
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(domain::now()))
        .filter(webhook_endpoint::Column::UserId.eq(endpoint.user_id.clone()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .exec(&tx.txn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(()); // someone else disabled it already
    }
    let data = serde_json::json!({
        "type": "webhook_disabled",
        "user_id": endpoint.user_id,
        "webhook_url": endpoint.url,
        "reason": reason,
        "message": format!("Your webhook {} was disabled: {reason}. Set its URL again to re-enable it.", endpoint.url),
    });
    tx.record(Change::new(Kind::Webhook, Action::Updated, &endpoint.user_id, &data).owned_by(&endpoint.user_id).staff_only(true))
        .await?;
    tx.commit().await?;
    state.webhooks.forget_endpoint(&endpoint.user_id);
    metrics::counter!("ticketwire_webhook_endpoints_disabled_total").increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_with_jitter() {
        let s = [1000, 60_000];
        let d1 = backoff(&s, 1).unwrap().as_millis();
        assert!((900..=1100).contains(&d1), "{d1}");
        assert!(backoff(&s, 2).unwrap().as_millis() >= 54_000);
        assert!(backoff(&s, 3).is_none());
    }

    #[test]
    fn verdicts() {
        let o = |status| Outcome { status, error: None, body: None, retry_after: None };
        assert!(matches!(judge(&o(Some(204))), Verdict::Succeeded));
        assert!(matches!(judge(&o(Some(410))), Verdict::Gone));
        assert!(matches!(judge(&o(Some(429))), Verdict::Retry));
        assert!(matches!(judge(&o(Some(503))), Verdict::Retry));
        assert!(matches!(judge(&o(None)), Verdict::Retry));
        assert!(matches!(judge(&o(Some(400))), Verdict::Failed));
    }
}
