//! Looking people up: staff assign tickets to colleagues and need to know who a requester is.
//! Admins get the full account (they manage it); agents get who the person is and nothing
//! about the account itself.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Page,
    users::{self, User, UserQuery},
};
use crate::{
    auth::{AuthUser, Role},
    domain::Store,
    error::Result,
};

/// A person as agents see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub is_active: bool,
}

impl From<User> for Person {
    fn from(u: User) -> Self {
        Self { id: u.id, name: u.name, email: u.email, role: u.role, is_active: u.is_active }
    }
}

/// One entry of the user list: the account for admins, the person for agents.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(untagged)]
pub enum Listed {
    Account(User),
    Person(Person),
}

/// The people matching `q` (name or email, role, active), newest first, as `who` may see them.
/// Callers check that `who` is staff.
pub async fn list(store: &Store, who: &AuthUser, q: &UserQuery) -> Result<Page<Listed>> {
    let page = users::list(store, q).await?;
    let admin = who.is_admin();
    let mut listed = Page::from_rows(Vec::new(), 0, |_: &Listed| String::new(), |l| l);
    listed.items =
        page.items.into_iter().map(|u| if admin { Listed::Account(u) } else { Listed::Person(u.into()) }).collect();
    listed.next_cursor = page.next_cursor;
    Ok(listed)
}
