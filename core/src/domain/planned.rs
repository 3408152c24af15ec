//! Write transactions whose statements are all known before they start: the group commit of
//! ticket creations, the dispatcher's batch, the webhook recorder's batch.
//!
//! On SQLite every round trip is a hand-off to the connection's own thread and back, and under
//! load each costs about a millisecond of waiting for a core, all of it while this process's
//! other writers wait their turn. sea-orm begins and commits a transaction with round trips of
//! their own, so such a transaction here is sent instead as one script on one pooled connection
//! (`BEGIN IMMEDIATE; …; COMMIT`): one hand-off for the whole transaction, two when something
//! must be checked before the rest is written. If a statement fails, SQLite undoes that
//! statement only, so the script's connection is rolled back before it goes back to the pool.
//!
//! On PostgreSQL they are ordinary transactions.
use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr, Statement,
    TransactionTrait, Values,
    sqlx::{self, Executor, Sqlite, pool::PoolConnection},
};
// The crate sea-orm itself binds its values to sqlx queries with: the script is bound the same
// way as any statement sea-orm runs.
use sea_query_sqlx::SqlxValues;

/// Runs `statements` in one transaction and commits it.
pub async fn commit(db: &DatabaseConnection, statements: Vec<Statement>) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let mut script = Script::acquire(db).await?;
            script.send(wrapped(Some(BEGIN), statements, Some(COMMIT)), false).await?;
            script.open = false;
            Ok(())
        }
        _ => {
            let txn = db.begin().await?;
            super::execute_together(&txn, statements).await?;
            txn.commit().await
        }
    }
}

/// A transaction begun with a check: a statement whose returned rows say whether to go on.
pub enum PlannedTx {
    Sqlite(Script),
    Other(DatabaseTransaction),
}

impl PlannedTx {
    /// Begins with `check` (a statement with `RETURNING`); returns how many rows it returned.
    pub async fn begin(db: &DatabaseConnection, check: Statement) -> Result<(Self, usize), DbErr> {
        match db.get_database_backend() {
            DbBackend::Sqlite => {
                let mut script = Script::acquire(db).await?;
                let returned = script.send(wrapped(Some(BEGIN), vec![check], None), true).await?;
                Ok((PlannedTx::Sqlite(script), returned))
            }
            _ => {
                let txn = db.begin().await?;
                let returned = txn.query_all_raw(check).await?.len();
                Ok((PlannedTx::Other(txn), returned))
            }
        }
    }

    /// Runs `statements`, then commits.
    pub async fn commit(self, statements: Vec<Statement>) -> Result<(), DbErr> {
        match self {
            PlannedTx::Sqlite(mut script) => {
                script.send(wrapped(None, statements, Some(COMMIT)), false).await?;
                script.open = false;
                Ok(())
            }
            PlannedTx::Other(txn) => {
                super::execute_together(&txn, statements).await?;
                txn.commit().await
            }
        }
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        match self {
            PlannedTx::Sqlite(mut script) => {
                script.send(Statement::from_string(DbBackend::Sqlite, ROLLBACK), false).await?;
                script.open = false;
                Ok(())
            }
            PlannedTx::Other(txn) => txn.rollback().await,
        }
    }
}

const BEGIN: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";

/// A pooled SQLite connection on which a transaction may be open.
pub struct Script {
    conn: PoolConnection<Sqlite>,
    /// A transaction may be open: it must not go back to the pool as it is.
    open: bool,
}

