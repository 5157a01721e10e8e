//! Erasure coding across sites on the write and repair paths (issue 15,
//! `../shared/design/sites.md` §3.4): a write is acknowledged site-safe, or site-unsafe
//! with its debt queued in the same commit, or refused ([`crate::cluster::geo`]); repair
//! keeps a site-unsafe entry until the segment would survive losing any site again.

use serde::Serialize;

use crate::cluster::geo::{self, Durability};
use crate::config::EcParams;
use crate::disk::DiskUuid;
use crate::meta::{BucketGeo, RepairReason, RepairRecord, SegmentRecord};
use crate::types::{BucketName, ObjectKey, Timestamp, VersionId};

use super::{DiskSet, Store, StoreError};

/// What removing a site for good costs: the segments with shards on its disks, and the
/// shards and bytes to rebuild elsewhere ([`Store::queue_site_rebuild`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SiteRebuild {
    /// Segments with at least one shard on the site's disks.
    pub segments: u64,
    /// Their shards there.
    pub shards: u64,
    /// Bytes of those shards (block data), what repair writes again.
    pub bytes: u64,
}

/// How the cluster's layout stands for erasure coding across sites (`cluster status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeoStatus {
    /// The layout's sites, in name order.
    pub sites: Vec<String>,
    /// The node's profile (`--ec`), for buckets without their own.
    pub profile: String,
    /// Shards of one object in each site under that profile.
    pub per_site: usize,
    /// Why that profile cannot survive a site here, if it cannot (two sites, or M < n).
    pub refusal: Option<String>,
    /// Sites none of whose disks this node can reach now.
    pub sites_down: Vec<String>,
}

impl Store {
    /// `bucket`'s erasure coding across sites (the defaults when it set none).
    ///
    /// # Errors
    /// A metadata read.
    pub fn bucket_geo(&self, bucket: &BucketName) -> Result<BucketGeo, StoreError> {
        Ok(self.inner.meta.bucket_geo(bucket)?.unwrap_or_default())
    }

    /// The K+M a bucket with `geo` writes with.
    pub fn bucket_profile(&self, geo: &BucketGeo) -> EcParams {
        geo.profile.map_or(self.inner.config.ec, |(k, m)| {
            EcParams::new(usize::from(k), usize::from(m))
        })
    }

    /// The sites of the layout, in name order.
    fn layout_sites(set: &DiskSet) -> Vec<String> {
        let mut sites: Vec<String> = set
            .topology
            .disks()
            .iter()
            .map(|d| d.site.clone())
            .collect();
        sites.sort();
        sites.dedup();
        sites
    }

    /// A site none of whose disks is usable now, across three sites or more.
    pub(super) fn site_down(set: &DiskSet) -> Option<String> {
        let sites = Self::layout_sites(set);
        if sites.len() < geo::GEO_SITES {
            return None;
        }
        Self::sites_down(set).into_iter().next()
    }

    fn sites_down(set: &DiskSet) -> Vec<String> {
        let specs = set.topology.disks();
        Self::layout_sites(set)
            .into_iter()
            .filter(|s| {
                !specs
                    .iter()
                    .zip(&set.disks)
                    .any(|(spec, d)| spec.site == *s && d.usable())
            })
            .collect()
    }

