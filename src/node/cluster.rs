//! Cluster membership on the blocking pool: the cluster's identity, join tokens, joins
//! and removals (`crate::membership`).

use super::{Node, offload};
use crate::membership::{self, ClusterChange, ClusterIdentity, ClusterOutcome, Member};
use crate::store::StoreError;
use crate::types::Timestamp;

/// A join token as issued: the secret (shown once, never stored) and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// 64 hex digits.
    pub secret: String,
    /// When it stops being accepted.
    pub expires: Timestamp,
}

impl Node {
    /// Proposes a membership change.
    ///
    /// # Errors
    /// [`StoreError::Membership`] for a refusal; a commit's errors.
    pub async fn change_membership(
        &self,
        change: ClusterChange,
    ) -> Result<ClusterOutcome, StoreError> {
        let store = self.store().clone();
        offload(move || store.change_membership(change)).await
    }

    /// The cluster's current layout and what is staged for its next epoch, as this node's
    /// replica holds them (no barrier: a view, not a decision; changes are
    /// compare-and-set in the group).
    ///
    /// # Errors
    /// A metadata read.
    pub async fn layout(
        &self,
    ) -> Result<
        (
            crate::membership::layout::Layout,
            Option<crate::membership::layout::StagedLayout>,
        ),
        StoreError,
    > {
        let store = self.store().clone();
        offload(move || {
            Ok((
                crate::membership::layout::current(store.meta())?,
                crate::membership::layout::staged(store.meta())?,
            ))
        })
        .await
    }

    /// Applies the staged layout if the layout is at epoch `expect`
    /// ([`ClusterChange::ApplyLayout`]), unless new writes under it would put more of an
    /// object's shards on one node than the erasure coding's parity
    /// ([`crate::membership::layout::risk`], checked here: the applier does not know the
    /// erasure coding).
    ///
    /// # Errors
    /// [`crate::membership::layout::LayoutError::Unsafe`]; a barrier's, a read's; the
    /// command's refusals.
    pub async fn apply_layout(&self, expect: u64) -> Result<ClusterOutcome, StoreError> {
        use crate::membership::layout;
        let store = self.store().clone();
        offload(move || {
            store.linearize()?;
            let current = layout::current(store.meta())?;
            let staged = layout::staged(store.meta())?;
            let now = store.clock().now();
            if let Ok(next) = layout::apply_staged(&current, staged.as_ref(), expect, now) {
                let ec = &store.config().ec;
                if let Some(reason) = layout::risk(&current, &next, ec.data, ec.parity) {
                    return Err(StoreError::Membership(membership::MembershipError::Layout(
                        layout::LayoutError::Unsafe { reason },
                    )));
                }
            }
            store.change_membership(ClusterChange::ApplyLayout { expect })
        })
        .await
    }

    /// The layout epoch new writes through this node follow now (no I/O).
    pub fn layout_epoch(&self) -> u64 {
        self.store().layout_epoch()
    }

    /// How many old copies of moved shards wait on this node for their grace period
    /// ([`crate::store::Store::old_copies_waiting`]).
    ///
    /// # Errors
    /// A metadata read.
    pub async fn old_copies_waiting(&self) -> Result<u64, StoreError> {
        let store = self.store().clone();
        offload(move || store.old_copies_waiting()).await
    }

