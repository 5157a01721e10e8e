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

pub use clock::{ClockStatus, Monotonic, RetentionClock, SystemMonotonic};
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
    pub earliest: Timestamp,
    pub latest: Timestamp,
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
    #[error("the version is protected in {} mode until {until}", mode.as_str())]
    RetentionActive {
        mode: RetentionMode,
        until: Timestamp,
    },
    #[error("the version is under legal hold")]
    LegalHold,
    #[error("the {} retention until {until} cannot be shortened or removed", mode.as_str())]
    CannotShorten {
        mode: RetentionMode,
        until: Timestamp,
    },
    #[error("an active {} retention cannot become {}", from.as_str(), to.as_str())]
    CannotChangeMode {
        from: RetentionMode,
        to: RetentionMode,
    },
    #[error("the retain-until date {until} is not in the future")]
    RetainUntilInPast { until: Timestamp },
    #[error("the bucket's retention policy requires at least {min_days} days")]
    PolicyBelowMinimum { min_days: u32 },
    #[error("the bucket's retention policy allows at most {max_days} days")]
    PolicyAboveMaximum { max_days: u32 },
    #[error("the bucket's retention policy does not allow {} mode", mode.as_str())]
    PolicyModeNotAllowed { mode: RetentionMode },
    #[error("the retention period must be 1 to 36500 days or 1 to 100 years")]
    InvalidRetentionPeriod,
    #[error("a retention policy needs min <= max and at least one mode")]
    InvalidPolicy,
}
