//! Inbound ingestion: tickets from other systems' webhooks.
//!
//! A request is authenticated against an [integration](auth) (API key or the sender's native
//! signature), rate limited per integration, normalised by the [source's normaliser](sources)
//! into [`Normalised`] items, and each item is [upserted](upsert) on `(source, external_id)`
//! through the ordinary ticket path, so it reaches Socket.IO, notifications and webhooks.
use std::{collections::HashMap, sync::Mutex, time::Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{
    config::IngestConfig,
    domain::{
        Store,
        tickets::{Priority, Status},
    },
};

pub mod auth;
pub mod batch;
pub mod sources;
pub mod upsert;

/// What ingestion works with: the domain's store, its own settings, and the server key that
/// integrations' signing secrets are derived from.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a Store,
    pub config: &'a IngestConfig,
    pub key: &'a [u8],
}

/// A token bucket per integration: `rate` per second, bursts up to twice that.
#[derive(Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimits {
    /// Takes one token for `key`; on refusal, the seconds until one is available.
    pub fn check(&self, key: &str, rate: u32) -> Result<(), u64> {
        let rate = f64::from(rate.max(1));
        let burst = rate * 2.0;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = map.entry(key.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Whether an alert-born item is firing or has recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Firing,
    Resolved,
}

/// One ticket's worth of a sender's payload, in our terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Normalised {
    /// The sender's id for the thing (issue key, alert fingerprint, incident id…).
    pub external_id: Option<String>,
    pub subject: String,
    pub description: String,
    pub priority: Option<Priority>,
    /// The status the sender reports; `None` leaves it alone (new tickets open).
    pub status: Option<Status>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub requester_email: Option<String>,
    /// One of our user ids (flexible mapping only).
    pub requester_id: Option<String>,
    /// Overrides the ticket source (flexible mapping's `platform`).
    pub source: Option<String>,
    /// Source-specific fields kept on the ticket.
    pub metadata: Map<String, Value>,
    /// Set for monitoring alerts: drives occurrences, resolution and flap triage.
    pub alert: Option<AlertState>,
    /// When the alert started firing and ended, as the sender says.
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}
