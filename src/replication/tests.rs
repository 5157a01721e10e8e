//! The replication log and the receiving side, through a real engine: what is logged in
//! the commit of each change, what never is, what the RPO reads, and what a replica
//! refuses.

use std::sync::Arc;

use bytes::Bytes;

use super::log::{self, DeadReason, LogOp};
use super::*;
use crate::NodeConfig;
use crate::clock::ManualClock;
use crate::meta::{LockRecord, Origin, Record, Retention, RetentionMode, Versioning};
use crate::store::{PutOptions, Store, StoreError, VersionRef};
use crate::types::{ObjectKey, Timestamp, VersionId};

const T0: Timestamp = Timestamp(1_800_000_000_000_000);

struct Site {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
}

fn site(lock: bool) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let store = Store::open(NodeConfig::embedded(dir.path()), clock.clone()).expect("open");
    for name in ["src", "dst"] {
        let b = BucketName::new(name).expect("name");
        store.create_bucket(&b, lock).expect("bucket");
        if !lock {
            store
                .set_versioning(&b, Versioning::Enabled)
                .expect("versioning");
        }
    }
    Site {
        _dir: dir,
        store,
        clock,
    }
}

fn b(name: &str) -> BucketName {
    BucketName::new(name).expect("name")
}

fn k(name: &str) -> ObjectKey {
    ObjectKey::new(name).expect("key")
}

use crate::store::tests::{body, rt};

fn add_peer(store: &Store) -> u32 {
    let out = store
        .change_replication(ReplicationChange::AddPeer(PeerRecord {
            name: "b".into(),
            id: 0,
            endpoint: "https://b:9000".into(),
            trust: PeerTrust::Fingerprint([1; 32]),
            access_key: "AK".into(),
            sealed_secret: vec![1],
            created: Timestamp(0),
        }))
        .expect("peer");
    match out {
        ReplicationOutcome::Peer(p) => p.id,
        other => panic!("{other:?}"),
    }
}

fn rule(prefix: &str, delete_markers: bool) -> ReplicationRule {
    ReplicationRule {
        id: "r".into(),
        enabled: true,
        prefix: prefix.into(),
        peer: "b".into(),
        target_bucket: b("dst"),
        delete_markers,
        rpo_alert_secs: DEFAULT_RPO_ALERT_SECS,
        bandwidth: None,
        backfill: false,
    }
}

fn set_rules(store: &Store, rules: Vec<ReplicationRule>) {
    store
        .change_replication(ReplicationChange::SetRules {
            bucket: b("src"),
            rules: Some(BucketReplication {
                bucket: b("src"),
                rules,
            }),
        })
        .expect("rules");
}

fn put(rt: &tokio::runtime::Runtime, store: &Store, key: &str, data: &[u8]) -> VersionId {
    rt.block_on(store.put_object(&b("src"), &k(key), PutOptions::default(), body(data)))
        .expect("put")
        .version_id
}

fn ops(store: &Store, peer: u32) -> Vec<(LogOp, String)> {
    log::pending(store.meta(), peer, log::EntryClass::Live, 0, usize::MAX)
        .expect("log")
        .into_iter()
        .map(|(_, e)| (e.op, e.key.to_string()))
        .collect()
}

