//! Raft's messages between nodes: openraft's network traits over a [`Transport`] that the
//! server provides (HTTP/2 over mutual TLS on the node listener). The core sends and
//! receives bytes only; a message is a format byte and its postcard body.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, RaftNode, TypeConfig};

/// The format byte of every Raft message this release sends (requests and answers):
/// postcard of openraft 0.9's serde form. A message of another format is refused, never
/// guessed at.
pub const MESSAGE_FORMAT: u8 = 1;

/// The Raft calls between nodes, each one path on the node listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftCall {
    /// AppendEntries (and heartbeats).
    Append,
    /// RequestVote.
    Vote,
    /// InstallSnapshot (one chunk).
    Snapshot,
    /// A command a follower forwards to the leader ([`super::Proposal`]); the leader
    /// answers the log index it was committed at ([`Forwarded`]), and the follower takes
    /// the command's answer from applying that entry itself.
    Propose,
    /// A follower's read barrier: the leader confirms it still leads (a heartbeat round
    /// with a majority) and answers the index every read must wait for ([`ReadIndex`]).
    ReadIndex,
    /// A change of the group's members a follower forwards to the leader
    /// ([`MemberChange`]); the leader answers [`Forwarded`] (0 for done).
    Members,
}

/// A change of the group's members, forwarded to the leader.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemberChange {
    /// Add node `0`, reachable at `1`, as a voter (learner, catch up, voter).
    AddVoter(super::NodeId, String),
    /// Remove node `0`.
    Remove(super::NodeId),
}

/// The leader's answer to a read barrier: the index of the last entry committed when
/// leadership was confirmed (`None` for an empty log), or why not.
pub type ReadIndex = Result<Option<u64>, String>;

/// The leader's answer to a forwarded command: the index of the entry once committed and
/// applied on the leader, or why it was not (this node does not lead any more, the
/// majority is out of reach).
pub type Forwarded = Result<u64, String>;

impl RaftCall {
    /// Every call.
    pub const ALL: [RaftCall; 6] = [
        RaftCall::Append,
        RaftCall::Vote,
        RaftCall::Snapshot,
        RaftCall::Propose,
        RaftCall::ReadIndex,
        RaftCall::Members,
    ];

    /// Its name in the path (`/v1/raft/{name}`).
    pub fn name(self) -> &'static str {
        match self {
            RaftCall::Append => "append",
            RaftCall::Vote => "vote",
            RaftCall::Snapshot => "snapshot",
            RaftCall::Propose => "propose",
            RaftCall::ReadIndex => "read-index",
            RaftCall::Members => "members",
        }
    }

    /// The call named `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A message that could not be sent or understood.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached or answered with a failure.
    #[error("node {addr}: {reason}")]
    Unreachable {
        /// The peer's node-listener address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The bytes are not a message of [`MESSAGE_FORMAT`].
    #[error("a Raft message that does not decode: {reason}")]
    Malformed {
        /// The decoder's message.
        reason: String,
    },
}

/// How messages reach another node: one request, one answer, as bytes.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` as `call` to the node listening at `addr` and returns its answer's
    /// body, or fails after `timeout`.
    fn call(
        &self,
        addr: String,
        call: RaftCall,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;
}

/// `v` as a message.
///
/// # Errors
/// [`TransportError::Malformed`] when it does not serialise.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, TransportError> {
    let mut out = vec![MESSAGE_FORMAT];
    out.extend(
        postcard::to_stdvec(v).map_err(|e| TransportError::Malformed {
            reason: e.to_string(),
        })?,
    );
    Ok(out)
}

/// The message in `bytes`.
///
/// # Errors
/// [`TransportError::Malformed`] for another format or bytes that do not decode.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TransportError> {
    match bytes.split_first() {
        Some((&MESSAGE_FORMAT, body)) => {
            postcard::from_bytes(body).map_err(|e| TransportError::Malformed {
                reason: e.to_string(),
            })
        }
        Some((f, _)) => Err(TransportError::Malformed {
            reason: format!("message format {f}, this release reads {MESSAGE_FORMAT}"),
        }),
        None => Err(TransportError::Malformed {
            reason: "an empty message".into(),
        }),
    }
}

/// Openraft's network factory over a [`Transport`].
#[derive(Clone)]
pub struct Network {
    transport: Arc<dyn Transport>,
}

impl Network {
    /// Messages through `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }
}

/// Messages to one node.
pub struct Connection {
    transport: Arc<dyn Transport>,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &RaftNode) -> Connection {
        Connection {
            transport: self.transport.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl Connection {
    async fn send<Req, Resp, E>(
        &self,
        call: RaftCall,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, RaftNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let answer = self
            .transport
            .call(self.addr.clone(), call, body, option.hard_ttl())
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let answer: Result<Resp, RaftError<NodeId, E>> =
            decode(&answer).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        self.send(RaftCall::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, RaftNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(RaftCall::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, RaftNode, RaftError<NodeId>>> {
        self.send(RaftCall::Vote, &rpc, &option).await
    }
}
