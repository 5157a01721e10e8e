//! Site-to-site replication: peers, a bucket's rules, every peer's state, and the entries
//! a peer refused for good. Peers hold a credential of another site, so only an
//! administrator (`ManageIdentities`) adds or removes them; their secret never leaves
//! the node (`wire::peer` drops it).

use stele::node::NewPeer;
use stele::replication::{PeerTrust, ReplicationRule};

use super::*;

fn invalid_peer(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "InvalidPeer", m.into())
}

/// The trust a request names: a CA as PEM text or a pinned fingerprint for `https://`,
/// neither for `http://` (the core checks which goes with which scheme).
fn trust(ca_pem: Option<String>, fingerprint: Option<String>) -> Result<PeerTrust, ApiError> {
    match (ca_pem, fingerprint) {
        (Some(_), Some(_)) => Err(invalid_peer("give ca_pem or fingerprint, not both")),
        (Some(pem), None) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
            match certs {
                Ok(list) if !list.is_empty() => Ok(PeerTrust::CaPem(pem)),
                Ok(_) => Err(invalid_peer("ca_pem holds no PEM certificate")),
                Err(e) => Err(invalid_peer(format!("ca_pem is not PEM certificates: {e}"))),
            }
        }
        (None, Some(f)) => parse_fingerprint(&f).map(PeerTrust::Fingerprint),
        (None, None) => Ok(PeerTrust::Plain),
    }
}

/// 64 hex digits, either case, with or without `:` between bytes.
fn parse_fingerprint(s: &str) -> Result<[u8; 32], ApiError> {
    let digits: String = s.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&digits)
        .map_err(|e| invalid_peer(format!("fingerprint {s:?} is not hex ({e})")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        invalid_peer(format!(
            "fingerprint {s:?} is {} bytes, not 32 (SHA-256)",
            b.len()
        ))
    })
}

pub(super) async fn add_peer(
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::replication::NewPeer>,
) -> Result<(StatusCode, Json<api::replication::Peer>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let api::replication::NewPeer {
        name,
        endpoint,
        ca_pem,
        fingerprint,
        access_key,
        secret_key,
    } = body;
    let trust = trust(ca_pem, fingerprint)?;
    let p = actor
        .node
        .add_peer(NewPeer {
            name,
            endpoint,
            trust,
            access_key,
            secret: secret_key,
        })
        .await?;
    tracing::info!(actor = %actor.user.name, peer = %p.name, endpoint = %p.endpoint, "replication peer added");
    Ok((StatusCode::CREATED, Json(wire::peer(p))))
}

pub(super) async fn list_peers(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::replication::Peer>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let peers = actor.node.peers().await?;
    Ok(Json(peers.into_iter().map(wire::peer).collect()))
}

pub(super) async fn remove_peer(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    if actor.node.remove_peer(&name).await? {
        tracing::info!(actor = %actor.user.name, peer = %name, "replication peer removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "NoSuchPeer",
            format!("no replication peer named {name}"),
        ))
    }
}

pub(super) async fn get_bucket_replication(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::replication::BucketReplication>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadStatus, Some(&b))?;
    match actor.node.bucket_replication(&b).await? {
        Some(r) => Ok(Json(wire::bucket_replication(r))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "NoReplication",
            format!("bucket {name} has no replication rules"),
        )),
    }
}

