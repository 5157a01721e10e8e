//! Metadata agreed through Raft: openraft 0.9 (storage v2) over the node's metadata
//! store. The only module that imports openraft (`scripts/check-layers`).
//!
//! - [`LogStore`]: the Raft log, vote and purge point, in the node-local `raft` family
//!   (appends fsynced before openraft is told; `sites.md` §3.1 "Storage").
//! - [`StateMachine`]: the node's metadata; every entry is a [`Stamped`] command applied
//!   by [`command::apply`](crate::command::apply), the same function a single node runs, in
//!   log order, a group of entries staged and written as one batch, each entry's effects
//!   with the applied log id (nothing applied twice after a crash). Snapshots carry every
//!   replicated family ([`crate::meta::Cf::replicated`]).
//!
//! Node ids: a node's id is 8 random bytes, written as 16 hex digits in its certificate
//! and key folder; as a Raft [`NodeId`] it is those bytes as a big-endian `u64`
//! ([`raft_id`]).

// openraft's `StorageError` is 224 bytes and every storage method of its traits returns
// it: boxing it here would only be unboxed again at the trait boundary.
#![allow(clippy::result_large_err)]

mod group;
mod log;
pub mod network;
mod rounds;
mod state;
#[cfg(test)]
mod tests;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub use group::{ConsensusError, Group, GroupStatus, LEADERLESS_GRACE};
pub use log::LogStore;
pub use state::StateMachine;
#[cfg(test)]
pub(crate) use {
    log::{StoredEntry, StoredPurged, StoredVote},
    state::{AppliedState, SnapshotRecords},
};

use crate::command::{CommandError, CommandLog, LocalLog, MetaCommand, Outcome, Stamped};
use crate::meta::{MetaError, Record};

/// Runs `f` on a blocking thread (the metadata store's reads and writes block), for the
/// storage traits' async methods; a task that panicked is a storage error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, openraft::StorageError<NodeId>> + Send + 'static,
) -> Result<T, openraft::StorageError<NodeId>> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        openraft::StorageError::from(openraft::StorageIOError::<NodeId>::write(
            &MetaError::Task {
                reason: e.to_string(),
            },
        ))
    })?
}

/// A node's id in Raft: its 8-byte id as a big-endian integer.
pub type NodeId = u64;

/// A node's address as Raft keeps it in the membership (its node listener, `host:port`).
pub type RaftNode = openraft::BasicNode;

/// What a Raft log entry carries: one metadata command, encoded as its record
/// ([`Stamped`]'s format byte and postcard body), so that the log is read back by later
/// releases as every other record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal(pub Vec<u8>);

impl Proposal {
    /// `c`, encoded.
    ///
    /// # Errors
    /// [`MetaError::Encode`].
    pub fn of(c: &Stamped) -> Result<Self, MetaError> {
        c.encode().map(Proposal)
    }

    /// The command.
    ///
    /// # Errors
    /// [`MetaError::Decode`] or [`MetaError::UnknownFormat`] (a command of a later release).
    pub fn command(&self) -> Result<Stamped, MetaError> {
        Stamped::decode(&self.0)
    }
}

/// What applying an entry answered, on the node that applied it: the command's outcome
/// or refusal (`None` for a blank or membership entry). Never sent: the answer goes to the
/// proposer on its own node, so it is not serialised (openraft's bound asks for serde;
/// the wire form is empty).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Applied {
    /// The index of the entry in the log.
    #[serde(skip)]
    pub index: u64,
    /// The answer.
    #[serde(skip)]
    pub answer: Option<Result<Outcome, CommandError>>,
}

openraft::declare_raft_types!(
    /// Stele's Raft types: commands as [`Proposal`]s, answers as [`Applied`], nodes by
    /// [`NodeId`] with their node-listener address.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = RaftNode,
);

/// Whether the group agrees on `cmd` (every command but replication changes,
/// [`RaftLog`]).
pub fn replicated(cmd: &MetaCommand) -> bool {
    !matches!(cmd, MetaCommand::Replication(_))
}

