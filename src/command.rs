//! How metadata is agreed: every check-then-write the engine makes (commit a version,
//! remove one under its lock, change a lock, change a bucket, commit a part, finish an
//! upload) and every identity write (through [`IdentityProposer`]) is a [`MetaCommand`] — a value — applied by one deterministic function,
//! [`apply`], that reads state, asks the pure `lock::` decisions and returns the batch to
//! write and the answer.
//!
//! This is the shape a Raft state machine needs: the proposer stamps the command with the
//! time ([`Stamped::now`]) and every id it needs (version ids are inside the records), and
//! each replica applies the same log to the same state with the same result. On one node
//! [`LocalLog`] stands in for the log: it applies one command at a time under
//! `Meta::write_guarded` and writes the batch synced. The cluster's log (openraft)
//! implements [`CommandLog`] too.
//!
//! Rules `apply` keeps (checked by its tests, `command/tests.rs`): no clock reads, no randomness, no I/O
//! besides the metadata reads, no iteration over hash maps into the output, no panic; a
//! refusal writes nothing.

mod audit;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::Requester;

use crate::identity::{IdentityChange, IdentityError, IdentityLog, IdentityOutcome};
use crate::lock::{self, LockError, Now, PolicyChange};
use crate::meta::{
    Batch, BucketRecord, BucketUsage, CompletedUpload, DefaultRetention, FinishedVersion,
    InlineRecord, LockRecord, Meta, MetaError, NewVersion, Origin, PartRecord, Record,
    RepairRecord, Retention, RetentionPolicy, Space, TagSet, UploadRecord, VersionKind,
    VersionRecord, Versioning, WriteCondition,
};
use crate::replication::log::LogOp;
use crate::replication::{ReplicationChange, ReplicationError, ReplicationOutcome};
use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp, VersionId};

/// A check-then-write on the metadata, as data.
// One command is built per request and moved into the log once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Commit a new version (PUT, copy, delete marker).
    CommitVersion(Box<CommitVersion>),
    /// Remove a version if Object Lock allows it now (`bypass`: the request may bypass
    /// GOVERNANCE). Answers [`Outcome::Removed`].
    RemoveVersion {
        /// The bucket the version is in.
        bucket: BucketName,
        /// The version's object key.
        key: ObjectKey,
        /// The version to remove; the applier reads its record and lock state itself.
        version_id: VersionId,
        /// The request carried `x-amz-bypass-governance-retention` and may use it.
        bypass: bool,
    },
    /// Change a version's Object Lock state. Answers [`Outcome::Lock`].
    UpdateLock {
        /// The bucket the version is in.
        bucket: BucketName,
        /// The version's object key.
        key: ObjectKey,
        /// The version whose lock state changes (never its record).
        version_id: VersionId,
        /// What the request asks for; judged against the lock state as the applier reads it.
        change: LockChange,
    },
    /// Change a bucket's record. Answers [`Outcome::Bucket`].
    UpdateBucket {
        /// The bucket to change.
        bucket: BucketName,
        /// What the request asks for; judged against the record as the applier reads it.
        change: BucketChange,
    },
    /// Commit a multipart part. Answers [`Outcome::PartCommitted`].
    CommitPart {
        /// The upload the part belongs to; the commit fails if it is gone by then.
        upload: Box<UploadRecord>,
        /// The part's record. Its segment (if any) is written and durable; the segment's
        /// pending record is dropped in the same batch.
        part: Box<PartRecord>,
    },
    /// End an upload: Complete (with the version) or Abort (without). Answers
    /// [`Outcome::UploadFinished`].
    FinishUpload {
        /// The upload to end: its record and all its part records are removed.
        upload: UploadRecord,
        /// The version a Complete commits; `None` for an Abort.
        version: Option<Box<CompletedVersion>>,
        /// The parts the version is made of, as Complete read them.
        used: Vec<PartRecord>,
    },
    /// An identity write (users, keys, approvals, settings), applied by
    /// [`crate::identity::change::apply`] at the stamp's wall time. Answers
    /// [`Outcome::Identity`]. Appended last: the encodings of the variants above are
    /// unchanged.
    Identity(IdentityChange),
    /// A replication peer, rule, acknowledgement or parking, applied by
    /// [`crate::replication::apply`] at the stamp's wall time. Answers
    /// [`Outcome::Replication`]. Appended last.
    Replication(ReplicationChange),
    /// Replace a version's tags (S3 PutObjectTagging, DeleteObjectTagging with an empty
    /// set), from a client or a peer site (`origin`): a client's change is refused on a
    /// replica bucket and logged for replication. Answers [`Outcome::Tagged`]. Appended
    /// last.
    SetTags {
        /// The bucket the version is in.
        bucket: BucketName,
        /// The version's object key.
        key: ObjectKey,
        /// The version.
        version_id: VersionId,
        /// Its new tags; an empty set removes them.
        tags: TagSet,
        /// Who asks: a client, or a peer's replication.
        origin: Origin,
    },
    /// A membership change (cluster identity, join token, join, removal), applied by
    /// [`crate::membership::apply`] at the stamp's wall time. Answers
    /// [`Outcome::Cluster`]. Appended last.
    Cluster(crate::membership::ClusterChange),
    /// Create a bucket (S3 CreateBucket) unless one of that name exists, with its usage
    /// counters. Answers [`Outcome::BucketCreated`]. Appended last.
    CreateBucket(Box<BucketRecord>),
    /// Remove a bucket (S3 DeleteBucket) if it holds no version, with its lifecycle
    /// configuration, activity and usage. Answers [`Outcome::BucketDeleted`]. Appended
    /// last.
    DeleteBucket {
        /// The bucket to remove.
        bucket: BucketName,
    },
    /// Record a new multipart upload (S3 CreateMultipartUpload), its id drawn by the
    /// proposer. Answers [`Outcome::UploadCreated`]. Appended last.
    CreateUpload(Box<UploadRecord>),
    /// Record where repair put shard `index` of `segment` and the rebuilt file's root
    /// (the version record is never rewritten): in a cluster every node must read the
    /// shard there. Answers [`Outcome::Placed`]. Appended last.
    SetPlacement {
        /// The segment.
        segment: SegmentId,
        /// The shard's index in it.
        index: u16,
        /// Its disk and root.
        placement: crate::meta::ShardPlacement,
    },
    /// Forget the placements of a segment whose data was removed. Answers
    /// [`Outcome::Placed`]. Appended last.
    DropPlacements {
        /// The segment.
        segment: SegmentId,
    },
    /// Set or (with `None`) remove a bucket's lifecycle configuration (S3
    /// PutBucketLifecycleConfiguration, DeleteBucketLifecycle), validated by the
    /// proposer: in a cluster every node ages versions by the same rules. Answers
    /// [`Outcome::LifecycleSet`]. Appended last.
    SetLifecycle {
        /// The bucket; the command changes nothing if it is gone by then.
        bucket: BucketName,
        /// The new rules.
        config: Option<crate::meta::LifecycleConfig>,
    },
    /// Record that the rebalancer copied shard `index` of `segment` from disk `from` to
    /// `to` (a file whose root it checked), if version `version_id` of `bucket/key` still
    /// holds the segment and the shard is still recorded on `from`: a compare-and-set, so
    /// a move raced by a delete, a repair or another move changes nothing. Answers
    /// [`Outcome::Moved`]. Appended last.
    MoveShard {
        /// The version's bucket.
        bucket: BucketName,
        /// The version's key.
        key: ObjectKey,
        /// The version holding the segment.
        version_id: VersionId,
        /// The segment.
        segment: SegmentId,
        /// The shard's index in it.
        index: u16,
        /// The disk the shard is on now (as records name it).
        from: String,
        /// Its new disk and the copy's root.
        to: crate::meta::ShardPlacement,
    },
    /// Set or (with `None`) remove a bucket's erasure coding across sites (its profile
    /// and its writes while a site is down), validated by the proposer against the
    /// layout. Answers [`Outcome::BucketGeoSet`]. Appended last.
    SetBucketGeo {
        /// The bucket; the command changes nothing if it is gone by then.
        bucket: BucketName,
        /// The new settings.
        config: Option<crate::meta::BucketGeo>,
    },
}

