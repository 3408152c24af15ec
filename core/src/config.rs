//! Typed configuration: built-in defaults, then an optional `ticketwire.toml`, then environment variables.
use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;
use serde::Deserialize;

/// Everything the server needs to start. Secrets are redacted in `Debug`.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`TICKETWIRE_LISTEN`).
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…` (`DATABASE_URL`). Defaults to a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// `redis://…` (`REDIS_URL`): when set, Socket.IO rooms span every node through Redis.
    pub redis_url: Option<String>,
    /// Names this cluster's Redis channels (`TICKETWIRE_REDIS_PREFIX`), so that clusters sharing
    /// one Redis (staging and production, say) never hear each other.
    pub redis_prefix: String,
    /// Where the SQLite file, the generated JWT secret and attachments live (`TICKETWIRE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// HMAC key for access tokens (`TICKETWIRE_JWT_SECRET`). Generated and kept in `data_dir` when unset.
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token, in seconds (`TICKETWIRE_TOKEN_TTL_SECS`).
    pub token_ttl_secs: u64,
    /// Whether anyone may create a customer account (`TICKETWIRE_ALLOW_REGISTRATION`).
    pub allow_registration: bool,
    /// Largest attachment accepted, in bytes (`TICKETWIRE_UPLOAD_LIMIT`).
    pub upload_limit_bytes: usize,
    /// Largest JSON body accepted, in bytes (`TICKETWIRE_JSON_LIMIT`).
    pub json_limit_bytes: usize,
    /// Sign-in attempts allowed per account per minute (`TICKETWIRE_LOGIN_PER_MINUTE`).
    pub login_attempts_per_minute: u32,
    /// Sign-in attempts allowed per client address per minute (`TICKETWIRE_LOGIN_PER_MINUTE_PER_IP`).
    pub login_attempts_per_minute_per_ip: u32,
    /// Accounts that one client address may register per hour (`TICKETWIRE_REGISTER_PER_HOUR_PER_IP`).
    pub registrations_per_hour_per_ip: u32,
    /// Socket.IO connections one user may hold on one node (`TICKETWIRE_MAX_SOCKETS_PER_USER`).
    pub max_sockets_per_user: usize,
    /// `development` or `production` (`TICKETWIRE_ENV`); production refuses weak secrets.
    pub env: String,
    /// Where the built web-client lives (`TICKETWIRE_WEB_DIR`).
    pub web_dir: PathBuf,
    pub webhooks: WebhookConfig,
    pub ingest: IngestConfig,
    pub socketio: SocketIoConfig,
    pub catch_up: CatchUpConfig,
    pub retention: RetentionConfig,
    pub presence: PresenceConfig,
    pub search: SearchConfig,
}

/// How far back a reconnecting Socket.IO client is replayed from the event log. Past this
/// window it is told `recovered: false` and reloads instead: a replay's cost grows with the
/// log it walks, and any signed-in user may ask for one.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatchUpConfig {
    /// Most events of the log one catch-up walks (`TICKETWIRE_CATCH_UP_MAX_EVENTS`).
    pub max_events: u64,
    /// Oldest missed event a catch-up replays, in seconds (`TICKETWIRE_CATCH_UP_MAX_AGE_SECS`).
    pub max_age_secs: u64,
}

/// Ticket search on PostgreSQL.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// A search looks among this many of the newest tickets first, and among all of them only
    /// when those hold fewer matches than it ranks (`TICKETWIRE_SEARCH_WINDOW_TICKETS`; 0: all
    /// at once). The answer is the same either way; a common word is found sooner.
    pub window_tickets: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self { window_tickets: 200_000 }
    }
}

