//! Scenario 6 (`bench scale`): a helpdesk of N tickets, then the read routes timed one request
//! at a time. For each size a fresh ticketwire (SQLite, or PostgreSQL in a database of the run's
//! own) gets, through the REST API, 20 agents, 1,000 published KB articles (published while only
//! staff exist: each publish notifies every active user) and 1,000 customers; then N tickets
//! opened by agents for customers with 3 comments each (the customer's, the agent's reply, an
//! internal note; [`crate::plan`]). With `--seed api` every ticket and comment goes through the
//! API; with `--seed bulk` (the default) the first `--sample` do, and the rest are written into
//! the database as the API writes them while the server is stopped ([`crate::seed`]), then the
//! server is started again. The run waits for the dispatcher to finish the log, then times each
//! route (median of `--samples` requests after one unmeasured). `bench scale-report` prints the
//! tables, with the growth per 10× of tickets.
mod api_seed;
mod report;

pub use report::report;

use api_seed::{ok, seed};

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    Cli, catch_up,
    plan::{self, ABSENT_WORD, RARE_WORD, WORDS},
    seed,
    servers::{self, Setup, Target, mint},
    two_nodes::ScratchDb,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How the tickets get into the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Seeding {
    /// Every ticket and comment through the REST API (hours for a million here).
    Api,
    /// A sample through the API, the rest written into the database as the API writes it, with
    /// the server stopped ([`crate::seed`]).
    Bulk,
}

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Ticket counts, each seeded into a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    #[arg(long, value_enum, default_value = "sqlite")]
    db: Backend,
    #[arg(long, value_enum, default_value = "bulk")]
    seed: Seeding,
    /// Tickets written through the API first when seeding in bulk, the seeder's check.
    #[arg(long, default_value_t = 100)]
    sample: usize,
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
    /// Measure the helpdesk a `--keep` run left in this server directory instead of seeding
    /// one; `--sizes` names its size. Kept afterwards.
    #[arg(long)]
    reuse: Option<std::path::PathBuf>,
    /// With `--reuse` and `--db postgres`: the kept run's database.
    #[arg(long)]
    reuse_url: Option<String>,
}