    /// Issues a join token valid for `ttl_secs` seconds from now (wall clock).
    ///
    /// # Errors
    /// [`membership::MembershipError::NotInitialized`]; a commit's errors.
    pub async fn issue_join_token(&self, ttl_secs: u64) -> Result<IssuedToken, StoreError> {
        let secret = crate::crypto::random_bytes::<32>();
        let now = self.store().clock().now();
        let expires =
            Timestamp(now.0.saturating_add(
                i64::try_from(ttl_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            ));
        self.change_membership(ClusterChange::IssueToken {
            token_hash: token_hash(&hex::encode(secret)),
            expires,
        })
        .await?;
        Ok(IssuedToken {
            secret: hex::encode(secret),
            expires,
        })
    }

    /// The cluster this node belongs to, and every member (removed ones too).
    ///
    /// # Errors
    /// A metadata read.
    pub async fn cluster(&self) -> Result<(Option<ClusterIdentity>, Vec<Member>), StoreError> {
        let store = self.store().clone();
        offload(move || {
            Ok((
                membership::identity(store.meta())?,
                membership::members(store.meta())?,
            ))
        })
        .await
    }

    /// The hash of the join token named `id` if it admits a node now (known, unused, not
    /// expired) and `proof` is the HMAC-SHA256, keyed by that hash, of `binding` (the
    /// joining connection's TLS exporter): read before anything is signed for a join. A
    /// scan of the tokens (a few records), in place.
    ///
    /// # Errors
    /// [`StoreError::Membership`] saying why not ([`membership::MembershipError::UnknownToken`]
    /// for a proof that does not match); a metadata read.
    pub fn join_token_proven(
        &self,
        id: &str,
        proof: &[u8],
        binding: &[u8],
    ) -> Result<[u8; 32], StoreError> {
        let meta = self.store().meta();
        let hash = membership::token_hash_by_id(meta, id)?
            .ok_or(membership::MembershipError::UnknownToken)?;
        if !crate::crypto::same_secret(&crate::crypto::hmac_sha256(&hash, binding), proof) {
            return Err(membership::MembershipError::UnknownToken.into());
        }
        membership::usable_token(meta, &hash, self.store().clock().now())?;
        Ok(hash)
    }

    /// The active member whose node certificate has this fingerprint, if any: what the
    /// node-to-node listener admits, for every request. A scan of the members (a few
    /// records), in place.
    ///
    /// # Errors
    /// A metadata read.
    pub fn member_by_certificate(&self, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        Ok(membership::members(self.store().meta())?
            .into_iter()
            .find(|m| m.active() && m.cert_fingerprint == fingerprint))
    }
}

/// The hash a token is kept under: SHA-256 of its secret's text.
pub fn token_hash(secret: &str) -> [u8; 32] {
    crate::crypto::sha256(secret.trim().as_bytes())
}

impl Node {
    /// Records this node's disks and site in the cluster (`member` is its id) when the
    /// record differs from them; whether it proposed. Disks whose UUID is not known yet
    /// (offline since start) are left out until it is.
    ///
    /// # Errors
    /// A metadata read; the command's (no majority, not a member).
    pub async fn report_disks(&self, member: &str) -> Result<bool, StoreError> {
        let store = self.store().clone();
        let member = member.to_owned();
        offload(move || {
            let disks: Vec<membership::ClusterDisk> = store
                .disks()
                .into_iter()
                .filter_map(|d| {
                    d.uuid.map(|uuid| membership::ClusterDisk {
                        id: d.id.clone(),
                        uuid,
                    })
                })
                .collect();
            let site = store.site();
            let recorded = membership::node_disks(store.meta())?
                .into_iter()
                .find(|n| n.node_id == member);
            if recorded.is_some_and(|r| r.site == site && r.disks == disks) {
                return Ok(false);
            }
            store.change_membership(ClusterChange::Disks {
                node_id: member,
                site,
                disks,
            })?;
            Ok(true)
        })
        .await
    }

