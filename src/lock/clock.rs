//! The retention clock: the time every Object Lock decision reads.
//!
//! It is the wall clock, held to two rules:
//! - it never goes backwards, across restarts too: every value it hands out is at most a
//!   high-water mark already synced to the metadata store, and after a restart it resumes
//!   from that mark;
//! - it never advances faster than the node's monotonic time since the last trusted
//!   reading (the mark it resumed from, or the first reading ever). A wall clock that jumps
//!   forward (someone sets the date to 2099 to expire everything) is not followed: the
//!   retention clock keeps counting monotonic time and the jump is reported as an anomaly.
//!
//! The price: time while the node is off is not counted (monotonic time does not run then),
//! so after each restart retention runs behind the wall clock by the downtime. A node may
//! keep data a little longer than asked. Administrators may give that downtime back
//! ([`RetentionClock::resync`], under the two-person rule): never more than the wall clock
//! was ahead of the mark when the node started, never after a wall-clock step while it ran.
//! A wall clock set forward while the node was off is indistinguishable from downtime; the
//! approving administrator checks the target against a time source of their own. See
//! ARCHITECTURE.md.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SharedClock};
use crate::meta::{Meta, MetaError, Record};
use crate::types::Timestamp;

/// A source of monotonic time: microseconds since an arbitrary origin, never decreasing.
pub trait Monotonic: Send + Sync + 'static {
    /// Microseconds since this source's origin; never less than an earlier reading.
    fn micros(&self) -> i64;
}

/// The operating system's monotonic clock.
#[derive(Debug)]
pub struct SystemMonotonic(Instant);

impl Default for SystemMonotonic {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Monotonic for SystemMonotonic {
    fn micros(&self) -> i64 {
        self.0.elapsed().as_micros() as i64
    }
}

impl Monotonic for crate::clock::ManualClock {
    fn micros(&self) -> i64 {
        self.now().micros()
    }
}

/// A wall-clock step larger than this (either way, relative to monotonic time) is an
/// anomaly. NTP slews by far less; it steps only when far off.
const ANOMALY_MICROS: i64 = 120 * 1_000_000;
/// How far the clock may run past its synced high-water mark before the mark is moved:
/// retention decisions lag real time by at most this much.
const PERSIST_STEP_MICROS: i64 = 1_000_000;

const HIGH_WATER_KEY: &str = "clock.retention-high-water";
const ANOMALIES_KEY: &str = "clock.anomalies";
const PEERS_KEY: &str = "clock.peer-offset";
/// A skewed node is vouched for again only within this much of its peers (hysteresis: an
/// offset hovering at the threshold does not flap writes and leadership).
const PEER_CLEAR_MICROS: i64 = 90 * 1_000_000;
/// A first start whose wall clock reads earlier than this (a dead RTC battery) anchors the
/// retention clock here instead, and reports an anomaly.
pub const EARLIEST_PLAUSIBLE: Timestamp = Timestamp::from_secs(1_767_225_600); // 2026-01-01

/// The persisted high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRecord {
    /// No retention time handed out is later than this; a restart resumes from it.
    pub high_water: Timestamp,
}

impl Record for ClockRecord {
    const NAME: &'static str = "clock";
    const FORMAT: u8 = 1;
}

/// A wall-clock jump the retention clock refused to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Retention time when it was seen.
    pub at: Timestamp,
    /// How far the wall clock stepped relative to monotonic time (negative: backwards).
    pub step_micros: i64,
}

/// The anomalies seen so far, kept so a restart does not clear the alarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyRecord {
    /// How many anomalies this node has seen since its first start.
    pub count: u64,
    /// The most recent one.
    pub last: Option<Anomaly>,
}

impl Record for AnomalyRecord {
    const NAME: &'static str = "clock-anomalies";
    const FORMAT: u8 = 1;
}