/// How long finished history is kept. 0 keeps it forever. Whatever is set here, nothing a
/// client inside the catch-up window may still be replayed is removed, nor any event the
/// dispatcher has not yet handled.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Events older than this many days (`TICKETWIRE_RETENTION_EVENTS_DAYS`); an event that a
    /// remaining notification refers to stays with it.
    pub events_days: u64,
    /// Read notifications older than this many days (`TICKETWIRE_RETENTION_READ_NOTIFICATIONS_DAYS`).
    pub read_notifications_days: u64,
    /// Unread notifications older than this many days (`TICKETWIRE_RETENTION_UNREAD_NOTIFICATIONS_DAYS`).
    pub unread_notifications_days: u64,
    /// Webhook deliveries that succeeded or failed for good, with their attempts, this many days
    /// after their last attempt (`TICKETWIRE_RETENTION_WEBHOOK_DELIVERIES_DAYS`).
    pub webhook_deliveries_days: u64,
    /// How often each node prunes, in seconds (`TICKETWIRE_RETENTION_INTERVAL_SECS`); 0: only
    /// `ticketwire prune` does.
    pub interval_secs: u64,
    /// Rows removed per statement (`TICKETWIRE_RETENTION_BATCH`).
    pub batch: u64,
    /// Pause between two batches, in milliseconds (`TICKETWIRE_RETENTION_PAUSE_MS`), so that
    /// pruning never holds the writers' turn for long.
    pub pause_ms: u64,
}

/// Who is on a ticket and who is typing (kept in memory only, shared between nodes over Redis).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// A connection's presence ends this long after it last confirmed it, in milliseconds
    /// (`TICKETWIRE_PRESENCE_EXPIRY_MS`); clients confirm about every 20 s.
    pub expiry_ms: u64,
    /// Typing ends this long after it was last confirmed, in milliseconds
    /// (`TICKETWIRE_PRESENCE_TYPING_EXPIRY_MS`).
    pub typing_expiry_ms: u64,
    /// Changes are sent at most this often per ticket, in milliseconds (`TICKETWIRE_PRESENCE_BATCH_MS`).
    pub batch_ms: u64,
    /// A batch's messages wait while this node answers an HTTP write, and until it has emitted no
    /// live event for this many milliseconds; half a batch's time at most
    /// (`TICKETWIRE_PRESENCE_GIVE_WAY_MS`; 0: they go at once). Presence is advisory: a change
    /// reaches its watchers first.
    pub give_way_ms: u64,
    /// Presence and typing messages one socket may send per second (`TICKETWIRE_PRESENCE_UPDATES_PER_SECOND`)
    /// once its burst (`TICKETWIRE_PRESENCE_UPDATES_BURST`) is spent.
    pub updates_per_second: u32,
    pub updates_burst: u32,
}

/// Engine.IO / Socket.IO settings, the same on every transport.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketIoConfig {
    /// How often the server pings each client, in milliseconds (`TICKETWIRE_SOCKETIO_PING_INTERVAL_MS`).
    pub ping_interval_ms: u64,
    /// How long a client may take to answer a ping before it is dropped, in milliseconds
    /// (`TICKETWIRE_SOCKETIO_PING_TIMEOUT_MS`).
    pub ping_timeout_ms: u64,
    /// Largest message a client may send, in bytes (`TICKETWIRE_SOCKETIO_MAX_PAYLOAD`): one
    /// WebSocket message, or one polling request's body. Advertised to clients as `maxPayload`.
    pub max_payload_bytes: u64,
    /// How long a client has, once its transport is open, to connect to the namespace, in
    /// milliseconds (`TICKETWIRE_SOCKETIO_CONNECT_TIMEOUT_MS`).
    pub connect_timeout_ms: u64,
}

