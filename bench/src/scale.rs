//! Scenario 6 (`bench scale`): a helpdesk of N tickets, seeded through the API, then the read
//! routes timed one request at a time. For each size a fresh ticketwire (SQLite, or PostgreSQL in
//! a database of the run's own) gets 20 agents, 1,000 published KB articles (published while
//! only staff exist: each publish notifies every active user), 1,000 customers, N tickets opened
//! by agents for customers, and 3 comments on each (the customer's, the agent's reply, an
//! internal note), all through the REST API, so every row, event and notification is the
//! server's own. The run waits for the dispatcher to finish the log, then times each route
//! (median of `--samples` requests after one unmeasured). `bench scale-report` prints the
//! tables, with the growth per 10× of tickets.
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    Cli,
    servers::{self, Setup, Target, mint},
    two_nodes::ScratchDb,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Ticket counts, each seeded into a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    #[arg(long, value_enum, default_value = "sqlite")]
    db: Backend,
    /// PostgreSQL, as a user that may create databases (one per size, dropped at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg: String,
    /// Timed requests per route; the median is reported.
    #[arg(long, default_value_t = 7)]
    samples: usize,
    /// Requests in flight while seeding.
    #[arg(long, default_value_t = 32)]
    writers: usize,
    #[arg(long, default_value_t = 1000)]
    customers: usize,
    #[arg(long, default_value_t = 20)]
    agents: usize,
    #[arg(long, default_value_t = 1000)]
    articles: usize,
    /// Keep the server and its database after measuring, and print where they are.
    #[arg(long)]
    keep: bool,
}

impl ScaleArgs {
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }
}

/// A word in about 1% of tickets (the description of every hundredth), and one in none.
pub const RARE_WORD: &str = "zeppelin";
pub const ABSENT_WORD: &str = "quetzalcoatl";

const WORDS: &[&str] = &[
    "printer",
    "laptop",
    "screen",
    "password",
    "reset",
    "account",
    "email",
    "outlook",
    "vpn",
    "network",
    "wifi",
    "router",
    "server",
    "login",
    "error",
    "crash",
    "slow",
    "update",
    "install",
    "license",
    "office",
    "excel",
    "word",
    "teams",
    "meeting",
    "calendar",
    "phone",
    "mobile",
    "app",
    "browser",
    "chrome",
    "firefox",
    "page",
    "loading",
    "timeout",
    "access",
    "denied",
    "permission",
    "folder",
    "share",
    "drive",
    "backup",
    "restore",
    "file",
    "missing",
    "deleted",
    "sync",
    "invoice",
    "billing",
    "payment",
    "refund",
    "order",
    "shipping",
    "delivery",
    "tracking",
    "address",
    "change",
    "cancel",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "trial",
    "expired",
    "renewal",
    "keyboard",
    "mouse",
    "monitor",
    "cable",
    "dock",
    "battery",
    "charger",
    "headset",
    "camera",
    "microphone",
    "sound",
    "audio",
    "video",
    "blurry",
    "flicker",
    "black",
    "blue",
    "frozen",
    "restart",
    "reboot",
    "boot",
    "disk",
    "full",
    "space",
    "memory",
    "cpu",
    "fan",
    "noise",
    "hot",
    "power",
    "outage",
    "down",
    "intermittent",
    "again",
    "urgent",
    "please",
    "help",
    "today",
    "yesterday",
    "morning",
    "since",
    "after",
    "before",
    "working",
    "broken",
    "new",
    "old",
    "user",
    "customer",
    "team",
    "manager",
    "request",
    "ticket",
    "issue",
    "problem",
    "question",
    "cannot",
    "unable",
    "fails",
    "failed",
    "works",
    "sometimes",
    "always",
    "never",
    "still",
    "tried",
    "steps",
    "attached",
    "screenshot",
    "log",
    "message",
    "code",
    "version",
    "windows",
    "mac",
    "linux",
    "android",
    "iphone",
    "tablet",
    "portal",
    "dashboard",
    "report",
    "export",
    "import",
    "csv",
    "pdf",
    "upload",
    "download",
    "link",
    "invite",
    "signup",
    "verify",
    "token",
    "two",
    "factor",
    "authentication",
    "locked",
    "unlock",
    "sso",
    "saml",
    "api",
    "integration",
    "webhook",
    "database",
    "query",
    "latency",
    "spike",
    "alert",
    "monitoring",
    "disk",
    "ssl",
    "certificate",
    "dns",
    "domain",
    "firewall",
    "proxy",
    "port",
    "blocked",
    "spam",
    "phishing",
    "virus",
    "scan",
    "quarantine",
    "policy",
    "compliance",
    "audit",
    "training",
    "onboarding",
    "offboarding",
    "hardware",
    "software",
];

