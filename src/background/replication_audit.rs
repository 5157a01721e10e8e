//! The replication audit: a scheduled pass that asks each peer, version by version,
//! whether it holds what it acknowledged, and names what it lost or holds differently
//! (`sites.md` §4.6, the audit half). Missing versions are queued again as backfill
//! entries (the sender sends them; a resync without the operator); a version the peer
//! holds with other bytes is named and alerted, never overwritten (the receiver would
//! refuse it anyway).
//!
//! Only versions this peer acknowledged are checked (`log::acknowledged_by`): a version
//! still in the log, or never selected by a rule, is not expected there yet. One rule at a
//! time, in key order, from a checkpoint (its report, in the node family), throttled to
//! [`PROBES_PER_SEC`] questions a second. A rule is due when its last audit finished a
//! period ago (so restarts neither skip nor repeat one), when one was cut short, or on
//! request ([`AuditWorker::request`]); the worker looks every minute. A peer that cannot
//! be asked is noted in its rule's report and the others go on.
//!
//! Not yet: digests of key ranges, which would spare one HEAD per version when a range
//! matches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::alert::{Alert, Alerts};
use crate::background::backfill::{QUEUE_CAP, walk_rule};
use crate::background::replication::{Held, Transport};
use crate::background::runner::{Control, PassEnd, PassWorker};
use crate::meta::{MetaError, Origin, Record, VersionKind};
use crate::replication::log::{EntryClass, LogEntry, LogOp};
use crate::replication::{ReplicationChange, ReplicationRule};
use crate::store::Store;
use crate::types::{BucketName, ObjectKey, Timestamp, VersionId};

/// Questions to a peer per second, at most.
pub const PROBES_PER_SEC: u32 = 200;
/// Versions looked at per batch (one checkpoint each).
const BATCH: usize = 128;
/// Versions named per report, at most (the counts go on).
pub const NAMED_MAX: usize = 100;

/// How the peer holds a version the audit asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finding {
    /// Not there: queued again.
    Missing,
    /// There with another ETag or size: named and alerted.
    Mismatched,
}

/// One rule's audit: where the pass is, what it found, when it last finished. Under
/// `replication.audit/<bucket>/<rule id>` in the node family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The source bucket.
    pub bucket: String,
    /// The rule's id.
    pub rule: String,
    /// The peer.
    pub peer: String,
    /// When the pass in progress (or the last) began.
    pub started: Option<Timestamp>,
    /// When the last pass finished; `None` while the first goes on.
    pub finished: Option<Timestamp>,
    /// The last version looked at by the pass in progress; `None` between passes.
    pub after: Option<(ObjectKey, VersionId)>,
    /// Versions asked about in the pass (in progress, or the last).
    pub checked: u64,
    /// Of them, not on the peer (queued again).
    pub missing: u64,
    /// Of them, on the peer with another ETag or size.
    pub mismatched: u64,
    /// The first [`NAMED_MAX`] found: key, version id, finding.
    pub named: Vec<(ObjectKey, VersionId, Finding)>,
    /// Why the last pass over the rule stopped short, if it did.
    pub error: Option<String>,
}

impl Record for AuditReport {
    const NAME: &'static str = "replication-audit";
    const FORMAT: u8 = 1;
}

fn report_key(bucket: &BucketName, rule: &str) -> String {
    format!("replication.audit/{bucket}/{rule}")
}

/// Every rule's audit report, as kept (rules never audited have none).
///
/// # Errors
/// A metadata read.
pub fn reports(meta: &crate::meta::Meta) -> Result<Vec<AuditReport>, MetaError> {
    let mut out = Vec::new();
    for (bucket, cfg) in crate::replication::all_rules(meta)? {
        for r in &cfg.rules {
            if let Some(rep) =
                crate::background::runner::load_checkpoint(meta, &report_key(&bucket, &r.id))
            {
                out.push(rep);
            }
        }
    }
    Ok(out)
}

/// A peer's transport by its name (the running senders'), `None` when it has none.
pub type TransportOf = Arc<dyn Fn(&str) -> Option<Arc<dyn Transport>> + Send + Sync>;

/// How often the worker looks for due rules.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// The replication audit worker.
pub struct AuditWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    control: Control,
    period: Duration,
    transports: TransportOf,
    runtime: tokio::runtime::Handle,
    requested: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AuditWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditWorker")
    }
}

