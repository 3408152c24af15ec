//! Retention: finished history removed in small batches, off the hot path, by every node.
//!
//! Three kinds of rows go, in this order, each once older than its configured age: webhook
//! deliveries that are done (succeeded or failed for good) with their attempts; notifications
//! (read ones, and unread ones when an age is set for those) whose delivery is gone; events
//! that no remaining notification refers to. Events stay while a notification refers to one,
//! because a notification is shown through its event (the policy judges it by what it was
//! about), and so does a pending delivery's.
//!
//! Two things are never removed, whatever the ages: anything a client inside the catch-up
//! window may still be replayed (events and notifications younger than that window and a
//! margin), and any event the dispatcher has not handled yet. Events go as a prefix of the log
//! walked in id order, so how far that walk has gone (`retention_horizons`) tells a catch-up
//! whether the log after a position is whole.
//!
//! Each batch is its own short write transaction: on SQLite it takes the writers' turn like
//! every write; on PostgreSQL it takes a transaction-scoped advisory lock without waiting, so
//! nodes pruning at once take turns (one that finds the lock taken leaves the round to the other).
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
    sea_query::{Alias, Expr, OnConflict, Query},
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    db::HooksHandle,
    domain::{change::begin_write, pagination::log_position},
    entity::{event, notification, webhook_attempt, webhook_delivery},
    webhooks::delivery_id,
};

const HORIZONS: &str = "retention_horizons";
const EVENTS: &str = "events";
/// Distinct from the event-order lock (`domain::change`).
const PRUNE_LOCK: i64 = 7245300202;
/// Kept beyond the catch-up window, so a replay that began inside it finishes before retention
/// can reach what it reads.
const REPLAY_MARGIN: Duration = Duration::from_secs(3600);

/// What one pass removed (or, dry, would remove), per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report {
    pub events: u64,
    pub notifications: u64,
    pub webhook_deliveries: u64,
    pub webhook_attempts: u64,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        *self == Report::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Count what would go; write nothing.
    DryRun,
    Remove,
}

/// The highest event id at or below which events may have been removed: a catch-up from an
/// earlier position could not be whole.
pub async fn pruned_through(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    use sea_orm::sea_query::ExprTrait as _;
    let stmt = Query::select()
        .column(Alias::new("pruned_through"))
        .from(Alias::new(HORIZONS))
        .and_where(Expr::col(Alias::new("name")).eq(EVENTS))
        .to_owned();
    let row = db.query_one(&stmt).await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "pruned_through")?,
        None => 0,
    })
}

/// The moments before which each kind of row may go (`None`: kept forever).
#[derive(Clone, Copy, Debug)]
struct Cutoffs {
    events: Option<DateTime<Utc>>,
    read_notifications: Option<DateTime<Utc>>,
    unread_notifications: Option<DateTime<Utc>>,
    deliveries: Option<DateTime<Utc>>,
}

impl Cutoffs {
    fn new(config: &Config, now: DateTime<Utc>) -> Self {
        let window = Duration::from_secs(config.catch_up.max_age_secs) + REPLAY_MARGIN;
        let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let days = |n: u64| (n > 0).then(|| ago(Duration::from_secs(n.saturating_mul(86_400))));
        // What a catch-up may replay (events and notifications) stays at least as long as the window.
        let replayable = |n: u64| days(n).map(|at| at.min(ago(window)));
        Self {
            events: replayable(config.retention.events_days),
            read_notifications: replayable(config.retention.read_notifications_days),
            unread_notifications: replayable(config.retention.unread_notifications_days),
            deliveries: days(config.retention.webhook_deliveries_days),
        }
    }

