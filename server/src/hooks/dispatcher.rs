//! Turns committed events into notifications, webhook deliveries and live emits, exactly once.
use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
    TryIntoModel, sea_query::Query,
};
use tokio_util::sync::CancellationToken;

use super::{deliveries, rules};
use crate::{
    cluster::Cluster,
    domain::{
        self, Store,
        change::{begin_write, write_turn},
        notifications::Notification,
        planned::PlannedTx,
    },
    entity::{dispatch_cursor, event, notification, webhook_delivery},
    error::{Error, Result},
    webhooks::worker::Webhooks,
};

const CURSOR: &str = "main";
const BATCH: u64 = 200;
/// Only a safety net: commits wake the dispatcher directly.
const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// An event with the notifications it produced, ready to go out live.
#[derive(Debug, Clone)]
pub struct Dispatched {
    pub event: event::Model,
    pub notifications: Vec<Notification>,
}

/// What receives each committed batch live, in event order (the Socket.IO emitter). Webhook
/// deliveries are not a sink of this kind: they are rows written with the batch, handed to the
/// webhook worker after commit.
pub trait Sink: Send + Sync {
    fn take(&self, batch: Vec<Dispatched>) -> BoxFuture<'_, ()>;
}

/// The dispatcher's dependencies: where it reads and writes, and where a committed batch goes.
#[derive(Clone)]
pub struct Dispatcher {
    pub store: Store,
    pub webhooks: Arc<Webhooks>,
    pub live: Arc<dyn Sink>,
    /// The other nodes, told of each dispatch (`REDIS_URL`).
    pub cluster: Option<Cluster>,
}

