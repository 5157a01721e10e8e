//! Object Lock in the engine: bucket lock configuration and retention policies, and the
//! retention and legal hold of versions. Every decision is made by the pure functions of
//! [`crate::lock`] and applied atomically by the metadata store.

use super::{Store, StoreError, VersionRef};
use crate::command::{BucketChange, LockChange, MetaCommand, Outcome};
use crate::lock::{self, PolicyChange};
use crate::meta::{
    BucketRecord, DefaultRetention, LockRecord, LockRequest, Retention, RetentionPolicy,
    VersionKind, VersionRecord,
};
use crate::types::{BucketName, ObjectKey};

/// A bucket's Object Lock configuration as S3 shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockConfiguration {
    /// The retention a new version gets when its write asks for none; `None` when the
    /// bucket has no default.
    pub default_retention: Option<DefaultRetention>,
}

impl Store {
    /// The bucket, which must have Object Lock enabled.
    fn lock_bucket(&self, bucket: &BucketName) -> Result<BucketRecord, StoreError> {
        let b = self.bucket(bucket)?;
        if !b.object_lock {
            return Err(StoreError::LockNotEnabled {
                bucket: bucket.clone(),
            });
        }
        Ok(b)
    }

    /// GetObjectLockConfiguration.
    pub fn lock_configuration(&self, bucket: &BucketName) -> Result<LockConfiguration, StoreError> {
        let b = self.bucket(bucket)?;
        if !b.object_lock {
            return Err(StoreError::NoLockConfiguration {
                bucket: bucket.clone(),
            });
        }
        Ok(LockConfiguration {
            default_retention: b.default_retention,
        })
    }

    /// PutObjectLockConfiguration: enables Object Lock (for good) on a bucket whose
    /// versioning is enabled, and sets or clears its default retention. Existing versions
    /// keep the lock they have.
    pub fn set_lock_configuration(
        &self,
        bucket: &BucketName,
        default_retention: Option<DefaultRetention>,
    ) -> Result<LockConfiguration, StoreError> {
        if let Some(d) = &default_retention {
            lock::retention::validate_period(d.period)?;
        }
        match self.propose(MetaCommand::UpdateBucket {
            bucket: bucket.clone(),
            change: BucketChange::LockConfiguration(default_retention),
        })? {
            Outcome::Bucket(Some(_)) => {}
            _ => {
                return Err(StoreError::NoSuchBucket {
                    bucket: bucket.clone(),
                });
            }
        }
        Ok(LockConfiguration { default_retention })
    }

    /// Sets a bucket's retention policy. Tightening is always allowed; loosening (see
    /// [`lock::policy_change`]) only when `privileged` (today: the administrator confirmed
    /// it explicitly; with identities: approved by a second administrator).
    pub fn set_retention_policy(
        &self,
        bucket: &BucketName,
        policy: Option<RetentionPolicy>,
        privileged: bool,
    ) -> Result<PolicyChange, StoreError> {
        if let Some(p) = &policy {
            lock::policy::validate(p)?;
        }
        let old = self.bucket(bucket)?.policy;
        let change = match self.propose(MetaCommand::UpdateBucket {
            bucket: bucket.clone(),
            change: BucketChange::RetentionPolicy {
                policy: policy.clone(),
                privileged,
            },
        })? {
            Outcome::Bucket(Some((_, change))) => change,
            _ => {
                return Err(StoreError::NoSuchBucket {
                    bucket: bucket.clone(),
                });
            }
        };
        if change == PolicyChange::Loosens {
            tracing::warn!(bucket = %bucket, ?old, new = ?policy, "retention policy loosened");
        }
        Ok(change)
    }

    /// The lock state a new version of `bucket` created at `created` gets for `request`.
    /// Checked before a body is streamed and again when it is committed.
    pub(super) fn new_version_lock(
        &self,
        b: &BucketRecord,
        request: &LockRequest,
        created: crate::types::Timestamp,
    ) -> Result<LockRecord, StoreError> {
        if !b.object_lock {
            if !request.is_empty() {
                return Err(StoreError::LockNotEnabled {
                    bucket: b.name.clone(),
                });
            }
            return Ok(LockRecord::default());
        }
        Ok(lock::initial_lock(
            request,
            b.default_retention.as_ref(),
            b.policy.as_ref(),
            created,
            self.inner.retention.readings(),
        )?)
    }

    /// Whether writes to `b` with `request` must carry Content-MD5 or a checksum: S3
    /// demands one for every write that may end up locked.
    pub(super) fn lock_needs_digest(b: &BucketRecord, request: &LockRequest) -> bool {
        b.object_lock
            && (!request.is_empty()
                || b.default_retention.is_some()
                || b.policy.as_ref().is_some_and(|p| p.min_days.is_some()))
    }

    /// The object version a retention or legal-hold request names (current by default).
    fn lock_target(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<VersionRecord, StoreError> {
        // head_object refuses delete markers: they never carry a lock.
        let rec = self.head_object(bucket, key, version)?;
        debug_assert!(rec.kind == VersionKind::Object);
        Ok(rec)
    }

    /// A version's retention and legal hold (GetObjectRetention / GetObjectLegalHold).
    pub fn object_lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<LockRecord, StoreError> {
        self.lock_bucket(bucket)?;
        let rec = self.lock_target(bucket, key, version)?;
        Ok(self.inner.meta.lock(bucket, key, &rec.version_id)?)
    }

    /// HeadObject: the version record (as [`Store::head_object`]) and its lock state.
    pub fn head_object_with_lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<(VersionRecord, LockRecord), StoreError> {
        let rec = self.head_object(bucket, key, version)?;
        let lock = self.inner.meta.lock(bucket, key, &rec.version_id)?;
        Ok((rec, lock))
    }

    /// PutObjectRetention: `requested` (`None` removes the retention) as the lock layer
    /// allows it. Creates no version and leaves the version's record untouched.
    pub fn set_object_retention(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        requested: Option<Retention>,
        bypass: bool,
    ) -> Result<LockRecord, StoreError> {
        self.linearize()?;
        self.lock_bucket(bucket)?;
        self.refuse_reserved(bucket, key)?;
        let rec = self.lock_target(bucket, key, version)?;
        self.change_lock(
            bucket,
            key,
            &rec,
            LockChange::Retention { requested, bypass },
        )
    }

    /// PutObjectLegalHold.
    pub fn set_object_legal_hold(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        on: bool,
    ) -> Result<LockRecord, StoreError> {
        self.linearize()?;
        self.lock_bucket(bucket)?;
        self.refuse_reserved(bucket, key)?;
        let rec = self.lock_target(bucket, key, version)?;
        self.change_lock(bucket, key, &rec, LockChange::LegalHold(on))
    }

    fn change_lock(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rec: &VersionRecord,
        change: LockChange,
    ) -> Result<LockRecord, StoreError> {
        match self.propose(MetaCommand::UpdateLock {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: rec.version_id,
            change,
        })? {
            Outcome::Lock(Some(l)) => Ok(l),
            _ => Err(gone(bucket, key, rec)),
        }
    }
}

fn gone(bucket: &BucketName, key: &ObjectKey, rec: &VersionRecord) -> StoreError {
    StoreError::NoSuchVersion {
        bucket: bucket.clone(),
        key: key.clone(),
        version: rec.version_ref().to_string(),
    }
}
