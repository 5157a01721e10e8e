//! Site-to-site replication: peers, per-bucket rules and the durable replication log.
//!
//! A **peer** is another Stele deployment, reached at its S3 listener over TLS with a key
//! that holds only the `replication-peer` role there ([`PeerRecord`]). A bucket's
//! **rules** ([`BucketReplication`]) say which of its keys go to which bucket of which
//! peer. The **log** ([`log`]) holds, per peer, every change a rule selected and the peer
//! has not acknowledged yet; each entry is written by [`crate::command::apply`] in the same
//! batch as the change it names, so no acknowledged write can be missing from it, and the
//! RPO is read from it ([`log::Backlog`]) rather than counted in memory. Design:
//! `sites.md` §4 (shared design notes); S3's own rules for what replicates:
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-what-is-isnot-replicated.html>.
//!
//! What travels to a peer is a [`ReplicaOp`], one versioned record per request.

pub mod epoch;
pub mod log;
mod model;

pub use model::{
    ASSEMBLY_MAX, BucketReplication, DEFAULT_RPO_ALERT_SECS, Heartbeat, PeerRecord, PeerTrust,
    ReplicaOp, ReplicaResult, ReplicaVersion, ReplicationRule, SourceRecord, format_parts,
    parse_parts, peer_key, rules_key, source_key, valid_peer_name,
};

use serde::{Deserialize, Serialize};

use crate::types::{BucketName, Timestamp};

/// A replication configuration change, applied by [`apply`] inside a metadata command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReplicationChange {
    /// Add a peer (create-only by name); the applier assigns its log id. Answers
    /// [`ReplicationOutcome::Peer`].
    AddPeer(PeerRecord),
    /// Remove a peer that no rule names, with its log. Answers
    /// [`ReplicationOutcome::Removed`].
    RemovePeer {
        /// The peer's name.
        name: String,
    },
    /// Set (`Some`) or remove (`None`) a bucket's rules. Every peer a rule names must
    /// exist. Answers [`ReplicationOutcome::Done`].
    SetRules {
        /// The source bucket.
        bucket: BucketName,
        /// Its new rules.
        rules: Option<BucketReplication>,
    },
    /// Versions written before a rule (or lost by the peer) to send by a backfill pass;
    /// the applier numbers them after the peer's head. Answers
    /// [`ReplicationOutcome::Done`].
    Backfill {
        /// The peer's log id.
        peer: u32,
        /// The entries (their class and time are set by the applier).
        entries: Vec<log::LogEntry>,
    },
    /// A peer acknowledged these entries: they leave the log. Answers
    /// [`ReplicationOutcome::Done`].
    Acknowledge {
        /// The peer's log id.
        peer: u32,
        /// The entries' sequence numbers.
        seqs: Vec<u64>,
    },
    /// Park an entry the peer refused for good: it leaves the live log for the dead list
    /// with its reason, where it counts in the RPO until an administrator retries it.
    /// Answers [`ReplicationOutcome::Done`].
    Park {
        /// The peer's log id.
        peer: u32,
        /// The entry's sequence number.
        seq: u64,
        /// Why (a class, for counting and alerting).
        reason: log::DeadReason,
        /// The peer's answer or the local error, for the operator.
        detail: String,
    },
    /// A source's heartbeat arrived (kept with the time it arrived). Answers
    /// [`ReplicationOutcome::Done`].
    SourceHeartbeat {
        /// The access key the source signed with.
        access_key: String,
        /// What it said.
        heartbeat: Heartbeat,
    },
    /// Put a peer's dead entries back in the live log (those parked for `reason`, or
    /// all). Answers [`ReplicationOutcome::Retried`].
    RetryDead {
        /// The peer's log id.
        peer: u32,
        /// Only entries parked for this reason; `None`: all.
        reason: Option<log::DeadReason>,
    },
    /// A peer's request arrived for `bucket` with the sender's epoch: pair the bucket as a
    /// replica, or follow a higher epoch ([`epoch::receive`]). Answers
    /// [`ReplicationOutcome::Done`]. Appended last.
    Receive {
        /// The receiving bucket.
        bucket: BucketName,
        /// The access key the sender signed with (the source whose heartbeats count).
        access_key: String,
        /// What the sender said of its bucket.
        sender: epoch::SenderEpoch,
    },
    /// Make a replica bucket the primary at the next epoch ([`epoch::promote`]), keeping
    /// what its source last said. Answers [`ReplicationOutcome::Epoch`].
    Promote {
        /// The bucket.
        bucket: BucketName,
    },
    /// The peer answered `StaleEpoch` with `current`: the bucket turns into a replica
    /// ([`epoch::fence`]). Answers [`ReplicationOutcome::Epoch`] when that changed it,
    /// [`ReplicationOutcome::Done`] when it was fenced already.
    Fence {
        /// The source bucket.
        bucket: BucketName,
        /// The peer's epoch.
        current: u64,
    },
}