pub(super) async fn put_bucket_replication(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::replication::BucketReplication>,
) -> Result<Json<api::replication::BucketReplication>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    let rules = body
        .rules
        .into_iter()
        .map(|r| {
            let api::replication::Rule {
                id,
                enabled,
                prefix,
                peer,
                target_bucket,
                delete_markers,
                rpo_alert_secs,
                bandwidth_bytes_per_sec,
                backfill,
            } = r;
            Ok(ReplicationRule {
                id,
                enabled,
                prefix,
                peer,
                target_bucket: bucket(&target_bucket)?,
                delete_markers,
                rpo_alert_secs,
                bandwidth: bandwidth_bytes_per_sec,
                backfill,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    actor.node.put_bucket_replication(&b, rules.clone()).await?;
    tracing::info!(actor = %actor.user.name, bucket = %name, rules = rules.len(), "replication rules set");
    Ok(Json(api::replication::BucketReplication {
        rules: rules.into_iter().map(wire::rule).collect(),
    }))
}

pub(super) async fn delete_bucket_replication(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    actor.node.delete_bucket_replication(&b).await?;
    tracing::info!(actor = %actor.user.name, bucket = %name, "replication rules removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A bucket's side in its replicated pair.
pub(super) async fn writer_epoch(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::replication::WriterEpoch>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadStatus, Some(&b))?;
    let e = actor.node.writer_epoch(&b).await?;
    Ok(Json(wire::writer_epoch(&b, e)))
}

/// Failover: the replica bucket becomes the writable primary at the next epoch; the
/// answer holds the realized RPO its old primary's last heartbeat tells.
pub(super) async fn promote(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::replication::WriterEpoch>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    let e = actor.node.promote_bucket(&b).await?;
    tracing::warn!(actor = %actor.user.name, bucket = %name, epoch = e.epoch, "replica bucket promoted: writable here");
    Ok(Json(wire::writer_epoch(&b, Some(e))))
}

pub(super) async fn replication_status(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::replication::PeerStatus>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let list = actor.node.replication_status().await?;
    Ok(Json(list.into_iter().map(wire::peer_status).collect()))
}

/// Every rule's last replication audit (and the one in progress).
pub(super) async fn audit_reports(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::replication::AuditReport>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let list = actor.node.replication_audits().await?;
    Ok(Json(list.into_iter().map(wire::audit_report).collect()))
}

/// Audits every rule now, due or not (in the background).
pub(super) async fn audit_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "replication-audit".into(),
        action: "run".into(),
    });
    admin.audit.request();
    Ok(StatusCode::ACCEPTED)
}

/// The sources replicating here, as their last heartbeats said.
pub(super) async fn sources(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::replication::Source>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let list = actor.node.replication_sources().await?;
    Ok(Json(
        list.into_iter()
            .map(|s| api::replication::Source {
                access_key: s.access_key,
                last_seen: wire::time(s.received_at),
                sent_at: wire::time(s.heartbeat.sent_at),
                backlog_entries: s.heartbeat.backlog_entries,
                backlog_bytes: s.heartbeat.backlog_bytes,
                oldest: s.heartbeat.oldest.map(wire::time),
                rpo_seconds: s.heartbeat.rpo_secs(),
            })
            .collect(),
    ))
}

pub(super) async fn dead_entries(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<Vec<api::replication::DeadEntry>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let list = actor.node.replication_dead(&name).await?;
    Ok(Json(list.into_iter().map(wire::dead_entry).collect()))
}

pub(super) async fn retry_dead(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::replication::Retried>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    let n = actor.node.retry_replication(&name).await?;
    tracing::info!(actor = %actor.user.name, peer = %name, retried = n, "parked replication entries retried");
    Ok(Json(api::replication::Retried { retried: n as u64 }))
}

/// A resync after the peer lost data: every rule sending to it is walked again by the
/// backfill worker, which asks the peer about each version and sends only what it lacks.
pub(super) async fn resync(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::replication::Resync>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    let rules = actor.node.resync_replication(&name).await?;
    admin.backfill.run_now();
    tracing::info!(actor = %actor.user.name, peer = %name, rules, "replication resync started");
    Ok(Json(api::replication::Resync {
        rules: rules as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_with_or_without_colons() {
        let plain = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_fingerprint(&plain).expect("plain"), [0xab; 32]);
        assert_eq!(parse_fingerprint(&colons).expect("colons"), [0xab; 32]);
        for bad in ["", "abcd", "zz", &"ab".repeat(33)] {
            let e = parse_fingerprint(bad).expect_err(bad);
            assert_eq!(e.1, "InvalidPeer");
        }
    }

    #[test]
    fn one_trust_or_none() {
        assert_eq!(trust(None, None).expect("plain"), PeerTrust::Plain);
        assert!(trust(Some("x".into()), Some("ab".repeat(32))).is_err());
        assert!(trust(Some("not pem".into()), None).is_err());
        assert_eq!(
            trust(None, Some("01".repeat(32))).expect("pin"),
            PeerTrust::Fingerprint([1; 32])
        );
    }
}
