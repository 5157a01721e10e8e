//! The object engine: buckets and versions over erasure-coded, self-verifying shard files.
//!
//! The write path ([`write`]) streams a body in stripes, encodes each stripe K+M, appends the
//! blocks to one shard file per disk, makes the files durable, and only then commits the
//! version's metadata. The read path (`store/read.rs`) streams a version back, verifying every block
//! it uses and reconstructing around missing or corrupt shards.
//!
//! There is no overwrite: every write creates a new version, and no method rewrites a
//! version's data or record.

mod copy;
mod error;
mod geo;
mod membership;
mod multipart;
mod object_lock;
mod quota;
mod range;
mod read;
mod rebalance;
mod replica;
mod scrub;
mod sosapi;
mod tagging;
mod versions;
mod write;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

pub use copy::{CopySource, MetadataDirective};
pub use error::StoreError;
pub use geo::{GeoStatus, SiteRebuild};
pub use multipart::{
    COMPLETED_KEPT, CompletedPart, MAX_PARTS, MIN_PART_SIZE, MultipartChecksum, PartInfo,
};
pub use object_lock::LockConfiguration;
pub use range::ByteRange;
pub use read::{Body, ObjectRead};
pub use rebalance::{Moves, OldCopy};
pub use scrub::{NODE_GRACE, ShardFault, VersionScrub};
pub use versions::{
    DeleteOutcome, ListPage, ListQuery, VersionEntry, VersionRef, VersionsPage, VersionsQuery,
};
pub use write::{PutOptions, PutOutcome};

use crate::audit::{Requester, Trail};
use crate::clock::SharedClock;
use crate::cluster::placement::Topology;
use crate::command::{CommandError, CommandLog, LocalLog, MetaCommand, Outcome, Stamped};
use crate::config::NodeConfig;
use crate::disk::{DiskStatus, DiskUuid, LocalDisk, ShardName, ShardStore};
use crate::lock::{Monotonic, RetentionClock, SystemMonotonic};
use crate::meta::{BucketRecord, Meta, RepairRecord, VersionKind, VersionRecord, Versioning};
use crate::types::{BucketName, ObjectKey};

/// The disks new shards may go to: this node's first, in configuration order, then the
/// other nodes' of a cluster; and their failure domains (indices match).
struct DiskSet {
    disks: Vec<Arc<dyn ShardStore>>,
    topology: Topology,
    /// The cluster layout's epoch the weights come from (0 on one node).
    epoch: u64,
    /// The other nodes' disks among them.
    remote: Vec<crate::disk::RemoteDisk>,
    /// Built from the cluster's layout ([`Store::use_cluster_disks`]): until then a
    /// member knows its own disks only.
    from_cluster: bool,
}

/// A handle on one node's engine. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Who the calls of this handle are for: recorded by the audit trail with every
    /// change and refusal they make ([`Store::acting_for`]).
    by: Option<Arc<Requester>>,
}

struct Inner {
    config: NodeConfig,
    meta: Arc<Meta>,
    /// Where metadata commands are agreed and applied (one node: under the write guard).
    log: Arc<crate::command::LogSwitch>,
    /// This node's own disks, in configuration order.
    disks: Vec<Arc<dyn ShardStore>>,
    disk_index: HashMap<String, usize>,
    /// Where new shards may go: this node's disks, and in a cluster the other nodes'
    /// ([`Store::use_cluster_disks`]).
    placement: std::sync::RwLock<Arc<DiskSet>>,
    /// One codec per K+M in use (the node's, buckets' own, older segments').
    codecs: crate::erasure::Codecs,
    /// The wall clock: creation times, Last-Modified, ids.
    clock: SharedClock,
    /// The time every Object Lock decision reads.
    retention: RetentionClock,
    /// One repair at a time: scrub and the repair worker must not rebuild the same shard
    /// twice (each checks again once it holds this).
    repair: std::sync::Mutex<()>,
    /// The audit trail: commands write their leaves in their own batches; refusals and
    /// the listeners' events go through its queue.
    trail: Arc<Trail>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("disks", &self.inner.disks.len())
            .field("ec", &self.inner.config.ec)
            .finish()
    }
}

