//! Comments, threaded replies and internal notes (staff only, never shown to customers).
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Action, Change, Kind, Page, PageQuery, Tx, collision, tickets, users::check_version, validate};
use crate::{
    auth::AuthUser,
    domain::Store,
    entity::{comment, ticket},
    error::{Error, Result},
    policy::{self, Subject},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Comment {
    pub id: String,
    pub ticket_id: String,
    pub author_id: String,
    pub parent_id: Option<String>,
    pub content: String,
    /// An internal note: visible to agents and admins only.
    pub internal: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<comment::Model> for Comment {
    fn from(m: comment::Model) -> Self {
        Self {
            id: m.id,
            ticket_id: m.ticket_id,
            author_id: m.author_id,
            parent_id: m.parent_id,
            content: m.content,
            internal: m.internal,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    #[schema(min_length = 1, max_length = 50_000, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub content: String,
    /// Makes this a reply to that comment (on the same ticket).
    #[schema(format = Uuid)]
    pub parent_id: Option<String>,
    /// Staff only.
    #[serde(default)]
    pub internal: bool,
    /// Collision protection for a public reply: the ticket's `version` its author had seen.
    /// If someone else replied publicly or changed the status since, the reply is refused with
    /// 409 `new_activity` listing what was missed, and nothing is written. Internal notes are
    /// never refused.
    #[schema(minimum = 1)]
    pub seen_version: Option<i64>,
    /// The same, by the newest `event_id` of the thread its author had seen (the `position` a
    /// 409 answers with).
    #[schema(minimum = 0)]
    pub seen_event_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentPatch {
    #[schema(min_length = 1, max_length = 50_000, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub content: Option<String>,
    /// Staff only.
    pub internal: Option<bool>,
}

/// The comment and its ticket, if `who` may read the comment.
pub async fn readable(db: &impl ConnectionTrait, who: &AuthUser, id: &str) -> Result<(comment::Model, ticket::Model)> {
    let not_found = || Error::NotFound("comment");
    let c = comment::Entity::find_by_id(id.to_string()).one(db).await?.ok_or_else(not_found)?;
    let t = ticket::Entity::find_by_id(c.ticket_id.clone()).one(db).await?.ok_or_else(not_found)?;
    let subject = Subject::Comment { requester_id: t.requester_id.clone(), internal: c.internal };
    if !policy::can_see(&who.viewer(), &subject) {
        return Err(not_found());
    }
    Ok((c, t))
}

/// Comments of a ticket, oldest first (conversation order).
pub async fn list(store: &Store, who: &AuthUser, ticket_id: &str, page: &PageQuery) -> Result<Page<Comment>> {
    tickets::readable(&store.db, who, ticket_id).await?;
    let rows = list_query(who.is_staff(), ticket_id, page)?.all(&store.db).await?;
    Ok(Page::from_rows(rows, page.limit()?, |r| r.id.clone(), Comment::from))
}

/// A page of a ticket's comments (public ones only unless `staff`), along the index on
/// (ticket_id, id).
pub fn list_query(staff: bool, ticket_id: &str, page: &PageQuery) -> Result<Select<comment::Entity>> {
    let mut query =
        comment::Entity::find().filter(comment::Column::TicketId.eq(ticket_id)).order_by_asc(comment::Column::Id);
    if !staff {
        query = query.filter(comment::Column::Internal.eq(false));
    }
    if let Some(cursor) = page.cursor()? {
        query = query.filter(comment::Column::Id.gt(cursor));
    }
    Ok(query.limit(page.limit()? + 1))
}

fn change_for(action: Action, c: &Comment, t: &ticket::Model, actor: &str) -> Change {
    Change::new(Kind::Comment, action, &c.id, c)
        .on_ticket(&t.id, t.requester_id.as_deref())
        .staff_only(c.internal)
        .by(actor)
}

pub async fn create(store: &Store, who: &AuthUser, ticket_id: &str, input: NewComment) -> Result<Comment> {
    let content = validate::required_text("content", &input.content, 50_000)?;
    if input.internal && !who.is_staff() {
        return Err(Error::forbidden("only agents and admins may write internal notes"));
    }
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let t = tickets::readable(&tx.txn, who, ticket_id).await?;
    let mut internal = input.internal;
    let parent_id = match input.parent_id.as_deref() {
        None => None,
        Some(pid) => {
            let pid = validate::id("parent_id", pid)?;
            let (parent, _) = readable(&tx.txn, who, &pid)
                .await
                .map_err(|_| Error::validation("parent_id", "no comment with this id on this ticket"))?;
            if parent.ticket_id != t.id {
                return Err(Error::validation("parent_id", "no comment with this id on this ticket"));
            }
            // A reply in an internal thread stays internal.
            internal |= parent.internal;
            Some(parent.id)
        }
    };
    let seen = match (input.seen_event_id, input.seen_version) {
        (Some(id), _) => Some(collision::Seen::Event(id)),
        (None, Some(v)) => Some(collision::Seen::Version(v)),
        (None, None) => None,
    };
    if let Some(seen) = seen.filter(|_| !internal) {
        tx.take_event_order_lock().await?;
        collision::check_nothing_missed(&tx.txn, who, &t.id, seen).await?;
    }
    let now = super::now();
    let model = comment::ActiveModel {
        id: Set(super::new_id()),
        ticket_id: Set(t.id.clone()),
        author_id: Set(who.id().to_string()),
        parent_id: Set(parent_id),
        content: Set(content),
        internal: Set(internal),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    }
    .insert(&tx.txn)
    .await?;
    let view = Comment::from(model);
    tx.record(change_for(Action::Created, &view, &t, who.id())).await?;
    tx.commit().await?;
    Ok(view)
}

fn may_modify(who: &AuthUser, c: &comment::Model) -> Result<()> {
    if c.author_id == who.id() || who.is_staff() {
        Ok(())
    } else {
        Err(Error::forbidden("only the author or staff may change this comment"))
    }
}

pub async fn update(
    store: &Store,
    who: &AuthUser,
    id: &str,
    patch: CommentPatch,
    if_match: Option<i64>,
) -> Result<Comment> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    check_version(current.version, if_match)?;
    if patch.internal.is_some() && !who.is_staff() {
        return Err(Error::forbidden("only agents and admins may change whether a note is internal"));
    }
    let mut am: comment::ActiveModel = current.clone().into();
    if let Some(content) = &patch.content {
        am.content = Set(validate::required_text("content", content, 50_000)?);
    }
    if let Some(internal) = patch.internal {
        am.internal = Set(internal);
    }
    if !am.is_changed() {
        return Ok(current.into());
    }
    let model = crate::domain::versioned::update::<comment::Entity>(&tx.txn, &current.id, current.version, am).await?;
    let view = Comment::from(model);
    // Staff-only whenever the comment is now internal: its content must never reach customers.
    // (A public comment made internal disappears for them: the realtime layer tells their rooms
    // it was removed, without the content.)
    let change = change_for(Action::Updated, &view, &t, who.id()).previous(Comment::from(current));
    tx.record(change).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn delete(store: &Store, who: &AuthUser, id: &str) -> Result<()> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    // Replies stay, detached from the deleted parent.
    comment::Entity::update_many()
        .col_expr(comment::Column::ParentId, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .filter(comment::Column::ParentId.eq(id))
        .exec(&tx.txn)
        .await?;
    comment::Entity::delete_by_id(id.to_string()).exec(&tx.txn).await?;
    let view = Comment::from(current);
    tx.record(change_for(Action::Deleted, &view, &t, who.id())).await?;
    tx.commit().await
}