/// The owned form of [`NewVersion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitVersion {
    /// The bucket to commit into; the commit fails if it was deleted meanwhile.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// The new version, its id drawn by the proposer; a version already under that id
    /// refuses the commit (create-only).
    pub record: VersionRecord,
    /// Repair-queue entries for shards the write could not place, queued in the same batch.
    pub repairs: Vec<RepairRecord>,
    /// The key's previous null version, which a new null version replaces (unversioned or
    /// suspended bucket); refused if that version has an Object Lock state.
    pub replaces: Option<VersionId>,
    /// What the key's current object must be for the commit to happen.
    pub condition: WriteCondition,
    /// The version's tags; an empty set writes nothing.
    pub tags: Option<TagSet>,
    /// The object's bytes, when small enough to live in the metadata instead of in shard
    /// files.
    pub inline: Option<InlineRecord>,
    /// The version's initial Object Lock state; an empty one writes nothing.
    pub lock: Option<LockRecord>,
}

impl CommitVersion {
    /// Owns a borrowed [`NewVersion`].
    pub fn from_new(n: &NewVersion<'_>) -> Self {
        Self {
            bucket: n.bucket.clone(),
            key: n.key.clone(),
            record: n.record.clone(),
            repairs: n.repairs.to_vec(),
            replaces: n.replaces.copied(),
            condition: n.condition.clone(),
            tags: n.tags.cloned(),
            inline: n.inline.cloned(),
            lock: n.lock.cloned(),
        }
    }

    fn as_new(&self) -> NewVersion<'_> {
        NewVersion {
            bucket: &self.bucket,
            key: &self.key,
            record: &self.record,
            repairs: &self.repairs,
            replaces: self.replaces.as_ref(),
            condition: &self.condition,
            tags: self.tags.as_ref(),
            inline: self.inline.as_ref(),
            lock: self.lock.as_ref(),
        }
    }
}

/// The owned form of [`FinishedVersion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedVersion {
    /// The new version, made of the upload's parts' segments.
    pub record: VersionRecord,
    /// The key's null version it replaces, whose removal the lock layer allowed; refused
    /// if that version has an Object Lock state by the time the command is applied.
    pub replaces: Option<VersionId>,
    /// The version's initial Object Lock state (the upload's lock request or the bucket's
    /// default retention).
    pub lock: LockRecord,
    /// Entries for shards the parts' writes could not place.
    pub repairs: Vec<RepairRecord>,
    /// What the key's current object must be for the commit to happen.
    pub condition: WriteCondition,
    /// The outcome kept for a day so that a retried Complete gets the same answer.
    pub completed: CompletedUpload,
}

