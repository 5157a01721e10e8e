//! Retention policies: an administrator's bounds on retention in one bucket. Tightening a
//! policy is always allowed; loosening one is privileged (see [`policy_change`]).

use super::LockError;
use super::retention::add_period;
use crate::meta::{BelowMinimum, Retention, RetentionMode, RetentionPeriod, RetentionPolicy};
use crate::types::Timestamp;

/// Checks that a policy is coherent.
pub fn validate(p: &RetentionPolicy) -> Result<(), LockError> {
    let bounds_ok = match (p.min_days, p.max_days) {
        (Some(min), Some(max)) => min <= max,
        _ => true,
    };
    let days_ok = [p.min_days, p.max_days]
        .into_iter()
        .flatten()
        .all(|d| (1..=super::retention::MAX_DAYS).contains(&d));
    if p.modes.is_empty() || !bounds_ok || !days_ok {
        return Err(LockError::InvalidPolicy);
    }
    Ok(())
}

/// The mode a retention raised to the minimum gets: the strongest one allowed.
fn raise_mode(p: &RetentionPolicy) -> RetentionMode {
    p.modes
        .iter()
        .copied()
        .max()
        .unwrap_or(RetentionMode::Compliance)
}

/// Checks an explicit retention of a version created at `created` against the policy.
pub fn check(p: &RetentionPolicy, r: Retention, created: Timestamp) -> Result<(), LockError> {
    if !p.modes.contains(&r.mode) {
        return Err(LockError::PolicyModeNotAllowed { mode: r.mode });
    }
    if let Some(min_days) = p.min_days
        && r.until < add_period(created, RetentionPeriod::Days(min_days))
    {
        return Err(LockError::PolicyBelowMinimum { min_days });
    }
    if let Some(max_days) = p.max_days
        && r.until > add_period(created, RetentionPeriod::Days(max_days))
    {
        return Err(LockError::PolicyAboveMaximum { max_days });
    }
    Ok(())
}

/// The retention a new version created at `created` gets under the policy when it asked
/// for `asked`: unchanged if within bounds; raised to the minimum, or refused, if below.
pub fn apply(
    p: &RetentionPolicy,
    asked: Option<Retention>,
    created: Timestamp,
) -> Result<Option<Retention>, LockError> {
    let Some(min_days) = p.min_days else {
        if let Some(r) = asked {
            check(p, r, created)?;
        }
        return Ok(asked);
    };
    let floor = add_period(created, RetentionPeriod::Days(min_days));
    match asked {
        Some(r) if r.until >= floor => check(p, r, created).map(|()| Some(r)),
        _ if p.below_min == BelowMinimum::Refuse => Err(LockError::PolicyBelowMinimum { min_days }),
        Some(r) => {
            let raised = Retention {
                mode: if p.modes.contains(&r.mode) {
                    r.mode
                } else {
                    raise_mode(p)
                },
                until: floor,
            };
            check(p, raised, created).map(|()| Some(raised))
        }
        None => {
            let raised = Retention {
                mode: raise_mode(p),
                until: floor,
            };
            check(p, raised, created).map(|()| Some(raised))
        }
    }
}

/// Whether replacing a policy keeps or loosens the protection it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyChange {
    /// Every retention the old policy forced or refused, the new one does too.
    Tightens,
    /// Something the old policy forbade becomes possible: privileged.
    Loosens,
}

/// Classifies a policy change. Loosening: a lower or removed minimum, a higher or removed
/// maximum, a newly allowed mode, or removing the policy. Switching between refusing and
/// raising below the minimum is neither: both keep every version at the minimum or more.
pub fn policy_change(old: Option<&RetentionPolicy>, new: Option<&RetentionPolicy>) -> PolicyChange {
    let Some(old) = old else {
        return PolicyChange::Tightens;
    };
    let Some(new) = new else {
        return PolicyChange::Loosens;
    };
    let min_lower = match (old.min_days, new.min_days) {
        (Some(o), Some(n)) => n < o,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let max_higher = match (old.max_days, new.max_days) {
        (Some(o), Some(n)) => n > o,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let mode_added = new.modes.iter().any(|m| !old.modes.contains(m));
    if min_lower || max_higher || mode_added {
        PolicyChange::Loosens
    } else {
        PolicyChange::Tightens
    }
}
