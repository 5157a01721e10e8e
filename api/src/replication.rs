//! Site-to-site replication: peers (`GET`/`POST /v1/replication/peers`,
//! `DELETE /v1/replication/peers/{name}`: 204, 404 `NoSuchPeer`, 409 `PeerInUse` while a
//! rule names it), a bucket's rules (`GET`/`PUT`/`DELETE /v1/buckets/{bucket}/replication`;
//! a `GET` of a bucket without rules is 404 `NoReplication`), every peer's state
//! (`GET /v1/replication`), and the entries a peer refused for good
//! (`GET /v1/replication/peers/{name}/dead`, `POST /v1/replication/peers/{name}/retry`).
//!
//! A peer's secret goes in once, in [`NewPeer`], and never comes back out: no answer
//! carries it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The body of `POST /v1/replication/peers` (201 with the [`Peer`]). An `https://`
/// endpoint needs exactly one of `ca_pem` and `fingerprint`; an `http://` endpoint
/// neither (400 `InvalidPeer` otherwise; 409 `PeerExists` for a name taken).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPeer {
    /// The peer's name here: 1 to 63 of `a-z`, `0-9`, `-`.
    pub name: String,
    /// The peer's S3 listener: `https://host:port` (or `http://host:port` on one host, for
    /// tests).
    pub endpoint: String,
    /// Trust the peer's certificate if one of these PEM certificates signed it or is it
    /// (a self-signed peer's `tls/cert.pem`). Absent or `null`: not by a CA.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// Trust exactly the certificate with this SHA-256 fingerprint: 64 hex digits, upper
    /// or lower case, `:` between bytes allowed. Absent or `null`: not pinned.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The access key id of an S3 key made on the peer for a user with only the
    /// `replication-peer` role.
    pub access_key: String,
    /// That key's secret; sealed under this node's master key, never shown again.
    pub secret_key: String,
}

/// How a peer's certificate is checked, spelled in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustKind {
    /// `ca`: signed by (or equal to) a certificate of the PEM given.
    Ca,
    /// `fingerprint`: exactly the certificate pinned ([`Peer::fingerprint`]).
    Fingerprint,
    /// `plain`: no TLS (an `http://` endpoint).
    Plain,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

impl TrustKind {
    /// The wire spelling: `ca`, `fingerprint` or `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustKind::Ca => "ca",
            TrustKind::Fingerprint => "fingerprint",
            TrustKind::Plain => "plain",
            TrustKind::Unknown => "unknown",
        }
    }
}

/// A peer, as `GET /v1/replication/peers` lists them (by name) and `POST` answers. Its
/// secret is never included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its name here.
    pub name: String,
    /// Its log id: assigned when it was added, never reused.
    pub id: u32,
    /// Its S3 listener.
    pub endpoint: String,
    /// How its certificate is checked.
    pub trust: TrustKind,
    /// The pinned SHA-256 fingerprint, 64 lower-case hex digits, when `trust` is
    /// `fingerprint`; else `null`.
    pub fingerprint: Option<String>,
    /// The access key id this node signs its requests with.
    pub access_key: String,
    /// When it was added (wall clock).
    pub created: Timestamp,
}

/// A bucket's replication configuration: `GET /v1/buckets/{bucket}/replication` answers
/// it, `PUT` takes it (200 with the configuration as stored, defaults filled in; 400
/// `InvalidReplication` when the rules are malformed, the
/// bucket's versioning is not enabled, or the target bucket on the peer cannot take its
/// versions; 404 `NoSuchPeer` for a rule naming no peer), `DELETE` removes it (204;
/// entries logged already are still sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketReplication {
    /// 1 to 1000 rules; two rules of one peer must not select the same key.
    pub rules: Vec<Rule>,
}

