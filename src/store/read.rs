//! The read path.
//!
//! A blocking task walks the stripes a range touches. For each it reads the data blocks
//! the range needs from their shard files, each verified against its BLAKE3 hash. A block
//! that is missing, unreadable or corrupt marks its shard bad; the task then reads other
//! shards until it has K good blocks and reconstructs. Bad shards go to the repair queue.
//! Fewer than K good blocks fails the read: wrong bytes are never returned.
//!
//! Blocks flow to the caller through a channel of two, so a GET of any size holds a few
//! blocks of memory.

use std::io;

use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use super::{ByteRange, Store, StoreError, VersionRef};
use crate::disk::shard::Expect;
use crate::disk::{Corruption, DiskError, ShardName, ShardSource};
use crate::meta::{LockRecord, RepairReason, RepairRecord, SegmentRecord, VersionRecord};
use crate::types::{BucketName, ObjectKey};

/// A version being read: its record, the byte interval served, and the bytes.
pub struct ObjectRead {
    /// The version read: the one named, else the key's current version.
    pub record: VersionRecord,
    /// Half-open interval of object bytes in `body`.
    pub range: (u64, u64),
    /// How many tags the version has (`x-amz-tagging-count`).
    pub tag_count: usize,
    /// The version's Object Lock state (for the response headers).
    pub lock: LockRecord,
    /// The bytes of `range`. An error after the first block ends the stream with an
    /// error, never with wrong bytes.
    pub body: Body,
}

/// The bytes of a read, as a stream of verified blocks.
pub type Body = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

struct BlockStream {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Result<Bytes, StoreError>>,
}

impl Stream for BlockStream {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(b) = self.first.take() {
            return Poll::Ready(Some(Ok(b)));
        }
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map_err(|e| io::Error::other(e.to_string()))))
    }
}

impl std::fmt::Debug for ObjectRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRead")
            .field("record", &self.record)
            .field("range", &self.range)
            .finish()
    }
}

/// The half-open interval of `record`'s bytes that `range` selects (all of them without
/// one).
fn interval_of(record: &VersionRecord, range: Option<ByteRange>) -> Result<(u64, u64), StoreError> {
    match range {
        Some(ByteRange::Part { number }) => {
            record
                .part_interval(number)
                .ok_or(StoreError::PartNotInObject {
                    part_number: number,
                    parts: record.parts_count(),
                })
        }
        Some(r) => r.resolve(record.size),
        None => Ok((0, record.size)),
    }
}

impl Store {
    /// Reads a version (the current one unless `version` is given), or a range of it. Errors
    /// found before the first byte are returned here; later ones end the stream with an
    /// error, never with wrong bytes.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        range: Option<ByteRange>,
    ) -> Result<ObjectRead, StoreError> {
        if let Some((record, bytes)) = self.sosapi_document(bucket, key, version)? {
            let interval = interval_of(&record, range)?;
            let part = bytes.slice(interval.0 as usize..interval.1 as usize);
            return Ok(ObjectRead {
                record,
                range: interval,
                tag_count: 0,
                lock: LockRecord::default(),
                body: Box::pin(futures::stream::iter([Ok(part)])),
            });
        }
        // Point reads of metadata run in place (see `node`): a hand-off to the blocking
        // pool costs more than the lookups. The null version is found by walking the
        // key's versions: that goes to the pool.
        let lookup = |store: &Store, b: &BucketName, k: &ObjectKey, v: Option<&VersionRef>| {
            let (record, tags) = store.object_tags(b, k, v)?;
            let lock = store.inner.meta.lock(b, k, &record.version_id)?;
            Ok::<_, StoreError>((record, tags, lock))
        };
        let (record, tags, lock) = if matches!(version, Some(VersionRef::Null)) {
            let store = self.clone();
            let (b, k, v) = (bucket.clone(), key.clone(), version.copied());
            tokio::task::spawn_blocking(move || lookup(&store, &b, &k, v.as_ref())).await??
        } else {
            lookup(self, bucket, key, version)?
        };
        let interval = interval_of(&record, range)?;
        let job = ReadJob {
            store: self.clone(),
            bucket: bucket.clone(),
            key: key.clone(),
            record: record.clone(),
        };
        if record.inline && record.size <= IN_PLACE_INLINE {
            // A small object's bytes are one more point read: no shard file, no thread.
            let bytes = job.inline_bytes(interval.0, interval.1)?;
            return Ok(ObjectRead {
                record,
                range: interval,
                tag_count: tags.len(),
                lock,
                body: Box::pin(futures::stream::iter([Ok(bytes)])),
            });
        }
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, StoreError>>(2);
        tokio::task::spawn_blocking(move || job.run(interval, &tx));
        // Wait for the first block so a version that cannot be read fails as an error
        // response rather than as a truncated body.
        let first = match rx.recv().await {
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => return Err(e),
            None => None,
        };
        let body = Box::pin(BlockStream { first, rx });
        Ok(ObjectRead {
            record,
            range: interval,
            tag_count: tags.len(),
            lock,
            body,
        })
    }
}