#[test]
fn each_change_a_rule_selects_is_logged_with_it_and_nothing_else_is() {
    let rt = rt();
    let s = site(true);
    let peer = add_peer(&s.store);
    set_rules(&s.store, vec![rule("p/", false)]);
    let v = put(&rt, &s.store, "p/a", b"hello");
    put(&rt, &s.store, "q/a", b"not selected");
    // A delete marker: not logged while the rule leaves them out.
    rt.block_on(s.store.delete_object(&b("src"), &k("p/a"), None, false))
        .expect("marker");
    assert_eq!(ops(&s.store, peer), vec![(LogOp::Version, "p/a".into())]);
    let backlog = log::backlog(s.store.meta(), peer).expect("backlog");
    assert_eq!((backlog.entries, backlog.bytes, backlog.head), (1, 5, 1));

    set_rules(&s.store, vec![rule("p/", true)]);
    rt.block_on(s.store.delete_object(&b("src"), &k("p/a"), None, false))
        .expect("marker");
    // The lifecycle worker's markers never replicate.
    s.store
        .delete_object_blocking(
            &b("src"),
            &k("p/b"),
            None,
            false,
            Origin::Lifecycle,
            &crate::meta::WriteCondition::Always,
        )
        .expect("lifecycle marker");
    // A lock change on a replicated version is logged; one that changes nothing is not.
    s.store
        .set_object_legal_hold(&b("src"), &k("p/a"), Some(&VersionRef::Id(v)), true)
        .expect("hold");
    s.store
        .set_object_legal_hold(&b("src"), &k("p/a"), Some(&VersionRef::Id(v)), true)
        .expect("hold again");
    assert_eq!(
        ops(&s.store, peer),
        vec![
            (LogOp::Version, "p/a".into()),
            (LogOp::DeleteMarker, "p/a".into()),
            (LogOp::Lock, "p/a".into()),
        ]
    );
    // Version deletions never replicate.
    let before = ops(&s.store, peer).len();
    put(&rt, &s.store, "p/c", b"x");
    let unlocked = log::pending(s.store.meta(), peer, log::EntryClass::Live, 0, usize::MAX)
        .expect("log")
        .into_iter()
        .find(|(_, e)| e.key.as_str() == "p/c")
        .map(|(_, e)| e.version_id)
        .expect("p/c logged");
    rt.block_on(s.store.delete_object(
        &b("src"),
        &k("p/c"),
        Some(&VersionRef::Id(unlocked)),
        false,
    ))
    .expect("version delete");
    assert_eq!(ops(&s.store, peer).len(), before + 1);
}

#[test]
fn the_rpo_is_the_age_of_the_oldest_unacknowledged_change_and_zero_without_one() {
    let rt = rt();
    let s = site(false);
    let peer = add_peer(&s.store);
    set_rules(&s.store, vec![rule("", false)]);
    let now = || s.store.clock().now();
    assert_eq!(
        log::backlog(s.store.meta(), peer)
            .expect("b")
            .rpo_secs(now()),
        0.0
    );
    put(&rt, &s.store, "a", b"1");
    s.clock.advance_micros(10_000_000);
    put(&rt, &s.store, "b", b"2");
    s.clock.advance_micros(5_000_000);
    let backlog = log::backlog(s.store.meta(), peer).expect("b");
    assert_eq!(backlog.rpo_secs(now()), 15.0);
    // The peer acknowledges the newer entry first: the RPO still counts from the older.
    let seqs: Vec<u64> = log::pending(s.store.meta(), peer, log::EntryClass::Live, 0, 10)
        .expect("log")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    s.store
        .change_replication(ReplicationChange::Acknowledge {
            peer,
            seqs: vec![seqs[1]],
        })
        .expect("ack");
    assert_eq!(
        log::backlog(s.store.meta(), peer)
            .expect("b")
            .rpo_secs(now()),
        15.0
    );
    // A parked entry is not replicated: it still counts.
    s.store
        .change_replication(ReplicationChange::Park {
            peer,
            seq: seqs[0],
            reason: DeadReason::Refused,
            detail: "403".into(),
        })
        .expect("park");
    let backlog = log::backlog(s.store.meta(), peer).expect("b");
    assert_eq!((backlog.entries, backlog.dead_total()), (0, 1));
    assert_eq!(backlog.rpo_secs(now()), 15.0);
    let retried = s
        .store
        .change_replication(ReplicationChange::RetryDead { peer, reason: None })
        .expect("retry");
    assert_eq!(retried, ReplicationOutcome::Retried(1));
    s.store
        .change_replication(ReplicationChange::Acknowledge {
            peer,
            seqs: vec![seqs[0]],
        })
        .expect("ack");
    assert_eq!(
        log::backlog(s.store.meta(), peer)
            .expect("b")
            .rpo_secs(now()),
        0.0
    );
}

