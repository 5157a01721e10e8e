//! Moving shards to where the current layout places them (issue 14, item 3;
//! `../shared/design/sites.md` §3.3): a new layout steers only new writes, and existing
//! shards move only here, deliberately — copied block by block (each block verified
//! against the recorded root as it is read), the copy's root checked, the new place
//! recorded through the group with a compare-and-set (`MetaCommand::MoveShard`), and the
//! old copy removed only after a grace period, so a read that began before the move
//! still finds it. The rebalance worker (`background::rebalance`) calls these.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::disk::{DiskState, DiskUuid, ShardName, ShardStore};
use crate::meta::{Record, SegmentRecord, Space, VersionRecord};
use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp};

/// Where old copies wait for their removal, in this node's own records (the node that
/// moved them removes them).
const OLD_COPIES: &str = "rebalance/old/";

/// What the rebalancer did to one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moves {
    /// Shards copied to a disk the layout places them on, verified and recorded there.
    pub moved: u64,
    /// Bytes copied (the shard files' blocks).
    pub bytes: u64,
    /// Shards off the layout's placement left where they are for now: their disk or the
    /// disk they would go to is not online, or a shard of the segment was never written
    /// or its disk is unknown (repair comes first).
    pub waiting: u64,
    /// Moves another change recorded first (a delete, a repair, another move): the copy
    /// was removed and nothing recorded.
    pub raced: u64,
}

impl Moves {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Moves) {
        self.moved += other.moved;
        self.bytes += other.bytes;
        self.waiting += other.waiting;
        self.raced += other.raced;
    }
}

/// An old copy of a moved shard, waiting for its grace period to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldCopy {
    /// The disk it is on, as records name it.
    pub disk: String,
    /// Its segment.
    pub segment: SegmentId,
    /// Its index.
    pub index: u16,
    /// When it may be removed (the store's clock).
    pub due: Timestamp,
}

impl Record for OldCopy {
    const NAME: &'static str = "rebalance-old-copy";
    const FORMAT: u8 = 1;
}

fn old_copy_key(c: &OldCopy) -> String {
    // The due time first, zero-padded, so keys sort by it.
    format!(
        "{OLD_COPIES}{:020}/{}.{}/{}",
        c.due.0.max(0),
        c.segment,
        c.index,
        c.disk
    )
}

impl Store {
    /// Moves the shards of `rec` (version of `bucket/key`) that are not where the current
    /// layout places their segment onto the disks it does place them on, each shard to a
    /// disk holding none of the segment's (the layout's placement already spreads over
    /// failure domains). An old copy is queued for removal at `now + grace`. `throttle`
    /// is told of every block's bytes as they are copied (it may sleep). Nothing moves on
    /// a single node: it has no layout.
    ///
    /// # Errors
    /// A metadata read or write, a copy that failed (its partial file removed), a command
    /// the group did not take.
    pub fn rebalance_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rec: &VersionRecord,
        grace: std::time::Duration,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<Moves, StoreError> {
        let mut out = Moves::default();
        if rec.inline || !self.inner.config.spans_nodes {
            return Ok(out);
        }
        for seg in &rec.segments {
            out.add(self.rebalance_segment(bucket, key, rec, seg, grace, throttle)?);
        }
        Ok(out)
    }

