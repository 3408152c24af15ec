//! Collision protection for public replies: a reply may say what its author had seen of the
//! ticket, and is refused (409 `new_activity`, nothing written) when public activity by someone
//! else arrived since. Two agents answering the same customer at once: the first lands, the
//! second is shown what it missed and may resend from the new position.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use super::events::as_seen_by;
use crate::{
    auth::AuthUser,
    entity::event,
    error::{Error, Result},
    policy::Present,
};

/// What the author of a reply had seen of its ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The ticket at this `version`.
    Version(i64),
    /// The thread up to this `event_id`.
    Event(i64),
}

/// Public activity is what the requester would see change: a public comment, a status change.
fn is_public_activity(ev: &event::Model) -> bool {
    match ev.kind.as_str() {
        "comment" => ev.action == "created" && ev.data.get("internal") == Some(&Value::Bool(false)),
        "ticket" => {
            ev.action == "updated" && ev.previous.as_ref().and_then(|p| p.get("status")) != ev.data.get("status")
        }
        _ => false,
    }
}

/// The event id `seen` stands for on ticket `ticket_id`.
async fn position_of(db: &impl ConnectionTrait, ticket_id: &str, seen: Seen) -> Result<i64> {
    match seen {
        Seen::Event(id) if id >= 0 => Ok(id),
        Seen::Event(_) => Err(Error::validation("seen_event_id", "must not be negative")),
        Seen::Version(version) => {
            // The event that made that version: its ticket snapshot carries it.
            let events: Vec<event::Model> = event::Entity::find()
                .filter(event::Column::Kind.eq("ticket"))
                .filter(event::Column::EntityId.eq(ticket_id))
                .order_by_asc(event::Column::Id)
                .all(db)
                .await?;
            events
                .iter()
                .find(|e| e.data.get("version").and_then(Value::as_i64) == Some(version))
                .map(|e| e.id)
                .ok_or_else(|| Error::validation("seen_version", "this ticket never had that version"))
        }
    }
}

/// Refuses a public reply by `who` on `ticket_id` when others' public activity arrived after
/// `seen`. Call inside the reply's write transaction, after the writers' lock is taken, so two
/// replies from the same position cannot both pass.
pub async fn check_nothing_missed(
    db: &impl ConnectionTrait,
    who: &AuthUser,
    ticket_id: &str,
    seen: Seen,
) -> Result<()> {
    let from = position_of(db, ticket_id, seen).await?;
    let later: Vec<event::Model> = event::Entity::find()
        .filter(event::Column::TicketId.eq(ticket_id))
        .filter(event::Column::Id.gt(from))
        .order_by_asc(event::Column::Id)
        .limit(1000)
        .all(db)
        .await?;
    let Some(position) = later.last().map(|e| e.id) else { return Ok(()) };
    let by_others: Vec<event::Model> =
        later.into_iter().filter(|e| e.actor_id.as_deref() != Some(who.id()) && is_public_activity(e)).collect();
    if by_others.is_empty() {
        return Ok(());
    }
    let present = Present::load(db, &by_others).await?;
    let viewer = who.viewer();
    let missed: Vec<Value> = by_others
        .into_iter()
        .filter_map(|e| as_seen_by(&viewer, &present, e))
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    Err(Error::Outdated {
        detail: format!(
            "{} new public message(s) or status change(s) arrived since you looked: review them, then send again with seen_event_id {position}",
            missed.len()
        ),
        missed,
        position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, data: Value, previous: Option<Value>) -> event::Model {
        event::Model {
            id: 1,
            kind: kind.into(),
            action: action.into(),
            entity_id: "e".into(),
            ticket_id: Some("t".into()),
            requester_id: None,
            owner_id: None,
            staff_only: false,
            actor_id: None,
            data,
            previous,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn public_replies_and_status_changes_are_activity_internal_notes_and_edits_are_not() {
        use serde_json::json;
        assert!(is_public_activity(&ev("comment", "created", json!({"internal": false}), None)));
        assert!(!is_public_activity(&ev("comment", "created", json!({"internal": true}), None)));
        assert!(!is_public_activity(&ev("comment", "updated", json!({"internal": false}), None)));
        let status = |a: &str, b: &str| ev("ticket", "updated", json!({"status": b}), Some(json!({"status": a})));
        assert!(is_public_activity(&status("open", "resolved")));
        assert!(!is_public_activity(&status("open", "open")));
    }
}
