//! Commands that work on the database without a running server.
use crate::{
    auth::{Role, hash_password},
    config::Config,
    db,
    domain::{users, validate},
    hooks::HooksHandle,
    retention,
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

/// Prunes now what retention would remove (or, dry, counts it), as the background task does.
/// Safe while servers run: each batch takes its turn among their writers.
pub async fn prune(config: &Config, mode: retention::Mode) -> anyhow::Result<retention::Report> {
    // A dry run changes nothing, the schema included.
    let database = match mode {
        retention::Mode::DryRun => db::connect(config).await?,
        retention::Mode::Remove => db::connect_and_migrate(config).await?,
    };
    retention::prune(&database, &HooksHandle::default(), config, mode, None).await
}

/// Copies the SQLite database to `file` while servers may be using it.
pub async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<retention::BackupReport> {
    let database = db::connect(config).await?;
    retention::backup(&database, file).await
}