/// One replication rule (after S3's `ReplicationConfiguration/Rule`). Fields with a
/// default may be left out of a `PUT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique within the bucket, 1 to 255 characters (S3's `ID`).
    pub id: String,
    /// A disabled rule logs nothing (S3's `Status`). Default `true`.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// Keys starting with this replicate (S3's `Filter/Prefix`). Default `""`: every key.
    #[serde(default)]
    pub prefix: String,
    /// The peer's name.
    pub peer: String,
    /// The bucket on the peer (S3's `Destination/Bucket`): versioning enabled, and Object
    /// Lock when the source bucket has it.
    pub target_bucket: String,
    /// Whether delete markers replicate (S3's `DeleteMarkerReplication`; never those
    /// lifecycle adds). Default `false`.
    #[serde(default)]
    pub delete_markers: bool,
    /// The RPO above which an alert is raised, in seconds (S3's `ReplicationTime`).
    /// Default 900.
    #[serde(default = "rpo_alert_default")]
    pub rpo_alert_secs: u64,
    /// Body bytes per second sent for this rule's entries. Absent or `null`: no limit.
    #[serde(default)]
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Whether versions written before the rule are sent too (S3's
    /// `ExistingObjectReplication`). Default `false`.
    #[serde(default)]
    pub backfill: bool,
}

fn enabled_default() -> bool {
    true
}

/// The RPO alert threshold a rule gets when it names none, in seconds: 15 minutes (S3
/// Replication Time Control's).
pub const DEFAULT_RPO_ALERT_SECS: u64 = 900;

fn rpo_alert_default() -> u64 {
    DEFAULT_RPO_ALERT_SECS
}

/// What a log entry asks the peer to do, spelled in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `version`: add the version with its bytes.
    Version,
    /// `delete_marker`: add the delete marker.
    DeleteMarker,
    /// `lock`: raise the replica's Object Lock state to the source's.
    Lock,
    /// `tags`: replace the replica's tags with the source's.
    Tags,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

impl Op {
    /// The wire spelling: `version`, `delete_marker`, `lock` or `tags`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Version => "version",
            Op::DeleteMarker => "delete_marker",
            Op::Lock => "lock",
            Op::Tags => "tags",
            Op::Unknown => "unknown",
        }
    }
}

/// Why an entry was parked, spelled in snake case (the names `/metrics` labels
/// `stele_replication_dead_entries` with, and the keys of [`PeerStatus::dead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// `refused`: the peer refused the key or the request (authentication, role).
    Refused,
    /// `no_such_bucket`: the target bucket does not exist on the peer.
    NoSuchBucket,
    /// `lock_configuration`: the target bucket cannot keep the version's Object Lock
    /// state.
    LockConfiguration,
    /// `conflict`: the peer holds other bytes under the same version id (never
    /// overwritten).
    Conflict,
    /// `waiting_repair`: the version cannot be read here without error; repair is
    /// queued and the sender retries it by itself.
    WaitingRepair,
    /// `tls`: the peer's certificate is not the one trusted.
    Tls,
    /// `other`: any other refusal the peer gave as final.
    Other,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

impl DeadReason {
    /// The wire spelling (`no_such_bucket`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Refused => "refused",
            DeadReason::NoSuchBucket => "no_such_bucket",
            DeadReason::LockConfiguration => "lock_configuration",
            DeadReason::Conflict => "conflict",
            DeadReason::WaitingRepair => "waiting_repair",
            DeadReason::Tls => "tls",
            DeadReason::Other => "other",
            DeadReason::Unknown => "unknown",
        }
    }
}

/// The oldest change a peer has not acknowledged ([`PeerStatus::oldest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreplicated {
    /// The source bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The version id (as S3 clients see it).
    pub version_id: String,
    /// When the change was committed here (wall clock): the RPO counts from it.
    pub enqueued_at: Timestamp,
    /// Its sequence number in the peer's log.
    pub seq: u64,
}