/// A change to a version's Object Lock state (S3 PutObjectRetention, PutObjectLegalHold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockChange {
    /// Set, extend or (with `bypass`, in GOVERNANCE mode) shorten or remove the retention,
    /// within the bucket's retention policy as the applier reads it.
    Retention {
        /// The retention asked for; `None` removes it.
        requested: Option<Retention>,
        /// The request carried `x-amz-bypass-governance-retention` and may use it.
        bypass: bool,
    },
    /// Place or lift the legal hold.
    LegalHold(bool),
    /// Replication from a peer site: the state becomes `lock::replica_lock` of the
    /// current one and this one, never weaker than either. Appended last.
    Join(LockRecord),
}

/// A change to a bucket's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketChange {
    /// PutBucketVersioning (never back to unversioned).
    Versioning(Versioning),
    /// PutObjectLockConfiguration: enable Object Lock for good, set the default retention.
    LockConfiguration(Option<DefaultRetention>),
    /// The bucket's retention policy; loosening it needs `privileged`.
    RetentionPolicy {
        /// The new policy; `None` removes it (a loosening).
        policy: Option<RetentionPolicy>,
        /// The caller may loosen the policy (today: an administrator confirmed it; with
        /// identities: a second administrator approved it).
        privileged: bool,
    },
    /// The bucket's hard quota in bytes (`None` removes it). Lowering it below the usage
    /// is allowed: nothing is removed, and writes that add bytes are refused until usage
    /// falls below it. Appended last: the encodings of the variants above are unchanged.
    Quota(Option<u64>),
}

/// A command with what the proposer adds: everything the applier must not compute
/// itself. Persisted and sent between nodes, so it carries a format byte ([`Record`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// The command to apply.
    pub cmd: MetaCommand,
    /// The proposer's retention-clock readings: every Object Lock decision uses them.
    pub now: Now,
    /// Who asked (user, key, address, request id), recorded by the audit trail with the
    /// change; `None` for work no request asked for. Format 4 on.
    pub by: Option<Requester>,
}

/// [`Stamped`] up to format 3, which named no requester.
#[derive(Deserialize)]
struct StampedV3 {
    cmd: MetaCommand,
    now: Now,
}

impl Record for Stamped {
    const NAME: &'static str = "command";
    // 2: the version and part records inside commands carry their BLAKE3 digests.
    // 3: the version records inside carry their origin.
    // 4: the requester (`by`).
    const FORMAT: u8 = 4;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<Self, MetaError>> {
        // No release wrote a command to disk or sent one (one node applies them as they
        // are made), so only the kinds whose bytes did not change since are read: format
        // 1 embedded version and part records without digests, so RemoveVersion,
        // UpdateLock and UpdateBucket (variants 1..=3); format 2 version records without
        // their origin, so those, CommitPart (4) and Identity (6) too. The others are
        // refused, never guessed at (a shorter record would shift every field after it).
        let readable = match version {
            1 => |v: u8| (1..=3).contains(&v),
            2 => |v: u8| (1..=4).contains(&v) || v == 6,
            3 => |_: u8| true,
            _ => return None,
        };
        let v3 = |body: &[u8]| {
            crate::meta::record::decode_body::<StampedV3>(Self::NAME, body).map(|s| Stamped {
                cmd: s.cmd,
                now: s.now,
                by: None,
            })
        };
        Some(match body.first() {
            Some(&v) if readable(v) => v3(body),
            _ => Err(MetaError::Decode {
                record: Self::NAME,
                message: format!("a format-{version} command that embeds a version record"),
            }),
        })
    }
}

/// What an applied command answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The version was committed.
    Committed,
    /// The removed version; `None` if it was already gone.
    Removed(Option<VersionRecord>),
    /// The version's new lock state; `None` if the version is gone.
    Lock(Option<LockRecord>),
    /// The bucket's new record and whether the change loosened its policy; `None` if
    /// the bucket is gone.
    Bucket(Option<(BucketRecord, PolicyChange)>),
    /// The part the committed one replaced.
    PartCommitted(Option<PartRecord>),
    /// Every part the upload had.
    UploadFinished(Vec<PartRecord>),
    /// What the identity change answered.
    Identity(IdentityOutcome),
    /// What a replication change did.
    Replication(ReplicationOutcome),
    /// The tags the version had before; `None` if the version is gone.
    Tagged(Option<TagSet>),
    /// What a membership change did.
    Cluster(crate::membership::ClusterOutcome),
    /// Whether the bucket was created (`false`: one of that name exists).
    BucketCreated(bool),
    /// Whether the bucket was removed (`false`: it holds a version; a bucket already
    /// gone answers `true`).
    BucketDeleted(bool),
    /// The upload was recorded.
    UploadCreated,
    /// The placements were recorded or dropped.
    Placed,
    /// Whether the rules were set (`false`: the bucket is gone).
    LifecycleSet(bool),
    /// Whether the bucket's erasure coding across sites was set (`false`: it is gone).
    BucketGeoSet(bool),
    /// Whether the shard's new place was recorded (`false`: the version, its segment or
    /// the shard's recorded place changed meanwhile).
    Moved(bool),
}

/// An answer of the wrong kind for its command: a log that routed answers wrongly.
pub fn unexpected(outcome: Outcome) -> CommandError {
    CommandError::UnexpectedOutcome {
        outcome: format!("{outcome:?}"),
    }
}

