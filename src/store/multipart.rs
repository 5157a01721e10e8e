//! Multipart uploads. Each part is written like a whole object (its own segment, pending
//! until its part record commits); Complete turns the chosen parts' segments into one
//! version without copying a byte, and removes the parts it did not use.

use std::io;

use bytes::Bytes;
use futures::Stream;

use super::{PutOptions, PutOutcome, Store, StoreError, VersionRef};
use crate::checksum::{Checksum, ChecksumHasher, Md5};
use crate::command::{CommandError, CompletedVersion, MetaCommand, Outcome, unexpected};
use crate::meta::{
    CompletedUpload, MetaError, PartRecord, SegmentRecord, UploadRecord, VersionKind,
    VersionRecord, Versioning,
};
use crate::types::{BucketName, ObjectKey, SegmentId, VersionId};

/// Parts are numbered 1 to 10,000.
pub const MAX_PARTS: u16 = 10_000;
/// Every part but the last must be at least 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// A part as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The part's number, 1 to [`MAX_PARTS`].
    pub part_number: u16,
    /// Hex MD5 of the part's bytes, without quotes: what Complete must name it by.
    pub etag: String,
    /// The part's length in bytes.
    pub size: u64,
    /// When the part was last uploaded (a part uploaded again replaces the earlier one).
    pub created: crate::types::Timestamp,
    /// The part's `x-amz-checksum-*`, verified when it was uploaded.
    pub checksums: Vec<Checksum>,
}

impl From<&PartRecord> for PartInfo {
    fn from(p: &PartRecord) -> Self {
        Self {
            part_number: p.part_number,
            etag: p.etag.clone(),
            size: p.size,
            created: p.created,
            checksums: p.checksums.clone(),
        }
    }
}

/// Which checksum a completed upload keeps (S3's `x-amz-checksum-type`).
#[derive(Debug, Clone, Default)]
pub enum MultipartChecksum {
    /// The checksum of the parts' checksums (`...-N`).
    #[default]
    Composite,
    /// The CRC of the whole object, combined from the parts' CRCs; checked against the
    /// client's value when it sends one.
    FullObject {
        /// The client's value for the whole object, if it sent one.
        claimed: Option<Checksum>,
    },
}

/// A part as Complete names it: its number, ETag, and the checksum the client saw.
#[derive(Debug, Clone, Default)]
pub struct CompletedPart {
    /// The part number as the client sent it; the list must be in strictly ascending order.
    pub part_number: i32,
    /// The part's ETag as the client sent it, quotes allowed.
    pub etag: String,
    /// A checksum the client names for the part; it must be the one verified when the part
    /// was uploaded.
    pub checksum: Option<Checksum>,
}

/// How long the outcome of a Complete is kept for a retried Complete.
pub const COMPLETED_KEPT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub(super) fn command_error(e: CommandError, upload_id: &SegmentId) -> StoreError {
    match e {
        CommandError::Meta(m) => upload_error(m, upload_id),
        other => other.into(),
    }
}

fn upload_error(e: MetaError, upload_id: &SegmentId) -> StoreError {
    match e {
        MetaError::UploadGone { .. } => StoreError::NoSuchUpload {
            upload_id: upload_id.to_string(),
        },
        MetaError::BucketGone { bucket } => StoreError::NoSuchBucket { bucket },
        MetaError::ConditionFailed {
            bucket,
            key,
            failure,
        } => StoreError::condition(&bucket, &key, failure),
        MetaError::PartChanged { part_number, .. } => StoreError::InvalidPart {
            part_number: i32::from(part_number),
        },
        MetaError::ReplacesLocked {
            bucket,
            key,
            version_id,
        } => StoreError::ReplacesLocked {
            bucket,
            key,
            version_id,
        },
        e => e.into(),
    }
}

/// S3's composite checksum of a multipart object: the checksum, with the parts' algorithm,
/// of their concatenated raw checksums (shown with a `-N` part count). Only when every
/// part carries a checksum of the same algorithm.
fn composite_checksum(parts: &[&PartRecord]) -> Option<Checksum> {
    let algorithm = parts.first()?.checksums.first()?.algorithm;
    let mut h = ChecksumHasher::new(algorithm);
    for p in parts {
        let c = p.checksums.iter().find(|c| c.algorithm == algorithm)?;
        h.update(&c.value);
    }
    Some(h.finish())
}

