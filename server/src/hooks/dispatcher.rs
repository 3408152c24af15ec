//! Turns committed events into notifications, webhook deliveries and live emits, exactly once.
use std::time::Duration;

use sea_orm::{
    ColumnTrait, TryIntoModel, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};
use tokio_util::sync::CancellationToken;

use super::rules;
use crate::{
    domain::{self, change::begin_write, notifications::Notification},
    entity::{dispatch_cursor, event, notification},
    error::Result,
    state::AppState,
    webhooks,
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

/// Runs until `shutdown`: dispatches whatever is pending whenever woken (or every second).
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut known = None;
    // A commit's wake-up nearly always finds work; only the fallback poll looks first.
    let mut look_first = false;
    loop {
        match dispatch_pending(&state, &mut known, look_first).await {
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
        look_first = tokio::select! {
            _ = state.hooks.events().notified() => false,
            _ = tokio::time::sleep(FALLBACK_POLL) => true,
            _ = shutdown.cancelled() => return,
        };
    }
}

/// Dispatches one batch of pending events; returns how many. The cursor advances in the same
/// transaction as the notifications and deliveries, so a crash re-derives nothing twice and
/// skips nothing. Holding the cursor row's lock makes one node at a time do this.
///
/// `known` is the cursor as last seen (by this node; another may have moved it since). With
/// `look_first`, when no event is newer, the round costs one read instead of a turn at the write
/// lock, which on SQLite every API write queues for too.
#[tracing::instrument(skip_all, err)]
pub async fn dispatch_pending(state: &AppState, known: &mut Option<i64>, look_first: bool) -> Result<usize> {
    if let (true, Some(seen)) = (look_first, *known) {
        if !any_event_after(&state.db, seen).await? {
            return Ok(0);
        }
    }
    let (txn, turn) = begin_write(&state.db, &state.hooks).await?;
    let last = lock_cursor(&txn, known.is_none()).await?;
    let events = event::Entity::find()
        .filter(event::Column::Id.gt(last))
        .order_by_asc(event::Column::Id)
        .limit(BATCH)
        .all(&txn)
        .await?;
    let Some(newest) = events.last().map(|e| e.id) else {
        *known = Some(last);
        return Ok(0);
    };
    let mut dispatched = Vec::with_capacity(events.len());
    let mut deliveries = Vec::new();
    let lease = state.webhooks.lease();
    for ev in events {
        let planned = rules::plan(&txn, &ev).await?;
        let now = domain::now();
        let rows: Vec<notification::ActiveModel> = planned
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
        let notes = rows.iter().cloned().map(|r| r.try_into_model().map(Notification::from)).collect::<Result<Vec<_>, _>>()?;
        domain::insert_in_chunks(&txn, rows).await?;
        deliveries.extend(webhooks::enqueue(&txn, &ev, &notes, lease).await?);
        dispatched.push(Dispatched { event: ev, notifications: notes });
    }
    dispatch_cursor::Entity::update_many()
        .col_expr(dispatch_cursor::Column::LastEventId, sea_orm::sea_query::Expr::value(newest))
        .filter(dispatch_cursor::Column::Name.eq(CURSOR))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    drop(turn);
    *known = Some(newest);
    let count = dispatched.len();
    metrics::counter!("ticketwire_events_dispatched_total").increment(count as u64);
    // Straight to the worker: the first attempt does not wait for a claim round trip.
    state.webhooks.submit(state, deliveries);
    state.realtime.submit(dispatched).await;
    if let Some(cluster) = &state.cluster {
        cluster.announce(newest).await;
    }
    Ok(count)
}

/// The newest event id dispatched, by any node (0 before the first dispatch): what every node may
/// emit up to.
pub async fn dispatched_up_to(db: &impl ConnectionTrait) -> Result<i64> {
    let cursor = dispatch_cursor::Entity::find_by_id(CURSOR.to_string()).one(db).await?;
    Ok(cursor.map_or(0, |c| c.last_event_id))
}

async fn any_event_after(db: &impl ConnectionTrait, id: i64) -> Result<bool> {
    let newer = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::Id.gt(id))
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(newer.is_some())
}

/// Reads the cursor while taking its row lock (PostgreSQL) or the write lock (SQLite, via
/// `BEGIN IMMEDIATE`); on this process's first use, creates it if no node has yet.
async fn lock_cursor(txn: &impl ConnectionTrait, first_use: bool) -> Result<i64> {
    let backend = txn.get_database_backend();
    if first_use {
        let sql = match backend {
            DbBackend::Postgres => "INSERT INTO dispatch_cursors (name, last_event_id) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
            _ => "INSERT INTO dispatch_cursors (name, last_event_id) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
        };
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, [CURSOR.into()])).await?;
    }
    let mut select = dispatch_cursor::Entity::find_by_id(CURSOR.to_string());
    if backend == DbBackend::Postgres {
        select = select.lock_exclusive();
    }
    Ok(select.one(txn).await?.map(|c| c.last_event_id).unwrap_or(0))
}