/// What an applied [`ReplicationChange`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicationOutcome {
    /// The peer as stored (with its log id).
    Peer(PeerRecord),
    /// Whether the peer existed.
    Removed(bool),
    /// Applied.
    Done,
    /// How many dead entries went back.
    Retried(usize),
    /// The bucket's writer epoch as it is now.
    Epoch(epoch::WriterEpoch),
}

/// Why a replication change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// A peer of that name exists already.
    #[error("replication peer {name} exists already")]
    PeerExists {
        /// The name.
        name: String,
    },
    /// No peer of that name.
    #[error("no replication peer named {name}")]
    NoSuchPeer {
        /// The name.
        name: String,
    },
    /// The peer's name or settings are malformed.
    #[error("invalid replication peer {name:?}: {reason}")]
    InvalidPeer {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A rule still names the peer.
    #[error("replication peer {name} is named by a rule of bucket {bucket}")]
    PeerInUse {
        /// The peer.
        name: String,
        /// A bucket whose rule names it.
        bucket: BucketName,
    },
    /// The source bucket does not exist.
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket {
        /// The bucket.
        bucket: BucketName,
    },
    /// The rules are malformed (the reason says how), or the bucket cannot replicate.
    #[error("invalid replication configuration for bucket {bucket}: {reason}")]
    InvalidRules {
        /// The bucket.
        bucket: BucketName,
        /// What is wrong.
        reason: String,
    },
    /// A replication request from a sender whose epoch is below this bucket's: the
    /// other side was promoted. Nothing was written; the sender fences itself.
    #[error(
        "bucket {bucket} is written at epoch {current} here; the sender's epoch {sent} is stale"
    )]
    StaleEpoch {
        /// The receiving bucket.
        bucket: BucketName,
        /// Its epoch.
        current: u64,
        /// The sender's.
        sent: u64,
    },
    /// A client write to a replica bucket (`sites.md` §4.7): only its primary's replicas
    /// change it until it is promoted.
    #[error("bucket {bucket} is a read-only replica (epoch {epoch}); promote it to write to it")]
    ReadOnlyReplica {
        /// The bucket.
        bucket: BucketName,
        /// Its epoch.
        epoch: u64,
    },
    /// A promotion of a bucket no replica has arrived in.
    #[error("bucket {bucket} is not a replication target: nothing to promote")]
    NotPaired {
        /// The bucket.
        bucket: BucketName,
    },
    /// A promotion of a bucket that is the primary already.
    #[error("bucket {bucket} is the primary already (epoch {epoch})")]
    AlreadyPrimary {
        /// The bucket.
        bucket: BucketName,
        /// Its epoch.
        epoch: u64,
    },
    /// Replication to or from a cluster's member: not built yet (its rules and peers
    /// would be one node's while every node applies the writes they decide on).
    #[error(
        "replication to or from a cluster is not built yet: the node is a cluster member (issue 14)"
    )]
    ClusterMember,
    /// A metadata read or write failed.
    #[error(transparent)]
    Meta(#[from] crate::meta::MetaError),
}

