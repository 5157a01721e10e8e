//! One node's member of the cluster's Raft group: openraft's `Raft` over the node's
//! [`LogStore`] and [`StateMachine`], messages through the server's [`Transport`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, Config, Raft, ServerState};

use super::network::{
    Forwarded, MemberChange, Network, RaftCall, ReadIndex, Transport, TransportError, decode,
    encode,
};
use super::state::Waiters;
use super::{Applied, LogStore, NodeId, Proposal, RaftNode, StateMachine, TypeConfig, node_name};
use crate::meta::Meta;

/// How long a follower's read-index call to the leader may take within a barrier round:
/// about the election timeout, after which a new leader may lead.
pub const READ_INDEX_CALL: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the group could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// Openraft refused or failed (`op` names the call).
    #[error("raft {op}: {message}")]
    Raft {
        /// The call.
        op: &'static str,
        /// Openraft's message.
        message: String,
    },
    /// This node does not lead the group; `leader` does, when one is known.
    #[error(
        "this node does not lead the cluster (leader: {}{})",
        leader.as_deref().unwrap_or("none known"),
        leader_addr.as_deref().map(|a| format!(", node listener {a}")).unwrap_or_default()
    )]
    NotLeader {
        /// The leader's node id, when known.
        leader: Option<String>,
        /// Its node-listener address, when known.
        leader_addr: Option<String>,
    },
    /// A message that could not be sent, or does not decode or encode.
    #[error(transparent)]
    Message(#[from] TransportError),
    /// The read-barrier round this call shared failed (`consensus/rounds.rs`): its error,
    /// as it read.
    #[error("{message}")]
    Shared {
        /// The round's error.
        message: String,
    },
}

/// Timing of the group, in milliseconds: a leader heartbeats every 250 ms, a follower
/// that hears none for 1 to 2 s stands for election (so a new leader within seconds of
/// losing one, and round trips of tens of milliseconds between sites tolerated).
/// The shortest time a follower waits for a heartbeat before it stands for election.
const ELECTION_TIMEOUT_MIN_MS: u64 = 1000;
/// How often a leader sends heartbeats.
const HEARTBEAT_MS: u64 = 250;

fn config() -> Result<Arc<Config>, ConsensusError> {
    let c = Config {
        cluster_name: "stele".into(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: 2000,
        // A snapshot is the whole namespace, read in one piece (not streamed yet): made
        // every 50,000 entries, with the last 10,000 kept behind it so that a node back
        // from a short outage catches up from the log. `cluster init` purges the whole
        // log at once ([`Group::compact`]: an explicit purge keeps nothing), so joiners
        // install the first node's state.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(50_000),
        max_in_snapshot_log_to_keep: 10_000,
        // Installing waits for the metadata write that replaces the records.
        install_snapshot_timeout: 10_000,
        ..Config::default()
    };
    c.validate()
        .map(Arc::new)
        .map_err(|e| ConsensusError::Raft {
            op: "config",
            message: e.to_string(),
        })
}

fn raft_err<E: std::fmt::Display>(op: &'static str) -> impl Fn(E) -> ConsensusError {
    move |e| ConsensusError::Raft {
        op,
        message: e.to_string(),
    }
}

/// What this node knows of the group (`GET /v1/cluster`, `stelectl cluster status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    /// This node's id (16 hex digits).
    pub node: String,
    /// `leader`, `follower`, `candidate` or `learner` (`shutdown` once stopped).
    pub state: &'static str,
    /// The leader this node follows, if it knows one.
    pub leader: Option<String>,
    /// The leader's node-listener address, as the membership records it.
    pub leader_addr: Option<String>,
    /// The current term.
    pub term: u64,
    /// The index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// The index of the last entry this node applied.
    pub last_applied: Option<u64>,
    /// The voters, by node id.
    pub voters: Vec<String>,
    /// The learners, by node id.
    pub learners: Vec<String>,
    /// Whether this node holds the cluster's lease ([`Group::holds_lease`]).
    pub lease: bool,
    /// On the leader, each other member's replication: its node id and the index of the
    /// last entry it holds as the leader knows it (`None`: nothing matched yet). Empty on
    /// the others.
    pub matched: Vec<(String, Option<u64>)>,
}

