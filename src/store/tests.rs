//! Engine tests: exact bytes back through lost and corrupt shards, clean failure past M.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use super::*;
use crate::clock::{Clock, SystemClock};
use crate::meta::{RepairReason, RepairRecord, SegmentRecord};
use crate::types::{SegmentId, Timestamp, VersionId};

const BLOCK: usize = 4096;

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
    bucket: BucketName,
}

fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::embedded(dir.path());
    config.block_size = BLOCK;
    // These tests are about shards: keep even tiny objects out of the metadata store.
    config.inline_max = 0;
    let store = Store::open(config, Arc::new(SystemClock)).expect("open");
    let bucket = BucketName::new("test").expect("name");
    store.create_bucket(&bucket, false).expect("bucket");
    Node {
        _dir: dir,
        store,
        bucket,
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends `body` in chunks of awkward sizes, as a network would.
pub(crate) fn body(
    bytes: &[u8],
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin {
    let chunks: Vec<std::io::Result<Bytes>> = bytes
        .chunks(7919)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

impl Node {
    async fn put(&self, key: &str, bytes: &[u8]) -> PutOutcome {
        let key = ObjectKey::new(key).expect("key");
        self.store
            .put_object(&self.bucket, &key, PutOptions::default(), body(bytes))
            .await
            .expect("put")
    }

    /// Reads the object; returns the bytes received and whether the read ended in an error.
    async fn read(&self, key: &str, range: Option<ByteRange>) -> (Vec<u8>, bool) {
        let key = ObjectKey::new(key).expect("key");
        let read = match self.store.get_object(&self.bucket, &key, None, range).await {
            Ok(r) => r,
            Err(_) => return (Vec::new(), true),
        };
        let mut out = Vec::new();
        let mut body = read.body;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => out.extend_from_slice(&c),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    fn segment(&self, key: &str) -> SegmentRecord {
        let key = ObjectKey::new(key).expect("key");
        let rec = self
            .store
            .head_object(&self.bucket, &key, None)
            .expect("head");
        rec.segments[0].clone()
    }

    fn shard_path(&self, seg: &SegmentRecord, i: usize) -> std::path::PathBuf {
        crate::disk::local::shard_path(
            &self
                .store
                .disk(&seg.shards[i].disk)
                .expect("disk")
                .spec()
                .path,
            crate::disk::ShardName::new(seg.id, i),
        )
    }

    /// Flips one byte of block `s` of shard `i`.
    fn corrupt(&self, seg: &SegmentRecord, i: usize, s: u64, at: usize) {
        use std::os::unix::fs::{FileExt, PermissionsExt};
        let p = self.shard_path(seg, i);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .expect("open shard");
        let off = seg.geometry.block_offset(s) + (at % seg.geometry.block_len(s)) as u64;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, off).expect("read");
        b[0] ^= 0x5a;
        f.write_all_at(&b, off).expect("write");
    }
}

const STRIPE: usize = 4 * BLOCK;

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(STRIPE - 1),
        Just(STRIPE),
        Just(STRIPE + 1),
        (2 * STRIPE..6 * STRIPE),
        Just(3 * 1024 * 1024 + 7),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Up to M shards lost per stripe (whole files deleted, single blocks corrupted):
    /// the exact bytes come back, whole and by range, and the damage is queued for repair.
    #[test]
    fn exact_bytes_through_up_to_m_losses_per_stripe(
        len in sizes(),
        seed in any::<u64>(),
        deleted in 0usize..=2,
    ) {
        let rt = rt();
        let n = node();
        let bytes = data(len, seed);
        rt.block_on(n.put("obj", &bytes));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xdead);
        let damaged = len > 0;
        // A read needs data shards 0..min(len, K): losing one of those must be noticed.
        let mut needed_shard_lost = false;
        if damaged {
            let seg = n.segment("obj");
            let mut shards: Vec<usize> = (0..6).collect();
            for i in (1..shards.len()).rev() {
                shards.swap(i, rng.random_range(0..=i));
            }
            for &i in &shards[..deleted] {
                std::fs::remove_file(n.shard_path(&seg, i)).expect("delete shard");
                needed_shard_lost |= i < len.min(4);
            }
            let live = &shards[deleted..];
            for s in 0..seg.geometry.stripes() {
                let extra = rng.random_range(0..=(2 - deleted));
                for &i in live.iter().take(extra) {
                    n.corrupt(&seg, i, s, rng.random::<u32>() as usize);
                }
            }
        }
        let (got, failed) = rt.block_on(n.read("obj", None));
        prop_assert!(!failed);
        prop_assert!(got == bytes, "whole object differs");
        if len > 0 {
            let a = rng.random_range(0..len as u64);
            let b = rng.random_range(a..len as u64);
            let (got, failed) = rt.block_on(n.read("obj", Some(ByteRange::FromTo { first: a, last: b })));
            prop_assert!(!failed);
            prop_assert!(got == bytes[a as usize..=b as usize], "range {a}-{b} differs");
        }
        if needed_shard_lost {
            prop_assert!(!n.store.repair_queue(10).expect("queue").is_empty());
        }
    }
}

/// M+1 bad blocks in one stripe: the read fails cleanly, and never with wrong bytes.
#[test]
fn m_plus_one_losses_in_a_stripe_fail_cleanly() {
    let rt = rt();
    let n = node();
    let len = 5 * STRIPE + 123;
    let bytes = data(len, 7);
    rt.block_on(n.put("obj", &bytes));
    let seg = n.segment("obj");
    for (stripe, shards) in [(0u64, [0usize, 3, 5]), (3, [1, 2, 4])] {
        let n2 = node();
        rt.block_on(n2.put("obj", &bytes));
        let seg2 = n2.segment("obj");
        for i in shards {
            n2.corrupt(&seg2, i, stripe, 11);
        }
        let (got, failed) = rt.block_on(n2.read("obj", None));
        assert!(failed, "a read past M losses must fail");
        assert!(got.len() <= stripe as usize * STRIPE);
        assert_eq!(
            got,
            bytes[..got.len()],
            "bytes before the failure are exact"
        );
    }
    // A failure in the first stripe is an error before any byte.
    for i in [0usize, 1, 2] {
        std::fs::remove_file(n.shard_path(&seg, i)).expect("delete");
    }
    let key = ObjectKey::new("obj").expect("key");
    let r = rt.block_on(n.store.get_object(&n.bucket, &key, None, None));
    assert!(matches!(
        r,
        Err(StoreError::Unreadable {
            good: 3,
            needed: 4,
            ..
        })
    ));
}

#[test]
fn versions_are_create_only_and_ordered() {
    let rt = rt();
    let n = node();
    n.store
        .set_versioning(&n.bucket, crate::meta::Versioning::Enabled)
        .expect("versioning");
    let a = rt.block_on(n.put("k", b"first"));
    let b = rt.block_on(n.put("k", b"second"));
    assert!(b.version_id > a.version_id);
    assert_eq!(rt.block_on(n.read("k", None)).0, b"second");
    let key = ObjectKey::new("k").expect("key");
    let old = rt
        .block_on(n.store.get_object(&n.bucket, &key, Some(&a.version), None))
        .expect("old version");
    assert_eq!(old.record.etag, a.etag);
    let listed = n.store.list_versions(&n.bucket, None, 10).expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].1.version_id, b.version_id, "newest first");
    assert_eq!(a.etag, hex::encode(md5_of(b"first")));
}

