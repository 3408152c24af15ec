//! `bench`: ticketwire's load generator. Opens many real Socket.IO clients (Engine.IO v4 /
//! Socket.IO v5 over WebSocket, one task per connection), webhook receivers and REST writers,
//! against ticketwire and two reference peers (bare socketioxide, Node socket.io), each started
//! fresh by the bench itself on 127.0.0.1. Every result is appended as one JSON line to
//! `--out/results.jsonl`; `bench report` turns them into markdown tables and an SVG plot.
mod client;
mod report;
mod servers;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;
use serde_json::{Value, json};

use client::{ClientOpts, Swarm};
use servers::{Running, Target};

#[derive(Parser)]
#[command(name = "bench", about = "ticketwire load generator and side-by-side benchmark")]
pub struct Cli {
    /// The ticketwire binary.
    #[arg(long, default_value = "target/release/ticketwire", global = true)]
    server: PathBuf,
    /// The bare socketioxide peer binary.
    #[arg(long, default_value = "target/release/bench-peer", global = true)]
    peer: PathBuf,
    /// The Node socket.io peer (needs `npm ci` there once).
    #[arg(long, default_value = "bench/peers/node", global = true)]
    node_dir: PathBuf,
    /// Where results.jsonl, the report and the plot go.
    #[arg(long, default_value = "bench/results", global = true)]
    out: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Scenario 1 (and 2): N clients in room `tickets`, one writer at a fixed rate.
    Fanout(FanoutArgs),
    /// Scenario 2 alone: server RSS per connected, authenticated client.
    Idle {
        #[arg(long, value_enum, default_value = "ticketwire")]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
    },
    /// Scenario 1+2 side by side: every target, every N, every rate, back to back.
    Matrix {
        #[arg(long, value_delimiter = ',', default_value = "ticketwire,peer,node")]
        targets: Vec<Target>,
        /// `N:rate` pairs, e.g. 1000:20,10000:5,10000:10
        #[arg(long, value_delimiter = ',', default_value = "1000:20,5000:10,10000:5,10000:10")]
        runs: Vec<String>,
        #[arg(long, default_value_t = 15)]
        duration: u64,
    },
    /// Scenario 3: K webhook users, KB publishes fanning out to all of them, plus steady ticket writes.
    Webhooks(WebhookArgs),
    /// Scenario 4: ticket creations/s with hooks on (1 webhook subscriber, N socket clients).
    Rest(RestArgs),
    /// Markdown tables + SVG plot from results.jsonl.
    Report,
}

#[derive(clap::Args, Clone)]
struct FanoutArgs {
    #[arg(long, value_enum, default_value = "ticketwire")]
    target: Target,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Writes per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Longest wait for the last deliveries after the last write, seconds.
    #[arg(long, default_value_t = 20)]
    drain: u64,
}

#[derive(clap::Args)]
struct WebhookArgs {
    /// Users with a webhook endpoint.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// KB articles published (each notifies every active user).
    #[arg(long, default_value_t = 10)]
    publishes: usize,
    /// Steady ticket PATCHes per second meanwhile.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Longest wait for all deliveries, seconds.
    #[arg(long, default_value_t = 60)]
    drain: u64,
}

#[derive(clap::Args)]
struct RestArgs {
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 32)]
    writers: usize,
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Rooms the socket clients join (comma separated; `none` for only their own user room).
    #[arg(long, default_value = "tickets")]
    rooms: String,
}

/// Microseconds since the bench started (one clock for writers and clients).
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123456789";

fn main() -> Result<()> {
    now_us();
    raise_nofile();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(cli))
}

fn raise_nofile() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => eprintln!("RLIMIT_NOFILE = {n} (inherited by the servers the bench starts)"),
        Err(e) => eprintln!("could not raise RLIMIT_NOFILE: {e}"),
    }
}

