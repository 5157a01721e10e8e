//! Known answers from the reference vectors of RFC 6962's implementations (Certificate
//! Transparency's), and every proof of many tree shapes built and checked, including
//! tampered ones.

use proptest::prelude::*;

use super::*;

fn h(s: &str) -> Hash {
    let v = hex::decode(s).expect("hex");
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    out
}

/// The eight reference leaves: "", 00, 10, 2021, 3031, 40414243, 50..57, 60..6f.
fn reference_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|x| leaf_hash(&hex::decode(x).expect("hex")))
    .collect()
}

/// Roots of the reference trees of sizes 0 to 8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_match_the_reference_trees() {
    let leaves = reference_leaves();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..n]), h(want), "size {n}");
    }
}

#[test]
fn inclusion_proofs_match_the_reference_vectors() {
    let leaves = reference_leaves();
    // (leaf index, tree size, proof)
    let vectors: [(usize, usize, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, proof) in vectors {
        let want: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            inclusion_proof(&leaves[..size], index),
            Some(want.clone()),
            "leaf {index} of {size}"
        );
        verify_inclusion(
            index as u64,
            size as u64,
            &leaves[index],
            &want,
            &h(ROOTS[size]),
        )
        .expect("verifies");
    }
}

#[test]
fn consistency_proofs_match_the_reference_vectors() {
    let leaves = reference_leaves();
    let vectors: [(usize, usize, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, proof) in vectors {
        let want: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            consistency_proof(&leaves[..n], m),
            Some(want.clone()),
            "{m} of {n}"
        );
        verify_consistency(m as u64, n as u64, &h(ROOTS[m]), &h(ROOTS[n]), &want)
            .expect("verifies");
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("event {i}").as_bytes()))
        .collect()
}

/// Every variation of a good inclusion proof that must fail.
fn tampered_inclusions(index: u64, size: u64, proof: &[Hash]) -> Vec<(u64, u64, Vec<Hash>)> {
    let mut out = vec![
        (index + 1, size, proof.to_vec()),
        (index ^ 2, size, proof.to_vec()),
        (index, size * 2, proof.to_vec()),
        (index, size / 2, proof.to_vec()),
        (index, size, [proof, &[[0u8; 32]]].concat()),
        (index, size, [&[[0u8; 32]], proof].concat()),
    ];
    if index > 0 {
        out.push((index - 1, size, proof.to_vec()));
    }
    if !proof.is_empty() {
        out.push((index, size, proof[..proof.len() - 1].to_vec()));
    }
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i][0] ^= 8;
        out.push((index, size, p));
    }
    out
}

#[test]
fn every_inclusion_proof_of_trees_up_to_70_verifies_and_every_tampering_fails() {
    let all = leaves(70);
    for size in 1..=70usize {
        let tree = &all[..size];
        let r = root(tree);
        for index in 0..size {
            let proof = inclusion_proof(tree, index).expect("proof");
            verify_inclusion(index as u64, size as u64, &tree[index], &proof, &r)
                .unwrap_or_else(|e| panic!("leaf {index} of {size}: {e}"));
            for (i, s, p) in tampered_inclusions(index as u64, size as u64, &proof) {
                assert!(
                    verify_inclusion(i, s, &tree[index], &p, &r).is_err(),
                    "tampered ({i}, {s}) verified for leaf {index} of {size}"
                );
            }
            assert!(verify_inclusion(index as u64, size as u64, &[7; 32], &proof, &r).is_err());
            assert!(
                verify_inclusion(index as u64, size as u64, &tree[index], &proof, &[7; 32])
                    .is_err()
            );
        }
    }
}

#[test]
fn every_consistency_proof_of_trees_up_to_40_verifies_and_every_tampering_fails() {
    let all = leaves(40);
    let roots: Vec<Hash> = (0..=40).map(|n| root(&all[..n])).collect();
    for n in 0..=40usize {
        for m in 0..=n {
            let proof = consistency_proof(&all[..n], m).expect("proof");
            verify_consistency(m as u64, n as u64, &roots[m], &roots[n], &proof)
                .unwrap_or_else(|e| panic!("{m} of {n}: {e}"));
            if m == 0 || m == n {
                continue;
            }
            assert!(verify_consistency(m as u64, n as u64, &roots[n], &roots[m], &proof).is_err());
            assert!(verify_consistency(m as u64, n as u64, &[7; 32], &roots[n], &proof).is_err());
            assert!(verify_consistency(m as u64, n as u64, &roots[m], &[7; 32], &proof).is_err());
            assert!(verify_consistency(m as u64, n as u64, &roots[m], &roots[n], &[]).is_err());
            assert!(
                verify_consistency(
                    m as u64,
                    n as u64,
                    &roots[m],
                    &roots[n],
                    &proof[..proof.len() - 1]
                )
                .is_err()
            );
            let longer = [&proof[..], &[roots[m]]].concat();
            assert!(verify_consistency(m as u64, n as u64, &roots[m], &roots[n], &longer).is_err());
            for i in 0..proof.len() {
                let mut p = proof.clone();
                p[i][0] ^= 16;
                assert!(
                    verify_consistency(m as u64, n as u64, &roots[m], &roots[n], &p).is_err(),
                    "flipped proof[{i}] of {m}..{n}"
                );
            }
        }
    }
    assert!(verify_consistency(2, 1, &roots[2], &roots[1], &[]).is_err());
}

proptest! {
    /// A changed leaf changes the root and breaks its own inclusion proof.
    #[test]
    fn a_changed_leaf_breaks_the_root_and_its_proof(n in 1usize..200, pick in 0usize..200, byte in 0usize..32) {
        let mut tree = leaves(n);
        let index = pick % n;
        let r = root(&tree);
        let proof = inclusion_proof(&tree, index).expect("proof");
        tree[index][byte] ^= 1;
        prop_assert_ne!(root(&tree), r);
        prop_assert!(verify_inclusion(index as u64, n as u64, &tree[index], &proof, &r).is_err());
    }

    /// A log that rewrote any leaf before `m` is not consistent with its tree of size `m`.
    #[test]
    fn a_rewritten_prefix_is_inconsistent(m in 1usize..100, extra in 1usize..100, pick in 0usize..100) {
        let n = m + extra;
        let honest = leaves(n);
        let old = root(&honest[..m]);
        let mut forged = honest.clone();
        forged[pick % m][0] ^= 1;
        let proof = consistency_proof(&forged, m).expect("proof");
        prop_assert!(verify_consistency(m as u64, n as u64, &old, &root(&forged), &proof).is_err());
    }
}
