use sea_orm::entity::prelude::*;

/// One committed change. `id` is the `event_id` clients resume from.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub action: String,
    pub entity_id: String,
    /// The ticket a ticket, comment or attachment event belongs to.
    pub ticket_id: Option<String>,
    /// That ticket's requester, so customers' visibility is one comparison.
    pub requester_id: Option<String>,
    /// The one user an event is private to (their own user record, a webhook test).
    pub owner_id: Option<String>,
    /// Internal notes and KB drafts: never shown to customers.
    pub staff_only: bool,
    pub actor_id: Option<String>,
    /// The entity after the change (before it, for a delete).
    pub data: Json,
    /// The entity before an update, for rules that depend on what changed.
    pub previous: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