/// One peer's replication state (`GET /v1/replication`: one per peer, by name). The
/// backlog is read from the durable log when asked; the sender's fields are this node's
/// since its start (zero, `false` or `null` while no sender runs: see `sending`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's name.
    pub name: String,
    /// Its S3 listener.
    pub endpoint: String,
    /// The recovery point objective now, in seconds: the age of the oldest change the
    /// peer has not acknowledged (live or parked); 0 when there is none.
    pub rpo_seconds: f64,
    /// The lowest RPO alert threshold of the rules naming the peer, in seconds; `null`
    /// when no rule names it.
    pub rpo_alert_seconds: Option<u64>,
    /// Entries waiting to be sent (parked ones not included).
    pub backlog_entries: u64,
    /// Their body bytes.
    pub backlog_bytes: u64,
    /// Of `backlog_entries`, those a backfill logged (sent after live ones).
    pub backfill_entries: u64,
    /// The oldest entry waiting, or `null` when none waits.
    pub oldest: Option<Unreplicated>,
    /// Parked entries by reason ([`DeadReason`]'s spelling; every reason listed, 0
    /// included). Parked entries count in the RPO until retried.
    pub dead: BTreeMap<String, u64>,
    /// When the oldest parked entry was committed; `null` when none is parked.
    pub oldest_dead: Option<Timestamp>,
    /// The last sequence number given to an entry of the peer's log.
    pub head_seq: u64,
    /// The source buckets whose rules name the peer.
    pub buckets: Vec<String>,
    /// Whether a sender runs for the peer on this node.
    pub sending: bool,
    /// The last request or probe reached the peer.
    pub link_up: bool,
    /// The circuit breaker is open: only probes are sent until one succeeds.
    pub breaker_open: bool,
    /// Transient failures in a row.
    pub failures_in_row: u32,
    /// The last failure since the last success; `null` if none.
    pub last_error: Option<String>,
    /// When the peer last acknowledged an entry; `null` if never since start.
    pub last_ack: Option<Timestamp>,
    /// Entries the peer acknowledged since start.
    pub sent_entries: u64,
    /// Their body bytes.
    pub sent_bytes: u64,
    /// Lock changes the peer kept stronger than the source's, since start.
    pub lock_divergences: u64,
    /// Entries parked since start.
    pub parked: u64,
    /// Backfill and resync versions the peer held already, so that no byte was sent for
    /// them, since start.
    #[serde(default)]
    pub backfill_skipped: u64,
    /// Parts of large versions the peer held staged already when their transfer started
    /// again (after a cut or a restart of either side), so not sent again, since start.
    #[serde(default)]
    pub resumed_parts: u64,
    /// Body bytes per second acknowledged (a moving average over about a minute).
    pub throughput_bytes_per_sec: f64,
    /// How long the backlog takes to drain at that throughput, in seconds
    /// (`backlog_bytes / throughput_bytes_per_sec`): 0 when nothing waits, `null` when
    /// entries wait and nothing is moving.
    pub drain_eta_seconds: Option<f64>,
    /// The slowest bandwidth limit of the peer's rules, bytes per second; `null`: none.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Paused by an administrator.
    pub paused: bool,
    /// When this state was read (wall clock).
    pub at: Timestamp,
}

/// An entry the peer refused for good (`GET /v1/replication/peers/{name}/dead`, oldest
/// first). It counts in the RPO until `POST /v1/replication/peers/{name}/retry` puts it
/// back in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadEntry {
    /// The source bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The version id.
    pub version_id: String,
    /// What it asked the peer to do.
    pub op: Op,
    /// The bucket on the peer.
    pub target_bucket: String,
    /// Body bytes (0 but for `version`).
    pub size: u64,
    /// The id of the rule that selected it.
    pub rule: String,
    /// Why it was parked.
    pub reason: DeadReason,
    /// The peer's answer or the local error.
    pub detail: String,
    /// When it was parked (wall clock).
    pub parked_at: Timestamp,
    /// When the change was committed here (wall clock).
    pub enqueued_at: Timestamp,
    /// Its sequence number in the peer's log.
    pub seq: u64,
}

/// The answer of `POST /v1/replication/peers/{name}/retry`: `{"retried": N}`, the parked
/// entries put back in the peer's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retried {
    /// How many (a count).
    pub retried: u64,
}

