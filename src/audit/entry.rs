//! An event as the trail records it, and its leaf: one line of canonical JSON (RFC 8785's
//! shape: keys sorted, no whitespace; every number an integer), as
//! `../shared/design/audit.md` §2.1 gives it:
//!
//! ```json
//! {"actor":{"key":"AK…","source":"198.51.100.7:50312","user":"veeam"},"detail":{…},
//!  "event":"version-created","outcome":"ok","prev":"<hex SHA-256 of leaf seq-1>",
//!  "request_id":"…","seq":48211,"target":{"bucket":"b","key":"k","version":"…"},
//!  "ts":"2026-12-01T10:00:00.123456Z","v":1,"wall":"2026-12-01T10:00:00.124001Z"}
//! ```
//!
//! (Shown wrapped; a leaf is one line.) `ts` is the retention clock (the time every Object
//! Lock decision of the change used), `wall` the wall clock; `v` the leaf format
//! ([`LEAF_FORMAT`]). A refusal has `"outcome":"refused"` and its `reason`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::lock::Now;
pub use crate::types::Requester;
use crate::types::Timestamp;

/// The format of the leaves this release writes (`v`). Readers take every leaf as bytes
/// (the chain and the tree never parse them), so a later format changes no check.
pub const LEAF_FORMAT: u64 = 1;

/// What an event is about. Empty fields are left out of the leaf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The bucket.
    pub bucket: Option<String>,
    /// The object key.
    pub key: Option<String>,
    /// The version id (`null` for a null version).
    pub version: Option<String>,
}

/// How the request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused (nothing changed), with the reason the client was given.
    Refused(String),
}

/// One event on its way into the trail: everything but its place (`seq`, `prev`), which
/// the log assigns as it appends.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The event's name, kebab-case (`version-created`, `auth-failed`).
    pub event: String,
    /// Who made the request, when one did.
    pub actor: Option<Requester>,
    /// What it is about.
    pub target: Target,
    /// How it ended.
    pub outcome: Outcome,
    /// The event's own fields.
    pub detail: Map<String, Value>,
    /// The retention clock's time (trusted time).
    pub ts: Timestamp,
    /// The wall clock's time.
    pub wall: Timestamp,
}

impl Entry {
    /// An event named `event` at the readings `now`, done, with no actor, target or detail.
    pub fn new(event: &str, now: Now) -> Self {
        Self {
            event: event.to_owned(),
            actor: None,
            target: Target::default(),
            outcome: Outcome::Ok,
            detail: Map::new(),
            ts: now.earliest,
            wall: now.wall,
        }
    }

    /// The same, made by `actor`.
    pub fn by(mut self, actor: Option<&Requester>) -> Self {
        self.actor = actor.cloned();
        self
    }

    /// The same, about `bucket` (and `key`, `version` when given).
    pub fn on(mut self, bucket: &str, key: Option<&str>, version: Option<String>) -> Self {
        self.target = Target {
            bucket: Some(bucket.to_owned()),
            key: key.map(str::to_owned),
            version,
        };
        self
    }

    /// The same, with the detail field `name` set to `value` (left out if it does not
    /// serialize, which no type of the core does).
    pub fn with(mut self, name: &str, value: impl Serialize) -> Self {
        if let Ok(v) = serde_json::to_value(value) {
            self.detail.insert(name.to_owned(), v);
        }
        self
    }

    /// The same, refused for `reason`.
    pub fn refused(mut self, reason: impl Into<String>) -> Self {
        self.outcome = Outcome::Refused(reason.into());
        self
    }

    /// The leaf of this event at position `seq`, after a leaf whose SHA-256 is `prev`
    /// (hex; [`stele_tlog::verify::FIRST_PREV`] for the first): canonical JSON, one line.
    pub fn leaf(&self, seq: u64, prev: &str) -> Vec<u8> {
        self.render().leaf(seq, prev)
    }

