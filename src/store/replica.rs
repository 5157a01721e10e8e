//! The receiving side of site replication: versions, delete markers and lock states a
//! peer sends ([`ReplicaOp`]), and the replication configuration changes.
//!
//! A peer can only add: a version keeps the source's id and creation time, its bytes are
//! checked part by part against the source's BLAKE3 before anything is committed, an id
//! already held with the same bytes is a no-op and with other bytes a refusal (never an
//! overwrite), and a lock state only ever joins upward (`lock::replica_lock`, over the
//! bucket's own default retention).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;

use super::{PutOptions, Store, StoreError};
use crate::command::CompletedVersion;
use crate::command::{LockChange, MetaCommand, Outcome};
use crate::meta::{
    CompletedUpload, InlineRecord, LockRecord, LockRequest, NewVersion, Origin, PartRecord, TagSet,
    UploadRecord, VersionKind, VersionRecord, Versioning, WriteCondition,
};
use crate::replication::epoch::SenderEpoch;
use crate::replication::{ReplicaResult, ReplicaVersion, ReplicationChange, ReplicationOutcome};
use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp, VersionId};

/// Reads a body to its end, dropping it.
async fn drain<S: Stream<Item = io::Result<Bytes>> + Unpin>(mut body: S) {
    use futures::StreamExt;
    while let Some(Ok(_)) = body.next().await {}
}

/// Whether every part matched, once the body has ended.
type Verdict = Arc<Mutex<Option<Result<(), StoreError>>>>;

/// Hashes a body part by part as it streams, and records whether every part matched.
struct PartDigests<S> {
    inner: S,
    parts: Vec<(u64, [u8; 32])>,
    index: usize,
    left: u64,
    hasher: blake3::Hasher,
    verdict: Verdict,
    failed: Option<StoreError>,
}

impl<S> PartDigests<S> {
    fn new(inner: S, parts: Vec<(u64, [u8; 32])>) -> (Self, Verdict) {
        let verdict = Arc::new(Mutex::new(None));
        let left = parts.first().map_or(0, |p| p.0);
        (
            Self {
                inner,
                parts,
                index: 0,
                left,
                hasher: blake3::Hasher::new(),
                verdict: verdict.clone(),
                failed: None,
            },
            verdict,
        )
    }

    fn close_part(&mut self) {
        let Some(&(_, expected)) = self.parts.get(self.index) else {
            return;
        };
        let got = *self.hasher.finalize().as_bytes();
        if got != expected && self.failed.is_none() {
            self.failed = Some(StoreError::ReplicaDigest {
                part: self.index,
                expected: hex::encode(expected),
                computed: hex::encode(got),
            });
        }
        self.hasher = blake3::Hasher::new();
        self.index += 1;
        self.left = self.parts.get(self.index).map_or(0, |p| p.0);
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.index >= self.parts.len() {
                if self.failed.is_none() {
                    self.failed = Some(StoreError::ReplicaDigest {
                        part: self.index,
                        expected: "end of body".into(),
                        computed: "more bytes".into(),
                    });
                }
                return;
            }
            let take = usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            self.hasher.update(&chunk[..take]);
            self.left -= take as u64;
            chunk = &chunk[take..];
            if self.left == 0 {
                self.close_part();
            }
        }
    }

    fn finish(&mut self) {
        // The verdict is given once: a stream polled again after its end changes nothing.
        if self.verdict.lock().map_or(true, |v| v.is_some()) {
            return;
        }
        // Parts of length 0 (an empty object) close without bytes.
        while self.index < self.parts.len() && self.left == 0 {
            self.close_part();
        }
        let result = match self.failed.take() {
            Some(e) => Err(e),
            None if self.index < self.parts.len() => Err(StoreError::ReplicaDigest {
                part: self.index,
                expected: "more bytes".into(),
                computed: "end of body".into(),
            }),
            None => Ok(()),
        };
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(result);
        }
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for PartDigests<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                let chunk = chunk.clone();
                self.feed(&chunk);
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        next
    }
}

