//! The delivery worker. Fresh deliveries are handed over by the dispatcher right after commit
//! (no polling in the way of the first attempt); a claim loop picks up what is due later
//! (retries, and deliveries whose lease expired because a node died). Attempts run with bounded
//! concurrency per endpoint and overall; their results are written back in batches.
//!
//! The retry schedule lives in the rows (`next_attempt_at`), not in memory, so it survives
//! restarts and needs no retry helper crate.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, LockBehavior, LockType},
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    receiver::BuiltIn,
    record::{self, Finished},
    send::{self, USER_AGENT},
    ssrf,
};
use crate::{
    auth::Role,
    config::WebhookConfig,
    domain::{self, Store, change::begin_write},
    entity::{
        event, user,
        webhook_delivery::{self, Status},
        webhook_endpoint,
    },
    error::Result,
    policy::{Access, Present, Viewer},
};

const CLAIM_BATCH: u64 = 500;
/// Deliveries one endpoint may have waiting in memory; the rest wait in the database.
const MAX_QUEUED_PER_ENDPOINT: usize = 512;

/// Shared delivery machinery: the HTTP client, the concurrency limits and per-endpoint pacing.
pub struct Webhooks {
    client: reqwest::Client,
    global: Arc<Semaphore>,
    endpoints: Mutex<HashMap<String, Arc<EndpointSlot>>>,
    /// This server's own receiver, for relative URLs (see [`BuiltIn`]).
    built_in: OnceLock<Arc<dyn BuiltIn>>,
    config: WebhookConfig,
    store: Store,
    /// Deliveries this node holds in memory, so the claim loop does not take them twice.
    inflight: Mutex<HashSet<String>>,
    recorder: Mutex<Option<mpsc::UnboundedSender<Finished>>>,
    tracker: TaskTracker,
    /// The server's runtime, where attempts run whichever thread hands them over (the
    /// dispatcher has a runtime of its own).
    runtime: Option<tokio::runtime::Handle>,
}

/// Per-endpoint state: how many deliveries may be in flight, and when the next may start.
struct EndpointSlot {
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    next_start: tokio::sync::Mutex<Instant>,
}