impl Script {
    async fn acquire(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let conn = db.get_sqlite_connection_pool().acquire().await.map_err(|e| match e {
            sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout),
            e => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))),
        })?;
        // Open from the first byte sent: BEGIN may have run when a later statement fails.
        Ok(Self { conn, open: true })
    }

    /// Sends `script` in one hand-off; returns how many rows it returned if `fetch`. If it
    /// fails, the transaction it may have left open is rolled back.
    async fn send(&mut self, script: Statement, fetch: bool) -> Result<usize, DbErr> {
        let values = SqlxValues(script.values.unwrap_or(Values(Vec::new())));
        let query = sqlx::query_with(sqlx::AssertSqlSafe(script.sql.as_str()), values);
        let sent = if fetch {
            query.fetch_all(&mut *self.conn).await.map(|rows| rows.len())
        } else {
            query.execute(&mut *self.conn).await.map(|_| 0)
        };
        match sent {
            Ok(returned) => Ok(returned),
            Err(e) => {
                self.roll_back_after_failure().await;
                Err(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e))))
            }
        }
    }

    async fn roll_back_after_failure(&mut self) {
        match self.conn.execute(ROLLBACK).await {
            Ok(_) => self.open = false,
            // BEGIN itself failed (busy): there was nothing to roll back.
            Err(e) if e.to_string().contains("no transaction is active") => self.open = false,
            Err(e) => tracing::warn!(error = %e, "could not roll back a failed SQLite script"),
        }
    }
}

impl Drop for Script {
    /// A script dropped mid-transaction (its task cancelled, a rollback that failed) takes its
    /// connection with it: closing it ends the transaction, where the pool would hand it on.
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// `statements` as one SQLite script between `begin` and `end`: sqlx binds each statement's `?`
/// parameters in turn.
pub(super) fn wrapped(begin: Option<&str>, statements: Vec<Statement>, end: Option<&str>) -> Statement {
    let mut sql = String::from(begin.unwrap_or_default());
    let mut values = Vec::new();
    for statement in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    if let Some(end) = end {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(end);
    }
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sea_orm::{ConnectOptions, Database, SqlErr};

    use super::*;

    /// A file database behind a pool of one connection, so each test reuses the connection a
    /// script ran on; its table holds the key "a".
    async fn one_connection_db() -> (DatabaseConnection, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("ticketwire-planned-{}.db", uuid::Uuid::now_v7()));
        let mut options = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY)").await.unwrap();
        commit(&db, vec![insert("a")]).await.unwrap();
        (db, path)
    }

    fn insert(k: &str) -> Statement {
        Statement::from_sql_and_values(DbBackend::Sqlite, "INSERT INTO t (k) VALUES (?)", [k.into()])
    }

    fn rename(from: &str, to: &str) -> Statement {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE t SET k = ? WHERE k = ? RETURNING k",
            [to.into(), from.into()],
        )
    }

    async fn keys(db: &DatabaseConnection) -> Vec<String> {
        let rows =
            db.query_all_raw(Statement::from_string(DbBackend::Sqlite, "SELECT k FROM t ORDER BY k")).await.unwrap();
        rows.iter().map(|r| r.try_get::<String>("", "k").unwrap()).collect()
    }

    #[tokio::test]
    async fn a_failing_statement_writes_nothing_and_the_connection_comes_back_usable() {
        let (db, path) = one_connection_db().await;
        let err = commit(&db, vec![insert("b"), insert("a")]).await.unwrap_err();
        assert!(matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))), "{err}");
        // Same connection: had the failed script's transaction stayed open, this BEGIN would fail.
        commit(&db, vec![insert("c")]).await.unwrap();
        assert_eq!(keys(&db).await, ["a", "c"]);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_check_decides_whether_the_rest_is_written() {
        let (db, path) = one_connection_db().await;
        let (txn, returned) = PlannedTx::begin(&db, rename("missing", "z")).await.unwrap();
        assert_eq!(returned, 0);
        txn.rollback().await.unwrap();
        let (txn, returned) = PlannedTx::begin(&db, rename("a", "b")).await.unwrap();
        assert_eq!(returned, 1);
        txn.commit(vec![insert("c")]).await.unwrap();
        assert_eq!(keys(&db).await, ["b", "c"]);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_transaction_dropped_half_way_is_not_handed_on() {
        let (db, path) = one_connection_db().await;
        let (txn, returned) = PlannedTx::begin(&db, rename("a", "b")).await.unwrap();
        assert_eq!(returned, 1);
        drop(txn);
        commit(&db, vec![insert("c")]).await.unwrap();
        assert_eq!(keys(&db).await, ["a", "c"]);
        let _ = std::fs::remove_file(path);
    }
}

