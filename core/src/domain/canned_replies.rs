//! Canned replies: answers staff write once and insert into a reply, with placeholders
//! (`{{requester.name}}`, `{{ticket.number}}`, …) that the inserting client fills in. They are
//! staff's working material, never shown to customers as such, and like integrations they are
//! settings rather than helpdesk activity: written without an event.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{users::check_version, validate};
use crate::{
    auth::AuthUser,
    domain::Store,
    entity::canned_reply,
    error::{Error, Result},
};

/// At most this many canned replies per installation: they are read in one go.
pub const MAX_REPLIES: u64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CannedReply {
    pub id: String,
    pub title: String,
    /// Markdown; `{{requester.name}}`, `{{requester.email}}`, `{{ticket.number}}`,
    /// `{{ticket.subject}}` and `{{agent.name}}` are filled in where it is inserted.
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<canned_reply::Model> for CannedReply {
    fn from(m: canned_reply::Model) -> Self {
        Self {
            id: m.id,
            title: m.title,
            body: m.body,
            created_by: m.created_by,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCannedReply {
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub title: String,
    #[schema(min_length = 1, max_length = 20_000, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub body: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedReplyPatch {
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub title: Option<String>,
    #[schema(min_length = 1, max_length = 20_000, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub body: Option<String>,
}

/// Every canned reply, by title.
pub async fn list(store: &Store) -> Result<Vec<CannedReply>> {
    let rows = canned_reply::Entity::find()
        .order_by_asc(canned_reply::Column::Title)
        .order_by_asc(canned_reply::Column::Id)
        .all(&store.db)
        .await?;
    Ok(rows.into_iter().map(CannedReply::from).collect())
}

async fn find(store: &Store, id: &str) -> Result<canned_reply::Model> {
    let id = validate::id("id", id).map_err(|_| Error::NotFound("canned reply"))?;
    canned_reply::Entity::find_by_id(id).one(&store.db).await?.ok_or(Error::NotFound("canned reply"))
}

pub async fn get(store: &Store, id: &str) -> Result<CannedReply> {
    Ok(find(store, id).await?.into())
}

pub async fn create(store: &Store, who: &AuthUser, input: NewCannedReply) -> Result<CannedReply> {
    let title = validate::required_text("title", &input.title, 200)?;
    let body = validate::required_text("body", &input.body, 20_000)?;
    let count = canned_reply::Entity::find().count(&store.db).await?;
    if count >= MAX_REPLIES {
        return Err(Error::conflict(format!("there are {MAX_REPLIES} canned replies already; remove one first")));
    }
    let now = super::now();
    let model = canned_reply::ActiveModel {
        id: Set(super::new_id()),
        title: Set(title),
        body: Set(body),
        created_by: Set(who.id().to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    }
    .insert(&store.db)
    .await?;
    Ok(model.into())
}

/// Changes title or body. Honours `If-Match`.
pub async fn update(store: &Store, id: &str, patch: CannedReplyPatch, if_match: Option<i64>) -> Result<CannedReply> {
    let current = find(store, id).await?;
    check_version(current.version, if_match)?;
    let mut am = <canned_reply::ActiveModel as Default>::default();
    if let Some(t) = &patch.title {
        am.title = Set(validate::required_text("title", t, 200)?);
    }
    if let Some(b) = &patch.body {
        am.body = Set(validate::required_text("body", b, 20_000)?);
    }
    if !am.is_changed() {
        return Ok(current.into());
    }
    let model = super::versioned::update::<canned_reply::Entity>(&store.db, &current.id, current.version, am).await?;
    Ok(model.into())
}

pub async fn delete(store: &Store, id: &str) -> Result<()> {
    let current = find(store, id).await?;
    canned_reply::Entity::delete_by_id(current.id).exec(&store.db).await?;
    Ok(())
}
