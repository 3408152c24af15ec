//! What every handler and worker shares.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{JwtKeys, LoginLimits},
    config::Config,
    domain::group_commit::GroupCommit,
    entity::ticket,
    hooks::HooksHandle,
    ingest::RateLimits,
    realtime::Realtime,
    storage::BlobStore,
    webhooks::worker::Webhooks,
};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub storage: Arc<dyn BlobStore>,
    pub hooks: HooksHandle,
    pub realtime: Realtime,
    pub webhooks: Arc<Webhooks>,
    pub ingest_limits: Arc<RateLimits>,
    pub login_limits: Arc<LoginLimits>,
    /// API ticket creations, committed together when they arrive together.
    pub ticket_inserts: GroupCommit<ticket::ActiveModel>,
    /// Set when running as one of several nodes (`REDIS_URL`).
    pub cluster: Option<crate::cluster::Cluster>,
}
