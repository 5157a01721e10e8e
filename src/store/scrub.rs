//! Verifying and rebuilding stored versions: every block of every shard checked against
//! its BLAKE3 hash, and missing or corrupt shards rebuilt from the others (a new file,
//! renamed into place). The scrub worker walks versions and calls these.

use serde::Serialize;

use super::{Store, StoreError};
use crate::disk::shard::Expect;
use crate::disk::shard::Hash;
use crate::disk::{DiskError, DiskState, DiskUuid, ShardName, ShardSource, ShardStore};
use crate::meta::{SegmentRecord, VersionKind, VersionRecord};
use crate::types::{BucketName, ObjectKey, Timestamp};
use std::sync::Arc;

/// What is wrong with one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ShardFault {
    /// The file (or its disk) is not there, or it was never written.
    Missing,
    /// It is there but its trailer, hash list or some block does not verify.
    Corrupt,
}

/// The findings on one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VersionScrub {
    /// Shards whose every block verified, over all the version's segments.
    pub shards_verified: u64,
    /// Bytes in blocks that verified, parity included; an inline version's size.
    pub bytes_verified: u64,
    /// Shards that could not be opened: no file, a disk gone or offline, never written.
    pub missing: u64,
    /// Shards with a trailer, hash list or block that does not verify (an inline version
    /// that fails its hash counts as one).
    pub corrupt: u64,
    /// Shards rebuilt in this pass (only with repair).
    pub repaired: u64,
    /// A stripe with fewer than K good blocks: the version cannot be rebuilt.
    pub unrepairable: Option<u64>,
    /// A rebuild that was tried and failed (a disk refused the new file, none was free),
    /// and why: the shards stay bad until a later attempt succeeds.
    pub repair_error: Option<String>,
    /// Shards on another member's disk whose node has been unreachable for less than
    /// [`NODE_GRACE`]: not rebuilt elsewhere yet (only with repair), so that a restart or
    /// a network blip starts no rebuild storm; the node catches up when it returns.
    pub waiting: u64,
}

/// How long repair waits by default for a cluster's member that cannot be reached before
/// it rebuilds the member's shards elsewhere (issue 14, item 5: 15 minutes;
/// `NodeConfig::node_grace`).
pub const NODE_GRACE: std::time::Duration = crate::config::DEFAULT_NODE_GRACE;

struct SegmentCheck {
    faults: Vec<(usize, ShardFault)>,
    /// The first stripe with fewer than K good blocks.
    lost_stripe: Option<u64>,
    bytes: u64,
}

pub(super) fn expect(seg: &SegmentRecord, root: crate::types::Hash) -> Expect {
    let g = &seg.geometry;
    Expect {
        block_size: g.block_size,
        blocks: g.stripes(),
        data_len: g.shard_data_len(),
        root,
    }
}

fn fault_of(e: &DiskError) -> ShardFault {
    match e {
        DiskError::Corrupt { .. } => ShardFault::Corrupt,
        DiskError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            ShardFault::Missing
        }
        _ => ShardFault::Missing,
    }
}

impl Store {
    /// Reads every block of every shard of `seg`, verifying each.
    fn check_segment(&self, seg: &SegmentRecord) -> Result<SegmentCheck, StoreError> {
        let g = seg.geometry;
        let stripes = g.stripes();
        let mut good = vec![0usize; stripes as usize];
        let mut faults = Vec::new();
        let mut bytes = 0u64;
        for (i, (disk_id, root)) in self.shard_locations(seg)?.into_iter().enumerate() {
            let (Some(root), Some(disk)) = (root, self.disk(&disk_id)) else {
                faults.push((i, ShardFault::Missing));
                continue;
            };
            let reader = match disk.open_reading(
                ShardName::new(seg.id, i),
                &expect(seg, root),
                0..stripes,
            ) {
                Ok(r) => r,
                Err(e) => {
                    faults.push((i, fault_of(&e)));
                    continue;
                }
            };
            let mut bad = false;
            for s in 0..stripes {
                let mut buf = vec![0u8; g.block_len(s)];
                match reader.read_block(s, &mut buf) {
                    Ok(()) => {
                        good[s as usize] += 1;
                        bytes += buf.len() as u64;
                    }
                    Err(_) => bad = true,
                }
            }
            if bad {
                faults.push((i, ShardFault::Corrupt));
            }
        }
        Ok(SegmentCheck {
            lost_stripe: good.iter().position(|&n| n < g.k()).map(|s| s as u64),
            faults,
            bytes,
        })
    }

