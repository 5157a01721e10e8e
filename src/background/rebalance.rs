//! The rebalancer (issue 14, item 3): the worker that moves existing shards to where the
//! cluster's current layout places them ([`Store::rebalance_version`]) — off a drained
//! disk (weight 0), onto a new member's disks — and removes the old copies once their
//! grace period ended ([`Store::remove_old_copies`]). Existing shards never move by
//! themselves: only its passes move them, at its interval (`--rebalance-interval`) or when
//! an administrator runs one, throttled (`--rebalance-rate`), once per cluster (the lease
//! holder), resumable from a checkpoint after the last key it finished.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::alert::Alerts;
use crate::background::runner::{Control, PassEnd, PassWorker, Scope, Throttle};
use crate::meta::{Record, VersionRecord};
use crate::store::{Moves, Store};
use crate::types::{BucketName, ObjectKey, Timestamp};

const CHECKPOINT_KEY: &str = "worker.rebalance.checkpoint";

/// How long an old copy of a moved shard is kept by default: a read that began before
/// the move (a large GET, a restore) still finds it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15 * 60);

/// The counts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceReport {
    /// When the pass began (the store's clock; kept across a resume).
    pub started: Option<Timestamp>,
    /// When it finished; `None` while it runs.
    pub finished: Option<Timestamp>,
    /// The layout epoch it moved shards to (the one in force when it began).
    pub epoch: u64,
    /// Versions looked at.
    pub versions: u64,
    /// What was moved, left waiting or raced.
    pub moves: Moves,
    /// Old copies removed after their grace period.
    pub old_copies_removed: u64,
}

/// Where an interrupted pass resumes, with what it had counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The bucket the pass was in; buckets before it are done.
    pub bucket: BucketName,
    /// The last key whose versions were all handled: the pass resumes after it.
    pub after: ObjectKey,
    /// The counts so far.
    pub report: RebalanceReport,
}

impl Record for Checkpoint {
    const NAME: &'static str = "rebalance-checkpoint";
    const FORMAT: u8 = 1;
}

/// What the rebalancer is doing and has done (`GET /v1/rebalance`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebalanceStatus {
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// The pass under way, with its counts so far.
    pub current: Option<RebalanceReport>,
    /// The last pass that finished.
    pub last_pass: Option<RebalanceReport>,
    /// Throttle: bytes copied per second.
    pub rate_bytes_per_sec: u32,
    /// Seconds between scheduled passes.
    pub interval_secs: u64,
    /// Seconds an old copy is kept after its shard moved.
    pub grace_secs: u64,
    /// Passes that failed since the process started.
    pub failed_passes: u64,
    /// Why the last pass that ended failed.
    pub last_failure: Option<String>,
}

impl crate::background::runner::PassStatus for RebalanceStatus {
    type Report = RebalanceReport;
    fn last_report(&self) -> Option<RebalanceReport> {
        self.last_pass.clone()
    }
    fn set_runner(&mut self, paused: bool, failed_passes: u64, last_failure: Option<String>) {
        self.paused = paused;
        self.failed_passes = failed_passes;
        self.last_failure = last_failure;
    }
}

/// The rebalancer of one node; its passes run on the lease holder only.
pub struct RebalanceWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    status: Mutex<RebalanceStatus>,
    control: Control,
    grace: Duration,
}

impl RebalanceWorker {
    /// A worker that starts a pass every `interval`, copies at most `rate_bytes_per_sec`
    /// bytes a second (at least 1) and keeps old copies for `grace`.
    pub fn new(
        store: Store,
        alerts: Option<Arc<Alerts>>,
        interval: Duration,
        rate_bytes_per_sec: u32,
        grace: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            status: Mutex::new(RebalanceStatus {
                rate_bytes_per_sec: rate_bytes_per_sec.max(1),
                interval_secs: interval.as_secs(),
                grace_secs: grace.as_secs(),
                ..Default::default()
            }),
            control: Control::default(),
            grace,
        })
    }

    fn with_status<R>(&self, f: impl FnOnce(&mut RebalanceStatus) -> R) -> R {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of the status, with the runner's pause state and failures.
    pub fn status(&self) -> RebalanceStatus {
        crate::background::runner::read_status(&self.status, &self.control)
    }

    /// Starts a pass and waits for it to end: `None` at once while paused or on a node
    /// standing by, its report if it finished, why not if it failed.
    pub async fn run_and_wait(&self) -> Option<Result<RebalanceReport, String>> {
        crate::background::runner::run_and_report(&self.status, &self.control).await
    }

    fn update(&self, f: impl FnOnce(&mut RebalanceReport)) {
        self.with_status(|s| {
            if let Some(r) = s.current.as_mut() {
                f(r)
            }
        });
    }

    fn save(&self, bucket: &BucketName, after: &ObjectKey) -> Result<(), String> {
        let report = self.with_status(|s| s.current.clone().unwrap_or_default());
        let c = Checkpoint {
            bucket: bucket.clone(),
            after: after.clone(),
            report,
        };
        let bytes = c.encode().map_err(|e| e.to_string())?;
        self.store
            .meta()
            .node_put(CHECKPOINT_KEY, bytes, false)
            .map_err(|e| format!("cannot save the checkpoint: {e}"))
    }

    fn walk(&self, resume: Option<&Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        let rate = self.with_status(|s| s.rate_bytes_per_sec);
        let mut throttle = Throttle::new(rate);
        let buckets = match self.store.buckets() {
            Ok(b) => b,
            Err(e) => return PassEnd::Failed(format!("cannot list buckets: {e}")),
        };
        for b in buckets {
            if resume.is_some_and(|c| b.name < c.bucket) {
                continue;
            }
            let mut from = resume
                .filter(|c| c.bucket == b.name)
                .map(|c| c.after.clone());
            loop {
                // The lease lost mid-pass: the next holder moves the rest (two movers
                // at once could clear each other's copies).
                if self.control.should_stop(stop) || !self.store.holds_lease() {
                    return PassEnd::Stopped;
                }
                let (key, versions) = match next_key(&self.store, &b.name, from.as_ref()) {
                    Ok(Some(k)) => k,
                    Ok(None) => break,
                    Err(e) => return PassEnd::Failed(e),
                };
                for v in &versions {
                    let moved =
                        self.store
                            .rebalance_version(&b.name, &key, v, self.grace, &mut |n| {
                                throttle.wait(n)
                            });
                    match moved {
                        Ok(m) => self.update(|r| {
                            r.versions += 1;
                            r.moves.add(m);
                        }),
                        Err(e) => {
                            return PassEnd::Failed(format!(
                                "moving the shards of {}/{key}: {e}",
                                b.name
                            ));
                        }
                    }
                }
                if let Err(e) = self.save(&b.name, &key) {
                    return PassEnd::Failed(e);
                }
                from = Some(key);
            }
        }
        PassEnd::Finished
    }
}

