//! Who belongs to the cluster (`../shared/design/sites.md` §3.2): the cluster's identity
//! (its id and the SHA-256 fingerprint of its CA certificate), one-time join tokens
//! (kept hashed, with an expiry) and the members (each with the fingerprint of the node
//! certificate the CA issued it). The node-to-node listener admits a TLS peer only when
//! its certificate's fingerprint names a member that was not removed, so removing a node
//! revokes it at once, open connections included.
//!
//! Every change is a [`ClusterChange`] applied by [`apply`] inside the command applier
//! (`MetaCommand::Cluster`): deterministic, at the proposer's wall time, so the Raft group
//! will apply it the same on every replica. Records live in the cluster family under
//! `cluster/`; each carries its format.

use serde::{Deserialize, Serialize};

pub mod layout;

use crate::meta::{Batch, Meta, MetaError, Record, Space};
use crate::types::Timestamp;

const IDENTITY: &str = "cluster/identity";

const TOKENS: &str = "cluster/token/";

fn token_key(hash: &[u8; 32]) -> String {
    format!("{TOKENS}{}", hex::encode(hash))
}

/// A token's public name: SHA-256 of its hash, hex. A joining node names its token by
/// it and proves it holds the secret with an HMAC keyed by the hash over its TLS
/// session (`stele-server`'s join), so nothing it sends admits anyone else.
pub fn token_id(hash: &[u8; 32]) -> String {
    hex::encode(crate::crypto::sha256(hash))
}

/// The hash of the token named `id` ([`token_id`]), if one is kept (used or not).
///
/// # Errors
/// A metadata read's.
pub fn token_hash_by_id(meta: &Meta, id: &str) -> Result<Option<[u8; 32]>, MetaError> {
    for key in meta.kv_keys(Space::Replication, TOKENS, usize::MAX)? {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(&key[TOKENS.len()..], &mut hash).is_ok() && token_id(&hash) == id {
            return Ok(Some(hash));
        }
    }
    Ok(None)
}

fn member_key(node_id: &str) -> String {
    format!("cluster/member/{node_id}")
}

const DISKS: &str = "cluster/disks/";

fn disks_key(node_id: &str) -> String {
    format!("{DISKS}{node_id}")
}

/// One disk of a member, as the member reports it: new shards may go there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDisk {
    /// The disk's node-local id (`d0`).
    pub id: String,
    /// The disk's UUID: how shard records name it across the cluster.
    pub uuid: crate::disk::DiskUuid,
}

/// A member's disks and site, as it last reported them (`cluster/disks/<node id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDisks {
    /// The member.
    pub node_id: String,
    /// The site its disks are in.
    pub site: String,
    /// Its disks, in its configuration order.
    pub disks: Vec<ClusterDisk>,
    /// When it reported them (wall clock).
    pub reported: Timestamp,
}

impl Record for NodeDisks {
    const NAME: &'static str = "cluster-node-disks";
    const FORMAT: u8 = 1;
}

/// The cluster this node belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// The cluster's id (16 hex digits), in every node certificate's name.
    pub cluster_id: String,
    /// SHA-256 of the CA certificate (DER), hex: what a joining node pins.
    pub ca_fingerprint: String,
    /// When `stelectl cluster init` made it (wall clock).
    pub created: Timestamp,
}

impl Record for ClusterIdentity {
    const NAME: &'static str = "cluster-identity";
    const FORMAT: u8 = 1;
}

/// A join token, kept by the SHA-256 of its secret (the secret is shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// When it was issued (wall clock).
    pub issued: Timestamp,
    /// After this instant it is refused.
    pub expires: Timestamp,
    /// The node that used it, and when: a token admits one node, once.
    pub used: Option<(String, Timestamp)>,
}

impl Record for JoinToken {
    const NAME: &'static str = "join-token";
    const FORMAT: u8 = 1;
}

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's id (its certificate names `stele://<cluster>/node/<id>`).
    pub node_id: String,
    /// SHA-256 of the node certificate the CA issued it (DER), hex.
    pub cert_fingerprint: String,
    /// When it joined (wall clock).
    pub joined: Timestamp,
    /// When it was removed: its certificate is refused from then on.
    pub removed: Option<Timestamp>,
}

impl Record for Member {
    const NAME: &'static str = "cluster-member";
    const FORMAT: u8 = 1;
}

impl Member {
    /// Whether the member may talk to the others (not removed).
    pub fn active(&self) -> bool {
        self.removed.is_none()
    }
}

