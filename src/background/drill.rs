//! Restore drills and the repair queue: proving, on a schedule, that backups can be read
//! back (a random sample of versions read end to end through the read path, their bytes
//! checked against the stored MD5 and checksums), and draining the repair queue that reads
//! and writes feed.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;

use crate::alert::{Alert, Alerts};
use crate::background::runner::{Control, PassEnd, PassWorker, Scope};
use crate::checksum::{ChecksumHasher, Md5};
use crate::meta::{RepairReason, RepairRecord, VersionKind, VersionRecord};
use crate::store::{Store, StoreError, VersionRef};
use crate::types::{BucketName, ObjectKey, Timestamp};

/// One version a drill read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sampled {
    /// The version's bucket.
    pub bucket: String,
    /// The version's object key.
    pub key: String,
    /// As clients name it (`null` or the id).
    pub version: String,
    /// Bytes read back; 0 when the read failed.
    pub bytes: u64,
    /// `None` when the bytes came back whole and matched; else why not.
    pub failure: Option<String>,
}

/// What one drill read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    /// When the drill began, on the retention clock.
    pub started: Option<Timestamp>,
    /// When it ended, on the retention clock.
    pub finished: Option<Timestamp>,
    /// Object versions in every bucket (delete markers not counted): what the sample was
    /// drawn from.
    pub versions_total: u64,
    /// The versions read, in the order read.
    pub sample: Vec<Sampled>,
    /// Versions that came back whole and matched.
    pub passed: u64,
    /// Versions that did not (each one alerted).
    pub failed: u64,
    /// The drill could not draw its sample (the metadata store failed): it did not run,
    /// whatever `passed` says.
    pub error: Option<String>,
}

/// Reads `v` end to end and checks it against what was stored: the MD5 (single-part
/// objects) and every stored checksum that covers the whole object.
async fn read_back(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    v: &VersionRef,
) -> Result<u64, String> {
    let read = store
        .get_object(b, k, Some(v), None)
        .await
        .map_err(|e| e.to_string())?;
    let rec = read.record.clone();
    let mut md5 = Md5::default();
    let mut sums: Vec<ChecksumHasher> = if rec.composite_checksum {
        Vec::new()
    } else {
        rec.checksums
            .iter()
            .map(|c| ChecksumHasher::new(c.algorithm))
            .collect()
    };
    let mut n = 0u64;
    let mut body = read.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        md5.update(&chunk);
        for h in &mut sums {
            h.update(&chunk);
        }
        n += chunk.len() as u64;
    }
    if n != rec.size {
        return Err(format!("{n} bytes read, {} stored", rec.size));
    }
    if !rec.etag.contains('-') && hex::encode(md5.finish()) != rec.etag {
        return Err("MD5 does not match the ETag".into());
    }
    for h in sums {
        let got = h.finish();
        if !rec.checksums.contains(&got) {
            return Err(format!("{} checksum does not match", got.algorithm.name()));
        }
    }
    Ok(n)
}

type Pick = (BucketName, ObjectKey, VersionRef);

