//! Writer epochs: which side of a replicated bucket pair may take client writes.
//!
//! Each bucket in a pair keeps a [`WriterEpoch`]: a number that only grows and a
//! [`Role`]. The primary takes client writes and sends; the replica refuses client
//! writes (reads, and lock strengthening by its own administrators, stay allowed) and
//! takes what its primary sends. Every replication request carries the sender's
//! [`SenderEpoch`]. A promotion (`stelectl replication promote`) makes a replica the
//! primary at a higher epoch; an old primary that comes back is answered `StaleEpoch`
//! and turns its own bucket into a replica ([`fence`]): no split brain. What it had
//! committed before it learned keeps travelling, as a fenced sender's tail, and is
//! taken as a union (version ids are unique, locks only join upward): nothing
//! acknowledged is discarded. Design: `sites.md` §4.7 (shared design notes).
//!
//! The transitions are pure functions ([`receive`], [`promote`], [`fence`]), property
//! tested; the applier writes what they return.

use serde::{Deserialize, Serialize};

use crate::meta::Record;
use crate::types::{BucketName, Timestamp};

use super::model::Heartbeat;

/// A bucket's side in a replicated pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Takes client writes; its changes replicate.
    Primary,
    /// Refuses client writes; takes its primary's replicas.
    Replica,
}

impl Role {
    /// `primary` or `replica`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

/// Why a bucket's [`WriterEpoch`] was last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpochReason {
    /// The first replica arrived: the bucket became a replica.
    Paired,
    /// A primary at a higher epoch sent: the replica follows it.
    Followed,
    /// An administrator promoted the replica.
    Promoted,
    /// The peer answered `StaleEpoch`: this old primary turned read-only by itself.
    Fenced,
    /// A primary received from a primary at a higher epoch (a switchover on the other
    /// side): it became a replica.
    Demoted,
}

impl EpochReason {
    /// The reason in lower case, as the admin API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EpochReason::Paired => "paired",
            EpochReason::Followed => "followed",
            EpochReason::Promoted => "promoted",
            EpochReason::Fenced => "fenced",
            EpochReason::Demoted => "demoted",
        }
    }
}

/// What a promoted replica knew of its source when it was promoted: its last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// When the source's last heartbeat arrived here (`None`: never heard from).
    pub last_heard: Option<Timestamp>,
    /// That heartbeat.
    pub heartbeat: Option<Heartbeat>,
    /// When the promotion was applied.
    pub at: Timestamp,
}

impl Promotion {
    /// The RPO the source reported in its last heartbeat, seconds: writes older than that
    /// had all arrived; a lower bound of what may be missing.
    pub fn reported_rpo_secs(&self) -> Option<f64> {
        self.heartbeat.map(|h| h.rpo_secs())
    }

    /// An upper bound of the realized RPO, seconds, if the source stopped within one
    /// heartbeat interval (`interval_secs`) after its last heartbeat was sent: every write
    /// committed at the source before the oldest one it then had pending (or before that
    /// heartbeat, when none was) is here.
    pub fn rpo_bound_secs(&self, interval_secs: f64) -> Option<f64> {
        self.heartbeat.map(|h| {
            let from = h.oldest.unwrap_or(h.sent_at);
            #[allow(clippy::cast_precision_loss)]
            let secs = (h.sent_at.0 - from.0).max(0) as f64 / 1e6;
            secs + interval_secs
        })
    }
}

/// A bucket's writer epoch, under `replication/epoch/<bucket>` in
/// [`crate::meta::Space::Replication`]. A bucket without one is not paired: writable,
/// and at epoch 0 when it sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterEpoch {
    /// The bucket.
    pub bucket: BucketName,
    /// Grows by one at each promotion; never goes down.
    pub epoch: u64,
    /// This bucket's side.
    pub role: Role,
    /// Why it was last written.
    pub reason: EpochReason,
    /// When it was last written.
    pub since: Timestamp,
    /// For a replica: the access key its primary sends with (whose heartbeats tell the
    /// realized RPO at a promotion).
    pub source: Option<String>,
    /// For a promoted bucket: what it knew of its source then.
    pub promotion: Option<Promotion>,
}

impl Record for WriterEpoch {
    const NAME: &'static str = "replication-epoch";
    const FORMAT: u8 = 1;
}

/// The key of a bucket's writer epoch in [`crate::meta::Space::Replication`].
pub fn epoch_key(bucket: &BucketName) -> String {
    format!("replication/epoch/{bucket}")
}

/// What a sender says of its source bucket with each request: the
/// `x-stele-replication-epoch` header, `1 <epoch> primary|replica` (a format number
/// first, so that a later form can be told apart). A request without it is from a
/// sender that predates epochs: epoch 0, primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderEpoch {
    /// The source bucket's epoch.
    pub epoch: u64,
    /// Its role: a replica sends only what it committed before it was fenced (its tail).
    pub role: Role,
}

