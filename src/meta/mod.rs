//! The metadata store: buckets, object versions, multipart uploads, pending writes and the
//! repair queue, each in its own column family, each record versioned (see [`record`]).
//!
//! Versions are create-only: [`Meta::commit_version_batch`] refuses to put a version record whose
//! key already exists, and no function here rewrites one.

mod consensus;
pub mod engine;
pub mod keys;
mod overlay;
pub mod record;
mod rocks;
#[cfg(test)]
mod tests;
mod usage;

pub use consensus::{FamilyRecord, REPLICATED, is_replicated};
pub use engine::{KvEngine, MemoryEngine};
pub use usage::BucketUsage;

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp, VersionId};
pub use record::{
    BelowMinimum, BucketActivity, BucketGeo, BucketRecord, CompletedUpload, DefaultRetention,
    InlineRecord, LifecycleConfig, LifecycleRule, LockRecord, LockRequest, Origin, PartRecord,
    PendingRecord, Record, RepairReason, RepairRecord, Retention, RetentionMode, RetentionPeriod,
    RetentionPolicy, SegmentRecord, ShardPlacement, ShardRecord, SiteDownWrites, SystemMeta,
    TagSet, UploadRecord, VersionKind, VersionRecord, Versioning,
};

/// Why a metadata read or write failed, or the store refused a write.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A blocking task running the call did not finish (it panicked, or the runtime is
    /// shutting down).
    #[error("metadata task failed: {reason}")]
    Task {
        /// What the runtime said.
        reason: String,
    },
    /// The engine under [`Meta`] (RocksDB, or the in-memory one) failed.
    #[error("metadata store: {op}: {message}")]
    Engine {
        /// What it was doing (`"open"`, `"get"`, `"write"`, `"scan"`, ...).
        op: &'static str,
        /// The engine's own message.
        message: String,
    },
    /// A stored value's format byte is one this release does not know: written by a newer
    /// release, or damaged. Never guessed at.
    #[error("{record} record has unknown format version {version}")]
    UnknownFormat {
        /// The record type ([`Record::NAME`]).
        record: &'static str,
        /// The format byte found.
        version: u8,
    },
    /// A record could not be serialised; nothing was written in its place.
    #[error("{record} record cannot be encoded: {message}")]
    Encode {
        /// The record type ([`Record::NAME`]).
        record: &'static str,
        /// The serialiser's message.
        message: String,
    },
    /// A stored value (or key) of a known format does not parse.
    #[error("{record} record is undecodable: {message}")]
    Decode {
        /// The record type ([`Record::NAME`]), or what else was being read.
        record: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The multipart upload was completed or aborted meanwhile (S3's `NoSuchUpload`).
    #[error("upload {upload_id} does not exist")]
    UploadGone {
        /// The upload's id.
        upload_id: SegmentId,
    },
    /// A part Complete uses was uploaded again between Complete's read and its commit: the
    /// version would name removed data, so Complete fails instead.
    #[error("part {part_number} of upload {upload_id} was re-uploaded while completing")]
    PartChanged {
        /// The upload's id.
        upload_id: SegmentId,
        /// The part that changed.
        part_number: u16,
    },
    /// The write's [`WriteCondition`] did not hold under the write guard.
    #[error("the write's condition on {bucket}/{key} does not hold: {failure:?}")]
    ConditionFailed {
        /// The bucket written to.
        bucket: BucketName,
        /// The key written to.
        key: ObjectKey,
        /// Which S3 error it is.
        failure: ConditionFailure,
    },
    /// The bucket was deleted while the write was under way: it takes no version.
    #[error("bucket {bucket} was deleted")]
    BucketGone {
        /// The bucket.
        bucket: BucketName,
    },
    /// The null version a write would replace has Object Lock state (checked again under
    /// the guard, whatever the lock layer said before).
    #[error(
        "version {version_id} of {bucket}/{key} has an Object Lock state; it is never replaced"
    )]
    ReplacesLocked {
        /// The version's bucket.
        bucket: BucketName,
        /// The version's key.
        key: ObjectKey,
        /// The locked version.
        version_id: VersionId,
    },
    /// A version record of this id is already stored: versions are create-only.
    #[error("version {version_id} of {bucket}/{key} already exists; versions are never rewritten")]
    VersionExists {
        /// The version's bucket.
        bucket: BucketName,
        /// The version's key.
        key: ObjectKey,
        /// The id already taken.
        version_id: VersionId,
    },
}

impl From<tokio::task::JoinError> for MetaError {
    fn from(e: tokio::task::JoinError) -> Self {
        MetaError::Task {
            reason: e.to_string(),
        }
    }
}

/// What a write requires of the key's current object (S3's conditional writes:
/// `If-None-Match: *` and `If-Match` on PutObject and CompleteMultipartUpload), checked
/// under the write guard in the commit itself, so two writers cannot both pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WriteCondition {
    /// No requirement.
    #[default]
    Always,
    /// `If-None-Match: *`: the key has no current object.
    Absent,
    /// `If-Match: *`: the key has a current object.
    Exists,
    /// `If-Match: "ETAG"`: the current object has this ETag (hex, without quotes).
    ETag(String),
    /// The key's newest version (an object or a delete marker) is this one: lifecycle's
    /// expiry, so that two nodes expiring one version add one delete marker. Appended
    /// last.
    Newest(VersionId),
}

/// Why a [`WriteCondition`] does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionFailure {
    /// A current object exists (`If-None-Match: *`), or its ETag differs (`If-Match`):
    /// S3's 412 PreconditionFailed.
    Failed,
    /// `If-Match` and the key has no current object: S3's 404 NoSuchKey.
    NoObject,
}

impl WriteCondition {
    /// Checks the condition against the key's newest version (a delete marker is no
    /// object).
    pub fn check(&self, newest: Option<&VersionRecord>) -> Result<(), ConditionFailure> {
        if let Self::Newest(id) = self {
            return match newest {
                Some(v) if v.version_id == *id => Ok(()),
                Some(_) => Err(ConditionFailure::Failed),
                None => Err(ConditionFailure::NoObject),
            };
        }
        let current = newest.filter(|v| v.kind == VersionKind::Object);
        match (self, current) {
            (Self::Always, _) | (Self::Absent, None) | (Self::Exists, Some(_)) => Ok(()),
            (Self::Absent, Some(_)) => Err(ConditionFailure::Failed),
            (Self::Exists | Self::ETag(_), None) => Err(ConditionFailure::NoObject),
            (Self::ETag(e), Some(v)) if v.etag == *e => Ok(()),
            (Self::ETag(_), Some(_)) => Err(ConditionFailure::Failed),
            // Decided above.
            (Self::Newest(_), _) => Ok(()),
        }
    }
}

/// Everything committed with a new version.
#[derive(Clone, Copy)]
pub struct NewVersion<'a> {
    /// The bucket; the commit fails if it is gone.
    pub bucket: &'a BucketName,
    /// The object key.
    pub key: &'a ObjectKey,
    /// The version itself.
    pub record: &'a VersionRecord,
    /// Entries for shards the write could not place, queued in the same batch so that no
    /// acknowledged version lacks its repair.
    pub repairs: &'a [RepairRecord],
    /// The key's null version this one replaces (versioning off or suspended), whose
    /// removal the lock layer allowed; it is removed with everything keyed like it.
    pub replaces: Option<&'a VersionId>,
    /// What the key's current object must be for the commit to happen.
    pub condition: &'a WriteCondition,
    /// The version's tags (`x-amz-tagging`); an empty set stores nothing.
    pub tags: Option<&'a TagSet>,
    /// The object's bytes, when small enough to live here instead of in shard files.
    pub inline: Option<&'a InlineRecord>,
    /// The version's initial Object Lock state.
    pub lock: Option<&'a LockRecord>,
}

/// The version a multipart Complete commits, with what goes in its batch.
#[derive(Clone, Copy)]
pub struct FinishedVersion<'a> {
    /// The version, whose segments are the chosen parts' segments.
    pub record: &'a VersionRecord,
    /// The key's null version it replaces, whose removal the lock layer allowed.
    pub replaces: Option<&'a VersionId>,
    /// The Object Lock state decided from the upload's request; an empty one stores nothing.
    pub lock: &'a LockRecord,
    /// Entries for shards the parts' writes could not place.
    pub repairs: &'a [RepairRecord],
    /// What the key's current object must be for the commit to happen.
    pub condition: &'a WriteCondition,
    /// The outcome kept for retried Completes.
    pub completed: &'a CompletedUpload,
}

