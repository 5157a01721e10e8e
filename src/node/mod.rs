//! One node's async API: what the S3 and admin listeners call.
//!
//! The engine ([`Store`]), the identity store and [`Control`] are blocking: RocksDB
//! commits wait for their write-ahead log to sync, scans walk many keys, shard files are
//! read and written with blocking calls. [`Node`] is their async facade, so the server
//! never decides where a call runs:
//!
//! - **in place** (on the calling task): point reads of metadata — a bucket, a version
//!   record, its lock or tags, a cached credential. A few RocksDB lookups served from its
//!   block cache or the page cache; handing them to another thread costs more CPU than
//!   the lookup (two futex wake-ups per call, measured in BENCHMARKS.md).
//! - **on the blocking pool**: every commit (it syncs the log), every scan (listings,
//!   uploads, parts, users), every identity or administrative write, and the shard I/O of
//!   the data path (which [`Store`]'s own async methods already confine).
//!
//! Errors are the wrapped layer's own ([`StoreError`], [`IdentityError`],
//! [`crate::control::ControlError`], [`crate::meta::MetaError`] for the alert queue),
//! unchanged; a blocking task that could not finish (a panic, or the runtime shutting
//! down) is that layer's `Task` variant ([`StoreError::Task`], [`IdentityError::Task`],
//! [`crate::meta::MetaError::Task`]; `ControlError::Store(StoreError::Task)`).

mod admin;
mod cluster;
mod replication;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

use crate::alert::Alerts;
use crate::clock::SharedClock;
use crate::config::NodeConfig;
use crate::control::Control;
use crate::identity::{Action, Identities, IdentityError, NewKey, Plane, UserRecord};
use crate::lock::Monotonic;
use crate::meta::{
    BucketRecord, DefaultRetention, LifecycleConfig, LockRecord, LockRequest, Retention,
    UploadRecord, VersionRecord, Versioning, WriteCondition,
};
use crate::store::{
    ByteRange, CompletedPart, CopySource, DeleteOutcome, ListPage, ListQuery, LockConfiguration,
    MetadataDirective, MultipartChecksum, ObjectRead, PartInfo, PutOptions, PutOutcome, Store,
    StoreError, VersionRef, VersionsPage, VersionsQuery,
};
use crate::types::{BucketName, ObjectKey, SegmentId};

/// A node's engine, identities and administrative operations behind async methods.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Node {
    control: Control,
    alerts: Arc<Alerts>,
    /// The replication senders, once the server started them; shared by every clone
    /// (the listeners hold clones made before replication starts).
    senders: Arc<std::sync::OnceLock<Arc<crate::background::replication::Senders>>>,
}

pub use admin::{IdentityCounts, UserWithKeys};
pub use cluster::{IssuedToken, token_hash};
pub use replication::{NewPeer, PeerStatus, ReplicaAnswer};

