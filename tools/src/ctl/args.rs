//! The command line: every command, subcommand and argument (clap), and their parsers.

/// Options every admin command shares (global: they may follow any subcommand).
#[derive(Debug, clap::Args)]
pub struct AdminOpts {
    /// The node's admin API.
    #[arg(
        long,
        global = true,
        help_heading = "Admin API",
        env = "STELE_ADMIN_URL",
        default_value = "http://127.0.0.1:9001"
    )]
    pub(super) admin_url: String,
    /// Admin-plane access key.
    #[arg(
        long,
        global = true,
        help_heading = "Admin API",
        env = "STELE_ADMIN_KEY"
    )]
    pub(super) admin_key: Option<String>,
    /// Admin-plane secret (prefer the environment variable: flags show up in `ps`).
    #[arg(
        long,
        global = true,
        help_heading = "Admin API",
        env = "STELE_ADMIN_SECRET",
        hide_env_values = true
    )]
    pub(super) admin_secret: Option<String>,
    /// Over https: trust the node's certificate if a certificate in this PEM file signed
    /// it or is it (a self-signed node's `tls/cert.pem` in its key folder).
    #[arg(long, global = true, help_heading = "Admin API", env = "STELE_CA")]
    pub(super) ca: Option<std::path::PathBuf>,
    /// Over https: trust exactly the certificate with this SHA-256 fingerprint (as the
    /// node prints it at start and `stelectl status` shows it).
    #[arg(
        long,
        global = true,
        help_heading = "Admin API",
        env = "STELE_FINGERPRINT"
    )]
    pub(super) fingerprint: Option<String>,
    /// Print the server's JSON as is instead of a table.
    #[arg(long, global = true)]
    pub(super) json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Users: add, list, disable, enable, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys: create, rotate, revoke.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Replace a user's grants.
    Grant(GrantArgs),
    /// Allow (or with --revoke, withdraw) a user's bypass of GOVERNANCE retention.
    Bypass(BypassArgs),
    /// Buckets.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Retention policies: bounds on the retention of new versions in a bucket.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Privileged operations waiting for a second administrator.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Turn the two-person rule on or off.
    TwoPersonRule {
        #[arg(value_enum)]
        state: OnOff,
    },
    /// The node's disks, counts, clock and lifecycle worker.
    Status,
    /// Scrub: verify every shard, rebuild what is missing or corrupt.
    #[command(subcommand)]
    Scrub(ScrubCommand),
    /// The audit trail: its keys, exports, reports and queries from the node; verify,
    /// verify-report, verify-events and diff offline (no server, no secret).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The retention clock.
    #[command(subcommand)]
    Clock(ClockCommand),
    /// The repair queue that reads and writes feed.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// A site of a cluster across sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Restore drills: a random sample of versions read back end to end and checked.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Alerts: webhook sinks, the delivery queue, a test alert.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Disks: bring a replaced one back.
    #[command(subcommand)]
    Disk(DiskCommand),
    /// Site-to-site replication: peers, a bucket's rule, status, parked entries.
    #[command(subcommand)]
    Replication(ReplicationCommand),
    /// The cluster: its CA and first member (init), join tokens, members.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Make this node the first member of a new cluster: a cluster CA and this node's
    /// certificate in its key folder, and a Raft group of one voter (needs --cluster-addr
    /// on the node, an address the others reach).
    Init,
    /// The cluster's id, its CA's fingerprint, every member, and this node's view of the
    /// Raft group (state, leader and its address, term, log and applied index, voters).
    Status,
    /// Issue a one-time join token (shown once) and the command that joins with it.
    JoinToken {
        /// How long the token is accepted, in seconds (1 to 604800).
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Remove a member: its certificate is refused at once, on open connections too, and
    /// it leaves the Raft group (ask the leader).
    Remove {
        /// The member's node id (`stelectl cluster status`).
        node: String,
    },
    /// The layout: every disk new shards go to, with its weight, under an epoch; weights
    /// are staged, then applied naming the epoch (new writes follow it; existing shards
    /// move only by `cluster rebalance`).
    Layout {
        #[command(subcommand)]
        cmd: Option<LayoutCommand>,
    },
    /// Run a rebalance pass now on the lease holder and wait for it: shards the current
    /// layout places elsewhere are copied, verified and recorded there (old copies are
    /// removed after --rebalance-grace); `--status` shows the worker instead.
    Rebalance {
        /// Show the rebalancer's status instead of running a pass.
        #[arg(long)]
        status: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum LayoutCommand {
    /// The current layout and what is staged (the default).
    Show,
    /// Stage a disk's weight for the next epoch (0 drains it: no new shard goes there
    /// while others can take it, and the rebalancer moves its shards off).
    Weight {
        /// The disk: its UUID, or NODE:ID (`stelectl cluster layout`).
        disk: String,
        /// Its new weight, 0 to 1000 (relative to the others'; a new disk gets 1).
        #[arg(value_parser = clap::value_parser!(u32).range(0..=1000))]
        weight: u32,
    },
    /// Apply what is staged, if the layout is still at EPOCH (of two applies naming one
    /// epoch, one wins).
    Apply {
        /// The epoch the layout is at (`stelectl cluster layout`).
        #[arg(long)]
        epoch: u64,
    },
    /// Forget what is staged.
    Revert,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        name: String,
        /// ROLE or ROLE:bucket1,bucket2 (no buckets: all buckets); repeatable. Roles:
        /// backup-writer, restore-reader, auditor, admin, replication-peer.
        #[arg(long = "role", value_name = "ROLE[:BUCKETS]", value_parser = parse_grant)]
        roles: Vec<GrantSpec>,
    },
    /// List users, their grants and their keys.
    List,
    /// Disable a user: its keys stop working until it is enabled again.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Delete a user and its keys (an administrator: needs approval under the two-person rule).
    Delete { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create an access key for a user (S3 unless --admin); the secret is shown only once.
    Create {
        user: String,
        /// An admin-plane key (for this API) instead of an S3 key.
        #[arg(long)]
        admin: bool,
    },
    /// Create a new key for the same user and plane; the old one keeps working until it
    /// is revoked.
    Rotate { access_key: String },
    /// Revoke a key.
    Revoke { access_key: String },
}

#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    pub(super) user: String,
    /// ROLE or ROLE:bucket1,bucket2 (no buckets: all buckets); repeatable.
    #[arg(
        long = "role",
        value_name = "ROLE[:BUCKETS]",
        value_parser = parse_grant,
        required_unless_present = "none"
    )]
    pub(super) roles: Vec<GrantSpec>,
    /// Remove every grant instead.
    #[arg(long, conflicts_with = "roles")]
    pub(super) none: bool,
}

