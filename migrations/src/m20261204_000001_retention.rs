//! Retention: how far the event log may have been pruned. Events at or below `pruned_through`
//! may be gone (those a remaining notification refers to stay), so a catch-up from there cannot
//! be whole; after it the log is complete.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("retention_horizons")
                .if_not_exists()
                .col(string_len("name", 32).primary_key())
                .col(big_integer("pruned_through").default(0))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("retention_horizons").if_exists().take()).await?;
        Ok(())
    }
}
