//! The applier's rules: replicas that apply the same commands hold the same bytes; a
//! refusal writes nothing; a legal hold racing a removal never loses protection.

use std::sync::Arc;

use super::*;
use crate::lock::LockError;
use crate::meta::{
    KvEngine, MemoryEngine, RetentionMode, SystemMeta, UploadRecord, VersionKind, Versioning,
};
use crate::types::Timestamp;

const T: Timestamp = Timestamp(1_800_000_000_000_000);
const DAY: i64 = 86_400_000_000;

fn bucket() -> BucketName {
    BucketName::new("cmds").expect("bucket")
}

fn key() -> ObjectKey {
    ObjectKey::new("k").expect("key")
}

pub(crate) fn memory() -> Meta {
    Meta::with_engine(Box::new(MemoryEngine::default()) as Box<dyn KvEngine>)
}

fn version(n: u8) -> VersionRecord {
    VersionRecord {
        version_id: VersionId([n; 16]),
        created: T,
        kind: VersionKind::Object,
        size: 0,
        etag: format!("e{n}"),
        content_type: None,
        user_meta: Vec::new(),
        checksums: Vec::new(),
        segments: Vec::new(),
        null_version: false,
        inline: false,
        composite_checksum: false,
        system: SystemMeta::default(),
        blake3: Vec::new(),
        origin: crate::meta::Origin::Client,
    }
}

fn commit(n: u8, lock: Option<LockRecord>) -> MetaCommand {
    MetaCommand::CommitVersion(Box::new(CommitVersion {
        bucket: bucket(),
        key: key(),
        record: version(n),
        repairs: Vec::new(),
        replaces: None,
        condition: WriteCondition::Always,
        tags: None,
        inline: None,
        lock,
    }))
}

fn at(cmd: MetaCommand, t: Timestamp) -> Stamped {
    Stamped {
        cmd,
        now: Now::at(t),
        by: None,
    }
}

pub(crate) fn create_bucket(meta: &Meta) {
    assert!(
        meta.create_bucket(&BucketRecord {
            name: bucket(),
            created: T,
            versioning: Versioning::Enabled,
            object_lock: false,
            default_retention: None,
            policy: None,
            quota: None,
        })
        .expect("bucket")
    );
}

/// A log touching every command kind, refusals included.
pub(crate) fn log() -> Vec<Stamped> {
    let retained = LockRecord {
        retention: Some(Retention {
            mode: RetentionMode::Compliance,
            until: Timestamp(T.0 + 10 * DAY),
        }),
        legal_hold: false,
    };
    let upload = upload();
    let other = BucketRecord {
        name: BucketName::new("other").expect("name"),
        created: T,
        versioning: Versioning::Unversioned,
        object_lock: false,
        default_retention: None,
        policy: None,
        quota: None,
    };
    vec![
        at(
            MetaCommand::UpdateBucket {
                bucket: bucket(),
                change: BucketChange::LockConfiguration(None),
            },
            T,
        ),
        at(commit(1, Some(retained)), T),
        at(commit(2, None), T),
        // Refused: retained for ten days.
        at(
            MetaCommand::RemoveVersion {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([1; 16]),
                bypass: true,
            },
            Timestamp(T.0 + DAY),
        ),
        at(
            MetaCommand::UpdateLock {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([2; 16]),
                change: LockChange::LegalHold(true),
            },
            T,
        ),
        // Refused: under legal hold.
        at(
            MetaCommand::RemoveVersion {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([2; 16]),
                bypass: false,
            },
            T,
        ),
        at(
            MetaCommand::UpdateLock {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([2; 16]),
                change: LockChange::LegalHold(false),
            },
            T,
        ),
        at(
            MetaCommand::RemoveVersion {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([2; 16]),
                bypass: false,
            },
            T,
        ),
        // Refused: versioning cannot be suspended under Object Lock.
        at(
            MetaCommand::UpdateBucket {
                bucket: bucket(),
                change: BucketChange::Versioning(Versioning::Suspended),
            },
            T,
        ),
        // After the retention, the removal goes through.
        at(
            MetaCommand::RemoveVersion {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([1; 16]),
                bypass: false,
            },
            Timestamp(T.0 + 11 * DAY),
        ),
        at(
            MetaCommand::FinishUpload {
                upload,
                version: None,
                used: Vec::new(),
            },
            T,
        ),
        at(MetaCommand::CreateBucket(Box::new(other.clone())), T),
        // Answered false: the bucket exists.
        at(MetaCommand::CreateBucket(Box::new(other.clone())), T),
        at(
            MetaCommand::CreateUpload(Box::new(UploadRecord {
                bucket: other.name.clone(),
                ..self::upload()
            })),
            T,
        ),
        at(
            MetaCommand::DeleteBucket {
                bucket: other.name.clone(),
            },
            T,
        ),
        at(
            MetaCommand::SetPlacement {
                segment: crate::types::SegmentId([6; 16]),
                index: 4,
                placement: crate::meta::ShardPlacement {
                    disk: "ab".repeat(16),
                    root: [7; 32],
                },
            },
            T,
        ),
        at(
            MetaCommand::SetPlacement {
                segment: crate::types::SegmentId([8; 16]),
                index: 1,
                placement: crate::meta::ShardPlacement {
                    disk: "cd".repeat(16),
                    root: [9; 32],
                },
            },
            T,
        ),
        at(
            MetaCommand::DropPlacements {
                segment: crate::types::SegmentId([8; 16]),
            },
            T,
        ),
        at(set_lifecycle(Some(30)), T),
        at(set_lifecycle(None), T),
        at(
            MetaCommand::SetBucketGeo {
                bucket: bucket(),
                config: Some(bucket_geo()),
            },
            T,
        ),
    ]
}