#[test]
fn unversioned_puts_replace_the_null_version_and_its_shards() {
    let rt = rt();
    let n = node();
    let big = data(3 * STRIPE, 5);
    let first = rt.block_on(n.put("k", &big));
    assert_eq!(first.version, VersionRef::Null);
    let seg = n.segment("k");
    let old_files: Vec<_> = (0..6).map(|i| n.shard_path(&seg, i)).collect();
    assert!(old_files.iter().all(|p| p.exists()));
    rt.block_on(n.put("k", b"second"));
    assert_eq!(rt.block_on(n.read("k", None)).0, b"second");
    let listed = n.store.list_versions(&n.bucket, None, 10).expect("list");
    assert_eq!(listed.len(), 1, "one null version per key");
    assert!(listed[0].1.null_version);
    assert!(
        old_files.iter().all(|p| !p.exists()),
        "replaced data is removed"
    );
}

fn md5_of(b: &[u8]) -> [u8; 16] {
    let mut m = crate::checksum::Md5::default();
    m.update(b);
    m.finish()
}

#[test]
fn bad_input_stores_nothing() {
    let rt = rt();
    let n = node();
    let key = ObjectKey::new("k").expect("key");
    let short = PutOptions {
        content_length: Some(10),
        ..Default::default()
    };
    let r = rt.block_on(n.store.put_object(&n.bucket, &key, short, body(b"abc")));
    assert!(matches!(
        r,
        Err(StoreError::IncompleteBody {
            expected: 10,
            received: 3
        })
    ));
    let long = PutOptions {
        content_length: Some(2),
        ..Default::default()
    };
    let r = rt.block_on(
        n.store
            .put_object(&n.bucket, &key, long, body(&data(100_000, 1))),
    );
    assert!(matches!(
        r,
        Err(StoreError::IncompleteBody { expected: 2, .. })
    ));
    let md5 = PutOptions {
        content_md5: Some([0; 16]),
        ..Default::default()
    };
    let r = rt.block_on(
        n.store
            .put_object(&n.bucket, &key, md5, body(&data(50_000, 2))),
    );
    assert!(matches!(r, Err(StoreError::BadDigest { .. })));
    assert!(
        n.store
            .list_versions(&n.bucket, None, 10)
            .expect("list")
            .is_empty()
    );
    assert!(n.store.meta().pending().expect("pending").is_empty());
    // No shard file is left on any disk.
    for d in &n.store.config().disks {
        for sub in ["tmp", "shards"] {
            let files = walk(&d.path.join(sub));
            assert!(files.is_empty(), "left behind: {files:?}");
        }
    }
}

pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn small_objects_live_inline_with_one_commit_and_no_shard_files() {
    let rt = rt();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::embedded(dir.path());
    config.block_size = BLOCK;
    config.inline_max = 1024;
    let store = Store::open(config, Arc::new(SystemClock)).expect("open");
    let bucket = BucketName::new("small").expect("name");
    store.create_bucket(&bucket, false).expect("bucket");
    let key = ObjectKey::new("tiny").expect("key");
    let bytes = data(1000, 3);
    let out = rt
        .block_on(store.put_object(&bucket, &key, PutOptions::default(), body(&bytes)))
        .expect("put");
    assert_eq!(out.etag, hex::encode(md5_of(&bytes)));
    let rec = store.head_object(&bucket, &key, None).expect("head");
    assert!(rec.inline && rec.segments.is_empty());
    for d in &store.config().disks {
        assert!(
            walk(&d.path.join("shards")).is_empty(),
            "no shard file for an inline object"
        );
    }
    let read = |range| {
        rt.block_on(async {
            let r = store
                .get_object(&bucket, &key, None, range)
                .await
                .expect("get");
            let mut out = Vec::new();
            let mut b = r.body;
            while let Some(c) = b.next().await {
                out.extend_from_slice(&c.expect("chunk"));
            }
            out
        })
    };
    assert_eq!(read(None), bytes);
    assert_eq!(
        read(Some(ByteRange::FromTo {
            first: 10,
            last: 19
        })),
        &bytes[10..20]
    );
    // One byte over the limit goes to shards.
    let big = ObjectKey::new("not-tiny").expect("key");
    rt.block_on(store.put_object(&bucket, &big, PutOptions::default(), body(&data(1025, 4))))
        .expect("put");
    assert!(!store.head_object(&bucket, &big, None).expect("head").inline);
    // Removing the version removes its inline bytes with it.
    let vref = rec.version_ref();
    rt.block_on(store.delete_object(&bucket, &key, Some(&vref), false))
        .expect("delete");
    assert!(
        store
            .meta()
            .inline(&bucket, &key, &rec.version_id)
            .expect("meta")
            .is_none()
    );
}

/// Shard files are written read-only, and a shard file that exists is never replaced: the
/// only way a shard reaches its place is a hard link, which refuses an existing name.
#[test]
fn shard_files_are_read_only_and_never_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let rt = rt();
    let n = node();
    rt.block_on(n.put("k", &data(2 * STRIPE + 3, 9)));
    let seg = n.segment("k");
    for i in 0..6 {
        let p = n.shard_path(&seg, i);
        let mode = std::fs::metadata(&p).expect("shard").permissions().mode();
        assert_eq!(mode & 0o222, 0, "{} is writable: {mode:o}", p.display());
    }
    // Writing the same segment again (as a buggy or malicious caller might) fails and
    // leaves the existing shard byte for byte.
    let p = n.shard_path(&seg, 0);
    let before = std::fs::read(&p).expect("read");
    let disk = n.store.disk(&seg.shards[0].disk).expect("disk").clone();
    let again = disk
        .create(crate::disk::ShardName::new(seg.id, 0), BLOCK as u32)
        .and_then(|mut w| {
            w.append(&[0x66; BLOCK])?;
            w.finish()
        });
    assert!(again.is_err(), "an existing shard file was replaced");
    assert_eq!(std::fs::read(&p).expect("read"), before);
}

/// The engine's one deletion path refuses locked versions, whoever calls it; a delete
/// marker on top leaves the version in place.
#[test]
fn the_engine_refuses_to_remove_locked_versions() {
    use crate::meta::{LockRequest, Retention, RetentionMode};
    let rt = rt();
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(crate::clock::ManualClock::new(crate::Timestamp::from_secs(
        1_800_000_000,
    )));
    let store = Store::open_with(
        NodeConfig::embedded(dir.path()),
        clock.clone(),
        clock.clone(),
    )
    .expect("open");
    let bucket = BucketName::new("locked").expect("name");
    store.create_bucket(&bucket, true).expect("bucket");
    let key = ObjectKey::new("k").expect("key");
    let until = clock.now().plus_micros(86_400_000_000);
    let opts = PutOptions {
        content_md5: Some(md5_of(b"keep")),
        lock: LockRequest {
            retention: Some(Retention {
                mode: RetentionMode::Governance,
                until,
            }),
            legal_hold: None,
        },
        ..Default::default()
    };
    let put = rt
        .block_on(store.put_object(&bucket, &key, opts, body(b"keep")))
        .expect("put");
    let v = put.version;
    let refused = rt.block_on(store.delete_object(&bucket, &key, Some(&v), false));
    assert!(matches!(
        refused,
        Err(StoreError::Lock(
            crate::lock::LockError::RetentionActive { .. }
        ))
    ));
    // A marker is allowed and hides nothing from a versioned read.
    rt.block_on(store.delete_object(&bucket, &key, None, false))
        .expect("marker");
    assert!(store.head_object(&bucket, &key, Some(&v)).is_ok());
    // Once retention time passes the date, the version may go.
    clock.advance_micros(86_400_000_001);
    rt.block_on(store.delete_object(&bucket, &key, Some(&v), false))
        .expect("expired");
    assert!(store.head_object(&bucket, &key, Some(&v)).is_err());
}