#[test]
fn peers_and_rules_are_checked() {
    let s = site(false);
    // A rule naming no peer, an unversioned source, overlapping prefixes to one peer.
    let refused = s.store.change_replication(ReplicationChange::SetRules {
        bucket: b("src"),
        rules: Some(BucketReplication {
            bucket: b("src"),
            rules: vec![rule("", false)],
        }),
    });
    assert!(
        matches!(
            refused,
            Err(StoreError::Replication(ReplicationError::NoSuchPeer { .. }))
        ),
        "{refused:?}"
    );
    add_peer(&s.store);
    let mut second = rule("a/", false);
    second.id = "r2".into();
    let overlapping = s.store.change_replication(ReplicationChange::SetRules {
        bucket: b("src"),
        rules: Some(BucketReplication {
            bucket: b("src"),
            rules: vec![rule("", false), second],
        }),
    });
    assert!(
        matches!(
            overlapping,
            Err(StoreError::Replication(
                ReplicationError::InvalidRules { .. }
            ))
        ),
        "{overlapping:?}"
    );
    set_rules(&s.store, vec![rule("", false)]);
    let in_use = s
        .store
        .change_replication(ReplicationChange::RemovePeer { name: "b".into() });
    assert!(
        matches!(
            in_use,
            Err(StoreError::Replication(ReplicationError::PeerInUse { .. }))
        ),
        "{in_use:?}"
    );
    let duplicate = s
        .store
        .change_replication(ReplicationChange::AddPeer(PeerRecord {
            name: "b".into(),
            id: 0,
            endpoint: "https://c".into(),
            trust: PeerTrust::Plain,
            access_key: "x".into(),
            sealed_secret: vec![],
            created: Timestamp(0),
        }));
    assert!(matches!(
        duplicate,
        Err(StoreError::Replication(ReplicationError::PeerExists { .. }))
    ));
}

/// A read's body, whole.
fn read_all(rt: &tokio::runtime::Runtime, mut body: crate::store::Body) -> Vec<u8> {
    rt.block_on(async {
        use futures::StreamExt;
        let mut out = Vec::new();
        while let Some(c) = body.next().await {
            out.extend_from_slice(&c.expect("chunk"));
        }
        out
    })
}

fn replica(data: &[u8], id: VersionId, lock: LockRecord) -> ReplicaVersion {
    ReplicaVersion {
        version_id: id,
        created: id.timestamp(),
        size: data.len() as u64,
        etag: "0123".into(),
        content_type: Some("a/b".into()),
        user_meta: vec![("m".into(), "v".into())],
        system: crate::meta::SystemMeta::default(),
        checksums: Vec::new(),
        composite_checksum: false,
        parts: vec![(data.len() as u64, *blake3::hash(data).as_bytes())],
        lock,
        tags: vec![("t".into(), "1".into())],
    }
}

#[test]
fn a_replica_keeps_the_source_id_and_is_checked_and_never_overwritten() {
    let rt = rt();
    let s = site(true);
    let data = vec![7u8; 300_000];
    let id = VersionId::generate(Timestamp(T0.0 - 5_000_000));
    let until = Timestamp(T0.0 + 86_400_000_000);
    let lock = LockRecord {
        retention: Some(Retention {
            mode: RetentionMode::Compliance,
            until,
        }),
        legal_hold: false,
    };
    let dst = b("dst");
    // Damaged on the way: refused, nothing stored.
    let mut bad = data.clone();
    bad[123_456] ^= 1;
    let r = rt.block_on(
        s.store
            .put_replica(&dst, &k("x"), replica(&data, id, lock), body(&bad)),
    );
    assert!(
        matches!(r, Err(StoreError::ReplicaDigest { part: 0, .. })),
        "{r:?}"
    );
    assert!(
        s.store
            .meta()
            .version(&dst, &k("x"), &id)
            .expect("read")
            .is_none()
    );
    // Short: refused.
    let r = rt.block_on(s.store.put_replica(
        &dst,
        &k("x"),
        replica(&data, id, lock),
        body(&data[..1000]),
    ));
    assert!(r.is_err(), "{r:?}");
    // Whole: stored under the source's id and time, with its lock state.
    let r = rt.block_on(
        s.store
            .put_replica(&dst, &k("x"), replica(&data, id, lock), body(&data)),
    );
    assert_eq!(r.expect("stored"), ReplicaResult::Applied);
    let rec = s
        .store
        .meta()
        .version(&dst, &k("x"), &id)
        .expect("read")
        .expect("there");
    assert_eq!(
        (rec.created, rec.origin, rec.etag.as_str()),
        (id.timestamp(), Origin::Replica, "0123")
    );
    assert_eq!(s.store.meta().lock(&dst, &k("x"), &id).expect("lock"), lock);
    let read = rt
        .block_on(
            s.store
                .get_object(&dst, &k("x"), Some(&VersionRef::Id(id)), None),
        )
        .expect("read");
    let got = read_all(&rt, read.body);
    assert_eq!(got, data);
    // Again: unchanged. Same id, other bytes: refused, the stored one kept.
    let r = rt.block_on(
        s.store
            .put_replica(&dst, &k("x"), replica(&data, id, lock), body(&data)),
    );
    assert_eq!(r.expect("again"), ReplicaResult::Unchanged);
    let other = vec![8u8; 10];
    let r =
        rt.block_on(
            s.store
                .put_replica(&dst, &k("x"), replica(&other, id, lock), body(&other)),
        );
    assert!(
        matches!(r, Err(StoreError::ReplicaConflict { .. })),
        "{r:?}"
    );
    // A weaker lock from the source is not mirrored (divergence); a stronger one is.
    let weaker = LockRecord::default();
    assert_eq!(
        s.store
            .put_replica_lock(&dst, &k("x"), id, &weaker)
            .expect("join"),
        ReplicaResult::Diverged
    );
    assert_eq!(s.store.meta().lock(&dst, &k("x"), &id).expect("lock"), lock);
    let held = LockRecord {
        legal_hold: true,
        ..lock
    };
    assert_eq!(
        s.store
            .put_replica_lock(&dst, &k("x"), id, &held)
            .expect("join"),
        ReplicaResult::Applied
    );
    assert_eq!(s.store.meta().lock(&dst, &k("x"), &id).expect("lock"), held);
    // A lock for a version not arrived yet: the sender retries.
    let r = s
        .store
        .put_replica_lock(&dst, &k("y"), VersionId::generate(T0), &held);
    assert!(matches!(r, Err(StoreError::NoSuchVersion { .. })), "{r:?}");
}

