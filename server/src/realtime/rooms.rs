//! The rooms: their names, and which of them a client may join or leave. Rooms only narrow
//! who is considered for an emit; what each socket gets is the policy's answer (`emits`).
use crate::{auth::Role, entity::ticket, realtime::Conn};

/// Every socket of one user, on every node. Owned by the server.
pub fn user(id: &str) -> String {
    format!("user:{id}")
}

/// The sockets opened with one token (by its `jti`). Owned by the server.
pub fn token(jti: &str) -> String {
    format!("token:{jti}")
}

/// Everyone following one ticket.
pub fn ticket(id: &str) -> String {
    format!("ticket:{id}")
}

/// The server's room for a role's sockets; clients can neither join nor leave it.
pub fn of_role(role: Role) -> &'static str {
    if role.is_staff() { STAFF } else { CUSTOMERS }
}

pub const STAFF: &str = "role:staff";
pub const CUSTOMERS: &str = "role:customer";
/// Readers of published articles only (what customers get when they join `kb`).
pub const KB_PUBLIC: &str = "kb:public";
/// The rooms only staff may be in.
pub const STAFF_ONLY: [&str; 5] = ["tickets", "comments", "attachments", "users", "kb"];

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

/// The rooms a socket actually joins when it asks for `room`, if it may. The server's own
/// rooms (`user:*`, `role:*` and the internal ones) are not for clients to ask for: a socket is
/// in its own user room from the start.
pub async fn resolve(db: &sea_orm::DatabaseConnection, conn: &Conn, room: &str) -> Result<Vec<String>, JoinError> {
    let role = conn.role();
    let staff = role.is_staff();
    let allow = |ok: bool| if ok { Ok(vec![room.to_string()]) } else { Err(JoinError::Forbidden) };
    match room {
        "tickets" | "comments" | "attachments" => allow(staff),
        "users" => allow(role == Role::Admin),
        "kb" if staff => Ok(vec!["kb".into()]),
        "kb" => Ok(vec![KB_PUBLIC.into()]),
        _ => {
            if let Some(id) = room.strip_prefix("user:") {
                // Already in it when it is one's own; nobody else's.
                return if id == conn.user_id { Ok(Vec::new()) } else { Err(JoinError::Forbidden) };
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

/// The rooms `requested` maps to, for a socket leaving: only rooms a client may have joined
/// itself. The server's own rooms stay (leaving `role:customer` must not be a way around
/// anything, and one's own user room is not optional).
pub fn leave_names(conn: &Conn, requested: &str) -> Result<Vec<String>, JoinError> {
    match requested {
        "kb" if !conn.role().is_staff() => Ok(vec![KB_PUBLIC.into()]),
        "tickets" | "comments" | "attachments" | "users" | "kb" => Ok(vec![requested.to_string()]),
        r if r.strip_prefix("ticket:").is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()) => Ok(vec![r.to_string()]),
        r if ["user:", "role:", "token:", "tw:"].iter().any(|p| r.starts_with(p)) || r == KB_PUBLIC => {
            Err(JoinError::Forbidden)
        }
        _ => Err(JoinError::UnknownRoom),
    }
}

/// The rooms a socket in `rooms` must leave when its user's role becomes `role`.
pub fn no_longer_for(role: Role, rooms: &[String]) -> Vec<String> {
    rooms
        .iter()
        .filter(|r| match r.as_str() {
            "users" => role != Role::Admin,
            r if STAFF_ONLY.contains(&r) || r == STAFF => !role.is_staff(),
            r => r == CUSTOMERS && role.is_staff(),
        })
        .cloned()
        .collect()
}