impl Store {
    /// Opens the node: validates the config, opens (formatting on first use) every disk,
    /// opens the metadata store, and rolls back writes that a crash left unfinished.
    pub fn open(config: NodeConfig, clock: SharedClock) -> Result<Self, StoreError> {
        Self::open_with(config, clock, Arc::new(SystemMonotonic::default()))
    }

    /// [`Store::open`] with an injected monotonic clock, which bounds how fast retention
    /// time may advance (see [`RetentionClock`]).
    pub fn open_with(
        config: NodeConfig,
        clock: SharedClock,
        mono: Arc<dyn Monotonic>,
    ) -> Result<Self, StoreError> {
        config.validate()?;
        let disks = config
            .disks
            .iter()
            .map(|spec| LocalDisk::open(spec.clone()).map(|d| Arc::new(d) as Arc<dyn ShardStore>))
            .collect::<Result<Vec<_>, _>>()?;
        Self::open_on(config, clock, mono, disks)
    }

    /// [`Store::open_with`] on shard stores the caller opened (tests inject faulty disks).
    ///
    /// # Errors
    /// [`StoreError::Config`] when `disks` are not the configured disks in their order,
    /// and the errors of [`Store::open`].
    pub fn open_on(
        config: NodeConfig,
        clock: SharedClock,
        mono: Arc<dyn Monotonic>,
        disks: Vec<Arc<dyn ShardStore>>,
    ) -> Result<Self, StoreError> {
        config.validate()?;
        let given: Vec<String> = disks.iter().map(|d| d.id().to_owned()).collect();
        let configured: Vec<String> = config.disks.iter().map(|d| d.id.clone()).collect();
        if given != configured {
            return Err(crate::config::ConfigError::DisksMismatch { configured, given }.into());
        }
        let meta_dir = config.create_meta_dir()?;
        let disk_index = config
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        let meta = Arc::new(Meta::open(&meta_dir)?);
        let retention = RetentionClock::open(meta.clone(), clock.clone(), mono)?;
        let codecs = crate::erasure::Codecs::default();
        // The node's own profile is checked at start.
        codecs.get(config.ec.data, config.ec.parity)?;
        let trail = Arc::new(Trail::open(meta.clone())?);
        let store = Self {
            by: None,
            inner: Arc::new(Inner {
                trail: trail.clone(),
                placement: std::sync::RwLock::new(Arc::new(DiskSet {
                    topology: Topology::new(config.disks.clone()),
                    epoch: 0,
                    disks: disks.clone(),
                    remote: Vec::new(),
                    from_cluster: false,
                })),
                config,
                log: Arc::new(crate::command::LogSwitch::new(Arc::new(
                    LocalLog::with_trail(meta.clone(), trail.clone()),
                ))),
                meta,
                disks,
                disk_index,
                codecs,
                clock,
                retention,
                repair: std::sync::Mutex::new(()),
            }),
        };
        // A judgement of the peers' clocks kept from before a restart holds until the
        // next one: a node found skewed does not take timed writes for its first seconds.
        store
            .inner
            .log
            .set_unvouched(store.inner.retention.peer_skewed());
        store.roll_back_pending()?;
        Ok(store)
    }

    /// Shard files of writes that never committed are removed: after a crash the new
    /// version leaves no trace.
    fn roll_back_pending(&self) -> Result<(), StoreError> {
        let pending = self.inner.meta.pending()?;
        for p in &pending {
            let mut removed = true;
            for (index, disk) in &p.shards {
                if let Some(d) = self.disk(disk)
                    && let Err(e) = d.remove(ShardName::new(p.segment, *index as usize))
                {
                    // One bad disk does not stop the node: the record stays, so the next
                    // start tries again (and scrub's orphan check finds the file).
                    tracing::warn!(segment = %p.segment, error = %e, "cannot remove an unfinished shard");
                    removed = false;
                }
            }
            if removed {
                self.inner.meta.drop_pending(&p.segment)?;
            }
        }
        if !pending.is_empty() {
            tracing::info!(
                writes = pending.len(),
                "rolled back writes left unfinished by a crash"
            );
        }
        Ok(())
    }

    /// The node configuration the store was opened with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The metadata store, for the layers above the engine (background workers, the admin
    /// API's reads). Removals and lock changes go through the store, which asks the lock
    /// layer.
    pub fn meta(&self) -> &Meta {
        &self.inner.meta
    }