/// A bucket's erasure coding across sites: its own 5+4, refusing writes while a site is
/// down.
pub(crate) fn bucket_geo() -> crate::meta::BucketGeo {
    crate::meta::BucketGeo {
        profile: Some((5, 4)),
        site_down_writes: crate::meta::SiteDownWrites::Refuse,
    }
}

/// A lifecycle change: rules expiring `tmp/` after `days`, or none.
fn set_lifecycle(days: Option<u32>) -> MetaCommand {
    MetaCommand::SetLifecycle {
        bucket: bucket(),
        config: days.map(|d| crate::meta::LifecycleConfig {
            rules: vec![crate::meta::LifecycleRule {
                id: "tmp".into(),
                enabled: true,
                prefix: "tmp/".into(),
                expiration_days: Some(d),
                expired_delete_markers: false,
                noncurrent_days: None,
                newer_noncurrent_versions: None,
                abort_multipart_days: None,
            }],
        }),
    }
}

/// A lifecycle expiry's commit, conditional on the newest version, pinned.
#[test]
fn a_conditional_expiry_keeps_its_bytes() {
    let mut cmd = commit(1, None);
    if let MetaCommand::CommitVersion(v) = &mut cmd {
        v.condition = WriteCondition::Newest(VersionId([3; 16]));
    }
    let c = at(cmd, T);
    let bytes = c.encode().expect("encode");
    assert_eq!(Stamped::decode(&bytes).expect("decode"), c);
    assert_eq!(
        hex::encode(&bytes),
        "040004636d6473016b010101010101010101010101010101018080c489e5c5b20600000265310000000000000000000000000000000004030303030303030303030303030303030000008080c489e5c5b2068080c489e5c5b2068080c489e5c5b20600"
    );
}

/// The lifecycle command, pinned: a peer of the next release decodes these bytes.
#[test]
fn a_lifecycle_command_keeps_its_bytes() {
    let c = at(set_lifecycle(Some(30)), T);
    let bytes = c.encode().expect("encode");
    assert_eq!(Stamped::decode(&bytes).expect("decode"), c);
    assert_eq!(
        hex::encode(&bytes),
        "040f04636d6473010103746d700104746d702f011e000000008080c489e5c5b2068080c489e5c5b2068080c489e5c5b20600"
    );
    // Applied, the rules are the bucket's; removed, they are gone.
    let meta = memory();
    create_bucket(&meta);
    let config = match &c.cmd {
        MetaCommand::SetLifecycle { config, .. } => config.clone(),
        _ => None,
    };
    assert_eq!(run(&meta, &[c]), ["LifecycleSet(true)"]);
    assert_eq!(meta.lifecycle(&bucket()).expect("read"), config);
    assert_eq!(
        run(&meta, &[at(set_lifecycle(None), T)]),
        ["LifecycleSet(true)"]
    );
    assert_eq!(meta.lifecycle(&bucket()).expect("read"), None);
    let gone = at(
        MetaCommand::SetLifecycle {
            bucket: BucketName::new("gone").expect("name"),
            config: None,
        },
        T,
    );
    assert_eq!(run(&meta, &[gone]), ["LifecycleSet(false)"]);
}