/// Outbound webhook delivery settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Test sends and manual retries allowed per user per minute, together
    /// (`TICKETWIRE_WEBHOOK_MANUAL_SENDS_PER_MINUTE`).
    pub manual_sends_per_minute: u32,
    /// Delays after the first attempt, in milliseconds (`TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS`, comma separated).
    pub retry_schedule_ms: Vec<u64>,
    /// Per-attempt timeout in milliseconds (`TICKETWIRE_WEBHOOK_TIMEOUT_MS`).
    pub timeout_ms: u64,
    /// Deliveries in flight at once, over all endpoints.
    pub max_in_flight: usize,
    /// Deliveries in flight at once to one endpoint.
    pub max_in_flight_per_endpoint: usize,
    /// An endpoint failing for this long is disabled (`TICKETWIRE_WEBHOOK_DISABLE_AFTER_SECS`).
    pub disable_after_secs: u64,
    /// Networks that are private but may receive webhooks anyway, e.g. `127.0.0.0/8` for
    /// development (`TICKETWIRE_WEBHOOK_ALLOW_CIDRS`, comma separated).
    pub allow_cidrs: Vec<IpNet>,
}

/// Inbound ingestion settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Most items accepted by one batch request.
    pub batch_max_items: usize,
    /// Largest inbound body, in bytes.
    pub max_body_bytes: usize,
    /// Bytes of the original payload kept in `metadata.raw`.
    pub raw_payload_cap_bytes: usize,
    /// An alert that resolves within this many seconds of firing is a false positive.
    pub flap_window_secs: u64,
    /// Requests per second allowed per integration (a burst of twice that is tolerated).
    pub rate_per_second: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            database_url: None,
            redis_url: None,
            redis_prefix: "ticketwire".into(),
            data_dir: PathBuf::from("data"),
            jwt_secret: None,
            token_ttl_secs: 24 * 3600,
            allow_registration: true,
            upload_limit_bytes: 25 * 1024 * 1024,
            json_limit_bytes: 2 * 1024 * 1024,
            login_attempts_per_minute: 10,
            login_attempts_per_minute_per_ip: 120,
            registrations_per_hour_per_ip: 20,
            max_sockets_per_user: 64,
            env: "development".into(),
            web_dir: PathBuf::from("web-client/dist"),
            webhooks: WebhookConfig::default(),
            ingest: IngestConfig::default(),
            socketio: SocketIoConfig::default(),
            catch_up: CatchUpConfig::default(),
            retention: RetentionConfig::default(),
            presence: PresenceConfig::default(),
            search: SearchConfig::default(),
        }
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            expiry_ms: 45_000,
            typing_expiry_ms: 5_000,
            batch_ms: 150,
            give_way_ms: 25,
            updates_per_second: 10,
            updates_burst: 20,
        }
    }
}

impl Default for CatchUpConfig {
    fn default() -> Self {
        Self { max_events: 1000, max_age_secs: 24 * 3600 }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events_days: 30,
            read_notifications_days: 90,
            unread_notifications_days: 0,
            webhook_deliveries_days: 30,
            interval_secs: 3600,
            batch: 1000,
            pause_ms: 50,
        }
    }
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            ping_interval_ms: 20_000,
            ping_timeout_ms: 20_000,
            max_payload_bytes: 100_000,
            connect_timeout_ms: 45_000,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        const S: u64 = 1000;
        Self {
            manual_sends_per_minute: 10,
            retry_schedule_ms: vec![5 * S, 300 * S, 1800 * S, 7200 * S, 18000 * S, 36000 * S, 36000 * S],
            timeout_ms: 10_000,
            max_in_flight: 256,
            max_in_flight_per_endpoint: 8,
            disable_after_secs: 5 * 24 * 3600,
            allow_cidrs: Vec::new(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_max_items: 500,
            max_body_bytes: 1024 * 1024,
            raw_payload_cap_bytes: 16 * 1024,
            flap_window_secs: 300,
            rate_per_second: 50,
        }
    }
}

impl SocketIoConfig {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The payload cap as a size, for the WebSocket limits.
    pub fn max_payload(&self) -> usize {
        usize::try_from(self.max_payload_bytes).unwrap_or(usize::MAX)
    }
}