/// The last judgement of the peers' clocks, kept so that a restart (with a peer down, say)
/// does not forget that this node's clock was found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerClockRecord {
    /// The peers' offset from this node's wall clock (µs, [`peer_offset`]).
    pub offset_micros: i64,
    /// Whether it made this node skewed.
    pub skewed: bool,
}

impl Record for PeerClockRecord {
    const NAME: &'static str = "clock-peers";
    const FORMAT: u8 = 1;
}

/// What the clock reports for health and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockStatus {
    /// Retention time now: what Object Lock decisions read.
    pub retention_now: Timestamp,
    /// The wall clock now.
    pub wall_now: Timestamp,
    /// How far retention time runs behind the wall clock (downtime, refused jumps).
    pub behind_wall_micros: i64,
    /// Anomalies since the node's first start: wall-clock steps not followed, a first
    /// start before [`EARLIEST_PLAUSIBLE`], a restart with the wall clock more than two
    /// minutes behind the high-water mark.
    pub anomalies: u64,
    /// The most recent of them.
    pub last_anomaly: Option<Anomaly>,
    /// Downtime measured at this start and not given back: the most a resync may add (µs).
    pub resync_credit_micros: i64,
    /// In a cluster, how far the other members' wall clocks read from this one's (µs,
    /// positive: they are ahead; [`peer_offset`]), as last measured; `None` on one node
    /// and before a measurement.
    pub peer_offset_micros: Option<i64>,
    /// That offset is beyond two minutes either way: this node's wall clock is not
    /// trusted (it takes no write and makes no once-per-cluster decision, and it does not
    /// stand for leadership) until it is back within them.
    pub peer_skewed: bool,
}

/// One other member's wall clock as this node measured it: its reading minus this
/// node's at the middle of the round trip (µs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReading {
    /// The member's site.
    pub site: String,
    /// Its wall clock minus this node's (µs).
    pub offset_micros: i64,
}

/// How far this node's wall clock is from its peers' (issue 15, item 5: "time from the
/// other sites"): the median offset of the members in other sites than `own_site`, or,
/// with fewer than two of those, of all the other members (a single-site cluster, a
/// remote site down); of two middle values the one
/// nearer zero, so that with two peers one wrong clock does not make the third node look
/// wrong. `None` with fewer than two readings to take it from: one peer alone cannot
/// tell which of two clocks is wrong (with one of three nodes down, the other two each
/// see one peer).
pub fn peer_offset(readings: &[PeerReading], own_site: &str) -> Option<i64> {
    let others: Vec<i64> = readings
        .iter()
        .filter(|r| r.site != own_site)
        .map(|r| r.offset_micros)
        .collect();
    let mut pool = if others.len() < 2 {
        readings.iter().map(|r| r.offset_micros).collect()
    } else {
        others
    };
    if pool.len() < 2 {
        return None;
    }
    pool.sort_unstable();
    let n = pool.len();
    Some(if n % 2 == 1 {
        pool[n / 2]
    } else {
        let (a, b) = (pool[n / 2 - 1], pool[n / 2]);
        if a.abs() <= b.abs() { a } else { b }
    })
}

/// Whether a peer offset ([`peer_offset`]) is beyond what the retention clock tolerates
/// (two minutes, as a wall-clock step).
pub fn peer_skewed(offset_micros: i64) -> bool {
    offset_micros.abs() > ANOMALY_MICROS
}

struct State {
    /// Retention time at the last trusted reading, and monotonic time then.
    anchor: Timestamp,
    anchor_mono: i64,
    /// The largest value handed out; never exceeds `persisted`.
    returned: Timestamp,
    persisted: Timestamp,
    /// Wall minus monotonic-bound at the last reading: a change beyond the threshold is a
    /// step of the wall clock.
    offset: i64,
    anomalies: u64,
    last_anomaly: Option<Anomaly>,
    /// Anomalies counted when the node started: more now means the wall clock stepped
    /// while it ran, and a resync is refused.
    anomalies_at_start: u64,
    /// Downtime measured at this start (the wall clock ahead of the mark) and not given
    /// back: the most a resync may add in this run.
    credit: i64,
    /// The peers' offset as last measured ([`RetentionClock::note_peers`]), kept across
    /// restarts.
    peer_offset: Option<i64>,
    /// Whether it made this node skewed (with hysteresis, so not a function of it).
    peer_skewed: bool,
}

