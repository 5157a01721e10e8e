//! Bucket quotas: a hard limit on a bucket's usage ([`BucketUsage`], kept at commit time).
//! The commit decides ([`crate::command`] refuses a client's write that would pass the
//! quota); the checks here only refuse early, before a body is streamed, when the length
//! is known and nothing can be replaced.

use super::{Store, StoreError};
use crate::command::{BucketChange, MetaCommand, Outcome};
use crate::meta::{BucketRecord, BucketUsage, Versioning};
use crate::types::BucketName;

impl Store {
    /// Sets (`Some`, in bytes) or removes (`None`) a bucket's hard quota; returns the
    /// bucket's record as changed. Lowering it below the usage removes nothing.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], or a metadata error.
    pub fn set_quota(
        &self,
        bucket: &BucketName,
        quota: Option<u64>,
    ) -> Result<BucketRecord, StoreError> {
        match self.propose(MetaCommand::UpdateBucket {
            bucket: bucket.clone(),
            change: BucketChange::Quota(quota),
        })? {
            Outcome::Bucket(Some((rec, _))) => Ok(rec),
            _ => Err(StoreError::NoSuchBucket {
                bucket: bucket.clone(),
            }),
        }
    }

    /// A bucket's usage as the last commit left it (one point read).
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], or a metadata error.
    pub fn usage(&self, bucket: &BucketName) -> Result<BucketUsage, StoreError> {
        self.bucket(bucket)?;
        Ok(self.inner.meta.usage(bucket)?)
    }

    /// Refuses, before any byte is stored, a client write of `len` bytes that the commit
    /// would refuse for `b`'s quota: only in a versioned bucket, where a write replaces
    /// nothing (elsewhere it may replace the null version and free its bytes, which the
    /// commit weighs).
    pub(super) fn quota_allows(
        &self,
        b: &BucketRecord,
        len: Option<u64>,
    ) -> Result<(), StoreError> {
        let Some(len) = len.filter(|_| b.quota.is_some()) else {
            return Ok(());
        };
        if b.versioning != Versioning::Enabled {
            return Ok(());
        }
        self.refuse_past_quota(b, len)
    }

    /// Refuses `len` more bytes (versions and parts in progress together) past `b`'s quota.
    pub(super) fn refuse_past_quota(&self, b: &BucketRecord, len: u64) -> Result<(), StoreError> {
        let Some(quota) = b.quota else {
            return Ok(());
        };
        let used = self.inner.meta.usage(&b.name)?.total();
        if len > 0 && used.saturating_add(len) > quota {
            return Err(StoreError::QuotaExceeded {
                bucket: b.name.clone(),
                quota,
                used,
                needed: len,
            });
        }
        Ok(())
    }
}
