//! Persisted records. Each is stored as one format-version byte followed by the record in
//! postcard encoding. When a record changes shape, the old shape stays here under its old
//! version number and `decode` upgrades it, so bytes written by any release still read.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::MetaError;
use crate::checksum::Checksum;
use crate::geometry::Geometry;
use crate::types::{BucketName, Hash, ObjectKey, SegmentId, Timestamp, VersionId};

/// A record type with a current format version.
pub trait Record: Serialize + DeserializeOwned {
    /// The record's name in errors (`"version"`, `"upload"`).
    const NAME: &'static str;
    /// The format byte written before the body; bumped whenever the body's shape or
    /// meaning changes, so an older release refuses what it cannot read.
    const FORMAT: u8;

    /// The format byte followed by the record in postcard.
    ///
    /// # Errors
    /// [`MetaError::Encode`] when the record cannot be serialised (a custom `Serialize`
    /// that fails, or a sequence of unknown length): never an empty body in its place.
    fn encode(&self) -> Result<Vec<u8>, MetaError> {
        let mut out = vec![Self::FORMAT];
        let body = postcard::to_stdvec(self).map_err(|e| MetaError::Encode {
            record: Self::NAME,
            message: e.to_string(),
        })?;
        out.extend(body);
        Ok(out)
    }

    /// Decodes a record written in an older format `version`, upgrading it; `None` if that
    /// format never existed.
    fn upgrade(_version: u8, _body: &[u8]) -> Option<Result<Self, MetaError>> {
        None
    }

    /// Decodes a record of the current format, or of an older one through `upgrade`.
    fn decode(bytes: &[u8]) -> Result<Self, MetaError> {
        match bytes.split_first() {
            Some((&v, rest)) if v == Self::FORMAT => decode_body(Self::NAME, rest),
            Some((&v, rest)) => Self::upgrade(v, rest).unwrap_or(Err(MetaError::UnknownFormat {
                record: Self::NAME,
                version: v,
            })),
            None => Err(MetaError::Decode {
                record: Self::NAME,
                message: "empty record".into(),
            }),
        }
    }
}

pub(crate) fn decode_body<T: DeserializeOwned>(
    name: &'static str,
    bytes: &[u8],
) -> Result<T, MetaError> {
    postcard::from_bytes(bytes).map_err(|e| MetaError::Decode {
        record: name,
        message: e.to_string(),
    })
}

/// A bucket's versioning state (S3's `PutBucketVersioning`). Once enabled, a bucket never
/// goes back to unversioned, only to suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled: every write replaces the key's null version.
    Unversioned,
    /// Every write adds a version with its own id.
    Enabled,
    /// Enabled once, now off: writes replace the null version again, older versions stay.
    Suspended,
}

/// A bucket, keyed by its name in the `buckets` family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// The bucket's name, also its key.
    pub name: BucketName,
    /// When CreateBucket ran (wall clock): the freshness watchdog's basis for a bucket
    /// never written.
    pub created: Timestamp,
    /// The versioning state; always `Enabled` when `object_lock` is set.
    pub versioning: Versioning,
    /// Object Lock is enabled (it can never be turned off again).
    pub object_lock: bool,
    /// The retention new versions get when their request names none (format 2 on).
    pub default_retention: Option<DefaultRetention>,
    /// The administrator's bounds on retention in this bucket (format 2 on).
    pub policy: Option<RetentionPolicy>,
    /// The hard quota in bytes: client writes that would take the bucket's usage
    /// ([`crate::meta::BucketUsage`]) past it are refused. `None`: no quota. Format 3 on.
    pub quota: Option<u64>,
}

impl Record for BucketRecord {
    const NAME: &'static str = "bucket";
    // 3: the quota.
    const FORMAT: u8 = 3;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        match version {
            1 => Some(
                decode_body::<BucketRecordV1>(Self::NAME, body).map(|v| BucketRecord {
                    name: v.name,
                    created: v.created,
                    versioning: v.versioning,
                    object_lock: v.object_lock,
                    default_retention: None,
                    policy: None,
                    quota: None,
                }),
            ),
            2 => Some(
                decode_body::<BucketRecordV2>(Self::NAME, body).map(|v| BucketRecord {
                    name: v.name,
                    created: v.created,
                    versioning: v.versioning,
                    object_lock: v.object_lock,
                    default_retention: v.default_retention,
                    policy: v.policy,
                    quota: None,
                }),
            ),
            _ => None,
        }
    }
}

/// Format 2 of [`BucketRecord`]: before quotas.
#[derive(Deserialize)]
struct BucketRecordV2 {
    name: BucketName,
    created: Timestamp,
    versioning: Versioning,
    object_lock: bool,
    default_retention: Option<DefaultRetention>,
    policy: Option<RetentionPolicy>,
}

/// Format 1 of [`BucketRecord`]: before default retention and retention policies.
#[derive(Deserialize)]
struct BucketRecordV1 {
    name: BucketName,
    created: Timestamp,
    versioning: Versioning,
    object_lock: bool,
}

/// Object Lock retention modes. GOVERNANCE can be lifted by an identity allowed to bypass
/// it; COMPLIANCE by nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Removable early, or shortened, only with `x-amz-bypass-governance-retention` by a
    /// user who holds the bucket's governance-bypass grant.
    Governance,
    /// Neither removable nor shortened before its date, by anyone.
    Compliance,
}

impl RetentionMode {
    /// The S3 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    /// Parses the S3 spelling, which is case-sensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GOVERNANCE" => Some(RetentionMode::Governance),
            "COMPLIANCE" => Some(RetentionMode::Compliance),
            _ => None,
        }
    }
}

/// A retention: the version is protected in `mode` until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// How strongly the version is protected.
    pub mode: RetentionMode,
    /// The retain-until date (`x-amz-object-lock-retain-until-date`).
    pub until: Timestamp,
}

/// A version's Object Lock state. Unlike the version record it can change, but only
/// through the pure decisions in `lock`, which never let protection end early.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The retention granted; it may be extended but, in COMPLIANCE mode, never shortened.
    pub retention: Option<Retention>,
    /// A legal hold is on: the version cannot be removed, whatever its retention says,
    /// until the hold is lifted.
    pub legal_hold: bool,
}

impl LockRecord {
    /// No retention and no legal hold: such a state is not stored (its key is removed).
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && !self.legal_hold
    }
}