/// Where an administrator's resync (`requested`, or the wall clock when `None`) would
/// move a retention clock reading `retention_now` while the wall clock reads `wall_now`:
/// forward only, never past the wall clock. A resync is how an administrator gives back
/// the downtime the clock did not count (data is then kept as long as asked, not longer);
/// it is privileged (the two-person rule) because moving forward ends retention sooner.
///
/// # Errors
/// [`super::LockError::ResyncBackward`] for a time before `retention_now`;
/// [`super::LockError::ResyncPastWall`] for a time after `wall_now`.
pub fn resync_target(
    retention_now: Timestamp,
    wall_now: Timestamp,
    requested: Option<Timestamp>,
) -> Result<Timestamp, super::LockError> {
    let to = requested.unwrap_or(wall_now);
    if to > wall_now {
        return Err(super::LockError::ResyncPastWall {
            wall_now,
            requested: to,
        });
    }
    if to < retention_now {
        return Err(super::LockError::ResyncBackward {
            retention_now,
            requested: to,
        });
    }
    Ok(to)
}

/// Why a resync of the retention clock did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    /// The rules refused it ([`resync_target`]).
    #[error(transparent)]
    Refused(#[from] super::LockError),
    /// The new high-water mark could not be synced (the clock did not move).
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// The retention clock of one node (see the module): the wall clock, held never to run
/// backwards nor faster than monotonic time, with its high-water mark in the metadata store.
pub struct RetentionClock {
    wall: SharedClock,
    mono: std::sync::Arc<dyn Monotonic>,
    meta: std::sync::Arc<Meta>,
    state: Mutex<State>,
}

impl std::fmt::Debug for RetentionClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetentionClock")
    }
}

impl RetentionClock {
    /// Resumes from the persisted high-water mark, or (first start) trusts the wall clock
    /// once.
    pub fn open(
        meta: std::sync::Arc<Meta>,
        wall: SharedClock,
        mono: std::sync::Arc<dyn Monotonic>,
    ) -> Result<Self, MetaError> {
        let stored = meta
            .node_get(HIGH_WATER_KEY)?
            .map(|b| ClockRecord::decode(&b))
            .transpose()?;
        let w = wall.now();
        let m = mono.micros();
        let mut seen = meta
            .node_get(ANOMALIES_KEY)?
            .map(|b| AnomalyRecord::decode(&b))
            .transpose()?
            .unwrap_or_default();
        let mut found = None;
        // The wall clock ahead of the mark at a start: the downtime a resync may give back
        // in this run (a step while the node was off cannot be told from downtime).
        let mut credit = 0;
        let anchor = match stored {
            Some(r) => {
                if w >= r.high_water {
                    credit = w.micros() - r.high_water.micros();
                    tracing::info!(
                        behind_secs = (w.micros() - r.high_water.micros()) / 1_000_000,
                        "retention clock resumes from its high-water mark, behind the wall clock \
                         by the time the node was down"
                    );
                } else {
                    tracing::warn!(
                        ahead_secs = (r.high_water.micros() - w.micros()) / 1_000_000,
                        "wall clock is behind the retention clock's high-water mark; retention \
                         time holds still until it catches up"
                    );
                    if r.high_water.micros() - w.micros() > ANOMALY_MICROS {
                        found = Some(Anomaly {
                            at: r.high_water,
                            step_micros: w.micros() - r.high_water.micros(),
                        });
                    }
                }
                r.high_water
            }
            None => {
                let first = if w < EARLIEST_PLAUSIBLE {
                    tracing::warn!(wall = %w, "the wall clock reads before 2026 at first start");
                    found = Some(Anomaly {
                        at: EARLIEST_PLAUSIBLE,
                        step_micros: w.micros() - EARLIEST_PLAUSIBLE.micros(),
                    });
                    EARLIEST_PLAUSIBLE
                } else {
                    w
                };
                meta.node_put(
                    HIGH_WATER_KEY,
                    ClockRecord { high_water: first }.encode()?,
                    true,
                )?;
                first
            }
        };
        if let Some(a) = found {
            seen.count += 1;
            seen.last = Some(a);
            meta.node_put(ANOMALIES_KEY, seen.encode()?, true)?;
        }
        let peers = meta
            .node_get(PEERS_KEY)?
            .map(|b| PeerClockRecord::decode(&b))
            .transpose()?;
        Ok(Self {
            wall,
            mono,
            meta,
            state: Mutex::new(State {
                anchor,
                anchor_mono: m,
                returned: anchor,
                persisted: anchor,
                offset: w.micros() - anchor.micros(),
                anomalies: seen.count,
                last_anomaly: seen.last,
                anomalies_at_start: seen.count,
                credit,
                peer_offset: peers.map(|p| p.offset_micros),
                peer_skewed: peers.is_some_and(|p| p.skewed),
            }),
        })
    }

