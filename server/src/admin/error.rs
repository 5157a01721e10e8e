//! The one table from core errors to admin API answers. Like the S3 table
//! (`crate::s3::error`) it matches every variant without a wildcard, so a new core error
//! cannot reach an administrator without a decision here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stele::StoreError;
use stele::config::ConfigError;
use stele::control::ControlError;
use stele::disk::DiskError;
use stele::identity::IdentityError;
use stele::lock::LockError;
use stele::membership::MembershipError;
use stele::membership::layout::LayoutError;
use stele::meta::MetaError;
use stele::replication::ReplicationError;
use stele::types::NameError;

/// An error answer: status, a stable code and a message, as the JSON body
/// `{"error": CODE, "message": MESSAGE}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(stele_api::errors::ErrorBody {
                error: self.1.to_owned(),
                message: self.2,
            }),
        )
            .into_response()
    }
}

/// 400 `InvalidRequest`: a request the admin API cannot take as it is.
pub fn bad(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "InvalidRequest", m.into())
}

/// Internal failures are logged in full and answered with their message (the admin API
/// is for the node's operators: no secret is in a core error's text).
fn internal(msg: String) -> (StatusCode, &'static str, String) {
    tracing::error!(error = %msg, "admin API: internal error");
    (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", msg)
}

/// The status and code of a core error.
fn classify(e: &StoreError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    use StoreError as E;
    match e {
        E::Name(n) => match n {
            NameError::InvalidBucketName { .. } => (S::BAD_REQUEST, "InvalidBucketName"),
            NameError::KeyTooLong { .. } | NameError::EmptyKey | NameError::InvalidId { .. } => {
                (S::BAD_REQUEST, "InvalidName")
            }
        },
        E::NoSuchBucket { .. } => (S::NOT_FOUND, "NoSuchBucket"),
        E::BucketExists { .. } => (S::CONFLICT, "BucketExists"),
        E::BucketNotEmpty { .. } => (S::CONFLICT, "BucketNotEmpty"),
        E::NoSuchKey { .. }
        | E::DeletedKey { .. }
        | E::NoSuchVersion { .. }
        | E::NoSuchUpload { .. } => (S::NOT_FOUND, "NotFound"),
        E::IsDeleteMarker { .. } => (S::METHOD_NOT_ALLOWED, "IsDeleteMarker"),
        E::PreconditionFailed { .. } => (S::PRECONDITION_FAILED, "PreconditionFailed"),
        // Object requests (the S3 listener's): mapped for completeness.
        E::InvalidVersioningState
        | E::InvalidPartNumber { .. }
        | E::PartNotInObject { .. }
        | E::InvalidPart { .. }
        | E::InvalidPartOrder
        | E::EntityTooSmall { .. }
        | E::MalformedParts
        | E::InvalidTag { .. }
        | E::CopyToItself
        | E::InvalidRange { .. }
        | E::MissingLockDigest
        | E::ChecksumMissing { .. }
        | E::IncompleteBody { .. }
        | E::Body(_) => (S::BAD_REQUEST, "InvalidRequest"),
        E::BadDigest { .. } | E::ChecksumMismatch { .. } | E::ReplicaDigest { .. } => {
            (S::BAD_REQUEST, "BadDigest")
        }
        E::QuotaExceeded { .. } => (S::FORBIDDEN, "QuotaExceeded"),
        E::ReservedKey { .. } => (S::FORBIDDEN, "ReservedKey"),
        E::ReplicaConflict { .. } => (S::CONFLICT, "ReplicaConflict"),
        E::ReplicaNotAccepted { .. } => (S::BAD_REQUEST, "InvalidRequest"),
        E::Replication(r) => match r {
            ReplicationError::PeerExists { .. } => (S::CONFLICT, "PeerExists"),
            ReplicationError::NoSuchPeer { .. } => (S::NOT_FOUND, "NoSuchPeer"),
            ReplicationError::PeerInUse { .. } => (S::CONFLICT, "PeerInUse"),
            ReplicationError::InvalidPeer { .. } => (S::BAD_REQUEST, "InvalidPeer"),
            ReplicationError::InvalidRules { .. } => (S::BAD_REQUEST, "InvalidReplication"),
            ReplicationError::NoSuchBucket { .. } => (S::NOT_FOUND, "NoSuchBucket"),
            ReplicationError::StaleEpoch { .. } => (S::CONFLICT, "StaleEpoch"),
            ReplicationError::ReadOnlyReplica { .. } => (S::CONFLICT, "ReadOnlyReplica"),
            ReplicationError::NotPaired { .. } => (S::CONFLICT, "NotPaired"),
            ReplicationError::AlreadyPrimary { .. } => (S::CONFLICT, "AlreadyPrimary"),
            ReplicationError::ClusterMember => (S::NOT_IMPLEMENTED, "NotImplemented"),
            ReplicationError::Meta(_) => (S::INTERNAL_SERVER_ERROR, "InternalError"),
        },
        E::Membership(m) => match m {
            MembershipError::NotInitialized => (S::CONFLICT, "NotInitialized"),
            MembershipError::AlreadyInitialized { .. } => (S::CONFLICT, "AlreadyInitialized"),
            MembershipError::UnknownToken
            | MembershipError::TokenUsed { .. }
            | MembershipError::TokenExpired { .. } => (S::FORBIDDEN, "JoinRefused"),
            MembershipError::NodeIdTaken { .. } => (S::CONFLICT, "NodeIdTaken"),
            MembershipError::UnknownMember { .. } => (S::NOT_FOUND, "NoSuchMember"),
            MembershipError::Layout(l) => match l {
                LayoutError::UnknownDisk { .. } => (S::NOT_FOUND, "NoSuchDisk"),
                LayoutError::WeightTooHigh { .. } => (S::BAD_REQUEST, "InvalidWeight"),
                LayoutError::EpochMismatch { .. } => (S::CONFLICT, "LayoutEpochMismatch"),
                LayoutError::NothingStaged => (S::CONFLICT, "NothingStaged"),
                LayoutError::Unsafe { .. } => (S::CONFLICT, "LayoutUnsafe"),
            },
            MembershipError::Meta(_) => (S::INTERNAL_SERVER_ERROR, "InternalError"),
        },
        E::Lock(l) => match l {
            LockError::RetentionActive { .. }
            | LockError::LegalHold
            | LockError::CannotShorten { .. }
            | LockError::CannotChangeMode { .. } => (S::FORBIDDEN, "LockRefused"),
            LockError::RetainUntilInPast { .. }
            | LockError::PolicyBelowMinimum { .. }
            | LockError::PolicyAboveMaximum { .. }
            | LockError::PolicyModeNotAllowed { .. }
            | LockError::InvalidRetentionPeriod
            | LockError::InvalidPolicy => (S::BAD_REQUEST, "InvalidPolicy"),
            LockError::ResyncBackward { .. }
            | LockError::ResyncPastWall { .. }
            | LockError::ResyncNotBehind { .. }
            | LockError::ResyncBeyondDowntime { .. } => (S::BAD_REQUEST, "ClockResyncRefused"),
        },
        E::ReplacesLocked { .. } => (S::FORBIDDEN, "LockRefused"),
        E::PolicyLoosening { .. } => (S::FORBIDDEN, "PolicyLoosening"),
        E::LockNotEnabled { .. } => (S::BAD_REQUEST, "LockNotEnabled"),
        E::NoLockConfiguration { .. } => (S::NOT_FOUND, "NoLockConfiguration"),
        E::InvalidBucketState { .. } => (S::CONFLICT, "InvalidBucketState"),
        E::NoLifecycle { .. } => (S::NOT_FOUND, "NoLifecycle"),
        E::InvalidLifecycle { .. } => (S::BAD_REQUEST, "InvalidLifecycle"),
        E::InvalidProfile { .. } => (S::CONFLICT, "InvalidProfile"),
        E::InsufficientDisks { .. } => (S::SERVICE_UNAVAILABLE, "InsufficientDisks"),
        E::Unavailable { .. } => (S::SERVICE_UNAVAILABLE, "ClusterUnavailable"),
        E::Disk(d) => match d {
            DiskError::Offline { .. } => (S::SERVICE_UNAVAILABLE, "DiskOffline"),
            DiskError::Full { .. } => (S::INSUFFICIENT_STORAGE, "DiskFull"),
            // Heal refuses a directory that is another disk's, or holds unknown files:
            // the operator must look before anything is written there.
            DiskError::WrongDisk { .. } => (S::CONFLICT, "DiskMismatch"),
            DiskError::Unformatted { .. } => (S::CONFLICT, "DiskNotEmpty"),
            DiskError::UnknownStampFormat { .. } => (S::CONFLICT, "DiskStampNewer"),
            DiskError::AlreadyExists { .. } => (S::CONFLICT, "ShardExists"),
            DiskError::Io { .. } | DiskError::Corrupt { .. } => {
                (S::INTERNAL_SERVER_ERROR, "InternalError")
            }
        },
        E::Config(c) => match c {
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
            | ConfigError::CreateDir { .. } => (S::INTERNAL_SERVER_ERROR, "InternalError"),
        },
        E::Unreadable { .. }
        | E::InlineCorrupt { .. }
        | E::Meta(_)
        | E::Codec(_)
        | E::Task { .. }
        | E::Trail(_) => (S::INTERNAL_SERVER_ERROR, "InternalError"),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = classify(&e);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            let (s, c, m) = internal(e.to_string());
            return ApiError(s, c, m);
        }
        ApiError(status, code, e.to_string())
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        use IdentityError as E;
        let (status, code) = match &e {
            E::UnknownUser { .. } | E::UnknownKey { .. } | E::UnknownApproval { .. } => {
                (StatusCode::NOT_FOUND, "NotFound")
            }
            E::UserExists { .. } => (StatusCode::CONFLICT, "UserExists"),
            E::KeyExists { .. } => (StatusCode::CONFLICT, "KeyExists"),
            E::InvalidName { .. } => (StatusCode::BAD_REQUEST, "InvalidName"),
            E::AccessDenied { .. } => (StatusCode::FORBIDDEN, "AccessDenied"),
            E::LastAdmin => (StatusCode::CONFLICT, "LastAdmin"),
            E::ApprovalExpired { .. } => (StatusCode::GONE, "ApprovalExpired"),
            E::SameApprover { .. } => (StatusCode::FORBIDDEN, "SameApprover"),
            E::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "ClusterUnavailable"),
            E::Meta(_) | E::KeyFile { .. } | E::Unseal | E::Task { .. } | E::Log { .. } => {
                let (s, c, m) = internal(e.to_string());
                return ApiError(s, c, m);
            }
        };
        ApiError(status, code, e.to_string())
    }
}

