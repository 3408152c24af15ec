//! ticketwire: a support-ticketing backend where every change reaches people the moment it
//! happens. [`run`] is the only way to start it, from `main` and from the tests alike.
pub mod api;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod error;
pub mod hooks;
pub mod ingest;
pub mod realtime;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod webhooks;

use std::{future::Future, sync::Arc};

use sea_orm::EntityTrait;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{JwtKeys, load_or_create_secret},
    config::Config,
    entity::dispatch_cursor,
    hooks::HooksHandle,
    realtime::Realtime,
    state::AppState,
    storage::LocalDisk,
    webhooks::worker::Webhooks,
};

/// Serves on `listener` until `shutdown` resolves, then drains: stops accepting, lets the
/// workers finish what they hold, and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    check_production(&config)?;
    telemetry::metrics_handle();
    let db = db::connect_and_migrate(&config).await?;
    let secret = load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
    let jwt = Arc::new(JwtKeys::new(&secret, config.token_ttl_secs));

    let (io_layer, io) = build_socket_io(&config).await?;
    let head = dispatch_cursor::Entity::find_by_id("main".to_string())
        .one(&db)
        .await?
        .map(|c| c.last_event_id)
        .unwrap_or(0);
    let state = AppState {
        storage: Arc::new(LocalDisk::new(config.data_dir.join("attachments"))),
        realtime: Realtime::new(io.clone(), db.clone(), head),
        webhooks: Arc::new(Webhooks::new(&config.webhooks)?),
        ingest_limits: Arc::new(ingest::RateLimits::default()),
        login_limits: Arc::new(auth::LoginLimits::new(config.login_attempts_per_minute, config.login_attempts_per_minute_per_ip)),
        hooks: HooksHandle::default(),
        config: Arc::new(config),
        db,
        jwt,
    };
    realtime::register(&io, state.clone());
    let router = api::router(state.clone()).layer(io_layer);
    state.webhooks.set_router(router.clone());

    let stop = CancellationToken::new();
    // The worker first, so the dispatcher's first hand-over finds it listening.
    let worker = tokio::spawn(webhooks::worker::run(state.clone(), stop.clone()));
    tokio::task::yield_now().await;
    let dispatcher = tokio::spawn(hooks::dispatcher::run(state.clone(), stop.clone()));
    state.hooks.wake();
    state.hooks.wake_deliveries();

    tracing::info!(addr = %listener.local_addr()?, "ticketwire listening");
    let serve_stop = stop.clone();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            serve_stop.cancel();
        });
    let io_for_close = io.clone();
    let result = tokio::select! {
        r = server => r.map_err(anyhow::Error::from),
        // Open sockets would keep graceful shutdown waiting forever; close them once asked to stop.
        _ = async { stop.cancelled().await; io_for_close.close().await; std::future::pending::<()>().await } => Ok(()),
    };
    stop.cancel();
    let _ = tokio::join!(dispatcher, worker);
    result
}

/// With the in-process adapter by default; across nodes through Redis when `REDIS_URL` is set.
async fn build_socket_io(config: &Config) -> anyhow::Result<(socketioxide::layer::SocketIoLayer, SocketIo)> {
    if config.redis_url.is_some() {
        anyhow::bail!("REDIS_URL is set but multi-node Socket.IO is not available in this build yet");
    }
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(1024)
        .ping_interval(std::time::Duration::from_secs(20))
        .build_layer();
    Ok((layer, io))
}

/// Production mode refuses to start with a weak or missing JWT secret.
fn check_production(config: &Config) -> anyhow::Result<()> {
    if !config.is_production() {
        return Ok(());
    }
    match config.jwt_secret.as_deref() {
        Some(s) if s.len() >= 32 && !s.contains("change-me") && !s.contains("secret") => Ok(()),
        _ => anyhow::bail!("TICKETWIRE_ENV=production requires TICKETWIRE_JWT_SECRET of at least 32 random characters"),
    }
}
