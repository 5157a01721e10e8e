//! `stelectl`'s admin commands: users, keys, grants, governance bypass, buckets, retention
//! policies, approvals, the two-person rule and status, each one call (or two) to the
//! node's admin API through [`crate::admin`].
//!
//! Output is a human-readable table or summary by default; with `--json` the server's
//! JSON is printed as is. A failed call prints the server's JSON error on stderr and exits
//! non-zero; a call that waits for a second administrator (HTTP 202) prints the approval
//! id and exits zero.

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
    }
}
