//! Ending tokens before they expire: a password change ends every older token of the account
//! (`users.tokens_valid_after`), signing out ends one (`revoked_tokens`, kept until the token
//! would have expired anyway).
use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table("users").add_column(timestamp_with_time_zone_null("tokens_valid_after")).take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("revoked_tokens")
                .if_not_exists()
                .col(string_len("jti", 36).primary_key())
                .col(string_len("user_id", 36))
                .col(timestamp_with_time_zone("expires_at"))
                .take(),
        )
        .await?;
        m.create_index(index("revoked_tokens", &["expires_at"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("revoked_tokens").if_exists().take()).await?;
        m.alter_table(Table::alter().table("users").drop_column("tokens_valid_after").take()).await?;
        Ok(())
    }
}
