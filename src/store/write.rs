//! The write path.
//!
//! 1. Read the body one stripe (K blocks) at a time; while stripe `n` is hashed (MD5) on one
//!    blocking thread and encoded, BLAKE3-hashed and appended to the shard files on another,
//!    stripe `n+1` is read from the network.
//! 2. Before the first shard byte, a pending record names the shard files, so a crash at
//!    any later instant is rolled back at start.
//! 3. At the end of the body: check length and Content-MD5, then write each shard file's
//!    hash list and trailer, fsync, link it under its final name and fsync the directory.
//! 4. Only then commit the version record (with the shard roots) in one synced batch.
//!
//! A shard that fails mid-way is dropped; the write goes on while every stripe keeps at
//! least the write quorum of shards, and the missing shards are queued for repair.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::{Store, StoreError};
use crate::checksum::{Checksum, ChecksumHasher, ChecksumSpec, Expected, Md5};
use crate::disk::shard::Hash;
use crate::disk::{ShardName, ShardSink, ShardStore};
use crate::erasure::Geometry;
use crate::meta::{
    InlineRecord, LockRequest, PendingRecord, SegmentRecord, ShardRecord, VersionKind,
    VersionRecord, Versioning,
};
use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp, VersionId};

/// What a write (PutObject, CreateMultipartUpload, UploadPart, a copy) asks for besides its
/// bytes: the metadata to keep with the version and the checks the body must pass. The
/// default stores a bare object and checks nothing.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// The `Content-Type` to store and send back on GET and HEAD, if the client gave one.
    pub content_type: Option<String>,
    /// User metadata: the `x-amz-meta-*` headers as (name without the prefix, value).
    pub user_meta: Vec<(String, String)>,
    /// The length the client declared; a body of another length stores nothing.
    pub content_length: Option<u64>,
    /// The client's Content-MD5; a mismatch stores nothing.
    pub content_md5: Option<[u8; 16]>,
    /// An `x-amz-checksum-*` to compute, verify and keep; a mismatch stores nothing.
    pub checksum: Option<ChecksumSpec>,
    /// What the key's current object must be (`If-None-Match: *`, `If-Match`): checked
    /// before the body streams and again in the commit.
    pub condition: crate::meta::WriteCondition,
    /// Initial tags (`x-amz-tagging`).
    pub tags: Vec<(String, String)>,
    /// The Object Lock the request asks for (`x-amz-object-lock-*`).
    pub lock: LockRequest,
    /// The bytes come from a version of this store, verified as they were read (a
    /// server-side copy): no client digest is needed even where Object Lock asks for one.
    pub verified_source: bool,
    /// The HTTP headers stored with the version (`Content-Encoding`, `Cache-Control`,
    /// `Content-Disposition`, `Content-Language`, `Expires`).
    pub system: crate::meta::SystemMeta,
    /// CreateMultipartUpload's `x-amz-checksum-algorithm`, kept with the upload.
    pub checksum_algorithm: Option<crate::checksum::ChecksumAlgorithm>,
}

/// What a write stored: the answer to PutObject, CopyObject and
/// CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The new version's internal id (unique even for a null version).
    pub version_id: VersionId,
    /// What clients call it: `null` or the id.
    pub version: super::VersionRef,
    /// The `x-amz-checksum-*` values computed (and verified) for the body.
    pub checksums: Vec<Checksum>,
    /// Hex MD5 of the body (single part) or `hex-N` (multipart), without quotes.
    pub etag: String,
    /// The object's length in bytes.
    pub size: u64,
    /// When the version was created (its `Last-Modified`).
    pub created: Timestamp,
}

/// A segment whose shard files are durable but not yet referenced by any version.
pub(super) struct WrittenSegment {
    pub(super) record: Option<SegmentRecord>,
    /// The whole body, when it is small enough to be kept inline.
    pub(super) inline: Option<Bytes>,
    pub(super) md5: [u8; 16],
    /// BLAKE3 of the body as received.
    pub(super) blake3: [u8; 32],
    pub(super) checksum: Option<Checksum>,
    pub(super) len: u64,
}