    /// A shared handle on the metadata store (for the identity store, which keeps its
    /// records there).
    pub fn meta_handle(&self) -> Arc<Meta> {
        self.inner.meta.clone()
    }

    /// The wall clock the store reads (injected: tests drive it).
    pub fn clock(&self) -> &crate::clock::SharedClock {
        &self.inner.clock
    }

    /// The clock Object Lock decisions read.
    pub fn retention_clock(&self) -> &RetentionClock {
        &self.inner.retention
    }

    /// The log this engine's metadata commands go through (the identity store's writes
    /// go there too, through [`crate::command::IdentityProposer`]).
    pub fn command_log(&self) -> Arc<dyn CommandLog> {
        self.inner.log.clone()
    }

    /// Sends this node's metadata commands through the cluster's Raft group from now on
    /// (membership changes so far: `consensus::RaftLog`); `runtime` runs the group.
    pub fn use_consensus(&self, group: crate::consensus::Group, runtime: tokio::runtime::Handle) {
        let local = LocalLog::with_trail(self.inner.meta.clone(), self.inner.trail.clone());
        self.inner.log.set(Arc::new(crate::consensus::RaftLog::new(
            group, local, runtime,
        )));
    }

    pub(crate) fn propose(&self, cmd: MetaCommand) -> Result<Outcome, CommandError> {
        let c = Stamped {
            cmd,
            now: self.inner.retention.readings(),
            by: self.by.as_deref().cloned(),
        };
        self.inner.log.propose(&c)
    }

    /// Waits until this node's metadata holds every command acknowledged anywhere before
    /// the call ([`CommandLog::barrier`]): on a cluster's member, before a read that
    /// decides what a command will name. Immediate on one node. On a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the cluster cannot confirm it.
    pub(crate) fn linearize(&self) -> Result<(), StoreError> {
        Ok(self.inner.log.barrier()?)
    }

    /// Whether this node runs the work that runs once per cluster, now
    /// ([`CommandLog::holds_lease`]): always on one node.
    pub fn holds_lease(&self) -> bool {
        self.inner.log.holds_lease() && !self.inner.retention.peer_skewed()
    }

    /// Takes the other members' wall clocks as this node just read them: their offset
    /// from its own (`lock::peer_offset`), for the retention clock to judge
    /// (`RetentionClock::note_peers`). While it is more than two minutes either way this
    /// node takes no write, holds no lease and does not stand for leadership. Returns
    /// whether it is skewed now.
    pub fn note_peer_clocks(&self, readings: &[crate::lock::PeerReading]) -> bool {
        let offset = crate::lock::peer_offset(readings, &self.site());
        let skewed = self.inner.retention.note_peers(offset);
        // Every proposal, the identity store's too, goes through the switch.
        self.inner.log.set_unvouched(skewed);
        // Every refresh: the group looks again at whether a leader is heard from.
        self.inner.log.set_electable(!skewed);
        skewed
    }

    /// Whether this node's scrub checks `rec` (issue 14, item 6: scrub coordination).
    /// Always on one node, and for an inline version (each node checks its own replica's
    /// bytes). On a cluster's member, one node checks each stored version: the member
    /// holding its first shard (in segment, then shard order, where the shards are now:
    /// a repair or a move records a new place) whose node this one reaches — its own, or
    /// another that answers — so with every member up the node of shard 0 checks it,
    /// and with that node down the next shard's takes over. A version none of whose
    /// shards is on a disk this node reaches (its nodes removed, its disks replaced) is
    /// checked by the lease holder, which reports it. Members decide alike from the same
    /// records and their own view of who answers; where views differ a version is
    /// checked twice rather than by nobody.
    pub fn scrubs(&self, rec: &VersionRecord) -> bool {
        if rec.inline || !self.has_barrier() {
            return true;
        }
        let set = self.disk_set();
        let answers = |disk: &str| {
            DiskUuid::parse(disk).is_some_and(|u| {
                set.remote
                    .iter()
                    .any(|d| d.uuid() == Some(u) && d.down_for().is_none())
            })
        };
        let mut any = false;
        for seg in &rec.segments {
            // A placement that cannot be read: the record's places (checked by someone).
            let locations = self
                .shard_locations(seg)
                .unwrap_or_else(|_| Self::recorded_locations(seg));
            for (disk, _) in locations {
                any = true;
                if self.disk_slot(&disk).is_some() {
                    return true;
                }
                if answers(&disk) {
                    return false;
                }
            }
        }
        !any || self.holds_lease()
    }

