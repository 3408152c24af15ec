//! The hooks layer: one pipeline from the event log to everything derived from it.
//!
//! A committed event is picked up by the [`dispatcher`], which in one transaction stores the
//! notifications the [`rules`] call for (and the webhook deliveries that carry them), advances
//! its cursor, and then hands the event to the realtime emitter. Webhook delivery runs on its
//! own worker from the rows written here.
pub mod deliveries;
pub mod dispatcher;
pub mod rules;

/// The runtime the dispatcher runs on: one thread of its own. During a large fan-out the
/// server's runtime queues thousands of socket-writer tasks, and each of the dispatcher's
/// database round trips (a dozen per batch) would wait behind the whole queue (BENCHMARKS.md).
pub struct Pipeline(Option<tokio::runtime::Runtime>);

impl Pipeline {
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tw-pipeline")
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for Pipeline {
    /// Without waiting: a runtime dropped the blocking way on the server's runtime would panic.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub use crate::db::HooksHandle;
