//! PostgreSQL: a BRIN index of the ticket documents by ticket id, so that a search among the
//! newest tickets first (see the ticket search) reads the GIN index's matches on the newest
//! pages of `ticket_search` only. Documents are written as tickets come, so their pages follow
//! the ids; a document rewritten later lands where there is room, which only widens a range.
//! A few pages of index per million tickets. SQLite's search needs nothing of the kind.
use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS idx_ticket_search_ticket_id_brin ON ticket_search \
                     USING brin (ticket_id) WITH (pages_per_range = 8, autosummarize = on)",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Postgres {
            m.get_connection().execute_unprepared("DROP INDEX IF EXISTS idx_ticket_search_ticket_id_brin").await?;
        }
        Ok(())
    }
}