/// Applies `change` to the metadata as read now (under the write guard), adding its writes
/// to `b`. Deterministic: ids come from the metadata, time from `now`.
///
/// # Errors
/// The [`ReplicationError`] refusals; a refusal writes nothing.
pub fn apply(
    meta: &crate::meta::Meta,
    b: &mut crate::meta::Batch,
    change: &ReplicationChange,
    now: Timestamp,
) -> Result<ReplicationOutcome, ReplicationError> {
    use crate::meta::{Record, Space};
    match change {
        ReplicationChange::AddPeer(p) => {
            if !valid_peer_name(&p.name) {
                return Err(ReplicationError::InvalidPeer {
                    name: p.name.clone(),
                    reason: "a peer name is 1 to 63 of a-z, 0-9 and -".into(),
                });
            }
            if meta
                .kv_get::<PeerRecord>(Space::Replication, &peer_key(&p.name))?
                .is_some()
            {
                return Err(ReplicationError::PeerExists {
                    name: p.name.clone(),
                });
            }
            let id = log::next_peer_id(meta)?;
            let rec = PeerRecord {
                id,
                created: now,
                ..p.clone()
            };
            b.kv_put(Space::Replication, &peer_key(&rec.name), rec.encode()?);
            log::set_next_peer_id(b, id + 1);
            Ok(ReplicationOutcome::Peer(rec))
        }
        ReplicationChange::RemovePeer { name } => {
            let Some(p) = meta.kv_get::<PeerRecord>(Space::Replication, &peer_key(name))? else {
                return Ok(ReplicationOutcome::Removed(false));
            };
            for (bucket, rules) in all_rules(meta)? {
                if rules.rules.iter().any(|r| r.peer == *name) {
                    return Err(ReplicationError::PeerInUse {
                        name: name.clone(),
                        bucket,
                    });
                }
            }
            b.kv_delete(Space::Replication, &peer_key(name));
            log::drop_peer(meta, b, p.id)?;
            Ok(ReplicationOutcome::Removed(true))
        }
        ReplicationChange::SetRules { bucket, rules } => {
            let Some(rec) = meta.bucket(bucket)? else {
                return Err(ReplicationError::NoSuchBucket {
                    bucket: bucket.clone(),
                });
            };
            match rules {
                None => b.kv_delete(Space::Replication, &rules_key(bucket)),
                Some(r) => {
                    r.validate(&rec)
                        .map_err(|reason| ReplicationError::InvalidRules {
                            bucket: bucket.clone(),
                            reason,
                        })?;
                    for rule in &r.rules {
                        if meta
                            .kv_get::<PeerRecord>(Space::Replication, &peer_key(&rule.peer))?
                            .is_none()
                        {
                            return Err(ReplicationError::NoSuchPeer {
                                name: rule.peer.clone(),
                            });
                        }
                    }
                    b.kv_put(Space::Replication, &rules_key(bucket), r.encode()?);
                }
            }
            Ok(ReplicationOutcome::Done)
        }
        ReplicationChange::Backfill { peer, entries } => {
            log::enqueue_backfill(meta, b, *peer, entries, now)?;
            Ok(ReplicationOutcome::Done)
        }
        ReplicationChange::Acknowledge { peer, seqs } => {
            for seq in seqs {
                log::acknowledge(meta, b, *peer, *seq)?;
            }
            Ok(ReplicationOutcome::Done)
        }
        ReplicationChange::Park {
            peer,
            seq,
            reason,
            detail,
        } => {
            log::park(meta, b, *peer, *seq, *reason, detail, now)?;
            Ok(ReplicationOutcome::Done)
        }
        ReplicationChange::SourceHeartbeat {
            access_key,
            heartbeat,
        } => {
            let rec = SourceRecord {
                access_key: access_key.clone(),
                received_at: now,
                heartbeat: *heartbeat,
            };
            b.kv_put(Space::Replication, &source_key(access_key), rec.encode()?);
            Ok(ReplicationOutcome::Done)
        }
        ReplicationChange::RetryDead { peer, reason } => Ok(ReplicationOutcome::Retried(
            log::retry_dead(meta, b, *peer, *reason)?,
        )),
        ReplicationChange::Receive {
            bucket,
            access_key,
            sender,
        } => {
            if meta.bucket(bucket)?.is_none() {
                return Err(ReplicationError::NoSuchBucket {
                    bucket: bucket.clone(),
                });
            }
            let local = writer_epoch(meta, bucket)?;
            let is_source = rules(meta, bucket)?.is_some();
            match epoch::receive(local.as_ref(), *sender, is_source) {
                // Its primary now sends with another key (a failback, a rotated key):
                // that key's heartbeats tell the RPO at the next promotion.
                Ok(None) => {
                    if let Some(l) = local.filter(|l| {
                        sender.role == epoch::Role::Primary
                            && l.role == epoch::Role::Replica
                            && l.source.as_deref() != Some(access_key.as_str())
                    }) {
                        let rec = epoch::WriterEpoch {
                            source: Some(access_key.clone()),
                            ..l
                        };
                        b.kv_put(Space::Replication, &epoch::epoch_key(bucket), rec.encode()?);
                    }
                }
                Ok(Some((e, role, reason))) => {
                    let rec = epoch::WriterEpoch {
                        bucket: bucket.clone(),
                        epoch: e,
                        role,
                        reason,
                        since: now,
                        source: Some(access_key.clone()),
                        promotion: None,
                    };
                    b.kv_put(Space::Replication, &epoch::epoch_key(bucket), rec.encode()?);
                }
                Err(epoch::Stale { current }) => {
                    return Err(ReplicationError::StaleEpoch {
                        bucket: bucket.clone(),
                        current,
                        sent: sender.epoch,
                    });
                }
            }
            Ok(ReplicationOutcome::Done)
        }
        ReplicationChange::Promote { bucket } => {
            let local = writer_epoch(meta, bucket)?;
            let e = epoch::promote(local.as_ref()).map_err(|r| match r {
                epoch::PromoteRefusal::NotPaired => ReplicationError::NotPaired {
                    bucket: bucket.clone(),
                },
                epoch::PromoteRefusal::AlreadyPrimary { epoch } => {
                    ReplicationError::AlreadyPrimary {
                        bucket: bucket.clone(),
                        epoch,
                    }
                }
                epoch::PromoteRefusal::Exhausted => ReplicationError::InvalidRules {
                    bucket: bucket.clone(),
                    reason: "its writer epoch is at its maximum".into(),
                },
            })?;
            let source = local.and_then(|l| l.source);
            let heard = match &source {
                Some(k) => meta.kv_get::<SourceRecord>(Space::Replication, &source_key(k))?,
                None => None,
            };
            let rec = epoch::WriterEpoch {
                bucket: bucket.clone(),
                epoch: e,
                role: epoch::Role::Primary,
                reason: epoch::EpochReason::Promoted,
                since: now,
                source,
                promotion: Some(epoch::Promotion {
                    last_heard: heard.as_ref().map(|h| h.received_at),
                    heartbeat: heard.map(|h| h.heartbeat),
                    at: now,
                }),
            };
            b.kv_put(Space::Replication, &epoch::epoch_key(bucket), rec.encode()?);
            Ok(ReplicationOutcome::Epoch(rec))
        }
        ReplicationChange::Fence { bucket, current } => {
            let local = writer_epoch(meta, bucket)?;
            match epoch::fence(local.as_ref(), *current) {
                // Fenced already (a heartbeat and an entry both heard it): nothing new.
                None => Ok(ReplicationOutcome::Done),
                Some(e) => {
                    let rec = epoch::WriterEpoch {
                        bucket: bucket.clone(),
                        epoch: e,
                        role: epoch::Role::Replica,
                        reason: epoch::EpochReason::Fenced,
                        since: now,
                        source: local.and_then(|l| l.source),
                        promotion: None,
                    };
                    b.kv_put(Space::Replication, &epoch::epoch_key(bucket), rec.encode()?);
                    Ok(ReplicationOutcome::Epoch(rec))
                }
            }
        }
    }
}