/// A part re-uploaded while Complete runs must not leave the new version pointing at the
/// replaced part's removed data: the commit re-checks the parts under the write guard.
#[test]
fn complete_refuses_parts_that_changed_meanwhile() {
    let rt = rt();
    let n = node();
    let key = ObjectKey::new("mp").expect("key");
    let id = n
        .store
        .create_multipart_upload(&n.bucket, &key, PutOptions::default())
        .expect("create");
    let up = |bytes: &'static [u8]| {
        rt.block_on(n.store.upload_part(
            &n.bucket,
            &key,
            &id.to_string(),
            1,
            PutOptions::default(),
            body(bytes),
        ))
        .expect("part")
    };
    up(b"first");
    let upload = n
        .store
        .inner
        .meta
        .upload(&n.bucket, &key, &id)
        .expect("meta")
        .expect("upload");
    let seen = n.store.inner.meta.parts(&id).expect("parts");
    up(b"second"); // the re-upload Complete did not see
    let stale: Vec<&crate::meta::PartRecord> = seen.iter().collect();
    let r = n.store.inner.meta.finish_upload(&upload, None, &stale);
    assert!(matches!(
        r,
        Err(crate::meta::MetaError::PartChanged { part_number: 1, .. })
    ));
    // The upload is untouched and completes with the part it has now.
    let parts = n.store.inner.meta.parts(&id).expect("parts");
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].etag, hex::encode(md5_of(b"second")));
}

/// Bucket changes are read-modify-write under the metadata guard: racing a versioning
/// suspension against enabling Object Lock never ends with lock on and versioning
/// suspended.
#[test]
fn bucket_changes_never_overwrite_each_other() {
    let n = node();
    n.store
        .set_versioning(&n.bucket, crate::meta::Versioning::Enabled)
        .expect("versioning");
    let store = n.store.clone();
    let bucket = n.bucket.clone();
    let suspender = std::thread::spawn(move || {
        for _ in 0..200 {
            let _ = store.set_versioning(&bucket, crate::meta::Versioning::Suspended);
            let _ = store.set_versioning(&bucket, crate::meta::Versioning::Enabled);
        }
    });
    let mut locked = false;
    for _ in 0..200 {
        if n.store.set_lock_configuration(&n.bucket, None).is_ok() {
            locked = true;
        }
        let b = n.store.bucket(&n.bucket).expect("bucket");
        assert!(
            !(b.object_lock && b.versioning != crate::meta::Versioning::Enabled),
            "lock on with versioning {:?}",
            b.versioning
        );
    }
    suspender.join().expect("join");
    let b = n.store.bucket(&n.bucket).expect("bucket");
    assert!(locked && b.object_lock && b.versioning == crate::meta::Versioning::Enabled);
}

/// A node on a hand-driven clock (wall and monotonic), with the default inline size.
struct ClockedNode {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<crate::clock::ManualClock>,
}

fn clocked_node() -> ClockedNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::embedded(dir.path());
    config.block_size = BLOCK;
    config.inline_max = BLOCK;
    let clock = Arc::new(crate::clock::ManualClock::new(SystemClock.now()));
    let store = Store::open_with(config, clock.clone(), clock.clone()).expect("open");
    ClockedNode {
        _dir: dir,
        store,
        clock,
    }
}

impl ClockedNode {
    fn put(&self, rt: &tokio::runtime::Runtime, bucket: &str, key: &str, bytes: &[u8]) {
        let b = BucketName::new(bucket).expect("name");
        if self.store.bucket(&b).is_err() {
            self.store.create_bucket(&b, false).expect("bucket");
        }
        let k = ObjectKey::new(key).expect("key");
        rt.block_on(
            self.store
                .put_object(&b, &k, PutOptions::default(), body(bytes)),
        )
        .expect("put");
    }

    /// Plants, inside `bucket` after `key`, a version record this release cannot read (as
    /// a newer release's format would be): the key under which it sits.
    /// Alerts on this node's store and clock, with a sink (so they are queued).
    fn alerts(&self) -> Arc<crate::alert::Alerts> {
        let alerts = Arc::new(crate::alert::Alerts::new(
            self.store.meta_handle(),
            self.clock.clone(),
            1_000_000,
        ));
        alerts.set_sink("ops", "http://127.0.0.1:9/").expect("sink");
        alerts
    }

    fn plant_unreadable_version(&self, bucket: &str, key: &str) -> Vec<u8> {
        let k = crate::meta::keys::version_key(
            &BucketName::new(bucket).expect("name"),
            &ObjectKey::new(key).expect("key"),
            &VersionId::generate(self.clock.now()),
        );
        self.store
            .inner
            .meta
            .put_raw(crate::meta::Cf::Versions, &k, &[99, 1, 2, 3])
            .expect("plant");
        k
    }
}