/// A small deterministic generator, so every run writes the same helpdesk.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A word, the common ones far more often (roughly Zipf: index = n * u^2).
    fn word(&mut self) -> &'static str {
        let u = (self.next() % 10_000) as f64 / 10_000.0;
        WORDS[((u * u) * WORDS.len() as f64) as usize]
    }

    fn text(&mut self, min: usize, max: usize) -> String {
        let n = min + self.below(max - min + 1);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }

    fn pick<'a>(&mut self, weighted: &[(&'a str, usize)]) -> &'a str {
        let total: usize = weighted.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for (v, w) in weighted {
            if at < *w {
                return v;
            }
            at -= w;
        }
        weighted[0].0
    }
}

/// Where the seeded helpdesk's people are.
struct Desk {
    base: String,
    http: reqwest::Client,
    admin: String,
    /// (id, token)
    agents: Vec<(String, String)>,
    customers: Vec<(String, String)>,
}

async fn ok(r: reqwest::RequestBuilder) -> Result<Value> {
    let r = r.send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.chars().take(300).collect::<String>());
    }
    Ok(serde_json::from_str(&text)?)
}

/// Sends the `n` requests `make` builds, `writers` at a time, answers in order. A request that
/// fails is built and sent again (up to 5 times: a 503 is the server saying "again"). Returns
/// the answers and the rate.
async fn many<F>(what: &str, n: usize, writers: usize, make: F) -> Result<(Vec<Value>, f64)>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let progress = {
        let (done, what) = (done.clone(), what.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let d = done.load(Ordering::Relaxed);
                eprintln!("    {what}: {d}/{n} ({:.0}/s)", d as f64 / t.elapsed().as_secs_f64());
            }
        })
    };
    let make = &make;
    let out: Vec<Result<Value>> = futures::stream::iter(0..n)
        .map(|i| {
            let done = done.clone();
            async move {
                let mut last = anyhow::anyhow!("not sent");
                for attempt in 0..5u64 {
                    match ok(make(i)).await {
                        Ok(v) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            return Ok(v);
                        }
                        Err(e) => last = e,
                    }
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
                Err(last.context(format!("{what} {i}")))
            }
        })
        .buffered(writers)
        .collect()
        .await;
    progress.abort();
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    eprintln!("  {what}: {n} in {secs:.1}s ({rate:.0}/s)");
    Ok((out.into_iter().collect::<Result<Vec<_>>>()?, rate))
}

/// Who opens ticket `i`, for whom, and how.
struct TicketPlan {
    requester: usize,
    agent: usize,
    body: Value,
}

fn ticket_plan(i: usize, desk: &Desk) -> TicketPlan {
    let mut rng = Rng::new(i as u64 + 1);
    let requester = rng.below(desk.customers.len());
    let agent = rng.below(desk.agents.len());
    // Nine in ten are assigned; the agent who opens it answers it either way.
    let assigned = rng.below(10) != 0;
    let mut description = rng.text(20, 60);
    if i.is_multiple_of(100) {
        description.push(' ');
        description.push_str(RARE_WORD);
    }
    let mut body = json!({
        "subject": rng.text(3, 8),
        "description": description,
        "requester_id": desk.customers[requester].0,
        "status": rng.pick(&[("open", 40), ("in_progress", 20), ("pending", 15), ("resolved", 15), ("closed", 10)]),
        "priority": rng.pick(&[("low", 30), ("medium", 45), ("high", 20), ("urgent", 5)]),
        "source": rng.pick(&[("web", 50), ("email", 30), ("api", 15), ("phone", 5)]),
    });
    if assigned {
        body["assignee_id"] = json!(desk.agents[agent].0);
    }
    TicketPlan { requester, agent, body }
}

struct Seeded {
    tickets: Vec<String>,
    stats: Value,
}

