//! First run: with no admin in the database the server prints a one-time setup link in its log,
//! and whoever follows it creates the first admin in the browser. The link's token is derived from
//! the server's secret ([`crate::auth::JwtKeys::setup_token`]), so it works on every node, and it
//! creates an admin only while there is none: once one exists it opens nothing.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Tx,
    users::{self, User},
    validate,
};
use crate::{
    auth::{Role, hash_password},
    domain::Store,
    entity::user,
    error::{Error, Result},
};

/// Whether the first admin is still to be created.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupStatus {
    /// True while there is no active admin: the server's log holds the setup link.
    pub needed: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    /// The `token` of the setup link the server printed.
    #[schema(min_length = 1, max_length = 200)]
    pub token: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub name: String,
    #[schema(min_length = 8, max_length = 256, pattern = "^[^\\u0000]*$")]
    pub password: String,
}

/// Whether there is no active admin.
pub async fn needed(db: &impl ConnectionTrait) -> Result<bool> {
    let admins = user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::IsActive.eq(true))
        .count(db)
        .await?;
    Ok(admins == 0)
}

/// The setup link for a server listening on `addr`, if an admin is still to be created. A server
/// listening on every address is linked through loopback.
pub async fn link_if_needed(store: &Store, setup_token: &str, addr: std::net::SocketAddr) -> Result<Option<String>> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(needed(&store.db).await?.then(|| format!("http://{addr}/setup?token={}", setup_token)))
}

/// Creates the first admin. The check and the insert are one transaction, serialised with every
/// other writer, so of two people following the link at once only one becomes the admin.
pub async fn create_first_admin(store: &Store, setup_token: &str, input: FirstAdmin) -> Result<User> {
    if !constant_time_eq(input.token.trim().as_bytes(), setup_token.as_bytes()) {
        return Err(Error::forbidden("this setup link is not valid; use the one in the server's log"));
    }
    let email = validate::email("email", &input.email)?;
    let name = validate::required_text("name", &input.name, 200)?;
    let password = validate::password("password", &input.password)?;
    let hash = hash_password(password).await?;
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    tx.take_event_order_lock().await?;
    if !needed(&tx.txn).await? {
        return Err(Error::conflict("an admin exists already; sign in instead"));
    }
    let admin = users::insert_in(&mut tx, None, email, name, hash, Role::Admin).await?;
    tx.commit().await?;
    Ok(admin)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