struct ReadJob {
    store: Store,
    bucket: BucketName,
    key: ObjectKey,
    record: VersionRecord,
}

impl ReadJob {
    fn run(self, (start, end): (u64, u64), tx: &mpsc::Sender<Result<Bytes, StoreError>>) {
        if self.record.inline {
            let _ = tx.blocking_send(self.inline_bytes(start, end));
            return;
        }
        let mut seg_start = 0u64;
        for seg in &self.record.segments {
            let seg_end = seg_start + seg.geometry.len;
            if seg_end > start && seg_start < end {
                let from = start.max(seg_start) - seg_start;
                let to = end.min(seg_end) - seg_start;
                let mut reader = SegmentReader::new(&self.store, seg);
                let outcome = reader.stream(from, to, tx);
                if !reader.bad.is_empty() {
                    self.queue_repair(seg, &reader.bad, reader.reason);
                }
                match outcome {
                    Ok(true) => {}
                    Ok(false) => return, // The receiver went away.
                    Err(e) => {
                        let e = match e {
                            Failure::TooFew {
                                stripe,
                                good,
                                needed,
                            } => StoreError::Unreadable {
                                bucket: self.bucket.clone(),
                                key: self.key.clone(),
                                version_id: self.record.version_id,
                                stripe,
                                good,
                                needed,
                            },
                            Failure::Codec(e) => StoreError::Codec(e),
                        };
                        tracing::error!(bucket = %self.bucket, key = %self.key, error = %e, "read failed");
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            seg_start = seg_end;
        }
    }

    /// A small object's bytes from the metadata store, checked against their hash.
    fn inline_bytes(&self, start: u64, end: u64) -> Result<Bytes, StoreError> {
        let rec = self
            .store
            .inner
            .meta
            .inline(&self.bucket, &self.key, &self.record.version_id)?;
        match rec {
            Some(r)
                if r.data.len() as u64 == self.record.size
                    && blake3::hash(&r.data).as_bytes() == &r.blake3 =>
            {
                Ok(Bytes::from(r.data).slice(start as usize..end as usize))
            }
            _ => {
                tracing::error!(bucket = %self.bucket, key = %self.key, "inline data missing or corrupt");
                Err(StoreError::InlineCorrupt {
                    bucket: self.bucket.clone(),
                    key: self.key.clone(),
                    version_id: self.record.version_id,
                })
            }
        }
    }

    fn queue_repair(&self, seg: &SegmentRecord, bad: &[u16], reason: RepairReason) {
        let rec = RepairRecord::new(
            self.bucket.clone(),
            self.key.clone(),
            self.record.version_id,
            seg.id,
            bad.to_vec(),
            reason,
            self.store.inner.clock.now(),
        );
        tracing::warn!(bucket = %self.bucket, key = %self.key, version = %self.record.version_id, shards = ?bad, "bad shards queued for repair");
        if let Err(e) = self.store.inner.meta.enqueue_repair(&rec) {
            tracing::error!(error = %e, "could not queue repair");
        }
    }
}

/// Inline objects up to this size are read and hashed on the request's task; larger ones
/// (`inline_max` may be set up to a stripe) on the blocking pool, so a task never hashes
/// more than this between two awaits (BLAKE3: about 20 µs for 64 KiB here).
const IN_PLACE_INLINE: u64 = 64 * 1024;

/// Blocks at least this large are read and verified on several cores.
const PARALLEL_BLOCK: usize = 64 * 1024;

/// Why a segment could not be read; the caller adds which version it was.
enum Failure {
    TooFew {
        stripe: u64,
        good: usize,
        needed: usize,
    },
    Codec(crate::erasure::CodecError),
}

/// What opening a shard came to.
enum Opening {
    Opened(Box<dyn ShardSource>),
    Failed(DiskError),
    NeverWritten,
}

enum Slot {
    Unopened,
    Open(Box<dyn ShardSource>),
    Bad,
}

struct SegmentReader<'a> {
    store: &'a Store,
    seg: &'a SegmentRecord,
    slots: Vec<Slot>,
    /// Where each shard is (the record, or where repair placed it).
    locations: Vec<(String, Option<crate::types::Hash>)>,
    bad: Vec<u16>,
    reason: RepairReason,
    /// The stripes being streamed end before this one: a shard opened at stripe `s` is
    /// opened for `s..until`, so a remote one fetches its blocks ahead (the first ones
    /// with its hash list).
    until: u64,
}

impl<'a> SegmentReader<'a> {
    fn new(store: &'a Store, seg: &'a SegmentRecord) -> Self {
        Self {
            store,
            seg,
            slots: (0..seg.shards.len()).map(|_| Slot::Unopened).collect(),
            // A read verifies every block against the roots, so when the placements
            // cannot be read it reads where the record says and reconstructs the rest.
            locations: store.shard_locations(seg).unwrap_or_else(|e| {
                tracing::warn!(segment = %seg.id, error = %e, "cannot read shard placements");
                Store::recorded_locations(seg)
            }),
            bad: Vec::new(),
            reason: RepairReason::ReadFailed,
            until: 0,
        }
    }

    /// Notes shard `i` for repair. A bad block condemns only its stripe's block; a shard
    /// that cannot be opened or read at all is not tried again for this segment.
    fn mark_bad(&mut self, i: usize, e: &DiskError) {
        tracing::warn!(shard = i, segment = %self.seg.id, error = %e, "shard unusable");
        let block_only = matches!(
            e,
            DiskError::Corrupt {
                what: Corruption::BlockHash { .. },
                ..
            }
        );
        if matches!(e, DiskError::Corrupt { .. }) {
            self.reason = RepairReason::Corrupt;
        }
        if !block_only {
            self.slots[i] = Slot::Bad;
        }
        if !self.bad.contains(&(i as u16)) {
            self.bad.push(i as u16);
        }
    }

    /// How far shard `i` is, for choosing which shards to read beyond the data shards:
    /// (another site, round trip in microseconds); a disk not known now is farthest.
    fn distance(&self, i: usize) -> (bool, u64) {
        let Some(disk) = self.store.disk(&self.locations[i].0) else {
            return (true, u64::MAX);
        };
        let elsewhere = disk.spec().site != self.store.site();
        let rtt = disk
            .round_trip()
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        (elsewhere, rtt)
    }

    /// Opens shard `i` where its location says (`&self`: several at once).
    fn opening(&self, i: usize, s: u64) -> Opening {
        let (disk_id, root) = self.locations[i].clone();
        let g = &self.seg.geometry;
        match (root, self.store.disk(&disk_id)) {
            (Some(root), Some(disk)) => match disk.open_reading(
                ShardName::new(self.seg.id, i),
                &Expect {
                    block_size: g.block_size,
                    blocks: g.stripes(),
                    data_len: g.shard_data_len(),
                    root,
                },
                s..self.until,
            ) {
                Ok(source) => Opening::Opened(source),
                Err(e) => Opening::Failed(e),
            },
            (Some(_), None) => Opening::Failed(DiskError::Offline { disk: disk_id }),
            // Never written: the write queued it for repair already.
            (None, _) => Opening::NeverWritten,
        }
    }

    fn settle(&mut self, i: usize, o: Opening) {
        match o {
            Opening::Opened(source) => self.slots[i] = Slot::Open(source),
            Opening::Failed(e) => self.mark_bad(i, &e),
            Opening::NeverWritten => self.slots[i] = Slot::Bad,
        }
    }

    /// Opens shard `i` (for reading from stripe `s`) if it is not yet; false if it is bad.
    fn open(&mut self, i: usize, s: u64) -> bool {
        if let Slot::Unopened = self.slots[i] {
            let o = self.opening(i, s);
            self.settle(i, o);
        }
        matches!(self.slots[i], Slot::Open(_))
    }

    /// Opens the shards of `shards` not opened yet, at once: opening a shard on another
    /// node is a round trip (its hash list, checked against the root here).
    fn open_all(&mut self, shards: &[usize], s: u64) {
        let todo: Vec<usize> = shards
            .iter()
            .copied()
            .filter(|&i| matches!(self.slots[i], Slot::Unopened))
            .collect();
        if todo.len() < 2 {
            return;
        }
        use rayon::prelude::*;
        let me = &*self;
        let opened: Vec<(usize, Opening)> =
            todo.par_iter().map(|&i| (i, me.opening(i, s))).collect();
        for (i, o) in opened {
            self.settle(i, o);
        }
    }

    /// Reads and verifies block `s` of each shard in `shards` (on several cores when the
    /// blocks are large); `None` for each that is not good.
    fn read(&mut self, shards: &[usize], s: u64, len: usize) -> Vec<Option<Vec<u8>>> {
        self.open_all(shards, s);
        let open: Vec<bool> = shards.iter().map(|&i| self.open(i, s)).collect();
        let readers: Vec<Option<&dyn ShardSource>> = shards
            .iter()
            .zip(&open)
            .map(|(&i, &ok)| match (&self.slots[i], ok) {
                (Slot::Open(r), true) => Some(r.as_ref()),
                _ => None,
            })
            .collect();
        let read_one = |r: &Option<&dyn ShardSource>| {
            r.map(|r| {
                let mut buf = vec![0u8; len];
                r.read_block(s, &mut buf).map(|()| buf)
            })
        };
        let results: Vec<Option<Result<Vec<u8>, DiskError>>> =
            if len >= PARALLEL_BLOCK && readers.len() > 1 {
                use rayon::prelude::*;
                readers.par_iter().map(read_one).collect()
            } else {
                readers.iter().map(read_one).collect()
            };
        shards
            .iter()
            .zip(results)
            .map(|(&i, r)| match r {
                Some(Ok(buf)) => Some(buf),
                Some(Err(e)) => {
                    self.mark_bad(i, &e);
                    None
                }
                None => None,
            })
            .collect()
    }

    /// Sends bytes `[from, to)` of the segment. Returns false if the receiver went away.
    fn stream(
        &mut self,
        from: u64,
        to: u64,
        tx: &mpsc::Sender<Result<Bytes, StoreError>>,
    ) -> Result<bool, Failure> {
        let g = self.seg.geometry;
        let stripes = g.stripes_for(from, to);
        self.until = stripes.end;
        for slot in &self.slots {
            if let Slot::Open(r) = slot {
                r.read_ahead(self.until);
            }
        }
        for s in stripes {
            let base = s * g.stripe_size();
            let bl = g.block_len(s);
            // Data blocks of this stripe that the range touches.
            let lo = (from.max(base) - base) as usize / bl;
            let hi = ((to.min(base + g.stripe_len(s)) - base) as usize).div_ceil(bl);
            let blocks = self.stripe_blocks(s, bl, lo..hi)?;
            for (j, block) in blocks.into_iter().enumerate().take(hi).skip(lo) {
                let Some(block) = block else { continue };
                let bstart = base + (j * bl) as u64;
                let a = from.max(bstart) - bstart;
                let b = to.min(bstart + bl as u64).min(base + g.stripe_len(s)) - bstart;
                let bytes = Bytes::from(block).slice(a as usize..b as usize);
                if tx.blocking_send(Ok(bytes)).is_err() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Data blocks `want` of stripe `s`, verified, reconstructing if any is bad.
    fn stripe_blocks(
        &mut self,
        s: u64,
        bl: usize,
        want: std::ops::Range<usize>,
    ) -> Result<Vec<Option<Vec<u8>>>, Failure> {
        let g = self.seg.geometry;
        let (k, width) = (g.k(), g.width());
        let mut blocks: Vec<Option<Vec<u8>>> = vec![None; width];
        let mut tried = vec![false; width];
        let want: Vec<usize> = want.collect();
        let mut complete = true;
        for (&i, b) in want.iter().zip(self.read(&want, s, bl)) {
            complete &= b.is_some();
            blocks[i] = b;
            tried[i] = true;
        }
        if complete {
            return Ok(blocks);
        }
        let mut good = blocks.iter().filter(|b| b.is_some()).count();
        // The others in order of preference (the design note on sites, §3.5): this site
        // first, then by the measured round trip to their node; as many as are missing
        // at once, again while some fail.
        let mut order: Vec<usize> = (0..width).filter(|&i| !tried[i]).collect();
        order.sort_by_key(|&i| self.distance(i));
        let mut next = order.into_iter();
        while good < k {
            let batch: Vec<usize> = next.by_ref().take(k - good).collect();
            if batch.is_empty() {
                break;
            }
            for (&i, b) in batch.iter().zip(self.read(&batch, s, bl)) {
                good += b.is_some() as usize;
                blocks[i] = b;
            }
        }
        if good < k {
            return Err(Failure::TooFew {
                stripe: s,
                good,
                needed: k,
            });
        }
        self.store
            .inner
            .codecs
            .get(k, width - k)
            .and_then(|c| c.reconstruct(&mut blocks, false))
            .map_err(Failure::Codec)?;
        Ok(blocks)
    }
}

impl VersionRecord {
    /// How many parts the object was uploaded in: the `-N` of a multipart ETag, else 1.
    pub fn parts_count(&self) -> u32 {
        self.etag
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(1)
    }

    /// The bytes of part `n` (1-based) as a half-open interval. Every part but the last is
    /// at least 5 MiB, so parts map one to one onto segments, except a last part of zero
    /// bytes, which has none.
    pub fn part_interval(&self, n: u32) -> Option<(u64, u64)> {
        let count = self.parts_count();
        if n == 0 || n > count {
            return None;
        }
        if count == 1 {
            return Some((0, self.size));
        }
        let mut start = 0u64;
        for (i, seg) in self.segments.iter().enumerate() {
            let end = start + seg.geometry.len;
            if i as u32 + 1 == n {
                return Some((start, end));
            }
            start = end;
        }
        Some((self.size, self.size))
    }
}