    /// Places new shards over this node's disks and those the other active members
    /// reported, each reached at the node listener `address_of` names (a member it names
    /// none for is left out), asking each member for its disks' state first (at most
    /// `timeout`). Called again and again: a disk keeps its health between calls.
    ///
    /// # Errors
    /// A metadata read.
    pub async fn refresh_cluster_disks(
        &self,
        member: &str,
        transport: std::sync::Arc<dyn crate::disk::ShardTransport>,
        address_of: impl Fn(&str) -> Option<String>,
        timeout: std::time::Duration,
    ) -> Result<(), StoreError> {
        use crate::disk::remote::{ShardAnswer, ShardCall, decode_answer, encode_call};
        use crate::disk::{RemoteDisk, ShardStore};
        let store = self.store().clone();
        let (layout, active) = offload(move || {
            let active: Vec<String> = membership::members(store.meta())?
                .into_iter()
                .filter(|m| m.active())
                .map(|m| m.node_id)
                .collect();
            Ok::<_, StoreError>((crate::membership::layout::current(store.meta())?, active))
        })
        .await?;
        let store = self.store();
        let known = store.cluster_disks();
        let runtime = tokio::runtime::Handle::current();
        let mut others = Vec::new();
        let mut probes = Vec::new();
        let mut clocks = Vec::new();
        let mut nodes: Vec<&str> = layout
            .disks
            .iter()
            .map(|d| d.node_id.as_str())
            .filter(|n| *n != member && active.iter().any(|a| a == n))
            .collect();
        nodes.dedup();
        for node in nodes {
            let Some(addr) = address_of(node) else {
                continue;
            };
            let mine: Vec<RemoteDisk> = layout
                .disks
                .iter()
                .filter(|d| d.node_id == node)
                .map(|d| {
                    known
                        .iter()
                        .find(|k| k.uuid() == Some(d.uuid) && k.addr() == addr)
                        .cloned()
                        .unwrap_or_else(|| {
                            RemoteDisk::new(
                                crate::config::DiskSpec {
                                    id: d.id.clone(),
                                    path: addr.clone().into(),
                                    node: d.node_id.clone(),
                                    site: d.site.clone(),
                                },
                                d.uuid,
                                addr.clone(),
                                transport.clone(),
                                runtime.clone(),
                            )
                        })
                })
                .collect();
            // The member's wall clock against this node's at the middle of the round trip
            // (issue 15, item 5: time from the other members).
            let site = mine
                .first()
                .map(|d| d.spec().site.clone())
                .unwrap_or_default();
            let clock = store.clock().clone();
            let time_call = transport.call(addr.clone(), encode_call(&ShardCall::Clock), timeout);
            let timed = mine.clone();
            clocks.push(async move {
                let sent = clock.now();
                let started = std::time::Instant::now();
                let answer = tokio::time::timeout(timeout, time_call).await;
                let back = clock.now();
                if matches!(answer, Ok(Ok(_))) {
                    // Also the node's round trip, which reads use to prefer near shards.
                    for d in &timed {
                        d.note_round_trip(started.elapsed());
                    }
                }
                match answer {
                    Ok(Ok(bytes)) => match decode_answer(&bytes) {
                        Ok(ShardAnswer::Clock(theirs)) => Some(crate::lock::PeerReading {
                            site,
                            offset_micros: theirs.micros()
                                - (sent.micros() + (back.micros() - sent.micros()) / 2),
                        }),
                        _ => None,
                    },
                    _ => None,
                }
            });
            let call = transport.call(addr, encode_call(&ShardCall::Status), timeout);
            let disks = mine.clone();
            probes.push(async move {
                let answer = tokio::time::timeout(timeout, call).await;
                let reported = match answer {
                    Ok(Ok(bytes)) => match decode_answer(&bytes) {
                        Ok(ShardAnswer::Disks(d)) => Some(d),
                        _ => None,
                    },
                    _ => None,
                };
                for disk in &disks {
                    match reported
                        .as_ref()
                        .and_then(|r| r.iter().find(|s| s.uuid == disk.uuid()))
                    {
                        Some(s) => disk.update(s.clone()),
                        None => disk.mark_unreachable(),
                    }
                }
            });
            others.extend(mine);
        }
        let (_, readings) = futures::future::join(
            futures::future::join_all(probes),
            futures::future::join_all(clocks),
        )
        .await;
        store.use_cluster_disks(member, &store.site(), others, &layout);
        let readings: Vec<crate::lock::PeerReading> = readings.into_iter().flatten().collect();
        store.note_peer_clocks(&readings);
        Ok(())
    }

    /// Every disk new shards may go to, with its node, site and state as this node sees
    /// them ([`crate::store::Store::placement_disks`]).
    ///
    /// # Errors
    /// A task that did not finish.
    pub async fn placement_disks(&self) -> Result<Vec<crate::disk::DiskStatus>, StoreError> {
        let store = self.store().clone();
        offload(move || Ok(store.placement_disks())).await
    }

    /// Every other member this node places shards on, with how long it has been
    /// unreachable from here ([`crate::store::Store::member_reachability`]; no I/O).
    pub fn member_reachability(&self) -> Vec<(String, Option<std::time::Duration>)> {
        self.store().member_reachability()
    }

    /// Answers another node's encoded shard call for this node's disks.
    pub async fn shard_call(&self, body: bytes::Bytes) -> Vec<u8> {
        let server = self.store().shard_server();
        tokio::task::spawn_blocking(move || server.call(&body))
            .await
            .unwrap_or_default()
    }

    /// Receives another node's shard upload, chunk by chunk from `body` until it closes;
    /// the encoded answer.
    pub async fn shard_upload(
        &self,
        mut body: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> Vec<u8> {
        let server = self.store().shard_server();
        tokio::task::spawn_blocking(move || server.upload(|| body.blocking_recv()))
            .await
            .unwrap_or_default()
    }
}