/// A bucket's writer epoch; `None`: not part of a pair.
///
/// # Errors
/// A read or decode failure.
pub fn writer_epoch(
    meta: &crate::meta::Meta,
    bucket: &BucketName,
) -> Result<Option<epoch::WriterEpoch>, crate::meta::MetaError> {
    meta.kv_get(crate::meta::Space::Replication, &epoch::epoch_key(bucket))
}

/// Whether clients may write to `bucket`: not while it is a replica.
///
/// # Errors
/// [`ReplicationError::ReadOnlyReplica`], a metadata read's error.
pub fn writable(meta: &crate::meta::Meta, bucket: &BucketName) -> Result<(), ReplicationError> {
    match writer_epoch(meta, bucket)? {
        Some(e) if e.role == epoch::Role::Replica => Err(ReplicationError::ReadOnlyReplica {
            bucket: bucket.clone(),
            epoch: e.epoch,
        }),
        _ => Ok(()),
    }
}

/// Every peer, by name.
///
/// # Errors
/// A read or decode failure.
pub fn peers(meta: &crate::meta::Meta) -> Result<Vec<PeerRecord>, crate::meta::MetaError> {
    meta.kv_list(
        crate::meta::Space::Replication,
        "replication/peer/",
        usize::MAX,
    )
}