async fn seed(desk: &mut Desk, tw: &servers::Tw, a: &ScaleArgs, n: usize) -> Result<Seeded> {
    let t0 = Instant::now();
    let ids = tw.create_users("agent", a.agents).await?;
    desk.agents = ids.into_iter().map(|id| Ok((id.clone(), mint(&id, "agent")?))).collect::<Result<_>>()?;
    eprintln!("  {} agents", desk.agents.len());
    // Before the customers exist: a publish notifies every active user, and a KB is usually
    // written before most of its readers arrive.
    let (_, articles_per_s) = many("articles", a.articles, a.writers, |i| {
        let mut rng = Rng::new(1_000_000 + i as u64);
        let body = json!({
            "title": rng.text(3, 7),
            "body": rng.text(80, 200),
            "tags": [rng.word(), rng.word()],
            "status": "published",
        });
        desk.http.post(format!("{}/api/kb/articles", desk.base)).bearer_auth(&desk.admin).json(&body)
    })
    .await?;
    let ids = tw.create_users("customer", a.customers).await?;
    desk.customers = ids.into_iter().map(|id| Ok((id.clone(), mint(&id, "customer")?))).collect::<Result<_>>()?;
    eprintln!("  {} customers ({:.0}s so far)", desk.customers.len(), t0.elapsed().as_secs_f64());

    let plans: Vec<TicketPlan> = (0..n).map(|i| ticket_plan(i, desk)).collect();
    let (made, tickets_per_s) = many("tickets", n, a.writers, |i| {
        let p = &plans[i];
        desk.http.post(format!("{}/api/tickets", desk.base)).bearer_auth(&desk.agents[p.agent].1).json(&p.body)
    })
    .await?;
    let tickets: Vec<String> =
        made.iter().map(|t| t["id"].as_str().map(str::to_string).context("ticket id")).collect::<Result<_>>()?;

    // The customer writes, the agent answers, the agent leaves an internal note.
    let (_, comments_per_s) = many("comments", 3 * n, a.writers, |k| {
        let (i, which) = (k / 3, k % 3);
        let p = &plans[i];
        let mut rng = Rng::new(2_000_000 + k as u64);
        let (token, body) = match which {
            0 => (&desk.customers[p.requester].1, json!({ "content": rng.text(10, 40) })),
            1 => (&desk.agents[p.agent].1, json!({ "content": rng.text(10, 40) })),
            _ => (&desk.agents[p.agent].1, json!({ "content": rng.text(5, 25), "internal": true })),
        };
        desk.http.post(format!("{}/api/tickets/{}/comments", desk.base, tickets[i])).bearer_auth(token).json(&body)
    })
    .await?;
    let writes_s = t0.elapsed().as_secs_f64();
    let dispatched = Instant::now();
    wait_for_dispatch(desk).await?;
    let dispatch_s = dispatched.elapsed().as_secs_f64();
    eprintln!("  the dispatcher caught up {dispatch_s:.0}s after the last write");
    Ok(Seeded {
        tickets,
        stats: json!({
            "articles_per_s": articles_per_s,
            "tickets_per_s": tickets_per_s,
            "comments_per_s": comments_per_s,
            "writes_s": writes_s,
            "dispatch_after_writes_s": dispatch_s,
        }),
    })
}