/// The answer to `POST /v1/replication/peers/{name}/resync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// The rules sending to the peer that the backfill worker walks again.
    pub rules: u64,
}

/// A source deployment that replicates here, as its last heartbeat said (`GET
/// /v1/replication/sources`): after a disaster at the source, what had not arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The access key the source sends with (a `replication-peer` key of this node).
    pub access_key: String,
    /// When its last heartbeat arrived here (µs since the epoch).
    pub last_seen: Timestamp,
    /// When the source sent it (its clock).
    pub sent_at: Timestamp,
    /// Entries it had not yet had acknowledged by this node.
    pub backlog_entries: u64,
    /// Their bytes.
    pub backlog_bytes: u64,
    /// When the oldest of them was committed at the source; `null` when none.
    pub oldest: Option<Timestamp>,
    /// The RPO the source reported, in seconds: what would be lost had it burned then.
    pub rpo_seconds: f64,
}

/// A bucket's side in a replicated pair (`GET /v1/buckets/{b}/replication/epoch`, and the
/// answer to `POST /v1/buckets/{b}/replication/promote`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterEpoch {
    /// The bucket.
    pub bucket: String,
    /// `primary` (takes client writes), `replica` (refuses them: its primary's replicas
    /// only) or `unpaired` (no replica ever arrived; writable).
    pub role: String,
    /// The writer epoch: grows by one at each promotion.
    pub epoch: u64,
    /// Why it was last set: `paired`, `followed`, `promoted`, `fenced` (the peer was
    /// promoted; this old primary turned read-only), `demoted`; `null` when unpaired.
    pub reason: Option<String>,
    /// When it was last set.
    pub since: Option<Timestamp>,
    /// The access key the bucket's primary sends with (for a replica, or a promoted one).
    pub source: Option<String>,
    /// For a promoted bucket: what it knew of its old primary then.
    pub promotion: Option<Promotion>,
}

/// What a promoted bucket knew of its old primary: the realized RPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// When it was promoted.
    pub at: Timestamp,
    /// When the old primary's last heartbeat arrived; `null`: never heard from.
    pub last_heard: Option<Timestamp>,
    /// Entries (and their bytes) it then had not had acknowledged here.
    pub backlog_entries: Option<u64>,
    /// Their bytes.
    pub backlog_bytes: Option<u64>,
    /// When the oldest of them was committed there: writes from then on may be missing.
    pub oldest_unreplicated: Option<Timestamp>,
    /// The RPO that heartbeat reported, seconds: at least this much was not here.
    pub reported_rpo_seconds: Option<f64>,
    /// The realized RPO's upper bound, seconds, if the old primary stopped within one
    /// heartbeat interval of its last heartbeat (it could not tell us later).
    pub rpo_bound_seconds: Option<f64>,
    /// The heartbeat interval, seconds.
    pub heartbeat_interval_seconds: f64,
}

/// One rule's replication audit (`GET /v1/replication/audit`): the peer asked, version
/// by version, whether it holds what it acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The source bucket.
    pub bucket: String,
    /// The rule's id.
    pub rule: String,
    /// The peer.
    pub peer: String,
    /// When the pass in progress (or the last) began.
    pub started: Option<Timestamp>,
    /// When the last pass finished; `null` before the first.
    pub finished: Option<Timestamp>,
    /// A pass is in progress (the counts are its own so far).
    pub running: bool,
    /// Why the last pass over the rule stopped short (the peer could not be asked), if
    /// it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Versions asked about.
    pub checked: u64,
    /// Not on the peer: queued again (the sender sends them).
    pub missing: u64,
    /// On the peer with another ETag or size: named, never overwritten.
    pub mismatched: u64,
    /// The first findings (at most 100).
    pub named: Vec<AuditFinding>,
}

/// A version the audit found missing or different on the peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFinding {
    /// The key.
    pub key: String,
    /// The version id.
    pub version_id: String,
    /// `missing` or `mismatched`.
    pub finding: String,
}
