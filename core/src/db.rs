//! Connecting to SQLite or PostgreSQL, migrating, and the handle every writer shares: its turn
//! on an embedded database, and the wakes of what a commit feeds.
use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::Notify;

use crate::{auth::SignedInUsers, config::Config};

/// Connects (creating the SQLite file and its folder if needed) and applies pending migrations.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = connect(config).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// How long a writer waits for SQLite's write lock (held by another process, say a backup)
/// before the request fails with 503: in SQLite's busy handler, and in this process's writer
/// queue in front of it, so a lock held elsewhere costs each queued request this much at most
/// rather than this much times the queue's length.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url();
    let sqlite = url.starts_with("sqlite:");
    if sqlite && config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(if sqlite { 8 } else { 32 })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        // sqlx pings every connection it hands out; an embedded database's connections cannot
        // drop, and on SQLite each ping is one more hand-off to the connection's worker thread,
        // the dominant cost of a write here (perf: half the time in context switches).
        .test_before_acquire(!sqlite)
        // On every pooled SQLite connection, not just the first: WAL lets readers proceed during
        // a write; NORMAL sync is durable at checkpoints without an fsync per commit; a busy
        // timeout queues instead of failing. Foreign keys stay off because deletes cascade in the
        // domain layer, where they are recorded as events.
        .map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(false)
        })
        // Ticket searches rank with a function of their own (see `sqlite_rank`), on every
        // connection of the pool.
        .map_sqlx_sqlite_pool_opts(|o| {
            o.after_connect(|conn, _| {
                Box::pin(async move {
                    let mut handle = conn.lock_handle().await?;
                    crate::sqlite_rank::register(handle.as_raw_handle())
                        .map_err(|e| sea_orm::sqlx::Error::Configuration(e.into()))
                })
            })
        });
    Ok(Database::connect(options).await?)
}

/// Wakes the dispatcher (after a commit) and the webhook worker (after a dispatch), orders the
/// writers of an embedded database, and forgets remembered users whose rows a commit changed.
#[derive(Clone, Default)]
pub struct HooksHandle {
    events: Arc<Notify>,
    deliveries: Arc<Notify>,
    writes: Arc<tokio::sync::Mutex<()>>,
    signed_in: Arc<SignedInUsers>,
    ticket_numbers: Arc<TicketNumbers>,
}

impl HooksHandle {
    /// `remember_users` only where this process is its database's only writer (see
    /// [`SignedInUsers`]).
    pub fn new(remember_users: bool) -> Self {
        Self { signed_in: Arc::new(SignedInUsers::new(remember_users)), ..Self::default() }
    }

    pub fn signed_in(&self) -> &SignedInUsers {
        &self.signed_in
    }

    /// Hands out ticket numbers (`#1042`).
    pub fn ticket_numbers(&self) -> &TicketNumbers {
        &self.ticket_numbers
    }

    /// One writer at a time, queued in order. SQLite allows a single writer anyway, but lets the
    /// others wait in its busy handler, which sleeps in growing steps (up to 100 ms): queueing
    /// here instead hands the lock over the moment it is free.
    pub async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.writes.clone().lock_owned().await
    }

    /// A new event was committed.
    pub fn wake(&self) {
        self.events.notify_one();
    }

    /// New webhook deliveries are due.
    pub fn wake_deliveries(&self) {
        self.deliveries.notify_one();
    }

    pub fn events(&self) -> &Notify {
        &self.events
    }

    pub fn deliveries(&self) -> &Notify {
        &self.deliveries
    }
}

/// Ticket numbers (`#1042`): handed out before a ticket's row is built, because the number is
/// part of what the creation returns and of its event.
///
/// On PostgreSQL they come from a sequence, which several nodes share and which never hands a
/// number out twice. On SQLite this process is its database's only writer, so it counts on from
/// the highest number it found at its first creation, without a round trip. Either way a creation
/// that fails leaves a gap, never a duplicate.
#[derive(Default)]
pub struct TicketNumbers {
    /// The last number handed out on SQLite (`None` until read from the database).
    last: tokio::sync::Mutex<Option<i64>>,
}

impl TicketNumbers {
    /// `count` fresh numbers, in increasing order.
    pub async fn take(&self, db: &impl ConnectionTrait, count: usize) -> Result<Vec<i64>, DbErr> {
        match db.get_database_backend() {
            DbBackend::Postgres => {
                let rows = db
                    .query_all_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT nextval('ticket_number_seq') AS n FROM generate_series(1, $1)",
                        [(count as i64).into()],
                    ))
                    .await?;
                let mut numbers = rows.iter().map(|r| r.try_get::<i64>("", "n")).collect::<Result<Vec<_>, _>>()?;
                numbers.sort_unstable();
                Ok(numbers)
            }
            backend => {
                let mut last = self.last.lock().await;
                let start = match *last {
                    Some(n) => n,
                    None => {
                        let highest =
                            Statement::from_string(backend, "SELECT COALESCE(MAX(number), 1000) AS n FROM tickets");
                        match db.query_one_raw(highest).await? {
                            Some(row) => row.try_get::<i64>("", "n")?,
                            None => return Err(DbErr::RecordNotFound("the highest ticket number".into())),
                        }
                    }
                };
                *last = Some(start + count as i64);
                Ok((1..=count as i64).map(|i| start + i).collect())
            }
        }
    }

    /// One fresh number.
    pub async fn next(&self, db: &impl ConnectionTrait) -> Result<i64, DbErr> {
        self.take(db, 1).await?.pop().ok_or_else(|| DbErr::RecordNotFound("a ticket number".into()))
    }
}
