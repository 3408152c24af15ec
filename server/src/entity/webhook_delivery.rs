use sea_orm::entity::prelude::*;

/// One notification on its way to one endpoint. `id` is the stable `webhook-id`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub notification_id: String,
    pub event_id: i64,
    pub payload: String,
    /// pending, succeeded or failed.
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: DateTimeUtc,
    /// A worker's claim; another node may take the delivery once it passes.
    pub locked_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
