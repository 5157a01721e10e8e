//! The trail as the metadata store keeps it, in the `audit` family:
//!
//! | key | value |
//! |---|---|
//! | `e` seq (u64, big-endian) | the leaf, byte for byte ([`crate::audit::Entry::leaf`]) |
//! | `t` level (u8) index (u64, big-endian) | the RFC 6962 hash of a complete subtree of 2^[`STORED_FROM`] leaves or more (32 bytes): level `l` the subtree of leaves `index·2^l ..` — one record per 2^`STORED_FROM` leaves or so, so a proof is lookups plus a few leaves hashed (a level below, the hash of its stored leaves; records of those levels an earlier release wrote are not read) |
//! | `c` size (u64, big-endian) | a signed checkpoint of the log at that size (the C2SP note's text) |
//! | `h` | the [`Head`], as last written (see below) |
//! | `o` | the log's origin (`stele/<log id>/audit/node`), fixed when the trail first opens |
//!
//! Appending reads nothing but the head: it holds the size, the hash of the last leaf (the
//! next leaf's `prev`) and the complete subtrees along the size's binary decomposition, so
//! the root of any size the head had is a fold of at most 64 hashes. Every append happens
//! in a batch under the metadata write guard (a command's, or the queue's flush), so the
//! sequence is gap-free and the log is the same on every replica that applies the same
//! commands.
//!
//! The head lives in memory (kept by `Meta`): a command's batch writes its leaf and
//! subtree hashes, not the head (a record of ~350 bytes rewritten by every PUT cost more
//! than the leaf's own hashing; BENCHMARKS.md). The trail's flush writes it within
//! [`crate::audit::trail::FLUSH_EVERY`] of a change, and every checkpoint and clean stop
//! with it. After a crash the stored head may be behind: loading it folds in the leaves
//! after it, each of which must continue the chain ([`load`]).

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use stele_tlog::{Hash, merkle};

#[cfg(doc)]
use crate::audit::Entry;
use crate::audit::entry::Rendered;
use crate::meta::{Batch, Meta, MetaError, Record};

const HEAD: &[u8] = b"h";
const ORIGIN: &[u8] = b"o";

/// The log's end: enough to append the next leaf and to compute the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// How many leaves the log holds.
    pub size: u64,
    /// SHA-256 of the last leaf's bytes (the next leaf's `prev`); zeros while empty.
    pub last: [u8; 32],
    /// The complete subtrees along `size`'s binary decomposition, largest first, as
    /// (level, hash): level `l` covers `2^l` leaves.
    pub frontier: Vec<(u8, Hash)>,
    /// The size of the latest signed checkpoint (0: none yet).
    pub checkpointed: u64,
}

impl Record for Head {
    const NAME: &'static str = "audit-head";
    const FORMAT: u8 = 1;
}

impl Head {
    /// The RFC 6962 root of the log's leaves (the hash of the empty string when empty).
    pub fn root(&self) -> Hash {
        let mut it = self.frontier.iter().rev();
        let Some((_, last)) = it.next() else {
            return merkle::empty_root();
        };
        it.fold(*last, |acc, (_, left)| merkle::node_hash(left, &acc))
    }

    /// The `prev` of the next leaf, in hex.
    pub fn prev(&self) -> String {
        if self.size == 0 {
            stele_tlog::verify::FIRST_PREV.to_owned()
        } else {
            hex::encode(self.last)
        }
    }
}

/// The lowest level of subtree hashes an append stores. The levels below (2, 4 and 8
/// leaves) are hashed from the leaves when a proof needs them, at most 8 leaves read
/// each: storing them was 7 of every 8 subtree records, one more key through the
/// memtable per PUT (BENCHMARKS.md, the audit trail's cost).
pub const STORED_FROM: u8 = 4;

fn leaf_key(seq: u64) -> Vec<u8> {
    let mut k = vec![b'e'];
    k.extend(seq.to_be_bytes());
    k
}

fn subtree_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![b't', level];
    k.extend(index.to_be_bytes());
    k
}

fn checkpoint_key(size: u64) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend(size.to_be_bytes());
    k
}

