//! The node's own state: `GET /health`, `GET /ready` (open, for probes), `GET /v1/status`,
//! `GET /v1/disks` and `GET /v1/clock`. (`GET /metrics` is OpenMetrics text, not JSON.)

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::workers::LifecycleStatus;

/// `GET /health` (always 200): `{"status": "ok" | "clock-anomaly", "clock_anomalies": N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `clock-anomaly` once the retention clock has refused a wall-clock step.
    pub status: HealthState,
    /// Anomalies the retention clock has seen since the node's first start (as
    /// [`ClockStatus::anomalies`]).
    pub clock_anomalies: u64,
    /// How far retention time runs behind the wall clock, in microseconds (the downtime
    /// it did not count; `stelectl clock resync` gives it back). Absent (older servers):
    /// 0.
    #[serde(default)]
    pub clock_behind_wall_micros: i64,
}

/// The state `GET /health` reports, spelled in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthState {
    /// `ok`: no clock anomaly.
    Ok,
    /// `clock-anomaly`: the wall clock jumped at least once; check the time source.
    ClockAnomaly,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

/// `GET /ready`: 200 when at least `write_quorum` disks are online, else 503, with
/// `{"disks_online": N, "write_quorum": N}` either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Disks online now (a count).
    pub disks_online: u64,
    /// Disks a write needs (the node's `--write-quorum`).
    pub write_quorum: u64,
    /// The other members find this node's wall clock more than two minutes off
    /// (`GET /v1/clock`): it takes no write until it is set right, so it is not ready.
    /// Absent (older servers): false.
    #[serde(default)]
    pub clock_skewed: bool,
}

/// The state of a disk, spelled in lower case: `online`, `offline` or `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskState {
    /// Takes new shards and serves reads.
    Online,
    /// Failed: takes no work until a probe after a rest finds it well again.
    Offline,
    /// Out of space: still serves reads, takes no new shards.
    Full,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

impl DiskState {
    /// The wire spelling: `online`, `offline` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskState::Online => "online",
            DiskState::Offline => "offline",
            DiskState::Full => "full",
            DiskState::Unknown => "unknown",
        }
    }
}

/// One disk, as `GET /v1/disks` lists them (and `GET /v1/status` under `disks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStatus {
    /// The disk's configured, node-local id (`d0`).
    pub id: String,
    /// The disk's directory on the node.
    pub path: String,
    /// The node the disk belongs to (a failure domain).
    pub node: String,
    /// The site the disk's node is in (the widest failure domain).
    pub site: String,
    /// The disk's state when the answer was made (the server probes each disk for it).
    pub state: DiskState,
    /// The disk's UUID from its stamp (32 lower-case hex digits); `null` until read.
    pub uuid: Option<String>,
    /// Bytes free for the node's user on the disk's filesystem; `null` if unreadable.
    pub free_bytes: Option<u64>,
}

/// A wall-clock jump the retention clock refused to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAnomaly {
    /// Retention time when it was seen.
    pub at: Timestamp,
    /// How far the wall clock stepped relative to monotonic time, in microseconds
    /// (negative: backwards).
    pub step_micros: i64,
}

/// The retention clock, as `GET /v1/clock` shows it (and `GET /v1/status` under `clock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStatus {
    /// Retention time now: what Object Lock decisions read.
    pub retention_now: Timestamp,
    /// The wall clock now.
    pub wall_now: Timestamp,
    /// How far retention time runs behind the wall clock, in microseconds (downtime,
    /// refused jumps).
    pub behind_wall_micros: i64,
    /// Anomalies since the node's first start (a count).
    pub anomalies: u64,
    /// The most recent of them; `null` if none.
    pub last_anomaly: Option<ClockAnomaly>,
    /// Downtime measured when the node started (the wall clock ahead of the retention
    /// clock's mark) and not given back by a resync, in microseconds: the most a resync
    /// may add. Absent (older servers): 0.
    #[serde(default)]
    pub resync_credit_micros: i64,
    /// In a cluster, how far the other members' wall clocks read from this node's, in
    /// microseconds (positive: they are ahead): the median of the members in other sites
    /// (or of the other members, in one site); `null` on one node and before a reading.
    #[serde(default)]
    pub peer_offset_micros: Option<i64>,
    /// That offset is beyond two minutes: this node takes no write (503) and does not
    /// lead until its clock is set right. Absent (older servers): false.
    #[serde(default)]
    pub peer_skewed: bool,
}

/// The body of `POST /v1/clock/resync`: move the retention clock forward to `to`, or to
/// the wall clock when `null`. A privileged operation (202 with the approval under the
/// two-person rule); refused (400 `ClockResyncRefused`) backward or past the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockResync {
    /// The retention time to move to; `null`: the wall clock now.
    #[serde(default)]
    pub to: Option<Timestamp>,
}

/// `GET /v1/status`: the node at a glance. (Fields in alphabetical order, as the server
/// has always written them.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Buckets on the node (a count; 0 when they cannot be read).
    pub buckets: u64,
    /// The retention clock.
    pub clock: ClockStatus,
    /// Every disk.
    pub disks: Vec<DiskStatus>,
    /// The lifecycle worker.
    pub lifecycle: LifecycleStatus,
    /// Privileged operations waiting for a second administrator (a count).
    pub pending_approvals: u64,
    /// The listeners' TLS; absent when both serve plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Whether privileged operations need a second administrator now (the rule is on and
    /// there are at least two administrators).
    pub two_person_rule_in_force: bool,
    /// Users (a count).
    pub users: u64,
}

/// The listeners' TLS certificate and which listeners serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// SHA-256 of the DER certificate handshakes present now, 64 lower-case hex digits
    /// (what `stelectl --fingerprint` and the replication client pin).
    pub fingerprint: String,
    /// Made by the node on first start (then its PEM is `tls/cert.pem` in the key folder).
    pub self_signed: bool,
    /// The S3 listener serves TLS.
    pub s3: bool,
    /// The admin listener serves TLS.
    pub admin: bool,
}
