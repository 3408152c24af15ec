//! Scenario 7 (`bench presence`, `bench presence-idle`): live collaboration under load.
//!
//! `presence`: N sockets in `tickets` and on one ticket's room, the writer of scenario 1 at a
//! fixed rate, on fresh servers: without presence, and with every socket announcing `viewing`
//! and T of them (each its own agent) toggling typing and replying/viewing once a second; P
//! such pairs, ordered off-on, on-off, off-on… so that a machine growing busier or quieter
//! over the runs weighs on both halves alike, and the median of the pairs' ratios reported.
//! Measured: the ticket updates' latency in both runs (the cost of presence to them),
//! and the latency of the presence diffs (a typer's toggle to each socket's `presence.update`
//! naming it, in its typing lists and in its people). `presence-idle`: N idle sockets spread over K tickets, RSS per
//! socket without and with a presence entry each.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::{
    Cli,
    client::{self, Receipts, Ws},
    fanout::{self, Probe, Tally},
    ms, now_us, pct,
    servers::{self, Running, Target, mint},
};

#[derive(clap::Args, Clone)]
pub struct PresenceArgs {
    /// Sockets on the ticket (all also in `tickets`).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Of them, sockets toggling typing and their state once a second, each its own agent.
    #[arg(long, default_value_t = 100)]
    typers: usize,
    /// Ticket writes per second (over the bench's 4 tickets, one of them the watched one).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    #[arg(long, default_value_t = 15)]
    duration: u64,
    #[arg(long, default_value_t = 20)]
    drain: u64,
    /// Pairs of runs (without, with presence). On a machine the clients share with the server,
    /// one pair's p99 ratio moves by ±0.5: the median of several is the figure to read.
    #[arg(long, default_value_t = 1)]
    pairs: usize,
}

#[derive(clap::Args, Clone)]
pub struct PresenceIdleArgs {
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    #[arg(long, default_value_t = 1000)]
    tickets: usize,
}

/// What one socket saw.
#[derive(Default)]
struct Seen {
    updates: Receipts,
    /// (typer, typing now, at): from `presence.update`'s typing lists.
    typing: Vec<(usize, bool, u64)>,
    /// (typer, replying now, at): from `presence.update`'s people.
    states: Vec<(usize, bool, u64)>,
    presence_messages: u64,
    /// Size of the `presence.update`s read, in all.
    update_bytes: u64,
    updates_read: u64,
    /// `presence.update` bodies as received, with when, read once the run is over.
    unread: Vec<(u64, Utf8Bytes)>,
}

/// Shared by the sockets of one run.
struct Shared {
    run: Running,
    presence: bool,
    /// Typers' user ids, by index.
    typer_of: HashMap<String, usize>,
    /// Each typer's toggles: (at, on), in order.
    toggles: Vec<Mutex<Vec<(u64, bool)>>>,
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Ticket updates received by all sockets, for the drain.
    updates: AtomicU64,
}

fn emit(event: &str, payload: Value) -> Message {
    Message::text(format!("42{}", json!([event, payload])))
}

