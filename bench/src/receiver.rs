//! A local webhook receiver for the webhook and REST scenarios.
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use anyhow::Result;
use serde_json::Value;

use crate::now_us;

/// A fast local webhook receiver: records receipt time and receipt - notification.created_at.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    inner: Arc<RecvInner>,
}

struct RecvInner {
    count: AtomicU64,
    samples: Mutex<(u64, u64, Vec<u64>)>,
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
        let inner = Arc::new(RecvInner { count: AtomicU64::new(0), samples: Mutex::new((u64::MAX, 0, Vec::new())) });
        async fn hook(State(inner): State<Arc<RecvInner>>, body: Bytes) -> StatusCode {
            let at = now_us();
            let wall = chrono::Utc::now();
            let lag = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v["notification"]["created_at"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                })
                .map(|c| (wall - c.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0).max(0) as u64);
            inner.count.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut s) = inner.samples.lock() {
                s.0 = s.0.min(at);
                s.1 = s.1.max(at);
                if let Some(l) = lag {
                    s.2.push(l);
                }
            }
            StatusCode::NO_CONTENT
        }
        let app = Router::new().route("/hook/{i}", post(hook)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, inner })
    }

    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// (count, first receipt, last receipt, lags) — and resets the samples.
    pub fn take(&self) -> (u64, u64, u64, Vec<u64>) {
        let mut s = self.inner.samples.lock().unwrap_or_else(|e| e.into_inner());
        let out = (self.count(), s.0, s.1, std::mem::take(&mut s.2));
        *s = (u64::MAX, 0, Vec::new());
        out
    }
}