/// Why a command was refused (nothing written), or could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The metadata refused (the bucket is gone, a failed write condition, a version
    /// already there, a replaced version that is locked, a re-uploaded part) or a
    /// metadata read or encoding failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Object Lock refused: a removal or retention change protection does not allow, or
    /// a default retention the bucket's policy does not allow.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The bucket change does not fit the bucket's state: suspending versioning under
    /// Object Lock, or enabling Object Lock before versioning.
    #[error("bucket {bucket}: {reason}")]
    InvalidBucketState {
        /// The bucket the change was for.
        bucket: BucketName,
        /// Why the change does not fit, for the client.
        reason: &'static str,
    },
    /// A retention policy was set on a bucket without Object Lock.
    #[error("bucket {bucket} does not have Object Lock enabled")]
    LockNotEnabled {
        /// The bucket the policy was for.
        bucket: BucketName,
    },
    /// A retention policy change loosens the policy and the caller is not privileged.
    #[error("loosening the retention policy of bucket {bucket} needs privilege")]
    PolicyLoosening {
        /// The bucket whose policy would have loosened.
        bucket: BucketName,
    },
    /// The identity store refused the change (a taken name, the last administrator, an
    /// unknown key or approval, the requester approving) or could not read its records.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A replication change was refused.
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    /// A membership change was refused.
    #[error(transparent)]
    Membership(#[from] crate::membership::MembershipError),
    /// The cluster could not agree on the command in time (this node does not lead, a
    /// majority is out of reach): the caller does not know whether it will be applied
    /// (an entry appended before a leader stepped down may still commit), as with any
    /// write that timed out; the client retries.
    #[error("the cluster cannot take the command now: {reason}")]
    Unavailable {
        /// Why (which leader, what failed).
        reason: String,
    },
    /// A client's write would take the bucket's usage past its quota (nothing written).
    #[error(
        "bucket {bucket}: the write needs {needed} bytes, the quota is {quota} and {used} are used"
    )]
    QuotaExceeded {
        /// The bucket whose quota refused.
        bucket: BucketName,
        /// The quota, in bytes.
        quota: u64,
        /// The bucket's usage before the write, in bytes.
        used: u64,
        /// What the write adds, in bytes.
        needed: u64,
    },
    /// The log answered with an [`Outcome`] of another command's kind (see
    /// [`unexpected`]): a bug in the log, never a refusal.
    #[error("the log answered a command with {outcome}")]
    UnexpectedOutcome {
        /// The answer, as `Debug` prints it.
        outcome: String,
    },
}

/// Applies `c` to the state `meta` holds: the batch to write and the answer. Deterministic
/// (see the module's rules); a refusal is an error and writes nothing.
///
/// # Errors
/// The refusal ([`CommandError`]), or a metadata read's error.
pub fn apply(meta: &Meta, c: &Stamped) -> Result<(Batch, Outcome), CommandError> {
    apply_prepared(meta, c, None)
}

/// The part of `c`'s work that reads no state, done before the write guard is taken:
/// the audit leaf of a command whose leaf does not depend on its outcome (a version
/// commit: every small PUT), rendered.
#[derive(Debug, Clone)]
pub struct Prepared {
    leaf: crate::audit::entry::Rendered,
}

/// [`Prepared`] for `c`, when there is any.
pub fn prepare(c: &Stamped) -> Option<Prepared> {
    match &c.cmd {
        MetaCommand::CommitVersion(_) => {
            audit::leaf_of(c, &Outcome::Committed, true).map(|e| Prepared { leaf: e.render() })
        }
        _ => None,
    }
}

/// [`apply`], with the work [`prepare`] did for `c` (the same batch and answer as
/// without it).
///
/// # Errors
/// As [`apply`].
pub fn apply_prepared(
    meta: &Meta,
    c: &Stamped,
    prepared: Option<&Prepared>,
) -> Result<(Batch, Outcome), CommandError> {
    let (mut b, outcome) = apply_change(meta, c)?;
    let rendered;
    let leaf = match (prepared, &c.cmd) {
        (Some(p), MetaCommand::CommitVersion(_)) => Some(&p.leaf),
        _ => {
            rendered = audit::leaf_of(c, &outcome, !b.is_empty()).map(|e| e.render());
            rendered.as_ref()
        }
    };
    // Only the benchmark of the trail's cost builds without the leaf (never a node).
    #[cfg(feature = "bench-no-audit-leaf")]
    let leaf: Option<&crate::audit::entry::Rendered> = leaf.and(None);
    if let Some(leaf) = leaf {
        crate::audit::log::record(meta, &mut b, leaf)?;
    }
    Ok((b, outcome))
}

/// The refusal of `c` as the audit trail records it (the event it would have made, with
/// the reason): written apart from any change, since a refusal changes nothing.
pub fn refusal(c: &Stamped, e: &CommandError) -> Option<crate::audit::Entry> {
    e.is_decision().then(|| audit::refusal_of(c, e.to_string()))
}

impl CommandError {
    /// Whether this is a decision about the command (every replica that applies it refuses
    /// it alike), rather than a failed read or a log's bug, which decides nothing: a
    /// replicated state machine records the first as the command's answer and stops at
    /// the second.
    pub fn is_decision(&self) -> bool {
        !matches!(
            self,
            CommandError::Meta(
                MetaError::Decode { .. }
                    | MetaError::Encode { .. }
                    | MetaError::Engine { .. }
                    | MetaError::Task { .. }
                    | MetaError::UnknownFormat { .. },
            ) | CommandError::UnexpectedOutcome { .. }
                | CommandError::Unavailable { .. }
        )
    }
}

