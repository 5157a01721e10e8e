//! The cluster's layout (`../shared/design/sites.md` §3.3, issue 14 item 3): which disks
//! new shards go to — each with its node, site and weight — under an epoch that every
//! change raises.
//!
//! A member's disks enter the layout when it reports them (joining is the operator's
//! decision; [`Layout::with_report`]) and leave it with the member
//! ([`Layout::without_node`]). Weights are staged ([`stage`]) and then applied by a command
//! naming the epoch it expects ([`apply_staged`]): of two concurrent applies exactly one
//! wins, and nothing staged takes effect by accident. A new layout steers only new writes:
//! where a segment's shards are is recorded, and they move only when the rebalancer moves
//! them (`background::rebalance`).
//!
//! Every function here is pure: the membership applier calls them inside the Raft state
//! machine, with the proposer's time.

use serde::{Deserialize, Serialize};

use crate::disk::DiskUuid;
use crate::meta::{Meta, MetaError, Record, Space};
use crate::types::Timestamp;

const CURRENT: &str = "cluster/layout";
const STAGED: &str = "cluster/layout-staged";

/// The weight a disk enters the layout with.
pub const DEFAULT_WEIGHT: u32 = 1;

/// The largest weight a disk may have (weights are relative: 1000 to 1 is plenty).
pub const MAX_WEIGHT: u32 = 1000;

/// One disk of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutDisk {
    /// The disk's UUID: how shard records name it.
    pub uuid: DiskUuid,
    /// Its node-local id (`d0`), for people.
    pub id: String,
    /// The member it belongs to.
    pub node_id: String,
    /// The site of that member.
    pub site: String,
    /// Its share of new shards relative to the others' (0: drained, new shards go there
    /// only when no other disk can take them, and the rebalancer moves its shards off).
    pub weight: u32,
}

/// The layout: every disk new shards may go to, under an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Raised by every change; 0 is the layout of a cluster that never recorded one (every
    /// reported disk of an active member, at weight 1).
    pub epoch: u64,
    /// Its disks, by node id, then in the node's configuration order.
    pub disks: Vec<LayoutDisk>,
    /// When this epoch began (the proposer's wall clock).
    pub since: Timestamp,
}

impl Record for Layout {
    const NAME: &'static str = "cluster-layout";
    const FORMAT: u8 = 1;
}

/// Weights staged for the next epoch, not applied yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedLayout {
    /// The epoch they were staged against (shown; applying names the current one).
    pub base: u64,
    /// The new weight of each disk staged, by UUID (sorted, one entry per disk).
    pub weights: Vec<(DiskUuid, u32)>,
    /// When the last weight was staged (the proposer's wall clock).
    pub staged: Timestamp,
}

impl Record for StagedLayout {
    const NAME: &'static str = "cluster-layout-staged";
    const FORMAT: u8 = 1;
}

/// Why a layout change was refused (nothing written).
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// No disk of the layout has this UUID.
    #[error("no disk of the layout is {disk}")]
    UnknownDisk {
        /// The UUID asked for.
        disk: String,
    },
    /// The weight is above [`MAX_WEIGHT`].
    #[error("a weight is at most {MAX_WEIGHT}, not {weight}")]
    WeightTooHigh {
        /// The weight asked for.
        weight: u32,
    },
    /// The apply named another epoch than the current one: the layout changed since the
    /// caller looked (another apply, a join, a removal).
    #[error("the layout is at epoch {current}, not {expected}: look at it again")]
    EpochMismatch {
        /// The epoch the apply named.
        expected: u64,
        /// The current one.
        current: u64,
    },
    /// Nothing is staged.
    #[error("no layout change is staged")]
    NothingStaged,
    /// Under the layout new writes would put more shards of an object on one node than
    /// it has parity shards (checked by the node proposing the apply, which knows the
    /// erasure coding): losing that node would lose objects.
    #[error("{reason}")]
    Unsafe {
        /// Which node, how many shards, and what to do instead.
        reason: String,
    },
}

/// Why going from layout `current` to `next` is unsafe for erasure coding
/// `data`+`parity`, if it is: new writes under `next` would put more shards of one
/// segment on one node than `parity` (so losing that node would lose objects), and more
/// than under `current` (a cluster already that small is not refused a weight change).
/// Placement over each layout's weights is sampled over 256 segment ids.
pub fn risk(current: &Layout, next: &Layout, data: usize, parity: usize) -> Option<String> {
    let (n, node) = most_on_one_node(next, data + parity)?;
    let before = most_on_one_node(current, data + parity).map_or(0, |(n, _)| n);
    (n > parity && n > before).then(|| {
        format!(
            "under this layout new writes would put up to {n} shards of an object on node \
             {node}, more than the {parity} parity shards of {data}+{parity}: losing that node \
             would lose objects. Add disks or nodes before draining these, or keep their \
             weight (stelectl cluster layout revert)"
        )
    })
}

