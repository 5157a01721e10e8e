//! The records of replication: peers, rules and what travels to a peer.

use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
use crate::meta::{BucketRecord, LockRecord, Record, SystemMeta, Versioning};
use crate::types::{BucketName, Timestamp, VersionId};

/// The RPO alert threshold a rule gets when it names none: 15 minutes, the threshold of
/// S3 Replication Time Control.
pub const DEFAULT_RPO_ALERT_SECS: u64 = 900;

/// How a peer's TLS certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerTrust {
    /// Certificates signed by (or equal to) one of these, PEM text (a peer's self-signed
    /// `tls/cert.pem` serves as its own CA).
    CaPem(String),
    /// Exactly the certificate whose DER form has this SHA-256.
    Fingerprint([u8; 32]),
    /// No TLS: an `http://` endpoint (tests on one host; refused for `https://`).
    Plain,
}

/// Another Stele deployment that buckets replicate to, under `replication/peer/<name>`
/// in the cluster family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// 1 to 63 of `a-z`, `0-9`, `-`.
    pub name: String,
    /// The peer's log id, assigned when it is added and never reused (its log entries
    /// are keyed by it).
    pub id: u32,
    /// The peer's S3 listener: `https://host:port` (or `http://` with [`PeerTrust::Plain`]).
    pub endpoint: String,
    /// How its certificate is checked.
    pub trust: PeerTrust,
    /// The access key id of a key made on the peer with only the `replication-peer` role.
    pub access_key: String,
    /// That key's secret, sealed under this node's master key (associated data: the peer's
    /// name), so the record alone does not give it away.
    pub sealed_secret: Vec<u8>,
    /// When it was added.
    pub created: Timestamp,
}

impl Record for PeerRecord {
    const NAME: &'static str = "replication-peer";
    const FORMAT: u8 = 1;
}

/// Whether `name` may name a peer: 1 to 63 of `a-z`, `0-9`, `-`.
pub fn valid_peer_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The key of a peer's record in [`crate::meta::Space::Replication`].
pub fn peer_key(name: &str) -> String {
    format!("replication/peer/{name}")
}

/// The key of a bucket's rules in [`crate::meta::Space::Replication`].
pub fn rules_key(bucket: &BucketName) -> String {
    format!("replication/rules/{bucket}")
}

/// One replication rule of a source bucket (S3's `ReplicationConfiguration/Rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRule {
    /// S3's `ID`: unique within the bucket, at most 255 characters.
    pub id: String,
    /// S3's `Status`: a disabled rule logs nothing.
    pub enabled: bool,
    /// Keys starting with this replicate (S3's `Filter/Prefix`); empty: every key.
    pub prefix: String,
    /// The peer's name.
    pub peer: String,
    /// The bucket on the peer (S3's `Destination/Bucket`).
    pub target_bucket: BucketName,
    /// Whether delete markers replicate (S3's `DeleteMarkerReplication`; off by default,
    /// and never those lifecycle makes).
    pub delete_markers: bool,
    /// The RPO above which an alert is raised, in seconds (S3's `ReplicationTime`;
    /// default [`DEFAULT_RPO_ALERT_SECS`]).
    pub rpo_alert_secs: u64,
    /// Body bytes per second sent for this rule's entries; `None`: no limit.
    pub bandwidth: Option<u64>,
    /// Whether versions written before the rule are sent too (S3's
    /// `ExistingObjectReplication`).
    pub backfill: bool,
}

impl ReplicationRule {
    /// Whether the rule selects `key`.
    pub fn selects(&self, key: &str) -> bool {
        self.enabled && key.starts_with(&self.prefix)
    }
}

/// A source bucket's replication rules, under `replication/rules/<bucket>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketReplication {
    /// The source bucket.
    pub bucket: BucketName,
    /// Its rules, in the order given.
    pub rules: Vec<ReplicationRule>,
}

impl Record for BucketReplication {
    const NAME: &'static str = "replication-rules";
    const FORMAT: u8 = 1;
}