fn apply_change(meta: &Meta, c: &Stamped) -> Result<(Batch, Outcome), CommandError> {
    let mut b = Batch::default();
    let outcome = match &c.cmd {
        MetaCommand::CommitVersion(v) => {
            // A replica takes only its primary's versions (and its own lifecycle's
            // markers), judged here, in the commit, so that no client write slips past a
            // promotion or a fencing.
            if v.record.origin == Origin::Client {
                crate::replication::writable(meta, &v.bucket)?;
            }
            b = meta.commit_version_batch(&v.as_ref().as_new())?;
            let replaced = match &v.replaces {
                Some(id) => meta.version(&v.bucket, &v.key, id)?,
                None => None,
            };
            account(
                meta,
                &mut b,
                &v.bucket,
                |u| u.after(Some(&v.record), replaced.as_ref()),
                v.record.origin == Origin::Client,
            )?;
            let op = match v.record.kind {
                VersionKind::Object => LogOp::Version,
                VersionKind::DeleteMarker => LogOp::DeleteMarker,
            };
            crate::replication::log::record(
                meta, &mut b, &v.bucket, &v.key, &v.record, op, c.now.wall,
            )?;
            Outcome::Committed
        }
        MetaCommand::RemoveVersion {
            bucket,
            key,
            version_id,
            bypass,
        } => match meta.version(bucket, key, version_id)? {
            None => Outcome::Removed(None),
            Some(v) => {
                let state = meta.lock(bucket, key, version_id)?;
                lock::may_remove(&v, &state, c.now.earliest, *bypass)?;
                b.remove_version(bucket, key, version_id);
                account(meta, &mut b, bucket, |u| u.after(None, Some(&v)), false)?;
                crate::replication::log::forget_version(meta, &mut b, bucket, key, version_id)?;
                Outcome::Removed(Some(v))
            }
        },
        MetaCommand::UpdateLock {
            bucket,
            key,
            version_id,
            change,
        } => match meta.version(bucket, key, version_id)? {
            None => Outcome::Lock(None),
            Some(v) => {
                let current = meta.lock(bucket, key, version_id)?;
                let next = match change {
                    LockChange::Retention { requested, bypass } => {
                        // The policy as it is now, not as the proposer saw it.
                        let policy = meta.bucket(bucket)?.and_then(|r| r.policy);
                        lock::change_retention(
                            &current,
                            *requested,
                            v.created,
                            policy.as_ref(),
                            c.now,
                            *bypass,
                        )?
                    }
                    LockChange::LegalHold(on) => lock::set_legal_hold(&current, *on),
                    LockChange::Join(incoming) => {
                        lock::replica_lock(&current, incoming, c.now.earliest)
                    }
                };
                b.set_lock(bucket, key, version_id, &next)?;
                // A peer's join is not sent back; a client's change is, whoever wrote
                // the version (a promoted replica's own changes replicate), except on a
                // replica (a fenced old primary's local hold stays local).
                let replica = match crate::replication::writable(meta, bucket) {
                    Ok(()) => false,
                    Err(ReplicationError::ReadOnlyReplica { .. }) => true,
                    Err(e) => return Err(e.into()),
                };
                if next != current && !matches!(change, LockChange::Join(_)) && !replica {
                    crate::replication::log::record(
                        meta,
                        &mut b,
                        bucket,
                        key,
                        &v,
                        LogOp::Lock,
                        c.now.wall,
                    )?;
                }
                Outcome::Lock(Some(next))
            }
        },
        MetaCommand::UpdateBucket { bucket, change } => match meta.bucket(bucket)? {
            None => Outcome::Bucket(None),
            Some(mut rec) => {
                // As S3: a replicated bucket keeps versioning on (a null version replacing
                // a logged one would be gone before it is sent).
                if matches!(change, BucketChange::Versioning(v) if *v != Versioning::Enabled)
                    && crate::replication::rules(meta, bucket)?.is_some()
                {
                    return Err(CommandError::InvalidBucketState {
                        bucket: bucket.clone(),
                        reason: "versioning cannot be suspended while the bucket has a replication configuration",
                    });
                }
                let how = change_bucket(&mut rec, change)?;
                b.put_bucket(&rec)?;
                Outcome::Bucket(Some((rec, how)))
            }
        },
        MetaCommand::CommitPart { upload, part } => {
            let (batch, replaced) = meta.commit_part_batch(upload, part)?;
            b = batch;
            // Parts take disk space until Complete or Abort: they count against the
            // quota as they arrive. A replica's staging (its bucket takes no client
            // write) is counted, never refused: its source's quota governed it.
            let client = crate::replication::writable(meta, &upload.bucket).is_ok();
            let replaced_size = replaced.as_ref().map_or(0, |r| r.size);
            account(
                meta,
                &mut b,
                &upload.bucket,
                |u| u.with_part(part.size, replaced_size),
                client,
            )?;
            Outcome::PartCommitted(replaced)
        }
        MetaCommand::FinishUpload {
            upload,
            version,
            used,
        } => {
            if version
                .as_ref()
                .is_some_and(|v| v.record.origin == Origin::Client)
            {
                crate::replication::writable(meta, &upload.bucket)?;
            }
            let used: Vec<&PartRecord> = used.iter().collect();
            let finished = version.as_ref().map(|v| FinishedVersion {
                record: &v.record,
                replaces: v.replaces.as_ref(),
                lock: &v.lock,
                repairs: &v.repairs,
                condition: &v.condition,
                completed: &v.completed,
            });
            let (batch, parts) = meta.finish_upload_batch(upload, finished, &used)?;
            b = batch;
            // Every part of the upload is gone now, used or not.
            let part_bytes: u64 = parts.iter().map(|p| p.size).sum();
            if version.is_none() {
                account(
                    meta,
                    &mut b,
                    &upload.bucket,
                    |u| u.without_parts(part_bytes),
                    false,
                )?;
            }
            if let Some(v) = version {
                let replaced = match &v.replaces {
                    Some(id) => meta.version(&upload.bucket, &upload.key, id)?,
                    None => None,
                };
                account(
                    meta,
                    &mut b,
                    &upload.bucket,
                    |u| {
                        u.after(Some(&v.record), replaced.as_ref())
                            .without_parts(part_bytes)
                    },
                    v.record.origin == Origin::Client,
                )?;
                crate::replication::log::record(
                    meta,
                    &mut b,
                    &upload.bucket,
                    &upload.key,
                    &v.record,
                    LogOp::Version,
                    c.now.wall,
                )?;
            }
            Outcome::UploadFinished(parts)
        }
        MetaCommand::Identity(change) => {
            let ((puts, deletes), o) = crate::identity::change::apply(meta, change, c.now.wall)?;
            for (k, v) in puts {
                b.kv_put(Space::Identity, &k, v);
            }
            for k in deletes {
                b.kv_delete(Space::Identity, &k);
            }
            Outcome::Identity(o)
        }
        MetaCommand::Cluster(change) => {
            Outcome::Cluster(crate::membership::apply(meta, &mut b, change, c.now.wall)?)
        }
        MetaCommand::Replication(change) => {
            Outcome::Replication(crate::replication::apply(meta, &mut b, change, c.now.wall)?)
        }
        MetaCommand::CreateBucket(rec) => match meta.create_bucket_batch(rec)? {
            Some(batch) => {
                b = batch;
                Outcome::BucketCreated(true)
            }
            None => Outcome::BucketCreated(false),
        },
        MetaCommand::DeleteBucket { bucket } => match meta.delete_bucket_batch(bucket)? {
            Some(batch) => {
                b = batch;
                Outcome::BucketDeleted(true)
            }
            None => Outcome::BucketDeleted(false),
        },
        MetaCommand::CreateUpload(rec) => {
            b = meta.upload_batch(rec)?;
            Outcome::UploadCreated
        }
        MetaCommand::SetPlacement {
            segment,
            index,
            placement,
        } => {
            b = meta.placement_batch(segment, *index, placement)?;
            Outcome::Placed
        }
        MetaCommand::DropPlacements { segment } => {
            b = meta.drop_placements_batch(segment)?;
            Outcome::Placed
        }
        MetaCommand::MoveShard {
            bucket,
            key,
            version_id,
            segment,
            index,
            from,
            to,
        } => {
            let recorded = meta.version(bucket, key, version_id)?.and_then(|v| {
                v.segments
                    .into_iter()
                    .find(|s| s.id == *segment)
                    .and_then(|s| s.shards.into_iter().nth(usize::from(*index)))
            });
            let now_at = match recorded {
                None => None,
                Some(s) => Some(
                    meta.placements(segment)?
                        .into_iter()
                        .find(|(i, _)| i == index)
                        .map_or(s.disk, |(_, p)| p.disk),
                ),
            };
            if now_at.as_deref() == Some(from.as_str()) {
                b = meta.placement_batch(segment, *index, to)?;
                Outcome::Moved(true)
            } else {
                Outcome::Moved(false)
            }
        }
        MetaCommand::SetLifecycle { bucket, config } => {
            // A bucket deleted meanwhile must not leave rules for a later one of its name.
            if meta.bucket(bucket)?.is_some() {
                b.set_lifecycle(bucket, config.as_ref())?;
                Outcome::LifecycleSet(true)
            } else {
                Outcome::LifecycleSet(false)
            }
        }
        MetaCommand::SetBucketGeo { bucket, config } => {
            // A bucket deleted meanwhile must not leave settings for a later one.
            if meta.bucket(bucket)?.is_some() {
                b.set_bucket_geo(bucket, config.as_ref())?;
                Outcome::BucketGeoSet(true)
            } else {
                Outcome::BucketGeoSet(false)
            }
        }
        MetaCommand::SetTags {
            bucket,
            key,
            version_id,
            tags,
            origin,
        } => match meta.version(bucket, key, version_id)? {
            None => Outcome::Tagged(None),
            Some(v) => {
                if *origin == Origin::Client {
                    crate::replication::writable(meta, bucket)?;
                }
                let before = meta.tags(bucket, key, version_id)?;
                b.set_tags(bucket, key, version_id, tags)?;
                if *origin == Origin::Client && before != *tags {
                    crate::replication::log::record(
                        meta,
                        &mut b,
                        bucket,
                        key,
                        &v,
                        LogOp::Tags,
                        c.now.wall,
                    )?;
                }
                Outcome::Tagged(Some(before))
            }
        },
    };
    Ok((b, outcome))
}