impl SenderEpoch {
    /// The epoch of a bucket as it sends: its record's, or 0 and primary without one.
    pub fn of(rec: Option<&WriterEpoch>) -> Self {
        rec.map_or(
            SenderEpoch {
                epoch: 0,
                role: Role::Primary,
            },
            |r| SenderEpoch {
                epoch: r.epoch,
                role: r.role,
            },
        )
    }

    /// The header value.
    pub fn header(&self) -> String {
        format!("1 {} {}", self.epoch, self.role.as_str())
    }

    /// Reads a header value; `None` when malformed or of an unknown format.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split_ascii_whitespace();
        if it.next()? != "1" {
            return None;
        }
        let epoch = it.next()?.parse().ok()?;
        let role = match it.next()? {
            "primary" => Role::Primary,
            "replica" => Role::Replica,
            _ => return None,
        };
        it.next().is_none().then_some(SenderEpoch { epoch, role })
    }
}

/// A request from a sender whose epoch is below the one this bucket is written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    /// The epoch here.
    pub current: u64,
}

/// What a receiver does with a request from `sender` given its bucket's epoch: `Ok(None)`
/// to take it as things are, `Ok(Some((epoch, role, reason)))` to take it after writing
/// that state, `Err` to refuse it (nothing written; the sender fences itself).
///
/// A fenced sender (role replica) sends only its tail, taken as a union whatever its
/// epoch. An unpaired bucket becomes a replica, unless it is a source itself
/// (`is_source`: it has rules of its own; both sides sending to each other is not a pair,
/// and neither turns the other read-only: each takes the other's versions as a union). A
/// primary's request at an epoch at least this replica's is followed. A primary gives way
/// only to the epoch just above its own (the other side promoted from its replica): a
/// higher jump is not a promotion of this pair, and is stale like one below.
///
/// # Errors
/// [`Stale`] with the epoch here.
pub fn receive(
    local: Option<&WriterEpoch>,
    sender: SenderEpoch,
    is_source: bool,
) -> Result<Option<(u64, Role, EpochReason)>, Stale> {
    if sender.role == Role::Replica {
        return Ok(None);
    }
    let i = sender.epoch;
    match local {
        None if is_source => Ok(None),
        None => Ok(Some((i, Role::Replica, EpochReason::Paired))),
        Some(l) => match l.role {
            Role::Replica if i == l.epoch => Ok(None),
            Role::Replica if i > l.epoch => Ok(Some((i, Role::Replica, EpochReason::Followed))),
            Role::Primary if Some(i) == l.epoch.checked_add(1) => {
                Ok(Some((i, Role::Replica, EpochReason::Demoted)))
            }
            _ => Err(Stale { current: l.epoch }),
        },
    }
}

/// Why a bucket cannot be promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteRefusal {
    /// No replica has arrived: the bucket is not part of a pair.
    NotPaired,
    /// The bucket is the primary already.
    AlreadyPrimary {
        /// Its epoch.
        epoch: u64,
    },
    /// The epoch cannot grow further (it was driven to the top by a peer).
    Exhausted,
}

/// The epoch a replica takes when promoted: one above its own.
///
/// # Errors
/// [`PromoteRefusal`]: not paired, or the primary already.
pub fn promote(local: Option<&WriterEpoch>) -> Result<u64, PromoteRefusal> {
    match local {
        None => Err(PromoteRefusal::NotPaired),
        Some(l) if l.role == Role::Primary => {
            Err(PromoteRefusal::AlreadyPrimary { epoch: l.epoch })
        }
        Some(l) => l.epoch.checked_add(1).ok_or(PromoteRefusal::Exhausted),
    }
}