    /// Whether [`Store::linearize`] waits for anything (a cluster's member).
    pub(crate) fn has_barrier(&self) -> bool {
        self.inner.log.has_barrier()
    }

    /// The time a new version of `bucket/key` is made at (its `created`, and the first 8
    /// bytes of its id, by which a key's versions sort: the newest is the current one).
    /// On one node, the clock's reading (ids of one process strictly increase). On a
    /// cluster's member, at least a microsecond past the key's newest version once this
    /// node holds every write acknowledged before the call (a read barrier): nodes' clocks
    /// disagree, and a write through a node whose clock is behind must still sort after
    /// the version it follows. (Concurrent writes of one key through two nodes sort by
    /// their times so made, as S3 orders concurrent PUTs by time.)
    ///
    /// # Errors
    /// The barrier's ([`StoreError::Unavailable`]: the cluster cannot confirm it, 503), the
    /// metadata read's.
    pub(crate) fn version_time(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<crate::types::Timestamp, StoreError> {
        if self.has_barrier() {
            self.linearize()?;
        }
        self.version_time_linearized(bucket, key)
    }

    /// [`Store::version_time`] for a caller that took its read barrier already (a delete
    /// decides on the versions after one): no second round.
    ///
    /// # Errors
    /// The metadata read's.
    pub(crate) fn version_time_linearized(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<crate::types::Timestamp, StoreError> {
        let now = self.inner.clock.now();
        if !self.has_barrier() {
            return Ok(now);
        }
        Ok(match self.inner.meta.latest(bucket, key)? {
            Some(v) if v.version_id.timestamp() >= now => v.version_id.timestamp().plus_micros(1),
            _ => now,
        })
    }

    /// This store, for calls made on behalf of `by` (a request's user, key, address and
    /// request id): the audit trail names it with each change and refusal.
    pub fn acting_for(&self, by: Requester) -> Store {
        Store {
            inner: self.inner.clone(),
            by: Some(Arc::new(by)),
        }
    }

    /// Who this handle's calls are for, if anyone.
    pub fn requester(&self) -> Option<&Requester> {
        self.by.as_deref()
    }

    /// The audit trail.
    pub fn trail(&self) -> &Arc<Trail> {
        &self.inner.trail
    }

    /// Logs `event` and queues its leaf in the trail, by this handle's requester, at the
    /// retention clock's readings now.
    pub fn audit(&self, event: &crate::audit::AuditEvent) {
        self.inner
            .trail
            .event(event, self.requester(), self.inner.retention.readings());
    }

    /// Which of this node's disks a shard record names: by UUID (records of this format
    /// on), or by configured id (older records, which only this node wrote).
    fn disk_slot(&self, name: &str) -> Option<usize> {
        if let Some(&i) = self.inner.disk_index.get(name) {
            return Some(i);
        }
        let uuid = DiskUuid::parse(name)?;
        self.inner.disks.iter().position(|d| d.uuid() == Some(uuid))
    }

    /// One of this node's disks, by a shard record's name for it.
    fn local_disk(&self, name: &str) -> Option<Arc<dyn ShardStore>> {
        self.disk_slot(name).map(|i| self.inner.disks[i].clone())
    }

    /// The disk a shard record names: one of this node's, or in a cluster another node's
    /// (by UUID).
    fn disk(&self, name: &str) -> Option<Arc<dyn ShardStore>> {
        if let Some(i) = self.disk_slot(name) {
            return Some(self.inner.disks[i].clone());
        }
        let uuid = DiskUuid::parse(name)?;
        self.disk_set()
            .disks
            .iter()
            .find(|d| d.uuid() == Some(uuid))
            .cloned()
    }

    /// Whether the disk a shard record names is another member's whose node has been
    /// unreachable for less than [`scrub::NODE_GRACE`]: repair waits for it.
    fn waits_for_node(&self, name: &str) -> bool {
        let Some(uuid) = DiskUuid::parse(name) else {
            return false;
        };
        self.disk_set()
            .remote
            .iter()
            .find(|d| d.uuid() == Some(uuid))
            .and_then(crate::disk::RemoteDisk::down_for)
            .is_some_and(|down| down < self.inner.config.node_grace)
    }

    /// The disks new shards may go to now, and their failure domains.
    fn disk_set(&self) -> Arc<DiskSet> {
        self.inner
            .placement
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// From now on new shards are placed over this node's disks, as disks of node
    /// `node` in site `site`, and `others` (other nodes' disks, each with its node and
    /// site in its spec), each disk weighted as `layout` says (one it does not name yet
    /// at [`crate::membership::layout::DEFAULT_WEIGHT`]).
    pub fn use_cluster_disks(
        &self,
        node: &str,
        site: &str,
        others: Vec<crate::disk::RemoteDisk>,
        layout: &crate::membership::layout::Layout,
    ) {
        let mut specs: Vec<crate::config::DiskSpec> = self
            .inner
            .disks
            .iter()
            .map(|d| crate::config::DiskSpec {
                node: node.to_owned(),
                site: site.to_owned(),
                ..d.spec().clone()
            })
            .collect();
        specs.extend(others.iter().map(|d| d.spec().clone()));
        let mut disks = self.inner.disks.clone();
        disks.extend(
            others
                .iter()
                .map(|d| Arc::new(d.clone()) as Arc<dyn ShardStore>),
        );
        let weights = disks
            .iter()
            .map(|d| {
                d.uuid()
                    .and_then(|u| layout.weight_of(u))
                    .unwrap_or(crate::membership::layout::DEFAULT_WEIGHT)
            })
            .collect();
        *self
            .inner
            .placement
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(DiskSet {
            topology: Topology::weighted(specs, weights),
            disks,
            remote: others,
            epoch: layout.epoch,
            from_cluster: true,
        });
    }

    /// The layout epoch new writes follow now (0 on one node, and before a cluster
    /// recorded a layout).
    pub fn layout_epoch(&self) -> u64 {
        self.disk_set().epoch
    }

    /// The other nodes' disks new shards may go to (none on one node).
    pub fn cluster_disks(&self) -> Vec<crate::disk::RemoteDisk> {
        self.disk_set().remote.clone()
    }

    /// Every disk new shards may go to (this node's, then the cluster's other nodes'),
    /// each with the node and site placement counts it in and its state as this node
    /// sees it now (a remote disk's as its node last reported it).
    pub fn placement_disks(&self) -> Vec<DiskStatus> {
        let set = self.disk_set();
        set.disks
            .iter()
            .zip(set.topology.disks())
            .map(|(d, spec)| DiskStatus {
                node: spec.node.clone(),
                site: spec.site.clone(),
                ..d.status()
            })
            .collect()
    }

    /// Every other member whose disks this node places shards on, by node id, with how
    /// long it has been unreachable from here (`None` while it answers): a member is
    /// unreachable when every call to each of its disks has failed since its last answer.
    pub fn member_reachability(&self) -> Vec<(String, Option<std::time::Duration>)> {
        let set = self.disk_set();
        let mut members: std::collections::BTreeMap<String, Option<std::time::Duration>> =
            std::collections::BTreeMap::new();
        for d in &set.remote {
            let node = d.spec().node.clone();
            let down = d.down_for();
            members
                .entry(node)
                .and_modify(|m| {
                    *m = match (*m, down) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        _ => None,
                    }
                })
                .or_insert(down);
        }
        members.into_iter().collect()
    }

    /// The site this node reports its disks in: its first disk's (`site1` by default).
    pub fn site(&self) -> String {
        self.inner
            .config
            .disks
            .first()
            .map(|d| d.site.clone())
            .unwrap_or_default()
    }

    /// Answers other nodes' calls for this node's disks.
    pub fn shard_server(&self) -> crate::disk::ShardServer {
        crate::disk::ShardServer::new(self.inner.disks.clone()).with_clock(self.inner.clock.clone())
    }

    /// The configured id of the disk a shard record names (its UUID, or its id in records
    /// older than the UUIDs); `None` when no disk of this node or of the cluster is, or
    /// is known to be, it (a replaced disk, or one offline since start).
    pub fn disk_id_of(&self, name: &str) -> Option<String> {
        self.disk(name).map(|d| d.id().to_owned())
    }

    /// The state of every disk: online, offline or full.
    pub fn disks(&self) -> Vec<DiskStatus> {
        // Named as placement counts them: in a cluster the member's id, not the
        // configuration's node name (this node's disks come first in the set).
        let set = self.disk_set();
        self.inner
            .disks
            .iter()
            .zip(set.topology.disks())
            .map(|(d, spec)| {
                if !d.probe() {
                    d.usable();
                }
                DiskStatus {
                    node: spec.node.clone(),
                    site: spec.site.clone(),
                    ..d.status()
                }
            })
            .collect()
    }

    /// Creates a bucket. With `object_lock` (or on a node that requires it for every
    /// bucket) Object Lock and versioning are enabled from the start.
    pub fn create_bucket(
        &self,
        name: &BucketName,
        object_lock: bool,
    ) -> Result<BucketRecord, StoreError> {
        let object_lock = object_lock || self.inner.config.require_object_lock;
        let rec = BucketRecord {
            name: name.clone(),
            created: self.inner.clock.now(),
            versioning: if object_lock {
                Versioning::Enabled
            } else {
                Versioning::Unversioned
            },
            object_lock,
            default_retention: None,
            policy: None,
            quota: None,
        };
        // A command, so that in a cluster every node creates it (the audit leaf is the
        // command's, `command::audit`).
        let created = match self.propose(MetaCommand::CreateBucket(Box::new(rec.clone())))? {
            Outcome::BucketCreated(c) => c,
            other => return Err(crate::command::unexpected(other).into()),
        };
        if !created {
            return Err(StoreError::BucketExists {
                bucket: name.clone(),
            });
        }
        Ok(rec)
    }

    /// The bucket's record, or [`StoreError::NoSuchBucket`].
    pub fn bucket(&self, name: &BucketName) -> Result<BucketRecord, StoreError> {
        self.inner
            .meta
            .bucket(name)?
            .ok_or_else(|| StoreError::NoSuchBucket {
                bucket: name.clone(),
            })
    }

    /// Every bucket's record, by name.
    pub fn buckets(&self) -> Result<Vec<BucketRecord>, StoreError> {
        Ok(self.inner.meta.buckets()?)
    }

    /// The version record of `key`: the given version, or the current one. A current
    /// version that is a delete marker reads as absent ([`StoreError::DeletedKey`]);
    /// naming a delete marker is [`StoreError::IsDeleteMarker`].
    pub fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<VersionRecord, StoreError> {
        self.bucket(bucket)?;
        if let Some((rec, _)) = self.sosapi_document(bucket, key, version)? {
            return Ok(rec);
        }
        let meta = &self.inner.meta;
        match version {
            Some(v) => match self.find_version(bucket, key, v)? {
                Some(r) if r.kind == VersionKind::DeleteMarker => Err(StoreError::IsDeleteMarker {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version: v.to_string(),
                    last_modified: r.created,
                }),
                Some(r) => Ok(r),
                None => Err(StoreError::NoSuchVersion {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version: v.to_string(),
                }),
            },
            None => match meta.latest(bucket, key)? {
                Some(r) if r.kind == VersionKind::Object => Ok(r),
                Some(r) => Err(StoreError::DeletedKey {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version: r.version_ref().to_string(),
                }),
                None => Err(StoreError::NoSuchKey {
                    bucket: bucket.clone(),
                    key: key.clone(),
                }),
            },
        }
    }

    /// Up to `limit` versions of `bucket` in (key, newest first) order, from `from_key` on.
    pub fn list_versions(
        &self,
        bucket: &BucketName,
        from_key: Option<&ObjectKey>,
        limit: usize,
    ) -> Result<Vec<(ObjectKey, VersionRecord)>, StoreError> {
        self.bucket(bucket)?;
        let mut out = Vec::new();
        let from = from_key.map_or("", |k| k.as_str());
        self.inner.meta.scan_versions(bucket, from, |k, v| {
            out.push((k, v));
            if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(out)
    }

    /// The repair queue's oldest entries.
    pub fn repair_queue(&self, limit: usize) -> Result<Vec<RepairRecord>, StoreError> {
        Ok(self.inner.meta.repairs(limit)?)
    }
}

#[cfg(test)]
pub(crate) mod tests;
