//! The operations of the helpdesk. Each validates its input, checks who is asking, writes the
//! change and its event in one transaction ([`change::Tx`]), and wakes the hooks after commit.
//! Nothing here knows about HTTP or Socket.IO.
pub mod attachments;
pub mod canned_replies;
pub mod change;
pub mod collision;
pub mod comments;
pub mod directory;
pub mod events;
pub mod group_commit;
pub mod kb;
pub mod notifications;
pub mod pagination;
pub mod planned;
pub mod preferences;
pub mod search;
pub mod setup;
mod store;
pub mod suggestions;
pub mod tickets;
pub mod timeline;
pub mod users;
pub mod validate;
pub mod versioned;

pub use change::{Action, Change, Kind, Tx};
pub use pagination::{Page, PageQuery};
pub use store::Store;

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryTrait, Statement};

/// A fresh, time-ordered id: ids sort by creation, which keyset pagination relies on.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now, truncated to microseconds so a value reads back from either database unchanged.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
}

/// The multi-row inserts for `rows`, 500 rows to a statement (none for no rows), rather than
/// one statement each: a KB publish notifies every user, and on SQLite every statement in the
/// dispatcher's transaction holds the single write lock that API requests wait for. 500 rows
/// stay under both databases' limits on bound parameters.
pub fn insert_statements<A>(backend: DbBackend, rows: Vec<A>) -> Vec<Statement>
where
    A: ActiveModelTrait,
{
    let mut rows = rows.into_iter().peekable();
    let mut statements = Vec::new();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(500).collect();
        statements.push(<A::Entity as EntityTrait>::insert_many(chunk).build(backend));
    }
    statements
}

/// Runs `statements` in order, in one round trip where the database allows it. On SQLite each
/// statement is a hand-off to the connection's own thread and back, and under load each such
/// hand-off can cost a millisecond of waiting for a core, all of it under the one write lock. Sent as one multi-statement query, sqlx binds each statement's `?`
/// parameters in turn and runs them all in one hand-off. PostgreSQL's extended protocol takes
/// one statement per query, so there they run one after another.
pub async fn execute_together(db: &impl ConnectionTrait, statements: Vec<Statement>) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite if statements.len() > 1 => {
            db.execute_raw(planned::wrapped(None, statements, None)).await?;
        }
        _ => {
            for statement in statements {
                db.execute_raw(statement).await?;
            }
        }
    }
    Ok(())
}