    /// The leaf of this event but for its place in the log ([`Rendered::leaf`] fills in
    /// `seq` and `prev`): made before the metadata write guard is taken, so that under it
    /// an append only splices two fields in and hashes.
    pub fn render(&self) -> Rendered {
        // The envelope's keys are written in their sorted order by hand (no map is built
        // for it); the detail is sorted.
        let mut out = Vec::with_capacity(384);
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            out.push(if first { b'{' } else { b',' });
            first = false;
            write_str(out, k);
            out.push(b':');
        };
        if let Some(a) = &self.actor {
            let fields: Vec<(&str, &String)> =
                [("key", &a.key), ("source", &a.source), ("user", &a.user)]
                    .into_iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
                    .collect();
            if !fields.is_empty() {
                key(&mut out, "actor");
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push(if i == 0 { b'{' } else { b',' });
                    write_str(&mut out, k);
                    out.push(b':');
                    write_str(&mut out, v);
                }
                out.push(b'}');
            }
        }
        if !self.detail.is_empty() {
            key(&mut out, "detail");
            write_map(&self.detail, &mut out);
        }
        key(&mut out, "event");
        write_str(&mut out, &self.event);
        key(&mut out, "outcome");
        match &self.outcome {
            Outcome::Ok => write_str(&mut out, "ok"),
            Outcome::Refused(_) => write_str(&mut out, "refused"),
        }
        key(&mut out, "prev");
        let prev_at = out.len();
        if let Outcome::Refused(reason) = &self.outcome {
            key(&mut out, "reason");
            write_str(&mut out, reason);
        }
        if let Some(id) = self.actor.as_ref().and_then(|a| a.request_id.as_ref()) {
            key(&mut out, "request_id");
            write_str(&mut out, id);
        }
        key(&mut out, "seq");
        let seq_at = out.len();
        let target: Vec<(&str, &String)> = [
            ("bucket", &self.target.bucket),
            ("key", &self.target.key),
            ("version", &self.target.version),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        if !target.is_empty() {
            key(&mut out, "target");
            for (i, (k, v)) in target.iter().enumerate() {
                out.push(if i == 0 { b'{' } else { b',' });
                write_str(&mut out, k);
                out.push(b':');
                write_str(&mut out, v);
            }
            out.push(b'}');
        }
        key(&mut out, "ts");
        write_str(&mut out, &iso_micros(self.ts));
        key(&mut out, "v");
        out.extend(LEAF_FORMAT.to_string().into_bytes());
        key(&mut out, "wall");
        write_str(&mut out, &iso_micros(self.wall));
        out.push(b'}');
        Rendered {
            bytes: out,
            prev_at,
            seq_at,
        }
    }
}

/// A leaf without its place: the canonical JSON of an [`Entry`] with the values of `prev`
/// and `seq` left out, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    bytes: Vec<u8>,
    /// Where `prev`'s value goes (just after `"prev":`).
    prev_at: usize,
    /// Where `seq`'s value goes (just after `"seq":`, after `prev_at`).
    seq_at: usize,
}

impl Rendered {
    /// The leaf at position `seq` after a leaf whose SHA-256 is `prev` (hex): the same
    /// bytes as [`Entry::leaf`].
    pub fn leaf(&self, seq: u64, prev: &str) -> Vec<u8> {
        let b = &self.bytes;
        let mut out = Vec::with_capacity(b.len() + prev.len() + 24);
        out.extend_from_slice(&b[..self.prev_at]);
        write_str(&mut out, prev);
        out.extend_from_slice(&b[self.prev_at..self.seq_at]);
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(&b[self.seq_at..]);
        out
    }
}

/// Writes `s` as a JSON string (serde_json's escaping, the one `write_canonical` uses).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// An access key id a request claimed but did not prove, as the trail records it: kept
/// when it has an access key id's shape (1 to 128 ASCII letters and digits), else
/// `(malformed)` — an unauthenticated client must not write what it likes into a log
/// nobody can clean (a secret pasted in the wrong field, a megabyte of junk).
pub fn claimed_key(key: Option<&str>) -> Option<String> {
    key.map(|k| {
        if (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric()) {
            k.to_owned()
        } else {
            "(malformed)".to_owned()
        }
    })
}

/// A time an auditor gives (`2026-11-30`, or RFC 3339 such as `2026-11-30T10:00:00Z` or
/// with an offset) in the trail's own form ([`iso_micros`]), so it compares as text with
/// the leaves' and rows' dates; `None` for anything else.
pub fn normalize_time(s: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let t = match time::OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .ok()?;
            d.midnight().assume_utc()
        }
    };
    let micros = i64::try_from(t.unix_timestamp_nanos() / 1000).ok()?;
    Some(iso_micros(Timestamp::from_micros(micros)))
}

/// `t` as ISO 8601 UTC with microseconds (`2026-12-01T10:00:00.123456Z`).
pub fn iso_micros(t: Timestamp) -> String {
    // By hand (the civil-from-days algorithm of H. Hinnant, "chrono-Compatible Low-Level
    // Date Algorithms"): leaves are made under the metadata write guard, and this is a
    // few integer steps where a formatting library parses a description each time. Years
    // 0 to 9999 only (what a four-digit year holds); others fall back to the library.
    let us = t.micros();
    let (days, rem) = (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        const ISO: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        return time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
            .ok()
            .and_then(|d| d.format(ISO).ok())
            .unwrap_or_else(|| format!("{us}us"));
    }
    let secs = rem / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000
    )
}