/// A node id ([`NodeId`]) from its 16 hex digits; `None` for anything else.
pub fn raft_id(node_id: &str) -> Option<NodeId> {
    if node_id.len() != 16
        || !node_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    u64::from_str_radix(node_id, 16).ok()
}

/// The 16 hex digits of a Raft node id ([`raft_id`]'s inverse).
pub fn node_name(id: NodeId) -> String {
    format!("{id:016x}")
}

/// How long a proposal waits to be committed and applied before its caller is answered
/// [`CommandError::Unavailable`] (the entry may still commit later: the outcome is then
/// unknown to the caller, as with any timed-out write).
pub const PROPOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The command log of a node in a Raft group (`crate::command::CommandLog`).
///
/// Every command goes through the group ([`Group::submit`]: proposed on the leader,
/// forwarded to it from a follower) — identity changes too, their secrets sealed under
/// the cluster's identity key every member holds — but replication changes, which a
/// member refuses (ARCHITECTURE.md, "Metadata through Raft").
///
/// Called on a blocking thread (as every proposal is), which waits for the group.
#[derive(Debug)]
pub struct RaftLog {
    group: Group,
    local: LocalLog,
    runtime: tokio::runtime::Handle,
}

impl RaftLog {
    /// Through `group` (run by `runtime`), the rest through `local`.
    pub fn new(group: Group, local: LocalLog, runtime: tokio::runtime::Handle) -> Self {
        Self {
            group,
            local,
            runtime,
        }
    }
}

impl RaftLog {
    /// Runs `f` to its end on this thread: a blocking thread, as every caller should be;
    /// on a worker of a multi-threaded runtime, the worker's other tasks are moved off
    /// first (`block_in_place`) rather than the runtime panicking.
    fn wait<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        crate::runtime::wait(&self.runtime, f)
    }
}

impl CommandLog for RaftLog {
    fn propose(&self, c: &Stamped) -> Result<Outcome, CommandError> {
        if matches!(c.cmd, MetaCommand::Replication(_)) {
            // Its rules would be this node's alone, while the writes they decide on (a
            // replica bucket refuses a client's) are applied by every node: replicas
            // would part.
            let refused = crate::replication::ReplicationError::ClusterMember.into();
            self.local.note_refusal(c, &refused);
            return Err(refused);
        }
        if !replicated(&c.cmd) {
            return self.local.propose(c);
        }
        let p = Proposal::of(c)?;
        // Bounded: a leader cut off from its majority keeps leading until it hears a
        // later term, and would hold the caller forever.
        let proposed = self.wait(async {
            tokio::time::timeout(PROPOSE_TIMEOUT, self.group.submit(p, PROPOSE_TIMEOUT)).await
        });
        let proposed = proposed.unwrap_or_else(|_| {
            Err(ConsensusError::Raft {
                op: "client write",
                message: format!("not committed within {PROPOSE_TIMEOUT:?}"),
            })
        });
        let answer = match proposed {
            Ok(Applied {
                answer: Some(a), ..
            }) => a,
            Ok(Applied { answer: None, .. }) => Err(CommandError::UnexpectedOutcome {
                outcome: "an entry applied without an answer".into(),
            }),
            Err(e) => Err(CommandError::Unavailable {
                reason: e.to_string(),
            }),
        };
        if let Err(e) = &answer {
            self.local.note_refusal(c, e);
        }
        answer
    }

    fn has_barrier(&self) -> bool {
        true
    }

    fn holds_lease(&self) -> bool {
        self.group.holds_lease()
    }

    fn set_electable(&self, electable: bool) {
        self.group.set_electable(electable);
    }

    fn barrier(&self) -> Result<(), CommandError> {
        let done = self.wait(async {
            tokio::time::timeout(PROPOSE_TIMEOUT, self.group.read_barrier(PROPOSE_TIMEOUT)).await
        });
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CommandError::Unavailable {
                reason: e.to_string(),
            }),
            Err(_) => Err(CommandError::Unavailable {
                reason: format!("no read point within {PROPOSE_TIMEOUT:?}"),
            }),
        }
    }
}