/// Scrub's orphan cutoff reads the store's injected clock, not the system's: a file
/// written "now" in real time is an hour old once the store's clock has moved an hour.
#[test]
fn scrub_judges_orphans_on_the_injected_clock() {
    use crate::background::runner::{PassEnd, PassWorker};
    let n = clocked_node();
    let seg = SegmentId::generate(n.clock.now());
    let path = crate::disk::local::shard_path(
        &n.store.disk("d0").expect("d0").spec().path,
        crate::disk::ShardName::new(seg, 0),
    );
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    std::fs::write(&path, b"no version names me").expect("plant");
    let scrub = crate::background::scrub::ScrubWorker::new(
        n.store.clone(),
        None,
        std::time::Duration::from_secs(60),
        u32::MAX,
    );
    let (_tx, running) = tokio::sync::watch::channel(false);
    assert_eq!(scrub.pass(None, &running), PassEnd::Finished);
    assert!(path.exists(), "a file written just now is never taken");
    n.clock.advance_micros(3_600_000_000);
    assert_eq!(scrub.pass(None, &running), PassEnd::Finished);
    assert!(
        !path.exists(),
        "an hour later on the store's clock it is an orphan"
    );
    let report = scrub.status().last_pass.expect("report");
    assert_eq!(report.orphans_quarantined, 1);
}

/// A scrub pass that meets a metadata error ends as failed (never as a pass done), keeps
/// its checkpoint, and the next pass resumes there once the record reads again.
#[test]
fn a_scrub_pass_that_meets_a_metadata_error_fails_and_resumes() {
    use crate::background::runner::{PassEnd, PassWorker};
    let rt = rt();
    let n = clocked_node();
    for b in ["alpha", "bravo"] {
        for k in ["k0", "k1", "k2"] {
            n.put(&rt, b, k, k.as_bytes());
        }
    }
    let planted = n.plant_unreadable_version("bravo", "k0x");
    let scrub = crate::background::scrub::ScrubWorker::new(
        n.store.clone(),
        None,
        std::time::Duration::from_secs(60),
        u32::MAX,
    );
    let (_tx, running) = tokio::sync::watch::channel(false);
    let end = scrub.pass(None, &running);
    let PassEnd::Failed(reason) = end else {
        panic!("the pass must fail, not {end:?}");
    };
    assert!(reason.contains("bucket bravo"), "{reason}");
    let st = scrub.status();
    assert_eq!(
        (st.passes, st.last_pass),
        (0, None),
        "no pass reported done"
    );
    // The scan that would hand out bravo/k0 meets the planted record right after it.
    let cp = scrub.load_checkpoint().expect("checkpoint kept");
    assert_eq!((cp.bucket.as_str(), cp.after.as_str()), ("alpha", "k2"));
    n.store
        .inner
        .meta
        .delete_raw(crate::meta::Cf::Versions, &planted)
        .expect("unplant");
    assert_eq!(scrub.pass(Some(cp), &running), PassEnd::Finished);
    let report = scrub.status().last_pass.expect("report");
    assert!(report.resumed);
    assert_eq!((report.keys_before_resume, report.keys), (3, 6));
}

