//! A reconnecting client's catch-up over Socket.IO, timed from outside: a client that last saw
//! event `after` connects with `last_event_id`, and the time runs from its CONNECT packet to the
//! server's `catch_up` emit, which comes once every missed emit has been sent.
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// One catch-up: how long it took and what it carried.
pub struct Replayed {
    pub ms: f64,
    /// Emits received before `catch_up` (events and notifications).
    pub emits: usize,
    /// `catch_up.recovered`: false means the server replayed nothing (past its window).
    pub recovered: bool,
}

/// Connects to `base` (`http://host:port`) as `token`, resuming after event `after`.
pub async fn replay(base: &str, token: &str, after: i64) -> Result<Replayed> {
    let host = base.strip_prefix("http://").context("an http:// base")?;
    let url = format!("ws://{host}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        bail!("expected an Engine.IO open packet, got {open:.80}");
    }
    let auth = json!({ "token": token, "last_event_id": after });
    let started = Instant::now();
    ws.send(Message::text(format!("40{auth}"))).await?;
    let mut emits = 0;
    loop {
        let t = next_text(&mut ws).await?;
        if t == "2" {
            ws.send(Message::text("3")).await?;
        } else if t.starts_with("44") {
            bail!("refused: {t:.120}");
        } else if let Some(body) = t.strip_prefix("42") {
            let (name, data): (String, Value) = serde_json::from_str(body).context("an emit")?;
            if name == "catch_up" {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let recovered = data["recovered"].as_bool().context("catch_up.recovered")?;
                let _ = ws.close(None).await;
                return Ok(Replayed { ms, emits, recovered });
            }
            emits += 1;
        }
    }
}

/// A client that missed the log's last 1,000 events reconnects with `last_event_id`: the time
/// until its `catch_up` arrives (every missed emit sent), median of `samples` after one unmeasured.
pub async fn timed(base: &str, name: &str, token: &str, missed_from: i64, samples: usize) -> Result<Value> {
    let first = replay(base, token, missed_from).await.with_context(|| name.to_string())?;
    if !first.recovered {
        bail!("{name}: the server did not replay the last 1,000 events (past its catch-up window)");
    }
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        ms.push(replay(base, token, missed_from).await?.ms);
    }
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    eprintln!("  {name:<45} median {median:>9.2} ms  ({} emits)", first.emits);
    Ok(json!({
        "path": format!("socket.io auth {{last_event_id: {missed_from}}}"),
        "median_ms": median, "min_ms": ms[0], "max_ms": ms[ms.len() - 1], "items": first.emits, "samples_ms": ms,
    }))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await.context("read timeout")? {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(_))) | None => bail!("closed"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}
