//! The admin API's wire types: every JSON request and response body of a Stele node's
//! admin listener (`/health`, `/ready`, `/v1/...`), shared by `stele-server`, which
//! serializes its answers from them, and `stelectl`, which reads them back into them, so a
//! field renamed or retyped on one side fails to compile on the other. Serde only: no
//! engine, no HTTP. One module per noun, mirroring the server's `admin` modules; the
//! error body is in [`errors`]. Times are [`Timestamp`]s (microseconds since the Unix
//! epoch), sizes are bytes, durations say their unit in their name (`interval_secs`,
//! `duration_ms`, `behind_wall_micros`).

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod buckets;
pub mod cluster;
pub mod errors;
pub mod identities;
pub mod node;
pub mod replication;
pub mod workers;

/// An instant: microseconds since the Unix epoch, UTC, written as a bare JSON integer
/// (`1767225600000000` is 2026-01-01T00:00:00Z). Retention decisions and the reports of
/// background passes read the node's retention clock; other times (key creation, alert
/// queue) its wall clock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests;
