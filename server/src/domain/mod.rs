//! The operations of the helpdesk. Each validates its input, checks who is asking, writes the
//! change and its event in one transaction ([`change::Tx`]), and wakes the hooks after commit.
//! Nothing here knows about HTTP or Socket.IO.
pub mod attachments;
pub mod change;
pub mod comments;
pub mod events;
pub mod group_commit;
pub mod kb;
pub mod notifications;
pub mod pagination;
pub mod tickets;
pub mod users;
pub mod validate;

pub use change::{Action, Change, Kind, Tx};
pub use pagination::{Page, PageQuery};

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

/// Inserts many rows with one statement per 500 rather than one round trip each: a KB publish
/// notifies every user, and on SQLite every statement in the dispatcher's transaction holds the
/// single write lock that API requests wait for. 500 rows stay under both databases' limits on
/// bound parameters.
pub async fn insert_in_chunks<A>(db: &impl sea_orm::ConnectionTrait, rows: Vec<A>) -> Result<(), sea_orm::DbErr>
where
    A: sea_orm::ActiveModelTrait,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(500).collect();
        <A::Entity as sea_orm::EntityTrait>::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}