/// One peer by name.
///
/// # Errors
/// A read or decode failure.
pub fn peer(
    meta: &crate::meta::Meta,
    name: &str,
) -> Result<Option<PeerRecord>, crate::meta::MetaError> {
    meta.kv_get(crate::meta::Space::Replication, &peer_key(name))
}

/// A bucket's rules, if it has any.
///
/// # Errors
/// A read or decode failure.
pub fn rules(
    meta: &crate::meta::Meta,
    bucket: &BucketName,
) -> Result<Option<BucketReplication>, crate::meta::MetaError> {
    meta.kv_get(crate::meta::Space::Replication, &rules_key(bucket))
}

/// The last heartbeat of every source that sends here.
///
/// # Errors
/// A read or decode failure.
pub fn sources(meta: &crate::meta::Meta) -> Result<Vec<SourceRecord>, crate::meta::MetaError> {
    meta.kv_list(
        crate::meta::Space::Replication,
        "replication/source/",
        usize::MAX,
    )
}

/// Whether this node keeps any replication record (a peer, rules, a writer epoch, a
/// source's heartbeat): such a node neither makes nor joins a cluster, whose members
/// would not share them while applying the writes they decide on.
///
/// # Errors
/// A read failure.
pub fn configured(meta: &crate::meta::Meta) -> Result<bool, crate::meta::MetaError> {
    // Peers, rules, writer epochs, logs: every record replication keeps.
    Ok(!meta
        .kv_keys(crate::meta::Space::Replication, "replication/", 1)?
        .is_empty())
}

/// Every bucket's replication rules.
///
/// # Errors
/// A read or decode failure.
pub fn all_rules(
    meta: &crate::meta::Meta,
) -> Result<Vec<(BucketName, BucketReplication)>, crate::meta::MetaError> {
    let list: Vec<BucketReplication> = meta.kv_list(
        crate::meta::Space::Replication,
        "replication/rules/",
        usize::MAX,
    )?;
    Ok(list.into_iter().map(|r| (r.bucket.clone(), r)).collect())
}

#[cfg(test)]
mod tests;
