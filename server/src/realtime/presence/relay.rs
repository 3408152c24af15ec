//! Presence between nodes: each node publishes what changed among its own connections'
//! entries, once per batch, on `{prefix}:presence`, and keeps the others' entries with the time
//! they have left. A node that dies stops refreshing its entries, so the others drop them when
//! that time runs out; a node that starts asks the others to send theirs at once.
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// One batch of a node's changes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    pub node: String,
    /// Asks every other node to publish all its entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub up: Vec<Up>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rm: Vec<Rm>,
}

/// An entry as it is now, with the time it has left (the receiving node's clock starts it).
#[derive(Debug, Serialize, Deserialize)]
pub struct Up {
    /// The connection.
    pub c: String,
    pub t: String,
    pub u: String,
    pub n: String,
    pub r: String,
    pub s: String,
    /// Milliseconds until the entry expires.
    pub ttl: u64,
    /// Milliseconds until public and internal typing stop (0: not typing).
    pub ty: [u64; 2],
}

/// An entry that ended.
#[derive(Debug, Serialize, Deserialize)]
pub struct Rm {
    pub c: String,
    pub t: String,
}

/// Most entries one message carries, so a node with many connections sends several modest
/// messages rather than one that holds Redis and every subscriber up.
pub const MAX_PER_MESSAGE: usize = 500;

#[derive(Clone)]
pub struct Relay {
    client: redis::Client,
    publisher: redis::aio::MultiplexedConnection,
    channel: String,
}

impl Relay {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let publisher = client.get_multiplexed_async_connection().await?;
        Ok(Self { client, publisher, channel: format!("{prefix}:presence") })
    }

    /// Best effort: a lost batch is repaired by the next refresh of the same entries.
    pub async fn publish(&self, batch: &Batch) {
        let Ok(body) = serde_json::to_string(batch) else { return };
        let mut conn = self.publisher.clone();
        let sent: redis::RedisResult<i64> =
            redis::cmd("PUBLISH").arg(&self.channel).arg(body).query_async(&mut conn).await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not publish presence to other nodes");
        }
    }

    /// Calls `on_batch` for every batch published by any node until `on_batch` answers false,
    /// and `on_subscribed` each time the subscription (re)starts, resubscribing after losses.
    pub async fn follow(&self, on_subscribed: impl Fn(), on_batch: impl Fn(Batch) -> bool) {
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if let Err(e) = pubsub.subscribe(&self.channel).await {
                        tracing::warn!(error = %e, "cannot subscribe to presence from other nodes");
                    } else {
                        on_subscribed();
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            let Ok(body) = msg.get_payload::<String>() else { continue };
                            match serde_json::from_str::<Batch>(&body) {
                                Ok(batch) => {
                                    if !on_batch(batch) {
                                        return;
                                    }
                                }
                                Err(e) => tracing::debug!(error = %e, "ignoring a malformed presence message"),
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach Redis for presence"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
