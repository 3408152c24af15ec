//! One attempt: sign, send (over HTTP or to the built-in receiver), and judge the answer.
use std::time::Duration;

use chrono::Utc;

use super::{receiver, signing, ssrf, worker::Webhooks};
use crate::{
    config::WebhookConfig,
    entity::{webhook_delivery, webhook_endpoint},
};

const RESPONSE_KEEP_BYTES: usize = 4096;
pub(crate) const USER_AGENT: &str = concat!("ticketwire-webhooks/", env!("CARGO_PKG_VERSION"));

/// What one attempt produced.
#[derive(Debug)]
pub struct Outcome {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub body: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Outcome {
    fn failed(error: impl Into<String>) -> Self {
        Self { status: None, error: Some(error.into()), body: None, retry_after: None }
    }
}

/// Signs with the current secret (and the previous one during a rotation) and sends.
pub async fn attempt(
    hooks: &Webhooks,
    config: &WebhookConfig,
    endpoint: &webhook_endpoint::Model,
    d: &webhook_delivery::Model,
) -> Outcome {
    let timestamp = Utc::now().timestamp();
    let previous = endpoint
        .previous_secret
        .as_deref()
        .filter(|_| endpoint.previous_secret_expires_at.is_some_and(|t| t > Utc::now()));
    let secrets: Vec<&str> = std::iter::once(endpoint.secret.as_str()).chain(previous).collect();
    let signature = signing::signature_header(&secrets, &d.id, timestamp, d.payload.as_bytes());
    if endpoint.url.starts_with('/') {
        send_in_process(hooks, &endpoint.url, d, timestamp, &signature).await
    } else {
        send_http(hooks, config, &endpoint.url, d, timestamp, &signature).await
    }
}

async fn send_http(
    hooks: &Webhooks,
    config: &WebhookConfig,
    url: &str,
    d: &webhook_delivery::Model,
    ts: i64,
    signature: &str,
) -> Outcome {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Outcome::failed(format!("invalid URL: {e}")),
    };
    if let Err(reason) = ssrf::check_literal_host(&parsed, &config.allow_cidrs) {
        return Outcome::failed(format!("refused: {reason}"));
    }
    let sent = hooks
        .client()
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Outcome::failed("timed out"),
        Err(e) => return Outcome::failed(error_chain(&e)),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Keep the first 4 KiB and stop reading: a receiver answering a gigabyte costs us 4 KiB.
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_KEEP_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(RESPONSE_KEEP_BYTES);
    Outcome { status: Some(status), error: None, body: Some(String::from_utf8_lossy(&kept).into_owned()), retry_after }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A delivery to a relative URL: to the built-in receiver, the one relative URL there is,
/// answered as it would answer over HTTP.
async fn send_in_process(
    hooks: &Webhooks,
    path: &str,
    d: &webhook_delivery::Model,
    ts: i64,
    signature: &str,
) -> Outcome {
    let Some(built_in) = hooks.built_in() else {
        return Outcome::failed("server is starting");
    };
    let answer = |status: u16, body: serde_json::Value| Outcome {
        status: Some(status),
        error: None,
        body: Some(body.to_string()),
        retry_after: None,
    };
    if path.split(['?', '#']).next() != Some(receiver::PATH) {
        return answer(404, serde_json::json!({"code": "not_found", "detail": "no built-in receiver at this path"}));
    }
    let timestamp = ts.to_string();
    let signed = receiver::Signed { id: &d.id, timestamp: &timestamp, signature, body: d.payload.as_bytes() };
    match receiver::verify(&hooks.store().db, signed).await {
        Ok((owner, payload)) => {
            built_in.show_to_owner(owner, payload).await;
            answer(200, serde_json::json!({"status": "received"}))
        }
        Err(e) => answer(e.status().as_u16(), serde_json::to_value(e.body()).unwrap_or_default()),
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    Retry,
    Failed,
    /// 410: the receiver asks us to stop; the endpoint is disabled.
    Gone,
}

pub fn judge(o: &Outcome) -> Verdict {
    match o.status {
        Some(s) if (200..300).contains(&s) => Verdict::Succeeded,
        Some(410) => Verdict::Gone,
        Some(408 | 429) | None => Verdict::Retry,
        Some(s) if s >= 500 => Verdict::Retry,
        Some(_) => Verdict::Failed,
    }
}

/// The delay before retry number `attempts` (1-based), with ±10 % jitter so many failed
/// deliveries do not all come back at once.
pub fn backoff(schedule: &[u64], attempts: usize) -> Option<Duration> {
    let base = *schedule.get(attempts.checked_sub(1)?)?;
    let jitter = 0.9 + rand::random::<f64>() * 0.2;
    Some(Duration::from_millis((base as f64 * jitter) as u64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_with_jitter() {
        let s = [1000, 60_000];
        let d1 = backoff(&s, 1).unwrap().as_millis();
        assert!((900..=1100).contains(&d1), "{d1}");
        assert!(backoff(&s, 2).unwrap().as_millis() >= 54_000);
        assert!(backoff(&s, 3).is_none());
    }

    #[test]
    fn verdicts() {
        let o = |status| Outcome { status, error: None, body: None, retry_after: None };
        assert_eq!(judge(&o(Some(204))), Verdict::Succeeded);
        assert_eq!(judge(&o(Some(410))), Verdict::Gone);
        assert_eq!(judge(&o(Some(429))), Verdict::Retry);
        assert_eq!(judge(&o(Some(503))), Verdict::Retry);
        assert_eq!(judge(&o(None)), Verdict::Retry);
        assert_eq!(judge(&o(Some(400))), Verdict::Failed);
        assert_eq!(judge(&o(Some(301))), Verdict::Failed);
    }
}
