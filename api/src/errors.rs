//! The body of every error answer.

use serde::{Deserialize, Serialize};

/// Every non-2xx JSON answer of the admin API: `{"error": CODE, "message": MESSAGE}`.
/// The HTTP status carries the class (400, 401, 403, 404, 409, 429, 500, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code, in UpperCamelCase: `AccessDenied`, `Unauthorized`, `SlowDown`,
    /// `InvalidRequest`, `InvalidBucketName`, `NotFound`, `BucketExists`, `LockRefused`,
    /// `PassFailed`, `InternalError`, ...
    pub error: String,
    /// What went wrong, for a person. Read as empty when absent.
    #[serde(default)]
    pub message: String,
}
