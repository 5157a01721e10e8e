//! Scrub: the worker that walks every version, verifies every shard block against its
//! BLAKE3 hash, rebuilds what is missing or corrupt from the other shards, and reports
//! what it could not rebuild by bucket, key and version. It runs on a schedule (default
//! every 7 days) and on demand, at a bounded rate, with a checkpoint in the metadata store
//! (a pass killed midway resumes after the last key it finished), a status, and a clean
//! shutdown.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::alert::{Alert, Alerts};
use crate::background::runner::{Control, PassEnd, PassWorker, Throttle};
use crate::meta::{Record, VersionRecord};
use crate::store::Store;
use crate::types::{BucketName, ObjectKey, Timestamp};

const CHECKPOINT_KEY: &str = "worker.scrub.checkpoint";

/// A version scrub could not rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrepairable {
    /// The version's bucket.
    pub bucket: BucketName,
    /// The version's object key.
    pub key: ObjectKey,
    /// As clients name it (`null` or the id).
    pub version_id: String,
    /// The first stripe (counted within its segment) with fewer than K good blocks; 0 for
    /// an inline version whose bytes fail their hash.
    pub stripe: u64,
}

/// The counts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    /// When the pass began, on the retention clock (kept across a resume).
    pub started: Option<Timestamp>,
    /// When the pass finished, on the retention clock; `None` while it runs.
    pub finished: Option<Timestamp>,
    /// Versions checked, delete markers included.
    pub versions: u64,
    /// Shards that opened and matched their recorded root.
    pub shards_verified: u64,
    /// Bytes read and hashed: every good block (padding included) and inline objects.
    pub bytes_verified: u64,
    /// Shards not there to check: no file, an unreadable or offline disk, or never written
    /// (their disk failed during the PUT).
    pub missing: u64,
    /// Shards whose trailer, hash list or a block does not verify against the recorded root
    /// (a block that cannot be read counts too).
    pub corrupt: u64,
    /// Shards rebuilt, in place or on another disk.
    pub repaired: u64,
    /// Versions with a stripe below K good blocks: reported and alerted, never dropped.
    pub unrepairable: Vec<Unrepairable>,
    /// The pass continued one that was interrupted (by a crash or shutdown).
    pub resumed: bool,
    /// Keys handled before the interruption, when resumed.
    pub keys_before_resume: u64,
    /// Keys handled, all versions of each, counting those before a resume.
    pub keys: u64,
    /// Milliseconds the pass ran (since its resume, if it was resumed).
    pub duration_ms: u64,
    /// Shard files no version references, moved to `quarantine/` (never deleted).
    pub orphans_quarantined: u64,
}

/// Where an interrupted pass resumes, with what it had counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The bucket the pass was in; buckets before it are done.
    pub bucket: BucketName,
    /// The last key whose versions were all checked: the pass resumes after it.
    pub after: ObjectKey,
    /// The counts so far, carried into the resumed pass.
    pub report: ScrubReport,
}

impl Record for Checkpoint {
    const NAME: &'static str = "scrub-checkpoint";
    const FORMAT: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, crate::meta::MetaError>> {
        (version == 1).then(|| {
            postcard::from_bytes::<CheckpointV1>(body)
                .map(Checkpoint::from)
                .map_err(|e| crate::meta::MetaError::Decode {
                    record: Self::NAME,
                    message: e.to_string(),
                })
        })
    }
}

/// Format 1 of [`Checkpoint`]: before orphan counts.
#[derive(Deserialize)]
struct CheckpointV1 {
    bucket: BucketName,
    after: ObjectKey,
    report: ScrubReportV1,
}

#[derive(Deserialize)]
struct ScrubReportV1 {
    started: Option<Timestamp>,
    finished: Option<Timestamp>,
    versions: u64,
    shards_verified: u64,
    bytes_verified: u64,
    missing: u64,
    corrupt: u64,
    repaired: u64,
    unrepairable: Vec<Unrepairable>,
    resumed: bool,
    keys_before_resume: u64,
    keys: u64,
    duration_ms: u64,
}

