//! HTTP conditional requests (RFC 9110 section 13) as S3 applies them to GET, HEAD and the
//! copy source of CopyObject.

use s3s::dto::{self, ETagCondition};
use s3s::{S3Error, S3ErrorCode, S3Result};
use stele::Timestamp;

pub struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a dto::Timestamp>,
    pub if_unmodified_since: Option<&'a dto::Timestamp>,
}

fn matches(c: &ETagCondition, etag: &str) -> bool {
    match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

fn secs(t: &dto::Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

/// Checks the conditions against a version's ETag and Last-Modified (compared at second
/// precision, as HTTP dates carry). `PreconditionFailed` (412) or `NotModified` (304);
/// for a copy source both are 412.
pub fn check(c: &Conditions<'_>, etag: &str, modified: Timestamp, copy: bool) -> S3Result<()> {
    let modified = modified.micros().div_euclid(1_000_000);
    let failed = || {
        S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let not_modified = || {
        if copy {
            failed()
        } else {
            let mut e = S3Error::new(S3ErrorCode::NotModified);
            e.set_status_code(http::StatusCode::NOT_MODIFIED);
            e
        }
    };
    match c.if_match {
        Some(m) if !matches(m, etag) => return Err(failed()),
        Some(_) => {}
        None => {
            if let Some(t) = c.if_unmodified_since
                && modified > secs(t)
            {
                return Err(failed());
            }
        }
    }
    match c.if_none_match {
        Some(m) if matches(m, etag) => return Err(not_modified()),
        Some(_) => {}
        None => {
            if let Some(t) = c.if_modified_since
                && modified <= secs(t)
            {
                return Err(not_modified());
            }
        }
    }
    Ok(())
}
