//! The audit leaf an applied command writes in its own batch, so that a change and its
//! record are one write: neither exists without the other, even across kill -9. A
//! command that changed nothing (a removal of a version already gone, a replication
//! acknowledgement or heartbeat, which are bookkeeping) writes none.

use serde_json::{Value, json};

use super::{BucketChange, LockChange, MetaCommand, Outcome, Stamped};
use crate::audit::Entry;
use crate::audit::entry::iso_micros;
use crate::audit::report::{period_json, versioning_name};
use crate::identity::{IdentityChange, IdentityOutcome, UserChange};
use crate::lock::PolicyChange;
use crate::membership::ClusterChange;
use crate::meta::{LockRecord, Origin, VersionKind, VersionRecord};
use crate::replication::ReplicationChange;
use crate::types::VersionId;

fn version_name(v: &VersionRecord) -> String {
    if v.null_version {
        "null".to_owned()
    } else {
        v.version_id.to_string()
    }
}

/// The event of a committed version: an object or a delete marker.
fn commit_event(v: &VersionRecord) -> &'static str {
    match v.kind {
        VersionKind::Object => "version-created",
        VersionKind::DeleteMarker => "delete-marker-created",
    }
}

/// The event of a lock change.
fn lock_event(change: &LockChange) -> &'static str {
    match change {
        LockChange::Retention { .. } => "retention-set",
        LockChange::LegalHold(_) => "legal-hold-set",
        LockChange::Join(_) => "lock-joined",
    }
}

fn id_name(id: &VersionId) -> String {
    id.to_string()
}

/// A lock state as the trail shows it: mode, retain-until date (ISO 8601), legal hold.
pub(crate) fn lock_json(l: &LockRecord) -> Value {
    json!({
        "mode": l.retention.map(|r| r.mode.as_str()),
        "until": l.retention.map(|r| iso_micros(r.until)),
        "legal_hold": l.legal_hold,
    })
}

fn origin(o: &Origin) -> &'static str {
    match o {
        Origin::Client => "client",
        _ => "replica",
    }
}

/// The version's identity and content as the trail records its creation: size, ETag,
/// BLAKE3 of its bytes (per part for a multipart object), its origin.
fn created(e: Entry, v: &VersionRecord) -> Entry {
    let e = e
        .with("size", v.size)
        .with("etag", &v.etag)
        .with("origin", origin(&v.origin));
    if v.blake3.is_empty() {
        e
    } else {
        e.with(
            "blake3",
            v.blake3.iter().map(hex::encode).collect::<Vec<_>>(),
        )
    }
}

