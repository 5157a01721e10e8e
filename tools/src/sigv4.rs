//! Just enough SigV4 to drive any S3 endpoint: header signing with UNSIGNED-PAYLOAD, so
//! the load generator spends no CPU hashing bodies and the server is what gets measured.

use std::time::{SystemTime, UNIX_EPOCH};

/// HMAC-SHA256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::hmac::sign(&k, data).as_ref());
    out
}

/// SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

pub struct Signer {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// `YYYYMMDDTHHMMSSZ` for now.
fn amz_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Signer {
    /// Headers to add to a request for `path` (already URI-encoded) and `query` (already
    /// canonical: sorted, encoded) on `host`.
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        path: &str,
        query: &str,
    ) -> Vec<(&'static str, String)> {
        self.sign_payload(method, host, path, query, "UNSIGNED-PAYLOAD")
    }

    /// As [`Signer::sign`], with `payload` as `x-amz-content-sha256` (for example
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` for an aws-chunked body with a trailer).
    pub fn sign_payload(
        &self,
        method: &str,
        host: &str,
        path: &str,
        query: &str,
        payload: &str,
    ) -> Vec<(&'static str, String)> {
        let date = amz_date();
        let day = &date[..8];
        let canonical = format!(
            "{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}"
        );
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(sha256(canonical.as_bytes()))
        );
        let mut key = hmac_sha256(
            format!("AWS4{}", self.secret_key).as_bytes(),
            day.as_bytes(),
        );
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
        vec![
            ("x-amz-date", date),
            ("x-amz-content-sha256", payload.into()),
            (
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
                    self.access_key
                ),
            ),
        ]
    }
}