/// The most shards of one segment placement over `layout` puts on one node, and that
/// node, over 256 sampled segment ids; `None` when it has fewer than `width` disks.
fn most_on_one_node(layout: &Layout, width: usize) -> Option<(usize, String)> {
    if layout.disks.len() < width {
        return None;
    }
    let specs: Vec<crate::config::DiskSpec> = layout
        .disks
        .iter()
        .map(|d| crate::config::DiskSpec {
            id: d.uuid.to_string(),
            path: std::path::PathBuf::new(),
            node: d.node_id.clone(),
            site: d.site.clone(),
        })
        .collect();
    let weights = layout.disks.iter().map(|d| d.weight).collect();
    let topology = crate::cluster::placement::Topology::weighted(specs, weights);
    let mut worst: Option<(usize, &str)> = None;
    for seed in 0u32..256 {
        let mut per_node: std::collections::BTreeMap<&str, usize> = Default::default();
        for i in topology.place(&seed.to_le_bytes(), width, |_| true) {
            *per_node
                .entry(layout.disks[i].node_id.as_str())
                .or_default() += 1;
        }
        for (node, n) in per_node {
            if worst.is_none_or(|(w, _)| n > w) {
                worst = Some((n, node));
            }
        }
    }
    worst.map(|(n, node)| (n, node.to_owned()))
}

impl Layout {
    /// The layout of a cluster that never recorded one: every disk active members
    /// reported (`reports`, by node id), at [`DEFAULT_WEIGHT`], epoch 0.
    pub fn implicit(active: &[String], reports: &[crate::membership::NodeDisks]) -> Self {
        let mut l = Layout {
            epoch: 0,
            disks: Vec::new(),
            since: Timestamp(0),
        };
        for r in reports.iter().filter(|r| active.contains(&r.node_id)) {
            l.disks.extend(r.disks.iter().map(|d| LayoutDisk {
                uuid: d.uuid,
                id: d.id.clone(),
                node_id: r.node_id.clone(),
                site: r.site.clone(),
                weight: DEFAULT_WEIGHT,
            }));
        }
        l
    }

    /// The weight of the disk `uuid`, if it is in the layout.
    pub fn weight_of(&self, uuid: DiskUuid) -> Option<u32> {
        self.disks.iter().find(|d| d.uuid == uuid).map(|d| d.weight)
    }

    /// The layout after `report` (a member's disks and site as it reports them): its
    /// disks replace the member's earlier ones — a disk it still reports keeps its weight,
    /// a new one enters at [`DEFAULT_WEIGHT`], one it no longer reports (replaced) leaves —
    /// under the next epoch at `now`; `None` when nothing changes.
    pub fn with_report(
        &self,
        report: &crate::membership::NodeDisks,
        now: Timestamp,
    ) -> Option<Self> {
        let mine: Vec<LayoutDisk> = report
            .disks
            .iter()
            .map(|d| LayoutDisk {
                uuid: d.uuid,
                id: d.id.clone(),
                node_id: report.node_id.clone(),
                site: report.site.clone(),
                weight: self.weight_of(d.uuid).unwrap_or(DEFAULT_WEIGHT),
            })
            .collect();
        let before: Vec<&LayoutDisk> = self
            .disks
            .iter()
            .filter(|d| d.node_id == report.node_id)
            .collect();
        if before.len() == mine.len() && before.iter().zip(&mine).all(|(a, b)| *a == b) {
            return None;
        }
        let mut disks: Vec<LayoutDisk> = self
            .disks
            .iter()
            .filter(|d| d.node_id != report.node_id && !mine.iter().any(|m| m.uuid == d.uuid))
            .cloned()
            .collect();
        disks.extend(mine);
        Some(self.next(disks, now))
    }

    /// The layout without the disks of member `node_id` (removed), under the next epoch
    /// at `now`; `None` when it had none.
    pub fn without_node(&self, node_id: &str, now: Timestamp) -> Option<Self> {
        if !self.disks.iter().any(|d| d.node_id == node_id) {
            return None;
        }
        let disks = self
            .disks
            .iter()
            .filter(|d| d.node_id != node_id)
            .cloned()
            .collect();
        Some(self.next(disks, now))
    }

    /// `disks` as the next epoch, ordered by node id (stable within a node).
    fn next(&self, mut disks: Vec<LayoutDisk>, now: Timestamp) -> Self {
        disks.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Layout {
            epoch: self.epoch + 1,
            disks,
            since: now,
        }
    }
}

