//! An index for every filter and sort the lists offer. Lists are newest first (or oldest first)
//! by id, so each filter column is indexed together with `id`: a page is then a short walk down
//! one index instead of reading every match and sorting it. The single-column indexes these
//! extend are dropped, since each is a prefix of its replacement.
use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(table, columns)` of each index added.
const ADDED: &[(&str, &[&str])] = &[
    ("tickets", &["status", "id"]),
    ("tickets", &["priority", "id"]),
    ("tickets", &["assignee_id", "id"]),
    ("tickets", &["requester_id", "id"]),
    ("tickets", &["source", "id"]),
    ("comments", &["ticket_id", "id"]),
    // Deleting a comment detaches its replies.
    ("comments", &["parent_id"]),
    ("attachments", &["ticket_id", "id"]),
    // Whether any attachment still uses some stored content.
    ("attachments", &["sha256"]),
    ("notifications", &["user_id", "id"]),
    ("notifications", &["user_id", "read", "id"]),
    // A user's notifications in event order, for catch-up.
    ("notifications", &["user_id", "event_id"]),
    // A ticket's own events (collision checks) and an entity's history.
    ("events", &["kind", "entity_id", "id"]),
    ("webhook_deliveries", &["user_id", "id"]),
    ("webhook_deliveries", &["user_id", "status", "id"]),
    ("webhook_attempts", &["delivery_id", "id"]),
    ("kb_articles", &["status", "id"]),
    ("kb_articles", &["category", "id"]),
    ("users", &["role", "id"]),
    ("users", &["is_active", "id"]),
];

/// `(table, columns)` of each index the added ones make redundant.
const REPLACED: &[(&str, &[&str])] = &[
    ("tickets", &["requester_id"]),
    ("tickets", &["assignee_id"]),
    ("comments", &["ticket_id"]),
    ("attachments", &["ticket_id"]),
    ("notifications", &["user_id", "read"]),
    ("webhook_attempts", &["delivery_id"]),
];

fn name(table: &str, columns: &[&str]) -> String {
    format!("idx_{table}_{}", columns.join("_"))
}

fn drop(table: &'static str, columns: &[&str]) -> IndexDropStatement {
    Index::drop().name(name(table, columns)).table(table).if_exists().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in ADDED {
            m.create_index(index(table, columns)).await?;
        }
        for (table, columns) in REPLACED {
            m.drop_index(drop(table, columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in REPLACED {
            m.create_index(index(table, columns)).await?;
        }
        for (table, columns) in ADDED {
            m.drop_index(drop(table, columns)).await?;
        }
        Ok(())
    }
}