async fn run(cli: Cli) -> Result<()> {
    std::fs::create_dir_all(&cli.out)?;
    match &cli.cmd {
        Cmd::Fanout(a) => {
            let r = fanout(&cli, a).await?;
            save(&cli, &r)?;
        }
        Cmd::Idle { target, clients } => {
            let a = FanoutArgs { target: *target, clients: *clients, rate: 0.0, duration: 0, drain: 0 };
            let r = fanout(&cli, &a).await?;
            save(&cli, &r)?;
        }
        Cmd::Matrix { targets, runs, duration } => {
            for spec in runs {
                let (n, rate) = spec.split_once(':').context("runs are N:rate")?;
                for t in targets {
                    let a = FanoutArgs { target: *t, clients: n.parse()?, rate: rate.parse()?, duration: *duration, drain: 20 };
                    match fanout(&cli, &a).await {
                        Ok(r) => save(&cli, &r)?,
                        Err(e) => eprintln!("!! fanout {t:?} N={n} rate={rate} failed: {e:#}"),
                    }
                }
            }
        }
        Cmd::Webhooks(a) => {
            let r = webhooks(&cli, a).await?;
            save(&cli, &r)?;
        }
        Cmd::Rest(a) => {
            let r = rest(&cli, a).await?;
            save(&cli, &r)?;
        }
        Cmd::Report => report::write(&cli.out)?,
    }
    Ok(())
}

fn save(cli: &Cli, r: &Value) -> Result<()> {
    use std::io::Write;
    println!("RESULT {r}");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(cli.out.join("results.jsonl"))?;
    writeln!(f, "{r}")?;
    Ok(())
}

/// p-th percentile (0..=100) of sorted samples.
pub fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 100.0).round() / 100.0
}

#[derive(Serialize, Default, Clone, Copy)]
struct Write {
    start: u64,
    resp: u64,
}

/// One writer at a fixed rate; returns key -> (start, response) for the successful writes.
async fn fixed_rate_writer(run: &Running, rate: f64, secs: u64) -> (HashMap<u64, Write>, u64) {
    let mut out = HashMap::new();
    if rate <= 0.0 || secs == 0 {
        return (out, 0);
    }
    let total = (rate * secs as f64).round() as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let run = run.clone();
        tasks.spawn(async move {
            let start = now_us();
            let key = run.write(i).await;
            key.map(|k| (k, Write { start, resp: now_us() }))
        });
        if i % (rate.ceil() as u64 * 5).max(1) == 0 && i > 0 {
            eprintln!("  writer: {i}/{total} writes sent");
        }
    }
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok((k, w))) => {
                out.insert(k, w);
            }
            Ok(Err(e)) => {
                failed += 1;
                if failed < 5 {
                    eprintln!("  write failed: {e:#}");
                }
            }
            Err(_) => failed += 1,
        }
    }
    (out, failed)
}

async fn fanout(cli: &Cli, a: &FanoutArgs) -> Result<Value> {
    eprintln!("== fanout target={:?} N={} rate={}/s duration={}s", a.target, a.clients, a.rate, a.duration);
    let run = servers::start(cli, a.target, 20).await?;
    let result = fanout_on(&run, a).await;
    run.stop().await;
    result
}

