//! The facade's replication operations: peers, rules, status, and the receiving side.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use super::{Node, offload};
use crate::background::replication::{Connector, SenderStatus, Senders, TargetBucket};
use crate::meta::Record;
use crate::replication::ReplicaVersion;
use crate::replication::epoch::{SenderEpoch, WriterEpoch};

/// Reads an assembly's body: the encoded [`ReplicaOp::Version`] of `version_id`, at most
/// [`crate::replication::ASSEMBLY_MAX`] bytes.
async fn assembly<S>(
    mut body: S,
    bucket: &BucketName,
    version_id: crate::types::VersionId,
) -> Result<ReplicaVersion, StoreError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    use futures::StreamExt;
    // As a body damaged on the way: the sender sends it again.
    let _ = bucket;
    let bad = || StoreError::ReplicaDigest {
        part: 0,
        expected: format!("the assembly record of version {version_id}"),
        computed: "a malformed or oversized record, or another version's".into(),
    };
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StoreError::Task {
            reason: e.to_string(),
        })?;
        if buf.len() + chunk.len() > crate::replication::ASSEMBLY_MAX {
            return Err(bad());
        }
        buf.extend_from_slice(&chunk);
    }
    match ReplicaOp::decode(&buf) {
        Ok(ReplicaOp::Version(rv)) if rv.version_id == version_id => Ok(*rv),
        _ => Err(bad()),
    }
}

/// What a replication request answers: its result, and for
/// [`ReplicaOp::Staged`] the numbers of the staged parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaAnswer {
    /// Stored, unchanged or diverged.
    pub result: ReplicaResult,
    /// For a staged-parts query: the parts held, ascending (`Some(None)`: the version is
    /// here already).
    pub staged: Option<Option<Vec<u16>>>,
}
use crate::replication::log::{Backlog, DeadEntry};
use crate::replication::{
    BucketReplication, PeerRecord, PeerTrust, ReplicaOp, ReplicaResult, ReplicationChange,
    ReplicationError, ReplicationOutcome, ReplicationRule, SourceRecord, valid_peer_name,
};
use crate::store::StoreError;
use crate::types::{BucketName, ObjectKey, Timestamp};

/// A peer to add: its settings and its key's secret (sealed before it is stored).
#[derive(Debug, Clone)]
pub struct NewPeer {
    /// 1 to 63 of `a-z`, `0-9`, `-`.
    pub name: String,
    /// `https://host:port` of its S3 listener (`http://` only with [`PeerTrust::Plain`]).
    pub endpoint: String,
    /// How its certificate is checked.
    pub trust: PeerTrust,
    /// The access key id of its `replication-peer` key.
    pub access_key: String,
    /// That key's secret.
    pub secret: String,
}

/// One peer's replication state: its log's backlog and its sender's status.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// The peer.
    pub peer: PeerRecord,
    /// What it has not acknowledged, read from the log.
    pub backlog: Backlog,
    /// The RPO now, in seconds (0 when nothing is pending).
    pub rpo_secs: f64,
    /// The lowest RPO alert threshold of the rules naming it, in seconds.
    pub rpo_alert_secs: Option<u64>,
    /// The buckets whose rules name it.
    pub buckets: Vec<BucketName>,
    /// Its sender's status (`None` until replication is started on this node).
    pub sender: Option<SenderStatus>,
    /// When the status was read.
    pub at: Timestamp,
}

fn context(name: &str) -> String {
    format!("replication-peer:{name}")
}

impl Node {
    /// Starts replication: a sender per peer, through transports `connector` makes,
    /// stopped by `shutdown`. Called once by the server after start; later peer changes
    /// start and stop senders by themselves.
    ///
    /// # Errors
    /// The peers cannot be read.
    pub async fn start_replication(
        &self,
        connector: Arc<dyn Connector>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let senders = Arc::new(Senders::new(
            self.store().clone(),
            Some(self.alerts.clone()),
            connector,
            shutdown,
        ));
        if self.senders.set(senders).is_err() {
            tracing::warn!("replication was started twice; the first start stands");
        }
        self.sync_senders().await
    }

