//! The replication backfill: versions written before a rule with `backfill` (S3's
//! `ExistingObjectReplication`), or that a peer lost (a resync), queued for the senders
//! as [`EntryClass::Backfill`] entries, behind live changes.
//!
//! One pass walks each such rule's keys (and those of any rule a resync started over)
//! from its checkpoint and queues what the rule
//! selects, at most [`QUEUE_CAP`] entries waiting per peer (it waits for the sender
//! rather than filling the log). A rule done is marked done (until it changes or a resync
//! clears the mark); the sender asks the peer about each backfill version first and sends
//! bytes only for those it lacks. Progress survives restarts (the node family).
//!
//! Not yet: comparing digests of key ranges with the peer before asking version by
//! version (`sites.md` §4.6).
//!
//! [`EntryClass::Backfill`]: crate::replication::log::EntryClass::Backfill

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::alert::Alerts;
use crate::background::runner::{Control, PassEnd, PassWorker};
use crate::meta::{MetaError, Origin, Record, VersionKind};
use crate::replication::log::{EntryClass, LogEntry, LogOp};
use crate::replication::{ReplicationChange, ReplicationRule};
use crate::store::Store;
use crate::types::{BucketName, ObjectKey, Timestamp, VersionId};

/// Backfill entries that may wait per peer before a pass waits for the sender.
pub const QUEUE_CAP: usize = 1000;
/// Versions queued per command.
const BATCH: usize = 256;

/// A rule's backfill progress, under `replication.backfill/<bucket>/<rule id>` in the
/// node family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillProgress {
    /// What the rule was when the backfill began (peer, target, prefix, delete
    /// markers): a changed rule starts over.
    pub rule: String,
    /// The last version queued (key, version id); `None` before the first.
    pub after: Option<(ObjectKey, VersionId)>,
    /// Versions looked at.
    pub scanned: u64,
    /// Versions queued.
    pub queued: u64,
    /// When the walk finished; `None` while it goes on.
    pub done_at: Option<Timestamp>,
}

impl Record for BackfillProgress {
    const NAME: &'static str = "backfill-progress";
    const FORMAT: u8 = 1;
}

fn progress_key(bucket: &BucketName, rule: &str) -> String {
    format!("replication.backfill/{bucket}/{rule}")
}

fn rule_fingerprint(r: &ReplicationRule) -> String {
    format!(
        "{}|{}|{}|{}",
        r.peer, r.target_bucket, r.delete_markers, r.prefix
    )
}

/// The backfill worker.
pub struct BackfillWorker {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    control: Control,
    interval: Duration,
}

impl std::fmt::Debug for BackfillWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackfillWorker")
    }
}

impl BackfillWorker {
    /// A worker that looks for rules to backfill every `interval`.
    pub fn new(store: Store, alerts: Option<Arc<Alerts>>, interval: Duration) -> Self {
        Self {
            store,
            alerts,
            control: Control::default(),
            interval,
        }
    }

    /// Every rule's progress: (bucket, rule id, progress).
    ///
    /// # Errors
    /// A metadata read.
    pub fn progress(&self) -> Result<Vec<(BucketName, String, BackfillProgress)>, MetaError> {
        let mut out = Vec::new();
        for (bucket, cfg) in crate::replication::all_rules(self.store.meta())? {
            for r in cfg.rules.iter().filter(|r| r.backfill) {
                let p = self
                    .load(&bucket, &r.id)
                    .filter(|p| p.rule == rule_fingerprint(r))
                    .unwrap_or_default();
                out.push((bucket.clone(), r.id.clone(), p));
            }
        }
        Ok(out)
    }

    fn load(&self, bucket: &BucketName, rule: &str) -> Option<BackfillProgress> {
        crate::background::runner::load_checkpoint(self.store.meta(), &progress_key(bucket, rule))
    }

    fn save(&self, bucket: &BucketName, rule: &str, p: &BackfillProgress) -> Result<(), MetaError> {
        self.store
            .meta()
            .node_put(&progress_key(bucket, rule), p.encode()?, true)
    }