impl Store {
    /// Stores a version a peer sent, under the source's id and creation time, after
    /// checking every part of `body` against the source's BLAKE3. Its lock state is the
    /// join of the source's and this bucket's default retention.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`]; [`StoreError::ReplicaNotAccepted`] (versioning off,
    /// or a lock state for a bucket without Object Lock); [`StoreError::ReplicaDigest`]
    /// (nothing stored); [`StoreError::ReplicaConflict`] (the id is here with other
    /// bytes); the write path's errors.
    pub async fn put_replica<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rv: ReplicaVersion,
        body: S,
    ) -> Result<ReplicaResult, StoreError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        // Nothing is stored in the reserved SOSAPI folder, whoever sends it.
        self.refuse_reserved(bucket, key)?;
        let b = self.bucket(bucket)?;
        self.accepts_replicas(&b, &rv.lock)?;
        let existing = self.existing_replica(bucket, key, &rv);
        if !matches!(existing, Ok(None)) {
            // Read the body to its end (and drop it), so that the sender gets the answer
            // on a connection it can go on using, not a reset that it would retry.
            drain(body).await;
            return existing.and_then(|r| {
                r.ok_or(StoreError::Task {
                    reason: "unreachable: an existing replica without an answer".into(),
                })
            });
        }
        super::tagging::validate(&rv.tags)?;
        let opts = PutOptions {
            content_length: Some(rv.size),
            verified_source: true,
            ..PutOptions::default()
        };
        let (body, verdict) = PartDigests::new(body, rv.parts.clone());
        let seg = self
            .write_segment(bucket, body, &opts, self.inner.config.inline_max)
            .await?;
        let checked = verdict
            .lock()
            .ok()
            .and_then(|mut v| v.take())
            .unwrap_or(Err(StoreError::Task {
                reason: "the replica body was not read to its end".into(),
            }));
        if let Err(e) = checked {
            if let Some(r) = &seg.record {
                self.discard_segment(r.id, &r.shards);
            }
            return Err(e);
        }
        let record = VersionRecord {
            version_id: rv.version_id,
            created: rv.created,
            kind: VersionKind::Object,
            size: seg.len,
            etag: rv.etag.clone(),
            content_type: rv.content_type.clone(),
            user_meta: rv.user_meta.clone(),
            checksums: rv.checksums.clone(),
            segments: seg.record.clone().into_iter().collect(),
            null_version: false,
            inline: seg.inline.is_some(),
            composite_checksum: rv.composite_checksum,
            system: rv.system.clone(),
            blake3: rv.parts.iter().map(|p| p.1).collect(),
            origin: Origin::Replica,
        };
        let repairs = self.write_debts(
            bucket,
            key,
            rv.version_id,
            seg.record.as_slice(),
            rv.created,
        );
        let inline = seg.inline.as_ref().map(|data| InlineRecord {
            blake3: seg.blake3,
            data: data.to_vec(),
        });
        let tags = TagSet {
            tags: rv.tags.clone(),
        };
        let store = self.clone();
        let (bk, k) = (bucket.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            // Any failure from here on discards the segment (below): nothing is left behind.
            let r = store.bucket(&bk).and_then(|b| {
                let lock = store.replica_lock(&b, &LockRecord::default(), &rv.lock, rv.created)?;
                store.commit(
                    NewVersion {
                        bucket: &bk,
                        key: &k,
                        record: &record,
                        repairs: &repairs,
                        replaces: None,
                        condition: &WriteCondition::Always,
                        tags: Some(&tags),
                        inline: inline.as_ref(),
                        lock: Some(&lock),
                    },
                    None,
                )
            });
            match r {
                Ok(()) => Ok(ReplicaResult::Applied),
                Err(e) => {
                    for s in &record.segments {
                        store.discard_segment(s.id, &s.shards);
                    }
                    // Committed meanwhile by a retry of the same request.
                    match (&e, store.existing_replica(&bk, &k, &rv)) {
                        (
                            StoreError::Meta(crate::meta::MetaError::VersionExists { .. }),
                            Ok(Some(r)),
                        ) => Ok(r),
                        _ => Err(e),
                    }
                }
            }
        })
        .await?
    }

    /// Stages one part of a large version a peer sends part by part (its
    /// [`crate::replication::ReplicaOp::Part`]): kept, once its bytes match `digest`, in
    /// a multipart upload whose id is the version's, until
    /// [`Store::assemble_replica`] commits the version. A part staged already with those
    /// bytes is not written again.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], [`StoreError::ReplicaNotAccepted`],
    /// [`StoreError::InvalidPartNumber`], [`StoreError::ReplicaDigest`] (nothing kept),
    /// the write path's errors.
    #[allow(clippy::too_many_arguments)]
    pub async fn stage_replica_part<S>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
        number: u16,
        len: u64,
        digest: [u8; 32],
        body: S,
    ) -> Result<ReplicaResult, StoreError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        // Nothing is stored in the reserved SOSAPI folder, whoever sends it.
        self.refuse_reserved(bucket, key)?;
        let b = self.bucket(bucket)?;
        self.accepts_replicas(&b, &LockRecord::default())?;
        if number == 0 || number > super::multipart::MAX_PARTS {
            drain(body).await;
            return Err(StoreError::InvalidPartNumber {
                part_number: i32::from(number),
            });
        }
        if self.inner.meta.version(bucket, key, &version_id)?.is_some() {
            drain(body).await;
            return Ok(ReplicaResult::Unchanged);
        }
        let upload = self.staging_upload(bucket, key, version_id)?;
        let held = self.inner.meta.parts(&upload.upload_id)?;
        if held
            .iter()
            .any(|p| p.part_number == number && p.size == len && p.blake3 == Some(digest))
        {
            drain(body).await;
            return Ok(ReplicaResult::Unchanged);
        }
        let opts = PutOptions {
            content_length: Some(len),
            verified_source: true,
            ..PutOptions::default()
        };
        let seg = self.write_segment(bucket, body, &opts, 0).await?;
        if seg.blake3 != digest || seg.len != len {
            if let Some(r) = &seg.record {
                self.discard_segment(r.id, &r.shards);
            }
            return Err(StoreError::ReplicaDigest {
                part: usize::from(number) - 1,
                expected: hex::encode(digest),
                computed: hex::encode(seg.blake3),
            });
        }
        let part = PartRecord {
            part_number: number,
            etag: hex::encode(seg.md5),
            size: seg.len,
            created: self.inner.clock.now(),
            checksums: Vec::new(),
            segment: seg.record,
            blake3: Some(seg.blake3),
        };
        let store = self.clone();
        tokio::task::spawn_blocking(move || match store.commit_part(&upload, &part) {
            Ok(replaced) => {
                if let Some(old) = replaced.and_then(|p| p.segment) {
                    store.remove_segment_data(&old);
                }
                Ok(ReplicaResult::Applied)
            }
            Err(e) => {
                if let Some(s) = &part.segment {
                    store.discard_segment(s.id, &s.shards);
                }
                Err(e.into())
            }
        })
        .await?
    }

    /// The numbers of the parts of `version_id` staged here, ascending (none when the
    /// version is not being staged); `None` when the version is here already (assembled:
    /// an assembly whose answer was lost sends nothing again).
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a metadata read.
    pub fn staged_replica_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
    ) -> Result<Option<Vec<u16>>, StoreError> {
        self.bucket(bucket)?;
        if self.inner.meta.version(bucket, key, &version_id)?.is_some() {
            return Ok(None);
        }
        let id = SegmentId(version_id.0);
        if self.inner.meta.upload(bucket, key, &id)?.is_none() {
            return Ok(Some(Vec::new()));
        }
        let mut n: Vec<u16> = self
            .inner
            .meta
            .parts(&id)?
            .iter()
            .filter(|p| p.blake3.is_some())
            .map(|p| p.part_number)
            .collect();
        n.sort_unstable();
        Ok(Some(n))
    }

    /// Commits a version a peer sent part by part, from its staged parts (each must match
    /// `rv.parts`), under the source's id and creation time, as [`Store::put_replica`]
    /// would have.
    ///
    /// # Errors
    /// [`StoreError::NoSuchUpload`] (nothing staged) or [`StoreError::InvalidPart`] (a part
    /// missing or other bytes: the sender sends it again); [`StoreError::ReplicaConflict`];
    /// [`StoreError::ReplicaNotAccepted`]; a commit's errors.
    pub fn assemble_replica(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rv: ReplicaVersion,
    ) -> Result<ReplicaResult, StoreError> {
        // Nothing is stored in the reserved SOSAPI folder, whoever sends it.
        self.refuse_reserved(bucket, key)?;
        let b = self.bucket(bucket)?;
        self.accepts_replicas(&b, &rv.lock)?;
        if let Some(r) = self.existing_replica(bucket, key, &rv)? {
            return Ok(r);
        }
        super::tagging::validate(&rv.tags)?;
        let id = SegmentId(rv.version_id.0);
        let Some(mut upload) = self.inner.meta.upload(bucket, key, &id)? else {
            return Err(StoreError::NoSuchUpload {
                upload_id: id.to_string(),
            });
        };
        let held = self.inner.meta.parts(&id)?;
        let mut used: Vec<PartRecord> = Vec::with_capacity(rv.parts.len());
        for (i, (len, digest)) in rv.parts.iter().enumerate() {
            let number = u16::try_from(i + 1).map_err(|_| StoreError::InvalidPart {
                part_number: i32::MAX,
            })?;
            let part = held
                .iter()
                .find(|p| p.part_number == number && p.size == *len && p.blake3 == Some(*digest))
                .ok_or(StoreError::InvalidPart {
                    part_number: i32::from(number),
                })?;
            used.push(part.clone());
        }
        let segments: Vec<crate::meta::SegmentRecord> =
            used.iter().filter_map(|p| p.segment.clone()).collect();
        let record = VersionRecord {
            version_id: rv.version_id,
            created: rv.created,
            kind: VersionKind::Object,
            size: used.iter().map(|p| p.size).sum(),
            etag: rv.etag.clone(),
            content_type: rv.content_type.clone(),
            user_meta: rv.user_meta.clone(),
            checksums: rv.checksums.clone(),
            segments,
            null_version: false,
            inline: false,
            composite_checksum: rv.composite_checksum,
            system: rv.system.clone(),
            blake3: rv.parts.iter().map(|p| p.1).collect(),
            origin: Origin::Replica,
        };
        let repairs = self.write_debts(bucket, key, rv.version_id, &record.segments, rv.created);
        let lock = self.replica_lock(&b, &LockRecord::default(), &rv.lock, rv.created)?;
        let completed = CompletedUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: rv.version_id,
            null_version: false,
            etag: rv.etag.clone(),
            size: record.size,
            checksums: rv.checksums.clone(),
            parts: used
                .iter()
                .map(|p| (p.part_number, p.etag.clone()))
                .collect(),
            completed: rv.created,
        };
        upload.tags = rv.tags.clone();
        let r = self.finish_upload(
            &upload,
            Some(Box::new(CompletedVersion {
                record,
                replaces: None,
                lock,
                repairs,
                condition: WriteCondition::Always,
                completed,
            })),
            used,
        );
        match r {
            Ok(_) => Ok(ReplicaResult::Applied),
            // Assembled meanwhile by a retry of the same request.
            Err(e) => match (&e, self.existing_replica(bucket, key, &rv)) {
                (_, Ok(Some(r))) => Ok(r),
                _ => Err(super::multipart::command_error(e, &id)),
            },
        }
    }

    /// The upload a version's parts are staged in (its id is the version's), made on the
    /// first part.
    fn staging_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
    ) -> Result<UploadRecord, StoreError> {
        let id = SegmentId(version_id.0);
        if let Some(u) = self.inner.meta.upload(bucket, key, &id)? {
            return Ok(u);
        }
        let rec = UploadRecord {
            upload_id: id,
            bucket: bucket.clone(),
            key: key.clone(),
            created: self.inner.clock.now(),
            content_type: None,
            user_meta: Vec::new(),
            tags: Vec::new(),
            lock: LockRequest::default(),
            system: crate::meta::SystemMeta::default(),
            checksum_algorithm: None,
        };
        match self.propose(MetaCommand::CreateUpload(Box::new(rec.clone())))? {
            Outcome::UploadCreated => Ok(rec),
            other => Err(crate::command::unexpected(other).into()),
        }
    }

    /// A delete marker a peer sent, under the source's id and creation time.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], [`StoreError::ReplicaNotAccepted`],
    /// [`StoreError::ReplicaConflict`] (the id names an object here), a commit's errors.
    pub fn put_replica_marker(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
        created: Timestamp,
    ) -> Result<ReplicaResult, StoreError> {
        // Nothing is stored in the reserved SOSAPI folder, whoever sends it.
        self.refuse_reserved(bucket, key)?;
        let b = self.bucket(bucket)?;
        self.accepts_replicas(&b, &LockRecord::default())?;
        match self.inner.meta.version(bucket, key, &version_id)? {
            Some(v) if v.kind == VersionKind::DeleteMarker => return Ok(ReplicaResult::Unchanged),
            Some(_) => {
                return Err(StoreError::ReplicaConflict {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version_id,
                });
            }
            None => {}
        }
        let marker = VersionRecord::delete_marker(version_id, created, false, Origin::Replica);
        self.commit(
            NewVersion {
                bucket,
                key,
                record: &marker,
                repairs: &[],
                replaces: None,
                condition: &WriteCondition::Always,
                tags: None,
                inline: None,
                lock: None,
            },
            None,
        )?;
        Ok(ReplicaResult::Applied)
    }

    /// Joins a replica's lock state with the one its source sent: never weaker than
    /// either. [`ReplicaResult::Diverged`] when the state here stays stronger than the
    /// source's (the source weakened it).
    ///
    /// # Errors
    /// [`StoreError::NoSuchVersion`] (not arrived yet: the sender retries),
    /// [`StoreError::ReplicaNotAccepted`], a commit's errors.
    pub fn put_replica_lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
        incoming: &LockRecord,
    ) -> Result<ReplicaResult, StoreError> {
        let b = self.bucket(bucket)?;
        self.accepts_replicas(&b, incoming)?;
        if self.inner.meta.version(bucket, key, &version_id)?.is_none() {
            return Err(StoreError::NoSuchVersion {
                bucket: bucket.clone(),
                key: key.clone(),
                version: version_id.to_string(),
            });
        }
        let current = self.inner.meta.lock(bucket, key, &version_id)?;
        let outcome = self.propose(MetaCommand::UpdateLock {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id,
            change: LockChange::Join(*incoming),
        })?;
        let next = match outcome {
            Outcome::Lock(Some(next)) => next,
            Outcome::Lock(None) => {
                return Err(StoreError::NoSuchVersion {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version: version_id.to_string(),
                });
            }
            other => return Err(crate::command::unexpected(other).into()),
        };
        // What the replica would hold from the source's state alone (with this bucket's
        // default retention): anything stronger here is a divergence, the source having
        // weakened its own.
        let created = self
            .inner
            .meta
            .version(bucket, key, &version_id)?
            .map_or(version_id.timestamp(), |v| v.created);
        let expected = self.replica_lock(&b, &LockRecord::default(), incoming, created)?;
        Ok(if next != expected {
            ReplicaResult::Diverged
        } else if next == current {
            ReplicaResult::Unchanged
        } else {
            ReplicaResult::Applied
        })
    }

    /// Replaces a replica's tags with the ones its source sent.
    ///
    /// # Errors
    /// [`StoreError::NoSuchVersion`] (not arrived yet: the sender sends the version),
    /// [`StoreError::ReplicaNotAccepted`], invalid tags, a commit's errors.
    pub fn put_replica_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
        tags: Vec<(String, String)>,
    ) -> Result<ReplicaResult, StoreError> {
        let b = self.bucket(bucket)?;
        self.accepts_replicas(&b, &LockRecord::default())?;
        super::tagging::validate(&tags)?;
        let missing = || StoreError::NoSuchVersion {
            bucket: bucket.clone(),
            key: key.clone(),
            version: version_id.to_string(),
        };
        let tags = TagSet { tags };
        match self.propose(MetaCommand::SetTags {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id,
            tags: tags.clone(),
            origin: Origin::Replica,
        })? {
            Outcome::Tagged(None) => Err(missing()),
            Outcome::Tagged(Some(before)) if before == tags => Ok(ReplicaResult::Unchanged),
            Outcome::Tagged(Some(_)) => Ok(ReplicaResult::Applied),
            other => Err(crate::command::unexpected(other).into()),
        }
    }

    /// Applies a replication configuration change (peers, rules, acknowledgements).
    ///
    /// # Errors
    /// [`StoreError::Replication`] for a refusal, a commit's errors.
    pub fn change_replication(
        &self,
        change: ReplicationChange,
    ) -> Result<ReplicationOutcome, StoreError> {
        match self.propose(MetaCommand::Replication(change))? {
            Outcome::Replication(o) => Ok(o),
            other => Err(crate::command::unexpected(other).into()),
        }
    }

    /// Judges a replication request's sender epoch against `bucket`'s
    /// ([`crate::replication::epoch::receive`]); pairs or follows (one commit) when the
    /// request changes it. A read only, in the common case.
    ///
    /// # Errors
    /// [`crate::replication::ReplicationError::StaleEpoch`]; [`StoreError::NoSuchBucket`];
    /// a commit's errors.
    pub fn receive_epoch(
        &self,
        bucket: &BucketName,
        access_key: &str,
        sender: SenderEpoch,
    ) -> Result<(), StoreError> {
        self.bucket(bucket)?;
        let local = crate::replication::writer_epoch(&self.inner.meta, bucket)?;
        let is_source = crate::replication::rules(&self.inner.meta, bucket)?.is_some();
        let new_source = local.as_ref().is_some_and(|l| {
            sender.role == crate::replication::epoch::Role::Primary
                && l.role == crate::replication::epoch::Role::Replica
                && l.source.as_deref() != Some(access_key)
        });
        match crate::replication::epoch::receive(local.as_ref(), sender, is_source) {
            Ok(None) if !new_source => Ok(()),
            // Its primary now sends with another key: kept (one commit, once).
            Ok(None) => self
                .change_replication(ReplicationChange::Receive {
                    bucket: bucket.clone(),
                    access_key: access_key.to_owned(),
                    sender,
                })
                .map(|_| ()),
            Ok(Some((epoch, _, crate::replication::epoch::EpochReason::Demoted))) => {
                tracing::warn!(%bucket, epoch, access_key, "the peer was promoted: this primary bucket becomes its read-only replica");
                self.change_replication(ReplicationChange::Receive {
                    bucket: bucket.clone(),
                    access_key: access_key.to_owned(),
                    sender,
                })
                .map(|_| ())
            }
            // Judged again under the write guard.
            Ok(Some(_)) => self
                .change_replication(ReplicationChange::Receive {
                    bucket: bucket.clone(),
                    access_key: access_key.to_owned(),
                    sender,
                })
                .map(|_| ()),
            Err(crate::replication::epoch::Stale { current }) => Err(StoreError::Replication(
                crate::replication::ReplicationError::StaleEpoch {
                    bucket: bucket.clone(),
                    current,
                    sent: sender.epoch,
                },
            )),
        }
    }

    /// Refuses a client write to a replica bucket ([`crate::replication::writable`]).
    pub(super) fn client_writable(&self, bucket: &BucketName) -> Result<(), StoreError> {
        crate::replication::writable(&self.inner.meta, bucket).map_err(StoreError::Replication)
    }

    fn accepts_replicas(
        &self,
        b: &crate::meta::BucketRecord,
        lock: &LockRecord,
    ) -> Result<(), StoreError> {
        if b.versioning != Versioning::Enabled {
            return Err(StoreError::ReplicaNotAccepted {
                bucket: b.name.clone(),
                reason: "versioning is not enabled",
            });
        }
        if !lock.is_empty() && !b.object_lock {
            return Err(StoreError::ReplicaNotAccepted {
                bucket: b.name.clone(),
                reason: "the version has an Object Lock state and the bucket has no Object Lock",
            });
        }
        Ok(())
    }

    /// The lock state a replica takes: the join of what is here, what the source sent,
    /// and the bucket's default retention from the version's creation.
    fn replica_lock(
        &self,
        b: &crate::meta::BucketRecord,
        local: &LockRecord,
        incoming: &LockRecord,
        created: Timestamp,
    ) -> Result<LockRecord, StoreError> {
        let now = self.inner.retention.readings().earliest;
        let default = if b.object_lock {
            self.new_version_lock(b, &LockRequest::default(), created)?
        } else {
            LockRecord::default()
        };
        let joined = crate::lock::replica_lock(local, incoming, now);
        Ok(crate::lock::replica_lock(&joined, &default, now))
    }

    /// `Some` when the version is already here: unchanged if its bytes are the ones sent
    /// (same parts' BLAKE3, size and ETag), a conflict otherwise.
    fn existing_replica(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rv: &ReplicaVersion,
    ) -> Result<Option<ReplicaResult>, StoreError> {
        let Some(have) = self.inner.meta.version(bucket, key, &rv.version_id)? else {
            return Ok(None);
        };
        let digests: Vec<[u8; 32]> = rv.parts.iter().map(|p| p.1).collect();
        if have.kind == VersionKind::Object
            && have.size == rv.size
            && have.etag == rv.etag
            && have.blake3 == digests
        {
            Ok(Some(ReplicaResult::Unchanged))
        } else {
            Err(StoreError::ReplicaConflict {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: rv.version_id,
            })
        }
    }
}