#[test]
fn replicas_are_not_replicated_again_and_need_a_versioned_bucket() {
    let rt = rt();
    let s = site(false);
    let peer = add_peer(&s.store);
    set_rules(&s.store, vec![rule("", true)]);
    let data = b"replicated".to_vec();
    let id = VersionId::generate(T0);
    rt.block_on(s.store.put_replica(
        &b("src"),
        &k("r"),
        replica(&data, id, LockRecord::default()),
        body(&data),
    ))
    .expect("stored");
    s.store
        .put_replica_marker(&b("src"), &k("r"), VersionId::generate(T0), T0)
        .expect("marker");
    assert!(ops(&s.store, peer).is_empty());
    // A lock state for a bucket without Object Lock is refused.
    let locked = LockRecord {
        retention: None,
        legal_hold: true,
    };
    let r = rt.block_on(s.store.put_replica(
        &b("dst"),
        &k("r"),
        replica(&data, VersionId::generate(T0), locked),
        body(&data),
    ));
    assert!(
        matches!(r, Err(StoreError::ReplicaNotAccepted { .. })),
        "{r:?}"
    );
}

fn shard_files(dir: &std::path::Path) -> usize {
    crate::store::tests::walk(dir)
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "shards"))
        .count()
}

#[test]
fn a_replica_is_checked_at_every_part_boundary_and_a_refusal_leaves_nothing() {
    let rt = rt();
    let s = site(true);
    let dst = b("dst");
    let parts: Vec<Vec<u8>> = vec![vec![1u8; 300_000], vec![2u8; 200_000], vec![3u8; 1]];
    let whole: Vec<u8> = parts.concat();
    let rv = |id: VersionId| ReplicaVersion {
        parts: parts
            .iter()
            .map(|p| (p.len() as u64, *blake3::hash(p).as_bytes()))
            .collect(),
        etag: "abcd-3".into(),
        ..replica(&whole, id, LockRecord::default())
    };
    let files_before = shard_files(s._dir.path());
    let id = VersionId::generate(T0);
    // A byte of the second part damaged: refused, naming it.
    let mut bad = whole.clone();
    bad[300_000 + 5] ^= 1;
    let r = rt.block_on(s.store.put_replica(&dst, &k("m"), rv(id), body(&bad)));
    assert!(
        matches!(r, Err(StoreError::ReplicaDigest { part: 1, .. })),
        "{r:?}"
    );
    // One byte more than declared, one fewer, a body that fails mid-way.
    let mut long = whole.clone();
    long.push(0);
    for wrong in [long, whole[..whole.len() - 1].to_vec()] {
        let r = rt.block_on(s.store.put_replica(&dst, &k("m"), rv(id), body(&wrong)));
        assert!(r.is_err(), "{} bytes: {r:?}", wrong.len());
    }
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from(whole[..100_000].to_vec())),
        Err(std::io::Error::other("cut")),
    ]);
    let r = rt.block_on(s.store.put_replica(&dst, &k("m"), rv(id), failing));
    assert!(r.is_err(), "{r:?}");
    // Nothing stayed behind: no version, no shard file, no pending record.
    assert!(
        s.store
            .meta()
            .version(&dst, &k("m"), &id)
            .expect("read")
            .is_none()
    );
    assert_eq!(shard_files(s._dir.path()), files_before);
    assert!(s.store.meta().pending().expect("pending").is_empty());
    // Whole: stored, every part checked, the source's per-part digests kept.
    let r = rt.block_on(s.store.put_replica(&dst, &k("m"), rv(id), body(&whole)));
    assert_eq!(r.expect("stored"), ReplicaResult::Applied);
    let rec = s
        .store
        .meta()
        .version(&dst, &k("m"), &id)
        .expect("read")
        .expect("there");
    assert_eq!(
        (rec.etag.as_str(), rec.blake3.len(), rec.size),
        ("abcd-3", 3, 500_001)
    );
    // An empty object: one part of no bytes.
    let empty = VersionId::generate(Timestamp(T0.0 + 1));
    let r = rt.block_on(s.store.put_replica(
        &dst,
        &k("e"),
        replica(&[], empty, LockRecord::default()),
        body(&[]),
    ));
    assert_eq!(r.expect("empty"), ReplicaResult::Applied);
}