/// One socket: announces `viewing` (with presence on); a typer toggles once a second while
/// `toggling` says so; records what it receives until `stop`.
#[allow(clippy::too_many_arguments)]
async fn socket(
    i: usize,
    token: String,
    ticket: Arc<str>,
    rooms: Vec<String>,
    typer: Option<usize>,
    sh: Arc<Shared>,
    toggling: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    gate: Arc<tokio::sync::Semaphore>,
) -> Seen {
    let mut seen = Seen::default();
    let auth = json!({ "token": token, "rooms": rooms }).to_string();
    let permit = gate.acquire_owned().await;
    let mut ws: Ws = match client::open(&sh.run, i, &auth).await {
        Ok(ws) => ws,
        Err(e) => {
            if sh.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("  client {i}: {e:#}");
            }
            return seen;
        }
    };
    drop(permit);
    if sh.presence && ws.send(emit("presence", json!({ "ticket_id": &*ticket, "state": "viewing" }))).await.is_err() {
        return seen;
    }
    sh.connected.fetch_add(1, Ordering::Relaxed);
    // Typers are spread over the second; each confirms presence every 20 s as a client does.
    let phase = typer.map_or(0, |k| (k as u64 * 1000) / sh.toggles.len().max(1) as u64);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_millis(phase), Duration::from_secs(1));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    heartbeat.tick().await;
    let mut on = false;
    // Made once, not per message: a fresh `changed()` each turn of the loop registered with the
    // channel shared by all 1,000 sockets (a lock) for every message received.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick(), if typer.is_some() => {
                if !*toggling.borrow() {
                    continue;
                }
                let k = typer.unwrap_or_default();
                on = !on;
                let state = if on { "replying" } else { "viewing" };
                let at = now_us();
                if let Ok(mut t) = sh.toggles[k].lock() {
                    t.push((at, on));
                }
                let typing = emit("typing", json!({ "ticket_id": &*ticket, "kind": "public", "active": on }));
                let presence = emit("presence", json!({ "ticket_id": &*ticket, "state": state }));
                if ws.send(typing).await.is_err() || ws.send(presence).await.is_err() {
                    break;
                }
            }
            _ = heartbeat.tick(), if sh.presence => {
                let state = if on { "replying" } else { "viewing" };
                if ws.send(emit("presence", json!({ "ticket_id": &*ticket, "state": state }))).await.is_err() {
                    break;
                }
            }
            msg = ws.next() => {
                let at = now_us();
                match msg {
                    Some(Ok(Message::Text(message))) => {
                        if message.as_str() == "2" {
                            if ws.send(Message::text("3")).await.is_err() { break; }
                        } else {
                            record(&sh, &mut seen, message, at);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
    seen
}

// The client side is read into borrowed, typed shapes: 1,000 sockets in one process take over
// 30,000 messages a second here, and parsing each into a `Value` made the measuring clients,
// not the server, the bottleneck of the run.
#[derive(serde::Deserialize)]
struct TicketUpdate<'a> {
    #[serde(borrow)]
    data: TicketData<'a>,
}

#[derive(serde::Deserialize)]
struct TicketData<'a> {
    id: &'a str,
    version: u64,
}

#[derive(serde::Deserialize)]
struct Person<'a> {
    user_id: &'a str,
    #[serde(default)]
    state: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct Update<'a> {
    #[serde(borrow)]
    joined: Vec<Person<'a>>,
    #[serde(borrow)]
    changed: Vec<Person<'a>>,
    #[serde(borrow)]
    typing_started: Vec<Person<'a>>,
    #[serde(borrow)]
    typing_stopped: Vec<Person<'a>>,
}

/// Takes in one received Engine.IO message (`42` + the Socket.IO event).
fn record(sh: &Shared, seen: &mut Seen, message: Utf8Bytes, at: u64) {
    let Some(body) = message.as_str().strip_prefix("42") else { return };
    if body.starts_with("[\"ticket.update\"") {
        let Ok((_, p)) = serde_json::from_str::<(&str, TicketUpdate)>(body) else { return };
        sh.updates.fetch_add(1, Ordering::Relaxed);
        if let Some(idx) = sh.run.ids.get(p.data.id) {
            seen.updates.push((idx << 40 | p.data.version, at));
        }
    } else if body.starts_with("[\"presence.update\"") {
        seen.presence_messages += 1;
        // Kept, not read: reading a batch's message (a few KB, naming every change) cost the
        // measuring clients, on the cores they share with the server, more than a ticket
        // update's, and would weigh on the run with presence only.
        seen.unread.push((at, message));
    } else if body.starts_with("[\"presence.snapshot\"") || body.starts_with("[\"presence.list\"") {
        seen.presence_messages += 1;
    }
}

