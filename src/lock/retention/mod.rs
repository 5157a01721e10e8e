//! Deciding deletions and changes of retention and legal hold.

use super::policy;
use super::{LockError, Now};
use crate::meta::{
    DefaultRetention, LockRecord, LockRequest, Retention, RetentionMode, RetentionPeriod,
    RetentionPolicy, VersionKind, VersionRecord,
};
use crate::types::Timestamp;

const DAY_MICROS: i64 = 86_400 * 1_000_000;
/// S3's longest retention period.
pub const MAX_DAYS: u32 = 36_500;
/// The same in years, for a default retention given in years.
pub const MAX_YEARS: u32 = 100;

/// The moment `period` after `from`. Years are calendar years (29 February moves to
/// 1 March), so a year is never counted shorter than the calendar says.
pub fn add_period(from: Timestamp, period: RetentionPeriod) -> Timestamp {
    match period {
        RetentionPeriod::Days(d) => from.plus_micros(i64::from(d) * DAY_MICROS),
        RetentionPeriod::Years(y) => add_years(from, y),
    }
}

fn add_years(from: Timestamp, years: u32) -> Timestamp {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(from.micros()) * 1000)
    else {
        return from.plus_micros(i64::from(years) * 366 * DAY_MICROS);
    };
    let year = t.year() + years as i32;
    let moved = t
        .replace_year(year)
        .or_else(|_| {
            // 29 February in a year without one.
            t.replace_day(1)
                .and_then(|t| t.replace_month(time::Month::March))
                .and_then(|t| t.replace_year(year))
        })
        .map(|t| Timestamp::from_micros((t.unix_timestamp_nanos() / 1000) as i64));
    moved.unwrap_or_else(|_| from.plus_micros(i64::from(years) * 366 * DAY_MICROS))
}

/// Checks a period against S3's bounds (1 to 36500 days, 1 to 100 years).
pub fn validate_period(period: RetentionPeriod) -> Result<(), LockError> {
    let ok = match period {
        RetentionPeriod::Days(d) => (1..=MAX_DAYS).contains(&d),
        RetentionPeriod::Years(y) => (1..=MAX_YEARS).contains(&y),
    };
    if ok {
        Ok(())
    } else {
        Err(LockError::InvalidRetentionPeriod)
    }
}

/// The active retention of `lock` at `now`, if any.
fn active(lock: &LockRecord, now: Timestamp) -> Option<Retention> {
    lock.retention.filter(|r| r.until > now)
}

/// Until when the version is protected by retention, if it still is at `now` (legal hold
/// aside).
pub fn protected_until(lock: &LockRecord, now: Timestamp) -> Option<Timestamp> {
    active(lock, now).map(|r| r.until)
}

/// Whether `version` may be removed at `now`. `bypass` is true only when the request asked
/// to bypass governance and its identity holds that permission. Delete markers are never
/// locked. A legal hold blocks removal whatever the retention; COMPLIANCE blocks it until
/// the date for everyone; GOVERNANCE unless bypassed.
pub fn may_remove(
    version: &VersionRecord,
    lock: &LockRecord,
    now: Timestamp,
    bypass: bool,
) -> Result<(), LockError> {
    if version.kind == VersionKind::DeleteMarker {
        return Ok(());
    }
    if lock.legal_hold {
        return Err(LockError::LegalHold);
    }
    match active(lock, now) {
        None => Ok(()),
        Some(Retention {
            mode: RetentionMode::Governance,
            ..
        }) if bypass => Ok(()),
        Some(r) => Err(LockError::RetentionActive {
            mode: r.mode,
            until: r.until,
        }),
    }
}

