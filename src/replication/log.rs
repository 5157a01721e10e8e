//! The replication log, in the `replog` family.
//!
//! Keys (big-endian numbers, so they sort by peer then sequence):
//! - `E peer:u32 seq:u64` → [`LogEntry`]: a change the peer has not acknowledged. Written
//!   by [`record`] in the batch of the change itself; removed when the peer acknowledges.
//! - `F peer:u32 seq:u64` → [`LogEntry`]: a version a backfill or resync pass queued
//!   ([`EntryClass::Backfill`]); kept apart so that live changes go first.
//! - `H peer:u32` → the last sequence number given to the peer (u64): gap-free, assigned
//!   at apply.
//! - `D peer:u32 seq:u64` → [`DeadEntry`]: an entry the peer refused for good, parked with
//!   its reason until an administrator retries it.
//! - `N` → the next peer id (u32).
//!
//! The RPO is read from here ([`backlog`]): the age of the oldest entry, live or dead,
//! that the peer has not acknowledged; 0 when there is none. A restart or an idle period
//! cannot make it wrong, since nothing is counted in memory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PeerRecord, rules};
use crate::meta::{Batch, Meta, MetaError, Origin, Record, VersionKind, VersionRecord};
use crate::types::{BucketName, ObjectKey, Timestamp, VersionId};

/// What a log entry asks the peer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogOp {
    /// Add the version (an object) with its bytes.
    Version,
    /// Add the delete marker.
    DeleteMarker,
    /// Join the version's Object Lock state with the source's as it is when sent.
    Lock,
    /// Replace the version's tags with the source's as they are when sent. Appended last.
    Tags,
}

/// Whether an entry comes from a change (live) or from a backfill pass over older
/// versions; live entries go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryClass {
    /// Logged with the change.
    Live,
    /// Logged by a backfill or resync pass.
    Backfill,
}

/// One change a peer has not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// What to do.
    pub op: LogOp,
    /// The source bucket.
    pub bucket: BucketName,
    /// The key.
    pub key: ObjectKey,
    /// The version.
    pub version_id: VersionId,
    /// The bucket on the peer.
    pub target: BucketName,
    /// Body bytes to send (0 but for [`LogOp::Version`]).
    pub size: u64,
    /// When the change was committed (the proposer's wall time): the RPO counts from it.
    pub enqueued_at: Timestamp,
    /// Live or backfill.
    pub class: EntryClass,
    /// The id of the rule that selected it.
    pub rule: String,
}

impl Record for LogEntry {
    const NAME: &'static str = "replication-log-entry";
    const FORMAT: u8 = 1;
}

/// Why an entry was parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DeadReason {
    /// The peer refused the key or the request (authentication, role, policy).
    Refused,
    /// The target bucket does not exist on the peer.
    NoSuchBucket,
    /// The target bucket cannot keep the version's Object Lock state.
    LockConfiguration,
    /// The peer holds another version under the same id (different bytes): never
    /// overwritten.
    Conflict,
    /// The version could not be read here without error (more bad shards than parity):
    /// repair is queued; the sender retries it by itself later.
    WaitingRepair,
    /// The peer's certificate is not the one trusted.
    Tls,
    /// Any other refusal the peer gave as final.
    Other,
}

impl DeadReason {
    /// Every reason, for metrics that list each.
    pub const ALL: [DeadReason; 7] = [
        DeadReason::Refused,
        DeadReason::NoSuchBucket,
        DeadReason::LockConfiguration,
        DeadReason::Conflict,
        DeadReason::WaitingRepair,
        DeadReason::Tls,
        DeadReason::Other,
    ];

    /// The reason's name in metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Refused => "refused",
            DeadReason::NoSuchBucket => "no_such_bucket",
            DeadReason::LockConfiguration => "lock_configuration",
            DeadReason::Conflict => "conflict",
            DeadReason::WaitingRepair => "waiting_repair",
            DeadReason::Tls => "tls",
            DeadReason::Other => "other",
        }
    }
}

