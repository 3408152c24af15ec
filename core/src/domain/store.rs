//! What the operations work with, and nothing more: the database, its writers' handle, the
//! attachments' contents and the queue of ticket creations. The HTTP layer, the Socket.IO server
//! and the webhook worker are above or beside this, never inside it.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::group_commit::GroupCommit;
use crate::{config::SearchConfig, db::HooksHandle, entity::ticket, storage::BlobStore};

#[derive(Clone)]
pub struct Store {
    pub db: DatabaseConnection,
    /// The writers' turn on an embedded database and the wakes of what a commit feeds.
    pub hooks: HooksHandle,
    pub storage: Arc<dyn BlobStore>,
    /// API ticket creations, committed together when they arrive together.
    pub ticket_inserts: GroupCommit<ticket::ActiveModel>,
    pub search: SearchConfig,
}

impl Store {
    /// Starts the group commit's writer task on the current runtime.
    pub fn new(db: DatabaseConnection, hooks: HooksHandle, storage: Arc<dyn BlobStore>, search: SearchConfig) -> Self {
        let ticket_inserts = GroupCommit::start(db.clone(), hooks.clone());
        Self { db, hooks, storage, ticket_inserts, search }
    }
}
