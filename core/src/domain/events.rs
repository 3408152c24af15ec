//! The event log as callers may see it.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{AuthUser, Role},
    domain::Store,
    entity::event,
    error::{Error, Result},
    policy::{self, Access, Present, Viewer},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub event_id: i64,
    pub kind: String,
    pub action: String,
    pub entity_id: String,
    pub ticket_id: Option<String>,
    pub actor_id: Option<String>,
    /// The full entity after the change (as it was, for a delete).
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl From<event::Model> for Event {
    fn from(m: event::Model) -> Self {
        Self {
            event_id: m.id,
            kind: m.kind,
            action: m.action,
            entity_id: m.entity_id,
            ticket_id: m.ticket_id,
            actor_id: m.actor_id,
            data: m.data,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    /// Only events after this `event_id` (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// Narrows a query to the events `role`/`user_id` might see: a cheap filter in SQL, never the
/// decision itself, which is [`crate::policy`]'s for each event.
pub fn visible_to(query: Select<event::Entity>, user_id: &str, role: Role) -> Select<event::Entity> {
    use event::Column as C;
    let private_kinds = match role {
        Role::Admin => vec!["webhook"],
        Role::Agent => vec!["webhook", "user"],
        Role::Customer => {
            return query.filter(
                Condition::any()
                    .add(C::OwnerId.eq(user_id))
                    .add(C::RequesterId.eq(user_id))
                    .add(C::Kind.eq("kb_article")),
            );
        }
    };
    query.filter(Condition::any().add(C::Kind.is_not_in(private_kinds)).add(C::OwnerId.eq(user_id)))
}

/// `ev` as `viewer` may have it now, if at all.
pub fn as_seen_by(viewer: &Viewer, present: &Present, ev: event::Model) -> Option<Event> {
    match present.access(viewer, &ev) {
        Access::Hidden => None,
        Access::Full => {
            let data = policy::shape(viewer, &ev.kind, &ev.data);
            Some(Event { data, ..Event::from(ev) })
        }
        Access::Redacted => {
            let data = policy::redacted(&ev);
            Some(Event { action: "deleted".into(), actor_id: None, data, ..Event::from(ev) })
        }
    }
}

/// The events after `q.after` that `who` may see, up to `q.limit` of them: pages of the log are
/// read until that many are visible or the log ends, so a short page means the end.
pub async fn list(store: &Store, who: &AuthUser, q: &EventQuery) -> Result<Vec<Event>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 500"));
    }
    let mut after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(Error::validation("after", "must not be negative"));
    }
    let viewer = Viewer::new(who.id(), who.role);
    let mut out = Vec::new();
    loop {
        let query =
            event::Entity::find().filter(event::Column::Id.gt(after)).order_by_asc(event::Column::Id).limit(limit);
        let rows = visible_to(query, who.id(), who.role).all(&store.db).await?;
        let read = rows.len() as u64;
        let present = Present::load(&store.db, &rows).await?;
        for ev in rows {
            after = ev.id;
            if out.len() as u64 == limit {
                return Ok(out);
            }
            out.extend(as_seen_by(&viewer, &present, ev));
        }
        if read < limit || out.len() as u64 == limit {
            return Ok(out);
        }
    }
}