    /// Counts `a` and keeps the count in the metadata store (a restart does not clear
    /// the alarm); a store that refuses is logged, the count in memory stands.
    fn count_anomaly(&self, s: &mut State, a: Anomaly) {
        s.anomalies += 1;
        s.last_anomaly = Some(a);
        let rec = AnomalyRecord {
            count: s.anomalies,
            last: s.last_anomaly,
        };
        if let Err(e) = rec
            .encode()
            .and_then(|b| self.meta.node_put(ANOMALIES_KEY, b, true))
        {
            tracing::error!(error = %e, "cannot persist the clock anomaly");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Retention time now.
    pub fn now(&self) -> Timestamp {
        let mut s = self.lock();
        let w = self.wall.now();
        let bound = s.anchor.plus_micros(self.mono.micros() - s.anchor_mono);
        let offset = w.micros() - bound.micros();
        if (offset - s.offset).abs() > ANOMALY_MICROS {
            let a = Anomaly {
                at: s.returned,
                step_micros: offset - s.offset,
            };
            tracing::warn!(
                step_secs = a.step_micros / 1_000_000,
                "clock anomaly: the wall clock stepped; retention keeps counting monotonic time"
            );
            self.count_anomaly(&mut s, a);
        }
        s.offset = offset;
        let t = w.min(bound).max(s.returned);
        if t.micros() - s.persisted.micros() >= PERSIST_STEP_MICROS {
            let record = ClockRecord { high_water: t };
            match record
                .encode()
                .and_then(|b| self.meta.node_put(HIGH_WATER_KEY, b, true))
            {
                Ok(()) => s.persisted = t,
                Err(e) => tracing::error!(error = %e, "cannot persist the retention clock"),
            }
        }
        // Never hand out a time a restart could fall behind.
        s.returned = t.min(s.persisted).max(s.returned);
        s.returned
    }

    /// The three readings the lock decisions take (see [`super::Now`]).
    pub fn readings(&self) -> super::Now {
        let t = self.now();
        let wall = self.wall.now();
        super::Now {
            earliest: t.min(wall),
            latest: t.max(wall),
            wall,
        }
    }

    /// Moves the clock forward to `requested` (the wall clock when `None`), within
    /// [`resync_target`]'s rules judged now, by no more than the downtime measured at this
    /// start and not yet given back, and not after the wall clock
    /// stepped while the node ran (an anomaly since start); the new reading is synced as
    /// the high-water mark before it is used. Returns the readings before and after.
    ///
    /// # Errors
    /// [`ResyncError::Refused`] by the rules; [`ResyncError::Meta`] if the mark cannot be
    /// synced.
    pub fn resync(
        &self,
        requested: Option<Timestamp>,
    ) -> Result<(Timestamp, Timestamp), ResyncError> {
        let before = self.now();
        let mut s = self.lock();
        let w = self.wall.now();
        let from = before.max(s.returned);
        let to = resync_target(from, w, requested)?;
        let asked = to.micros() - from.micros();
        let stepped = s.anomalies > s.anomalies_at_start;
        // Retention time handed out trails its bound by up to one persist step: a resync
        // to the wall clock may ask that much more than the downtime measured.
        if stepped || asked > s.credit.saturating_add(PERSIST_STEP_MICROS) {
            return Err(super::LockError::ResyncBeyondDowntime {
                credit_micros: s.credit,
                asked_micros: asked,
                stepped,
            }
            .into());
        }
        self.meta.node_put(
            HIGH_WATER_KEY,
            ClockRecord { high_water: to }.encode()?,
            true,
        )?;
        s.credit = (s.credit - asked).max(0);
        s.anchor = to;
        s.anchor_mono = self.mono.micros();
        s.returned = to;
        s.persisted = to;
        s.offset = w.micros() - to.micros();
        Ok((before, to))
    }

    /// Moves the clock forward by `advance_micros` from its reading now; see
    /// [`RetentionClock::resync`].
    ///
    /// # Errors
    /// Those of [`RetentionClock::resync`].
    pub fn resync_by(&self, advance_micros: i64) -> Result<(Timestamp, Timestamp), ResyncError> {
        let now = self.now();
        self.resync(Some(now.plus_micros(advance_micros.max(0))))
    }

    /// Both clocks' readings and the anomalies seen, for health checks and metrics.
    pub fn status(&self) -> ClockStatus {
        let now = self.now();
        let wall_now = self.wall.now();
        let s = self.lock();
        ClockStatus {
            retention_now: now,
            wall_now,
            behind_wall_micros: wall_now.micros() - now.micros(),
            anomalies: s.anomalies,
            last_anomaly: s.last_anomaly,
            resync_credit_micros: s.credit,
            peer_offset_micros: s.peer_offset,
            peer_skewed: s.peer_skewed,
        }
    }

    /// Keeps the peers' offset just measured; `None` (too few readings to judge by) keeps
    /// the last judgement, so that a node judged right or wrong stays so while a peer is
    /// down, and across a restart (the judgement is kept in the metadata store when it
    /// changes). A node is skewed beyond two minutes and vouched for again within 90 s.
    /// Becoming skewed ([`peer_skewed`]) is an anomaly, counted and kept like a step of
    /// the wall clock (its `step_micros` is the offset from the peers, negated: how far
    /// this clock is from theirs). Returns whether this node is skewed now.
    pub fn note_peers(&self, offset: Option<i64>) -> bool {
        let mut s = self.lock();
        let was = s.peer_skewed;
        let Some(offset) = offset else {
            return was;
        };
        s.peer_offset = Some(offset);
        let now = if was {
            offset.abs() > PEER_CLEAR_MICROS
        } else {
            peer_skewed(offset)
        };
        s.peer_skewed = now;
        if now != was {
            let rec = PeerClockRecord {
                offset_micros: offset,
                skewed: now,
            };
            if let Err(e) = rec
                .encode()
                .and_then(|b| self.meta.node_put(PEERS_KEY, b, true))
            {
                tracing::error!(error = %e, "cannot persist the peers' clock judgement");
            }
        }
        if now && !was {
            let a = Anomaly {
                at: s.returned,
                step_micros: -offset,
            };
            tracing::warn!(
                off_secs = a.step_micros / 1_000_000,
                "clock anomaly: this node's wall clock is more than two minutes from the other \
                 members'; it takes no write and does not lead until it is set right"
            );
            self.count_anomaly(&mut s, a);
        } else if was && !now {
            tracing::info!(
                "this node's wall clock is within two minutes of the other members' again"
            );
        }
        now
    }

    /// Whether the peers' clocks last read more than two minutes from this one's (and
    /// not back within 90 s since).
    pub fn peer_skewed(&self) -> bool {
        self.lock().peer_skewed
    }
}

impl Clock for RetentionClock {
    fn now(&self) -> Timestamp {
        RetentionClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    const DAY: i64 = 86_400_000_000;

    struct Rig {
        _dir: tempfile::TempDir,
        meta: Arc<Meta>,
        wall: Arc<ManualClock>,
        mono: Arc<ManualClock>,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Arc::new(Meta::open(dir.path()).expect("meta"));
        Rig {
            _dir: dir,
            meta,
            wall: Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))),
            mono: Arc::new(ManualClock::new(Timestamp(0))),
        }
    }