async fn fanout_on(run: &Running, a: &FanoutArgs) -> Result<Value> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = servers::rss_kib(run.pid)?;
    let t0 = Instant::now();
    let swarm = Swarm::connect(run, a.clients, ClientOpts { rooms: vec!["tickets".into()] }).await?;
    let connect_s = t0.elapsed().as_secs_f64();
    if swarm.connected() < a.clients {
        eprintln!("  only {} of {} clients connected", swarm.connected(), a.clients);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = servers::rss_kib(run.pid)?;
    let n = swarm.connected();
    let kib_per_conn = (rss1 as f64 - rss0 as f64) / n.max(1) as f64;
    eprintln!("  {n} connected in {connect_s:.1}s; RSS {rss0} -> {rss1} KiB = {:.1} KiB/conn", kib_per_conn);

    let emit_lag0 = scrape(run, "ticketwire_event_emit_lag_seconds", None).await;
    let cpu0 = servers::cpu_ticks(run.pid)?;
    let recv0 = swarm.received();
    let (writes, failed) = fixed_rate_writer(run, a.rate, a.duration).await;
    let expected = writes.len() as u64 * n as u64;
    let deadline = Instant::now() + Duration::from_secs(a.drain);
    while swarm.received() - recv0 < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu1 = servers::cpu_ticks(run.pid)?;
    let rss2 = servers::rss_kib(run.pid)?;
    let emit_lag = match &emit_lag0 {
        Some(b) => scrape(run, "ticketwire_event_emit_lag_seconds", Some(b)).await,
        None => None,
    };
    let results = swarm.finish().await;

    let mut from_resp = Vec::new();
    let mut from_start = Vec::new();
    let (mut delivered, mut before_resp, mut unknown, mut dups) = (0u64, 0u64, 0u64, 0u64);
    for mut per_client in results {
        per_client.sort_unstable();
        let mut last = None;
        for (key, at) in per_client {
            if last == Some(key) {
                dups += 1;
                continue;
            }
            last = Some(key);
            let Some(w) = writes.get(&key) else {
                unknown += 1;
                continue;
            };
            delivered += 1;
            from_start.push(at.saturating_sub(w.start));
            if at < w.resp {
                before_resp += 1;
            }
            from_resp.push(at.saturating_sub(w.resp));
        }
    }
    from_resp.sort_unstable();
    from_start.sort_unstable();
    let cpu_s = (cpu1 - cpu0) as f64 / servers::clock_ticks() as f64;
    let share = if expected == 0 { 1.0 } else { delivered as f64 / expected as f64 };
    let r = json!({
        "scenario": "fanout",
        "target": a.target.name(),
        "clients": a.clients,
        "connected": n,
        "rate": a.rate,
        "duration_s": a.duration,
        "writes": writes.len(),
        "writes_failed": failed,
        "expected": expected,
        "delivered": delivered,
        "delivered_share": share,
        "duplicates": dups,
        "unknown": unknown,
        "received_before_response": before_resp,
        "p50_ms": ms(pct(&from_resp, 50.0)),
        "p99_ms": ms(pct(&from_resp, 99.0)),
        "max_ms": ms(from_resp.last().copied().unwrap_or(0)),
        "p50_from_start_ms": ms(pct(&from_start, 50.0)),
        "p99_from_start_ms": ms(pct(&from_start, 99.0)),
        "max_from_start_ms": ms(from_start.last().copied().unwrap_or(0)),
        "cpu_s": cpu_s,
        "cpu_us_per_msg": if delivered > 0 { cpu_s * 1e6 / delivered as f64 } else { 0.0 },
        "connect_s": connect_s,
        "rss_before_kib": rss0,
        "rss_connected_kib": rss1,
        "rss_end_kib": rss2,
        "kib_per_conn": kib_per_conn,
        "server_emit_lag_seconds": emit_lag,
    });
    eprintln!(
        "  delivered {delivered}/{expected} ({:.4}%), p50 {} ms p99 {} ms max {} ms (from response); cpu {:.2}s = {:.2} us/msg",
        share * 100.0,
        r["p50_ms"],
        r["p99_ms"],
        r["max_ms"],
        cpu_s,
        r["cpu_us_per_msg"].as_f64().unwrap_or(0.0)
    );
    Ok(r)
}

/// One latency metric from /metrics: the quantile lines of a summary, or, for a histogram
/// (`_bucket{le=".."}` lines, summed over label sets), the cumulative bucket counts with
/// "0.5"/"0.99" estimated by linear interpolation inside the bucket (as Prometheus'
/// `histogram_quantile` does). With `base` (an earlier scrape's result) the buckets are the
/// difference, i.e. only what was observed between the two scrapes.
fn summary(metrics: &str, name: &str) -> Value {
    summary_since(metrics, name, None)
}