/// The leaf of `c`, applied with `outcome`; `None` when it changed nothing worth one.
/// `changed`: whether the command's batch wrote anything (a replication change that only
/// confirmed what was there writes no leaf).
pub(crate) fn leaf_of(c: &Stamped, outcome: &Outcome, changed: bool) -> Option<Entry> {
    let at = |name: &str| Entry::new(name, c.now).by(c.by.as_ref());
    Some(match (&c.cmd, outcome) {
        (MetaCommand::CommitVersion(v), _) => {
            let mut e = created(at(commit_event(&v.record)), &v.record).on(
                v.bucket.as_str(),
                Some(v.key.as_str()),
                Some(version_name(&v.record)),
            );
            if let Some(l) = &v.lock {
                e = e.with("lock", lock_json(l));
            }
            if let Some(r) = &v.replaces {
                e = e.with("replaces", id_name(r));
            }
            e
        }
        (
            MetaCommand::RemoveVersion {
                bucket,
                key,
                bypass,
                ..
            },
            Outcome::Removed(Some(v)),
        ) => at("version-removed")
            .on(bucket.as_str(), Some(key.as_str()), Some(version_name(v)))
            .with("size", v.size)
            .with("delete_marker", v.kind == VersionKind::DeleteMarker)
            .with("bypass_governance", *bypass),
        (
            MetaCommand::UpdateLock {
                bucket,
                key,
                version_id,
                change,
            },
            Outcome::Lock(Some(next)),
        ) => {
            let bypass = matches!(change, LockChange::Retention { bypass: true, .. });
            at(lock_event(change))
                .on(
                    bucket.as_str(),
                    Some(key.as_str()),
                    Some(id_name(version_id)),
                )
                .with("lock", lock_json(next))
                .with("bypass_governance", bypass)
        }
        (MetaCommand::UpdateBucket { bucket, change }, Outcome::Bucket(Some((rec, how)))) => {
            let (name, value) = match change {
                BucketChange::Versioning(v) => {
                    ("bucket-versioning-set", json!(versioning_name(*v)))
                }
                BucketChange::LockConfiguration(d) => (
                    "bucket-lock-configuration-set",
                    json!(d.map(
                        |d| json!({"mode": d.mode.as_str(), "period": period_json(d.period)})
                    )),
                ),
                BucketChange::RetentionPolicy { policy, .. } => (
                    "bucket-retention-policy-set",
                    serde_json::to_value(policy).unwrap_or(Value::Null),
                ),
                BucketChange::Quota(q) => ("bucket-quota-set", json!(q)),
            };
            debug_assert_eq!(&rec.name, bucket);
            at(name)
                .on(bucket.as_str(), None, None)
                .with("value", value)
                .with("loosens", *how == PolicyChange::Loosens)
        }
        (MetaCommand::CommitPart { upload, part }, _) => at("part-uploaded")
            .on(upload.bucket.as_str(), Some(upload.key.as_str()), None)
            .with("upload_id", upload.upload_id.to_string())
            .with("part_number", part.part_number)
            .with("size", part.size)
            .with("etag", &part.etag),
        (
            MetaCommand::FinishUpload {
                upload, version, ..
            },
            Outcome::UploadFinished(parts),
        ) => match version {
            Some(v) => created(at("version-created"), &v.record)
                .on(
                    upload.bucket.as_str(),
                    Some(upload.key.as_str()),
                    Some(version_name(&v.record)),
                )
                .with("upload_id", upload.upload_id.to_string())
                .with("parts", parts.len())
                .with("lock", lock_json(&v.lock)),
            None => at("upload-aborted")
                .on(upload.bucket.as_str(), Some(upload.key.as_str()), None)
                .with("upload_id", upload.upload_id.to_string())
                .with("parts", parts.len()),
        },
        (MetaCommand::Identity(change), Outcome::Identity(o)) => identity(at, change, o),
        (MetaCommand::Cluster(change), Outcome::Cluster(_)) => cluster(at, change),
        (MetaCommand::Replication(change), _) if changed => replication(at, change)?,
        (
            MetaCommand::SetTags {
                bucket,
                key,
                version_id,
                tags,
                ..
            },
            Outcome::Tagged(Some(_)),
        ) => at("tags-set")
            .on(
                bucket.as_str(),
                Some(key.as_str()),
                Some(id_name(version_id)),
            )
            .with("tags", tags.tags.len()),
        (MetaCommand::CreateBucket(rec), Outcome::BucketCreated(true)) => at("bucket-created")
            .on(rec.name.as_str(), None, None)
            .with("object_lock", rec.object_lock),
        (MetaCommand::DeleteBucket { bucket }, Outcome::BucketDeleted(true)) => {
            at("bucket-deleted").on(bucket.as_str(), None, None)
        }
        // The rules that remove data by themselves: the trail holds them.
        (MetaCommand::SetLifecycle { bucket, config }, Outcome::LifecycleSet(true)) => {
            at("bucket-lifecycle-set")
                .on(bucket.as_str(), None, None)
                .with(
                    "rules",
                    config
                        .as_ref()
                        .map(|c| serde_json::to_value(c).unwrap_or_default()),
                )
        }
        // How a bucket's data survives a site: the trail holds it.
        (MetaCommand::SetBucketGeo { bucket, config }, Outcome::BucketGeoSet(true)) => {
            at("bucket-geo-set").on(bucket.as_str(), None, None).with(
                "geo",
                config
                    .as_ref()
                    .map(|c| serde_json::to_value(c).unwrap_or_default()),
            )
        }
        _ => return None,
    })
}

