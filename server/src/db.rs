//! Connecting to SQLite or PostgreSQL, and migrating.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

use crate::config::Config;

/// Connects (creating the SQLite file and its folder if needed) and applies pending migrations.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = connect(config).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

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
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers proceed during a write; a busy timeout makes writers queue instead of
        // failing; foreign keys stay off because deletes are handled in the domain layer.
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 5000",
        ] {
            db.execute_unprepared(pragma).await?;
        }
    }
    Ok(db)
}