impl From<CheckpointV1> for Checkpoint {
    fn from(c: CheckpointV1) -> Self {
        let r = c.report;
        Checkpoint {
            bucket: c.bucket,
            after: c.after,
            report: ScrubReport {
                started: r.started,
                finished: r.finished,
                versions: r.versions,
                shards_verified: r.shards_verified,
                bytes_verified: r.bytes_verified,
                missing: r.missing,
                corrupt: r.corrupt,
                repaired: r.repaired,
                unrepairable: r.unrepairable,
                resumed: r.resumed,
                keys_before_resume: r.keys_before_resume,
                keys: r.keys,
                duration_ms: r.duration_ms,
                orphans_quarantined: 0,
            },
        }
    }
}

/// Counts since the process started, across passes (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScrubTotals {
    /// As [`ScrubReport::shards_verified`].
    pub shards_verified: u64,
    /// As [`ScrubReport::bytes_verified`].
    pub bytes_verified: u64,
    /// As [`ScrubReport::missing`].
    pub missing: u64,
    /// As [`ScrubReport::corrupt`].
    pub corrupt: u64,
    /// As [`ScrubReport::repaired`].
    pub repaired: u64,
}

/// What the scrub worker is doing and has done, as `GET /v1/scrub` and `/metrics` show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrubStatus {
    /// Counts since the process started.
    pub totals: ScrubTotals,
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator: the pass is stopped at its checkpoint until resumed.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// The pass under way, with its counts so far.
    pub current: Option<ScrubReport>,
    /// The last pass that finished.
    pub last_pass: Option<ScrubReport>,
    /// Throttle: bytes verified per second.
    pub rate_bytes_per_sec: u32,
    /// Seconds from the end of one pass to the start of the next (`--scrub-interval`).
    pub interval_secs: u64,
    /// Passes that met an error and did not finish (each resumed from its checkpoint).
    pub failed_passes: u64,
    /// Why the last pass that ended failed; `None` when it finished.
    pub last_failure: Option<String>,
}

/// The scrub worker of one node: its passes run on [`runner::run`](super::runner::run).
pub struct ScrubWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    status: Mutex<ScrubStatus>,
    control: Control,
}

impl crate::background::runner::PassStatus for ScrubStatus {
    type Report = ScrubReport;
    fn last_report(&self) -> Option<ScrubReport> {
        self.last_pass.clone()
    }
    fn set_runner(&mut self, paused: bool, failed_passes: u64, last_failure: Option<String>) {
        self.paused = paused;
        self.failed_passes = failed_passes;
        self.last_failure = last_failure;
    }
}

