//! Who is asking: passwords, access tokens and the extractors handlers use to require a role.
mod extract;
mod jwt;
mod limits;
mod password;
mod signed_in;

pub use extract::{AuthUser, MaybeUser, RequireAdmin, RequireStaff, Session};
pub use extract::{session_from_token, token_still_valid, user_from_token};
pub use jwt::{Claims, JwtKeys, load_or_create_secret, valid_after_millis};
pub use limits::LoginLimits;
pub use password::{hash_password, verify_password};
pub use signed_in::SignedInUsers;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do. Staff are admins and agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Agent,
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            "customer" => Some(Role::Customer),
            _ => None,
        }
    }

    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Agent)
    }
}