    async fn sync_senders(&self) -> Result<(), StoreError> {
        let Some(senders) = self.senders.get().cloned() else {
            return Ok(());
        };
        let (store, ids) = (self.store().clone(), self.control.identities_handle());
        let peers = offload(move || {
            let mut out = Vec::new();
            for p in crate::replication::peers(store.meta())? {
                match ids.open_secret(&context(&p.name), &p.sealed_secret) {
                    Ok(secret) => out.push((p, secret)),
                    Err(e) => {
                        tracing::error!(peer = %p.name, error = %e, "cannot open the peer's key; not replicating to it");
                    }
                }
            }
            Ok::<_, StoreError>(out)
        })
        .await?;
        senders.sync(peers);
        Ok(())
    }

    /// Adds a peer (its secret sealed under the master key) and starts its sender.
    ///
    /// # Errors
    /// [`ReplicationError::InvalidPeer`] (name, endpoint or trust malformed),
    /// [`ReplicationError::PeerExists`], a commit's errors.
    pub async fn add_peer(&self, new: NewPeer) -> Result<PeerRecord, StoreError> {
        let invalid = |reason: &str| {
            StoreError::Replication(ReplicationError::InvalidPeer {
                name: new.name.clone(),
                reason: reason.to_owned(),
            })
        };
        if !valid_peer_name(&new.name) {
            return Err(invalid("a peer name is 1 to 63 of a-z, 0-9 and -"));
        }
        match (&new.trust, new.endpoint.split_once("://").map(|(s, _)| s)) {
            (PeerTrust::Plain, Some("http")) => {}
            (PeerTrust::CaPem(_) | PeerTrust::Fingerprint(_), Some("https")) => {}
            (PeerTrust::Plain, _) => {
                return Err(invalid(
                    "without a CA or fingerprint the endpoint must be http://",
                ));
            }
            _ => {
                return Err(invalid(
                    "the endpoint must be https:// with a CA or fingerprint",
                ));
            }
        }
        if new.access_key.is_empty() || new.secret.is_empty() {
            return Err(invalid("the peer's access key and secret are required"));
        }
        let sealed = self
            .identities()
            .seal_secret(&context(&new.name), &new.secret);
        let rec = PeerRecord {
            name: new.name,
            id: 0,
            endpoint: new.endpoint,
            trust: new.trust,
            access_key: new.access_key,
            sealed_secret: sealed,
            created: Timestamp(0),
        };
        let store = self.store().clone();
        let out =
            offload(move || store.change_replication(ReplicationChange::AddPeer(rec))).await?;
        let ReplicationOutcome::Peer(p) = out else {
            return Err(StoreError::Task {
                reason: format!("adding a peer answered {out:?}"),
            });
        };
        self.sync_senders().await?;
        Ok(p)
    }

    /// Removes a peer no rule names, with its log; its sender stops. `false` if there was
    /// no such peer.
    ///
    /// # Errors
    /// [`ReplicationError::PeerInUse`], a commit's errors.
    pub async fn remove_peer(&self, name: &str) -> Result<bool, StoreError> {
        let store = self.store().clone();
        let name = name.to_owned();
        let out = offload(move || store.change_replication(ReplicationChange::RemovePeer { name }))
            .await?;
        self.sync_senders().await?;
        Ok(out == ReplicationOutcome::Removed(true))
    }

