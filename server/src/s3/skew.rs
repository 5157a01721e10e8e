//! Requests signed more than 15 minutes away from the server's clock are refused with
//! `RequestTimeTooSkewed`, as S3 does: a captured request cannot be replayed later.
//! (s3s verifies signatures but not the age of header-signed requests.)

use stele::Timestamp;

pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Seconds since the epoch of an ISO 8601 basic timestamp, `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Whether a header-signed request's `x-amz-date` is too far from `now`. Presigned URLs
/// carry their own expiry and are checked by s3s.
pub fn too_skewed(headers: &http::HeaderMap, now: Timestamp) -> bool {
    let signed = headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256"));
    if !signed {
        return false;
    }
    let Some(t) = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_amz_date)
    else {
        // s3s refuses a SigV4 request without a parsable date.
        return false;
    };
    (now.micros() / 1_000_000 - t).abs() > MAX_SKEW_SECS
}

/// The longest a presigned URL may live: a week (SigV4's limit).
pub const MAX_PRESIGN_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// A presigned request's `X-Amz-Expires` that is not a number of seconds from 1 to a week:
/// Amazon S3 refuses it as a malformed query (400 AuthorizationQueryParametersError)
/// before it looks at the signature or the time; the reason, if so.
pub fn bad_presign_expiry(query: Option<&str>) -> Option<&'static str> {
    let value = query?
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Expires="))?;
    match value.parse::<u64>() {
        Ok(n) if (1..=MAX_PRESIGN_EXPIRY_SECS).contains(&n) => None,
        Ok(0) => Some("X-Amz-Expires must be non-negative and greater than zero"),
        Ok(_) => Some("X-Amz-Expires must be less than a week (in seconds) that is 604800"),
        Err(_) => Some("X-Amz-Expires should be a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_amz_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20261122T064000Z"), Some(1_795_329_600));
        assert_eq!(parse_amz_date("20240229T120000Z"), Some(1_709_208_000));
        assert_eq!(parse_amz_date("2026-11-22T06:40"), None);
        assert_eq!(parse_amz_date("20261322T064000Z"), None);
    }
}
