//! How answers are shown: tables, summaries and the units of sizes and times.

use stele_api::Timestamp;
use stele_api::approvals::Operation;
use stele_api::identities::Grant;
use stele_api::workers::{Sampled, Unrepairable};

use super::*;

pub(super) fn policy_path(bucket: &str) -> String {
    format!("/v1/buckets/{}/retention-policy", segment(bucket))
}

pub(super) fn sink_path(name: &str) -> String {
    format!("/v1/alerts/sinks/{}", segment(name))
}

pub(super) fn print_raw(r: &Reply) {
    let t = r.text();
    if !t.is_empty() {
        out!("{}", t.trim_end_matches('\n'));
    }
}

/// A 202: the operation waits for a second administrator.
pub(super) fn pending(o: &Outcome) -> anyhow::Result<()> {
    let a = o
        .approval
        .as_ref()
        .context("HTTP 202 without an approval in the answer")?;
    out!("pending approval {}", a.id);
    rows(&[
        ("operation", operation_text(&a.operation)?),
        ("requested by", a.requested_by.clone()),
        ("expires", time(a.expires)),
    ]);
    out!(
        "The two-person rule is in force: a second administrator must approve it with\n  \
         stelectl approvals approve {}",
        a.id
    );
    Ok(())
}

/// A privileged operation as its compact JSON (`{"DeleteAdmin":{"user":"bob"}}`).
pub(super) fn operation_text(op: &Operation) -> anyhow::Result<String> {
    // How far a resync moves the clock, readable: the approver checks it against the
    // downtime they know of.
    if let Operation::ResyncClock { advance_micros } = op {
        return Ok(format!(
            "advance the retention clock by {} ({advance_micros} µs)",
            secs_text((advance_micros.max(&0) / 1_000_000) as u64)
        ));
    }
    Ok(serde_json::to_string(op)?)
}

/// An optional table cell: `-` when absent.
pub(super) fn opt_text(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

/// Microseconds since the epoch as ISO 8601 in UTC with milliseconds, as S3 and the
/// server write dates (`2030-01-01T00:00:00.000Z`).
fn iso8601(us: i64) -> String {
    const ISO: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(ISO).ok())
        .unwrap_or_else(|| format!("{us}us"))
}

/// A timestamp as ISO 8601.
pub(super) fn time(t: Timestamp) -> String {
    iso8601(t.micros())
}

/// An optional timestamp as ISO 8601, `-` when absent.
pub(super) fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), time)
}