impl Record for LockRecord {
    const NAME: &'static str = "lock";
    const FORMAT: u8 = 1;
}

/// A retention length, as S3 states a bucket default: whole days or whole years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    /// Days of 24 hours; S3 allows 1 to 36500.
    Days(u32),
    /// Calendar years (29 February moves to 1 March); S3 allows 1 to 100.
    Years(u32),
}

/// A bucket's default retention (`ObjectLockConfiguration` rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// The mode new versions get.
    pub mode: RetentionMode,
    /// How long from a version's creation its retention runs.
    pub period: RetentionPeriod,
}

/// What a write asking for less than a policy's minimum gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BelowMinimum {
    /// Refused with `InvalidRequest` naming the policy.
    Refuse,
    /// Stored with its retention raised to the minimum.
    Raise,
}

/// An administrator's bounds on retention in one bucket, measured from each version's
/// creation: at least `min_days`, at most `max_days`, in one of `modes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// The shortest retention a new version may have, in days from its creation; `None`
    /// for no minimum.
    pub min_days: Option<u32>,
    /// The longest retention that may be set, in days from the version's creation; `None`
    /// for no maximum.
    pub max_days: Option<u32>,
    /// The modes allowed; never empty.
    pub modes: Vec<RetentionMode>,
    /// Whether a write below `min_days` is refused or raised to it.
    pub below_min: BelowMinimum,
}

/// One lifecycle rule, in the subset of S3's rules that Stele applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The rule's `ID`; empty when the configuration gave none.
    pub id: String,
    /// `Status` is `Enabled`; a disabled rule is kept and shown but never applied.
    pub enabled: bool,
    /// Keys the rule applies to.
    pub prefix: String,
    /// Current versions older than this many days expire (a delete marker in a versioned
    /// bucket, removal otherwise).
    pub expiration_days: Option<u32>,
    /// A delete marker with no other version left is removed.
    pub expired_delete_markers: bool,
    /// Noncurrent versions are removed this many days after they stopped being current...
    pub noncurrent_days: Option<u32>,
    /// ...except the newest this many noncurrent versions of each key.
    pub newer_noncurrent_versions: Option<u32>,
    /// Multipart uploads still incomplete this many days after they began are aborted.
    pub abort_multipart_days: Option<u32>,
}

/// How a bucket's objects are erasure-coded across sites (issue 15,
/// `../shared/design/sites.md` §3.4): its own profile, and what its writes do while a
/// whole site is down. Kept beside the bucket record (not in it: commands that embed a
/// bucket record keep their bytes), set through the admin API, removed with the bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketGeo {
    /// K+M for the bucket's new objects, as (K, M); `None`: the node's `--ec`.
    pub profile: Option<(u16, u16)>,
    /// What a write does while every disk of a site is unreachable.
    pub site_down_writes: SiteDownWrites,
}

/// What a bucket's writes do while a whole site is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteDownWrites {
    /// Placed over the surviving sites (backups must keep arriving): acknowledged
    /// site-unsafe, the shards moved back to their site when it returns.
    #[default]
    Degrade,
    /// Refused (S3 503 `SlowDown`, which clients retry).
    Refuse,
}

impl Record for BucketGeo {
    const NAME: &'static str = "bucket-geo";
    const FORMAT: u8 = 1;
}

/// A bucket's lifecycle configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    /// The rules, in the order PutBucketLifecycleConfiguration gave them.
    pub rules: Vec<LifecycleRule>,
}

impl Record for LifecycleConfig {
    const NAME: &'static str = "lifecycle";
    const FORMAT: u8 = 1;
}

/// What a version is: an object with bytes, or an S3 delete marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionKind {
    /// An object (possibly of 0 bytes).
    Object,
    /// A delete marker: no bytes; as the newest version, the key reads as absent.
    DeleteMarker,
}

/// One shard of a segment: the disk that holds it and the root of its block hashes.
/// `root` is `None` when the shard could not be written; it is then in the repair queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The disk: its UUID as 32 hex digits in records of [`VersionRecord`] format 6 and
    /// [`PartRecord`] format 2 on (unique across nodes); its node-local id (`d0`) in older
    /// ones, which only the node that wrote them resolves. The bytes did not change, the
    /// meaning did: the format was bumped so an older release refuses such a record
    /// instead of looking for a disk it cannot find.
    pub disk: String,
    /// BLAKE3 of the shard file's hash list, as the write computed it: a read trusts only
    /// a file that hashes to it.
    pub root: Option<Hash>,
}

/// A run of object bytes erasure-coded as one unit: a whole object, or one multipart part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Names the shard files (`shards/<xx>/<segment>.<index>`) and seeds their placement
    /// (a rendezvous hash of it).
    pub id: SegmentId,
    /// K, M, block size and length in bytes: every offset in the shards follows from it.
    pub geometry: Geometry,
    /// K+M entries; entry `i` is shard `i` (data shards first).
    pub shards: Vec<ShardRecord>,
}

