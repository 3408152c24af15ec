//! Ticket numbers: a short number per ticket (`#1042`) that people can say on the phone, unique
//! per installation. Existing tickets are numbered in the order they were opened, from 1001.
//! On PostgreSQL the next number comes from a sequence (several nodes insert at once); SQLite's
//! single writer counts on from the highest number. Also indexes the event log by ticket, which a
//! ticket's timeline reads.
use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Numbers start after this one.
const FIRST_BEFORE: i64 = 1000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Nullable: SQLite cannot add a NOT NULL column without a default. Every row gets one
        // here and every insert sets one.
        m.alter_table(Table::alter().table("tickets").add_column(big_integer_null("number")).take()).await?;
        let db = m.get_connection();
        db.execute_unprepared(&format!(
            "UPDATE tickets SET number = {FIRST_BEFORE} + (SELECT COUNT(*) FROM tickets AS earlier WHERE earlier.id <= tickets.id)"
        ))
        .await?;
        m.create_index(
            Index::create().name("uq_tickets_number").table("tickets").col("number").unique().if_not_exists().take(),
        )
        .await?;
        if m.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            db.execute_unprepared("CREATE SEQUENCE IF NOT EXISTS ticket_number_seq").await?;
            db.execute_unprepared(&format!(
                "SELECT setval('ticket_number_seq', COALESCE((SELECT MAX(number) FROM tickets), {FIRST_BEFORE}))"
            ))
            .await?;
        }
        m.create_index(index("events", &["ticket_id", "id"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_events_ticket_id_id").table("events").to_owned()).await?;
        if m.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            m.get_connection().execute_unprepared("DROP SEQUENCE IF EXISTS ticket_number_seq").await?;
        }
        m.drop_index(Index::drop().name("uq_tickets_number").table("tickets").to_owned()).await?;
        m.alter_table(Table::alter().table("tickets").drop_column("number").take()).await?;
        Ok(())
    }
}