/// Keyed spaces of records that layers above keep here by string keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Users, keys, approvals, identity settings (cluster-wide).
    Identity,
    /// Alert sinks and backup-freshness expectations (cluster-wide).
    Alerts,
    /// This node's own records: the alert delivery queue (node-local).
    Node,
    /// Replication peers and per-bucket replication rules (cluster-wide), under
    /// `replication/`.
    Replication,
}

impl Space {
    fn cf(self) -> Cf {
        match self {
            Space::Identity => Cf::Identity,
            Space::Alerts => Cf::Alerts,
            Space::Node => Cf::Node,
            Space::Replication => Cf::Cluster,
        }
    }
}

/// Column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    /// [`BucketRecord`]s by bucket name.
    Buckets,
    /// [`VersionRecord`]s by version key ([`keys::version_key`]).
    Versions,
    /// [`UploadRecord`]s (`U`), their [`PartRecord`]s (`P`) and the [`CompletedUpload`]s
    /// kept a day for retried Completes (`C`).
    Uploads,
    /// [`PendingRecord`]s by segment id: writes whose shard files may exist unreferenced.
    Pending,
    /// The repair queue: [`RepairRecord`]s keyed by due time (µs, big-endian), then
    /// segment id.
    Repair,
    /// Records of earlier releases only (see [`Meta::open`]'s migration).
    System,
    /// [`TagSet`]s, keyed like the version.
    Tags,
    /// [`InlineRecord`]s (small objects' bytes), keyed like the version.
    Inline,
    /// [`LockRecord`]s, keyed like the version; kept apart so that a lock change rewrites
    /// no version record and leaves Last-Modified alone.
    Locks,
    /// Users, sealed keys, approvals and identity settings ([`Space::Identity`]).
    Identity,
    /// Alert sinks and backup-freshness expectations ([`Space::Alerts`]).
    Alerts,
    /// [`ShardPlacement`]s, keyed by segment id then shard index (u16, big-endian).
    Placement,
    /// Cluster-wide records kept by key: bucket lifecycle configurations, last writes.
    Cluster,
    /// This node's own records: worker checkpoints, the retention clock, alert deliveries.
    Node,
    /// The replication log: per peer, the changes not yet acknowledged by it, their
    /// head sequence number and the entries parked as dead (`replication::log`).
    Replog,
    /// The audit trail (`audit::log`): its leaves, the hashes of its complete subtrees,
    /// its signed checkpoints and its head.
    Audit,
    /// The Raft log, vote and applied state of this node (`crate::consensus`).
    Raft,
}

/// Where a family's records belong once a cluster spans nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyScope {
    /// The same on every node (agreed through the cluster's consensus): buckets,
    /// identities, bucket configurations, alert sinks and expectations.
    ClusterWide,
    /// Split across the cluster by bucket and key, each part agreed by its owners:
    /// versions and what is keyed like them, uploads, shard placements.
    ShardedByKey,
    /// This node's alone, never replicated: writes in flight, its repair queue, worker
    /// checkpoints, its retention clock, its alert deliveries.
    NodeLocal,
    /// Only what earlier releases wrote, moved to its family at open.
    Legacy,
}

impl Cf {
    /// Every family, each opened (and created if missing) at start.
    pub const ALL: [Cf; 17] = [
        Cf::Buckets,
        Cf::Versions,
        Cf::Uploads,
        Cf::Pending,
        Cf::Repair,
        Cf::System,
        Cf::Tags,
        Cf::Inline,
        Cf::Locks,
        Cf::Identity,
        Cf::Alerts,
        Cf::Placement,
        Cf::Cluster,
        Cf::Node,
        Cf::Replog,
        Cf::Audit,
        Cf::Raft,
    ];
    /// The family's name in RocksDB; never changed, since existing data folders hold it.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Buckets => "buckets",
            Cf::Versions => "versions",
            Cf::Uploads => "uploads",
            Cf::Pending => "pending",
            Cf::Repair => "repair",
            Cf::System => "system",
            Cf::Tags => "tags",
            Cf::Inline => "inline",
            Cf::Locks => "locks",
            Cf::Identity => "identity",
            Cf::Alerts => "alerts",
            Cf::Placement => "placement",
            Cf::Cluster => "cluster",
            Cf::Node => "node",
            Cf::Replog => "replog",
            Cf::Audit => "audit",
            Cf::Raft => "raft",
        }
    }

    /// The family's scope (no wildcard: a new family must be classified).
    pub fn scope(self) -> FamilyScope {
        match self {
            Cf::Buckets | Cf::Identity | Cf::Alerts | Cf::Cluster => FamilyScope::ClusterWide,
            Cf::Versions
            | Cf::Uploads
            | Cf::Tags
            | Cf::Inline
            | Cf::Locks
            | Cf::Placement
            | Cf::Replog => FamilyScope::ShardedByKey,
            // The audit trail holds the node's own events (its refusals, ticks, starts)
            // beside the commands' leaves, under its own origin and key: node-local. A
            // cluster adds a log of the agreed commands beside it (`audit.md` §2.2).
            Cf::Pending | Cf::Repair | Cf::Node | Cf::Audit | Cf::Raft => FamilyScope::NodeLocal,
            Cf::System => FamilyScope::Legacy,
        }
    }
}

/// Where records that earlier releases kept in `system` (and the alert queue, kept with
/// the cluster-wide alert records) live now: (from family, key prefix, to family).
const MOVED: [(Cf, &str, Cf); 5] = [
    (Cf::System, "lifecycle/", Cf::Cluster),
    (Cf::System, "activity/", Cf::Cluster),
    (Cf::System, "worker.", Cf::Node),
    (Cf::System, "clock.", Cf::Node),
    (Cf::Alerts, "q/", Cf::Node),
];

enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
}

/// A raw key and value.
pub(crate) type RawPair = (Vec<u8>, Vec<u8>);

/// The audit log's head as `audit::log` keeps it in memory (opaque here).
pub(crate) type AuditHead = Arc<dyn std::any::Any + Send + Sync>;

/// Writes applied atomically by [`Meta`].
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
    /// The audit log's head once this batch is written: kept in memory by [`Meta`], not
    /// written (see [`Meta::audit_head`]).
    audit_head: Option<AuditHead>,
}

