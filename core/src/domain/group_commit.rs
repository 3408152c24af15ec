//! Group commit: creations that arrive together share one transaction.
//!
//! On SQLite every statement is a hand-off to the connection's own thread and back (two thread
//! wake-ups), and writers take turns; a creation on its own is four of them under the write
//! lock (BEGIN, its row, its event, COMMIT). Queued creations are written together instead: one
//! multi-row insert for the rows and one for their events, begun and committed in the same
//! hand-off ([`super::planned`]), however many they are. Under load that is most
//! of a request's database work gone; alone, a creation pays one hop between tasks more than
//! before. Each caller waits for the commit that holds its row, so a
//! success still means committed, and the event still commits with its change. A creation
//! whose caller goes away once it is queued is still written, like one whose response was lost
//! after its commit.
use sea_orm::{ActiveModelTrait, DatabaseConnection};
use tokio::sync::{mpsc, oneshot};

use super::{
    Change,
    change::{WriteTurn, commit_planned, write_turn},
};
use crate::{
    db::HooksHandle,
    error::{Error, Result},
};

/// At most this many creations per transaction (a ticket row binds 18 parameters: 64 rows stay
/// far below either database's limit), so one transaction never holds the lock for long.
const MAX_BATCH: usize = 64;

/// The queue in front of one writer task for rows of type `A`. Cheap to clone.
pub struct GroupCommit<A> {
    queue: mpsc::Sender<Creation<A>>,
}

impl<A> Clone for GroupCommit<A> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

struct Creation<A> {
    row: A,
    change: Change,
    done: oneshot::Sender<Result<()>>,
}

impl<A> GroupCommit<A>
where
    A: ActiveModelTrait + Send + Sync + 'static,
{
    /// Starts the writer task; it ends when the last handle is dropped.
    pub fn start(db: DatabaseConnection, hooks: HooksHandle) -> Self {
        let (queue, inbox) = mpsc::channel(MAX_BATCH * 16);
        tokio::spawn(write_batches(db, hooks, inbox));
        Self { queue }
    }

    /// Inserts `row` and records `change`, in the next transaction the writer commits.
    pub async fn insert(&self, row: A, change: Change) -> Result<()> {
        let stopped = || Error::Unavailable("the server is shutting down".into());
        let (done, committed) = oneshot::channel();
        self.queue.send(Creation { row, change, done }).await.map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

async fn write_batches<A>(db: DatabaseConnection, hooks: HooksHandle, mut inbox: mpsc::Receiver<Creation<A>>)
where
    A: ActiveModelTrait + Send + Sync + 'static,
{
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = inbox.recv().await {
        batch.push(first);
        // The turn first, then whatever queued up while waiting for it: those creations would
        // otherwise wait a whole turn more (the dispatcher's and the webhook recorder's
        // transactions take turns with this one).
        let turn = match write_turn(&db, &hooks).await {
            Ok(turn) => turn,
            Err(e) => {
                tracing::warn!(error = %e, "no turn to write ticket creations");
                batch.drain(..).for_each(|c| {
                    let _ = c.done.send(Err(Error::Unavailable("the database is busy; try again".into())));
                });
                continue;
            }
        };
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        commit_group(&db, &hooks, turn, &mut batch).await;
    }
}

/// Writes `batch` in one transaction and tells each creation how it went.
async fn commit_group<A>(db: &DatabaseConnection, hooks: &HooksHandle, turn: WriteTurn, batch: &mut Vec<Creation<A>>)
where
    A: ActiveModelTrait + Send + Sync + 'static,
{
    let rows = batch.iter().map(|c| c.row.clone()).collect();
    let changes = batch.iter().map(|c| c.change.clone()).collect();
    match write(db, hooks, turn, rows, changes).await {
        Ok(()) => {
            // Rows over transactions is the average group size.
            metrics::counter!("ticketwire_group_commit_transactions_total").increment(1);
            metrics::counter!("ticketwire_group_commit_rows_total").increment(batch.len() as u64);
            batch.drain(..).for_each(|c| {
                let _ = c.done.send(Ok(()));
            });
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.remove(0).done.send(Err(e));
        }
        // One bad row (a unique key already taken, say) fails the whole statement: write them
        // one by one, so that only that one fails.
        Err(_) => {
            for c in batch.drain(..) {
                let alone = match write_turn(db, hooks).await {
                    Ok(turn) => write(db, hooks, turn, vec![c.row], vec![c.change]).await,
                    Err(e) => Err(e.into()),
                };
                let _ = c.done.send(alone);
            }
        }
    }
}

async fn write<A>(
    db: &DatabaseConnection,
    hooks: &HooksHandle,
    turn: WriteTurn,
    rows: Vec<A>,
    changes: Vec<Change>,
) -> Result<()>
where
    A: ActiveModelTrait + Send + Sync + 'static,
{
    let inserts = super::insert_statements(db.get_database_backend(), rows);
    commit_planned(db, hooks, turn, inserts, changes).await
}
