//! Starting the servers under test (each fresh, on 127.0.0.1:0), their setup over REST, the
//! writers, and /proc readings.
use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{Cli, JWT_SECRET, now_us};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// ticketwire itself (SQLite, hooks on).
    Ticketwire,
    /// Bare socketioxide + axum (bench-peer).
    Peer,
    /// Node socket.io 4.8 (bench/peers/node).
    Node,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Ticketwire => "ticketwire",
            Target::Peer => "socketioxide",
            Target::Node => "node",
        }
    }
}

pub type Running = Arc<Server>;

#[allow(dead_code)]
pub struct Server {
    pub target: Target,
    pub pid: u32,
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// Socket.IO auth tokens, shared round-robin by the clients.
    pub tokens: Vec<String>,
    /// Ticket id -> small index, for matching receipts to writes.
    pub ids: Arc<HashMap<String, u64>>,
    pub tw: Option<Tw>,
    child: tokio::sync::Mutex<Option<Child>>,
    dir: PathBuf,
}

/// ticketwire-specific state: the admin and the tickets the writer updates.
pub struct Tw {
    admin_token: String,
    agents: usize,
    tickets: Vec<String>,
    http: reqwest::Client,
    base: String,
}

/// A token as the server issues them: with its own id (`jti`) and the account's
/// `tokens_valid_after` (`tva`, 0: never set), without which the server refuses it.
pub fn mint(sub: &str, role: &str) -> Result<String> {
    let now = chrono::Utc::now().timestamp();
    let jti = format!("{sub}-{}", now_us());
    let claims = json!({ "sub": sub, "role": role, "iat": now, "exp": now + 6 * 3600, "jti": jti, "tva": 0 });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )?)
}

pub const PEER_TICKET: &str = "00000000-0000-7000-8000-000000000000";

fn description() -> String {
    // Sized so a ticket.update event is ~1 KB, like the peers' payload.
    "The printer on the third floor makes a burning smell whenever a long job runs. ".repeat(7)
}

pub async fn start(cli: &Cli, target: Target, agents: usize) -> Result<Running> {
    start_with(cli, target, Setup::Fresh { agents }, &[]).await
}

/// What a started server gets before the bench uses it.
pub enum Setup<'a> {
    /// A fresh server: for ticketwire an admin, `agents` agents and the tickets the writer updates.
    Fresh { agents: usize },
    /// A fresh ticketwire with its admin and nothing else: the caller creates the rest.
    Empty,
    /// Another ticketwire node on the same database as this one: it already has the accounts and
    /// tickets, so it creates nothing and shares their tokens and ids (the clients match receipts
    /// by ticket id whichever node they are on). It gets no admin: write through the first.
    NodeOf(&'a Server),
}

/// Starts `target`; `extra_env` (ticketwire only) overrides the bench's settings, e.g. to put it
/// on PostgreSQL + Redis.
pub async fn start_with(
    cli: &Cli,
    target: Target,
    setup: Setup<'_>,
    extra_env: &[(String, String)],
) -> Result<Running> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir =
        std::env::temp_dir().join(format!("tw-bench-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let cmd = match target {
        Target::Ticketwire => {
            let mut envs = tw_env(&dir);
            envs.extend_from_slice(extra_env);
            if let Setup::Fresh { .. } | Setup::Empty = setup {
                let st = Command::new(&cli.server)
                    .args([
                        "create-admin",
                        "--email",
                        "admin@example.com",
                        "--password",
                        "admin-password",
                        "--name",
                        "Admin",
                    ])
                    .envs(envs.clone())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .status()
                    .await
                    .with_context(|| format!("running {}", cli.server.display()))?;
                if !st.success() {
                    bail!("create-admin failed: {st}");
                }
            }
            let mut c = Command::new(&cli.server);
            c.arg("serve").envs(envs);
            c
        }
        Target::Peer => {
            let mut c = Command::new(&cli.peer);
            c.env("PEER_JWT_SECRET", JWT_SECRET).env("PEER_LISTEN", "127.0.0.1:0");
            c
        }
        Target::Node => {
            let mut c = Command::new("node");
            c.arg("server.js")
                .current_dir(&cli.node_dir)
                .env("PEER_JWT_SECRET", JWT_SECRET)
                .env("PEER_LISTEN", "127.0.0.1:0");
            c
        }
    };
    let (child, pid, base) = spawn_listening(cmd, &dir, log).await?;
    let addr: SocketAddr = base.trim_start_matches("http://").parse()?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    let (tokens, ids, tw) = match (setup, target) {
        (Setup::NodeOf(first), _) => (first.tokens.clone(), first.ids.clone(), None),
        (Setup::Empty, _) => {
            let tw = Tw::setup(&http, &base, 0, 0).await?;
            (Vec::new(), Arc::new(HashMap::new()), Some(tw.tw))
        }
        (Setup::Fresh { agents }, Target::Ticketwire) => {
            let tw = Tw::setup(&http, &base, agents, 4).await?;
            let tokens = tw.agent_tokens.clone();
            let ids = tw.tw.tickets.iter().enumerate().map(|(i, t)| (t.clone(), i as u64)).collect();
            (tokens, Arc::new(ids), Some(tw.tw))
        }
        (Setup::Fresh { agents }, _) => {
            let tokens = (0..agents.max(1)).map(|i| mint(&format!("user-{i}"), "agent")).collect::<Result<Vec<_>>>()?;
            (tokens, Arc::new(HashMap::from([(PEER_TICKET.to_string(), 0)])), None)
        }
    };
    eprintln!("  {} up at {base} (pid {pid})", target.name());
    Ok(Arc::new(Server {
        target,
        pid,
        base,
        addr,
        http,
        tokens,
        ids,
        tw,
        child: tokio::sync::Mutex::new(Some(child)),
        dir,
    }))
}

