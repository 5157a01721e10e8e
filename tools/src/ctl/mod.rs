//! `stelectl`'s admin commands: users, keys, grants, governance bypass, buckets, retention
//! policies, approvals, the two-person rule and status; scrub, repair, restore drills,
//! alerts, backup freshness expectations and disk heal; replication peers, rules, status
//! and parked entries, each one call (or two) to the node's admin API through
//! [`crate::admin`].
//!
//! Requests are built from, and answers read into, the admin API's wire types
//! ([`stele_api`]), which the server answers with too.
//!
//! Output is a human-readable table or summary by default; with `--json` the server's
//! JSON is printed as is. A failed call prints the server's JSON error on stderr and exits
//! non-zero; a call that waits for a second administrator (HTTP 202) prints the approval
//! id and exits zero. A restore drill with a failed version exits non-zero too.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use serde::de::{DeserializeOwned, IgnoredAny};
use stele_api::alerts::{Expectation, PayloadKind, QueuedAlert, SetSink, Sink};
use stele_api::approvals::{Approval, Approved, Outcome, SetTwoPersonRule};
use stele_api::buckets::{BucketSummary, Geo, GeoChange, NewBucket, Policy, Quota};
use stele_api::identities::{KeyRequest, NewKey, NewUser, Plane, SetBypass, SetGrants, User};
use stele_api::node::Status;
use stele_api::workers::{DrillReport, DrillStatus, RepairStatus, ScrubReport, ScrubStatus};

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

mod alerts;
mod approvals;
mod args;
mod audit;
mod buckets;
mod cluster;
mod identities;
mod render;
mod replication;
mod workers;

pub use args::*;
use render::*;