    /// Every peer.
    ///
    /// # Errors
    /// A metadata read.
    pub async fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let store = self.store().clone();
        offload(move || Ok(crate::replication::peers(store.meta())?)).await
    }

    /// A bucket's replication rules.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a metadata read.
    pub async fn bucket_replication(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<BucketReplication>, StoreError> {
        let (store, b) = (self.store().clone(), bucket.clone());
        offload(move || {
            store.bucket(&b)?;
            Ok(crate::replication::rules(store.meta(), &b)?)
        })
        .await
    }

    /// Sets a bucket's replication rules (S3's PutBucketReplication). Each rule's target
    /// bucket is asked about first: it must exist with versioning, and with Object Lock
    /// when the source bucket has it ("a rule is refused when the source bucket has Object
    /// Lock and the target does not").
    ///
    /// # Errors
    /// [`ReplicationError::InvalidRules`] (malformed, or the target cannot take the
    /// bucket's versions, or the peer cannot be reached to check),
    /// [`ReplicationError::NoSuchPeer`], [`StoreError::NoSuchBucket`], a commit's errors.
    pub async fn put_bucket_replication(
        &self,
        bucket: &BucketName,
        rules: Vec<ReplicationRule>,
    ) -> Result<(), StoreError> {
        let config = BucketReplication {
            bucket: bucket.clone(),
            rules,
        };
        let source = {
            let (store, b) = (self.store().clone(), bucket.clone());
            offload(move || store.bucket(&b)).await?
        };
        config.validate(&source).map_err(|reason| {
            StoreError::Replication(ReplicationError::InvalidRules {
                bucket: bucket.clone(),
                reason,
            })
        })?;
        let invalid = |reason: String| {
            StoreError::Replication(ReplicationError::InvalidRules {
                bucket: bucket.clone(),
                reason,
            })
        };
        for rule in &config.rules {
            let Some(transport) = self.senders.get().and_then(|s| s.transport(&rule.peer)) else {
                if self.senders.get().is_none() {
                    // Replication not started (a node opened without listeners, as in
                    // tests of the core): the target cannot be checked, so nothing is.
                    continue;
                }
                return Err(StoreError::Replication(ReplicationError::NoSuchPeer {
                    name: rule.peer.clone(),
                }));
            };
            let target: TargetBucket =
                transport.bucket(&rule.target_bucket).await.map_err(|e| {
                    invalid(format!(
                        "cannot check bucket {} on peer {}: {e}",
                        rule.target_bucket, rule.peer
                    ))
                })?;
            if !target.versioning {
                return Err(invalid(format!(
                    "bucket {} on peer {} does not have versioning enabled",
                    rule.target_bucket, rule.peer
                )));
            }
            if source.object_lock && !target.object_lock {
                return Err(invalid(format!(
                    "bucket {bucket} has Object Lock and bucket {} on peer {} does not",
                    rule.target_bucket, rule.peer
                )));
            }
        }
        let store = self.store().clone();
        let b = bucket.clone();
        offload(move || {
            store.change_replication(ReplicationChange::SetRules {
                bucket: b,
                rules: Some(config),
            })
        })
        .await?;
        Ok(())
    }

    /// Removes a bucket's replication rules (S3's DeleteBucketReplication); what is logged
    /// already is still sent.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a commit's errors.
    pub async fn delete_bucket_replication(&self, bucket: &BucketName) -> Result<(), StoreError> {
        let (store, b) = (self.store().clone(), bucket.clone());
        offload(move || {
            store.change_replication(ReplicationChange::SetRules {
                bucket: b,
                rules: None,
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Replication(ReplicationError::NoSuchBucket { bucket }) => {
                StoreError::NoSuchBucket { bucket }
            }
            other => other,
        })?;
        Ok(())
    }

    /// Every peer's replication state, read from the log now.
    ///
    /// # Errors
    /// A metadata read.
    pub async fn replication_status(&self) -> Result<Vec<PeerStatus>, StoreError> {
        let store = self.store().clone();
        let rows = offload(move || {
            let now = store.clock().now();
            let rules = crate::replication::all_rules(store.meta())?;
            let mut out = Vec::new();
            for peer in crate::replication::peers(store.meta())? {
                let backlog = crate::replication::log::backlog(store.meta(), peer.id)?;
                let naming: Vec<(&BucketName, &ReplicationRule)> = rules
                    .iter()
                    .flat_map(|(b, r)| r.rules.iter().map(move |x| (b, x)))
                    .filter(|(_, r)| r.peer == peer.name)
                    .collect();
                let mut buckets: Vec<BucketName> =
                    naming.iter().map(|(b, _)| (*b).clone()).collect();
                buckets.dedup();
                out.push(PeerStatus {
                    rpo_secs: backlog.rpo_secs(now),
                    rpo_alert_secs: naming.iter().map(|(_, r)| r.rpo_alert_secs).min(),
                    buckets,
                    backlog,
                    peer,
                    sender: None,
                    at: now,
                });
            }
            Ok::<_, StoreError>(out)
        })
        .await?;
        let senders = self.senders.get();
        Ok(rows
            .into_iter()
            .map(|mut r| {
                r.sender = senders
                    .and_then(|s| s.get(&r.peer.name))
                    .map(|s| s.status());
                r
            })
            .collect())
    }

    /// A peer's parked entries.
    ///
    /// # Errors
    /// [`ReplicationError::NoSuchPeer`], a metadata read.
    pub async fn replication_dead(&self, peer: &str) -> Result<Vec<DeadEntry>, StoreError> {
        let (store, name) = (self.store().clone(), peer.to_owned());
        offload(move || {
            let p = crate::replication::peer(store.meta(), &name)?
                .ok_or(ReplicationError::NoSuchPeer { name })?;
            Ok(crate::replication::log::dead(store.meta(), p.id)?)
        })
        .await
    }

    /// Puts a peer's parked entries back in its log; how many.
    ///
    /// # Errors
    /// [`ReplicationError::NoSuchPeer`], a commit's errors.
    pub async fn retry_replication(&self, peer: &str) -> Result<usize, StoreError> {
        let (store, name) = (self.store().clone(), peer.to_owned());
        offload(move || {
            let p = crate::replication::peer(store.meta(), &name)?
                .ok_or(ReplicationError::NoSuchPeer { name })?;
            match store.change_replication(ReplicationChange::RetryDead {
                peer: p.id,
                reason: None,
            })? {
                ReplicationOutcome::Retried(n) => Ok(n),
                other => Err(StoreError::Task {
                    reason: format!("a retry answered {other:?}"),
                }),
            }
        })
        .await
    }

    /// Starts a resync to `peer` (after it lost data): the backfill worker walks every
    /// rule naming it again, and the sender ships only the versions the peer lacks. How
    /// many rules; the caller wakes the worker.
    ///
    /// # Errors
    /// [`ReplicationError::NoSuchPeer`], a metadata read or write.
    pub async fn resync_replication(&self, peer: &str) -> Result<usize, StoreError> {
        let (store, name) = (self.store().clone(), peer.to_owned());
        offload(move || {
            crate::replication::peer(store.meta(), &name)?
                .ok_or_else(|| ReplicationError::NoSuchPeer { name: name.clone() })?;
            Ok(crate::background::backfill::BackfillWorker::resync(
                &store, &name,
            )?)
        })
        .await
    }

    /// Applies a replication request a peer sent with the access key `from` (the caller
    /// checked its `replication-peer` role) and its source bucket's epoch `sender`: a
    /// version with its body, a delete marker, a lock join, or a heartbeat (kept under
    /// `from`). The epoch is judged first ([`crate::replication::epoch::receive`]): the
    /// first request pairs `bucket` as a read-only replica.
    ///
    /// # Errors
    /// [`crate::replication::ReplicationError::StaleEpoch`] (nothing written: the sender's
    /// side was superseded by a promotion here); see
    /// [`crate::store::Store::put_replica`], `put_replica_marker`, `put_replica_lock`.
    pub async fn replicate<S>(
        &self,
        from: &str,
        bucket: &BucketName,
        key: &ObjectKey,
        op: ReplicaOp,
        sender: SenderEpoch,
        body: S,
    ) -> Result<ReplicaAnswer, StoreError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        let (store, b, access_key) = (self.store().clone(), bucket.clone(), from.to_owned());
        offload(move || store.receive_epoch(&b, &access_key, sender)).await?;
        let result = match op {
            ReplicaOp::Staged { version_id } => {
                let (store, b, k) = (self.store().clone(), bucket.clone(), key.clone());
                let staged =
                    offload(move || store.staged_replica_parts(&b, &k, version_id)).await?;
                return Ok(ReplicaAnswer {
                    result: ReplicaResult::Unchanged,
                    staged: Some(staged),
                });
            }
            ReplicaOp::Part {
                version_id,
                number,
                len,
                blake3,
            } => {
                self.store()
                    .stage_replica_part(bucket, key, version_id, number, len, blake3, body)
                    .await
            }
            ReplicaOp::Assemble { version_id } => {
                let rv = assembly(body, bucket, version_id).await?;
                let (store, b, k) = (self.store().clone(), bucket.clone(), key.clone());
                offload(move || store.assemble_replica(&b, &k, rv)).await
            }
            ReplicaOp::Tags { version_id, tags } => {
                let (store, b, k) = (self.store().clone(), bucket.clone(), key.clone());
                offload(move || store.put_replica_tags(&b, &k, version_id, tags)).await
            }
            ReplicaOp::Version(rv) => self.store().put_replica(bucket, key, *rv, body).await,
            ReplicaOp::DeleteMarker {
                version_id,
                created,
            } => {
                let (store, b, k) = (self.store().clone(), bucket.clone(), key.clone());
                offload(move || store.put_replica_marker(&b, &k, version_id, created)).await
            }
            ReplicaOp::Lock { version_id, lock } => {
                let (store, b, k) = (self.store().clone(), bucket.clone(), key.clone());
                offload(move || store.put_replica_lock(&b, &k, version_id, &lock)).await
            }
            ReplicaOp::Heartbeat(heartbeat) => {
                let (store, access_key) = (self.store().clone(), from.to_owned());
                offload(move || {
                    store.change_replication(ReplicationChange::SourceHeartbeat {
                        access_key,
                        heartbeat,
                    })
                })
                .await?;
                Ok(ReplicaResult::Applied)
            }
        }?;
        Ok(ReplicaAnswer {
            result,
            staged: None,
        })
    }

    /// Makes a replica bucket writable: the primary of its pair at the next epoch, keeping
    /// its source's last heartbeat (the realized RPO). Its old primary is fenced when it
    /// next sends (`sites.md` §4.7).
    ///
    /// # Errors
    /// [`crate::replication::ReplicationError::NotPaired`] or `AlreadyPrimary`;
    /// [`StoreError::NoSuchBucket`]; a commit's errors.
    pub async fn promote_bucket(&self, bucket: &BucketName) -> Result<WriterEpoch, StoreError> {
        let (store, b) = (self.store().clone(), bucket.clone());
        offload(move || {
            store.bucket(&b)?;
            match store.change_replication(ReplicationChange::Promote { bucket: b })? {
                ReplicationOutcome::Epoch(e) => Ok(e),
                other => Err(StoreError::Task {
                    reason: format!("a promotion answered {other:?}"),
                }),
            }
        })
        .await
    }

    /// A source version's replication status (`x-amz-replication-status`), read from the
    /// log's index: two seeks, in place. `None` when it never replicated, or the index
    /// could not be read (a status is advice, never a reason to fail a read).
    pub fn source_replication_status(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &crate::types::VersionId,
    ) -> Option<crate::replication::log::SourceStatus> {
        crate::replication::log::version_status(self.store().meta(), bucket, key, version_id)
            .ok()
            .flatten()
    }

    /// Every rule's replication audit report.
    ///
    /// # Errors
    /// A metadata read.
    pub async fn replication_audits(
        &self,
    ) -> Result<Vec<crate::background::replication_audit::AuditReport>, StoreError> {
        let store = self.store().clone();
        offload(move || Ok(crate::background::replication_audit::reports(store.meta())?)).await
    }

    /// The running senders' transports by peer name, for the replication audit.
    pub fn transport_of(&self) -> crate::background::replication_audit::TransportOf {
        let senders = self.senders.clone();
        Arc::new(move |name: &str| senders.get().and_then(|s| s.transport(name)))
    }

    /// A bucket's writer epoch (`None`: not part of a replicated pair).
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a metadata read.
    pub async fn writer_epoch(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<WriterEpoch>, StoreError> {
        let (store, b) = (self.store().clone(), bucket.clone());
        offload(move || {
            store.bucket(&b)?;
            Ok(crate::replication::writer_epoch(store.meta(), &b)?)
        })
        .await
    }

    /// The last heartbeat of every source deployment sending here: after a disaster at a
    /// source, what it had not yet sent (its realized RPO).
    ///
    /// # Errors
    /// A metadata read.
    pub async fn replication_sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        let store = self.store().clone();
        offload(move || Ok(crate::replication::sources(store.meta())?)).await
    }
}
