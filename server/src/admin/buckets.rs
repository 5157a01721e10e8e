//! Buckets made through the admin API, and their retention policies.

use super::*;

pub(super) async fn create_bucket(
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
    actor
        .node
        .create_bucket_with_default(&name, lock, default)
        .await?;
    actor.node.audit(&AuditEvent::BucketCreated {
        actor: actor.user.name.clone(),
        bucket: name.to_string(),
        lock,
    });
    Ok(StatusCode::CREATED)
}

pub(super) async fn get_policy(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<Option<api::buckets::Policy>>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadPolicy, Some(&b))?;
    let rec = actor.node.bucket(&b).await?;
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
    let o = actor
        .node
        .set_retention_policy(&actor.user.name, &b, policy)
        .await?;
    actor.node.audit(&AuditEvent::RetentionPolicy {
        actor: actor.user.name.clone(),
        bucket: name,
        pending: matches!(o, Outcome::Pending(_)),
    });
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
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::buckets::BucketSummary>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let all = actor.node.bucket_usages().await?;
    Ok(Json(all.into_iter().map(|(b, u)| summary(b, u)).collect()))
}

pub(super) async fn get_quota(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::buckets::BucketSummary>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadStatus, Some(&b))?;
    let rec = actor.node.bucket(&b).await?;
    let used = actor.node.bucket_usage(&b).await?;
    Ok(Json(summary(rec, used)))
}

pub(super) async fn put_quota(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::buckets::Quota>,
) -> Result<Json<api::buckets::BucketSummary>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    let (rec, used) = actor.node.set_bucket_quota(&b, body.quota_bytes).await?;
    actor.node.audit(&AuditEvent::BucketQuota {
        actor: actor.user.name.clone(),
        bucket: name,
        quota: body.quota_bytes,
    });
    Ok(Json(summary(rec, used)))
}

fn geo_answer(
    bucket: &str,
    geo: stele::meta::BucketGeo,
    ec: stele::config::EcParams,
) -> api::buckets::Geo {
    api::buckets::Geo {
        bucket: bucket.to_owned(),
        profile: geo.profile.map(|(k, m)| format!("{k}+{m}")),
        effective_profile: ec.to_string(),
        site_down_writes: match geo.site_down_writes {
            stele::meta::SiteDownWrites::Degrade => "degrade",
            stele::meta::SiteDownWrites::Refuse => "refuse",
        }
        .to_owned(),
    }
}

pub(super) async fn get_geo(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::buckets::Geo>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadStatus, Some(&b))?;
    let (geo, ec) = actor.node.bucket_geo(&b).await?;
    Ok(Json(geo_answer(&name, geo, ec)))
}

pub(super) async fn put_geo(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::buckets::GeoChange>,
) -> Result<Json<api::buckets::Geo>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    let (mut geo, _) = actor.node.bucket_geo(&b).await?;
    if body.default_profile {
        geo.profile = None;
    }
    if let Some(p) = &body.profile {
        let ec: stele::config::EcParams =
            p.parse().map_err(|e| bad(format!("profile {p:?}: {e}")))?;
        let k = u16::try_from(ec.data).map_err(|_| bad("K too large"))?;
        let m = u16::try_from(ec.parity).map_err(|_| bad("M too large"))?;
        geo.profile = Some((k, m));
    }
    match body.site_down_writes.as_deref() {
        None => {}
        Some("degrade") => geo.site_down_writes = stele::meta::SiteDownWrites::Degrade,
        Some("refuse") => geo.site_down_writes = stele::meta::SiteDownWrites::Refuse,
        Some(_) => return Err(bad("site_down_writes is degrade or refuse")),
    }
    actor.node.set_bucket_geo(&b, Some(geo)).await?;
    let (geo, ec) = actor.node.bucket_geo(&b).await?;
    Ok(Json(geo_answer(&name, geo, ec)))
}

pub(super) async fn delete_geo(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::buckets::Geo>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    actor.node.set_bucket_geo(&b, None).await?;
    let (geo, ec) = actor.node.bucket_geo(&b).await?;
    Ok(Json(geo_answer(&name, geo, ec)))
}