    fn open(r: &Rig) -> RetentionClock {
        RetentionClock::open(r.meta.clone(), r.wall.clone(), r.mono.clone()).expect("open")
    }

    fn reading(site: &str, secs: i64) -> PeerReading {
        PeerReading {
            site: site.into(),
            offset_micros: secs * 1_000_000,
        }
    }

    /// Other sites' readings count first, else the other members'; the median, and of
    /// two middle values the one nearer zero.
    #[test]
    fn the_peer_offset_is_the_median_of_the_other_sites() {
        assert_eq!(peer_offset(&[], "s1"), None);
        assert_eq!(
            peer_offset(&[reading("s1", 3600)], "s1"),
            None,
            "one peer alone"
        );
        // One other site's reading is too few: every reading counts then.
        let one_remote = [reading("s2", 3600), reading("s1", 0), reading("s1", 1)];
        assert_eq!(peer_offset(&one_remote, "s1"), Some(1_000_000));
        let one_site = [reading("s1", 0), reading("s1", 3600)];
        assert_eq!(peer_offset(&one_site, "s1"), Some(0));
        let both_wrong = [reading("s1", -3600), reading("s1", -3590)];
        assert_eq!(peer_offset(&both_wrong, "s1"), Some(-3_590_000_000));
        let sites = [
            reading("s1", 900),
            reading("s2", 5),
            reading("s3", 7),
            reading("s3", 400),
        ];
        assert_eq!(peer_offset(&sites, "s1"), Some(7_000_000));
        assert!(!peer_skewed(120_000_000) && peer_skewed(-120_000_001));
    }