/// A uniform random sample (reservoir sampling) of up to `sample` object versions of every
/// bucket, and how many there are.
fn sample_versions(store: &Store, sample: usize) -> Result<(Vec<Pick>, u64), StoreError> {
    let mut chosen: Vec<Pick> = Vec::new();
    let mut seen = 0u64;
    let mut rng = rand::rng();
    for b in store.buckets()? {
        store.meta().scan_versions(&b.name, "", |k, v| {
            if v.kind == VersionKind::Object {
                seen += 1;
                let item = (b.name.clone(), k, v.version_ref());
                if chosen.len() < sample {
                    chosen.push(item);
                } else {
                    let j = rng.random_range(0..seen);
                    if (j as usize) < sample {
                        chosen[j as usize] = item;
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok((chosen, seen))
}

/// Runs one drill over a random sample of up to `sample` object versions.
pub async fn drill(store: &Store, alerts: Option<&Alerts>, sample: usize) -> DrillReport {
    let mut report = DrillReport {
        started: Some(store.retention_clock().now()),
        ..Default::default()
    };
    let (chosen, seen) = match sample_versions(store, sample) {
        Ok(s) => s,
        Err(e) => {
            let reason = format!("cannot draw the sample: {e}");
            // The runner counts and alerts the failed pass (`worker-pass-failed`).
            tracing::error!(%reason, "restore drill failed to run");
            report.error = Some(reason);
            report.finished = Some(store.retention_clock().now());
            return report;
        }
    };
    report.versions_total = seen;
    for (b, k, v) in chosen {
        let r = read_back(store, &b, &k, &v).await;
        let s = Sampled {
            bucket: b.to_string(),
            key: k.to_string(),
            version: v.to_string(),
            bytes: *r.as_ref().unwrap_or(&0),
            failure: r.err(),
        };
        if let Some(reason) = &s.failure {
            report.failed += 1;
            tracing::error!(bucket = %s.bucket, key = %s.key, version = %s.version, reason, "restore drill failed");
            if let Some(a) = alerts {
                a.raise(Alert::DrillFailed {
                    bucket: s.bucket.clone(),
                    key: s.key.clone(),
                    version: s.version.clone(),
                    reason: reason.clone(),
                });
            }
        } else {
            report.passed += 1;
        }
        report.sample.push(s);
    }
    report.finished = Some(store.retention_clock().now());
    tracing::info!(
        passed = report.passed,
        failed = report.failed,
        "restore drill done"
    );
    report
}

/// What the drill worker has done, as `GET /v1/drill` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillStatus {
    /// Drills that ran (drew their sample and read it back).
    pub drills: u64,
    /// Drills that could not run; each is retried after a backoff.
    pub failed_runs: u64,
    /// Why the last drill could not run; `None` once one runs.
    pub last_failure: Option<String>,
    /// The report of the last drill that ran.
    pub last: Option<DrillReport>,
    /// Versions a drill reads at most (`--drill-sample`).
    pub sample_size: usize,
    /// Seconds from the end of one drill to the start of the next (`--drill-interval`).
    pub interval_secs: u64,
}

/// Runs drills on a schedule and on demand, on the worker runner (`worker::run`): a drill
/// that cannot run is a failed pass (counted, alerted, retried after a backoff).
pub struct DrillWorker {
    store: Store,
    alerts: Arc<Alerts>,
    status: Mutex<DrillStatus>,
    control: Control,
    interval: Duration,
}

impl DrillWorker {
    /// A worker that reads a sample of up to `sample` versions every `interval` (at
    /// least a second), alerting every failure to `alerts`.
    pub fn new(store: Store, alerts: Arc<Alerts>, interval: Duration, sample: usize) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            status: Mutex::new(DrillStatus {
                sample_size: sample,
                interval_secs: interval.as_secs(),
                ..Default::default()
            }),
            control: Control::default(),
            interval: interval.max(Duration::from_secs(1)),
        })
    }

    /// A copy of the status.
    pub fn status(&self) -> DrillStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Runs a drill now and waits for it: its report, or why it could not run (or that
    /// the worker is paused).
    pub async fn run_and_wait(&self) -> Result<DrillReport, String> {
        match self.control.run_and_wait().await {
            None => Err(
                "the drill worker is paused, or stands by (another node holds the cluster's lease)"
                    .to_owned(),
            ),
            Some(Err(reason)) => Err(reason),
            Some(Ok(())) => Ok(self.status().last.unwrap_or_default()),
        }
    }
}

impl PassWorker for DrillWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "drill"
    }

    /// A drill proves the cluster's data can be read back: once per cluster.
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
        Some(&self.alerts)
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> PassEnd {
        let sample = self.status().sample_size;
        // The runner runs passes on blocking threads, inside the runtime.
        let report = match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.block_on(drill(&self.store, Some(&self.alerts), sample)),
            Err(e) => return PassEnd::Failed(format!("no runtime to read through: {e}")),
        };
        let Ok(mut s) = self.status.lock() else {
            return PassEnd::Failed("drill status poisoned".to_owned());
        };
        match report.error.clone() {
            Some(reason) => {
                s.failed_runs += 1;
                s.last_failure = Some(reason.clone());
                PassEnd::Failed(reason)
            }
            None => {
                s.drills += 1;
                s.last_failure = None;
                s.last = Some(report);
                PassEnd::Finished
            }
        }
    }
}