/// Until the lowest dispatcher cursor (a list's `position`) has reached the end of the log.
async fn wait_for_dispatch(desk: &Desk) -> Result<()> {
    loop {
        let page = ok(desk.http.get(format!("{}/api/tickets?limit=1", desk.base)).bearer_auth(&desk.admin)).await?;
        let position = page["position"].as_i64().context("position")?;
        let after =
            ok(desk.http.get(format!("{}/api/events?after={position}&limit=1", desk.base)).bearer_auth(&desk.admin))
                .await?;
        if after.as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The routes timed, in the order of the tables: (name, path, who).
fn routes(desk: &Desk, ticket: &str, page_50: &str) -> Vec<(&'static str, String, String)> {
    let agent = desk.agents[0].1.clone();
    let customer = desk.customers[0].1.clone();
    let admin = desk.admin.clone();
    vec![
        ("search: a word in no ticket", format!("/api/tickets?q={ABSENT_WORD}"), agent.clone()),
        ("search: a word in 1% of tickets", format!("/api/tickets?q={RARE_WORD}"), agent.clone()),
        ("search: the commonest word", format!("/api/tickets?q={}", WORDS[0]), agent.clone()),
        ("search: the commonest word, as a customer", format!("/api/tickets?q={}", WORDS[0]), customer.clone()),
        ("search: two words and a prefix", "/api/tickets?q=vpn%20timeout%20rest*".to_string(), agent.clone()),
        ("tickets of one assignee", format!("/api/tickets?assignee_id={}", desk.agents[0].0), agent.clone()),
        ("tickets: open ones", "/api/tickets?status=open".into(), agent.clone()),
        ("a customer's tickets", "/api/tickets".into(), customer),
        ("admin notifications, first page", "/api/notifications".into(), admin.clone()),
        ("admin unread count", "/api/notifications/unread-count".into(), admin),
        ("suggested articles", format!("/api/tickets/{ticket}/suggested-articles"), agent.clone()),
        ("KB search", format!("/api/kb/articles?q={}", WORDS[1]), agent.clone()),
        ("tickets, first page", "/api/tickets".into(), agent.clone()),
        ("a ticket by id", format!("/api/tickets/{ticket}"), agent.clone()),
        ("a ticket's comments", format!("/api/tickets/{ticket}/comments"), agent.clone()),
        ("tickets, page 50 (cursor)", format!("/api/tickets?cursor={page_50}"), agent),
    ]
}

async fn measure(desk: &Desk, tickets: &[String], samples: usize) -> Result<Value> {
    // The 49th page's cursor, by walking there as a client would.
    let mut cursor = String::new();
    for _ in 0..49 {
        let page =
            ok(desk.http.get(format!("{}/api/tickets?cursor={cursor}", desk.base)).bearer_auth(&desk.agents[0].1))
                .await?;
        cursor = page["next_cursor"].as_str().unwrap_or_default().to_string();
    }
    let ticket = &tickets[tickets.len() / 2];
    let mut out = serde_json::Map::new();
    for (name, path, token) in routes(desk, ticket, &cursor) {
        let url = format!("{}{path}", desk.base);
        ok(desk.http.get(&url).bearer_auth(&token)).await.with_context(|| format!("{name}: {path}"))?;
        let mut ms = Vec::with_capacity(samples);
        let mut items = 0;
        for _ in 0..samples {
            let t = Instant::now();
            let v = ok(desk.http.get(&url).bearer_auth(&token)).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            items = v["items"].as_array().map_or(v.as_array().map_or(1, Vec::len), Vec::len);
        }
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        eprintln!("  {name:<45} median {median:>9.2} ms  ({items} items)");
        out.insert(
            name.into(),
            json!({ "path": path, "median_ms": median, "min_ms": ms[0], "max_ms": ms[ms.len() - 1], "items": items, "samples_ms": ms }),
        );
    }
    Ok(Value::Object(out))
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("ticketwire.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn build_label() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub async fn scale(cli: &Cli, a: &ScaleArgs, n: usize) -> Result<Value> {
    eprintln!("== scale {n} tickets on {:?}", a.db);
    let scratch = match a.db {
        Backend::Postgres => Some(ScratchDb::create(&a.pg).await?),
        Backend::Sqlite => None,
    };
    let env: Vec<(String, String)> = scratch
        .iter()
        .map(|db| ("DATABASE_URL".to_string(), db.url.clone()))
        .chain([("RUST_LOG".to_string(), "warn".to_string())])
        .collect();
    let run = servers::start_with(cli, Target::Ticketwire, Setup::Empty, &env).await?;
    let res = async {
        let tw = run.tw.as_ref().context("ticketwire")?;
        let mut desk = Desk {
            base: run.base.clone(),
            http: run.http.clone(),
            admin: tw.admin_token().to_string(),
            agents: Vec::new(),
            customers: Vec::new(),
        };
        let seeded = seed(&mut desk, tw, a, n).await?;
        let db_bytes = match &scratch {
            Some(db) => {
                use sea_orm::{ConnectionTrait, Database, Statement};
                let conn = Database::connect(&db.url).await?;
                // What autovacuum does in due course after a bulk load; measured after it.
                conn.execute_unprepared("VACUUM ANALYZE").await?;
                let row = conn
                    .query_one_raw(Statement::from_string(
                        conn.get_database_backend(),
                        "SELECT pg_database_size(current_database())::bigint AS n",
                    ))
                    .await?
                    .context("size")?;
                let n: i64 = row.try_get("", "n")?;
                conn.close().await?;
                n as u64
            }
            None => dir_bytes(&run.dir().join("data")),
        };
        let routes = measure(&desk, &seeded.tickets, a.samples).await?;
        Ok::<_, anyhow::Error>(json!({
            "scenario": "scale",
            "db": format!("{:?}", a.db).to_lowercase(),
            "build": build_label(),
            "at": chrono::Utc::now().to_rfc3339(),
            "tickets": n,
            "comments": 3 * n,
            "customers": a.customers,
            "agents": a.agents,
            "articles": a.articles,
            "samples": a.samples,
            "seed": seeded.stats,
            "db_bytes": db_bytes,
            "routes": routes,
        }))
    }
    .await;
    if a.keep {
        eprintln!("  kept: {} at {} (stop it yourself)", run.dir().display(), run.base);
        std::mem::forget(run);
    } else {
        run.stop().await;
        if let Some(db) = &scratch {
            db.drop().await;
        }
    }
    res
}

/// `bench scale-report`: the scale results in `results.jsonl` as one table per database, the
/// newest run of each size, with the growth of each route per 10× tickets.
pub fn report(out: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(out.join("results.jsonl"))?;
    let mut runs: BTreeMap<String, BTreeMap<u64, Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)?;
        if v["scenario"] == "scale" {
            let db = v["db"].as_str().unwrap_or("").to_string();
            runs.entry(db).or_default().insert(v["tickets"].as_u64().unwrap_or(0), v);
        }
    }
    let mut md = String::new();
    for (db, by_size) in &runs {
        let sizes: Vec<u64> = by_size.keys().copied().collect();
        let first = by_size.values().next().context("no run")?;
        let names: Vec<String> = first["routes"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        // The order routes were timed in, not the map's.
        let order: Vec<&str> = routes_order();
        let mut names: Vec<String> = names;
        names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
        md.push_str(&format!("#### {db}: median ms of {} requests\n\n| route |", first["samples"]));
        for s in &sizes {
            md.push_str(&format!(" {} tickets |", thousands(*s)));
        }
        for w in sizes.windows(2) {
            md.push_str(&format!(" growth per 10× ({}→{}) |", short(w[0]), short(w[1])));
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(sizes.len() * 2 - 1));
        md.push('\n');
        for name in &names {
            md.push_str(&format!("| {name} |"));
            let medians: Vec<Option<f64>> =
                sizes.iter().map(|s| by_size[s]["routes"][name]["median_ms"].as_f64()).collect();
            for m in &medians {
                md.push_str(&m.map_or(" – |".into(), |m| format!(" {} |", fmt_ms(m))));
            }
            for (w, m) in sizes.windows(2).zip(medians.windows(2)) {
                let per10 = match (m[0], m[1]) {
                    (Some(a), Some(b)) if a > 0.0 => {
                        let decades = (w[1] as f64 / w[0] as f64).log10();
                        format!(" ×{:.2} |", (b / a).powf(1.0 / decades))
                    }
                    _ => " – |".into(),
                };
                md.push_str(&per10);
            }
            md.push('\n');
        }
        md.push_str("\n| seeding (through the API) |");
        for s in &sizes {
            let st = &by_size[s]["seed"];
            md.push_str(&format!(
                " {:.0} tickets/s, {:.0} comments/s, log dispatched {:.0} s after the writes; database {} MB |",
                st["tickets_per_s"].as_f64().unwrap_or(0.0),
                st["comments_per_s"].as_f64().unwrap_or(0.0),
                st["dispatch_after_writes_s"].as_f64().unwrap_or(0.0),
                by_size[s]["db_bytes"].as_u64().unwrap_or(0) / 1_000_000,
            ));
        }
        md.push_str("\n\nBuilds: ");
        md.push_str(
            &by_size
                .iter()
                .map(|(s, v)| format!("{} at {}", short(*s), v["build"].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", "),
        );
        md.push_str("\n\n");
    }
    Ok(md)
}

fn routes_order() -> Vec<&'static str> {
    let desk = Desk {
        base: String::new(),
        http: reqwest::Client::new(),
        admin: String::new(),
        agents: vec![(String::new(), String::new())],
        customers: vec![(String::new(), String::new())],
    };
    routes(&desk, "", "").into_iter().map(|(n, _, _)| n).collect()
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