/// The CRC of the whole object, combined from every part's CRC of one algorithm.
fn full_object_checksum(parts: &[&PartRecord]) -> Option<Checksum> {
    let algorithm = parts.first()?.checksums.first()?.algorithm;
    let crc_of = |p: &PartRecord| {
        p.checksums
            .iter()
            .find(|c| c.algorithm == algorithm)
            .map(|c| c.value.clone())
    };
    let mut acc = crc_of(parts[0])?;
    for p in &parts[1..] {
        acc = algorithm.combine(&acc, &crc_of(p)?, p.size)?;
    }
    Some(Checksum {
        algorithm,
        value: acc,
    })
}

impl Store {
    /// Starts a multipart upload; returns its id.
    pub fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> Result<SegmentId, StoreError> {
        let b = self.bucket(bucket)?;
        self.refuse_reserved(bucket, key)?;
        self.client_writable(bucket)?;
        super::tagging::validate(&opts.tags)?;
        let created = self.inner.clock.now();
        // Refuse now what Complete would refuse (lock on a bucket without it, a date in the
        // past, a policy violation); Complete decides again at its own time.
        self.new_version_lock(&b, &opts.lock, created)?;
        let rec = UploadRecord {
            upload_id: SegmentId::generate(created),
            bucket: bucket.clone(),
            key: key.clone(),
            created,
            content_type: opts.content_type,
            user_meta: opts.user_meta,
            tags: opts.tags,
            lock: opts.lock,
            system: opts.system,
            checksum_algorithm: opts.checksum_algorithm,
        };
        let id = rec.upload_id;
        match self.propose(MetaCommand::CreateUpload(Box::new(rec)))? {
            Outcome::UploadCreated => Ok(id),
            other => Err(unexpected(other).into()),
        }
    }

    fn open_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<UploadRecord, StoreError> {
        self.bucket(bucket)?;
        let missing = || StoreError::NoSuchUpload {
            upload_id: upload_id.to_owned(),
        };
        let id: SegmentId = upload_id.parse().map_err(|_| missing())?;
        self.inner
            .meta
            .upload(bucket, key, &id)?
            .ok_or_else(missing)
    }

    /// Uploads (or re-uploads) one part.
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
        if !(1..=MAX_PARTS as i32).contains(&part_number) {
            return Err(StoreError::InvalidPartNumber { part_number });
        }
        let upload = self.open_upload(bucket, key, upload_id)?;
        // A replica's uploads are its peer's staging (or made before it was paired):
        // no client adds to them.
        self.client_writable(bucket)?;
        let b = self.bucket(bucket)?;
        // A part adds bytes whatever the versioning (it replaces no version); refused
        // again at commit, net of a part it replaces.
        if let Some(len) = opts.content_length {
            self.refuse_past_quota(&b, len)?;
        }
        if Self::lock_needs_digest(&b, &upload.lock)
            && !opts.verified_source
            && opts.content_md5.is_none()
            && opts.checksum.is_none()
        {
            return Err(StoreError::MissingLockDigest);
        }
        // Parts are never inline: Complete assembles segments.
        let seg = self.write_segment(bucket, body, &opts, 0).await?;
        let part = PartRecord {
            part_number: part_number as u16,
            etag: hex::encode(seg.md5),
            size: seg.len,
            created: self.inner.clock.now(),
            checksums: seg.checksum.into_iter().collect(),
            segment: seg.record,
            blake3: Some(seg.blake3),
        };
        let store = self.clone();
        let info = PartInfo::from(&part);
        tokio::task::spawn_blocking(move || match store.commit_part(&upload, &part) {
            Ok(replaced) => {
                if let Some(old) = replaced.and_then(|p| p.segment) {
                    store.remove_segment_data(&old);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(s) = &part.segment {
                    store.discard_segment(s.id, &s.shards);
                }
                Err(command_error(e, &upload.upload_id))
            }
        })
        .await??;
        Ok(info)
    }

    /// The parts uploaded so far, by part number, and the checksum algorithm the upload
    /// was created with.
    pub fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(Vec<PartInfo>, Option<crate::checksum::ChecksumAlgorithm>), StoreError> {
        let upload = self.open_upload(bucket, key, upload_id)?;
        let parts = self
            .inner
            .meta
            .parts(&upload.upload_id)?
            .iter()
            .map(PartInfo::from)
            .collect();
        Ok((parts, upload.checksum_algorithm))
    }

    /// The uploads in progress in a bucket, by key then age.
    pub fn list_uploads(&self, bucket: &BucketName) -> Result<Vec<UploadRecord>, StoreError> {
        self.bucket(bucket)?;
        Ok(self.inner.meta.uploads(bucket)?)
    }