/// Runs until `shutdown`: dispatches whatever is pending whenever woken (or every second).
pub async fn run(dispatcher: Dispatcher, shutdown: CancellationToken) {
    let mut known = None;
    loop {
        match dispatch_pending(&dispatcher, &mut known).await {
            Ok(n) if n as u64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "dispatch failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        tokio::select! {
            _ = dispatcher.store.hooks.events().notified() => {}
            _ = tokio::time::sleep(FALLBACK_POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Dispatches one batch of pending events; returns how many. The cursor advances in the same
/// transaction as the notifications and deliveries, so a crash re-derives nothing twice and
/// skips nothing. Holding the cursor row's lock makes one node at a time do this.
///
/// Events are read and planned before the write lock is taken: planning is a handful of reads
/// per event, and on SQLite every statement run under the write lock delays every API write
/// queued behind it. Under the lock, the batch is written only if the cursor is still where
/// the batch starts; otherwise another node got there first, and the batch is planned again.
///
/// `known` is the cursor as last seen (by this node; another may have moved it since).
#[tracing::instrument(skip_all, err)]
pub async fn dispatch_pending(dispatcher: &Dispatcher, known: &mut Option<i64>) -> Result<usize> {
    let mut from = match *known {
        Some(seen) => seen,
        None => {
            ensure_cursor(dispatcher).await?;
            dispatched_up_to(&dispatcher.store.db).await?
        }
    };
    loop {
        let mut batch = plan_batch(dispatcher, from).await?;
        let Some(newest) = batch.dispatched.last().map(|d| d.event.id) else {
            *known = Some(from);
            return Ok(0);
        };
        let Some(moved) = write_batch(dispatcher, from, newest, &mut batch).await? else {
            *known = Some(newest);
            break Ok(hand_off(dispatcher, batch, newest).await);
        };
        from = moved;
    }
}

/// One batch of events with everything derived from them, not yet written.
struct Batch {
    dispatched: Vec<Dispatched>,
    notifications: Vec<notification::ActiveModel>,
    deliveries: Vec<webhook_delivery::ActiveModel>,
}

/// Reads the events after `from` and decides their notifications and deliveries.
async fn plan_batch(dispatcher: &Dispatcher, from: i64) -> Result<Batch> {
    let events = event::Entity::find()
        .filter(event::Column::Id.gt(from))
        .order_by_asc(event::Column::Id)
        .limit(BATCH)
        .all(&dispatcher.store.db)
        .await?;
    let mut batch =
        Batch { dispatched: Vec::with_capacity(events.len()), notifications: Vec::new(), deliveries: Vec::new() };
    let mut people = rules::People::default();
    people.load(&dispatcher.store.db, events.iter().flat_map(rules::named_people)).await?;
    for ev in events {
        let now = domain::now();
        let rows: Vec<notification::ActiveModel> = rules::plan(&dispatcher.store.db, &ev, &mut people)
            .await?
            .into_iter()
            .map(|p| notification::ActiveModel {
                id: Set(domain::new_id()),
                user_id: Set(p.user_id),
                event_id: Set(ev.id),
                kind: Set(p.kind.to_string()),
                message: Set(p.message),
                related_id: Set(p.related_id),
                related_type: Set(p.related_type.to_string()),
                ticket_id: Set(p.ticket_id),
                actor_id: Set(ev.actor_id.clone()),
                read: Set(false),
                created_at: Set(now),
            })
            .collect();
        let notes =
            rows.iter().cloned().map(|r| r.try_into_model().map(Notification::from)).collect::<Result<Vec<_>, _>>()?;
        batch.notifications.extend(rows);
        batch.dispatched.push(Dispatched { event: ev, notifications: notes });
    }
    batch.deliveries = deliveries::plan(&dispatcher.store.db, &batch.dispatched).await?;
    Ok(batch)
}

/// Writes `batch` and moves the cursor from `from` to `newest`, unless the cursor is no longer
/// at `from`: then nothing is written, and the cursor's position comes back.
async fn write_batch(dispatcher: &Dispatcher, from: i64, newest: i64, batch: &mut Batch) -> Result<Option<i64>> {
    let turn = write_turn(&dispatcher.store.db, &dispatcher.store.hooks).await?;
    // The claim and its check in one statement, first: it takes the cursor row's lock
    // (PostgreSQL; SQLite's write lock is held already), and returns nothing if another node
    // dispatched these events meanwhile. On SQLite it goes out with the BEGIN, and the writes
    // with the COMMIT: two hand-offs under the write lock in all.
    let backend = dispatcher.store.db.get_database_backend();
    let claim = Query::update()
        .table(dispatch_cursor::Entity)
        .value(dispatch_cursor::Column::LastEventId, newest)
        .and_where(dispatch_cursor::Column::Name.eq(CURSOR))
        .and_where(dispatch_cursor::Column::LastEventId.eq(from))
        .returning_col(dispatch_cursor::Column::Name)
        .to_owned();
    let (txn, claimed) = PlannedTx::begin(&dispatcher.store.db, backend.build(&claim)).await?;
    if claimed == 0 {
        txn.rollback().await?;
        drop(turn);
        let moved = dispatched_up_to(&dispatcher.store.db).await?;
        if moved == from {
            return Err(Error::Internal(anyhow::anyhow!("the dispatch cursor row is missing")));
        }
        return Ok(Some(moved));
    }
    deliveries::stamp_queued(&mut batch.deliveries, dispatcher.webhooks.lease());
    let mut inserts = domain::insert_statements(backend, std::mem::take(&mut batch.notifications));
    inserts.extend(domain::insert_statements(backend, batch.deliveries.clone()));
    txn.commit(inserts).await?;
    drop(turn);
    Ok(None)
}

/// After commit: deliveries straight to the webhook worker (the first attempt does not wait for
/// a claim round trip), events to the emitter, and the news to the other nodes.
async fn hand_off(dispatcher: &Dispatcher, batch: Batch, newest: i64) -> usize {
    let count = batch.dispatched.len();
    metrics::counter!("ticketwire_events_dispatched_total").increment(count as u64);
    let deliveries: Vec<_> = batch.deliveries.into_iter().filter_map(|d| d.try_into_model().ok()).collect();
    metrics::counter!("ticketwire_webhook_deliveries_queued_total").increment(deliveries.len() as u64);
    dispatcher.webhooks.submit(deliveries);
    dispatcher.live.take(batch.dispatched).await;
    if let Some(cluster) = &dispatcher.cluster {
        cluster.announce(newest).await;
    }
    count
}

/// The newest event id dispatched, by any node (0 before the first dispatch): what every node may
/// emit up to.
pub async fn dispatched_up_to(db: &impl ConnectionTrait) -> Result<i64> {
    let cursor = dispatch_cursor::Entity::find_by_id(CURSOR.to_string()).one(db).await?;
    Ok(cursor.map_or(0, |c| c.last_event_id))
}

/// Creates the cursor row if no node has yet.
async fn ensure_cursor(dispatcher: &Dispatcher) -> Result<()> {
    let (txn, _turn) = begin_write(&dispatcher.store.db, &dispatcher.store.hooks).await?;
    let backend = txn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO dispatch_cursors (name, last_event_id) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING"
        }
        _ => "INSERT INTO dispatch_cursors (name, last_event_id) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
    };
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, [CURSOR.into()])).await?;
    txn.commit().await?;
    Ok(())
}
