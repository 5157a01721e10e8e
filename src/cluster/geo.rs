//! Erasure coding across sites ("geo-EC"): which profiles survive losing a site, and when
//! a write may be acknowledged.
//!
//! With S sites and n = ceil((K+M)/S) shards per site, an object survives losing any one
//! site iff M >= n, and a site plus f more disks iff M >= n + f (`ARCHITECTURE.md`, the
//! design note on sites §3.4). With two sites, surviving either needs M >= K: as costly as
//! a mirror, so erasure coding across two sites is refused and replication between two
//! deployments is the answer (Ceph's stretch mode refuses erasure-coded pools likewise).
//!
//! The rules apply to a cluster whose layout spans at least [`GEO_SITES`] sites; below
//! that, a write needs its write quorum and nothing more.

use std::collections::BTreeMap;

/// The fewest sites for which erasure coding across sites is used.
pub const GEO_SITES: usize = 3;

/// Why a profile is refused over a number of sites ([`check_profile`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileRefusal {
    /// Two sites: surviving one needs M >= K, a mirror's cost.
    #[error(
        "{data}+{parity}: erasure coding across two sites is refused: surviving the loss of \
         either needs as much parity as data, a mirror's cost; use three sites, or replicate \
         between two deployments (stelectl replication peer add, then a replication rule)"
    )]
    TwoSites {
        /// K.
        data: usize,
        /// M.
        parity: usize,
    },
    /// M < n: losing the site holding n shards loses objects.
    #[error(
        "{data}+{parity} over {sites} sites puts {per_site} shards in each site, more than its \
         {parity} parity shards: losing a site would lose objects. Profiles that survive a \
         site over {sites} sites: {survivors}"
    )]
    CannotSurviveSite {
        /// K.
        data: usize,
        /// M.
        parity: usize,
        /// S.
        sites: usize,
        /// n = ceil((K+M)/S).
        per_site: usize,
        /// Profiles that survive a site over `sites` sites, e.g. `4+2, 6+3 (a site);
        /// 5+4, 7+5 (a site and one more disk)`.
        survivors: String,
    },
    /// The layout's disks and weights put more shards in one site than the parity can
    /// lose (sites of uneven size).
    #[error(
        "{data}+{parity}: the layout's disks and weights put up to {shards} shards of an object \
         in site {site}, so losing it would leave fewer than {data}; give every site room for \
         {per_site} shards, or choose more parity"
    )]
    UnevenSites {
        /// K.
        data: usize,
        /// M.
        parity: usize,
        /// The site holding too many.
        site: String,
        /// How many it holds (in the worst of the sampled placements).
        shards: usize,
        /// n = ceil((K+M)/S).
        per_site: usize,
    },
    /// K+M wider than the layout's disks.
    #[error("{data}+{parity} needs {} disks, the layout has {disks}", data + parity)]
    TooWide {
        /// K.
        data: usize,
        /// M.
        parity: usize,
        /// The layout's disks.
        disks: usize,
    },
    /// K or M zero, or K+M above 255 (the Reed-Solomon field's limit).
    #[error("{data}+{parity}: K and M must be at least 1, K+M at most 255")]
    OutOfRange {
        /// K.
        data: usize,
        /// M.
        parity: usize,
    },
}

/// Shards placed in each site: n = ceil((K+M)/S) (placement spreads over sites first, so
/// no site holds more).
pub fn per_site(data: usize, parity: usize, sites: usize) -> usize {
    (data + parity).div_ceil(sites.max(1))
}

/// Whether K+M over `sites` sites survives losing a whole site and `disks` more disks
/// anywhere: M >= n + disks.
pub fn survives(data: usize, parity: usize, sites: usize, disks: usize) -> bool {
    sites >= GEO_SITES && parity >= per_site(data, parity, sites) + disks
}

