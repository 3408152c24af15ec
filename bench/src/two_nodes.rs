//! Scenario 5: the fan-out of scenario 1 with the clients split half/half across two ticketwire
//! nodes on one PostgreSQL database and one Redis, every write going through node A. Measured
//! with the fan-out scenario's own parts, per node and overall.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::{
    Cli, Load,
    fanout::{Probe, Tally, connect_room, drain, extend, fixed_rate_writer},
    servers::{self, Running, Setup, Target},
};

#[derive(clap::Args)]
pub struct TwoNodesArgs {
    #[command(flatten)]
    load: Load,
    /// PostgreSQL, as a user that may create databases: the run creates its own database on this
    /// server and drops it at the end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg: String,
    /// The Redis both nodes share (the run's channels get a prefix of their own).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

pub async fn two_nodes(cli: &Cli, a: &TwoNodesArgs) -> Result<Value> {
    eprintln!(
        "== two-nodes N={} ({} on A, {} on B) rate={}/s through A duration={}s",
        a.load.clients,
        on_a(a),
        a.load.clients - on_a(a),
        a.load.rate,
        a.load.duration
    );
    let db = ScratchDb::create(&a.pg).await?;
    eprintln!("  database {} created", db.name);
    let res = on_database(cli, a, &db.url).await;
    db.drop().await;
    let mut r = res?;
    extend(&mut r, json!({ "database": db.name, "redis": a.redis }));
    Ok(r)
}

fn on_a(a: &TwoNodesArgs) -> usize {
    a.load.clients.div_ceil(2)
}

async fn on_database(cli: &Cli, a: &TwoNodesArgs, url: &str) -> Result<Value> {
    // The database's name is unique per run: as the Redis prefix it keeps this cluster's channels
    // apart from any other on the same Redis (a test run, another bench).
    let prefix = url.rsplit('/').next().unwrap_or("tw_bench");
    let env = [("DATABASE_URL", url), ("REDIS_URL", &a.redis), ("TICKETWIRE_REDIS_PREFIX", prefix)]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    // One after the other: node A migrates the fresh database and creates the accounts and
    // tickets that node B then shares.
    let node_a = servers::start_with(cli, Target::Ticketwire, Setup::Fresh { agents: 20 }, &env).await?;
    let res = async {
        let node_b = servers::start_with(cli, Target::Ticketwire, Setup::NodeOf(&node_a), &env).await?;
        eprintln!("  node A = {}, node B = {}", node_a.base, node_b.base);
        let res = measure(a, [&node_a, &node_b]).await;
        node_b.stop().await;
        res
    }
    .await;
    node_a.stop().await;
    res
}

async fn measure(a: &TwoNodesArgs, nodes: [&Running; 2]) -> Result<Value> {
    const NAMES: [&str; 2] = ["A", "B"];
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut probes = [Probe::before(nodes[0])?, Probe::before(nodes[1])?];
    let split = [on_a(a), a.load.clients - on_a(a)];
    let t0 = Instant::now();
    let swarms = tokio::try_join!(connect_room(nodes[0], split[0]), connect_room(nodes[1], split[1]))?;
    let swarms = [swarms.0, swarms.1];
    let connect_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = swarms.each_ref().map(|s| s.connected());
    eprintln!("  {} connected in {connect_s:.1}s", connected[0] + connected[1]);
    for ((name, probe), n) in NAMES.iter().zip(&mut probes).zip(connected) {
        eprintln!("  node {name}: {n} connected; {}", probe.connected(n)?);
    }

    for p in &mut probes {
        p.writes_start().await?;
    }
    let recv0 = swarms.each_ref().map(|s| s.received());
    let (writes, failed) = fixed_rate_writer(nodes[0], a.load.rate, a.load.duration).await;
    let expected = connected.map(|n| writes.len() as u64 * n as u64);
    let received = || -> u64 { swarms.iter().zip(recv0).map(|(s, r0)| s.received() - r0).sum() };
    drain(received, expected[0] + expected[1], a.load.drain).await;
    let ends = [probes[0].end().await?, probes[1].end().await?];
    let [swarm_a, swarm_b] = swarms;
    let tallies = [Tally::of(swarm_a.finish().await, &writes), Tally::of(swarm_b.finish().await, &writes)];
    let overall = tallies[0].merged(&tallies[1]);

    let mut per_node = Vec::new();
    for (i, end) in ends.into_iter().enumerate() {
        let mut n = json!({ "node": NAMES[i], "clients": split[i], "connected": connected[i], "pid": nodes[i].pid });
        extend(&mut n, tallies[i].fields(expected[i]));
        extend(&mut n, end.fields(tallies[i].delivered));
        eprintln!("  node {}: {}", NAMES[i], summary_line(&tallies[i], expected[i], Some(&n)));
        per_node.push(n);
    }
    let total_expected = expected[0] + expected[1];
    eprintln!("  both: {}", summary_line(&overall, total_expected, None));
    let mut r = json!({
        "scenario": "two-nodes",
        "target": "ticketwire",
        "clients": a.load.clients,
        "connected": connected[0] + connected[1],
        "rate": a.load.rate,
        "duration_s": a.load.duration,
        "write_node": "A",
        "writes": writes.len(),
        "writes_failed": failed,
        "connect_s": connect_s,
        "nodes": per_node,
    });
    extend(&mut r, overall.fields(total_expected));
    Ok(r)
}

fn summary_line(t: &Tally, expected: u64, node: Option<&Value>) -> String {
    let mut s =
        format!("{}, p99 from request start {} ms, {} duplicates", t.line(expected), t.p99_from_start_ms(), t.dups);
    if let Some(n) = node {
        let lag_p99 =
            n["server_emit_lag_seconds"]["0.99"].as_f64().map_or("n/a".into(), |l| format!("{:.1} ms", l * 1e3));
        s.push_str(&format!("; server emit lag p99 {lag_p99}; RSS {} KiB at the end", n["rss_end_kib"]));
    }
    s
}

/// A database of the run's own on the PostgreSQL server, dropped at the end.
pub struct ScratchDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl ScratchDb {
    pub async fn create(admin: &str) -> Result<Self> {
        use sea_orm::{ConnectionTrait, Database};
        let name = format!("tw_bench_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let (server, _) =
            admin.split('?').next().unwrap_or(admin).rsplit_once('/').context("--pg needs a database in its path")?;
        let conn = Database::connect(admin).await.with_context(|| format!("connecting to {admin}"))?;
        conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.context("creating the run's database")?;
        conn.close().await?;
        Ok(Self { admin: admin.to_string(), url: format!("{server}/{name}"), name })
    }

    pub async fn drop(&self) {
        use sea_orm::{ConnectionTrait, Database};
        let dropped = async {
            let conn = Database::connect(&self.admin).await?;
            // FORCE: a killed node's connections may not have been closed by the server yet.
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
            conn.close().await?;
            Ok::<_, anyhow::Error>(())
        };
        match dropped.await {
            Ok(()) => eprintln!("  database {} dropped", self.name),
            Err(e) => eprintln!("!! could not drop database {}: {e:#}", self.name),
        }
    }
}