/// Writes `v` with every object's keys sorted (by their UTF-16 code units, as RFC 8785
/// sorts them; the same as byte order for the ASCII names the trail uses) and no
/// whitespace, whatever order the map kept them in.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => write_map(m, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// [`write_canonical`] of an object, by reference (the leaf's detail is written under the
/// metadata write guard: no copy, and no sort when the map keeps its keys sorted already,
/// as serde_json's map does).
fn write_map(m: &Map<String, Value>, out: &mut Vec<u8>) {
    let utf16 = |a: &str, b: &str| a.encode_utf16().cmp(b.encode_utf16());
    let mut keys: Vec<&String> = m.keys().collect();
    if keys.windows(2).any(|w| utf16(w[0], w[1]).is_gt()) {
        keys.sort_by(|a, b| utf16(a, b));
    }
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        if let Some(x) = m.get(k) {
            write_canonical(x, out);
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_is_canonical_json_on_one_line() {
        let t = Timestamp::from_micros(1_764_000_000_123_456);
        let e = Entry::new("version-created", Now::at(t))
            .by(Some(&Requester {
                user: Some("veeam".into()),
                key: Some("AK1".into()),
                source: Some("10.0.0.1:5000".into()),
                request_id: Some("r1".into()),
            }))
            .on("b", Some("k\n\"x\""), Some("v1".into()))
            .with("size", 5u64)
            .with("zeta", serde_json::json!({"b": 1, "a": [2, 1]}));
        let leaf = String::from_utf8(e.leaf(7, "00")).expect("utf-8");
        assert_eq!(
            leaf,
            r#"{"actor":{"key":"AK1","source":"10.0.0.1:5000","user":"veeam"},"detail":{"size":5,"zeta":{"a":[2,1],"b":1}},"event":"version-created","outcome":"ok","prev":"00","request_id":"r1","seq":7,"target":{"bucket":"b","key":"k\n\"x\"","version":"v1"},"ts":"2025-11-24T16:00:00.123456Z","v":1,"wall":"2025-11-24T16:00:00.123456Z"}"#
        );
        let refused = Entry::new("lock-refused", Now::at(t)).refused("retention until …");
        let leaf = String::from_utf8(refused.leaf(0, "00")).expect("utf-8");
        assert!(leaf.contains(r#""outcome":"refused","prev":"00","reason":"retention until …""#));
        assert!(!leaf.contains("actor") && !leaf.contains("target") && !leaf.contains("detail"));
    }

    /// The hand-written envelope is canonical JSON: read back and written canonically, every
    /// leaf is the same bytes (keys sorted, no whitespace, serde_json's escaping).
    /// The hand-made form is the formatting library's, over the whole four-digit range.
    #[test]
    fn iso_micros_is_the_librarys_iso_8601() {
        const ISO: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        let mut us: i64 = -62_167_219_200_000_000; // 0000-01-01
        let end: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999
        let mut step: i64 = 1;
        while us <= end {
            let want = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
                .expect("in range")
                .format(ISO)
                .expect("format");
            assert_eq!(iso_micros(Timestamp::from_micros(us)), want, "{us}");
            us = us.saturating_add(step);
            step = (step * 3 + 7_777_777) % 400_000_000_000_000;
        }
    }

    #[test]
    fn auditors_times_are_read_into_the_trails_form() {
        assert_eq!(
            normalize_time("2026-11-30").as_deref(),
            Some("2026-11-30T00:00:00.000000Z")
        );
        assert_eq!(
            normalize_time("2026-11-30T10:00:00+02:00").as_deref(),
            Some("2026-11-30T08:00:00.000000Z")
        );
        assert_eq!(
            normalize_time("2026-11-30T10:00:00.5Z").as_deref(),
            Some("2026-11-30T10:00:00.500000Z")
        );
        assert_eq!(normalize_time("yesterday"), None);
    }

    #[test]
    fn leaves_are_canonical_whatever_they_hold() {
        let t = Timestamp::from_micros(1_764_000_000_000_001);
        let actors = [
            None,
            Some(Requester::default()),
            Some(Requester {
                user: Some("u\"ser\u{7}é".into()),
                key: None,
                source: Some("::1".into()),
                request_id: None,
            }),
        ];
        for actor in &actors {
            for refused in [false, true] {
                for target in [None, Some(("b", None)), Some(("b", Some("k/\u{2028}")))] {
                    let mut e = Entry::new("ev", Now::at(t)).by(actor.as_ref());
                    if let Some((b, k)) = target {
                        e = e.on(b, k, k.map(|_| "v".to_owned()));
                    }
                    if refused {
                        e = e.refused("no \"way\"\n").with("z", 1).with("a", [3, 2]);
                    }
                    let leaf = e.leaf(42, "ab");
                    let v: Value = serde_json::from_slice(&leaf).expect("json");
                    let mut again = Vec::new();
                    write_canonical(&v, &mut again);
                    assert_eq!(
                        String::from_utf8(again).expect("utf-8"),
                        String::from_utf8(leaf).expect("utf-8")
                    );
                }
            }
        }
    }
}
