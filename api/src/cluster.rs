//! The cluster's membership (`/v1/cluster...`): its identity, join tokens, members.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// `GET /v1/cluster`, and the answer of `POST /v1/cluster/init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The cluster's id; `null` while this node is in none.
    pub cluster_id: Option<String>,
    /// SHA-256 of the cluster CA's certificate (DER), 64 hex digits: what a joining node
    /// pins (`--ca-fingerprint`).
    pub ca_fingerprint: Option<String>,
    /// This node's id in the cluster.
    pub node_id: Option<String>,
    /// The node-to-node listener (`--cluster-addr`), when this node serves one.
    pub rpc_addr: Option<String>,
    /// Whether this node's metadata holds the membership: the node that ran `cluster
    /// init`, and a node that joined once the Raft group's snapshot reached it (before
    /// that it lists no members). Tokens, admissions and removals go through the
    /// group's leader.
    pub membership_kept_here: bool,
    /// Every member, removed ones too, by id (empty where the membership is not kept).
    pub members: Vec<Member>,
    /// This node's view of the cluster's Raft group, while it is in one.
    #[serde(default)]
    pub raft: Option<RaftStatus>,
    /// Every disk this node places new shards on: its own, and in a cluster the other
    /// members' (as they reported them), with their state as this node sees it.
    #[serde(default)]
    pub disks: Vec<PlacementDisk>,
    /// How the layout stands for erasure coding across sites; absent from older servers.
    #[serde(default)]
    pub geo: Option<Geo>,
}

/// Erasure coding across the layout's sites, as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geo {
    /// The layout's sites, in name order.
    pub sites: Vec<String>,
    /// The node's profile `K+M` (buckets may set their own).
    pub profile: String,
    /// Shards of one object in each site under that profile.
    pub per_site: usize,
    /// Why that profile cannot survive losing a site here (two sites, or M below the
    /// shards per site); `null` when it can, or on one site.
    pub refusal: Option<String>,
    /// Sites none of whose disks this node reaches now.
    pub sites_down: Vec<String>,
}

/// A disk new shards may go to, as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementDisk {
    /// The disk's node-local id (`d0`).
    pub id: String,
    /// Its UUID (32 hex digits), once known.
    pub uuid: Option<String>,
    /// The node it belongs to (a member's id in a cluster).
    pub node: String,
    /// The site.
    pub site: String,
    /// `online`, `offline` (or its node unreachable) or `full`.
    pub state: String,
    /// Bytes free, when known.
    pub free_bytes: Option<u64>,
}

/// A node's view of the cluster's Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: String,
    /// The leader this node follows (its node id), if it knows one.
    pub leader: Option<String>,
    /// The leader's node-listener address, when known.
    #[serde(default)]
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
    /// Whether this node holds the cluster's lease: it leads and a majority acknowledged
    /// it within an election timeout. Once-per-cluster work (lifecycle, restore drills)
    /// runs here only. Absent (false) from servers before it.
    #[serde(default)]
    pub lease: bool,
    /// On the leader, how far behind it each member's log is. Empty on the others, and
    /// from servers before it.
    #[serde(default)]
    pub replication: Vec<MemberLag>,
}

/// A member's log as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLag {
    /// The member's node id.
    pub node: String,
    /// The index of the last entry it holds, as the leader knows it (`null`: none yet).
    pub matched: Option<u64>,
    /// Entries it lacks of the leader's log (`null` while nothing is matched).
    pub lag: Option<u64>,
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its id.
    pub node_id: String,
    /// SHA-256 of its node certificate (DER), 64 hex digits.
    pub cert_fingerprint: String,
    /// When it joined.
    pub joined: Timestamp,
    /// When it was removed (its certificate is refused since); `null` while a member.
    pub removed: Option<Timestamp>,
    /// Seconds since this node last reached it, while every call to its disks fails;
    /// `null` while it answers, for the node answering, and from servers before it.
    #[serde(default)]
    pub unreachable_secs: Option<u64>,
}

/// `POST /v1/cluster/join-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewJoinToken {
    /// How long the token is accepted, in seconds (default 3600).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// The answer of `POST /v1/cluster/join-tokens`: shown once, never stored in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The token's secret, 64 hex digits (`stele-server --join-token`).
    pub token: String,
    /// When it stops being accepted.
    pub expires: Timestamp,
    /// SHA-256 of the CA certificate, for `--ca-fingerprint`.
    pub ca_fingerprint: String,
    /// The node-to-node listener to join through, when this node serves one (`--join`).
    pub rpc_addr: Option<String>,
}

/// `GET /v1/cluster/layout`, and the answer of every layout change: the disks new shards
/// go to, under an epoch, with what is staged for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The current epoch (0: no layout recorded yet, every reported disk at weight 1).
    pub epoch: u64,
    /// When it began.
    pub since: Option<Timestamp>,
    /// Its disks, by node.
    pub disks: Vec<LayoutDisk>,
    /// The epoch the staged weights were staged against; `null` when nothing is staged.
    pub staged_base: Option<u64>,
    /// The epoch new writes on the node that answered follow now (its placement is
    /// refreshed every two seconds).
    pub placing_epoch: u64,
}

/// One disk of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutDisk {
    /// Its UUID (32 hex digits).
    pub uuid: String,
    /// Its node-local id (`d0`).
    pub id: String,
    /// The member it belongs to.
    pub node: String,
    /// Its site.
    pub site: String,
    /// Its weight (0: drained).
    pub weight: u32,
    /// The weight staged for the next epoch, if one is.
    pub staged_weight: Option<u32>,
}

/// `PUT /v1/cluster/layout/disks/{uuid}`: stage a disk's weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageWeight {
    /// The new weight, 0 to 1000 (0 drains the disk).
    pub weight: u32,
}

/// `POST /v1/cluster/layout/apply`: apply what is staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyLayout {
    /// The epoch the caller saw (`GET /v1/cluster/layout`): refused if it is no longer
    /// the current one.
    pub epoch: u64,
}

/// `GET /v1/cluster/sites/{site}` (what removing it would cost) and `DELETE` (remove it
/// for good: its members are removed, and every shard it held is queued for rebuilding on
/// the node that answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRemoval {
    /// The site.
    pub site: String,
    /// Its members, by id.
    pub nodes: Vec<String>,
    /// Whether they were removed (`DELETE`), or this is the preview (`GET`).
    pub removed: bool,
    /// Segments with shards on its disks.
    pub segments: u64,
    /// Those shards, to rebuild elsewhere.
    pub shards: u64,
    /// Their bytes, what repair writes again.
    pub bytes: u64,
    /// What the removal leaves wrong or cannot do (no node left to admit new ones, a
    /// profile wider than the disks left, a member still in the Raft group).
    #[serde(default)]
    pub warnings: Vec<String>,
}
