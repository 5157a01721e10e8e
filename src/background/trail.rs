//! The audit trail's two workers: the flusher writes the queue of events that change
//! nothing (refusals, authentication failures, the listeners' records) every
//! [`FLUSH_EVERY`]; the checkpointer appends a `tick` and signs a checkpoint at a fixed
//! interval whether or not anything happened, so a log cut short shows as missing ticks
//! and time is inside the log (`../shared/design/audit.md` §2.4).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::alert::Alerts;
use crate::audit::trail::FLUSH_EVERY;
use crate::background::runner::{Control, PassEnd, PassWorker, Scope};
use crate::store::Store;

/// What the checkpointer shows (`GET /v1/workers`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckpointStatus {
    /// Checkpoints signed by this process.
    pub signed: u64,
    /// The log's size at the latest of them.
    pub size: u64,
}

/// Signs a checkpoint (after a `tick` leaf) every interval.
pub struct CheckpointWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    every: Duration,
    control: Control,
    status: Mutex<CheckpointStatus>,
}

impl CheckpointWorker {
    /// A checkpointer of `store`'s trail every `every` (at least a second).
    pub fn new(store: Store, alerts: Option<Arc<Alerts>>, every: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            every: every.max(Duration::from_secs(1)),
            control: Control::default(),
            status: Mutex::new(CheckpointStatus::default()),
        })
    }

    /// A copy of the status.
    pub fn status(&self) -> CheckpointStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl PassWorker for CheckpointWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "audit-checkpoint"
    }

    /// Each node signs its own log.
    fn scope(&self) -> Scope {
        Scope::Node
    }

    fn control(&self) -> &Control {
        &self.control
    }

    fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_deref()
    }

    fn interval(&self) -> Duration {
        self.every
    }

    fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> PassEnd {
        let now = self.store.retention_clock().readings();
        match self.store.trail().tick(now) {
            Ok((size, _)) => {
                if let Ok(mut s) = self.status.lock() {
                    s.signed += 1;
                    s.size = size;
                }
                PassEnd::Finished
            }
            Err(e) => PassEnd::Failed(format!("cannot sign an audit checkpoint: {e}")),
        }
    }
}

/// Writes the trail's queue every [`FLUSH_EVERY`].
pub struct FlushWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    control: Control,
}

impl FlushWorker {
    /// The flusher of `store`'s trail.
    pub fn new(store: Store, alerts: Option<Arc<Alerts>>) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            control: Control::default(),
        })
    }
}

impl PassWorker for FlushWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "audit-flush"
    }

    fn scope(&self) -> Scope {
        Scope::Node
    }

    fn control(&self) -> &Control {
        &self.control
    }

    fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_deref()
    }

    fn interval(&self) -> Duration {
        FLUSH_EVERY
    }

    fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> PassEnd {
        match self.store.trail().flush() {
            Ok(_) => PassEnd::Finished,
            Err(e) => PassEnd::Failed(format!("cannot write the audit trail's queue: {e}")),
        }
    }
}