/// Checks the profile K+M for a cluster over `sites` sites: any profile on one site; none
/// across two ([`ProfileRefusal::TwoSites`]); from three on, only one that survives a site
/// ([`ProfileRefusal::CannotSurviveSite`], naming the profiles that do).
pub fn check_profile(data: usize, parity: usize, sites: usize) -> Result<(), ProfileRefusal> {
    match sites {
        0 | 1 => Ok(()),
        2 => Err(ProfileRefusal::TwoSites { data, parity }),
        _ if survives(data, parity, sites, 0) => Ok(()),
        _ => Err(ProfileRefusal::CannotSurviveSite {
            data,
            parity,
            sites,
            per_site: per_site(data, parity, sites),
            survivors: survivors(sites),
        }),
    }
}

/// The two narrowest profiles that survive a site (and a site and a disk) over `sites`
/// sites, each spread evenly (K+M a multiple of S) with the least parity and K >= 4.
fn survivors(sites: usize) -> String {
    let best = |extra: usize| -> String {
        (1..=8)
            .map(|i| i * sites)
            .filter_map(|width| {
                (1..width)
                    .find(|&parity| survives(width - parity, parity, sites, extra))
                    .map(|parity| (width - parity, parity))
            })
            .filter(|(data, _)| *data >= 4)
            .take(2)
            .map(|(d, p)| format!("{d}+{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} (a site); {} (a site and one more disk)",
        best(0),
        best(1)
    )
}

/// How a write's durable shards stand against losing a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The write quorum holds and, across sites, every site could be lost.
    Safe,
    /// Acknowledged, but losing one more site would lose the object: counted as
    /// site-unsafe bytes and queued for repair in the same commit.
    SiteUnsafe,
    /// Not enough to acknowledge.
    Short {
        /// Durable shards.
        durable: usize,
        /// Shards needed: the write quorum (at least K+1 across sites).
        needed: usize,
    },
}

/// Whether losing any one site of `sites` leaves at least K of the shards durable in
/// `durable` (one entry per durable shard: its site).
pub fn survives_any_site<'a>(
    data: usize,
    durable: impl IntoIterator<Item = &'a str>,
    sites: impl IntoIterator<Item = &'a str>,
) -> bool {
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0;
    for s in durable {
        *per.entry(s).or_default() += 1;
        total += 1;
    }
    let sites: Vec<&str> = sites.into_iter().collect();
    !sites.is_empty()
        && sites
            .iter()
            .all(|s| total - per.get(s).copied().unwrap_or(0) >= data)
}