/// The repair queue's length and what the repair worker did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairStatus {
    /// Entries queued, due or not (several may name one segment).
    pub queue_length: u64,
    /// Entries in the queue whose last attempt failed.
    pub failing: u64,
    /// Entries handled (repaired, found healthy, or whose version is gone).
    pub handled: u64,
    /// Shards rebuilt since the process started.
    pub shards_rebuilt: u64,
    /// Shards of site-unsafe segments moved back to the site the layout places them in
    /// (copied, not decoded) since the process started.
    pub shards_moved: u64,
    /// Bytes acknowledged that would not survive losing one more site (the queue's
    /// site-unsafe entries; erasure coding across sites).
    pub site_unsafe_bytes: u64,
    /// Attempts that found a stripe with fewer than K good blocks (the entry stays queued).
    pub unrepairable: u64,
    /// Attempts that failed (each entry stays queued and is retried with backoff).
    pub failed_attempts: u64,
    /// The entries whose last attempt failed, oldest due first (at most 20).
    pub failing_entries: Vec<FailingRepair>,
    /// The last time the worker could not read or update the queue itself, and why
    /// (`None` once a drain went through).
    pub last_error: Option<String>,
}

/// A queued repair whose last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingRepair {
    /// The version's bucket.
    pub bucket: String,
    /// The version's object key.
    pub key: String,
    /// The version id (32 hex digits).
    pub version: String,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the entry is due again, on the store's clock.
    pub next_attempt: Timestamp,
}

/// Drains the repair queue: each entry's version is verified and its bad shards rebuilt.
/// An entry leaves the queue only when its version is whole again (or gone); a failed
/// attempt stays queued, pushed back by a doubling backoff from the worker's interval up
/// to an hour, counted, and alerted at its 3rd failure and every 10th after.
pub struct RepairWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    every: Duration,
    /// How long an old copy of a shard moved back to its site is kept (as the
    /// rebalancer's `--rebalance-grace`).
    move_grace: Duration,
    /// How long site-unsafe bytes may stay non-zero before [`Alert::SiteUnsafe`].
    site_unsafe_alert: Duration,
    /// Since when (store clock) this node has seen site-unsafe bytes, and whether that
    /// episode was alerted.
    site_unsafe_since: Mutex<Option<(Timestamp, bool)>>,
    status: Mutex<RepairStatus>,
    control: Control,
}

/// How long after its `attempts`th failure an entry is tried again.
fn retry_after(attempts: u32, every: Duration) -> Duration {
    let base = every.max(Duration::from_secs(1));
    base.saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(Duration::from_secs(3600))
}

