//! ticketwire: a support-ticketing backend where every change reaches people the moment it
//! happens. [`run`] is the only way to start it, from `main` and from the tests alike.
pub mod api;
pub mod cli;
pub mod cluster;
pub mod hooks;
pub mod ingest;
pub mod memory;
pub mod realtime;
pub mod retention;
pub mod state;
pub mod telemetry;
pub mod webhooks;

// The layers below the API live in their own crate; re-exported so `crate::domain` and the
// like read the same from every module here.
pub use ticketwire_core::{auth, config, db, domain, entity, error, policy, storage};

use std::{future::Future, sync::Arc};

use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{JwtKeys, load_or_create_secret},
    config::Config,
    domain::Store,
    hooks::HooksHandle,
    realtime::Realtime,
    state::AppState,
    storage::LocalDisk,
    webhooks::worker::Webhooks,
};

/// Serves on `listener` until `shutdown` resolves, then drains: stops accepting, lets the
/// workers finish what they hold, and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    check_production(&config)?;
    telemetry::metrics_handle();
    let db = db::connect_and_migrate(&config).await?;
    let secret = load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
    let jwt = Arc::new(JwtKeys::new(&secret, config.token_ttl_secs));

    let stop = CancellationToken::new();
    let (io_layer, io) = build_socket_io(&config).await?;
    let cluster = match &config.redis_url {
        Some(url) => Some(cluster::Cluster::connect(&redis_url_resp3(url), &config.redis_prefix).await?),
        None => None,
    };
    let head = hooks::dispatcher::dispatched_up_to(&db).await?;
    let pipeline = hooks::Pipeline::start()?;
    // A single node on SQLite writes its users table alone: it may remember signed-in users.
    let hooks = HooksHandle::new(db.get_database_backend() == sea_orm::DbBackend::Sqlite && cluster.is_none());
    let attachments = Arc::new(LocalDisk::new(config.data_dir.join("attachments")));
    let store = Store::new(db.clone(), hooks, attachments, config.search.clone());
    let realtime = Realtime::new(io.clone(), db.clone(), head, stop.clone());
    let webhooks = Arc::new(Webhooks::new(&config.webhooks, store.clone())?);
    webhooks.set_built_in(Arc::new(realtime.clone()));
    let state = AppState {
        store,
        realtime,
        webhooks,
        ingest_limits: Arc::new(ingest::RateLimits::default()),
        login_limits: Arc::new(auth::LoginLimits::from_config(&config)),
        cluster,
        config: Arc::new(config),
        jwt,
    };
    let gate = realtime::Gate {
        realtime: state.realtime.clone(),
        store: state.store.clone(),
        keys: state.jwt.clone(),
        config: state.config.clone(),
    };
    realtime::register(&io, gate).await?;
    let router = io_layer.apply(api::router(state.clone()));

    // The worker first, so the dispatcher's first hand-over finds it listening.
    let worker = tokio::spawn(webhooks::worker::run(state.webhooks.clone(), stop.clone()));
    tokio::task::yield_now().await;
    let dispatcher = pipeline.handle().spawn(hooks::dispatcher::run(
        hooks::dispatcher::Dispatcher {
            store: state.store.clone(),
            webhooks: state.webhooks.clone(),
            live: Arc::new(state.realtime.clone()),
            cluster: state.cluster.clone(),
        },
        stop.clone(),
    ));
    if let Some(cluster) = state.cluster.clone() {
        tokio::spawn(follow_other_nodes(state.clone(), cluster, stop.clone()));
    }
    tokio::spawn(retention::run(state.store.db.clone(), state.store.hooks.clone(), state.config.clone(), stop.clone()));
    state.store.hooks.wake();
    state.store.hooks.wake_deliveries();

    tracing::info!(addr = %listener.local_addr()?, "ticketwire listening");
    if let Some(link) =
        domain::setup::link_if_needed(&state.store, state.jwt.setup_token(), listener.local_addr()?).await?
    {
        // On stdout, like the address: the one place a first-time user is sure to look.
        println!("ticketwire first-run setup: no admin account yet; open {link} to create the first admin");
        tracing::warn!(%link, "no admin account yet: open the setup link to create the first admin");
    }
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
        _ = async {
            stop.cancelled().await;
            match &io_for_close {
                realtime::Io::Local(io) => io.close().await,
                realtime::Io::Redis(io) => io.close().await,
            }
            std::future::pending::<()>().await
        } => Ok(()),
    };
    stop.cancel();
    let _ = tokio::join!(dispatcher, worker);
    drop(pipeline);
    result
}

