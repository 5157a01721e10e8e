//! Object Lock in the engine: bucket lock configuration and retention policies, and the
//! retention and legal hold of versions. Every decision is made by the pure functions of
//! [`crate::lock`] and applied atomically by the metadata store.

use super::{Store, StoreError, VersionRef};
use crate::lock::{self, LockError, PolicyChange};
use crate::meta::{
    BucketRecord, DefaultRetention, LockRecord, LockRequest, Retention, RetentionPolicy,
    VersionKind, VersionRecord, Versioning,
};
use crate::types::{BucketName, ObjectKey};

/// A bucket's Object Lock configuration as S3 shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockConfiguration {
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
        self.inner
            .meta
            .update_bucket(bucket, |b| {
                if !b.object_lock && b.versioning != Versioning::Enabled {
                    return Err(StoreError::InvalidBucketState {
                        bucket: bucket.clone(),
                        reason: "Object Lock needs versioning enabled first",
                    });
                }
                if let (Some(d), Some(p)) = (&default_retention, &b.policy)
                    && !p.modes.contains(&d.mode)
                {
                    return Err(LockError::PolicyModeNotAllowed { mode: d.mode }.into());
                }
                b.object_lock = true;
                b.default_retention = default_retention;
                Ok(())
            })?
            .ok_or_else(|| StoreError::NoSuchBucket {
                bucket: bucket.clone(),
            })?;
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
        let mut change = PolicyChange::Tightens;
        self.inner
            .meta
            .update_bucket(bucket, |b| {
                if !b.object_lock {
                    return Err(StoreError::LockNotEnabled {
                        bucket: bucket.clone(),
                    });
                }
                change = lock::policy_change(b.policy.as_ref(), policy.as_ref());
                if change == PolicyChange::Loosens && !privileged {
                    return Err(StoreError::PolicyLoosening {
                        bucket: bucket.clone(),
                    });
                }
                if change == PolicyChange::Loosens {
                    tracing::warn!(bucket = %bucket, old = ?b.policy, new = ?policy, "retention policy loosened");
                }
                b.policy = policy;
                Ok(())
            })?
            .ok_or_else(|| StoreError::NoSuchBucket {
                bucket: bucket.clone(),
            })?;
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
        let b = self.lock_bucket(bucket)?;
        let rec = self.lock_target(bucket, key, version)?;
        let now = self.inner.retention.readings();
        self.inner
            .meta
            .update_lock(bucket, key, &rec.version_id, |v, current| {
                lock::change_retention(
                    current,
                    requested,
                    v.created,
                    b.policy.as_ref(),
                    now,
                    bypass,
                )
                .map_err(StoreError::from)
            })?
            .ok_or_else(|| gone(bucket, key, &rec))
    }

    /// PutObjectLegalHold.
    pub fn set_object_legal_hold(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        on: bool,
    ) -> Result<LockRecord, StoreError> {
        self.lock_bucket(bucket)?;
        let rec = self.lock_target(bucket, key, version)?;
        self.inner
            .meta
            .update_lock(bucket, key, &rec.version_id, |_, current| {
                Ok::<_, StoreError>(lock::set_legal_hold(current, on))
            })?
            .ok_or_else(|| gone(bucket, key, &rec))
    }
}

fn gone(bucket: &BucketName, key: &ObjectKey, rec: &VersionRecord) -> StoreError {
    StoreError::NoSuchVersion {
        bucket: bucket.clone(),
        key: key.clone(),
        version: rec.version_ref().to_string(),
    }
}