#[test]
fn a_replicated_bucket_keeps_versioning_on() {
    let s = site(false);
    add_peer(&s.store);
    set_rules(&s.store, vec![rule("", false)]);
    let r = s.store.set_versioning(&b("src"), Versioning::Suspended);
    assert!(
        matches!(r, Err(StoreError::InvalidBucketState { .. })),
        "{r:?}"
    );
    s.store
        .change_replication(ReplicationChange::SetRules {
            bucket: b("src"),
            rules: None,
        })
        .expect("rules off");
    s.store
        .set_versioning(&b("src"), Versioning::Suspended)
        .expect("then it may be suspended");
}

/// Writer epochs through a real engine: the first replica pairs the bucket as a
/// read-only replica (client versions, markers and tags refused in the commit itself;
/// a version removal and lock changes still judged by Object Lock alone); a promotion
/// makes it writable and refuses the old epoch; a fenced source refuses client writes
/// and still sends its tail.
#[test]
fn a_replica_refuses_client_writes_until_promoted_and_a_fenced_source_too() {
    use super::epoch::{Role, SenderEpoch};
    let rt = rt();
    let s = site(false);
    let dst = b("dst");
    let primary0 = SenderEpoch {
        epoch: 0,
        role: Role::Primary,
    };
    let before =
        rt.block_on(
            s.store
                .put_object(&dst, &k("mine"), PutOptions::default(), body(b"x")),
        );
    let mine = before.expect("an unpaired bucket is writable").version_id;
    s.store.receive_epoch(&dst, "AK", primary0).expect("paired");
    let e = writer_epoch(s.store.meta(), &dst)
        .expect("read")
        .expect("paired");
    assert_eq!(
        (e.role, e.epoch, e.source.as_deref()),
        (Role::Replica, 0, Some("AK"))
    );
    let refused = |r: Result<_, StoreError>| {
        assert!(
            matches!(
                r,
                Err(StoreError::Replication(ReplicationError::ReadOnlyReplica {
                    epoch: 0,
                    ..
                }))
            ),
            "{r:?}"
        );
    };
    refused(
        rt.block_on(
            s.store
                .put_object(&dst, &k("k"), PutOptions::default(), body(b"y")),
        )
        .map(|_| ()),
    );
    refused(
        rt.block_on(s.store.delete_object(&dst, &k("mine"), None, false))
            .map(|_| ()),
    );
    refused(
        s.store
            .create_multipart_upload(&dst, &k("big"), PutOptions::default())
            .map(|_| ()),
    );
    refused(
        s.store
            .set_object_tags(&dst, &k("mine"), None, vec![("a".into(), "b".into())])
            .map(|_| ()),
    );
    // The commit judges it too, whatever the proposer checked.
    let rec = crate::meta::VersionRecord::delete_marker(
        VersionId::generate(T0),
        T0,
        false,
        Origin::Client,
    );
    let r = s.store.commit(
        crate::meta::NewVersion {
            bucket: &dst,
            key: &k("m"),
            record: &rec,
            repairs: &[],
            replaces: None,
            condition: &crate::meta::WriteCondition::Always,
            tags: None,
            inline: None,
            lock: None,
        },
        None,
    );
    refused(r);
    // Not a new version: removing one is Object Lock's decision alone.
    rt.block_on(
        s.store
            .delete_object(&dst, &k("mine"), Some(&VersionRef::Id(mine)), false),
    )
    .expect("an unlocked version removed");
    // Promoted: writable, and a sender still at epoch 0 is stale.
    let ReplicationOutcome::Epoch(p) = s
        .store
        .change_replication(ReplicationChange::Promote {
            bucket: dst.clone(),
        })
        .expect("promote")
    else {
        panic!("not an epoch")
    };
    assert_eq!((p.role, p.epoch), (Role::Primary, 1));
    rt.block_on(
        s.store
            .put_object(&dst, &k("k"), PutOptions::default(), body(b"y")),
    )
    .expect("writable once promoted");
    assert!(matches!(
        s.store.receive_epoch(&dst, "AK", primary0),
        Err(StoreError::Replication(ReplicationError::StaleEpoch {
            current: 1,
            sent: 0,
            ..
        }))
    ));
    assert!(matches!(
        s.store.change_replication(ReplicationChange::Promote {
            bucket: dst.clone()
        }),
        Err(StoreError::Replication(ReplicationError::AlreadyPrimary {
            epoch: 1,
            ..
        }))
    ));
    // A fenced tail is taken.
    let tail = SenderEpoch {
        epoch: 1,
        role: Role::Replica,
    };
    s.store.receive_epoch(&dst, "AK", tail).expect("a tail");
    // The old primary, fenced: read-only at the peer's epoch.
    let src = b("src");
    s.store
        .change_replication(ReplicationChange::Fence {
            bucket: src.clone(),
            current: 1,
        })
        .expect("fence");
    // Heard twice (a heartbeat and an entry): the second changes nothing, so no second
    // alert.
    assert!(matches!(
        s.store.change_replication(ReplicationChange::Fence {
            bucket: src.clone(),
            current: 1,
        }),
        Ok(ReplicationOutcome::Done)
    ));
    let f = writer_epoch(s.store.meta(), &src)
        .expect("read")
        .expect("fenced");
    assert_eq!(
        (f.role, f.epoch, f.reason),
        (Role::Replica, 1, super::epoch::EpochReason::Fenced)
    );
    refused_at(
        1,
        rt.block_on(
            s.store
                .put_object(&src, &k("k"), PutOptions::default(), body(b"z")),
        )
        .map(|_| ()),
    );
}