/// Adjusts `bucket`'s usage in `b` by `change`. With `enforce` (a client's write), refuses
/// a change that grows the total (versions and parts in progress) past the bucket's
/// quota, or the versions alone past it (a Complete, which turns counted parts into a
/// version, after the quota was lowered): a change that frees bytes, or replaces a
/// version with a smaller one, always passes.
fn account(
    meta: &Meta,
    b: &mut Batch,
    bucket: &BucketName,
    change: impl FnOnce(BucketUsage) -> BucketUsage,
    enforce: bool,
) -> Result<(), CommandError> {
    let used = meta.usage(bucket)?;
    let next = change(used);
    if enforce && let Some(q) = meta.bucket(bucket)?.and_then(|r| r.quota) {
        let grows_past = |before: u64, after: u64| after > before && after > q;
        if grows_past(used.total(), next.total()) || grows_past(used.bytes, next.bytes) {
            return Err(CommandError::QuotaExceeded {
                bucket: bucket.clone(),
                quota: q,
                used: used.total(),
                needed: next
                    .total()
                    .saturating_sub(used.total())
                    .max(next.bytes.saturating_sub(used.bytes)),
            });
        }
    }
    if next != used {
        b.set_usage(bucket, &next)?;
    }
    Ok(())
}

/// The rules of a bucket change, on the record as it is now.
fn change_bucket(
    rec: &mut BucketRecord,
    change: &BucketChange,
) -> Result<PolicyChange, CommandError> {
    let bucket = rec.name.clone();
    match change {
        BucketChange::Versioning(state) => {
            if rec.object_lock && *state != Versioning::Enabled {
                return Err(CommandError::InvalidBucketState {
                    bucket,
                    reason: "versioning cannot be suspended while Object Lock is enabled",
                });
            }
            rec.versioning = *state;
            Ok(PolicyChange::Tightens)
        }
        BucketChange::LockConfiguration(default_retention) => {
            if !rec.object_lock && rec.versioning != Versioning::Enabled {
                return Err(CommandError::InvalidBucketState {
                    bucket,
                    reason: "Object Lock needs versioning enabled first",
                });
            }
            if let (Some(d), Some(p)) = (default_retention, &rec.policy)
                && !p.modes.contains(&d.mode)
            {
                return Err(LockError::PolicyModeNotAllowed { mode: d.mode }.into());
            }
            rec.object_lock = true;
            rec.default_retention = *default_retention;
            Ok(PolicyChange::Tightens)
        }
        BucketChange::RetentionPolicy { policy, privileged } => {
            if !rec.object_lock {
                return Err(CommandError::LockNotEnabled { bucket });
            }
            let how = lock::policy_change(rec.policy.as_ref(), policy.as_ref());
            if how == PolicyChange::Loosens && !privileged {
                return Err(CommandError::PolicyLoosening { bucket });
            }
            rec.policy = policy.clone();
            Ok(how)
        }
        BucketChange::Quota(quota) => {
            rec.quota = *quota;
            Ok(PolicyChange::Tightens)
        }
    }
}