    fn delivery_done(&self, status: &str, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> bool {
        self.deliveries.is_some_and(|cut| status != "pending" && created_at < cut && updated_at < cut)
    }

    fn notification_old(&self, read: bool, created_at: DateTime<Utc>) -> bool {
        let cut = if read { self.read_notifications } else { self.unread_notifications };
        cut.is_some_and(|cut| created_at < cut)
    }

    /// The newest moment any notification may be from and still go.
    fn notifications_bound(&self) -> Option<DateTime<Utc>> {
        self.read_notifications.max(self.unread_notifications)
    }
}

/// One pass over every table, as `ticketwire prune` and the background task run it.
pub async fn prune(
    db: &DatabaseConnection,
    hooks: &HooksHandle,
    config: &Config,
    mode: Mode,
    stop: Option<&CancellationToken>,
) -> anyhow::Result<Report> {
    let pass = Pass {
        db,
        hooks,
        cut: Cutoffs::new(config, crate::domain::now()),
        batch: config.retention.batch.clamp(1, 10_000),
        pause: Duration::from_millis(config.retention.pause_ms),
        mode,
        stop,
    };
    let mut report = Report::default();
    if mode == Mode::Remove {
        ensure_horizon(db).await?;
    }
    pass.deliveries(&mut report).await?;
    pass.notifications(&mut report).await?;
    pass.events(&mut report).await?;
    Ok(report)
}

/// Prunes every `retention.interval_secs` until `stop`. Runs on every node: the batches take
/// turns (see the module's notes).
pub async fn run(db: DatabaseConnection, hooks: HooksHandle, config: std::sync::Arc<Config>, stop: CancellationToken) {
    let every = Duration::from_secs(config.retention.interval_secs);
    if every.is_zero() {
        return;
    }
    // Not at start, when a node has enough to do; staggered, so nodes started together do not
    // all begin at once.
    let mut wait = Duration::from_secs(60) + Duration::from_millis(u64::from(rand::random::<u16>()));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        wait = every;
        match prune(&db, &hooks, &config, Mode::Remove, Some(&stop)).await {
            Ok(r) if r.is_empty() => {}
            Ok(r) => tracing::info!(
                events = r.events,
                notifications = r.notifications,
                webhook_deliveries = r.webhook_deliveries,
                webhook_attempts = r.webhook_attempts,
                "retention: pruned"
            ),
            Err(e) => tracing::warn!(error = %e, "retention: pass failed; the next one tries again"),
        }
    }
}

async fn ensure_horizon(db: &DatabaseConnection) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table(Alias::new(HORIZONS))
        .columns([Alias::new("name"), Alias::new("pruned_through")])
        .values_panic([EVENTS.into(), 0i64.into()])
        .on_conflict(OnConflict::column(Alias::new("name")).do_nothing().to_owned())
        .to_owned();
    db.execute(&stmt).await?;
    Ok(())
}

struct Pass<'a> {
    db: &'a DatabaseConnection,
    hooks: &'a HooksHandle,
    cut: Cutoffs,
    batch: u64,
    pause: Duration,
    mode: Mode,
    stop: Option<&'a CancellationToken>,
}

/// A batch's write transaction, with the writers' turn it holds (SQLite).
struct Turn {
    txn: sea_orm::DatabaseTransaction,
    _turn: crate::domain::change::WriteTurn,
}