fn summary_since(metrics: &str, name: &str, base: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let mut sum = 0.0;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if let Some(q) = rest.strip_prefix("{quantile=\"") {
            if let Some((q, v)) = q.split_once("\"} ") {
                out.insert(q.to_string(), json!(v.trim().parse::<f64>().unwrap_or(f64::NAN)));
            }
        } else if let Some(b) = rest.strip_prefix("_bucket{") {
            let Some((labels, v)) = b.rsplit_once("} ") else { continue };
            let Some(le) = labels.split(',').find_map(|l| l.trim().strip_prefix("le=\"")).map(|l| l.trim_end_matches('"')) else { continue };
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().unwrap_or(f64::NAN) };
            let v = v.trim().parse::<f64>().unwrap_or(0.0);
            match buckets.iter_mut().find(|(l, _)| *l == le) {
                Some(e) => e.1 += v,
                None => buckets.push((le, v)),
            }
        } else if let Some(v) = rest.strip_prefix("_sum ").or_else(|| rest.strip_prefix("_sum{").and_then(|r| r.rsplit_once("} ").map(|x| x.1))) {
            sum += v.trim().parse::<f64>().unwrap_or(0.0);
        } else if let Some(v) = rest.strip_prefix("_count ") {
            out.insert("count".into(), json!(v.trim().parse::<f64>().unwrap_or(0.0)));
        }
    }
    if buckets.is_empty() {
        return Value::Object(out);
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(base) = base {
        let old = base["buckets"].as_array().cloned().unwrap_or_default();
        for (le, v) in buckets.iter_mut() {
            let prev = old.iter().find(|p| p[0].as_f64().unwrap_or(f64::INFINITY) == *le || (p[0].is_null() && le.is_infinite())).and_then(|p| p[1].as_f64()).unwrap_or(0.0);
            *v -= prev;
        }
        sum -= base["sum"].as_f64().unwrap_or(0.0);
    }
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let quantile = |q: f64| -> Value {
        if total <= 0.0 {
            return Value::Null;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, c) in &buckets {
            if c >= rank {
                if le.is_infinite() {
                    return json!(lower.0); // above the top bucket: report its bound
                }
                let frac = if c > lower.1 { (rank - lower.1) / (c - lower.1) } else { 1.0 };
                return json!(lower.0 + (le - lower.0) * frac);
            }
            lower = (le, c);
        }
        Value::Null
    };
    out.insert("kind".into(), json!("histogram"));
    out.insert("0.5".into(), quantile(0.5));
    out.insert("0.99".into(), quantile(0.99));
    out.insert("count".into(), json!(total));
    out.insert("sum".into(), json!(sum));
    out.insert("buckets".into(), Value::Array(buckets.iter().map(|(l, c)| json!([if l.is_infinite() { Value::Null } else { json!(l) }, c])).collect()));
    Value::Object(out)
}

/// One metric from the server's /metrics (ticketwire only), optionally as a difference.
async fn scrape(run: &Running, name: &str, base: Option<&Value>) -> Option<Value> {
    if run.target != Target::Ticketwire {
        return None;
    }
    let text = run.http.get(format!("{}/metrics", run.base)).send().await.ok()?.text().await.ok()?;
    Some(summary_since(&text, name, base))
}

