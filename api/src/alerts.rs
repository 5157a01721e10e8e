//! Alert sinks (`GET /v1/alerts/sinks`, `PUT`/`DELETE /v1/alerts/sinks/{name}`), the
//! delivery queue (`GET /v1/alerts/queue`), test alerts (`POST /v1/alerts/test`: no body,
//! 202) and backup-freshness expectations (`PUT /v1/buckets/{bucket}/expect`: 204).

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A webhook sink, as `GET /v1/alerts/sinks` lists them and `PUT` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sink {
    /// The administrator's name for it; setting a sink of the same name replaces it.
    pub name: String,
    /// Where alerts are POSTed as JSON (`http://` or `https://`).
    pub url: String,
    /// When it was last set (wall clock).
    pub created: Timestamp,
}

/// The body of `PUT /v1/alerts/sinks/{name}`: `{"url": "http://..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSink {
    /// Where alerts go; must start with `http://` or `https://` (else 400).
    pub url: String,
}

/// One alert waiting to reach one sink (`GET /v1/alerts/queue`, oldest first, at most
/// 1000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedAlert {
    /// Time-ordered id (hex digits), so the queue lists oldest first.
    pub id: String,
    /// The name of the sink it is for.
    pub sink: String,
    /// The JSON body POSTed to the sink, as a string:
    /// `{"kind": KIND, "raised": MICROS, "alert": {...}}` (see [`PayloadKind`]).
    pub payload: String,
    /// When the alert was raised (wall clock).
    pub raised: Timestamp,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Not retried before this time (backoff after each failure).
    pub next_attempt: Timestamp,
    /// Why the last delivery failed; `null` if none did.
    pub last_error: Option<String>,
}

/// The part of a [`QueuedAlert::payload`] every alert shares and clients read: its kind.
/// The payload's `alert` object holds the kind's own fields, which depend on the kind
/// and are not typed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadKind {
    /// The alert's kind in kebab-case: `corruption-found`, `repaired`, `unrepairable`,
    /// `disk-offline`, `disk-online`, `disk-full`, `scrub-pass-done`, `drill-failed`,
    /// `worker-pass-failed`, `repair-failing`, `site-unsafe`, `backup-overdue`, `clock-anomaly`, `test`.
    pub kind: String,
}

/// The body of `PUT /v1/buckets/{bucket}/expect`: `{"every_secs": N}` expects a new
/// version in the bucket at least every N seconds (an overdue backup raises an alert);
/// `{"every_secs": null}` removes the expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// The longest gap between new versions, in seconds; `null`: no expectation.
    pub every_secs: Option<u64>,
}