impl BucketReplication {
    /// Checks the rules against S3's constraints and the source bucket: versioning enabled
    /// (S3: "Versioning must be 'Enabled' on the bucket to apply a replication
    /// configuration"), 1 to 1000 rules, unique ids of at most 255 characters, valid peer
    /// names, a positive RPO threshold and bandwidth, and no two rules sending one key to
    /// the same peer twice (prefixes of one peer must not overlap).
    ///
    /// # Errors
    /// What is wrong, for the client.
    pub fn validate(&self, source: &BucketRecord) -> Result<(), String> {
        if source.versioning != Versioning::Enabled {
            return Err(
                "Versioning must be 'Enabled' on the bucket to apply a replication configuration"
                    .into(),
            );
        }
        if self.rules.is_empty() || self.rules.len() > 1000 {
            return Err("a replication configuration has 1 to 1000 rules".into());
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.id.is_empty() || r.id.len() > 255 {
                return Err(format!("rule {}: an ID has 1 to 255 characters", i + 1));
            }
            if !valid_peer_name(&r.peer) {
                return Err(format!("rule {}: {:?} cannot name a peer", r.id, r.peer));
            }
            if r.rpo_alert_secs == 0 {
                return Err(format!("rule {}: the RPO threshold must be positive", r.id));
            }
            if r.bandwidth == Some(0) {
                return Err(format!("rule {}: a bandwidth limit must be positive", r.id));
            }
            for other in &self.rules[..i] {
                if other.id == r.id {
                    return Err(format!("rule ID {} is used twice", r.id));
                }
                if other.peer == r.peer
                    && (other.prefix.starts_with(&r.prefix) || r.prefix.starts_with(&other.prefix))
                {
                    return Err(format!(
                        "rules {} and {} both send some keys to peer {}",
                        other.id, r.id, r.peer
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A version as it travels to a peer: everything the replica keeps of it. The receiver
/// checks the body against `blake3` before anything is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaVersion {
    /// The source's version id, kept by the replica.
    pub version_id: VersionId,
    /// The source's creation time (Last-Modified), kept by the replica.
    pub created: Timestamp,
    /// The body's length in bytes.
    pub size: u64,
    /// The source's ETag (hex MD5, or `hex-N` for a multipart object), kept as it is.
    pub etag: String,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*` without the prefix).
    pub user_meta: Vec<(String, String)>,
    /// The stored HTTP headers.
    pub system: SystemMeta,
    /// The `x-amz-checksum-*` values.
    pub checksums: Vec<Checksum>,
    /// Whether those checksums are composite (of a multipart object's parts).
    pub composite_checksum: bool,
    /// The body's parts as the source wrote them (one for a PUT or copy, one per
    /// non-empty part of a multipart object): length in bytes and BLAKE3 of each, in
    /// order; their lengths sum to `size`.
    pub parts: Vec<(u64, [u8; 32])>,
    /// The version's Object Lock state at the source.
    pub lock: LockRecord,
    /// The version's tags.
    pub tags: Vec<(String, String)>,
}

/// One replication request: what a peer is asked to add or strengthen. Sent as the
/// `x-stele-replication` header (base64 of the encoded record) on a PUT to the target
/// key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaOp {
    /// Add a version with the given id and creation time (the body follows).
    Version(Box<ReplicaVersion>),
    /// Add a delete marker with the given id and creation time.
    DeleteMarker {
        /// The source's version id.
        version_id: VersionId,
        /// The source's creation time.
        created: Timestamp,
    },
    /// Join a replica's Object Lock state with the source's (never weaker than either).
    Lock {
        /// The version.
        version_id: VersionId,
        /// The source's state now.
        lock: LockRecord,
    },
    /// How far behind the peer is, as the source sees it: kept by the peer, so that after
    /// a disaster at the source the peer knows its realized RPO. Appended last.
    Heartbeat(Heartbeat),
    /// One part of a large version, staged by the peer until [`ReplicaOp::Assemble`]
    /// (the body follows; checked against `blake3` before it is kept). A transfer cut
    /// short resumes at the first part the peer does not hold. Appended last.
    Part {
        /// The source's version id.
        version_id: VersionId,
        /// 1-based, in the order of [`ReplicaVersion::parts`].
        number: u16,
        /// The part's length in bytes.
        len: u64,
        /// Its BLAKE3.
        blake3: [u8; 32],
    },
    /// Which parts of a version the peer holds staged: the answer's
    /// `x-stele-replication-staged` header lists their numbers (`1-3,5`). Appended last.
    Staged {
        /// The source's version id.
        version_id: VersionId,
    },
    /// Commit a version from its staged parts: the body is the encoded
    /// [`ReplicaOp::Version`] describing it (at most [`ASSEMBLY_MAX`] bytes: 10,000
    /// parts' digests do not fit in a request header), and every part must be staged
    /// with the length and BLAKE3 [`ReplicaVersion::parts`] gives. Appended last.
    Assemble {
        /// The source's version id (the body's must be the same).
        version_id: VersionId,
    },
    /// Replace a replica's tags with the source's (S3 replicates tag changes). Appended
    /// last.
    Tags {
        /// The version.
        version_id: VersionId,
        /// The source's tags now.
        tags: Vec<(String, String)>,
    },
}

/// The largest body of a [`ReplicaOp::Assemble`] request, bytes: room for S3's 10,000
/// parts with their digests, metadata and tags.
pub const ASSEMBLY_MAX: usize = 4 << 20;

/// Part numbers as a compact list (`1-3,5`), ascending: the `x-stele-replication-staged`
/// answer header.
pub fn format_parts(numbers: &[u16]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// Reads [`format_parts`]' form; `None` when malformed.
pub fn parse_parts(s: &str) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(item.parse().ok()?),
        }
    }
    Some(out)
}

/// The source's view of its log towards this peer, sent every few seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When the source sent it (its wall clock).
    pub sent_at: Timestamp,
    /// The last sequence number the source gave this peer.
    pub head: u64,
    /// Entries the peer had not acknowledged (live, backfill and parked).
    pub backlog_entries: u64,
    /// Their body bytes.
    pub backlog_bytes: u64,
    /// When the oldest of them was committed at the source; `None` when none.
    pub oldest: Option<Timestamp>,
}

impl Heartbeat {
    /// The RPO the source reported: how much was not here when it was sent, in seconds
    /// (0 when nothing was pending).
    pub fn rpo_secs(&self) -> f64 {
        self.oldest.map_or(0.0, |o| {
            #[allow(clippy::cast_precision_loss)]
            let us = (self.sent_at.0 - o.0).max(0) as f64;
            us / 1e6
        })
    }
}

/// The last heartbeat of a source deployment, kept by the peer under
/// `replication/source/<access key>` (the key the source's sender signs with, so that a
/// source cannot speak for another).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The access key the source sends with.
    pub access_key: String,
    /// When the heartbeat arrived here.
    pub received_at: Timestamp,
    /// What it said.
    pub heartbeat: Heartbeat,
}

impl Record for SourceRecord {
    const NAME: &'static str = "replication-source";
    const FORMAT: u8 = 1;
}

/// The key of a source's last heartbeat in [`crate::meta::Space::Replication`].
pub fn source_key(access_key: &str) -> String {
    format!("replication/source/{access_key}")
}

impl Record for ReplicaOp {
    const NAME: &'static str = "replication-request";
    const FORMAT: u8 = 1;
}

/// What a replicated request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaResult {
    /// Stored (a version or marker), or the lock state raised.
    Applied,
    /// Already here, identical: nothing changed.
    Unchanged,
    /// The lock state here is stronger than the one sent (the source weakened it): kept,
    /// and reported to the sender as a lock divergence.
    Diverged,
}

impl ReplicaResult {
    /// The value of the `x-stele-replication-result` answer header.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaResult::Applied => "applied",
            ReplicaResult::Unchanged => "unchanged",
            ReplicaResult::Diverged => "diverged",
        }
    }

    /// The result named `s` (as [`ReplicaResult::as_str`] spells it).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Applied, Self::Unchanged, Self::Diverged]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}
