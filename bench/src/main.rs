//! `bench`: ticketwire's load generator. Opens many real Socket.IO clients (Engine.IO v4 /
//! Socket.IO v5 over WebSocket, one task per connection), webhook receivers and REST writers,
//! against ticketwire and two reference peers (bare socketioxide, Node socket.io), each started
//! fresh by the bench itself on 127.0.0.1 (`two-nodes`: two ticketwire nodes on PostgreSQL +
//! Redis). Every result is appended as one JSON line to `--out/results.jsonl`; `bench report`
//! turns them into markdown tables and an SVG plot.
mod catch_up;
mod client;
mod fanout;
mod metrics;
mod plan;
mod presence;
mod receiver;
mod report;
mod scale;
mod seed;
mod servers;
mod two_nodes;

use std::{
    path::PathBuf,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use client::{ClientOpts, Swarm};
use servers::Target;

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
    /// Scenario 5: fan-out with the clients split across two ticketwire nodes on PostgreSQL + Redis,
    /// writes through node A.
    TwoNodes(two_nodes::TwoNodesArgs),
    /// Scenario 6: a helpdesk of N tickets (seeded in bulk or through the API), then its read routes timed.
    Scale(scale::ScaleArgs),
    /// Markdown tables of the scale runs in results.jsonl, with the growth per 10× tickets.
    ScaleReport,
    /// Scenario 7: presence and typing on one busy ticket during the fan-out, against the same
    /// run without presence.
    Presence(presence::PresenceArgs),
    /// Scenario 7: RSS per idle socket spread over many tickets, without and with presence.
    PresenceIdle(presence::PresenceIdleArgs),
    /// Markdown tables + SVG plot from results.jsonl.
    Report,
}

#[derive(clap::Args, Clone)]
struct FanoutArgs {
    #[arg(long, value_enum, default_value = "ticketwire")]
    target: Target,
    #[command(flatten)]
    load: Load,
}

/// The fan-out load: N clients in `tickets`, one writer at a fixed rate (scenarios 1 and 5).
#[derive(clap::Args, Clone)]
pub struct Load {
    /// Clients in all (scenario 5: the first half on node A, the rest on node B).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Writes per second (scenario 5: all through node A).
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
            let r = fanout::fanout(&cli, a).await?;
            save(&cli, &r)?;
        }
        Cmd::Idle { target, clients } => {
            let a = FanoutArgs { target: *target, load: Load { clients: *clients, rate: 0.0, duration: 0, drain: 0 } };
            let r = fanout::fanout(&cli, &a).await?;
            save(&cli, &r)?;
        }
        Cmd::Matrix { targets, runs, duration } => {
            for spec in runs {
                let (n, rate) = spec.split_once(':').context("runs are N:rate")?;
                for t in targets {
                    let a = FanoutArgs {
                        target: *t,
                        load: Load { clients: n.parse()?, rate: rate.parse()?, duration: *duration, drain: 20 },
                    };
                    match fanout::fanout(&cli, &a).await {
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
        Cmd::TwoNodes(a) => {
            let r = two_nodes::two_nodes(&cli, a).await?;
            save(&cli, &r)?;
        }
        Cmd::Scale(a) => {
            for &n in a.sizes() {
                let r = scale::scale(&cli, a, n).await?;
                save(&cli, &r)?;
            }
            println!("{}", scale::report(&cli.out)?);
        }
        Cmd::ScaleReport => println!("{}", scale::report(&cli.out)?),
        Cmd::Presence(a) => {
            for r in presence::presence(&cli, a).await? {
                save(&cli, &r)?;
            }
        }
        Cmd::PresenceIdle(a) => {
            for r in presence::presence_idle(&cli, a).await? {
                save(&cli, &r)?;
            }
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

async fn webhooks(cli: &Cli, a: &WebhookArgs) -> Result<Value> {
    eprintln!("== webhooks K={} publishes={} ticket rate={}/s", a.users, a.publishes, a.rate);
    let receiver = receiver::Receiver::start().await?;
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
            tokio::spawn(async move { fanout::fixed_rate_writer(&run, rate, secs).await })
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
        let attempts: Vec<String> = metrics
            .lines()
            .filter(|l| l.starts_with("ticketwire_webhook_attempts_total"))
            .map(str::to_string)
            .collect();
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
            "server_first_attempt_seconds": metrics::summary(&metrics, "ticketwire_webhook_first_attempt_seconds"),
            "server_attempt_seconds": metrics::summary(&metrics, "ticketwire_webhook_attempt_seconds"),
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
    let receiver = receiver::Receiver::start().await?;
    let run = servers::start(cli, Target::Ticketwire, 20).await?;
    let res = async {
        let tw = run.tw.as_ref().context("ticketwire")?;
        tw.admin_webhook(&receiver.base).await?;
        let rooms: Vec<String> = a.rooms.split(',').filter(|r| !r.is_empty() && *r != "none").map(str::to_string).collect();
        let swarm = Swarm::connect(&run, a.clients, ClientOpts { rooms: rooms.clone() }).await?;
        eprintln!("  {} socket clients connected (rooms {rooms:?})", swarm.connected());
        // Each writer is an agent of its own, not one of the identities the socket clients share:
        // the admin (the webhook subscriber) is notified of every creation, and the writer's
        // own user room has no sockets of the swarm in it.
        let writer_tokens = Arc::new(tw.new_agent_tokens(a.writers).await?);
        let cpu0 = servers::cpu_ticks(run.pid)?;
        let done = Arc::new(AtomicU64::new(0));
        let stop_at = Instant::now() + Duration::from_secs(a.duration);
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..a.writers {
            let (run, done, writer_tokens) = (run.clone(), done.clone(), writer_tokens.clone());
            tasks.spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut i = 0u64;
                while Instant::now() < stop_at {
                    let s = now_us();
                    let agent = &writer_tokens[w];
                    match run.tw.as_ref().map(|tw| tw.create_ticket(&run, agent, (w as u64) << 32 | i)) {
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
        // Every creation notifies the admin, whose webhook is the receiver: wait for the tail.
        let drain_until = Instant::now() + Duration::from_secs(30);
        while receiver.count() < lat.len() as u64 && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drained_s = elapsed.max(t0.elapsed().as_secs_f64()) - elapsed;
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
            "webhook_drain_after_writes_s": drained_s,
            "cpu_s": (cpu1 - cpu0) as f64 / servers::clock_ticks() as f64,
        });
        eprintln!(
            "  {} created in {elapsed:.1}s = {:.0}/s, p50 {} ms p99 {} ms, {errors} errors; {} webhook deliveries ({drained_s:.1}s after the writes)",
            lat.len(),
            r["creations_per_s"].as_f64().unwrap_or(0.0),
            r["p50_ms"],
            r["p99_ms"],
            r["webhook_deliveries_received"],
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