impl Webhooks {
    pub fn new(config: &WebhookConfig, store: Store) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.max_in_flight_per_endpoint)
            .dns_resolver(Arc::new(ssrf::GuardedResolver { allow: Arc::new(config.allow_cidrs.clone()) }))
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            global: Arc::new(Semaphore::new(config.max_in_flight)),
            endpoints: Mutex::new(HashMap::new()),
            built_in: OnceLock::new(),
            config: config.clone(),
            store,
            inflight: Mutex::new(HashSet::new()),
            recorder: Mutex::new(None),
            tracker: TaskTracker::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn built_in(&self) -> Option<&Arc<dyn BuiltIn>> {
        self.built_in.get()
    }

    /// Where deliveries to relative URLs go, once the server has one.
    pub fn set_built_in(&self, receiver: Arc<dyn BuiltIn>) {
        let _ = self.built_in.set(receiver);
    }

    /// Drops cached pacing for an endpoint whose settings changed.
    pub fn forget_endpoint(&self, user_id: &str) {
        self.endpoints.lock().expect("not poisoned").remove(user_id);
    }

    /// How long a claim (or a fresh delivery's initial lease) lasts before another node may take it.
    /// Long enough for one attempt and its recording; short enough that a dead node's work is
    /// picked up soon.
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.timeout() * 2 + Duration::from_secs(2)).unwrap_or_default()
    }

    fn slot(&self, user_id: &str) -> Arc<EndpointSlot> {
        let mut map = self.endpoints.lock().expect("not poisoned");
        map.entry(user_id.to_string())
            .or_insert_with(|| {
                Arc::new(EndpointSlot {
                    permits: Arc::new(Semaphore::new(self.config.max_in_flight_per_endpoint)),
                    queued: AtomicUsize::new(0),
                    next_start: tokio::sync::Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    /// Forgets deliveries whose results were written.
    pub(crate) fn release(&self, ids: &[String]) {
        let mut set = self.inflight.lock().expect("not poisoned");
        for id in ids {
            set.remove(id);
        }
    }

    /// Starts sending deliveries this node holds a lease on.
    pub fn submit(self: &Arc<Self>, deliveries: Vec<webhook_delivery::Model>) {
        let fresh: Vec<_> = {
            let mut set = self.inflight.lock().expect("not poisoned");
            deliveries.into_iter().filter(|d| set.insert(d.id.clone())).collect()
        };
        if fresh.is_empty() {
            return;
        }
        let webhooks = self.clone();
        let starting = async move {
            if let Err(e) = start(&webhooks, fresh).await {
                tracing::warn!(error = %e, "starting webhook deliveries failed; their leases will expire");
            }
        };
        match &self.runtime {
            Some(runtime) => self.tracker.spawn_on(starting, runtime),
            None => self.tracker.spawn(starting),
        };
    }
}

/// Looks up the endpoints once for the batch and spawns one attempt per delivery.
async fn start(webhooks: &Arc<Webhooks>, deliveries: Vec<webhook_delivery::Model>) -> Result<()> {
    let users: HashSet<&str> = deliveries.iter().map(|d| d.user_id.as_str()).collect();
    let endpoints: HashMap<String, webhook_endpoint::Model> = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::UserId.is_in(users.iter().copied()))
        .all(&webhooks.store().db)
        .await?
        .into_iter()
        .map(|e| (e.user_id.clone(), e))
        .collect();
    // Checked at every attempt, retries included: a user deactivated after the delivery was
    // queued hears nothing more, and nobody hears of what the policy no longer lets them read.
    let active: HashMap<String, Role> = user::Entity::find()
        .select_only()
        .columns([user::Column::Id, user::Column::Role])
        .filter(user::Column::Id.is_in(users))
        .filter(user::Column::IsActive.eq(true))
        .into_tuple::<(String, String)>()
        .all(&webhooks.store().db)
        .await?
        .into_iter()
        .map(|(id, role)| (id, Role::parse(&role).unwrap_or(Role::Customer)))
        .collect();
    let event_ids: HashSet<i64> = deliveries.iter().map(|d| d.event_id).collect();
    let events: HashMap<i64, event::Model> = event::Entity::find()
        .filter(event::Column::Id.is_in(event_ids))
        .all(&webhooks.store().db)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let present = Present::load(&webhooks.store().db, events.values()).await?;
    let may_read = |d: &webhook_delivery::Model, role: Role| {
        let viewer = Viewer::new(&d.user_id, role);
        events.get(&d.event_id).is_some_and(|ev| present.access(&viewer, ev) == Access::Full)
    };
    let Some(recorder) = webhooks.recorder.lock().expect("not poisoned").clone() else {
        // Not running (starting or shutting down): the claim loop takes them when their lease expires.
        let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
        webhooks.release(&ids);
        return Ok(());
    };
    let mut abandoned: HashMap<&'static str, Vec<String>> = HashMap::new();
    for d in deliveries {
        let checked = match endpoints.get(&d.user_id) {
            _ if !active.contains_key(&d.user_id) => Err("the user was deactivated"),
            _ if !may_read(&d, active[&d.user_id]) => Err("the recipient may no longer read what it is about"),
            Some(e) if e.enabled => Ok(e.clone()),
            _ => Err("the webhook endpoint was removed or disabled"),
        };
        let endpoint = match checked {
            Ok(endpoint) => endpoint,
            Err(why) => {
                abandoned.entry(why).or_default().push(d.id);
                continue;
            }
        };
        let slot = webhooks.slot(&d.user_id);
        if slot.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_PER_ENDPOINT {
            // A backlogged endpoint: leave it to the claim loop once this lease expires.
            slot.queued.fetch_sub(1, Ordering::AcqRel);
            webhooks.release(std::slice::from_ref(&d.id));
            continue;
        }
        let (owned, recorder) = (webhooks.clone(), recorder.clone());
        webhooks.tracker.spawn(async move {
            let finished = send_one(&owned, &slot, endpoint, d).await;
            slot.queued.fetch_sub(1, Ordering::AcqRel);
            let _ = recorder.send(finished);
        });
    }
    for (why, ids) in abandoned {
        abandon(webhooks, &ids, why).await?;
        webhooks.release(&ids);
    }
    Ok(())
}

/// Waits for the endpoint's turn (concurrency and rate), then for global capacity, then sends.
async fn send_one(
    webhooks: &Arc<Webhooks>,
    slot: &EndpointSlot,
    endpoint: webhook_endpoint::Model,
    d: webhook_delivery::Model,
) -> Finished {
    let _endpoint_permit = slot.permits.clone().acquire_owned().await.ok();
    if let Some(rate) = endpoint.max_per_second.filter(|r| *r > 0) {
        let mut next = slot.next_start.lock().await;
        let start = (*next).max(Instant::now());
        *next = start + Duration::from_secs_f64(1.0 / f64::from(rate));
        drop(next);
        tokio::time::sleep_until(start.into()).await;
    }
    let _global_permit = webhooks.global.clone().acquire_owned().await.ok();
    if d.attempt_count == 0 {
        let lag = (Utc::now() - d.created_at).to_std().unwrap_or_default();
        metrics::histogram!("ticketwire_webhook_first_attempt_seconds").record(lag.as_secs_f64());
    }
    let attempted_at = domain::now();
    let started = Instant::now();
    let outcome = send::attempt(webhooks, webhooks.config(), &endpoint, &d).await;
    let latency = started.elapsed();
    metrics::histogram!("ticketwire_webhook_attempt_seconds").record(latency.as_secs_f64());
    Finished { delivery: d, endpoint, outcome, latency, attempted_at }
}

/// Deliveries whose endpoint is gone or disabled, whose user was deactivated, or whose
/// recipient may no longer read what they are about, fail without an attempt: one statement for all of them, in the writers' queue like every other write.
async fn abandon(webhooks: &Arc<Webhooks>, ids: &[String], why: &str) -> Result<()> {
    let (txn, turn) = begin_write(&webhooks.store().db, &webhooks.store().hooks).await?;
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, Expr::value(Status::Failed.as_str()))
        .col_expr(webhook_delivery::Column::LastError, Expr::value(why))
        .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(domain::now()))
        .filter(webhook_delivery::Column::Id.is_in(ids.iter().cloned()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    drop(turn);
    Ok(())
}

/// Runs until `shutdown`; then stops claiming, lets in-flight attempts finish and records them.
pub async fn run(webhooks: Arc<Webhooks>, shutdown: CancellationToken) {
    let (tx, rx) = mpsc::unbounded_channel();
    *webhooks.recorder.lock().expect("not poisoned") = Some(tx);
    let recorder = tokio::spawn(record::run(webhooks.clone(), rx));
    if let Err(e) = release_own_leases(&webhooks).await {
        tracing::warn!(error = %e, "could not release leases left by a previous run");
    }
    loop {
        let wait = match claim_due(&webhooks).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "webhook claim failed; will retry");
                Duration::from_millis(500)
            }
        };
        tokio::select! {
            _ = webhooks.store().hooks.deliveries().notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    webhooks.tracker.close();
    let grace = webhooks.config().timeout() + Duration::from_secs(1);
    if tokio::time::timeout(grace, webhooks.tracker.wait()).await.is_err() {
        tracing::warn!("webhook attempts still running at shutdown; their leases will expire");
    }
    webhooks.recorder.lock().expect("not poisoned").take();
    let _ = tokio::time::timeout(Duration::from_secs(5), recorder).await;
}

/// An embedded database has exactly one node: any lease in it was ours, from a run that ended
/// (perhaps killed) before recording. Free them now rather than waiting for them to expire. On
/// PostgreSQL other nodes may hold leases, which expire on their own if their holder died.
async fn release_own_leases(webhooks: &Arc<Webhooks>) -> Result<()> {
    if webhooks.store().db.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .filter(webhook_delivery::Column::Status.eq(Status::Pending.as_str()))
        .filter(webhook_delivery::Column::LockedUntil.is_not_null())
        .exec(&webhooks.store().db)
        .await?;
    Ok(())
}

/// Claims what is due and not held by anyone, within this node's free capacity; returns how long
/// to wait before looking again.
#[tracing::instrument(skip_all, err)]
pub async fn claim_due(webhooks: &Arc<Webhooks>) -> Result<Duration> {
    let free = webhooks.global.available_permits();
    let now = domain::now();
    // Look before queueing for the write lock: most wake-ups find nothing due.
    if free > 0 && due_query(now).limit(1).one(&webhooks.store().db).await?.is_some() {
        let (txn, turn) = begin_write(&webhooks.store().db, &webhooks.store().hooks).await?;
        let mut select = due_query(now).limit(CLAIM_BATCH);
        if webhooks.store().db.get_database_backend() == DbBackend::Postgres {
            // Several nodes claim side by side without waiting on each other's rows.
            select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let due = select.all(&txn).await?;
        let picked = pick_within_capacity(webhooks, due, free);
        if !picked.is_empty() {
            webhook_delivery::Entity::update_many()
                .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(now + webhooks.lease()))
                .filter(webhook_delivery::Column::Id.is_in(picked.iter().map(|d| d.id.clone())))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        drop(turn);
        webhooks.submit(picked);
    }
    next_wait(webhooks).await
}

/// Pending, due, and not leased by anyone: oldest first.
fn due_query(now: chrono::DateTime<Utc>) -> sea_orm::Select<webhook_delivery::Entity> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(Status::Pending.as_str()))
        .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
        .filter(
            Condition::any()
                .add(webhook_delivery::Column::LockedUntil.is_null())
                .add(webhook_delivery::Column::LockedUntil.lt(now)),
        )
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
}

/// Takes at most as many per endpoint as it has room for, skipping what this node already holds.
fn pick_within_capacity(
    webhooks: &Webhooks,
    due: Vec<webhook_delivery::Model>,
    free: usize,
) -> Vec<webhook_delivery::Model> {
    let held = webhooks.inflight.lock().expect("not poisoned").clone();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut picked = Vec::new();
    for d in due {
        if picked.len() >= free {
            break;
        }
        if held.contains(&d.id) {
            continue;
        }
        let slot = webhooks.slot(&d.user_id);
        let room = webhooks.config.max_in_flight_per_endpoint.saturating_sub(slot.queued.load(Ordering::Acquire));
        let n = taken.entry(d.user_id.clone()).or_default();
        if *n < room {
            *n += 1;
            picked.push(d);
        }
    }
    picked
}

/// Until the earliest pending delivery is due (at most a second; commits wake us sooner).
async fn next_wait(webhooks: &Arc<Webhooks>) -> Result<Duration> {
    let next = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(Status::Pending.as_str()))
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .one(&webhooks.store().db)
        .await?;
    let cap = Duration::from_secs(1);
    Ok(match next {
        Some(d) => {
            let due = d.locked_until.filter(|l| *l > d.next_attempt_at).unwrap_or(d.next_attempt_at);
            (due - Utc::now()).to_std().unwrap_or(Duration::from_millis(1)).clamp(Duration::from_millis(1), cap)
        }
        None => cap,
    })
}