/// `staged` with disk `disk` of `current` staged at `weight`, at `now`.
///
/// # Errors
/// [`LayoutError::UnknownDisk`], [`LayoutError::WeightTooHigh`].
pub fn stage(
    current: &Layout,
    staged: Option<StagedLayout>,
    disk: DiskUuid,
    weight: u32,
    now: Timestamp,
) -> Result<StagedLayout, LayoutError> {
    if weight > MAX_WEIGHT {
        return Err(LayoutError::WeightTooHigh { weight });
    }
    if current.weight_of(disk).is_none() {
        return Err(LayoutError::UnknownDisk {
            disk: disk.to_string(),
        });
    }
    let mut s = staged.unwrap_or(StagedLayout {
        base: current.epoch,
        weights: Vec::new(),
        staged: now,
    });
    s.weights.retain(|(u, _)| *u != disk);
    s.weights.push((disk, weight));
    s.weights.sort();
    s.staged = now;
    Ok(s)
}

/// The layout after applying `staged` to `current`, if `current` is at epoch `expect`:
/// the staged weights of disks still in it, under the next epoch at `now`. Staged weights
/// of disks that left the layout meanwhile are dropped.
///
/// # Errors
/// [`LayoutError::EpochMismatch`], [`LayoutError::NothingStaged`].
pub fn apply_staged(
    current: &Layout,
    staged: Option<&StagedLayout>,
    expect: u64,
    now: Timestamp,
) -> Result<Layout, LayoutError> {
    if current.epoch != expect {
        return Err(LayoutError::EpochMismatch {
            expected: expect,
            current: current.epoch,
        });
    }
    let staged = staged.ok_or(LayoutError::NothingStaged)?;
    let disks = current
        .disks
        .iter()
        .map(|d| LayoutDisk {
            weight: staged
                .weights
                .iter()
                .find(|(u, _)| *u == d.uuid)
                .map_or(d.weight, |(_, w)| *w),
            ..d.clone()
        })
        .collect();
    Ok(current.next(disks, now))
}

/// The current layout: the recorded one, or the implicit one of a cluster that never
/// recorded one ([`Layout::implicit`]).
///
/// # Errors
/// A metadata read's.
pub fn current(meta: &Meta) -> Result<Layout, MetaError> {
    if let Some(l) = meta.kv_get(Space::Replication, CURRENT)? {
        return Ok(l);
    }
    let active: Vec<String> = crate::membership::members(meta)?
        .into_iter()
        .filter(|m| m.active())
        .map(|m| m.node_id)
        .collect();
    Ok(Layout::implicit(
        &active,
        &crate::membership::node_disks(meta)?,
    ))
}

/// The weights staged for the next epoch, if any.
///
/// # Errors
/// A metadata read's.
pub fn staged(meta: &Meta) -> Result<Option<StagedLayout>, MetaError> {
    meta.kv_get(Space::Replication, STAGED)
}

/// Writes `layout` as the current one into `b`.
///
/// # Errors
/// Encoding's.
pub(crate) fn put_current(b: &mut crate::meta::Batch, layout: &Layout) -> Result<(), MetaError> {
    b.kv_put(Space::Replication, CURRENT, layout.encode()?);
    Ok(())
}

