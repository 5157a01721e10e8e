//! The Merkle tree of RFC 6962 (restated in RFC 9162 §2.1): leaves hashed as
//! `SHA-256(0x00 || leaf)`, nodes as `SHA-256(0x01 || left || right)`, the tree over `n`
//! leaves split at the largest power of two below `n`. Inclusion proofs show that a leaf
//! is in the tree of a given size; consistency proofs that the tree of size `m` is a
//! prefix of the tree of size `n`, that is, that nothing written before was changed.
//!
//! Building proofs here takes the leaf hashes in memory (tests, small logs, exports); the
//! node keeps complete subtree hashes instead. Verifying needs only the proof.

use crate::TlogError;
use crate::crypto::{Hash, sha256};

/// The hash of a leaf's bytes: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The root of the empty tree: SHA-256 of no bytes.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The largest power of two strictly below `n` (`n` ≥ 2): where RFC 6962 splits a tree.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root (RFC 6962's MTH) of the tree whose leaf hashes are `leaves`, in order.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof (RFC 6962's PATH) of the leaf at `index` in the tree of `leaves`;
/// `None` if `index` is not a leaf of it.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

/// The consistency proof (RFC 6962's PROOF) between the tree of the first `m` of `leaves`
/// and the tree of all of them; `None` if `m` is larger than the tree. Empty for `m` of 0
/// or of the whole tree.
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !complete {
                out.push(root(d));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &d[..k], complete, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    if m > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Some(out)
}

fn invalid(reason: &'static str) -> TlogError {
    TlogError::InvalidProof { reason }
}

/// Checks that `proof` shows the leaf hash `leaf` at `index` in the tree of `size` leaves
/// whose root is `root` (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`TlogError::InvalidProof`]: an index outside the tree, a proof of the wrong length, or
/// a root that does not come out.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(invalid("the index is outside the tree"));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(invalid("the proof is too long"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(invalid("the proof is too short"));
    }
    if r != *root {
        return Err(invalid("the root does not match"));
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `m` leaves with root `old` to be a prefix of the
/// tree of `n` leaves with root `new` (RFC 9162 §2.1.4.2). Trees of equal size are
/// consistent when their roots are equal (and the proof empty); the empty tree is a prefix
/// of every tree.
///
/// # Errors
/// [`TlogError::InvalidProof`]: `m` past `n`, a proof of the wrong length, or roots that
/// do not come out.
pub fn verify_consistency(
    m: u64,
    n: u64,
    old: &Hash,
    new: &Hash,
    proof: &[Hash],
) -> Result<(), TlogError> {
    if m > n {
        return Err(invalid("the old tree is larger than the new one"));
    }
    if m == n {
        if !proof.is_empty() {
            return Err(invalid("equal sizes take an empty proof"));
        }
        if old != new {
            return Err(invalid("trees of equal size with different roots"));
        }
        return Ok(());
    }
    if m == 0 {
        if !proof.is_empty() {
            return Err(invalid("the empty tree takes an empty proof"));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(invalid("the proof is empty"));
    }
    // A complete old tree is itself a node of the new one: the proof leaves it out.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*old);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (m - 1, n - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(invalid("the proof is too long"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(invalid("the proof is too short"));
    }
    if fr != *old {
        return Err(invalid("the old root does not match"));
    }
    if sr != *new {
        return Err(invalid("the new root does not match"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
