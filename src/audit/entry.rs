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
        let mut m = Map::new();
        m.insert("v".into(), LEAF_FORMAT.into());
        m.insert("seq".into(), seq.into());
        m.insert("prev".into(), prev.into());
        m.insert("ts".into(), iso_micros(self.ts).into());
        m.insert("wall".into(), iso_micros(self.wall).into());
        m.insert("event".into(), self.event.clone().into());
        if let Some(a) = &self.actor {
            let mut actor = Map::new();
            for (k, v) in [("user", &a.user), ("key", &a.key), ("source", &a.source)] {
                if let Some(v) = v {
                    actor.insert(k.into(), v.clone().into());
                }
            }
            if !actor.is_empty() {
                m.insert("actor".into(), actor.into());
            }
            if let Some(id) = &a.request_id {
                m.insert("request_id".into(), id.clone().into());
            }
        }
        let mut target = Map::new();
        for (k, v) in [
            ("bucket", &self.target.bucket),
            ("key", &self.target.key),
            ("version", &self.target.version),
        ] {
            if let Some(v) = v {
                target.insert(k.into(), v.clone().into());
            }
        }
        if !target.is_empty() {
            m.insert("target".into(), target.into());
        }
        match &self.outcome {
            Outcome::Ok => {
                m.insert("outcome".into(), "ok".into());
            }
            Outcome::Refused(reason) => {
                m.insert("outcome".into(), "refused".into());
                m.insert("reason".into(), reason.clone().into());
            }
        }
        if !self.detail.is_empty() {
            m.insert("detail".into(), Value::Object(self.detail.clone()));
        }
        let mut out = Vec::with_capacity(256);
        write_canonical(&Value::Object(m), &mut out);
        out
    }
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

/// `t` as ISO 8601 UTC with microseconds (`2026-12-01T10:00:00.123456Z`).
pub fn iso_micros(t: Timestamp) -> String {
    const ISO: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.micros()) * 1000)
        .ok()
        .and_then(|d| d.format(ISO).ok())
        .unwrap_or_else(|| format!("{}us", t.micros()))
}

/// Writes `v` with every object's keys sorted (by their UTF-16 code units, as RFC 8785
/// sorts them; the same as byte order for the ASCII names the trail uses) and no
/// whitespace, whatever order the map kept them in.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(k.clone()), out);
                out.push(b':');
                if let Some(x) = m.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push(b'}');
        }
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
        other => out.extend(
            serde_json::to_string(other)
                .unwrap_or_default()
                .into_bytes(),
        ),
    }
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
}