impl ScaleArgs {
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
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

impl Desk {
    /// The customers' and agents' ids, as the plan indexes them.
    fn ids(&self) -> (Vec<String>, Vec<String>) {
        let ids = |people: &[(String, String)]| people.iter().map(|(id, _)| id.clone()).collect();
        (ids(&self.customers), ids(&self.agents))
    }
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
fn routes(desk: &Desk, ticket: &str, page_50: &str, missed_from: i64) -> Vec<(&'static str, String, String)> {
    let agent = desk.agents[0].1.clone();
    let customer = desk.customers[0].1.clone();
    let admin = desk.admin.clone();
    let admin_log = admin.clone();
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
        ("tickets, page 50 (cursor)", format!("/api/tickets?cursor={page_50}"), agent.clone()),
        // What a client that missed the last 1,000 events reads to catch up (two pages of 500).
        ("the log: 500 events of the last 1,000", format!("/api/events?after={missed_from}&limit=500"), agent),
        (
            "the log: 500 events of the last 1,000, as admin",
            format!("/api/events?after={missed_from}&limit=500"),
            admin_log,
        ),
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
    let page = ok(desk.http.get(format!("{}/api/tickets?limit=1", desk.base)).bearer_auth(&desk.admin)).await?;
    let missed_from = page["position"].as_i64().context("position")? - 1000;
    let mut out = serde_json::Map::new();
    for (name, path, token) in routes(desk, ticket, &cursor, missed_from) {
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
    for (name, token) in catch_ups(desk) {
        out.insert(name.into(), catch_up::timed(&desk.base, name, &token, missed_from, samples).await?);
    }
    Ok(Value::Object(out))
}

/// The Socket.IO catch-ups timed after the routes, in the order of the tables: (name, who).
fn catch_ups(desk: &Desk) -> [(&'static str, String); 2] {
    [
        ("catch-up over Socket.IO: the last 1,000 events", desk.agents[0].1.clone()),
        ("catch-up over Socket.IO: the last 1,000 events, as admin", desk.admin.clone()),
    ]
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
    if let Some(dir) = &a.reuse {
        return measure_kept(cli, a, n, dir).await;
    }
    eprintln!("== scale {n} tickets on {:?}, seeded {:?}", a.db, a.seed);
    let scratch = match a.db {
        Backend::Postgres => Some(ScratchDb::create(&a.pg).await?),
        Backend::Sqlite => None,
    };
    let env: Vec<(String, String)> = scratch
        .iter()
        .map(|db| ("DATABASE_URL".to_string(), db.url.clone()))
        .chain([("RUST_LOG".to_string(), "warn".to_string())])
        .collect();
    let mut run = servers::start_with(cli, Target::Ticketwire, Setup::Empty, &env).await?;
    let res = seed_and_measure(cli, a, n, scratch.as_ref(), &env, &mut run).await;
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

/// Times the routes of the helpdesk of `n` tickets a kept run left in `dir` (and, on
/// PostgreSQL, `--reuse-url`), with the server binary given now.
async fn measure_kept(cli: &Cli, a: &ScaleArgs, n: usize, dir: &std::path::Path) -> Result<Value> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use ticketwire_core::entity::{ticket, user};
    eprintln!("== scale {n} tickets on {:?}, kept in {}", a.db, dir.display());
    let (url, env) = match (a.db, &a.reuse_url) {
        (Backend::Postgres, Some(url)) => (url.clone(), vec![("DATABASE_URL".to_string(), url.clone())]),
        (Backend::Postgres, None) => bail!("--reuse with --db postgres needs --reuse-url"),
        _ => (format!("sqlite://{}?mode=rw", dir.join("data").join("ticketwire.db").display()), Vec::new()),
    };
    let db = sea_orm::Database::connect(&url).await?;
    let people = |role: &'static str| {
        let db = &db;
        async move {
            let users =
                user::Entity::find().filter(user::Column::Role.eq(role)).order_by_asc(user::Column::Id).all(db).await?;
            users.into_iter().map(|u| Ok((u.id.clone(), mint(&u.id, role)?))).collect::<Result<Vec<_>>>()
        }
    };
    let (agents, customers) = (people("agent").await?, people("customer").await?);
    let middle = ticket::Entity::find().filter(ticket::Column::Number.eq(1000 + n as i64 / 2)).one(&db).await?;
    let tickets = vec![middle.context("no ticket in the middle")?.id];
    let db_bytes = match a.db {
        Backend::Postgres => {
            use sea_orm::{ConnectionTrait, Statement};
            let sql = "SELECT pg_database_size(current_database())::bigint AS n";
            let row =
                db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?.context("size")?;
            row.try_get::<i64>("", "n")? as u64
        }
        Backend::Sqlite => dir_bytes(&dir.join("data")),
    };
    db.close().await?;
    let run = servers::serve_in(cli, dir, &env).await?;
    let res = async {
        let login = json!({ "email": "admin@example.com", "password": "admin-password" });
        let admin = ok(run.http.post(format!("{}/api/auth/login", run.base)).json(&login)).await?;
        let desk = Desk {
            base: run.base.clone(),
            http: run.http.clone(),
            admin: admin["access_token"].as_str().context("access_token")?.to_string(),
            agents,
            customers,
        };
        wait_for_dispatch(&desk).await?;
        let routes = measure(&desk, &tickets, a.samples).await?;
        let mut row = result_row(a, n, "kept", json!({}), db_bytes, routes);
        row["kept_in"] = json!(dir.display().to_string());
        Ok(row)
    }
    .await;
    run.halt().await?;
    res
}

/// Seeds `run`'s helpdesk and times its routes; `run` is the server started again when the
/// seeding stopped it.
async fn seed_and_measure(
    cli: &Cli,
    a: &ScaleArgs,
    n: usize,
    scratch: Option<&ScratchDb>,
    env: &[(String, String)],
    run: &mut servers::Running,
) -> Result<Value> {
    let tw = run.tw.as_ref().context("ticketwire")?;
    let mut desk = Desk {
        base: run.base.clone(),
        http: run.http.clone(),
        admin: tw.admin_token().to_string(),
        agents: Vec::new(),
        customers: Vec::new(),
    };
    let through_api = match a.seed {
        Seeding::Api => n,
        Seeding::Bulk => a.sample.min(n),
    };
    let mut seeded = seed(&mut desk, tw, a, through_api).await?;
    let url = match scratch {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}?mode=rw", run.dir().join("data").join("ticketwire.db").display()),
    };
    if through_api < n {
        run.halt().await?;
        let db = sea_orm::Database::connect(&url).await?;
        let (customers, agents) = desk.ids();
        let people = seed::People::load(&db, customers, agents).await?;
        seed::check_sample(&db, &people, &seeded.tickets).await?;
        let written = seed::write(&db, people, through_api, n).await?;
        db.close().await?;
        seeded.tickets.extend(written.tickets);
        seeded.stats["bulk_s"] = json!(written.secs);
        seeded.stats["bulk_rows"] = json!(written.rows);
        *run = run.started_again(cli, env).await?;
        desk.base = run.base.clone();
        let t = Instant::now();
        wait_for_dispatch(&desk).await?;
        eprintln!("  nothing left to dispatch after the restart ({:.1}s)", t.elapsed().as_secs_f64());
    }
    let db_bytes = match scratch {
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
    Ok(result_row(a, n, &format!("{:?}", a.seed).to_lowercase(), seeded.stats, db_bytes, routes))
}

/// One size's row of `results.jsonl`: the helpdesk measured, how it was seeded, what was timed.
fn result_row(a: &ScaleArgs, n: usize, seeding: &str, seed: Value, db_bytes: u64, routes: Value) -> Value {
    json!({
        "scenario": "scale",
        "db": format!("{:?}", a.db).to_lowercase(),
        "seeding": seeding,
        "build": build_label(),
        "at": chrono::Utc::now().to_rfc3339(),
        "tickets": n,
        "comments": plan::COMMENTS * n,
        "customers": a.customers,
        "agents": a.agents,
        "articles": a.articles,
        "samples": a.samples,
        "seed": seed,
        "db_bytes": db_bytes,
        "routes": routes,
    })
}

/// The names of the timed routes and catch-ups, in the order of the tables.
fn routes_order() -> Vec<&'static str> {
    let desk = Desk {
        base: String::new(),
        http: reqwest::Client::new(),
        admin: String::new(),
        agents: vec![(String::new(), String::new())],
        customers: vec![(String::new(), String::new())],
    };
    routes(&desk, "", "", 0).into_iter().map(|(n, _, _)| n).chain(catch_ups(&desk).map(|(n, _)| n)).collect()
}