/// Grants in the syntax `--role` takes: `backup-writer:b1,b2 auditor`.
pub(super) fn grants_text(grants: &[Grant]) -> String {
    let list: Vec<String> = grants
        .iter()
        .map(|g| match &g.buckets {
            Some(b) => format!("{}:{}", g.role, b.join(",")),
            None => g.role.clone(),
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(" ")
    }
}

pub(super) fn users_table(users: &[User]) {
    table(
        &["USER", "STATE", "GRANTS", "GOVERNANCE BYPASS", "KEYS"],
        users
            .iter()
            .map(|u| {
                let active = u.keys.iter().filter(|k| k.revoked.is_none()).count();
                let total = u.keys.len();
                vec![
                    u.name.clone(),
                    if u.disabled {
                        "disabled".into()
                    } else {
                        "enabled".into()
                    },
                    grants_text(&u.grants),
                    match &u.governance_bypass {
                        None => "-".into(),
                        Some(b) => match &b.buckets {
                            Some(list) => list.join(","),
                            None => "all buckets".into(),
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

pub(super) fn keys_table(users: &[User]) {
    let mut lines = Vec::new();
    for u in users {
        for k in &u.keys {
            lines.push(vec![
                k.access_key.clone(),
                u.name.clone(),
                k.plane.as_str().to_owned(),
                time(k.created),
                opt_time(k.revoked),
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

pub(super) fn status(v: &Status) -> anyhow::Result<()> {
    let mut lines = vec![
        ("buckets", v.buckets.to_string()),
        ("users", v.users.to_string()),
        ("pending approvals", v.pending_approvals.to_string()),
        (
            "two-person rule",
            if v.two_person_rule_in_force {
                "in force".into()
            } else {
                "not in force".into()
            },
        ),
    ];
    lines.push((
        "TLS",
        match &v.tls {
            None => "off (plain HTTP on both listeners)".into(),
            Some(t) => {
                let on: Vec<&str> = [(t.s3, "S3"), (t.admin, "admin")]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect();
                format!(
                    "on ({}), certificate sha256 {}{}",
                    on.join(" and "),
                    t.fingerprint,
                    if t.self_signed { " (self-signed)" } else { "" }
                )
            }
        },
    ));
    let c = &v.clock;
    lines.push((
        "retention clock",
        format!(
            "{} ({}s behind the wall clock)",
            time(c.retention_now),
            c.behind_wall_micros / 1_000_000
        ),
    ));
    lines.push((
        "clock anomalies",
        match &c.last_anomaly {
            Some(a) if c.anomalies > 0 => format!("{} (last at {})", c.anomalies, time(a.at)),
            _ => c.anomalies.to_string(),
        },
    ));
    let l = &v.lifecycle;
    let state = if l.paused {
        "paused"
    } else if l.running {
        "running"
    } else {
        "idle"
    };
    let last = l
        .last_pass
        .as_ref()
        .and_then(|p| p.finished)
        .map_or_else(|| "never".into(), time);
    lines.push((
        "lifecycle",
        format!(
            "{state}, {} passes, last finished {last}, every {}s",
            l.passes, l.interval_secs,
        ),
    ));
    rows(&lines);
    out!();
    table(
        &["DISK", "STATE", "NODE", "SITE", "PATH"],
        v.disks
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    d.state.as_str().to_owned(),
                    d.node.clone(),
                    d.site.clone(),
                    d.path.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}

/// A scrub pass's report: its counts, then every version past repair.
pub(super) fn scrub_report(v: Option<&ScrubReport>) -> anyhow::Result<()> {
    let Some(v) = v else {
        out!("the server sent no report");
        return Ok(());
    };
    let mut lines = vec![
        ("versions", v.versions.to_string()),
        ("shards verified", v.shards_verified.to_string()),
        ("corrupt", v.corrupt.to_string()),
        ("missing", v.missing.to_string()),
        ("repaired", v.repaired.to_string()),
        ("unrepairable", v.unrepairable.len().to_string()),
        ("bytes verified", exact_bytes_text(v.bytes_verified)),
        ("duration", millis_text(v.duration_ms)),
        ("finished", opt_time(v.finished)),
    ];
    if v.orphans_quarantined > 0 {
        lines.push((
            "orphans",
            format!(
                "{} unreferenced shard files moved to quarantine/",
                v.orphans_quarantined
            ),
        ));
    }
    if v.resumed {
        lines.push((
            "resumed",
            format!(
                "after an interruption, {} keys done before it",
                v.keys_before_resume
            ),
        ));
    }
    rows(&lines);
    unrepairable_table(&v.unrepairable);
    Ok(())
}

/// `12 versions, 72 shards verified, ...`: a pass's counts on one line.
pub(super) fn pass_counts(p: &ScrubReport) -> String {
    format!(
        "{} versions, {} shards verified ({}), {} corrupt, {} missing, {} repaired, \
         {} unrepairable",
        p.versions,
        p.shards_verified,
        bytes_text(p.bytes_verified),
        p.corrupt,
        p.missing,
        p.repaired,
        p.unrepairable.len(),
    )
}

pub(super) fn scrub_status(v: &ScrubStatus) -> anyhow::Result<()> {
    let state = if v.paused {
        "paused"
    } else if v.running {
        "running"
    } else {
        "idle"
    };
    let mut lines = vec![
        ("state", state.to_owned()),
        ("passes", v.passes.to_string()),
        (
            "rate",
            format!("{}/s", bytes_text(u64::from(v.rate_bytes_per_sec))),
        ),
        ("interval", format!("every {}", secs_text(v.interval_secs))),
    ];
    if let Some(c) = &v.current {
        lines.push((
            "current pass",
            format!("started {}, so far {}", opt_time(c.started), pass_counts(c)),
        ));
    }
    lines.push((
        "last pass",
        match &v.last_pass {
            Some(p) => format!(
                "finished {} after {}: {}",
                opt_time(p.finished),
                millis_text(p.duration_ms),
                pass_counts(p)
            ),
            None => "never".into(),
        },
    ));
    rows(&lines);
    if let Some(p) = &v.last_pass {
        unrepairable_table(&p.unrepairable);
    }
    Ok(())
}

/// Versions scrub could not rebuild, by name (nothing when there are none).
pub(super) fn unrepairable_table(list: &[Unrepairable]) {
    if list.is_empty() {
        return;
    }
    out!();
    out!("past repair (restore these versions from another copy):");
    table(
        &["BUCKET", "KEY", "VERSION", "STRIPE"],
        list.iter()
            .map(|u| {
                vec![
                    u.bucket.clone(),
                    u.key.clone(),
                    u.version_id.clone(),
                    u.stripe.to_string(),
                ]
            })
            .collect(),
    );
}

/// A restore drill's report: its counts, then every version that failed and why.
pub(super) fn drill_report(v: Option<&DrillReport>) -> anyhow::Result<()> {
    let Some(v) = v else {
        out!("the server sent no report");
        return Ok(());
    };
    let bytes: u64 = v.sample.iter().map(|s| s.bytes).sum();
    rows(&[
        ("versions", v.versions_total.to_string()),
        ("sampled", v.sample.len().to_string()),
        ("passed", v.passed.to_string()),
        ("failed", v.failed.to_string()),
        ("bytes read", exact_bytes_text(bytes)),
        ("finished", opt_time(v.finished)),
    ]);
    failures_table(v);
    Ok(())
}

/// The versions of a drill report that did not read back, and why.
pub(super) fn failures_table(report: &DrillReport) {
    let failed: Vec<(&Sampled, &str)> = report
        .sample
        .iter()
        .filter_map(|s| s.failure.as_deref().map(|f| (s, f)))
        .collect();
    if failed.is_empty() {
        return;
    }
    out!();
    table(
        &["BUCKET", "KEY", "VERSION", "FAILURE"],
        failed
            .iter()
            .map(|(s, f)| {
                vec![
                    s.bucket.clone(),
                    s.key.clone(),
                    s.version.clone(),
                    (*f).to_owned(),
                ]
            })
            .collect(),
    );
}

/// A byte count for people: `512 B`, `3.4 MiB`.
pub(super) fn bytes_text(n: u64) -> String {
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
pub(super) fn exact_bytes_text(n: u64) -> String {
    if n < 1024 {
        bytes_text(n)
    } else {
        format!("{} ({n} bytes)", bytes_text(n))
    }
}

/// Seconds in the syntax `--every` takes: the largest unit that divides them.
pub(super) fn secs_text(s: u64) -> String {
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A duration in milliseconds: `850 ms`, `12.3 s`, `1h 02m 03s`.
pub(super) fn millis_text(ms: u64) -> String {
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
pub(super) fn rows<S: AsRef<str>>(lines: &[(&str, S)]) {
    let w = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, v) in lines {
        out!("{l:<w$}  {}", v.as_ref());
    }
}

/// A table with aligned columns (the last one unpadded).
pub(super) fn table(headers: &[&str], lines: Vec<Vec<String>>) {
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