fn identity(at: impl Fn(&str) -> Entry, change: &IdentityChange, o: &IdentityOutcome) -> Entry {
    match change {
        IdentityChange::CreateUser { user } => at("user-created")
            .with("user", &user.name)
            .with("grants", &user.grants),
        IdentityChange::ChangeUser { name, change } => match change {
            UserChange::Grants(g) => at("grants-set").with("user", name).with("grants", g),
            UserChange::Disabled(d) => at("user-disabled").with("user", name).with("disabled", d),
            UserChange::Bypass(s) => at("governance-bypass-set")
                .with("user", name)
                .with("scope", s),
        },
        IdentityChange::DeleteUser { name } => at("user-deleted").with("user", name),
        IdentityChange::PutKey { key } => at("key-created")
            .with("user", &key.user)
            .with("access_key", &key.access_key)
            .with("plane", key.plane),
        IdentityChange::RevokeKey { access_key } => {
            at("key-revoked").with("access_key", access_key)
        }
        IdentityChange::FileApproval { approval } => at("approval-requested")
            .with("id", &approval.id)
            .with("operation", &approval.operation)
            .with("requested_by", &approval.requested_by)
            .with("expires", iso_micros(approval.expires)),
        IdentityChange::ConsumeApproval { id, actor } => {
            let e = at("approval-consumed")
                .with("id", id)
                .with("approved_by", actor);
            match o {
                IdentityOutcome::Approved(a) => e
                    .with("operation", &a.operation)
                    .with("requested_by", &a.requested_by),
                _ => e.with("expired", true),
            }
        }
        IdentityChange::DenyApproval { id } => at("approval-denied").with("id", id),
        IdentityChange::SetSettings { settings } => {
            at("settings-set").with("two_person_rule", settings.two_person_rule)
        }
        IdentityChange::AddKey { key } => at("key-created")
            .with("user", &key.user)
            .with("access_key", &key.access_key)
            .with("plane", key.plane),
        IdentityChange::ResealKey { access_key, .. } => {
            at("key-resealed").with("access_key", access_key)
        }
    }
}

fn replication(at: impl Fn(&str) -> Entry, change: &ReplicationChange) -> Option<Entry> {
    Some(match change {
        ReplicationChange::AddPeer(p) => at("replication-peer-added")
            .with("peer", &p.name)
            .with("endpoint", &p.endpoint),
        ReplicationChange::RemovePeer { name } => at("replication-peer-removed").with("peer", name),
        ReplicationChange::SetRules { bucket, rules } => at("replication-rules-set")
            .on(bucket.as_str(), None, None)
            .with("removed", rules.is_none()),
        ReplicationChange::Park {
            peer,
            seq,
            reason,
            detail,
        } => at("replication-parked")
            .with("peer_log", peer)
            .with("seq", seq)
            .with("reason", reason.as_str())
            .with("answer", detail),
        ReplicationChange::RetryDead { peer, .. } => {
            at("replication-dead-retried").with("peer_log", peer)
        }
        ReplicationChange::Receive { bucket, .. } => {
            at("replication-epoch-followed").on(bucket.as_str(), None, None)
        }
        ReplicationChange::Promote { bucket } => {
            at("replica-promoted").on(bucket.as_str(), None, None)
        }
        ReplicationChange::Fence { bucket, current } => at("replication-fenced")
            .on(bucket.as_str(), None, None)
            .with("peer_epoch", current),
        ReplicationChange::Backfill { .. }
        | ReplicationChange::Acknowledge { .. }
        | ReplicationChange::SourceHeartbeat { .. } => return None,
    })
}