    /// Becoming skewed is an anomaly, counted once; the judgement survives too few
    /// readings and a restart; it clears only within 90 s (not at 100 s), and never
    /// clears the count.
    #[test]
    fn a_clock_the_peers_do_not_vouch_for_is_an_anomaly_once() {
        let r = rig();
        let c = open(&r);
        assert!(!c.note_peers(Some(-119_000_000)));
        assert!(c.note_peers(Some(-3_600_000_000)));
        assert!(c.note_peers(Some(-3_600_000_000)));
        let st = c.status();
        assert!(st.peer_skewed && st.anomalies == 1, "{st:?}");
        assert_eq!(st.last_anomaly.map(|a| a.step_micros), Some(3_600_000_000));
        assert!(c.note_peers(None), "too few readings keep the judgement");
        drop(c);
        let c = open(&r);
        assert!(c.peer_skewed(), "a restart keeps the judgement");
        assert!(c.note_peers(Some(-100_000_000)), "hysteresis");
        assert!(!c.note_peers(Some(1_000_000)));
        assert!(!c.peer_skewed());
        drop(c);
        let again = open(&r).status();
        assert!(!again.peer_skewed && again.anomalies == 1, "{again:?}");
    }

    #[test]
    fn a_resync_gives_back_the_downtime_forward_only_and_never_past_the_wall() {
        let r = rig();
        let first = open(&r).now();
        // Down two days: the restarted clock resumes two days behind the wall clock.
        r.wall.advance_micros(2 * DAY);
        let c = open(&r);
        assert_eq!(c.now(), first);
        assert_eq!(c.status().behind_wall_micros, 2 * DAY);
        let past = r.wall.now().plus_micros(1);
        assert!(matches!(
            c.resync(Some(past)),
            Err(ResyncError::Refused(
                super::super::LockError::ResyncPastWall { .. }
            ))
        ));
        assert!(matches!(
            c.resync(Some(first.plus_micros(-1))),
            Err(ResyncError::Refused(
                super::super::LockError::ResyncBackward { .. }
            ))
        ));
        assert_eq!(c.now(), first, "a refused resync moves nothing");
        let (before, after) = c.resync(None).expect("resync");
        assert_eq!((before, after), (first, r.wall.now()));
        assert_eq!(c.status().behind_wall_micros, 0);
        // The credit is spent: a second resync has nothing to give back.
        assert_eq!(c.status().resync_credit_micros, 0);
        // It counts on from there, and a restart resumes from the resynced mark.
        r.mono.advance_micros(DAY);
        r.wall.advance_micros(DAY);
        assert_eq!(c.now(), after.plus_micros(DAY));
        drop(c);
        assert!(open(&r).now() >= after);
    }