    /// Where a rebuilt shard goes when its own disk cannot take it: an online disk of
    /// the cluster (this node's alone on a single node) in the failure domain holding the
    /// fewest shards of this segment — site first, then node, then disk — so that losing
    /// a site or a node costs as few of its shards as the disks left allow (sites.md §3:
    /// repair respects the failure domains; with three nodes of two disks and 4+2, a
    /// down node's two shards go one to each other node, not both to the repairer).
    fn new_home(&self, locations: &[(String, Option<Hash>)]) -> Option<Arc<dyn ShardStore>> {
        let set = self.disk_set();
        let specs = set.topology.disks();
        // The set's index of each shard's disk (its record name: a UUID, or this
        // node's configured id).
        let slot = |name: &str| {
            self.disk_slot(name).or_else(|| {
                let uuid = DiskUuid::parse(name)?;
                set.disks.iter().position(|d| d.uuid() == Some(uuid))
            })
        };
        let held: Vec<usize> = locations.iter().filter_map(|(n, _)| slot(n)).collect();
        let count = |same: &dyn Fn(usize) -> bool| held.iter().filter(|&&j| same(j)).count();
        set.disks
            .iter()
            .enumerate()
            .filter(|(_, d)| d.state() == DiskState::Online && d.usable())
            .min_by_key(|(n, _)| {
                let (site, node) = (&specs[*n].site, &specs[*n].node);
                (
                    count(&|j| specs[j].site == *site),
                    count(&|j| specs[j].node == *node),
                    count(&|j| j == *n),
                )
            })
            .map(|(_, d)| d.clone())
    }

    /// Rebuilds shards `bad` of `seg` from the others: each stripe is read from K good
    /// shards (verified), re-encoded whole, and the missing blocks written to new files.
    /// On its own (online) disk a shard replaces the bad file by rename, only if it hashes
    /// to its recorded root; a shard whose disk is gone, or that was never written, goes
    /// to another disk and its new place is recorded.
    fn rebuild_segment(&self, seg: &SegmentRecord, bad: &[usize]) -> Result<(), StoreError> {
        let g = seg.geometry;
        let mut locations = self.shard_locations(seg)?;
        let mut writers = Vec::with_capacity(bad.len());
        for &i in bad {
            let (disk_id, root) = locations[i].clone();
            let own = self
                .disk(&disk_id)
                .filter(|d| d.state() == DiskState::Online);
            let name = ShardName::new(seg.id, i);
            match (own, root) {
                (Some(disk), Some(root)) => {
                    writers.push((i, None, disk.rebuild(name, g.block_size, root)?));
                }
                // Never written because its member was down: written where placement put
                // it, now that the member is back.
                (Some(disk), None) if self.local_disk(&disk_id).is_none() => {
                    // A file an earlier attempt finished there, whose answer was lost: no
                    // record names its root, so it is replaced.
                    if let Err(e) = disk.remove(name) {
                        tracing::warn!(error = %e, "cannot clear a leftover shard file");
                    }
                    writers.push((
                        i,
                        Some(disk.record_name()),
                        disk.create(name, g.block_size)?,
                    ));
                }
                _ => {
                    let disk = self
                        .new_home(&locations)
                        .ok_or(StoreError::InsufficientDisks {
                            available: 0,
                            needed: 1,
                        })?;
                    // Nothing references a file of this shard there: clear any leftover.
                    if let Err(e) = disk.remove(name) {
                        // The new file's link then fails, and the repair with it.
                        tracing::warn!(error = %e, "cannot clear a leftover shard file");
                    }
                    locations[i] = (disk.record_name(), None);
                    writers.push((
                        i,
                        Some(disk.record_name()),
                        disk.create(name, g.block_size)?,
                    ));
                }
            }
        }
        let readers: Vec<Option<Box<dyn ShardSource>>> = locations
            .iter()
            .enumerate()
            .map(|(i, (disk_id, root))| {
                if bad.contains(&i) {
                    return None;
                }
                let disk = self.disk(disk_id)?;
                disk.open(ShardName::new(seg.id, i), &expect(seg, (*root)?))
                    .ok()
            })
            .collect();
        for r in readers.iter().flatten() {
            r.read_ahead(g.stripes());
        }
        for s in 0..g.stripes() {
            let len = g.block_len(s);
            let mut blocks: Vec<Option<Vec<u8>>> = vec![None; g.width()];
            let mut have = 0;
            for (i, r) in readers.iter().enumerate() {
                if have == g.k() {
                    break;
                }
                if let Some(r) = r {
                    let mut buf = vec![0u8; len];
                    if r.read_block(s, &mut buf).is_ok() {
                        blocks[i] = Some(buf);
                        have += 1;
                    }
                }
            }
            self.inner
                .codecs
                .get(g.k(), g.width() - g.k())?
                .reconstruct(&mut blocks, true)?;
            for (i, _, w) in &mut writers {
                let block = blocks[*i]
                    .as_deref()
                    .ok_or(StoreError::Codec(crate::erasure::CodecError::ShardLength))?;
                w.append(block)?;
            }
        }
        for (i, placed, w) in writers {
            let root = w.finish()?;
            if let Some(disk) = placed {
                tracing::info!(segment = %seg.id, shard = i, %disk, "shard rebuilt and its place recorded");
                // Through the log: in a cluster every node reads the shard there.
                self.propose(crate::command::MetaCommand::SetPlacement {
                    segment: seg.id,
                    index: i as u16,
                    placement: crate::meta::ShardPlacement { disk, root },
                })?;
            }
        }
        Ok(())
    }