impl RepairWorker {
    /// A worker that drains what is due every `every` (`--repair-interval`, at least a
    /// second), which is also the first wait after a failed attempt. Shards of a
    /// site-unsafe segment it moves back to their site keep their old copy `move_grace`;
    /// site-unsafe bytes waiting longer than `site_unsafe_alert` raise an alert.
    pub fn new(
        store: Store,
        alerts: Option<Arc<Alerts>>,
        every: Duration,
        move_grace: Duration,
        site_unsafe_alert: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            every,
            move_grace,
            site_unsafe_alert,
            site_unsafe_since: Mutex::new(None),
            status: Mutex::new(RepairStatus::default()),
            control: Control::default(),
        })
    }

    /// What the worker did, and the queue as it is now (a scan of the queue, on the
    /// blocking pool).
    ///
    /// # Errors
    /// The queue cannot be read ([`StoreError::Meta`]): no length is made up then.
    pub async fn status(self: &Arc<Self>) -> Result<RepairStatus, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.status_blocking()).await?
    }

    /// [`RepairWorker::status`] on the calling thread.
    pub(crate) fn status_blocking(&self) -> Result<RepairStatus, StoreError> {
        let mut st = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let queue = self.store.repair_queue(100_000)?;
        st.queue_length = queue.len() as u64;
        // The kept count, not the scan: the scan stops at 100,000 entries.
        st.site_unsafe_bytes = self.store.meta().queue_lengths()?.site_unsafe_bytes;
        let failing: Vec<&RepairRecord> = queue.iter().filter(|e| e.attempts > 0).collect();
        st.failing = failing.len() as u64;
        st.failing_entries = failing
            .iter()
            .take(20)
            .map(|e| FailingRepair {
                bucket: e.bucket.to_string(),
                key: e.key.to_string(),
                version: e.version_id.to_string(),
                attempts: e.attempts,
                last_error: e.last_error.clone(),
                next_attempt: e.due,
            })
            .collect();
        Ok(st)
    }

    /// What the worker did, and the queue's lengths as kept at commit time (no scan: for
    /// `/metrics`; a point read, fine on an async thread). `failing` is `None` while an
    /// entry cannot be decoded.
    ///
    /// # Errors
    /// The first count of the queue ([`StoreError::Meta`]).
    pub fn totals(&self) -> Result<(RepairStatus, Option<u64>), StoreError> {
        let mut st = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let q = self.store.meta().queue_lengths()?;
        st.queue_length = q.repair;
        st.failing = q.repair_failing;
        st.site_unsafe_bytes = q.site_unsafe_bytes;
        let failing = (q.repair_unreadable == 0).then_some(q.repair_failing);
        Ok((st, failing))
    }

    /// Raises [`Alert::SiteUnsafe`] once site-unsafe bytes have stayed non-zero longer
    /// than the threshold (once per episode: zero ends it).
    pub(crate) fn watch_site_unsafe(&self) {
        let Ok(q) = self.store.meta().queue_lengths() else {
            return;
        };
        let now = self.store.clock().now();
        let Ok(mut since) = self.site_unsafe_since.lock() else {
            return;
        };
        if q.site_unsafe_bytes == 0 {
            *since = None;
            return;
        }
        let (start, alerted) = since.get_or_insert((now, false));
        let waited = Duration::from_micros(now.0.saturating_sub(start.0).max(0) as u64);
        // Every node holds the entries; the lease holder speaks for the cluster.
        if !*alerted && waited >= self.site_unsafe_alert && self.store.holds_lease() {
            *alerted = true;
            if let Some(a) = &self.alerts {
                a.raise(Alert::SiteUnsafe {
                    bytes: q.site_unsafe_bytes,
                    since_secs: waited.as_secs(),
                });
            }
        }
    }

    fn note_error(&self, error: Option<String>) {
        if let Ok(mut s) = self.status.lock() {
            s.last_error = error;
        }
    }

    /// One attempt at the entries of one segment: `Ok` when the version is whole again
    /// (or gone) and, for a site-unsafe entry, would survive losing any site.
    fn attempt(&self, group: &[RepairRecord]) -> Result<(), Retry> {
        let e = &group[0];
        let v = match self.store.meta().version(&e.bucket, &e.key, &e.version_id) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(()),
            Err(err) => return Err(Retry::Failed(format!("cannot read the version: {err}"))),
        };
        let site_unsafe = group
            .iter()
            .any(|e| matches!(e.reason, RepairReason::SiteUnsafe { .. }));
        if site_unsafe {
            let Some(seg) = v.segments.iter().find(|s| s.id == e.segment) else {
                return Ok(());
            };
            let settled = || {
                self.store
                    .geo_settled(seg)
                    .map_err(|err| Retry::Failed(format!("cannot read the shards' places: {err}")))
            };
            if settled()? {
                // Paid: the other entries merged with it (a read's) still get their check.
                if group
                    .iter()
                    .all(|e| matches!(e.reason, RepairReason::SiteUnsafe { .. }))
                {
                    return Ok(());
                }
            } else {
                // Nothing is read while a site is down (its shards cannot move back), nor
                // on a node that does not hold the lease (it waits for the record to show
                // the debt paid): a cheap check of the metadata per drain.
                if self.store.a_site_is_down() || !self.store.holds_lease() {
                    return Err(Retry::Waiting(
                        "the segment would not survive losing a site yet: its shards wait \
                         for their site (moved back by the lease holder)"
                            .into(),
                    ));
                }
                self.scrub_and_rebuild(e, &v)?;
                return self.move_back(e, &v, seg, &settled);
            }
        }
        self.scrub_and_rebuild(e, &v)
    }

    /// Verifies every shard of `v` and rebuilds the bad or missing ones: `Ok` when whole.
    fn scrub_and_rebuild(&self, e: &RepairRecord, v: &VersionRecord) -> Result<(), Retry> {
        let found = self
            .store
            .scrub_version(&e.bucket, &e.key, v, true)
            .map_err(|err| Retry::Failed(err.to_string()))?;
        if let Ok(mut s) = self.status.lock() {
            s.shards_rebuilt += found.repaired;
            s.unrepairable += u64::from(found.unrepairable.is_some());
        }
        if let Some(stripe) = found.unrepairable {
            return Err(Retry::Failed(format!(
                "stripe {stripe} has fewer good shards than it needs to be rebuilt"
            )));
        }
        if let Some(err) = found.repair_error {
            return Err(Retry::Failed(format!("rebuild failed: {err}")));
        }
        if found.waiting > 0 {
            return Err(Retry::Waiting(format!(
                "{} shard(s) wait for their node to return (or for the grace period to end)",
                found.waiting
            )));
        }
        Ok(())
    }

    /// Moves the shards of a site-unsafe segment to the disks the layout places them on
    /// (placement debt: copied, not decoded; `Store::rebalance_version`), on the lease
    /// holder; `Ok` once the debt is paid.
    fn move_back(
        &self,
        e: &RepairRecord,
        v: &VersionRecord,
        seg: &crate::meta::SegmentRecord,
        settled: &dyn Fn() -> Result<bool, Retry>,
    ) -> Result<(), Retry> {
        let moves = self
            .store
            .rebalance_version(&e.bucket, &e.key, v, self.move_grace, &mut |_| {})
            .map_err(|err| Retry::Failed(format!("moving shards back failed: {err}")))?;
        if let Ok(mut s) = self.status.lock() {
            s.shards_moved += moves.moved;
        }
        if settled()? {
            return Ok(());
        }
        Err(Retry::Waiting(format!(
            "segment {}: {} shard(s) still off the sites the layout places them in, or it \
             would not survive losing a site under this layout",
            seg.id, moves.waiting
        )))
    }

    /// Handles the segments with an entry due now; returns how many. Several reads of one
    /// bad version queue several entries: they are handled, and merged, as one.
    pub fn drain(&self) -> usize {
        self.drain_until(&|| false)
    }

    /// [`RepairWorker::drain`], stopping before the next segment once `stop` says so.
    fn drain_until(&self, stop: &dyn Fn() -> bool) -> usize {
        let now = self.store.clock().now();
        let entries = match self.store.repair_queue(1000) {
            Ok(q) => q,
            Err(err) => {
                tracing::error!(error = %err, "repair: cannot read the queue");
                self.note_error(Some(format!("cannot read the queue: {err}")));
                return 0;
            }
        };
        self.note_error(None);
        let mut segments: Vec<Vec<RepairRecord>> = Vec::new();
        for e in entries {
            match segments.iter_mut().find(|g| g[0].segment == e.segment) {
                Some(g) => g.push(e),
                None => segments.push(vec![e]),
            }
        }
        let mut handled = 0;
        for group in segments.iter().filter(|g| g.iter().any(|e| e.due <= now)) {
            if stop() {
                break;
            }
            handled += 1;
            match self.attempt(group) {
                Ok(()) => {
                    for e in group {
                        if let Err(err) = self.store.meta().dequeue_repair(e) {
                            tracing::warn!(error = %err, "repair: cannot dequeue");
                        }
                    }
                    if let Ok(mut s) = self.status.lock() {
                        s.handled += 1;
                    }
                }
                Err(reason) => self.failed(group, reason, now),
            }
        }
        handled
    }

    /// Replaces the entries of one segment by one, pushed back after its failure (by a
    /// doubling backoff), or to the next drain while its shards wait for their node.
    fn failed(&self, group: &[RepairRecord], retry: Retry, now: Timestamp) {
        let e = &group[0];
        let (reason, failed) = match retry {
            Retry::Failed(r) => (r, true),
            Retry::Waiting(r) => (r, false),
        };
        let most = group.iter().map(|e| e.attempts).max().unwrap_or(0);
        let attempts = if failed { most.saturating_add(1) } else { most };
        let wait = if failed {
            retry_after(attempts, self.every)
        } else {
            self.every
        };
        if !failed {
            tracing::info!(bucket = %e.bucket, key = %e.key, version = %e.version_id, %reason, "repair waits");
        } else {
            tracing::warn!(bucket = %e.bucket, key = %e.key, version = %e.version_id, attempts, %reason, "repair attempt failed; retried later");
        }
        let mut shards: Vec<u16> = group
            .iter()
            .flat_map(|e| e.shards.iter().copied())
            .collect();
        shards.sort_unstable();
        shards.dedup();
        // A site-unsafe entry stays one (its bytes counted) whatever it merges with.
        let kind = group
            .iter()
            .map(|e| e.reason)
            .find(|r| matches!(r, RepairReason::SiteUnsafe { .. }))
            .unwrap_or(e.reason);
        let next = RepairRecord {
            shards,
            reason: kind,
            queued: group.iter().map(|e| e.queued).min().unwrap_or(e.queued),
            attempts,
            last_error: Some(reason.clone()),
            due: now.plus_micros(wait.as_micros() as i64),
            ..e.clone()
        };
        if let Err(err) = self.store.meta().requeue_repair(group, &next) {
            tracing::error!(error = %err, "repair: cannot requeue a failed attempt");
            self.note_error(Some(format!("cannot requeue a failed attempt: {err}")));
        }
        if !failed {
            return;
        }
        // The alert before the count: whoever sees the count sees the alert queued too.
        if (attempts == 3 || (attempts > 3 && attempts.is_multiple_of(10)))
            && let Some(a) = &self.alerts
        {
            a.raise(Alert::RepairFailing {
                bucket: e.bucket.to_string(),
                key: e.key.to_string(),
                version: e.version_id.to_string(),
                attempts,
                error: reason,
            });
        }
        if let Ok(mut s) = self.status.lock() {
            s.failed_attempts += 1;
        }
    }
}