/// Why a node could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The engine did not open (configuration, disks, metadata store).
    #[error("cannot open the node")]
    Store(#[from] StoreError),
    /// The identity store did not open (the key folder's master key), or the audit
    /// trail's signing key in that folder could not be made or opened.
    #[error("cannot open the identity store (key folder {})", key_dir.display())]
    Identities {
        /// The key folder it was opened with.
        key_dir: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// The audit trail could not take its key or record the start.
    #[error("cannot open the audit trail")]
    Trail(#[source] crate::audit::trail::TrailError),
}

/// Runs `f` on the blocking pool; a task that could not finish becomes `E`'s task error.
async fn offload<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<tokio::task::JoinError>,
{
    tokio::task::spawn_blocking(f).await?
}

impl Node {
    /// Opens the engine on `config`, the identity store with the master key in
    /// `key_dir`, and the alert queue whose retries back off up to `alert_backoff_max`
    /// (at least a second); all on the blocking pool.
    ///
    /// # Errors
    /// [`OpenError::Store`], [`OpenError::Identities`].
    pub async fn open(
        config: NodeConfig,
        wall: SharedClock,
        mono: Arc<dyn Monotonic>,
        key_dir: &Path,
        alert_backoff_max: Duration,
    ) -> Result<Self, OpenError> {
        let key_dir = key_dir.to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            let store = Store::open_with(config, wall.clone(), mono)?;
            let log = Arc::new(crate::command::IdentityProposer(store.command_log()));
            let ids = Identities::open(store.meta_handle(), &key_dir, wall.clone(), log).map_err(
                |source| OpenError::Identities {
                    key_dir: key_dir.clone(),
                    source,
                },
            )?;
            // The trail's signing key: generated at the first start, sealed under the
            // master key in the key folder, one file per log.
            let trail = store.trail().clone();
            let context = format!("audit-key:{}", trail.origin());
            let signed = trail.has_signed().map_err(|e| OpenError::Trail(e.into()))?;
            let (seed, created) = crate::identity::keyfile::audit_key(
                &key_dir,
                trail.log_id(),
                signed,
                |seed| ids.seal_secret(&context, seed),
                |sealed| ids.open_secret(&context, sealed),
            )
            .map_err(|source| OpenError::Identities {
                key_dir: key_dir.clone(),
                source,
            })?;
            trail.set_key(&seed).map_err(OpenError::Trail)?;
            if created {
                tracing::info!(key = ?trail.public_key(), "created the audit trail's signing key");
            }
            trail
                .node_started(
                    store.retention_clock().readings(),
                    env!("CARGO_PKG_VERSION"),
                )
                .map_err(OpenError::Trail)?;
            let micros = alert_backoff_max
                .as_micros()
                .clamp(1_000_000, i64::MAX as u128);
            let alerts = Alerts::new(store.meta_handle(), wall, micros as i64);
            Ok::<_, OpenError>(Self::new(
                Control::new(store, Arc::new(ids)),
                Arc::new(alerts),
            ))
        });
        opened.await.map_err(StoreError::from)?
    }

    /// This node, for calls made on behalf of `by` (a request's user, key, address and
    /// request id): the audit trail names it with each change and refusal they make.
    pub fn acting_for(&self, by: crate::audit::Requester) -> Self {
        Self {
            control: self.control.acting_for(by),
            alerts: self.alerts.clone(),
            senders: self.senders.clone(),
        }
    }

    /// Logs `event` and queues its leaf in the audit trail, by this handle's requester.
    pub fn audit(&self, event: &crate::audit::AuditEvent) {
        self.store().audit(event);
    }

    /// Makes the first credentials on a node with no users (`given` ones, or new ones
    /// returned with their secrets), and imports a previous release's key; see
    /// [`Identities::bootstrap`]. Blocking pool.
    ///
    /// # Errors
    /// See [`Identities::bootstrap`].
    pub async fn bootstrap(
        &self,
        admin: Option<(String, String)>,
        s3: Option<(String, String)>,
    ) -> Result<(Option<NewKey>, Option<NewKey>), IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || ids.bootstrap(admin, s3)).await
    }

    /// A cluster member's start: a given credential the cluster does not know added to
    /// it, none generated or changed; see [`Identities::bootstrap_member`]. Blocking pool.
    ///
    /// # Errors
    /// See [`Identities::bootstrap_member`].
    pub async fn bootstrap_member(
        &self,
        admin: Option<(String, String)>,
        s3: Option<(String, String)>,
    ) -> Result<Vec<String>, IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || ids.bootstrap_member(admin, s3)).await
    }

    /// Seals access keys' secrets under the cluster's identity key `key` from now on, and
    /// moves the ones still sealed under this node's master key there (through the log);
    /// returns how many moved. See [`Identities::use_cluster_key`] and
    /// [`Identities::reseal_keys`]. Blocking pool.
    ///
    /// # Errors
    /// See [`Identities::reseal_keys`].
    pub async fn use_cluster_key(
        &self,
        key: [u8; 32],
        reseal: bool,
    ) -> Result<usize, IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || {
            ids.use_cluster_key(&key);
            if reseal { ids.reseal_keys() } else { Ok(0) }
        })
        .await
    }

    /// Whether a first start would generate an admin credential (no user once an earlier
    /// release's are imported); see [`Identities::would_generate_admin`]. Blocking pool.
    ///
    /// # Errors
    /// See [`Identities::would_generate_admin`].
    pub async fn would_generate_admin(&self) -> Result<bool, IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || ids.would_generate_admin()).await
    }

    /// A facade over `control` (which holds the engine and the identity store) and the
    /// node's alert queue.
    pub fn new(control: Control, alerts: Arc<Alerts>) -> Self {
        Self {
            control,
            alerts,
            senders: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The engine, for blocking callers (workers, start-up). The listeners call `Node`'s
    /// own methods (`scripts/check-layers` refuses `.store()` in `server/src/s3` and
    /// `server/src/admin`).
    pub fn store(&self) -> &Store {
        self.control.store()
    }

    /// Whether this node runs the work that runs once per cluster, now
    /// ([`Store::holds_lease`]: a read of the consensus's state, no I/O).
    pub fn holds_lease(&self) -> bool {
        self.control.store().holds_lease()
    }

    /// The identity store, for blocking callers.
    pub fn identities(&self) -> &Identities {
        self.control.identities()
    }

    /// The administrative operations, for blocking callers.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The alert queue, for blocking callers (workers).
    pub fn alerts(&self) -> &Arc<Alerts> {
        &self.alerts
    }

    /// The node's configuration (in memory).
    pub fn config(&self) -> &NodeConfig {
        self.store().config()
    }

    /// Whether `access_key` may bypass GOVERNANCE retention in `bucket`; see
    /// [`Identities::may_bypass`] (in place when the key is cached, else on the blocking
    /// pool; a lookup that fails is no permission).
    pub async fn may_bypass(&self, access_key: &str, bucket: &BucketName) -> bool {
        if self.identities().cached(access_key).is_some() {
            return self.identities().may_bypass(access_key, bucket);
        }
        let (ids, k, b) = (
            self.control.identities_handle(),
            access_key.to_owned(),
            bucket.clone(),
        );
        tokio::task::spawn_blocking(move || ids.may_bypass(&k, &b))
            .await
            .unwrap_or(false)
    }

    fn owned(&self) -> Store {
        self.store().clone()
    }

    /// Reads a version with `read`: in place when finding it is a point read (the current
    /// version is one seek, a version id one lookup), on the blocking pool for the null
    /// version, which is found by walking the key's versions.
    /// On a cluster's member, waits until this node holds every write acknowledged
    /// before the call, through any node (S3's read-after-write consistency); nothing
    /// on one node.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the cluster cannot confirm it in time.
    async fn linearize(&self) -> Result<(), StoreError> {
        if !self.store().has_barrier() {
            return Ok(());
        }
        let s = self.owned();
        offload(move || s.linearize()).await
    }

    async fn read_version<T: Send + 'static>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        read: fn(&Store, &BucketName, &ObjectKey, Option<&VersionRef>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.linearize().await?;
        if !matches!(version, Some(VersionRef::Null)) {
            return read(self.store(), bucket, key, version);
        }
        let (s, b, k, v) = (self.owned(), bucket.clone(), key.clone(), version.copied());
        offload(move || read(&s, &b, &k, v.as_ref())).await
    }

    // ---- buckets ----------------------------------------------------------------------

    /// ListBuckets: every bucket's record, by name (a scan: blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::buckets`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn buckets(&self) -> Result<Vec<BucketRecord>, StoreError> {
        self.linearize().await?;
        let s = self.owned();
        offload(move || s.buckets()).await
    }

    /// CreateBucket; see [`Store::create_bucket`] (a commit: blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::create_bucket`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn create_bucket(
        &self,
        name: &BucketName,
        object_lock: bool,
    ) -> Result<BucketRecord, StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || s.create_bucket(&n, object_lock)).await
    }

    /// Whether this node keeps any replication record ([`crate::replication::configured`]):
    /// such a node neither makes nor joins a cluster (a scan: blocking pool).
    ///
    /// # Errors
    /// A metadata read's; [`StoreError::Task`] if the blocking task does not finish.
    pub async fn replicates(&self) -> Result<bool, StoreError> {
        let s = self.owned();
        offload(move || Ok(crate::replication::configured(s.meta())?)).await
    }

    /// The bucket's record or [`StoreError::NoSuchBucket`] (a point read: in place; on a
    /// cluster's member after a read barrier).
    ///
    /// # Errors
    /// Those of [`Store::bucket`]; [`StoreError::Unavailable`] when a cluster cannot
    /// confirm the read point.
    pub async fn bucket(&self, name: &BucketName) -> Result<BucketRecord, StoreError> {
        self.linearize().await?;
        self.store().bucket(name)
    }

    /// [`Node::bucket`] as this node holds it, without a read barrier: for what follows
    /// a write this node just answered (its state holds that write).
    ///
    /// # Errors
    /// Those of [`Store::bucket`].
    pub fn bucket_here(&self, name: &BucketName) -> Result<BucketRecord, StoreError> {
        self.store().bucket(name)
    }

    /// DeleteBucket; see [`Store::delete_bucket`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::delete_bucket`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn delete_bucket(&self, name: &BucketName) -> Result<(), StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || s.delete_bucket(&n)).await
    }

    /// PutBucketVersioning; see [`Store::set_versioning`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::set_versioning`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn set_versioning(
        &self,
        name: &BucketName,
        state: Versioning,
    ) -> Result<BucketRecord, StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || s.set_versioning(&n, state)).await
    }

    /// GetObjectLockConfiguration; see [`Store::lock_configuration`] (in place).
    ///
    /// # Errors
    /// Those of [`Store::lock_configuration`].
    pub async fn lock_configuration(
        &self,
        name: &BucketName,
    ) -> Result<LockConfiguration, StoreError> {
        self.linearize().await?;
        self.store().lock_configuration(name)
    }

    /// PutObjectLockConfiguration; see [`Store::set_lock_configuration`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::set_lock_configuration`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn set_lock_configuration(
        &self,
        name: &BucketName,
        default_retention: Option<DefaultRetention>,
    ) -> Result<LockConfiguration, StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || s.set_lock_configuration(&n, default_retention)).await
    }

    /// GetBucketLifecycleConfiguration; see [`Store::lifecycle`] (in place).
    ///
    /// # Errors
    /// Those of [`Store::lifecycle`].
    pub async fn lifecycle(&self, name: &BucketName) -> Result<LifecycleConfig, StoreError> {
        self.store().lifecycle(name)
    }

    /// PutBucketLifecycleConfiguration (`Some`) or DeleteBucketLifecycle (`None`); see
    /// [`Store::set_lifecycle`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::set_lifecycle`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn set_lifecycle(
        &self,
        name: &BucketName,
        config: Option<LifecycleConfig>,
    ) -> Result<(), StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || s.set_lifecycle(&n, config.as_ref())).await
    }

    // ---- objects ----------------------------------------------------------------------

    /// PutObject; see [`Store::put_object`].
    ///
    /// # Errors
    /// Those of [`Store::put_object`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn put_object<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
        body: S,
    ) -> Result<PutOutcome, StoreError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        self.store().put_object(bucket, key, opts, body).await
    }

    /// GetObject; see [`Store::get_object`].
    ///
    /// # Errors
    /// Those of [`Store::get_object`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        range: Option<ByteRange>,
    ) -> Result<ObjectRead, StoreError> {
        self.linearize().await?;
        self.store().get_object(bucket, key, version, range).await
    }

    /// HeadObject; see [`Store::head_object`] (in place; the null version on
    /// the blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::head_object`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<VersionRecord, StoreError> {
        self.read_version(bucket, key, version, Store::head_object)
            .await
    }

    /// HeadObject with its lock; see [`Store::head_object_with_lock`] (in place).
    ///
    /// # Errors
    /// Those of [`Store::head_object_with_lock`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn head_object_with_lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<(VersionRecord, LockRecord), StoreError> {
        self.read_version(bucket, key, version, Store::head_object_with_lock)
            .await
    }

    /// DeleteObject; see [`Store::delete_object`].
    ///
    /// # Errors
    /// Those of [`Store::delete_object`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn delete_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        bypass: bool,
    ) -> Result<DeleteOutcome, StoreError> {
        self.store()
            .delete_object(bucket, key, version, bypass)
            .await
    }

    /// CopyObject; see [`Store::copy_object`].
    ///
    /// # Errors
    /// Those of [`Store::copy_object`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn copy_object(
        &self,
        src: &CopySource,
        bucket: &BucketName,
        key: &ObjectKey,
        directive: MetadataDirective,
        tags: Option<Vec<(String, String)>>,
        lock: LockRequest,
    ) -> Result<(PutOutcome, VersionRecord), StoreError> {
        self.store()
            .copy_object(src, bucket, key, directive, tags, lock)
            .await
    }

    /// GetObjectRetention and GetObjectLegalHold; see [`Store::object_lock`] (in place).
    ///
    /// # Errors
    /// Those of [`Store::object_lock`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn object_lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<LockRecord, StoreError> {
        self.read_version(bucket, key, version, Store::object_lock)
            .await
    }

    /// PutObjectRetention; see [`Store::set_object_retention`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::set_object_retention`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn set_object_retention(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        requested: Option<Retention>,
        bypass: bool,
    ) -> Result<LockRecord, StoreError> {
        let (s, b, k, v) = (self.owned(), bucket.clone(), key.clone(), version.copied());
        offload(move || s.set_object_retention(&b, &k, v.as_ref(), requested, bypass)).await
    }

    /// PutObjectLegalHold; see [`Store::set_object_legal_hold`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::set_object_legal_hold`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn set_object_legal_hold(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        on: bool,
    ) -> Result<LockRecord, StoreError> {
        let (s, b, k, v) = (self.owned(), bucket.clone(), key.clone(), version.copied());
        offload(move || s.set_object_legal_hold(&b, &k, v.as_ref(), on)).await
    }

    /// GetObjectTagging; see [`Store::object_tags`] (in place).
    ///
    /// # Errors
    /// Those of [`Store::object_tags`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<(VersionRecord, Vec<(String, String)>), StoreError> {
        self.read_version(bucket, key, version, Store::object_tags)
            .await
    }

    /// PutObjectTagging (and DeleteObjectTagging with no tags); see
    /// [`Store::set_object_tags`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::set_object_tags`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn set_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        tags: Vec<(String, String)>,
    ) -> Result<VersionRecord, StoreError> {
        let (s, b, k, v) = (self.owned(), bucket.clone(), key.clone(), version.copied());
        offload(move || s.set_object_tags(&b, &k, v.as_ref(), tags)).await
    }

    // ---- multipart uploads ------------------------------------------------------------

    /// CreateMultipartUpload; see [`Store::create_multipart_upload`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::create_multipart_upload`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> Result<SegmentId, StoreError> {
        let (s, b, k) = (self.owned(), bucket.clone(), key.clone());
        offload(move || s.create_multipart_upload(&b, &k, opts)).await
    }

    /// UploadPart; see [`Store::upload_part`].
    ///
    /// # Errors
    /// Those of [`Store::upload_part`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn upload_part<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: i32,
        opts: PutOptions,
        body: S,
    ) -> Result<PartInfo, StoreError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        self.store()
            .upload_part(bucket, key, upload_id, part_number, opts, body)
            .await
    }

    /// UploadPartCopy; see [`Store::upload_part_copy`].
    ///
    /// # Errors
    /// Those of [`Store::upload_part_copy`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn upload_part_copy(
        &self,
        src: &CopySource,
        range: Option<ByteRange>,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: i32,
    ) -> Result<(PartInfo, VersionRecord), StoreError> {
        self.store()
            .upload_part_copy(src, range, bucket, key, upload_id, part_number)
            .await
    }

    /// ListParts; see [`Store::list_parts`] (a scan: blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::list_parts`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(Vec<PartInfo>, Option<crate::checksum::ChecksumAlgorithm>), StoreError> {
        let (s, b, k, u) = (
            self.owned(),
            bucket.clone(),
            key.clone(),
            upload_id.to_owned(),
        );
        offload(move || s.list_parts(&b, &k, &u)).await
    }

    /// ListMultipartUploads; see [`Store::list_uploads`] (a scan: blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::list_uploads`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn list_uploads(&self, bucket: &BucketName) -> Result<Vec<UploadRecord>, StoreError> {
        let (s, b) = (self.owned(), bucket.clone());
        offload(move || s.list_uploads(&b)).await
    }

    /// CompleteMultipartUpload; see [`Store::complete_multipart_upload`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::complete_multipart_upload`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        chosen: Vec<CompletedPart>,
        kind: MultipartChecksum,
        condition: WriteCondition,
    ) -> Result<PutOutcome, StoreError> {
        let (s, b, k, u) = (
            self.owned(),
            bucket.clone(),
            key.clone(),
            upload_id.to_owned(),
        );
        offload(move || s.complete_multipart_upload(&b, &k, &u, &chosen, &kind, &condition)).await
    }

    /// AbortMultipartUpload; see [`Store::abort_multipart_upload`] (blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::abort_multipart_upload`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let (s, b, k, u) = (
            self.owned(),
            bucket.clone(),
            key.clone(),
            upload_id.to_owned(),
        );
        offload(move || s.abort_multipart_upload(&b, &k, &u)).await
    }

    // ---- listings ---------------------------------------------------------------------

    /// ListObjects (V1 and V2); see [`Store::list_objects`] (a scan: blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::list_objects`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn list_objects(
        &self,
        bucket: &BucketName,
        q: ListQuery,
    ) -> Result<ListPage, StoreError> {
        self.linearize().await?;
        let (s, b) = (self.owned(), bucket.clone());
        offload(move || s.list_objects(&b, &q)).await
    }

    /// ListObjectVersions; see [`Store::list_object_versions`] (a scan: blocking pool).
    ///
    /// # Errors
    /// Those of [`Store::list_object_versions`];
    /// [`StoreError::Task`] if a blocking task it runs does not finish.
    pub async fn list_object_versions(
        &self,
        bucket: &BucketName,
        q: VersionsQuery,
    ) -> Result<VersionsPage, StoreError> {
        self.linearize().await?;
        let (s, b) = (self.owned(), bucket.clone());
        offload(move || s.list_object_versions(&b, &q)).await
    }

    // ---- identities -------------------------------------------------------------------

    /// The active user and secret behind `access_key` on `plane`, `None` if unknown,
    /// revoked, disabled or of the other plane; see [`Identities::credential`] (in place
    /// when the key is cached, else on the blocking pool).
    ///
    /// # Errors
    /// Those of [`Identities::credential`];
    /// [`IdentityError::Task`] if the blocking task does not finish.
    pub async fn credential(
        &self,
        access_key: &str,
        plane: Plane,
    ) -> Result<Option<(UserRecord, String)>, IdentityError> {
        if self.identities().cached(access_key).is_some() {
            return self.identities().credential(access_key, plane);
        }
        let (ids, key) = (self.control.identities_handle(), access_key.to_owned());
        offload(move || ids.credential(&key, plane)).await
    }

    /// Whether `access_key` may do every `(action, bucket)` of `checks`: the first refusal
    /// ([`IdentityError::AccessDenied`], [`IdentityError::UnknownKey`], ...) or `Ok`; see
    /// [`Identities::authorize`] (in place when the key is cached, else on the blocking
    /// pool).
    ///
    /// # Errors
    /// Those of [`Identities::authorize`];
    /// [`IdentityError::Task`] if the blocking task does not finish.
    pub async fn authorize(
        &self,
        access_key: &str,
        checks: Vec<(Action, Option<BucketName>)>,
    ) -> Result<(), IdentityError> {
        let decide = {
            let (ids, key) = (self.control.identities_handle(), access_key.to_owned());
            move || {
                for (action, bucket) in &checks {
                    ids.authorize(&key, *action, bucket.as_ref())?;
                }
                Ok(())
            }
        };
        if self.identities().cached(access_key).is_some() {
            decide()
        } else {
            offload(decide).await
        }
    }
}

#[cfg(test)]
mod tests;
