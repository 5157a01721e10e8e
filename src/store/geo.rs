//! Erasure coding across sites on the write and repair paths (issue 15,
//! `../shared/design/sites.md` §3.4): a write is acknowledged site-safe, or site-unsafe
//! with its debt queued in the same commit, or refused ([`crate::cluster::geo`]); repair
//! keeps a site-unsafe entry until the segment would survive losing any site again.

use crate::cluster::geo::{self, Durability};
use crate::disk::DiskUuid;
use crate::meta::{RepairReason, RepairRecord, SegmentRecord};
use crate::types::{BucketName, ObjectKey, Timestamp, VersionId};

use super::{Store, StoreError};

impl Store {
    /// The index in the disk set of the disk a shard record names.
    fn set_index(&self, set: &super::DiskSet, name: &str) -> Option<usize> {
        self.disk_slot(name).or_else(|| {
            let uuid = DiskUuid::parse(name)?;
            set.disks.iter().position(|d| d.uuid() == Some(uuid))
        })
    }

    /// How shards durable on the disks `durable` (as records name them) stand against
    /// losing a site, for K = `data`, with the node's write quorum. A disk the layout does
    /// not know counts in no site (so it cannot make a write site-safe).
    pub(super) fn durability_on(&self, data: usize, durable: &[&str]) -> Durability {
        let set = self.disk_set();
        let specs = set.topology.disks();
        let sites: Vec<&str> = specs.iter().map(|d| d.site.as_str()).collect();
        let on: Vec<&str> = durable
            .iter()
            .map(|n| {
                self.set_index(&set, n)
                    .and_then(|i| specs.get(i))
                    .map_or("", |d| d.site.as_str())
            })
            .collect();
        geo::durability(data, self.inner.config.write_quorum, &on, &sites)
    }

    /// Whether `seg`'s shards, where they are now (moves and repairs included), would
    /// survive losing any one site of the layout. True below three sites.
    pub(crate) fn site_safe(&self, seg: &SegmentRecord) -> Result<bool, StoreError> {
        let locations = self.shard_locations(seg)?;
        let durable: Vec<&str> = locations
            .iter()
            .filter(|(_, root)| root.is_some())
            .map(|(d, _)| d.as_str())
            .collect();
        Ok(!matches!(
            self.durability_on(seg.geometry.k(), &durable),
            Durability::SiteUnsafe | Durability::Short { .. }
        ))
    }

    /// The repair-queue entries a new version of `bucket/key` needs for its `segments`
    /// as written: the shards no disk took, and, across sites, a segment that would not
    /// survive losing a site ([`RepairReason::SiteUnsafe`], with its bytes). Committed in
    /// the same command as the version, so no acknowledged version lacks its entry.
    pub(super) fn write_debts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: VersionId,
        segments: &[SegmentRecord],
        created: Timestamp,
    ) -> Vec<RepairRecord> {
        segments
            .iter()
            .filter_map(|seg| {
                let missing: Vec<u16> = (0u16..)
                    .zip(&seg.shards)
                    .filter(|(_, s)| s.root.is_none())
                    .map(|(i, _)| i)
                    .collect();
                let durable: Vec<&str> = seg
                    .shards
                    .iter()
                    .filter(|s| s.root.is_some())
                    .map(|s| s.disk.as_str())
                    .collect();
                let reason = match self.durability_on(seg.geometry.k(), &durable) {
                    Durability::Safe if missing.is_empty() => return None,
                    Durability::Safe => RepairReason::WriteFailed,
                    Durability::SiteUnsafe | Durability::Short { .. } => RepairReason::SiteUnsafe {
                        bytes: seg.geometry.len,
                    },
                };
                Some(RepairRecord::new(
                    bucket.clone(),
                    key.clone(),
                    version_id,
                    seg.id,
                    missing,
                    reason,
                    created,
                ))
            })
            .collect()
    }
}