/// The runner: a failed pass is counted and shown in the status, alerted, and retried
/// from its checkpoint; the next pass that finishes clears the failure.
#[test]
fn the_runner_counts_alerts_and_retries_a_failed_pass() {
    let rt = rt();
    let n = clocked_node();
    for k in ["k0", "k1", "k2"] {
        n.put(&rt, "alpha", k, b"x");
    }
    let planted = n.plant_unreadable_version("alpha", "k1x");
    let alerts = n.alerts();
    let scrub = crate::background::scrub::ScrubWorker::new(
        n.store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(3600),
        u32::MAX,
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let runner = rt.spawn(crate::background::runner::run(scrub.clone(), rx));
    let first = rt.block_on(scrub.run_and_wait()).expect("not paused");
    assert!(first.is_err(), "{first:?}");
    let st = scrub.status();
    assert_eq!(st.failed_passes, 1);
    assert!(st.last_failure.is_some_and(|r| r.contains("bucket alpha")));
    let queued = alerts.queue(100).expect("queue");
    assert!(
        queued.iter().any(
            |q| q.payload.contains("\"worker-pass-failed\"") && q.payload.contains("\"scrub\"")
        ),
        "{queued:?}"
    );
    n.store
        .inner
        .meta
        .delete_raw(crate::meta::Cf::Versions, &planted)
        .expect("unplant");
    let second = rt
        .block_on(scrub.run_and_wait())
        .expect("not paused")
        .expect("the retry finishes");
    assert!(second.resumed, "{second:?}");
    assert_eq!(
        (second.keys_before_resume, second.keys),
        (1, 3),
        "{second:?}"
    );
    let st = scrub.status();
    assert_eq!((st.passes, st.failed_passes), (1, 1));
    assert_eq!(st.last_failure, None);
    tx.send(true).expect("shutdown");
    rt.block_on(runner).expect("runner ends");
}

/// A restore drill that cannot draw its sample says so: it is not a drill that passed.
#[test]
fn a_drill_that_cannot_sample_reports_an_error() {
    let rt = rt();
    let n = clocked_node();
    n.put(&rt, "alpha", "k0", b"x");
    let ok = rt.block_on(crate::background::drill::drill(&n.store, None, 4));
    assert_eq!((ok.passed, ok.error), (1, None));
    let planted = n.plant_unreadable_version("alpha", "k1");
    let r = rt.block_on(crate::background::drill::drill(&n.store, None, 4));
    assert!(r.error.is_some(), "{r:?}");
    n.store
        .inner
        .meta
        .delete_raw(crate::meta::Cf::Versions, &planted)
        .expect("unplant");
}

/// A repair that fails stays queued with its error and attempt count, pushed back by a
/// growing delay, and is alerted at its third failure; it leaves the queue only once the
/// version is whole again (here: never, it lost more shards than M).
#[test]
fn a_failed_repair_stays_queued_with_backoff_and_is_alerted() {
    let rt = rt();
    let n = clocked_node();
    n.put(&rt, "alpha", "big", &data(3 * STRIPE + 5, 3));
    let bucket = BucketName::new("alpha").expect("name");
    let key = ObjectKey::new("big").expect("key");
    let rec = n.store.head_object(&bucket, &key, None).expect("head");
    let seg = rec.segments[0].clone();
    for i in [0usize, 2, 4] {
        let p = crate::disk::local::shard_path(
            &n.store.disk(&seg.shards[i].disk).expect("disk").spec().path,
            crate::disk::ShardName::new(seg.id, i),
        );
        std::fs::remove_file(p).expect("delete");
    }
    n.store
        .inner
        .meta
        .enqueue_repair(&RepairRecord::new(
            bucket.clone(),
            key.clone(),
            rec.version_id,
            seg.id,
            vec![0, 2],
            RepairReason::ReadFailed,
            n.clock.now(),
        ))
        .expect("queue");
    // A second read of the same version queues the same segment again: one repair.
    n.store
        .inner
        .meta
        .enqueue_repair(&RepairRecord::new(
            bucket.clone(),
            key.clone(),
            rec.version_id,
            seg.id,
            vec![4],
            RepairReason::ReadFailed,
            n.clock.now().plus_micros(1),
        ))
        .expect("queue");
    n.clock.advance_micros(1);
    let alerts = n.alerts();
    let every = std::time::Duration::from_secs(10);
    let worker = crate::background::drill::RepairWorker::new(
        n.store.clone(),
        Some(alerts.clone()),
        every,
        std::time::Duration::from_secs(900),
        std::time::Duration::from_secs(900),
    );
    let mut waits = Vec::new();
    for attempt in 1..=3u32 {
        assert_eq!(worker.drain(), 1, "attempt {attempt} is due");
        let q = n.store.repair_queue(10).expect("queue");
        assert_eq!(q.len(), 1, "a failed repair stays queued, merged: {q:?}");
        assert_eq!(q[0].attempts, attempt);
        assert_eq!(q[0].shards, vec![0, 2, 4]);
        assert!(
            q[0].last_error
                .as_deref()
                .is_some_and(|e| e.contains("fewer"))
        );
        let wait = q[0].due.micros() - n.clock.now().micros();
        waits.push(wait);
        assert_eq!(worker.drain(), 0, "not due again before its delay");
        n.clock.advance_micros(wait);
    }
    assert_eq!(waits, vec![10_000_000, 20_000_000, 40_000_000]);
    let st = worker.status_blocking().expect("status");
    assert_eq!((st.failing, st.failed_attempts, st.handled), (1, 3, 0));
    assert_eq!(st.failing_entries[0].attempts, 3);
    let queued = alerts.queue(100).expect("alerts");
    assert_eq!(
        queued
            .iter()
            .filter(|q| q.payload.contains("\"repair-failing\""))
            .count(),
        1,
        "alerted once, at the third failure"
    );
}

/// A site-unsafe entry counts its bytes (the gauge's source) until repair finds the
/// segment site-safe (one site: at once); bytes that stay past the threshold raise one
/// `site-unsafe` alert per episode.
#[test]
fn site_unsafe_bytes_are_counted_alerted_once_and_drained() {
    let rt = rt();
    let n = clocked_node();
    n.put(&rt, "alpha", "big", &data(2 * STRIPE, 4));
    let bucket = BucketName::new("alpha").expect("name");
    let key = ObjectKey::new("big").expect("key");
    let rec = n.store.head_object(&bucket, &key, None).expect("head");
    let seg = rec.segments[0].clone();
    n.store
        .inner
        .meta
        .enqueue_repair(&RepairRecord::new(
            bucket.clone(),
            key.clone(),
            rec.version_id,
            seg.id,
            Vec::new(),
            RepairReason::SiteUnsafe {
                bytes: seg.geometry.len,
            },
            n.clock.now(),
        ))
        .expect("queue");
    let alerts = n.alerts();
    let worker = crate::background::drill::RepairWorker::new(
        n.store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(900),
        std::time::Duration::from_secs(60),
    );
    let counted = |w: &crate::background::drill::RepairWorker| {
        (
            w.status_blocking().expect("status").site_unsafe_bytes,
            w.totals().expect("totals").0.site_unsafe_bytes,
        )
    };
    assert_eq!(counted(&worker), (2 * STRIPE as u64, 2 * STRIPE as u64));
    let raised = || {
        alerts
            .queue(100)
            .expect("alerts")
            .iter()
            .filter(|q| q.payload.contains("\"site-unsafe\""))
            .count()
    };
    worker.watch_site_unsafe();
    n.clock.advance_micros(59_000_000);
    worker.watch_site_unsafe();
    assert_eq!(raised(), 0, "not before the threshold");
    n.clock.advance_micros(1_000_000);
    worker.watch_site_unsafe();
    worker.watch_site_unsafe();
    assert_eq!(raised(), 1, "once per episode");
    // One site: the segment survives losing "any other site", so the entry leaves.
    assert_eq!(worker.drain(), 1);
    assert_eq!(counted(&worker), (0, 0));
    assert!(n.store.repair_queue(10).expect("queue").is_empty());
}

/// Shards a part's write could not place are queued for repair in the batch that commits
/// the completed version: after Complete the entry is there; a Complete the metadata
/// store refuses queues nothing.
#[test]
fn complete_queues_missing_shards_in_its_own_commit() {
    let rt = rt();
    let n = node();
    let key = ObjectKey::new("mp").expect("key");
    // Disk d5 is gone: the shard each segment places there cannot be written.
    let d5 = n.store.disk("d5").expect("d5").spec().path.clone();
    std::fs::remove_dir_all(&d5).expect("remove d5");
    let id = n
        .store
        .create_multipart_upload(&n.bucket, &key, PutOptions::default())
        .expect("create");
    let part = rt
        .block_on(n.store.upload_part(
            &n.bucket,
            &key,
            &id.to_string(),
            1,
            PutOptions::default(),
            body(&data(STRIPE + 1, 9)),
        ))
        .expect("part");
    // A refused commit (the part changed under it) writes no repair entry.
    let upload = n
        .store
        .inner
        .meta
        .upload(&n.bucket, &key, &id)
        .expect("meta")
        .expect("upload");
    let mut stale = n.store.inner.meta.parts(&id).expect("parts");
    stale[0].etag = "0".repeat(32);
    let entry = RepairRecord::new(
        n.bucket.clone(),
        key.clone(),
        VersionId::generate(Timestamp::from_secs(1)),
        id,
        vec![5],
        RepairReason::WriteFailed,
        Timestamp::from_secs(1),
    );
    let record = crate::meta::VersionRecord {
        version_id: entry.version_id,
        created: Timestamp::from_secs(1),
        kind: crate::meta::VersionKind::Object,
        size: 0,
        etag: String::new(),
        content_type: None,
        user_meta: Vec::new(),
        checksums: Vec::new(),
        segments: Vec::new(),
        null_version: true,
        inline: false,
        composite_checksum: false,
        system: crate::meta::SystemMeta::default(),
        blake3: Vec::new(),
        origin: crate::meta::Origin::Client,
    };
    let refused = n.store.inner.meta.finish_upload(
        &upload,
        Some(crate::meta::FinishedVersion {
            record: &record,
            replaces: None,
            lock: &crate::meta::LockRecord::default(),
            repairs: std::slice::from_ref(&entry),
            condition: &crate::meta::WriteCondition::Always,
            completed: &crate::meta::CompletedUpload {
                bucket: n.bucket.clone(),
                key: key.clone(),
                version_id: entry.version_id,
                null_version: true,
                etag: String::new(),
                size: 0,
                checksums: Vec::new(),
                parts: Vec::new(),
                completed: Timestamp::from_secs(1),
            },
        }),
        &stale.iter().collect::<Vec<_>>(),
    );
    assert!(refused.is_err());
    assert!(n.store.repair_queue(10).expect("queue").is_empty());
    let done = n
        .store
        .complete_multipart_upload(
            &n.bucket,
            &key,
            &id.to_string(),
            &[super::multipart::CompletedPart {
                part_number: 1,
                etag: part.etag.clone(),
                checksum: None,
            }],
            &Default::default(),
            &crate::meta::WriteCondition::Always,
        )
        .expect("complete");
    let q = n.store.repair_queue(10).expect("queue");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].version_id, done.version_id);
    assert_eq!(q[0].reason, RepairReason::WriteFailed);
}

