//! Failure domains (disk in node in site) and placement: which disks hold the shards of a
//! segment.
//!
//! Placement spreads a segment's shards over the widest failure domain first: one shard per
//! site in turn, within a site one per node in turn, within a node one per disk. The order of
//! sites, nodes and disks is a rendezvous hash of the segment id, so load rotates across
//! objects and the choice for a segment is stable while the topology is.

use std::collections::BTreeMap;

use crate::config::DiskSpec;

/// The disks shards may go to, each with its node and site, in configuration order (a
/// disk's index here is the index [`Topology::place`] answers with).
#[derive(Debug, Clone)]
pub struct Topology {
    disks: Vec<DiskSpec>,
}

impl Topology {
    /// The topology of `disks`, as configured.
    pub fn new(disks: Vec<DiskSpec>) -> Self {
        Self { disks }
    }

    /// Every disk, in configuration order.
    pub fn disks(&self) -> &[DiskSpec] {
        &self.disks
    }

    /// Chooses `width` distinct disks (indices into [`Topology::disks`]) for the segment
    /// identified by `seed`. Disks for which `usable` is false are placed last, only when
    /// there are not enough usable ones; their shards then fail and go to repair.
    pub fn place(&self, seed: &[u8], width: usize, usable: impl Fn(usize) -> bool) -> Vec<usize> {
        let usable_order = self.spread(seed, &usable);
        let mut out: Vec<usize> = usable_order.into_iter().take(width).collect();
        if out.len() < width {
            let rest = self.spread(seed, |i| !usable(i));
            out.extend(rest.into_iter().take(width - out.len()));
        }
        out
    }

    /// All disks passing `filter`, in round-robin order across sites, then nodes, then disks.
    fn spread(&self, seed: &[u8], filter: impl Fn(usize) -> bool) -> Vec<usize> {
        // site -> node -> disks, each level ordered by its rendezvous score.
        let mut tree: BTreeMap<&str, BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
        for (i, d) in self.disks.iter().enumerate().filter(|(i, _)| filter(*i)) {
            tree.entry(&d.site)
                .or_default()
                .entry(&d.node)
                .or_default()
                .push(i);
        }
        let mut sites: Vec<(u64, Vec<Ranked>)> = tree
            .into_iter()
            .map(|(site, nodes)| {
                let mut nodes: Vec<Ranked> = nodes
                    .into_iter()
                    .map(|(node, mut disks)| {
                        // Highest score first, so pop() yields the lowest.
                        disks.sort_by_key(|&i| {
                            std::cmp::Reverse(score(seed, &[site, node, &self.disks[i].id]))
                        });
                        (score(seed, &[site, node]), disks)
                    })
                    .collect();
                nodes.sort_by_key(|(s, _)| *s);
                (score(seed, &[site]), nodes)
            })
            .collect();
        sites.sort_by_key(|(s, _)| *s);

        let mut out = Vec::new();
        let mut node_cursor = vec![0usize; sites.len()];
        loop {
            let mut progressed = false;
            for (si, (_, nodes)) in sites.iter_mut().enumerate() {
                // Next node of this site that still has a disk, round-robin.
                for _ in 0..nodes.len() {
                    let ni = node_cursor[si] % nodes.len();
                    node_cursor[si] += 1;
                    if let Some(d) = nodes[ni].1.pop() {
                        out.push(d);
                        progressed = true;
                        break;
                    }
                }
            }
            if !progressed {
                return out;
            }
        }
    }
}

/// A node's rendezvous score and its disks, highest score first.
type Ranked = (u64, Vec<usize>);

fn score(seed: &[u8], parts: &[&str]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(seed);
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn disk(id: &str, node: &str, site: &str) -> DiskSpec {
        DiskSpec {
            id: id.into(),
            path: format!("/x/{id}").into(),
            node: node.into(),
            site: site.into(),
        }
    }

    fn one_node(n: usize) -> Topology {
        Topology::new((0..n).map(|i| disk(&format!("d{i}"), "n", "s")).collect())
    }

    #[test]
    fn shards_land_on_distinct_disks() {
        let t = one_node(6);
        for seed in 0u32..200 {
            let p = t.place(&seed.to_le_bytes(), 6, |_| true);
            assert_eq!(p.len(), 6);
            assert_eq!(p.iter().collect::<HashSet<_>>().len(), 6);
        }
    }

    #[test]
    fn rotation_spreads_load_evenly() {
        let t = one_node(12);
        let mut counts = HashMap::new();
        let rounds = 6000u32;
        for seed in 0..rounds {
            for d in t.place(&seed.to_le_bytes(), 6, |_| true) {
                *counts.entry(d).or_insert(0u32) += 1;
            }
        }
        let expected = rounds * 6 / 12;
        for d in 0..12 {
            let c = counts[&d];
            assert!(
                c > expected * 85 / 100 && c < expected * 115 / 100,
                "disk {d} got {c}, expected about {expected}"
            );
        }
        // And the first shard (a data shard) is not always on the same disk.
        let firsts: HashSet<_> = (0..50u32)
            .map(|s| t.place(&s.to_le_bytes(), 6, |_| true)[0])
            .collect();
        assert!(firsts.len() > 6);
    }

    #[test]
    fn spreads_across_sites_then_nodes() {
        // 3 sites: s1 has 2 nodes x 3 disks, s2 and s3 have 1 node x 2 disks.
        let mut disks = Vec::new();
        for n in ["a", "b"] {
            for d in 0..3 {
                disks.push(disk(&format!("s1{n}{d}"), n, "s1"));
            }
        }
        for s in ["s2", "s3"] {
            for d in 0..2 {
                disks.push(disk(&format!("{s}{d}"), "n", s));
            }
        }
        let t = Topology::new(disks.clone());
        for seed in 0u32..100 {
            let p = t.place(&seed.to_le_bytes(), 6, |_| true);
            let mut per_site: HashMap<&str, usize> = HashMap::new();
            let mut per_node: HashMap<(&str, &str), usize> = HashMap::new();
            for &i in &p {
                *per_site.entry(&disks[i].site).or_default() += 1;
                *per_node
                    .entry((&disks[i].site, &disks[i].node))
                    .or_default() += 1;
            }
            assert_eq!(per_site.len(), 3);
            assert!(per_site.values().all(|&c| c == 2), "{per_site:?}");
            // Site s1's two shards go to its two different nodes.
            assert_eq!(per_node[&("s1", "a")], 1);
            assert_eq!(per_node[&("s1", "b")], 1);
        }
    }

    #[test]
    fn unusable_disks_are_avoided_while_possible() {
        let t = one_node(8);
        for seed in 0u32..100 {
            let p = t.place(&seed.to_le_bytes(), 6, |i| i != 3 && i != 5);
            assert!(!p.contains(&3) && !p.contains(&5));
        }
        let t = one_node(6);
        let p = t.place(b"x", 6, |i| i != 3);
        assert_eq!(p.len(), 6);
        assert_eq!(p[5], 3, "an unusable disk is used only last");
    }
}