/// The acknowledgement rule (design note on sites, §3.4). `durable` names the site of each
/// durable shard, `sites` every site of the layout, `quorum` the node's write quorum.
///
/// - Under [`GEO_SITES`] sites: [`Durability::Safe`] with `quorum` shards, else short.
/// - Across sites: `Safe` when, for every site, the durable shards outside it number at
///   least K (and the quorum holds); else, with at least max(K+1, quorum) shards on at
///   least two sites, [`Durability::SiteUnsafe`]; never below that.
pub fn durability<'a>(
    data: usize,
    quorum: usize,
    durable: &[&'a str],
    sites: &[&'a str],
) -> Durability {
    let n = durable.len();
    let mut distinct: Vec<&str> = sites.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < GEO_SITES {
        return if n >= quorum {
            Durability::Safe
        } else {
            Durability::Short {
                durable: n,
                needed: quorum,
            }
        };
    }
    let needed = quorum.max(data + 1);
    let mut on: Vec<&str> = durable.to_vec();
    on.sort_unstable();
    on.dedup();
    if n >= needed && survives_any_site(data, durable.iter().copied(), distinct) {
        Durability::Safe
    } else if n >= needed && on.len() >= 2 {
        Durability::SiteUnsafe
    } else {
        Durability::Short { durable: n, needed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_design_notes_table() {
        // Profile, sites: survives a site, a site and a disk.
        for (k, m, site, and_disk) in [
            (4, 2, true, false),
            (6, 3, true, false),
            (5, 4, true, true),
            (7, 5, true, true),
            (8, 4, true, false),
            (9, 3, false, false),
            (4, 1, false, false),
        ] {
            assert_eq!(survives(k, m, 3, 0), site, "{k}+{m}");
            assert_eq!(survives(k, m, 3, 1), and_disk, "{k}+{m}");
        }
        // Four sites: 9+3 survives a site at 75 %.
        assert!(survives(9, 3, 4, 0));
        assert_eq!(per_site(9, 3, 4), 3);
    }

    #[test]
    fn profiles_are_refused_with_a_way_out() {
        assert_eq!(check_profile(4, 2, 1), Ok(()));
        assert_eq!(check_profile(4, 2, 3), Ok(()));
        let two = check_profile(4, 2, 2).expect_err("two sites");
        assert!(two.to_string().contains("replicat"), "{two}");
        let e = check_profile(9, 3, 3).expect_err("9+3 over 3 sites");
        let text = e.to_string();
        assert!(text.contains("4 shards in each site"), "{text}");
        assert!(
            text.contains("4+2, 6+3 (a site); 5+4, 7+5 (a site and one more disk)"),
            "{text}"
        );
        let e = check_profile(10, 2, 4).expect_err("10+2 over 4 sites");
        assert!(e.to_string().contains("6+2, 9+3 (a site)"), "{e}");
    }

    #[test]
    fn acknowledgement_across_three_sites() {
        let sites = ["a", "b", "c"];
        // 4+2, all six: safe; five (one site short of one): site-unsafe but at K+1.
        let all = ["a", "a", "b", "b", "c", "c"];
        assert_eq!(durability(4, 5, &all, &sites), Durability::Safe);
        assert_eq!(durability(4, 5, &all[..5], &sites), Durability::SiteUnsafe);
        // A site down, placed over the two others: 3 + 3, site-unsafe.
        assert_eq!(
            durability(4, 5, &["a", "a", "a", "b", "b", "b"], &sites),
            Durability::SiteUnsafe
        );
        // K+1 on one site only: refused.
        assert_eq!(
            durability(4, 5, &["a"; 5], &sites),
            Durability::Short {
                durable: 5,
                needed: 5
            }
        );
        // Never below K+1, whatever the quorum says.
        assert_eq!(
            durability(4, 4, &["a", "a", "b", "b"], &sites),
            Durability::Short {
                durable: 4,
                needed: 5
            }
        );
        // 5+4: 8 of 9 is safe.
        let eight = ["a", "a", "a", "b", "b", "b", "c", "c"];
        assert_eq!(durability(5, 6, &eight, &sites), Durability::Safe);
        // One site: the quorum alone.
        assert_eq!(durability(4, 5, &["a"; 5], &["a"]), Durability::Safe);
    }

    proptest! {
        /// Safe means what it says: removing any one site's shards leaves at least K; and
        /// an acknowledged write (safe or not) always has K+1 on two sites.
        #[test]
        fn safe_survives_any_site(
            k in 2usize..8,
            picks in proptest::collection::vec(0usize..4, 0..16),
        ) {
            let names = ["a", "b", "c", "d"];
            let sites = &names[..3 + usize::from(picks.len() % 2 == 1)];
            let durable: Vec<&str> = picks.iter().map(|&i| names[i % sites.len()]).collect();
            match durability(k, k + 1, &durable, sites) {
                Durability::Safe => {
                    for s in sites {
                        let left = durable.iter().filter(|d| *d != s).count();
                        prop_assert!(left >= k);
                    }
                }
                Durability::SiteUnsafe => {
                    prop_assert!(durable.len() > k);
                    let mut on = durable.clone();
                    on.sort_unstable();
                    on.dedup();
                    prop_assert!(on.len() >= 2);
                }
                Durability::Short { .. } => {}
            }
        }

        /// The closed form (M >= n) agrees with placing n shards per site and losing the
        /// fullest site.
        #[test]
        fn survives_matches_a_placement(k in 1usize..14, m in 1usize..8, s in 3usize..6) {
            let width = k + m;
            let per: Vec<usize> = (0..s).map(|i| width / s + usize::from(i < width % s)).collect();
            let worst = per.iter().copied().max().unwrap_or(0);
            prop_assert_eq!(survives(k, m, s, 0), width - worst >= k);
        }
    }
}
