//! Inbound ingestion: tickets from other systems' webhooks.
use std::{collections::HashMap, sync::Mutex, time::Instant};

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
        let mut map = self.buckets.lock().expect("not poisoned");
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

pub mod api {
    //! Routes for inbound ingestion.
    use utoipa_axum::router::OpenApiRouter;

    use crate::state::AppState;

    pub fn router() -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }
}