/// One version of a key (an object or a delete marker), under its version key in
/// `versions`. Never rewritten once committed: what may change about a version (its lock
/// state, its tags) lives in families keyed like it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Time-sortable and unique; also the end of the record's key. Clients see `null`
    /// instead when `null_version` is set.
    pub version_id: VersionId,
    /// When the version was written (wall clock): its Last-Modified, and where lifecycle
    /// ages and retention policy bounds count from.
    pub created: Timestamp,
    /// An object or a delete marker.
    pub kind: VersionKind,
    /// The object's length in bytes (0 for a delete marker).
    pub size: u64,
    /// Hex MD5 of the body (single part) or `hex-N` (multipart), without quotes.
    pub etag: String,
    /// `Content-Type` as the write gave it; `None` when it gave none.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`), names without the prefix, values as sent.
    pub user_meta: Vec<(String, String)>,
    /// The object's `x-amz-checksum-*` (raw digests, at most one today), verified when
    /// the bytes were received and returned on request.
    pub checksums: Vec<Checksum>,
    /// The object's bytes, in order. Empty for a 0-byte object and for a delete marker.
    pub segments: Vec<SegmentRecord>,
    /// This is the key's "null" version (written while versioning was off or suspended):
    /// S3 names it `null`, and the next such write replaces it. Format 2 on; format 1
    /// reads as false.
    pub null_version: bool,
    /// The bytes are small enough to live in the metadata store ([`InlineRecord`]) instead
    /// of shard files. Format 3 on.
    pub inline: bool,
    /// `checksums` of a multipart object are composite (a checksum of the parts'
    /// checksums, shown as `...-N`) rather than of the whole object. Format 4 on; older
    /// records read as composite when a multipart ETag has a checksum.
    pub composite_checksum: bool,
    /// The HTTP headers stored with the object and sent back on GET and HEAD. Format 5
    /// on; older records read as none.
    pub system: SystemMeta,
    /// BLAKE3 of the object's bytes as they were received (computed beside MD5), by
    /// part: one digest for an object written whole (PUT, copy; an empty object has the
    /// digest of no bytes), one per segment in order for a multipart object, that is per
    /// non-empty part ([`PartRecord::blake3`]; a whole-object BLAKE3 cannot be combined
    /// from parts of arbitrary sizes without reading them again). What a replica
    /// recomputes and compares. Empty for a delete marker, and for records older than
    /// format 7 or with a part uploaded before it.
    pub blake3: Vec<[u8; 32]>,
    /// Who made the version: decides whether site replication sends it on and what
    /// `x-amz-replication-status` it answers. Format 8 on; older records read as
    /// [`Origin::Client`].
    pub origin: Origin,
}

impl VersionRecord {
    /// A delete marker: no bytes, no metadata, `null_version` when versioning is
    /// suspended, and who made it.
    pub fn delete_marker(
        version_id: VersionId,
        created: Timestamp,
        null_version: bool,
        origin: Origin,
    ) -> Self {
        VersionRecord {
            version_id,
            created,
            kind: VersionKind::DeleteMarker,
            size: 0,
            etag: String::new(),
            content_type: None,
            user_meta: Vec::new(),
            checksums: Vec::new(),
            segments: Vec::new(),
            null_version,
            inline: false,
            composite_checksum: false,
            system: SystemMeta::default(),
            blake3: Vec::new(),
            origin,
        }
    }
}

/// Where a version came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// A client's write through S3 (PUT, copy, Complete, DeleteObject).
    #[default]
    Client,
    /// The store's own lifecycle worker (an expiration's delete marker): never replicated,
    /// as S3 replication does not replicate lifecycle actions.
    Lifecycle,
    /// Received from a peer site by replication, with the source's id and creation time:
    /// never replicated on, and answers `x-amz-replication-status: REPLICA`.
    Replica,
}

