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
    /// A [`Status`], stored by its name.
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

/// Where a delivery stands. Stored as its name (`pending`, `succeeded`, `failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Due (again) at `next_attempt_at`.
    Pending,
    Succeeded,
    /// No further attempt: the schedule ran out, the receiver refused it for good, or the
    /// recipient may no longer have it.
    Failed,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Pending, Status::Succeeded, Status::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }
}
