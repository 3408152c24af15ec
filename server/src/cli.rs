//! Commands that work on the database without a running server.
use crate::{
    auth::{Role, hash_password},
    config::Config,
    db,
    domain::{users, validate},
    hooks::HooksHandle,
};

/// Creates a user from the command line. The event is picked up when a server next runs.
pub async fn create_user(
    config: &Config,
    email: &str,
    password: &str,
    name: &str,
    role: Role,
) -> anyhow::Result<users::User> {
    let database = db::connect_and_migrate(config).await?;
    let email = validate::email("email", email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = validate::required_text("name", name, 200).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = validate::password("password", password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = hash_password(password).await?;
    users::insert(&database, &HooksHandle::default(), None, email, name, hash, role)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
