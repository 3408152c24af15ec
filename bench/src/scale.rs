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
    plan::{self, ABSENT_WORD, Author, RARE_WORD, WORDS},
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
        let body = plan::article_plan(i);
        desk.http.post(format!("{}/api/kb/articles", desk.base)).bearer_auth(&desk.admin).json(&body)
    })
    .await?;
    let ids = tw.create_users("customer", a.customers).await?;
    desk.customers = ids.into_iter().map(|id| Ok((id.clone(), mint(&id, "customer")?))).collect::<Result<_>>()?;
    eprintln!("  {} customers ({:.0}s so far)", desk.customers.len(), t0.elapsed().as_secs_f64());

    let (customers, agents) = desk.ids();
    let plans: Vec<plan::TicketPlan> = (0..n).map(|i| plan::ticket_plan(i, &customers, &agents)).collect();
    let (made, tickets_per_s) = many("tickets", n, a.writers, |i| {
        let p = &plans[i];
        desk.http.post(format!("{}/api/tickets", desk.base)).bearer_auth(&desk.agents[p.agent].1).json(&p.body)
    })
    .await?;
    let tickets: Vec<String> =
        made.iter().map(|t| t["id"].as_str().map(str::to_string).context("ticket id")).collect::<Result<_>>()?;

    // The customer writes, the agent answers, the agent leaves an internal note.
    let (_, comments_per_s) = many("comments", plan::COMMENTS * n, a.writers, |k| {
        let p = &plans[k / plan::COMMENTS];
        let (author, body) = plan::comment_plan(k);
        let token = match author {
            Author::Requester => &desk.customers[p.requester].1,
            Author::Agent => &desk.agents[p.agent].1,
        };
        let ticket = &tickets[k / plan::COMMENTS];
        desk.http.post(format!("{}/api/tickets/{ticket}/comments", desk.base)).bearer_auth(token).json(&body)
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
        md.push_str("\n| seeding |");
        for s in &sizes {
            let (run, st) = (&by_size[s], &by_size[s]["seed"]);
            let how = match st["bulk_s"].as_f64() {
                None if run["seeding"] == "kept" => "seeded by an earlier run (kept)".to_string(),
                Some(secs) => format!(
                    "{} rows in bulk in {secs:.0} s ({:.0} rows/s)",
                    st["bulk_rows"].as_u64().unwrap_or(0),
                    st["bulk_rows"].as_f64().unwrap_or(0.0) / secs
                ),
                None => format!(
                    "through the API: {:.0} tickets/s, {:.0} comments/s, log dispatched {:.0} s after the writes",
                    st["tickets_per_s"].as_f64().unwrap_or(0.0),
                    st["comments_per_s"].as_f64().unwrap_or(0.0),
                    st["dispatch_after_writes_s"].as_f64().unwrap_or(0.0),
                ),
            };
            md.push_str(&format!(" {how}; database {} MB |", run["db_bytes"].as_u64().unwrap_or(0) / 1_000_000));
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
    routes(&desk, "", "", 0).into_iter().map(|(n, _, _)| n).collect()
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
