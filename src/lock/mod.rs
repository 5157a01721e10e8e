//! Object lock: the pure decisions on whether a version may be removed. Every removal of a
//! version in the engine (DeleteObject by id, replacing a null version, and later
//! lifecycle, repair and replication) goes through [`may_remove`] first.
//!
//! Retention and legal hold arrive with the Object Lock issue; until then no version
//! carries either, so every removal the S3 semantics ask for is allowed. The function is
//! the seam those rules plug into, not a policy of its own.

use crate::meta::VersionRecord;
use crate::types::Timestamp;

/// Why a version may not be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("the version is protected until {until:?}")]
    RetentionActive { until: Timestamp },
    #[error("the version is under legal hold")]
    LegalHold,
}

/// Whether `version` may be removed at `now`.
pub fn may_remove(_version: &VersionRecord, _now: Timestamp) -> Result<(), LockError> {
    Ok(())
}