/// Reads the `presence.update`s a socket kept: who started or stopped typing, and who changed
/// state, with when it heard.
fn read_kept(sh: &Shared, seen: &mut Seen) {
    let typer = |p: &Person| sh.typer_of.get(p.user_id).copied();
    for (at, message) in std::mem::take(&mut seen.unread) {
        seen.update_bytes += message.len() as u64;
        seen.updates_read += 1;
        let body = message.as_str().strip_prefix("42").unwrap_or_default();
        let Ok((_, p)) = serde_json::from_str::<(&str, Update)>(body) else { continue };
        for (list, on) in [(&p.typing_started, true), (&p.typing_stopped, false)] {
            seen.typing.extend(list.iter().filter_map(|v| typer(v).map(|k| (k, on, at))));
        }
        for v in p.joined.iter().chain(&p.changed) {
            if let Some(k) = typer(v) {
                seen.states.push((k, v.state == Some("replying"), at));
            }
        }
    }
}

/// Microseconds from each typer's toggle to each socket's receipt naming it (the last toggle
/// to that value at or before the receipt), sorted.
fn latencies(sh: &Shared, observed: impl Iterator<Item = (usize, bool, u64)>) -> Vec<u64> {
    let toggles: Vec<Vec<(u64, bool)>> =
        sh.toggles.iter().map(|t| t.lock().map(|t| t.clone()).unwrap_or_default()).collect();
    let mut out: Vec<u64> = observed
        .filter_map(|(k, on, at)| {
            let t = &toggles[k];
            let upto = t.partition_point(|(when, _)| *when <= at);
            t[..upto].iter().rev().find(|(_, v)| *v == on).map(|(when, _)| at - when)
        })
        .collect();
    out.sort_unstable();
    out
}

pub async fn presence(cli: &Cli, a: &PresenceArgs) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut ratios = Vec::new();
    for pair in 0..a.pairs.max(1) {
        let order = if pair % 2 == 0 { [false, true] } else { [true, false] };
        let mut p99 = [0.0; 2];
        for on in order {
            eprintln!(
                "== presence {} (pair {} of {}) N={} typers={} rate={}/s duration={}s",
                if on { "on" } else { "off" },
                pair + 1,
                a.pairs.max(1),
                a.clients,
                a.typers,
                a.rate,
                a.duration
            );
            let run = servers::start(cli, Target::Ticketwire, 20).await?;
            let r = presence_on(&run, a, on).await;
            run.stop().await;
            let mut r = r?;
            r["pair"] = json!(pair);
            p99[usize::from(on)] = r["p99_from_start_ms"].as_f64().unwrap_or(0.0);
            out.push(r);
        }
        if p99[0] > 0.0 {
            ratios.push(p99[1] / p99[0]);
        }
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let median = match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    };
    eprintln!(
        "== ticket updates' p99, with presence / without, per pair: {}; median {}",
        ratios.iter().map(|r| format!("{r:.2}x")).collect::<Vec<_>>().join(", "),
        median.map_or("-".into(), |m| format!("{m:.2}x"))
    );
    out.push(json!({
        "scenario": "presence-ratio",
        "pairs": ratios.len(),
        "p99_from_start_ratios": ratios,
        "p99_from_start_ratio_median": median,
    }));
    Ok(out)
}