/// Writes `staged` (or, with `None`, forgets what was staged) into `b`.
///
/// # Errors
/// Encoding's.
pub(crate) fn put_staged(
    b: &mut crate::meta::Batch,
    staged: Option<&StagedLayout>,
) -> Result<(), MetaError> {
    match staged {
        Some(s) => b.kv_put(Space::Replication, STAGED, s.encode()?),
        None => b.kv_delete(Space::Replication, STAGED),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{ClusterDisk, NodeDisks};

    const T: Timestamp = Timestamp(1_800_000_000_000_000);

    fn uuid(n: u8) -> DiskUuid {
        DiskUuid([n; 16])
    }

    fn report(node: &str, disks: &[u8]) -> NodeDisks {
        NodeDisks {
            node_id: node.into(),
            site: "site1".into(),
            disks: disks
                .iter()
                .enumerate()
                .map(|(i, &n)| ClusterDisk {
                    id: format!("d{i}"),
                    uuid: uuid(n),
                })
                .collect(),
            reported: T,
        }
    }

    /// Reports add, keep and drop a member's disks under new epochs; a report that changes
    /// nothing makes no epoch; removal drops the member's disks.
    #[test]
    fn reports_and_removals_make_epochs() {
        let l0 = Layout::implicit(&["a".into()], &[report("a", &[1, 2]), report("z", &[9])]);
        assert_eq!(
            (l0.epoch, l0.disks.len()),
            (0, 2),
            "only active members' disks"
        );
        let l1 = l0.with_report(&report("b", &[3, 4]), T).expect("b's disks");
        assert_eq!(l1.epoch, 1);
        assert_eq!(l1.with_report(&report("b", &[3, 4]), T), None);
        let staged = stage(&l1, None, uuid(3), 0, T).expect("stage");
        let l2 = apply_staged(&l1, Some(&staged), 1, T).expect("apply");
        // b's disk 4 replaced by 5: 3 keeps its weight 0, 5 enters at 1.
        let l3 = l2.with_report(&report("b", &[3, 5]), T).expect("replaced");
        assert_eq!(l3.epoch, 3);
        assert_eq!(l3.weight_of(uuid(3)), Some(0));
        assert_eq!(l3.weight_of(uuid(5)), Some(DEFAULT_WEIGHT));
        assert_eq!(l3.weight_of(uuid(4)), None);
        let l4 = l3.without_node("b", T).expect("removed");
        assert_eq!(l4.epoch, 4);
        assert!(l4.disks.iter().all(|d| d.node_id == "a"));
        assert_eq!(l4.without_node("b", T), None);
    }

    /// Staging changes nothing until applied; an apply naming another epoch is refused
    /// (of two applies, one wins); unknown disks and huge weights are refused.
    #[test]
    fn staged_weights_apply_at_the_expected_epoch_only() {
        let l = Layout::implicit(&["a".into()], &[report("a", &[1, 2])]);
        assert!(matches!(
            stage(&l, None, uuid(7), 1, T),
            Err(LayoutError::UnknownDisk { .. })
        ));
        assert!(matches!(
            stage(&l, None, uuid(1), MAX_WEIGHT + 1, T),
            Err(LayoutError::WeightTooHigh { .. })
        ));
        assert!(matches!(
            apply_staged(&l, None, 0, T),
            Err(LayoutError::NothingStaged)
        ));
        let s = stage(&l, None, uuid(1), 5, T).expect("stage");
        let s = stage(&l, Some(s), uuid(1), 0, T).expect("restage");
        assert_eq!(s.weights, vec![(uuid(1), 0)]);
        assert!(matches!(
            apply_staged(&l, Some(&s), 1, T),
            Err(LayoutError::EpochMismatch {
                expected: 1,
                current: 0
            })
        ));
        let next = apply_staged(&l, Some(&s), 0, T).expect("apply");
        assert_eq!((next.epoch, next.weight_of(uuid(1))), (1, Some(0)));
        assert_eq!(next.weight_of(uuid(2)), Some(1));
        assert!(matches!(
            apply_staged(&next, Some(&s), 0, T),
            Err(LayoutError::EpochMismatch { .. })
        ));
    }

    /// Draining one disk of three nodes of three disks keeps 4+2 at two shards per node;
    /// draining a whole node would put three on the others and is flagged; a cluster
    /// already at three per node (two nodes) is not refused a weight change.
    #[test]
    fn a_drain_that_would_crowd_a_node_past_its_parity_is_flagged() {
        let three = Layout::implicit(
            &["a".into(), "b".into(), "c".into()],
            &[
                report("a", &[1, 2, 3]),
                report("b", &[4, 5, 6]),
                report("c", &[7, 8, 9]),
            ],
        );
        let drain = |l: &Layout, disks: &[u8]| {
            let mut s = None;
            for &d in disks {
                s = Some(stage(l, s, uuid(d), 0, T).expect("stage"));
            }
            apply_staged(l, s.as_ref(), l.epoch, T).expect("apply")
        };
        assert_eq!(risk(&three, &drain(&three, &[9]), 4, 2), None);
        let crowded = risk(&three, &drain(&three, &[7, 8, 9]), 4, 2).expect("flagged");
        assert!(crowded.contains("up to 3 shards"), "{crowded}");
        let two = Layout::implicit(
            &["a".into(), "b".into()],
            &[report("a", &[1, 2, 3]), report("b", &[4, 5, 6])],
        );
        assert_eq!(risk(&two, &drain(&two, &[6]), 4, 2), None);
    }

    /// The layout's bytes, pinned: every member decodes them.
    #[test]
    fn a_layout_keeps_its_bytes() {
        let l = Layout {
            epoch: 3,
            disks: vec![LayoutDisk {
                uuid: uuid(1),
                id: "d0".into(),
                node_id: "a".into(),
                site: "s".into(),
                weight: 2,
            }],
            since: T,
        };
        let bytes = l.encode().expect("encode");
        assert_eq!(Layout::decode(&bytes).expect("decode"), l);
        assert_eq!(
            hex::encode(&bytes),
            "01030120303130313031303130313031303130313031303130313031303130313031303102643001610173028080c489e5c5b206"
        );
        let s = StagedLayout {
            base: 3,
            weights: vec![(uuid(1), 0)],
            staged: T,
        };
        let bytes = s.encode().expect("encode");
        assert_eq!(StagedLayout::decode(&bytes).expect("decode"), s);
        assert_eq!(
            hex::encode(&bytes),
            "010301203031303130313031303130313031303130313031303130313031303130313031008080c489e5c5b206"
        );
    }
}