impl Batch {
    fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(cf, key, value));
    }
    fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push(Op::Delete(cf, key));
    }

    /// Writes the record `key` of `space` (already encoded).
    pub(crate) fn kv_put(&mut self, space: Space, key: &str, value: Vec<u8>) {
        self.put(space.cf(), key.as_bytes().to_vec(), value);
    }

    /// Removes the record `key` of `space`.
    pub(crate) fn kv_delete(&mut self, space: Space, key: &str) {
        self.delete(space.cf(), key.as_bytes().to_vec());
    }

    /// Writes raw bytes under `key` in the replication log family (`replication::log`
    /// owns its keys and values).
    pub(crate) fn replog_put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put(Cf::Replog, key, value);
    }

    /// Removes `key` from the replication log family.
    pub(crate) fn replog_delete(&mut self, key: Vec<u8>) {
        self.delete(Cf::Replog, key);
    }

    /// Writes raw bytes under `key` in the audit family (`audit::log` owns its keys and
    /// values).
    pub(crate) fn audit_put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put(Cf::Audit, key, value);
    }

    /// Removes `key` from the audit family (tests that cut the trail).
    #[cfg(test)]
    pub(crate) fn audit_delete(&mut self, key: Vec<u8>) {
        self.delete(Cf::Audit, key);
    }

    /// Makes `head` the audit log's head in memory once this batch is written.
    pub(crate) fn keep_audit_head(&mut self, head: AuditHead) {
        self.audit_head = Some(head);
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Removes a version's record and everything keyed like it (lock, tags, inline bytes).
    pub(crate) fn remove_version(&mut self, bucket: &BucketName, key: &ObjectKey, vid: &VersionId) {
        delete_version_keys(self, keys::version_key(bucket, key, vid));
    }

    /// Sets a version's Object Lock state; an empty one is removed.
    ///
    /// # Errors
    /// [`MetaError::Encode`].
    pub(crate) fn set_lock(
        &mut self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
        lock: &LockRecord,
    ) -> Result<(), MetaError> {
        let vkey = keys::version_key(bucket, key, vid);
        if lock.is_empty() {
            self.delete(Cf::Locks, vkey);
        } else {
            self.put(Cf::Locks, vkey, lock.encode()?);
        }
        Ok(())
    }

    /// Sets (or, with `None`, removes) a bucket's erasure coding across sites.
    pub(crate) fn set_bucket_geo(
        &mut self,
        bucket: &BucketName,
        config: Option<&BucketGeo>,
    ) -> Result<(), MetaError> {
        match config {
            Some(c) => self.put(Cf::Cluster, geo_key(bucket), c.encode()?),
            None => self.delete(Cf::Cluster, geo_key(bucket)),
        }
        Ok(())
    }

    /// Sets (or, with `None`, removes) a bucket's lifecycle configuration.
    pub(crate) fn set_lifecycle(
        &mut self,
        bucket: &BucketName,
        config: Option<&LifecycleConfig>,
    ) -> Result<(), MetaError> {
        match config {
            Some(c) => self.put(Cf::Cluster, lifecycle_key(bucket), c.encode()?),
            None => self.delete(Cf::Cluster, lifecycle_key(bucket)),
        }
        Ok(())
    }

    /// Replaces a version's tags (an empty set removes them).
    pub(crate) fn set_tags(
        &mut self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
        tags: &TagSet,
    ) -> Result<(), MetaError> {
        let vkey = keys::version_key(bucket, key, vid);
        if tags.tags.is_empty() {
            self.delete(Cf::Tags, vkey);
        } else {
            self.put(Cf::Tags, vkey, tags.encode()?);
        }
        Ok(())
    }

    /// Writes a bucket's record.
    ///
    /// # Errors
    /// [`MetaError::Encode`].
    pub fn put_bucket(&mut self, rec: &BucketRecord) -> Result<(), MetaError> {
        self.put(
            Cf::Buckets,
            rec.name.as_str().as_bytes().to_vec(),
            rec.encode()?,
        );
        Ok(())
    }
}

/// One record as [`Meta::dump`] lists it: family name, key, value.
#[cfg(any(test, feature = "test-hooks"))]
pub type DumpedRecord = (&'static str, Vec<u8>, Vec<u8>);

/// The lengths of the node's queues, kept as each batch is written, so `/metrics` reads
/// counters instead of scanning the queues on every scrape. Computed by one scan the
/// first time they are asked for, then moved by every write that touches a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueLengths {
    /// Repair queue entries.
    pub repair: u64,
    /// Of those, entries whose last attempt failed.
    pub repair_failing: u64,
    /// Of those, entries this release cannot decode (a newer release's, or torn): whether
    /// they are failing is unknown.
    pub repair_unreadable: u64,
    /// Alerts waiting for delivery (`node` family, `q/`).
    pub alerts: u64,
    /// Bytes of the segments whose entries say they would not survive losing a site
    /// ([`crate::meta::RepairReason::SiteUnsafe`]).
    pub site_unsafe_bytes: u64,
}

impl QueueLengths {
    /// What one stored value adds to the lengths (`None`: not a queue entry).
    fn of(cf: Cf, key: &[u8], value: &[u8]) -> Option<Self> {
        match cf {
            Cf::Repair => Some(match RepairRecord::decode(value) {
                Ok(r) => Self {
                    repair: 1,
                    repair_failing: u64::from(r.attempts > 0),
                    site_unsafe_bytes: match r.reason {
                        crate::meta::RepairReason::SiteUnsafe { bytes } => bytes,
                        _ => 0,
                    },
                    ..Self::default()
                },
                Err(_) => Self {
                    repair: 1,
                    repair_unreadable: 1,
                    ..Self::default()
                },
            }),
            Cf::Node if key.starts_with(ALERT_QUEUE) => Some(Self {
                alerts: 1,
                ..Self::default()
            }),
            _ => None,
        }
    }

    fn tracked(cf: Cf, key: &[u8]) -> bool {
        cf == Cf::Repair || (cf == Cf::Node && key.starts_with(ALERT_QUEUE))
    }

    fn add(&mut self, o: Self, sign: i8) {
        let f = |a: &mut u64, b: u64| {
            *a = if sign > 0 {
                a.saturating_add(b)
            } else {
                a.saturating_sub(b)
            }
        };
        f(&mut self.repair, o.repair);
        f(&mut self.repair_failing, o.repair_failing);
        f(&mut self.repair_unreadable, o.repair_unreadable);
        f(&mut self.alerts, o.alerts);
        f(&mut self.site_unsafe_bytes, o.site_unsafe_bytes);
    }
}

/// How [`Meta`] hands a batch to its engine.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// Staged above the engine, written by the next sync (a guarded command's: group
    /// commit).
    Staged,
    /// Written now (with everything staged before it), fsynced with `sync`.
    Engine { sync: bool },
}

/// Where the alert delivery queue lives in the `node` family.
const ALERT_QUEUE: &[u8] = b"q/";

/// The metadata store: typed reads and writes of every record over a [`KvEngine`], with
/// one write guard under which each check-then-write runs.
pub struct Meta {
    /// The engine, under the batches staged by guarded commands ([`overlay`]).
    db: overlay::Overlay,
    /// [`QueueLengths`], once counted; held across the check and the write of a batch
    /// that touches a queue, so two such batches cannot both count one entry.
    queues: Mutex<Option<QueueLengths>>,
    /// Serialises check-then-write sequences (bucket creation, version commit) so two
    /// writers cannot both see "absent" and both write.
    write_lock: Mutex<()>,
    /// Group commit ([`Meta::write_guarded`]): how many guarded batches were written, and
    /// how many of them are known durable (held while the write-ahead log is fsynced, so
    /// the writers that queue behind one fsync find their batch covered by it).
    written: AtomicU64,
    synced: Mutex<u64>,
    /// The audit log's head after the last batch written ([`Batch::keep_audit_head`]):
    /// every command reads it under the write guard to append its leaf, and writes only
    /// the leaf (`audit::log` says when the head itself is written). `None`: not loaded.
    audit_head: Mutex<Option<AuditHead>>,
    /// Moved on before and after every batch that touches the identity family, whoever
    /// wrote it (a command of this node, one applied from the Raft group, a snapshot
    /// installed): what the identity store's authentication cache is checked against
    /// ([`Meta::identity_generation`]).
    identity_writes: AtomicU64,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meta")
    }
}

/// A version's record and everything keyed like it.
fn delete_version_keys(b: &mut Batch, vkey: Vec<u8>) {
    b.delete(Cf::Tags, vkey.clone());
    b.delete(Cf::Locks, vkey.clone());
    b.delete(Cf::Inline, vkey.clone());
    b.delete(Cf::Versions, vkey);
}

fn lifecycle_key(bucket: &BucketName) -> Vec<u8> {
    format!("lifecycle/{bucket}").into_bytes()
}

fn geo_key(bucket: &BucketName) -> Vec<u8> {
    format!("geo/{bucket}").into_bytes()
}

fn activity_key(bucket: &BucketName) -> Vec<u8> {
    format!("activity/{bucket}").into_bytes()
}

fn repair_key(r: &RepairRecord) -> Vec<u8> {
    let mut k = (r.due.micros().max(0) as u64).to_be_bytes().to_vec();
    k.extend_from_slice(r.segment.as_bytes());
    k
}

impl Meta {
    /// Opens (or creates) the RocksDB metadata store in `dir`, moving records an earlier
    /// release kept elsewhere to their family (`MOVED`) in one synced batch, and counting
    /// the usage of buckets an earlier release wrote ([`BucketUsage`]).
    pub fn open(dir: &Path) -> Result<Self, MetaError> {
        let meta = Self::with_engine(Box::new(rocks::Rocks::open(dir)?));
        meta.move_old_records()?;
        meta.count_missing_usage()?;
        Ok(meta)
    }

