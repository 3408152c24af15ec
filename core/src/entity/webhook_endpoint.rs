use sea_orm::entity::prelude::*;

/// A user's webhook URL. One per user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub url: String,
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub enabled: bool,
    pub max_per_second: Option<i32>,
    /// When the current run of failures began; cleared by any success.
    pub failing_since: Option<DateTimeUtc>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