pub(crate) fn upload() -> UploadRecord {
    UploadRecord {
        upload_id: crate::types::SegmentId([5; 16]),
        bucket: bucket(),
        key: key(),
        created: T,
        content_type: None,
        user_meta: Vec::new(),
        tags: Vec::new(),
        lock: crate::meta::LockRequest::default(),
        system: SystemMeta::default(),
        checksum_algorithm: None,
    }
}

pub(crate) fn run(meta: &Meta, commands: &[Stamped]) -> Vec<String> {
    commands
        .iter()
        .map(|c| match meta.write_guarded(|m| apply(m, c)) {
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("refused: {e}"),
        })
        .collect()
}

#[test]
fn replicas_that_apply_the_same_log_hold_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks = Meta::open(dir.path()).expect("rocksdb");
    let mem = memory();
    let mut dumps = Vec::new();
    let mut answers = Vec::new();
    for meta in [&rocks, &mem] {
        create_bucket(meta);
        meta.put_upload(&upload()).expect("upload");
        answers.push(run(meta, &log()));
        dumps.push(meta.dump().expect("dump"));
    }
    // A third replica through the single node's log, which prepares a version commit's
    // leaf before it takes the write guard: the same bytes.
    let through_log = Arc::new(memory());
    create_bucket(&through_log);
    through_log.put_upload(&upload()).expect("upload");
    let log_of_node = LocalLog::new(through_log.clone());
    let all = log();
    assert!(all.iter().any(|c| prepare(c).is_some()), "nothing prepared");
    answers.push(
        all.iter()
            .map(|c| match log_of_node.propose(c) {
                Ok(o) => format!("{o:?}"),
                Err(e) => format!("refused: {e}"),
            })
            .collect(),
    );
    dumps.push(through_log.dump().expect("dump"));
    assert_eq!(answers[0], answers[1]);
    assert_eq!(dumps[0], dumps[1]);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(dumps[0], dumps[2]);
    let refused = answers[0]
        .iter()
        .filter(|a| a.starts_with("refused"))
        .count();
    assert_eq!(refused, 3, "{:#?}", answers[0]);
    // Both versions are gone in the end, the removals having waited for their locks.
    assert!(mem.versions_of(&bucket(), &key()).expect("read").is_empty());
}

