//! A ticket's timeline: what changed on it (status, priority, assignee, requester, subject,
//! category), when and by whom, read from the event log. Staff only: it names the people who
//! worked on the ticket.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::tickets;
use crate::{
    auth::AuthUser,
    domain::Store,
    entity::{event, user},
    error::{Error, Result},
};

/// At most this many changes are shown, the oldest first.
const MAX_ENTRIES: u64 = 1000;

/// The fields a timeline follows, with the name each has there.
const FIELDS: [(&str, &str); 6] = [
    ("status", "status"),
    ("priority", "priority"),
    ("assignee_id", "assignee"),
    ("requester_id", "requester"),
    ("subject", "subject"),
    ("category", "category"),
];

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct TimelineEntry {
    pub event_id: i64,
    pub at: DateTime<Utc>,
    /// `created`, or `updated` with the fields it changed.
    pub action: String,
    pub actor_id: Option<String>,
    /// `null` when an integration made the change.
    pub actor_name: Option<String>,
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldChange {
    /// `status`, `priority`, `assignee`, `requester`, `subject` or `category`.
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// For `assignee` and `requester`: the people's names.
    pub from_name: Option<String>,
    pub to_name: Option<String>,
}

/// The timeline of ticket `id` for staff; customers are refused, and a ticket the caller may not
/// read is "not found".
pub async fn for_ticket(store: &Store, who: &AuthUser, id: &str) -> Result<Vec<TimelineEntry>> {
    let ticket = tickets::readable(&store.db, who, id).await?;
    if !who.is_staff() {
        return Err(Error::forbidden("a ticket's timeline is for agents and admins"));
    }
    let rows = event::Entity::find()
        .filter(event::Column::TicketId.eq(ticket.id.as_str()))
        .filter(event::Column::Kind.eq("ticket"))
        .filter(event::Column::Action.is_in(["created", "updated"]))
        .order_by_asc(event::Column::Id)
        .limit(MAX_ENTRIES)
        .all(&store.db)
        .await?;
    let mut entries: Vec<TimelineEntry> = rows.iter().filter_map(entry).collect();
    let names = names_of(store, &entries).await?;
    let name = |id: &Option<String>| id.as_ref().and_then(|id| names.get(id).cloned());
    for e in &mut entries {
        e.actor_name = name(&e.actor_id);
        for c in &mut e.changes {
            if c.field == "assignee" || c.field == "requester" {
                c.from_name = name(&c.from);
                c.to_name = name(&c.to);
            }
        }
    }
    Ok(entries)
}

/// What one event shows, if it changed anything the timeline follows.
fn entry(ev: &event::Model) -> Option<TimelineEntry> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let changes: Vec<FieldChange> = match (ev.action.as_str(), &ev.previous) {
        ("created", _) => Vec::new(),
        (_, Some(prev)) => FIELDS
            .iter()
            .filter(|(key, _)| prev.get(key) != ev.data.get(key))
            .map(|(key, field)| FieldChange {
                field: field.to_string(),
                from: text(prev.get(key)),
                to: text(ev.data.get(key)),
                from_name: None,
                to_name: None,
            })
            .collect(),
        _ => return None,
    };
    if ev.action == "updated" && changes.is_empty() {
        return None;
    }
    Some(TimelineEntry {
        event_id: ev.id,
        at: ev.created_at,
        action: ev.action.clone(),
        actor_id: ev.actor_id.clone(),
        actor_name: None,
        changes,
    })
}

/// The names of everyone the entries mention, in one query.
async fn names_of(store: &Store, entries: &[TimelineEntry]) -> Result<HashMap<String, String>> {
    let mut ids: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            let people = e.changes.iter().filter(|c| c.field == "assignee" || c.field == "requester");
            e.actor_id.iter().cloned().chain(people.flat_map(|c| c.from.iter().chain(c.to.iter()).cloned()))
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut names = HashMap::new();
    for chunk in ids.chunks(500) {
        for u in user::Entity::find().filter(user::Column::Id.is_in(chunk.iter().cloned())).all(&store.db).await? {
            names.insert(u.id, u.name);
        }
    }
    Ok(names)
}
