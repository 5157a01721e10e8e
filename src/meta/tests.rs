//! The conformance suite every `KvEngine` passes (RocksDB and the in-memory engine), and
//! `Meta`'s guarded check-then-write operations run on each of them.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::*;
use crate::lock::{LockError, may_remove, set_legal_hold};

/// Every engine, each with what keeps it alive.
fn engines() -> Vec<(&'static str, Box<dyn KvEngine>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks = rocks::Rocks::open(&dir.path().join("meta")).expect("rocks");
    let dir2 = tempfile::tempdir().expect("tempdir");
    let under = rocks::Rocks::open(&dir2.path().join("meta")).expect("rocks");
    vec![
        ("rocksdb", Box::new(rocks), Some(dir)),
        ("memory", Box::new(MemoryEngine::default()), None),
        (
            "overlay on rocksdb",
            Box::new(overlay::Overlay::new(Box::new(under))),
            Some(dir2),
        ),
        (
            "overlay on memory",
            Box::new(overlay::Overlay::new(Box::new(MemoryEngine::default()))),
            None,
        ),
    ]
}

/// Staged batches: read at once through the overlay (gets, and scans merged in key order
/// with the engine's keys, a staged delete hiding one), in the engine only after a sync
/// or a write, which keeps their order.
#[test]
fn an_overlay_shows_staged_batches_and_writes_them_at_the_sync() {
    let base = Arc::new(MemoryEngine::default());
    struct Shared(Arc<MemoryEngine>);
    impl KvEngine for Shared {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
            self.0.get(cf, key)
        }
        fn write(&self, batch: Batch, sync: bool) -> Result<(), MetaError> {
            self.0.write(batch, sync)
        }
        fn sync(&self) -> Result<(), MetaError> {
            self.0.sync()
        }
        fn scan(&self, cf: Cf, from: &[u8], f: &mut engine::Visit<'_>) -> Result<(), MetaError> {
            self.0.scan(cf, from, f)
        }
    }
    let o = overlay::Overlay::new(Box::new(Shared(base.clone())));
    o.write(
        batch(&[
            (Cf::Tags, b"b", Some(b"base b")),
            (Cf::Tags, b"d", Some(b"base d")),
            (Cf::Tags, b"f", Some(b"base f")),
        ]),
        false,
    )
    .expect("write");
    o.stage(batch(&[
        (Cf::Tags, b"a", Some(b"staged a")),
        (Cf::Tags, b"d", None),
        (Cf::Tags, b"e", Some(b"staged e")),
        (Cf::Tags, b"f", Some(b"staged f")),
        (Cf::Tags, b"g", Some(b"staged g")),
    ]));
    o.stage(batch(&[(Cf::Tags, b"e", Some(b"staged e2"))]));
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [
        ("a", "staged a"),
        ("b", "base b"),
        ("e", "staged e2"),
        ("f", "staged f"),
        ("g", "staged g"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    assert_eq!(scan_all(&o, Cf::Tags, b""), expected);
    assert_eq!(scan_all(&o, Cf::Tags, b"c"), expected[2..].to_vec());
    assert_eq!(o.get(Cf::Tags, b"d").expect("get"), None, "a staged delete");
    assert_eq!(
        o.get(Cf::Tags, b"e").expect("get"),
        Some(b"staged e2".to_vec())
    );
    assert_eq!(scan_all(&o, Cf::Locks, b""), Vec::new(), "another family");
    // A scan stopped on a staged key or on an engine key stops there.
    for stop in [1, 2, 4] {
        let mut seen = 0;
        o.scan(Cf::Tags, b"", &mut |_, _| {
            seen += 1;
            if seen == stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
        assert_eq!(seen, stop);
    }
    // Not in the engine yet.
    assert_eq!(base.get(Cf::Tags, b"a").expect("get"), None);
    assert_eq!(
        base.get(Cf::Tags, b"d").expect("get"),
        Some(b"base d".to_vec())
    );
    o.sync().expect("sync");
    assert_eq!(
        scan_all(base.as_ref(), Cf::Tags, b""),
        expected,
        "written at the sync"
    );
    // A write goes after what was staged before it.
    o.stage(batch(&[(Cf::Tags, b"h", Some(b"staged h"))]));
    o.write(batch(&[(Cf::Tags, b"h", Some(b"written h"))]), false)
        .expect("write");
    assert_eq!(
        base.get(Cf::Tags, b"h").expect("get"),
        Some(b"written h".to_vec())
    );
    assert_eq!(
        o.get(Cf::Tags, b"h").expect("get"),
        Some(b"written h".to_vec())
    );
}

/// A put (`Some(value)`) or a delete (`None`) of a key in a family.
type TestOp<'a> = (Cf, &'a [u8], Option<&'a [u8]>);

fn batch(ops: &[TestOp<'_>]) -> Batch {
    let mut b = Batch::default();
    for (cf, k, v) in ops {
        match v {
            Some(v) => b.put(*cf, k.to_vec(), v.to_vec()),
            None => b.delete(*cf, k.to_vec()),
        }
    }
    b
}

fn scan_all(e: &dyn KvEngine, cf: Cf, from: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    e.scan(cf, from, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        ControlFlow::Continue(())
    })
    .expect("scan");
    out
}

#[test]
fn engines_get_put_delete_and_overwrite() {
    for (name, e, _keep) in engines() {
        assert_eq!(e.get(Cf::System, b"k").expect("get"), None, "{name}");
        e.write(batch(&[(Cf::System, b"k", Some(b"1"))]), true)
            .expect("put");
        assert_eq!(e.get(Cf::System, b"k").expect("get"), Some(b"1".to_vec()));
        e.write(batch(&[(Cf::System, b"k", Some(b"2"))]), false)
            .expect("overwrite");
        e.sync().expect("sync after an unsynced write");
        assert_eq!(e.get(Cf::System, b"k").expect("get"), Some(b"2".to_vec()));
        e.write(
            batch(&[(Cf::System, b"k", None), (Cf::System, b"gone", None)]),
            true,
        )
        .expect("delete, also of a missing key");
        assert_eq!(e.get(Cf::System, b"k").expect("get"), None, "{name}");
    }
}

#[test]
fn engines_keep_families_apart_and_apply_batches_whole() {
    for (name, e, _keep) in engines() {
        e.write(
            batch(&[
                (Cf::Versions, b"a", Some(b"v")),
                (Cf::Locks, b"a", Some(b"l")),
                (Cf::Tags, b"b", Some(b"t")),
            ]),
            true,
        )
        .expect("batch");
        assert_eq!(e.get(Cf::Versions, b"a").expect("get"), Some(b"v".to_vec()));
        assert_eq!(e.get(Cf::Locks, b"a").expect("get"), Some(b"l".to_vec()));
        assert_eq!(e.get(Cf::Tags, b"a").expect("get"), None, "{name}");
        assert_eq!(scan_all(e.as_ref(), Cf::Buckets, b""), Vec::new(), "{name}");
        // A put then a delete of one key in one batch: the last one wins.
        e.write(
            batch(&[(Cf::Tags, b"c", Some(b"x")), (Cf::Tags, b"c", None)]),
            true,
        )
        .expect("batch");
        assert_eq!(e.get(Cf::Tags, b"c").expect("get"), None, "{name}");
    }
}

#[test]
fn engines_scan_in_byte_order_from_a_key_and_stop_when_told() {
    for (name, e, _keep) in engines() {
        // More keys than the in-memory engine copies out at a time.
        let keys: Vec<Vec<u8>> = (0..700u32)
            .rev()
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        let mut b = Batch::default();
        for k in &keys {
            b.put(Cf::Repair, k.clone(), k.clone());
        }
        b.put(Cf::Repair, vec![0xFF], b"high".to_vec());
        b.put(Cf::Repair, vec![], b"empty key".to_vec());
        e.write(b, true).expect("write");
        let all = scan_all(e.as_ref(), Cf::Repair, b"");
        assert_eq!(all.len(), 702, "{name}");
        assert!(
            all.windows(2).all(|w| w[0].0 < w[1].0),
            "{name}: byte order"
        );
        let from = 300u32.to_be_bytes();
        let tail = scan_all(e.as_ref(), Cf::Repair, &from);
        assert_eq!(tail.first().map(|(k, _)| k.clone()), Some(from.to_vec()));
        assert_eq!(tail.len(), 700 - 300 + 1, "{name}");
        let mut seen = 0;
        e.scan(Cf::Repair, b"", &mut |_, _| {
            seen += 1;
            if seen == 10 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
        assert_eq!(seen, 10, "{name}");
    }
}

#[derive(Debug)]
enum Refused {
    #[allow(dead_code)] // read through Debug when a test fails
    Meta(MetaError),
    Lock(LockError),
}

impl From<MetaError> for Refused {
    fn from(e: MetaError) -> Self {
        Refused::Meta(e)
    }
}

/// One thread sets a legal hold while another removes the version, thousands of times
/// on each engine: protection is never lost — a hold acknowledged means the version is
/// still there, held; a removal that went through means the hold found no version.
#[test]
fn a_legal_hold_racing_a_removal_never_loses_protection() {
    let t = Timestamp::from_secs(1_800_000_000);
    for (name, e, _keep) in engines() {
        let meta = Arc::new(Meta::with_engine(e));
        let bucket = BucketName::new("race").expect("name");
        meta.create_bucket(&BucketRecord {
            name: bucket.clone(),
            created: t,
            versioning: Versioning::Enabled,
            object_lock: true,
            default_retention: None,
            policy: None,
            quota: None,
        })
        .expect("bucket");
        let key = ObjectKey::new("k").expect("key");
        let rounds = if name == "memory" { 3000 } else { 1000 };
        let (mut held, mut removed) = (0, 0);
        for i in 0..rounds {
            let vid = VersionId::generate(t.plus_micros(i));
            let rec = VersionRecord {
                version_id: vid,
                created: t,
                kind: VersionKind::Object,
                size: 0,
                etag: String::new(),
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
            };
            meta.commit_version(&NewVersion {
                bucket: &bucket,
                key: &key,
                record: &rec,
                repairs: &[],
                replaces: None,
                condition: &WriteCondition::Always,
                tags: None,
                inline: None,
                lock: None,
            })
            .expect("commit");
            // Both threads wait at a barrier and go at once; which one is spawned first
            // alternates, so each wins often.
            let start = Arc::new(std::sync::Barrier::new(2));
            let spawn_hold = || {
                let (meta, bucket, key, start) =
                    (meta.clone(), bucket.clone(), key.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    meta.write_guarded::<_, Refused>(|m| {
                        let mut b = Batch::default();
                        if m.version(&bucket, &key, &vid)?.is_none() {
                            return Ok((b, None));
                        }
                        let next = set_legal_hold(&m.lock(&bucket, &key, &vid)?, true);
                        b.set_lock(&bucket, &key, &vid, &next)?;
                        Ok((b, Some(next)))
                    })
                })
            };
            let spawn_remove = || {
                let (meta, bucket, key, start) =
                    (meta.clone(), bucket.clone(), key.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    meta.write_guarded::<_, Refused>(|m| {
                        let mut b = Batch::default();
                        let Some(v) = m.version(&bucket, &key, &vid)? else {
                            return Ok((b, None));
                        };
                        may_remove(&v, &m.lock(&bucket, &key, &vid)?, t, false)
                            .map_err(Refused::Lock)?;
                        b.remove_version(&bucket, &key, &vid);
                        Ok((b, Some(v)))
                    })
                })
            };
            let (hold, remove) = if i % 2 == 0 {
                let h = spawn_hold();
                (h, spawn_remove())
            } else {
                let r = spawn_remove();
                (spawn_hold(), r)
            };
            let hold = hold.join().expect("hold thread").expect("hold");
            let remove = remove.join().expect("remove thread");
            let still_there = meta
                .versions_of(&bucket, &key)
                .expect("read")
                .iter()
                .any(|v| v.version_id == vid);
            match (hold, remove) {
                (Some(lock), Err(Refused::Lock(LockError::LegalHold))) => {
                    assert!(lock.legal_hold && still_there, "{name} round {i}");
                    held += 1;
                }
                (None, Ok(Some(_))) => {
                    let vkey = keys::version_key(&bucket, &key, &vid);
                    let orphan_lock = meta.db.get(Cf::Locks, &vkey).expect("read");
                    assert!(!still_there && orphan_lock.is_none(), "{name} round {i}");
                    removed += 1;
                }
                (h, r) => {
                    panic!("{name} round {i}: hold {h:?} and removal {r:?} both went through")
                }
            }
        }
        // Both orders happened: the test raced, it did not run the rounds one after the other.
        assert!(
            held > 0 && removed > 0,
            "{name}: held {held}, removed {removed}"
        );
    }
}

/// Records an earlier release kept in `system` (and the alert queue, kept with the
/// cluster-wide alert records) move to their family at open; one already in its new place
/// wins; a second open moves nothing.
#[test]
fn records_of_an_earlier_release_move_to_their_family_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta");
    {
        let meta = Meta::open(&path).expect("open");
        for (cf, k, v) in [
            (Cf::System, "lifecycle/bkt", "rules"),
            (Cf::System, "activity/bkt", "old"),
            (Cf::Cluster, "activity/bkt", "new"),
            (Cf::System, "worker.scrub.checkpoint", "cp"),
            (Cf::System, "clock.retention-high-water", "hw"),
            (Cf::System, "legacy/credential", "kept"),
            (Cf::Alerts, "q/1", "delivery"),
            (Cf::Alerts, "sink/ops", "sink"),
        ] {
            meta.put_raw(cf, k.as_bytes(), v.as_bytes()).expect("plant");
        }
    }
    let meta = Meta::open(&path).expect("reopen");
    let get = |cf: Cf, k: &str| {
        meta.db
            .get(cf, k.as_bytes())
            .expect("get")
            .map(|v| String::from_utf8(v).expect("utf-8"))
    };
    assert_eq!(get(Cf::Cluster, "lifecycle/bkt").as_deref(), Some("rules"));
    assert_eq!(get(Cf::Cluster, "activity/bkt").as_deref(), Some("new"));
    assert_eq!(
        get(Cf::Node, "worker.scrub.checkpoint").as_deref(),
        Some("cp")
    );
    assert_eq!(
        get(Cf::Node, "clock.retention-high-water").as_deref(),
        Some("hw")
    );
    assert_eq!(get(Cf::Node, "q/1").as_deref(), Some("delivery"));
    for (cf, k) in [
        (Cf::System, "lifecycle/bkt"),
        (Cf::System, "activity/bkt"),
        (Cf::System, "worker.scrub.checkpoint"),
        (Cf::System, "clock.retention-high-water"),
        (Cf::Alerts, "q/1"),
    ] {
        assert_eq!(get(cf, k), None, "{k} left behind");
    }
    // What no rule moves stays: cluster-wide alert records, an old release's credential.
    assert_eq!(get(Cf::Alerts, "sink/ops").as_deref(), Some("sink"));
    assert_eq!(
        get(Cf::System, "legacy/credential").as_deref(),
        Some("kept")
    );
    assert_eq!(meta.move_old_records().expect("again"), 0);
}

/// Every family has a scope; the node-local ones are exactly those a cluster never
/// replicates.
#[test]
fn families_are_classified() {
    let node_local: Vec<&str> = Cf::ALL
        .iter()
        .filter(|cf| cf.scope() == FamilyScope::NodeLocal)
        .map(|cf| cf.name())
        .collect();
    assert_eq!(node_local, ["pending", "repair", "node", "audit", "raft"]);
    // What a Raft snapshot carries: every family but the node's own and the legacy one.
    let replicated: Vec<&str> = Cf::ALL
        .iter()
        .filter(|cf| cf.replicated())
        .map(|cf| cf.name())
        .collect();
    assert_eq!(
        replicated,
        [
            "buckets",
            "versions",
            "uploads",
            "tags",
            "inline",
            "locks",
            "identity",
            "placement",
            "cluster"
        ]
    );
    assert!(
        Cf::ALL
            .iter()
            .all(|cf| (cf.scope() == FamilyScope::Legacy) == (*cf == Cf::System))
    );
}

/// The queue lengths `/metrics` reads are counters moved by every write, equal at every
/// step to what a scan of the queues finds (a fresh `Meta` on the same engine counts by
/// scanning).
#[test]
fn queue_lengths_follow_every_write_and_match_a_scan() {
    for (name, engine, _dir) in engines() {
        let meta = Meta::with_engine(engine);
        // Forgets the counters: the next read counts by scanning.
        let scan = |m: &Meta| {
            *m.queues.lock().expect("counters") = None;
            m.queue_lengths().expect("scan")
        };
        assert_eq!(
            meta.queue_lengths().expect("count"),
            QueueLengths::default()
        );
        let t = Timestamp(1_000);
        let entry = |n: u8| {
            RepairRecord::new(
                BucketName::new("qqq").expect("bucket"),
                ObjectKey::new("k").expect("key"),
                VersionId([n; 16]),
                SegmentId([n; 16]),
                vec![1],
                RepairReason::WriteFailed,
                t,
            )
        };
        let check = |m: &Meta, want: (u64, u64, u64, u64), step: &str| {
            let got = m.queue_lengths().expect("count");
            assert_eq!(
                (
                    got.repair,
                    got.repair_failing,
                    got.repair_unreadable,
                    got.alerts
                ),
                want,
                "{name}: {step}"
            );
            assert_eq!(got, scan(m), "{name}: {step}: counter and scan differ");
            // Counted again from the scan, the counter keeps moving from there.
        };
        meta.enqueue_repair(&entry(1)).expect("enqueue");
        meta.enqueue_repair(&entry(2)).expect("enqueue");
        // The same entry again is one entry.
        meta.enqueue_repair(&entry(2)).expect("enqueue");
        check(&meta, (2, 0, 0, 0), "two entries");
        let mut failed = entry(1);
        failed.attempts = 1;
        failed.due = Timestamp(9_000);
        meta.requeue_repair(&[entry(1)], &failed).expect("requeue");
        check(&meta, (2, 1, 0, 0), "one failing");
        meta.put_raw(Cf::Repair, b"\xff\xffnewer", &[99, 1, 2])
            .expect("plant");
        check(&meta, (3, 1, 1, 0), "one unreadable");
        meta.kv_write(
            Space::Node,
            &[
                ("q/1".into(), vec![1]),
                ("q/2".into(), vec![2]),
                ("x".into(), vec![3]),
            ],
            &[],
        )
        .expect("alerts");
        check(&meta, (3, 1, 1, 2), "two alerts");
        meta.kv_write(Space::Node, &[], &["q/1".into(), "q/9".into()])
            .expect("deliver");
        check(&meta, (3, 1, 1, 1), "one delivered");
        meta.dequeue_repair(&failed).expect("dequeue");
        meta.dequeue_repair(&entry(2)).expect("dequeue");
        meta.delete_raw(Cf::Repair, b"\xff\xffnewer")
            .expect("unplant");
        check(&meta, (0, 0, 0, 1), "repairs done");
    }
}

/// An engine around another that keeps which keys were written and which of them a
/// finished `sync` made durable: what a power cut would keep.
struct Durability {
    inner: MemoryEngine,
    written: std::sync::Mutex<Vec<Vec<u8>>>,
    durable: std::sync::Mutex<std::collections::HashSet<Vec<u8>>>,
    syncs: std::sync::atomic::AtomicU64,
}

impl KvEngine for Arc<Durability> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.inner.get(cf, key)
    }

    fn write(&self, batch: Batch, sync: bool) -> Result<(), MetaError> {
        let keys: Vec<Vec<u8>> = batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put(_, k, _) | Op::Delete(_, k) => k.clone(),
            })
            .collect();
        self.inner.write(batch, sync)?;
        if sync {
            self.durable.lock().expect("durable").extend(keys);
        } else {
            self.written.lock().expect("written").extend(keys);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), MetaError> {
        let now: Vec<Vec<u8>> = self.written.lock().expect("written").clone();
        // An fsync takes a while: writers queue behind it meanwhile.
        std::thread::sleep(std::time::Duration::from_millis(2));
        self.durable.lock().expect("durable").extend(now);
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn scan(&self, cf: Cf, from: &[u8], f: &mut engine::Visit<'_>) -> Result<(), MetaError> {
        self.inner.scan(cf, from, f)
    }
}

