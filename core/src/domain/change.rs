//! The one path every mutation takes: the change and its event commit together.
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Set,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use serde::Serialize;
use serde_json::Value;

use super::planned;
use crate::{
    db::HooksHandle,
    entity::event,
    error::{Error, Result},
};

/// What kind of entity changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Ticket,
    Comment,
    KbArticle,
    Attachment,
    User,
    /// A user's request to test their webhook: private to that user.
    Webhook,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ticket => "ticket",
            Kind::Comment => "comment",
            Kind::KbArticle => "kb_article",
            Kind::Attachment => "attachment",
            Kind::User => "user",
            Kind::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "ticket" => Kind::Ticket,
            "comment" => Kind::Comment,
            "kb_article" => Kind::KbArticle,
            "attachment" => Kind::Attachment,
            "user" => Kind::User,
            "webhook" => Kind::Webhook,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Deleted,
    /// Only for [`Kind::Webhook`].
    Test,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Test => "test",
        }
    }
}

/// A change about to be recorded, with the audience columns that decide who may see it.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: Kind,
    pub action: Action,
    pub entity_id: String,
    pub ticket_id: Option<String>,
    pub requester_id: Option<String>,
    pub owner_id: Option<String>,
    pub staff_only: bool,
    pub actor_id: Option<String>,
    pub data: Value,
    pub previous: Option<Value>,
}

impl Change {
    pub fn new(kind: Kind, action: Action, entity_id: &str, data: impl Serialize) -> Self {
        Self {
            kind,
            action,
            entity_id: entity_id.to_string(),
            ticket_id: None,
            requester_id: None,
            owner_id: None,
            staff_only: false,
            actor_id: None,
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            previous: None,
        }
    }

    pub fn by(mut self, actor_id: &str) -> Self {
        self.actor_id = Some(actor_id.to_string());
        self
    }

    pub fn on_ticket(mut self, ticket_id: &str, requester_id: Option<&str>) -> Self {
        self.ticket_id = Some(ticket_id.to_string());
        self.requester_id = requester_id.map(str::to_string);
        self
    }

    pub fn staff_only(mut self, staff_only: bool) -> Self {
        self.staff_only = staff_only;
        self
    }

    pub fn owned_by(mut self, user_id: &str) -> Self {
        self.owner_id = Some(user_id.to_string());
        self
    }

    pub fn previous(mut self, previous: impl Serialize) -> Self {
        self.previous = serde_json::to_value(previous).ok();
        self
    }

    /// The user whose row this change wrote, if it is a user's change: remembered sign-ins of
    /// that user must be forgotten at commit ([`crate::auth::SignedInUsers`]).
    fn user_written(&self) -> Option<String> {
        (self.kind == Kind::User).then(|| self.entity_id.clone())
    }
}

/// A write transaction that cannot commit a change without its event.
pub struct Tx {
    pub txn: DatabaseTransaction,
    /// Held until commit or rollback (SQLite only).
    _turn: WriteTurn,
    hooks: HooksHandle,
    backend: DbBackend,
    ordered: bool,
    /// Users whose rows this transaction changed: forgotten at commit ([`crate::auth::SignedInUsers`]).
    users_changed: Vec<String>,
}

impl Tx {
    pub async fn begin(db: &DatabaseConnection, hooks: &HooksHandle) -> Result<Self> {
        let turn = write_turn(db, hooks).await?;
        let backend = db.get_database_backend();
        let (txn, turn) = begin_in_turn(db, turn).await?;
        Ok(Self { txn, _turn: turn, hooks: hooks.clone(), backend, ordered: false, users_changed: Vec::new() })
    }

    /// Appends the event for `change`; returns its `event_id`.
    pub async fn record(&mut self, change: Change) -> Result<i64> {
        self.take_event_order_lock().await?;
        self.users_changed.extend(change.user_written());
        let row = event_row(change).insert(&self.txn).await?;
        Ok(row.id)
    }

    /// Runs `writes` (the changes themselves) and appends the events for `changes`, in order,
    /// all in one round trip where the database allows it ([`super::execute_together`]).
    pub async fn write_and_record(&mut self, mut writes: Vec<Statement>, changes: Vec<Change>) -> Result<()> {
        self.take_event_order_lock().await?;
        self.users_changed.extend(changes.iter().filter_map(Change::user_written));
        writes.extend(super::insert_statements(self.backend, changes.into_iter().map(event_row).collect()));
        super::execute_together(&self.txn, writes).await?;
        Ok(())
    }

    /// Serialises this transaction with every other writer of events from here to commit (it is
    /// taken at the first event anyway): a check read after it sees every earlier commit.
    pub async fn take_event_order_lock(&mut self) -> Result<()> {
        if self.ordered {
            return Ok(());
        }
        if let Some(lock) = event_order_lock(self.backend) {
            self.txn.execute_raw(lock).await?;
        }
        self.ordered = true;
        Ok(())
    }

    /// Commits, then wakes the dispatcher so the event goes out at once. Changed users are
    /// forgotten whatever the outcome: a failed commit may still have happened.
    pub async fn commit(self) -> Result<()> {
        let committed = self.txn.commit().await;
        for id in &self.users_changed {
            self.hooks.signed_in().forget(id);
        }
        committed?;
        self.hooks.wake();
        Ok(())
    }
}