/// A change of membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterChange {
    /// Makes this node's metadata the first state of a cluster, with this node its first
    /// member (`stelectl cluster init`).
    Init {
        /// The new cluster's id.
        cluster_id: String,
        /// SHA-256 of its CA certificate (DER), hex.
        ca_fingerprint: String,
        /// This node's id.
        node_id: String,
        /// SHA-256 of this node's certificate (DER), hex.
        cert_fingerprint: String,
    },
    /// Keeps a new join token (its hash) valid until `expires`.
    IssueToken {
        /// SHA-256 of the token's secret.
        token_hash: [u8; 32],
        /// When it stops being accepted.
        expires: Timestamp,
    },
    /// Admits a node with a token: the token is used up, the node becomes a member.
    Join {
        /// SHA-256 of the secret the node presented.
        token_hash: [u8; 32],
        /// The new node's id.
        node_id: String,
        /// SHA-256 of the certificate the CA issued it (DER), hex.
        cert_fingerprint: String,
    },
    /// Removes a member: its certificate is refused from now on.
    Remove {
        /// The member's id.
        node_id: String,
    },
    /// Records a member's disks and site: the other nodes place shards there from then
    /// on. A member reports them when its part of the group starts and they changed.
    Disks {
        /// The member's id.
        node_id: String,
        /// Its site.
        site: String,
        /// Its disks, in its configuration order.
        disks: Vec<ClusterDisk>,
    },
    /// Stages a disk's weight for the layout's next epoch
    /// ([`crate::membership::layout::stage`]); nothing changes until it is applied. Appended
    /// last.
    StageWeight {
        /// The disk.
        disk: crate::disk::DiskUuid,
        /// Its weight (0 drains it).
        weight: u32,
    },
    /// Applies what is staged if the layout is at epoch `expect`
    /// ([`crate::membership::layout::apply_staged`]), and forgets it. Appended last.
    ApplyLayout {
        /// The epoch the caller saw.
        expect: u64,
    },
    /// Forgets what is staged. Appended last.
    RevertLayout,
}

/// What a [`ClusterChange`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOutcome {
    /// The cluster exists, with its first member.
    Initialized(ClusterIdentity),
    /// The token is kept.
    TokenIssued,
    /// The node is a member.
    Joined(Member),
    /// The member is removed.
    Removed(Member),
    /// The member's disks are recorded.
    DisksRecorded,
    /// What is staged now.
    LayoutStaged(crate::membership::layout::StagedLayout),
    /// The new current layout.
    LayoutApplied(crate::membership::layout::Layout),
    /// Nothing is staged any more.
    LayoutReverted,
}

