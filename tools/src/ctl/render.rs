//! How answers are shown: tables, summaries and the units of sizes and times.

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
pub(super) fn pending(v: &Value) -> anyhow::Result<()> {
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
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
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

/// A timestamp (microseconds since the epoch) as ISO 8601.
pub(super) fn time(v: &Value) -> String {
    match v.as_i64() {
        Some(us) => iso8601(us),
        None => text(v),
    }
}

/// Grants in the syntax `--role` takes: `backup-writer:b1,b2 auditor`.
pub(super) fn grants_text(v: &Value) -> String {
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

pub(super) fn users_table(users: &[Value]) {
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

pub(super) fn keys_table(users: &[Value]) {
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

pub(super) fn status(v: &Value) -> anyhow::Result<()> {
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
pub(super) fn scrub_report(v: &Value) -> anyhow::Result<()> {
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
pub(super) fn pass_counts(p: &Value) -> String {
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

pub(super) fn scrub_status(v: &Value) -> anyhow::Result<()> {
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
pub(super) fn unrepairable_table(list: &[Value]) {
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
pub(super) fn drill_report(v: &Value) -> anyhow::Result<()> {
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
pub(super) fn failures_table(report: &Value) {
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