impl Pass<'_> {
    fn stopped(&self) -> bool {
        self.stop.is_some_and(CancellationToken::is_cancelled)
    }

    /// Between two batches: the writers queued behind this one go first.
    async fn rest(&self) {
        if self.mode == Mode::Remove && !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
    }

    /// `None` when another node holds the pruning lock: the round is left to it.
    async fn turn(&self) -> anyhow::Result<Option<Turn>> {
        let (txn, turn) = begin_write(self.db, self.hooks).await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            let sql = format!("SELECT pg_try_advisory_xact_lock({PRUNE_LOCK}) AS taken");
            let row = txn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await?;
            if !row.map(|r| r.try_get::<bool>("", "taken")).transpose()?.unwrap_or(false) {
                txn.rollback().await?;
                return Ok(None);
            }
        }
        Ok(Some(Turn { txn, _turn: turn }))
    }

    /// Finished deliveries in id order, which is event order; the walk ends at the first one
    /// too young to go, since all after it are younger still.
    async fn deliveries(&self, report: &mut Report) -> anyhow::Result<()> {
        let Some(cut) = self.cut.deliveries else { return Ok(()) };
        let mut after = String::new();
        loop {
            if self.stopped() {
                return Ok(());
            }
            use webhook_delivery::Column as C;
            let rows: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = webhook_delivery::Entity::find()
                .select_only()
                .columns([C::Id, C::Status, C::CreatedAt, C::UpdatedAt])
                .filter(C::Id.gt(after.as_str()))
                .order_by_asc(C::Id)
                .limit(self.batch)
                .into_tuple()
                .all(self.db)
                .await?;
            let full = rows.len() as u64 == self.batch;
            let young = rows.iter().position(|(_, _, created, _)| *created >= cut);
            let old = &rows[..young.unwrap_or(rows.len())];
            let done: Vec<String> = old
                .iter()
                .filter(|(_, status, created, updated)| self.cut.delivery_done(status, *created, *updated))
                .map(|(id, ..)| id.clone())
                .collect();
            if !done.is_empty() {
                match self.mode {
                    Mode::DryRun => {
                        report.webhook_deliveries += done.len() as u64;
                        report.webhook_attempts += webhook_attempt::Entity::find()
                            .filter(webhook_attempt::Column::DeliveryId.is_in(done))
                            .count(self.db)
                            .await?;
                    }
                    Mode::Remove => {
                        let Some(t) = self.turn().await? else { return Ok(()) };
                        // Checked again in the statement: a manual retry may have re-queued one.
                        let gone: Vec<String> = webhook_delivery::Entity::delete_many()
                            .filter(C::Id.is_in(done))
                            .filter(C::Status.ne("pending"))
                            .filter(C::UpdatedAt.lt(cut))
                            .exec_with_returning(&t.txn)
                            .await?
                            .into_iter()
                            .map(|d| d.id)
                            .collect();
                        let attempts = webhook_attempt::Entity::delete_many()
                            .filter(webhook_attempt::Column::DeliveryId.is_in(gone.iter().cloned()))
                            .exec(&t.txn)
                            .await?
                            .rows_affected;
                        t.txn.commit().await?;
                        report.webhook_deliveries += gone.len() as u64;
                        report.webhook_attempts += attempts;
                        metrics::counter!("ticketwire_retention_pruned_total", "table" => "webhook_deliveries")
                            .increment(gone.len() as u64);
                        metrics::counter!("ticketwire_retention_pruned_total", "table" => "webhook_attempts")
                            .increment(attempts);
                    }
                }
            }
            match rows.last() {
                Some((id, ..)) if full && young.is_none() => after = id.clone(),
                _ => return Ok(()),
            }
            self.rest().await;
        }
    }

    /// Notifications in id order (UUIDv7: creation order) up to the newest that may go, each
    /// removed once old enough for its read state and its delivery gone.
    async fn notifications(&self, report: &mut Report) -> anyhow::Result<()> {
        let Some(bound) = self.cut.notifications_bound() else { return Ok(()) };
        let bound = uuid_v7_floor(bound);
        let mut after = String::new();
        loop {
            if self.stopped() {
                return Ok(());
            }
            use notification::Column as C;
            let rows = self.notes(|q| q.filter(C::Id.gt(after.as_str())).filter(C::Id.lt(bound.as_str()))).await?;
            let full = rows.len() as u64 == self.batch;
            let going: Vec<String> =
                self.removable_notes(&rows).await?.into_iter().map(|i| rows[i].id.clone()).collect();
            if !going.is_empty() {
                match self.mode {
                    Mode::DryRun => report.notifications += going.len() as u64,
                    Mode::Remove => {
                        let Some(t) = self.turn().await? else { return Ok(()) };
                        let n = notification::Entity::delete_many().filter(C::Id.is_in(going)).exec(&t.txn).await?;
                        t.txn.commit().await?;
                        report.notifications += n.rows_affected;
                        metrics::counter!("ticketwire_retention_pruned_total", "table" => "notifications")
                            .increment(n.rows_affected);
                    }
                }
            }
            match rows.last() {
                Some(last) if full => after = last.id.clone(),
                _ => return Ok(()),
            }
            self.rest().await;
        }
    }

    /// The log from its start, in id order, as far as it is both old enough and dispatched; each
    /// event removed unless a notification that stays refers to it. How far the walk got is
    /// recorded with the batch that got there.
    async fn events(&self, report: &mut Report) -> anyhow::Result<()> {
        use sea_orm::sea_query::ExprTrait as _;
        let Some(cut) = self.cut.events else { return Ok(()) };
        let mut after = 0;
        loop {
            if self.stopped() {
                return Ok(());
            }
            let dispatched = log_position(self.db).await?;
            let rows: Vec<(i64, DateTime<Utc>)> = event::Entity::find()
                .select_only()
                .columns([event::Column::Id, event::Column::CreatedAt])
                .filter(event::Column::Id.gt(after))
                .order_by_asc(event::Column::Id)
                .limit(self.batch)
                .into_tuple()
                .all(self.db)
                .await?;
            let full = rows.len() as u64 == self.batch;
            let end = rows.iter().position(|(id, created)| *id > dispatched || *created >= cut);
            let prefix: Vec<i64> = rows[..end.unwrap_or(rows.len())].iter().map(|(id, _)| *id).collect();
            let Some(&through) = prefix.last() else { return Ok(()) };
            match self.mode {
                Mode::DryRun => {
                    let kept = self.events_kept(self.db, &prefix).await?;
                    report.events += (prefix.len() - kept.len()) as u64;
                }
                Mode::Remove => {
                    let Some(t) = self.turn().await? else { return Ok(()) };
                    let kept = self.events_kept(&t.txn, &prefix).await?;
                    let going: Vec<i64> = prefix.iter().copied().filter(|id| !kept.contains(id)).collect();
                    let n = event::Entity::delete_many().filter(event::Column::Id.is_in(going)).exec(&t.txn).await?;
                    let horizon = Query::update()
                        .table(Alias::new(HORIZONS))
                        .value(Alias::new("pruned_through"), through)
                        .and_where(Expr::col(Alias::new("name")).eq(EVENTS))
                        .and_where(Expr::col(Alias::new("pruned_through")).lt(through))
                        .to_owned();
                    t.txn.execute(&horizon).await?;
                    t.txn.commit().await?;
                    report.events += n.rows_affected;
                    metrics::counter!("ticketwire_retention_pruned_total", "table" => "events")
                        .increment(n.rows_affected);
                }
            }
            if !full || end.is_some() {
                return Ok(());
            }
            after = through;
            self.rest().await;
        }
    }

    /// Of `events`, those a notification refers to that this pass leaves in place.
    async fn events_kept(
        &self,
        db: &impl ConnectionTrait,
        events: &[i64],
    ) -> anyhow::Result<std::collections::HashSet<i64>> {
        let rows = self.notes_in(db, |q| q.filter(notification::Column::EventId.is_in(events.iter().copied()))).await?;
        let going = match self.mode {
            // Removed already, earlier in this pass.
            Mode::Remove => Vec::new(),
            Mode::DryRun => self.removable_notes(&rows).await?,
        };
        Ok(rows.iter().enumerate().filter(|(i, _)| !going.contains(i)).map(|(_, n)| n.event_id).collect())
    }

    /// Which of `rows` may go: old enough for their read state, and no delivery of theirs stays
    /// (every delivery belongs to one notification, under an id made from its event and user).
    async fn removable_notes(&self, rows: &[NoteRow]) -> anyhow::Result<Vec<usize>> {
        let old: Vec<usize> =
            (0..rows.len()).filter(|&i| self.cut.notification_old(rows[i].read, rows[i].created_at)).collect();
        if old.is_empty() {
            return Ok(old);
        }
        use webhook_delivery::Column as C;
        let ids: Vec<String> = old.iter().map(|&i| delivery_id(rows[i].event_id, &rows[i].user_id)).collect();
        let deliveries: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = webhook_delivery::Entity::find()
            .select_only()
            .columns([C::Id, C::Status, C::CreatedAt, C::UpdatedAt])
            .filter(C::Id.is_in(ids.iter().cloned()))
            .into_tuple()
            .all(self.db)
            .await?;
        let staying: std::collections::HashSet<&str> = deliveries
            .iter()
            // A dry run counts the deliveries it would have removed by now as gone.
            .filter(|(_, status, created, updated)| {
                self.mode == Mode::Remove || !self.cut.delivery_done(status, *created, *updated)
            })
            .map(|(id, ..)| id.as_str())
            .collect();
        Ok(old.into_iter().zip(ids).filter(|(_, d)| !staying.contains(d.as_str())).map(|(i, _)| i).collect())
    }

    async fn notes(
        &self,
        narrow: impl FnOnce(sea_orm::Select<notification::Entity>) -> sea_orm::Select<notification::Entity>,
    ) -> Result<Vec<NoteRow>, DbErr> {
        self.notes_in(self.db, |q| narrow(q).order_by_asc(notification::Column::Id).limit(self.batch)).await
    }

    async fn notes_in(
        &self,
        db: &impl ConnectionTrait,
        narrow: impl FnOnce(sea_orm::Select<notification::Entity>) -> sea_orm::Select<notification::Entity>,
    ) -> Result<Vec<NoteRow>, DbErr> {
        use notification::Column as C;
        let query =
            notification::Entity::find().select_only().columns([C::Id, C::EventId, C::UserId, C::Read, C::CreatedAt]);
        let rows: Vec<(String, i64, String, bool, DateTime<Utc>)> = narrow(query).into_tuple().all(db).await?;
        Ok(rows
            .into_iter()
            .map(|(id, event_id, user_id, read, created_at)| NoteRow { id, event_id, user_id, read, created_at })
            .collect())
    }
}