/// Where commands go to be agreed and applied: the single node's [`LocalLog`], or the
/// cluster's replicated log.
pub trait CommandLog: Send + Sync + std::fmt::Debug {
    /// Applies `c` once it is agreed; returns its answer.
    ///
    /// # Errors
    /// The refusal from [`apply`], or the log's failure.
    fn propose(&self, c: &Stamped) -> Result<Outcome, CommandError>;

    /// Returns once this node's metadata holds every command acknowledged anywhere before
    /// the call (a linearizable read point): reads that decide (which version a delete
    /// names, whether a version exists to lock) are made after it. Immediate on one node,
    /// whose commands are applied before they are answered.
    ///
    /// # Errors
    /// [`CommandError::Unavailable`] when the cluster cannot confirm it in time.
    fn barrier(&self) -> Result<(), CommandError> {
        Ok(())
    }

    /// Whether [`CommandLog::barrier`] waits for anything (a cluster's member): one node
    /// skips it, and the thread hop it would take, on every read.
    fn has_barrier(&self) -> bool {
        false
    }

    /// Whether this node runs the work that must run once per cluster (lifecycle, restore
    /// drills, replication senders) now: always on one node; on a cluster's member while
    /// it leads the group and a majority has answered it within an election timeout (a
    /// leader cut off from the others may still believe it leads; within that time no
    /// other can have been elected).
    fn holds_lease(&self) -> bool {
        true
    }

    /// Whether this node may stand for leadership (and, leading, keep sending heartbeats):
    /// a node whose clock the others do not vouch for sets it false
    /// (`RetentionClock::note_peers`). Nothing on one node.
    fn set_electable(&self, _electable: bool) {}
}

/// One node's log: commands applied one at a time under the metadata write guard; a
/// refused command's record goes to the audit trail's queue (an applied one's is in its
/// batch).
#[derive(Debug, Clone)]
pub struct LocalLog {
    meta: Arc<Meta>,
    trail: Option<Arc<crate::audit::Trail>>,
}

impl LocalLog {
    /// A log that applies commands to `meta`, recording refusals nowhere (tests).
    pub fn new(meta: Arc<Meta>) -> Self {
        Self { meta, trail: None }
    }

    /// A log that applies commands to `meta` and records refusals in `trail`.
    pub fn with_trail(meta: Arc<Meta>, trail: Arc<crate::audit::Trail>) -> Self {
        Self {
            meta,
            trail: Some(trail),
        }
    }
}