#[test]
fn a_refused_command_writes_nothing() {
    let meta = memory();
    create_bucket(&meta);
    let all = log();
    run(&meta, &all[..3]);
    let before = meta.dump().expect("dump");
    let refused = meta.write_guarded(|m| apply(m, &all[3]));
    assert!(
        matches!(
            refused,
            Err(CommandError::Lock(LockError::RetentionActive { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(meta.dump().expect("dump"), before);
}

#[test]
fn the_policy_is_read_when_the_command_is_applied() {
    let meta = memory();
    create_bucket(&meta);
    let all = log();
    run(&meta, &all[..3]);
    // A policy set after the proposer looked still bounds the retention.
    let policy = RetentionPolicy {
        min_days: None,
        max_days: Some(30),
        modes: vec![RetentionMode::Compliance, RetentionMode::Governance],
        below_min: crate::meta::BelowMinimum::Refuse,
    };
    run(
        &meta,
        &[at(
            MetaCommand::UpdateBucket {
                bucket: bucket(),
                change: BucketChange::RetentionPolicy {
                    policy: Some(policy),
                    privileged: false,
                },
            },
            T,
        )],
    );
    let too_long = at(
        MetaCommand::UpdateLock {
            bucket: bucket(),
            key: key(),
            version_id: VersionId([2; 16]),
            change: LockChange::Retention {
                requested: Some(Retention {
                    mode: RetentionMode::Compliance,
                    until: Timestamp(T.0 + 400 * DAY),
                }),
                bypass: false,
            },
        },
        T,
    );
    let r = meta.write_guarded(|m| apply(m, &too_long));
    assert!(
        matches!(
            r,
            Err(CommandError::Lock(LockError::PolicyAboveMaximum {
                max_days: 30
            }))
        ),
        "{r:?}"
    );
}

/// One thread places a legal hold while another removes the version, through the log,
/// a thousand times on each engine: the version is either held and kept, or removed
/// with no lock state left behind; never both.
#[test]
fn a_legal_hold_racing_a_removal_never_loses_protection() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, meta) in [
        ("rocksdb", Meta::open(dir.path()).expect("rocksdb")),
        ("memory", memory()),
    ] {
        let meta = Arc::new(meta);
        create_bucket(&meta);
        let log: Arc<dyn CommandLog> = Arc::new(LocalLog::new(meta.clone()));
        let (mut held, mut removed) = (0, 0);
        for i in 0..1000u32 {
            let vid = VersionId::generate(Timestamp(T.0 + i64::from(i)));
            let mut rec = version(0);
            rec.version_id = vid;
            let mut c = commit(0, None);
            if let MetaCommand::CommitVersion(v) = &mut c {
                v.record = rec;
            }
            log.propose(&at(c, T)).expect("commit");
            let start = Arc::new(std::sync::Barrier::new(2));
            let go = |cmd: MetaCommand| {
                let (log, start) = (log.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    log.propose(&at(cmd, T))
                })
            };
            let hold = MetaCommand::UpdateLock {
                bucket: bucket(),
                key: key(),
                version_id: vid,
                change: LockChange::LegalHold(true),
            };
            let remove = MetaCommand::RemoveVersion {
                bucket: bucket(),
                key: key(),
                version_id: vid,
                bypass: false,
            };
            let (h, r) = if i % 2 == 0 {
                let h = go(hold);
                (h, go(remove))
            } else {
                let r = go(remove);
                (go(hold), r)
            };
            let h = h.join().expect("hold thread").expect("hold");
            let r = r.join().expect("remove thread");
            let kept = meta.version(&bucket(), &key(), &vid).expect("read");
            let lock = meta.lock(&bucket(), &key(), &vid).expect("read");
            match (h, r) {
                (Outcome::Lock(Some(l)), Err(CommandError::Lock(LockError::LegalHold))) => {
                    assert!(l.legal_hold && kept.is_some(), "{name} round {i}");
                    held += 1;
                }
                (Outcome::Lock(None), Ok(Outcome::Removed(Some(_)))) => {
                    assert!(kept.is_none() && lock.is_empty(), "{name} round {i}");
                    removed += 1;
                }
                (h, r) => panic!("{name} round {i}: hold {h:?} and removal {r:?}"),
            }
        }
        assert!(
            held > 0 && removed > 0,
            "{name}: {held} held, {removed} removed"
        );
    }
}

/// A command that embeds a version record, pinned: a field added to a record inside a
/// command changes these bytes, and must come with a format bump of `Stamped`.
#[test]
fn a_commit_command_keeps_its_bytes() {
    let c = at(commit(1, None), T);
    let bytes = c.encode().expect("encode");
    assert_eq!(Stamped::decode(&bytes).expect("decode"), c);
    assert_eq!(
        hex::encode(&bytes),
        "040004636d6473016b010101010101010101010101010101018080c489e5c5b206000002653100000000000000000000000000000000000000008080c489e5c5b2068080c489e5c5b2068080c489e5c5b20600"
    );
    // Format 3, before the requester: the same command, by nobody.
    let v3 = hex::decode("030004636d6473016b010101010101010101010101010101018080c489e5c5b206000002653100000000000000000000000000000000000000008080c489e5c5b2068080c489e5c5b2068080c489e5c5b206").expect("hex");
    assert_eq!(Stamped::decode(&v3).expect("format 3"), c);
}

/// Every applied change writes its audit leaf in its own batch, naming its requester and
/// the stamp's time; a refusal writes none (the caller records it apart); the leaves
/// chain without a gap.
#[test]
fn each_change_writes_its_audit_leaf_with_it() {
    let meta = memory();
    create_bucket(&meta);
    let by = crate::audit::Requester {
        user: Some("veeam".into()),
        key: Some("AK".into()),
        source: Some("10.0.0.9".into()),
        request_id: Some("req-1".into()),
    };
    let mut c = at(commit(1, None), T);
    c.by = Some(by.clone());
    run(&meta, &[c.clone()]);
    // Again: refused (the version exists), nothing appended.
    assert!(run(&meta, &[c.clone()])[0].starts_with("refused"));
    let removal = at(
        MetaCommand::RemoveVersion {
            bucket: bucket(),
            key: key(),
            version_id: VersionId([1; 16]),
            bypass: false,
        },
        T,
    );
    run(&meta, &[removal.clone(), removal]);
    let leaves = crate::audit::log::leaves(&meta, 0, 10).expect("leaves");
    let events: Vec<serde_json::Value> = leaves
        .iter()
        .map(|(_, l)| serde_json::from_slice(l).expect("json"))
        .collect();
    // The second removal found nothing to remove: no leaf.
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], "version-created");
    assert_eq!(events[0]["actor"]["user"], "veeam");
    assert_eq!(events[0]["request_id"], "req-1");
    assert_eq!(events[0]["target"]["key"], key().as_str());
    assert_eq!(events[0]["ts"], crate::audit::entry::iso_micros(T));
    assert_eq!(events[1]["event"], "version-removed");
    assert_eq!(events[1]["seq"], 1);
    assert_eq!(
        events[1]["prev"],
        hex::encode(crate::crypto::sha256(&leaves[0].1))
    );
    assert_eq!(crate::audit::log::head(&meta).expect("head").size, 2);
    // The refusal, as the proposer records it.
    let e = crate::command::refusal(
        &c,
        &crate::command::CommandError::Meta(crate::meta::MetaError::VersionExists {
            bucket: bucket(),
            key: key(),
            version_id: VersionId([1; 16]),
        }),
    )
    .expect("a refusal");
    assert_eq!(e.event, "version-created");
    assert!(matches!(e.outcome, crate::audit::Outcome::Refused(_)));
}

