//! What one event sends to sockets: the rooms whose sockets are considered, and for each socket
//! the payload the visibility policy lets it have (the entity, a redaction, or nothing).
use serde_json::{Value, json, value::RawValue};

use super::rooms;
use crate::{
    domain::notifications::{Notification, notification_payload},
    entity::event,
    policy::{self, Access, Viewer},
};

/// One emit of an event: its name, the rooms considered, and the payloads to choose from.
pub struct Emit {
    pub rooms: Vec<String>,
    pub event: &'static str,
    payloads: Payloads,
}

enum Payloads {
    /// An entity's change, for anyone in the rooms the policy lets see it.
    Entity { full: Box<RawValue>, for_customers: Option<Box<RawValue>>, redacted: Box<RawValue> },
    /// One person's notification, for that person only.
    Notification { user_id: String, full: Box<RawValue>, for_customers: Option<Box<RawValue>> },
}

fn raw(v: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON"))
}

impl Emit {
    /// Whether a socket in `rooms` is considered for this emit.
    pub fn reaches(&self, rooms: &[String]) -> bool {
        self.rooms.iter().any(|r| rooms.contains(r))
    }

    /// What a socket of `viewer` gets, given the policy's `access` to the event.
    pub fn payload_for<'a>(&'a self, viewer: &Viewer, access: Access) -> Option<&'a RawValue> {
        let customer = !viewer.role.is_staff();
        let pick = |full: &'a RawValue, for_customers: Option<&'a RawValue>| match for_customers {
            Some(shaped) if customer => shaped,
            _ => full,
        };
        match (&self.payloads, access) {
            (_, Access::Hidden) => None,
            (Payloads::Entity { redacted, .. }, Access::Redacted) => Some(redacted),
            (Payloads::Entity { full, for_customers, .. }, Access::Full) => Some(pick(full, for_customers.as_deref())),
            (Payloads::Notification { user_id, full, for_customers }, Access::Full) => {
                (viewer.id == Some(user_id.as_str())).then(|| pick(full, for_customers.as_deref()))
            }
            (Payloads::Notification { .. }, Access::Redacted) => None,
        }
    }

    /// A test emit with one payload for everyone who may see the event.
    #[cfg(test)]
    pub fn for_test(event: &'static str, rooms: Vec<String>) -> Self {
        let v = raw(&json!(1));
        Self { rooms, event, payloads: Payloads::Entity { full: v.clone(), for_customers: None, redacted: v } }
    }
}

/// The payload of a `<kind>.update` emit.
fn entity_payload(ev: &event::Model, action: &str, data: &Value) -> Value {
    json!({ "event_id": ev.id, "action": action, "data": data })
}

/// The emits for one event: its entity's rooms first, then each recipient's notification.
pub fn for_event(ev: &event::Model, notes: &[Notification]) -> Vec<Emit> {
    let data = &ev.data;
    let shaped =
        policy::differs_for_customers(&ev.kind, data).then(|| policy::shape(&Viewer::anonymous(), &ev.kind, data));
    let str_of = |k: &str| data.get(k).and_then(Value::as_str);
    let ticket_id = ev.ticket_id.as_deref().unwrap_or_default();
    let entity = match ev.kind.as_str() {
        "ticket" => {
            let mut rooms = vec!["tickets".to_string(), rooms::ticket(&ev.entity_id)];
            rooms.extend(str_of("requester_id").map(rooms::user));
            rooms.extend(str_of("assignee_id").map(rooms::user));
            // The former requester hears that it is gone from their sight.
            let previous = ev.previous.as_ref().and_then(|p| p.get("requester_id")).and_then(Value::as_str);
            rooms.extend(previous.filter(|p| Some(*p) != str_of("requester_id")).map(rooms::user));
            Some((rooms, "ticket.update"))
        }
        "comment" => Some((vec!["comments".to_string(), rooms::ticket(ticket_id)], "comment.update")),
        "attachment" => Some((vec!["attachments".to_string(), rooms::ticket(ticket_id)], "attachment.update")),
        "kb_article" => Some((vec!["kb".to_string(), rooms::KB_PUBLIC.to_string()], "kb.update")),
        "user" => Some((vec!["users".to_string(), rooms::user(&ev.entity_id)], "user.update")),
        _ => None,
    };
    let mut out = Vec::with_capacity(1 + notes.len());
    if let Some((rooms, event)) = entity {
        let payloads = Payloads::Entity {
            full: raw(&entity_payload(ev, &ev.action, data)),
            for_customers: shaped.as_ref().map(|d| raw(&entity_payload(ev, &ev.action, d))),
            redacted: raw(&entity_payload(ev, "deleted", &policy::redacted(ev))),
        };
        out.push(Emit { rooms, event, payloads });
    }
    for n in notes {
        let payloads = Payloads::Notification {
            user_id: n.user_id.clone(),
            full: raw(&notification_payload(ev, n, data)),
            for_customers: shaped.as_ref().map(|d| raw(&notification_payload(ev, n, d))),
        };
        out.push(Emit { rooms: vec![rooms::user(&n.user_id)], event: "notification", payloads });
    }
    out
}
