//! Object tagging: up to 10 key/value pairs per version, changed without creating a
//! version (tags describe a version; they are not its content).

use super::{Store, StoreError, VersionRef};
use crate::meta::{TagSet, VersionRecord};
use crate::types::{BucketName, ObjectKey};

pub const MAX_TAGS: usize = 10;

/// S3's limits: at most 10 tags, keys of 1 to 128 characters, values of at most 256,
/// no key twice.
pub fn validate(tags: &[(String, String)]) -> Result<(), StoreError> {
    let bad = |reason| Err(StoreError::InvalidTag { reason });
    if tags.len() > MAX_TAGS {
        return bad("an object can have at most 10 tags");
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return bad("tag keys are 1 to 128 characters");
        }
        if v.chars().count() > 256 {
            return bad("tag values are at most 256 characters");
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return bad("tag keys must be unique");
        }
    }
    Ok(())
}

impl Store {
    /// The tags of a version (the current one unless named).
    pub fn object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
    ) -> Result<(VersionRecord, Vec<(String, String)>), StoreError> {
        let rec = self.head_object(bucket, key, version)?;
        let tags = self.inner.meta.tags(bucket, key, &rec.version_id)?;
        Ok((rec, tags.tags))
    }

    /// Replaces the tags of a version; an empty set removes them.
    pub fn set_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: Option<&VersionRef>,
        tags: Vec<(String, String)>,
    ) -> Result<VersionRecord, StoreError> {
        validate(&tags)?;
        self.refuse_reserved(bucket, key)?;
        self.client_writable(bucket)?;
        let rec = self.head_object(bucket, key, version)?;
        match self.propose(crate::command::MetaCommand::SetTags {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: rec.version_id,
            tags: TagSet { tags },
            origin: crate::meta::Origin::Client,
        })? {
            crate::command::Outcome::Tagged(Some(_)) => Ok(rec),
            crate::command::Outcome::Tagged(None) => Err(StoreError::NoSuchVersion {
                bucket: bucket.clone(),
                key: key.clone(),
                version: rec.version_ref().to_string(),
            }),
            other => Err(crate::command::unexpected(other).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn enforces_s3_limits() {
        assert!(validate(&[t("a", "1"), t("b", "")]).is_ok());
        assert!(validate(&[t("", "x")]).is_err());
        assert!(validate(&[t(&"k".repeat(129), "x")]).is_err());
        assert!(validate(&[t("k", &"v".repeat(257))]).is_err());
        assert!(validate(&[t("a", "1"), t("a", "2")]).is_err());
        let eleven: Vec<_> = (0..11).map(|i| t(&format!("k{i}"), "v")).collect();
        assert!(validate(&eleven).is_err());
        assert!(validate(&eleven[..10]).is_ok());
    }
}
