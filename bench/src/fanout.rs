//! Scenario 1 (and 2): N clients in room `tickets`, one writer at a fixed rate. Its parts
//! (writer, drain, tally of receipts, server readings) are shared with the two-node scenario so
//! both measure the same way.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    Cli, FanoutArgs,
    client::{ClientOpts, Receipts, Swarm},
    metrics::scrape,
    ms, now_us, pct,
    servers::{self, Running},
};

#[derive(Serialize, Default, Clone, Copy)]
pub struct Write {
    start: u64,
    resp: u64,
}

/// One writer at a fixed rate; returns key -> (start, response) for the successful writes.
pub async fn fixed_rate_writer(run: &Running, rate: f64, secs: u64) -> (HashMap<u64, Write>, u64) {
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

pub async fn fanout(cli: &Cli, a: &FanoutArgs) -> Result<Value> {
    eprintln!(
        "== fanout target={:?} N={} rate={}/s duration={}s",
        a.target, a.load.clients, a.load.rate, a.load.duration
    );
    let run = servers::start(cli, a.target, 20).await?;
    let result = fanout_on(&run, a).await;
    run.stop().await;
    result
}

async fn fanout_on(run: &Running, a: &FanoutArgs) -> Result<Value> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut probe = Probe::before(run)?;
    let t0 = Instant::now();
    let swarm = connect_room(run, a.load.clients).await?;
    let connect_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = swarm.connected();
    eprintln!("  {n} connected in {connect_s:.1}s; {}", probe.connected(n)?);

    probe.writes_start().await?;
    let recv0 = swarm.received();
    let (writes, failed) = fixed_rate_writer(run, a.load.rate, a.load.duration).await;
    let expected = writes.len() as u64 * n as u64;
    drain(|| swarm.received() - recv0, expected, a.load.drain).await;
    let server = probe.end().await?;
    let tally = Tally::of(swarm.finish().await, &writes);
    let server = server.fields(tally.delivered);

    let mut r = json!({
        "scenario": "fanout",
        "target": a.target.name(),
        "clients": a.load.clients,
        "connected": n,
        "rate": a.load.rate,
        "duration_s": a.load.duration,
        "writes": writes.len(),
        "writes_failed": failed,
        "connect_s": connect_s,
    });
    extend(&mut r, tally.fields(expected));
    extend(&mut r, server);
    eprintln!(
        "  {}; cpu {:.2}s = {:.2} us/msg",
        tally.line(expected),
        r["cpu_s"].as_f64().unwrap_or(0.0),
        r["cpu_us_per_msg"].as_f64().unwrap_or(0.0)
    );
    Ok(r)
}

/// `n` clients on `run`, all in room `tickets`.
pub async fn connect_room(run: &Running, n: usize) -> Result<Swarm> {
    let swarm = Swarm::connect(run, n, ClientOpts { rooms: vec!["tickets".into()] }).await?;
    if swarm.connected() < n {
        eprintln!("  only {} of {n} clients connected", swarm.connected());
    }
    Ok(swarm)
}

/// Waits until `received()` reaches `expected` or `secs` have passed.
pub async fn drain(received: impl Fn() -> u64, expected: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while received() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if received() < expected {
        eprintln!("  drain: {} of {expected} receipts after {secs}s", received());
    }
}

/// Adds `more`'s fields to the object `r`.
pub fn extend(r: &mut Value, more: Value) {
    if let (Some(r), Value::Object(more)) = (r.as_object_mut(), more) {
        r.extend(more);
    }
}

/// Receipts matched to the writes: what was delivered, and how long after each write.
#[derive(Default)]
pub struct Tally {
    pub delivered: u64,
    pub dups: u64,
    before_resp: u64,
    unknown: u64,
    /// Sorted, microseconds after the write's response.
    from_resp: Vec<u64>,
    /// Sorted, microseconds after the write's request start.
    from_start: Vec<u64>,
}

impl Tally {
    pub fn of(results: Vec<Receipts>, writes: &HashMap<u64, Write>) -> Self {
        let mut t = Tally::default();
        for mut per_client in results {
            per_client.sort_unstable();
            let mut last = None;
            for (key, at) in per_client {
                if last == Some(key) {
                    t.dups += 1;
                    continue;
                }
                last = Some(key);
                let Some(w) = writes.get(&key) else {
                    t.unknown += 1;
                    continue;
                };
                t.delivered += 1;
                t.from_start.push(at.saturating_sub(w.start));
                if at < w.resp {
                    t.before_resp += 1;
                }
                t.from_resp.push(at.saturating_sub(w.resp));
            }
        }
        t.from_resp.sort_unstable();
        t.from_start.sort_unstable();
        t
    }