    /// Moves what earlier releases kept in `system` (and the alert queue) to the family it
    /// belongs to now; a record already in its new place wins. Idempotent.
    fn move_old_records(&self) -> Result<usize, MetaError> {
        let mut b = Batch::default();
        let mut moved = 0;
        for (from, prefix, to) in MOVED {
            let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            self.db.scan(from, prefix.as_bytes(), &mut |k, v| {
                if !k.starts_with(prefix.as_bytes()) {
                    return ControlFlow::Break(());
                }
                found.push((k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })?;
            for (k, v) in found {
                if self.db.get(to, &k)?.is_none() {
                    b.put(to, k.clone(), v);
                } else {
                    tracing::warn!(
                        key = %String::from_utf8_lossy(&k),
                        "an earlier release's record is dropped: its new place already has one"
                    );
                }
                b.delete(from, k);
                moved += 1;
            }
        }
        if moved > 0 {
            self.commit(b, true)?;
            tracing::info!(
                records = moved,
                "moved records of an earlier release to their family"
            );
        }
        Ok(moved)
    }

    /// A metadata store on `engine` (the in-memory one for tests).
    pub fn with_engine(engine: Box<dyn KvEngine>) -> Self {
        Self {
            db: overlay::Overlay::new(engine),
            queues: Mutex::new(None),
            write_lock: Mutex::new(()),
            written: AtomicU64::new(0),
            synced: Mutex::new(0),
            audit_head: Mutex::new(None),
            identity_writes: AtomicU64::new(0),
        }
    }

    /// Writes a batch, moving the queue lengths by what it adds and removes, and keeping
    /// the audit head it carries.
    fn commit(&self, b: Batch, sync: bool) -> Result<(), MetaError> {
        self.commit_as(b, Write::Engine { sync })
    }

    fn commit_as(&self, b: Batch, how: Write) -> Result<(), MetaError> {
        let identity = b.ops.iter().any(|op| match op {
            Op::Put(cf, ..) | Op::Delete(cf, _) => *cf == Cf::Identity,
        });
        if !identity {
            return self.commit_headed(b, how);
        }
        // Before: a reader that began before the write never caches what it read. After:
        // one that read the old records and cached them before the first move sees the
        // second, and reads again.
        self.identity_writes.fetch_add(1, Ordering::SeqCst);
        let written = self.commit_headed(b, how);
        self.identity_writes.fetch_add(1, Ordering::SeqCst);
        written
    }

    /// How many times batches touching the identity family were written (counted before
    /// and after each): a cache of identity records filled while it did not move holds
    /// what the records said.
    pub fn identity_generation(&self) -> u64 {
        self.identity_writes.load(Ordering::SeqCst)
    }

    fn commit_headed(&self, mut b: Batch, how: Write) -> Result<(), MetaError> {
        let Some(head) = b.audit_head.take() else {
            return self.commit_counted(b, how);
        };
        // Held across the write, so that no reader takes the old head after it.
        let mut kept = self.audit_head.lock().unwrap_or_else(|p| p.into_inner());
        let written = self.commit_counted(b, how);
        *kept = match written {
            Ok(()) => Some(head),
            // Not known whether it was written: loaded again at the next read.
            Err(_) => None,
        };
        written
    }

    fn put_batch(&self, b: Batch, how: Write) -> Result<(), MetaError> {
        match how {
            Write::Staged => {
                self.db.stage(b);
                Ok(())
            }
            Write::Engine { sync } => self.db.write(b, sync),
        }
    }

    fn commit_counted(&self, b: Batch, how: Write) -> Result<(), MetaError> {
        if !b.ops.iter().any(|op| match op {
            Op::Put(cf, k, _) | Op::Delete(cf, k) => QueueLengths::tracked(*cf, k),
        }) {
            return self.put_batch(b, how);
        }
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut lengths) = *queues else {
            // Not counted yet: the first reader scans.
            return self.put_batch(b, how);
        };
        // Later operations on a key in the batch see the earlier ones.
        fn parts(op: &Op) -> (Cf, &[u8], Option<&[u8]>) {
            match op {
                Op::Put(cf, k, v) => (*cf, k.as_slice(), Some(v.as_slice())),
                Op::Delete(cf, k) => (*cf, k.as_slice(), None),
            }
        }
        for (i, op) in b.ops.iter().enumerate() {
            let (cf, key, new) = parts(op);
            if !QueueLengths::tracked(cf, key) {
                continue;
            }
            let earlier = b.ops[..i]
                .iter()
                .rev()
                .map(parts)
                .find(|(c, k, _)| *c == cf && *k == key);
            let before = match earlier {
                Some((_, _, v)) => v.map(<[u8]>::to_vec),
                None => self.db.get(cf, key)?,
            };
            if let Some(old) = before.and_then(|v| QueueLengths::of(cf, key, &v)) {
                lengths.add(old, -1);
            }
            if let Some(added) = new.and_then(|v| QueueLengths::of(cf, key, v)) {
                lengths.add(added, 1);
            }
        }
        self.put_batch(b, how)?;
        *queues = Some(lengths);
        Ok(())
    }

    /// The node's queue lengths ([`QueueLengths`]).
    ///
    /// # Errors
    /// The first call's scan.
    pub fn queue_lengths(&self) -> Result<QueueLengths, MetaError> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = *queues {
            return Ok(l);
        }
        let mut l = QueueLengths::default();
        for (cf, prefix) in [(Cf::Repair, &b""[..]), (Cf::Node, ALERT_QUEUE)] {
            self.db.scan(cf, prefix, &mut |k, v| {
                if !k.starts_with(prefix) {
                    return ControlFlow::Break(());
                }
                if let Some(o) = QueueLengths::of(cf, k, v) {
                    l.add(o, 1);
                }
                ControlFlow::Continue(())
            })?;
        }
        *queues = Some(l);
        Ok(l)
    }

    fn get<R: Record>(&self, cf: Cf, key: &[u8]) -> Result<Option<R>, MetaError> {
        self.db.get(cf, key)?.map(|b| R::decode(&b)).transpose()
    }

