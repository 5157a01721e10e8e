//! `stelectl`'s admin commands: users, keys, grants, governance bypass, buckets, retention
//! policies, approvals, the two-person rule and status; scrub, repair, restore drills,
//! alerts, backup freshness expectations and disk heal, each one call (or two) to the
//! node's admin API through [`crate::admin`].
//!
//! Output is a human-readable table or summary by default; with `--json` the server's
//! JSON is printed as is. A failed call prints the server's JSON error on stderr and exits
//! non-zero; a call that waits for a second administrator (HTTP 202) prints the approval
//! id and exits zero. A restore drill with a failed version exits non-zero too.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::admin::{AdminClient, ApiError, Reply, segment};

/// Set when a write to stdout failed (a closed pipe, a full disk): the command then exits
/// non-zero; only a closed pipe goes unmentioned.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// `println!` that never panics: a failed write is remembered in [`STDOUT_FAILED`].
macro_rules! out {
    () => {
        $crate::ctl::emit(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::ctl::emit(format_args!($($arg)*))
    };
}

fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if STDOUT_FAILED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("stelectl: cannot write the output: {e}");
        }
        STDOUT_FAILED.store(true, Ordering::Relaxed);
    }
}

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
    admin_url: String,
    /// Admin-plane access key.
    #[arg(
        long,
        global = true,
        help_heading = "Admin API",
        env = "STELE_ADMIN_KEY"
    )]
    admin_key: Option<String>,
    /// Admin-plane secret (prefer the environment variable: flags show up in `ps`).
    #[arg(
        long,
        global = true,
        help_heading = "Admin API",
        env = "STELE_ADMIN_SECRET",
        hide_env_values = true
    )]
    admin_secret: Option<String>,
    /// Print the server's JSON as is instead of a table.
    #[arg(long, global = true)]
    json: bool,
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
    /// The repair queue that reads and writes feed.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Restore drills: a random sample of versions read back end to end and checked.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Alerts: webhook sinks, the delivery queue, a test alert.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Disks: bring a replaced one back.
    #[command(subcommand)]
    Disk(DiskCommand),
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
    user: String,
    /// ROLE or ROLE:bucket1,bucket2 (no buckets: all buckets); repeatable.
    #[arg(
        long = "role",
        value_name = "ROLE[:BUCKETS]",
        value_parser = parse_grant,
        required_unless_present = "none"
    )]
    roles: Vec<GrantSpec>,
    /// Remove every grant instead.
    #[arg(long, conflicts_with = "roles")]
    none: bool,
}

#[derive(Debug, clap::Args)]
pub struct BypassArgs {
    user: String,
    /// Limit the bypass to these buckets (repeatable; none: all buckets).
    #[arg(long = "bucket", value_name = "BUCKET")]
    buckets: Vec<String>,
    /// Withdraw the bypass.
    #[arg(long, conflicts_with = "buckets")]
    revoke: bool,
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
    fn as_str(self) -> &'static str {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantSpec {
    role: String,
    buckets: Option<Vec<String>>,
}