fn refused_at(epoch: u64, r: Result<(), StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Replication(ReplicationError::ReadOnlyReplica { epoch: e, .. })) if e == epoch),
        "{r:?}"
    );
}

/// A large version sent part by part: each part is checked before it is kept, the peer
/// says which it holds (so a cut transfer resumes there), an assembly with a part
/// missing is refused and changes nothing, and the assembled version has the source's
/// id, bytes, tags and lock.
#[test]
fn a_version_staged_part_by_part_is_checked_resumable_and_assembled() {
    let rt = rt();
    let s = site(true);
    let dst = b("dst");
    let key = k("big");
    let parts: Vec<Vec<u8>> = (0..3u8)
        .map(|i| vec![i + 1; 200_000 + usize::from(i)])
        .collect();
    let whole: Vec<u8> = parts.concat();
    let id = VersionId::generate(Timestamp(T0.0 - 1_000_000));
    let until = Timestamp(T0.0 + 86_400_000_000);
    let mut rv = replica(
        &whole,
        id,
        LockRecord {
            retention: Some(Retention {
                mode: RetentionMode::Compliance,
                until,
            }),
            legal_hold: false,
        },
    );
    rv.etag = "abcd-3".into();
    rv.parts = parts
        .iter()
        .map(|p| (p.len() as u64, *blake3::hash(p).as_bytes()))
        .collect();
    let stage = |n: u16, bytes: &[u8], digest_of: &[u8]| {
        rt.block_on(s.store.stage_replica_part(
            &dst,
            &key,
            id,
            n,
            bytes.len() as u64,
            *blake3::hash(digest_of).as_bytes(),
            body(bytes),
        ))
    };
    assert_eq!(
        s.store
            .staged_replica_parts(&dst, &key, id)
            .expect("staged"),
        Some(Vec::<u16>::new())
    );
    assert_eq!(
        stage(1, &parts[0], &parts[0]).expect("part 1"),
        ReplicaResult::Applied
    );
    // Damaged in transit: refused, not kept.
    assert!(matches!(
        stage(2, &parts[2][..parts[1].len()], &parts[1]),
        Err(StoreError::ReplicaDigest { part: 1, .. })
    ));
    assert_eq!(
        stage(3, &parts[2], &parts[2]).expect("part 3"),
        ReplicaResult::Applied
    );
    assert_eq!(
        stage(1, &parts[0], &parts[0]).expect("again"),
        ReplicaResult::Unchanged
    );
    assert_eq!(
        s.store
            .staged_replica_parts(&dst, &key, id)
            .expect("staged"),
        Some(vec![1, 3])
    );
    assert!(matches!(
        s.store.assemble_replica(&dst, &key, rv.clone()),
        Err(StoreError::InvalidPart { part_number: 2 })
    ));
    assert!(
        s.store
            .meta()
            .version(&dst, &key, &id)
            .expect("read")
            .is_none()
    );
    assert_eq!(
        stage(2, &parts[1], &parts[1]).expect("part 2"),
        ReplicaResult::Applied
    );
    assert_eq!(
        s.store
            .assemble_replica(&dst, &key, rv.clone())
            .expect("assembled"),
        ReplicaResult::Applied
    );
    assert_eq!(
        s.store
            .assemble_replica(&dst, &key, rv.clone())
            .expect("again"),
        ReplicaResult::Unchanged
    );
    let read = rt
        .block_on(
            s.store
                .get_object(&dst, &key, Some(&VersionRef::Id(id)), None),
        )
        .expect("read");
    assert_eq!(read.record.origin, Origin::Replica);
    assert_eq!(
        (read.record.created, read.record.etag.as_str()),
        (rv.created, "abcd-3")
    );
    assert_eq!(
        read.lock.retention.map(|r| (r.mode, r.until)),
        Some((RetentionMode::Compliance, until))
    );
    assert_eq!(
        s.store.meta().tags(&dst, &key, &id).expect("tags").tags,
        rv.tags
    );
    let got = read_all(&rt, read.body);
    assert_eq!(got, whole);
    // Nothing left staged; a query for it now says it is complete.
    assert!(s.store.list_uploads(&dst).expect("uploads").is_empty());
    assert_eq!(
        s.store
            .staged_replica_parts(&dst, &key, id)
            .expect("staged"),
        None
    );
}

