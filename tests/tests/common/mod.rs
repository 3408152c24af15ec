//! The test harness: a real server on port 0 over a fresh database, and a client that states
//! the status it expects.
#![allow(dead_code)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ticketwire::{auth::Role, config::Config};
use tokio::{sync::oneshot, task::JoinHandle};

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub admin: Actor,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Actor {
    pub token: String,
    pub id: String,
    pub email: String,
    pub name: String,
}

/// A fresh, empty database: a temporary SQLite file, or a new PostgreSQL database when
/// `TEST_DATABASE_URL` points at a server.
pub async fn fresh_database(data_dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(base) => {
            use sea_orm::{ConnectionTrait, Database};
            let name = format!("tw_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&base).await.expect("TEST_DATABASE_URL must be reachable");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            admin.close().await.ok();
            let mut url = url_without_db(&base);
            url.push_str(&name);
            url
        }
        None => format!("sqlite://{}?mode=rwc", data_dir.join("test.db").display()),
    }
}

fn url_without_db(url: &str) -> String {
    let (head, _) = url.rsplit_once('/').expect("database URL with a path");
    format!("{head}/")
}

pub fn test_config(data_dir: PathBuf, database_url: String) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: Some(database_url),
        data_dir,
        jwt_secret: Some("test-secret-0123456789abcdef0123456789".into()),
        upload_limit_bytes: 1024 * 1024,
        ..Config::default()
    };
    config.webhooks.retry_schedule_ms = vec![50, 100, 200];
    config.webhooks.timeout_ms = 2000;
    config.webhooks.allow_cidrs = vec!["127.0.0.0/8".parse().expect("cidr")];
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts a server with a config adjusted by `tweak`.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = std::env::temp_dir().join(format!("tw-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).expect("temp dir");
    let db = fresh_database(&data_dir).await;
    let mut config = test_config(data_dir, db);
    tweak(&mut config);
    spawn_config(config).await
}

/// The server runs inside the test process: its errors (the cause behind a 500, say) go to the
/// test's captured output, shown when the test fails. `RUST_LOG` widens it.
fn show_server_errors() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "ticketwire=error".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

pub async fn spawn_config(config: Config) -> TestApp {
    show_server_errors();
    let admin_email = "admin@example.com";
    let admin_password = "admin-password";
    let admin = ticketwire::cli::create_user(&config, admin_email, admin_password, "Ada Admin", Role::Admin).await;
    // On a restart over the same database the admin exists already.
    let _ = admin;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(ticketwire::run(config.clone(), listener, async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut app = TestApp {
        addr,
        base,
        client,
        config,
        admin: Actor { token: String::new(), id: String::new(), email: admin_email.into(), name: "Ada Admin".into() },
        shutdown: Some(tx),
        handle: Some(handle),
    };
    app.admin = app.login(admin_email, admin_password).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a JSON request and asserts the status; returns the JSON body (or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let (status, value) = self.try_call(method.clone(), path, token, body).await;
        assert_eq!(status.as_u16(), expect, "{method} {path} answered {status}: {value}");
        value
    }

    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, who: &Actor, expect: u16) -> Value {
        self.call(Method::GET, path, Some(&who.token), None, expect).await
    }

    pub async fn post(&self, path: &str, who: &Actor, body: Value, expect: u16) -> Value {
        self.call(Method::POST, path, Some(&who.token), Some(body), expect).await
    }

    pub async fn patch(&self, path: &str, who: &Actor, body: Value, expect: u16) -> Value {
        self.call(Method::PATCH, path, Some(&who.token), Some(body), expect).await
    }

    pub async fn delete(&self, path: &str, who: &Actor, expect: u16) -> Value {
        self.call(Method::DELETE, path, Some(&who.token), None, expect).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Actor {
        let v = self
            .call(Method::POST, "/api/auth/login", None, Some(json!({ "email": email, "password": password })), 200)
            .await;
        Actor {
            token: v["access_token"].as_str().expect("token").into(),
            id: v["user"]["id"].as_str().expect("id").into(),
            email: email.into(),
            name: v["user"]["name"].as_str().unwrap_or_default().into(),
        }
    }

    /// Creates a user with `role` (through the admin API) and signs them in.
    pub async fn user(&self, role: &str, name: &str) -> Actor {
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase().replace(' ', "."),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.post(
            "/api/users",
            &self.admin,
            json!({ "email": email, "password": "password123", "name": name, "role": role }),
            201,
        )
        .await;
        self.login(&email, "password123").await
    }

    pub async fn customer(&self, name: &str) -> Actor {
        self.user("customer", name).await
    }

    pub async fn agent(&self, name: &str) -> Actor {
        self.user("agent", name).await
    }

    pub async fn ticket(&self, who: &Actor, subject: &str) -> Value {
        self.post("/api/tickets", who, json!({ "subject": subject, "description": "details" }), 201).await
    }

    /// Polls `f` until it returns `Some`, for up to five seconds.
    pub async fn eventually<T, F, Fut>(&self, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        for _ in 0..250 {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("condition not met within 5 s");
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> Config {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), h).await;
        }
        self.config.clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