/// `ROLE` or `ROLE:bucket1,bucket2`.
fn parse_grant(s: &str) -> Result<GrantSpec, String> {
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

/// `30d`, `30D` or `30`: a number of days, at least 1.
fn parse_days(s: &str) -> Result<u32, String> {
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
fn parse_duration(s: &str) -> Result<u64, String> {
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

/// Runs one admin command; any failure is reported on stderr, a failed API call with the
/// server's JSON error as is.
pub fn run(cmd: AdminCommand, opts: AdminOpts) -> ExitCode {
    let json = opts.json;
    match connect(opts).and_then(|client| Ctx { client, json }.dispatch(cmd)) {
        Ok(()) if STDOUT_FAILED.load(Ordering::Relaxed) => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, json);
            ExitCode::FAILURE
        }
    }
}

fn report(e: &anyhow::Error, json: bool) {
    let Some(api) = e.downcast_ref::<ApiError>() else {
        eprintln!("stelectl: {e:#}");
        return;
    };
    if !json {
        eprintln!("stelectl: {api}");
    }
    let body = api.body.trim_end();
    if !body.is_empty() {
        eprintln!("{body}");
    } else if json {
        eprintln!("HTTP {}", api.status);
    }
}

fn connect(opts: AdminOpts) -> anyhow::Result<AdminClient> {
    let key = opts
        .admin_key
        .context("no admin credential: set STELE_ADMIN_KEY (or --admin-key)")?;
    let secret = opts
        .admin_secret
        .context("no admin secret: set STELE_ADMIN_SECRET (or --admin-secret)")?;
    AdminClient::new(&opts.admin_url, &key, &secret)
}

struct Ctx {
    client: AdminClient,
    json: bool,
}

impl Ctx {
    fn dispatch(&self, cmd: AdminCommand) -> anyhow::Result<()> {
        match cmd {
            AdminCommand::User(c) => self.user(c),
            AdminCommand::Key(c) => self.key(c),
            AdminCommand::Grant(a) => {
                let grants = if a.none { Vec::new() } else { a.roles };
                let path = format!("/v1/users/{}/grants", segment(&a.user));
                let r = self.client.put(&path, &json!({ "grants": grants }))?;
                self.show(&r, |v| {
                    out!("grants of {} set:", a.user);
                    users_table(std::slice::from_ref(v));
                    Ok(())
                })
            }
            AdminCommand::Bypass(a) => {
                let buckets = (!a.buckets.is_empty()).then_some(&a.buckets);
                let path = format!("/v1/users/{}/governance-bypass", segment(&a.user));
                let r = self
                    .client
                    .put(&path, &json!({ "allowed": !a.revoke, "buckets": buckets }))?;
                let what = match (a.revoke, buckets) {
                    (true, _) => format!("{} may no longer bypass GOVERNANCE retention", a.user),
                    (false, None) => {
                        format!("{} may bypass GOVERNANCE retention in every bucket", a.user)
                    }
                    (false, Some(b)) => format!(
                        "{} may bypass GOVERNANCE retention in {}",
                        a.user,
                        b.join(", ")
                    ),
                };
                self.outcome(&r, &what)
            }
            AdminCommand::Bucket(c) => self.bucket(c),
            AdminCommand::Policy(c) => self.policy(c),
            AdminCommand::Approvals(c) => self.approvals(c),
            AdminCommand::TwoPersonRule { state } => {
                let enabled = state == OnOff::On;
                let r = self.client.put(
                    "/v1/settings/two-person-rule",
                    &json!({ "enabled": enabled }),
                )?;
                let what = if enabled {
                    "two-person rule on (in force while there are at least two administrators)"
                } else {
                    "two-person rule off"
                };
                self.outcome(&r, what)
            }
            AdminCommand::Status => {
                let r = self.client.get("/v1/status")?;
                self.show(&r, status)
            }
            AdminCommand::Scrub(c) => self.scrub(c),
            AdminCommand::Repair(RepairCommand::Status) => {
                let r = self.client.get("/v1/repair")?;
                self.show(&r, |v| {
                    let n = |k: &str| v.get(k).map(text).unwrap_or_else(|| "-".into());
                    rows(&[
                        ("queue length", n("queue_length")),
                        ("handled", n("handled")),
                        ("shards rebuilt", n("shards_rebuilt")),
                        ("unrepairable", n("unrepairable")),
                    ]);
                    Ok(())
                })
            }
            AdminCommand::Drill(c) => self.drill(c),
            AdminCommand::Alerts(c) => self.alerts(c),
            AdminCommand::Disk(DiskCommand::Heal { id, wait }) => {
                let path = format!("/v1/disks/{}/heal", segment(&id));
                if wait {
                    let r = self
                        .client
                        .post_waiting(&format!("{path}?wait=true"), None)?;
                    self.show(&r, |v| {
                        out!("disk {id} healed; the scrub pass that rebuilt its shards:");
                        scrub_report(v)
                    })
                } else {
                    let r = self.client.post(&path, None)?;
                    self.outcome(
                        &r,
                        &format!(
                            "disk {id} healed and online; a scrub pass rebuilds its shards \
                             (follow it with: stelectl scrub status)"
                        ),
                    )
                }
            }
        }
    }

    fn scrub(&self, cmd: ScrubCommand) -> anyhow::Result<()> {
        match cmd {
            ScrubCommand::Run { wait: false } => {
                let r = self.client.post("/v1/scrub/run", None)?;
                self.outcome(
                    &r,
                    "scrub pass started (after the one running, if any); \
                     follow it with: stelectl scrub status",
                )
            }
            ScrubCommand::Run { wait: true } => {
                let r = self.client.post_waiting("/v1/scrub/run?wait=true", None)?;
                self.show(&r, |v| {
                    out!("scrub pass done:");
                    scrub_report(v)
                })
            }
            ScrubCommand::Status => {
                let r = self.client.get("/v1/scrub")?;
                self.show(&r, scrub_status)
            }
        }
    }

    fn drill(&self, cmd: DrillCommand) -> anyhow::Result<()> {
        match cmd {
            DrillCommand::Run => {
                let r = self.client.post_waiting("/v1/drill/run", None)?;
                self.show(&r, |v| {
                    out!("restore drill done:");
                    drill_report(v)
                })?;
                let failed = r.json()?.get("failed").and_then(Value::as_u64);
                match failed.unwrap_or(0) {
                    0 => Ok(()),
                    1 => bail!("restore drill: 1 version did not read back whole"),
                    n => bail!("restore drill: {n} versions did not read back whole"),
                }
            }
            DrillCommand::Status => {
                let r = self.client.get("/v1/drill")?;
                self.show(&r, |v| {
                    let n = |k: &str| v.get(k).map(text).unwrap_or_else(|| "-".into());
                    let last = v.get("last").filter(|l| !l.is_null());
                    rows(&[
                        ("drills", n("drills")),
                        ("sample size", n("sample_size")),
                        (
                            "interval",
                            v.get("interval_secs")
                                .and_then(Value::as_u64)
                                .map(|s| format!("every {}", secs_text(s)))
                                .unwrap_or_else(|| "-".into()),
                        ),
                        (
                            "last drill",
                            match last {
                                Some(l) => {
                                    let c = |k: &str| l.get(k).map(text).unwrap_or_default();
                                    format!(
                                        "finished {}: {} passed, {} failed",
                                        l.get("finished").map(time).unwrap_or_default(),
                                        c("passed"),
                                        c("failed")
                                    )
                                }
                                None => "never".into(),
                            },
                        ),
                    ]);
                    if let Some(l) = last {
                        failures_table(l);
                    }
                    Ok(())
                })
            }
        }
    }

    fn alerts(&self, cmd: AlertsCommand) -> anyhow::Result<()> {
        match cmd {
            AlertsCommand::Test => {
                let r = self.client.post("/v1/alerts/test", None)?;
                // Its 202 means "accepted", not a pending approval: no `show`.
                if self.json {
                    print_raw(&r);
                } else {
                    out!(
                        "test alert raised: logged and queued for every sink \
                         (see stelectl alerts queue)"
                    );
                }
                Ok(())
            }
            AlertsCommand::Sink(SinkCommand::Set { name, url }) => {
                let r = self.client.put(&sink_path(&name), &json!({ "url": url }))?;
                self.show(&r, |v| {
                    let url = v.get("url").map(text).unwrap_or(url);
                    out!("alert sink {name} set: alerts are POSTed to {url}");
                    Ok(())
                })
            }
            AlertsCommand::Sink(SinkCommand::List) => {
                let r = self.client.get("/v1/alerts/sinks")?;
                self.show(&r, |v| {
                    let list = v.as_array().context("expected a list of sinks")?;
                    if list.is_empty() {
                        out!("no alert sinks: alerts only reach the log");
                        return Ok(());
                    }
                    table(
                        &["SINK", "CREATED", "URL"],
                        list.iter()
                            .map(|s| {
                                vec![
                                    s.get("name").map(text).unwrap_or_default(),
                                    s.get("created").map(time).unwrap_or_default(),
                                    s.get("url").map(text).unwrap_or_default(),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                })
            }
            AlertsCommand::Sink(SinkCommand::Remove { name }) => {
                let r = self.client.delete(&sink_path(&name))?;
                self.outcome(&r, &format!("alert sink {name} removed"))
            }
            AlertsCommand::Queue => {
                let r = self.client.get("/v1/alerts/queue")?;
                self.show(&r, |v| {
                    let list = v.as_array().context("expected a list of queued alerts")?;
                    if list.is_empty() {
                        out!("no alerts waiting for delivery");
                        return Ok(());
                    }
                    let f = |a: &Value, k: &str| a.get(k).map(text).unwrap_or_default();
                    let t = |a: &Value, k: &str| a.get(k).map(time).unwrap_or_default();
                    table(
                        &[
                            "ID",
                            "SINK",
                            "KIND",
                            "RAISED",
                            "ATTEMPTS",
                            "NEXT ATTEMPT",
                            "LAST ERROR",
                        ],
                        list.iter()
                            .map(|a| {
                                // The payload is the JSON the sink receives.
                                let kind = a
                                    .get("payload")
                                    .and_then(Value::as_str)
                                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                                    .and_then(|p| p.get("kind").map(text))
                                    .unwrap_or_else(|| "-".into());
                                vec![
                                    f(a, "id"),
                                    f(a, "sink"),
                                    kind,
                                    t(a, "raised"),
                                    f(a, "attempts"),
                                    t(a, "next_attempt"),
                                    f(a, "last_error"),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                })
            }
        }
    }

    fn user(&self, cmd: UserCommand) -> anyhow::Result<()> {
        match cmd {
            UserCommand::Add { name, roles } => {
                let r = self
                    .client
                    .post("/v1/users", Some(&json!({ "name": name, "grants": roles })))?;
                self.show(&r, |v| {
                    out!("user {name} added:");
                    users_table(std::slice::from_ref(v));
                    out!("create a key with: stelectl key create {name}");
                    Ok(())
                })
            }
            UserCommand::List => {
                let r = self.client.get("/v1/users")?;
                self.show(&r, |v| {
                    let users = v.as_array().context("expected a list of users")?;
                    if users.is_empty() {
                        out!("no users");
                        return Ok(());
                    }
                    users_table(users);
                    keys_table(users);
                    Ok(())
                })
            }
            UserCommand::Disable { name } => self.toggle(&name, "disable"),
            UserCommand::Enable { name } => self.toggle(&name, "enable"),
            UserCommand::Delete { name } => {
                let r = self
                    .client
                    .delete(&format!("/v1/users/{}", segment(&name)))?;
                self.outcome(&r, &format!("user {name} deleted"))
            }
        }
    }

    fn toggle(&self, name: &str, verb: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .post(&format!("/v1/users/{}/{verb}", segment(name)), None)?;
        self.show(&r, |v| {
            out!("user {name} {verb}d");
            users_table(std::slice::from_ref(v));
            Ok(())
        })
    }

    fn key(&self, cmd: KeyCommand) -> anyhow::Result<()> {
        let mut rotated = None;
        let r = match cmd {
            KeyCommand::Create { user, admin } => {
                let plane = if admin { "admin" } else { "s3" };
                self.client.post(
                    &format!("/v1/users/{}/keys", segment(&user)),
                    Some(&json!({ "plane": plane })),
                )?
            }
            KeyCommand::Rotate { access_key } => {
                let r = self
                    .client
                    .post(&format!("/v1/keys/{}/rotate", segment(&access_key)), None)?;
                rotated = Some(access_key);
                r
            }
            KeyCommand::Revoke { access_key } => {
                let r = self
                    .client
                    .delete(&format!("/v1/keys/{}", segment(&access_key)))?;
                return self.show(&r, |_| {
                    out!("key {access_key} revoked");
                    Ok(())
                });
            }
        };
        self.show(&r, |v| {
            let s = |k: &str| v.get(k).map(text).unwrap_or_default();
            rows(&[
                ("user", s("user")),
                ("plane", s("plane")),
                ("access key", s("access_key")),
                ("secret key", s("secret_key")),
            ]);
            out!("The secret key is shown only this once: store it now.");
            if let Some(old) = rotated {
                out!(
                    "The old key {old} keeps working until it is revoked:\n  \
                     stelectl key revoke {old}"
                );
            }
            Ok(())
        })
    }

    fn bucket(&self, cmd: BucketCommand) -> anyhow::Result<()> {
        match cmd {
            BucketCommand::Create {
                name,
                lock,
                retention,
                mode,
            } => {
                let mode = retention.map(|_| mode.unwrap_or(Mode::Compliance));
                let body = json!({
                    "name": name,
                    "lock": lock || retention.is_some(),
                    "retention_mode": mode.map(Mode::as_str),
                    "retention_days": retention,
                });
                let r = self.client.post("/v1/buckets", Some(&body))?;
                self.show(&r, |_| {
                    match (retention, mode) {
                        (Some(days), Some(mode)) => {
                            let plural = if days == 1 { "" } else { "s" };
                            out!(
                                "bucket {name} created: Object Lock on, \
                                 default retention {} {days} day{plural}",
                                mode.as_str()
                            )
                        }
                        _ if lock => out!("bucket {name} created: Object Lock on"),
                        _ => out!("bucket {name} created"),
                    }
                    Ok(())
                })
            }
            BucketCommand::Expect {
                bucket,
                every,
                none: _,
            } => {
                let path = format!("/v1/buckets/{}/expect", segment(&bucket));
                let r = self.client.put(&path, &json!({ "every_secs": every }))?;
                let what = match every {
                    Some(secs) => {
                        let every = match secs_text(secs) {
                            t if t.ends_with('s') => t,
                            t => format!("{t} ({secs}s)"),
                        };
                        format!(
                            "bucket {bucket}: a new version expected at least every {every}; \
                             an overdue backup raises an alert"
                        )
                    }
                    None => format!("bucket {bucket}: no backup freshness expectation"),
                };
                self.outcome(&r, &what)
            }
        }
    }

    fn policy(&self, cmd: PolicyCommand) -> anyhow::Result<()> {
        match cmd {
            PolicyCommand::Set {
                bucket,
                min_days,
                max_days,
                mut modes,
                below_min,
            } => {
                if let (Some(min), Some(max)) = (min_days, max_days)
                    && min > max
                {
                    bail!("--min-days {min} is above --max-days {max}");
                }
                let mut seen = Vec::new();
                modes.retain(|m| {
                    let first = !seen.contains(m);
                    seen.push(*m);
                    first
                });
                let body = json!({
                    "min_days": min_days,
                    "max_days": max_days,
                    "modes": modes.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                    "below_min": match below_min {
                        BelowMin::Refuse => "refuse",
                        BelowMin::Raise => "raise",
                    },
                });
                let r = self.client.put(&policy_path(&bucket), &body)?;
                self.outcome(&r, &format!("retention policy of {bucket} set"))
            }
            PolicyCommand::Show { bucket } => {
                let r = self.client.get(&policy_path(&bucket))?;
                self.show(&r, |v| {
                    if v.is_null() {
                        out!("bucket {bucket} has no retention policy");
                        return Ok(());
                    }
                    let days = |k: &str| match v.get(k) {
                        Some(Value::Number(n)) => format!("{n}"),
                        _ => "-".into(),
                    };
                    let modes = v
                        .get("modes")
                        .and_then(Value::as_array)
                        .map(|m| m.iter().map(text).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    rows(&[
                        ("bucket", bucket.clone()),
                        ("min days", days("min_days")),
                        ("max days", days("max_days")),
                        ("modes", modes),
                        (
                            "below minimum",
                            v.get("below_min").map(text).unwrap_or_default(),
                        ),
                    ]);
                    Ok(())
                })
            }
            PolicyCommand::Clear { bucket } => {
                let r = self.client.put(&policy_path(&bucket), &Value::Null)?;
                self.outcome(&r, &format!("retention policy of {bucket} removed"))
            }
        }
    }

    fn approvals(&self, cmd: ApprovalsCommand) -> anyhow::Result<()> {
        match cmd {
            ApprovalsCommand::List => {
                let r = self.client.get("/v1/approvals")?;
                self.show(&r, |v| {
                    let list = v.as_array().context("expected a list of approvals")?;
                    if list.is_empty() {
                        out!("no pending approvals");
                        return Ok(());
                    }
                    let f = |a: &Value, k: &str| a.get(k).map(text).unwrap_or_default();
                    let t = |a: &Value, k: &str| a.get(k).map(time).unwrap_or_default();
                    table(
                        &["ID", "REQUESTED BY", "CREATED", "EXPIRES", "OPERATION"],
                        list.iter()
                            .map(|a| {
                                vec![
                                    f(a, "id"),
                                    f(a, "requested_by"),
                                    t(a, "created"),
                                    t(a, "expires"),
                                    f(a, "operation"),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                })
            }
            ApprovalsCommand::Approve { id } => {
                let r = self
                    .client
                    .post(&format!("/v1/approvals/{}/approve", segment(&id)), None)?;
                self.show(&r, |v| {
                    let op = v.get("operation").map(text).unwrap_or_default();
                    out!("approved {id}; carried out: {op}");
                    Ok(())
                })
            }
            ApprovalsCommand::Deny { id } => {
                let r = self
                    .client
                    .post(&format!("/v1/approvals/{}/deny", segment(&id)), None)?;
                self.show(&r, |_| {
                    out!("denied {id}");
                    Ok(())
                })
            }
        }
    }

    /// Prints the body as is with `--json`, else calls `human` with it parsed.
    fn show(
        &self,
        r: &Reply,
        human: impl FnOnce(&Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if self.json {
            print_raw(r);
            if r.is_pending() {
                // stdout stays the server's JSON; the reminder goes to stderr.
                let id = r.json()?.pointer("/approval/id").map(text);
                eprintln!(
                    "pending approval {}: a second administrator must approve it",
                    id.unwrap_or_default()
                );
            }
            return Ok(());
        }
        if r.is_pending() {
            return pending(&r.json()?);
        }
        human(&r.json()?)
    }

    /// For calls that answer `{"status": "done"}` (200) or a pending approval (202).
    fn outcome(&self, r: &Reply, done: &str) -> anyhow::Result<()> {
        self.show(r, |_| {
            out!("{done}");
            Ok(())
        })
    }
}

fn policy_path(bucket: &str) -> String {
    format!("/v1/buckets/{}/retention-policy", segment(bucket))
}

fn sink_path(name: &str) -> String {
    format!("/v1/alerts/sinks/{}", segment(name))
}

fn print_raw(r: &Reply) {
    let t = r.text();
    if !t.is_empty() {
        out!("{}", t.trim_end_matches('\n'));
    }
}

/// A 202: the operation waits for a second administrator.
fn pending(v: &Value) -> anyhow::Result<()> {
    let a = v
        .get("approval")
        .context("HTTP 202 without an approval in the answer")?;
    let f = |k: &str| a.get(k).map(text).unwrap_or_default();
    let id = f("id");
    out!("pending approval {id}");
    rows(&[
        ("operation", f("operation")),
        ("requested by", f("requested_by")),
        ("expires", a.get("expires").map(time).unwrap_or_default()),
    ]);
    out!(
        "The two-person rule is in force: a second administrator must approve it with\n  \
         stelectl approvals approve {id}"
    );
    Ok(())
}

/// A JSON value as a table cell: strings bare, null as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A timestamp (microseconds since the epoch) as ISO 8601.
fn time(v: &Value) -> String {
    match v.as_i64() {
        Some(us) => stele::Timestamp::from_micros(us).to_string(),
        None => text(v),
    }
}

/// Grants in the syntax `--role` takes: `backup-writer:b1,b2 auditor`.
fn grants_text(v: &Value) -> String {
    let list: Vec<String> = v
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    let role = g.get("role").map(text).unwrap_or_default();
                    match g.get("buckets").and_then(Value::as_array) {
                        Some(b) => {
                            let b: Vec<String> = b.iter().map(text).collect();
                            format!("{role}:{}", b.join(","))
                        }
                        None => role,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(" ")
    }
}

fn users_table(users: &[Value]) {
    table(
        &["USER", "STATE", "GRANTS", "GOVERNANCE BYPASS", "KEYS"],
        users
            .iter()
            .map(|u| {
                let keys = u.get("keys").and_then(Value::as_array);
                let active = keys.map_or(0, |k| {
                    k.iter()
                        .filter(|k| k.get("revoked").is_none_or(Value::is_null))
                        .count()
                });
                let total = keys.map_or(0, Vec::len);
                vec![
                    u.get("name").map(text).unwrap_or_default(),
                    if u.get("disabled").and_then(Value::as_bool) == Some(true) {
                        "disabled".into()
                    } else {
                        "enabled".into()
                    },
                    u.get("grants").map(grants_text).unwrap_or_default(),
                    match u.get("governance_bypass") {
                        None | Some(Value::Null) => "-".into(),
                        Some(b) => match b.get("buckets") {
                            Some(Value::Array(list)) => {
                                list.iter().map(text).collect::<Vec<_>>().join(",")
                            }
                            _ => "all buckets".into(),
                        },
                    },
                    if total == active {
                        format!("{active}")
                    } else {
                        format!("{active} ({} revoked)", total - active)
                    },
                ]
            })
            .collect(),
    );
}

fn keys_table(users: &[Value]) {
    let mut lines = Vec::new();
    for u in users {
        let name = u.get("name").map(text).unwrap_or_default();
        for k in u
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            lines.push(vec![
                k.get("access_key").map(text).unwrap_or_default(),
                name.clone(),
                k.get("plane").map(text).unwrap_or_default(),
                k.get("created").map(time).unwrap_or_default(),
                k.get("revoked").map(time).unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    if lines.is_empty() {
        return;
    }
    out!();
    table(
        &["ACCESS KEY", "USER", "PLANE", "CREATED", "REVOKED"],
        lines,
    );
}

fn status(v: &Value) -> anyhow::Result<()> {
    let n = |k: &str| v.get(k).map(text).unwrap_or_else(|| "-".into());
    let in_force = v.get("two_person_rule_in_force").and_then(Value::as_bool);
    let mut lines = vec![
        ("buckets", n("buckets")),
        ("users", n("users")),
        ("pending approvals", n("pending_approvals")),
        (
            "two-person rule",
            match in_force {
                Some(true) => "in force".into(),
                Some(false) => "not in force".into(),
                None => "-".into(),
            },
        ),
    ];
    if let Some(c) = v.get("clock") {
        let behind = c
            .get("behind_wall_micros")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        lines.push((
            "retention clock",
            format!(
                "{} ({}s behind the wall clock)",
                c.get("retention_now").map(time).unwrap_or_default(),
                behind / 1_000_000
            ),
        ));
        let anomalies = c.get("anomalies").and_then(Value::as_u64).unwrap_or(0);
        lines.push((
            "clock anomalies",
            match c.get("last_anomaly").and_then(|a| a.get("at")) {
                Some(at) if anomalies > 0 => format!("{anomalies} (last at {})", time(at)),
                _ => anomalies.to_string(),
            },
        ));
    }
    if let Some(l) = v.get("lifecycle") {
        let b = |k: &str| l.get(k).and_then(Value::as_bool).unwrap_or(false);
        let state = if b("paused") {
            "paused"
        } else if b("running") {
            "running"
        } else {
            "idle"
        };
        let last = l
            .get("last_pass")
            .and_then(|p| p.get("finished"))
            .filter(|f| !f.is_null())
            .map(time)
            .unwrap_or_else(|| "never".into());
        lines.push((
            "lifecycle",
            format!(
                "{state}, {} passes, last finished {last}, every {}s",
                l.get("passes").map(text).unwrap_or_default(),
                l.get("interval_secs").map(text).unwrap_or_default(),
            ),
        ));
    }
    rows(&lines);
    if let Some(disks) = v.get("disks").and_then(Value::as_array) {
        out!();
        let f = |d: &Value, k: &str| d.get(k).map(text).unwrap_or_default();
        table(
            &["DISK", "STATE", "NODE", "SITE", "PATH"],
            disks
                .iter()
                .map(|d| {
                    vec![
                        f(d, "id"),
                        f(d, "state"),
                        f(d, "node"),
                        f(d, "site"),
                        f(d, "path"),
                    ]
                })
                .collect(),
        );
    }
    Ok(())
}

/// A scrub pass's report: its counts, then every version past repair.
fn scrub_report(v: &Value) -> anyhow::Result<()> {
    if v.is_null() {
        out!("the server sent no report");
        return Ok(());
    }
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let unrepairable = v
        .get("unrepairable")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut lines = vec![
        ("versions", n("versions").to_string()),
        ("shards verified", n("shards_verified").to_string()),
        ("corrupt", n("corrupt").to_string()),
        ("missing", n("missing").to_string()),
        ("repaired", n("repaired").to_string()),
        ("unrepairable", unrepairable.len().to_string()),
        ("bytes verified", exact_bytes_text(n("bytes_verified"))),
        ("duration", millis_text(n("duration_ms"))),
        ("finished", v.get("finished").map(time).unwrap_or_default()),
    ];
    if let Some(q) = v
        .get("orphans_quarantined")
        .and_then(Value::as_u64)
        .filter(|q| *q > 0)
    {
        lines.push((
            "orphans",
            format!("{q} unreferenced shard files moved to quarantine/"),
        ));
    }
    if v.get("resumed").and_then(Value::as_bool) == Some(true) {
        lines.push((
            "resumed",
            format!(
                "after an interruption, {} keys done before it",
                n("keys_before_resume")
            ),
        ));
    }
    rows(&lines);
    unrepairable_table(unrepairable);
    Ok(())
}

/// `12 versions, 72 shards verified, ...`: a pass's counts on one line.
fn pass_counts(p: &Value) -> String {
    let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
    let unrepairable = p
        .get("unrepairable")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    format!(
        "{} versions, {} shards verified ({}), {} corrupt, {} missing, {} repaired, \
         {unrepairable} unrepairable",
        n("versions"),
        n("shards_verified"),
        bytes_text(n("bytes_verified")),
        n("corrupt"),
        n("missing"),
        n("repaired"),
    )
}

fn scrub_status(v: &Value) -> anyhow::Result<()> {
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let state = if b("paused") {
        "paused"
    } else if b("running") {
        "running"
    } else {
        "idle"
    };
    let u = |k: &str| v.get(k).and_then(Value::as_u64);
    let mut lines = vec![
        ("state", state.to_owned()),
        ("passes", v.get("passes").map(text).unwrap_or_default()),
        (
            "rate",
            u("rate_bytes_per_sec")
                .map(|r| format!("{}/s", bytes_text(r)))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "interval",
            u("interval_secs")
                .map(|s| format!("every {}", secs_text(s)))
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    if let Some(c) = v.get("current").filter(|c| !c.is_null()) {
        lines.push((
            "current pass",
            format!(
                "started {}, so far {}",
                c.get("started").map(time).unwrap_or_default(),
                pass_counts(c)
            ),
        ));
    }
    let last = v.get("last_pass").filter(|p| !p.is_null());
    lines.push((
        "last pass",
        match last {
            Some(p) => format!(
                "finished {} after {}: {}",
                p.get("finished").map(time).unwrap_or_default(),
                millis_text(p.get("duration_ms").and_then(Value::as_u64).unwrap_or(0)),
                pass_counts(p)
            ),
            None => "never".into(),
        },
    ));
    rows(&lines);
    if let Some(list) = last
        .and_then(|p| p.get("unrepairable"))
        .and_then(Value::as_array)
    {
        unrepairable_table(list);
    }
    Ok(())
}

/// Versions scrub could not rebuild, by name (nothing when there are none).
fn unrepairable_table(list: &[Value]) {
    if list.is_empty() {
        return;
    }
    out!();
    out!("past repair (restore these versions from another copy):");
    let f = |u: &Value, k: &str| u.get(k).map(text).unwrap_or_default();
    table(
        &["BUCKET", "KEY", "VERSION", "STRIPE"],
        list.iter()
            .map(|u| {
                vec![
                    f(u, "bucket"),
                    f(u, "key"),
                    f(u, "version_id"),
                    f(u, "stripe"),
                ]
            })
            .collect(),
    );
}

/// A restore drill's report: its counts, then every version that failed and why.
fn drill_report(v: &Value) -> anyhow::Result<()> {
    if v.is_null() {
        out!("the server sent no report");
        return Ok(());
    }
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let sample = v
        .get("sample")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let bytes: u64 = sample
        .iter()
        .filter_map(|s| s.get("bytes").and_then(Value::as_u64))
        .sum();
    rows(&[
        ("versions", n("versions_total").to_string()),
        ("sampled", sample.len().to_string()),
        ("passed", n("passed").to_string()),
        ("failed", n("failed").to_string()),
        ("bytes read", exact_bytes_text(bytes)),
        ("finished", v.get("finished").map(time).unwrap_or_default()),
    ]);
    failures_table(v);
    Ok(())
}

/// The versions of a drill report that did not read back, and why.
fn failures_table(report: &Value) {
    let failed: Vec<&Value> = report
        .get("sample")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("failure").is_some_and(|f| !f.is_null()))
        .collect();
    if failed.is_empty() {
        return;
    }
    out!();
    let f = |s: &Value, k: &str| s.get(k).map(text).unwrap_or_default();
    table(
        &["BUCKET", "KEY", "VERSION", "FAILURE"],
        failed
            .iter()
            .map(|s| {
                vec![
                    f(s, "bucket"),
                    f(s, "key"),
                    f(s, "version"),
                    f(s, "failure"),
                ]
            })
            .collect(),
    );
}

/// A byte count for people: `512 B`, `3.4 MiB`.
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

/// [`bytes_text`] with the exact count past a KiB: `3.0 MiB (3145728 bytes)`.
fn exact_bytes_text(n: u64) -> String {
    if n < 1024 {
        bytes_text(n)
    } else {
        format!("{} ({n} bytes)", bytes_text(n))
    }
}

/// Seconds in the syntax `--every` takes: the largest unit that divides them.
fn secs_text(s: u64) -> String {
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A duration in milliseconds: `850 ms`, `12.3 s`, `1h 02m 03s`.
fn millis_text(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// `label  value` lines, the values aligned.
fn rows<S: AsRef<str>>(lines: &[(&str, S)]) {
    let w = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, v) in lines {
        out!("{l:<w$}  {}", v.as_ref());
    }
}

/// A table with aligned columns (the last one unpadded).
fn table(headers: &[&str], lines: Vec<Vec<String>>) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let print = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 == w.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<0$}  ", w[i]));
            }
        }
        out!("{}", out.trim_end());
    };
    print(&mut headers.iter().copied());
    for l in &lines {
        print(&mut l.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse() {
        assert_eq!(
            parse_grant("backup-writer"),
            Ok(GrantSpec {
                role: "backup-writer".into(),
                buckets: None
            })
        );
        assert_eq!(
            parse_grant("restore-reader:b1,b2"),
            Ok(GrantSpec {
                role: "restore-reader".into(),
                buckets: Some(vec!["b1".into(), "b2".into()])
            })
        );
        assert!(parse_grant("auditor:").is_err());
        assert!(parse_grant("auditor:a,,b").is_err());
        assert!(parse_grant(":b1").is_err());
    }

    #[test]
    fn days_parse() {
        assert_eq!(parse_days("30d"), Ok(30));
        assert_eq!(parse_days("7D"), Ok(7));
        assert_eq!(parse_days("365"), Ok(365));
        assert!(parse_days("0d").is_err());
        assert!(parse_days("1y").is_err());
        assert!(parse_days("-3").is_err());
        assert!(parse_days("d").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("7D"), Ok(604_800));
        assert_eq!(parse_duration("3600"), Ok(3600));
        for bad in [
            "",
            "h",
            "0",
            "0h",
            "1y",
            "-5m",
            "1.5h",
            "24 h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        for s in [90, 1800, 86_400, 604_800, 3601] {
            assert_eq!(parse_duration(&secs_text(s)), Ok(s));
        }
    }

    #[test]
    fn sizes_and_times_render() {
        assert_eq!(bytes_text(512), "512 B");
        assert_eq!(bytes_text(50_000_000), "47.7 MiB");
        assert_eq!(exact_bytes_text(3 * 1024 * 1024), "3.0 MiB (3145728 bytes)");
        assert_eq!(exact_bytes_text(1000), "1000 B");
        assert_eq!(millis_text(850), "850 ms");
        assert_eq!(millis_text(12_345), "12.3 s");
        assert_eq!(millis_text(3_723_000), "1h 02m 03s");
        assert_eq!(millis_text(61_000), "1m 01s");
    }

    #[test]
    fn grants_render_as_role_args() {
        let v =
            json!([{"role": "admin", "buckets": null}, {"role": "auditor", "buckets": ["a", "b"]}]);
        assert_eq!(grants_text(&v), "admin auditor:a,b");
        assert_eq!(grants_text(&json!([])), "-");
    }

    #[test]
    fn command_line_parses() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct T {
            #[command(flatten)]
            opts: AdminOpts,
            #[command(subcommand)]
            cmd: AdminCommand,
        }
        let t = T::try_parse_from([
            "t",
            "user",
            "add",
            "alice",
            "--role",
            "backup-writer:b1",
            "--role",
            "auditor",
            "--json",
        ])
        .expect("parse");
        assert!(t.opts.json);
        let AdminCommand::User(UserCommand::Add { roles, .. }) = t.cmd else {
            panic!("{:?}", t.cmd)
        };
        assert_eq!(roles.len(), 2);
        assert!(T::try_parse_from(["t", "bucket", "create", "b", "--mode", "GOVERNANCE"]).is_err());
        let t = T::try_parse_from([
            "t",
            "bucket",
            "create",
            "b",
            "--retention",
            "30d",
            "--mode",
            "governance",
        ])
        .expect("parse");
        assert!(matches!(
            t.cmd,
            AdminCommand::Bucket(BucketCommand::Create {
                retention: Some(30),
                mode: Some(Mode::Governance),
                ..
            })
        ));
        assert!(T::try_parse_from(["t", "grant", "alice"]).is_err());
        assert!(T::try_parse_from(["t", "grant", "alice", "--none"]).is_ok());
        assert!(T::try_parse_from(["t", "bypass", "alice", "--bucket", "b", "--revoke"]).is_err());
        let t = T::try_parse_from(["t", "policy", "set", "b", "--min-days", "7"]).expect("parse");
        let AdminCommand::Policy(PolicyCommand::Set {
            modes, below_min, ..
        }) = t.cmd
        else {
            panic!("{:?}", t.cmd)
        };
        assert_eq!(modes, [Mode::Governance, Mode::Compliance]);
        assert_eq!(below_min, BelowMin::Refuse);
        assert!(T::try_parse_from(["t", "two-person-rule", "on"]).is_ok());
        assert!(T::try_parse_from(["t", "two-person-rule", "maybe"]).is_err());
        let t = T::try_parse_from(["t", "bucket", "expect", "b", "--every", "24h"]).expect("parse");
        assert!(matches!(
            t.cmd,
            AdminCommand::Bucket(BucketCommand::Expect {
                every: Some(86_400),
                none: false,
                ..
            })
        ));
        assert!(T::try_parse_from(["t", "bucket", "expect", "b", "--none"]).is_ok());
        assert!(T::try_parse_from(["t", "bucket", "expect", "b"]).is_err());
        assert!(
            T::try_parse_from(["t", "bucket", "expect", "b", "--none", "--every", "1h"]).is_err()
        );
        let t = T::try_parse_from(["t", "scrub", "run", "--wait", "--json"]).expect("parse");
        assert!(t.opts.json);
        assert!(matches!(
            t.cmd,
            AdminCommand::Scrub(ScrubCommand::Run { wait: true })
        ));
        let t =
            T::try_parse_from(["t", "alerts", "sink", "set", "ops", "http://h/x"]).expect("parse");
        assert!(matches!(
            t.cmd,
            AdminCommand::Alerts(AlertsCommand::Sink(SinkCommand::Set { .. }))
        ));
        let t = T::try_parse_from(["t", "disk", "heal", "d3", "--wait"]).expect("parse");
        assert!(matches!(
            t.cmd,
            AdminCommand::Disk(DiskCommand::Heal { wait: true, .. })
        ));
    }
}
