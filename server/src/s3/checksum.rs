//! `x-amz-checksum-*`: from request headers or trailers into the core's checksum request,
//! and from a stored version back into response fields.

use base64::Engine;
use s3s::dto;
use s3s::{S3Error, S3ErrorCode, S3Result};
use stele::checksum::{Checksum, ChecksumAlgorithm, ChecksumSpec, Expected};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The checksum fields a PutObject or UploadPart may carry.
pub struct Fields<'a> {
    pub algorithm: Option<&'a dto::ChecksumAlgorithm>,
    pub crc32: Option<&'a str>,
    pub crc32c: Option<&'a str>,
    pub crc64nvme: Option<&'a str>,
    pub sha1: Option<&'a str>,
    pub sha256: Option<&'a str>,
}

fn invalid(msg: &'static str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, msg)
}

/// What to verify: the one checksum header given, or the one the trailer will carry.
pub fn spec(
    f: &Fields<'_>,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<Option<ChecksumSpec>> {
    let given: Vec<(ChecksumAlgorithm, &str)> = [
        (ChecksumAlgorithm::Crc32, f.crc32),
        (ChecksumAlgorithm::Crc32c, f.crc32c),
        (ChecksumAlgorithm::Crc64Nvme, f.crc64nvme),
        (ChecksumAlgorithm::Sha1, f.sha1),
        (ChecksumAlgorithm::Sha256, f.sha256),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v)))
    .collect();
    if given.len() > 1 {
        return Err(invalid("Expecting a single x-amz-checksum- header"));
    }
    if let Some((algorithm, b64)) = given.first() {
        let value = B64
            .decode(b64.trim())
            .ok()
            .filter(|v| v.len() == algorithm.digest_len());
        let Some(value) = value else {
            // Amazon S3's answer to a value that is no digest of the algorithm (not base64,
            // or the wrong length); a well-formed value that does not match is BadDigest.
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Value for x-amz-checksum-{} header is invalid.",
                    algorithm.name().to_ascii_lowercase()
                ),
            ));
        };
        return Ok(Some(ChecksumSpec {
            algorithm: *algorithm,
            expected: Expected::Value(value),
        }));
    }
    let (Some(name), Some(trailers)) = (f.algorithm, trailers) else {
        return Ok(None);
    };
    let algorithm = ChecksumAlgorithm::parse(name.as_str())
        .ok_or_else(|| invalid("Unknown x-amz-checksum-algorithm"))?;
    let header = format!("x-amz-checksum-{}", algorithm.name().to_ascii_lowercase());
    let read = move || {
        trailers
            .read(|h| {
                h.get(header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| B64.decode(v.trim()).ok())
            })
            .flatten()
    };
    Ok(Some(ChecksumSpec {
        algorithm,
        expected: Expected::Trailer(std::sync::Arc::new(read)),
    }))
}

/// The stored checksum of `algorithm`, base64, if the version has one.
pub fn value(checksums: &[Checksum], algorithm: ChecksumAlgorithm) -> Option<String> {
    checksums
        .iter()
        .find(|c| c.algorithm == algorithm)
        .map(|c| B64.encode(&c.value))
}

/// A stored version's checksum of `algorithm`, base64; a multipart object's is composite
/// and shown with its part count (`...-N`), as S3 does.
pub fn value_of(rec: &stele::meta::VersionRecord, algorithm: ChecksumAlgorithm) -> Option<String> {
    let v = value(&rec.checksums, algorithm)?;
    Some(if rec.composite_checksum {
        format!("{v}-{}", rec.parts_count())
    } else {
        v
    })
}

/// The one checksum a Complete request names for a part, if any.
pub fn claimed(f: &Fields<'_>) -> S3Result<Option<Checksum>> {
    let given = [
        (ChecksumAlgorithm::Crc32, f.crc32),
        (ChecksumAlgorithm::Crc32c, f.crc32c),
        (ChecksumAlgorithm::Crc64Nvme, f.crc64nvme),
        (ChecksumAlgorithm::Sha1, f.sha1),
        (ChecksumAlgorithm::Sha256, f.sha256),
    ];
    for (algorithm, v) in given {
        if let Some(b64) = v {
            let value = B64.decode(b64.trim()).map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidDigest,
                    "A part checksum is not valid base64.",
                )
            })?;
            return Ok(Some(Checksum { algorithm, value }));
        }
    }
    Ok(None)
}

/// Whether the client asked for checksums in the response.
pub fn wanted(mode: Option<&dto::ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == dto::ChecksumMode::ENABLED)
}
