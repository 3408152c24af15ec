//! SQLite: a view of the ticket index's vocabulary (`fts5vocab`), so that a search for a prefix
//! longer than the index's own prefix lengths can be run as the few words it stands for (see
//! the ticket search's `expand_prefixes`). It stores nothing: FTS5 reads it from the index.
//! PostgreSQL's GIN index answers prefixes itself, so nothing changes there.
use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Sqlite {
            m.get_connection()
                .execute_unprepared(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS ticket_fts_vocab USING fts5vocab(ticket_fts, 'row')",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Sqlite {
            m.get_connection().execute_unprepared("DROP TABLE IF EXISTS ticket_fts_vocab").await?;
        }
        Ok(())
    }
}
