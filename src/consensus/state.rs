//! The Raft state machine: the node's metadata store, changed only by applying entries.
//!
//! The applied state (last applied log id and membership) lives in the node-local `raft`
//! family under `applied`, written in every entry's batch, so an entry's effects and the
//! record that it was applied reach the engine together. A snapshot is every replicated
//! family's records at the applied state, read under the write guard and made durable
//! before it is handed out (openraft purges the log behind a snapshot). None is kept:
//! the current snapshot is built when asked for, from the state itself, with an id named
//! after its last log id, so building twice at one state gives the same snapshot.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::{Applied, NodeId, RaftNode, TypeConfig, blocking};
use crate::command::{self, CommandError};
use crate::meta::{Batch, FamilyRecord, Meta, MetaError, Record};

const APPLIED: &[u8] = b"applied";

/// The last applied log id and the membership it holds, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    pub last: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, RaftNode>,
}

impl Record for AppliedState {
    const NAME: &'static str = "raft-applied";
    const FORMAT: u8 = 1;
}

/// A snapshot's data: every record of every replicated family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotRecords {
    pub records: Vec<FamilyRecord>,
}

impl Record for SnapshotRecords {
    const NAME: &'static str = "raft-snapshot";
    const FORMAT: u8 = 1;
}

/// Why applying or snapshotting stopped: openraft's storage error, made from ours.
struct Failure(StorageError<NodeId>);

impl From<MetaError> for Failure {
    fn from(e: MetaError) -> Self {
        Failure(StorageIOError::write_state_machine(&e).into())
    }
}

fn applied_state(meta: &Meta) -> Result<AppliedState, MetaError> {
    meta.raft_get(APPLIED)?
        .map(|v| AppliedState::decode(&v))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn snapshot_id(last: Option<LogId<NodeId>>) -> String {
    match last {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "empty".to_owned(),
    }
}

/// The answer of a command this node forwarded to the leader: the node applies the entry
/// itself and hands its answer to the proposer waiting here.
type Answer = Result<command::Outcome, CommandError>;

/// The proposers on this node waiting for commands they forwarded to the leader, by the
/// SHA-256 of the command's bytes (two waiting for the same bytes are answered in turn).
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    next: std::sync::atomic::AtomicU64,
    waiting: std::sync::Mutex<WaitingList>,
}

type Sender = tokio::sync::oneshot::Sender<Answer>;

/// The senders waiting, by the SHA-256 of their command's bytes, each with its token.
type WaitingList = std::collections::HashMap<[u8; 32], Vec<(u64, Sender)>>;

/// A proposer's place among the [`Waiters`]; leaving it (dropped) gives the place up.
pub(crate) struct Waiting {
    waiters: Arc<Waiters>,
    key: [u8; 32],
    token: u64,
    answer: Option<tokio::sync::oneshot::Receiver<Answer>>,
}

impl Waiting {
    /// The answer, once the entry is applied here; `None` if this node stopped first.
    pub(crate) async fn answer(&mut self) -> Option<Answer> {
        self.answer.take()?.await.ok()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut w = self.waiters.lock();
        if let Some(list) = w.get_mut(&self.key) {
            list.retain(|(t, _)| *t != self.token);
            if list.is_empty() {
                w.remove(&self.key);
            }
        }
    }
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitingList> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the command whose encoded bytes are `bytes`.
    pub(crate) fn wait(self: &Arc<Self>, bytes: &[u8]) -> Waiting {
        let key = crate::crypto::sha256(bytes);
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.lock().entry(key).or_default().push((token, tx));
        Waiting {
            waiters: self.clone(),
            key,
            token,
            answer: Some(rx),
        }
    }

    /// Hands `answer` to the first proposer waiting for `bytes`; gives it back when none
    /// waits.
    fn answer(&self, bytes: &[u8], answer: Answer) -> Option<Answer> {
        let mut w = self.lock();
        if w.is_empty() {
            return Some(answer);
        }
        let key = crate::crypto::sha256(bytes);
        let Some(list) = w.get_mut(&key) else {
            return Some(answer);
        };
        let (_, tx) = list.remove(0);
        if list.is_empty() {
            w.remove(&key);
        }
        // A proposer that stopped waiting meanwhile gets nothing.
        let _ = tx.send(answer);
        None
    }
}