/// ticketwire on the data a server left in `dir` (a kept run's, or a halted one's).
pub async fn serve_in(cli: &Cli, dir: &std::path::Path, extra_env: &[(String, String)]) -> Result<Running> {
    let mut envs = tw_env(dir);
    envs.extend_from_slice(extra_env);
    let mut cmd = Command::new(&cli.server);
    cmd.arg("serve").envs(envs);
    let log = std::fs::OpenOptions::new().append(true).create(true).open(dir.join("server.log"))?;
    let (child, pid, base) = spawn_listening(cmd, dir, log).await?;
    eprintln!("  ticketwire up at {base} on {} (pid {pid})", dir.display());
    Ok(Arc::new(Server {
        target: Target::Ticketwire,
        pid,
        addr: base.trim_start_matches("http://").parse()?,
        base,
        http: reqwest::Client::builder().pool_max_idle_per_host(256).build()?,
        tokens: Vec::new(),
        ids: Arc::new(HashMap::new()),
        tw: None,
        child: tokio::sync::Mutex::new(Some(child)),
        dir: dir.to_path_buf(),
    }))
}

/// Spawns `cmd` (its stderr to `log`) and waits for it to say where it listens.
async fn spawn_listening(mut cmd: Command, dir: &std::path::Path, log: std::fs::File) -> Result<(Child, u32, String)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(log).kill_on_drop(true).spawn().context("starting the server")?;
    let pid = child.id().context("pid")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(i) = line.find("listening on http://") {
                return Ok(line[i + "listening on ".len()..].trim().to_string());
            }
        }
        bail!("the server exited before listening (see {})", dir.join("server.log").display())
    })
    .await
    .context("waiting for 'listening on'")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, pid, base))
}

fn tw_env(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("TICKETWIRE_DATA_DIR".into(), dir.join("data").display().to_string()),
        ("TICKETWIRE_JWT_SECRET".into(), JWT_SECRET.into()),
        ("TICKETWIRE_LISTEN".into(), "127.0.0.1:0".into()),
        ("TICKETWIRE_WEBHOOK_ALLOW_CIDRS".into(), "127.0.0.0/8".into()),
        // The swarm shares a few accounts across thousands of sockets.
        ("TICKETWIRE_MAX_SOCKETS_PER_USER".into(), "100000".into()),
        ("RUST_LOG".into(), "warn".into()),
    ]
}

impl Server {
    /// The server's working directory (its SQLite database is under `data/`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Stops the server with SIGTERM (it shuts down as in production), keeping its data, so
    /// its database can be written while nothing else does.
    pub async fn halt(&self) -> Result<()> {
        if let Some(mut c) = self.child.lock().await.take() {
            std::process::Command::new("kill").args(["-TERM", &c.id().context("pid")?.to_string()]).status()?;
            if tokio::time::timeout(Duration::from_secs(30), c.wait()).await.is_err() {
                let _ = c.start_kill();
                let _ = c.wait().await;
            }
        }
        Ok(())
    }

    /// A halted ticketwire started again on its data (with `extra_env`), on a new port: what
    /// was written to its database meanwhile is read afresh, as after an upgrade.
    pub async fn started_again(&self, cli: &Cli, extra_env: &[(String, String)]) -> Result<Running> {
        self.halt().await?;
        serve_in(cli, &self.dir, extra_env).await
    }

    pub async fn stop(&self) {
        if let Some(mut c) = self.child.lock().await.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// One write; returns the key its deliveries carry (ticket index << 40 | version).
    pub async fn write(&self, i: u64) -> Result<u64> {
        let v: Value = match &self.tw {
            Some(tw) => {
                let id = &tw.tickets[(i as usize) % tw.tickets.len()];
                let body = json!({ "subject": format!("Printer on fire, update {i}") });
                let r = self
                    .http
                    .patch(format!("{}/api/tickets/{id}", self.base))
                    .bearer_auth(&tw.admin_token)
                    .json(&body)
                    .send()
                    .await?;
                ok_json(r).await?
            }
            None => ok_json(self.http.post(format!("{}/broadcast", self.base)).send().await?).await?,
        };
        let id = v["id"].as_str().context("no id")?;
        let version = v["version"].as_u64().context("no version")?;
        let idx = self.ids.get(id).context("unknown ticket")?;
        Ok(idx << 40 | version)
    }
}

async fn ok_json(r: reqwest::Response) -> Result<Value> {
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.chars().take(300).collect::<String>());
    }
    Ok(serde_json::from_str(&text)?)
}

