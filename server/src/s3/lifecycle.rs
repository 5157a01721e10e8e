//! Bucket lifecycle configuration on the S3 API: S3's XML rules to the core's and back.

use s3s::S3Result;
use s3s::dto;
use stele::meta::{LifecycleConfig, LifecycleRule};

use super::object_lock::malformed;

fn days(d: Option<i32>) -> S3Result<Option<u32>> {
    d.map(|d| u32::try_from(d).map_err(|_| malformed()))
        .transpose()
}

/// Converts S3's rules. Filters by tag or size and transitions are not supported: such a
/// rule is refused rather than applied to more objects than it names.
pub(super) fn parse(c: Option<&dto::BucketLifecycleConfiguration>) -> S3Result<LifecycleConfig> {
    let c = c.ok_or_else(malformed)?;
    let mut rules = Vec::with_capacity(c.rules.len());
    for r in &c.rules {
        let filter = r.filter.as_ref();
        if filter.is_some_and(|f| {
            f.tag.is_some()
                || f.object_size_greater_than.is_some()
                || f.object_size_less_than.is_some()
                || f.and.as_ref().is_some_and(|a| {
                    a.tags.as_ref().is_some_and(|t| !t.is_empty())
                        || a.object_size_greater_than.is_some()
                        || a.object_size_less_than.is_some()
                })
        }) || r.transitions.as_ref().is_some_and(|t| !t.is_empty())
            || r.noncurrent_version_transitions
                .as_ref()
                .is_some_and(|t| !t.is_empty())
        {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::NotImplemented,
                "Lifecycle filters by tag or size, and transitions, are not supported",
            ));
        }
        let prefix = filter
            .and_then(|f| {
                f.prefix
                    .clone()
                    .or_else(|| f.and.as_ref().and_then(|a| a.prefix.clone()))
            })
            .or_else(|| r.prefix.clone())
            .unwrap_or_default();
        let enabled = match r.status.as_str() {
            "Enabled" => true,
            "Disabled" => false,
            _ => return Err(malformed()),
        };
        if r.expiration.as_ref().is_some_and(|e| e.date.is_some()) {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::NotImplemented,
                "Lifecycle expiration by date is not supported; use Days",
            ));
        }
        rules.push(LifecycleRule {
            id: r.id.clone().unwrap_or_default(),
            enabled,
            prefix,
            expiration_days: days(r.expiration.as_ref().and_then(|e| e.days))?,
            expired_delete_markers: r
                .expiration
                .as_ref()
                .and_then(|e| e.expired_object_delete_marker)
                .unwrap_or(false),
            noncurrent_days: days(
                r.noncurrent_version_expiration
                    .as_ref()
                    .and_then(|n| n.noncurrent_days),
            )?,
            newer_noncurrent_versions: days(
                r.noncurrent_version_expiration
                    .as_ref()
                    .and_then(|n| n.newer_noncurrent_versions),
            )?,
            abort_multipart_days: days(
                r.abort_incomplete_multipart_upload
                    .as_ref()
                    .and_then(|a| a.days_after_initiation),
            )?,
        });
    }
    Ok(LifecycleConfig { rules })
}

pub(super) fn to_dto(c: &LifecycleConfig) -> Vec<dto::LifecycleRule> {
    c.rules
        .iter()
        .map(|r| dto::LifecycleRule {
            id: (!r.id.is_empty()).then(|| r.id.clone()),
            status: dto::ExpirationStatus::from(
                if r.enabled { "Enabled" } else { "Disabled" }.to_owned(),
            ),
            filter: Some(dto::LifecycleRuleFilter {
                prefix: Some(r.prefix.clone()),
                ..Default::default()
            }),
            expiration: (r.expiration_days.is_some() || r.expired_delete_markers).then(|| {
                dto::LifecycleExpiration {
                    days: r.expiration_days.map(|d| d as i32),
                    expired_object_delete_marker: r.expired_delete_markers.then_some(true),
                    date: None,
                }
            }),
            noncurrent_version_expiration: r.noncurrent_days.map(|d| {
                dto::NoncurrentVersionExpiration {
                    noncurrent_days: Some(d as i32),
                    newer_noncurrent_versions: r.newer_noncurrent_versions.map(|n| n as i32),
                }
            }),
            abort_incomplete_multipart_upload: r.abort_multipart_days.map(|d| {
                dto::AbortIncompleteMultipartUpload {
                    days_after_initiation: Some(d as i32),
                }
            }),
            noncurrent_version_transitions: None,
            prefix: None,
            transitions: None,
        })
        .collect()
}
