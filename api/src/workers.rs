//! Background workers: `GET /v1/workers`, `POST /v1/workers/{name}/{action}` (no body;
//! 202), scrub (`GET /v1/scrub`, `POST /v1/scrub/run`), lifecycle (`GET /v1/lifecycle`,
//! `POST /v1/lifecycle/run`), restore drills (`GET /v1/drill`, `POST /v1/drill/run`), the
//! repair queue (`GET /v1/repair`), the watchdog (`GET /v1/watchdog`) and disk heal
//! (`POST /v1/disks/{id}/heal`, which answers like `POST /v1/scrub/run`).

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The query string of `POST /v1/scrub/run`, `/v1/lifecycle/run` and `/v1/disks/{id}/heal`:
/// `?wait=true` answers with the pass's report once it is done (without it, or when the
/// pass was stopped, the answer is `null` and the pass runs on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunQuery {
    /// Wait for the pass and answer with its report; absent means `false`.
    pub wait: Option<bool>,
}

/// Where a worker runs once a cluster spans nodes, spelled in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerScope {
    /// `node`: on every node, over that node's own state.
    Node,
    /// `cluster`: once per cluster, over cluster-wide state.
    Cluster,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

/// What every worker shows, whatever it does (`GET /v1/workers`, under `runners`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// The worker's name: `scrub`, `lifecycle`, `repair`, `drill`, `watchdog` or
    /// `alert-delivery` (what `POST /v1/workers/{name}/{action}` takes).
    pub name: String,
    /// Where it runs in a cluster.
    pub scope: WorkerScope,
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator: no pass runs until it is resumed.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// Passes that failed since the process started.
    pub failed_passes: u64,
    /// Why the last pass that ended failed; `null` once one finishes.
    pub last_failure: Option<String>,
    /// Seconds from the end of one pass to the start of the next.
    pub interval_secs: u64,
    /// A once-per-cluster worker (`scope` `cluster`) on a node that does not hold the
    /// cluster's lease: its passes run on the node that does (the Raft leader). Absent
    /// (false) from servers before clusters.
    #[serde(default)]
    pub standby: bool,
}

/// `GET /v1/workers`: every worker's own status, and what the runner sees of each.
/// (Fields in alphabetical order, as the server has always written them.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workers {
    /// The restore-drill worker.
    pub drill: DrillStatus,
    /// The lifecycle worker.
    pub lifecycle: LifecycleStatus,
    /// The repair worker and its queue.
    pub repair: RepairStatus,
    /// Every worker, as the runner sees it.
    pub runners: Vec<WorkerStatus>,
    /// The scrub worker.
    pub scrub: ScrubStatus,
    /// The watchdog.
    pub watchdog: WatchStatus,
}

/// The counts of one lifecycle pass (`POST /v1/lifecycle/run?wait=true`, and in
/// [`LifecycleStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePass {
    /// When the pass began, on the retention clock (kept across a resume).
    pub started: Option<Timestamp>,
    /// When the pass finished, on the retention clock; `null` while it runs.
    pub finished: Option<Timestamp>,
    /// Versions (delete markers included) of keys in buckets with rules.
    pub versions_examined: u64,
    /// Current versions expired by a delete marker (versioned buckets).
    pub delete_markers_added: u64,
    /// Versions removed: noncurrent ones, lone delete markers, current ones of
    /// unversioned buckets.
    pub versions_removed: u64,
    /// Versions the rules would remove but Object Lock protects.
    pub kept_locked: u64,
    /// Multipart uploads aborted by AbortIncompleteMultipartUpload.
    pub uploads_aborted: u64,
    /// Actions that failed for another reason than Object Lock (the pass went on).
    pub errors: u64,
}

/// `GET /v1/lifecycle` (and `GET /v1/status` under `lifecycle`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleStatus {
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator: the pass is stopped at its checkpoint until resumed.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// The pass under way, with its counts so far; `null` when idle.
    pub current: Option<LifecyclePass>,
    /// The last pass that finished; `null` if none has.
    pub last_pass: Option<LifecyclePass>,
    /// Throttle: versions examined per second.
    pub rate_limit: u32,
    /// Seconds from the end of one pass to the start of the next.
    pub interval_secs: u64,
    /// Passes that met an error and did not finish (each resumed from its checkpoint).
    pub failed_passes: u64,
    /// Why the last pass that ended failed; `null` when it finished.
    pub last_failure: Option<String>,
}

