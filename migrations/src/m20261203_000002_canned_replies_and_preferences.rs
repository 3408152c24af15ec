//! Canned replies (staff-written answers with placeholders such as `{{requester.name}}`) and
//! each user's notification preferences.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("canned_replies")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string("title"))
                .col(text("body"))
                .col(string_len("created_by", 36))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(big_integer("version").default(1))
                .take(),
        )
        .await?;
        // One row per user who changed a default; no row means the defaults.
        m.create_table(
            Table::create()
                .table("notification_preferences")
                .if_not_exists()
                .col(string_len("user_id", 36).primary_key())
                .col(boolean("new_unassigned_tickets").default(false))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["notification_preferences", "canned_replies"] {
            m.drop_table(Table::drop().table(t).if_exists().take()).await?;
        }
        Ok(())
    }
}
