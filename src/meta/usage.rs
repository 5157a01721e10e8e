//! Per-bucket usage, kept at commit time: every command that adds or removes an object
//! version or a multipart part adjusts its bucket's counters in the same batch, so usage
//! is exact after a crash or a restart and reading it is one point lookup (quotas, Veeam's
//! `capacity.xml`, `/metrics`) — never a scan. Buckets written by a release before the
//! counters are counted once when the store opens ([`Meta::count_missing_usage`]).

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use super::engine::KvEngine as _;
use super::{Batch, Cf, Meta, MetaError, Record, VersionKind, VersionRecord};
use crate::types::BucketName;

/// What a bucket holds: every object version, current or not (delete markers hold no
/// bytes and are not counted), as Amazon S3's storage metrics count `BucketSizeBytes`
/// and `NumberOfObjects` over all versions; and, apart, the parts of multipart uploads
/// not yet completed or aborted, which take disk space too (a hard quota bounds both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketUsage {
    /// The sum of the object versions' sizes, in bytes (logical: before erasure coding).
    pub bytes: u64,
    /// How many object versions.
    pub objects: u64,
    /// The sum of the sizes of the parts of uploads in progress, in bytes.
    pub upload_bytes: u64,
}

impl Record for BucketUsage {
    const NAME: &'static str = "bucket-usage";
    const FORMAT: u8 = 1;
}

impl BucketUsage {
    /// The usage once `added` is stored and `removed` is gone (either may be a delete
    /// marker, which changes nothing). Saturates at zero: a counter never wraps.
    pub fn after(self, added: Option<&VersionRecord>, removed: Option<&VersionRecord>) -> Self {
        let mut u = self;
        if let Some(v) = added.filter(|v| v.kind == VersionKind::Object) {
            u.bytes = u.bytes.saturating_add(v.size);
            u.objects = u.objects.saturating_add(1);
        }
        if let Some(v) = removed.filter(|v| v.kind == VersionKind::Object) {
            u.bytes = u.bytes.saturating_sub(v.size);
            u.objects = u.objects.saturating_sub(1);
        }
        u
    }

    /// The usage once a part of `added` bytes replaced one of `replaced` bytes (0: none).
    pub fn with_part(self, added: u64, replaced: u64) -> Self {
        Self {
            upload_bytes: self
                .upload_bytes
                .saturating_add(added)
                .saturating_sub(replaced),
            ..self
        }
    }

    /// The usage once an upload's parts of `bytes` in all are gone (Complete or Abort).
    pub fn without_parts(self, bytes: u64) -> Self {
        Self {
            upload_bytes: self.upload_bytes.saturating_sub(bytes),
            ..self
        }
    }

    /// What counts against a quota: versions and parts in progress, in bytes.
    pub fn total(&self) -> u64 {
        self.bytes.saturating_add(self.upload_bytes)
    }
}

fn usage_key(bucket: &BucketName) -> Vec<u8> {
    format!("usage/{bucket}").into_bytes()
}

impl Batch {
    /// Writes `bucket`'s usage.
    pub(crate) fn set_usage(
        &mut self,
        bucket: &BucketName,
        usage: &BucketUsage,
    ) -> Result<(), MetaError> {
        self.put(Cf::Cluster, usage_key(bucket), usage.encode()?);
        Ok(())
    }

    /// Forgets `bucket`'s usage (the bucket is removed).
    pub(crate) fn drop_usage(&mut self, bucket: &BucketName) {
        self.delete(Cf::Cluster, usage_key(bucket));
    }
}

impl Meta {
    /// `bucket`'s usage as the last commit left it; zero for a bucket without counters
    /// (a new bucket, or one that does not exist).
    ///
    /// # Errors
    /// A read error, or an unreadable record.
    pub fn usage(&self, bucket: &BucketName) -> Result<BucketUsage, MetaError> {
        Ok(self
            .get::<BucketUsage>(Cf::Cluster, &usage_key(bucket))?
            .unwrap_or_default())
    }

    /// Counts, once, the usage of every bucket that has none recorded (written by a
    /// release before the counters) and records it; returns how many buckets it counted.
    /// Runs at open, before any command, so no commit races it.
    ///
    /// # Errors
    /// A read or write error.
    pub(crate) fn count_missing_usage(&self) -> Result<usize, MetaError> {
        let mut counted = 0;
        for rec in self.buckets()? {
            if self.db.get(Cf::Cluster, &usage_key(&rec.name))?.is_some() {
                continue;
            }
            let mut u = BucketUsage::default();
            self.scan_versions(&rec.name, "", |_, v| {
                u = u.after(Some(&v), None);
                ControlFlow::Continue(())
            })?;
            for up in self.uploads(&rec.name)? {
                for p in self.parts(&up.upload_id)? {
                    u = u.with_part(p.size, 0);
                }
            }
            let mut b = Batch::default();
            b.set_usage(&rec.name, &u)?;
            self.commit(b, true)?;
            tracing::info!(
                bucket = %rec.name,
                bytes = u.bytes,
                objects = u.objects,
                upload_bytes = u.upload_bytes,
                "bucket usage counted"
            );
            counted += 1;
        }
        Ok(counted)
    }
}