/// Whether openraft's metrics `m` say this node holds the lease: it leads and a majority
/// acknowledged it less than half the shortest election timeout ago. The figure is as of
/// openraft's last metrics report, made at least every tick (1.5 heartbeats, 375 ms) when
/// its core loop is not busy: half the timeout leaves that much and more before another
/// node can have been elected.
fn lease_of(m: &openraft::RaftMetrics<NodeId, RaftNode>) -> bool {
    m.state == ServerState::Leader
        && m.millis_since_quorum_ack
            .is_some_and(|ms| ms < ELECTION_TIMEOUT_MIN_MS / 2)
}

/// This node's member of the group.
#[derive(Clone)]
pub struct Group {
    raft: Raft<TypeConfig>,
    id: NodeId,
    transport: Arc<dyn Transport>,
    waiters: Arc<Waiters>,
    /// This node's read-index rounds ([`Group::read_barrier`]): the index to apply (none
    /// on the leader, which applied it already), shared by concurrent barriers.
    barriers: Arc<super::rounds::Rounds<Option<u64>>>,
    /// The leader's rounds for followers' [`RaftCall::ReadIndex`]: one confirmation of
    /// its lead answers every call that arrived before it began.
    read_indexes: Arc<super::rounds::Rounds<Option<u64>>>,
    /// This node does not stand for leadership by preference ([`Group::set_electable`]).
    unelectable: Arc<std::sync::atomic::AtomicBool>,
    /// When a leader's append (a heartbeat included) last reached this node, or it led.
    leader_contact: Arc<std::sync::Mutex<std::time::Instant>>,
}

/// How long a node that prefers not to lead waits without a leader's word before it
/// stands for election after all: its log may be the only complete one, and a group
/// without a leader takes no write.
pub const LEADERLESS_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("id", &node_name(self.id))
            .finish()
    }
}

impl Group {
    /// Starts this node's member (`id`) over `meta`, with what its log holds (nothing on
    /// a new node: it waits to be initialised or added).
    ///
    /// # Errors
    /// [`ConsensusError::Raft`] when openraft cannot start (its storage failed).
    pub async fn start(
        id: NodeId,
        meta: Arc<Meta>,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, ConsensusError> {
        let waiters = Arc::<Waiters>::default();
        let raft = Raft::new(
            id,
            config()?,
            Network::new(transport.clone()),
            LogStore::new(meta.clone()),
            StateMachine::answering(meta, waiters.clone()),
        )
        .await
        .map_err(raft_err("start"))?;
        Ok(Self {
            raft,
            id,
            transport,
            waiters,
            barriers: Arc::default(),
            read_indexes: Arc::default(),
            unelectable: Arc::default(),
            leader_contact: Arc::new(std::sync::Mutex::new(std::time::Instant::now())),
        })
    }

    /// Makes this node the group's only voter, reachable at `addr` (`cluster init`).
    /// Idempotent: a group already initialised is left as it is.
    ///
    /// # Errors
    /// [`ConsensusError::Raft`].
    pub async fn initialize(&self, addr: String) -> Result<(), ConsensusError> {
        let members = BTreeMap::from([(self.id, RaftNode { addr })]);
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(raft_err("initialize")(e)),
        }
    }

    /// Whether the group has a membership here (initialised, or this node was added).
    ///
    /// # Errors
    /// [`ConsensusError::Raft`] when the group stopped.
    pub async fn is_initialized(&self) -> Result<bool, ConsensusError> {
        self.raft
            .is_initialized()
            .await
            .map_err(raft_err("is initialized"))
    }

    /// Waits until this node leads (after [`Group::initialize`]), at most `timeout`.
    ///
    /// # Errors
    /// [`ConsensusError::Raft`] when it does not lead by then.
    pub async fn until_leader(&self, timeout: std::time::Duration) -> Result<(), ConsensusError> {
        self.raft
            .wait(Some(timeout))
            .state(ServerState::Leader, "leading")
            .await
            .map(|_| ())
            .map_err(raft_err("wait to lead"))
    }

