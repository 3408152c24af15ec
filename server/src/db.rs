//! Connecting to SQLite or PostgreSQL, and migrating.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::Config;

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
        });
    Ok(Database::connect(options).await?)
}