/// The lock state after a PutObjectRetention asking for `requested` (`None`: remove the
/// retention). Extending is always allowed; shortening or removing GOVERNANCE, or turning
/// it into COMPLIANCE, needs `bypass`; an active COMPLIANCE retention can only be extended
/// and stays COMPLIANCE. A new date must be in the future, and within the bucket's
/// `policy` (measured from the version's `created`).
pub fn change_retention(
    current: &LockRecord,
    requested: Option<Retention>,
    created: Timestamp,
    policy: Option<&RetentionPolicy>,
    clock: Now,
    bypass: bool,
) -> Result<LockRecord, LockError> {
    let now = clock.earliest;
    if let Some(r) = requested {
        if r.until <= clock.wall {
            return Err(LockError::RetainUntilInPast { until: r.until });
        }
        if let Some(p) = policy {
            policy::check(p, r, created)?;
        }
    } else if let Some(min_days) = policy.and_then(|p| p.min_days)
        && add_period(created, RetentionPeriod::Days(min_days)) > now
    {
        // Removing a retention the policy still demands would cut it below the minimum.
        return Err(LockError::PolicyBelowMinimum { min_days });
    }
    let next = LockRecord {
        retention: requested,
        legal_hold: current.legal_hold,
    };
    let Some(cur) = active(current, now) else {
        return Ok(next);
    };
    let extends = requested.is_some_and(|r| r.until >= cur.until);
    match (cur.mode, requested.map(|r| r.mode)) {
        (RetentionMode::Compliance, Some(RetentionMode::Compliance)) if extends => Ok(next),
        (RetentionMode::Compliance, Some(RetentionMode::Governance)) => {
            Err(LockError::CannotChangeMode {
                from: RetentionMode::Compliance,
                to: RetentionMode::Governance,
            })
        }
        (RetentionMode::Compliance, _) => Err(LockError::CannotShorten {
            mode: cur.mode,
            until: cur.until,
        }),
        (RetentionMode::Governance, Some(RetentionMode::Governance)) if extends => Ok(next),
        (RetentionMode::Governance, _) if bypass => Ok(next),
        (RetentionMode::Governance, Some(RetentionMode::Compliance)) => {
            Err(LockError::CannotChangeMode {
                from: RetentionMode::Governance,
                to: RetentionMode::Compliance,
            })
        }
        (RetentionMode::Governance, _) => Err(LockError::CannotShorten {
            mode: cur.mode,
            until: cur.until,
        }),
    }
}

/// The lock state a replica of a version takes when the lock state `incoming` arrives from
/// a peer site for a version whose local state is `local` (rule 22): it protects at least
/// as long and as strongly as either. Retention: the later of the two dates, in COMPLIANCE
/// if either is an active COMPLIANCE retention (one record cannot hold both, so the
/// stronger mode covers the longer date); legal hold: on if either is on, since a hold
/// lifted at the source must be lifted here by someone allowed to. Replication can
/// therefore never shorten or weaken a replica's protection.
pub fn replica_lock(local: &LockRecord, incoming: &LockRecord, now: Timestamp) -> LockRecord {
    let retention = match (local.retention, incoming.retention) {
        (None, r) | (r, None) => r,
        (Some(a), Some(b)) => {
            let compliance = [a, b]
                .iter()
                .any(|r| r.mode == RetentionMode::Compliance && r.until > now);
            Some(Retention {
                mode: if compliance {
                    RetentionMode::Compliance
                } else if a.until >= b.until {
                    a.mode
                } else {
                    b.mode
                },
                until: a.until.max(b.until),
            })
        }
    };
    LockRecord {
        retention,
        legal_hold: local.legal_hold || incoming.legal_hold,
    }
}

/// The lock state after a PutObjectLegalHold. Legal hold is independent of retention and
/// of any bypass: whoever may set it may also lift it.
pub fn set_legal_hold(current: &LockRecord, on: bool) -> LockRecord {
    LockRecord {
        retention: current.retention,
        legal_hold: on,
    }
}

/// The lock state of a new version created at `created`: the request's own retention if
/// it names one, else the bucket's default; then bounded by the bucket's policy (which may
/// raise it to the minimum or refuse it). Periods run from the later of `created` and
/// `clock.latest`.
pub fn initial_lock(
    request: &LockRequest,
    default: Option<&DefaultRetention>,
    policy: Option<&RetentionPolicy>,
    created: Timestamp,
    clock: Now,
) -> Result<LockRecord, LockError> {
    if let Some(r) = request.retention
        && r.until <= clock.wall
    {
        return Err(LockError::RetainUntilInPast { until: r.until });
    }
    let base = created.max(clock.latest);
    let asked = request.retention.or_else(|| {
        default.map(|d| Retention {
            mode: d.mode,
            until: add_period(base, d.period),
        })
    });
    let retention = match policy {
        Some(p) => policy::apply(p, asked, base)?,
        None => asked,
    };
    Ok(LockRecord {
        retention,
        legal_hold: request.legal_hold.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests;