    /// Completes an upload from the client's list of (part number, ETag), which must name
    /// uploaded parts in ascending order, if the key's current object meets `condition`
    /// (checked first and again in the commit; the upload stays open when it does not).
    ///
    /// A Complete sent again for an upload that completed within [`COMPLETED_KEPT`] with
    /// the same parts gets the same outcome (a client whose answer was lost retries), as
    /// Amazon S3 answers it; otherwise an unknown upload is [`StoreError::NoSuchUpload`].
    pub fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        chosen: &[CompletedPart],
        kind: &MultipartChecksum,
        condition: &crate::meta::WriteCondition,
    ) -> Result<PutOutcome, StoreError> {
        // An upload begun there by an earlier release never completes.
        self.refuse_reserved(bucket, key)?;
        let upload = match self.open_upload(bucket, key, upload_id) {
            Err(StoreError::NoSuchUpload { .. }) => {
                if let Some(out) = self.completed_before(bucket, key, upload_id, chosen)? {
                    return Ok(out);
                }
                return Err(StoreError::NoSuchUpload {
                    upload_id: upload_id.to_owned(),
                });
            }
            other => other?,
        };
        let b = self.bucket(bucket)?;
        if let Err(f) = condition.check(self.inner.meta.latest(bucket, key)?.as_ref()) {
            return Err(StoreError::condition(bucket, key, f));
        }
        if chosen.is_empty() {
            return Err(StoreError::MalformedParts);
        }
        let parts = self.inner.meta.parts(&upload.upload_id)?;
        let mut used: Vec<&PartRecord> = Vec::with_capacity(chosen.len());
        for (i, c) in chosen.iter().enumerate() {
            let number = c.part_number;
            if i > 0 && number <= chosen[i - 1].part_number {
                return Err(StoreError::InvalidPartOrder);
            }
            let etag = c.etag.trim_matches('"');
            let part = parts
                .iter()
                .find(|p| p.part_number as i32 == number && p.etag == etag)
                .ok_or(StoreError::InvalidPart {
                    part_number: number,
                })?;
            // A checksum named at Complete must be the one verified at upload.
            if let Some(claimed) = &c.checksum
                && !part.checksums.contains(claimed)
            {
                return Err(StoreError::InvalidPart {
                    part_number: number,
                });
            }
            used.push(part);
        }
        for p in &used[..used.len() - 1] {
            if p.size < MIN_PART_SIZE {
                return Err(StoreError::EntityTooSmall {
                    part_number: p.part_number as i32,
                    size: p.size,
                });
            }
        }
        let mut md5s = Md5::default();
        for p in &used {
            let mut raw = [0u8; 16];
            hex::decode_to_slice(&p.etag, &mut raw).map_err(|_| StoreError::InvalidPart {
                part_number: p.part_number as i32,
            })?;
            md5s.update(&raw);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finish()), used.len());
        let checksums: Vec<Checksum> = match kind {
            MultipartChecksum::Composite => composite_checksum(&used).into_iter().collect(),
            MultipartChecksum::FullObject { claimed } => {
                let whole = full_object_checksum(&used);
                match (claimed, &whole) {
                    (Some(c), Some(w)) if c != w => {
                        return Err(StoreError::ChecksumMismatch {
                            algorithm: c.algorithm.name(),
                            expected: hex::encode(&c.value),
                            computed: hex::encode(&w.value),
                        });
                    }
                    (Some(c), None) => {
                        return Err(StoreError::ChecksumMissing {
                            algorithm: c.algorithm.name(),
                        });
                    }
                    _ => whole.into_iter().collect(),
                }
            }
        };
        let composite = matches!(kind, MultipartChecksum::Composite) && !checksums.is_empty();
        let created = self.version_time(bucket, key)?;
        let lock_state = self.new_version_lock(&b, &upload.lock, created)?;
        let version_id = VersionId::generate(created);
        let null_version = b.versioning != Versioning::Enabled;
        let segments: Vec<SegmentRecord> = used.iter().filter_map(|p| p.segment.clone()).collect();
        let record = VersionRecord {
            version_id,
            created,
            kind: VersionKind::Object,
            size: used.iter().map(|p| p.size).sum(),
            etag: etag.clone(),
            content_type: upload.content_type.clone(),
            user_meta: upload.user_meta.clone(),
            checksums: checksums.clone(),
            segments,
            null_version,
            inline: false,
            composite_checksum: composite,
            system: upload.system.clone(),
            // One per segment, in order (an empty part has neither); a part uploaded by a
            // release before the digests leaves the object without.
            blake3: used
                .iter()
                .filter(|p| p.segment.is_some())
                .map(|p| p.blake3)
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
            origin: crate::meta::Origin::Client,
        };
        let replaced = if null_version {
            self.null_version(bucket, key)?
        } else {
            None
        };
        if let Some(old) = &replaced {
            self.may_replace(bucket, key, old)?;
        }
        // Shards that could not be written when the parts were uploaded: queued in the
        // batch that commits the version, so no acknowledged version lacks its entry.
        let repairs = self.write_debts(bucket, key, version_id, &record.segments, created);
        let completed = CompletedUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id,
            null_version,
            etag: etag.clone(),
            size: record.size,
            checksums: checksums.clone(),
            parts: used
                .iter()
                .map(|p| (p.part_number, p.etag.clone()))
                .collect(),
            completed: created,
        };
        let all = self.finish_upload(
            &upload,
            Some(Box::new(CompletedVersion {
                record: record.clone(),
                replaces: replaced.as_ref().map(|r| r.version_id),
                lock: lock_state,
                repairs: repairs.clone(),
                condition: condition.clone(),
                completed: completed.clone(),
            })),
            used.iter().map(|p| (*p).clone()).collect(),
        );
        let all = match all {
            Ok(all) => all,
            // Another Complete of this upload (a client's retry racing its first try)
            // committed first: the same parts get its answer.
            Err(CommandError::Meta(MetaError::UploadGone { .. })) => {
                return match self.completed_before(bucket, key, upload_id, chosen)? {
                    Some(out) => Ok(out),
                    None => Err(StoreError::NoSuchUpload {
                        upload_id: upload_id.to_owned(),
                    }),
                };
            }
            Err(e) => return Err(command_error(e, &upload.upload_id)),
        };
        if let Some(old) = &replaced {
            self.remove_version_data(old);
        }
        for p in &all {
            let kept = used.iter().any(|u| u.part_number == p.part_number);
            if !kept && let Some(seg) = &p.segment {
                self.remove_segment_data(seg);
            }
        }
        Ok(PutOutcome {
            version_id,
            version: if null_version {
                VersionRef::Null
            } else {
                VersionRef::Id(version_id)
            },
            etag,
            size: record.size,
            created,
            checksums,
        })
    }

    /// The outcome of an earlier Complete of `upload_id` with the same parts, if it is
    /// still kept and younger than [`COMPLETED_KEPT`] (the lifecycle pass forgets older
    /// ones).
    fn completed_before(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        chosen: &[CompletedPart],
    ) -> Result<Option<PutOutcome>, StoreError> {
        let Ok(id) = upload_id.parse::<SegmentId>() else {
            return Ok(None);
        };
        let now = self.inner.clock.now();
        let cutoff = now.plus_micros(-(COMPLETED_KEPT.as_micros() as i64));
        let Some(c) = self.inner.meta.completed_upload(&id)? else {
            return Ok(None);
        };
        let same_parts = c.parts.len() == chosen.len()
            && c.parts
                .iter()
                .zip(chosen)
                .all(|((n, e), p)| i32::from(*n) == p.part_number && *e == p.etag);
        if c.bucket != *bucket || c.key != *key || c.completed < cutoff || !same_parts {
            return Ok(None);
        }
        Ok(Some(PutOutcome {
            version_id: c.version_id,
            version: if c.null_version {
                VersionRef::Null
            } else {
                VersionRef::Id(c.version_id)
            },
            etag: c.etag,
            size: c.size,
            created: c.completed,
            checksums: c.checksums,
        }))
    }

    /// Aborts an upload and removes its parts' data.
    pub fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let upload = self.open_upload(bucket, key, upload_id)?;
        let parts = self
            .finish_upload(&upload, None, Vec::new())
            .map_err(|e| command_error(e, &upload.upload_id))?;
        for p in &parts {
            if let Some(seg) = &p.segment {
                self.remove_segment_data(seg);
            }
        }
        Ok(())
    }
}

impl Store {
    pub(super) fn commit_part(
        &self,
        upload: &UploadRecord,
        part: &PartRecord,
    ) -> Result<Option<PartRecord>, CommandError> {
        match self.propose(MetaCommand::CommitPart {
            upload: Box::new(upload.clone()),
            part: Box::new(part.clone()),
        })? {
            Outcome::PartCommitted(replaced) => Ok(replaced),
            other => Err(unexpected(other)),
        }
    }

    pub(super) fn finish_upload(
        &self,
        upload: &UploadRecord,
        version: Option<Box<CompletedVersion>>,
        used: Vec<PartRecord>,
    ) -> Result<Vec<PartRecord>, CommandError> {
        match self.propose(MetaCommand::FinishUpload {
            upload: upload.clone(),
            version,
            used,
        })? {
            Outcome::UploadFinished(parts) => Ok(parts),
            other => Err(unexpected(other)),
        }
    }
}
