//! What every handler and worker shares.
use std::sync::Arc;

use crate::{
    auth::{JwtKeys, LoginLimits, Verifier},
    config::Config,
    domain::Store,
    ingest::RateLimits,
    realtime::Realtime,
    webhooks::worker::Webhooks,
};

#[derive(Clone)]
pub struct AppState {
    /// What the domain's operations need (database, writers' handle, storage, group commit).
    pub store: Store,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub realtime: Realtime,
    pub webhooks: Arc<Webhooks>,
    pub ingest_limits: Arc<RateLimits>,
    pub login_limits: Arc<LoginLimits>,
    /// Set when running as one of several nodes (`REDIS_URL`).
    pub cluster: Option<crate::cluster::Cluster>,
}

impl AppState {
    /// What the ingestion routes hand to the normalisers and the upsert.
    pub fn ingest(&self) -> crate::ingest::Context<'_> {
        crate::ingest::Context { store: &self.store, config: &self.config.ingest, key: self.jwt.ingest_key() }
    }

    /// Who holds a token, as HTTP requests and socket connections ask it.
    pub fn verifier(&self) -> Verifier<'_> {
        Verifier { keys: &self.jwt, db: &self.store.db, signed_in: self.store.hooks.signed_in() }
    }
}
