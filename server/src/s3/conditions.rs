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
/// precision, as HTTP dates carry). `PreconditionFailed` (412) or `NotModified` (304,
/// with the version's `ETag` and `Last-Modified`, as S3 and RFC 9110 section 15.4.5 send
/// them); for a copy source both are 412.
pub fn check(c: &Conditions<'_>, etag: &str, modified: Timestamp, copy: bool) -> S3Result<()> {
    let last_modified = http_date(modified);
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
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                h.insert(http::header::ETAG, v);
            }
            if let Some(v) = last_modified
                .as_deref()
                .and_then(|d| http::HeaderValue::from_str(d).ok())
            {
                h.insert(http::header::LAST_MODIFIED, v);
            }
            e.set_headers(h);
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

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as HTTP headers carry dates.
pub fn http_date(t: Timestamp) -> Option<String> {
    const IMF: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(t.micros().div_euclid(1_000_000))
        .ok()
        .and_then(|d| d.format(IMF).ok())
}

/// The condition a PutObject or CompleteMultipartUpload puts on the key's current object:
/// `If-None-Match: *` (no current object) or `If-Match` (a current object, with that ETag
/// unless `*`). Amazon S3 takes only `*` for If-None-Match on writes, and not both at once.
pub fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<stele::meta::WriteCondition> {
    use stele::meta::WriteCondition as W;
    match (if_match, if_none_match) {
        (None, None) => Ok(W::Always),
        (None, Some(ETagCondition::Any)) => Ok(W::Absent),
        (Some(ETagCondition::Any), None) => Ok(W::Exists),
        (Some(ETagCondition::ETag(e)), None) => Ok(W::ETag(e.value().to_owned())),
        (None, Some(ETagCondition::ETag(_))) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "A header you provided implies functionality that is not implemented: \
             If-None-Match takes only '*' on writes",
        )),
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "If-Match and If-None-Match cannot both be given on a write",
        )),
    }
}
