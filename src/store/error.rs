use std::io;

use crate::config::ConfigError;
use crate::disk::DiskError;
use crate::erasure::CodecError;
use crate::lock::LockError;
use crate::meta::MetaError;
use crate::types::{BucketName, NameError, ObjectKey, Timestamp, VersionId};

/// Everything the engine can refuse or fail with. The server maps each variant to one S3
/// error in a single exhaustive table.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The node's configuration is invalid, or the disks given are not the configured ones:
    /// the store does not open. Should one reach a client, it is a 500 `InternalError`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bucket name, key or id the request gave is malformed (S3: `InvalidBucketName`,
    /// `KeyTooLongError` or `InvalidArgument`).
    #[error(transparent)]
    Name(#[from] NameError),
    /// The bucket does not exist, or was deleted while the request ran (S3: 404
    /// `NoSuchBucket`).
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket {
        /// The bucket the request named.
        bucket: BucketName,
    },
    /// CreateBucket of a bucket that exists (S3: 409 `BucketAlreadyOwnedByYou`; in
    /// us-east-1 the server answers 200 instead, as Amazon S3 does there).
    #[error("bucket {bucket} already exists")]
    BucketExists {
        /// The bucket the request tried to create.
        bucket: BucketName,
    },
    /// DeleteBucket of a bucket that still holds a version or a delete marker, as Amazon
    /// S3 refuses it (S3: 409 `BucketNotEmpty`).
    #[error("bucket {bucket} is not empty")]
    BucketNotEmpty {
        /// The bucket the request tried to delete.
        bucket: BucketName,
    },
    /// The key has no version at all (S3: 404 `NoSuchKey`). Also what an `If-Match` write
    /// gets on a key with no current object, as in Amazon S3.
    #[error("{bucket}/{key} does not exist")]
    NoSuchKey {
        /// The bucket the request named.
        bucket: BucketName,
        /// The key the request named.
        key: ObjectKey,
    },
    /// The key has no version of that name, or it was removed while the request ran (S3:
    /// 404 `NoSuchVersion`).
    #[error("{bucket}/{key} has no version {version}")]
    NoSuchVersion {
        /// The bucket the request named.
        bucket: BucketName,
        /// The key the request named.
        key: ObjectKey,
        /// The version as clients name it: `null` or the id.
        version: String,
    },
    /// A request named a delete marker's version (S3: 405, `x-amz-delete-marker: true`
    /// and the marker's `Last-Modified`).
    #[error("{bucket}/{key} version {version} is a delete marker")]
    IsDeleteMarker {
        /// The bucket the request named.
        bucket: BucketName,
        /// The key the request named.
        key: ObjectKey,
        /// The marker's version as the request named it: `null` or the id.
        version: String,
        /// When the marker was created, sent back as `Last-Modified`.
        last_modified: Timestamp,
    },
    /// The key's current version is a delete marker: it reads as absent (S3: 404
    /// `NoSuchKey` with `x-amz-delete-marker: true` and the marker's version id).
    #[error("{bucket}/{key} does not exist (its current version {version} is a delete marker)")]
    DeletedKey {
        /// The bucket the request named.
        bucket: BucketName,
        /// The key the request named.
        key: ObjectKey,
        /// The marker's version (`null` or the id), sent back as `x-amz-version-id`.
        version: String,
    },
    /// PutBucketVersioning asked for neither `Enabled` nor `Suspended`: once on, versioning
    /// can only be suspended, as in Amazon S3 (S3: 400
    /// `IllegalVersioningConfigurationException`).
    #[error("versioning can be enabled or suspended, never turned off")]
    InvalidVersioningState,
    /// Object Lock refused the request: a protected version, a retention it may not cut
    /// short, or a date or period outside the rules (S3: 403 `AccessDenied` for refusals
    /// of protected data, 400 for invalid requests; see [`LockError`]).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A write would replace a null version that has an Object Lock state (retention or
    /// legal hold, even an expired one): such a version is only ever removed through the
    /// lock layer, never replaced (S3: 403 `AccessDenied`).
    #[error("{bucket}/{key} version {version_id} has an Object Lock state and is never replaced")]
    ReplacesLocked {
        /// The bucket written to.
        bucket: BucketName,
        /// The key written to.
        key: ObjectKey,
        /// The internal id of the locked null version the write would have replaced.
        version_id: VersionId,
    },
    /// A lock request (retention, legal hold, a write's `x-amz-object-lock-*`, a retention
    /// policy) on a bucket created without Object Lock (S3: 400 `InvalidRequest`, "Bucket
    /// is missing Object Lock Configuration").
    #[error("bucket {bucket} does not have Object Lock enabled")]
    LockNotEnabled {
        /// The bucket the request named.
        bucket: BucketName,
    },
    /// GetObjectLockConfiguration on a bucket without Object Lock (S3: 404
    /// `ObjectLockConfigurationNotFoundError`).
    #[error("bucket {bucket} has no Object Lock configuration")]
    NoLockConfiguration {
        /// The bucket the request named.
        bucket: BucketName,
    },
    /// A bucket change its current state forbids: suspending versioning under Object Lock,
    /// or enabling Object Lock before versioning (S3: 409 `InvalidBucketState`).
    #[error("bucket {bucket}: {reason}")]
    InvalidBucketState {
        /// The bucket the request named.
        bucket: BucketName,
        /// Which rule the change breaks, for the error message.
        reason: &'static str,
    },
    /// An unprivileged change would loosen the bucket's retention policy (see
    /// [`crate::lock::policy_change`]); the administrator must confirm it as a privileged
    /// operation (S3: 403 `AccessDenied`; admin API: 403 `PolicyLoosening`).
    #[error("loosening the retention policy of {bucket} is a privileged operation")]
    PolicyLoosening {
        /// The bucket whose policy the request would loosen.
        bucket: BucketName,
    },
    /// A write that may end up locked (lock headers, a default retention or a policy
    /// minimum on its bucket) came without Content-MD5 or an `x-amz-checksum-*`, which
    /// Amazon S3 demands for such writes (S3: 400 `InvalidRequest`).
    #[error("a write that may be locked needs Content-MD5 or an x-amz-checksum")]
    MissingLockDigest,
    /// A write would take the bucket's usage past its hard quota; nothing was stored
    /// (S3 has no quotas: 403 `QuotaExceeded`, the code and status other S3 servers answer).
    #[error(
        "bucket {bucket}: the write needs {needed} bytes, the quota is {quota} and {used} are used"
    )]
    QuotaExceeded {
        /// The bucket whose quota refused.
        bucket: BucketName,
        /// The quota, in bytes.
        quota: u64,
        /// The bucket's usage before the write, in bytes.
        used: u64,
        /// What the write adds, in bytes.
        needed: u64,
    },
    /// A write or delete named a key reserved for Veeam's Smart Object Storage API
    /// (`.system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/` at the bucket's root), whose two
    /// objects the server generates (S3: 403 `AccessDenied`).
    #[error("{bucket}/{key} is reserved for Veeam's Smart Object Storage API")]
    ReservedKey {
        /// The bucket the request named.
        bucket: BucketName,
        /// The reserved key.
        key: ObjectKey,
    },
    /// GetBucketLifecycleConfiguration on a bucket with none (S3: 404
    /// `NoSuchLifecycleConfiguration`).
    #[error("bucket {bucket} has no lifecycle configuration")]
    NoLifecycle {
        /// The bucket the request named.
        bucket: BucketName,
    },
    /// A lifecycle configuration Amazon S3 would refuse (S3: 400 `InvalidArgument`).
    #[error("invalid lifecycle configuration: {reason}")]
    InvalidLifecycle {
        /// The rule it breaks, for the error message.
        reason: String,
    },
    /// An erasure-coding profile a bucket may not take on this cluster: it cannot survive
    /// losing a site, the layout spans two sites, or it is wider than the layout's disks
    /// (admin API: 409 `InvalidProfile`; no S3 request sets one).
    #[error("bucket {bucket}: {refusal}")]
    InvalidProfile {
        /// The bucket.
        bucket: BucketName,
        /// Why (naming the profiles that would do, where that helps).
        refusal: crate::cluster::geo::ProfileRefusal,
    },
    /// The upload id names no open upload (S3: 404 `NoSuchUpload`). A Complete retried
    /// within [`super::COMPLETED_KEPT`] gets its first answer instead.
    #[error("upload {upload_id} does not exist (completed, aborted, or never started)")]
    NoSuchUpload {
        /// The upload id as the request gave it.
        upload_id: String,
    },
    /// UploadPart with a part number outside 1 to 10,000 (S3: 400 `InvalidArgument`).
    #[error("part number {part_number} is outside 1 to 10000")]
    InvalidPartNumber {
        /// The part number as the request gave it.
        part_number: i32,
    },
    /// GET or HEAD with `partNumber` beyond the object's part count (S3: 416
    /// `InvalidPartNumber`).
    #[error("the object has {parts} parts; part {part_number} was asked for")]
    PartNotInObject {
        /// The part number the request asked for.
        part_number: u32,
        /// How many parts the object has (1 for an object not uploaded in parts).
        parts: u32,
    },
    /// CompleteMultipartUpload named a part that was not uploaded, with another ETag, or
    /// with a checksum other than the one verified at upload (S3: 400 `InvalidPart`).
    #[error("part {part_number} was not uploaded or its ETag does not match")]
    InvalidPart {
        /// The part number as the request gave it.
        part_number: i32,
    },
    /// CompleteMultipartUpload's part numbers are not strictly ascending (S3: 400
    /// `InvalidPartOrder`).
    #[error("the parts are not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last of a CompleteMultipartUpload is under 5 MiB (S3: 400
    /// `EntityTooSmall`).
    #[error("part {part_number} is {size} bytes; every part but the last needs 5 MiB")]
    EntityTooSmall {
        /// The part that is too small.
        part_number: i32,
        /// Its size in bytes.
        size: u64,
    },
    /// CompleteMultipartUpload named no parts (S3: 400 `MalformedXML`).
    #[error("the part list is empty or malformed")]
    MalformedParts,
    /// A write condition (`If-None-Match: *`, `If-Match`) failed against the key's current
    /// object (S3: 412 `PreconditionFailed`). Built by [`StoreError::condition`].
    #[error("{bucket}/{key} already exists")]
    PreconditionFailed {
        /// The bucket written to.
        bucket: BucketName,
        /// The key written to.
        key: ObjectKey,
    },
    /// A tag set outside S3's limits: at most 10 tags, unique keys of 1 to 128 characters,
    /// values of at most 256 (S3: 400 `InvalidTag`).
    #[error("invalid tag set: {reason}")]
    InvalidTag {
        /// The limit the set breaks, for the error message.
        reason: &'static str,
    },
    /// CopyObject onto its own source without a version and with the metadata copied: it
    /// would change nothing, which Amazon S3 refuses (S3: 400 `InvalidRequest`).
    #[error("copying an object onto itself must change its metadata")]
    CopyToItself,
    /// A `Range` that selects no byte of the object, or an `x-amz-copy-source-range` that
    /// reaches past its end (S3: 416 `InvalidRange`).
    #[error("the range is not satisfiable for an object of {len} bytes")]
    InvalidRange {
        /// The object's size in bytes, for `Content-Range: bytes */len`.
        len: u64,
    },
    /// The cluster's consensus could not take a metadata change in time (not the leader,
    /// no majority): whether it will still be applied is unknown, as with a timed-out
    /// write (S3: 503 `SlowDown`, which clients retry; admin: 503).
    #[error("the cluster cannot take the change now: {reason}")]
    Unavailable {
        /// Why (no leader, no majority).
        reason: String,
    },
    /// Fewer disks than the write quorum could take a shard, or none could take a
    /// rebuilt shard: nothing was stored (S3: 503 `ServiceUnavailable`, which clients
    /// retry).
    #[error("only {available} of the {needed} disks a write needs could take it")]
    InsufficientDisks {
        /// How many disks took (or could take) their shard.
        available: usize,
        /// How many it needs: the write quorum, or 1 for a rebuild.
        needed: usize,
    },
    /// A stripe of the version has fewer than K shards whose blocks verify, so its bytes
    /// cannot be rebuilt. Wrong bytes are never served instead (S3: 500 `InternalError`;
    /// the operator sees the version in the log).
    #[error(
        "{bucket}/{key} version {version_id}: stripe {stripe} has {good} good shards, {needed} needed"
    )]
    Unreadable {
        /// The bucket read from.
        bucket: BucketName,
        /// The key read from.
        key: ObjectKey,
        /// The internal id of the version that cannot be read.
        version_id: VersionId,
        /// The stripe that failed, counted from 0 within its segment.
        stripe: u64,
        /// How many of its blocks verified.
        good: usize,
        /// How many it needs: K, the data shards of the geometry.
        needed: usize,
    },
    /// A small version kept in the metadata store is missing there or fails its BLAKE3
    /// hash; having no other copy, it cannot be rebuilt (S3: 500 `InternalError`).
    #[error("{bucket}/{key} version {version_id}: inline data missing or corrupt")]
    InlineCorrupt {
        /// The bucket read from.
        bucket: BucketName,
        /// The key read from.
        key: ObjectKey,
        /// The internal id of the version that cannot be read.
        version_id: VersionId,
    },
    /// The body's MD5 is not the client's Content-MD5: nothing was stored (S3: 400
    /// `BadDigest`).
    #[error("Content-MD5 {expected} does not match the body's MD5 {computed}")]
    BadDigest {
        /// The client's MD5, in hex.
        expected: String,
        /// The body's MD5, in hex.
        computed: String,
    },
    /// A replica's body (from a peer site) is not what the source hashed: part `part`'s
    /// BLAKE3 differs, or the body's length is not the parts' sum. Nothing was stored; the
    /// sender retries (S3: 400 `BadDigest`).
    #[error(
        "replicated bytes of part {part} do not match the source's BLAKE3 {expected} (got {computed})"
    )]
    ReplicaDigest {
        /// The part's index, from 0.
        part: usize,
        /// The source's digest, in hex.
        expected: String,
        /// The received bytes' digest (or length), in hex.
        computed: String,
    },
    /// A peer sent a version whose id this bucket already holds with other bytes: the
    /// stored one is kept, never overwritten (409 `ReplicaConflict`, a permanent refusal).
    #[error("bucket {bucket} holds {key} version {version_id} with other bytes than the peer sent")]
    ReplicaConflict {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: ObjectKey,
        /// The version.
        version_id: VersionId,
    },
    /// A peer sent a version under Object Lock to a bucket without Object Lock, or to one
    /// without versioning (S3: 400 `InvalidRequest`, a permanent refusal).
    #[error("bucket {bucket} cannot keep replicas: {reason}")]
    ReplicaNotAccepted {
        /// The bucket.
        bucket: BucketName,
        /// Why.
        reason: &'static str,
    },
    /// A replication configuration change was refused.
    #[error(transparent)]
    Replication(#[from] crate::replication::ReplicationError),
    /// A membership change was refused.
    #[error(transparent)]
    Membership(#[from] crate::membership::MembershipError),
    /// The body's `x-amz-checksum-*` (or a multipart object's full-object CRC) is not the
    /// client's value: nothing was stored (S3: 400 `BadDigest`).
    #[error("the {algorithm} checksum {expected} does not match the body's {computed}")]
    ChecksumMismatch {
        /// The algorithm's S3 name (`CRC32`, `SHA256`, ...).
        algorithm: &'static str,
        /// The client's value, in hex.
        expected: String,
        /// The value computed from the body, in hex.
        computed: String,
    },
    /// The client announced a checksum trailer but sent none, or claimed a full-object
    /// checksum its parts do not carry (S3: 400 `InvalidRequest`).
    #[error("the {algorithm} checksum announced for the trailer never arrived")]
    ChecksumMissing {
        /// The algorithm's S3 name (`CRC32`, `SHA256`, ...).
        algorithm: &'static str,
    },
    /// The body was shorter or longer than its Content-Length: nothing was stored (S3: 400
    /// `IncompleteBody`).
    #[error("the body had {received} bytes; Content-Length said {expected}")]
    IncompleteBody {
        /// The length the client declared, in bytes.
        expected: u64,
        /// The bytes counted when the mismatch was found (a longer body is not read to its
        /// end).
        received: u64,
    },
    /// Reading the request body failed (the connection broke, a chunk did not decode):
    /// nothing was stored (S3: 400 `IncompleteBody`).
    #[error("reading the request body: {0}")]
    Body(#[source] io::Error),
    /// The metadata store failed (S3: 500 `InternalError`; logged in full).
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A disk failed where the engine could not work around it, or an admin operation
    /// named a disk this node does not have (S3: 500 `InternalError`; the admin API tells
    /// offline and full disks apart).
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Erasure coding failed: a rebuild met a stripe with fewer than K good blocks, or a
    /// caller's bug (S3: 500 `InternalError`).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A blocking task of the engine panicked or was cancelled, or the command log gave an
    /// answer the request did not expect (S3: 500 `InternalError`).
    #[error("a background task of the engine failed: {reason}")]
    Task {
        /// What failed, for the log.
        reason: String,
    },
    /// The audit trail could not open or write (S3: 500 `InternalError`).
    #[error(transparent)]
    Trail(#[from] crate::audit::trail::TrailError),
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Task {
            reason: e.to_string(),
        }
    }
}

impl StoreError {
    /// The error a failed write condition is, as S3 answers it: 412 PreconditionFailed,
    /// or 404 NoSuchKey for `If-Match` on a key with no current object.
    pub fn condition(
        bucket: &BucketName,
        key: &ObjectKey,
        failure: crate::meta::ConditionFailure,
    ) -> Self {
        match failure {
            crate::meta::ConditionFailure::Failed => StoreError::PreconditionFailed {
                bucket: bucket.clone(),
                key: key.clone(),
            },
            crate::meta::ConditionFailure::NoObject => StoreError::NoSuchKey {
                bucket: bucket.clone(),
                key: key.clone(),
            },
        }
    }
}

impl From<crate::command::CommandError> for StoreError {
    fn from(e: crate::command::CommandError) -> Self {
        use crate::command::CommandError as C;
        match e {
            C::Meta(m) => m.into(),
            C::Lock(l) => l.into(),
            C::InvalidBucketState { bucket, reason } => Self::InvalidBucketState { bucket, reason },
            C::LockNotEnabled { bucket } => Self::LockNotEnabled { bucket },
            C::PolicyLoosening { bucket } => Self::PolicyLoosening { bucket },
            C::UnexpectedOutcome { outcome } => Self::Task { reason: outcome },
            C::Unavailable { reason } => Self::Unavailable { reason },
            // The engine proposes no identity change: only a misrouted answer gets here.
            C::Identity(e) => Self::Task {
                reason: e.to_string(),
            },
            C::Replication(e) => Self::Replication(e),
            C::Membership(e) => Self::Membership(e),
            C::QuotaExceeded {
                bucket,
                quota,
                used,
                needed,
            } => Self::QuotaExceeded {
                bucket,
                quota,
                used,
                needed,
            },
        }
    }
}