/// The HTTP headers Amazon S3 stores with an object and returns on GET and HEAD
/// (`Content-Encoding`, `Cache-Control`, `Content-Disposition`, `Content-Language`,
/// `Expires`), as the write gave them (`Content-Type` has its own field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemMeta {
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Expires`, as the date it names.
    pub expires: Option<Timestamp>,
}

impl Record for VersionRecord {
    const NAME: &'static str = "version";
    const FORMAT: u8 = 8;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        let v3 = match version {
            // Format 7: before the origin.
            7 => {
                return Some(decode_body::<VersionRecordV7>(Self::NAME, body).map(Into::into));
            }
            // Format 6 (disks by UUID) and 5 (by node-local id): the fields before the
            // whole-object BLAKE3.
            5 | 6 => {
                return Some(decode_body::<VersionRecordV6>(Self::NAME, body).map(Into::into));
            }
            1 => decode_body::<VersionRecordV1>(Self::NAME, body)
                .map(VersionRecordV2::from)
                .map(VersionRecordV3::from),
            2 => decode_body::<VersionRecordV2>(Self::NAME, body).map(VersionRecordV3::from),
            3 => decode_body::<VersionRecordV3>(Self::NAME, body),
            4 => return Some(decode_body::<VersionRecordV4>(Self::NAME, body).map(Into::into)),
            _ => return None,
        };
        Some(v3.map(VersionRecordV4::from).map(Into::into))
    }
}

/// Format 7 of [`VersionRecord`]: before the origin (every version was a client's).
#[derive(Deserialize)]
struct VersionRecordV7 {
    version_id: VersionId,
    created: Timestamp,
    kind: VersionKind,
    size: u64,
    etag: String,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    checksums: Vec<Checksum>,
    segments: Vec<SegmentRecord>,
    null_version: bool,
    inline: bool,
    composite_checksum: bool,
    system: SystemMeta,
    blake3: Vec<[u8; 32]>,
}

impl From<VersionRecordV7> for VersionRecord {
    fn from(v: VersionRecordV7) -> Self {
        VersionRecord {
            version_id: v.version_id,
            created: v.created,
            kind: v.kind,
            size: v.size,
            etag: v.etag,
            content_type: v.content_type,
            user_meta: v.user_meta,
            checksums: v.checksums,
            segments: v.segments,
            null_version: v.null_version,
            inline: v.inline,
            composite_checksum: v.composite_checksum,
            system: v.system,
            blake3: v.blake3,
            origin: Origin::Client,
        }
    }
}

/// Formats 5 and 6 of [`VersionRecord`]: before the whole-object BLAKE3.
#[derive(Deserialize)]
struct VersionRecordV6 {
    version_id: VersionId,
    created: Timestamp,
    kind: VersionKind,
    size: u64,
    etag: String,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    checksums: Vec<Checksum>,
    segments: Vec<SegmentRecord>,
    null_version: bool,
    inline: bool,
    composite_checksum: bool,
    system: SystemMeta,
}

impl From<VersionRecordV6> for VersionRecord {
    fn from(v: VersionRecordV6) -> Self {
        VersionRecord {
            version_id: v.version_id,
            created: v.created,
            kind: v.kind,
            size: v.size,
            etag: v.etag,
            content_type: v.content_type,
            user_meta: v.user_meta,
            checksums: v.checksums,
            segments: v.segments,
            null_version: v.null_version,
            inline: v.inline,
            composite_checksum: v.composite_checksum,
            system: v.system,
            blake3: Vec::new(),
            origin: Origin::Client,
        }
    }
}

/// Format 4 of [`VersionRecord`]: before the stored HTTP headers ([`SystemMeta`]).
#[derive(Deserialize)]
struct VersionRecordV4 {
    version_id: VersionId,
    created: Timestamp,
    kind: VersionKind,
    size: u64,
    etag: String,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    checksums: Vec<Checksum>,
    segments: Vec<SegmentRecord>,
    null_version: bool,
    inline: bool,
    composite_checksum: bool,
}

impl From<VersionRecordV4> for VersionRecord {
    fn from(v: VersionRecordV4) -> Self {
        VersionRecord {
            version_id: v.version_id,
            created: v.created,
            kind: v.kind,
            size: v.size,
            etag: v.etag,
            content_type: v.content_type,
            user_meta: v.user_meta,
            checksums: v.checksums,
            segments: v.segments,
            null_version: v.null_version,
            inline: v.inline,
            composite_checksum: v.composite_checksum,
            system: SystemMeta::default(),
            blake3: Vec::new(),
            origin: Origin::Client,
        }
    }
}

/// Format 3 of [`VersionRecord`]: before multipart checksums could be full-object. Every
/// multipart checksum written in format 3 was composite.
#[derive(Deserialize)]
struct VersionRecordV3 {
    version_id: VersionId,
    created: Timestamp,
    kind: VersionKind,
    size: u64,
    etag: String,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    checksums: Vec<Checksum>,
    segments: Vec<SegmentRecord>,
    null_version: bool,
    inline: bool,
}

impl From<VersionRecordV3> for VersionRecordV4 {
    fn from(v: VersionRecordV3) -> Self {
        VersionRecordV4 {
            composite_checksum: v.etag.contains('-') && !v.checksums.is_empty(),
            version_id: v.version_id,
            created: v.created,
            kind: v.kind,
            size: v.size,
            etag: v.etag,
            content_type: v.content_type,
            user_meta: v.user_meta,
            checksums: v.checksums,
            segments: v.segments,
            null_version: v.null_version,
            inline: v.inline,
        }
    }
}

/// Format 2 of [`VersionRecord`]: before small objects could be inline.
#[derive(Deserialize)]
struct VersionRecordV2 {
    version_id: VersionId,
    created: Timestamp,
    kind: VersionKind,
    size: u64,
    etag: String,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    checksums: Vec<Checksum>,
    segments: Vec<SegmentRecord>,
    null_version: bool,
}

impl From<VersionRecordV2> for VersionRecordV3 {
    fn from(v: VersionRecordV2) -> Self {
        VersionRecordV3 {
            version_id: v.version_id,
            created: v.created,
            kind: v.kind,
            size: v.size,
            etag: v.etag,
            content_type: v.content_type,
            user_meta: v.user_meta,
            checksums: v.checksums,
            segments: v.segments,
            null_version: v.null_version,
            inline: false,
        }
    }
}

/// The bytes of a small object, kept in the metadata store and committed in the same
/// synced batch as its version: a small PUT then costs one fsync instead of thirteen.
/// Verified against its BLAKE3 hash on every read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineRecord {
    /// BLAKE3 of `data`, taken as the bytes arrived: a read that finds another hash fails
    /// rather than return them.
    pub blake3: Hash,
    /// The object's bytes, all of them (at most `inline_max` when they were written).
    pub data: Vec<u8>,
}

impl Record for InlineRecord {
    const NAME: &'static str = "inline";
    const FORMAT: u8 = 1;
}

/// Format 1 of [`VersionRecord`]: before null versions were marked. Every format-1 record
/// was written by an engine without versioning states, so none is a null version.
#[derive(Deserialize)]
struct VersionRecordV1 {
    version_id: VersionId,
    created: Timestamp,
    kind: VersionKind,
    size: u64,
    etag: String,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    checksums: Vec<Checksum>,
    segments: Vec<SegmentRecord>,
}

impl From<VersionRecordV1> for VersionRecordV2 {
    fn from(v: VersionRecordV1) -> Self {
        VersionRecordV2 {
            version_id: v.version_id,
            created: v.created,
            kind: v.kind,
            size: v.size,
            etag: v.etag,
            content_type: v.content_type,
            user_meta: v.user_meta,
            checksums: v.checksums,
            segments: v.segments,
            null_version: false,
        }
    }
}

/// Where a shard lives when repair rebuilt it somewhere else than its segment record says
/// (its disk was gone, or it was never written): the version record is never rewritten,
/// so the new place and the rebuilt file's root are kept here, keyed by segment and index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlacement {
    /// The disk, named as in [`ShardRecord::disk`] (UUID from format 2 on).
    pub disk: String,
    /// The root of the rebuilt shard file: reads check it instead of the segment record's.
    pub root: Hash,
}

impl Record for ShardPlacement {
    const NAME: &'static str = "shard-placement";
    const FORMAT: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        // Format 1: the same fields; the disk by node-local id.
        (version == 1).then(|| decode_body(Self::NAME, body))
    }
}

/// A segment whose shard files are being written and that no version references yet. If
/// the process dies, start-up removes its shard files: a write either commits whole or
/// leaves nothing behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// The segment being written; also the record's key in `pending`.
    pub segment: SegmentId,
    /// (shard index, disk) of every shard file that may exist; the disk named as in
    /// [`ShardRecord::disk`] (UUID from format 2 on).
    pub shards: Vec<(u16, String)>,
    /// When the write began.
    pub created: Timestamp,
}

impl Record for PendingRecord {
    const NAME: &'static str = "pending";
    const FORMAT: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        // Format 1: the same fields; disks by node-local id.
        (version == 1).then(|| decode_body(Self::NAME, body))
    }
}

/// Why shards were queued for repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepairReason {
    /// The write could not store them (a disk failed or was full); the version was still
    /// acknowledged because the write quorum held.
    WriteFailed,
    /// A read could not open or read them (missing file, unreadable disk).
    ReadFailed,
    /// A read found bytes that do not hash to the recorded root.
    Corrupt,
    /// Erasure coding across sites: the write was acknowledged with its segment of
    /// `bytes` bytes short of surviving the loss of any one site (a site was down or
    /// slow: `shards` were not written, or shards went to other sites than the layout
    /// places them in). Counted in `stele_geo_site_unsafe_bytes` until repair and moves
    /// make the segment site-safe. Appended after the others: older entries keep their
    /// bytes.
    SiteUnsafe {
        /// The segment's length.
        bytes: u64,
    },
    /// Their disks belonged to a site removed for good (`stelectl site remove`): rebuilt
    /// from the other shards onto the disks left. Appended after the others.
    SiteRemoved,
}

/// A version with shards to rebuild. Keyed by (due time, segment) so the repair worker
/// drains the oldest first and pushes a failed attempt back by re-keying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairRecord {
    /// The version's bucket.
    pub bucket: BucketName,
    /// The version's key.
    pub key: ObjectKey,
    /// The version whose segment lost shards: repair reads it to find the segment.
    pub version_id: VersionId,
    /// The segment to rebuild shards of.
    pub segment: SegmentId,
    /// Indexes of the shards to rebuild (0 to K+M-1, data shards first).
    pub shards: Vec<u16>,
    /// Why they were queued.
    pub reason: RepairReason,
    /// When the entry was first queued.
    pub queued: Timestamp,
    /// When the next attempt is due (the queue's order): `queued` until one fails.
    /// Format 2 on, as are `attempts` and `last_error`.
    pub due: Timestamp,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl RepairRecord {
    /// A new entry, due at once.
    pub fn new(
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
        segment: SegmentId,
        shards: Vec<u16>,
        reason: RepairReason,
        queued: Timestamp,
    ) -> Self {
        Self {
            bucket,
            key,
            version_id,
            segment,
            shards,
            reason,
            queued,
            due: queued,
            attempts: 0,
            last_error: None,
        }
    }
}

impl Record for RepairRecord {
    const NAME: &'static str = "repair";
    const FORMAT: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        (version == 1).then(|| {
            decode_body::<RepairRecordV1>(Self::NAME, body).map(|r| {
                Self::new(
                    r.bucket,
                    r.key,
                    r.version_id,
                    r.segment,
                    r.shards,
                    r.reason,
                    r.queued,
                )
            })
        })
    }
}

/// Format 1 of [`RepairRecord`]: before retries (due time, attempts, last error).
#[derive(Deserialize)]
struct RepairRecordV1 {
    bucket: BucketName,
    key: ObjectKey,
    version_id: VersionId,
    segment: SegmentId,
    shards: Vec<u16>,
    reason: RepairReason,
    queued: Timestamp,
}

/// A version's tags (S3 object tagging): at most 10 key/value pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSet {
    /// (key, value) pairs.
    pub tags: Vec<(String, String)>,
}

impl Record for TagSet {
    const NAME: &'static str = "tags";
    const FORMAT: u8 = 1;
}

/// A multipart upload in progress. Its parts are [`PartRecord`]s keyed under it; each part
/// is a segment written like a whole object, referenced from here until Complete turns them
/// into one version or Abort removes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// S3's `UploadId`; time-sortable, so a key's uploads list oldest first.
    pub upload_id: SegmentId,
    /// The bucket the upload writes to.
    pub bucket: BucketName,
    /// The key the completed version will have.
    pub key: ObjectKey,
    /// When CreateMultipartUpload ran: S3's `Initiated`, and where the lifecycle's
    /// AbortIncompleteMultipartUpload days count from.
    pub created: Timestamp,
    /// `Content-Type` the completed version will carry.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`) the completed version will carry.
    pub user_meta: Vec<(String, String)>,
    /// Tags the completed version will carry (`x-amz-tagging` at create). Format 2 on.
    pub tags: Vec<(String, String)>,
    /// Object Lock asked for at create; applied at Complete. Format 3 on.
    pub lock: LockRequest,
    /// The HTTP headers the completed version will carry. Format 4 on.
    pub system: SystemMeta,
    /// The checksum algorithm the upload was created with (`x-amz-checksum-algorithm`).
    /// Format 4 on; older uploads read as none.
    pub checksum_algorithm: Option<crate::checksum::ChecksumAlgorithm>,
}