impl ScrubWorker {
    /// A worker that starts a pass every `interval` and verifies at most
    /// `rate_bytes_per_sec` bytes a second (at least 1); `alerts` receives what it finds.
    pub fn new(
        store: Store,
        alerts: Option<Arc<Alerts>>,
        interval: Duration,
        rate_bytes_per_sec: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            status: Mutex::new(ScrubStatus {
                rate_bytes_per_sec: rate_bytes_per_sec.max(1),
                interval_secs: interval.as_secs(),
                ..Default::default()
            }),
            control: Control::default(),
        })
    }

    fn with_status<R>(&self, f: impl FnOnce(&mut ScrubStatus) -> R) -> R {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of the status, with the runner's pause state and failures.
    pub fn status(&self) -> ScrubStatus {
        crate::background::runner::read_status(&self.status, &self.control)
    }

    /// Starts a pass and waits for it to end: `None` at once while paused, its report if
    /// it finished, why not if it failed.
    pub async fn run_and_wait(&self) -> Option<Result<ScrubReport, String>> {
        crate::background::runner::run_and_report(&self.status, &self.control).await
    }

    fn raise(&self, alert: Alert) {
        if let Some(a) = &self.alerts {
            a.raise(alert);
        }
    }

    fn update(&self, f: impl FnOnce(&mut ScrubReport)) {
        self.with_status(|s| {
            if let Some(r) = s.current.as_mut() {
                f(r)
            }
        });
    }

    fn add_totals(&self, found: &crate::store::VersionScrub) {
        self.with_status(|s| {
            s.totals.shards_verified += found.shards_verified;
            s.totals.bytes_verified += found.bytes_verified;
            s.totals.missing += found.missing;
            s.totals.corrupt += found.corrupt;
            s.totals.repaired += found.repaired;
        });
    }

    /// One pass over every version.
    fn one_pass(&self, resume: Option<Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        let clock = Instant::now();
        let report = match &resume {
            Some(c) => ScrubReport {
                resumed: true,
                keys_before_resume: c.report.keys,
                ..c.report.clone()
            },
            None => ScrubReport {
                started: Some(self.store.retention_clock().now()),
                ..Default::default()
            },
        };
        if resume.is_some() {
            tracing::info!(keys_done = report.keys, "scrub resumes from its checkpoint");
        }
        self.with_status(|s| {
            s.running = true;
            s.current = Some(report);
        });
        // Read on the injected clock, like every time the store keeps.
        let pass_start = self.store.clock().now();
        let end = self.walk(resume.as_ref(), stop);
        let end = match end {
            PassEnd::Finished => {
                // Shard files older than the pass: a write in flight now is never taken. On
                // a cluster's member an hour older: another node's write in flight (whose
                // pending record only that node keeps) may wait on an election meanwhile.
                let margin: i64 = if self.store.config().spans_nodes {
                    3_600_000_000
                } else {
                    60_000_000
                };
                match self
                    .store
                    .quarantine_orphans(pass_start.plus_micros(-margin))
                {
                    Ok(n) => {
                        self.update(|r| r.orphans_quarantined = n);
                        PassEnd::Finished
                    }
                    Err(e) => PassEnd::Failed(format!("orphan check: {e}")),
                }
            }
            other => other,
        };
        let end = match end {
            PassEnd::Finished => match self.store.meta().node_delete(CHECKPOINT_KEY) {
                Ok(()) => PassEnd::Finished,
                Err(e) => PassEnd::Failed(format!("cannot clear the checkpoint: {e}")),
            },
            other => other,
        };
        let report = self.with_status(|s| {
            s.running = false;
            let mut r = s.current.take().unwrap_or_default();
            if end == PassEnd::Finished {
                r.finished = Some(self.store.retention_clock().now());
                r.duration_ms = clock.elapsed().as_millis() as u64;
                s.passes += 1;
                s.last_pass = Some(r.clone());
            }
            r
        });
        if end != PassEnd::Finished {
            return end;
        }
        self.raise(Alert::ScrubPassDone {
            versions: report.versions,
            shards_verified: report.shards_verified,
            missing: report.missing,
            corrupt: report.corrupt,
            repaired: report.repaired,
            unrepairable: report.unrepairable.len() as u64,
        });
        tracing::info!(
            shards = report.shards_verified,
            missing = report.missing,
            corrupt = report.corrupt,
            repaired = report.repaired,
            unrepairable = report.unrepairable.len(),
            "scrub pass done"
        );
        PassEnd::Finished
    }

    /// Every bucket from `resume` on.
    fn walk(&self, resume: Option<&Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        let rate = self.with_status(|s| s.rate_bytes_per_sec);
        let mut throttle = Throttle::new(rate);
        let buckets = match self.store.buckets() {
            Ok(b) => b,
            Err(e) => return PassEnd::Failed(format!("cannot list buckets: {e}")),
        };
        for b in buckets {
            if let Some(c) = resume
                && b.name < c.bucket
            {
                continue;
            }
            let after = resume
                .filter(|c| c.bucket == b.name)
                .map(|c| c.after.clone());
            match self.bucket_pass(&b.name, after, &mut throttle, stop) {
                PassEnd::Finished => {}
                other => return other,
            }
        }
        PassEnd::Finished
    }

    fn bucket_pass(
        &self,
        bucket: &BucketName,
        after: Option<ObjectKey>,
        throttle: &mut Throttle,
        stop: &watch::Receiver<bool>,
    ) -> PassEnd {
        let mut from = after;
        loop {
            let mut key: Option<ObjectKey> = None;
            let mut versions: Vec<VersionRecord> = Vec::new();
            let start = from.as_ref().map_or("", |k| k.as_str()).to_owned();
            let skip = from.clone();
            let scanned = self.store.meta().scan_versions(bucket, &start, |k, v| {
                if skip.as_ref() == Some(&k) {
                    return ControlFlow::Continue(());
                }
                match &key {
                    None => {
                        key = Some(k);
                        versions.push(v);
                        ControlFlow::Continue(())
                    }
                    Some(cur) if *cur == k => {
                        versions.push(v);
                        ControlFlow::Continue(())
                    }
                    Some(_) => ControlFlow::Break(()),
                }
            });
            if let Err(e) = scanned {
                return PassEnd::Failed(format!(
                    "cannot list the versions of bucket {bucket} after {start:?}: {e}"
                ));
            }
            let Some(k) = key else {
                return PassEnd::Finished;
            };
            // Another member checks the versions this one does not (scrub coordination).
            for v in versions.iter().filter(|v| self.store.scrubs(v)) {
                let found = match self.store.scrub_version(bucket, &k, v, true) {
                    Ok(f) => f,
                    Err(e) => {
                        return PassEnd::Failed(format!(
                            "cannot check {bucket}/{k} version {}: {e}",
                            v.version_ref()
                        ));
                    }
                };
                self.add_totals(&found);
                throttle.wait(found.bytes_verified.max(1));
                let version = v.version_ref().to_string();
                if found.missing + found.corrupt > 0 {
                    self.raise(Alert::CorruptionFound {
                        bucket: bucket.to_string(),
                        key: k.to_string(),
                        version: version.clone(),
                        missing: found.missing,
                        corrupt: found.corrupt,
                    });
                }
                if found.repaired > 0 {
                    self.raise(Alert::Repaired {
                        bucket: bucket.to_string(),
                        key: k.to_string(),
                        version: version.clone(),
                        shards: found.repaired,
                    });
                }
                if let Some(stripe) = found.unrepairable {
                    self.raise(Alert::Unrepairable {
                        bucket: bucket.to_string(),
                        key: k.to_string(),
                        version,
                        stripe,
                    });
                }
                self.update(|r| {
                    r.versions += 1;
                    r.shards_verified += found.shards_verified;
                    r.bytes_verified += found.bytes_verified;
                    r.missing += found.missing;
                    r.corrupt += found.corrupt;
                    r.repaired += found.repaired;
                    if let Some(stripe) = found.unrepairable {
                        r.unrepairable.push(Unrepairable {
                            bucket: bucket.clone(),
                            key: k.clone(),
                            version_id: v.version_ref().to_string(),
                            stripe,
                        });
                    }
                });
            }
            self.update(|r| r.keys += 1);
            let report = self.with_status(|s| s.current.clone().unwrap_or_default());
            let cp = Checkpoint {
                bucket: bucket.clone(),
                after: k.clone(),
                report,
            };
            if let Err(e) = cp
                .encode()
                .and_then(|b| self.store.meta().node_put(CHECKPOINT_KEY, b, false))
            {
                return PassEnd::Failed(format!("cannot save the checkpoint: {e}"));
            }
            if self.control.should_stop(stop) {
                return PassEnd::Stopped;
            }
            from = Some(k);
        }
    }
}