struct NoteRow {
    id: String,
    event_id: i64,
    user_id: String,
    read: bool,
    created_at: DateTime<Utc>,
}

/// The smallest UUIDv7 (as the API writes ids: lowercase, hyphenated) of moment `at`: every id
/// made before `at` sorts below it.
fn uuid_v7_floor(at: DateTime<Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64 & 0xFFFF_FFFF_FFFF;
    format!("{:08x}-{:04x}-7000-8000-000000000000", ms >> 16, ms & 0xFFFF)
}

/// `ticketwire backup FILE`: a consistent copy of a SQLite database while it serves. `VACUUM
/// INTO` reads one snapshot (writers go on meanwhile, in WAL mode) and writes it compacted; the
/// copy is made under a temporary name and renamed, so `file` is whole or absent.
pub async fn backup(db: &DatabaseConnection, file: &std::path::Path) -> anyhow::Result<BackupReport> {
    if db.get_database_backend() != DbBackend::Sqlite {
        anyhow::bail!(
            "this database is PostgreSQL: back it up with pg_dump (e.g. `pg_dump --format=custom --file=FILE \"$DATABASE_URL\"`, \
             restored with pg_restore), which takes a consistent snapshot while the server runs"
        );
    }
    let version: String = sqlite_value(db, "SELECT sqlite_version() AS v").await?;
    anyhow::ensure!(version_at_least(&version, (3, 27)), "SQLite {version} cannot VACUUM INTO (3.27 or later can)");
    if file.exists() {
        anyhow::bail!("{} exists already; choose a new file", file.display());
    }
    let name = file.file_name().ok_or_else(|| anyhow::anyhow!("{} is not a file name", file.display()))?;
    let partial = file.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let _ = std::fs::remove_file(&partial);
    let target = partial.to_str().ok_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", partial.display()))?;
    let started = std::time::Instant::now();
    db.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, "VACUUM INTO ?", [target.into()])).await?;
    std::fs::rename(&partial, file)?;
    let bytes = std::fs::metadata(file)?.len();
    Ok(BackupReport { bytes, sqlite_version: version, took: started.elapsed() })
}