/// How often a whole write transaction runs at most when PostgreSQL keeps aborting it.
const TRANSIENT_ATTEMPTS: u32 = 4;

/// Runs `transaction` (one whole write transaction: [`Tx::begin`] to commit, nothing done
/// outside it that must not happen twice) again when PostgreSQL aborted it to break a deadlock
/// (SQLSTATE 40P01) or as a serialization failure (40001). Those abort the whole transaction,
/// which then did nothing, and running it again is the remedy PostgreSQL documents. Still
/// failing after the last attempt, it answers 503: the caller may retry, nothing broke.
pub async fn retry_transient<T, F, Fut>(mut transaction: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(e) if is_transient(&e) => {
                if attempt >= TRANSIENT_ATTEMPTS {
                    tracing::warn!(error = %e, attempts = attempt, "write transaction kept being aborted");
                    return Err(Error::Unavailable("the database is busy; try again".into()));
                }
                tracing::debug!(error = %e, attempt, "write transaction aborted by the database; running it again");
                // Jittered, so the two sides of a deadlock do not meet again in step.
                let jitter = u64::from(rand::random::<u8>() % 10);
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether PostgreSQL aborted the transaction as a deadlock victim or a serialization failure.
pub fn is_transient(e: &Error) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let Error::Db(DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) = e else {
        return false;
    };
    matches!(inner.as_ref(), sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Commits `writes` and the events of `changes` in one transaction planned in full
/// ([`planned::commit`]: one hand-off on SQLite), in the turn the caller took; then wakes the
/// dispatcher.
pub async fn commit_planned(
    db: &DatabaseConnection,
    hooks: &HooksHandle,
    turn: WriteTurn,
    writes: Vec<Statement>,
    changes: Vec<Change>,
) -> Result<()> {
    let backend = db.get_database_backend();
    let mut statements: Vec<Statement> = event_order_lock(backend).into_iter().collect();
    statements.extend(writes);
    let users_changed: Vec<String> = changes.iter().filter_map(Change::user_written).collect();
    statements.extend(super::insert_statements(backend, changes.into_iter().map(event_row).collect()));
    let committed = planned::commit(db, statements).await;
    drop(turn);
    users_changed.iter().for_each(|id| hooks.signed_in().forget(id));
    committed?;
    hooks.wake();
    Ok(())
}

/// On PostgreSQL, sequence values are handed out in insert order but become visible in commit
/// order, so a reader could see event 7 before event 6 commits and skip 6 forever. Holding a
/// transaction-scoped advisory lock from the first event to commit makes the two orders agree.
/// SQLite serialises writers already.
fn event_order_lock(backend: DbBackend) -> Option<Statement> {
    (backend == DbBackend::Postgres)
        .then(|| Statement::from_string(DbBackend::Postgres, "SELECT pg_advisory_xact_lock(7245300201)"))
}

fn event_row(change: Change) -> event::ActiveModel {
    event::ActiveModel {
        kind: Set(change.kind.as_str().to_string()),
        action: Set(change.action.as_str().to_string()),
        entity_id: Set(change.entity_id),
        ticket_id: Set(change.ticket_id),
        requester_id: Set(change.requester_id),
        owner_id: Set(change.owner_id),
        staff_only: Set(change.staff_only),
        actor_id: Set(change.actor_id),
        data: Set(change.data),
        previous: Set(change.previous),
        created_at: Set(super::now()),
        ..Default::default()
    }
}

impl std::ops::Deref for Tx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

/// The embedded database's single-writer turn, when there is one to take.
pub type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

/// Starts a transaction that will write. On SQLite it first waits its turn among this process's
/// writers ([`write_turn`]), then takes the write lock up front ([`begin_in_turn`]). Keep the
/// turn until the transaction ends.
pub async fn begin_write(
    db: &DatabaseConnection,
    hooks: &HooksHandle,
) -> Result<(DatabaseTransaction, WriteTurn), DbErr> {
    let turn = write_turn(db, hooks).await?;
    begin_in_turn(db, turn).await
}

/// Waits for this process's turn to write to an embedded database (nothing to wait for on
/// PostgreSQL). Waiting is bounded like SQLite's own busy wait: when another process holds the
/// lock, the queue fails fast with 503 instead of piling up. A writer that batches takes its
/// turn first and then gathers what queued up meanwhile into the same transaction.
pub async fn write_turn(db: &DatabaseConnection, hooks: &HooksHandle) -> Result<WriteTurn, DbErr> {
    Ok(match db.get_database_backend() {
        DbBackend::Sqlite => Some(
            tokio::time::timeout(crate::db::SQLITE_BUSY_TIMEOUT, hooks.write_turn())
                .await
                .map_err(|_| DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout))?,
        ),
        _ => None,
    })
}

/// Starts a write transaction in a turn already taken. On SQLite it takes the write lock up
/// front (`BEGIN IMMEDIATE`), so a read-then-write transaction never fails with `SQLITE_BUSY`
/// when another writer committed in between.
async fn begin_in_turn(db: &DatabaseConnection, turn: WriteTurn) -> Result<(DatabaseTransaction, WriteTurn), DbErr> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok((txn, turn))
}