impl PassWorker for ScrubWorker {
    type Checkpoint = Checkpoint;

    fn name(&self) -> &'static str {
        "scrub"
    }

    fn control(&self) -> &Control {
        &self.control
    }

    fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_deref()
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.with_status(|s| s.interval_secs).max(1))
    }

    fn load_checkpoint(&self) -> Option<Checkpoint> {
        crate::background::runner::load_checkpoint(self.store.meta(), CHECKPOINT_KEY)
    }

    fn clear_checkpoint(&self) {
        if let Err(e) = self.store.meta().node_delete(CHECKPOINT_KEY) {
            tracing::warn!(error = %e, "scrub: cannot clear its checkpoint");
        }
    }

    fn pass(&self, resume: Option<Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        self.one_pass(resume, stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_of_formats_1_and_2_decode() {
        let c = Checkpoint {
            bucket: BucketName::new("bkt").expect("name"),
            after: ObjectKey::new("k").expect("key"),
            report: ScrubReport {
                versions: 5,
                ..Default::default()
            },
        };
        let bytes = c.encode().expect("encode");
        assert_eq!(bytes[0], 2);
        assert_eq!(Checkpoint::decode(&bytes).expect("decode"), c);
        // Format 1: bucket "bkt", after "k", a report of 5 versions and nothing else
        // (no orphan count).
        let v1 = [
            1, 3, b'b', b'k', b't', 1, b'k', // bucket, key
            0, 0, 5, 0, 0, 0, 0, 0, // started, finished, versions, shards..repaired
            0, 0, 0, 0, 0, // unrepairable, resumed, keys_before_resume, keys, duration
        ];
        assert_eq!(Checkpoint::decode(&v1).expect("decode v1"), c);
    }
}