/// The event of a membership change (a token by its hash's first 8 bytes: the secret
/// itself is never written).
fn cluster(at: impl Fn(&str) -> Entry, change: &ClusterChange) -> Entry {
    match change {
        ClusterChange::Init {
            cluster_id,
            ca_fingerprint,
            node_id,
            ..
        } => at("cluster-initialized")
            .with("cluster_id", cluster_id)
            .with("ca_fingerprint", ca_fingerprint)
            .with("node_id", node_id),
        ClusterChange::IssueToken {
            token_hash,
            expires,
        } => at("join-token-issued")
            .with("token", hex::encode(&token_hash[..8]))
            .with("expires", iso_micros(*expires)),
        ClusterChange::Join {
            token_hash,
            node_id,
            cert_fingerprint,
        } => at("node-joined")
            .with("token", hex::encode(&token_hash[..8]))
            .with("node_id", node_id)
            .with("cert_fingerprint", cert_fingerprint),
        ClusterChange::Remove { node_id } => at("node-removed").with("node_id", node_id),
        ClusterChange::StageWeight { disk, weight } => at("layout-weight-staged")
            .with("disk", disk.to_string())
            .with("weight", weight),
        ClusterChange::ApplyLayout { expect } => at("layout-applied").with("from_epoch", expect),
        ClusterChange::RevertLayout => at("layout-reverted"),
        ClusterChange::Disks {
            node_id,
            site,
            disks,
        } => at("node-disks-recorded")
            .with("node_id", node_id)
            .with("site", site)
            .with(
                "disks",
                disks
                    .iter()
                    .map(|d| format!("{}={}", d.id, d.uuid))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
    }
}

/// The leaf of `c` refused for `reason` (nothing written): the event it would have made,
/// about what it would have changed, with `"outcome":"refused"`.
pub(crate) fn refusal_of(c: &Stamped, reason: String) -> Entry {
    let at = |name: &str| Entry::new(name, c.now).by(c.by.as_ref());
    let e = match &c.cmd {
        MetaCommand::CommitVersion(v) => {
            at(commit_event(&v.record)).on(v.bucket.as_str(), Some(v.key.as_str()), None)
        }
        MetaCommand::RemoveVersion {
            bucket,
            key,
            version_id,
            bypass,
        } => at("version-removed")
            .on(
                bucket.as_str(),
                Some(key.as_str()),
                Some(id_name(version_id)),
            )
            .with("bypass_governance", *bypass),
        MetaCommand::UpdateLock {
            bucket,
            key,
            version_id,
            change,
        } => at(lock_event(change)).on(
            bucket.as_str(),
            Some(key.as_str()),
            Some(id_name(version_id)),
        ),
        MetaCommand::UpdateBucket { bucket, .. } => {
            at("bucket-changed").on(bucket.as_str(), None, None)
        }
        MetaCommand::CommitPart { upload, .. } => {
            at("part-uploaded").on(upload.bucket.as_str(), Some(upload.key.as_str()), None)
        }
        MetaCommand::FinishUpload {
            upload, version, ..
        } => at(if version.is_some() {
            "version-created"
        } else {
            "upload-aborted"
        })
        .on(upload.bucket.as_str(), Some(upload.key.as_str()), None),
        MetaCommand::Identity(_) => at("identity-changed"),
        MetaCommand::Replication(_) => at("replication-changed"),
        MetaCommand::Cluster(change) => cluster(at, change),
        MetaCommand::CreateBucket(rec) => at("bucket-created").on(rec.name.as_str(), None, None),
        MetaCommand::DeleteBucket { bucket } => {
            at("bucket-deleted").on(bucket.as_str(), None, None)
        }
        MetaCommand::CreateUpload(rec) => {
            at("upload-created").on(rec.bucket.as_str(), Some(rec.key.as_str()), None)
        }
        MetaCommand::SetTags {
            bucket,
            key,
            version_id,
            ..
        } => at("tags-set").on(
            bucket.as_str(),
            Some(key.as_str()),
            Some(id_name(version_id)),
        ),
        MetaCommand::SetPlacement { segment, index, .. } => at("shard-placed")
            .with("segment", segment.to_string())
            .with("shard", index),
        MetaCommand::DropPlacements { segment } => {
            at("shard-placements-dropped").with("segment", segment.to_string())
        }
        MetaCommand::MoveShard {
            segment,
            index,
            from,
            to,
            ..
        } => at("shard-moved")
            .with("segment", segment.to_string())
            .with("shard", index)
            .with("from", from)
            .with("to", &to.disk),
        MetaCommand::SetLifecycle { bucket, .. } => {
            at("bucket-lifecycle-set").on(bucket.as_str(), None, None)
        }
        MetaCommand::SetBucketGeo { bucket, .. } => {
            at("bucket-geo-set").on(bucket.as_str(), None, None)
        }
    };
    e.refused(reason)
}