#[test]
fn part_lists_round_trip_in_their_compact_form() {
    for (list, text) in [
        (vec![], ""),
        (vec![1], "1"),
        (vec![1, 2, 3, 5, 7, 8], "1-3,5,7-8"),
    ] {
        assert_eq!(format_parts(&list), text);
        assert_eq!(parse_parts(text), Some(list));
    }
    for bad in ["x", "3-1", "1-", "-2"] {
        assert_eq!(parse_parts(bad), None, "{bad}");
    }
}

/// A client's tag change is logged in its commit; a peer's is applied to the replica,
/// answered unchanged when it changes nothing, and not logged again.
#[test]
fn tag_changes_are_logged_and_a_replica_takes_the_sources_tags() {
    let rt = rt();
    let s = site(false);
    let peer = add_peer(&s.store);
    let vid = put(&rt, &s.store, "k", b"x");
    set_rules(&s.store, vec![rule("", false)]);
    s.store
        .set_object_tags(
            &b("src"),
            &k("k"),
            Some(&VersionRef::Id(vid)),
            vec![("a".into(), "1".into())],
        )
        .expect("tags");
    assert_eq!(ops(&s.store, peer), vec![(LogOp::Tags, "k".to_owned())]);
    // On a replica: the source's tags replace its own. `dst` replicates too, so a change
    // a peer makes there would be logged if it were taken for a client's.
    let dst = b("dst");
    s.store
        .change_replication(ReplicationChange::SetRules {
            bucket: dst.clone(),
            rules: Some(BucketReplication {
                bucket: dst.clone(),
                rules: vec![ReplicationRule {
                    target_bucket: b("src"),
                    ..rule("", false)
                }],
            }),
        })
        .expect("rules on dst");
    let rvid = VersionId::generate(T0);
    rt.block_on(s.store.put_replica(
        &dst,
        &k("r"),
        replica(b"r", rvid, LockRecord::default()),
        body(b"r"),
    ))
    .expect("replica");
    let tags = vec![("t".into(), "2".into())];
    assert_eq!(
        s.store
            .put_replica_tags(&dst, &k("r"), rvid, tags.clone())
            .expect("tags"),
        ReplicaResult::Applied
    );
    assert_eq!(
        s.store
            .put_replica_tags(&dst, &k("r"), rvid, tags.clone())
            .expect("again"),
        ReplicaResult::Unchanged
    );
    assert_eq!(
        s.store
            .meta()
            .tags(&dst, &k("r"), &rvid)
            .expect("read")
            .tags,
        tags
    );
    assert!(matches!(
        s.store
            .put_replica_tags(&dst, &k("r"), VersionId::generate(T0), tags),
        Err(StoreError::NoSuchVersion { .. })
    ));
    assert_eq!(
        ops(&s.store, peer).len(),
        1,
        "a peer's change is not logged"
    );
}