    /// Verifies every shard of a version and, with `repair`, rebuilds what is missing or
    /// corrupt. Inline versions are checked against their hash (they cannot be rebuilt:
    /// their only copy is the metadata store's).
    ///
    /// # Errors
    /// [`StoreError::Meta`] when the metadata needed to check the version (its inline
    /// bytes, its shards' placements) cannot be read: nothing is concluded about the
    /// version then, rather than reporting it corrupt. A failed rebuild is not an error:
    /// it is [`VersionScrub::repair_error`].
    pub fn scrub_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rec: &VersionRecord,
        repair: bool,
    ) -> Result<VersionScrub, StoreError> {
        let mut out = VersionScrub::default();
        if rec.kind == VersionKind::DeleteMarker {
            return Ok(out);
        }
        if rec.inline {
            let ok = self
                .inner
                .meta
                .inline(bucket, key, &rec.version_id)?
                .is_some_and(|r| {
                    r.data.len() as u64 == rec.size && blake3::hash(&r.data).as_bytes() == &r.blake3
                });
            out.bytes_verified = rec.size;
            if !ok {
                out.corrupt = 1;
                out.unrepairable = Some(0);
            }
            return Ok(out);
        }
        // A member that does not know the cluster's disks yet (the first seconds after a
        // start) would find every other node's shard missing and rebuild it on its own
        // disks — crowding one node with a segment's shards. It waits instead.
        if self.has_barrier() && !self.disk_set().from_cluster {
            out.waiting = rec.segments.iter().map(|s| s.shards.len() as u64).sum();
            return Ok(out);
        }
        // Held across check and rebuild, so two workers never rebuild one shard twice.
        let _one_repair_at_a_time =
            repair.then(|| self.inner.repair.lock().unwrap_or_else(|p| p.into_inner()));
        for seg in &rec.segments {
            let check = self.check_segment(seg)?;
            out.bytes_verified += check.bytes;
            out.shards_verified += (seg.shards.len() - check.faults.len()) as u64;
            for (_, f) in &check.faults {
                match f {
                    ShardFault::Missing => out.missing += 1,
                    ShardFault::Corrupt => out.corrupt += 1,
                }
            }
            if let Some(s) = check.lost_stripe {
                tracing::error!(bucket = %bucket, key = %key, version = %rec.version_id, stripe = s, "version unrepairable: fewer than K good shards");
                out.unrepairable.get_or_insert(s);
                continue;
            }
            if repair && !check.faults.is_empty() {
                let locations = self.shard_locations(seg)?;
                let (waiting, bad): (Vec<usize>, Vec<usize>) = check
                    .faults
                    .iter()
                    .map(|(i, _)| *i)
                    .partition(|&i| self.waits_for_node(&locations[i].0));
                out.waiting += waiting.len() as u64;
                if bad.is_empty() {
                    continue;
                }
                match self.rebuild_segment(seg, &bad) {
                    Ok(()) => {
                        out.repaired += bad.len() as u64;
                        tracing::info!(bucket = %bucket, key = %key, version = %rec.version_id, shards = ?bad, "shards rebuilt");
                    }
                    Err(e) => {
                        tracing::error!(bucket = %bucket, key = %key, version = %rec.version_id, error = %e, "repair failed");
                        out.repair_error.get_or_insert(e.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Moves shard files no version, upload or pending write references — and last
    /// modified before `older_than` (on the store's clock), as a second guard — into each
    /// disk's `quarantine/` folder. Nothing is deleted: an administrator decides. Returns
    /// how many.
    ///
    /// The files are listed *before* the references are read, pending writes first, then
    /// parts, then versions: a file listed was linked after its pending record was written,
    /// and that record is removed only in the batch that commits its part or version (a
    /// part's segment leaves it only in the batch that commits its version), so every live
    /// file is seen referenced.
    ///
    /// # Errors
    /// A metadata read that fails ([`StoreError::Meta`]): then nothing is moved.
    pub fn quarantine_orphans(&self, older_than: Timestamp) -> Result<u64, StoreError> {
        use std::collections::HashSet;
        let mut candidates = Vec::new();
        for disk in &self.inner.disks {
            // An offline disk's files are checked when it is back.
            match disk.list_older_than(older_than.micros()) {
                Ok(files) => candidates.extend(files.into_iter().map(|f| (disk, f))),
                Err(e) => tracing::warn!(disk = %disk.id(), error = %e, "cannot list shard files"),
            }
        }
        let mut referenced: HashSet<String> = HashSet::new();
        for p in self.inner.meta.pending()? {
            referenced.insert(p.segment.to_string());
        }
        // A segment moves from pending to a part or a version, and from a part to a
        // version: read in that order, it cannot slip between two reads unseen.
        for b in self.buckets()? {
            for u in self.inner.meta.uploads(&b.name)? {
                for p in self.inner.meta.parts(&u.upload_id)? {
                    if let Some(seg) = p.segment {
                        referenced.insert(seg.id.to_string());
                    }
                }
            }
            self.inner.meta.scan_versions(&b.name, "", |_, v| {
                for seg in &v.segments {
                    referenced.insert(seg.id.to_string());
                }
                std::ops::ControlFlow::Continue(())
            })?;
        }
        let mut moved = 0u64;
        for (disk, file) in candidates {
            if referenced.contains(&file.segment) {
                continue;
            }
            match disk.quarantine(&file) {
                Ok(()) => {
                    moved += 1;
                    tracing::warn!(disk = %disk.id(), file = %file.name, "orphan shard file quarantined");
                }
                Err(e) => {
                    tracing::warn!(disk = %disk.id(), file = %file.name, error = %e, "cannot quarantine orphan shard file")
                }
            }
        }
        Ok(moved)
    }

    /// Heals a disk whose directory was emptied: stamps it and brings it online; the next
    /// scrub with repair rebuilds its shards.
    pub fn heal_disk(&self, id: &str) -> Result<(), StoreError> {
        let disk = self.local_disk(id).ok_or_else(|| {
            StoreError::Disk(DiskError::Offline {
                disk: id.to_owned(),
            })
        })?;
        disk.heal()?;
        Ok(())
    }
}