/// The watchdog's freshness reads the bucket's last write, kept at commit time, instead of
/// scanning the bucket; a bucket from before that was kept is scanned once.
#[test]
fn a_buckets_last_write_is_kept_at_commit() {
    let rt = rt();
    let n = clocked_node();
    n.put(&rt, "fresh", "a", b"1");
    n.clock.advance_micros(5_000_000);
    n.put(&rt, "fresh", "b", b"2");
    let bucket = BucketName::new("fresh").expect("name");
    let newest = n
        .store
        .head_object(&bucket, &ObjectKey::new("b").expect("key"), None)
        .expect("head")
        .created;
    assert_eq!(
        n.store.newest_version_time(&bucket).expect("time"),
        Some(newest)
    );
    // Not a scan: a record the scan could not read does not stop it.
    let planted = n.plant_unreadable_version("fresh", "c");
    assert_eq!(
        n.store.newest_version_time(&bucket).expect("time"),
        Some(newest)
    );
    n.store
        .inner
        .meta
        .delete_raw(crate::meta::Cf::Versions, &planted)
        .expect("unplant");
    // A bucket without the record (written by an older release): one scan, then kept.
    n.store
        .inner
        .meta
        .delete_raw(crate::meta::Cf::Cluster, b"activity/fresh")
        .expect("forget");
    assert_eq!(n.store.inner.meta.last_write(&bucket).expect("read"), None);
    assert_eq!(
        n.store.newest_version_time(&bucket).expect("time"),
        Some(newest)
    );
    assert_eq!(
        n.store.inner.meta.last_write(&bucket).expect("read"),
        Some(newest)
    );
}