impl AuditWorker {
    /// A worker that audits every rule once a `period`, asking peers through
    /// `transports`, their futures run on `runtime`.
    pub fn new(
        store: Store,
        alerts: Option<Arc<Alerts>>,
        period: Duration,
        transports: TransportOf,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            store,
            alerts,
            control: Control::default(),
            period,
            transports,
            runtime,
            requested: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Audits every rule now, due or not.
    pub fn request(&self) {
        self.requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.control.run_now();
    }

    /// Whether `rule`'s audit is due: never done, cut short, a period old, or requested.
    fn due(&self, last: Option<&AuditReport>, forced: bool, now: Timestamp) -> bool {
        let Some(r) = last else { return true };
        if forced || r.after.is_some() {
            return true;
        }
        #[allow(clippy::cast_possible_truncation)]
        let period = self.period.as_micros() as i64;
        r.finished.is_none_or(|f| now.0 - f.0 >= period)
    }

    fn load(&self, bucket: &BucketName, rule: &str) -> Option<AuditReport> {
        crate::background::runner::load_checkpoint(self.store.meta(), &report_key(bucket, rule))
    }

    fn save(&self, bucket: &BucketName, rep: &AuditReport) -> Result<(), MetaError> {
        self.store
            .meta()
            .node_put(&report_key(bucket, &rep.rule), rep.encode()?, true)
    }

    fn one_pass(&self, stop: &watch::Receiver<bool>) -> PassEnd {
        let forced = self
            .requested
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        let rules = match crate::replication::all_rules(self.store.meta()) {
            Ok(r) => r,
            Err(e) => return PassEnd::Failed(e.to_string()),
        };
        let now = self.store.clock().now();
        let mut failed = Vec::new();
        for (bucket, cfg) in rules {
            for rule in cfg.rules.iter().filter(|r| r.enabled) {
                if !self.due(self.load(&bucket, &rule.id).as_ref(), forced, now) {
                    continue;
                }
                match self.audit_rule(&bucket, rule, stop) {
                    Ok(true) => {}
                    Ok(false) => return PassEnd::Stopped,
                    Err(e) => {
                        // Noted in the rule's report; the other rules go on.
                        if let Some(mut r) = self.load(&bucket, &rule.id) {
                            r.error = Some(e.clone());
                            let _ = self.save(&bucket, &r);
                        }
                        failed.push(format!("{bucket}/{}: {e}", rule.id));
                    }
                }
            }
        }
        if failed.is_empty() {
            PassEnd::Finished
        } else {
            PassEnd::Failed(failed.join("; "))
        }
    }

    /// Audits one rule to its end (from its checkpoint); `Ok(false)` when stopped first.
    fn audit_rule(
        &self,
        bucket: &BucketName,
        rule: &ReplicationRule,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let meta = self.store.meta();
        let Some(peer) = crate::replication::peer(meta, &rule.peer).map_err(|e| e.to_string())?
        else {
            return Ok(true);
        };
        let Some(transport) = (self.transports)(&rule.peer) else {
            return Err(format!("no sender runs for peer {}", rule.peer));
        };
        // A target the peer cannot show would make every version look missing.
        self.runtime
            .block_on(transport.bucket(&rule.target_bucket))
            .map_err(|e| format!("peer {}: {e}", rule.peer))?;
        let now = self.store.clock().now();
        let last = self.load(bucket, &rule.id);
        let alerted = last
            .as_ref()
            .filter(|l| l.after.is_none())
            .map_or(0, |l| l.mismatched);
        let mut rep = match last {
            // A pass cut short goes on where it was.
            Some(r) if r.after.is_some() && r.peer == rule.peer => r,
            last => AuditReport {
                bucket: bucket.to_string(),
                rule: rule.id.clone(),
                peer: rule.peer.clone(),
                started: Some(now),
                finished: last.and_then(|l| l.finished),
                ..AuditReport::default()
            },
        };
        rep.error = None;
        loop {
            if self.control.should_stop(stop) {
                return Ok(false);
            }
            let (batch, last, ended) =
                self.next_batch(bucket, rule, peer.id, rep.after.as_ref())?;
            let mut requeue = Vec::new();
            for (key, vid, etag, size) in batch {
                let began = Instant::now();
                let held = self
                    .runtime
                    .block_on(transport.has_version(&rule.target_bucket, &key, vid, &etag, size))
                    .map_err(|e| format!("asking peer {}: {e}", rule.peer))?;
                rep.checked += 1;
                let finding = match held {
                    Held::Same => None,
                    Held::Missing => Some(Finding::Missing),
                    Held::Other => Some(Finding::Mismatched),
                };
                if let Some(f) = finding {
                    match f {
                        Finding::Missing => rep.missing += 1,
                        Finding::Mismatched => rep.mismatched += 1,
                    }
                    if rep.named.len() < NAMED_MAX {
                        rep.named.push((key.clone(), vid, f));
                    }
                    tracing::warn!(%bucket, %key, version = %vid, peer = %rule.peer, finding = ?f, "replication audit");
                }
                if finding == Some(Finding::Missing) {
                    requeue.push(LogEntry {
                        op: LogOp::Version,
                        bucket: bucket.clone(),
                        key,
                        version_id: vid,
                        target: rule.target_bucket.clone(),
                        size,
                        enqueued_at: now,
                        class: EntryClass::Backfill,
                        rule: rule.id.clone(),
                    });
                }
                // The throttle: at most PROBES_PER_SEC questions a second.
                let least = Duration::from_secs(1) / PROBES_PER_SEC;
                if let Some(rest) = least.checked_sub(began.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            if !requeue.is_empty() {
                // Wait for the sender rather than fill the log.
                while crate::replication::log::backfill_waiting(meta, peer.id, QUEUE_CAP)
                    .map_err(|e| e.to_string())?
                    >= QUEUE_CAP
                {
                    if self.control.should_stop(stop) {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                self.store
                    .change_replication(ReplicationChange::Backfill {
                        peer: peer.id,
                        entries: requeue,
                    })
                    .map_err(|e| e.to_string())?;
            }
            if last.is_some() {
                rep.after = last;
            }
            if ended {
                rep.after = None;
                rep.finished = Some(self.store.clock().now());
                tracing::info!(%bucket, rule = %rule.id, peer = %rule.peer, checked = rep.checked,
                    missing = rep.missing, mismatched = rep.mismatched, "replication audit done");
                // Missing versions are sent again, so each is news; a mismatch stays
                // until an administrator acts: alerted when there are more than before.
                if (rep.missing > 0 || rep.mismatched > alerted)
                    && let Some(a) = &self.alerts
                {
                    a.raise(Alert::ReplicationAudit {
                        peer: rule.peer.clone(),
                        bucket: bucket.to_string(),
                        checked: rep.checked,
                        missing: rep.missing,
                        mismatched: rep.mismatched,
                    });
                }
            }
            self.save(bucket, &rep).map_err(|e| e.to_string())?;
            if ended {
                return Ok(true);
            }
        }
    }

    /// The next versions after `after` that `rule` selects and the peer acknowledged:
    /// (key, version id, ETag, size), the last version looked at, whether the keys
    /// ended.
    #[allow(clippy::type_complexity)]
    fn next_batch(
        &self,
        bucket: &BucketName,
        rule: &ReplicationRule,
        peer: u32,
        after: Option<&(ObjectKey, VersionId)>,
    ) -> Result<
        (
            Vec<(ObjectKey, VersionId, String, u64)>,
            Option<(ObjectKey, VersionId)>,
            bool,
        ),
        String,
    > {
        let meta = self.store.meta();
        let mut out = Vec::new();
        let (last, ended) = walk_rule(meta, bucket, &rule.prefix, after, BATCH, |key, v| {
            if v.kind == VersionKind::Object
                && v.origin == Origin::Client
                && crate::replication::log::acknowledged_by(meta, bucket, key, &v.version_id, peer)?
            {
                out.push((key.clone(), v.version_id, v.etag.clone(), v.size));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((out, last, ended))
    }
}

impl PassWorker for AuditWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "replication-audit"
    }

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
        LOOK_EVERY.min(self.period)
    }

    fn pass_at_start(&self) -> bool {
        true
    }

    fn clear_checkpoint(&self) {
        // A cancelled pass is forgotten: the next starts its rules from their first key.
        if let Ok(list) = reports(self.store.meta()) {
            for mut r in list.into_iter().filter(|r| r.after.is_some()) {
                r.after = None;
                if let Ok(b) = BucketName::new(r.bucket.clone()) {
                    let _ = self.save(&b, &r);
                }
            }
        }
    }

    fn pass(&self, _resume: Option<()>, stop: &watch::Receiver<bool>) -> PassEnd {
        self.one_pass(stop)
    }
}
