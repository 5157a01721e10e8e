//! Server-side copies: CopyObject and UploadPartCopy. The source is read through the
//! verifying read path and written as new data through the write path, so a copy is a
//! version of its own (no shared shards whose removal would need reference counts).

use super::{ByteRange, PartInfo, PutOptions, PutOutcome, Store, StoreError, VersionRef};
use crate::meta::{LockRequest, VersionRecord};
use crate::types::{BucketName, ObjectKey};

/// What a copy does with the source's metadata.
#[derive(Debug, Clone)]
pub enum MetadataDirective {
    /// The source's content type, user metadata and stored HTTP headers.
    Copy,
    /// The request's, in their place.
    Replace {
        /// The request's `Content-Type`, if any.
        content_type: Option<String>,
        /// The request's `x-amz-meta-*` pairs (names without the prefix).
        user_meta: Vec<(String, String)>,
        /// The request's stored HTTP headers (`Content-Encoding`, `Cache-Control`, ...).
        system: crate::meta::SystemMeta,
    },
}

/// The source of a copy.
#[derive(Debug, Clone)]
pub struct CopySource {
    /// The bucket `x-amz-copy-source` names.
    pub bucket: BucketName,
    /// The key `x-amz-copy-source` names.
    pub key: ObjectKey,
    /// The version the client named, if any.
    pub version: Option<VersionRef>,
    /// The version to read: the one the client's conditions were checked against.
    pub pinned: Option<crate::types::VersionId>,
}

impl CopySource {
    fn read_version(&self) -> Option<VersionRef> {
        self.pinned.map(VersionRef::Id).or(self.version)
    }
}

impl Store {
    /// Copies a version (the current one unless the source names one) to `key`.
    pub async fn copy_object(
        &self,
        src: &CopySource,
        bucket: &BucketName,
        key: &ObjectKey,
        directive: MetadataDirective,
        tags: Option<Vec<(String, String)>>,
        lock: LockRequest,
    ) -> Result<(PutOutcome, VersionRecord), StoreError> {
        if src.bucket == *bucket
            && src.key == *key
            && src.version.is_none()
            && matches!(directive, MetadataDirective::Copy)
        {
            return Err(StoreError::CopyToItself);
        }
        let read = self
            .get_object(&src.bucket, &src.key, src.read_version().as_ref(), None)
            .await?;
        let source = read.record.clone();
        let (content_type, user_meta, system) = match directive {
            MetadataDirective::Copy => (
                source.content_type.clone(),
                source.user_meta.clone(),
                source.system.clone(),
            ),
            MetadataDirective::Replace {
                content_type,
                user_meta,
                system,
            } => (content_type, user_meta, system),
        };
        let tags = match tags {
            Some(t) => t,
            None => {
                self.inner
                    .meta
                    .tags(&src.bucket, &src.key, &source.version_id)?
                    .tags
            }
        };
        let opts = PutOptions {
            content_type,
            user_meta,
            system,
            content_length: Some(source.size),
            tags,
            lock,
            verified_source: true,
            ..Default::default()
        };
        let out = self.put_object(bucket, key, opts, read.body).await?;
        Ok((out, source))
    }

    /// Uploads a part whose bytes are (a range of) an existing version. Unlike a GET's, a
    /// copy range must lie wholly within the source ([`StoreError::InvalidRange`]
    /// otherwise, as Amazon S3 answers `x-amz-copy-source-range` past the end).
    pub async fn upload_part_copy(
        &self,
        src: &CopySource,
        range: Option<ByteRange>,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: i32,
    ) -> Result<(PartInfo, VersionRecord), StoreError> {
        let read = self
            .get_object(&src.bucket, &src.key, src.read_version().as_ref(), range)
            .await?;
        let source = read.record.clone();
        if let Some(ByteRange::FromTo { last, .. }) = range
            && last >= source.size
        {
            return Err(StoreError::InvalidRange { len: source.size });
        }
        let opts = PutOptions {
            content_length: Some(read.range.1 - read.range.0),
            verified_source: true,
            ..Default::default()
        };
        let part = self
            .upload_part(bucket, key, upload_id, part_number, opts, read.body)
            .await?;
        Ok((part, source))
    }
}