struct TwSetup {
    tw: Tw,
    agent_tokens: Vec<String>,
}

impl Tw {
    async fn setup(http: &reqwest::Client, base: &str, agents: usize, tickets: usize) -> Result<TwSetup> {
        let login = ok_json(
            http.post(format!("{base}/api/auth/login"))
                .json(&json!({ "email": "admin@example.com", "password": "admin-password" }))
                .send()
                .await?,
        )
        .await?;
        let admin_token = login["access_token"].as_str().context("access_token")?.to_string();
        let mut tw = Tw { admin_token, agents, tickets: Vec::new(), http: http.clone(), base: base.to_string() };
        let ids = tw.create_users("agent", agents).await?;
        let agent_tokens = ids.iter().map(|id| mint(id, "agent")).collect::<Result<Vec<_>>>()?;
        for i in 0..tickets {
            let t = ok_json(
                http.post(format!("{base}/api/tickets"))
                    .bearer_auth(&tw.admin_token)
                    .json(&json!({ "subject": format!("Printer on fire {i}"), "description": description() }))
                    .send()
                    .await?,
            )
            .await?;
            tw.tickets.push(t["id"].as_str().context("ticket id")?.to_string());
        }
        Ok(TwSetup { tw, agent_tokens })
    }

    /// Tokens of `n` new agents, apart from the socket clients' identities.
    pub async fn new_agent_tokens(&self, n: usize) -> Result<Vec<String>> {
        self.create_users("agent", n).await?.iter().map(|id| mint(id, "agent")).collect()
    }

    pub fn agent_count(&self) -> usize {
        self.agents
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Creates `n` users (8 at a time: the server hashes each password), returns their ids.
    pub async fn create_users(&self, role: &str, n: usize) -> Result<Vec<String>> {
        use futures::StreamExt;
        let tag = format!("{role}{}", now_us());
        let made: Vec<Result<String>> = futures::stream::iter(0..n)
            .map(|i| {
                let (http, base, token, tag, role) = (self.http.clone(), self.base.clone(), self.admin_token.clone(), tag.clone(), role.to_string());
                async move {
                    let u = ok_json(
                        http.post(format!("{base}/api/users"))
                            .bearer_auth(&token)
                            .json(&json!({ "email": format!("{tag}-{i}@example.com"), "password": "bench-password-1", "name": format!("Bench {i}"), "role": role }))
                            .send()
                            .await?,
                    )
                    .await?;
                    Ok(u["id"].as_str().context("user id")?.to_string())
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        made.into_iter().collect()
    }

    /// `n` users, each with a webhook to the receiver.
    pub async fn webhook_users(&self, n: usize, receiver: &str) -> Result<()> {
        use futures::StreamExt;
        let ids = self.create_users("customer", n).await?;
        let set: Vec<Result<()>> = futures::stream::iter(ids.into_iter().enumerate())
            .map(|(i, id)| {
                let (http, base) = (self.http.clone(), self.base.clone());
                let url = format!("{receiver}/hook/{i}");
                async move {
                    let token = mint(&id, "customer")?;
                    ok_json(
                        http.put(format!("{base}/api/users/me/webhook"))
                            .bearer_auth(&token)
                            .json(&json!({ "webhook_url": url }))
                            .send()
                            .await?,
                    )
                    .await?;
                    Ok(())
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        set.into_iter().collect()
    }

    pub async fn admin_webhook(&self, receiver: &str) -> Result<()> {
        ok_json(
            self.http
                .put(format!("{}/api/users/me/webhook", self.base))
                .bearer_auth(&self.admin_token)
                .json(&json!({ "webhook_url": format!("{receiver}/hook/admin") }))
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }

    pub async fn publish_article(&self, i: usize) -> Result<()> {
        ok_json(
            self.http
                .post(format!("{}/api/kb/articles", self.base))
                .bearer_auth(&self.admin_token)
                .json(&json!({ "title": format!("How to put out a printer fire, part {i}"), "body": description(), "status": "published" }))
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }

    /// Creates a ticket as `token`'s user: when that is an agent, the admin is notified (and
    /// gets the webhook delivery), as a helpdesk's admins are of every new ticket.
    pub async fn create_ticket(&self, run: &Server, token: &str, i: u64) -> Result<()> {
        ok_json(
            run.http
                .post(format!("{}/api/tickets", self.base))
                .bearer_auth(token)
                .json(&json!({ "subject": format!("Bench ticket {i}"), "description": description() }))
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }
}

/// VmRSS of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

/// utime + stime of `pid`, clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &s[s.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

pub fn clock_ticks() -> u64 {
    100 // USER_HZ on Linux (getconf CLK_TCK)
}
