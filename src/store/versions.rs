//! Versioning as S3 defines it: the null version, delete markers, removal of versions
//! (always through the lock layer), and the two listings.

use std::fmt;
use std::ops::ControlFlow;

use super::{Store, StoreError};
use crate::command::{BucketChange, CommandError, CommitVersion, MetaCommand, Outcome};
use crate::disk::ShardName;
use crate::lock;
use crate::meta::{BucketRecord, MetaError, NewVersion, VersionKind, VersionRecord, Versioning};
use crate::types::{BucketName, NameError, ObjectKey, VersionId};

/// A version as a client names it: `null` or an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// The key's null version: the one written while versioning was off or suspended,
    /// which S3 names `null`.
    Null,
    /// A version written while versioning was enabled, by its id.
    Id(VersionId),
}

impl std::str::FromStr for VersionRef {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s == "null" {
            Ok(VersionRef::Null)
        } else {
            s.parse().map(VersionRef::Id)
        }
    }
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Null => f.write_str("null"),
            VersionRef::Id(v) => v.fmt(f),
        }
    }
}

impl VersionRecord {
    /// The name clients know this version by.
    pub fn version_ref(&self) -> VersionRef {
        if self.null_version {
            VersionRef::Null
        } else {
            VersionRef::Id(self.version_id)
        }
    }
}

/// What a DeleteObject did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version removed or the delete marker created, if any.
    pub version: Option<VersionRef>,
    /// Whether that version is a delete marker.
    pub delete_marker: bool,
}

/// A ListObjects request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys that start with this; empty for every key.
    pub prefix: String,
    /// Keys with this after the prefix roll up into one common prefix each, up to and
    /// including it (`None` or empty: no roll-up).
    pub delimiter: Option<String>,
    /// Only keys (or common prefixes) after this one.
    pub after: Option<String>,
    /// At most this many keys and common prefixes together (the server caps it at 1000,
    /// as Amazon S3 does). 0 gives an empty page that is not truncated.
    pub max_keys: usize,
}

/// One page of a ListObjects listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Each key's current version, by key. Keys whose current version is a delete marker
    /// are left out.
    pub objects: Vec<(ObjectKey, VersionRecord)>,
    /// The common prefixes keys rolled up into, in order; each counts once against
    /// `max_keys`.
    pub common_prefixes: Vec<String>,
    /// More keys or common prefixes follow: the next page asks with `after` set to
    /// [`ListPage::last`].
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts after.
    pub last: Option<String>,
}

/// A ListObjectVersions request.
#[derive(Debug, Clone, Default)]
pub struct VersionsQuery {
    /// Only keys that start with this; empty for every key.
    pub prefix: String,
    /// Keys with this after the prefix roll up into one common prefix each, up to and
    /// including it (`None` or empty: no roll-up).
    pub delimiter: Option<String>,
    /// Resume at this key (S3's `key-marker`): keys before it are skipped, and so are all
    /// its own versions unless `version_marker` is given.
    pub key_marker: Option<String>,
    /// With `key_marker`, resume after this version of that key (S3's
    /// `version-id-marker`).
    pub version_marker: Option<VersionRef>,
    /// At most this many versions, delete markers and common prefixes together (the
    /// server caps it at 1000, as Amazon S3 does). 0 gives an empty page that is not
    /// truncated.
    pub max_keys: usize,
}

/// One version or delete marker in a ListObjectVersions page.
#[derive(Debug, Clone)]
pub struct VersionEntry {
    /// The key the version belongs to.
    pub key: ObjectKey,
    /// The version's record; its `kind` tells a delete marker from an object.
    pub record: VersionRecord,
    /// Whether it is the key's current version (S3's `IsLatest`); a delete marker can be.
    pub is_latest: bool,
}