/// Group commit: a guarded write returns only once an fsync that began after it ended;
/// a guarded read that found a change waits for that change's fsync too; concurrent
/// writers share fsyncs.
#[test]
fn guarded_writes_are_durable_on_return_and_share_fsyncs() {
    let engine = Arc::new(Durability {
        inner: MemoryEngine::default(),
        written: Default::default(),
        durable: Default::default(),
        syncs: Default::default(),
    });
    let meta = Arc::new(Meta::with_engine(Box::new(engine.clone())));
    let threads: Vec<_> = (0..16u8)
        .map(|t| {
            let (meta, engine) = (meta.clone(), engine.clone());
            std::thread::spawn(move || {
                for i in 0..20u8 {
                    let key = vec![t, i];
                    meta.write_guarded::<_, MetaError>(|_| {
                        let mut b = Batch::default();
                        b.ops.push(Op::Put(Cf::System, key.clone(), vec![1]));
                        Ok((b, ()))
                    })
                    .expect("write");
                    assert!(
                        engine.durable.lock().expect("durable").contains(&key),
                        "write {t}/{i} answered before its fsync"
                    );
                    // A read under the guard that sees another thread's latest write
                    // answers only once that write is durable.
                    let other = vec![(t + 1) % 16, i];
                    let seen = meta
                        .write_guarded::<_, MetaError>(|m| {
                            Ok((Batch::default(), m.db.get(Cf::System, &other)?.is_some()))
                        })
                        .expect("read");
                    if seen {
                        assert!(
                            engine.durable.lock().expect("durable").contains(&other),
                            "a read of {other:?} answered before its fsync"
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let syncs = engine.syncs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        syncs < 16 * 20,
        "{syncs} fsyncs for {} writes: none shared",
        16 * 20
    );
}