    /// Snapshots the state machine now and drops the log up to the snapshot: a node
    /// added later starts from the snapshot, so it receives the state from before the
    /// group existed (`cluster init` turns a node's metadata into the group's first state).
    ///
    /// # Errors
    /// [`ConsensusError::Raft`].
    pub async fn compact(&self, timeout: std::time::Duration) -> Result<(), ConsensusError> {
        // Everything in the log first (a new leader's blank entry included).
        let last = self.raft.metrics().borrow().last_log_index;
        let m = self
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(last, "applied")
            .await
            .map_err(raft_err("wait to apply"))?;
        let Some(applied) = m.last_applied else {
            return Ok(());
        };
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(raft_err("snapshot"))?;
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= applied.index),
                "snapshot",
            )
            .await
            .map_err(raft_err("wait for the snapshot"))?;
        self.raft
            .trigger()
            .purge_log(applied.index)
            .await
            .map_err(raft_err("purge"))
    }

    /// Adds node `id`, reachable at `addr`, as a learner, waits until it caught up, then
    /// makes it a voter (openraft's joint consensus). On a follower, forwarded to the
    /// leader ([`RaftCall::Members`]).
    ///
    /// # Errors
    /// [`ConsensusError::NotLeader`], or [`ConsensusError::Raft`].
    pub async fn add_voter(&self, id: NodeId, addr: String) -> Result<(), ConsensusError> {
        match self
            .raft
            .add_learner(id, RaftNode { addr: addr.clone() }, true)
            .await
            .map_err(|e| self.write_error("add learner", e))
        {
            Ok(_) => {}
            // Made on the leader (the node that admitted the joiner may follow).
            Err(ConsensusError::NotLeader {
                leader_addr: Some(leader),
                ..
            }) => {
                return self
                    .forward_members(leader, MemberChange::AddVoter(id, addr))
                    .await;
            }
            Err(e) => return Err(e),
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.write_error("change membership", e))?;
        Ok(())
    }

    /// Removes node `id` from the group (voter or learner); on a follower, forwarded to
    /// the leader.
    ///
    /// # Errors
    /// [`ConsensusError::NotLeader`], or [`ConsensusError::Raft`].
    pub async fn remove(&self, id: NodeId) -> Result<(), ConsensusError> {
        let status = self.status();
        if status.state != "leader"
            && let Some(leader) = status.leader_addr
        {
            return self.forward_members(leader, MemberChange::Remove(id)).await;
        }
        let voters: BTreeSet<NodeId> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .voter_ids()
            .collect();
        if voters.contains(&id) {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.write_error("change membership", e))?;
        }
        self.raft
            .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.write_error("change membership", e))?;
        Ok(())
    }

    /// Appends `p` to the log and returns what applying it answered, once it is committed
    /// and applied here. Only on the leader.
    ///
    /// # Errors
    /// [`ConsensusError::NotLeader`], or [`ConsensusError::Raft`].
    pub async fn propose(&self, p: Proposal) -> Result<Applied, ConsensusError> {
        self.raft
            .client_write(p)
            .await
            .map(|r| r.data)
            .map_err(|e| self.write_error("client write", e))
    }

    /// Has `p` agreed and applied, from any member: proposed here when this node leads,
    /// else forwarded to the leader ([`RaftCall::Propose`]), the answer then taken from
    /// applying the entry here (so the proposer also reads its own write here). Waits
    /// for as long as the caller does (bound it).
    ///
    /// # Errors
    /// [`ConsensusError::NotLeader`] when no leader is known; [`ConsensusError::Raft`]
    /// when the leader could not be reached or did not commit; [`ConsensusError::Message`].
    pub async fn submit(
        &self,
        p: Proposal,
        timeout: std::time::Duration,
    ) -> Result<Applied, ConsensusError> {
        let bytes = p.0.clone();
        let leader_addr = match self.propose(p).await {
            Err(ConsensusError::NotLeader {
                leader_addr: Some(addr),
                ..
            }) => addr,
            other => return other,
        };
        // Waiting before the leader is asked: the entry may reach this node first.
        let mut waiting = self.waiters.wait(&bytes);
        let answer = self
            .transport
            .call(
                leader_addr.clone(),
                RaftCall::Propose,
                encode(&Proposal(bytes))?,
                timeout,
            )
            .await?;
        let index = decode::<Forwarded>(&answer)?.map_err(|message| ConsensusError::Raft {
            op: "forwarded write",
            message: format!("the leader at {leader_addr}: {message}"),
        })?;
        let answer = waiting.answer().await.ok_or_else(|| ConsensusError::Raft {
            op: "forwarded write",
            message: "this node stopped before applying the entry".into(),
        })?;
        Ok(Applied {
            index,
            answer: Some(answer),
        })
    }

    /// Returns once this node applied every entry committed before the call (a
    /// linearizable read point, Raft §6.4 "read index"): the leader confirms with a
    /// majority that it still leads; a follower asks the leader for that index
    /// ([`RaftCall::ReadIndex`]) and waits to apply it. A read made after it sees every
    /// write acknowledged before it, through any member. Waits at most `timeout` to apply.
    ///
    /// # Errors
    /// [`ConsensusError::NotLeader`] when no leader is known; [`ConsensusError::Raft`]
    /// when leadership could not be confirmed or the index was not applied in time.
    pub async fn read_barrier(&self, timeout: std::time::Duration) -> Result<(), ConsensusError> {
        let index = self
            .barriers
            .run(
                || self.read_index(timeout),
                |message| ConsensusError::Shared { message },
            )
            .await?;
        let Some(index) = index else {
            return Ok(());
        };
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read barrier")
            .await
            .map(|_| ())
            .map_err(raft_err("read barrier"))
    }

    /// One read-index round: the index the leader confirmed (this node's own read index
    /// on the leader, after a heartbeat to a majority), for the caller to apply outside the
    /// round. A follower's call to the leader is bounded by [`READ_INDEX_CALL`] (rounds
    /// run one at a time: a call to a leader that just died must not hold every read of
    /// this node for the whole `timeout`).
    async fn read_index(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Option<u64>, ConsensusError> {
        let leader_addr = match self.raft.get_read_log_id().await {
            Ok((read, _)) => return Ok(read.map(|l| l.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                match f.leader_node {
                    Some(n) => n.addr,
                    None => {
                        return Err(ConsensusError::NotLeader {
                            leader: f.leader_id.map(node_name),
                            leader_addr: None,
                        });
                    }
                }
            }
            Err(e) => return Err(raft_err("read barrier")(e)),
        };
        let answer = self
            .transport
            .call(
                leader_addr.clone(),
                RaftCall::ReadIndex,
                Vec::new(),
                timeout.min(READ_INDEX_CALL),
            )
            .await?;
        let index = decode::<ReadIndex>(&answer)?.map_err(|message| ConsensusError::Raft {
            op: "read barrier",
            message: format!("the leader at {leader_addr}: {message}"),
        })?;
        Ok(index)
    }

    async fn forward_members(
        &self,
        leader: String,
        change: MemberChange,
    ) -> Result<(), ConsensusError> {
        let answer = self
            .transport
            .call(
                leader.clone(),
                RaftCall::Members,
                encode(&change)?,
                std::time::Duration::from_secs(30),
            )
            .await?;
        decode::<Forwarded>(&answer)?
            .map(|_| ())
            .map_err(|message| ConsensusError::Raft {
                op: "forwarded membership change",
                message: format!("the leader at {leader}: {message}"),
            })
    }

    fn write_error(
        &self,
        op: &'static str,
        e: RaftError<NodeId, ClientWriteError<NodeId, RaftNode>>,
    ) -> ConsensusError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ConsensusError::NotLeader {
                    leader: f.leader_id.map(node_name),
                    leader_addr: f.leader_node.map(|n| n.addr),
                }
            }
            e => raft_err(op)(e),
        }
    }

    /// Answers a message another node sent (`call`, its bytes): the answer's bytes.
    ///
    /// # Errors
    /// [`ConsensusError::Message`] for bytes that do not decode.
    pub async fn handle(&self, call: RaftCall, body: &[u8]) -> Result<Vec<u8>, ConsensusError> {
        let answer = match call {
            RaftCall::Append => {
                let answered = self.raft.append_entries(decode(body)?).await;
                // A current leader's word (not a stale one's, answered with a higher vote).
                if !matches!(
                    answered,
                    Ok(openraft::raft::AppendEntriesResponse::HigherVote(_))
                ) {
                    *self
                        .leader_contact
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
                }
                encode(&answered)?
            }
            RaftCall::Vote => encode(&self.raft.vote(decode(body)?).await)?,
            RaftCall::Snapshot => encode(&self.raft.install_snapshot(decode(body)?).await)?,
            RaftCall::Propose => {
                let p: Proposal = decode(body)?;
                // Only what the group agrees on (`super::replicated`): a member may not
                // push a change every node would apply that it keeps to itself.
                let agreed = p.command().map(|c| super::replicated(&c.cmd));
                let forwarded: Forwarded = match agreed {
                    // A leader whose clock the others do not vouch for takes no forwarded
                    // write either: its log goes idle, it sends no heartbeat, and another
                    // node is elected (openraft 0.9 cannot hand the lead over).
                    Ok(true) if self.unelectable.load(std::sync::atomic::Ordering::SeqCst) => Err(
                        "this node's clock is not vouched for by the other members: it \
                             hands the lead over; try again"
                            .into(),
                    ),
                    Ok(true) => match self.propose(p).await {
                        Ok(applied) => Ok(applied.index),
                        Err(e) => Err(e.to_string()),
                    },
                    Ok(false) => Err("a command the group does not agree on".into()),
                    Err(e) => Err(e.to_string()),
                };
                encode(&forwarded)?
            }
            RaftCall::Members => {
                // Only the leader's own change: never forwarded again.
                let done: Forwarded = if self.status().state == "leader" {
                    match decode::<MemberChange>(body)? {
                        MemberChange::AddVoter(id, addr) => self.add_voter(id, addr).await,
                        MemberChange::Remove(id) => self.remove(id).await,
                    }
                    .map(|()| 0)
                    .map_err(|e| e.to_string())
                } else {
                    Err("this node does not lead the group".into())
                };
                encode(&done)?
            }
            RaftCall::ReadIndex => {
                let index: ReadIndex = self
                    .read_indexes
                    .run(
                        // The heartbeat round only: the follower applies the index itself
                        // (waiting for the leader's own apply here would hold the round).
                        || async {
                            self.raft
                                .get_read_log_id()
                                .await
                                .map(|(read, _)| read.map(|l| l.index))
                                .map_err(|e| e.to_string())
                        },
                        |m| m,
                    )
                    .await;
                encode(&index)?
            }
        };
        Ok(answer)
    }

    /// Whether this node leads and a majority acknowledged it within the shortest
    /// election timeout: no other node can have been elected since, so work that must run
    /// once per cluster may run here ([`crate::command::CommandLog::holds_lease`]).
    pub fn holds_lease(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        lease_of(&m)
    }

    /// Whether this node stands for election when its leader's lease runs out and, while
    /// it leads, sends heartbeats. `false` is a preference, looked at again at every call
    /// (the store calls it every refresh): a leader that stops its heartbeats is replaced
    /// by another node once it is idle (one with entries to replicate keeps leading,
    /// without the lease: `holds_lease` is the store's decision too); a follower stands
    /// for election only once no leader has reached it for [`LEADERLESS_GRACE`], since
    /// its log may be the only complete one (the others could not win without its vote)
    /// — a group without a leader takes no write at all.
    pub fn set_electable(&self, electable: bool) {
        use std::sync::atomic::Ordering;
        self.unelectable.store(!electable, Ordering::SeqCst);
        let m = self.raft.metrics().borrow().clone();
        let mut contact = self
            .leader_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if m.state == ServerState::Leader {
            *contact = std::time::Instant::now();
        }
        let leaderless = contact.elapsed() > LEADERLESS_GRACE;
        let rc = self.raft.runtime_config();
        rc.elect(electable || leaderless);
        rc.heartbeat(electable);
    }

    /// What this node knows of the group now.
    pub fn status(&self) -> GroupStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        GroupStatus {
            node: node_name(self.id),
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            leader: m.current_leader.map(node_name),
            leader_addr: m
                .current_leader
                .and_then(|l| membership.get_node(&l))
                .map(|n| n.addr.clone()),
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            voters: membership.voter_ids().map(node_name).collect(),
            learners: membership.learner_ids().map(node_name).collect(),
            lease: lease_of(&m),
            matched: m
                .replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != self.id)
                .map(|(id, log)| (node_name(*id), log.map(|l| l.index)))
                .collect(),
        }
    }

    /// The node-listener address the group knows `node` (16 hex digits) by, if it is a
    /// member of the group.
    pub fn address_of(&self, node: &str) -> Option<String> {
        let id = super::raft_id(node)?;
        let m = self.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    /// Stops this node's member (its tasks end; the log and state stay).
    ///
    /// # Errors
    /// [`ConsensusError::Raft`] when a task of openraft panicked.
    pub async fn shutdown(&self) -> Result<(), ConsensusError> {
        self.raft.shutdown().await.map_err(raft_err("shutdown"))
    }
}
