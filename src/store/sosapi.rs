//! Serving Veeam's two SOSAPI documents ([`crate::sosapi`]) as if they were objects: GET
//! (with ranges), HEAD and both listings under the reserved folder. Writes under the
//! folder are refused ([`Store::refuse_reserved`]).

use std::collections::HashSet;

use bytes::Bytes;

use super::versions::{ListPage, ListQuery, VersionEntry, VersionsPage, VersionsQuery};
use super::{Store, StoreError, VersionRef};
use crate::meta::{BucketRecord, VersionRecord};
use crate::sosapi::{self, Capacity, Document};
use crate::types::{BucketName, ObjectKey, Timestamp};

/// The model name `system.xml` declares.
fn model() -> String {
    format!("Stele {}", env!("CARGO_PKG_VERSION"))
}

/// Whole seconds: Last-Modified has no finer unit, and a conditional GET compares them.
fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.micros() - t.micros().rem_euclid(1_000_000))
}

impl Store {
    /// Refuses a write or delete of `key` in the reserved SOSAPI folder.
    ///
    /// # Errors
    /// [`StoreError::ReservedKey`].
    pub fn refuse_reserved(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), StoreError> {
        if sosapi::is_reserved(key.as_str()) {
            return Err(StoreError::ReservedKey {
                bucket: bucket.clone(),
                key: key.clone(),
            });
        }
        Ok(())
    }

    /// What `capacity.xml` reports for bucket `b` (see [`Capacity`]). The disks' usable
    /// bytes are their filesystems' bytes (each filesystem once) times K/(K+M), from each
    /// disk's last known state (no probe: Veeam polls this file, and a GET must not wait
    /// on a failing disk).
    ///
    /// # Errors
    /// A metadata read's error.
    pub fn sosapi_capacity(&self, b: &BucketRecord) -> Result<Capacity, StoreError> {
        let used = self.inner.meta.usage(&b.name)?.total();
        let (mut total, mut free) = (0u128, 0u128);
        let mut seen = HashSet::new();
        for d in self.inner.disks.iter().map(|d| d.status()) {
            if let Some(fs) = d.filesystem
                && !seen.insert(fs)
            {
                continue;
            }
            total += u128::from(d.total_bytes.unwrap_or(0));
            free += u128::from(d.free_bytes.unwrap_or(0));
        }
        let ec = &self.inner.config.ec;
        let usable = |bytes: u128| -> u64 {
            let v = bytes * ec.data as u128 / ec.width().max(1) as u128;
            u64::try_from(v).unwrap_or(u64::MAX)
        };
        let (disks_total, disks_free) = (usable(total), usable(free));
        Ok(match b.quota {
            Some(q) => Capacity {
                capacity: q,
                available: q.saturating_sub(used).min(disks_free),
                used,
            },
            None => Capacity {
                capacity: disks_total,
                available: disks_free,
                used,
            },
        })
    }

    /// The generated document `key` names in `bucket` (its record and its bytes), or
    /// `None` if `key` names none. Only the key's null version exists.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`]; [`StoreError::NoSuchVersion`] for a version id other
    /// than `null`; a metadata read's error.
    pub fn sosapi_document(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<Option<(VersionRecord, Bytes)>, StoreError> {
        let Some(doc) = Document::named(key.as_str()) else {
            return Ok(None);
        };
        let b = self.bucket(bucket)?;
        if let Some(VersionRef::Id(id)) = version.filter(|v| **v != VersionRef::Id(sosapi::VERSION))
        {
            return Err(StoreError::NoSuchVersion {
                bucket: bucket.clone(),
                key: key.clone(),
                version: id.to_string(),
            });
        }
        let (body, modified) = match doc {
            Document::System => (sosapi::system_xml(&model()), b.created),
            Document::Capacity => (
                sosapi::capacity_xml(&self.sosapi_capacity(&b)?),
                self.inner.clock.now(),
            ),
        };
        let record = sosapi::record(body.as_bytes(), seconds(modified));
        Ok(Some((record, Bytes::from(body))))
    }

    /// Both documents whose keys start with `prefix`, in key order, with their records.
    fn sosapi_listed(
        &self,
        bucket: &BucketName,
        prefix: &str,
    ) -> Result<Vec<(ObjectKey, VersionRecord)>, StoreError> {
        let mut out = Vec::new();
        for d in Document::ALL {
            if !d.key().starts_with(prefix) {
                continue;
            }
            let key = ObjectKey::new(d.key().to_owned())?;
            if let Some((rec, _)) = self.sosapi_document(bucket, &key, None)? {
                out.push((key, rec));
            }
        }
        Ok(out)
    }

    /// ListObjects under the reserved folder (`q.prefix` starts with it): the documents
    /// only. Nothing else can be stored there.
    pub(super) fn sosapi_list(
        &self,
        bucket: &BucketName,
        q: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        let mut page = ListPage::default();
        let after = q.after.as_deref().unwrap_or("");
        let mut count = 0;
        for (key, rec) in self.sosapi_listed(bucket, &q.prefix)? {
            let cp =
                super::versions::common_prefix(key.as_str(), &q.prefix, q.delimiter.as_deref());
            let name = cp.clone().unwrap_or_else(|| key.as_str().to_owned());
            if name.as_str() <= after || page.common_prefixes.last() == Some(&name) {
                continue;
            }
            if count == q.max_keys {
                page.truncated = q.max_keys > 0;
                break;
            }
            count += 1;
            page.last = Some(name.clone());
            match cp {
                Some(cp) => page.common_prefixes.push(cp),
                None => page.objects.push((key, rec)),
            }
        }
        Ok(page)
    }

    /// ListObjectVersions under the reserved folder: each document's one (null) version.
    pub(super) fn sosapi_list_versions(
        &self,
        bucket: &BucketName,
        q: &VersionsQuery,
    ) -> Result<VersionsPage, StoreError> {
        let mut page = VersionsPage::default();
        let marker = q.key_marker.as_deref().unwrap_or("");
        let mut count = 0;
        for (key, rec) in self.sosapi_listed(bucket, &q.prefix)? {
            let cp =
                super::versions::common_prefix(key.as_str(), &q.prefix, q.delimiter.as_deref());
            let name = cp.clone().unwrap_or_else(|| key.as_str().to_owned());
            // A document has one version: a marker on its key (or prefix) has passed it.
            if (!marker.is_empty() && name.as_str() <= marker)
                || page.common_prefixes.last() == Some(&name)
            {
                continue;
            }
            if count == q.max_keys {
                page.truncated = q.max_keys > 0;
                break;
            }
            count += 1;
            page.next_key_marker = Some(name);
            match cp {
                Some(cp) => {
                    page.next_version_marker = None;
                    page.common_prefixes.push(cp);
                }
                None => {
                    page.next_version_marker = Some(rec.version_ref());
                    page.versions.push(VersionEntry {
                        key,
                        record: rec,
                        is_latest: true,
                    });
                }
            }
        }
        if !page.truncated {
            page.next_key_marker = None;
            page.next_version_marker = None;
        }
        Ok(page)
    }
}