impl LocalLog {
    /// Records `c`'s refusal `e` in the trail's queue, when `e` decided anything.
    pub fn note_refusal(&self, c: &Stamped, e: &CommandError) {
        if let Some(t) = &self.trail
            && let Some(entry) = refusal(c, e)
        {
            t.record(entry);
        }
    }
}

impl CommandLog for LocalLog {
    fn propose(&self, c: &Stamped) -> Result<Outcome, CommandError> {
        let prepared = prepare(c);
        let r = self
            .meta
            .write_guarded(|m| apply_prepared(m, c, prepared.as_ref()));
        if let Err(e) = &r {
            self.note_refusal(c, e);
        }
        r
    }
}

/// The log a node's commands go through, which can change while the node runs: the
/// single node's [`LocalLog`] until the node joins a Raft group, then the group's
/// (`crate::consensus::RaftLog`). Everything that proposes (the store, the identity
/// store) holds this one, so a change reaches them all.
#[derive(Debug)]
pub struct LogSwitch {
    current: std::sync::RwLock<Arc<dyn CommandLog>>,
    /// The node's clock is not vouched for by the other members: commands that rest on
    /// its time are refused ([`MetaCommand::rests_on_time`]).
    unvouched: std::sync::atomic::AtomicBool,
}

impl MetaCommand {
    /// Whether the command carries a time a decision or a record rests on, from the
    /// proposer's clock: a new version's time and its retention, a removal or lock
    /// change judged at the proposer's readings, an upload's start (lifecycle aborts by
    /// it), a join token's expiry, an approval's expiry. A node whose clock the other
    /// members do not vouch for proposes none of these (issue 15, item 5).
    pub fn rests_on_time(&self) -> bool {
        use crate::membership::ClusterChange;
        match self {
            MetaCommand::CommitVersion(_)
            | MetaCommand::RemoveVersion { .. }
            | MetaCommand::UpdateLock { .. }
            | MetaCommand::CommitPart { .. }
            | MetaCommand::FinishUpload { .. }
            | MetaCommand::CreateUpload(_) => true,
            MetaCommand::Cluster(c) => matches!(
                c,
                ClusterChange::IssueToken { .. } | ClusterChange::Join { .. }
            ),
            MetaCommand::Identity(c) => matches!(
                c,
                IdentityChange::FileApproval { .. } | IdentityChange::ConsumeApproval { .. }
            ),
            _ => false,
        }
    }
}

impl LogSwitch {
    /// Starting with `log`.
    pub fn new(log: Arc<dyn CommandLog>) -> Self {
        Self {
            current: std::sync::RwLock::new(log),
            unvouched: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on refuses (`unvouched`) or takes the commands that rest on this node's
    /// time ([`MetaCommand::rests_on_time`]): 503 `Unavailable`, the client goes to
    /// another node.
    pub fn set_unvouched(&self, unvouched: bool) {
        self.unvouched
            .store(unvouched, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sends every later command to `log`.
    pub fn set(&self, log: Arc<dyn CommandLog>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = log;
    }
}

impl CommandLog for LogSwitch {
    fn propose(&self, c: &Stamped) -> Result<Outcome, CommandError> {
        if c.cmd.rests_on_time() && self.unvouched.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CommandError::Unavailable {
                reason: "this node's wall clock is more than two minutes from the other \
                         members' (GET /v1/clock: peer_offset_micros); it takes no write that \
                         rests on its time until it is set right: send the request to another \
                         node"
                    .into(),
            });
        }
        let log = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        log.propose(c)
    }

    fn barrier(&self) -> Result<(), CommandError> {
        let log = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        log.barrier()
    }

    fn has_barrier(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .has_barrier()
    }

    fn holds_lease(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .holds_lease()
    }

    fn set_electable(&self, electable: bool) {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .set_electable(electable);
    }
}

/// The identity store's way into a command log: each change is proposed as
/// [`MetaCommand::Identity`], so identity writes are ordered with every other metadata
/// command (one node: under the same write guard; a cluster: in the same log).
#[derive(Debug, Clone)]
pub struct IdentityProposer(pub Arc<dyn CommandLog>);

impl IdentityLog for IdentityProposer {
    fn propose(
        &self,
        change: IdentityChange,
        now: Timestamp,
        by: Option<&Requester>,
    ) -> Result<IdentityOutcome, IdentityError> {
        let stamped = Stamped {
            cmd: MetaCommand::Identity(change),
            now: Now::at(now),
            by: by.cloned(),
        };
        match self.0.propose(&stamped) {
            Ok(Outcome::Identity(o)) => Ok(o),
            Ok(other) => Err(IdentityError::Log {
                reason: format!("the log answered an identity change with {other:?}"),
            }),
            Err(CommandError::Identity(e)) => Err(e),
            Err(CommandError::Meta(e)) => Err(IdentityError::Meta(e)),
            Err(CommandError::Unavailable { reason }) => Err(IdentityError::Unavailable { reason }),
            Err(e) => Err(IdentityError::Log {
                reason: e.to_string(),
            }),
        }
    }

    fn barrier(&self) -> Result<(), IdentityError> {
        self.0.barrier().map_err(|e| match e {
            CommandError::Unavailable { reason } => IdentityError::Unavailable { reason },
            e => IdentityError::Log {
                reason: e.to_string(),
            },
        })
    }

    fn replicated(&self) -> bool {
        self.0.has_barrier()
    }
}

#[cfg(test)]
pub(crate) mod tests;