/// What a completed multipart upload became, kept for a day after its Complete so that a
/// client whose answer was lost can send Complete again and get the same answer (Amazon
/// S3 does the same "for a while").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    /// The bucket of the version Complete made.
    pub bucket: BucketName,
    /// Its key.
    pub key: ObjectKey,
    /// Its version id, answered again to a retry.
    pub version_id: VersionId,
    /// Whether the version is the key's null version (unversioned or suspended bucket).
    pub null_version: bool,
    /// The version's ETag (`hex-N`, without quotes).
    pub etag: String,
    /// The version's length in bytes.
    pub size: u64,
    /// The version's checksums, as Complete answered them.
    pub checksums: Vec<Checksum>,
    /// The (part number, ETag) list the Complete named: a retry must name the same.
    pub parts: Vec<(u16, String)>,
    /// When Complete committed: the first lifecycle pass a day later forgets the record.
    pub completed: Timestamp,
}

impl Record for CompletedUpload {
    const NAME: &'static str = "completed-upload";
    const FORMAT: u8 = 1;
}

/// When a bucket last took a version (object or delete marker), kept at commit time so
/// the watchdog's freshness check reads one record instead of scanning the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketActivity {
    /// The newest `created` of a version committed to the bucket; never moves back.
    pub last_write: Timestamp,
}

impl Record for BucketActivity {
    const NAME: &'static str = "bucket-activity";
    const FORMAT: u8 = 1;
}

/// The Object Lock a write asks for (`x-amz-object-lock-*` headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    /// `x-amz-object-lock-mode` with `x-amz-object-lock-retain-until-date`.
    pub retention: Option<Retention>,
    /// `x-amz-object-lock-legal-hold` (`ON` or `OFF`); `None` when absent.
    pub legal_hold: Option<bool>,
}

impl LockRequest {
    /// The write names no Object Lock header at all.
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && self.legal_hold.is_none()
    }
}

impl Record for UploadRecord {
    const NAME: &'static str = "upload";
    const FORMAT: u8 = 4;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        let v3 = match version {
            1 => decode_body::<UploadRecordV1>(Self::NAME, body)
                .map(UploadRecordV2::from)
                .map(UploadRecordV3::from),
            2 => decode_body::<UploadRecordV2>(Self::NAME, body).map(UploadRecordV3::from),
            3 => decode_body::<UploadRecordV3>(Self::NAME, body),
            _ => return None,
        };
        Some(v3.map(|v| UploadRecord {
            upload_id: v.upload_id,
            bucket: v.bucket,
            key: v.key,
            created: v.created,
            content_type: v.content_type,
            user_meta: v.user_meta,
            tags: v.tags,
            lock: v.lock,
            system: SystemMeta::default(),
            checksum_algorithm: None,
        }))
    }
}