    /// Counts, and unless `dry_run` queues for repair on this node, every segment with
    /// shards on the disks named in `disks` (as records name them: a removed site's):
    /// repair rebuilds each from the other shards onto the disks left, by failure domain
    /// ([`RepairReason::SiteRemoved`]). One scan of the namespace; the entries are this
    /// node's own (kept across restarts, drained by its repair worker).
    ///
    /// # Errors
    /// A metadata read or write.
    pub fn queue_site_rebuild(
        &self,
        disks: &std::collections::HashSet<String>,
        dry_run: bool,
    ) -> Result<SiteRebuild, StoreError> {
        let mut out = SiteRebuild::default();
        let now = self.clock().now();
        for b in self.buckets()? {
            let mut entries = Vec::new();
            let mut failed = None;
            self.inner.meta.scan_versions(&b.name, "", |key, rec| {
                for seg in &rec.segments {
                    let locations = match self.shard_locations(seg) {
                        Ok(l) => l,
                        Err(e) => {
                            failed = Some(e);
                            return std::ops::ControlFlow::Break(());
                        }
                    };
                    let lost: Vec<u16> = (0u16..)
                        .zip(&locations)
                        .filter(|(_, (disk, _))| disks.contains(disk))
                        .map(|(i, _)| i)
                        .collect();
                    if lost.is_empty() {
                        continue;
                    }
                    out.segments += 1;
                    out.shards += lost.len() as u64;
                    out.bytes += lost.len() as u64 * seg.geometry.shard_data_len();
                    entries.push(RepairRecord::new(
                        b.name.clone(),
                        key.clone(),
                        rec.version_id,
                        seg.id,
                        lost,
                        RepairReason::SiteRemoved,
                        now,
                    ));
                }
                std::ops::ControlFlow::Continue(())
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            if !dry_run {
                for e in &entries {
                    self.inner.meta.enqueue_repair(e)?;
                }
            }
        }
        Ok(out)
    }

    /// How the layout stands for erasure coding across sites.
    pub fn geo_status(&self) -> GeoStatus {
        let set = self.disk_set();
        let sites = Self::layout_sites(&set);
        let ec = self.inner.config.ec;
        GeoStatus {
            per_site: geo::per_site(ec.data, ec.parity, sites.len()),
            refusal: geo::check_profile(ec.data, ec.parity, sites.len())
                .err()
                .or_else(|| self.placement_refusal(ec.data, ec.parity))
                .map(|e| e.to_string()),
            profile: ec.to_string(),
            sites_down: Self::sites_down(&set),
            sites,
        }
    }

    /// Sets (or, with `None`, removes) `bucket`'s erasure coding across sites. A profile
    /// is checked against the layout as it is now: refused across two sites, or across
    /// three or more when it cannot survive losing one ([`geo::check_profile`]), or when
    /// wider than the layout's disks. Existing objects keep the profile they were written
    /// with.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], [`StoreError::InvalidProfile`], a command the group
    /// did not take.
    pub fn set_bucket_geo(
        &self,
        bucket: &BucketName,
        config: Option<BucketGeo>,
    ) -> Result<(), StoreError> {
        self.bucket(bucket)?;
        if let Some((k, m)) = config.and_then(|c| c.profile) {
            let (k, m) = (usize::from(k), usize::from(m));
            let refuse = |refusal: geo::ProfileRefusal| StoreError::InvalidProfile {
                bucket: bucket.clone(),
                refusal,
            };
            let out_of_range = geo::ProfileRefusal::OutOfRange { data: k, parity: m };
            if k == 0 || m == 0 || k + m > 255 {
                return Err(refuse(out_of_range));
            }
            if self.inner.codecs.get(k, m).is_err() {
                return Err(refuse(out_of_range));
            }
            let set = self.disk_set();
            let disks = set.disks.len();
            if k + m > disks {
                return Err(refuse(geo::ProfileRefusal::TooWide {
                    data: k,
                    parity: m,
                    disks,
                }));
            }
            geo::check_profile(k, m, Self::layout_sites(&set).len()).map_err(refuse)?;
            if let Some(why) = self.placement_refusal(k, m) {
                return Err(refuse(why));
            }
        }
        match self.propose(crate::command::MetaCommand::SetBucketGeo {
            bucket: bucket.clone(),
            config,
        })? {
            crate::command::Outcome::BucketGeoSet(true) => Ok(()),
            crate::command::Outcome::BucketGeoSet(false) => Err(StoreError::NoSuchBucket {
                bucket: bucket.clone(),
            }),
            other => Err(crate::command::unexpected(other).into()),
        }
    }

    /// The index in the disk set of the disk a shard record names.
    fn set_index(&self, set: &super::DiskSet, name: &str) -> Option<usize> {
        self.disk_slot(name).or_else(|| {
            let uuid = DiskUuid::parse(name)?;
            set.disks.iter().position(|d| d.uuid() == Some(uuid))
        })
    }

    /// How shards durable on the disks `durable` (as records name them) stand against
    /// losing a site, for K = `data` and write quorum `quorum`. A shard on a disk the
    /// layout does not know (a member removed meanwhile) is not counted at all: it can
    /// make a write neither site-safe nor acknowledged.
    pub(super) fn durability_on(&self, data: usize, quorum: usize, durable: &[&str]) -> Durability {
        let set = self.disk_set();
        let specs = set.topology.disks();
        let sites: Vec<&str> = specs.iter().map(|d| d.site.as_str()).collect();
        let on: Vec<&str> = durable
            .iter()
            .filter_map(|n| {
                self.set_index(&set, n)
                    .and_then(|i| specs.get(i))
                    .map(|d| d.site.as_str())
            })
            .collect();
        geo::durability(data, quorum, &on, &sites)
    }

    /// Whether a site-unsafe segment's debt is paid: every shard durable, each on a disk
    /// where the layout's placement puts it, and the whole surviving the loss of any site
    /// (`Store::site_safe`). Metadata only: no shard is read.
    pub(crate) fn geo_settled(&self, seg: &SegmentRecord) -> Result<bool, StoreError> {
        let set = self.disk_set();
        let width = seg.geometry.width();
        let locations = self.shard_locations(seg)?;
        if locations.iter().any(|(_, root)| root.is_none()) {
            return Ok(false);
        }
        if set.disks.len() >= width && seg.shards.len() == width {
            let target = set.topology.place(seg.id.as_bytes(), width, |_| true);
            let placed = locations
                .iter()
                .all(|(d, _)| self.set_index(&set, d).is_some_and(|i| target.contains(&i)));
            if !placed {
                return Ok(false);
            }
        }
        self.site_safe(seg)
    }

    /// Whether some site of a layout of three sites or more has no disk usable now.
    pub(crate) fn a_site_is_down(&self) -> bool {
        Self::site_down(&self.disk_set()).is_some()
    }

    /// Why K+M placed over the layout as it is (its sites' disks and weights) would not
    /// survive losing a site, if it would not: 256 segment ids are placed and, for each,
    /// every site's loss checked (uneven sites can put more than (K+M)/S in one).
    fn placement_refusal(&self, data: usize, parity: usize) -> Option<geo::ProfileRefusal> {
        let set = self.disk_set();
        let specs = set.topology.disks();
        let width = data + parity;
        if Self::layout_sites(&set).len() < geo::GEO_SITES || specs.len() < width {
            return None;
        }
        for seed in 0u32..256 {
            let mut per: std::collections::BTreeMap<&str, usize> = Default::default();
            for i in set.topology.place(&seed.to_le_bytes(), width, |_| true) {
                *per.entry(specs[i].site.as_str()).or_default() += 1;
            }
            if let Some((site, n)) = per.iter().find(|(_, n)| width - **n < data) {
                return Some(geo::ProfileRefusal::UnevenSites {
                    data,
                    parity,
                    site: (*site).to_owned(),
                    shards: *n,
                    per_site: geo::per_site(data, parity, Self::layout_sites(&set).len()),
                });
            }
        }
        None
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
        let k = seg.geometry.k();
        // Quorum K: across sites the rule asks K+1 anyway; below three sites a segment
        // acknowledged with K shards is not site-unsafe.
        Ok(!matches!(
            self.durability_on(k, k, &durable),
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
                let k = seg.geometry.k();
                let reason = match self.durability_on(k, k, &durable) {
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
