//! A user's inbox of notifications, derived from events by the hooks layer.
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery};
use crate::{
    auth::AuthUser,
    domain::Store,
    entity::{event, notification},
    error::{Error, Result},
    policy::{Access, Present},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    /// new_ticket, ticket_updated, comment_on_ticket, reply_to_comment, …
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub related_id: String,
    /// ticket, comment, kb_article, attachment or user.
    pub related_type: String,
    pub ticket_id: Option<String>,
    pub actor_id: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    /// The event this notification came from.
    pub event_id: i64,
}

impl From<notification::Model> for Notification {
    fn from(m: notification::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            kind: m.kind,
            message: m.message,
            related_id: m.related_id,
            related_type: m.related_type,
            ticket_id: m.ticket_id,
            actor_id: m.actor_id,
            read: m.read,
            created_at: m.created_at,
            event_id: m.event_id,
        }
    }
}

/// The body of a notification as its recipient gets it, on Socket.IO and (the same bytes) on
/// webhooks: the notification and the full entity, as shaped for the recipient
/// ([`crate::policy::shape`]).
pub fn notification_payload(
    ev: &crate::entity::event::Model,
    n: &Notification,
    data: &serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "event": "notification.created",
        "event_id": ev.id,
        "notification": n,
        "data": data,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct NotificationQuery {
    /// Only unread ones.
    pub unread: Option<bool>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of a previous page.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
}

/// A page of `user_id`'s notifications, newest first: a walk down the index on (user_id, id),
/// or (user_id, read, id) for unread ones, however many the user has (an admin hears of every
/// ticket).
pub fn list_query(user_id: &str, q: &NotificationQuery) -> Result<Select<notification::Entity>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let mut query = notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .order_by_desc(notification::Column::Id);
    if q.unread == Some(true) {
        query = query.filter(notification::Column::Read.eq(false));
    }
    if let Some(cursor) = page.cursor()? {
        query = query.filter(notification::Column::Id.lt(cursor));
    }
    Ok(query.limit(page.limit()? + 1))
}

/// `user_id`'s unread notifications (counted from the index on (user_id, read, id) alone).
pub fn unread_query(user_id: &str) -> Select<notification::Entity> {
    notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::Read.eq(false))
}

pub async fn list(store: &Store, me: &AuthUser, q: &NotificationQuery) -> Result<Page<Notification>> {
    let limit = PageQuery { limit: q.limit, cursor: None }.limit()?;
    let rows = list_query(me.id(), q)?.all(&store.db).await?;
    let mut page = Page::from_rows(rows, limit, |r| r.id.clone(), Notification::from);
    // History follows the present: a notification about what the caller may no longer read
    // (a ticket moved to someone else, a note made internal, a role taken away) is not shown.
    // The cursor stays that of the rows read, so a short page still leads on.
    let ids: Vec<i64> = page.items.iter().map(|n| n.event_id).collect();
    let events: std::collections::HashMap<i64, event::Model> = event::Entity::find()
        .filter(event::Column::Id.is_in(ids))
        .all(&store.db)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let present = Present::load(&store.db, events.values()).await?;
    let viewer = me.viewer();
    page.items.retain(|n| events.get(&n.event_id).is_some_and(|ev| present.access(&viewer, ev) == Access::Full));
    Ok(page)
}

/// Unread notifications are counted up to this many: an admin hears of every ticket, and
/// counting a million index entries for a badge would take longer than any page of the inbox.
pub const UNREAD_COUNTED: u64 = 10_000;

/// How many of a user's notifications are unread.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
pub struct UnreadCount {
    /// Up to [`UNREAD_COUNTED`] (10,000).
    pub count: u64,
    /// There are more unread than `count` ("10000+").
    pub more: bool,
}

pub async fn unread_count(store: &Store, me: &AuthUser) -> Result<UnreadCount> {
    let counted = unread_query(me.id())
        .select_only()
        .column(notification::Column::Id)
        .limit(UNREAD_COUNTED + 1)
        .count(&store.db)
        .await?;
    Ok(UnreadCount { count: counted.min(UNREAD_COUNTED), more: counted > UNREAD_COUNTED })
}

/// Marks one of the caller's notifications read. Someone else's is "not found".
pub async fn mark_read(store: &Store, me: &AuthUser, id: &str) -> Result<Notification> {
    let found = notification::Entity::find_by_id(id.to_string())
        .filter(notification::Column::UserId.eq(me.id()))
        .one(&store.db)
        .await?
        .ok_or(Error::NotFound("notification"))?;
    notification::Entity::update_many()
        .col_expr(notification::Column::Read, Expr::value(true))
        .filter(notification::Column::Id.eq(id))
        .exec(&store.db)
        .await?;
    let mut view = Notification::from(found);
    view.read = true;
    Ok(view)
}

/// Marks every notification of the caller read; returns how many changed.
pub async fn mark_all_read(store: &Store, me: &AuthUser) -> Result<u64> {
    let res = notification::Entity::update_many()
        .col_expr(notification::Column::Read, Expr::value(true))
        .filter(notification::Column::UserId.eq(me.id()))
        .filter(notification::Column::Read.eq(false))
        .exec(&store.db)
        .await?;
    Ok(res.rows_affected)
}