    /// Both groups of clients as one.
    pub fn merged(&self, other: &Tally) -> Tally {
        let join = |a: &[u64], b: &[u64]| {
            let mut v = [a, b].concat();
            v.sort_unstable();
            v
        };
        Tally {
            delivered: self.delivered + other.delivered,
            before_resp: self.before_resp + other.before_resp,
            unknown: self.unknown + other.unknown,
            dups: self.dups + other.dups,
            from_resp: join(&self.from_resp, &other.from_resp),
            from_start: join(&self.from_start, &other.from_start),
        }
    }

    fn share(&self, expected: u64) -> f64 {
        if expected == 0 { 1.0 } else { self.delivered as f64 / expected as f64 }
    }

    pub fn fields(&self, expected: u64) -> Value {
        json!({
            "expected": expected,
            "delivered": self.delivered,
            "delivered_share": self.share(expected),
            "duplicates": self.dups,
            "unknown": self.unknown,
            "received_before_response": self.before_resp,
            "p50_ms": ms(pct(&self.from_resp, 50.0)),
            "p99_ms": ms(pct(&self.from_resp, 99.0)),
            "max_ms": ms(self.from_resp.last().copied().unwrap_or(0)),
            "p50_from_start_ms": ms(pct(&self.from_start, 50.0)),
            "p99_from_start_ms": ms(pct(&self.from_start, 99.0)),
            "max_from_start_ms": ms(self.from_start.last().copied().unwrap_or(0)),
        })
    }

    pub fn line(&self, expected: u64) -> String {
        format!(
            "delivered {}/{expected} ({:.4}%), p50 {} ms p99 {} ms max {} ms (from response)",
            self.delivered,
            self.share(expected) * 100.0,
            ms(pct(&self.from_resp, 50.0)),
            ms(pct(&self.from_resp, 99.0)),
            ms(self.from_resp.last().copied().unwrap_or(0)),
        )
    }

    pub fn p99_from_start_ms(&self) -> f64 {
        ms(pct(&self.from_start, 99.0))
    }
}

/// One server's memory, CPU and emit lag over a run: RSS before any client and once all are
/// connected, then CPU and the emit-lag histogram from the first write to the end of the drain.
pub struct Probe {
    run: Running,
    rss_before: u64,
    rss_connected: u64,
    kib_per_conn: f64,
    cpu0: u64,
    /// This process's, whose clients share the machine with the server.
    clients_cpu0: u64,
    emit_lag0: Option<Value>,
}

const EMIT_LAG: &str = "ticketwire_event_emit_lag_seconds";

impl Probe {
    pub fn before(run: &Running) -> Result<Self> {
        let rss_before = servers::rss_kib(run.pid)?;
        Ok(Probe {
            run: run.clone(),
            rss_before,
            rss_connected: 0,
            kib_per_conn: 0.0,
            cpu0: 0,
            clients_cpu0: 0,
            emit_lag0: None,
        })
    }

    /// With `n` clients connected; says how the RSS grew.
    pub fn connected(&mut self, n: usize) -> Result<String> {
        self.rss_connected = servers::rss_kib(self.run.pid)?;
        self.kib_per_conn = (self.rss_connected as f64 - self.rss_before as f64) / n.max(1) as f64;
        Ok(format!("RSS {} -> {} KiB = {:.1} KiB/conn", self.rss_before, self.rss_connected, self.kib_per_conn))
    }

    pub async fn writes_start(&mut self) -> Result<()> {
        self.emit_lag0 = scrape(&self.run, EMIT_LAG, None).await;
        self.cpu0 = servers::cpu_ticks(self.run.pid)?;
        self.clients_cpu0 = servers::cpu_ticks(std::process::id())?;
        Ok(())
    }

    pub async fn end(&self) -> Result<Ended> {
        let cpu1 = servers::cpu_ticks(self.run.pid)?;
        let clients_cpu1 = servers::cpu_ticks(std::process::id())?;
        let rss_end = servers::rss_kib(self.run.pid)?;
        let emit_lag = match &self.emit_lag0 {
            Some(b) => scrape(&self.run, EMIT_LAG, Some(b)).await,
            None => None,
        };
        let seconds = |ticks: u64| ticks as f64 / servers::clock_ticks() as f64;
        let cpu_s = seconds(cpu1 - self.cpu0);
        Ok(Ended(json!({
            "cpu_s": cpu_s,
            "clients_cpu_s": seconds(clients_cpu1 - self.clients_cpu0),
            "rss_before_kib": self.rss_before,
            "rss_connected_kib": self.rss_connected,
            "rss_end_kib": rss_end,
            "kib_per_conn": self.kib_per_conn,
            "server_emit_lag_seconds": emit_lag,
        })))
    }
}

/// A probe's readings, waiting for the delivered count (known only once the clients stop).
pub struct Ended(Value);

impl Ended {
    pub fn fields(mut self, delivered: u64) -> Value {
        let cpu_s = self.0["cpu_s"].as_f64().unwrap_or(0.0);
        self.0["cpu_us_per_msg"] = json!(if delivered > 0 { cpu_s * 1e6 / delivered as f64 } else { 0.0 });
        self.0
    }
}