async fn presence_on(run: &Running, a: &PresenceArgs, on: bool) -> Result<Value> {
    let tw = run.tw.as_ref().context("ticketwire only")?;
    let typers = if on { a.typers.min(a.clients) } else { 0 };
    let typer_ids = tw.create_users("agent", typers).await?;
    let typer_tokens = typer_ids.iter().map(|id| mint(id, "agent")).collect::<Result<Vec<_>>>()?;
    let ticket = run.ids.iter().find(|(_, i)| **i == 0).map(|(t, _)| t.clone()).context("no ticket")?;
    let sh = Arc::new(Shared {
        run: run.clone(),
        presence: on,
        typer_of: typer_ids.iter().enumerate().map(|(k, id)| (id.clone(), k)).collect(),
        toggles: (0..typers).map(|_| Mutex::new(Vec::new())).collect(),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        updates: AtomicU64::new(0),
    });
    let watched: Arc<str> = ticket.as_str().into();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut probe = Probe::before(run)?;
    let (toggle_tx, toggle_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut tasks = tokio::task::JoinSet::new();
    let rooms = vec!["tickets".to_string(), format!("ticket:{ticket}")];
    for i in 0..a.clients {
        let (token, typer) = match typer_tokens.get(i) {
            Some(t) => (t.clone(), Some(i)),
            None => (run.tokens[i % run.tokens.len()].clone(), None),
        };
        tasks.spawn(socket(
            i,
            token,
            watched.clone(),
            rooms.clone(),
            typer,
            sh.clone(),
            toggle_rx.clone(),
            stop_rx.clone(),
            gate.clone(),
        ));
    }
    let t0 = Instant::now();
    while sh.connected.load(Ordering::Relaxed) + sh.failed.load(Ordering::Relaxed) < a.clients
        && t0.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = sh.connected.load(Ordering::Relaxed);
    eprintln!("  {n} connected in {connect_s:.1}s; {}", probe.connected(n)?);

    probe.writes_start().await?;
    let _ = toggle_tx.send(true);
    let (writes, failed) = fanout::fixed_rate_writer(run, a.rate, a.duration).await;
    let _ = toggle_tx.send(false);
    // Every socket is in `tickets`: it gets every write.
    let expected = writes.len() as u64 * n as u64;
    let received = || sh.updates.load(Ordering::Relaxed);
    fanout::drain(received, expected, a.drain).await;
    let _ = stop_tx.send(true);
    let mut seen = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(s) = r {
            seen.push(s);
        }
    }
    let server = probe.end().await?;
    let batch_lock = crate::metrics::scrape(run, "ticketwire_presence_batch_lock_seconds", None).await;
    for s in &mut seen {
        read_kept(&sh, s);
    }
    let presence_messages: u64 = seen.iter().map(|s| s.presence_messages).sum();
    let update_bytes: u64 = seen.iter().map(|s| s.update_bytes).sum();
    let updates_read: u64 = seen.iter().map(|s| s.updates_read).sum();
    let typing = latencies(&sh, seen.iter().flat_map(|s| s.typing.iter().copied()));
    let states = latencies(&sh, seen.iter().flat_map(|s| s.states.iter().copied()));
    let toggles: usize = sh.toggles.iter().map(|t| t.lock().map(|t| t.len()).unwrap_or(0)).sum();
    let tally = Tally::of(seen.into_iter().map(|s| s.updates).collect(), &writes);
    let server = server.fields(tally.delivered);
    let mut r = json!({
        "scenario": "presence",
        "presence": on,
        "clients": a.clients,
        "connected": n,
        "typers": typers,
        "toggles": toggles,
        "rate": a.rate,
        "duration_s": a.duration,
        "writes": writes.len(),
        "writes_failed": failed,
        "connect_s": connect_s,
        "presence_messages_received": presence_messages,
        "presence_messages_per_socket_s": presence_messages as f64 / n.max(1) as f64 / a.duration.max(1) as f64,
        "presence_update_bytes_mean": update_bytes as f64 / updates_read.max(1) as f64,
        "typing_receipts": typing.len(),
        "typing_p50_ms": ms(pct(&typing, 50.0)),
        "typing_p99_ms": ms(pct(&typing, 99.0)),
        "typing_max_ms": ms(typing.last().copied().unwrap_or(0)),
        "state_receipts": states.len(),
        "state_p50_ms": ms(pct(&states, 50.0)),
        "state_p99_ms": ms(pct(&states, 99.0)),
        "state_max_ms": ms(states.last().copied().unwrap_or(0)),
    });
    fanout::extend(&mut r, tally.fields(expected));
    fanout::extend(&mut r, server);
    r["server_presence_batch_lock_seconds"] = batch_lock.clone().unwrap_or(Value::Null);
    eprintln!("  ticket updates: {}", tally.line(expected));
    if let Some(b) = &batch_lock {
        eprintln!(
            "  presence batches held the hub: p50 {} s, p99 {} s over {} batches",
            b["0.5"], b["0.99"], b["count"]
        );
    }
    eprintln!(
        "  ticket updates p99 from request start {} ms; presence: {} messages ({:.1}/socket/s, updates of {:.0} bytes), typing p50/p99 {}/{} ms over {} receipts, state p50/p99 {}/{} ms; cpu {:.2}s (clients {:.2}s)",
        tally.p99_from_start_ms(),
        presence_messages,
        r["presence_messages_per_socket_s"].as_f64().unwrap_or(0.0),
        r["presence_update_bytes_mean"].as_f64().unwrap_or(0.0),
        r["typing_p50_ms"],
        r["typing_p99_ms"],
        typing.len(),
        r["state_p50_ms"],
        r["state_p99_ms"],
        r["cpu_s"].as_f64().unwrap_or(0.0),
        r["clients_cpu_s"].as_f64().unwrap_or(0.0),
    );
    Ok(r)
}

