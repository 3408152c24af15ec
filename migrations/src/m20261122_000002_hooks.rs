//! The event log, the dispatcher's cursor and the notifications derived from events.
use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("events")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(string_len("kind", 16))
                .col(string_len("action", 16))
                .col(string_len("entity_id", 36))
                // Audience columns, so visibility is a WHERE clause rather than a JSON walk.
                .col(string_len_null("ticket_id", 36))
                .col(string_len_null("requester_id", 36))
                .col(string_len_null("owner_id", 36))
                .col(boolean("staff_only").default(false))
                .col(string_len_null("actor_id", 36))
                .col(json("data"))
                .col(json_null("previous"))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("dispatch_cursors")
                .if_not_exists()
                .col(string_len("name", 32).primary_key())
                .col(big_integer("last_event_id").default(0))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("notifications")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string_len("user_id", 36))
                .col(big_integer("event_id"))
                .col(string_len("type", 32))
                .col(text("message"))
                .col(string_len("related_id", 36))
                .col(string_len("related_type", 16))
                .col(string_len_null("ticket_id", 36))
                .col(string_len_null("actor_id", 36))
                .col(boolean("read").default(false))
                .col(timestamp_with_time_zone("created_at"))
                .take(),
        )
        .await?;
        // At most one notification per person per event, even if a dispatch is retried.
        m.create_index(
            Index::create()
                .name("uq_notifications_event_user")
                .table("notifications")
                .col("event_id")
                .col("user_id")
                .unique()
                .if_not_exists()
                .take(),
        )
        .await?;
        m.create_index(index("notifications", &["user_id", "read"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["notifications", "dispatch_cursors", "events"] {
            m.drop_table(Table::drop().table(t).if_exists().take()).await?;
        }
        Ok(())
    }
}
