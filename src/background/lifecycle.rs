//! Lifecycle: the background worker that ages versions out by each bucket's rules (S3's
//! Expiration, NoncurrentVersionExpiration and AbortIncompleteMultipartUpload). It is how
//! backups expire on their own; it removes versions only through the store's one deletion
//! path, so it never removes a version under retention or legal hold, and it reads the
//! retention clock, so winding the wall clock forward ages nothing.
//!
//! The worker has a status, a throttle (versions examined per second), a checkpoint in the
//! metadata store (a pass killed midway resumes after the last key it finished), and a
//! clean shutdown.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::alert::Alerts;
use crate::background::runner::{Control, PassEnd, PassWorker, Throttle};
use crate::lock::retention::add_period;
use crate::meta::{
    LifecycleConfig, LifecycleRule, MetaError, Record, RetentionPeriod, VersionKind, VersionRecord,
};
use crate::store::{Store, StoreError};
use crate::types::{BucketName, ObjectKey, Timestamp};

const CHECKPOINT_KEY: &str = "worker.lifecycle.checkpoint";

/// What a rule does to one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The current version expired: add a delete marker (or, unversioned, remove it).
    Expire,
    /// Remove this version (noncurrent and expired, or a lone delete marker).
    Remove,
}

/// Whether `days` have passed since `t`, as S3 counts them: the moment is `t` plus the
/// days, rounded up to the next midnight UTC.
fn older_than(t: Timestamp, days: u32, now: Timestamp) -> bool {
    const DAY: i64 = 86_400_000_000;
    let end = add_period(t, RetentionPeriod::Days(days)).micros();
    let due = end.div_euclid(DAY) * DAY + if end.rem_euclid(DAY) == 0 { 0 } else { DAY };
    Timestamp::from_micros(due) <= now
}

/// The actions the rules ask for on one key's versions (newest first), at `now`: pairs of
/// (index into `versions`, action). Pure; whether the lock allows them is decided later.
pub fn decide(
    rules: &[LifecycleRule],
    key: &str,
    versions: &[VersionRecord],
    now: Timestamp,
) -> Vec<(usize, Action)> {
    let mut out: Vec<(usize, Action)> = Vec::new();
    for rule in rules
        .iter()
        .filter(|r| r.enabled && key.starts_with(&r.prefix))
    {
        let Some(current) = versions.first() else {
            continue;
        };
        if let Some(days) = rule.expiration_days
            && current.kind == VersionKind::Object
            && older_than(current.created, days, now)
        {
            out.push((0, Action::Expire));
        }
        if rule.expired_delete_markers
            && versions.len() == 1
            && current.kind == VersionKind::DeleteMarker
        {
            out.push((0, Action::Remove));
        }
        if let Some(days) = rule.noncurrent_days {
            let keep = rule.newer_noncurrent_versions.unwrap_or(0) as usize;
            for i in 1..versions.len() {
                // A version became noncurrent when the next newer one was created.
                let since = versions[i - 1].created;
                if i > keep && older_than(since, days, now) {
                    out.push((i, Action::Remove));
                }
            }
        }
    }
    out.sort_unstable_by_key(|(i, a)| (*i, matches!(a, Action::Remove)));
    out.dedup_by_key(|(i, _)| *i);
    out
}

/// Checks a configuration S3 would accept.
pub fn validate(config: &LifecycleConfig) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::InvalidLifecycle {
        reason: reason.to_owned(),
    };
    if config.rules.is_empty() || config.rules.len() > 1000 {
        return Err(bad("a configuration holds 1 to 1000 rules"));
    }
    for (i, r) in config.rules.iter().enumerate() {
        if r.id.len() > 255 {
            return Err(bad("a rule ID is at most 255 characters"));
        }
        if !r.id.is_empty() && config.rules[..i].iter().any(|o| o.id == r.id) {
            return Err(bad("rule IDs must be unique"));
        }
        let days = [r.expiration_days, r.noncurrent_days, r.abort_multipart_days];
        if days.iter().flatten().any(|&d| d == 0) {
            return Err(bad("'Days' must be a positive integer"));
        }
        if days.iter().all(Option::is_none) && !r.expired_delete_markers {
            return Err(bad("a rule needs at least one action"));
        }
        if r.newer_noncurrent_versions.is_some() && r.noncurrent_days.is_none() {
            return Err(bad("NewerNoncurrentVersions needs NoncurrentDays"));
        }
    }
    Ok(())
}