/// The last write moves with a multipart Complete and a delete marker, and never back.
#[test]
fn a_buckets_last_write_follows_completes_and_markers_and_never_goes_back() {
    let rt = rt();
    let n = clocked_node();
    n.put(&rt, "moving", "a", b"1");
    let bucket = BucketName::new("moving").expect("name");
    n.store
        .set_versioning(&bucket, crate::meta::Versioning::Enabled)
        .expect("versioning");
    let key = ObjectKey::new("mp").expect("key");
    let last = || n.store.inner.meta.last_write(&bucket).expect("read");
    n.clock.advance_micros(1_000_000);
    let id = n
        .store
        .create_multipart_upload(&bucket, &key, PutOptions::default())
        .expect("create");
    let part = rt
        .block_on(n.store.upload_part(
            &bucket,
            &key,
            &id.to_string(),
            1,
            PutOptions::default(),
            body(b"part"),
        ))
        .expect("part");
    n.clock.advance_micros(1_000_000);
    let done = n
        .store
        .complete_multipart_upload(
            &bucket,
            &key,
            &id.to_string(),
            &[super::multipart::CompletedPart {
                part_number: 1,
                etag: part.etag,
                checksum: None,
            }],
            &Default::default(),
            &crate::meta::WriteCondition::Always,
        )
        .expect("complete");
    assert_eq!(last(), Some(done.created));
    n.clock.advance_micros(1_000_000);
    let marker = rt
        .block_on(n.store.delete_object(&bucket, &key, None, false))
        .expect("delete");
    assert!(marker.delete_marker);
    let after_marker = last().expect("kept");
    assert!(after_marker > done.created);
    // An older time never moves it back.
    n.store
        .inner
        .meta
        .note_last_write(&bucket, done.created)
        .expect("note");
    assert_eq!(last(), Some(after_marker));
}

/// The rebalancer's old copies are removed once their grace ended, and only while a
/// placement records the shard on another disk: a move never recorded (a crash, an
/// unknown outcome) or moved back keeps the file, which may be the shard's only copy.
#[test]
fn an_old_shard_copy_goes_only_where_its_move_was_recorded() {
    let rt = rt();
    let n = node();
    rt.block_on(n.put("k", &data(2 * STRIPE + 3, 9)));
    let seg = n.segment("k");
    let now = n.store.clock().now();
    let meta = n.store.meta();
    let place = |i: u16, disk: &str, root| {
        meta.set_placement(
            &seg.id,
            i,
            &crate::meta::ShardPlacement {
                disk: disk.to_owned(),
                root,
            },
        )
        .expect("placement")
    };
    // Shard 0 moved to shard 5's disk; shard 2 moved back to its own; shard 1 never
    // recorded as moved; shard 3's grace not over.
    place(0, &seg.shards[5].disk, [0; 32]);
    place(2, &seg.shards[2].disk, seg.shards[2].root.expect("root"));
    for (i, due) in [(0, now), (1, now), (2, now), (3, now.plus_micros(1))] {
        n.store
            .queue_old_copy(&super::OldCopy {
                disk: seg.shards[i].disk.clone(),
                segment: seg.id,
                index: i as u16,
                due,
            })
            .expect("queue");
    }
    assert_eq!(n.store.old_copies_waiting().expect("count"), 4);
    assert_eq!(n.store.remove_old_copies(now).expect("remove"), 1);
    assert!(
        !n.shard_path(&seg, 0).exists(),
        "the moved shard's old copy stays"
    );
    for i in 1..=3 {
        assert!(n.shard_path(&seg, i).exists(), "shard {i} was removed");
    }
    assert_eq!(n.store.old_copies_waiting().expect("count"), 1);
    assert_eq!(
        n.store
            .remove_old_copies(now.plus_micros(1))
            .expect("remove"),
        0
    );
    assert!(n.shard_path(&seg, 3).exists());
    assert_eq!(n.store.old_copies_waiting().expect("count"), 0);
}
