//! Buckets made through the admin API (`POST /v1/buckets`: 201, no body) and their
//! retention policies (`GET`/`PUT /v1/buckets/{bucket}/retention-policy`).

use serde::{Deserialize, Serialize};

/// The body of `POST /v1/buckets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBucket {
    /// The bucket's name (S3's naming rules).
    pub name: String,
    /// Turn Object Lock on; implied by a default retention. Absent means `false`.
    #[serde(default)]
    pub lock: bool,
    /// Default retention mode: `GOVERNANCE` or `COMPLIANCE`; goes with
    /// `retention_days`. Absent or `null`: no default retention.
    #[serde(default)]
    pub retention_mode: Option<String>,
    /// Default retention in days; goes with `retention_mode`.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// A retention policy as `GET /v1/buckets/{bucket}/retention-policy` answers it and `PUT`
/// takes it (both `null` for none: a `PUT` of `null` removes it). Days count from each
/// version's creation. Loosening a policy under the two-person rule answers 202 with a
/// [`crate::approvals::Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The shortest retention a new version may have, in days; `null`: no minimum.
    pub min_days: Option<u32>,
    /// The longest retention that may be set, in days; `null`: no maximum.
    pub max_days: Option<u32>,
    /// The modes allowed: `GOVERNANCE` and/or `COMPLIANCE` (S3's spelling).
    pub modes: Vec<String>,
    /// What a write below `min_days` gets: `refuse` (refused) or `raise` (raised to it).
    pub below_min: String,
}

/// A bucket as `GET /v1/buckets` lists it, and its quota as `GET`/`PUT
/// /v1/buckets/{bucket}/quota` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSummary {
    /// The bucket's name.
    pub name: String,
    /// Versioning: `Enabled`, `Suspended` or `Unversioned`.
    pub versioning: String,
    /// Object Lock is enabled.
    pub object_lock: bool,
    /// The hard quota in bytes; `null`: none.
    pub quota_bytes: Option<u64>,
    /// Bytes held: every object version, current or not (kept at commit time).
    pub used_bytes: u64,
    /// Object versions held (delete markers not counted).
    pub objects: u64,
    /// Bytes in the parts of multipart uploads not yet completed or aborted; the quota
    /// bounds `used_bytes + upload_bytes`. Absent (older servers): 0.
    #[serde(default)]
    pub upload_bytes: u64,
}

/// The body of `PUT /v1/buckets/{bucket}/quota`: the hard quota in bytes, `null` to
/// remove it. Client writes that would take the bucket past it are refused (S3 403
/// `QuotaExceeded`); lowering it below the usage removes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// The quota in bytes, or `null`.
    pub quota_bytes: Option<u64>,
}

/// A bucket's erasure coding across sites, as `GET`/`PUT /v1/buckets/{bucket}/geo`
/// answer it (`DELETE` goes back to the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geo {
    /// The bucket.
    pub bucket: String,
    /// The bucket's own profile `K+M`; `null`: the node's.
    pub profile: Option<String>,
    /// The profile its new objects are written with.
    pub effective_profile: String,
    /// While a whole site is down: `degrade` (written over the other sites, counted as
    /// site-unsafe, moved back when it returns) or `refuse` (503 SlowDown).
    pub site_down_writes: String,
}

/// The body of `PUT /v1/buckets/{bucket}/geo`: what it leaves out stays as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoChange {
    /// A profile `K+M` for the bucket's new objects: refused across two sites, and across
    /// three or more when it cannot survive losing one (409 `InvalidProfile`, naming the
    /// profiles that can).
    #[serde(default)]
    pub profile: Option<String>,
    /// Go back to the node's profile.
    #[serde(default)]
    pub default_profile: bool,
    /// `degrade` or `refuse`.
    #[serde(default)]
    pub site_down_writes: Option<String>,
}