    /// Starts every rule sending to `peer` over (a resync after the peer lost data), with
    /// or without `backfill`: the next pass walks them. How many rules.
    ///
    /// # Errors
    /// A metadata read or write.
    pub fn resync(store: &Store, peer: &str) -> Result<usize, MetaError> {
        let mut n = 0;
        for (bucket, cfg) in crate::replication::all_rules(store.meta())? {
            for r in cfg.rules.iter().filter(|r| r.peer == peer && r.enabled) {
                let fresh = BackfillProgress {
                    rule: rule_fingerprint(r),
                    ..BackfillProgress::default()
                };
                store
                    .meta()
                    .node_put(&progress_key(&bucket, &r.id), fresh.encode()?, true)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn one_pass(&self, stop: &watch::Receiver<bool>) -> PassEnd {
        let rules = match crate::replication::all_rules(self.store.meta()) {
            Ok(r) => r,
            Err(e) => return PassEnd::Failed(e.to_string()),
        };
        for (bucket, cfg) in rules {
            // Rules with backfill, and any rule a resync started over.
            let walked = |r: &&ReplicationRule| {
                r.enabled
                    && (r.backfill
                        || self
                            .load(&bucket, &r.id)
                            .is_some_and(|p| p.rule == rule_fingerprint(r) && p.done_at.is_none()))
            };
            for rule in cfg.rules.iter().filter(walked) {
                match self.backfill_rule(&bucket, rule, stop) {
                    Ok(true) => {}
                    Ok(false) => return PassEnd::Stopped,
                    Err(e) => return PassEnd::Failed(e),
                }
            }
        }
        PassEnd::Finished
    }

    /// Walks one rule to its end; `Ok(false)` when stopped first.
    fn backfill_rule(
        &self,
        bucket: &BucketName,
        rule: &ReplicationRule,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let fp = rule_fingerprint(rule);
        let mut p = self
            .load(bucket, &rule.id)
            .filter(|p| p.rule == fp)
            .unwrap_or(BackfillProgress {
                rule: fp,
                ..BackfillProgress::default()
            });
        if p.done_at.is_some() {
            return Ok(true);
        }
        let meta = self.store.meta();
        let Some(peer) = crate::replication::peer(meta, &rule.peer).map_err(|e| e.to_string())?
        else {
            return Ok(true);
        };
        loop {
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
            if self.control.should_stop(stop) {
                return Ok(false);
            }
            let (entries, scanned, last, ended) =
                self.next_batch(bucket, rule, p.after.as_ref())?;
            if !entries.is_empty() {
                let n = entries.len() as u64;
                self.store
                    .change_replication(ReplicationChange::Backfill {
                        peer: peer.id,
                        entries,
                    })
                    .map_err(|e| e.to_string())?;
                p.queued += n;
            }
            p.scanned += scanned;
            if last.is_some() {
                p.after = last;
            }
            if ended {
                p.done_at = Some(self.store.clock().now());
                tracing::info!(%bucket, rule = %rule.id, scanned = p.scanned, queued = p.queued, "replication backfill done");
            }
            self.save(bucket, &rule.id, &p).map_err(|e| e.to_string())?;
            if ended {
                return Ok(true);
            }
        }
    }

    /// The next versions after `after` that `rule` selects: (entries, versions looked at,
    /// the last version looked at, whether the rule's keys ended).
    #[allow(clippy::type_complexity)]
    fn next_batch(
        &self,
        bucket: &BucketName,
        rule: &ReplicationRule,
        after: Option<&(ObjectKey, VersionId)>,
    ) -> Result<(Vec<LogEntry>, u64, Option<(ObjectKey, VersionId)>, bool), String> {
        let mut entries = Vec::new();
        let mut scanned = 0u64;
        let now = self.store.clock().now();
        let (last, ended) = walk_rule(
            self.store.meta(),
            bucket,
            &rule.prefix,
            after,
            BATCH,
            |key, v| {
                scanned += 1;
                let op = match v.kind {
                    VersionKind::Object => Some(LogOp::Version),
                    VersionKind::DeleteMarker if rule.delete_markers => Some(LogOp::DeleteMarker),
                    VersionKind::DeleteMarker => None,
                };
                if let Some(op) = op.filter(|_| v.origin == Origin::Client) {
                    entries.push(LogEntry {
                        op,
                        bucket: bucket.clone(),
                        key: key.clone(),
                        version_id: v.version_id,
                        target: rule.target_bucket.clone(),
                        size: if op == LogOp::Version { v.size } else { 0 },
                        enqueued_at: now,
                        class: EntryClass::Backfill,
                        rule: rule.id.clone(),
                    });
                }
                Ok(())
            },
        )
        .map_err(|e| e.to_string())?;
        Ok((entries, scanned, last, ended))
    }
}

/// Walks the versions of `bucket` under `prefix` after `after` (a key's versions come
/// newest first: those at or above the last one handled are skipped), at most `limit`,
/// calling `f` on each: (the last version looked at, whether the keys ended). The
/// backfill and the audit walk rules this way from their checkpoints.
///
/// # Errors
/// A metadata read, or `f`'s error (the walk stops there).
#[allow(clippy::type_complexity)]
pub(crate) fn walk_rule(
    meta: &crate::meta::Meta,
    bucket: &BucketName,
    prefix: &str,
    after: Option<&(ObjectKey, VersionId)>,
    limit: usize,
    mut f: impl FnMut(&ObjectKey, &crate::meta::VersionRecord) -> Result<(), MetaError>,
) -> Result<(Option<(ObjectKey, VersionId)>, bool), MetaError> {
    let from = match after {
        Some((k, _)) if k.as_str() > prefix => k.as_str().to_owned(),
        _ => prefix.to_owned(),
    };
    let mut looked = 0usize;
    let mut last = None;
    let mut ended = true;
    let mut failed = None;
    meta.scan_versions(bucket, &from, |key, v| {
        if !key.as_str().starts_with(prefix) {
            return ControlFlow::Break(());
        }
        if let Some((k, vid)) = after
            && *k == key
            && v.version_id >= *vid
        {
            return ControlFlow::Continue(());
        }
        if looked >= limit {
            ended = false;
            return ControlFlow::Break(());
        }
        looked += 1;
        if let Err(e) = f(&key, &v) {
            failed = Some(e);
            return ControlFlow::Break(());
        }
        last = Some((key, v.version_id));
        ControlFlow::Continue(())
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok((last, ended)),
    }
}

impl PassWorker for BackfillWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "replication-backfill"
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
        self.interval
    }

    fn pass_at_start(&self) -> bool {
        true
    }

    fn pass(&self, _resume: Option<()>, stop: &watch::Receiver<bool>) -> PassEnd {
        self.one_pass(stop)
    }
}
