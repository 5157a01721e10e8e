//! Replication on the S3 listener: the requests a peer site's sender makes
//! (`x-stele-replication` on a PUT), and a bucket's replication configuration in AWS's
//! XML (PutBucketReplication, GetBucketReplication, DeleteBucketReplication).
//!
//! AWS's `ReplicationConfiguration` is mapped onto Stele's rules: `Destination/Bucket` is
//! the bucket on the peer (a bare name or `arn:aws:s3:::name`), `Destination/Account`
//! names the peer (`stelectl replication peer add`), `Filter/Prefix` (or the older
//! `Prefix`) the keys, `DeleteMarkerReplication` and `ExistingObjectReplication` the
//! delete markers and the backfill, and `Destination/ReplicationTime/Time/Minutes` the RPO
//! alert threshold (S3 Replication Time Control's 15 minutes when absent). `Role` is not
//! used: the peer's key is. Tag filters are refused.

use base64::Engine;
use s3s::dto::{self, PutObjectInput, PutObjectOutput};
use s3s::{S3Request, S3Response, S3Result};
use stele::meta::{Origin, Record, VersionRecord};
use stele::replication::epoch::SenderEpoch;
use stele::replication::{DEFAULT_RPO_ALERT_SECS, ReplicaOp, ReplicationRule};

use super::error::{bad_request, to_s3};
use super::{SteleS3, bucket_name, object_key};

/// The request header carrying a replication request (base64 of an encoded
/// [`ReplicaOp`]); only the replication-peer role may send it.
pub const HEADER: &str = "x-stele-replication";
/// The request header carrying the source bucket's writer epoch
/// ([`SenderEpoch::header`]); absent from senders that predate epochs (epoch 0, primary).
pub const EPOCH_HEADER: &str = "x-stele-replication-epoch";
/// The answer header to a staged-parts query: the part numbers held (`1-3,5`).
pub const STAGED_HEADER: &str = "x-stele-replication-staged";
/// The answer header: `applied`, `unchanged` or `diverged`.
pub const RESULT_HEADER: &str = "x-stele-replication-result";

/// `x-amz-replication-status` of a version: `REPLICA` for one a peer sent; for a source
/// version, `PENDING`, `COMPLETED` or `FAILED` as its replication log says; none for a
/// version that never replicated.
pub fn status_of(
    node: &stele::node::Node,
    bucket: &stele::BucketName,
    key: &stele::ObjectKey,
    rec: &VersionRecord,
) -> Option<dto::ReplicationStatus> {
    use stele::replication::log::SourceStatus;
    let s = match rec.origin {
        Origin::Replica => dto::ReplicationStatus::REPLICA,
        Origin::Lifecycle => return None,
        Origin::Client => match node.source_replication_status(bucket, key, &rec.version_id)? {
            SourceStatus::Pending => dto::ReplicationStatus::PENDING,
            SourceStatus::Completed => dto::ReplicationStatus::COMPLETED,
            SourceStatus::Failed => dto::ReplicationStatus::FAILED,
        },
    };
    Some(dto::ReplicationStatus::from_static(s))
}

/// A replication request from a peer: decode it and hand it to the node.
pub(super) async fn replicate(
    s3: &SteleS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let op = req
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|b| ReplicaOp::decode(&b).ok())
        .ok_or_else(|| {
            bad_request(
                s3s::S3ErrorCode::InvalidArgument,
                "malformed x-stele-replication header",
            )
        })?;
    let sender = match req.headers.get(EPOCH_HEADER) {
        None => SenderEpoch::of(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(SenderEpoch::parse)
            .ok_or_else(|| {
                bad_request(
                    s3s::S3ErrorCode::InvalidArgument,
                    "malformed x-stele-replication-epoch header",
                )
            })?,
    };
    let from = req
        .credentials
        .as_ref()
        .map(|c| c.access_key.clone())
        .unwrap_or_default();
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version_id = match &op {
        ReplicaOp::Version(v) => Some(v.version_id),
        ReplicaOp::Assemble { version_id } => Some(*version_id),
        ReplicaOp::DeleteMarker { version_id, .. }
        | ReplicaOp::Lock { version_id, .. }
        | ReplicaOp::Part { version_id, .. }
        | ReplicaOp::Staged { version_id }
        | ReplicaOp::Tags { version_id, .. } => Some(*version_id),
        ReplicaOp::Heartbeat(_) => None,
    };
    let body = super::body_stream(input.body);
    let answer = s3
        .node
        .replicate(&from, &bucket, &key, op, sender, body)
        .await
        .map_err(to_s3)?;
    let mut resp = S3Response::new(PutObjectOutput {
        version_id: version_id.map(|v| v.to_string()),
        ..Default::default()
    });
    resp.headers.insert(
        RESULT_HEADER,
        http::HeaderValue::from_static(answer.result.as_str()),
    );
    if let Some(staged) = answer.staged {
        let text = staged.map_or_else(
            || "complete".to_owned(),
            |p| stele::replication::format_parts(&p),
        );
        let v = http::HeaderValue::from_str(&text).map_err(|e| {
            to_s3(stele::StoreError::Task {
                reason: e.to_string(),
            })
        })?;
        resp.headers.insert(STAGED_HEADER, v);
    }
    Ok(resp)
}

fn invalid(msg: String) -> s3s::S3Error {
    s3s::S3Error::with_message(s3s::S3ErrorCode::InvalidRequest, msg)
}