/// A source version's status follows its entries: pending while one waits, failed once
/// one is parked, pending again when retried, completed once acknowledged; none for a
/// version written before the rule.
#[test]
fn a_source_version_status_follows_its_log_entries() {
    use super::log::{SourceStatus, version_status};
    let rt = rt();
    let s = site(false);
    let peer = add_peer(&s.store);
    let before = put(&rt, &s.store, "old", b"o");
    set_rules(&s.store, vec![rule("", false)]);
    let vid = put(&rt, &s.store, "k", b"x");
    let status = |v: &VersionId, key: &str| {
        version_status(s.store.meta(), &b("src"), &k(key), v).expect("status")
    };
    assert_eq!(status(&before, "old"), None);
    assert_eq!(status(&vid, "k"), Some(SourceStatus::Pending));
    let seq = log::pending(s.store.meta(), peer, log::EntryClass::Live, 0, 10).expect("log")[0].0;
    s.store
        .change_replication(ReplicationChange::Park {
            peer,
            seq,
            reason: DeadReason::Refused,
            detail: "403".into(),
        })
        .expect("park");
    assert_eq!(status(&vid, "k"), Some(SourceStatus::Failed));
    s.store
        .change_replication(ReplicationChange::RetryDead { peer, reason: None })
        .expect("retry");
    assert_eq!(status(&vid, "k"), Some(SourceStatus::Pending));
    s.store
        .change_replication(ReplicationChange::Acknowledge {
            peer,
            seqs: vec![seq],
        })
        .expect("ack");
    assert_eq!(status(&vid, "k"), Some(SourceStatus::Completed));
    // A lock or tag change makes it pending again until it arrives.
    s.store
        .set_object_tags(
            &b("src"),
            &k("k"),
            Some(&VersionRef::Id(vid)),
            vec![("a".into(), "1".into())],
        )
        .expect("tags");
    assert_eq!(status(&vid, "k"), Some(SourceStatus::Pending));
}

/// S3's largest object description (10,000 parts, user metadata and tags at S3's limits)
/// fits an assembly body.
#[test]
fn an_assembly_of_ten_thousand_parts_fits_its_body_limit() {
    let mut rv = replica(b"x", VersionId::generate(T0), LockRecord::default());
    rv.parts = (0..10_000u64).map(|i| (5 << 20, [i as u8; 32])).collect();
    rv.user_meta = vec![("m".repeat(100), "v".repeat(1900))];
    rv.tags = (0..10)
        .map(|i| (format!("{i:0>128}"), "v".repeat(256)))
        .collect();
    let bytes = ReplicaOp::Version(Box::new(rv)).encode().expect("encode");
    assert!(bytes.len() < ASSEMBLY_MAX, "{} bytes", bytes.len());
}