/// Applies `entries` in order, as one staged group (see the module).
fn apply_entries(
    meta: &Meta,
    waiters: &Waiters,
    entries: Vec<Entry<TypeConfig>>,
) -> Result<Vec<Applied>, Failure> {
    meta.apply_staged(|m, stage| {
        let mut state = applied_state(m)?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let id = e.log_id;
            let (mut b, answer) = match e.payload {
                EntryPayload::Blank => (Batch::default(), None),
                EntryPayload::Membership(members) => {
                    state.membership = StoredMembership::new(Some(id), members);
                    (Batch::default(), None)
                }
                EntryPayload::Normal(p) => {
                    let c = p
                        .command()
                        .map_err(|err| Failure(StorageIOError::apply(id, &err).into()))?;
                    match command::apply(m, &c) {
                        Ok((b, outcome)) => (b, Some((p, Ok(outcome)))),
                        Err(refused) if refused.is_decision() => {
                            (Batch::default(), Some((p, Err(refused))))
                        }
                        // Not a decision: every replica must apply the entry alike, so
                        // none goes past it.
                        Err(CommandError::Meta(err)) => {
                            return Err(Failure(StorageIOError::apply(id, &err).into()));
                        }
                        Err(err) => {
                            return Err(Failure(
                                StorageIOError::apply(id, openraft::AnyError::error(err)).into(),
                            ));
                        }
                    }
                }
            };
            state.last = Some(id);
            b.raft_put(APPLIED.to_vec(), state.encode()?);
            stage(b)?;
            // Handed over once staged: a proposer on this node reads its own write.
            let answer = answer.and_then(|(p, a)| waiters.answer(&p.0, a));
            out.push(Applied {
                index: id.index,
                answer,
            });
        }
        Ok(out)
    })
}

/// The snapshot of `meta`'s state now; `None` before anything was applied.
fn snapshot_now(meta: &Meta) -> Result<Option<Snapshot<TypeConfig>>, MetaError> {
    let (state, records) =
        meta.read_guarded(|m| Ok::<_, MetaError>((applied_state(m)?, m.replicated_records()?)))?;
    if state.last.is_none() && state.membership == StoredMembership::default() {
        return Ok(None);
    }
    // Durable before openraft may purge the log behind it.
    meta.sync_written()?;
    let data = SnapshotRecords { records }.encode()?;
    Ok(Some(Snapshot {
        meta: SnapshotMeta {
            last_log_id: state.last,
            last_membership: state.membership,
            snapshot_id: snapshot_id(state.last),
        },
        snapshot: Box::new(Cursor::new(data)),
    }))
}

/// The Raft state machine over a node's metadata store ([`RaftStateMachine`]).
#[derive(Debug, Clone)]
pub struct StateMachine {
    meta: Arc<Meta>,
    waiters: Arc<Waiters>,
}

impl StateMachine {
    /// The state machine that `meta` holds.
    pub fn new(meta: Arc<Meta>) -> Self {
        Self::answering(meta, Arc::default())
    }

    /// The same, handing the answers of forwarded commands to `waiters`.
    pub(crate) fn answering(meta: Arc<Meta>, waiters: Arc<Waiters>) -> Self {
        Self { meta, waiters }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let meta = self.meta.clone();
        blocking(move || {
            let snap = snapshot_now(&meta).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
            // Openraft builds only once something was applied; an empty state still
            // makes a snapshot (of nothing) rather than an error.
            Ok(snap.unwrap_or_else(|| Snapshot {
                meta: SnapshotMeta {
                    last_log_id: None,
                    last_membership: StoredMembership::default(),
                    snapshot_id: snapshot_id(None),
                },
                snapshot: Box::new(Cursor::new(
                    SnapshotRecords {
                        records: Vec::new(),
                    }
                    .encode()
                    .unwrap_or_default(),
                )),
            }))
        })
        .await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, RaftNode>), StorageError<NodeId>>
    {
        let meta = self.meta.clone();
        blocking(move || {
            applied_state(&meta)
                .map(|s| (s.last, s.membership))
                .map_err(|e| StorageIOError::read_state_machine(&e).into())
        })
        .await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let (meta, waiters) = (self.meta.clone(), self.waiters.clone());
        blocking(move || apply_entries(&meta, &waiters, entries).map_err(|f| f.0)).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        snap: &SnapshotMeta<NodeId, RaftNode>,
        data: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let meta = self.meta.clone();
        let snap = snap.clone();
        blocking(move || {
            let failed = |e: &MetaError| StorageIOError::read_snapshot(Some(snap.signature()), e);
            let records = SnapshotRecords::decode(data.get_ref()).map_err(|e| failed(&e))?;
            let state = AppliedState {
                last: snap.last_log_id,
                membership: snap.last_membership.clone(),
            };
            let mut extra = Batch::default();
            extra.raft_put(APPLIED.to_vec(), state.encode().map_err(|e| failed(&e))?);
            meta.replace_replicated(records.records, extra)
                .map_err(|e| failed(&e).into())
        })
        .await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let meta = self.meta.clone();
        blocking(move || {
            snapshot_now(&meta).map_err(|e| StorageIOError::read_snapshot(None, &e).into())
        })
        .await
    }
}