impl Store {
    /// GetBucketLifecycleConfiguration: the bucket's rules.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], [`StoreError::NoLifecycle`] if it has none, or a
    /// metadata error.
    pub fn lifecycle(&self, bucket: &BucketName) -> Result<LifecycleConfig, StoreError> {
        self.bucket(bucket)?;
        self.meta()
            .lifecycle(bucket)?
            .ok_or_else(|| StoreError::NoLifecycle {
                bucket: bucket.clone(),
            })
    }

    /// PutBucketLifecycleConfiguration (`Some`, checked by [`validate`] first) or
    /// DeleteBucketLifecycle (`None`). The next pass applies the new rules.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`] (also when the bucket goes meanwhile),
    /// [`StoreError::InvalidLifecycle`], or a metadata error.
    pub fn set_lifecycle(
        &self,
        bucket: &BucketName,
        config: Option<&LifecycleConfig>,
    ) -> Result<(), StoreError> {
        self.bucket(bucket)?;
        if let Some(c) = config {
            validate(c)?;
        }
        // Through the command log: every node of a cluster ages versions by the same
        // rules, and the change's audit leaf ("bucket-lifecycle-set", with the rules) is in
        // its batch.
        match self.propose(crate::command::MetaCommand::SetLifecycle {
            bucket: bucket.clone(),
            config: config.cloned(),
        })? {
            crate::command::Outcome::LifecycleSet(true) => Ok(()),
            crate::command::Outcome::LifecycleSet(false) => Err(StoreError::NoSuchBucket {
                bucket: bucket.clone(),
            }),
            other => Err(crate::command::unexpected(other).into()),
        }
    }
}

/// Where an interrupted pass resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// When the interrupted pass began (retention clock), so the resumed one reports it.
    pub started: Timestamp,
    /// The bucket the pass was in; buckets before it are done.
    pub bucket: BucketName,
    /// The last key whose versions were fully handled.
    pub after: Option<ObjectKey>,
}

impl Record for Checkpoint {
    const NAME: &'static str = "lifecycle-checkpoint";
    const FORMAT: u8 = 1;
}

/// The counts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// When the pass began, on the retention clock (kept across a resume).
    pub started: Option<Timestamp>,
    /// When the pass finished, on the retention clock; `None` while it runs.
    pub finished: Option<Timestamp>,
    /// Versions (delete markers included) of keys in buckets with rules.
    pub versions_examined: u64,
    /// Current versions expired by a delete marker (versioned buckets).
    pub delete_markers_added: u64,
    /// Versions removed: noncurrent ones, lone delete markers, current ones of
    /// unversioned buckets.
    pub versions_removed: u64,
    /// Versions the rules would remove but Object Lock protects.
    pub kept_locked: u64,
    /// Multipart uploads aborted by AbortIncompleteMultipartUpload.
    pub uploads_aborted: u64,
    /// Actions that failed for another reason than Object Lock (logged; the pass goes on).
    /// A metadata failure fails the pass instead.
    pub errors: u64,
}

/// What the lifecycle worker is doing and has done, as `GET /v1/lifecycle` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LifecycleStatus {
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator: the pass is stopped at its checkpoint until resumed.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// The pass under way, with its counts so far.
    pub current: Option<PassReport>,
    /// The last pass that finished.
    pub last_pass: Option<PassReport>,
    /// Throttle: versions examined per second.
    pub rate_limit: u32,
    /// Seconds from the end of one pass to the start of the next.
    pub interval_secs: u64,
    /// Passes that met an error and did not finish (each resumed from its checkpoint).
    pub failed_passes: u64,
    /// Why the last pass that ended failed; `None` when it finished.
    pub last_failure: Option<String>,
}

/// The lifecycle worker.
pub struct LifecycleWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    status: Mutex<LifecycleStatus>,
    control: Control,
}

