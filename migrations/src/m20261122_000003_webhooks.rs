//! Per-user webhook endpoints, their durable deliveries and every attempt made.
use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("webhook_endpoints")
                .if_not_exists()
                .col(string_len("user_id", 36).primary_key())
                .col(text("url"))
                .col(string("secret"))
                .col(string_null("previous_secret"))
                .col(timestamp_with_time_zone_null("previous_secret_expires_at"))
                .col(boolean("enabled").default(true))
                .col(integer_null("max_per_second"))
                .col(timestamp_with_time_zone_null("failing_since"))
                .col(string_null("disabled_reason"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("webhook_deliveries")
                .if_not_exists()
                .col(string_len("id", 64).primary_key())
                .col(string_len("user_id", 36))
                .col(string_len("notification_id", 36))
                .col(big_integer("event_id"))
                .col(text("payload"))
                .col(string_len("status", 16))
                .col(integer("attempt_count").default(0))
                .col(timestamp_with_time_zone("next_attempt_at"))
                .col(timestamp_with_time_zone_null("locked_until"))
                .col(integer_null("last_status_code"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .take(),
        )
        .await?;
        m.create_index(index("webhook_deliveries", &["status", "next_attempt_at"])).await?;
        m.create_index(index("webhook_deliveries", &["user_id", "created_at"])).await?;

        m.create_table(
            Table::create()
                .table("webhook_attempts")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string_len("delivery_id", 64))
                .col(timestamp_with_time_zone("attempted_at"))
                .col(integer_null("status_code"))
                .col(big_integer("latency_ms"))
                .col(text_null("error"))
                .col(text_null("response_body"))
                .take(),
        )
        .await?;
        m.create_index(index("webhook_attempts", &["delivery_id"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["webhook_attempts", "webhook_deliveries", "webhook_endpoints"] {
            m.drop_table(Table::drop().table(t).if_exists().take()).await?;
        }
        Ok(())
    }
}
