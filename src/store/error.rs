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
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: BucketName },
    #[error("bucket {bucket} already exists")]
    BucketExists { bucket: BucketName },
    #[error("bucket {bucket} is not empty")]
    BucketNotEmpty { bucket: BucketName },
    #[error("{bucket}/{key} does not exist")]
    NoSuchKey { bucket: BucketName, key: ObjectKey },
    #[error("{bucket}/{key} has no version {version}")]
    NoSuchVersion {
        bucket: BucketName,
        key: ObjectKey,
        version: String,
    },
    /// A request named a delete marker's version (S3: 405, `x-amz-delete-marker: true`
    /// and the marker's `Last-Modified`).
    #[error("{bucket}/{key} version {version} is a delete marker")]
    IsDeleteMarker {
        bucket: BucketName,
        key: ObjectKey,
        version: String,
        last_modified: Timestamp,
    },
    /// The key's current version is a delete marker: it reads as absent (S3: 404
    /// `NoSuchKey` with `x-amz-delete-marker: true` and the marker's version id).
    #[error("{bucket}/{key} does not exist (its current version {version} is a delete marker)")]
    DeletedKey {
        bucket: BucketName,
        key: ObjectKey,
        version: String,
    },
    #[error("versioning can be enabled or suspended, never turned off")]
    InvalidVersioningState,
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{bucket}/{key} version {version_id} has an Object Lock state and is never replaced")]
    ReplacesLocked {
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
    },
    #[error("bucket {bucket} does not have Object Lock enabled")]
    LockNotEnabled { bucket: BucketName },
    #[error("bucket {bucket} has no Object Lock configuration")]
    NoLockConfiguration { bucket: BucketName },
    #[error("bucket {bucket}: {reason}")]
    InvalidBucketState {
        bucket: BucketName,
        reason: &'static str,
    },
    #[error("loosening the retention policy of {bucket} is a privileged operation")]
    PolicyLoosening { bucket: BucketName },
    #[error("a write that may be locked needs Content-MD5 or an x-amz-checksum")]
    MissingLockDigest,
    #[error("bucket {bucket} has no lifecycle configuration")]
    NoLifecycle { bucket: BucketName },
    #[error("invalid lifecycle configuration: {reason}")]
    InvalidLifecycle { reason: String },
    #[error("upload {upload_id} does not exist (completed, aborted, or never started)")]
    NoSuchUpload { upload_id: String },
    #[error("part number {part_number} is outside 1 to 10000")]
    InvalidPartNumber { part_number: i32 },
    #[error("the object has {parts} parts; part {part_number} was asked for")]
    PartNotInObject { part_number: u32, parts: u32 },
    #[error("part {part_number} was not uploaded or its ETag does not match")]
    InvalidPart { part_number: i32 },
    #[error("the parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part {part_number} is {size} bytes; every part but the last needs 5 MiB")]
    EntityTooSmall { part_number: i32, size: u64 },
    #[error("the part list is empty or malformed")]
    MalformedParts,
    #[error("{bucket}/{key} already exists")]
    PreconditionFailed { bucket: BucketName, key: ObjectKey },
    #[error("invalid tag set: {reason}")]
    InvalidTag { reason: &'static str },
    #[error("copying an object onto itself must change its metadata")]
    CopyToItself,
    #[error("the range is not satisfiable for an object of {len} bytes")]
    InvalidRange { len: u64 },
    #[error("only {available} of the {needed} disks a write needs could take it")]
    InsufficientDisks { available: usize, needed: usize },
    #[error(
        "{bucket}/{key} version {version_id}: stripe {stripe} has {good} good shards, {needed} needed"
    )]
    Unreadable {
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
        stripe: u64,
        good: usize,
        needed: usize,
    },
    #[error("{bucket}/{key} version {version_id}: inline data missing or corrupt")]
    InlineCorrupt {
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
    },
    #[error("Content-MD5 {expected} does not match the body's MD5 {computed}")]
    BadDigest { expected: String, computed: String },
    #[error("the {algorithm} checksum {expected} does not match the body's {computed}")]
    ChecksumMismatch {
        algorithm: &'static str,
        expected: String,
        computed: String,
    },
    #[error("the {algorithm} checksum announced for the trailer never arrived")]
    ChecksumMissing { algorithm: &'static str },
    #[error("the body had {received} bytes; Content-Length said {expected}")]
    IncompleteBody { expected: u64, received: u64 },
    #[error("reading the request body: {0}")]
    Body(#[source] io::Error),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("a background task of the engine failed: {reason}")]
    Task { reason: String },
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
        }
    }
}