impl crate::background::runner::PassStatus for LifecycleStatus {
    type Report = PassReport;
    fn last_report(&self) -> Option<PassReport> {
        self.last_pass.clone()
    }
    fn set_runner(&mut self, paused: bool, failed_passes: u64, last_failure: Option<String>) {
        self.paused = paused;
        self.failed_passes = failed_passes;
        self.last_failure = last_failure;
    }
}

impl LifecycleWorker {
    /// A worker that starts a pass every `interval` and examines at most `rate_limit`
    /// versions a second (at least 1).
    pub fn new(
        store: Store,
        alerts: Option<Arc<Alerts>>,
        interval: Duration,
        rate_limit: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            // What it removes is recorded as the node's lifecycle's doing.
            store: store.acting_for(crate::audit::Requester::node("lifecycle")),
            alerts,
            status: Mutex::new(LifecycleStatus {
                rate_limit: rate_limit.max(1),
                interval_secs: interval.as_secs(),
                ..Default::default()
            }),
            control: Control::default(),
        })
    }

    fn with_status<R>(&self, f: impl FnOnce(&mut LifecycleStatus) -> R) -> R {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of the status, with the runner's pause state and failures.
    pub fn status(&self) -> LifecycleStatus {
        crate::background::runner::read_status(&self.status, &self.control)
    }

    /// Starts a pass and waits for it to end: `None` at once while paused, its report if
    /// it finished, why not if it failed.
    pub async fn run_and_wait(&self) -> Option<Result<PassReport, String>> {
        crate::background::runner::run_and_report(&self.status, &self.control).await
    }

    fn load_checkpoint(&self) -> Option<Checkpoint> {
        crate::background::runner::load_checkpoint(self.store.meta(), CHECKPOINT_KEY)
    }

    fn save_checkpoint(&self, c: Option<&Checkpoint>) -> Result<(), MetaError> {
        match c {
            Some(c) => self
                .store
                .meta()
                .node_put(CHECKPOINT_KEY, c.encode()?, false),
            None => self.store.meta().node_delete(CHECKPOINT_KEY),
        }
    }

    /// One pass over every bucket with rules.
    fn one_pass(&self, resume: Option<Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        let now = self.store.retention_clock().readings().earliest;
        let started = resume.as_ref().map_or(now, |c| c.started);
        self.with_status(|s| {
            s.running = true;
            s.current = Some(PassReport {
                started: Some(started),
                ..Default::default()
            });
        });
        let mut end = self.walk(resume.as_ref(), started, now, stop);
        if end == PassEnd::Finished
            && let Err(e) = self.save_checkpoint(None)
        {
            end = PassEnd::Failed(format!("cannot clear the checkpoint: {e}"));
        }
        // Housekeeping of the node's own records: outcomes kept for retried Completes.
        let kept = crate::store::COMPLETED_KEPT.as_micros() as i64;
        if end == PassEnd::Finished
            && let Err(e) = self
                .store
                .meta()
                .forget_completed_uploads(self.store.clock().now().plus_micros(-kept))
        {
            end = PassEnd::Failed(format!("cannot forget old Complete outcomes: {e}"));
        }
        let report = self.with_status(|s| {
            s.running = false;
            let mut r = s.current.take().unwrap_or_default();
            if end == PassEnd::Finished {
                r.finished = Some(self.store.retention_clock().now());
                s.passes += 1;
                s.last_pass = Some(r.clone());
            }
            r
        });
        if end == PassEnd::Finished {
            tracing::info!(?report, "lifecycle pass done");
        }
        end
    }

    /// Every bucket with rules, from `resume` on.
    fn walk(
        &self,
        resume: Option<&Checkpoint>,
        started: Timestamp,
        now: Timestamp,
        stop: &watch::Receiver<bool>,
    ) -> PassEnd {
        let rate = self.with_status(|s| s.rate_limit);
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
            let config = match self.store.meta().lifecycle(&b.name) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    return PassEnd::Failed(format!(
                        "cannot read the lifecycle configuration of bucket {}: {e}",
                        b.name
                    ));
                }
            };
            let after = resume
                .filter(|c| c.bucket == b.name)
                .and_then(|c| c.after.clone());
            match self.bucket_pass(&b.name, &config, after, started, now, &mut throttle, stop) {
                PassEnd::Finished => {}
                other => return other,
            }
        }
        PassEnd::Finished
    }

    fn count(&self, f: impl FnOnce(&mut PassReport)) {
        self.with_status(|s| {
            if let Some(r) = s.current.as_mut() {
                f(r)
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn bucket_pass(
        &self,
        bucket: &BucketName,
        config: &LifecycleConfig,
        after: Option<ObjectKey>,
        started: Timestamp,
        now: Timestamp,
        throttle: &mut Throttle,
        stop: &watch::Receiver<bool>,
    ) -> PassEnd {
        let mut from = after.as_ref().map(|k| k.as_str().to_owned());
        loop {
            // One key at a time: its versions, then the next key.
            let mut key: Option<ObjectKey> = None;
            let mut versions: Vec<VersionRecord> = Vec::new();
            let start = from.clone().unwrap_or_default();
            let skip = from.clone();
            let scanned = self.store.meta().scan_versions(bucket, &start, |k, v| {
                if skip.as_deref() == Some(k.as_str()) {
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
            let Some(k) = key else { break };
            throttle.wait(versions.len() as u64);
            self.count(|r| r.versions_examined += versions.len() as u64);
            if let Err(e) = self.apply(bucket, &k, &config.rules, &versions, now) {
                return PassEnd::Failed(format!("{bucket}/{k}: {e}"));
            }
            let saved = self.save_checkpoint(Some(&Checkpoint {
                started,
                bucket: bucket.clone(),
                after: Some(k.clone()),
            }));
            if let Err(e) = saved {
                return PassEnd::Failed(format!("cannot save the checkpoint: {e}"));
            }
            // Another node may lead now: it runs the pass (a key at most is handled by
            // both, in the window openraft's metrics lag behind).
            if self.control.should_stop(stop) || !self.store.holds_lease() {
                return PassEnd::Stopped;
            }
            from = Some(k.as_str().to_owned());
        }
        match self.abort_uploads(bucket, &config.rules, now) {
            Ok(()) => PassEnd::Finished,
            Err(e) => PassEnd::Failed(format!("uploads of bucket {bucket}: {e}")),
        }
    }

    fn apply(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rules: &[LifecycleRule],
        versions: &[VersionRecord],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for (i, action) in decide(rules, key.as_str(), versions, now) {
            let v = &versions[i];
            let r = match action {
                Action::Expire => self
                    .store
                    .delete_object_blocking(
                        bucket,
                        key,
                        None,
                        false,
                        crate::meta::Origin::Lifecycle,
                        // Only over the version the rule expired: another node that
                        // expired it a moment before (the lease moving) added the marker.
                        &crate::meta::WriteCondition::Newest(v.version_id),
                    )
                    .map(|o| o.delete_marker),
                Action::Remove => self
                    .store
                    .remove_version(bucket, key, v, false)
                    .map(|()| false),
            };
            match r {
                Ok(true) => self.count(|r| r.delete_markers_added += 1),
                Ok(false) => self.count(|r| r.versions_removed += 1),
                Err(StoreError::Lock(_)) => self.count(|r| r.kept_locked += 1),
                // Expired already, or written over since the pass read the key.
                Err(StoreError::PreconditionFailed { .. } | StoreError::NoSuchKey { .. }) => {}
                // The metadata store failing is the pass failing, not one version's luck.
                Err(e @ StoreError::Meta(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(bucket = %bucket, key = %key, error = %e, "lifecycle action failed");
                    self.count(|r| r.errors += 1);
                }
            }
        }
        Ok(())
    }

    fn abort_uploads(
        &self,
        bucket: &BucketName,
        rules: &[LifecycleRule],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let uploads = self.store.list_uploads(bucket)?;
        for u in uploads {
            let due = rules.iter().any(|r| {
                r.enabled
                    && u.key.as_str().starts_with(&r.prefix)
                    && r.abort_multipart_days
                        .is_some_and(|d| older_than(u.created, d, now))
            });
            if due {
                match self
                    .store
                    .abort_multipart_upload(bucket, &u.key, &u.upload_id.to_string())
                {
                    Ok(()) => self.count(|r| r.uploads_aborted += 1),
                    Err(e @ StoreError::Meta(_)) => return Err(e),
                    Err(_) => self.count(|r| r.errors += 1),
                }
            }
        }
        Ok(())
    }
}

impl PassWorker for LifecycleWorker {
    type Checkpoint = Checkpoint;

    fn name(&self) -> &'static str {
        "lifecycle"
    }

    /// The rules are the cluster's, and every node holds every version: one node ages
    /// them out (two would each add a delete marker for one expiry).
    fn scope(&self) -> crate::background::runner::Scope {
        crate::background::runner::Scope::Cluster
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
        Duration::from_secs(self.with_status(|s| s.interval_secs).max(1))
    }

    fn load_checkpoint(&self) -> Option<Checkpoint> {
        LifecycleWorker::load_checkpoint(self)
    }

    fn clear_checkpoint(&self) {
        if let Err(e) = self.save_checkpoint(None) {
            tracing::warn!(error = %e, "lifecycle: cannot clear its checkpoint");
        }
    }

    fn pass(&self, resume: Option<Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd {
        self.one_pass(resume, stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::VersionId;

    const DAY: i64 = 86_400_000_000;
    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn v(days_ago_created: i64, kind: VersionKind, now: Timestamp) -> VersionRecord {
        let created = now.plus_micros(-days_ago_created * DAY);
        VersionRecord {
            version_id: VersionId::generate(created),
            created,
            kind,
            size: 0,
            etag: String::new(),
            content_type: None,
            user_meta: Vec::new(),
            checksums: Vec::new(),
            segments: Vec::new(),
            null_version: false,
            inline: false,
            composite_checksum: false,
            system: crate::meta::SystemMeta::default(),
            blake3: Vec::new(),
            origin: crate::meta::Origin::Client,
        }
    }

    fn rule() -> LifecycleRule {
        LifecycleRule {
            id: "r".into(),
            enabled: true,
            prefix: String::new(),
            expiration_days: None,
            expired_delete_markers: false,
            noncurrent_days: None,
            newer_noncurrent_versions: None,
            abort_multipart_days: None,
        }
    }

    #[test]
    fn expiration_applies_to_old_current_versions_only() {
        let r = LifecycleRule {
            expiration_days: Some(30),
            ..rule()
        };
        let old = [v(31, VersionKind::Object, T0)];
        let young = [v(29, VersionKind::Object, T0)];
        assert_eq!(
            decide(std::slice::from_ref(&r), "k", &old, T0),
            vec![(0, Action::Expire)]
        );
        assert!(decide(std::slice::from_ref(&r), "k", &young, T0).is_empty());
        let other = LifecycleRule {
            prefix: "logs/".into(),
            ..r
        };
        assert!(decide(&[other], "k", &old, T0).is_empty());
    }

    #[test]
    fn noncurrent_versions_expire_after_their_successor_keeping_the_newest() {
        let r = LifecycleRule {
            noncurrent_days: Some(10),
            newer_noncurrent_versions: Some(1),
            ..rule()
        };
        // Newest first: current (5 days), then versions superseded 5, 20, 40 days ago.
        let vs = [
            v(5, VersionKind::Object, T0),
            v(20, VersionKind::Object, T0),
            v(40, VersionKind::Object, T0),
            v(60, VersionKind::Object, T0),
        ];
        // Index 1, the newest noncurrent version, is kept by count; indexes 2 and 3 became
        // noncurrent 20 and 40 days ago (when 1 and 2 were written): removed.
        assert_eq!(
            decide(&[r], "k", &vs, T0),
            vec![(2, Action::Remove), (3, Action::Remove)]
        );
    }

    #[test]
    fn days_end_at_the_next_midnight_utc() {
        // 2027-01-15T10:00:00Z plus one day is due at 2027-01-17T00:00:00Z.
        let created = Timestamp::from_secs(1_800_007_200);
        let midnight = Timestamp::from_secs(1_800_144_000);
        assert!(!older_than(created, 1, midnight.plus_micros(-1)));
        assert!(older_than(created, 1, midnight));
        // Exactly at midnight already: no further rounding.
        assert!(older_than(Timestamp::from_secs(1_800_057_600), 1, midnight));
    }

    #[test]
    fn a_lone_expired_delete_marker_is_removed() {
        let r = LifecycleRule {
            expired_delete_markers: true,
            ..rule()
        };
        assert_eq!(
            decide(
                std::slice::from_ref(&r),
                "k",
                &[v(1, VersionKind::DeleteMarker, T0)],
                T0
            ),
            vec![(0, Action::Remove)]
        );
        let two = [
            v(1, VersionKind::DeleteMarker, T0),
            v(2, VersionKind::Object, T0),
        ];
        assert!(decide(&[r], "k", &two, T0).is_empty());
    }

    #[test]
    fn lifecycle_config_of_format_1_decodes() {
        let bytes = [1, 1, 1, b'r', 1, 0, 1, 1, 0, 0, 0, 0];
        let c = LifecycleConfig::decode(&bytes).expect("decode");
        assert_eq!(
            c.rules,
            vec![LifecycleRule {
                expiration_days: Some(1),
                ..rule()
            }]
        );
        assert_eq!(c.encode().expect("encode"), bytes);
    }

    #[test]
    fn checkpoint_of_format_1_decodes() {
        let c = Checkpoint {
            started: Timestamp(64),
            bucket: BucketName::new("bkt").expect("name"),
            after: Some(ObjectKey::new("k").expect("key")),
        };
        assert_eq!(
            c.encode().expect("encode"),
            vec![1, 0x80, 0x01, 3, b'b', b'k', b't', 1, 1, b'k']
        );
        assert_eq!(
            Checkpoint::decode(&[1, 0x80, 0x01, 3, b'b', b'k', b't', 1, 1, b'k']).expect("decode"),
            c
        );
    }

    /// A store on a manual clock at `T0` under `dir` with the versioned bucket `aging`.
    fn aging(dir: &std::path::Path) -> (Store, Arc<crate::clock::ManualClock>, BucketName) {
        let clock = Arc::new(crate::clock::ManualClock::new(T0));
        let store = Store::open_with(
            crate::config::NodeConfig::embedded(dir),
            clock.clone(),
            clock.clone(),
        )
        .expect("open");
        let bucket = BucketName::new("aging").expect("name");
        store.create_bucket(&bucket, false).expect("bucket");
        store
            .set_versioning(&bucket, crate::meta::Versioning::Enabled)
            .expect("versioning");
        (store, clock, bucket)
    }

    /// Puts a one-byte object under `key`.
    fn put_x(store: &Store, bucket: &BucketName, key: &str) {
        let key = ObjectKey::new(key).expect("key");
        let body = futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"x"))]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(store.put_object(bucket, &key, crate::store::PutOptions::default(), body))
            .expect("put");
    }

    /// A pass stopped midway (shutdown or crash) resumes after the last key it finished:
    /// every key is handled once across the two passes.
    #[test]
    fn an_interrupted_pass_resumes_from_its_checkpoint() {
        use crate::clock::Clock;
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, clock, bucket) = aging(dir.path());
        for i in 0..5 {
            put_x(&store, &bucket, &format!("k{i}"));
        }
        store
            .set_lifecycle(
                &bucket,
                Some(&LifecycleConfig {
                    rules: vec![LifecycleRule {
                        expiration_days: Some(1),
                        ..rule()
                    }],
                }),
            )
            .expect("lifecycle");
        clock.advance_micros(2 * DAY);
        let _ = clock.now();
        let (_tx, stopped) = watch::channel(true);
        let first = LifecycleWorker::new(store.clone(), None, Duration::from_secs(60), 1_000_000);
        assert_eq!(
            first.pass(None, &stopped),
            PassEnd::Stopped,
            "the pass stops after one key"
        );
        let cp = first.load_checkpoint().expect("checkpoint saved");
        assert_eq!(cp.after.as_ref().map(|k| k.as_str()), Some("k0"));
        // "Restart": a new worker picks the checkpoint up.
        let (_tx, running) = watch::channel(false);
        let second = LifecycleWorker::new(store.clone(), None, Duration::from_secs(60), 1_000_000);
        let resume = second.load_checkpoint();
        assert_eq!(second.pass(resume, &running), PassEnd::Finished);
        let report = second.status().last_pass.expect("report");
        assert_eq!(report.versions_examined, 4, "{report:?}");
        assert_eq!(report.delete_markers_added, 4, "{report:?}");
        assert!(
            second.load_checkpoint().is_none(),
            "a finished pass clears it"
        );
        // Every key got exactly one delete marker.
        let all = store.list_versions(&bucket, None, 100).expect("list");
        let markers = all
            .iter()
            .filter(|(_, v)| v.kind == VersionKind::DeleteMarker)
            .count();
        assert_eq!((all.len(), markers), (10, 5));
    }

    /// An expiry is conditional on the version the rule expired still being the newest:
    /// a second node that read the key before the first one's marker (the lease moving
    /// between them) adds none.
    #[test]
    fn an_expiry_adds_one_delete_marker_even_when_made_twice() {
        use crate::meta::{Origin, WriteCondition};
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _clock, bucket) = aging(dir.path());
        let key = ObjectKey::new("k").expect("key");
        put_x(&store, &bucket, "k");
        let all = store.list_versions(&bucket, None, 10).expect("list");
        let expired = all[0].1.version_id;
        let expire = || {
            store.delete_object_blocking(
                &bucket,
                &key,
                None,
                false,
                Origin::Lifecycle,
                &WriteCondition::Newest(expired),
            )
        };
        assert!(expire().expect("first expiry").delete_marker);
        assert!(matches!(
            expire(),
            Err(StoreError::PreconditionFailed { .. })
        ));
        let all = store.list_versions(&bucket, None, 10).expect("list");
        let markers = all
            .iter()
            .filter(|(_, v)| v.kind == VersionKind::DeleteMarker)
            .count();
        assert_eq!((all.len(), markers), (2, 1));
    }

    /// A pass that cannot read a bucket's lifecycle configuration (here: a record of a
    /// format this release does not know, as a newer release would write) fails and says
    /// why; it never reports a pass done, and after the record reads again the next pass
    /// resumes from the checkpoint.
    #[test]
    fn a_pass_that_meets_a_metadata_error_fails_and_resumes() {
        use crate::config::NodeConfig;
        use crate::store::PutOptions;
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(crate::clock::ManualClock::new(T0));
        let store = Store::open_with(
            NodeConfig::embedded(dir.path()),
            clock.clone(),
            clock.clone(),
        )
        .expect("open");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let config = LifecycleConfig {
            rules: vec![LifecycleRule {
                expiration_days: Some(1),
                ..rule()
            }],
        };
        for name in ["a-good", "b-unreadable"] {
            let bucket = BucketName::new(name).expect("name");
            store.create_bucket(&bucket, false).expect("bucket");
            let key = ObjectKey::new("k").expect("key");
            let body = futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"x"))]);
            rt.block_on(store.put_object(&bucket, &key, PutOptions::default(), body))
                .expect("put");
            store.set_lifecycle(&bucket, Some(&config)).expect("rules");
        }
        store
            .meta()
            .put_raw(
                crate::meta::Cf::Cluster,
                b"lifecycle/b-unreadable",
                &[99, 0],
            )
            .expect("plant");
        clock.advance_micros(2 * DAY);
        let (_tx, running) = watch::channel(false);
        let w = LifecycleWorker::new(store.clone(), None, Duration::from_secs(60), 1_000_000);
        let end = w.pass(None, &running);
        let PassEnd::Failed(reason) = end else {
            panic!("the pass must fail, not {end:?}");
        };
        assert!(reason.contains("b-unreadable"), "{reason}");
        let st = w.status();
        assert_eq!(
            (st.passes, st.last_pass),
            (0, None),
            "no pass reported done"
        );
        let cp = w.load_checkpoint().expect("checkpoint kept");
        assert_eq!(cp.bucket.as_str(), "a-good");
        let b = BucketName::new("b-unreadable").expect("name");
        store
            .set_lifecycle(&b, Some(&config))
            .expect("readable again");
        assert_eq!(w.pass(Some(cp), &running), PassEnd::Finished);
        let report = w.status().last_pass.expect("report");
        // Only b's key was left (unversioned: its expiry removes the null version).
        assert_eq!(
            (report.versions_examined, report.versions_removed),
            (1, 1),
            "{report:?}"
        );
    }
}