mod identity {
    //! Identity writes as commands: the same log gives the same records on every replica,
    //! a refusal writes nothing, and the encoding is pinned like every command's.

    use super::*;
    use crate::identity::model::{Grant, KeyRecord, Plane, Role, Scope, Settings, UserRecord};
    use crate::identity::{ApprovalRecord, IdentityChange, IdentityError, Privileged, UserChange};

    fn user(name: &str, role: Role) -> UserRecord {
        UserRecord {
            name: name.into(),
            created: T,
            disabled: false,
            grants: vec![Grant {
                role,
                scope: Scope::All,
            }],
            bypass_governance: None,
        }
    }

    fn key(access: &str, user: &str) -> KeyRecord {
        KeyRecord {
            access_key: access.into(),
            user: user.into(),
            plane: Plane::Admin,
            sealed_secret: vec![9; 8],
            created: T,
            revoked: None,
        }
    }

    fn approval(by: &str, expires: Timestamp) -> ApprovalRecord {
        ApprovalRecord {
            id: "ap1".into(),
            operation: Privileged::SetTwoPersonRule { enabled: false },
            requested_by: by.into(),
            created: T,
            expires,
        }
    }

    fn changes() -> Vec<Stamped> {
        let c = |change| at(MetaCommand::Identity(change), T);
        vec![
            c(IdentityChange::CreateUser {
                user: user("root", Role::Admin),
            }),
            c(IdentityChange::PutKey {
                key: key("SAROOT", "root"),
            }),
            // Refused: the name is taken.
            c(IdentityChange::CreateUser {
                user: user("root", Role::Auditor),
            }),
            // Refused: the only administrator cannot lose the role.
            c(IdentityChange::ChangeUser {
                name: "root".into(),
                change: UserChange::Grants(Vec::new()),
            }),
            c(IdentityChange::CreateUser {
                user: user("second", Role::Admin),
            }),
            c(IdentityChange::PutKey {
                key: key("SASECOND", "second"),
            }),
            c(IdentityChange::SetSettings {
                settings: Settings {
                    two_person_rule: true,
                },
            }),
            c(IdentityChange::FileApproval {
                approval: approval("root", Timestamp(T.0 + DAY)),
            }),
            // Refused: the requester cannot approve its own request.
            c(IdentityChange::ConsumeApproval {
                id: "ap1".into(),
                actor: "root".into(),
            }),
            c(IdentityChange::ConsumeApproval {
                id: "ap1".into(),
                actor: "second".into(),
            }),
            // Refused: consumed once.
            c(IdentityChange::DenyApproval { id: "ap1".into() }),
            c(IdentityChange::ChangeUser {
                name: "root".into(),
                change: UserChange::Disabled(true),
            }),
            // Refused: "root" is disabled, so "second" is the last administrator.
            c(IdentityChange::DeleteUser {
                name: "second".into(),
            }),
            c(IdentityChange::DeleteUser {
                name: "root".into(),
            }),
            c(IdentityChange::RevokeKey {
                access_key: "SASECOND".into(),
            }),
        ]
    }

