//! Object Lock: the pure decisions that keep a protected version from being removed or
//! having its protection cut short, and the retention clock they read.
//!
//! Every removal of a version in the engine (DeleteObject by id, DeleteObjects, replacing a
//! null version, lifecycle, and later repair and replication) goes through
//! [`may_remove`]; every change of a version's retention or legal hold goes through
//! [`change_retention`] or [`set_legal_hold`]; every new version's lock state comes from
//! [`initial_lock`]. These functions are pure (state in, decision out) and property-tested;
//! the store applies their answers atomically in the metadata store.
//!
//! - [`retention`]: deletion, retention changes, legal hold, a new version's lock.
//! - [`policy`]: an administrator's per-bucket bounds on retention.
//! - [`clock`]: the retention clock, which never runs backwards nor faster than the node's
//!   monotonic time.

pub mod clock;
pub mod policy;
pub mod retention;

pub use clock::{
    ClockStatus, Monotonic, PeerReading, ResyncError, RetentionClock, SystemMonotonic, peer_offset,
    resync_target,
};
pub use policy::{PolicyChange, policy_change};
pub use retention::{
    add_period, change_retention, initial_lock, may_remove, protected_until, replica_lock,
    set_legal_hold,
};

use crate::meta::RetentionMode;
use crate::types::Timestamp;

/// "Now", as the lock decisions need it. Clocks can be wrong in either direction, so each
/// decision reads the reading that errs on the side of keeping data:
/// - `earliest` (the lower of the wall clock and the retention clock) decides whether a
///   protection has ended: both clocks must agree it has;
/// - `latest` (the higher) is where a new version's retention period starts, so a wall
///   clock set back cannot give new versions a retention that is already over;
/// - `wall` checks that a client's retain-until date is in the future, as the client sees
///   time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Now {
    /// The lower of the wall clock and the retention clock: whether a protection has ended.
    pub earliest: Timestamp,
    /// The higher of the two: where a new version's retention period starts.
    pub latest: Timestamp,
    /// The wall clock: whether a client's retain-until date is in the future.
    pub wall: Timestamp,
}

impl Now {
    /// All three readings equal: for tests and for clocks that agree.
    pub fn at(t: Timestamp) -> Self {
        Self {
            earliest: t,
            latest: t,
            wall: t,
        }
    }
}

/// Why Object Lock refused a request. Refusals of protected versions are their own
/// variants, never strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The version cannot be removed yet: COMPLIANCE retention, or GOVERNANCE without a
    /// permitted bypass (S3: 403 `AccessDenied`).
    #[error("the version is protected in {} mode until {until}", mode.as_str())]
    RetentionActive {
        /// The mode of the retention in force.
        mode: RetentionMode,
        /// When it ends.
        until: Timestamp,
    },
    /// The version is under legal hold, which blocks removal whatever its retention, until
    /// someone lifts the hold (S3: 403 `AccessDenied`).
    #[error("the version is under legal hold")]
    LegalHold,
    /// A retention change would shorten or remove an active retention: never for
    /// COMPLIANCE, only with a permitted bypass for GOVERNANCE (S3: 403 `AccessDenied`).
    #[error("the {} retention until {until} cannot be shortened or removed", mode.as_str())]
    CannotShorten {
        /// The mode of the retention in force.
        mode: RetentionMode,
        /// When it ends: a new date must be this or later.
        until: Timestamp,
    },
    /// A retention change would switch an active retention's mode: COMPLIANCE never
    /// becomes GOVERNANCE, and GOVERNANCE becomes COMPLIANCE only with a permitted bypass
    /// (S3: 403 `AccessDenied`).
    #[error("an active {} retention cannot become {}", from.as_str(), to.as_str())]
    CannotChangeMode {
        /// The mode in force.
        from: RetentionMode,
        /// The mode the request asked for.
        to: RetentionMode,
    },
    /// The retain-until date a request gave is not later than now by the wall clock (S3: 400
    /// `InvalidArgument`, "The retain until date must be in the future!").
    #[error("the retain-until date {until} is not in the future")]
    RetainUntilInPast {
        /// The date the request gave.
        until: Timestamp,
    },
    /// The retention asked for ends before the bucket's policy minimum, or would remove a
    /// retention the minimum still demands (S3: 400 `InvalidRequest`).
    #[error("the bucket's retention policy requires at least {min_days} days")]
    PolicyBelowMinimum {
        /// The policy's minimum, in days from the version's creation.
        min_days: u32,
    },
    /// The retention asked for ends after the bucket's policy maximum (S3: 400
    /// `InvalidRequest`).
    #[error("the bucket's retention policy allows at most {max_days} days")]
    PolicyAboveMaximum {
        /// The policy's maximum, in days from the version's creation.
        max_days: u32,
    },
    /// The retention mode asked for, or a default retention's, is not one the bucket's
    /// policy allows (S3: 400 `InvalidRequest`).
    #[error("the bucket's retention policy does not allow {} mode", mode.as_str())]
    PolicyModeNotAllowed {
        /// The mode the request asked for.
        mode: RetentionMode,
    },
    /// A default retention period outside S3's bounds (S3: 400 `InvalidRetentionPeriod`).
    #[error("the retention period must be 1 to 36500 days or 1 to 100 years")]
    InvalidRetentionPeriod,
    /// A retention policy that is not coherent: a minimum above the maximum, a bound
    /// outside 1 to 36500 days, or no mode allowed (S3: 400 `InvalidArgument`; admin API:
    /// 400 `InvalidPolicy`).
    #[error("a retention policy needs min <= max and at least one mode")]
    InvalidPolicy,
    /// A resync of the retention clock to a time before it: the clock never goes back
    /// (admin API: 400 `ClockResyncRefused`).
    #[error(
        "the retention clock reads {retention_now}; a resync never moves it back to {requested}"
    )]
    ResyncBackward {
        /// The retention clock's reading.
        retention_now: crate::types::Timestamp,
        /// The time asked for.
        requested: crate::types::Timestamp,
    },
    /// A resync of the retention clock by more than the downtime it measured when the node
    /// started (the wall clock ahead of its mark), or after the wall clock stepped while the
    /// node ran: what it would add is not time the node was down (admin API: 400
    /// `ClockResyncRefused`).
    #[error("the retention clock may be given back {credit_micros} µs of downtime, not {asked_micros} µs{}", if *stepped { " (and the wall clock stepped since the node started)" } else { "" })]
    ResyncBeyondDowntime {
        /// The downtime measured and not yet given back, in µs.
        credit_micros: i64,
        /// What the resync would add, in µs.
        asked_micros: i64,
        /// The wall clock stepped (an anomaly) since the node started.
        stepped: bool,
    },
    /// A resync asked while the retention clock is not behind the wall clock (or to where
    /// it already is): nothing to give back (admin API: 400 `ClockResyncRefused`).
    #[error(
        "the retention clock is {behind_micros} µs behind the wall clock: nothing to give back"
    )]
    ResyncNotBehind {
        /// How far it is behind (at most a second: none).
        behind_micros: i64,
    },
    /// A resync of the retention clock past the wall clock (admin API: 400
    /// `ClockResyncRefused`).
    #[error(
        "the wall clock reads {wall_now}; a resync never moves retention time past it to {requested}"
    )]
    ResyncPastWall {
        /// The wall clock's reading.
        wall_now: crate::types::Timestamp,
        /// The time asked for.
        requested: crate::types::Timestamp,
    },
}
