//! Buckets made through the admin API, and their retention policies.

use super::*;

pub(super) async fn create_bucket(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::buckets::NewBucket>,
) -> Result<StatusCode, ApiError> {
    let name = bucket(&body.name)?;
    need(&actor, Action::ManageBuckets, Some(&name))?;
    let default = match (body.retention_mode.as_deref(), body.retention_days) {
        (None, None) => None,
        (Some(m), Some(d)) => Some(DefaultRetention {
            mode: RetentionMode::parse(m).ok_or_else(|| bad("mode is GOVERNANCE or COMPLIANCE"))?,
            period: RetentionPeriod::Days(d),
        }),
        _ => return Err(bad("retention_mode and retention_days go together")),
    };
    let lock = body.lock || default.is_some();
    admin
        .node
        .create_bucket_with_default(&name, lock, default)
        .await?;
    AuditEvent::BucketCreated {
        actor: actor.user.name.clone(),
        bucket: name.to_string(),
        lock,
    }
    .emit();
    Ok(StatusCode::CREATED)
}

pub(super) async fn get_policy(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<Option<api::buckets::Policy>>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadPolicy, Some(&b))?;
    let rec = admin.node.bucket(&b).await?;
    Ok(Json(rec.policy.map(|p| api::buckets::Policy {
        min_days: p.min_days,
        max_days: p.max_days,
        modes: p.modes.iter().map(|m| m.as_str().to_owned()).collect(),
        below_min: match p.below_min {
            BelowMinimum::Refuse => "refuse".into(),
            BelowMinimum::Raise => "raise".into(),
        },
    })))
}

pub(super) async fn put_policy(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<Option<api::buckets::Policy>>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::WritePolicy, Some(&b))?;
    let policy = match body {
        None => None,
        Some(p) => Some(RetentionPolicy {
            min_days: p.min_days,
            max_days: p.max_days,
            modes: p
                .modes
                .iter()
                .map(|m| {
                    RetentionMode::parse(m).ok_or_else(|| bad("modes are GOVERNANCE or COMPLIANCE"))
                })
                .collect::<Result<_, _>>()?,
            below_min: match p.below_min.as_str() {
                "refuse" => BelowMinimum::Refuse,
                "raise" => BelowMinimum::Raise,
                _ => return Err(bad("below_min is refuse or raise")),
            },
        }),
    };
    let o = admin
        .node
        .set_retention_policy(&actor.user.name, &b, policy)
        .await?;
    AuditEvent::RetentionPolicy {
        actor: actor.user.name.clone(),
        bucket: name,
        pending: matches!(o, Outcome::Pending(_)),
    }
    .emit();
    Ok(outcome(o))
}

fn summary(
    b: stele::meta::BucketRecord,
    u: stele::meta::BucketUsage,
) -> api::buckets::BucketSummary {
    api::buckets::BucketSummary {
        name: b.name.to_string(),
        versioning: match b.versioning {
            Versioning::Unversioned => "Unversioned",
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        }
        .into(),
        object_lock: b.object_lock,
        quota_bytes: b.quota,
        used_bytes: u.bytes,
        objects: u.objects,
        upload_bytes: u.upload_bytes,
    }
}

/// Every bucket with its quota and usage.
pub(super) async fn list_buckets(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::buckets::BucketSummary>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let all = admin.node.bucket_usages().await?;
    Ok(Json(all.into_iter().map(|(b, u)| summary(b, u)).collect()))
}

pub(super) async fn get_quota(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::buckets::BucketSummary>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadStatus, Some(&b))?;
    let rec = admin.node.bucket(&b).await?;
    let used = admin.node.bucket_usage(&b).await?;
    Ok(Json(summary(rec, used)))
}

pub(super) async fn put_quota(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::buckets::Quota>,
) -> Result<Json<api::buckets::BucketSummary>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    let (rec, used) = admin.node.set_bucket_quota(&b, body.quota_bytes).await?;
    AuditEvent::BucketQuota {
        actor: actor.user.name.clone(),
        bucket: name,
        quota: body.quota_bytes,
    }
    .emit();
    Ok(Json(summary(rec, used)))
}