#[derive(Debug, clap::Args)]
pub struct BypassArgs {
    pub(super) user: String,
    /// Limit the bypass to these buckets (repeatable; none: all buckets).
    #[arg(long = "bucket", value_name = "BUCKET")]
    pub(super) buckets: Vec<String>,
    /// Withdraw the bypass.
    #[arg(long, conflicts_with = "buckets")]
    pub(super) revoke: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClockCommand {
    /// Retention time, the wall clock, how far retention runs behind, anomalies.
    Show,
    /// Move retention time forward, giving back downtime it did not count (data is then
    /// kept as long as asked, not longer): to the wall clock, or to --to. Never back,
    /// never past the wall clock; held for a second administrator under the two-person
    /// rule.
    Resync {
        /// The retention time to move to (RFC 3339, e.g. 2026-12-01T12:00:00Z); default:
        /// the wall clock now.
        #[arg(long, value_parser = parse_rfc3339)]
        to: Option<i64>,
    },
}

/// An RFC 3339 date and time, as microseconds since the epoch.
pub(super) fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
        format!("{s:?} is not an RFC 3339 time ({e}); e.g. 2026-12-01T12:00:00Z")
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| format!("{s:?} is out of range"))
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check an exported trail (NDJSON: leaves and signed checkpoints) against the log's
    /// public key, offline. Prints a JSON report on stdout and a summary on stderr; exits
    /// 0 when verified, 1 when broken (the first break named), 2 for unusable input.
    Verify {
        /// The export files, read in order as one trail.
        #[arg(required = true)]
        exports: Vec<std::path::PathBuf>,
        /// The log's public key (`name+id+base64`, a C2SP verifier key, as `stelectl
        /// audit keys` prints it), or a file holding it; repeat for the keys of one log.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// A signed checkpoint kept from an earlier export (`stelectl audit checkpoint`
        /// prints the latest): the trail must still hold the leaves it covers, unchanged.
        #[arg(long)]
        trust: Option<std::path::PathBuf>,
    },
    /// Download the whole trail as NDJSON (each event byte for byte as stored, and the
    /// signed checkpoints), for `stelectl audit verify`. The export is itself an event.
    Export {
        /// Write it to this file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// The trail's public key, in the form `verify --key` reads: keep it off the node.
    Keys,
    /// Events of the trail by time, actor, bucket, key, event and outcome, each with its
    /// inclusion proof in a checkpoint signed now (NDJSON, for `verify-events`), or as
    /// CSV for reading. The query is itself an event.
    Events {
        /// Trusted time at or after this (ISO 8601: `2026-11-30` or a full time).
        #[arg(long)]
        from: Option<String>,
        /// Trusted time before this.
        #[arg(long)]
        to: Option<String>,
        /// The bucket.
        #[arg(long)]
        bucket: Option<String>,
        /// The object key.
        #[arg(long)]
        key: Option<String>,
        /// The actor's user name or access key id.
        #[arg(long)]
        actor: Option<String>,
        /// The event (`version-removed`, `auth-failed`, ...).
        #[arg(long)]
        event: Option<String>,
        /// `ok` or `refused`.
        #[arg(long)]
        outcome: Option<String>,
        /// Only events after this sequence number (the previous page's last).
        #[arg(long)]
        after: Option<u64>,
        /// At most this many (default and most: 10,000).
        #[arg(long)]
        limit: Option<usize>,
        /// CSV for reading (carries no proofs).
        #[arg(long)]
        csv: bool,
    },
    /// Check a query's answer (`audit events` NDJSON) offline: every event's proof leads to
    /// the checkpoint, signed by the trail's key. Exits 0 verified, 1 not, 2 unusable.
    VerifyEvents {
        /// The answer file.
        file: std::path::PathBuf,
        /// The trail's public key (or a file holding it); repeatable.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Versions by retention state: expiring soon, under legal hold, COMPLIANCE past a
    /// date (JSON rows, or CSV with the report's columns). The query is an event.
    Versions {
        /// The bucket.
        #[arg(long)]
        bucket: String,
        /// Only keys under this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// COMPLIANCE, GOVERNANCE or none.
        #[arg(long)]
        mode: Option<String>,
        /// Retained until within this many days from now.
        #[arg(long)]
        expiring_within: Option<u32>,
        /// Retained until this date or later (ISO 8601).
        #[arg(long)]
        retain_after: Option<String>,
        /// Only versions under a legal hold.
        #[arg(long)]
        legal_hold: bool,
        /// CSV instead of JSON.
        #[arg(long)]
        csv: bool,
    },
    /// Make a signed retention report of a bucket (or prefix): every version with its
    /// size, ETag, BLAKE3, Object Lock mode, retain-until date and legal hold. Writes
    /// attestation.json, attestation.sig and rows.csv into a new folder.
    Report {
        /// The bucket.
        #[arg(long)]
        bucket: String,
        /// Only keys under this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// The folder to write the report into (created; it must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Check a report folder offline against the trail's public key: the signature, the
    /// rows file's hash, count and root, the summary. Exits 0 verified, 1 not, 2 unusable.
    VerifyReport {
        /// The report folder.
        dir: std::path::PathBuf,
        /// The trail's public key (or a file holding it); repeatable.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Compare two reports of one bucket offline: every version OLD shows under a legal
    /// hold or a retention still running when NEW was made must be in NEW, unchanged,
    /// retained no shorter, its mode no weaker. Exits 0 none, 1 violations, 2 unusable.
    Diff {
        /// The earlier report's folder.
        old: std::path::PathBuf,
        /// The later report's folder.
        new: std::path::PathBuf,
        /// The trail's public key (or a file holding it): both reports are verified first.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// The latest signed checkpoint (a signed note), in the form `verify --trust` reads.
    Checkpoint,
}

#[derive(Debug, clap::Subcommand)]
pub enum BucketCommand {
    /// Create a bucket.
    Create {
        name: String,
        /// Enable Object Lock (cannot be undone).
        #[arg(long)]
        lock: bool,
        /// Default retention of new versions: Nd or N (days); implies --lock.
        #[arg(long, value_name = "DAYS", value_parser = parse_days)]
        retention: Option<u32>,
        /// Mode of the default retention.
        #[arg(long, value_enum, ignore_case = true, requires = "retention")]
        mode: Option<Mode>,
    },
    /// Every bucket with its versioning, Object Lock, quota and usage.
    List,
    /// Show, set or remove a bucket's hard quota: client writes that would take the
    /// bucket's usage (all versions) past it are refused with 403 QuotaExceeded.
    Quota {
        bucket: String,
        /// The quota: plain bytes or with a unit (500MiB, 1.5GiB, 2TiB, 1TB, 300GB;
        /// K, M, G... are binary).
        #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "clear")]
        set: Option<u64>,
        /// Remove the quota.
        #[arg(long)]
        clear: bool,
    },
    /// Show or set a bucket's erasure coding across sites: its own profile K+M (checked
    /// against the layout's sites: one that cannot survive losing a site is refused) and
    /// what its writes do while a whole site is down.
    Geo {
        bucket: String,
        /// The profile of the bucket's new objects, K+M (4+2, 6+3, 5+4, 7+5...).
        #[arg(long, value_name = "K+M", conflicts_with = "default_profile")]
        profile: Option<String>,
        /// Go back to the node's profile (--ec).
        #[arg(long)]
        default_profile: bool,
        /// While a site is down: degrade (write over the other sites, moved back when
        /// it returns) or refuse (503 SlowDown).
        #[arg(long, value_parser = ["degrade", "refuse"])]
        site_down: Option<String>,
    },
    /// Expect a new version in a bucket at least this often: an overdue backup raises an
    /// alert.
    Expect {
        bucket: String,
        /// How often: 90s, 30m, 24h, 7d or plain seconds.
        #[arg(
            long,
            value_name = "DURATION",
            value_parser = parse_duration,
            required_unless_present = "none"
        )]
        every: Option<u64>,
        /// Remove the expectation instead.
        #[arg(long, conflicts_with = "every")]
        none: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Set (replace) a bucket's retention policy. Loosening one needs approval under the
    /// two-person rule.
    Set {
        bucket: String,
        /// Shortest retention a new version may have.
        #[arg(long, value_name = "N", value_parser = parse_days)]
        min_days: Option<u32>,
        /// Longest retention a new version may have.
        #[arg(long, value_name = "N", value_parser = parse_days)]
        max_days: Option<u32>,
        /// Retention modes allowed.
        #[arg(
            long,
            value_enum,
            ignore_case = true,
            value_delimiter = ',',
            default_value = "GOVERNANCE,COMPLIANCE"
        )]
        modes: Vec<Mode>,
        /// What happens to a new version below the minimum: refused, or raised to it.
        #[arg(long, value_enum, default_value = "refuse")]
        below_min: BelowMin,
    },
    /// Show a bucket's retention policy.
    Show { bucket: String },
    /// Remove a bucket's retention policy (a loosening: approval under the two-person rule).
    Clear { bucket: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// List pending approvals.
    List,
    /// Approve (and so carry out) a pending operation requested by another administrator.
    Approve { id: String },
    /// Deny a pending operation.
    Deny { id: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum ScrubCommand {
    /// Start a scrub pass now (after the one running, if any).
    Run {
        /// Wait for the pass and print its report (however long it takes; interrupting
        /// stops the waiting, not the pass).
        #[arg(long)]
        wait: bool,
    },
    /// Whether a pass is running, the last pass's counts, the rate and the schedule.
    Status,
}

#[derive(Debug, clap::Subcommand)]
pub enum SiteCommand {
    /// Remove a site lost for good: shows what it held (segments, shards, bytes to
    /// rebuild) and, with --yes, removes its members (their certificates are refused
    /// from then on) and queues every shard it held for rebuilding on the node asked,
    /// onto the disks left (`stelectl repair status` there shows the progress).
    Remove {
        site: String,
        /// Remove it (without: only show what it would cost).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RepairCommand {
    /// The repair queue's length and what the repair worker did.
    Status,
}

#[derive(Debug, clap::Subcommand)]
pub enum DrillCommand {
    /// Run a restore drill now and wait for it; exits non-zero if a version failed.
    Run,
    /// The last drill's result and the schedule.
    Status,
}

#[derive(Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Raise a test alert: it is logged and queued for every sink.
    Test,
    /// Webhook sinks: set, list, remove.
    #[command(subcommand)]
    Sink(SinkCommand),
    /// Alerts waiting for delivery.
    Queue,
}

#[derive(Debug, clap::Subcommand)]
pub enum SinkCommand {
    /// Add or replace a sink: every alert is POSTed to URL as JSON.
    Set { name: String, url: String },
    /// List the sinks.
    List,
    /// Remove a sink.
    Remove { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum DiskCommand {
    /// Bring a replaced (emptied) disk back: it is stamped and put online, and a scrub
    /// pass rebuilds its shards.
    Heal {
        id: String,
        /// Wait for the scrub pass and print its report.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ReplicationCommand {
    /// Peers: the other Stele sites buckets replicate to.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// A bucket's replication rule: set, get, delete.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Every peer: RPO, backlog, oldest unreplicated version, link and parked entries.
    Status,
    /// The entries a peer refused for good (parked; they count in the RPO until retried).
    Dead { peer: String },
    /// Put a peer's parked entries back in its log, to be sent again.
    Retry { peer: String },
    /// Start every rule sending to a peer over (after it lost data): it gets only what it
    /// lacks.
    Resync { peer: String },
    /// On a peer site: each source replicating here and what its last heartbeat said
    /// (after a disaster at the source, its realized RPO).
    Sources,
    /// Failover, on the peer site: make a replica bucket writable (its pair's primary at
    /// the next writer epoch) and print the realized RPO. The old primary turns its own
    /// bucket read-only when it next reaches this site; what it had not sent still comes.
    Promote { bucket: String },
    /// A bucket's side in its replicated pair: primary, replica or unpaired, its writer
    /// epoch, and why.
    Epoch { bucket: String },
    /// Each rule's last replication audit (the peer asked whether it holds every version
    /// it acknowledged; missing ones are sent again, different ones named).
    Audit {
        /// Start an audit now (it runs in the background; run this again without --run
        /// to see it).
        #[arg(long)]
        run: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum PeerCommand {
    /// Add a peer: its S3 endpoint and a key made there for a user with only the
    /// replication-peer role. An https:// endpoint needs --peer-ca or --peer-fingerprint;
    /// an http:// endpoint neither.
    Add {
        /// The peer's name here: 1 to 63 of a-z, 0-9 and -.
        name: String,
        /// The peer's S3 listener: https://host:port (http://host:port on one host only).
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// Trust the peer's certificate if a certificate in this PEM file signed it or is
        /// it (a self-signed peer's tls/cert.pem). Named apart from the global --ca, which
        /// trusts this node's admin API.
        #[arg(
            long = "peer-ca",
            value_name = "FILE",
            conflicts_with = "peer_fingerprint"
        )]
        peer_ca: Option<std::path::PathBuf>,
        /// Trust exactly the peer's certificate with this SHA-256 fingerprint (`:` between
        /// bytes allowed; the peer prints it at start, `stelectl status` shows it). Named
        /// apart from the global --fingerprint, which trusts this node's admin API.
        #[arg(long = "peer-fingerprint", value_name = "HEX")]
        peer_fingerprint: Option<String>,
        /// The access key id of the peer's replication-peer key.
        #[arg(long, value_name = "AK")]
        access_key: String,
        /// Its secret (prefer the environment variable: flags show up in `ps`).
        #[arg(
            long,
            value_name = "SK",
            env = "STELE_PEER_SECRET_KEY",
            hide_env_values = true
        )]
        secret_key: String,
    },
    /// List the peers (never their secrets).
    List,
    /// Remove a peer that no rule names, with its log.
    Remove { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum RuleCommand {
    /// Set a bucket's replication to one rule (replacing what it had). The bucket needs
    /// versioning enabled; the target bucket on the peer too (and Object Lock when the
    /// bucket has it).
    Set {
        bucket: String,
        /// The peer's name.
        #[arg(long)]
        peer: String,
        /// The bucket on the peer.
        #[arg(long, value_name = "BUCKET")]
        target_bucket: String,
        /// The rule's id.
        #[arg(long, default_value = "rule-1")]
        id: String,
        /// Only keys starting with this replicate (default: every key).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Replicate delete markers too (never those lifecycle adds).
        #[arg(long)]
        delete_markers: bool,
        /// Raise an alert when the RPO passes this: 90s, 15m, 1h or plain seconds.
        #[arg(
            long = "rpo-alert",
            value_name = "SECS",
            value_parser = parse_duration,
            default_value = "900"
        )]
        rpo_alert: u64,
        /// Body bytes per second sent for this rule (default: no limit).
        #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
        bandwidth: Option<u64>,
        /// Send the versions written before the rule too.
        #[arg(long)]
        backfill: bool,
        /// Store the rule disabled (it logs nothing until set again without this).
        #[arg(long)]
        disabled: bool,
    },
    /// Print a bucket's replication rules as JSON.
    Get { bucket: String },
    /// Remove a bucket's replication rules (what is logged already is still sent).
    Delete { bucket: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    #[value(name = "COMPLIANCE")]
    Compliance,
    #[value(name = "GOVERNANCE")]
    Governance,
}

impl Mode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mode::Compliance => "COMPLIANCE",
            Mode::Governance => "GOVERNANCE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BelowMin {
    Refuse,
    Raise,
}

/// A grant as the API takes it: a role and its buckets (`None`: all buckets).
pub type GrantSpec = stele_api::identities::Grant;

/// `ROLE` or `ROLE:bucket1,bucket2`.
pub(super) fn parse_grant(s: &str) -> Result<GrantSpec, String> {
    let (role, buckets) = match s.split_once(':') {
        None => (s, None),
        Some((role, list)) => {
            let buckets: Vec<String> = list.split(',').map(|b| b.trim().to_owned()).collect();
            if buckets.iter().any(String::is_empty) {
                return Err(format!(
                    "{s:?}: empty bucket name (ROLE alone means all buckets)"
                ));
            }
            (role, Some(buckets))
        }
    };
    let role = role.trim();
    if role.is_empty() {
        return Err(format!("{s:?}: no role"));
    }
    Ok(GrantSpec {
        role: role.to_owned(),
        buckets,
    })
}

/// A size as `--set` takes it: bytes, or a number with a binary (KiB, MiB, GiB, TiB,
/// PiB) or decimal (KB, MB, GB, TB, PB) unit; a bare `K`, `M`... is binary.
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a size (bytes, or e.g. 500MiB, 1.5GiB, 1TB)");
    // Whole and fractional digits apart, so that 1.5GiB is exact and no float rounds.
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || frac.contains('.') || frac.len() > 9 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac_num: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let frac_den = 10u64.pow(frac.len() as u32);
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (B, KiB, MiB, GiB, TiB, PiB, KB, MB, GB, TB, PB)"
            ));
        }
    };
    let frac_bytes = u128::from(frac_num) * u128::from(mult) / u128::from(frac_den);
    whole
        .checked_mul(mult)
        .and_then(|w| w.checked_add(u64::try_from(frac_bytes).ok()?))
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `30d`, `30D` or `30`: a number of days, at least 1.
pub(super) fn parse_days(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let n = t
        .strip_suffix(['d', 'D'])
        .unwrap_or(t)
        .parse::<u32>()
        .map_err(|_| format!("{s:?}: expected a number of days, e.g. 30d or 30"))?;
    if n == 0 {
        return Err("at least 1 day".into());
    }
    Ok(n)
}

/// `90s`, `30m`, `24h`, `7d` or `3600`: a duration in seconds, at least 1.
pub(super) fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let bad = || format!("{s:?}: expected a duration, e.g. 90s, 30m, 24h, 7d or 3600");
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{s:?}: too long"))?;
    if secs == 0 {
        return Err("at least 1 second".into());
    }
    Ok(secs)
}