/// The log's head (an empty log's when nothing was appended yet): the one in memory, or
/// else [`load`]ed (and then kept in memory).
///
/// # Errors
/// A metadata read's, or a head that does not decode.
pub fn head(meta: &Meta) -> Result<Head, MetaError> {
    if let Some(h) = meta.audit_head()
        && let Some(h) = h.downcast_ref::<Head>()
    {
        return Ok(h.clone());
    }
    let (h, broken) = load(meta)?;
    if let Some(reason) = broken {
        // The node checked this at open (`Trail::open`): seen now, the family changed
        // behind its back; appending goes on after the last leaf that chains.
        tracing::error!(%reason, "the audit trail is inconsistent");
    }
    // Kept only if no batch written meanwhile carried a newer head (a load outside the
    // write guard may have read the family before that batch).
    let kept = meta.set_audit_head_if_none(std::sync::Arc::new(h.clone()));
    Ok(kept.downcast_ref::<Head>().cloned().unwrap_or(h))
}

/// The head as last written (an empty log's when never written).
///
/// # Errors
/// A metadata read's, or a head that does not decode.
pub fn stored_head(meta: &Meta) -> Result<Head, MetaError> {
    meta.audit_get(HEAD)?
        .map(|b| Head::decode(&b))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The log's end from the family: the stored head, with every leaf after it folded in
/// while each continues the chain (its `seq` the next position, its `prev` the SHA-256 of
/// the leaf before). The second value says what does not hold, when something does not:
/// the last leaf the stored head names missing or changed, or a leaf after it that does
/// not continue the chain (the fold stops before it).
///
/// # Errors
/// A metadata read's, or a head that does not decode.
pub fn load(meta: &Meta) -> Result<(Head, Option<String>), MetaError> {
    let mut h = stored_head(meta)?;
    if let Some(last) = h.size.checked_sub(1) {
        match leaves(meta, last, 1)?.first() {
            Some((seq, leaf)) if *seq == last && crate::crypto::sha256(leaf) == h.last => {}
            _ => {
                let why =
                    format!("leaf {last}, the last the stored head names, is missing or changed");
                return Ok((h, Some(why)));
            }
        }
    }
    loop {
        let next = leaves(meta, h.size, 256)?;
        if next.is_empty() {
            return Ok((h, None));
        }
        for (seq, leaf) in next {
            let fields: Option<(u64, String)> = serde_json::from_slice::<serde_json::Value>(&leaf)
                .ok()
                .and_then(|v| Some((v.get("seq")?.as_u64()?, v.get("prev")?.as_str()?.to_owned())));
            if seq != h.size || fields != Some((h.size, h.prev())) {
                let why = format!(
                    "leaf {seq}, after the {} the stored head and the chain account for, does not continue the chain",
                    h.size
                );
                return Ok((h, Some(why)));
            }
            fold(&mut h, &leaf);
        }
    }
}

/// Adds the leaf `leaf` at position `head.size` to `head`, returning the subtree hashes
/// it completes as (level, index, hash), level 1 and up.
fn fold(head: &mut Head, leaf: &[u8]) -> Vec<(u8, u64, Hash)> {
    let seq = head.size;
    head.last = crate::crypto::sha256(leaf);
    let mut level = 0u8;
    let mut hash = merkle::leaf_hash(leaf);
    let mut completed = Vec::new();
    // Two complete subtrees of one level merge into the next: the new leaf completes one
    // subtree per trailing 1 bit of its position.
    while let Some(&(l, left)) = head.frontier.last() {
        if l != level {
            break;
        }
        head.frontier.pop();
        hash = merkle::node_hash(&left, &hash);
        level += 1;
        completed.push((level, seq >> level, hash));
    }
    head.frontier.push((level, hash));
    head.size = seq + 1;
    completed
}

/// Appends `entry` (rendered: [`Entry::render`]) after `head` into `b`: its leaf and the
/// subtree hashes it completes; `head` becomes the new head (the caller writes it with
/// [`put_head`] once its batch holds every leaf it appends).
pub fn append(head: &mut Head, b: &mut Batch, entry: &Rendered) {
    let seq = head.size;
    let leaf = entry.leaf(seq, &head.prev());
    // Levels below `STORED_FROM` are not stored: a proof hashes the leaves it needs, and
    // an append writes a subtree record once per 2^STORED_FROM leaves or so.
    for (level, index, hash) in fold(head, &leaf) {
        if level >= STORED_FROM {
            b.audit_put(subtree_key(level, index), hash.to_vec());
        }
    }
    b.audit_put(leaf_key(seq), leaf);
}

/// Writes `head` into `b`, and keeps it in memory once `b` is written.
///
/// # Errors
/// [`MetaError::Encode`].
pub fn put_head(b: &mut Batch, head: &Head) -> Result<(), MetaError> {
    b.audit_put(HEAD.to_vec(), head.encode()?);
    keep_head(b, head.clone());
    Ok(())
}

/// Keeps `head` in memory once `b` is written, without writing it.
pub fn keep_head(b: &mut Batch, head: Head) {
    b.keep_audit_head(std::sync::Arc::new(head));
}

/// Appends one entry (rendered: [`Entry::render`]) in `b` after the head as `meta` holds
/// it (a command's one event); the new head is kept in memory, not written.
///
/// # Errors
/// The head's read.
pub fn record(meta: &Meta, b: &mut Batch, entry: &Rendered) -> Result<(), MetaError> {
    let mut h = head(meta)?;
    append(&mut h, b, entry);
    keep_head(b, h);
    Ok(())
}

/// Keeps the signed checkpoint `note` of size `size` in `b`.
pub fn put_checkpoint(b: &mut Batch, size: u64, note: &str) {
    b.audit_put(checkpoint_key(size), note.as_bytes().to_vec());
}

/// The log's origin, if the trail has opened once.
///
/// # Errors
/// A metadata read's.
pub fn origin(meta: &Meta) -> Result<Option<String>, MetaError> {
    Ok(meta
        .audit_get(ORIGIN)?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Fixes the log's origin in `b` (once: the trail keeps the first).
pub fn put_origin(b: &mut Batch, origin: &str) {
    b.audit_put(ORIGIN.to_vec(), origin.as_bytes().to_vec());
}

/// Up to `limit` leaves from position `from`, in order, as (seq, bytes).
///
/// # Errors
/// A metadata read's.
pub fn leaves(meta: &Meta, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, MetaError> {
    Ok(meta
        .audit_scan(b"e", &leaf_key(from), limit)?
        .into_iter()
        .filter_map(|(k, v)| {
            let seq: [u8; 8] = k.get(1..9)?.try_into().ok()?;
            Some((u64::from_be_bytes(seq), v))
        })
        .collect())
}

/// The signed checkpoints of sizes `from` and up, in order of size, as (size, note).
///
/// # Errors
/// A metadata read's.
pub fn checkpoints(meta: &Meta, from: u64, limit: usize) -> Result<Vec<(u64, String)>, MetaError> {
    Ok(meta
        .audit_scan(b"c", &checkpoint_key(from), limit)?
        .into_iter()
        .filter_map(|(k, v)| {
            let size: [u8; 8] = k.get(1..9)?.try_into().ok()?;
            Some((u64::from_be_bytes(size), String::from_utf8(v).ok()?))
        })
        .collect())
}

/// The signed checkpoint of size `size`, if one was made.
///
/// # Errors
/// A metadata read's.
pub fn checkpoint(meta: &Meta, size: u64) -> Result<Option<String>, MetaError> {
    Ok(meta
        .audit_get(&checkpoint_key(size))?
        .and_then(|v| String::from_utf8(v).ok()))
}

/// The hash of the complete subtree at `level`, `index`, if the log holds it: stored
/// ([`STORED_FROM`] and up), or else hashed from its two halves, down to the leaves
/// (records of the lower levels an earlier release wrote are not read: nothing keeps
/// them in step with the leaves any more).
///
/// # Errors
/// A metadata read's.
pub fn subtree(meta: &Meta, level: u8, index: u64) -> Result<Option<Hash>, MetaError> {
    if level == 0 {
        return Ok(meta
            .audit_get(&leaf_key(index))?
            .map(|leaf| merkle::leaf_hash(&leaf)));
    }
    if level >= STORED_FROM {
        return Ok(meta
            .audit_get(&subtree_key(level, index))?
            .and_then(|v| v.try_into().ok()));
    }
    let left = subtree(meta, level - 1, index * 2)?;
    let right = subtree(meta, level - 1, index * 2 + 1)?;
    Ok(left.zip(right).map(|(l, r)| merkle::node_hash(&l, &r)))
}

/// The RFC 6962 root of the `len` leaves from `start` (MTH), from the stored subtree
/// hashes: a lookup for an aligned power of two, else the split RFC 6962 §2.1 makes.
fn range_root(meta: &Meta, start: u64, len: u64) -> Result<Hash, MetaError> {
    if len.is_power_of_two() && start.is_multiple_of(len) {
        let level = len.trailing_zeros() as u8;
        return subtree(meta, level, start >> level)?.ok_or_else(|| MetaError::Decode {
            record: "audit subtree",
            message: format!("the hash of leaves {start}..{} is missing", start + len),
        });
    }
    let k = split(len);
    Ok(merkle::node_hash(
        &range_root(meta, start, k)?,
        &range_root(meta, start + k, len - k)?,
    ))
}

/// The largest power of two below `n` (n > 1).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the log's first `size` leaves (RFC 6962
/// §2.1.1 PATH, leaf side first, as `stele_tlog::merkle::verify_inclusion` reads it),
/// from the stored subtree hashes: O(log n) lookups.
///
/// # Errors
/// A metadata read's, or a subtree hash the store lacks; `index >= size` gives an empty
/// proof the verifier refuses.
pub fn inclusion_proof(meta: &Meta, index: u64, size: u64) -> Result<Vec<Hash>, MetaError> {
    fn path(meta: &Meta, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) -> Result<(), MetaError> {
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            path(meta, m, start, k, out)?;
            out.push(range_root(meta, start + k, n - k)?);
        } else {
            path(meta, m - k, start + k, n - k, out)?;
            out.push(range_root(meta, start, k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if index < size {
        path(meta, index, 0, size, &mut out)?;
    }
    Ok(out)
}

/// Calls `f` with each leaf from position `from` on, in order, until it breaks.
///
/// # Errors
/// A metadata read's.
pub fn scan_leaves(
    meta: &Meta,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> Result<(), MetaError> {
    let mut next = from;
    loop {
        let page = leaves(meta, next, 1024)?;
        let full = page.len() == 1024;
        for (seq, leaf) in &page {
            if f(*seq, leaf).is_break() {
                return Ok(());
            }
            next = seq + 1;
        }
        if !full {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Entry;
    use crate::lock::Now;
    use crate::types::Timestamp;

    /// Every size's root from the head equals the tree's root over the same leaves, and
    /// every stored subtree hash is the root of the leaves it covers.
    #[test]
    fn the_head_and_the_subtrees_agree_with_the_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::open(dir.path()).expect("meta");
        let mut hashes = Vec::new();
        let mut h = head(&meta).expect("head");
        assert_eq!(h.root(), merkle::empty_root());
        for i in 0..70u64 {
            let mut b = Batch::default();
            let e = Entry::new("tick", Now::at(Timestamp::from_micros(i as i64)));
            append(&mut h, &mut b, &e.render());
            put_head(&mut b, &h).expect("head");
            meta.write_guarded(|_| Ok::<_, MetaError>((b, ())))
                .expect("write");
            // The head as the next append reads it (the copy `Meta` keeps) is the one
            // just written, and so is the stored one.
            assert_eq!(head(&meta).expect("head"), h);
            let stored = meta.audit_scan(HEAD, HEAD, 1).expect("scan");
            assert_eq!(stored.len(), 1);
            assert_eq!(Head::decode(&stored[0].1).expect("decode"), h);
            let stored = leaves(&meta, i, 1).expect("leaves");
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].0, i);
            hashes.push(merkle::leaf_hash(&stored[0].1));
            assert_eq!(h.root(), merkle::root(&hashes), "size {}", i + 1);
            assert_eq!(head(&meta).expect("head"), h);
        }
        for level in 0..7u8 {
            let width = 1usize << level;
            for index in 0..(hashes.len() / width) {
                let expected = merkle::root(&hashes[index * width..(index + 1) * width]);
                assert_eq!(
                    subtree(&meta, level, index as u64).expect("read"),
                    Some(expected),
                    "level {level} index {index}"
                );
            }
        }
        // Only the levels from `STORED_FROM` up are stored (an earlier release stored
        // every level from 1: such records are read as they are, below).
        let stored_levels: std::collections::BTreeSet<u8> = meta
            .audit_scan(b"t", b"t", usize::MAX)
            .expect("scan")
            .iter()
            .map(|(k, _)| k[1])
            .collect();
        assert_eq!(stored_levels, [4u8, 5, 6].into_iter().collect());
        // Every inclusion proof from the stored subtrees verifies, for every size.
        let every_proof_verifies = |meta: &Meta| {
            for size in 1..=hashes.len() as u64 {
                let root = merkle::root(&hashes[..size as usize]);
                for index in 0..size {
                    let proof = inclusion_proof(meta, index, size).expect("proof");
                    merkle::verify_inclusion(index, size, &hashes[index as usize], &proof, &root)
                        .unwrap_or_else(|e| panic!("{index} in {size}: {e}"));
                }
            }
        };
        every_proof_verifies(&meta);
        // An earlier release's records of the lower levels are not read: one that no
        // longer matches its leaves changes nothing.
        let mut b = Batch::default();
        b.audit_put(subtree_key(1, 0), [7u8; 32].to_vec());
        meta.write_guarded(|_| Ok::<_, MetaError>((b, ())))
            .expect("write");
        assert_eq!(
            subtree(&meta, 1, 0).expect("read"),
            Some(merkle::root(&hashes[..2]))
        );
        // Every inclusion proof verifies again, that stale record beside the leaves.
        every_proof_verifies(&meta);
        // The chain: each leaf's prev is the SHA-256 of the one before.
        let all = leaves(&meta, 0, 100).expect("leaves");
        for w in all.windows(2) {
            let next: serde_json::Value = serde_json::from_slice(&w[1].1).expect("json");
            assert_eq!(next["prev"], hex::encode(crate::crypto::sha256(&w[0].1)));
        }
    }

    /// Commands write leaves but not the head: a node that reopens after a crash finds the
    /// stored head behind and folds the leaves after it back in; a leaf after it that does
    /// not continue the chain, or a missing last leaf the head names, is reported.
    #[test]
    fn a_head_left_behind_is_caught_up_from_the_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = |i: i64| Entry::new("tick", Now::at(Timestamp::from_micros(i))).render();
        let write = |meta: &Meta, b: Batch| {
            meta.write_guarded(|_| Ok::<_, MetaError>((b, ())))
                .expect("write");
        };
        let expected = {
            let meta = Meta::open(dir.path()).expect("meta");
            let mut b = Batch::default();
            let mut h = head(&meta).expect("head");
            append(&mut h, &mut b, &entry(0));
            put_head(&mut b, &h).expect("head");
            write(&meta, b);
            for i in 1..6 {
                let mut b = Batch::default();
                record(&meta, &mut b, &entry(i)).expect("record");
                write(&meta, b);
            }
            assert_eq!(stored_head(&meta).expect("stored").size, 1);
            head(&meta).expect("head")
        };
        assert_eq!(expected.size, 6);
        let meta = Meta::open(dir.path()).expect("reopen");
        assert_eq!(load(&meta).expect("load"), (expected.clone(), None));
        // A leaf that does not continue the chain (its prev is not the last leaf's hash).
        let mut forged = expected.clone();
        forged.last = [7; 32];
        let mut b = Batch::default();
        append(&mut forged, &mut b, &entry(99));
        write(&meta, b);
        let (h, broken) = load(&meta).expect("load");
        assert_eq!(h, expected);
        assert!(
            broken.as_deref().is_some_and(|r| r.contains("leaf 6")),
            "{broken:?}"
        );
        // The last leaf the stored head names, gone.
        let mut b = Batch::default();
        b.audit_delete(leaf_key(0));
        write(&meta, b);
        let (_, broken) = load(&meta).expect("load");
        assert!(
            broken.as_deref().is_some_and(|r| r.contains("leaf 0")),
            "{broken:?}"
        );
    }
}