/// Format 3 of [`UploadRecord`]: before the stored HTTP headers and checksum algorithm.
#[derive(Deserialize)]
struct UploadRecordV3 {
    upload_id: SegmentId,
    bucket: BucketName,
    key: ObjectKey,
    created: Timestamp,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    lock: LockRequest,
}

impl From<UploadRecordV2> for UploadRecordV3 {
    fn from(v: UploadRecordV2) -> Self {
        UploadRecordV3 {
            upload_id: v.upload_id,
            bucket: v.bucket,
            key: v.key,
            created: v.created,
            content_type: v.content_type,
            user_meta: v.user_meta,
            tags: v.tags,
            lock: LockRequest::default(),
        }
    }
}

/// Format 2 of [`UploadRecord`]: before Object Lock at create.
#[derive(Deserialize)]
struct UploadRecordV2 {
    upload_id: SegmentId,
    bucket: BucketName,
    key: ObjectKey,
    created: Timestamp,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
    tags: Vec<(String, String)>,
}

/// Format 1 of [`UploadRecord`]: before tags at create.
#[derive(Deserialize)]
struct UploadRecordV1 {
    upload_id: SegmentId,
    bucket: BucketName,
    key: ObjectKey,
    created: Timestamp,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
}

impl From<UploadRecordV1> for UploadRecordV2 {
    fn from(v: UploadRecordV1) -> Self {
        UploadRecordV2 {
            upload_id: v.upload_id,
            bucket: v.bucket,
            key: v.key,
            created: v.created,
            content_type: v.content_type,
            user_meta: v.user_meta,
            tags: Vec::new(),
        }
    }
}

/// One uploaded part of a multipart upload, under `P upload_id part_number` in `uploads`.
/// Its shards are written exactly like a whole object's; Complete reuses its segment as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// S3's part number (1 to 10000).
    pub part_number: u16,
    /// Hex MD5 of the part's bytes, without quotes: Complete checks the client's list
    /// against it, and the object's ETag is made of them.
    pub etag: String,
    /// The part's length in bytes (every part of a Complete but the last needs 5 MiB).
    pub size: u64,
    /// When the part was uploaded (ListParts' `LastModified`).
    pub created: Timestamp,
    /// The part's `x-amz-checksum-*`, verified at upload: Complete combines them.
    pub checksums: Vec<Checksum>,
    /// Where the part's bytes are; `None` for an empty part (parts are never inline).
    pub segment: Option<SegmentRecord>,
    /// BLAKE3 of the part's bytes as received. `None` in records older than format 3.
    pub blake3: Option<[u8; 32]>,
}