impl WebhookConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl Config {
    /// Reads `path` if given (or `./ticketwire.toml` if it exists), then applies environment variables.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let default_path = std::path::Path::new("ticketwire.toml");
        let file = match path {
            Some(p) => Some(std::fs::read_to_string(p)?),
            None if default_path.exists() => Some(std::fs::read_to_string(default_path)?),
            None => None,
        };
        let mut config: Config = match file {
            Some(text) => toml::from_str(&text)?,
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Overrides fields from environment variables, read through `get` so tests can inject them.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, v: String) -> anyhow::Result<T>
        where
            T::Err: fmt::Display,
        {
            v.parse().map_err(|e| anyhow::anyhow!("{key}: cannot parse {v:?}: {e}"))
        }
        fn list<T: std::str::FromStr>(key: &str, v: String) -> anyhow::Result<Vec<T>>
        where
            T::Err: fmt::Display,
        {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| parse(key, s.to_string())).collect()
        }
        if let Some(v) = get("TICKETWIRE_LISTEN") {
            self.listen = parse("TICKETWIRE_LISTEN", v)?;
        }
        if let Some(v) = get("DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(v);
        }
        if let Some(v) = get("REDIS_URL").filter(|v| !v.is_empty()) {
            self.redis_url = Some(v);
        }
        if let Some(v) = get("TICKETWIRE_REDIS_PREFIX").filter(|v| !v.is_empty()) {
            self.redis_prefix = v;
        }
        if let Some(v) = get("TICKETWIRE_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("TICKETWIRE_JWT_SECRET").filter(|v| !v.is_empty()) {
            self.jwt_secret = Some(v);
        }
        if let Some(v) = get("TICKETWIRE_TOKEN_TTL_SECS") {
            self.token_ttl_secs = parse("TICKETWIRE_TOKEN_TTL_SECS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_ALLOW_REGISTRATION") {
            self.allow_registration = parse("TICKETWIRE_ALLOW_REGISTRATION", v)?;
        }
        if let Some(v) = get("TICKETWIRE_UPLOAD_LIMIT") {
            self.upload_limit_bytes = parse("TICKETWIRE_UPLOAD_LIMIT", v)?;
        }
        if let Some(v) = get("TICKETWIRE_JSON_LIMIT") {
            self.json_limit_bytes = parse("TICKETWIRE_JSON_LIMIT", v)?;
        }
        if let Some(v) = get("TICKETWIRE_LOGIN_PER_MINUTE") {
            self.login_attempts_per_minute = parse("TICKETWIRE_LOGIN_PER_MINUTE", v)?;
        }
        if let Some(v) = get("TICKETWIRE_LOGIN_PER_MINUTE_PER_IP") {
            self.login_attempts_per_minute_per_ip = parse("TICKETWIRE_LOGIN_PER_MINUTE_PER_IP", v)?;
        }
        if let Some(v) = get("TICKETWIRE_REGISTER_PER_HOUR_PER_IP") {
            self.registrations_per_hour_per_ip = parse("TICKETWIRE_REGISTER_PER_HOUR_PER_IP", v)?;
        }
        if let Some(v) = get("TICKETWIRE_MAX_SOCKETS_PER_USER") {
            self.max_sockets_per_user = parse("TICKETWIRE_MAX_SOCKETS_PER_USER", v)?;
        }
        if let Some(v) = get("TICKETWIRE_ENV") {
            self.env = v;
        }
        if let Some(v) = get("TICKETWIRE_WEB_DIR") {
            self.web_dir = v.into();
        }
        if let Some(v) = get("TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS") {
            self.webhooks.retry_schedule_ms = list("TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_WEBHOOK_TIMEOUT_MS") {
            self.webhooks.timeout_ms = parse("TICKETWIRE_WEBHOOK_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_WEBHOOK_DISABLE_AFTER_SECS") {
            self.webhooks.disable_after_secs = parse("TICKETWIRE_WEBHOOK_DISABLE_AFTER_SECS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_WEBHOOK_ALLOW_CIDRS") {
            self.webhooks.allow_cidrs = list("TICKETWIRE_WEBHOOK_ALLOW_CIDRS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_WEBHOOK_MANUAL_SENDS_PER_MINUTE") {
            self.webhooks.manual_sends_per_minute = parse("TICKETWIRE_WEBHOOK_MANUAL_SENDS_PER_MINUTE", v)?;
        }
        if let Some(v) = get("TICKETWIRE_SOCKETIO_PING_INTERVAL_MS") {
            self.socketio.ping_interval_ms = parse("TICKETWIRE_SOCKETIO_PING_INTERVAL_MS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_SOCKETIO_PING_TIMEOUT_MS") {
            self.socketio.ping_timeout_ms = parse("TICKETWIRE_SOCKETIO_PING_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_SOCKETIO_MAX_PAYLOAD") {
            self.socketio.max_payload_bytes = parse("TICKETWIRE_SOCKETIO_MAX_PAYLOAD", v)?;
        }
        if let Some(v) = get("TICKETWIRE_SOCKETIO_CONNECT_TIMEOUT_MS") {
            self.socketio.connect_timeout_ms = parse("TICKETWIRE_SOCKETIO_CONNECT_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_CATCH_UP_MAX_EVENTS") {
            self.catch_up.max_events = parse("TICKETWIRE_CATCH_UP_MAX_EVENTS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_CATCH_UP_MAX_AGE_SECS") {
            self.catch_up.max_age_secs = parse("TICKETWIRE_CATCH_UP_MAX_AGE_SECS", v)?;
        }
        let retention: [(&str, &mut u64); 7] = [
            ("TICKETWIRE_RETENTION_EVENTS_DAYS", &mut self.retention.events_days),
            ("TICKETWIRE_RETENTION_READ_NOTIFICATIONS_DAYS", &mut self.retention.read_notifications_days),
            ("TICKETWIRE_RETENTION_UNREAD_NOTIFICATIONS_DAYS", &mut self.retention.unread_notifications_days),
            ("TICKETWIRE_RETENTION_WEBHOOK_DELIVERIES_DAYS", &mut self.retention.webhook_deliveries_days),
            ("TICKETWIRE_RETENTION_INTERVAL_SECS", &mut self.retention.interval_secs),
            ("TICKETWIRE_RETENTION_BATCH", &mut self.retention.batch),
            ("TICKETWIRE_RETENTION_PAUSE_MS", &mut self.retention.pause_ms),
        ];
        for (key, field) in retention {
            if let Some(v) = get(key) {
                *field = parse(key, v)?;
            }
        }
        let presence: [(&str, &mut u64); 4] = [
            ("TICKETWIRE_PRESENCE_EXPIRY_MS", &mut self.presence.expiry_ms),
            ("TICKETWIRE_PRESENCE_TYPING_EXPIRY_MS", &mut self.presence.typing_expiry_ms),
            ("TICKETWIRE_PRESENCE_BATCH_MS", &mut self.presence.batch_ms),
            ("TICKETWIRE_PRESENCE_GIVE_WAY_MS", &mut self.presence.give_way_ms),
        ];
        for (key, field) in presence {
            if let Some(v) = get(key) {
                *field = parse(key, v)?;
            }
        }
        if let Some(v) = get("TICKETWIRE_PRESENCE_UPDATES_PER_SECOND") {
            self.presence.updates_per_second = parse("TICKETWIRE_PRESENCE_UPDATES_PER_SECOND", v)?;
        }
        if let Some(v) = get("TICKETWIRE_PRESENCE_UPDATES_BURST") {
            self.presence.updates_burst = parse("TICKETWIRE_PRESENCE_UPDATES_BURST", v)?;
        }
        if let Some(v) = get("TICKETWIRE_SEARCH_WINDOW_TICKETS") {
            self.search.window_tickets = parse("TICKETWIRE_SEARCH_WINDOW_TICKETS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_INGEST_FLAP_WINDOW_SECS") {
            self.ingest.flap_window_secs = parse("TICKETWIRE_INGEST_FLAP_WINDOW_SECS", v)?;
        }
        if let Some(v) = get("TICKETWIRE_INGEST_RATE_PER_SECOND") {
            self.ingest.rate_per_second = parse("TICKETWIRE_INGEST_RATE_PER_SECOND", v)?;
        }
        Ok(())
    }

    /// The database to use: `database_url`, or a SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("ticketwire.db").display()),
        }
    }

    pub fn is_production(&self) -> bool {
        self.env.eq_ignore_ascii_case("production")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url.as_ref().map(|u| redact_url(u)))
            .field("redis_url", &self.redis_url.as_ref().map(|u| redact_url(u)))
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "[redacted]"))
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("allow_registration", &self.allow_registration)
            .field("upload_limit_bytes", &self.upload_limit_bytes)
            .field("env", &self.env)
            .field("webhooks", &self.webhooks)
            .field("ingest", &self.ingest)
            .field("socketio", &self.socketio)
            .field("catch_up", &self.catch_up)
            .field("retention", &self.retention)
            .field("presence", &self.presence)
            .field("search", &self.search)
            .finish()
    }
}

/// Hides the password part of a connection URL.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults_and_bad_values_are_named() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "TICKETWIRE_LISTEN" => Some("127.0.0.1:0".into()),
            "TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS" => Some("10, 20,30".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.webhooks.retry_schedule_ms, vec![10, 20, 30]);
        let err = c.apply_env(|k| (k == "TICKETWIRE_UPLOAD_LIMIT").then(|| "lots".into())).unwrap_err();
        assert!(err.to_string().contains("TICKETWIRE_UPLOAD_LIMIT"));
    }

    #[test]
    fn the_example_file_parses_and_matches_the_defaults() {
        let text = include_str!("../../ticketwire.example.toml");
        let parsed: Config = toml::from_str(text).unwrap();
        let d = Config::default();
        assert_eq!(parsed.listen, d.listen);
        assert_eq!(parsed.webhooks.retry_schedule_ms, d.webhooks.retry_schedule_ms);
        assert_eq!(parsed.ingest.batch_max_items, d.ingest.batch_max_items);
        assert_eq!(parsed.max_sockets_per_user, d.max_sockets_per_user);
        assert_eq!(parsed.webhooks.manual_sends_per_minute, d.webhooks.manual_sends_per_minute);
        assert_eq!(parsed.socketio.ping_interval_ms, d.socketio.ping_interval_ms);
        assert_eq!(parsed.socketio.ping_timeout_ms, d.socketio.ping_timeout_ms);
        assert_eq!(parsed.socketio.max_payload_bytes, d.socketio.max_payload_bytes);
        assert_eq!(parsed.socketio.connect_timeout_ms, d.socketio.connect_timeout_ms);
        assert_eq!(parsed.catch_up.max_events, d.catch_up.max_events);
        assert_eq!(parsed.catch_up.max_age_secs, d.catch_up.max_age_secs);
        assert_eq!(parsed.retention.events_days, d.retention.events_days);
        assert_eq!(parsed.retention.read_notifications_days, d.retention.read_notifications_days);
        assert_eq!(parsed.retention.unread_notifications_days, d.retention.unread_notifications_days);
        assert_eq!(parsed.retention.webhook_deliveries_days, d.retention.webhook_deliveries_days);
        assert_eq!(parsed.retention.interval_secs, d.retention.interval_secs);
        assert!(toml::from_str::<Config>("no_such_key = 1").is_err(), "typos are refused");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config {
            jwt_secret: Some("hunter2hunter2".into()),
            database_url: Some("postgres://u:pw@localhost/db".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains(":pw@"));
    }
}