    /// Decodes up to `limit` records whose keys start with `prefix`, in key order.
    fn collect<R: Record>(&self, cf: Cf, prefix: &[u8], limit: usize) -> Result<Vec<R>, MetaError> {
        let mut out = Vec::new();
        let mut err = None;
        self.db.scan(cf, prefix, &mut |k, v| {
            if !k.starts_with(prefix) || out.len() >= limit {
                return ControlFlow::Break(());
            }
            match R::decode(v) {
                Ok(r) => {
                    out.push(r);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    err = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        err.map_or(Ok(out), Err)
    }

    /// Adds to `b` the bucket's last-write time moved up to `at` (never back), as read now:
    /// call it under the write guard.
    fn note_write(
        &self,
        b: &mut Batch,
        bucket: &BucketName,
        at: Timestamp,
    ) -> Result<(), MetaError> {
        let key = activity_key(bucket);
        // A record this release cannot read (torn, or a newer format) must not stop the
        // bucket's writes: it is overwritten.
        let current = self.get::<BucketActivity>(Cf::Cluster, &key).unwrap_or_else(|e| {
            tracing::warn!(bucket = %bucket, error = %e, "unreadable last-write record replaced");
            None
        });
        let newer = current.is_none_or(|a| a.last_write < at);
        if newer {
            b.put(
                Cf::Cluster,
                key,
                BucketActivity { last_write: at }.encode()?,
            );
        }
        Ok(())
    }

    /// When `bucket` last took a version, as kept at commit time (`None` for a bucket
    /// written before this was kept, or never written).
    pub fn last_write(&self, bucket: &BucketName) -> Result<Option<Timestamp>, MetaError> {
        Ok(self
            .get::<BucketActivity>(Cf::Cluster, &activity_key(bucket))?
            .map(|a| a.last_write))
    }

    /// Records that `bucket` took a version at `at` (for a bucket whose last write was
    /// found by a scan), never moving the time back.
    pub fn note_last_write(&self, bucket: &BucketName, at: Timestamp) -> Result<(), MetaError> {
        let _g = self.guard();
        let mut b = Batch::default();
        self.note_write(&mut b, bucket, at)?;
        self.commit(b, false)
    }

    /// Every record of every family, in order: two replicas that applied the same
    /// commands hold the same dump.
    ///
    /// # Errors
    /// A scan's.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn dump(&self) -> Result<Vec<DumpedRecord>, MetaError> {
        let mut out = Vec::new();
        for cf in Cf::ALL {
            self.db.scan(cf, b"", &mut |k, v| {
                out.push((cf.name(), k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })?;
        }
        Ok(out)
    }

    /// Runs a check-then-write on one node: `f` reads and returns the batch to write
    /// (and an answer), with no other guarded write in between; the batch is durable
    /// when this returns. This is the single-node stand-in for a replicated log: the
    /// command applier (`command::apply`) runs inside it here, and on every replica there.
    ///
    /// Group commit: the batch is staged under the guard (visible to every read at once,
    /// [`overlay`]) and, after the guard is released, written to the engine merged with
    /// every batch staged meanwhile and fsynced: concurrent writers share one engine
    /// write and one fsync instead of queueing one each behind the guard (an fsync here
    /// takes 1-4 ms; applying a command, tens of microseconds), and the guard covers a
    /// command's reads and decision only. Staging order is the guard's, so the flush
    /// that covers a batch covers every batch it read. Every caller waits for the fsync of what it read, also when it wrote
    /// nothing or was refused: an answer never rests on a change that a crash could
    /// still undo. Readers outside the guard (GET, LIST) may see a change for the
    /// fsync's duration before it is acknowledged, as with any write not yet answered.
    ///
    /// # Errors
    /// `f`'s, the write's or the fsync's.
    pub(crate) fn write_guarded<T, E: From<MetaError>>(
        &self,
        f: impl FnOnce(&Self) -> Result<(Batch, T), E>,
    ) -> Result<T, E> {
        let (answer, ticket) = {
            let _g = self.guard();
            let answer = f(self).and_then(|(b, out)| {
                if !b.is_empty() {
                    self.commit_as(b, Write::Staged)?;
                    self.written.fetch_add(1, Ordering::SeqCst);
                }
                Ok(out)
            });
            (answer, self.written.load(Ordering::SeqCst))
        };
        self.sync_through(ticket)?;
        answer
    }

    /// Makes every guarded batch written so far durable (group commit's fsync, shared):
    /// for a reader outside the guard about to hand out what must never be undone (a
    /// signed checkpoint).
    ///
    /// # Errors
    /// The fsync's.
    pub(crate) fn sync_written(&self) -> Result<(), MetaError> {
        // Always a flush and an fsync: a batch whose audit head is already visible may
        // not be counted in `written` yet (the head is kept as the batch is staged).
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let upto = self.written.load(Ordering::SeqCst);
        self.db.sync()?;
        *synced = upto;
        Ok(())
    }

    /// Makes the first `ticket` guarded batches durable: returns at once when an fsync
    /// already covered them, else fsyncs for every batch written so far.
    fn sync_through(&self, ticket: u64) -> Result<(), MetaError> {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if *synced >= ticket {
            return Ok(());
        }
        // Read before the fsync: every batch counted here was written before it.
        let upto = self.written.load(Ordering::SeqCst);
        self.db.sync()?;
        *synced = upto;
        Ok(())
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A bucket's record, if the bucket exists.
    pub fn bucket(&self, name: &BucketName) -> Result<Option<BucketRecord>, MetaError> {
        self.get(Cf::Buckets, name.as_str().as_bytes())
    }

    /// Creates the bucket unless it exists; returns whether it was created.
    pub fn create_bucket(&self, rec: &BucketRecord) -> Result<bool, MetaError> {
        self.create_bucket_and(rec, |_, _| Ok(()))
    }

    /// [`Meta::create_bucket`], with what `extra` adds to the same batch (the audit
    /// trail's leaf) when the bucket is made.
    ///
    /// # Errors
    /// The read's, `extra`'s or the write's.
    pub fn create_bucket_and(
        &self,
        rec: &BucketRecord,
        extra: impl FnOnce(&Self, &mut Batch) -> Result<(), MetaError>,
    ) -> Result<bool, MetaError> {
        let _g = self.guard();
        let Some(mut b) = self.create_bucket_batch(rec)? else {
            return Ok(false);
        };
        extra(self, &mut b)?;
        self.commit(b, true)?;
        Ok(true)
    }

    /// The batch that creates the bucket `rec` names (with its usage counters); `None`
    /// when a bucket of that name exists.
    ///
    /// # Errors
    /// The read's, or an encoding's.
    pub fn create_bucket_batch(&self, rec: &BucketRecord) -> Result<Option<Batch>, MetaError> {
        if self.bucket(&rec.name)?.is_some() {
            return Ok(None);
        }
        let mut b = Batch::default();
        b.put(
            Cf::Buckets,
            rec.name.as_str().as_bytes().to_vec(),
            rec.encode()?,
        );
        // Recorded from the start: a bucket without counters is one an earlier release
        // wrote, counted once at open.
        b.set_usage(&rec.name, &BucketUsage::default())?;
        Ok(Some(b))
    }

    /// Every bucket, by name.
    pub fn buckets(&self) -> Result<Vec<BucketRecord>, MetaError> {
        self.collect(Cf::Buckets, b"", usize::MAX)
    }

    /// One version of `key`, if it exists (delete markers included).
    pub fn version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.get(Cf::Versions, &keys::version_key(bucket, key, vid))
    }

    /// The newest version of `key`, delete marker or not.
    pub fn latest(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let prefix = keys::object_prefix(bucket, key);
        let mut found = None;
        self.db.scan(Cf::Versions, &prefix, &mut |k, v| {
            if k.starts_with(&prefix) {
                found = Some(v.to_vec());
            }
            ControlFlow::Break(())
        })?;
        found.map(|b| VersionRecord::decode(&b)).transpose()
    }

    /// Visits every version in `bucket` in (key, newest first) order, from the first key
    /// `>= from` on.
    pub fn scan_versions(
        &self,
        bucket: &BucketName,
        from: &str,
        mut f: impl FnMut(ObjectKey, VersionRecord) -> ControlFlow<()>,
    ) -> Result<(), MetaError> {
        let prefix = keys::bucket_prefix(bucket);
        let start = keys::key_start(bucket, from);
        let mut err = None;
        self.db.scan(Cf::Versions, &start, &mut |k, v| {
            let Some(rest) = k.strip_prefix(prefix.as_slice()) else {
                return ControlFlow::Break(());
            };
            let Some((key, _)) = keys::split_version_key(rest) else {
                err = Some(MetaError::Decode {
                    record: "version key",
                    message: hex::encode(k),
                });
                return ControlFlow::Break(());
            };
            match VersionRecord::decode(v) {
                Ok(r) => f(key, r),
                Err(e) => {
                    err = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    /// Whether the bucket holds any version at all.
    pub fn bucket_is_empty(&self, bucket: &BucketName) -> Result<bool, MetaError> {
        let mut empty = true;
        self.scan_versions(bucket, "", |_, _| {
            empty = false;
            ControlFlow::Break(())
        })?;
        Ok(empty)
    }

    /// Records that shard files of `rec.segment` are about to be written. Not synced: if
    /// this record is lost in a power cut, so are the unsynced files it names, and any that
    /// survive are unreferenced orphans that scrub finds.
    pub fn add_pending(&self, rec: &PendingRecord) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.put(Cf::Pending, rec.segment.as_bytes().to_vec(), rec.encode()?);
        self.commit(b, false)
    }

    /// Forgets a pending write once its shard files are gone (removed, or never made). Not
    /// synced: a record that survives a power cut only makes start-up remove files again,
    /// which is harmless.
    pub fn drop_pending(&self, segment: &SegmentId) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.delete(Cf::Pending, segment.as_bytes().to_vec());
        self.commit(b, false)
    }

    /// Every write whose shard files may exist without a version naming them: at start,
    /// the store removes their files.
    pub fn pending(&self) -> Result<Vec<PendingRecord>, MetaError> {
        self.collect(Cf::Pending, b"", usize::MAX)
    }

    /// Every version of `key`, newest first.
    pub fn versions_of(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Vec<VersionRecord>, MetaError> {
        self.collect(Cf::Versions, &keys::object_prefix(bucket, key), usize::MAX)
    }

    /// Commits a new version in one synced batch: the version record, its tags, the end
    /// of its segments' pending state, repair entries for shards that could not be written,
    /// and the removal of the version it `replaces` (a key's previous null version), whose
    /// deletion the lock layer has already allowed. Fails if the version already exists,
    /// or if the key's current object does not meet `condition`.
    #[cfg(test)]
    pub(crate) fn commit_version(&self, new: &NewVersion<'_>) -> Result<(), MetaError> {
        self.write_guarded(|m| Ok((m.commit_version_batch(new)?, ())))
    }

    /// The checks and the batch of a new version, without writing: call it under the
    /// write guard (`Meta::write_guarded`), as the command applier does (which adds the
    /// replication log's entries to the batch).
    ///
    /// # Errors
    /// [`MetaError::BucketGone`], [`MetaError::ConditionFailed`],
    /// [`MetaError::ReplacesLocked`], [`MetaError::VersionExists`], or a read's error.
    pub fn commit_version_batch(&self, new: &NewVersion<'_>) -> Result<Batch, MetaError> {
        let NewVersion {
            bucket,
            key,
            record: rec,
            repairs,
            replaces,
            condition,
            tags,
            inline,
            lock,
        } = *new;
        let vkey = keys::version_key(bucket, key, &rec.version_id);
        let mut b = Batch::default();
        if let Some(old) = replaces {
            delete_version_keys(&mut b, keys::version_key(bucket, key, old));
        }
        if let Some(lock) = lock.filter(|l| !l.is_empty()) {
            b.put(Cf::Locks, vkey.clone(), lock.encode()?);
        }
        if let Some(tags) = tags.filter(|t| !t.tags.is_empty()) {
            b.put(Cf::Tags, vkey.clone(), tags.encode()?);
        }
        if let Some(data) = inline {
            b.put(Cf::Inline, vkey.clone(), data.encode()?);
        }
        for seg in &rec.segments {
            b.delete(Cf::Pending, seg.id.as_bytes().to_vec());
        }
        for r in repairs {
            b.put(Cf::Repair, repair_key(r), r.encode()?);
        }
        b.put(Cf::Versions, vkey.clone(), rec.encode()?);
        // Checked under the guard: a bucket deleted while the body streamed takes no version.
        if self.bucket(bucket)?.is_none() {
            return Err(MetaError::BucketGone {
                bucket: bucket.clone(),
            });
        }
        if *condition != WriteCondition::Always
            && let Err(failure) = condition.check(self.latest(bucket, key)?.as_ref())
        {
            return Err(MetaError::ConditionFailed {
                bucket: bucket.clone(),
                key: key.clone(),
                failure,
            });
        }
        // Defence in depth: the store asked the lock layer before replacing, but a lock
        // state that appeared since then (or a caller that forgot) must still win.
        if let Some(old) = replaces
            && self
                .db
                .get(Cf::Locks, &keys::version_key(bucket, key, old))?
                .is_some()
        {
            return Err(MetaError::ReplacesLocked {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: *old,
            });
        }
        if self.db.get(Cf::Versions, &vkey)?.is_some() {
            return Err(MetaError::VersionExists {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: rec.version_id,
            });
        }
        self.note_write(&mut b, bucket, rec.created)?;
        Ok(b)
    }

    /// The Object Lock state of a version (empty if it has none).
    pub fn lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
    ) -> Result<LockRecord, MetaError> {
        Ok(self
            .get(Cf::Locks, &keys::version_key(bucket, key, vid))?
            .unwrap_or_default())
    }

    /// A bucket's erasure coding across sites, if it set one.
    pub fn bucket_geo(&self, bucket: &BucketName) -> Result<Option<BucketGeo>, MetaError> {
        self.get(Cf::Cluster, &geo_key(bucket))
    }

    /// A bucket's lifecycle configuration, if it has one.
    pub fn lifecycle(&self, bucket: &BucketName) -> Result<Option<LifecycleConfig>, MetaError> {
        self.get(Cf::Cluster, &lifecycle_key(bucket))
    }

    /// Sets (or, with `None`, removes) a bucket's lifecycle configuration.
    pub fn set_lifecycle(
        &self,
        bucket: &BucketName,
        config: Option<&LifecycleConfig>,
    ) -> Result<(), MetaError> {
        self.set_lifecycle_and(bucket, config, |_, _| Ok(()))
    }

    /// [`Meta::set_lifecycle`], with what `extra` adds to the same batch (the audit
    /// trail's leaf).
    ///
    /// # Errors
    /// Those of [`Meta::set_lifecycle`], and `extra`'s.
    pub fn set_lifecycle_and(
        &self,
        bucket: &BucketName,
        config: Option<&LifecycleConfig>,
        extra: impl FnOnce(&Self, &mut Batch) -> Result<(), MetaError>,
    ) -> Result<(), MetaError> {
        let _g = self.guard();
        // A bucket deleted meanwhile must not leave rules for a later bucket of its name.
        if self.bucket(bucket)?.is_none() {
            return Err(MetaError::BucketGone {
                bucket: bucket.clone(),
            });
        }
        let mut b = Batch::default();
        extra(self, &mut b)?;
        match config {
            Some(c) => b.put(Cf::Cluster, lifecycle_key(bucket), c.encode()?),
            None => b.delete(Cf::Cluster, lifecycle_key(bucket)),
        }
        self.commit(b, true)
    }

    /// The inline bytes of a version.
    pub fn inline(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
    ) -> Result<Option<InlineRecord>, MetaError> {
        self.get(Cf::Inline, &keys::version_key(bucket, key, vid))
    }

    /// The tags of a version (empty if none).
    pub fn tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
    ) -> Result<TagSet, MetaError> {
        Ok(self
            .get(Cf::Tags, &keys::version_key(bucket, key, vid))?
            .unwrap_or_default())
    }

    /// Replaces a version's tags (an empty set removes them). Tags are metadata about a
    /// version, not its content: changing them creates no version. Fails if the version
    /// is gone.
    pub fn set_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        vid: &VersionId,
        tags: &TagSet,
    ) -> Result<bool, MetaError> {
        let vkey = keys::version_key(bucket, key, vid);
        let mut b = Batch::default();
        if tags.tags.is_empty() {
            b.delete(Cf::Tags, vkey.clone());
        } else {
            b.put(Cf::Tags, vkey.clone(), tags.encode()?);
        }
        let _g = self.guard();
        if self.db.get(Cf::Versions, &vkey)?.is_none() {
            return Ok(false);
        }
        self.commit(b, true)?;
        Ok(true)
    }

    /// Removes a bucket if it holds no version; returns whether it was removed.
    pub fn delete_bucket_if_empty(&self, name: &BucketName) -> Result<bool, MetaError> {
        self.delete_bucket_if_empty_and(name, |_, _| Ok(()))
    }

    /// [`Meta::delete_bucket_if_empty`], with what `extra` adds to the same batch (the
    /// audit trail's leaf) when the bucket goes.
    ///
    /// # Errors
    /// The read's, `extra`'s or the write's.
    pub fn delete_bucket_if_empty_and(
        &self,
        name: &BucketName,
        extra: impl FnOnce(&Self, &mut Batch) -> Result<(), MetaError>,
    ) -> Result<bool, MetaError> {
        let _g = self.guard();
        let Some(mut b) = self.delete_bucket_batch(name)? else {
            return Ok(false);
        };
        extra(self, &mut b)?;
        self.commit(b, true)?;
        Ok(true)
    }

    /// The batch that removes the bucket `name` (its record, lifecycle configuration,
    /// activity and usage); `None` while it holds a version.
    ///
    /// # Errors
    /// The read's.
    pub fn delete_bucket_batch(&self, name: &BucketName) -> Result<Option<Batch>, MetaError> {
        if !self.bucket_is_empty(name)? {
            return Ok(None);
        }
        let mut b = Batch::default();
        b.delete(Cf::Buckets, name.as_str().as_bytes().to_vec());
        b.delete(Cf::Cluster, lifecycle_key(name));
        b.delete(Cf::Cluster, geo_key(name));
        b.delete(Cf::Cluster, activity_key(name));
        b.drop_usage(name);
        Ok(Some(b))
    }

    /// Records a new multipart upload.
    pub fn put_upload(&self, rec: &UploadRecord) -> Result<(), MetaError> {
        self.commit(self.upload_batch(rec)?, true)
    }

    /// The batch that records the multipart upload `rec`.
    ///
    /// # Errors
    /// [`MetaError::Encode`].
    pub fn upload_batch(&self, rec: &UploadRecord) -> Result<Batch, MetaError> {
        let mut b = Batch::default();
        b.put(
            Cf::Uploads,
            keys::upload_key(&rec.bucket, &rec.key, &rec.upload_id),
            rec.encode()?,
        );
        Ok(b)
    }

    /// A multipart upload in progress, if it is (not yet completed or aborted).
    pub fn upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &SegmentId,
    ) -> Result<Option<UploadRecord>, MetaError> {
        self.get(Cf::Uploads, &keys::upload_key(bucket, key, id))
    }

    /// Every upload in progress in `bucket`, ordered by key then age.
    pub fn uploads(&self, bucket: &BucketName) -> Result<Vec<UploadRecord>, MetaError> {
        self.collect(Cf::Uploads, &keys::upload_key_prefix(bucket), usize::MAX)
    }

    /// The parts uploaded so far, by part number.
    pub fn parts(&self, id: &SegmentId) -> Result<Vec<PartRecord>, MetaError> {
        self.collect(Cf::Uploads, &keys::part_prefix(id), usize::MAX)
    }

    /// Commits a part (its segment leaves the pending state). Returns the part it replaced,
    /// whose data the caller removes. Fails if the upload was completed or aborted meanwhile.
    pub fn commit_part(
        &self,
        upload: &UploadRecord,
        part: &PartRecord,
    ) -> Result<Option<PartRecord>, MetaError> {
        self.write_guarded(|m| m.commit_part_batch(upload, part))
    }

    /// The checks and the batch of [`Meta::commit_part`], without writing (under the
    /// write guard).
    ///
    /// # Errors
    /// [`MetaError::UploadGone`], or a read's error.
    pub fn commit_part_batch(
        &self,
        upload: &UploadRecord,
        part: &PartRecord,
    ) -> Result<(Batch, Option<PartRecord>), MetaError> {
        let pkey = keys::part_key(&upload.upload_id, part.part_number);
        let mut b = Batch::default();
        if let Some(seg) = &part.segment {
            b.delete(Cf::Pending, seg.id.as_bytes().to_vec());
        }
        b.put(Cf::Uploads, pkey.clone(), part.encode()?);
        if self
            .upload(&upload.bucket, &upload.key, &upload.upload_id)?
            .is_none()
        {
            return Err(MetaError::UploadGone {
                upload_id: upload.upload_id,
            });
        }
        let replaced = self.get::<PartRecord>(Cf::Uploads, &pkey)?;
        Ok((b, replaced))
    }

    /// Ends an upload: removes its record and all its part records, and (on Complete)
    /// commits `version` (with its lock state and repair entries) replacing its
    /// `replaces`, in one synced batch. `used` are the parts
    /// the version is made of, as Complete read them: if one was re-uploaded since, the
    /// version would point at removed data, so Complete fails instead.
    #[cfg(test)]
    pub(crate) fn finish_upload(
        &self,
        upload: &UploadRecord,
        version: Option<FinishedVersion<'_>>,
        used: &[&PartRecord],
    ) -> Result<Vec<PartRecord>, MetaError> {
        self.write_guarded(|m| m.finish_upload_batch(upload, version, used))
    }

    /// The checks and the batch of `Meta::finish_upload`, without writing (under the
    /// write guard).
    ///
    /// # Errors
    /// [`MetaError::UploadGone`], [`MetaError::PartChanged`], [`MetaError::BucketGone`],
    /// [`MetaError::ConditionFailed`], [`MetaError::ReplacesLocked`], or a read's error.
    pub fn finish_upload_batch(
        &self,
        upload: &UploadRecord,
        version: Option<FinishedVersion<'_>>,
        used: &[&PartRecord],
    ) -> Result<(Batch, Vec<PartRecord>), MetaError> {
        let tags = TagSet {
            tags: upload.tags.clone(),
        };
        let ukey = keys::upload_key(&upload.bucket, &upload.key, &upload.upload_id);
        if self.db.get(Cf::Uploads, &ukey)?.is_none() {
            return Err(MetaError::UploadGone {
                upload_id: upload.upload_id,
            });
        }
        let parts = self.parts(&upload.upload_id)?;
        for u in used {
            if !parts.iter().any(|p| p == *u) {
                return Err(MetaError::PartChanged {
                    upload_id: upload.upload_id,
                    part_number: u.part_number,
                });
            }
        }
        let mut b = Batch::default();
        b.delete(Cf::Uploads, ukey);
        for p in &parts {
            b.delete(
                Cf::Uploads,
                keys::part_key(&upload.upload_id, p.part_number),
            );
        }
        if let Some(FinishedVersion {
            record: rec,
            replaces,
            lock,
            repairs,
            condition,
            completed,
        }) = version
        {
            if self.bucket(&upload.bucket)?.is_none() {
                return Err(MetaError::BucketGone {
                    bucket: upload.bucket.clone(),
                });
            }
            if *condition != WriteCondition::Always
                && let Err(failure) =
                    condition.check(self.latest(&upload.bucket, &upload.key)?.as_ref())
            {
                return Err(MetaError::ConditionFailed {
                    bucket: upload.bucket.clone(),
                    key: upload.key.clone(),
                    failure,
                });
            }
            if let Some(old) = replaces {
                let okey = keys::version_key(&upload.bucket, &upload.key, old);
                if self.db.get(Cf::Locks, &okey)?.is_some() {
                    return Err(MetaError::ReplacesLocked {
                        bucket: upload.bucket.clone(),
                        key: upload.key.clone(),
                        version_id: *old,
                    });
                }
                delete_version_keys(&mut b, okey);
            }
            let vkey = keys::version_key(&upload.bucket, &upload.key, &rec.version_id);
            if !tags.tags.is_empty() {
                b.put(Cf::Tags, vkey.clone(), tags.encode()?);
            }
            if !lock.is_empty() {
                b.put(Cf::Locks, vkey.clone(), lock.encode()?);
            }
            for r in repairs {
                b.put(Cf::Repair, repair_key(r), r.encode()?);
            }
            b.put(
                Cf::Uploads,
                keys::completed_key(&upload.upload_id),
                completed.encode()?,
            );
            b.put(Cf::Versions, vkey, rec.encode()?);
            self.note_write(&mut b, &upload.bucket, rec.created)?;
        }
        Ok((b, parts))
    }

    /// The outcome of upload `id`'s Complete, if it completed and the record is kept.
    pub fn completed_upload(&self, id: &SegmentId) -> Result<Option<CompletedUpload>, MetaError> {
        self.get(Cf::Uploads, &keys::completed_key(id))
    }

    /// Forgets the outcomes of Completes older than `before`; returns how many. One this
    /// release cannot read (a newer release's) is left alone: it only answers retries.
    pub fn forget_completed_uploads(&self, before: Timestamp) -> Result<usize, MetaError> {
        let mut old: Vec<Vec<u8>> = Vec::new();
        self.db.scan(Cf::Uploads, b"C", &mut |k, v| {
            if !k.starts_with(b"C") {
                return ControlFlow::Break(());
            }
            match CompletedUpload::decode(v) {
                Ok(c) if c.completed < before => old.push(k.to_vec()),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "an unreadable Complete outcome is kept"),
            }
            ControlFlow::Continue(())
        })?;
        let n = old.len();
        if n > 0 {
            let mut b = Batch::default();
            for k in old {
                b.delete(Cf::Uploads, k);
            }
            self.commit(b, false)?;
        }
        Ok(n)
    }

    /// Queues shards for repair. Not synced: a lost entry is found again by the next read
    /// or scrub of the same version.
    pub fn enqueue_repair(&self, rec: &RepairRecord) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.put(Cf::Repair, repair_key(rec), rec.encode()?);
        self.commit(b, false)
    }

    /// Up to `limit` repair entries, the earliest due first (due or not).
    pub fn repairs(&self, limit: usize) -> Result<Vec<RepairRecord>, MetaError> {
        self.collect(Cf::Repair, b"", limit)
    }

    /// Replaces the entries `old` by `next` (a failed attempt pushed back to `next.due`),
    /// in one batch.
    pub fn requeue_repair(
        &self,
        old: &[RepairRecord],
        next: &RepairRecord,
    ) -> Result<(), MetaError> {
        let mut b = Batch::default();
        for o in old {
            b.delete(Cf::Repair, repair_key(o));
        }
        b.put(Cf::Repair, repair_key(next), next.encode()?);
        self.commit(b, false)
    }

    /// Writes raw bytes under `key` in `cf`, bypassing every record check and the write
    /// guard: for tests that plant a record this release cannot read (a newer release's
    /// format, a torn value). Only in test builds (`cfg(test)` or the `test-hooks` feature,
    /// which the end-to-end tests' `engine-driver` enables): never in a node's binary.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn put_raw(&self, cf: Cf, key: &[u8], value: &[u8]) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.put(cf, key.to_vec(), value.to_vec());
        self.commit(b, true)
    }

    /// Removes a record, bypassing every check and the write guard: for tests that plant
    /// a record or make one vanish behind the node's back (`test-hooks` only).
    ///
    /// # Errors
    /// The write's.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn delete_raw(&self, cf: Cf, key: &[u8]) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.delete(cf, key.to_vec());
        self.commit(b, true)
    }

    /// The shards of `segment` that repair placed elsewhere: (index, placement).
    pub fn placements(&self, segment: &SegmentId) -> Result<Vec<(u16, ShardPlacement)>, MetaError> {
        let prefix = segment.as_bytes().to_vec();
        let mut out = Vec::new();
        let mut err = None;
        self.db.scan(Cf::Placement, &prefix, &mut |k, v| {
            if !k.starts_with(&prefix) || k.len() != prefix.len() + 2 {
                return ControlFlow::Break(());
            }
            let index = u16::from_be_bytes([k[prefix.len()], k[prefix.len() + 1]]);
            match ShardPlacement::decode(v) {
                Ok(p) => {
                    out.push((index, p));
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    err = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        err.map_or(Ok(out), Err)
    }

    /// Records where repair put shard `index` of `segment`.
    pub fn set_placement(
        &self,
        segment: &SegmentId,
        index: u16,
        p: &ShardPlacement,
    ) -> Result<(), MetaError> {
        self.commit(self.placement_batch(segment, index, p)?, true)
    }

    /// The batch of [`Meta::set_placement`] (the `SetPlacement` command's).
    pub fn placement_batch(
        &self,
        segment: &SegmentId,
        index: u16,
        p: &ShardPlacement,
    ) -> Result<Batch, MetaError> {
        let mut key = segment.as_bytes().to_vec();
        key.extend_from_slice(&index.to_be_bytes());
        let mut b = Batch::default();
        b.put(Cf::Placement, key, p.encode()?);
        Ok(b)
    }

    /// Forgets the placements of a segment whose data was removed.
    pub fn drop_placements(&self, segment: &SegmentId) -> Result<(), MetaError> {
        self.commit(self.drop_placements_batch(segment)?, true)
    }

    /// The batch of [`Meta::drop_placements`] (the `DropPlacements` command's).
    pub fn drop_placements_batch(&self, segment: &SegmentId) -> Result<Batch, MetaError> {
        let mut b = Batch::default();
        for (i, _) in self.placements(segment)? {
            let mut key = segment.as_bytes().to_vec();
            key.extend_from_slice(&i.to_be_bytes());
            b.delete(Cf::Placement, key);
        }
        Ok(b)
    }

    /// Removes a repair entry once the repair worker handled it.
    pub fn dequeue_repair(&self, rec: &RepairRecord) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.delete(Cf::Repair, repair_key(rec));
        self.commit(b, false)
    }

    /// A record an earlier release kept in `system` (for imports of old records).
    pub fn system_get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get(Cf::System, key.as_bytes())
    }

    /// One of this node's own records (checkpoints, the retention clock), raw.
    pub fn node_get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get(Cf::Node, key.as_bytes())
    }

    /// Writes one of this node's own records; with `sync`, durable on return.
    pub fn node_put(&self, key: &str, value: Vec<u8>, sync: bool) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.put(Cf::Node, key.as_bytes().to_vec(), value);
        self.commit(b, sync)
    }

    /// Removes one of this node's own records, synced.
    pub fn node_delete(&self, key: &str) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.delete(Cf::Node, key.as_bytes().to_vec());
        self.commit(b, true)
    }