impl Store {
    /// Stores `body` as a new version of `key`. Nothing is visible until the whole version
    /// is durable; on any error nothing is left behind.
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
        let b = self.bucket(bucket)?;
        self.refuse_reserved(bucket, key)?;
        // Refused again at commit; this spares streaming a body that cannot be stored.
        self.client_writable(bucket)?;
        self.quota_allows(&b, opts.content_length)?;
        let null_version = b.versioning != Versioning::Enabled;
        let condition = opts.condition.clone();
        if Self::lock_needs_digest(&b, &opts.lock)
            && !opts.verified_source
            && opts.content_md5.is_none()
            && opts.checksum.is_none()
        {
            return Err(StoreError::MissingLockDigest);
        }
        super::tagging::validate(&opts.tags)?;
        let tags = crate::meta::TagSet {
            tags: opts.tags.clone(),
        };
        if condition != crate::meta::WriteCondition::Always
            && let Err(f) = condition.check(self.inner.meta.latest(bucket, key)?.as_ref())
        {
            // Checked again at commit; this spares streaming a body that cannot be stored.
            return Err(StoreError::condition(bucket, key, f));
        }
        // A member's barrier waits on the network: on the blocking pool, not this task's
        // worker.
        let created = if self.has_barrier() {
            let (s, b, k) = (self.clone(), bucket.clone(), key.clone());
            tokio::task::spawn_blocking(move || s.version_time(&b, &k)).await??
        } else {
            self.version_time(bucket, key)?
        };
        // Decided now to refuse early, and again at commit with the bucket as it is then
        // (a default retention set while the body streamed applies).
        self.new_version_lock(&b, &opts.lock, created)?;
        let lock_request = opts.lock;
        let seg = self
            .write_segment(bucket, body, &opts, self.inner.config.inline_max)
            .await?;
        let version_id = VersionId::generate(created);
        let etag = hex::encode(seg.md5);
        let repairs = self.write_debts(bucket, key, version_id, seg.record.as_slice(), created);
        let record = VersionRecord {
            version_id,
            created,
            kind: VersionKind::Object,
            size: seg.len,
            etag: etag.clone(),
            content_type: opts.content_type,
            user_meta: opts.user_meta,
            checksums: seg.checksum.clone().into_iter().collect(),
            segments: seg.record.into_iter().collect(),
            null_version,
            inline: seg.inline.is_some(),
            composite_checksum: false,
            system: opts.system,
            blake3: vec![seg.blake3],
            origin: crate::meta::Origin::Client,
        };
        let inline = seg.inline.as_ref().map(|b| InlineRecord {
            // The body's digest, computed once as it was received.
            blake3: seg.blake3,
            data: b.to_vec(),
        });
        let store = self.clone();
        let (b, k) = (bucket.clone(), key.clone());
        let committed = tokio::task::spawn_blocking(move || {
            // A null version replaces the key's previous null version, if the lock allows.
            let r = (if null_version {
                store.null_version(&b, &k)
            } else {
                Ok(None)
            })
            .and_then(|replaced| {
                if let Some(old) = &replaced {
                    store.may_replace(&b, &k, old)?;
                }
                let lock_state =
                    store.new_version_lock(&store.bucket(&b)?, &lock_request, created)?;
                store.commit(
                    crate::meta::NewVersion {
                        bucket: &b,
                        key: &k,
                        record: &record,
                        repairs: &repairs,
                        replaces: None,
                        condition: &condition,
                        tags: Some(&tags),
                        inline: inline.as_ref(),
                        lock: Some(&lock_state),
                    },
                    replaced.as_ref(),
                )
            });
            if r.is_err() {
                for s in &record.segments {
                    store.discard_segment(s.id, &s.shards);
                }
            }
            r
        })
        .await?;
        committed?;
        Ok(PutOutcome {
            version_id,
            version: if null_version {
                super::VersionRef::Null
            } else {
                super::VersionRef::Id(version_id)
            },
            etag,
            size: seg.len,
            created,
            checksums: seg.checksum.into_iter().collect(),
        })
    }

    /// Removes the shard files of a segment no version references, and its pending record.
    pub(super) fn discard_segment(&self, id: SegmentId, shards: &[ShardRecord]) {
        for (i, s) in shards.iter().enumerate() {
            if let Some(d) = self.disk(&s.disk)
                && let Err(e) = d.remove(ShardName::new(id, i))
            {
                tracing::warn!(error = %e, "could not remove an unreferenced shard");
            }
        }
        if let Err(e) = self.inner.meta.drop_pending(&id) {
            tracing::warn!(segment = %id, error = %e, "could not drop pending record; start-up will");
        }
    }

    /// Streams `body` into a new segment, or returns it whole when it is at most
    /// `inline_max` bytes.
    ///
    /// The segment is coded with `bucket`'s own profile if it set one (else the node's
    /// `--ec`); across sites, a bucket that refuses writes while a site is down gets
    /// [`StoreError::Unavailable`] then.
    pub(super) async fn write_segment<S>(
        &self,
        bucket: &BucketName,
        body: S,
        opts: &PutOptions,
        inline_max: usize,
    ) -> Result<WrittenSegment, StoreError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        let cfg = &self.inner.config;
        let geo = self.bucket_geo(bucket)?;
        let ec = self.bucket_profile(&geo);
        let quorum = if ec == cfg.ec {
            cfg.write_quorum
        } else {
            crate::config::default_quorum(ec)
        };
        let codec = self.inner.codecs.get(ec.data, ec.parity)?;
        let (k, width, block) = (ec.data, ec.width(), cfg.block_size);
        let mut reader = StripeReader::new(body, k * block);
        let first = reader.next().await?;
        if first.is_empty() {
            let md5 = Md5::default().finish();
            let blake3 = *blake3::hash(&[]).as_bytes();
            let checksum = opts
                .checksum
                .as_ref()
                .map(|c| ChecksumHasher::new(c.algorithm).finish());
            finish_checks(opts, md5, checksum.as_ref(), 0)?;
            return Ok(WrittenSegment {
                record: None,
                inline: None,
                md5,
                blake3,
                checksum,
                len: 0,
            });
        }
        // A stripe shorter than a full one is the whole body.
        if first.len() <= inline_max && first.len() < k * block {
            let mut md5 = Md5::default();
            md5.update(&first);
            let md5 = md5.finish();
            let blake3 = *blake3::hash(&first).as_bytes();
            let checksum = opts.checksum.as_ref().map(|c| {
                let mut h = ChecksumHasher::new(c.algorithm);
                h.update(&first);
                h.finish()
            });
            finish_checks(opts, md5, checksum.as_ref(), first.len() as u64)?;
            return Ok(WrittenSegment {
                record: None,
                len: first.len() as u64,
                inline: Some(first),
                md5,
                blake3,
                checksum,
            });
        }

        let id = SegmentId::generate(self.inner.clock.now());
        let set = self.disk_set();
        let placement: Vec<Arc<dyn ShardStore>> = set
            .topology
            .place(id.as_bytes(), width, |i| set.disks[i].usable())
            .into_iter()
            .map(|i| set.disks[i].clone())
            .collect();
        if placement.len() < width {
            // A cluster's node before the other members' disks are known.
            return Err(StoreError::InsufficientDisks {
                available: placement.len(),
                needed: width,
            });
        }
        if geo.site_down_writes == crate::meta::SiteDownWrites::Refuse
            && let Some(site) = Self::site_down(&set)
        {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "site {site} is down and bucket {bucket} refuses writes while a site is \
                     down (its site-down policy)"
                ),
            });
        }
        let disk_ids: Vec<String> = placement.iter().map(|d| d.record_name()).collect();
        let pending = PendingRecord {
            segment: id,
            shards: disk_ids
                .iter()
                .enumerate()
                .map(|(i, d)| (i as u16, d.clone()))
                .collect(),
            created: self.inner.clock.now(),
        };
        let shard_records: Vec<ShardRecord> = disk_ids
            .iter()
            .map(|d| ShardRecord {
                disk: d.clone(),
                root: None,
            })
            .collect();
        let store = self.clone();
        let mut set = tokio::task::spawn_blocking(move || -> Result<ShardSet, StoreError> {
            store.inner.meta.add_pending(&pending)?;
            ShardSet::open(&store, id, &placement, codec, quorum)
        })
        .await??;

        type Hashes = (Md5, Option<ChecksumHasher>, blake3::Hasher);
        let result: Result<(ShardSet, Hashes, u64), StoreError> = async {
            let mut hashes: Hashes = (
                Md5::default(),
                opts.checksum
                    .as_ref()
                    .map(|c| ChecksumHasher::new(c.algorithm)),
                blake3::Hasher::new(),
            );
            let mut len = 0u64;
            let mut stripe = first;
            loop {
                len += stripe.len() as u64;
                if let Some(expected) = opts.content_length
                    && len > expected
                {
                    return Err(StoreError::IncompleteBody {
                        expected,
                        received: len,
                    });
                }
                let (s1, s2) = (stripe.clone(), stripe);
                let hash = tokio::task::spawn_blocking(move || {
                    hashes.0.update(&s1);
                    if let Some(c) = &mut hashes.1 {
                        c.update(&s1);
                    }
                    hashes.2.update(&s1);
                    hashes
                });
                let encode = tokio::task::spawn_blocking(move || {
                    let r = set.write_stripe(&s2);
                    (set, r)
                });
                let (next, hashed, encoded) = tokio::join!(reader.next(), hash, encode);
                hashes = hashed?;
                let (s, r) = encoded?;
                set = s;
                r?;
                stripe = next?;
                if stripe.is_empty() {
                    return Ok((set, hashes, len));
                }
            }
        }
        .await;
        let (set, (md5, checksum, whole), len) = match result {
            Ok(v) => v,
            Err(e) => {
                self.discard_pending(id);
                return Err(e);
            }
        };
        let md5 = md5.finish();
        let blake3 = *whole.finalize().as_bytes();
        let checksum = checksum.map(ChecksumHasher::finish);
        if let Err(e) = finish_checks(opts, md5, checksum.as_ref(), len) {
            drop(set);
            self.discard_pending(id);
            return Err(e);
        }
        let roots = tokio::task::spawn_blocking(move || set.finish(quorum)).await?;
        let roots = match roots {
            Ok(r) => r,
            Err(e) => {
                let store = self.clone();
                let shards = shard_records.clone();
                tokio::task::spawn_blocking(move || store.discard_segment(id, &shards)).await?;
                return Err(e);
            }
        };
        // Across sites, the quorum alone is not enough: at least K+1 shards on two sites
        // (the site-safe rule and its debt: `store::geo`).
        let durable: Vec<&str> = disk_ids
            .iter()
            .zip(&roots)
            .filter(|(_, r)| r.is_some())
            .map(|(d, _)| d.as_str())
            .collect();
        if let crate::cluster::geo::Durability::Short { durable, needed } =
            self.durability_on(k, quorum, &durable)
        {
            let store = self.clone();
            let shards = shard_records.clone();
            tokio::task::spawn_blocking(move || store.discard_segment(id, &shards)).await?;
            return Err(StoreError::InsufficientDisks {
                available: durable,
                needed,
            });
        }
        let geometry = Geometry::new(k, width - k, block, len);
        let shards = shard_records
            .into_iter()
            .zip(roots)
            .map(|(mut s, root)| {
                s.root = root;
                s
            })
            .collect();
        Ok(WrittenSegment {
            inline: None,
            record: Some(SegmentRecord {
                id,
                geometry,
                shards,
            }),
            md5,
            blake3,
            checksum,
            len,
        })
    }

    fn discard_pending(&self, id: SegmentId) {
        if let Err(e) = self.inner.meta.drop_pending(&id) {
            tracing::warn!(segment = %id, error = %e, "could not drop pending record; start-up will");
        }
    }
}

