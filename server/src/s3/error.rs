//! The one table from core errors to S3 errors. It matches every variant without a
//! wildcard, so a new core error cannot reach a client without a decision here.

use s3s::{S3Error, S3ErrorCode};
use stele::StoreError;
use stele::config::ConfigError;
use stele::lock::LockError;
use stele::replication::ReplicationError;
use stele::types::NameError;

pub fn bad_request(code: S3ErrorCode, msg: &'static str) -> S3Error {
    S3Error::with_message(code, msg)
}

fn err(code: S3ErrorCode, msg: String) -> S3Error {
    S3Error::with_message(code, msg)
}

/// Maps a core error to the S3 error a client expects.
pub fn to_s3(e: StoreError) -> S3Error {
    use S3ErrorCode as C;
    let msg = e.to_string();
    match e {
        StoreError::Name(n) => match n {
            NameError::InvalidBucketName { .. } => err(C::InvalidBucketName, msg),
            NameError::KeyTooLong { .. } => err(C::KeyTooLongError, msg),
            NameError::EmptyKey | NameError::InvalidId { .. } => err(C::InvalidArgument, msg),
        },
        StoreError::NoSuchBucket { .. } => err(C::NoSuchBucket, msg),
        StoreError::BucketExists { .. } => err(C::BucketAlreadyOwnedByYou, msg),
        StoreError::BucketNotEmpty { .. } => err(C::BucketNotEmpty, msg),
        StoreError::NoSuchKey { .. } => err(C::NoSuchKey, msg),
        StoreError::NoSuchVersion { .. } => err(C::NoSuchVersion, msg),
        StoreError::InvalidRange { .. } => err(C::InvalidRange, msg),
        StoreError::IsDeleteMarker { last_modified, .. } => {
            let mut e = err(
                C::MethodNotAllowed,
                "The specified method is not allowed against this resource.".into(),
            );
            let mut h = marker_headers(None);
            if let Some(v) = super::conditions::http_date(last_modified)
                .and_then(|d| http::HeaderValue::from_str(&d).ok())
            {
                h.insert(http::header::LAST_MODIFIED, v);
            }
            e.set_headers(h);
            e
        }
        StoreError::DeletedKey { version, .. } => {
            let mut e = err(C::NoSuchKey, "The specified key does not exist.".into());
            e.set_headers(marker_headers(Some(&version)));
            e
        }
        StoreError::NoSuchUpload { .. } => err(C::NoSuchUpload, msg),
        StoreError::PreconditionFailed { .. } => err(C::PreconditionFailed, msg),
        StoreError::CopyToItself => err(C::InvalidRequest, msg),
        StoreError::InvalidTag { .. } => err(C::InvalidTag, msg),
        StoreError::InvalidPartNumber { .. } => err(C::InvalidArgument, msg),
        StoreError::PartNotInObject { .. } => {
            let mut e = err(C::Custom("InvalidPartNumber".into()), msg);
            e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            e
        }
        StoreError::InvalidPart { .. } => err(C::InvalidPart, msg),
        StoreError::InvalidPartOrder => err(C::InvalidPartOrder, msg),
        StoreError::EntityTooSmall { .. } => err(C::EntityTooSmall, msg),
        StoreError::MalformedParts => err(C::MalformedXML, msg),
        StoreError::InvalidVersioningState => err(C::IllegalVersioningConfigurationException, msg),
        StoreError::Lock(l) => match l {
            // Refusals to remove a version or cut its protection short: 403, as S3.
            LockError::RetentionActive { .. }
            | LockError::LegalHold
            | LockError::CannotShorten { .. }
            | LockError::CannotChangeMode { .. } => {
                // A refused attempt on protected data is what auditors ask about; the
                // request span carries the request id, method and path.
                stele::audit::AuditEvent::LockRefused {
                    reason: msg.clone(),
                }
                .emit();
                err(C::AccessDenied, msg)
            }
            LockError::RetainUntilInPast { .. } => err(
                C::InvalidArgument,
                "The retain until date must be in the future!".into(),
            ),
            LockError::PolicyBelowMinimum { .. }
            | LockError::PolicyAboveMaximum { .. }
            | LockError::PolicyModeNotAllowed { .. } => err(C::InvalidRequest, msg),
            LockError::InvalidRetentionPeriod => invalid_retention_period(),
            LockError::InvalidPolicy => err(C::InvalidArgument, msg),
            // The admin API's (a clock resync); no S3 request reaches it.
            LockError::ResyncBackward { .. }
            | LockError::ResyncPastWall { .. }
            | LockError::ResyncNotBehind { .. }
            | LockError::ResyncBeyondDowntime { .. } => err(C::InvalidRequest, msg),
        },
        StoreError::LockNotEnabled { .. } => err(
            C::InvalidRequest,
            "Bucket is missing Object Lock Configuration".into(),
        ),
        StoreError::NoLockConfiguration { .. } => err(
            C::ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket".into(),
        ),
        StoreError::InvalidBucketState { .. } => err(C::InvalidBucketState, msg),
        StoreError::PolicyLoosening { .. } | StoreError::ReplacesLocked { .. } => {
            err(C::AccessDenied, msg)
        }
        StoreError::QuotaExceeded { .. } => {
            let mut e = err(C::Custom("QuotaExceeded".into()), msg);
            e.set_status_code(http::StatusCode::FORBIDDEN);
            e
        }
        StoreError::ReservedKey { .. } => err(C::AccessDenied, msg),
        StoreError::MissingLockDigest => err(
            C::InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters".into(),
        ),
        StoreError::NoLifecycle { .. } => err(C::NoSuchLifecycleConfiguration, msg),
        StoreError::InvalidLifecycle { .. } | StoreError::InvalidProfile { .. } => {
            err(C::InvalidArgument, msg)
        }
        StoreError::BadDigest { .. } | StoreError::ReplicaDigest { .. } => {
            err(C::BadDigest, msg)
        }
        StoreError::ReplicaConflict { .. } => {
            let mut e = err(C::Custom("ReplicaConflict".into()), msg);
            e.set_status_code(http::StatusCode::CONFLICT);
            e
        }
        StoreError::ReplicaNotAccepted { .. } => err(C::InvalidRequest, msg),
        StoreError::Replication(r) => match r {
            ReplicationError::NoSuchBucket { .. } => err(C::NoSuchBucket, msg),
            ReplicationError::InvalidRules { .. }
            | ReplicationError::InvalidPeer { .. }
            | ReplicationError::NoSuchPeer { .. }
            | ReplicationError::PeerExists { .. }
            | ReplicationError::PeerInUse { .. } => err(C::InvalidRequest, msg),
            // The sender reads the epoch here from the message (`... at epoch N here`).
            ReplicationError::StaleEpoch { .. } => {
                let mut e = err(C::Custom("StaleEpoch".into()), msg);
                e.set_status_code(http::StatusCode::CONFLICT);
                e
            }
            // S3's answer to a request the bucket's state does not allow (409).
            ReplicationError::ReadOnlyReplica { .. } => err(C::InvalidBucketState, msg),
            ReplicationError::NotPaired { .. } | ReplicationError::AlreadyPrimary { .. } => {
                err(C::InvalidRequest, msg)
            }
            ReplicationError::ClusterMember => err(C::NotImplemented, msg),
            ReplicationError::Meta(_) => internal(msg),
        },
        // No S3 request changes membership: mapped for completeness.
        StoreError::Membership(_) => internal(msg),
        StoreError::ChecksumMismatch { .. } => err(C::BadDigest, msg),
        StoreError::ChecksumMissing { .. } => err(C::InvalidRequest, msg),
        StoreError::IncompleteBody { .. } => err(C::IncompleteBody, msg),
        StoreError::Body(_) => err(C::IncompleteBody, msg),
        StoreError::InsufficientDisks { .. } => err(C::ServiceUnavailable, msg),
        // The partitioned node's answer: clients back off and retry (S3's throttling code).
        StoreError::Unavailable { .. } => err(C::SlowDown, msg),
        StoreError::Unreadable { .. } | StoreError::InlineCorrupt { .. } => internal(msg),
        StoreError::Config(c) => match c {
            ConfigError::EcSyntax { .. }
            | ConfigError::NoDataShards
            | ConfigError::TooWide { .. }
            | ConfigError::NotEnoughDisks { .. }
            | ConfigError::NoDisks
            | ConfigError::DiskIsFile { .. }
            | ConfigError::DuplicateDiskPath { .. }
            | ConfigError::DuplicateDiskId { .. }
            | ConfigError::DisksMismatch { .. }
            | ConfigError::DiskIdLikeUuid { .. }
            | ConfigError::BadQuorum { .. }
            | ConfigError::BadBlockSize { .. }
            | ConfigError::BadInlineMax { .. }
            | ConfigError::ReadFile { .. }
            | ConfigError::Parse { .. }
            | ConfigError::CreateDir { .. } => internal(msg),
        },
        StoreError::Meta(_)
        | StoreError::Disk(_)
        | StoreError::Codec(_)
        | StoreError::Task { .. }
        | StoreError::Trail(_) => internal(msg),
    }
}

/// `x-amz-delete-marker: true`, and the marker's `x-amz-version-id` when given.
fn marker_headers(version: Option<&str>) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Some(v) = version.and_then(|v| http::HeaderValue::from_str(v).ok()) {
        h.insert("x-amz-version-id", v);
    }
    h
}

/// S3's `InvalidRetentionPeriod` (400), which s3s does not name.
pub fn invalid_retention_period() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("InvalidRetentionPeriod".into()),
        "Default retention period must be a positive integer value.",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// Internal failures are logged in full and answered without internals.
fn internal(msg: String) -> S3Error {
    tracing::error!(error = %msg, "internal error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

/// `Content-MD5` is base64 of 16 bytes; anything else is `InvalidDigest`.
pub fn decode_content_md5(b64: &str) -> Result<[u8; 16], S3Error> {
    use base64::Engine;
    let bad = || {
        bad_request(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified was invalid.",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_content_md5() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        let d = super::decode_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==").expect("valid");
        assert_eq!(d[0], 0xd4);
        assert_eq!(d[15], 0x7e);
        assert!(super::decode_content_md5("abc").is_err());
    }
}
