//! Users, tickets, comments, KB articles and attachments.
use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `created_at`, `updated_at` and the optimistic-concurrency `version` every entity carries.
fn with_audit(mut table: TableCreateStatement) -> TableCreateStatement {
    table
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"))
        .col(big_integer("version").default(1));
    table
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(with_audit(
            Table::create()
                .table("users")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string_uniq("email"))
                .col(string("name"))
                .col(string("password_hash"))
                .col(string_len("role", 16))
                .col(boolean("is_active").default(true))
                .take(),
        ))
        .await?;

        m.create_table(with_audit(
            Table::create()
                .table("tickets")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(text("subject"))
                .col(text("description"))
                .col(string_len("status", 16))
                .col(string_len("priority", 16))
                .col(string("category"))
                .col(json("tags"))
                .col(string("source"))
                .col(string_null("external_id"))
                .col(string_len_null("requester_id", 36))
                .col(string_null("requester_email"))
                .col(string_len_null("assignee_id", 36))
                .col(json("metadata"))
                .col(string_len_null("classification", 16))
                .col(timestamp_with_time_zone_null("resolved_at"))
                .take(),
        ))
        .await?;
        m.create_index(
            Index::create()
                .name("uq_tickets_source_external_id")
                .table("tickets")
                .col("source")
                .col("external_id")
                .unique()
                .if_not_exists()
                .take(),
        )
        .await?;
        m.create_index(index("tickets", &["requester_id"])).await?;
        m.create_index(index("tickets", &["assignee_id"])).await?;

        m.create_table(with_audit(
            Table::create()
                .table("comments")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string_len("ticket_id", 36))
                .col(string_len("author_id", 36))
                .col(string_len_null("parent_id", 36))
                .col(text("content"))
                .col(boolean("internal").default(false))
                .take(),
        ))
        .await?;
        m.create_index(index("comments", &["ticket_id"])).await?;

        m.create_table(with_audit(
            Table::create()
                .table("kb_articles")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(text("title"))
                .col(text("body"))
                .col(string("category"))
                .col(json("tags"))
                .col(string_len("status", 16))
                .col(string_len("author_id", 36))
                .col(timestamp_with_time_zone_null("published_at"))
                .take(),
        ))
        .await?;

        m.create_table(with_audit(
            Table::create()
                .table("attachments")
                .if_not_exists()
                .col(string_len("id", 36).primary_key())
                .col(string_len("ticket_id", 36))
                .col(string_len("uploader_id", 36))
                .col(string("filename"))
                .col(string("content_type"))
                .col(big_integer("size_bytes"))
                .col(string_len("sha256", 64))
                .take(),
        ))
        .await?;
        m.create_index(index("attachments", &["ticket_id"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["attachments", "kb_articles", "comments", "tickets", "users"] {
            m.drop_table(Table::drop().table(t).if_exists().take()).await?;
        }
        Ok(())
    }
}