    fn rebalance_segment(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rec: &VersionRecord,
        seg: &SegmentRecord,
        grace: std::time::Duration,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<Moves, StoreError> {
        let mut out = Moves::default();
        let set = self.disk_set();
        let width = seg.geometry.width();
        if set.disks.len() < width || seg.shards.len() != width {
            return Ok(out);
        }
        // Weights only: a disk briefly offline does not change where shards belong.
        let target = set.topology.place(seg.id.as_bytes(), width, |_| true);
        let locations = self.shard_locations(seg)?;
        let slot = |name: &str| {
            self.disk_slot(name).or_else(|| {
                let uuid = DiskUuid::parse(name)?;
                set.disks.iter().position(|d| d.uuid() == Some(uuid))
            })
        };
        let held: Vec<Option<usize>> = locations.iter().map(|(n, _)| slot(n)).collect();
        let misplaced: Vec<usize> = (0..width)
            .filter(|&i| held[i].is_none_or(|d| !target.contains(&d)))
            .collect();
        if misplaced.is_empty() {
            return Ok(out);
        }
        // A full disk is still read (draining it is why one moves shards off it).
        let readable = |i: usize| set.disks[i].state() != DiskState::Offline;
        let online = |i: usize| {
            let d = &set.disks[i];
            d.state() == DiskState::Online && d.usable()
        };
        let mut free: Vec<usize> = target
            .iter()
            .copied()
            .filter(|t| !held.contains(&Some(*t)))
            .collect();
        // All or nothing: a shard never written, on a disk no longer known or not online,
        // or a target not online, and the segment waits (repair comes first), so that no
        // pass leaves a failure domain holding more of it than the layout places there.
        if held.iter().any(Option::is_none)
            || locations.iter().any(|(_, r)| r.is_none())
            || misplaced
                .iter()
                .any(|&i| held[i].is_none_or(|d| !readable(d)))
            || free.iter().any(|&t| !online(t))
        {
            out.waiting += misplaced.len() as u64;
            return Ok(out);
        }
        let specs = set.topology.disks();
        for i in misplaced {
            let (from, root) = &locations[i];
            let (Some(src), Some(root)) = (held[i], *root) else {
                out.waiting += 1;
                continue;
            };
            // A disk of the same node first, then of the same site: a move keeps each
            // failure domain's count where it can.
            let Some(pick) = free
                .iter()
                .position(|&t| specs[t].node == specs[src].node)
                .or_else(|| free.iter().position(|&t| specs[t].site == specs[src].site))
                .or((!free.is_empty()).then_some(0))
            else {
                out.waiting += 1;
                continue;
            };
            let to = free.remove(pick);
            let (src, dst) = (set.disks[src].clone(), set.disks[to].clone());
            let name = ShardName::new(seg.id, i);
            // The old copy is queued before the move is recorded: a crash in between
            // leaves an entry whose removal finds the shard moved (or not) and acts on it.
            let old = OldCopy {
                disk: from.clone(),
                segment: seg.id,
                index: i as u16,
                due: self
                    .clock()
                    .now()
                    .plus_micros(i64::try_from(grace.as_micros()).unwrap_or(i64::MAX)),
            };
            let bytes = match self.copy_shard(seg, name, root, src.as_ref(), dst.as_ref(), throttle)
            {
                Ok(b) => b,
                Err(e) => {
                    // A source that fails to read or a destination that fails to write:
                    // scrub and repair deal with the shard; the pass goes on.
                    tracing::warn!(segment = %seg.id, shard = i, error = %e, "a shard could not be copied; left where it is");
                    out.waiting += 1;
                    continue;
                }
            };
            self.queue_old_copy(&old)?;
            let moved = self.propose(crate::command::MetaCommand::MoveShard {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: rec.version_id,
                segment: seg.id,
                index: i as u16,
                from: from.clone(),
                to: crate::meta::ShardPlacement {
                    disk: dst.record_name(),
                    root,
                },
            });
            match moved {
                Ok(crate::command::Outcome::Moved(true)) => {
                    tracing::info!(segment = %seg.id, shard = i, %from, to = %dst.record_name(), "shard moved to the layout");
                    out.moved += 1;
                    out.bytes += bytes;
                }
                Ok(crate::command::Outcome::Moved(false)) => {
                    self.inner
                        .meta
                        .kv_write(Space::Node, &[], &[old_copy_key(&old)])?;
                    self.remove_unrecorded(seg, name, dst.as_ref())?;
                    out.raced += 1;
                }
                Ok(other) => return Err(crate::command::unexpected(other).into()),
                // Not known whether it was recorded: the queued entry removes the old
                // copy only if the shard is no longer recorded there, and the new copy
                // is either the shard's place or an orphan for the scrub's check.
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Queues `old` for removal once its grace period ended ([`Store::remove_old_copies`]).
    pub(super) fn queue_old_copy(&self, old: &OldCopy) -> Result<(), StoreError> {
        Ok(self
            .inner
            .meta
            .kv_write(Space::Node, &[(old_copy_key(old), old.encode()?)], &[])?)
    }

    /// Removes the copy of shard `name` on `dst` unless `dst` is where the shard is
    /// recorded now (a repair or another move chose it meanwhile).
    fn remove_unrecorded(
        &self,
        seg: &SegmentRecord,
        name: ShardName,
        dst: &dyn ShardStore,
    ) -> Result<(), StoreError> {
        let here = self
            .shard_locations(seg)?
            .get(name.index)
            .is_some_and(|(d, _)| *d == dst.record_name());
        if !here && let Err(e) = dst.remove(name) {
            tracing::warn!(error = %e, "cannot remove an unrecorded shard copy");
        }
        Ok(())
    }

    /// Copies shard `name` from `src` to `dst` block by block, each block verified
    /// against `root` as it is read; the copy must finish with the same root. Returns the
    /// bytes copied. A failed copy leaves no file at `dst` (unless `dst` became the
    /// shard's recorded place meanwhile).
    fn copy_shard(
        &self,
        seg: &SegmentRecord,
        name: ShardName,
        root: crate::types::Hash,
        src: &dyn ShardStore,
        dst: &dyn ShardStore,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<u64, StoreError> {
        let g = seg.geometry;
        let reader = src.open(name, &super::scrub::expect(seg, root))?;
        reader.read_ahead(g.stripes());
        // A leftover of an earlier attempt: nothing references it.
        self.remove_unrecorded(seg, name, dst)?;
        let mut copy = || -> Result<u64, StoreError> {
            let mut w = dst.create(name, g.block_size)?;
            let mut bytes = 0u64;
            for s in 0..g.stripes() {
                let mut buf = vec![0u8; g.block_len(s)];
                reader.read_block(s, &mut buf)?;
                w.append(&buf)?;
                bytes += buf.len() as u64;
                throttle(buf.len() as u64);
            }
            if w.finish()? != root {
                return Err(crate::disk::DiskError::Corrupt {
                    path: name.to_string().into(),
                    what: crate::disk::shard::Corruption::RootMismatch,
                }
                .into());
            }
            Ok(bytes)
        };
        copy().inspect_err(|_| {
            if let Err(e) = self.remove_unrecorded(seg, name, dst) {
                tracing::warn!(error = %e, "cannot check a failed copy's place");
            }
        })
    }

    /// Removes the old copies of moved shards whose grace period ended by `now`: a copy
    /// is removed only while a placement records its shard on another disk (the move was
    /// recorded and not undone). An entry whose shard has no placement (the move was
    /// never recorded, or the version is gone and its files are orphans for the scrub's
    /// check) is dropped without removing anything; one on a disk not reachable now waits
    /// for a later call, unless the disk left the layout. Returns how many were removed.
    /// Each node removes the entries it queued: its repair drains call this too, so the
    /// removal does not wait for the lease.
    ///
    /// # Errors
    /// A metadata read or write.
    pub fn remove_old_copies(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut removed = 0;
        let keys = self
            .inner
            .meta
            .kv_keys(Space::Node, OLD_COPIES, usize::MAX)?;
        for key in keys {
            let Some(c) = self.inner.meta.kv_get::<OldCopy>(Space::Node, &key)? else {
                continue;
            };
            if c.due > now {
                break;
            }
            let moved_away = self
                .inner
                .meta
                .placements(&c.segment)?
                .into_iter()
                .any(|(i, p)| i == c.index && p.disk != c.disk);
            if moved_away {
                match self.disk(&c.disk) {
                    Some(disk) => {
                        if let Err(e) = disk.remove(ShardName::new(c.segment, usize::from(c.index)))
                        {
                            tracing::warn!(error = %e, disk = %c.disk, "cannot remove an old shard copy yet");
                            continue;
                        }
                        removed += 1;
                    }
                    None => {
                        // Not reachable from here now: wait, unless it left the layout
                        // (its node removed, the disk replaced).
                        let in_layout = DiskUuid::parse(&c.disk).is_some_and(|u| {
                            crate::membership::layout::current(&self.inner.meta)
                                .is_ok_and(|l| l.weight_of(u).is_some())
                        });
                        if in_layout {
                            continue;
                        }
                    }
                }
            }
            self.inner.meta.kv_write(Space::Node, &[], &[key])?;
        }
        Ok(removed)
    }

    /// How many old copies of moved shards wait for their grace period to end.
    ///
    /// # Errors
    /// A metadata read.
    pub fn old_copies_waiting(&self) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .meta
            .kv_keys(Space::Node, OLD_COPIES, usize::MAX)?
            .len() as u64)
    }
}
