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
    /// Whether this node's metadata keeps the membership (the node that ran `cluster
    /// init`): until the metadata is replicated (Raft), only it issues tokens, admits
    /// and removes nodes, and lists the members; a node that joined lists none.
    pub membership_kept_here: bool,
    /// Every member, removed ones too, by id (empty where the membership is not kept).
    pub members: Vec<Member>,
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