#[derive(Debug)]
pub struct BackupReport {
    pub bytes: u64,
    pub sqlite_version: String,
    pub took: Duration,
}

async fn sqlite_value(db: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no answer to {sql}"))?;
    Ok(row.try_get::<String>("", "v")?)
}

fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_floor_sorts_between_ids_made_before_and_after() {
        let at = Utc::now();
        let before = uuid::Uuid::now_v7().to_string();
        std::thread::sleep(Duration::from_millis(3));
        let floor = uuid_v7_floor(Utc::now());
        std::thread::sleep(Duration::from_millis(3));
        let after = uuid::Uuid::now_v7().to_string();
        assert!(before < floor && floor < after, "{before} < {floor} < {after}");
        assert!(uuid_v7_floor(at) <= before);
        assert_eq!(uuid::Uuid::parse_str(&floor).unwrap().get_version_num(), 7);
    }

    #[test]
    fn nothing_inside_the_catch_up_window_is_old_enough_whatever_the_ages() {
        let mut config = Config::default();
        config.retention.events_days = 1;
        config.retention.read_notifications_days = 1;
        config.catch_up.max_age_secs = 3 * 86_400;
        let now = Utc::now();
        let cut = Cutoffs::new(&config, now);
        let window = chrono::Duration::seconds(3 * 86_400) + chrono::Duration::from_std(REPLAY_MARGIN).unwrap();
        assert!(cut.events.unwrap() <= now - window);
        assert!(cut.read_notifications.unwrap() <= now - window);
        assert!(cut.unread_notifications.is_none(), "kept unless an age is set");
        assert!(!cut.notification_old(true, now - chrono::Duration::days(2)));
        assert!(cut.notification_old(true, now - chrono::Duration::days(4)));
        assert!(!cut.notification_old(false, now - chrono::Duration::days(400)));
    }

    #[test]
    fn only_finished_deliveries_go() {
        let config = Config::default();
        let now = Utc::now();
        let cut = Cutoffs::new(&config, now);
        let old = now - chrono::Duration::days(31);
        assert!(cut.delivery_done("succeeded", old, old));
        assert!(cut.delivery_done("failed", old, old));
        assert!(!cut.delivery_done("pending", old, old));
        assert!(!cut.delivery_done("failed", old, now), "retried lately");
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_at_least("3.51.3", (3, 27)));
        assert!(version_at_least("3.27.0", (3, 27)));
        assert!(!version_at_least("3.26.9", (3, 27)));
        assert!(version_at_least("4.0.0", (3, 27)));
    }
}