impl Record for PartRecord {
    const NAME: &'static str = "part";
    const FORMAT: u8 = 3;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        // Formats 1 (disks by node-local id) and 2 (by UUID): before the part's BLAKE3.
        #[derive(Deserialize)]
        struct PartRecordV2 {
            part_number: u16,
            etag: String,
            size: u64,
            created: Timestamp,
            checksums: Vec<Checksum>,
            segment: Option<SegmentRecord>,
        }
        matches!(version, 1 | 2).then(|| {
            decode_body::<PartRecordV2>(Self::NAME, body).map(|p| PartRecord {
                part_number: p.part_number,
                etag: p.etag,
                size: p.size,
                created: p.created,
                checksums: p.checksums,
                segment: p.segment,
                blake3: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumAlgorithm;

    fn sample_version() -> VersionRecord {
        VersionRecord {
            version_id: VersionId([1; 16]),
            created: Timestamp(1_700_000_000_000_000),
            kind: VersionKind::Object,
            size: 5,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            content_type: Some("text/plain".into()),
            user_meta: vec![("a".into(), "b".into())],
            checksums: vec![Checksum {
                algorithm: ChecksumAlgorithm::Crc32,
                value: vec![1, 2, 3, 4],
            }],
            segments: vec![SegmentRecord {
                id: SegmentId([2; 16]),
                geometry: Geometry::new(2, 1, 4096, 5),
                shards: vec![
                    ShardRecord {
                        disk: "d0".into(),
                        root: Some([7; 32]),
                    },
                    ShardRecord {
                        disk: "d1".into(),
                        root: None,
                    },
                ],
            }],
            null_version: false,
            inline: false,
            composite_checksum: false,
            system: SystemMeta::default(),
            blake3: Vec::new(),
            origin: Origin::Client,
        }
    }

    /// Bytes written by format 1 (before `null_version`). If this test fails, old metadata
    /// would no longer read.
    const VERSION_V1: &str = concat!(
        "01010101010101010101010101010101018080f28183898506000520356434313430326162633462",
        "3261373662393731396439313130313763353932010a746578742f706c61696e0101610162010004",
        "01020304010202020202020202020202020202020202018020050202643001070707070707070707",
        "070707070707070707070707070707070707070707070702643100",
    );

    #[test]
    fn version_record_round_trips() -> Result<(), MetaError> {
        let v = sample_version();
        assert_eq!(VersionRecord::decode(&v.encode()?)?, v);
        Ok(())
    }

    /// Bytes written by format 2 (null versions, before inline data): the sample with
    /// `null_version = true`.
    const VERSION_V2: &str = concat!(
        "02010101010101010101010101010101018080f28183898506000520356434313430326162633462",
        "3261373662393731396439313130313763353932010a746578742f706c61696e0101610162010004",
        "01020304010202020202020202020202020202020202018020050202643001070707070707070707",
        "07070707070707070707070707070707070707070707070264310001",
    );

    /// Bytes written by format 3 (inline flag, before composite_checksum): the sample with
    /// `null_version` and `inline` set.
    const VERSION_V3: &str = concat!(
        "03010101010101010101010101010101018080f28183898506000520356434313430326162633462",
        "3261373662393731396439313130313763353932010a746578742f706c61696e0101610162010004",
        "01020304010202020202020202020202020202020202018020050202643001070707070707070707",
        "0707070707070707070707070707070707070707070707026431000101",
    );

    /// Bytes written by format 4 (composite flag, before the stored HTTP headers): the
    /// format-3 sample with `composite_checksum` false.
    const VERSION_V4: &str = concat!(
        "04010101010101010101010101010101018080f28183898506000520356434313430326162633462",
        "3261373662393731396439313130313763353932010a746578742f706c61696e0101610162010004",
        "01020304010202020202020202020202020202020202018020050202643001070707070707070707",
        "070707070707070707070707070707070707070707070702643100010100",
    );

    /// Format 5 of the sample with `null_version` and `inline` set and the
    /// stored HTTP headers: pinned, so a field moved without a format bump fails here.
    const VERSION_V5: &str = concat!(
        "05010101010101010101010101010101018080f28183898506000520356434313430326162633462",
        "3261373662393731396439313130313763353932010a746578742f706c61696e0101610162010004",
        "01020304010202020202020202020202020202020202018020050202643001070707070707070707",
        "070707070707070707070707070707070707070707070702643100010100",
        "0104677a6970000000018080f28183898506",
    );
    /// The current format (6): format 5's bytes under a new format byte (shard records
    /// name disks by UUID from 6 on).
    const VERSION_V6: &str = concat!(
        "06010101010101010101010101010101018080f28183898506000520356434313430326162633462",
        "3261373662393731396439313130313763353932010a746578742f706c61696e0101610162010004",
        "01020304010202020202020202020202020202020202018020050202643001070707070707070707",
        "070707070707070707070707070707070707070707070702643100010100",
        "0104677a6970000000018080f28183898506",
    );

    #[test]
    fn format_6_bytes_decode_without_digests() -> Result<(), MetaError> {
        let v = VersionRecord {
            null_version: true,
            inline: true,
            system: SystemMeta {
                content_encoding: Some("gzip".into()),
                expires: Some(Timestamp(1_700_000_000_000_000)),
                ..SystemMeta::default()
            },
            ..sample_version()
        };
        let v6 = hex::decode(VERSION_V6).map_err(|e| MetaError::Decode {
            record: "fixture",
            message: e.to_string(),
        })?;
        assert_eq!(VersionRecord::decode(&v6)?, v);
        // Format 5's bytes are the same record.
        let v5 = hex::decode(VERSION_V5).map_err(|e| MetaError::Decode {
            record: "fixture",
            message: e.to_string(),
        })?;
        assert_eq!(VersionRecord::decode(&v5)?, v);
        Ok(())
    }

    /// Every older format's bytes decode to the record they stood for.
    #[test]
    fn decodes_bytes_of_every_older_format() -> Result<(), MetaError> {
        let v2 = VersionRecord {
            null_version: true,
            ..sample_version()
        };
        let v3 = VersionRecord {
            inline: true,
            ..v2.clone()
        };
        for (fixture, expected) in [
            (VERSION_V1, sample_version()),
            (VERSION_V2, v2),
            (VERSION_V3, v3.clone()),
            (VERSION_V4, v3),
        ] {
            let bytes = hex::decode(fixture).map_err(|e| MetaError::Decode {
                record: "fixture",
                message: e.to_string(),
            })?;
            assert_eq!(VersionRecord::decode(&bytes)?, expected);
        }
        Ok(())
    }

    #[test]
    fn round_trips_the_current_format() -> Result<(), MetaError> {
        let mut v = sample_version();
        v.null_version = true;
        v.inline = true;
        v.composite_checksum = true;
        v.system.cache_control = Some("no-cache".into());
        v.blake3 = vec![[4; 32], [5; 32]];
        let bytes = v.encode()?;
        assert_eq!(bytes[0], VersionRecord::FORMAT);
        assert_eq!(VersionRecord::decode(&bytes)?, v);
        Ok(())
    }

    #[test]
    fn upload_records_of_format_1_decode_without_tags() -> Result<(), MetaError> {
        // An upload record as format 1 wrote it: id, bucket "bkt", key "k", time, no
        // content type, no metadata.
        let mut v1 = vec![1u8];
        v1.extend([9u8; 16]);
        v1.extend([3, b'b', b'k', b't', 1, b'k', 0x80, 0x01, 0, 0]);
        let rec = UploadRecord::decode(&v1)?;
        assert_eq!(rec.bucket.as_str(), "bkt");
        assert_eq!(rec.key.as_str(), "k");
        assert_eq!(rec.created, Timestamp(64));
        assert!(rec.tags.is_empty() && rec.user_meta.is_empty());
        Ok(())
    }

    #[test]
    fn upload_records_of_format_2_decode_with_tags_and_no_lock() -> Result<(), MetaError> {
        // Format 2: format 1's fields, then one tag ("a", "b").
        let mut v2 = vec![2u8];
        v2.extend([9u8; 16]);
        v2.extend([3, b'b', b'k', b't', 1, b'k', 0x80, 0x01, 0, 0]);
        v2.extend([1, 1, b'a', 1, b'b']);
        let rec = UploadRecord::decode(&v2)?;
        assert_eq!(rec.tags, vec![("a".to_owned(), "b".to_owned())]);
        assert!(rec.lock.is_empty());
        Ok(())
    }

    #[test]
    fn upload_records_of_format_3_decode_and_format_4_is_pinned() -> Result<(), MetaError> {
        // Format 3: format 2's fields (no tags), then the lock request: legal hold on.
        let mut v3 = vec![3u8];
        v3.extend([9u8; 16]);
        v3.extend([3, b'b', b'k', b't', 1, b'k', 0x80, 0x01, 0, 0, 0]);
        v3.extend([0, 1, 1]);
        let rec = UploadRecord::decode(&v3)?;
        assert_eq!(rec.lock.legal_hold, Some(true));
        assert_eq!(
            (rec.system.clone(), rec.checksum_algorithm),
            (SystemMeta::default(), None)
        );
        // Format 4 adds the HTTP headers and the checksum algorithm.
        let rec = UploadRecord {
            system: SystemMeta {
                cache_control: Some("c".into()),
                ..SystemMeta::default()
            },
            checksum_algorithm: Some(crate::checksum::ChecksumAlgorithm::Crc32),
            ..rec
        };
        let mut v4 = v3.clone();
        v4[0] = 4;
        v4.extend([0, 1, 1, b'c', 0, 0, 0, 1, 0]);
        assert_eq!(rec.encode()?, v4);
        assert_eq!(UploadRecord::decode(&v4)?, rec);
        Ok(())
    }

    #[test]
    fn bucket_records_of_format_1_decode_without_retention() -> Result<(), MetaError> {
        // Format 1: name "bkt", created 64 us, versioning Enabled (1), object_lock true.
        let rec = BucketRecord::decode(&[1, 3, b'b', b'k', b't', 0x80, 0x01, 1, 1])?;
        assert_eq!(rec.name.as_str(), "bkt");
        assert_eq!(rec.created, Timestamp(64));
        assert_eq!(rec.versioning, Versioning::Enabled);
        assert!(rec.object_lock);
        assert!(rec.default_retention.is_none() && rec.policy.is_none());
        Ok(())
    }

    #[test]
    fn lock_records_of_format_1_decode() -> Result<(), MetaError> {
        // Format 1: Some(retention: Compliance (1), until 64 us), legal hold on.
        let rec = LockRecord::decode(&[1, 1, 1, 0x80, 0x01, 1])?;
        assert_eq!(
            rec,
            LockRecord {
                retention: Some(Retention {
                    mode: RetentionMode::Compliance,
                    until: Timestamp(64)
                }),
                legal_hold: true,
            }
        );
        assert_eq!(rec.encode()?, vec![1, 1, 1, 0x80, 0x01, 1]);
        Ok(())
    }

    #[test]
    fn shard_placements_of_format_1_decode() -> Result<(), MetaError> {
        let mut bytes = vec![1u8, 2, b'd', b'4'];
        bytes.extend([9u8; 32]);
        let p = ShardPlacement::decode(&bytes)?;
        assert_eq!(
            p,
            ShardPlacement {
                disk: "d4".into(),
                root: [9; 32]
            }
        );
        // Written again, it is format 2 with the same body.
        bytes[0] = 2;
        assert_eq!(p.encode()?, bytes);
        Ok(())
    }

    #[test]
    fn unknown_format_is_refused() {
        let mut b = sample_version().encode().expect("encode");
        b[0] = 99;
        assert!(matches!(
            VersionRecord::decode(&b),
            Err(MetaError::UnknownFormat { version: 99, .. })
        ));
    }

    /// A record that cannot be serialised is an error, never a format byte with an empty
    /// body that would later decode as garbage or not at all.
    #[test]
    fn a_record_that_cannot_be_serialised_is_an_error() {
        #[derive(Deserialize)]
        struct Unserialisable;
        impl Serialize for Unserialisable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refuses"))
            }
        }
        impl Record for Unserialisable {
            const NAME: &'static str = "unserialisable";
            const FORMAT: u8 = 1;
        }
        assert!(matches!(
            Unserialisable.encode(),
            Err(MetaError::Encode {
                record: "unserialisable",
                ..
            })
        ));
    }

    fn sample_repair() -> RepairRecord {
        RepairRecord::new(
            BucketName::new("bkt").expect("name"),
            ObjectKey::new("k").expect("key"),
            VersionId([1; 16]),
            SegmentId([2; 16]),
            vec![5],
            RepairReason::ReadFailed,
            Timestamp(64),
        )
    }

    #[test]
    fn repair_records_of_format_1_decode_as_first_attempts() -> Result<(), MetaError> {
        // Format 1: bucket, key, version id, segment, shards [5], ReadFailed (1), queued 64.
        let mut v1 = vec![1u8, 3, b'b', b'k', b't', 1, b'k'];
        v1.extend([1u8; 16]);
        v1.extend([2u8; 16]);
        v1.extend([1, 5, 1, 0x80, 0x01]);
        assert_eq!(RepairRecord::decode(&v1)?, sample_repair());
        Ok(())
    }

    /// The current format's bytes, pinned: a field reordered without a format bump fails.
    #[test]
    fn repair_records_of_format_2_are_pinned() -> Result<(), MetaError> {
        let mut r = sample_repair();
        r.attempts = 3;
        r.due = Timestamp(128);
        r.last_error = Some("e".into());
        let mut v2 = vec![2u8, 3, b'b', b'k', b't', 1, b'k'];
        v2.extend([1u8; 16]);
        v2.extend([2u8; 16]);
        v2.extend([1, 5, 1, 0x80, 0x01, 0x80, 0x02, 3, 1, 1, b'e']);
        assert_eq!(r.encode()?, v2);
        assert_eq!(RepairRecord::decode(&v2)?, r);
        Ok(())
    }

    /// The site-unsafe reason (appended to the enum, issue 15) keeps its bytes; the others'
    /// bytes did not change with it (above).
    #[test]
    fn a_site_unsafe_repair_entry_is_pinned() -> Result<(), MetaError> {
        let mut r = sample_repair();
        r.reason = RepairReason::SiteUnsafe { bytes: 300 };
        let mut v2 = vec![2u8, 3, b'b', b'k', b't', 1, b'k'];
        v2.extend([1u8; 16]);
        v2.extend([2u8; 16]);
        v2.extend([1, 5, 3, 0xac, 0x02, 0x80, 0x01, 0x80, 0x01, 0, 0]);
        assert_eq!(r.encode()?, v2);
        assert_eq!(RepairRecord::decode(&v2)?, r);
        // And a removed site's (appended after it).
        r.reason = RepairReason::SiteRemoved;
        let mut v2 = vec![2u8, 3, b'b', b'k', b't', 1, b'k'];
        v2.extend([1u8; 16]);
        v2.extend([2u8; 16]);
        v2.extend([1, 5, 4, 0x80, 0x01, 0x80, 0x01, 0, 0]);
        assert_eq!(r.encode()?, v2);
        assert_eq!(RepairRecord::decode(&v2)?, r);
        Ok(())
    }

    #[test]
    fn completed_uploads_of_format_1_are_pinned() -> Result<(), MetaError> {
        let c = CompletedUpload {
            bucket: BucketName::new("bkt").expect("name"),
            key: ObjectKey::new("k").expect("key"),
            version_id: VersionId([1; 16]),
            null_version: false,
            etag: "e-1".into(),
            size: 5,
            checksums: Vec::new(),
            parts: vec![(1, "p".into())],
            completed: Timestamp(64),
        };
        let mut bytes = vec![1u8, 3, b'b', b'k', b't', 1, b'k'];
        bytes.extend([1u8; 16]);
        bytes.extend([0, 3, b'e', b'-', b'1', 5, 0, 1, 1, 1, b'p', 0x80, 0x01]);
        assert_eq!(c.encode()?, bytes);
        assert_eq!(CompletedUpload::decode(&bytes)?, c);
        Ok(())
    }
}
