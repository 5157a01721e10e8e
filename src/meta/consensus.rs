//! What the consensus module (`crate::consensus`, the only importer of openraft) keeps in
//! the metadata store, as bytes: the Raft log, vote and applied state in the node-local
//! `raft` family, and the replicated families' records for snapshots. Nothing here knows
//! Raft's types; `consensus` encodes them as records.

use std::ops::ControlFlow;

use super::engine::KvEngine as _;
use super::{Batch, Cf, FamilyScope, Meta, MetaError, Ordering, Write};

/// One record of a replicated family, as a snapshot carries it: (family name, key, value).
pub type FamilyRecord = (String, Vec<u8>, Vec<u8>);

/// What the cluster's consensus agrees on so far, and so what its snapshots carry and
/// replace: (family, key prefix). The namespace — buckets, versions, their locks, tags
/// and inline bytes, multipart uploads, usage counters, where repair put shards, lifecycle
/// configurations — the identities (users, keys with their secrets sealed under the
/// cluster's identity key, approvals, the two-person rule) and the membership (with each
/// member's disks), every record of which only commands write (`crate::command`, through
/// the group in a cluster). A placement a
/// node recorded by itself under an earlier release is replaced by the group's (none) when
/// a snapshot is installed over it: its shard is read from the others then, and repaired
/// again. A joining node's own identities (none: a joiner makes no first credential) are
/// replaced by the cluster's. Not yet: bucket activity (written by a node directly),
/// alert sinks and replication (secrets sealed under each node's own master key). A family a node writes by itself must never be listed: a snapshot installed
/// over it would delete what only that node holds.
pub const REPLICATED: &[(Cf, &str)] = &[
    (Cf::Buckets, ""),
    (Cf::Versions, ""),
    (Cf::Locks, ""),
    (Cf::Tags, ""),
    (Cf::Inline, ""),
    (Cf::Uploads, ""),
    (Cf::Identity, ""),
    (Cf::Placement, ""),
    (Cf::Cluster, "cluster/"),
    (Cf::Cluster, "usage/"),
    (Cf::Cluster, "lifecycle/"),
    (Cf::Cluster, "geo/"),
];

impl Cf {
    /// Whether some of the family's records are agreed through the consensus
    /// ([`REPLICATED`]); never a node-local family.
    pub fn replicated(self) -> bool {
        REPLICATED.iter().any(|(cf, _)| *cf == self)
            && matches!(
                self.scope(),
                FamilyScope::ClusterWide | FamilyScope::ShardedByKey
            )
    }
}

/// Whether `key` of `cf` is agreed through the consensus ([`REPLICATED`]).
pub fn is_replicated(cf: Cf, key: &[u8]) -> bool {
    REPLICATED
        .iter()
        .any(|(c, prefix)| *c == cf && key.starts_with(prefix.as_bytes()))
}

impl Batch {
    /// Writes `value` under `key` in the `raft` family.
    pub(crate) fn raft_put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put(Cf::Raft, key, value);
    }

    /// Removes `key` from the `raft` family.
    pub(crate) fn raft_delete(&mut self, key: Vec<u8>) {
        self.delete(Cf::Raft, key);
    }
}

impl Meta {
    /// The value of `key` in the `raft` family.
    ///
    /// # Errors
    /// The read's.
    pub(crate) fn raft_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get(Cf::Raft, key)
    }

    /// Up to `limit` records of the `raft` family from `from` while their key starts with
    /// `prefix`, in key order.
    ///
    /// # Errors
    /// The scan's.
    pub(crate) fn raft_scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<super::RawPair>, MetaError> {
        self.raw_scan(Cf::Raft, prefix, from, limit)
    }

    /// Writes `b` (after everything staged before it); with `sync`, durable on return.
    ///
    /// # Errors
    /// The write's.
    pub(crate) fn raft_write(&self, b: Batch, sync: bool) -> Result<(), MetaError> {
        self.commit(b, sync)
    }

    /// Runs `f` under the write guard with a way to stage batches (each visible to the
    /// reads that follow it in `f`, [`super::overlay`]), then writes what was staged to the
    /// engine as one batch, unsynced: a Raft state machine applying a group of entries
    /// (their durability is the log's, whose append is fsynced).
    ///
    /// # Errors
    /// `f`'s, or the write's.
    pub(crate) fn apply_staged<T, E: From<MetaError>>(
        &self,
        f: impl FnOnce(&Self, &mut dyn FnMut(Batch) -> Result<(), MetaError>) -> Result<T, E>,
    ) -> Result<T, E> {
        let out = {
            let _g = self.guard();
            f(self, &mut |b| {
                if !b.is_empty() {
                    self.commit_as(b, Write::Staged)?;
                    self.written.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        };
        // Written even when `f` failed midway: what it staged is visible already and
        // consistent (each batch carries its own applied marker).
        self.db.write(Batch::default(), false)?;
        out
    }

    /// Runs `f` under the write guard, so no command is applied while it reads (a
    /// snapshot's records and the applied state they match).
    ///
    /// # Errors
    /// `f`'s.
    pub(crate) fn read_guarded<T>(&self, f: impl FnOnce(&Self) -> T) -> T {
        let _g = self.guard();
        f(self)
    }

    /// Every record the consensus agrees on ([`REPLICATED`]), in scope then key order.
    /// Call under [`Meta::read_guarded`] for a consistent set.
    ///
    /// # Errors
    /// A scan's.
    pub(crate) fn replicated_records(&self) -> Result<Vec<FamilyRecord>, MetaError> {
        let mut out = Vec::new();
        for (cf, prefix) in REPLICATED {
            self.db.scan(*cf, prefix.as_bytes(), &mut |k, v| {
                if !k.starts_with(prefix.as_bytes()) {
                    return ControlFlow::Break(());
                }
                out.push((cf.name().to_owned(), k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })?;
        }
        Ok(out)
    }

    /// Replaces every record the consensus agrees on ([`REPLICATED`]) by `records` and
    /// writes `extra` (the applied state they match) in the same synced batch, under the
    /// write guard: a Raft snapshot installed. Nothing outside [`REPLICATED`] is touched.
    ///
    /// # Errors
    /// [`MetaError::Decode`] for a record this release does not replicate (nothing
    /// written), or the scan's or write's.
    pub(crate) fn replace_replicated(
        &self,
        records: Vec<FamilyRecord>,
        extra: Batch,
    ) -> Result<(), MetaError> {
        let _g = self.guard();
        let mut b = Batch::default();
        for (cf, prefix) in REPLICATED {
            let mut keys = Vec::new();
            self.db.scan(*cf, prefix.as_bytes(), &mut |k, _| {
                if !k.starts_with(prefix.as_bytes()) {
                    return ControlFlow::Break(());
                }
                keys.push(k.to_vec());
                ControlFlow::Continue(())
            })?;
            for k in keys {
                b.delete(*cf, k);
            }
        }
        for (name, k, v) in records {
            let cf = Cf::ALL
                .into_iter()
                .find(|cf| cf.name() == name && is_replicated(*cf, &k))
                .ok_or_else(|| MetaError::Decode {
                    record: "raft-snapshot",
                    message: format!(
                        "a record of family {name:?} ({}) this release does not replicate",
                        String::from_utf8_lossy(&k)
                    ),
                })?;
            b.put(cf, k, v);
        }
        b.ops.extend(extra.ops);
        // The counted queues change under the snapshot: counted again at the next read.
        let forget = || *self.queues.lock().unwrap_or_else(|p| p.into_inner()) = None;
        forget();
        let written = self.commit(b, true);
        forget();
        written
    }
}
