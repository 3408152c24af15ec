//! Inbound integrations and the sender delivery ids already processed (for deduplication).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("integrations")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string_len("source", 32))
                .col(string("name"))
                .col(string("secret_hash"))
                .col(string("secret_nonce"))
                .col(string_len("created_by", 36))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("ingest_receipts")
                .if_not_exists()
                .col(string_len("source", 32))
                .col(string("delivery_id"))
                .col(string_len("ticket_id", 36))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("source").col("delivery_id"))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["ingest_receipts", "integrations"] {
            m.drop_table(Table::drop().table(t).if_exists().take()).await?;
        }
        Ok(())
    }
}