pub async fn presence_idle(cli: &Cli, a: &PresenceIdleArgs) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for on in [false, true] {
        eprintln!("== presence-idle {} N={} tickets={}", if on { "on" } else { "off" }, a.clients, a.tickets);
        let run = servers::start(cli, Target::Ticketwire, 20).await?;
        let r = idle_on(&run, a, on).await;
        run.stop().await;
        out.push(r?);
    }
    Ok(out)
}

async fn idle_on(run: &Running, a: &PresenceIdleArgs, on: bool) -> Result<Value> {
    let tw = run.tw.as_ref().context("ticketwire only")?;
    let tickets: Vec<Arc<str>> = futures::stream::iter(0..a.tickets)
        .map(|i| {
            let (http, base, token) = (run.http.clone(), run.base.clone(), tw.admin_token().to_string());
            async move {
                let r = http
                    .post(format!("{base}/api/tickets"))
                    .bearer_auth(token)
                    .json(&json!({ "subject": format!("Idle ticket {i}"), "description": "x" }))
                    .send()
                    .await?;
                let v: Value = r.error_for_status()?.json().await?;
                v["id"].as_str().map(Arc::<str>::from).context("ticket id")
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<Result<Arc<str>>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = servers::rss_kib(run.pid)?;
    let sh = Arc::new(Shared {
        run: run.clone(),
        presence: on,
        typer_of: HashMap::new(),
        toggles: Vec::new(),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        updates: AtomicU64::new(0),
    });
    let (_toggle_tx, toggle_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut tasks = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..a.clients {
        let ticket = tickets[i % tickets.len()].clone();
        let rooms = vec![format!("ticket:{ticket}")];
        let token = run.tokens[i % run.tokens.len()].clone();
        tasks.spawn(socket(
            i,
            token,
            ticket,
            rooms,
            None,
            sh.clone(),
            toggle_rx.clone(),
            stop_rx.clone(),
            gate.clone(),
        ));
    }
    while sh.connected.load(Ordering::Relaxed) + sh.failed.load(Ordering::Relaxed) < a.clients
        && t0.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_s = t0.elapsed().as_secs_f64();
    // Settled: every announcement batched and sent.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n = sh.connected.load(Ordering::Relaxed);
    let rss_connected = servers::rss_kib(run.pid)?;
    let kib_per_socket = (rss_connected as f64 - rss_before as f64) / n.max(1) as f64;
    let _ = stop_tx.send(true);
    let mut presence_messages = 0;
    while let Some(r) = tasks.join_next().await {
        if let Ok(s) = r {
            presence_messages += s.presence_messages;
        }
    }
    eprintln!(
        "  {n} connected in {connect_s:.1}s; RSS {rss_before} -> {rss_connected} KiB = {kib_per_socket:.2} KiB/socket; {presence_messages} presence messages received"
    );
    Ok(json!({
        "scenario": "presence_idle",
        "presence": on,
        "clients": a.clients,
        "connected": n,
        "tickets": a.tickets,
        "connect_s": connect_s,
        "rss_before_kib": rss_before,
        "rss_connected_kib": rss_connected,
        "kib_per_socket": kib_per_socket,
        "presence_messages_received": presence_messages,
    }))
}