/// Why a repair is tried again later.
enum Retry {
    /// The attempt failed: backoff, counted, alerted after a few.
    Failed(String),
    /// Shards wait for their node ([`crate::store::NODE_GRACE`]): the next drain.
    Waiting(String),
}

impl PassWorker for RepairWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "repair"
    }

    fn control(&self) -> &Control {
        &self.control
    }

    fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_deref()
    }

    fn interval(&self) -> Duration {
        self.every.max(Duration::from_secs(1))
    }

    /// What a crash left queued is drained at start.
    fn pass_at_start(&self) -> bool {
        true
    }

    /// Drains what is due. A queue that cannot be read or updated fails the pass; a
    /// repair that fails does not (its entry stays queued with its own backoff).
    fn pass(&self, _: Option<()>, stop: &watch::Receiver<bool>) -> PassEnd {
        self.drain_until(&|| self.control.should_stop(stop));
        if self.control.should_stop(stop) {
            return PassEnd::Stopped;
        }
        self.watch_site_unsafe();
        // This node's old copies of shards the rebalancer moved, once their grace ended
        // (queued here whoever holds the lease now).
        if let Err(e) = self.store.remove_old_copies(self.store.clock().now()) {
            return PassEnd::Failed(format!("removing old shard copies: {e}"));
        }
        match self.status.lock().ok().and_then(|s| s.last_error.clone()) {
            Some(reason) => PassEnd::Failed(reason),
            None => PassEnd::Finished,
        }
    }
}