/// One page of a ListObjectVersions listing.
#[derive(Debug, Clone, Default)]
pub struct VersionsPage {
    /// Versions and delete markers by key, newest first within a key.
    pub versions: Vec<VersionEntry>,
    /// The common prefixes keys rolled up into, in order; each counts once against
    /// `max_keys`.
    pub common_prefixes: Vec<String>,
    /// More follow: the next page asks with the two markers below.
    pub truncated: bool,
    /// The last key or common prefix on the page, for the next page's `key_marker` (S3's
    /// `NextKeyMarker`); `None` unless truncated.
    pub next_key_marker: Option<String>,
    /// The last version on the page, for the next page's `version_marker` (S3's
    /// `NextVersionIdMarker`); `None` unless truncated, or when the page ends with a
    /// common prefix.
    pub next_version_marker: Option<VersionRef>,
}

/// Where a version listing resumes within its key marker.
#[derive(Clone, Copy)]
enum Marker {
    SkipKey,
    SkipThrough(VersionRef),
    Include,
}

/// The common prefix `key` rolls up into, if the delimiter occurs after the prefix.
pub(super) fn common_prefix(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = &key[prefix.len()..];
    rest.find(d)
        .map(|i| key[..prefix.len() + i + d.len()].to_owned())
}

impl Store {
    /// Turns versioning on or suspends it. A bucket never returns to "unversioned".
    pub fn set_versioning(
        &self,
        bucket: &BucketName,
        state: Versioning,
    ) -> Result<BucketRecord, StoreError> {
        if state == Versioning::Unversioned {
            return Err(StoreError::InvalidVersioningState);
        }
        match self.propose(MetaCommand::UpdateBucket {
            bucket: bucket.clone(),
            change: BucketChange::Versioning(state),
        })? {
            Outcome::Bucket(Some((rec, _))) => Ok(rec),
            _ => Err(StoreError::NoSuchBucket {
                bucket: bucket.clone(),
            }),
        }
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, bucket: &BucketName) -> Result<(), StoreError> {
        self.bucket(bucket)?;
        let entry = crate::audit::Entry::new("bucket-deleted", self.inner.retention.readings())
            .by(self.requester())
            .on(bucket.as_str(), None, None);
        let deleted = match self.propose(MetaCommand::DeleteBucket {
            bucket: bucket.clone(),
        })? {
            Outcome::BucketDeleted(d) => d,
            other => return Err(crate::command::unexpected(other).into()),
        };
        if !deleted {
            self.inner
                .trail
                .record(entry.refused("the bucket is not empty"));
            return Err(StoreError::BucketNotEmpty {
                bucket: bucket.clone(),
            });
        }
        // A bucket made again under the name starts unpaired.
        self.inner.meta.kv_write(
            crate::meta::Space::Replication,
            &[],
            &[crate::replication::epoch::epoch_key(bucket)],
        )?;
        Ok(())
    }

    /// The key's null version, if it has one.
    pub(crate) fn null_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<VersionRecord>, StoreError> {
        Ok(self
            .inner
            .meta
            .versions_of(bucket, key)?
            .into_iter()
            .find(|v| v.null_version))
    }