    /// A record of a keyed space (identities, alerts) by its key.
    pub fn kv_get<R: Record>(&self, space: Space, key: &str) -> Result<Option<R>, MetaError> {
        self.get(space.cf(), key.as_bytes())
    }

    /// Writes records of a space and removes others in one synced batch.
    pub fn kv_write(
        &self,
        space: Space,
        puts: &[(String, Vec<u8>)],
        deletes: &[String],
    ) -> Result<(), MetaError> {
        let mut b = Batch::default();
        for (k, v) in puts {
            b.put(space.cf(), k.as_bytes().to_vec(), v.clone());
        }
        for k in deletes {
            b.delete(space.cf(), k.as_bytes().to_vec());
        }
        self.commit(b, true)
    }

    /// Up to `limit` keys of a space that start with `prefix`, in order.
    ///
    /// # Errors
    /// A read's.
    pub fn kv_keys(
        &self,
        space: Space,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        self.db.scan(space.cf(), prefix.as_bytes(), &mut |k, _| {
            if !k.starts_with(prefix.as_bytes()) || out.len() >= limit {
                return ControlFlow::Break(());
            }
            out.push(String::from_utf8_lossy(k).into_owned());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Up to `limit` records of a space whose keys start with `prefix`, in key order.
    pub fn kv_list<R: Record>(
        &self,
        space: Space,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<R>, MetaError> {
        self.collect(space.cf(), prefix.as_bytes(), limit)
    }

    /// The raw value under `key` in the replication log family.
    pub(crate) fn replog_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get(Cf::Replog, key)
    }

    /// Up to `limit` raw (key, value) pairs of the replication log family whose keys
    /// start with `prefix` and are at least `from`, in key order.
    pub(crate) fn replog_scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<RawPair>, MetaError> {
        self.raw_scan(Cf::Replog, prefix, from, limit)
    }

    /// The raw value under `key` in the audit family.
    pub(crate) fn audit_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get(Cf::Audit, key)
    }

    /// The audit log's head in memory, if loaded ([`Batch::keep_audit_head`]).
    pub(crate) fn audit_head(&self) -> Option<AuditHead> {
        self.audit_head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Keeps `head` as the audit log's head in memory (loaded from the family) unless a
    /// head is kept already (a batch written meanwhile carried a newer one); returns the
    /// one kept.
    pub(crate) fn set_audit_head_if_none(&self, head: AuditHead) -> AuditHead {
        self.audit_head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(head)
            .clone()
    }

    /// Up to `limit` raw pairs of the audit family, as [`Meta::replog_scan`].
    pub(crate) fn audit_scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<RawPair>, MetaError> {
        self.raw_scan(Cf::Audit, prefix, from, limit)
    }

    /// Up to `limit` raw pairs of family `cf` whose keys start with `prefix` and are at
    /// least `from`, in key order.
    fn raw_scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<RawPair>, MetaError> {
        let mut out = Vec::new();
        let start = if from > prefix { from } else { prefix };
        self.db.scan(cf, start, &mut |k, v| {
            if !k.starts_with(prefix) || out.len() >= limit {
                return ControlFlow::Break(());
            }
            out.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Removes a record an earlier release kept in `system` (once imported).
    pub fn system_delete(&self, key: &str) -> Result<(), MetaError> {
        let mut b = Batch::default();
        b.delete(Cf::System, key.as_bytes().to_vec());
        self.commit(b, true)
    }
}