/// Why a membership change was refused (nothing written).
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Tokens, joins and removals need a cluster (`stelectl cluster init`).
    #[error("this node is not in a cluster: run stelectl cluster init first")]
    NotInitialized,
    /// The node already belongs to a cluster.
    #[error("this node already belongs to cluster {cluster_id}")]
    AlreadyInitialized {
        /// The cluster it belongs to.
        cluster_id: String,
    },
    /// No token has this secret.
    #[error("the join token is not valid")]
    UnknownToken,
    /// The token was used already (a token admits one node, once).
    #[error("the join token was used already (by node {node_id})")]
    TokenUsed {
        /// The node that used it.
        node_id: String,
    },
    /// The token expired.
    #[error("the join token expired at {expired}")]
    TokenExpired {
        /// When it expired.
        expired: Timestamp,
    },
    /// A member (current or removed) already has this id.
    #[error("a node with id {node_id} is or was a member")]
    NodeIdTaken {
        /// The id.
        node_id: String,
    },
    /// No member has this id.
    #[error("no member has id {node_id}")]
    UnknownMember {
        /// The id.
        node_id: String,
    },
    /// A layout change was refused.
    #[error(transparent)]
    Layout(#[from] crate::membership::layout::LayoutError),
    /// The metadata could not be read or written.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// The cluster this node belongs to, if any.
///
/// # Errors
/// A metadata read's.
pub fn identity(meta: &Meta) -> Result<Option<ClusterIdentity>, MetaError> {
    meta.kv_get(Space::Replication, IDENTITY)
}

/// Every member, removed ones too, by id.
///
/// # Errors
/// A metadata read's.
pub fn members(meta: &Meta) -> Result<Vec<Member>, MetaError> {
    meta.kv_list(Space::Replication, "cluster/member/", usize::MAX)
}

/// Every member's reported disks, removed members' too, by node id.
///
/// # Errors
/// A metadata read's.
pub fn node_disks(meta: &Meta) -> Result<Vec<NodeDisks>, MetaError> {
    meta.kv_list(Space::Replication, DISKS, usize::MAX)
}

/// The member with this id, if any.
///
/// # Errors
/// A metadata read's.
pub fn member(meta: &Meta, node_id: &str) -> Result<Option<Member>, MetaError> {
    meta.kv_get(Space::Replication, &member_key(node_id))
}

/// The token whose secret hashes to `hash`, if it admits a node at `now`: known, unused,
/// not expired. The CA's node asks before it signs anything for a join; the `Join`
/// command asks again when it is applied.
///
/// # Errors
/// [`MembershipError::UnknownToken`], [`MembershipError::TokenUsed`],
/// [`MembershipError::TokenExpired`]; a metadata read's.
pub fn usable_token(
    meta: &Meta,
    hash: &[u8; 32],
    now: Timestamp,
) -> Result<JoinToken, MembershipError> {
    let t: JoinToken = meta
        .kv_get(Space::Replication, &token_key(hash))?
        .ok_or(MembershipError::UnknownToken)?;
    if let Some((by, _)) = t.used {
        return Err(MembershipError::TokenUsed { node_id: by });
    }
    if now >= t.expires {
        return Err(MembershipError::TokenExpired { expired: t.expires });
    }
    Ok(t)
}

/// Applies `change` at wall time `now` into `b`.
///
/// # Errors
/// The refusal ([`MembershipError`]); a metadata read's or encoding's.
pub fn apply(
    meta: &Meta,
    b: &mut Batch,
    change: &ClusterChange,
    now: Timestamp,
) -> Result<ClusterOutcome, MembershipError> {
    let ident = identity(meta)?;
    match change {
        ClusterChange::Init {
            cluster_id,
            ca_fingerprint,
            node_id,
            cert_fingerprint,
        } => {
            if let Some(i) = ident {
                return Err(MembershipError::AlreadyInitialized {
                    cluster_id: i.cluster_id,
                });
            }
            let i = ClusterIdentity {
                cluster_id: cluster_id.clone(),
                ca_fingerprint: ca_fingerprint.clone(),
                created: now,
            };
            b.kv_put(Space::Replication, IDENTITY, i.encode()?);
            let m = Member {
                node_id: node_id.clone(),
                cert_fingerprint: cert_fingerprint.clone(),
                joined: now,
                removed: None,
            };
            b.kv_put(Space::Replication, &member_key(node_id), m.encode()?);
            Ok(ClusterOutcome::Initialized(i))
        }
        ClusterChange::IssueToken {
            token_hash,
            expires,
        } => {
            ident.ok_or(MembershipError::NotInitialized)?;
            let t = JoinToken {
                issued: now,
                expires: *expires,
                used: None,
            };
            b.kv_put(Space::Replication, &token_key(token_hash), t.encode()?);
            Ok(ClusterOutcome::TokenIssued)
        }
        ClusterChange::Join {
            token_hash,
            node_id,
            cert_fingerprint,
        } => {
            ident.ok_or(MembershipError::NotInitialized)?;
            let mut t = usable_token(meta, token_hash, now)?;
            if member(meta, node_id)?.is_some() {
                return Err(MembershipError::NodeIdTaken {
                    node_id: node_id.clone(),
                });
            }
            t.used = Some((node_id.clone(), now));
            b.kv_put(Space::Replication, &token_key(token_hash), t.encode()?);
            let m = Member {
                node_id: node_id.clone(),
                cert_fingerprint: cert_fingerprint.clone(),
                joined: now,
                removed: None,
            };
            b.kv_put(Space::Replication, &member_key(node_id), m.encode()?);
            Ok(ClusterOutcome::Joined(m))
        }
        ClusterChange::Remove { node_id } => {
            ident.ok_or(MembershipError::NotInitialized)?;
            let mut m = member(meta, node_id)?.ok_or_else(|| MembershipError::UnknownMember {
                node_id: node_id.clone(),
            })?;
            if m.removed.is_none() {
                // Read while the member is still active: an implicit layout holds its disks.
                if let Some(l) = layout::current(meta)?.without_node(node_id, now) {
                    layout::put_current(b, &l)?;
                }
                m.removed = Some(now);
                b.kv_put(Space::Replication, &member_key(node_id), m.encode()?);
            }
            Ok(ClusterOutcome::Removed(m))
        }
        ClusterChange::Disks {
            node_id,
            site,
            disks,
        } => {
            ident.ok_or(MembershipError::NotInitialized)?;
            if !member(meta, node_id)?.is_some_and(|m| m.active()) {
                return Err(MembershipError::UnknownMember {
                    node_id: node_id.clone(),
                });
            }
            let d = NodeDisks {
                node_id: node_id.clone(),
                site: site.clone(),
                disks: disks.clone(),
                reported: now,
            };
            if let Some(l) = layout::current(meta)?.with_report(&d, now) {
                layout::put_current(b, &l)?;
            }
            b.kv_put(Space::Replication, &disks_key(node_id), d.encode()?);
            Ok(ClusterOutcome::DisksRecorded)
        }
        ClusterChange::StageWeight { disk, weight } => {
            ident.ok_or(MembershipError::NotInitialized)?;
            let s = layout::stage(
                &layout::current(meta)?,
                layout::staged(meta)?,
                *disk,
                *weight,
                now,
            )?;
            layout::put_staged(b, Some(&s))?;
            Ok(ClusterOutcome::LayoutStaged(s))
        }
        ClusterChange::ApplyLayout { expect } => {
            ident.ok_or(MembershipError::NotInitialized)?;
            let l = layout::apply_staged(
                &layout::current(meta)?,
                layout::staged(meta)?.as_ref(),
                *expect,
                now,
            )?;
            layout::put_current(b, &l)?;
            layout::put_staged(b, None)?;
            Ok(ClusterOutcome::LayoutApplied(l))
        }
        ClusterChange::RevertLayout => {
            ident.ok_or(MembershipError::NotInitialized)?;
            layout::put_staged(b, None)?;
            Ok(ClusterOutcome::LayoutReverted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::MemoryEngine;

    const T: Timestamp = Timestamp(1_800_000_000_000_000);

    fn run(meta: &Meta, c: &ClusterChange, now: Timestamp) -> Result<ClusterOutcome, String> {
        meta.write_guarded(|m| {
            let mut b = Batch::default();
            let o = apply(m, &mut b, c, now)?;
            Ok::<_, MembershipError>((b, o))
        })
        .map_err(|e| e.to_string())
    }

    fn join(hash: u8, id: &str) -> ClusterChange {
        ClusterChange::Join {
            token_hash: [hash; 32],
            node_id: id.into(),
            cert_fingerprint: format!("fp-{id}"),
        }
    }

    #[test]
    fn a_token_admits_one_node_once_before_it_expires_and_removal_sticks() {
        let meta = Meta::with_engine(Box::new(MemoryEngine::default()));
        let issue = |hash: u8, expires: Timestamp| ClusterChange::IssueToken {
            token_hash: [hash; 32],
            expires,
        };
        assert!(
            run(&meta, &issue(1, T), T)
                .expect_err("refused")
                .contains("not in a cluster")
        );
        let init = ClusterChange::Init {
            cluster_id: "c1".into(),
            ca_fingerprint: "ca".into(),
            node_id: "a".into(),
            cert_fingerprint: "fp-a".into(),
        };
        run(&meta, &init, T).expect("init");
        assert!(
            run(&meta, &init, T)
                .expect_err("refused")
                .contains("already belongs")
        );
        run(&meta, &issue(1, Timestamp(T.0 + 3_600_000_000)), T).expect("token");
        run(&meta, &issue(2, Timestamp(T.0 + 10)), T).expect("short token");
        assert!(
            run(&meta, &join(9, "b"), T)
                .expect_err("refused")
                .contains("not valid")
        );
        assert!(
            run(&meta, &join(2, "b"), Timestamp(T.0 + 10))
                .expect_err("refused")
                .contains("expired")
        );
        assert!(
            run(&meta, &join(1, "a"), T)
                .expect_err("refused")
                .contains("is or was")
        );
        let joined = run(&meta, &join(1, "b"), T).expect("join");
        assert!(matches!(joined, ClusterOutcome::Joined(m) if m.node_id == "b"));
        assert!(
            run(&meta, &join(1, "c"), T)
                .expect_err("refused")
                .contains("used already")
        );
        assert_eq!(
            members(&meta)
                .expect("members")
                .iter()
                .map(|m| m.node_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        run(
            &meta,
            &ClusterChange::Remove {
                node_id: "b".into(),
            },
            Timestamp(T.0 + 5),
        )
        .expect("remove");
        let b = member(&meta, "b").expect("read").expect("b");
        assert_eq!(b.removed, Some(Timestamp(T.0 + 5)));
        // Removing again keeps the first removal's time; a removed id is not reused.
        run(
            &meta,
            &ClusterChange::Remove {
                node_id: "b".into(),
            },
            Timestamp(T.0 + 9),
        )
        .expect("again");
        assert_eq!(
            member(&meta, "b").expect("read").expect("b").removed,
            b.removed
        );
        run(&meta, &issue(3, Timestamp(T.0 + 3_600_000_000)), T).expect("token");
        assert!(
            run(&meta, &join(3, "b"), T)
                .expect_err("refused")
                .contains("is or was")
        );
    }
}