/// A version scrub could not rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrepairable {
    /// The version's bucket.
    pub bucket: String,
    /// The version's object key.
    pub key: String,
    /// The version id as clients name it (`null` as a string for the null version).
    pub version_id: String,
    /// The first stripe (counted within its segment) with fewer than K good blocks; 0
    /// for an inline version whose bytes fail their hash.
    pub stripe: u64,
}

/// The counts of one scrub pass (`POST /v1/scrub/run?wait=true`,
/// `POST /v1/disks/{id}/heal?wait=true`, and in [`ScrubStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    /// When the pass began, on the retention clock (kept across a resume).
    pub started: Option<Timestamp>,
    /// When the pass finished, on the retention clock; `null` while it runs.
    pub finished: Option<Timestamp>,
    /// Versions checked, delete markers included.
    pub versions: u64,
    /// Shards that opened and matched their recorded root.
    pub shards_verified: u64,
    /// Bytes read and hashed: every good block (padding included) and inline objects.
    pub bytes_verified: u64,
    /// Shards not there to check (no file, an unreadable or offline disk, never written).
    pub missing: u64,
    /// Shards whose trailer, hash list or a block does not verify against the root.
    pub corrupt: u64,
    /// Shards rebuilt, in place or on another disk.
    pub repaired: u64,
    /// Versions with a stripe below K good blocks: reported and alerted, never dropped.
    pub unrepairable: Vec<Unrepairable>,
    /// The pass continued one that was interrupted (by a crash or shutdown).
    pub resumed: bool,
    /// Keys handled before the interruption, when resumed.
    pub keys_before_resume: u64,
    /// Keys handled, all versions of each, counting those before a resume.
    pub keys: u64,
    /// Milliseconds the pass ran (since its resume, if it was resumed).
    pub duration_ms: u64,
    /// Shard files no version references, moved to `quarantine/` (never deleted).
    pub orphans_quarantined: u64,
}

/// Scrub counts since the process started, across passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubTotals {
    /// As [`ScrubReport::shards_verified`].
    pub shards_verified: u64,
    /// As [`ScrubReport::bytes_verified`] (bytes).
    pub bytes_verified: u64,
    /// As [`ScrubReport::missing`].
    pub missing: u64,
    /// As [`ScrubReport::corrupt`].
    pub corrupt: u64,
    /// As [`ScrubReport::repaired`].
    pub repaired: u64,
}

/// `GET /v1/scrub`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStatus {
    /// Counts since the process started.
    pub totals: ScrubTotals,
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator: the pass is stopped at its checkpoint until resumed.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// The pass under way, with its counts so far; `null` when idle.
    pub current: Option<ScrubReport>,
    /// The last pass that finished; `null` if none has.
    pub last_pass: Option<ScrubReport>,
    /// Throttle: bytes verified per second.
    pub rate_bytes_per_sec: u32,
    /// Seconds from the end of one pass to the start of the next (`--scrub-interval`).
    pub interval_secs: u64,
    /// Passes that met an error and did not finish (each resumed from its checkpoint).
    pub failed_passes: u64,
    /// Why the last pass that ended failed; `null` when it finished.
    pub last_failure: Option<String>,
}

/// One version a restore drill read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampled {
    /// The version's bucket.
    pub bucket: String,
    /// The version's object key.
    pub key: String,
    /// As clients name it (`null` as a string, or the id).
    pub version: String,
    /// Bytes read back; 0 when the read failed.
    pub bytes: u64,
    /// `null` when the bytes came back whole and matched; else why not.
    pub failure: Option<String>,
}

