//! Who is asking: passwords, access tokens, and who holds a token. (The HTTP extractors that
//! require a role are the API's, in `api::extract`.)
mod jwt;
mod limits;
mod password;
mod session;
mod signed_in;

pub use jwt::{Claims, JwtKeys, load_or_create_secret, valid_after_millis};
pub use limits::LoginLimits;
pub use password::{hash_password, verify_password};
pub use session::{AuthUser, MaybeUser, RequireAdmin, RequireStaff, Session, Verifier};
pub use session::{session_from_token, user_from_token};
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