    #[test]
    fn replicas_that_apply_the_same_identity_changes_hold_the_same_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = Meta::open(dir.path()).expect("rocksdb");
        let mem = memory();
        let mut dumps = Vec::new();
        let mut answers = Vec::new();
        for meta in [&rocks, &mem] {
            answers.push(run(meta, &changes()));
            dumps.push(meta.dump().expect("dump"));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(dumps[0], dumps[1]);
        let refused: Vec<usize> = answers[0]
            .iter()
            .enumerate()
            .filter(|(_, a)| a.starts_with("refused"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(refused, vec![2, 3, 8, 10, 12], "{:#?}", answers[0]);
        // root's keys were revoked at the change's time when root was deleted.
        let k: KeyRecord = mem
            .kv_get(crate::meta::Space::Identity, "key/SAROOT")
            .expect("read")
            .expect("kept");
        assert_eq!(k.revoked, Some(T));
    }

    #[test]
    fn a_refused_identity_change_writes_nothing() {
        let meta = memory();
        let all = changes();
        run(&meta, &all[..2]);
        let before = meta.dump().expect("dump");
        let refused = meta.write_guarded(|m| apply(m, &all[3]));
        assert!(
            matches!(
                refused,
                Err(CommandError::Identity(IdentityError::LastAdmin))
            ),
            "{refused:?}"
        );
        assert_eq!(meta.dump().expect("dump"), before);
    }

    #[test]
    fn an_expired_approval_is_consumed_not_approved() {
        let meta = memory();
        let c = |change, t| at(MetaCommand::Identity(change), t);
        let filed = c(
            IdentityChange::FileApproval {
                approval: approval("root", Timestamp(T.0 + 10)),
            },
            T,
        );
        let late = c(
            IdentityChange::ConsumeApproval {
                id: "ap1".into(),
                actor: "second".into(),
            },
            Timestamp(T.0 + 11),
        );
        let answers = run(&meta, &[filed, late.clone()]);
        assert!(answers[1].starts_with("Identity(Expired("), "{answers:?}");
        let again = run(&meta, &[late]);
        assert!(again[0].starts_with("refused"), "consumed once: {again:?}");
    }

    /// The encoding of an identity command, pinned (the other commands' bytes are pinned
    /// in `tests/formats.rs`).
    #[test]
    fn an_identity_command_keeps_its_bytes() {
        let c = Stamped {
            cmd: MetaCommand::Identity(IdentityChange::ChangeUser {
                name: "u".into(),
                change: UserChange::Disabled(true),
            }),
            now: Now::at(Timestamp(5)),
            by: None,
        };
        let bytes = c.encode().expect("encode");
        assert_eq!(Stamped::decode(&bytes).expect("decode"), c);
        assert_eq!(hex::encode(&bytes), "040601017501010a0a0a00");
        // Format 3 named no requester: read as none.
        let v3 = hex::decode("030601017501010a0a0a").expect("hex");
        assert_eq!(Stamped::decode(&v3).expect("format 3"), c);
    }

    /// A create-only add, pinned (appended last): it stores a key of a new id, and is
    /// refused for an id that exists, active or revoked (never revives or replaces one).
    #[test]
    fn an_added_key_keeps_its_bytes_and_never_replaces_one() {
        let add = at(
            MetaCommand::Identity(IdentityChange::AddKey { key: key("K", "u") }),
            T,
        );
        let bytes = add.encode().expect("encode");
        assert_eq!(Stamped::decode(&bytes).expect("decode"), add);
        assert_eq!(
            hex::encode(&bytes),
            "04060a014b0175010809090909090909098080c489e5c5b206008080c489e5c5b2068080c489e5c5b2068080c489e5c5b20600"
        );
        let meta = memory();
        let log = vec![
            at(
                MetaCommand::Identity(IdentityChange::CreateUser {
                    user: user("u", Role::BackupWriter),
                }),
                T,
            ),
            add.clone(),
            add.clone(),
            at(
                MetaCommand::Identity(IdentityChange::RevokeKey {
                    access_key: "K".into(),
                }),
                T,
            ),
            add,
        ];
        let answers = run(&meta, &log);
        assert!(answers[1].starts_with("Identity(Key("), "{answers:?}");
        assert!(answers[2].starts_with("refused"), "{answers:?}");
        assert!(answers[4].starts_with("refused"), "{answers:?}");
        let stored: crate::identity::KeyRecord = meta
            .kv_get(crate::meta::Space::Identity, "key/K")
            .expect("get")
            .expect("key");
        assert!(stored.revoked.is_some(), "still revoked");
    }

    /// A key sealed again, pinned (appended after the other identity changes), and
    /// applied: the secret changes, nothing else of the key; an unknown key is refused.
    #[test]
    fn a_resealed_key_keeps_its_bytes_and_only_its_secret_changes() {
        let c = Stamped {
            cmd: MetaCommand::Identity(IdentityChange::ResealKey {
                access_key: "K".into(),
                sealed_secret: vec![1, 2],
            }),
            now: Now::at(Timestamp(5)),
            by: None,
        };
        let bytes = c.encode().expect("encode");
        assert_eq!(Stamped::decode(&bytes).expect("decode"), c);
        assert_eq!(hex::encode(&bytes), "040609014b0201020a0a0a00");
        let meta = memory();
        let mut log = vec![
            at(
                MetaCommand::Identity(IdentityChange::CreateUser {
                    user: user("u", Role::BackupWriter),
                }),
                T,
            ),
            at(
                MetaCommand::Identity(IdentityChange::PutKey { key: key("K", "u") }),
                T,
            ),
        ];
        log.push(c.clone());
        let answers = run(&meta, &log);
        assert!(answers[2].starts_with("Identity(Key("), "{answers:?}");
        let stored: crate::identity::KeyRecord = meta
            .kv_get(crate::meta::Space::Identity, "key/K")
            .expect("get")
            .expect("key");
        let mut expected = key("K", "u");
        expected.sealed_secret = vec![1, 2];
        assert_eq!(stored, expected);
        let unknown = Stamped {
            cmd: MetaCommand::Identity(IdentityChange::ResealKey {
                access_key: "NONE".into(),
                sealed_secret: vec![3],
            }),
            ..c
        };
        assert!(run(&meta, &[unknown])[0].starts_with("refused"));
    }
}

fn sized(n: u8, size: u64) -> MetaCommand {
    let mut c = commit(n, None);
    if let MetaCommand::CommitVersion(v) = &mut c {
        v.record.size = size;
    }
    c
}

fn quota(q: Option<u64>) -> Stamped {
    at(
        MetaCommand::UpdateBucket {
            bucket: bucket(),
            change: BucketChange::Quota(q),
        },
        T,
    )
}

#[test]
fn usage_follows_commits_and_removals_and_a_quota_refuses_what_would_pass_it() {
    let meta = memory();
    create_bucket(&meta);
    let usage = |m: &Meta| m.usage(&bucket()).expect("usage");
    run(&meta, &[at(sized(1, 600), T), at(sized(2, 300), T)]);
    assert_eq!(
        usage(&meta),
        crate::meta::BucketUsage {
            bytes: 900,
            objects: 2,
            upload_bytes: 0,
        }
    );
    // A delete marker holds nothing.
    let mut marker = commit(3, None);
    if let MetaCommand::CommitVersion(v) = &mut marker {
        v.record.kind = VersionKind::DeleteMarker;
    }
    run(&meta, &[at(marker, T)]);
    assert_eq!(usage(&meta).objects, 2);

    run(&meta, &[quota(Some(1000))]);
    let before = meta.dump().expect("dump");
    let out = run(&meta, &[at(sized(4, 101), T)]);
    assert!(
        out[0].starts_with("refused: bucket cmds: the write needs 101 bytes, the quota is 1000"),
        "{out:?}"
    );
    assert_eq!(
        meta.dump().expect("dump"),
        before,
        "a refused write changes nothing"
    );
    // Exactly at the quota passes.
    let out = run(&meta, &[at(sized(4, 100), T)]);
    assert_eq!(out[0], "Committed");
    assert_eq!(usage(&meta).bytes, 1000);
    // A peer's version is counted but never refused: the source's quota governed it.
    let mut peer = sized(5, 50);
    if let MetaCommand::CommitVersion(v) = &mut peer {
        v.record.origin = crate::meta::Origin::Replica;
    }
    assert_eq!(run(&meta, &[at(peer, T)])[0], "Committed");
    assert_eq!(usage(&meta).bytes, 1050);
    // A removal frees bytes, and lowering the quota below usage removes nothing.
    let remove = |n: u8| {
        at(
            MetaCommand::RemoveVersion {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([n; 16]),
                bypass: false,
            },
            T,
        )
    };
    run(&meta, &[remove(1), quota(Some(10))]);
    assert_eq!(
        usage(&meta),
        crate::meta::BucketUsage {
            bytes: 450,
            objects: 3,
            upload_bytes: 0,
        }
    );
    assert!(run(&meta, &[at(sized(6, 1), T)])[0].starts_with("refused"));
    // An empty object adds no bytes: not refused.
    assert_eq!(run(&meta, &[at(sized(7, 0), T)])[0], "Committed");
    run(&meta, &[quota(None)]);
    assert_eq!(run(&meta, &[at(sized(8, 5000), T)])[0], "Committed");
}

#[test]
fn parts_in_progress_count_against_the_quota_until_the_upload_ends() {
    let meta = memory();
    create_bucket(&meta);
    run(&meta, &[at(sized(1, 900), T), quota(Some(1000))]);
    meta.put_upload(&upload()).expect("upload");
    let part = |number: u16, size: u64| PartRecord {
        part_number: number,
        etag: "p".into(),
        size,
        created: T,
        checksums: Vec::new(),
        segment: None,
        blake3: None,
    };
    let cmd = |number, size| {
        at(
            MetaCommand::CommitPart {
                upload: Box::new(upload()),
                part: Box::new(part(number, size)),
            },
            T,
        )
    };
    let usage = |m: &Meta| m.usage(&bucket()).expect("usage");
    assert!(run(&meta, &[cmd(1, 101)])[0].starts_with("refused"));
    assert!(run(&meta, &[cmd(1, 100)])[0].starts_with("PartCommitted"));
    assert_eq!(usage(&meta).upload_bytes, 100);
    // The parts already taken count: one more byte is past the quota.
    assert!(run(&meta, &[cmd(2, 1)])[0].starts_with("refused"));
    // A part replacing a larger one frees its bytes.
    assert!(run(&meta, &[cmd(1, 50)])[0].starts_with("PartCommitted"));
    assert_eq!(usage(&meta).upload_bytes, 50);
    let abort = at(
        MetaCommand::FinishUpload {
            upload: upload(),
            version: None,
            used: Vec::new(),
        },
        T,
    );
    assert!(run(&meta, &[abort])[0].starts_with("UploadFinished"));
    assert_eq!(
        usage(&meta),
        crate::meta::BucketUsage {
            bytes: 900,
            objects: 1,
            upload_bytes: 0,
        }
    );
}

/// The rebalancer's move is a compare-and-set: recorded only while the version holds the
/// segment and the shard is where the mover found it (its record, then a placement);
/// a stale `from`, another segment or a removed version change nothing. Its bytes are
/// pinned.
#[test]
fn a_shard_move_is_recorded_only_from_where_the_shard_is() {
    let meta = memory();
    create_bucket(&meta);
    let seg = SegmentId([5; 16]);
    let mut v = version(1);
    v.segments = vec![crate::meta::SegmentRecord {
        id: seg,
        geometry: crate::geometry::Geometry::new(2, 1, 4096, 10_000),
        shards: (0..3)
            .map(|i| crate::meta::ShardRecord {
                disk: format!("{i}").repeat(32),
                root: Some([i; 32]),
            })
            .collect(),
    }];
    let MetaCommand::CommitVersion(mut c) = commit(1, None) else {
        unreachable!("a commit")
    };
    c.record = v;
    let mv = |from: &str, to: &str, segment: SegmentId| {
        at(
            MetaCommand::MoveShard {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([1; 16]),
                segment,
                index: 1,
                from: from.into(),
                to: crate::meta::ShardPlacement {
                    disk: to.into(),
                    root: [1; 32],
                },
            },
            T,
        )
    };
    let (d1, d7, d8) = ("1".repeat(32), "7".repeat(32), "8".repeat(32));
    assert_eq!(
        run(
            &meta,
            &[
                at(MetaCommand::CommitVersion(c), T),
                mv(&d7, &d8, seg),
                mv(&d1, &d8, SegmentId([6; 16])),
                mv(&d1, &d7, seg),
                // Recorded on 7 now: a mover that still thinks it is on 1 loses.
                mv(&d1, &d8, seg),
                mv(&d7, &d8, seg),
            ]
        ),
        [
            "Committed",
            "Moved(false)",
            "Moved(false)",
            "Moved(true)",
            "Moved(false)",
            "Moved(true)",
        ]
    );
    assert_eq!(
        meta.placements(&seg).expect("placements"),
        [(
            1,
            crate::meta::ShardPlacement {
                disk: d8.clone(),
                root: [1; 32]
            }
        )]
    );
    let gone = memory();
    create_bucket(&gone);
    assert_eq!(run(&gone, &[mv(&d1, &d7, seg)]), ["Moved(false)"]);
    assert!(gone.placements(&seg).expect("placements").is_empty());
    let bytes = mv(&d1, &d7, seg).encode().expect("encode");
    assert_eq!(Stamped::decode(&bytes).expect("decode"), mv(&d1, &d7, seg));
    assert_eq!(
        hex::encode(&bytes),
        "041004636d6473016b01010101010101010101010101010101050505050505050505050505050505050120313131313131313131313131313131313131313131313131313131313131313120373737373737373737373737373737373737373737373737373737373737373701010101010101010101010101010101010101010101010101010101010101018080c489e5c5b2068080c489e5c5b2068080c489e5c5b20600"
    );
}