/// What one restore drill read and found (`POST /v1/drill/run`, and in [`DrillStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    /// When the drill began, on the retention clock.
    pub started: Option<Timestamp>,
    /// When it ended, on the retention clock.
    pub finished: Option<Timestamp>,
    /// Object versions in every bucket (delete markers not counted): what the sample was
    /// drawn from.
    pub versions_total: u64,
    /// The versions read, in the order read.
    pub sample: Vec<Sampled>,
    /// Versions that came back whole and matched.
    pub passed: u64,
    /// Versions that did not (each one alerted).
    pub failed: u64,
    /// The drill could not draw its sample: it did not run, whatever `passed` says.
    pub error: Option<String>,
}

/// `GET /v1/drill`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillStatus {
    /// Drills that ran (drew their sample and read it back).
    pub drills: u64,
    /// Drills that could not run; each is retried after a backoff.
    pub failed_runs: u64,
    /// Why the last drill could not run; `null` once one runs.
    pub last_failure: Option<String>,
    /// The report of the last drill that ran; `null` if none has.
    pub last: Option<DrillReport>,
    /// Versions a drill reads at most (`--drill-sample`).
    pub sample_size: u64,
    /// Seconds from the end of one drill to the start of the next (`--drill-interval`).
    pub interval_secs: u64,
}

/// A queued repair whose last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingRepair {
    /// The version's bucket.
    pub bucket: String,
    /// The version's object key.
    pub key: String,
    /// The version id (32 hex digits).
    pub version: String,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the entry is due again, on the store's clock.
    pub next_attempt: Timestamp,
}

/// `GET /v1/repair`: the repair queue's length and what the repair worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairStatus {
    /// Entries queued, due or not (several may name one segment).
    pub queue_length: u64,
    /// Entries in the queue whose last attempt failed.
    pub failing: u64,
    /// Entries handled (repaired, found healthy, or whose version is gone).
    pub handled: u64,
    /// Shards rebuilt since the process started.
    pub shards_rebuilt: u64,
    /// Shards of site-unsafe segments moved back to their site since the process started.
    #[serde(default)]
    pub shards_moved: u64,
    /// Acknowledged bytes that would not survive losing one more site.
    #[serde(default)]
    pub site_unsafe_bytes: u64,
    /// Attempts that found a stripe with fewer than K good blocks (the entry stays).
    pub unrepairable: u64,
    /// Attempts that failed (each entry stays queued and is retried with backoff).
    pub failed_attempts: u64,
    /// The entries whose last attempt failed, oldest due first (at most 20).
    pub failing_entries: Vec<FailingRepair>,
    /// The last time the worker could not read or update the queue itself, and why
    /// (`null` once a drain went through).
    pub last_error: Option<String>,
}

/// `GET /v1/watchdog`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// Rounds of checks since the process started.
    pub checks: u64,
    /// Buckets whose backups are overdue now (bucket names).
    pub overdue: Vec<String>,
}

/// What one rebalance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceReport {
    /// When it began.
    pub started: Option<crate::Timestamp>,
    /// When it finished; `null` while it runs.
    pub finished: Option<crate::Timestamp>,
    /// The layout epoch it moved shards to.
    pub epoch: u64,
    /// Versions looked at.
    pub versions: u64,
    /// Shards copied, verified and recorded where the layout places them.
    pub moved: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Shards off the layout left for now (a disk not online, a shard repair must
    /// rebuild first).
    pub waiting: u64,
    /// Moves another change recorded first (nothing recorded, the copy removed).
    pub raced: u64,
    /// Old copies removed after their grace period.
    pub old_copies_removed: u64,
}

/// `GET /v1/rebalance`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceStatus {
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// The pass under way.
    pub current: Option<RebalanceReport>,
    /// The last pass that finished.
    pub last_pass: Option<RebalanceReport>,
    /// Throttle: bytes copied per second.
    pub rate_bytes_per_sec: u32,
    /// Seconds between scheduled passes (`--rebalance-interval`).
    pub interval_secs: u64,
    /// Seconds an old copy is kept after its shard moved (`--rebalance-grace`).
    pub grace_secs: u64,
    /// Old copies waiting for their grace period to end on this node.
    pub old_copies_waiting: u64,
    /// Another node holds the cluster's lease: passes run there.
    pub standby: bool,
    /// Passes that failed since the process started.
    pub failed_passes: u64,
    /// Why the last pass that ended failed.
    pub last_failure: Option<String>,
}