/// The Socket.IO layer for either adapter.
enum IoLayer {
    Local(socketioxide::layer::SocketIoLayer),
    Redis(socketioxide::layer::SocketIoLayer<socketioxide_redis::RedisAdapter<socketioxide::adapter::Emitter>>),
}

impl IoLayer {
    fn apply(self, router: axum::Router) -> axum::Router {
        let router = match self {
            IoLayer::Local(layer) => router.layer(layer),
            IoLayer::Redis(layer) => router.layer(layer),
        };
        // Outside the Socket.IO layer, so it sees the request first.
        router.layer(axum::middleware::map_request(realtime::detach_request_head))
    }
}

/// With the in-process adapter by default; across nodes through Redis when `REDIS_URL` is set.
async fn build_socket_io(config: &Config) -> anyhow::Result<(IoLayer, realtime::Io)> {
    let builder = SocketIo::builder()
        // Room for bursts; a socket that still falls behind is caught up from the event log.
        .max_buffer_size(1024)
        // Clients send little (joins, acks), so a small read buffer per connection suffices;
        // larger frames are read in several steps. Saves 3 KiB of every idle connection.
        .ws_read_buffer_size(1024)
        .ping_interval(config.socketio.ping_interval())
        .ping_timeout(config.socketio.ping_timeout())
        .connect_timeout(config.socketio.connect_timeout())
        // `max_payload` bounds polling bodies only; WebSocket messages have their own caps
        // (64 MiB a message, 16 MiB a frame by default). The same cap on both, so the
        // `maxPayload` clients are told is the one enforced.
        .max_payload(config.socketio.max_payload_bytes)
        .ws_max_message_size(config.socketio.max_payload())
        .ws_max_frame_size(config.socketio.max_payload());
    Ok(match &config.redis_url {
        None => {
            let (layer, io) = builder.build_layer();
            (IoLayer::Local(layer), realtime::Io::Local(io))
        }
        Some(url) => {
            let client = redis::Client::open(redis_url_resp3(url))?;
            let adapter_config = socketioxide_redis::RedisAdapterConfig::default()
                .with_prefix(format!("{}:socket.io", config.redis_prefix));
            let adapter = socketioxide_redis::RedisAdapterCtr::new_with_redis_config(&client, adapter_config).await?;
            let (layer, io) = builder.with_adapter::<socketioxide_redis::RedisAdapter<_>>(adapter).build_layer();
            (IoLayer::Redis(layer), realtime::Io::Redis(io))
        }
    })
}

/// socketioxide-redis speaks RESP3; ask for it unless the URL already says.
fn redis_url_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// Emits what other nodes dispatch: on their announcements, and every second as a safety net.
async fn follow_other_nodes(state: AppState, cluster: cluster::Cluster, stop: CancellationToken) {
    let rt = state.realtime.clone();
    let db = state.store.db.clone();
    let announcements = cluster.follow(stop.clone(), |announced| {
        let (rt, db) = (rt.clone(), db.clone());
        async move {
            // An announcement is only a hint: emit no further than the shared cursor says is
            // dispatched, so a stray or forged message cannot skip events or run ahead of their
            // notifications.
            let Ok(dispatched) = hooks::dispatcher::dispatched_up_to(&db).await else { return };
            if let Err(e) = rt.advance_to(announced.min(dispatched)).await {
                tracing::warn!(error = %e, "could not emit another node's events");
            }
        }
    });
    let poll = async {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = stop.cancelled() => return,
            }
            if let Ok(dispatched) = hooks::dispatcher::dispatched_up_to(&state.store.db).await
                && let Err(e) = state.realtime.advance_to(dispatched).await
            {
                tracing::warn!(error = %e, "could not catch up with the event log");
            }
        }
    };
    tokio::join!(announcements, poll);
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