/// Planned scripts and sea-orm transactions on one pool, some cancelled half-way: no
/// connection may go back to the pool inside a transaction (the next `BEGIN` on it would fail,
/// or worse, nest), and nothing may fail but the duplicates written on purpose.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod shared_pool {
    use std::time::Duration;

    use super::*;
    use crate::{db::HooksHandle, domain::change};

    fn sql(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
    }

    fn insert(table: &str, key: String) -> Statement {
        sql(&format!("INSERT INTO {table} (k) VALUES (?)"), vec![key.into()])
    }

    /// One write of each kind this crate makes, chosen by `kind`.
    async fn write(db: &DatabaseConnection, hooks: &HooksHandle, kind: usize, key: String) -> Result<(), DbErr> {
        match kind {
            // The dispatcher's shape: a checked begin, then commit or roll back.
            0 => {
                let turn = change::write_turn(db, hooks).await?;
                let (txn, _) =
                    PlannedTx::begin(db, sql("UPDATE c SET v = v + 1 WHERE name = 'main' RETURNING name", vec![]))
                        .await?;
                if key.ends_with('0') {
                    txn.rollback().await?
                } else {
                    txn.commit(vec![insert("t", key.clone()), insert("t", format!("{key}b"))]).await?
                }
                drop(turn);
            }
            // The group commit's shape.
            1 => {
                let turn = change::write_turn(db, hooks).await?;
                commit(db, vec![insert("t", key)]).await?;
                drop(turn);
            }
            // A write outside the turn (autocommit).
            2 => {
                db.execute_raw(insert("t", key)).await?;
            }
            // A domain transaction: read, write, and now and then a duplicate that fails it.
            _ => {
                let (txn, turn) = change::begin_write(db, hooks).await?;
                txn.query_one_raw(sql("SELECT k FROM t WHERE k = ?", vec![key.clone().into()])).await?;
                txn.execute_raw(insert("t", key.clone())).await?;
                if key.ends_with('0') {
                    assert!(txn.execute_raw(insert("t", key)).await.is_err());
                } else {
                    txn.commit().await?;
                }
                drop(turn);
            }
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_connection_goes_back_inside_a_transaction() {
        // The server's own pool: the same size and connection settings.
        let data_dir = std::env::temp_dir().join(format!("ticketwire-shared-pool-{}", uuid::Uuid::now_v7()));
        let config = crate::config::Config { data_dir: data_dir.clone(), ..Default::default() };
        let db = crate::db::connect(&config).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY); CREATE TABLE c (name TEXT PRIMARY KEY, v INTEGER); INSERT INTO c VALUES ('main', 0)").await.unwrap();
        let hooks = HooksHandle::new(false);
        let workers = (0..16).map(|worker| {
            let (db, hooks) = (db.clone(), hooks.clone());
            tokio::spawn(async move {
                let (mut errors, mut cancelled) = (Vec::new(), 0);
                for i in 0..300usize {
                    // Every third write is cancelled after a few hundred microseconds at most.
                    let limit =
                        if i % 3 == 0 { Duration::from_micros((i * 37 % 900) as u64) } else { Duration::from_secs(30) };
                    match tokio::time::timeout(limit, write(&db, &hooks, worker % 4, format!("w{worker}-{i}"))).await {
                        Ok(Err(e)) => {
                            errors.push(format!("{worker}/{i}: {e}"));
                            break;
                        }
                        Err(_) => cancelled += 1,
                        Ok(Ok(())) => {}
                    }
                }
                (errors, cancelled)
            })
        });
        let (mut errors, mut cancelled) = (Vec::new(), 0);
        for worker in workers.collect::<Vec<_>>() {
            let (e, c) = worker.await.unwrap();
            errors.extend(e);
            cancelled += c;
        }
        assert!(errors.is_empty(), "{} failed: {:?}", errors.len(), &errors[..errors.len().min(10)]);
        assert!(cancelled > 100, "only {cancelled} writes were cancelled: the test proves little");
        // Every pooled connection, held at once so none comes round twice: each can begin.
        let mut held = Vec::new();
        for _ in 0..8 {
            let mut conn = db.get_sqlite_connection_pool().acquire().await.unwrap();
            conn.execute("BEGIN; ROLLBACK").await.unwrap();
            held.push(conn);
        }
        drop(held);
        let _ = std::fs::remove_dir_all(data_dir);
    }
}
