//! Auditors' queries (`../shared/design/audit.md` §5): events of the trail by time,
//! actor, bucket, key, event and outcome, each with its inclusion proof in a checkpoint
//! signed at query time, so an answer can be checked offline without the whole trail
//! (`stele_tlog::verify::verify_events`); versions by retention state come from the
//! report's rows (`audit::report::rows`). Each query is itself an event of the trail.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;

use crate::audit::trail::TrailError;
use crate::audit::{Entry, Requester, Trail, log};
use crate::lock::Now;

/// Which events a query wants. Times compare as text against the leaves' `ts` (ISO 8601
/// UTC, so a date like `2026-11-30` or a full time both work).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventFilter {
    /// Trusted time at or after this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Trusted time before this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The target's bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The target's object key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The actor's user name or access key id (also a key only claimed by a refused
    /// authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The event's name (`version-removed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `ok` or `refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Only events after this sequence number (the previous page's last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

impl EventFilter {
    fn matches(&self, v: &Value) -> bool {
        let text = |path: &[&str]| {
            path.iter()
                .try_fold(v, |v, p| v.get(p))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let eq = |want: &Option<String>, path: &[&str]| {
            want.as_ref()
                .is_none_or(|w| text(path).as_deref() == Some(w.as_str()))
        };
        let ts = text(&["ts"]).unwrap_or_default();
        self.from.as_ref().is_none_or(|f| ts.as_str() >= f.as_str())
            && self.to.as_ref().is_none_or(|t| ts.as_str() < t.as_str())
            && eq(&self.bucket, &["target", "bucket"])
            && eq(&self.key, &["target", "key"])
            && eq(&self.event, &["event"])
            && eq(&self.outcome, &["outcome"])
            && self.actor.as_ref().is_none_or(|a| {
                text(&["actor", "user"]).as_deref() == Some(a.as_str())
                    || text(&["actor", "key"]).as_deref() == Some(a.as_str())
                    // A key claimed by a refused authentication.
                    || text(&["detail", "access_key"]).as_deref() == Some(a.as_str())
            })
    }
}

/// One event of an answer, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenEvent {
    /// Its position in the log.
    pub seq: u64,
    /// The leaf, byte for byte as stored (UTF-8 JSON).
    pub leaf: String,
    /// Its RFC 6962 inclusion proof in the answer's checkpoint, base64 hashes, leaf side
    /// first.
    pub proof: Vec<String>,
}

/// A page of matching events.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, by sequence number.
    pub events: Vec<ProvenEvent>,
    /// The checkpoint (signed note) every proof leads to.
    pub checkpoint: String,
    /// Its size.
    pub size: u64,
    /// The last sequence number looked at when the page is full: ask again with `after`.
    pub next: Option<u64>,
}

impl Trail {
    /// Up to `limit` events matching `f`, with proofs in a checkpoint signed now, after
    /// recording the query itself (by `by`, at `now`), which the answer's checkpoint
    /// covers.
    ///
    /// # Errors
    /// [`TrailError::NoKey`] before the key is set; a metadata read or write.
    pub fn query(
        &self,
        f: &EventFilter,
        limit: usize,
        by: Option<&Requester>,
        now: Now,
    ) -> Result<EventPage, TrailError> {
        self.record(
            Entry::new("audit-queried", now)
                .by(by)
                .with("filter", f)
                .with("limit", limit),
        );
        let (size, checkpoint) = self.checkpoint()?;
        let meta = self.meta();
        let mut events = Vec::new();
        let mut next = None;
        let mut failed = None;
        let from = f.after.map_or(0, |a| a.saturating_add(1));
        log::scan_leaves(meta, from, |seq, leaf| {
            if seq >= size {
                return std::ops::ControlFlow::Break(());
            }
            let Ok(v) = serde_json::from_slice::<Value>(leaf) else {
                return std::ops::ControlFlow::Continue(());
            };
            if !f.matches(&v) {
                return std::ops::ControlFlow::Continue(());
            }
            match log::inclusion_proof(meta, seq, size) {
                Ok(proof) => events.push(ProvenEvent {
                    seq,
                    leaf: String::from_utf8_lossy(leaf).into_owned(),
                    proof: proof.iter().map(|h| B64.encode(h)).collect(),
                }),
                Err(e) => {
                    failed = Some(e);
                    return std::ops::ControlFlow::Break(());
                }
            }
            if events.len() >= limit {
                next = Some(seq);
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(EventPage {
            events,
            checkpoint,
            size,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_matches_by_target_actor_event_outcome_and_time() {
        let leaf: Value = serde_json::from_str(
            r#"{"actor":{"key":"AK","user":"owner"},"event":"version-created","outcome":"ok","seq":6,"target":{"bucket":"qry","key":"a"},"ts":"2026-11-30T02:18:32.000000Z"}"#,
        )
        .expect("json");
        let f = |f: EventFilter| f.matches(&leaf);
        assert!(f(EventFilter::default()));
        assert!(f(EventFilter {
            bucket: Some("qry".into()),
            event: Some("version-created".into()),
            actor: Some("owner".into()),
            ..Default::default()
        }));
        assert!(f(EventFilter {
            actor: Some("AK".into()),
            key: Some("a".into()),
            outcome: Some("ok".into()),
            from: Some("2026-11-30".into()),
            to: Some("2026-12-01".into()),
            ..Default::default()
        }));
        assert!(!f(EventFilter {
            bucket: Some("other".into()),
            ..Default::default()
        }));
        assert!(!f(EventFilter {
            from: Some("2026-12-01".into()),
            ..Default::default()
        }));
        assert!(!f(EventFilter {
            outcome: Some("refused".into()),
            ..Default::default()
        }));
    }
}
