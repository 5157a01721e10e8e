//! Object Lock on the S3 API: the lock headers of writes and reads, the bypass header, and
//! the lock configuration, retention and legal-hold operations. Decisions are the core's;
//! this module parses and formats.

use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Result};
use stele::Node;
use stele::meta::{
    DefaultRetention, LockRecord, LockRequest, Retention, RetentionMode, RetentionPeriod,
};

use super::error::bad_request;
use super::time;

const MALFORMED: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

pub(super) fn malformed() -> s3s::S3Error {
    bad_request(S3ErrorCode::MalformedXML, MALFORMED)
}

fn invalid_argument(msg: &'static str) -> s3s::S3Error {
    bad_request(S3ErrorCode::InvalidArgument, msg)
}

pub(super) fn to_timestamp(t: &dto::Timestamp) -> stele::Timestamp {
    let odt = ::time::OffsetDateTime::from(t.clone());
    stele::Timestamp::from_micros((odt.unix_timestamp_nanos() / 1000) as i64)
}

/// The `x-amz-object-lock-*` headers of PutObject, CreateMultipartUpload or CopyObject.
pub(super) fn lock_request(
    mode: Option<&dto::ObjectLockMode>,
    until: Option<&dto::Timestamp>,
    legal_hold: Option<&dto::ObjectLockLegalHoldStatus>,
) -> S3Result<LockRequest> {
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => Some(Retention {
            mode: RetentionMode::parse(m.as_str())
                .ok_or_else(|| invalid_argument("Unknown wormMode directive."))?,
            until: to_timestamp(u),
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    let legal_hold = match legal_hold.map(|h| h.as_str()) {
        None => None,
        Some("ON") => Some(true),
        Some("OFF") => Some(false),
        Some(_) => {
            return Err(invalid_argument(
                "Legal Hold must be either of 'ON' or 'OFF'",
            ));
        }
    };
    Ok(LockRequest {
        retention,
        legal_hold,
    })
}

/// Response headers for a version's lock state.
pub(super) struct LockHeaders {
    pub mode: Option<dto::ObjectLockMode>,
    pub until: Option<dto::Timestamp>,
    pub legal_hold: Option<dto::ObjectLockLegalHoldStatus>,
}

/// The headers of a version with a lock state; none for a version that never had one.
pub(super) fn lock_headers(lock: &LockRecord) -> LockHeaders {
    LockHeaders {
        mode: lock
            .retention
            .map(|r| dto::ObjectLockMode::from(r.mode.as_str().to_owned())),
        until: lock.retention.map(|r| time(r.until)),
        legal_hold: (!lock.is_empty()).then(|| {
            dto::ObjectLockLegalHoldStatus::from(legal_hold_str(lock.legal_hold).to_owned())
        }),
    }
}

fn legal_hold_str(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// Whether the request may bypass GOVERNANCE: it asked (`x-amz-bypass-governance-retention:
/// true`) and its identity holds the permission. Asking without the permission is no
/// bypass, so a protected version stays protected (403).
pub(super) async fn bypass<T>(
    node: &Node,
    req: &S3Request<T>,
    bucket: &str,
    asked: Option<bool>,
) -> bool {
    if asked != Some(true) {
        return false;
    }
    let Some(c) = req.credentials.as_ref() else {
        return false;
    };
    let allowed = match stele::BucketName::new(bucket) {
        Ok(b) => node.may_bypass(&c.access_key, &b).await,
        Err(_) => false,
    };
    if !allowed {
        tracing::warn!(access_key = %c.access_key, "governance bypass asked without the permission");
    }
    allowed
}

/// The bucket default retention of an ObjectLockConfiguration, validated as S3 does.
pub(super) fn parse_lock_configuration(
    c: Option<&dto::ObjectLockConfiguration>,
) -> S3Result<Option<DefaultRetention>> {
    let Some(c) = c else {
        return Err(malformed());
    };
    match c.object_lock_enabled.as_ref().map(|e| e.as_str()) {
        Some("Enabled") => {}
        _ => return Err(malformed()),
    }
    let Some(d) = c.rule.as_ref().and_then(|r| r.default_retention.as_ref()) else {
        return Ok(None);
    };
    let mode = d
        .mode
        .as_ref()
        .and_then(|m| RetentionMode::parse(m.as_str()))
        .ok_or_else(malformed)?;
    let invalid_period = super::error::invalid_retention_period;
    let period = match (d.days, d.years) {
        (Some(_), Some(_)) | (None, None) => return Err(malformed()),
        (Some(days), None) => {
            RetentionPeriod::Days(u32::try_from(days).map_err(|_| invalid_period())?)
        }
        (None, Some(years)) => {
            RetentionPeriod::Years(u32::try_from(years).map_err(|_| invalid_period())?)
        }
    };
    stele::lock::retention::validate_period(period).map_err(|_| invalid_period())?;
    Ok(Some(DefaultRetention { mode, period }))
}

pub(super) fn lock_configuration_dto(d: Option<DefaultRetention>) -> dto::ObjectLockConfiguration {
    dto::ObjectLockConfiguration {
        object_lock_enabled: Some(dto::ObjectLockEnabled::from_static(
            dto::ObjectLockEnabled::ENABLED,
        )),
        rule: d.map(|d| dto::ObjectLockRule {
            default_retention: Some(dto::DefaultRetention {
                mode: Some(dto::ObjectLockRetentionMode::from(
                    d.mode.as_str().to_owned(),
                )),
                days: match d.period {
                    RetentionPeriod::Days(n) => Some(n as i32),
                    RetentionPeriod::Years(_) => None,
                },
                years: match d.period {
                    RetentionPeriod::Years(n) => Some(n as i32),
                    RetentionPeriod::Days(_) => None,
                },
            }),
        }),
    }
}

/// The body of PutObjectRetention: `None` removes the retention.
pub(super) fn parse_retention(r: Option<&dto::ObjectLockRetention>) -> S3Result<Option<Retention>> {
    let Some(r) = r else {
        return Ok(None);
    };
    match (&r.mode, &r.retain_until_date) {
        (None, None) => Ok(None),
        (Some(m), Some(u)) => Ok(Some(Retention {
            mode: RetentionMode::parse(m.as_str()).ok_or_else(malformed)?,
            until: to_timestamp(u),
        })),
        _ => Err(malformed()),
    }
}

pub(super) fn retention_dto(lock: &LockRecord) -> Option<dto::ObjectLockRetention> {
    lock.retention.map(|r| dto::ObjectLockRetention {
        mode: Some(dto::ObjectLockRetentionMode::from(
            r.mode.as_str().to_owned(),
        )),
        retain_until_date: Some(time(r.until)),
    })
}

pub(super) fn parse_legal_hold(h: Option<&dto::ObjectLockLegalHold>) -> S3Result<bool> {
    match h.and_then(|h| h.status.as_ref()).map(|s| s.as_str()) {
        Some("ON") => Ok(true),
        Some("OFF") => Ok(false),
        _ => Err(malformed()),
    }
}

pub(super) fn legal_hold_dto(lock: &LockRecord) -> dto::ObjectLockLegalHold {
    dto::ObjectLockLegalHold {
        status: Some(dto::ObjectLockLegalHoldStatus::from(
            legal_hold_str(lock.legal_hold).to_owned(),
        )),
    }
}
