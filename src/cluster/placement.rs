//! Failure domains (disk in node in site) and placement: which disks hold the shards of a
//! segment.
//!
//! Placement spreads a segment's shards over the widest failure domain first: one shard per
//! site in turn, within a site one per node in turn, within a node one per disk. The order of
//! sites, nodes and disks is a rendezvous hash of the segment id, so load rotates across
//! objects and the choice for a segment is stable while the topology is.
//!
//! Each disk has a weight (the cluster's layout sets it, `membership::layout`; 1 on one
//! node). Where a level's domains differ in weight (a domain weighs what its disks do) the
//! rendezvous is weighted (Schindelhauer and Schomaker, "Weighted distributed hash tables",
//! 2005: each gets the score `1 - (1 - u)^(1/w)` and the lowest goes first, so a domain
//! comes first with probability proportional to its weight); where they are equal the plain
//! score orders them, as before weights existed. Spreading over failure domains still comes
//! first: weights decide among the domains and disks that are not all needed. A disk of
//! weight 0 is drained: placed only when nothing else is left, like an unusable one.

use std::collections::BTreeMap;

use crate::config::DiskSpec;

/// The disks shards may go to, each with its node and site, in configuration order (a
/// disk's index here is the index [`Topology::place`] answers with).
#[derive(Debug, Clone)]
pub struct Topology {
    disks: Vec<DiskSpec>,
    /// One per disk.
    weights: Vec<u32>,
}

impl Topology {
    /// The topology of `disks`, as configured, every disk of weight 1.
    pub fn new(disks: Vec<DiskSpec>) -> Self {
        let weights = vec![1; disks.len()];
        Self { disks, weights }
    }

    /// The topology of `disks` with their weights (`weights[i]` is disk `i`'s; missing
    /// ones are 1). Weight 0 drains a disk: it takes new shards only when no other can.
    pub fn weighted(disks: Vec<DiskSpec>, mut weights: Vec<u32>) -> Self {
        weights.resize(disks.len(), 1);
        Self { disks, weights }
    }

    /// Disk `i`'s weight.
    pub fn weight(&self, i: usize) -> u32 {
        self.weights.get(i).copied().unwrap_or(1)
    }

    /// Every disk, in configuration order.
    pub fn disks(&self) -> &[DiskSpec] {
        &self.disks
    }

    /// Chooses `width` distinct disks (indices into [`Topology::disks`]) for the segment
    /// identified by `seed`. Disks for which `usable` is false, and drained ones (weight
    /// 0), are placed last, only when there are not enough others; the shards of unusable
    /// ones then fail and go to repair.
    pub fn place(&self, seed: &[u8], width: usize, usable: impl Fn(usize) -> bool) -> Vec<usize> {
        let first = |i: usize| usable(i) && self.weight(i) > 0;
        let usable_order = self.spread(seed, first);
        let mut out: Vec<usize> = usable_order.into_iter().take(width).collect();
        if out.len() < width {
            let rest = self.spread(seed, |i| !first(i));
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
        // Within the placing set a drained disk still counts 1, so that the order of the
        // disks placed last is weighted too.
        let w = |i: usize| u64::from(self.weight(i).max(1));
        let sites: Vec<(u64, (u64, Vec<Ranked>))> = tree
            .into_iter()
            .map(|(site, nodes)| {
                let nodes: Vec<(u64, Ranked)> = nodes
                    .into_iter()
                    .map(|(node, disks)| {
                        let disks: Vec<(u64, usize)> =
                            disks.into_iter().map(|i| (w(i), i)).collect();
                        let mut disks =
                            rank(disks, |&i| score(seed, &[site, node, &self.disks[i].id]));
                        // Highest score first, so pop() yields the lowest.
                        disks.reverse();
                        let weight = disks.iter().map(|&i| w(i)).sum();
                        (weight, (score(seed, &[site, node]), disks))
                    })
                    .collect();
                let weight: u64 = nodes.iter().map(|(w, _)| w).sum();
                let nodes = rank(nodes, |(s, _)| *s);
                (weight, (score(seed, &[site]), nodes))
            })
            .collect();
        let mut sites = rank(sites, |(s, _)| *s);

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

/// `items` (each with its weight) in placing order, lowest first: by the plain score when
/// every weight is equal (the order before weights existed), else by the weighted score
/// `1 - (1 - u)^(1/w)` of the plain one taken as `u` in (0, 1).
fn rank<T>(items: Vec<(u64, T)>, score: impl Fn(&T) -> u64) -> Vec<T> {
    let equal = items.windows(2).all(|p| p[0].0 == p[1].0);
    let mut keyed: Vec<(f64, u64, T)> = items
        .into_iter()
        .map(|(w, t)| {
            let s = score(&t);
            let key = if equal {
                0.0
            } else {
                let u = (s as f64 + 0.5) / 18_446_744_073_709_551_616.0;
                1.0 - (1.0 - u).powf(1.0 / w.max(1) as f64)
            };
            (key, s, t)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, _, t)| t).collect()
}

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

    /// Equal weights place as before weights existed; a heavier disk is chosen in
    /// proportion to its weight; a drained one (0) only when nothing else is left.
    #[test]
    fn weights_steer_new_shards_and_zero_drains() {
        let plain = one_node(6);
        let same = Topology::weighted(plain.disks().to_vec(), vec![5; 6]);
        for seed in 0u32..50 {
            let s = seed.to_le_bytes();
            assert_eq!(plain.place(&s, 4, |_| true), same.place(&s, 4, |_| true));
        }
        let t = Topology::weighted(one_node(4).disks().to_vec(), vec![1, 1, 1, 3]);
        let rounds = 6000u32;
        let heavy = (0..rounds)
            .filter(|s| t.place(&s.to_le_bytes(), 1, |_| true) == [3])
            .count() as u32;
        // 3 of 6 weight units: about half.
        assert!(
            heavy > rounds * 45 / 100 && heavy < rounds * 55 / 100,
            "{heavy} of {rounds}"
        );
        let drained =
            Topology::weighted(one_node(8).disks().to_vec(), vec![1, 1, 0, 1, 1, 1, 1, 1]);
        for seed in 0u32..100 {
            assert!(!drained.place(&seed.to_le_bytes(), 6, |_| true).contains(&2));
        }
        let p = drained.place(b"x", 8, |_| true);
        assert_eq!(p.len(), 8);
        assert_eq!(p[7], 2, "a drained disk is used only last");
    }
}
