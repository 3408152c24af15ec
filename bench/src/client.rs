//! Many cheap Socket.IO clients: Engine.IO v4 / Socket.IO v5 over a raw WebSocket, one task each.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::{net::TcpSocket, sync::watch};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

use crate::{now_us, servers::Running};

pub struct ClientOpts {
    pub rooms: Vec<String>,
}

/// Receipts of one client: (key, microseconds since bench start).
pub type Receipts = Vec<(u64, u64)>;

pub struct Swarm {
    connected: Arc<AtomicUsize>,
    received: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<Receipts>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    id: &'a str,
    version: u64,
}

/// Source addresses 127.0.0.2..=127.0.0.9, so 10k+ sockets do not run out of ephemeral ports.
fn source(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8)), 0)
}

impl Swarm {
    pub async fn connect(run: &Running, n: usize, opts: ClientOpts) -> Result<Self> {
        let connected = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(tokio::sync::Semaphore::new(128));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let auth =
                serde_json::json!({ "token": run.tokens[i % run.tokens.len()], "rooms": opts.rooms }).to_string();
            let (run, connected, failed, received, stop_rx, gate) =
                (run.clone(), connected.clone(), failed.clone(), received.clone(), stop_rx.clone(), gate.clone());
            tasks.spawn(async move {
                let permit = gate.acquire_owned().await;
                let mut ws = match open(&run, i, &auth).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("  client {i}: {e:#}");
                        }
                        return Vec::new();
                    }
                };
                drop(permit);
                connected.fetch_add(1, Ordering::Relaxed);
                live(&mut ws, &run, &received, stop_rx).await
            });
        }
        let started = Instant::now();
        let mut last = Instant::now();
        while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n
            && started.elapsed() < Duration::from_secs(300)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if last.elapsed() >= Duration::from_secs(3) {
                eprintln!(
                    "  connecting: {} / {n} ({} failed)",
                    connected.load(Ordering::Relaxed),
                    failed.load(Ordering::Relaxed)
                );
                last = Instant::now();
            }
        }
        Ok(Self { connected, received, stop, tasks })
    }

    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Stops every client and returns their receipts.
    pub async fn finish(mut self) -> Vec<Receipts> {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        while let Some(r) = self.tasks.join_next().await {
            if let Ok(r) = r {
                out.push(r);
            }
        }
        out
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One authenticated Socket.IO connection (`auth` is the CONNECT packet's JSON), from the `i`-th
/// source address.
pub async fn open(run: &Running, i: usize, auth: &str) -> Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(source(i))?;
    let stream =
        tokio::time::timeout(Duration::from_secs(30), sock.connect(run.addr)).await.context("connect timeout")??;
    stream.set_nodelay(true)?;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", run.addr);
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await
    .context("handshake timeout")??;
    // Engine.IO open packet, then our Socket.IO CONNECT with auth.
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        bail!("expected an Engine.IO open packet, got {open:.80}");
    }
    ws.send(Message::text(format!("40{auth}"))).await?;
    loop {
        let t = next_text(&mut ws).await?;
        if t.starts_with("40") {
            return Ok(ws);
        }
        if t.starts_with("44") {
            bail!("refused: {t:.120}");
        }
        if t == "2" {
            ws.send(Message::text("3")).await?;
        }
    }
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    let deadline = Duration::from_secs(30);
    loop {
        match tokio::time::timeout(deadline, ws.next()).await.context("read timeout")? {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(_))) | None => bail!("closed"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

async fn live(ws: &mut Ws, run: &Running, received: &AtomicU64, mut stop: watch::Receiver<bool>) -> Receipts {
    let mut out = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            msg = ws.next() => {
                let at = now_us();
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let t = t.as_str();
                        if t == "2" {
                            if ws.send(Message::text("3")).await.is_err() { break; }
                        } else if let Some(body) = t.strip_prefix("42")
                            && let Ok((name, ev)) = serde_json::from_str::<(&str, Event<'_>)>(body)
                            && name == "ticket.update"
                        {
                            received.fetch_add(1, Ordering::Relaxed);
                            if let Some(idx) = run.ids.get(ev.data.id) {
                                out.push((idx << 40 | ev.data.version, at));
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
    out
}