/// Runs one admin command; any failure is reported on stderr, a failed API call with the
/// server's JSON error as is.
pub fn run(cmd: AdminCommand, opts: AdminOpts) -> ExitCode {
    // Offline: no admin listener, no credential.
    if let AdminCommand::Audit(AuditCommand::Verify {
        exports,
        keys,
        trust,
    }) = cmd
    {
        return audit::verify(&exports, &keys, trust.as_deref());
    }
    if let AdminCommand::Audit(AuditCommand::VerifyReport { dir, keys }) = &cmd {
        return audit::verify_report(dir, keys);
    }
    if let AdminCommand::Audit(AuditCommand::Diff { old, new, keys }) = &cmd {
        return audit::diff(old, new, keys);
    }
    if let AdminCommand::Audit(AuditCommand::VerifyEvents { file, keys }) = &cmd {
        return audit::verify_events(file, keys);
    }
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
        // The line names the code and message of a usual error body: the body itself
        // only when it is something else.
        eprintln!("stelectl: {api}");
        if api.parts().is_some() {
            return;
        }
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
    let trust = crate::tls::from_flags(opts.ca.as_deref(), opts.fingerprint.as_deref())?;
    AdminClient::new(&opts.admin_url, &key, &secret, trust.as_ref())
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
                let r = self.client.put(&path, &SetGrants { grants })?;
                self.show(&r, |v: &User| {
                    out!("grants of {} set:", a.user);
                    users_table(std::slice::from_ref(v));
                    Ok(())
                })
            }
            AdminCommand::Bypass(a) => {
                let buckets = (!a.buckets.is_empty()).then_some(&a.buckets);
                let path = format!("/v1/users/{}/governance-bypass", segment(&a.user));
                let body = SetBypass {
                    allowed: !a.revoke,
                    buckets: buckets.cloned(),
                };
                let r = self.client.put(&path, &body)?;
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
                    &SetTwoPersonRule { enabled },
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
                self.show(&r, |v: &Status| status(v))
            }
            AdminCommand::Scrub(c) => self.scrub(c),
            // Offline, answered in `run` before any connection.
            AdminCommand::Audit(
                AuditCommand::Verify { .. }
                | AuditCommand::VerifyReport { .. }
                | AuditCommand::VerifyEvents { .. }
                | AuditCommand::Diff { .. },
            ) => {
                bail!("this audit command runs offline")
            }
            AdminCommand::Audit(AuditCommand::Report {
                bucket,
                prefix,
                out,
            }) => {
                let r = self.client.post_json(
                    "/v1/reports",
                    &stele_api::audit::ReportRequest { bucket, prefix },
                )?;
                let report: stele_api::audit::Report = r.json()?;
                std::fs::create_dir(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                for (name, text) in [
                    ("attestation.json", &report.attestation),
                    ("attestation.sig", &report.signature),
                    ("rows.csv", &report.rows_csv),
                ] {
                    let path = out.join(name);
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                let rows = report.rows_csv.lines().count().saturating_sub(1);
                eprintln!("report of {rows} versions written to {}", out.display());
                Ok(())
            }
            AdminCommand::Audit(AuditCommand::Export { output }) => {
                let r = self.client.get("/v1/audit/events?format=ndjson")?;
                match output {
                    Some(path) => {
                        std::fs::write(&path, &r.body)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                        let lines = r.body.iter().filter(|b| **b == b'\n').count();
                        eprintln!("{lines} lines written to {}", path.display());
                    }
                    None => print_raw(&r),
                }
                Ok(())
            }
            AdminCommand::Audit(AuditCommand::Events {
                from,
                to,
                bucket,
                key,
                actor,
                event,
                outcome,
                after,
                limit,
                csv,
            }) => {
                // Always a query (a limit given), never the whole export: the answer
                // carries proofs for `verify-events`.
                let limit = Some(limit.unwrap_or(10_000));
                let mut q = vec![format!("format={}", if csv { "csv" } else { "ndjson" })];
                for (name, v) in [
                    ("from", from),
                    ("to", to),
                    ("bucket", bucket),
                    ("key", key),
                    ("actor", actor),
                    ("event", event),
                    ("outcome", outcome),
                    ("after", after.map(|a| a.to_string())),
                    ("limit", limit.map(|l| l.to_string())),
                ] {
                    if let Some(v) = v {
                        q.push(format!("{name}={}", segment(&v)));
                    }
                }
                let r = self
                    .client
                    .get(&format!("/v1/audit/events?{}", q.join("&")))?;
                print_raw(&r);
                if let Some(next) = r.header("x-stele-next") {
                    eprintln!("more events match: ask again with --after {next}");
                }
                Ok(())
            }
            AdminCommand::Audit(AuditCommand::Versions {
                bucket,
                prefix,
                mode,
                expiring_within,
                retain_after,
                legal_hold,
                csv,
            }) => {
                let mut q = vec![
                    format!("bucket={}", segment(&bucket)),
                    format!("format={}", if csv { "csv" } else { "json" }),
                ];
                let before = expiring_within.map(|d| {
                    let t = std::time::SystemTime::now()
                        + std::time::Duration::from_secs(u64::from(d) * 86_400);
                    iso_date(t)
                });
                // Expiring: not expired already.
                let retain_after = retain_after.or_else(|| {
                    before
                        .as_ref()
                        .map(|_| iso_date(std::time::SystemTime::now()))
                });
                for (name, v) in [
                    ("prefix", prefix),
                    ("mode", mode),
                    ("retain_before", before),
                    ("retain_after", retain_after),
                    ("legal_hold", legal_hold.then(|| "true".to_owned())),
                ] {
                    if let Some(v) = v {
                        q.push(format!("{name}={}", segment(&v)));
                    }
                }
                let r = self
                    .client
                    .get(&format!("/v1/retention/versions?{}", q.join("&")))?;
                print_raw(&r);
                Ok(())
            }
            AdminCommand::Audit(AuditCommand::Keys) => {
                let r = self.client.get("/v1/audit/keys")?;
                self.show(&r, |v: &stele_api::audit::Keys| {
                    for k in &v.keys {
                        out!("{k}");
                    }
                    Ok(())
                })
            }
            AdminCommand::Audit(AuditCommand::Checkpoint) => {
                let r = self.client.get("/v1/audit/checkpoints/latest")?;
                self.show(&r, |v: &stele_api::audit::LatestCheckpoint| {
                    out!("{}", v.checkpoint.trim_end_matches('\n'));
                    Ok(())
                })
            }
            AdminCommand::Clock(ClockCommand::Show) => {
                let r = self.client.get("/v1/clock")?;
                self.show(&r, |v: &stele_api::node::ClockStatus| {
                    rows(&[
                        ("retention time", time(v.retention_now)),
                        ("wall clock", time(v.wall_now)),
                        (
                            "behind the wall clock",
                            secs_text((v.behind_wall_micros.max(0) / 1_000_000) as u64),
                        ),
                        ("anomalies", v.anomalies.to_string()),
                        (
                            "a resync may give back",
                            secs_text((v.resync_credit_micros.max(0) / 1_000_000) as u64),
                        ),
                        (
                            "the other members' clocks",
                            match v.peer_offset_micros {
                                None => "not read (one node, or too few members answer)".into(),
                                Some(o) => format!(
                                    "{} s {} this one{}",
                                    o.unsigned_abs() / 1_000_000,
                                    if o < 0 { "behind" } else { "ahead of" },
                                    if v.peer_skewed {
                                        ": skewed, this node takes no write until its clock is set right"
                                    } else {
                                        ""
                                    }
                                ),
                            },
                        ),
                    ]);
                    Ok(())
                })
            }
            AdminCommand::Clock(ClockCommand::Resync { to }) => {
                let body = stele_api::node::ClockResync {
                    to: to.map(stele_api::Timestamp),
                };
                let r = self.client.post_json("/v1/clock/resync", &body)?;
                let target = to.map_or("the wall clock".to_owned(), |t| {
                    time(stele_api::Timestamp(t))
                });
                self.outcome(&r, &format!("retention clock moved forward to {target}"))
            }
            AdminCommand::Site(SiteCommand::Remove { site, yes }) => {
                let path = format!("/v1/cluster/sites/{}", segment(&site));
                let r = if yes {
                    self.client.delete(&path)?
                } else {
                    self.client.get(&path)?
                };
                self.show(&r, |s: &stele_api::cluster::SiteRemoval| {
                    rows(&[
                        ("site", s.site.clone()),
                        ("members", s.nodes.join(", ")),
                        (
                            "to rebuild",
                            format!(
                                "{} shards of {} segments, {}",
                                s.shards,
                                s.segments,
                                exact_bytes_text(s.bytes)
                            ),
                        ),
                    ]);
                    for w in &s.warnings {
                        out!("warning: {w}");
                    }
                    if s.removed {
                        out!(
                            "site {} removed: its members' certificates are refused from now on; \
                             the rebuild is queued on this node (stelectl repair status)",
                            s.site
                        );
                    } else {
                        out!("nothing changed: run again with --yes to remove the site");
                    }
                    Ok(())
                })
            }
            AdminCommand::Repair(RepairCommand::Status) => {
                let r = self.client.get("/v1/repair")?;
                self.show(&r, |v: &RepairStatus| {
                    rows(&[
                        ("queue length", v.queue_length.to_string()),
                        ("handled", v.handled.to_string()),
                        ("shards rebuilt", v.shards_rebuilt.to_string()),
                        (
                            "shards moved back to their site",
                            v.shards_moved.to_string(),
                        ),
                        (
                            "site-unsafe bytes",
                            format!(
                                "{} (acknowledged, would not survive losing one more site)",
                                v.site_unsafe_bytes
                            ),
                        ),
                        ("unrepairable", v.unrepairable.to_string()),
                    ]);
                    Ok(())
                })
            }
            AdminCommand::Drill(c) => self.drill(c),
            AdminCommand::Alerts(c) => self.alerts(c),
            AdminCommand::Replication(c) => self.replication(c),
            AdminCommand::Cluster(c) => self.cluster(c),
            AdminCommand::Disk(DiskCommand::Heal { id, wait }) => {
                let path = format!("/v1/disks/{}/heal", segment(&id));
                if wait {
                    let r = self.client.post_waiting(&format!("{path}?wait=true"))?;
                    self.show(&r, |v: &Option<ScrubReport>| {
                        out!("disk {id} healed; the scrub pass that rebuilt its shards:");
                        scrub_report(v.as_ref())
                    })
                } else {
                    let r = self.client.post(&path)?;
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

    /// Prints the body as is with `--json`, else calls `human` with it read into its wire
    /// type `T`; a 202 is a pending approval (an [`Outcome`]) whatever `T` is.
    fn show<T: DeserializeOwned>(
        &self,
        r: &Reply,
        human: impl FnOnce(&T) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if self.json {
            print_raw(r);
            if r.is_pending() {
                // stdout stays the server's JSON; the reminder goes to stderr.
                let id = r.json::<Outcome>()?.approval.map(|a| a.id);
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

    /// For calls that answer `{"status": "done"}` (200), a pending approval (202), or
    /// nothing worth showing: the body is not read.
    fn outcome(&self, r: &Reply, done: &str) -> anyhow::Result<()> {
        self.show(r, |_: &IgnoredAny| {
            out!("{done}");
            Ok(())
        })
    }
}

/// `t` as the trail writes dates (ISO 8601 UTC with microseconds), so it compares as text.
fn iso_date(t: std::time::SystemTime) -> String {
    let micros = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i128)
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp_nanos(micros * 1000)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
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
    fn sizes_parse() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("2 TiB"), Ok(2 << 40));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("3g"), Ok(3 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("0.5KB"), Ok(500));
        assert!(parse_size("1.2.3GiB").is_err());
        assert!(parse_size(".5GiB").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("99999999999PiB").is_err());
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
        let v: Vec<GrantSpec> = serde_json::from_str(
            r#"[{"role": "admin", "buckets": null}, {"role": "auditor", "buckets": ["a", "b"]}]"#,
        )
        .expect("grants");
        assert_eq!(grants_text(&v), "admin auditor:a,b");
        assert_eq!(grants_text(&[]), "-");
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
    #[test]
    fn replication_command_line_parses() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct T {
            #[command(flatten)]
            opts: AdminOpts,
            #[command(subcommand)]
            cmd: AdminCommand,
        }
        let pin = "ab".repeat(32);
        let add = |extra: &[&str]| {
            let mut args = vec![
                "t",
                "replication",
                "peer",
                "add",
                "b",
                "--endpoint",
                "https://b:9000",
                "--access-key",
                "AK",
                "--secret-key",
                "SK",
            ];
            args.extend_from_slice(extra);
            T::try_parse_from(args)
        };
        let t = add(&["--peer-fingerprint", &pin]).expect("parse");
        let AdminCommand::Replication(ReplicationCommand::Peer(PeerCommand::Add {
            peer_fingerprint,
            peer_ca: None,
            ..
        })) = t.cmd
        else {
            panic!("{:?}", t.cmd)
        };
        assert_eq!(peer_fingerprint.as_deref(), Some(pin.as_str()));
        assert!(add(&["--peer-fingerprint", &pin, "--peer-ca", "ca.pem"]).is_err());
        // The global --fingerprint stays the admin API's.
        let t = add(&["--peer-ca", "ca.pem", "--fingerprint", &pin]).expect("parse");
        assert_eq!(t.opts.fingerprint.as_deref(), Some(pin.as_str()));
        let t = T::try_parse_from([
            "t",
            "replication",
            "rule",
            "set",
            "src",
            "--peer",
            "b",
            "--target-bucket",
            "dr",
        ])
        .expect("parse");
        let AdminCommand::Replication(ReplicationCommand::Rule(RuleCommand::Set {
            id,
            prefix,
            rpo_alert,
            bandwidth,
            delete_markers,
            backfill,
            disabled,
            ..
        })) = t.cmd
        else {
            panic!("{:?}", t.cmd)
        };
        assert_eq!(
            (id.as_str(), prefix.as_str(), rpo_alert),
            ("rule-1", "", 900)
        );
        assert_eq!(bandwidth, None);
        assert!(!delete_markers && !backfill && !disabled);
        let t = T::try_parse_from([
            "t",
            "replication",
            "rule",
            "set",
            "src",
            "--peer",
            "b",
            "--target-bucket",
            "dr",
            "--rpo-alert",
            "1h",
            "--bandwidth",
            "1000000",
        ])
        .expect("parse");
        assert!(matches!(
            t.cmd,
            AdminCommand::Replication(ReplicationCommand::Rule(RuleCommand::Set {
                rpo_alert: 3600,
                bandwidth: Some(1_000_000),
                ..
            }))
        ));
        assert!(
            T::try_parse_from([
                "t",
                "replication",
                "rule",
                "set",
                "src",
                "--peer",
                "b",
                "--target-bucket",
                "dr",
                "--bandwidth",
                "0",
            ])
            .is_err()
        );
        assert!(T::try_parse_from(["t", "replication", "status", "--json"]).is_ok());
        assert!(T::try_parse_from(["t", "replication", "retry", "b"]).is_ok());
    }
}