/// The state a sender's bucket takes when its peer answered `StaleEpoch` with `current`:
/// a replica at the higher of the two epochs (`None`: nothing to change, it is a replica
/// already at `current` or above).
pub fn fence(local: Option<&WriterEpoch>, current: u64) -> Option<u64> {
    match local {
        Some(l) if l.role == Role::Replica && l.epoch >= current => None,
        Some(l) => Some(l.epoch.max(current)),
        None => Some(current),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rec(epoch: u64, role: Role) -> WriterEpoch {
        WriterEpoch {
            bucket: BucketName::new("bkt").expect("name"),
            epoch,
            role,
            reason: EpochReason::Paired,
            since: Timestamp(0),
            source: None,
            promotion: None,
        }
    }

    /// Applies a receiver's or a fence's answer to a side.
    fn set(side: &mut Option<WriterEpoch>, epoch: u64, role: Role) {
        *side = Some(rec(epoch, role));
    }

    /// One side sends to the other; a stale answer fences the sender. Whether the
    /// request was taken.
    fn exchange(from: &mut Option<WriterEpoch>, to: &mut Option<WriterEpoch>) -> bool {
        match receive(to.as_ref(), SenderEpoch::of(from.as_ref()), false) {
            Ok(Some((e, r, _))) => {
                set(to, e, r);
                true
            }
            Ok(None) => true,
            Err(Stale { current }) => {
                if let Some(e) = fence(from.as_ref(), current) {
                    set(from, e, Role::Replica);
                }
                false
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        PromoteA,
        PromoteB,
        AToB,
        BToA,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::PromoteA),
            Just(Step::PromoteB),
            Just(Step::AToB),
            Just(Step::BToA)
        ]
    }

    fn epoch(s: &Option<WriterEpoch>) -> u64 {
        s.as_ref().map_or(0, |r| r.epoch)
    }

    fn primary(s: &Option<WriterEpoch>) -> bool {
        s.as_ref().is_none_or(|r| r.role == Role::Primary)
    }

    proptest! {
        /// Epochs never go down; a promotion is always above everything its side saw;
        /// after any request between the two sides, at most one of them takes writes;
        /// a fenced side's tail is always taken.
        #[test]
        fn epochs_never_go_down_and_talking_leaves_one_writer(
            steps in proptest::collection::vec(step(), 0..40)
        ) {
            // A is the first primary; B became its replica with the first request.
            let mut a: Option<WriterEpoch> = None;
            let mut b: Option<WriterEpoch> = None;
            prop_assert!(exchange(&mut a, &mut b));
            prop_assert_eq!(b.as_ref().map(|r| r.role), Some(Role::Replica));
            for s in steps {
                let before = (epoch(&a), epoch(&b));
                match s {
                    Step::PromoteA => if let Ok(e) = promote(a.as_ref()) {
                        prop_assert!(e > epoch(&a));
                        set(&mut a, e, Role::Primary);
                    },
                    Step::PromoteB => if let Ok(e) = promote(b.as_ref()) {
                        prop_assert!(e > epoch(&b));
                        set(&mut b, e, Role::Primary);
                    },
                    Step::AToB | Step::BToA => {
                        let (from, to) = match s {
                            Step::AToB => (&mut a, &mut b),
                            _ => (&mut b, &mut a),
                        };
                        let tail = !primary(from);
                        let taken = exchange(from, to);
                        prop_assert!(taken || !tail, "a fenced tail was refused");
                        // One request, either way, is enough to end a split brain.
                        prop_assert!(!(primary(&a) && primary(&b)), "two writers: {:?} {:?}", a, b);
                    }
                }
                prop_assert!(epoch(&a) >= before.0 && epoch(&b) >= before.1);
            }
        }
    }

    #[test]
    fn the_header_round_trips_and_refuses_other_forms() {
        for s in [
            SenderEpoch {
                epoch: 0,
                role: Role::Primary,
            },
            SenderEpoch {
                epoch: 7,
                role: Role::Replica,
            },
        ] {
            assert_eq!(SenderEpoch::parse(&s.header()), Some(s));
        }
        for bad in [
            "",
            "1",
            "1 x primary",
            "2 1 primary",
            "1 1 writer",
            "1 1 primary x",
        ] {
            assert_eq!(SenderEpoch::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_paired_replica_is_promoted() {
        assert_eq!(promote(None), Err(PromoteRefusal::NotPaired));
        assert_eq!(
            promote(Some(&rec(3, Role::Primary))),
            Err(PromoteRefusal::AlreadyPrimary { epoch: 3 })
        );
        assert_eq!(promote(Some(&rec(3, Role::Replica))), Ok(4));
        assert_eq!(
            promote(Some(&rec(u64::MAX, Role::Replica))),
            Err(PromoteRefusal::Exhausted)
        );
    }

    #[test]
    fn a_primary_gives_way_only_to_the_next_epoch_and_a_source_is_not_paired() {
        let p = |epoch| SenderEpoch {
            epoch,
            role: Role::Primary,
        };
        let here = rec(4, Role::Primary);
        assert_eq!(
            receive(Some(&here), p(5), false),
            Ok(Some((5, Role::Replica, EpochReason::Demoted)))
        );
        for sent in [0, 4, 6, u64::MAX] {
            assert_eq!(
                receive(Some(&here), p(sent), false),
                Err(Stale { current: 4 }),
                "{sent}"
            );
        }
        assert_eq!(receive(None, p(0), true), Ok(None));
        assert_eq!(
            receive(None, p(0), false),
            Ok(Some((0, Role::Replica, EpochReason::Paired)))
        );
    }
}