    #[test]
    fn a_resync_gives_back_no_more_than_the_downtime_and_nothing_after_a_step() {
        let r = rig();
        drop(open(&r));
        r.wall.advance_micros(DAY);
        let c = open(&r);
        assert_eq!(c.status().resync_credit_micros, DAY);
        // While running, the wall clock is set a year forward: an anomaly, no credit.
        r.wall.advance_micros(365 * DAY);
        r.mono.advance_micros(1_000_000);
        assert_eq!(c.status().anomalies, 1);
        assert!(matches!(
            c.resync(None),
            Err(ResyncError::Refused(
                super::super::LockError::ResyncBeyondDowntime { stepped: true, .. }
            ))
        ));
        // After a restart, the downtime counted is the wall clock ahead of the mark, all of
        // it (a forward step while off looks like downtime); but no more than that.
        drop(c);
        let c = open(&r);
        let credit = c.status().resync_credit_micros;
        assert!(credit > 366 * DAY - 10_000_000, "{credit}");
        let now = c.now();
        assert!(matches!(
            c.resync(Some(now.plus_micros(credit + 1))),
            Err(ResyncError::Refused(_))
        ));
        let (_, to) = c
            .resync(Some(now.plus_micros(DAY)))
            .expect("within the credit");
        assert_eq!(to, now.plus_micros(DAY));
        assert_eq!(c.status().resync_credit_micros, credit - DAY);
    }

    proptest::proptest! {
        /// A resync lands between the retention clock and the wall clock, or is refused.
        #[test]
        fn a_resync_never_goes_back_nor_past_the_wall(
            now in 0i64..1_000_000,
            wall in 0i64..1_000_000,
            asked in proptest::option::of(0i64..1_000_000),
        ) {
            let (now, wall) = (Timestamp(now), Timestamp(wall));
            match resync_target(now, wall, asked.map(Timestamp)) {
                Ok(t) => {
                    proptest::prop_assert!(t >= now && t <= wall);
                    proptest::prop_assert_eq!(t, asked.map_or(wall, Timestamp));
                }
                Err(_) => {
                    let t = asked.map_or(wall, Timestamp);
                    proptest::prop_assert!(t < now || t > wall);
                }
            }
        }
    }

    #[test]
    fn follows_the_wall_clock_when_it_agrees_with_monotonic_time() {
        let r = rig();
        let c = open(&r);
        let start = c.now();
        r.wall.advance_micros(DAY);
        r.mono.advance_micros(DAY);
        assert_eq!(c.now(), start.plus_micros(DAY));
        assert_eq!(c.status().anomalies, 0);
    }

