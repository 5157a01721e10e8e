//! The Raft log, vote and purge point in the node-local `raft` family: entries under
//! `e` + index (8 bytes, big-endian, so key order is log order), the vote under `vote`,
//! the last purged log id under `purged`. Each value is a record with a format byte.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use super::{NodeId, TypeConfig, blocking};
use crate::meta::{Batch, Meta, MetaError, Record};

const ENTRY: &[u8] = b"e";
const VOTE: &[u8] = b"vote";
const PURGED: &[u8] = b"purged";

fn entry_key(index: u64) -> Vec<u8> {
    let mut k = ENTRY.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// A log entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredEntry(pub Entry<TypeConfig>);

impl Record for StoredEntry {
    const NAME: &'static str = "raft-entry";
    const FORMAT: u8 = 1;
}

/// The vote as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredVote(pub Vote<NodeId>);

impl Record for StoredVote {
    const NAME: &'static str = "raft-vote";
    const FORMAT: u8 = 1;
}

/// The last purged log id as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredPurged(pub LogId<NodeId>);

impl Record for StoredPurged {
    const NAME: &'static str = "raft-purged";
    const FORMAT: u8 = 1;
}

fn read_err(e: &MetaError) -> StorageError<NodeId> {
    StorageIOError::read_logs(e).into()
}

fn write_err(e: &MetaError) -> StorageError<NodeId> {
    StorageIOError::write_logs(e).into()
}

/// The Raft log over a node's metadata store ([`RaftLogStorage`], openraft's storage v2).
#[derive(Debug, Clone)]
pub struct LogStore {
    meta: Arc<Meta>,
}

impl LogStore {
    /// The log kept in `meta`.
    pub fn new(meta: Arc<Meta>) -> Self {
        Self { meta }
    }

    fn entries(
        meta: &Meta,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Entry<TypeConfig>>, MetaError> {
        let mut out = Vec::new();
        let mut next = from;
        loop {
            let chunk = meta.raft_scan(ENTRY, &entry_key(next), 256)?;
            let full = chunk.len() == 256;
            for (_, v) in chunk {
                let e = StoredEntry::decode(&v)?.0;
                if to.is_some_and(|to| e.log_id.index >= to) {
                    return Ok(out);
                }
                next = e.log_id.index + 1;
                out.push(e);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    fn purged(meta: &Meta) -> Result<Option<LogId<NodeId>>, MetaError> {
        meta.raft_get(PURGED)?
            .map(|v| StoredPurged::decode(&v).map(|p| p.0))
            .transpose()
    }

    /// The keys of the entries from `from` (included) to `to` (excluded, or the end).
    fn delete_entries(
        meta: &Meta,
        b: &mut Batch,
        from: u64,
        to: Option<u64>,
    ) -> Result<(), MetaError> {
        let mut next = from;
        loop {
            let chunk = meta.raft_scan(ENTRY, &entry_key(next), 1024)?;
            let full = chunk.len() == 1024;
            for (k, _) in chunk {
                let Some(index) = k.get(1..9).and_then(|i| <[u8; 8]>::try_from(i).ok()) else {
                    continue;
                };
                let index = u64::from_be_bytes(index);
                if to.is_some_and(|to| index >= to) {
                    return Ok(());
                }
                next = index + 1;
                b.raft_delete(k);
            }
            if !full {
                return Ok(());
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let from = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(x) => Some(x.saturating_add(1)),
            Bound::Excluded(x) => Some(*x),
            Bound::Unbounded => None,
        };
        let meta = self.meta.clone();
        blocking(move || Self::entries(&meta, from, to).map_err(|e| read_err(&e))).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let meta = self.meta.clone();
        blocking(move || {
            let purged = Self::purged(&meta).map_err(|e| read_err(&e))?;
            let from = purged.map_or(0, |p| p.index + 1);
            // The log is bounded by snapshots (openraft purges behind them): read to its end.
            let last = Self::entries(&meta, from, None)
                .map_err(|e| read_err(&e))?
                .last()
                .map(|e| e.log_id);
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last.or(purged),
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let meta = self.meta.clone();
        let vote = *vote;
        blocking(move || {
            let mut b = Batch::default();
            let v = StoredVote(vote)
                .encode()
                .map_err(|e| StorageIOError::write_vote(&e))?;
            b.raft_put(VOTE.to_vec(), v);
            meta.raft_write(b, true)
                .map_err(|e| StorageIOError::write_vote(&e).into())
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let meta = self.meta.clone();
        blocking(move || {
            let v = meta
                .raft_get(VOTE)
                .map_err(|e| StorageIOError::read_vote(&e))?;
            v.map(|v| StoredVote::decode(&v).map(|s| s.0))
                .transpose()
                .map_err(|e| StorageIOError::read_vote(&e).into())
        })
        .await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut b = Batch::default();
        for e in entries {
            let key = entry_key(e.log_id.index);
            b.raft_put(key, StoredEntry(e).encode().map_err(|e| write_err(&e))?);
        }
        let meta = self.meta.clone();
        let written = blocking(move || meta.raft_write(b, true).map_err(|e| write_err(&e))).await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let meta = self.meta.clone();
        blocking(move || {
            let mut b = Batch::default();
            Self::delete_entries(&meta, &mut b, log_id.index, None).map_err(|e| write_err(&e))?;
            meta.raft_write(b, true).map_err(|e| write_err(&e))
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let meta = self.meta.clone();
        blocking(move || {
            // The purge point first (in the same batch): entries at or before it are
            // never read again, so a crash in between leaves nothing that matters.
            let mut b = Batch::default();
            let v = StoredPurged(log_id).encode().map_err(|e| write_err(&e))?;
            b.raft_put(PURGED.to_vec(), v);
            Self::delete_entries(&meta, &mut b, 0, Some(log_id.index + 1))
                .map_err(|e| write_err(&e))?;
            meta.raft_write(b, false).map_err(|e| write_err(&e))
        })
        .await
    }
}