/// The alert queue's calls answer metadata errors directly. None of them is the client's
/// doing there: every one is a 500, listed so that a new variant is decided here.
impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        match &e {
            MetaError::Task { .. }
            | MetaError::Engine { .. }
            | MetaError::UnknownFormat { .. }
            | MetaError::Encode { .. }
            | MetaError::Decode { .. }
            | MetaError::UploadGone { .. }
            | MetaError::PartChanged { .. }
            | MetaError::ConditionFailed { .. }
            | MetaError::BucketGone { .. }
            | MetaError::ReplacesLocked { .. }
            | MetaError::VersionExists { .. } => {
                let (s, c, m) = internal(e.to_string());
                ApiError(s, c, m)
            }
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Identity(e) => e.into(),
            ControlError::Store(e) => e.into(),
            e @ ControlError::TwoPersonRuleRequired { .. } => {
                ApiError(StatusCode::CONFLICT, "TwoPersonRuleRequired", e.to_string())
            }
        }
    }
}

impl From<stele::audit::trail::TrailError> for ApiError {
    fn from(e: stele::audit::trail::TrailError) -> Self {
        use stele::audit::trail::TrailError as E;
        match &e {
            E::NoKey => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "AuditKeyMissing",
                e.to_string(),
            ),
            E::NoSuchBucket { .. } => {
                ApiError(StatusCode::NOT_FOUND, "NoSuchBucket", e.to_string())
            }
            E::Meta(_) | E::Sign(_) | E::Task { .. } | E::Inconsistent { .. } => {
                let (s, c, m) = internal(e.to_string());
                ApiError(s, c, m)
            }
        }
    }
}