    #[test]
    fn a_forward_wall_jump_is_not_followed_and_is_reported() {
        let r = rig();
        let c = open(&r);
        let start = c.now();
        r.wall.advance_micros(100 * 365 * DAY);
        r.mono.advance_micros(10_000_000);
        assert_eq!(c.now(), start.plus_micros(10_000_000));
        let st = c.status();
        assert_eq!(st.anomalies, 1);
        assert!(
            st.last_anomaly
                .is_some_and(|a| a.step_micros > 99 * 365 * DAY)
        );
        // Time keeps counting at the monotonic rate, and the jump is reported once.
        r.wall.advance_micros(DAY);
        r.mono.advance_micros(DAY);
        assert_eq!(c.now(), start.plus_micros(10_000_000 + DAY));
        assert_eq!(c.status().anomalies, 1);
    }

    #[test]
    fn never_goes_backwards_when_the_wall_clock_does() {
        let r = rig();
        let c = open(&r);
        r.wall.advance_micros(DAY);
        r.mono.advance_micros(DAY);
        let before = c.now();
        r.wall.advance_micros(-30 * DAY);
        assert_eq!(c.now(), before);
        assert_eq!(c.status().anomalies, 1);
    }

    #[test]
    fn resumes_from_its_high_water_mark_after_a_restart() {
        let r = rig();
        let first = {
            let c = open(&r);
            r.wall.advance_micros(DAY);
            r.mono.advance_micros(DAY);
            c.now()
        };
        // Down for a year (or someone wound the date forward while it was down): the
        // restarted clock resumes where it stopped, not at the wall clock.
        r.wall.advance_micros(365 * DAY);
        let c = open(&r);
        assert_eq!(c.now(), first);
        r.mono.advance_micros(5_000_000);
        assert_eq!(c.now(), first.plus_micros(5_000_000));
        // And a wall clock set back before the mark cannot take it backwards either; that
        // is an anomaly, which stays reported across later restarts.
        r.wall.set(Timestamp::from_secs(1_000_000_000));
        let c = open(&r);
        assert!(c.now() >= first.plus_micros(5_000_000));
        assert_eq!(c.status().anomalies, 1);
        // Decisions read the earlier of the two clocks: protection ends only when both
        // agree.
        assert_eq!(c.readings().earliest, Timestamp::from_secs(1_000_000_000));
        assert!(c.readings().latest >= first);
        // Kept across restarts; a start that again finds the wall clock behind the mark
        // reports again.
        let c = open(&r);
        assert_eq!(c.status().anomalies, 2);
    }

    #[test]
    fn a_first_start_with_a_dead_rtc_anchors_at_a_plausible_time() {
        let r = rig();
        r.wall.set(Timestamp::from_secs(86_400));
        let c = open(&r);
        assert_eq!(c.now(), EARLIEST_PLAUSIBLE);
        assert_eq!(c.status().anomalies, 1);
        assert_eq!(c.readings().earliest, Timestamp::from_secs(86_400));
    }

    #[test]
    fn hands_out_only_times_already_synced() {
        let r = rig();
        let c = open(&r);
        for _ in 0..50 {
            r.wall.advance_micros(300_000);
            r.mono.advance_micros(300_000);
            let t = c.now();
            let stored = r
                .meta
                .node_get(HIGH_WATER_KEY)
                .expect("get")
                .map(|b| ClockRecord::decode(&b).expect("decode"))
                .expect("mark");
            assert!(t <= stored.high_water);
        }
    }

    #[test]
    fn anomaly_record_of_format_1_decodes() {
        // Count 2, last anomaly at 64 us, a step of -1 us.
        let bytes = [1, 2, 1, 0x80, 0x01, 0x01];
        let rec = AnomalyRecord::decode(&bytes).expect("decode");
        assert_eq!(rec.count, 2);
        assert_eq!(
            rec.last,
            Some(Anomaly {
                at: Timestamp(64),
                step_micros: -1
            })
        );
        assert_eq!(rec.encode().expect("encode"), bytes);
    }

    #[test]
    fn clock_record_of_format_1_decodes() {
        // Format 1 bytes: version byte, then the mark as a zig-zag varint (64 us).
        let rec = ClockRecord::decode(&[1, 0x80, 0x01]).expect("decode");
        assert_eq!(rec.high_water, Timestamp(64));
    }
}