fn finish_checks(
    opts: &PutOptions,
    md5: [u8; 16],
    checksum: Option<&Checksum>,
    len: u64,
) -> Result<(), StoreError> {
    if let Some(expected) = opts.content_length
        && expected != len
    {
        return Err(StoreError::IncompleteBody {
            expected,
            received: len,
        });
    }
    if let Some(expected) = opts.content_md5
        && expected != md5
    {
        return Err(StoreError::BadDigest {
            expected: hex::encode(expected),
            computed: hex::encode(md5),
        });
    }
    if let (Some(spec), Some(computed)) = (&opts.checksum, checksum) {
        let expected = match &spec.expected {
            Expected::Value(v) => Some(v.clone()),
            Expected::Trailer(read) => read(),
        };
        match expected {
            None => {
                return Err(StoreError::ChecksumMissing {
                    algorithm: spec.algorithm.name(),
                });
            }
            Some(e) if e != computed.value => {
                return Err(StoreError::ChecksumMismatch {
                    algorithm: spec.algorithm.name(),
                    expected: hex::encode(e),
                    computed: hex::encode(&computed.value),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Cuts a body stream into stripes of exactly `stripe` bytes (the last may be shorter).
struct StripeReader<S> {
    body: S,
    pending: Bytes,
    stripe: usize,
    done: bool,
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> StripeReader<S> {
    fn new(body: S, stripe: usize) -> Self {
        Self {
            body,
            pending: Bytes::new(),
            stripe,
            done: false,
        }
    }

    /// The next stripe; empty at the end of the body.
    async fn next(&mut self) -> Result<Bytes, StoreError> {
        if self.pending.len() >= self.stripe {
            return Ok(self.pending.split_to(self.stripe));
        }
        let mut buf = BytesMut::new();
        loop {
            if !self.pending.is_empty() {
                if buf.is_empty() && self.pending.len() >= self.stripe {
                    return Ok(self.pending.split_to(self.stripe));
                }
                if buf.capacity() == 0 {
                    buf.reserve(self.stripe);
                }
                let take = (self.stripe - buf.len()).min(self.pending.len());
                buf.extend_from_slice(&self.pending.split_to(take));
                if buf.len() == self.stripe {
                    return Ok(buf.freeze());
                }
            }
            if self.done {
                return Ok(buf.freeze());
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.pending = chunk,
                Some(Err(e)) => return Err(StoreError::Body(e)),
                None => self.done = true,
            }
        }
    }
}

/// The open shard files of one segment: slot `i` holds shard `i`, or `None` once its disk
/// failed.
struct ShardSet {
    writers: Vec<Option<Box<dyn ShardSink>>>,
    parity: Vec<Vec<u8>>,
    /// The segment's K+M.
    codec: Arc<crate::erasure::Codec>,
    /// Live shards below which the write fails.
    quorum: usize,
    pad: Vec<u8>,
}

impl ShardSet {
    fn open(
        store: &Store,
        id: SegmentId,
        placement: &[Arc<dyn ShardStore>],
        codec: Arc<crate::erasure::Codec>,
        quorum: usize,
    ) -> Result<Self, StoreError> {
        let cfg = &store.inner.config;
        let writers: Vec<Option<Box<dyn ShardSink>>> = placement
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.create(ShardName::new(id, i), cfg.block_size as u32)
                    .map_err(|e| tracing::warn!(error = %e, "shard not written"))
                    .ok()
            })
            .collect();
        let set = Self {
            writers,
            parity: vec![Vec::new(); codec.parity_shards()],
            codec,
            quorum,
            pad: Vec::new(),
        };
        set.check_quorum()?;
        Ok(set)
    }

    fn check_quorum(&self) -> Result<(), StoreError> {
        let live = self.writers.iter().filter(|w| w.is_some()).count();
        let needed = self.quorum;
        if live < needed {
            return Err(StoreError::InsufficientDisks {
                available: live,
                needed,
            });
        }
        Ok(())
    }

    /// Encodes one stripe and appends its K+M blocks to the shard files.
    fn write_stripe(&mut self, stripe: &[u8]) -> Result<(), StoreError> {
        let k = self.codec.data_shards();
        let bl = stripe.len().div_ceil(k);
        let data: &[u8] = if stripe.len() == k * bl {
            stripe
        } else {
            self.pad.clear();
            self.pad.extend_from_slice(stripe);
            self.pad.resize(k * bl, 0);
            &self.pad
        };
        let blocks: Vec<&[u8]> = data.chunks(bl).collect();
        for p in &mut self.parity {
            p.resize(bl, 0);
        }
        self.codec.encode(&blocks, &mut self.parity)?;
        for (i, slot) in self.writers.iter_mut().enumerate() {
            let Some(w) = slot else { continue };
            let block = if i < k {
                blocks[i]
            } else {
                &self.parity[i - k]
            };
            if let Err(e) = w.append(block) {
                tracing::warn!(error = %e, shard = i, "shard write failed; continuing on the others");
                *slot = None;
            }
        }
        self.check_quorum()
    }

    /// Makes every live shard file durable, in parallel. Returns each shard's root (`None`
    /// for the failed ones) if at least `quorum` succeeded.
    fn finish(self, quorum: usize) -> Result<Vec<Option<Hash>>, StoreError> {
        let roots: Vec<Option<Hash>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .writers
                .into_iter()
                .map(|w| {
                    w.map(|w| {
                        scope.spawn(move || {
                            w.finish()
                                .map_err(|e| tracing::warn!(error = %e, "shard not made durable"))
                                .ok()
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.and_then(|h| h.join().ok().flatten()))
                .collect()
        });
        let durable = roots.iter().filter(|r| r.is_some()).count();
        if durable < quorum {
            return Err(StoreError::InsufficientDisks {
                available: durable,
                needed: quorum,
            });
        }
        Ok(roots)
    }
}