/// The first key of `bucket` after `after` and all its versions.
fn next_key(
    store: &Store,
    bucket: &BucketName,
    after: Option<&ObjectKey>,
) -> Result<Option<(ObjectKey, Vec<VersionRecord>)>, String> {
    let mut key: Option<ObjectKey> = None;
    let mut versions = Vec::new();
    let start = after.map_or("", |k| k.as_str()).to_owned();
    store
        .meta()
        .scan_versions(bucket, &start, |k, v| {
            if after == Some(&k) {
                return ControlFlow::Continue(());
            }
            match &key {
                Some(cur) if *cur != k => ControlFlow::Break(()),
                _ => {
                    key = Some(k);
                    versions.push(v);
                    ControlFlow::Continue(())
                }
            }
        })
        .map_err(|e| format!("cannot list the versions of bucket {bucket} after {start:?}: {e}"))?;
    Ok(key.map(|k| (k, versions)))
}

impl PassWorker for RebalanceWorker {
    type Checkpoint = Checkpoint;

    fn name(&self) -> &'static str {
        "rebalance"
    }
    fn scope(&self) -> Scope {
        Scope::Cluster
    }
    fn holds_lease(&self) -> bool {
        self.store.holds_lease()
    }
    fn control(&self) -> &Control {
        &self.control
    }
    fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_deref()
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(self.with_status(|s| s.interval_secs))
    }
    fn load_checkpoint(&self) -> Option<Checkpoint> {
        crate::background::runner::load_checkpoint(self.store.meta(), CHECKPOINT_KEY)
    }
    fn clear_checkpoint(&self) {
        if let Err(e) = self.store.meta().node_delete(CHECKPOINT_KEY) {
            tracing::warn!(error = %e, "cannot clear the rebalance checkpoint");
        }
    }

    fn pass(&self, resume: Option<Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        let report = match &resume {
            Some(c) => c.report.clone(),
            None => RebalanceReport {
                started: Some(self.store.clock().now()),
                epoch: self.store.layout_epoch(),
                ..Default::default()
            },
        };
        self.with_status(|s| {
            s.running = true;
            s.current = Some(report);
        });
        let mut end = match self.store.remove_old_copies(self.store.clock().now()) {
            // A cluster that never recorded a layout (epoch 0: one node, or members
            // upgraded from a release without layouts) moves nothing: a move is a command
            // an earlier release's member could not apply.
            Ok(n) => {
                self.update(|r| r.old_copies_removed += n);
                if self.store.layout_epoch() == 0 {
                    PassEnd::Finished
                } else {
                    self.walk(resume.as_ref(), stop)
                }
            }
            Err(e) => PassEnd::Failed(format!("removing old copies: {e}")),
        };
        if end == PassEnd::Finished
            && let Err(e) = self.store.meta().node_delete(CHECKPOINT_KEY)
        {
            end = PassEnd::Failed(format!("cannot clear the checkpoint: {e}"));
        }
        let report = self.with_status(|s| {
            s.running = false;
            let mut r = s.current.take().unwrap_or_default();
            if end == PassEnd::Finished {
                r.finished = Some(self.store.clock().now());
                s.passes += 1;
                s.last_pass = Some(r.clone());
            }
            r
        });
        if end == PassEnd::Finished {
            tracing::info!(
                epoch = report.epoch,
                moved = report.moves.moved,
                bytes = report.moves.bytes,
                waiting = report.moves.waiting,
                "rebalance pass done"
            );
        }
        end
    }
}