    /// The version a client named.
    pub(crate) fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: &VersionRef,
    ) -> Result<Option<VersionRecord>, StoreError> {
        match version {
            VersionRef::Null => self.null_version(bucket, key),
            VersionRef::Id(v) => Ok(self.inner.meta.version(bucket, key, v)?),
        }
    }

    /// Removes a version: the only deletion of a version in the engine. The lock layer
    /// decides on the record and lock state read under the metadata write guard; then the
    /// record goes, then the shard files. A crash between the last two leaves unreferenced
    /// shard files, which scrub finds. `bypass`: the request may bypass GOVERNANCE.
    pub(crate) fn remove_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        rec: &VersionRecord,
        bypass: bool,
    ) -> Result<(), StoreError> {
        let removed = self.propose(MetaCommand::RemoveVersion {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: rec.version_id,
            bypass,
        })?;
        if let Outcome::Removed(Some(v)) = removed {
            self.remove_version_data(&v);
        }
        Ok(())
    }

    /// Whether a write may replace `old` (a key's null version), as the lock layer says.
    pub(crate) fn may_replace(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        old: &VersionRecord,
    ) -> Result<(), StoreError> {
        let state = self.inner.meta.lock(bucket, key, &old.version_id)?;
        lock::may_remove(old, &state, self.inner.retention.readings().earliest, false)?;
        Ok(())
    }

    /// Removes the shard files of a version whose record is gone.
    pub(crate) fn remove_version_data(&self, rec: &VersionRecord) {
        for seg in &rec.segments {
            self.remove_segment_data(seg);
        }
    }

    /// Removes the shard files of a segment no record references any more.
    pub(crate) fn remove_segment_data(&self, seg: &crate::meta::SegmentRecord) {
        for (i, s) in seg.shards.iter().enumerate() {
            if s.root.is_some()
                && let Some(d) = self.disk(&s.disk)
                && let Err(e) = d.remove(ShardName::new(seg.id, i))
            {
                tracing::warn!(error = %e, "could not remove a removed version's shard");
            }
        }
        // Shards repair placed elsewhere.
        let placed = self.inner.meta.placements(&seg.id).unwrap_or_default();
        for (i, p) in &placed {
            if let Some(d) = self.disk(&p.disk)
                && let Err(e) = d.remove(ShardName::new(seg.id, *i as usize))
            {
                tracing::warn!(error = %e, "could not remove a removed version's shard");
            }
        }
        if !placed.is_empty()
            && let Err(e) =
                self.propose(crate::command::MetaCommand::DropPlacements { segment: seg.id })
        {
            tracing::warn!(segment = %seg.id, error = %e, "could not drop shard placements");
        }
    }

    /// Where each shard of `seg` is: its segment record, or where repair placed it since.
    pub(crate) fn shard_locations(
        &self,
        seg: &crate::meta::SegmentRecord,
    ) -> Result<Vec<(String, Option<crate::types::Hash>)>, StoreError> {
        let mut locs = Self::recorded_locations(seg);
        for (i, p) in self.inner.meta.placements(&seg.id)? {
            if let Some(l) = locs.get_mut(i as usize) {
                *l = (p.disk, Some(p.root));
            }
        }
        Ok(locs)
    }

    /// Where the version record says the shards of `seg` are (before any repair moved one).
    pub(crate) fn recorded_locations(
        seg: &crate::meta::SegmentRecord,
    ) -> Vec<(String, Option<crate::types::Hash>)> {
        seg.shards
            .iter()
            .map(|s| (s.disk.clone(), s.root))
            .collect()
    }

    /// DeleteObject. With a version: removes that version (if the lock layer allows;
    /// `bypass` lifts GOVERNANCE). Without: removes the null version of an unversioned
    /// bucket, or adds a delete marker (a null one when versioning is suspended).
    pub async fn delete_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        bypass: bool,
    ) -> Result<DeleteOutcome, StoreError> {
        // A version-specific delete of a key stored in the folder by an earlier release
        // (which did not reserve it) may still remove that version.
        if version.is_none() || crate::sosapi::Document::named(key.as_str()).is_some() {
            self.refuse_reserved(bucket, key)?;
        }
        let store = self.clone();
        let (b, k, v) = (bucket.clone(), key.clone(), version.copied());
        tokio::task::spawn_blocking(move || {
            store.delete_object_blocking(
                &b,
                &k,
                v.as_ref(),
                bypass,
                crate::meta::Origin::Client,
                &crate::meta::WriteCondition::Always,
            )
        })
        .await?
    }

    /// [`Store::delete_object`] on the calling thread; a delete marker it adds records
    /// `origin` (the lifecycle worker's markers are never replicated) and is committed
    /// only if `marker_if` holds when the command is applied.
    pub(crate) fn delete_object_blocking(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        bypass: bool,
        origin: crate::meta::Origin,
        marker_if: &crate::meta::WriteCondition,
    ) -> Result<DeleteOutcome, StoreError> {
        // The version named is looked up here: in a cluster, after every write
        // acknowledged before this delete (one made through another node included).
        self.linearize()?;
        let b = self.bucket(bucket)?;
        // A replica refuses a client's delete marker (a new version, which its primary
        // never wrote), not the removal of one version: that adds nothing a failback
        // would have to merge, and Object Lock still decides it (its own administrators
        // may clean up a DR copy, as they may apply a weakening the source made).
        if origin == crate::meta::Origin::Client && version.is_none() {
            self.client_writable(bucket)?;
        }
        if let Some(v) = version {
            return match self.find_version(bucket, key, v)? {
                Some(rec) => {
                    self.remove_version(bucket, key, &rec, bypass)?;
                    Ok(DeleteOutcome {
                        version: Some(*v),
                        delete_marker: rec.kind == VersionKind::DeleteMarker,
                    })
                }
                None => Ok(DeleteOutcome {
                    version: Some(*v),
                    delete_marker: false,
                }),
            };
        }
        match b.versioning {
            Versioning::Unversioned => {
                if let Some(rec) = self.null_version(bucket, key)? {
                    self.remove_version(bucket, key, &rec, bypass)?;
                }
                Ok(DeleteOutcome {
                    version: None,
                    delete_marker: false,
                })
            }
            Versioning::Enabled | Versioning::Suspended => {
                let null = b.versioning == Versioning::Suspended;
                // Linearized above, before the versions were read.
                let created = self.version_time_linearized(bucket, key)?;
                let marker = VersionRecord::delete_marker(
                    VersionId::generate(created),
                    created,
                    null,
                    origin,
                );
                let replaced = if null {
                    self.null_version(bucket, key)?
                } else {
                    None
                };
                if let Some(old) = &replaced {
                    self.may_replace(bucket, key, old)?;
                }
                self.commit(
                    NewVersion {
                        bucket,
                        key,
                        record: &marker,
                        repairs: &[],
                        replaces: None,
                        condition: marker_if,
                        tags: None,
                        inline: None,
                        lock: None,
                    },
                    replaced.as_ref(),
                )?;
                Ok(DeleteOutcome {
                    version: Some(marker.version_ref()),
                    delete_marker: true,
                })
            }
        }
    }

    /// Commits `new`, replacing `replaced` (already allowed by the lock layer), whose shard
    /// files are removed once the commit is durable.
    pub(crate) fn commit(
        &self,
        new: NewVersion<'_>,
        replaced: Option<&VersionRecord>,
    ) -> Result<(), StoreError> {
        let new = NewVersion {
            replaces: replaced.map(|r| &r.version_id),
            ..new
        };
        let committed = self.propose(MetaCommand::CommitVersion(Box::new(
            CommitVersion::from_new(&new),
        )));
        match committed.map_err(|e| match e {
            CommandError::Meta(m) => Ok(m),
            other => Err(StoreError::from(other)),
        }) {
            Ok(_) => {}
            Err(Err(e)) => return Err(e),
            Err(Ok(MetaError::BucketGone { bucket })) => {
                return Err(StoreError::NoSuchBucket { bucket });
            }
            Err(Ok(MetaError::ConditionFailed {
                bucket,
                key,
                failure,
            })) => {
                return Err(StoreError::condition(&bucket, &key, failure));
            }
            Err(Ok(MetaError::ReplacesLocked {
                bucket,
                key,
                version_id,
            })) => {
                return Err(StoreError::ReplacesLocked {
                    bucket,
                    key,
                    version_id,
                });
            }

            Err(Ok(e)) => return Err(e.into()),
        }
        if let Some(old) = replaced {
            self.remove_version_data(old);
        }
        Ok(())
    }

    /// ListObjects (v1 and v2): the current version of each key, delete markers hidden.
    pub fn list_objects(&self, bucket: &BucketName, q: &ListQuery) -> Result<ListPage, StoreError> {
        self.bucket(bucket)?;
        if crate::sosapi::is_reserved(&q.prefix) {
            return self.sosapi_list(bucket, q);
        }
        let delimiter = q.delimiter.as_deref();
        let after = q.after.as_deref().unwrap_or("");
        let from = if after > q.prefix.as_str() {
            after
        } else {
            q.prefix.as_str()
        };
        let mut page = ListPage::default();
        let mut last_key: Option<ObjectKey> = None;
        let mut count = 0;
        self.inner.meta.scan_versions(bucket, from, |key, rec| {
            let k = key.as_str();
            if !k.starts_with(&q.prefix) {
                return if k > q.prefix.as_str() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                };
            }
            if last_key.as_ref() == Some(&key) {
                return ControlFlow::Continue(()); // an older version of a key already seen
            }
            last_key = Some(key.clone());
            if !after.is_empty()
                && (k <= after
                    || (after.ends_with(delimiter.unwrap_or("\u{0}")) && k.starts_with(after)))
            {
                return ControlFlow::Continue(());
            }
            if rec.kind == VersionKind::DeleteMarker {
                return ControlFlow::Continue(());
            }
            let cp = common_prefix(k, &q.prefix, delimiter);
            if let Some(cp) = &cp
                && page.common_prefixes.last() == Some(cp)
            {
                return ControlFlow::Continue(());
            }
            if count == q.max_keys {
                // Amazon S3 answers max-keys=0 with no keys and not truncated.
                page.truncated = q.max_keys > 0;
                return ControlFlow::Break(());
            }
            count += 1;
            match cp {
                Some(cp) => {
                    page.last = Some(cp.clone());
                    page.common_prefixes.push(cp);
                }
                None => {
                    page.last = Some(k.to_owned());
                    page.objects.push((key, rec));
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(page)
    }

    /// ListObjectVersions: every version and delete marker, by key, newest first.
    pub fn list_object_versions(
        &self,
        bucket: &BucketName,
        q: &VersionsQuery,
    ) -> Result<VersionsPage, StoreError> {
        self.bucket(bucket)?;
        if crate::sosapi::is_reserved(&q.prefix) {
            return self.sosapi_list_versions(bucket, q);
        }
        let delimiter = q.delimiter.as_deref();
        let key_marker = q.key_marker.as_deref().unwrap_or("");
        let from = if key_marker > q.prefix.as_str() {
            key_marker
        } else {
            q.prefix.as_str()
        };
        let mut page = VersionsPage::default();
        let mut last_key: Option<ObjectKey> = None;
        // Within the marker key: skip all its versions, or those up to the version marker.
        let mut marker = match q.version_marker {
            None => Marker::SkipKey,
            Some(v) => Marker::SkipThrough(v),
        };
        let mut count = 0;
        self.inner.meta.scan_versions(bucket, from, |key, rec| {
            let k = key.as_str();
            if !k.starts_with(&q.prefix) {
                return if k > q.prefix.as_str() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                };
            }
            let is_latest = last_key.as_ref() != Some(&key);
            last_key = Some(key.clone());
            if !key_marker.is_empty() {
                if k < key_marker {
                    return ControlFlow::Continue(());
                }
                if k == key_marker {
                    match marker {
                        Marker::SkipKey => return ControlFlow::Continue(()),
                        Marker::SkipThrough(v) => {
                            if rec.version_ref() == v {
                                marker = Marker::Include;
                            }
                            return ControlFlow::Continue(());
                        }
                        Marker::Include => {}
                    }
                }
            }
            let cp = common_prefix(k, &q.prefix, delimiter);
            if let Some(cp) = &cp
                && (page.common_prefixes.last() == Some(cp)
                    || key_marker.starts_with(cp.as_str()) && !key_marker.is_empty())
            {
                return ControlFlow::Continue(());
            }
            if count == q.max_keys {
                // Amazon S3 answers max-keys=0 with no keys and not truncated.
                page.truncated = q.max_keys > 0;
                return ControlFlow::Break(());
            }
            count += 1;
            match cp {
                Some(cp) => {
                    page.next_key_marker = Some(cp.clone());
                    page.next_version_marker = None;
                    page.common_prefixes.push(cp);
                }
                None => {
                    page.next_key_marker = Some(k.to_owned());
                    page.next_version_marker = Some(rec.version_ref());
                    page.versions.push(VersionEntry {
                        key,
                        record: rec,
                        is_latest,
                    });
                }
            }
            ControlFlow::Continue(())
        })?;
        if !page.truncated {
            page.next_key_marker = None;
            page.next_version_marker = None;
        }
        Ok(page)
    }
}
