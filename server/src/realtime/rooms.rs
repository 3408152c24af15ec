//! Which rooms an event goes to, and who may join which room.
use serde_json::{Value, json, value::RawValue};

use crate::{
    auth::Role,
    domain::notifications::Notification,
    entity::{event, ticket},
    realtime::Conn,
};

/// Customers are in this room so staff-only emits can exclude them.
pub const CUSTOMERS: &str = "role:customer";
/// Readers of published articles only (what customers get when they join `kb`).
const KB_PUBLIC: &str = "kb:public";

/// One emit: an event name and payload for the sockets in any of `rooms` and none of `except`.
pub struct Target {
    pub rooms: Vec<String>,
    pub except: Vec<String>,
    /// When set, only sockets also in this room receive it.
    pub only: Option<String>,
    pub event: &'static str,
    pub payload: Box<RawValue>,
}

impl Target {
    fn new(rooms: Vec<String>, event: &'static str, payload: Value) -> Self {
        Self {
            rooms,
            except: Vec::new(),
            only: None,
            event,
            payload: serde_json::value::to_raw_value(&payload)
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON")),
        }
    }

    fn except_customers(mut self) -> Self {
        self.except.push(CUSTOMERS.into());
        self
    }

    /// Whether a socket in `rooms` receives this (for replaying from the log).
    pub fn reaches(&self, rooms: &[String]) -> bool {
        self.rooms.iter().any(|r| rooms.contains(r))
            && !self.except.iter().any(|r| rooms.contains(r))
            && self.only.as_ref().is_none_or(|o| rooms.contains(o))
    }
}

fn entity_payload(ev: &event::Model, action: &str, data: &Value) -> Value {
    json!({ "event_id": ev.id, "action": action, "data": data })
}

/// The emits for one event: entity rooms first, then each recipient's notification.
pub fn targets(ev: &event::Model, notes: &[Notification]) -> Vec<Target> {
    let mut out = Vec::new();
    let data = &ev.data;
    let str_of = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    let payload = entity_payload(ev, &ev.action, data);
    match ev.kind.as_str() {
        "ticket" => {
            let mut rooms = vec!["tickets".to_string(), format!("ticket:{}", ev.entity_id)];
            rooms.extend(str_of("requester_id").map(|r| format!("user:{r}")));
            rooms.extend(str_of("assignee_id").map(|a| format!("user:{a}")));
            out.push(Target::new(rooms, "ticket.update", payload));
        }
        "comment" => {
            let rooms = vec!["comments".to_string(), format!("ticket:{}", ev.ticket_id.clone().unwrap_or_default())];
            let t = Target::new(rooms.clone(), "comment.update", payload);
            out.push(if ev.staff_only { t.except_customers() } else { t });
            let was_public = ev.previous.as_ref().and_then(|p| p.get("internal")) == Some(&Value::Bool(false));
            if ev.staff_only && was_public {
                // Made internal: customers drop it, and learn nothing of its content.
                let gone = json!({ "id": ev.entity_id, "ticket_id": ev.ticket_id, "internal": true });
                let mut t = Target::new(rooms, "comment.update", entity_payload(ev, "deleted", &gone));
                t.only = Some(CUSTOMERS.into());
                out.push(t);
            }
        }
        "attachment" => {
            let rooms = vec!["attachments".to_string(), format!("ticket:{}", ev.ticket_id.clone().unwrap_or_default())];
            out.push(Target::new(rooms, "attachment.update", payload));
        }
        "kb_article" => {
            let published =
                |v: Option<&Value>| v.and_then(|v| v.get("status")).and_then(Value::as_str) == Some("published");
            let (now, before) = (published(Some(data)), published(ev.previous.as_ref()));
            if now {
                out.push(Target::new(vec!["kb".into(), KB_PUBLIC.into()], "kb.update", payload));
            } else {
                out.push(Target::new(vec!["kb".into()], "kb.update", payload));
                let was_public = before || (ev.action == "deleted" && ev.previous.is_none() && published(Some(data)));
                if was_public && ev.action == "updated" {
                    // Unpublished: readers drop it, and see it only as it was while public.
                    let as_was = ev.previous.clone().unwrap_or(Value::Null);
                    out.push(Target::new(vec![KB_PUBLIC.into()], "kb.update", entity_payload(ev, "deleted", &as_was)));
                }
            }
        }
        "user" => {
            out.push(Target::new(vec!["users".into(), format!("user:{}", ev.entity_id)], "user.update", payload));
        }
        _ => {}
    }
    for n in notes {
        let payload = json!({
            "event": "notification.created",
            "event_id": ev.id,
            "notification": n,
            "data": data,
        });
        out.push(Target::new(vec![format!("user:{}", n.user_id)], "notification", payload));
    }
    out
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    Forbidden,
    UnknownRoom,
}

impl JoinError {
    pub fn as_str(self) -> &'static str {
        match self {
            JoinError::Forbidden => "forbidden",
            JoinError::UnknownRoom => "unknown_room",
        }
    }
}

/// The rooms a socket actually joins when it asks for `room`, if it may.
pub async fn resolve(db: &sea_orm::DatabaseConnection, conn: &Conn, room: &str) -> Result<Vec<String>, JoinError> {
    let staff = conn.role.is_staff();
    let allow = |ok: bool| if ok { Ok(vec![room.to_string()]) } else { Err(JoinError::Forbidden) };
    match room {
        "tickets" | "comments" | "attachments" => allow(staff),
        "users" => allow(conn.role == Role::Admin),
        "kb" if staff => Ok(vec!["kb".into()]),
        "kb" => Ok(vec![KB_PUBLIC.into()]),
        _ => {
            if let Some(id) = room.strip_prefix("user:") {
                return allow(id == conn.user_id);
            }
            if let Some(id) = room.strip_prefix("ticket:") {
                if uuid::Uuid::parse_str(id).is_err() {
                    return Err(JoinError::UnknownRoom);
                }
                use sea_orm::EntityTrait;
                let found = ticket::Entity::find_by_id(id.to_string()).one(db).await.ok().flatten();
                return match found {
                    Some(t) if staff || t.requester_id.as_deref() == Some(conn.user_id.as_str()) => {
                        Ok(vec![room.to_string()])
                    }
                    // Someone else's ticket and a missing one look the same.
                    _ => Err(JoinError::Forbidden),
                };
            }
            Err(JoinError::UnknownRoom)
        }
    }
}

/// The rooms `requested` maps to, for a socket leaving.
pub fn leave_names(conn: &Conn, requested: &str) -> Vec<String> {
    match requested {
        "kb" if !conn.role.is_staff() => vec![KB_PUBLIC.into()],
        r if r.starts_with("user:") => Vec::new(), // one's own room is not optional
        r => vec![r.to_string()],
    }
}
