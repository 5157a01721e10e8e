//! Property tests of the lock decisions over random sequences of requests.

use proptest::prelude::*;

use super::*;
use crate::checksum::Checksum;
use crate::lock::{Now, PolicyChange, policy_change};

/// The readings a node whose wall clock is off by `skew_days` takes at true time `t`.
fn skewed(t: Timestamp, skew_days: i64) -> Now {
    let wall = t.plus_micros(skew_days * DAY);
    Now {
        earliest: wall.min(t),
        latest: wall.max(t),
        wall,
    }
}
use crate::meta::{BelowMinimum, VersionKind};
use crate::types::VersionId;

const DAY: i64 = 86_400_000_000;
const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

fn version() -> VersionRecord {
    VersionRecord {
        version_id: VersionId([1; 16]),
        created: T0,
        kind: VersionKind::Object,
        size: 1,
        etag: String::new(),
        content_type: None,
        user_meta: Vec::new(),
        checksums: Vec::<Checksum>::new(),
        segments: Vec::new(),
        null_version: false,
        inline: false,
        composite_checksum: false,
        system: crate::meta::SystemMeta::default(),
        blake3: Vec::new(),
        origin: crate::meta::Origin::Client,
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Put a retention (`None`: remove) `days` after now, with or without bypass.
    Retain {
        mode: Option<RetentionMode>,
        days: i64,
        bypass: bool,
        /// How far off the wall clock is (days), either way.
        skew: i64,
    },
    Hold(bool),
    /// Time passes.
    Wait(i64),
    /// Someone tries to delete the version.
    Delete {
        bypass: bool,
        skew: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(None),
        Just(Some(RetentionMode::Governance)),
        Just(Some(RetentionMode::Compliance)),
    ];
    prop_oneof![
        (mode, -5i64..60, any::<bool>(), -100i64..100).prop_map(|(mode, days, bypass, skew)| {
            Op::Retain {
                mode,
                days,
                bypass,
                skew,
            }
        }),
        any::<bool>().prop_map(Op::Hold),
        (0i64..20).prop_map(Op::Wait),
        (any::<bool>(), -100i64..100).prop_map(|(bypass, skew)| Op::Delete { bypass, skew }),
    ]
}

fn lock_state() -> impl Strategy<Value = LockRecord> {
    let mode = prop_oneof![
        Just(RetentionMode::Governance),
        Just(RetentionMode::Compliance)
    ];
    (proptest::option::of((mode, 0i64..60)), any::<bool>()).prop_map(|(r, legal_hold)| LockRecord {
        retention: r.map(|(mode, days)| Retention {
            mode,
            until: T0.plus_micros(days * DAY),
        }),
        legal_hold,
    })
}

fn policy() -> impl Strategy<Value = Option<RetentionPolicy>> {
    prop_oneof![
        Just(None),
        (
            proptest::option::of(1u32..20),
            proptest::option::of(20u32..80),
            any::<bool>()
        )
            .prop_map(|(min_days, max_days, both)| Some(RetentionPolicy {
                min_days,
                max_days,
                modes: if both {
                    vec![RetentionMode::Governance, RetentionMode::Compliance]
                } else {
                    vec![RetentionMode::Compliance]
                },
                below_min: BelowMinimum::Refuse,
            })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the sequence of retention and legal-hold requests (with or without bypass,
    /// under any policy, on a node whose wall clock is off by up to 100 days either way),
    /// the version cannot be removed before the latest COMPLIANCE retain-until date ever
    /// granted, nor while a legal hold is on; and its record keeps a COMPLIANCE retention
    /// at least that long.
    #[test]
    fn compliance_protection_never_ends_early(
        ops in proptest::collection::vec(op(), 1..40),
        policy in policy(),
    ) {
        let v = version();
        let mut lock = LockRecord::default();
        let mut now = T0;
        let mut compliance_until: Option<Timestamp> = None;
        for op in ops {
            match op {
                Op::Retain { mode, days, bypass, skew } => {
                    let requested = mode.map(|mode| Retention {
                        mode,
                        until: now.plus_micros(days * DAY),
                    });
                    if let Ok(next) =
                        change_retention(&lock, requested, v.created, policy.as_ref(), skewed(now, skew), bypass)
                    {
                        lock = next;
                        if let Some(r) = lock.retention
                            && r.mode == RetentionMode::Compliance
                        {
                            compliance_until = compliance_until.max(Some(r.until));
                        }
                    }
                }
                Op::Hold(on) => lock = set_legal_hold(&lock, on),
                Op::Wait(days) => now = now.plus_micros(days * DAY),
                Op::Delete { bypass, skew } => {
                    let allowed = may_remove(&v, &lock, skewed(now, skew).earliest, bypass).is_ok();
                    if let Some(until) = compliance_until && until > now {
                        prop_assert!(!allowed, "removed before {until:?} at {now:?}");
                    }
                    if lock.legal_hold {
                        prop_assert!(!allowed, "removed under legal hold");
                    }
                }
            }
            if let Some(until) = compliance_until && until > now {
                let r = lock.retention;
                prop_assert!(
                    r.is_some_and(|r| r.mode == RetentionMode::Compliance && r.until >= until),
                    "protection {r:?} fell below COMPLIANCE until {until:?}"
                );
                prop_assert!(may_remove(&v, &lock, now, true).is_err());
            }
        }
    }

    /// Rule 22: whatever lock state a peer sends, a replica stays protected at every
    /// moment at least as long as its own state and the incoming one would each protect
    /// it, and never less strongly (a COMPLIANCE date stays COMPLIANCE).
    #[test]
    fn replication_never_weakens_a_replica(
        local in lock_state(),
        incoming in lock_state(),
        at_days in 0i64..40,
        later_days in 0i64..80,
    ) {
        let now = T0.plus_micros(at_days * DAY);
        let merged = replica_lock(&local, &incoming, now);
        let v = version();
        for t in [now, now.plus_micros(later_days * DAY)] {
            for bypass in [false, true] {
                let kept = may_remove(&v, &merged, t, bypass).is_err();
                let local_kept = may_remove(&v, &local, t, bypass).is_err();
                let incoming_kept = may_remove(&v, &incoming, t, bypass).is_err();
                prop_assert!(kept || !(local_kept || incoming_kept), "{merged:?} at {t:?}");
            }
        }
    }

    /// A GOVERNANCE retention only ends early through bypass.
    #[test]
    fn governance_ends_early_only_with_bypass(
        days in 1i64..100,
        req_days in proptest::option::of(-5i64..100),
        mode in prop_oneof![Just(RetentionMode::Governance), Just(RetentionMode::Compliance)],
    ) {
        let lock = LockRecord {
            retention: Some(Retention { mode: RetentionMode::Governance, until: T0.plus_micros(days * DAY) }),
            legal_hold: false,
        };
        prop_assert!(may_remove(&version(), &lock, T0, false).is_err());
        prop_assert!(may_remove(&version(), &lock, T0, true).is_ok());
        let requested = req_days.map(|d| Retention { mode, until: T0.plus_micros(d * DAY) });
        let without = change_retention(&lock, requested, T0, None, Now::at(T0), false);
        let weakens = match requested {
            None => true,
            Some(r) => r.mode == RetentionMode::Compliance || r.until < T0.plus_micros(days * DAY),
        };
        if weakens || requested.is_some_and(|r| r.until <= T0) {
            prop_assert!(without.is_err());
        } else {
            prop_assert!(without.is_ok());
        }
        if requested.is_none_or(|r| r.until > T0) {
            prop_assert!(change_retention(&lock, requested, T0, None, Now::at(T0), true).is_ok());
        }
    }

    /// A policy's minimum holds for every new version, raised or refused.
    #[test]
    fn new_versions_respect_the_policy_minimum(
        min in 1u32..50,
        asked in proptest::option::of(1i64..100),
        raise in any::<bool>(),
    ) {
        let p = RetentionPolicy {
            min_days: Some(min),
            max_days: None,
            modes: vec![RetentionMode::Governance, RetentionMode::Compliance],
            below_min: if raise { BelowMinimum::Raise } else { BelowMinimum::Refuse },
        };
        let request = LockRequest {
            retention: asked.map(|d| Retention { mode: RetentionMode::Governance, until: T0.plus_micros(d * DAY) }),
            legal_hold: None,
        };
        match initial_lock(&request, None, Some(&p), T0, Now::at(T0)) {
            Ok(l) => {
                let r = l.retention.expect("a retention");
                prop_assert!(r.until >= T0.plus_micros(i64::from(min) * DAY));
            }
            Err(e) => {
                prop_assert!(!raise);
                prop_assert_eq!(e, LockError::PolicyBelowMinimum { min_days: min });
            }
        }
    }
}

#[test]
fn compliance_cannot_become_governance_nor_be_removed() {
    let lock = LockRecord {
        retention: Some(Retention {
            mode: RetentionMode::Compliance,
            until: T0.plus_micros(10 * DAY),
        }),
        legal_hold: false,
    };
    let gov = Some(Retention {
        mode: RetentionMode::Governance,
        until: T0.plus_micros(20 * DAY),
    });
    assert!(matches!(
        change_retention(&lock, gov, T0, None, Now::at(T0), true),
        Err(LockError::CannotChangeMode { .. })
    ));
    assert!(matches!(
        change_retention(&lock, None, T0, None, Now::at(T0), true),
        Err(LockError::CannotShorten { .. })
    ));
    // Once the date has passed, the version is free again.
    let later = T0.plus_micros(11 * DAY);
    assert!(may_remove(&version(), &lock, later, false).is_ok());
    assert!(change_retention(&lock, None, T0, None, Now::at(later), false).is_ok());
}

#[test]
fn legal_hold_outlives_retention_and_delete_markers_are_never_locked() {
    let lock = LockRecord {
        retention: Some(Retention {
            mode: RetentionMode::Governance,
            until: T0.plus_micros(DAY),
        }),
        legal_hold: true,
    };
    let later = T0.plus_micros(2 * DAY);
    assert_eq!(
        may_remove(&version(), &lock, later, true),
        Err(LockError::LegalHold)
    );
    let marker = VersionRecord {
        kind: VersionKind::DeleteMarker,
        ..version()
    };
    assert!(may_remove(&marker, &lock, T0, false).is_ok());
}

#[test]
fn default_retention_counts_from_creation_and_explicit_wins() {
    let d = DefaultRetention {
        mode: RetentionMode::Compliance,
        period: RetentionPeriod::Days(3),
    };
    let l = initial_lock(&LockRequest::default(), Some(&d), None, T0, Now::at(T0)).expect("lock");
    assert_eq!(
        l.retention,
        Some(Retention {
            mode: RetentionMode::Compliance,
            until: T0.plus_micros(3 * DAY)
        })
    );
    let explicit = Retention {
        mode: RetentionMode::Governance,
        until: T0.plus_micros(DAY),
    };
    let req = LockRequest {
        retention: Some(explicit),
        legal_hold: Some(true),
    };
    let l = initial_lock(&req, Some(&d), None, T0, Now::at(T0)).expect("lock");
    assert_eq!(l.retention, Some(explicit));
    assert!(l.legal_hold);
    let past = LockRequest {
        retention: Some(Retention {
            mode: RetentionMode::Governance,
            until: T0,
        }),
        legal_hold: None,
    };
    assert!(matches!(
        initial_lock(&past, None, None, T0, Now::at(T0)),
        Err(LockError::RetainUntilInPast { .. })
    ));
}

#[test]
fn years_are_calendar_years() {
    // 2028-02-29T00:00:00Z plus one year: 2029-03-01, never earlier.
    let leap = Timestamp::from_secs(1_835_395_200);
    let next = add_period(leap, RetentionPeriod::Years(1));
    assert_eq!(next, Timestamp::from_secs(1_835_395_200 + 366 * 86_400));
    let t = Timestamp::from_secs(1_800_000_000);
    assert_eq!(
        add_period(t, RetentionPeriod::Years(4)),
        t.plus_micros(1461 * DAY)
    );
}

#[test]
fn policy_changes_are_classified() {
    let p = RetentionPolicy {
        min_days: Some(7),
        max_days: Some(30),
        modes: vec![RetentionMode::Compliance],
        below_min: BelowMinimum::Refuse,
    };
    let tighter = RetentionPolicy {
        min_days: Some(10),
        max_days: Some(20),
        ..p.clone()
    };
    assert_eq!(
        policy_change(Some(&p), Some(&tighter)),
        PolicyChange::Tightens
    );
    assert_eq!(policy_change(None, Some(&p)), PolicyChange::Tightens);
    assert_eq!(policy_change(Some(&p), None), PolicyChange::Loosens);
    for looser in [
        RetentionPolicy {
            min_days: Some(6),
            ..p.clone()
        },
        RetentionPolicy {
            max_days: None,
            ..p.clone()
        },
        RetentionPolicy {
            modes: vec![RetentionMode::Compliance, RetentionMode::Governance],
            ..p.clone()
        },
    ] {
        assert_eq!(
            policy_change(Some(&p), Some(&looser)),
            PolicyChange::Loosens
        );
    }
}
