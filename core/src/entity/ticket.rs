use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The short number people use (`#1042`), unique per installation.
    pub number: i64,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub category: String,
    pub tags: Json,
    pub source: String,
    pub external_id: Option<String>,
    pub requester_id: Option<String>,
    pub requester_email: Option<String>,
    pub assignee_id: Option<String>,
    pub metadata: Json,
    pub classification: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