fn enabled(s: &str) -> bool {
    s.eq_ignore_ascii_case("Enabled")
}

/// AWS's rules as Stele's.
fn from_xml(config: &dto::ReplicationConfiguration) -> S3Result<Vec<ReplicationRule>> {
    let mut out = Vec::with_capacity(config.rules.len());
    for (i, r) in config.rules.iter().enumerate() {
        let id = r.id.clone().unwrap_or_else(|| format!("rule-{}", i + 1));
        let prefix = match (&r.filter, &r.prefix) {
            (Some(f), _) if f.tag.is_some() || f.and.is_some() => {
                return Err(invalid(format!(
                    "rule {id}: only prefix filters are supported"
                )));
            }
            (Some(f), _) => f.prefix.clone().unwrap_or_default(),
            (None, p) => p.clone().unwrap_or_default(),
        };
        let d = &r.destination;
        let peer = d.account.clone().ok_or_else(|| {
            invalid(format!(
                "rule {id}: Destination/Account must name a replication peer"
            ))
        })?;
        let target = d.bucket.strip_prefix("arn:aws:s3:::").unwrap_or(&d.bucket);
        let target_bucket = stele::BucketName::new(target.to_owned())
            .map_err(|e| invalid(format!("rule {id}: {e}")))?;
        let rpo_alert_secs = d
            .replication_time
            .as_ref()
            .filter(|t| enabled(t.status.as_str()))
            .and_then(|t| t.time.minutes)
            .map_or(DEFAULT_RPO_ALERT_SECS, |m| {
                u64::try_from(m).unwrap_or(0) * 60
            });
        out.push(ReplicationRule {
            id,
            enabled: enabled(r.status.as_str()),
            prefix,
            peer,
            target_bucket,
            delete_markers: r
                .delete_marker_replication
                .as_ref()
                .and_then(|d| d.status.as_ref())
                .is_some_and(|s| enabled(s.as_str())),
            rpo_alert_secs,
            bandwidth: None,
            backfill: r
                .existing_object_replication
                .as_ref()
                .is_some_and(|e| enabled(e.status.as_str())),
        });
    }
    Ok(out)
}

fn status(on: bool) -> &'static str {
    if on { "Enabled" } else { "Disabled" }
}

/// Stele's rules as AWS's.
fn to_xml(rules: &[ReplicationRule]) -> dto::ReplicationConfiguration {
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| dto::ReplicationRule {
            id: Some(r.id.clone()),
            priority: i32::try_from(i + 1).ok(),
            status: dto::ReplicationRuleStatus::from(status(r.enabled).to_owned()),
            filter: Some(dto::ReplicationRuleFilter {
                prefix: Some(r.prefix.clone()),
                and: None,
                tag: None,
            }),
            prefix: None,
            delete_marker_replication: Some(dto::DeleteMarkerReplication {
                status: Some(dto::DeleteMarkerReplicationStatus::from(
                    status(r.delete_markers).to_owned(),
                )),
            }),
            existing_object_replication: Some(dto::ExistingObjectReplication {
                status: dto::ExistingObjectReplicationStatus::from(status(r.backfill).to_owned()),
            }),
            source_selection_criteria: None,
            destination: dto::Destination {
                bucket: format!("arn:aws:s3:::{}", r.target_bucket),
                account: Some(r.peer.clone()),
                replication_time: Some(dto::ReplicationTime {
                    status: dto::ReplicationTimeStatus::from("Enabled".to_owned()),
                    time: dto::ReplicationTimeValue {
                        minutes: i32::try_from(r.rpo_alert_secs.div_ceil(60)).ok(),
                    },
                }),
                access_control_translation: None,
                encryption_configuration: None,
                metrics: None,
                storage_class: None,
            },
        })
        .collect();
    dto::ReplicationConfiguration {
        role: "arn:stele:iam:::role/replication".into(),
        rules,
    }
}

pub(super) async fn put_bucket_replication(
    s3: &SteleS3,
    req: S3Request<dto::PutBucketReplicationInput>,
) -> S3Result<S3Response<dto::PutBucketReplicationOutput>> {
    let bucket = bucket_name(&req.input.bucket)?;
    let rules = from_xml(&req.input.replication_configuration)?;
    s3.node
        .put_bucket_replication(&bucket, rules)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::PutBucketReplicationOutput::default()))
}

pub(super) async fn get_bucket_replication(
    s3: &SteleS3,
    req: S3Request<dto::GetBucketReplicationInput>,
) -> S3Result<S3Response<dto::GetBucketReplicationOutput>> {
    let bucket = bucket_name(&req.input.bucket)?;
    let config = s3
        .node
        .bucket_replication(&bucket)
        .await
        .map_err(to_s3)?
        .ok_or_else(|| {
            let mut e = s3s::S3Error::with_message(
                s3s::S3ErrorCode::ReplicationConfigurationNotFoundError,
                "The replication configuration was not found",
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            e
        })?;
    Ok(S3Response::new(dto::GetBucketReplicationOutput {
        replication_configuration: Some(to_xml(&config.rules)),
    }))
}

pub(super) async fn delete_bucket_replication(
    s3: &SteleS3,
    req: S3Request<dto::DeleteBucketReplicationInput>,
) -> S3Result<S3Response<dto::DeleteBucketReplicationOutput>> {
    let bucket = bucket_name(&req.input.bucket)?;
    s3.node
        .delete_bucket_replication(&bucket)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(
        dto::DeleteBucketReplicationOutput::default(),
    ))
}
