//! Several nodes as one service (PostgreSQL + Redis).
//!
//! Only one node at a time dispatches (it holds the cursor row's lock), but every node has its
//! own Socket.IO clients. After a dispatch commits, the dispatching node announces "dispatched up
//! to N" on a Redis channel; every node then reads the events and notifications up to N from the
//! shared log and emits them to its own sockets. Each node thus keeps the exact, gap-free,
//! back-pressure-aware delivery and catch-up of a single node. Cross-node Socket.IO operations
//! that are not in the log (room joins, disconnects, the webhook receiver's echo) go through
//! socketioxide's Redis adapter.
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// A connection for announcing dispatches.
#[derive(Clone)]
pub struct Cluster {
    client: redis::Client,
    publisher: redis::aio::MultiplexedConnection,
    /// `{prefix}:dispatched`: one channel per cluster.
    channel: String,
}

impl Cluster {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let publisher = client.get_multiplexed_async_connection().await?;
        Ok(Self { client, publisher, channel: format!("{prefix}:dispatched") })
    }

    /// Tells every node that events up to `event_id` are dispatched. Best effort: followers also
    /// poll the cursor, so a lost announcement only delays.
    pub async fn announce(&self, event_id: i64) {
        let mut conn = self.publisher.clone();
        let sent: redis::RedisResult<i64> =
            redis::cmd("PUBLISH").arg(&self.channel).arg(event_id).query_async(&mut conn).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not announce a dispatch to other nodes");
        }
    }

    /// Calls `on_dispatched(N)` for every announcement until `shutdown`, resubscribing after
    /// connection losses.
    pub async fn follow<F, Fut>(&self, shutdown: CancellationToken, on_dispatched: F)
    where
        F: Fn(i64) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        while !shutdown.is_cancelled() {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if let Err(e) = pubsub.subscribe(&self.channel).await {
                        tracing::warn!(error = %e, "cannot subscribe to dispatch announcements");
                    } else {
                        let mut messages = pubsub.on_message();
                        loop {
                            tokio::select! {
                                msg = messages.next() => match msg {
                                    Some(msg) => {
                                        if let Ok(id) = msg.get_payload::<i64>() {
                                            on_dispatched(id).await;
                                        }
                                    }
                                    None => break,
                                },
                                _ = shutdown.cancelled() => return,
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach Redis for dispatch announcements"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