async fn webhooks(cli: &Cli, a: &WebhookArgs) -> Result<Value> {
    eprintln!("== webhooks K={} publishes={} ticket rate={}/s", a.users, a.publishes, a.rate);
    let receiver = servers::Receiver::start().await?;
    let run = servers::start(cli, Target::Ticketwire, 1).await?;
    let res = async {
        let t = Instant::now();
        let tw = run.tw.as_ref().context("ticketwire")?;
        tw.webhook_users(a.users, &receiver.base).await?;
        eprintln!("  {} webhook users set up in {:.1}s", a.users, t.elapsed().as_secs_f64());
        let before = receiver.count();
        let active_users = a.users as u64 + 1 + tw.agent_count() as u64; // everyone active is notified
        let start = now_us();
        let writer = {
            let run = run.clone();
            let (rate, secs) = (a.rate, (a.publishes as u64 / 2).max(5));
            tokio::spawn(async move { fixed_rate_writer(&run, rate, secs).await })
        };
        // Back to back, so the delivery queue is full and throughput is the worker's, not ours.
        for i in 0..a.publishes {
            tw.publish_article(i).await?;
        }
        let published = now_us();
        let (writes, _) = writer.await?;
        let expected_kb = a.publishes as u64 * a.users as u64;
        let deadline = Instant::now() + Duration::from_secs(a.drain);
        let mut last_print = Instant::now();
        while receiver.count() - before < expected_kb && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if last_print.elapsed() > Duration::from_secs(5) {
                eprintln!("  {} / {} deliveries received", receiver.count() - before, expected_kb);
                last_print = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (count, first, last, mut lags) = receiver.take();
        lags.sort_unstable();
        let span_s = last.saturating_sub(first) as f64 / 1e6;
        let end_to_end_s = last.saturating_sub(start) as f64 / 1e6;
        let metrics = run.http.get(format!("{}/metrics", run.base)).send().await?.text().await?;
        let attempts: Vec<String> = metrics.lines().filter(|l| l.starts_with("ticketwire_webhook_attempts_total")).map(str::to_string).collect();
        let r = json!({
            "scenario": "webhooks",
            "target": "ticketwire",
            "users": a.users,
            "active_users": active_users,
            "publishes": a.publishes,
            "ticket_writes": writes.len(),
            "deliveries_expected_kb": expected_kb,
            "deliveries_received": count,
            "span_s": span_s,
            "end_to_end_s": end_to_end_s,
            "publish_s": published.saturating_sub(start) as f64 / 1e6,
            "deliveries_per_s_end_to_end": count as f64 / end_to_end_s.max(1e-9),
            "deliveries_per_s": count as f64 / span_s.max(1e-9),
            "lag_p50_ms": ms(pct(&lags, 50.0)),
            "lag_p99_ms": ms(pct(&lags, 99.0)),
            "lag_max_ms": ms(lags.last().copied().unwrap_or(0)),
            "server_first_attempt_seconds": summary(&metrics, "ticketwire_webhook_first_attempt_seconds"),
            "server_attempt_seconds": summary(&metrics, "ticketwire_webhook_attempt_seconds"),
            "attempts": attempts,
        });
        eprintln!(
            "  {count} deliveries in {span_s:.2}s = {:.0}/s; receipt - notification.created_at p50 {} ms p99 {} ms",
            r["deliveries_per_s"].as_f64().unwrap_or(0.0),
            r["lag_p50_ms"],
            r["lag_p99_ms"]
        );
        Ok::<_, anyhow::Error>(r)
    }
    .await;
    run.stop().await;
    res
}

async fn rest(cli: &Cli, a: &RestArgs) -> Result<Value> {
    eprintln!("== rest writers={} clients={} duration={}s", a.writers, a.clients, a.duration);
    let receiver = servers::Receiver::start().await?;
    let run = servers::start(cli, Target::Ticketwire, 20).await?;
    let res = async {
        let tw = run.tw.as_ref().context("ticketwire")?;
        tw.admin_webhook(&receiver.base).await?;
        let rooms: Vec<String> = a.rooms.split(',').filter(|r| !r.is_empty() && *r != "none").map(str::to_string).collect();
        let swarm = Swarm::connect(&run, a.clients, ClientOpts { rooms: rooms.clone() }).await?;
        eprintln!("  {} socket clients connected (rooms {rooms:?})", swarm.connected());
        let cpu0 = servers::cpu_ticks(run.pid)?;
        let done = Arc::new(AtomicU64::new(0));
        let stop_at = Instant::now() + Duration::from_secs(a.duration);
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..a.writers {
            let (run, done) = (run.clone(), done.clone());
            tasks.spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut i = 0u64;
                while Instant::now() < stop_at {
                    let s = now_us();
                    match run.tw.as_ref().map(|tw| tw.create_ticket(&run, (w as u64) << 32 | i)) {
                        Some(f) => match f.await {
                            Ok(_) => {
                                lat.push(now_us() - s);
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => errors += 1,
                        },
                        None => break,
                    }
                    i += 1;
                }
                (lat, errors)
            });
        }
        let progress = {
            let done = done.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    eprintln!("  {} tickets created", done.load(Ordering::Relaxed));
                }
            })
        };
        let mut lat = Vec::new();
        let mut errors = 0;
        while let Some(r) = tasks.join_next().await {
            let (l, e) = r?;
            lat.extend(l);
            errors += e;
        }
        progress.abort();
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu1 = servers::cpu_ticks(run.pid)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let received = swarm.received();
        let connected = swarm.connected();
        swarm.finish().await;
        lat.sort_unstable();
        let r = json!({
            "scenario": "rest",
            "target": "ticketwire",
            "writers": a.writers,
            "clients": connected,
            "rooms": rooms,
            "created": lat.len(),
            "errors": errors,
            "elapsed_s": elapsed,
            "creations_per_s": lat.len() as f64 / elapsed,
            "p50_ms": ms(pct(&lat, 50.0)),
            "p99_ms": ms(pct(&lat, 99.0)),
            "max_ms": ms(lat.last().copied().unwrap_or(0)),
            "socket_events_received": received,
            "webhook_deliveries_received": receiver.count(),
            "cpu_s": (cpu1 - cpu0) as f64 / servers::clock_ticks() as f64,
        });
        eprintln!(
            "  {} created in {elapsed:.1}s = {:.0}/s, p50 {} ms p99 {} ms, {errors} errors",
            lat.len(),
            r["creations_per_s"].as_f64().unwrap_or(0.0),
            r["p50_ms"],
            r["p99_ms"]
        );
        if errors > 0 && lat.is_empty() {
            bail!("every write failed");
        }
        Ok::<_, anyhow::Error>(r)
    }
    .await;
    run.stop().await;
    res
}