/// A parked entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadEntry {
    /// The entry as it was logged.
    pub entry: LogEntry,
    /// Its sequence number.
    pub seq: u64,
    /// Why it was parked.
    pub reason: DeadReason,
    /// The peer's answer or the local error.
    pub detail: String,
    /// When it was parked.
    pub parked_at: Timestamp,
}

impl Record for DeadEntry {
    const NAME: &'static str = "replication-dead-entry";
    const FORMAT: u8 = 1;
}

fn peer_prefix(tag: u8, peer: u32) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&peer.to_be_bytes());
    k
}

/// The key of entry `seq` of `peer`.
pub fn entry_key(peer: u32, seq: u64) -> Vec<u8> {
    let mut k = peer_prefix(b'E', peer);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The key of backfill entry `seq` of `peer`.
pub fn backfill_key(peer: u32, seq: u64) -> Vec<u8> {
    let mut k = peer_prefix(b'F', peer);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Where an entry of `class` lives.
fn key_of(class: EntryClass, peer: u32, seq: u64) -> Vec<u8> {
    match class {
        EntryClass::Live => entry_key(peer, seq),
        EntryClass::Backfill => backfill_key(peer, seq),
    }
}

fn dead_key(peer: u32, seq: u64) -> Vec<u8> {
    let mut k = peer_prefix(b'D', peer);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The key a version's pending entry is indexed under, `V version-key peer seq`; its
/// value is one byte, 0 while the entry waits and 1 once it is parked. A version's
/// replication status ([`version_status`]) is read from these without scanning the log.
fn index_key(e: &LogEntry, peer: u32, seq: u64) -> Vec<u8> {
    let mut k = vec![b'V'];
    k.extend_from_slice(&crate::meta::keys::version_key(
        &e.bucket,
        &e.key,
        &e.version_id,
    ));
    k.extend_from_slice(&peer.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The marker `C version-key peer`: the peer acknowledged a change of the version.
fn completed_key(e: &LogEntry, peer: u32) -> Vec<u8> {
    let mut k = vec![b'C'];
    k.extend_from_slice(&crate::meta::keys::version_key(
        &e.bucket,
        &e.key,
        &e.version_id,
    ));
    k.extend_from_slice(&peer.to_be_bytes());
    k
}

/// A source version's replication status, as S3 spells it in
/// `x-amz-replication-status` (S3 User Guide, "Getting replication status information").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// A change of the version waits for a peer.
    Pending,
    /// Every peer acknowledged its changes.
    Completed,
    /// A change of the version was parked (refused for good, or waiting for repair).
    Failed,
}

/// The replication status of a source version: failed if an entry of it is parked,
/// pending if one waits, completed if a peer acknowledged one, `None` if it never
/// replicated (written before any rule, or not selected).
///
/// # Errors
/// A read failure.
pub fn version_status(
    meta: &Meta,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: &VersionId,
) -> Result<Option<SourceStatus>, MetaError> {
    let vk = crate::meta::keys::version_key(bucket, key, version_id);
    let mut prefix = vec![b'V'];
    prefix.extend_from_slice(&vk);
    // A handful of entries per version at most; a bound keeps a read cheap whatever.
    let waiting = meta.replog_scan(&prefix, &prefix, 64)?;
    if waiting.iter().any(|(_, v)| v.first() == Some(&1)) {
        return Ok(Some(SourceStatus::Failed));
    }
    if !waiting.is_empty() {
        return Ok(Some(SourceStatus::Pending));
    }
    prefix[0] = b'C';
    Ok((!meta.replog_scan(&prefix, &prefix, 1)?.is_empty()).then_some(SourceStatus::Completed))
}

/// Whether `peer` acknowledged a change of the version and has none waiting: what the
/// audit expects it to hold.
///
/// # Errors
/// A read failure.
pub fn acknowledged_by(
    meta: &Meta,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: &VersionId,
    peer: u32,
) -> Result<bool, MetaError> {
    let vk = crate::meta::keys::version_key(bucket, key, version_id);
    let mut done = vec![b'C'];
    done.extend_from_slice(&vk);
    done.extend_from_slice(&peer.to_be_bytes());
    if meta.replog_get(&done)?.is_none() {
        return Ok(false);
    }
    let mut waiting = vec![b'V'];
    waiting.extend_from_slice(&vk);
    waiting.extend_from_slice(&peer.to_be_bytes());
    Ok(meta.replog_scan(&waiting, &waiting, 1)?.is_empty())
}

/// Drops a removed version's completion markers (its waiting entries keep their index
/// until they are acknowledged or the peer is dropped): nothing is left of it here.
///
/// # Errors
/// A read failure.
pub(crate) fn forget_version(
    meta: &Meta,
    b: &mut Batch,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: &VersionId,
) -> Result<(), MetaError> {
    let mut prefix = vec![b'C'];
    prefix.extend_from_slice(&crate::meta::keys::version_key(bucket, key, version_id));
    for (k, _) in meta.replog_scan(&prefix, &prefix, usize::MAX)? {
        b.replog_delete(k);
    }
    Ok(())
}

/// The peer acknowledged entry `seq`: it leaves the log, its index with it, and its
/// version is marked completed for the peer.
///
/// # Errors
/// A read or decode failure.
pub(super) fn acknowledge(
    meta: &Meta,
    b: &mut Batch,
    peer: u32,
    seq: u64,
) -> Result<(), MetaError> {
    for key in [entry_key(peer, seq), backfill_key(peer, seq)] {
        if let Some(bytes) = meta.replog_get(&key)? {
            let e = LogEntry::decode(&bytes)?;
            b.replog_delete(index_key(&e, peer, seq));
            b.replog_put(completed_key(&e, peer), Vec::new());
            b.replog_delete(key);
        }
    }
    Ok(())
}

fn seq_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(5..13)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

fn head(meta: &Meta, peer: u32) -> Result<u64, MetaError> {
    Ok(meta
        .replog_get(&peer_prefix(b'H', peer))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// The next peer id (ids start at 1).
pub(super) fn next_peer_id(meta: &Meta) -> Result<u32, MetaError> {
    Ok(meta
        .replog_get(b"N")?
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map_or(1, u32::from_be_bytes))
}

pub(super) fn set_next_peer_id(b: &mut Batch, id: u32) {
    b.replog_put(b"N".to_vec(), id.to_be_bytes().to_vec());
}

/// Removes a peer's whole log (live and dead entries, their index, head).
pub(super) fn drop_peer(meta: &Meta, b: &mut Batch, peer: u32) -> Result<(), MetaError> {
    for tag in [b'E', b'F', b'D'] {
        let prefix = peer_prefix(tag, peer);
        for (k, v) in meta.replog_scan(&prefix, &prefix, usize::MAX)? {
            let entry = if tag == b'D' {
                DeadEntry::decode(&v).map(|d| d.entry)
            } else {
                LogEntry::decode(&v)
            };
            if let (Ok(e), Some(seq)) = (entry, seq_of(&k)) {
                b.replog_delete(index_key(&e, peer, seq));
            }
            b.replog_delete(k);
        }
    }
    b.replog_delete(peer_prefix(b'H', peer));
    Ok(())
}

pub(super) fn park(
    meta: &Meta,
    b: &mut Batch,
    peer: u32,
    seq: u64,
    reason: DeadReason,
    detail: &str,
    now: Timestamp,
) -> Result<(), MetaError> {
    let (key, bytes) = match meta.replog_get(&entry_key(peer, seq))? {
        Some(b) => (entry_key(peer, seq), b),
        None => match meta.replog_get(&backfill_key(peer, seq))? {
            Some(b) => (backfill_key(peer, seq), b),
            // Acknowledged or parked meanwhile: nothing to do.
            None => return Ok(()),
        },
    };
    let entry = LogEntry::decode(&bytes)?;
    b.replog_put(index_key(&entry, peer, seq), vec![1]);
    let dead = DeadEntry {
        entry,
        seq,
        reason,
        detail: detail.chars().take(1024).collect(),
        parked_at: now,
    };
    b.replog_delete(key);
    b.replog_put(dead_key(peer, seq), dead.encode()?);
    Ok(())
}

pub(super) fn retry_dead(
    meta: &Meta,
    b: &mut Batch,
    peer: u32,
    only: Option<DeadReason>,
) -> Result<usize, MetaError> {
    let prefix = peer_prefix(b'D', peer);
    let mut n = 0;
    for (k, v) in meta.replog_scan(&prefix, &prefix, usize::MAX)? {
        let d = DeadEntry::decode(&v)?;
        if only.is_some_and(|r| r != d.reason) {
            continue;
        }
        b.replog_delete(k);
        b.replog_put(index_key(&d.entry, peer, d.seq), vec![0]);
        b.replog_put(key_of(d.entry.class, peer, d.seq), d.entry.encode()?);
        n += 1;
    }
    Ok(n)
}

/// Adds to `b` the log entries the change `op` on `version` of `key` needs under the
/// bucket's rules as they are now: one per rule that selects the key (delete markers only
/// where the rule enables them). Versions a peer sent (replicas) and the lifecycle
/// worker's delete markers never replicate. Call it under the write guard, in the batch
/// of the change.
///
/// # Errors
/// A read or encode failure.
pub fn record(
    meta: &Meta,
    b: &mut Batch,
    bucket: &BucketName,
    key: &ObjectKey,
    version: &VersionRecord,
    op: LogOp,
    now: Timestamp,
) -> Result<(), MetaError> {
    // A version a peer or lifecycle wrote is not sent on; a change to a version's lock
    // or tags is the caller's to judge (it logs only a client's).
    if matches!(op, LogOp::Version | LogOp::DeleteMarker) && version.origin != Origin::Client {
        return Ok(());
    }
    let Some(config) = rules(meta, bucket)? else {
        return Ok(());
    };
    let mut heads: BTreeMap<u32, u64> = BTreeMap::new();
    for rule in config.rules.iter().filter(|r| r.selects(key.as_str())) {
        if op == LogOp::DeleteMarker && !rule.delete_markers {
            continue;
        }
        let Some(peer) = meta.kv_get::<PeerRecord>(
            crate::meta::Space::Replication,
            &super::peer_key(&rule.peer),
        )?
        else {
            continue;
        };
        let seq = match heads.get(&peer.id) {
            Some(h) => h + 1,
            None => head(meta, peer.id)? + 1,
        };
        heads.insert(peer.id, seq);
        let entry = LogEntry {
            op,
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: version.version_id,
            target: rule.target_bucket.clone(),
            size: if op == LogOp::Version && version.kind == VersionKind::Object {
                version.size
            } else {
                0
            },
            enqueued_at: now,
            class: EntryClass::Live,
            rule: rule.id.clone(),
        };
        b.replog_put(index_key(&entry, peer.id, seq), vec![0]);
        b.replog_put(entry_key(peer.id, seq), entry.encode()?);
    }
    for (peer, seq) in heads {
        b.replog_put(peer_prefix(b'H', peer), seq.to_be_bytes().to_vec());
    }
    Ok(())
}

/// Adds backfill entries for `peer` (sequence numbers from its head), in the batch `b`.
///
/// # Errors
/// A read or encode failure.
pub(super) fn enqueue_backfill(
    meta: &Meta,
    b: &mut Batch,
    peer: u32,
    entries: &[LogEntry],
    now: Timestamp,
) -> Result<(), MetaError> {
    let mut seq = head(meta, peer)?;
    for e in entries {
        seq += 1;
        let entry = LogEntry {
            class: EntryClass::Backfill,
            enqueued_at: now,
            ..e.clone()
        };
        b.replog_put(index_key(&entry, peer, seq), vec![0]);
        b.replog_put(backfill_key(peer, seq), entry.encode()?);
    }
    b.replog_put(peer_prefix(b'H', peer), seq.to_be_bytes().to_vec());
    Ok(())
}

/// How many backfill entries of `peer` wait, counting at most `cap`.
///
/// # Errors
/// A read failure.
pub fn backfill_waiting(meta: &Meta, peer: u32, cap: usize) -> Result<usize, MetaError> {
    let prefix = peer_prefix(b'F', peer);
    Ok(meta.replog_scan(&prefix, &prefix, cap)?.len())
}

/// Up to `limit` entries of `class` of `peer` with sequence numbers above `after`, in
/// order.
///
/// # Errors
/// A read or decode failure.
pub fn pending(
    meta: &Meta,
    peer: u32,
    class: EntryClass,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, LogEntry)>, MetaError> {
    let tag = match class {
        EntryClass::Live => b'E',
        EntryClass::Backfill => b'F',
    };
    let prefix = peer_prefix(tag, peer);
    let from = key_of(class, peer, after.saturating_add(1));
    meta.replog_scan(&prefix, &from, limit)?
        .into_iter()
        .filter_map(|(k, v)| seq_of(&k).map(|s| (s, v)))
        .map(|(s, v)| Ok((s, LogEntry::decode(&v)?)))
        .collect()
}

/// A peer's parked entries, oldest first.
///
/// # Errors
/// A read or decode failure.
pub fn dead(meta: &Meta, peer: u32) -> Result<Vec<DeadEntry>, MetaError> {
    let prefix = peer_prefix(b'D', peer);
    meta.replog_scan(&prefix, &prefix, usize::MAX)?
        .into_iter()
        .map(|(_, v)| DeadEntry::decode(&v))
        .collect()
}

/// What a peer has not acknowledged, read from the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Live entries.
    pub entries: u64,
    /// Their body bytes.
    pub bytes: u64,
    /// Live entries logged by backfill.
    pub backfill_entries: u64,
    /// The oldest live entry and its sequence number.
    pub oldest: Option<(u64, LogEntry)>,
    /// Parked entries by reason.
    pub dead: BTreeMap<DeadReason, u64>,
    /// The oldest parked entry's logging time.
    pub oldest_dead: Option<Timestamp>,
    /// The last sequence number given to the peer.
    pub head: u64,
}

impl Backlog {
    /// The recovery point objective, in seconds: how long ago the oldest change the peer
    /// has not acknowledged (live or parked) was committed; 0 when there is none.
    pub fn rpo_secs(&self, now: Timestamp) -> f64 {
        let oldest = [
            self.oldest.as_ref().map(|(_, e)| e.enqueued_at),
            self.oldest_dead,
        ]
        .into_iter()
        .flatten()
        .min();
        oldest.map_or(0.0, |t| {
            #[allow(clippy::cast_precision_loss)]
            let us = (now.0 - t.0).max(0) as f64;
            us / 1e6
        })
    }

    /// Parked entries, all reasons.
    pub fn dead_total(&self) -> u64 {
        self.dead.values().sum()
    }
}

/// A peer's backlog, by one pass over its live and parked entries.
///
/// # Errors
/// A read or decode failure.
pub fn backlog(meta: &Meta, peer: u32) -> Result<Backlog, MetaError> {
    let mut out = Backlog {
        head: head(meta, peer)?,
        ..Backlog::default()
    };
    for tag in [b'E', b'F'] {
        let prefix = peer_prefix(tag, peer);
        for (k, v) in meta.replog_scan(&prefix, &prefix, usize::MAX)? {
            let e = LogEntry::decode(&v)?;
            out.entries += 1;
            out.bytes += e.size;
            if e.class == EntryClass::Backfill {
                out.backfill_entries += 1;
            }
            let older = out
                .oldest
                .as_ref()
                .is_none_or(|(_, o)| e.enqueued_at < o.enqueued_at);
            if older {
                out.oldest = seq_of(&k).map(|s| (s, e));
            }
        }
    }
    for d in dead(meta, peer)? {
        *out.dead.entry(d.reason).or_default() += 1;
        let t = d.entry.enqueued_at;
        out.oldest_dead = Some(out.oldest_dead.map_or(t, |o| o.min(t)));
    }
    Ok(out)
}
