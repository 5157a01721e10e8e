//! The engine on disks that fail on purpose ([`FaultyDisk`], at the shard-store seam):
//! EIO on read is reconstructed around, ENOSPC and EIO on write keep the write quorum and
//! queue repair, a torn write is never visible, and a vanished directory goes offline and
//! comes back. No root and no mounts needed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use stele::disk::{DiskState, DiskTiming, FaultPlan, FaultyDisk, ShardStore};
use stele::lock::SystemMonotonic;
use stele::meta::RepairReason;
use stele::{BucketName, NodeConfig, ObjectKey, Store, StoreError, SystemClock};
use stele_tests::engine;

/// A failed disk is probed again after this rest (production: 5 s). Long enough that a
/// state is still there when a loaded machine checks it after the writes (100 ms was not:
/// a full suite once saw a full disk back online before the assertion).
const REST: Duration = Duration::from_secs(1);

struct Node {
    store: Store,
    disks: Vec<FaultyDisk>,
    config: NodeConfig,
}

fn open(dir: &Path) -> Node {
    open_with(dir, |_| FaultPlan::default())
}

/// Opens the node on faulty disks whose plans are set before the store opens.
fn open_with(dir: &Path, plan: impl Fn(usize) -> FaultPlan) -> Node {
    let mut config = NodeConfig::embedded(dir);
    config.block_size = 64 * 1024;
    let timing = DiskTiming {
        retry_after: REST,
        stamp_check_every: Duration::ZERO,
    };
    let disks: Vec<FaultyDisk> = config
        .disks
        .iter()
        .map(|spec| FaultyDisk::open(spec.clone(), timing).expect("disk"))
        .collect();
    for (i, d) in disks.iter().enumerate() {
        d.set_plan(plan(i));
    }
    let store = Store::open_on(
        config.clone(),
        Arc::new(SystemClock),
        Arc::new(SystemMonotonic::default()),
        disks
            .iter()
            .map(|d| Arc::new(d.clone()) as Arc<dyn ShardStore>)
            .collect(),
    )
    .expect("open");
    store.create_bucket(&bucket(), false).ok();
    Node {
        store,
        disks,
        config,
    }
}

/// The number N of disk `dN` that a shard record names (by UUID).
fn disk_number(store: &Store, name: &str) -> usize {
    assert!(
        stele::disk::DiskUuid::parse(name).is_some(),
        "new shard records name disks by UUID: {name}"
    );
    let id = store.disk_id_of(name).expect("a disk of this node");
    id[1..].parse().expect("disk number")
}

fn bucket() -> BucketName {
    BucketName::new("faults").expect("bucket")
}

/// Objects that span one, several and partial stripes (stripe = 4 × 64 KiB).
fn objects(tag: &str) -> Vec<(ObjectKey, Vec<u8>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    [300_000usize, 1 << 20, 2_500_001]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let key = ObjectKey::new(format!("{tag}-{i}")).expect("key");
            (key, (0..len).map(|_| rng.random()).collect())
        })
        .collect()
}

async fn put(store: &Store, key: &ObjectKey, v: &[u8]) -> Result<(), StoreError> {
    engine::put(store, &bucket(), key, v).await
}

async fn put_all(store: &Store, objs: &[(ObjectKey, Vec<u8>)]) {
    engine::put_all(store, &bucket(), objs).await;
}

async fn read(store: &Store, key: &ObjectKey) -> Result<Vec<u8>, String> {
    engine::read(store, &bucket(), key).await
}

async fn assert_all_exact(store: &Store, objs: &[(ObjectKey, Vec<u8>)]) {
    engine::assert_all_exact(store, &bucket(), objs).await;
}

fn queued_for(store: &Store, reason: RepairReason) -> usize {
    store
        .repair_queue(1000)
        .expect("queue")
        .iter()
        .filter(|r| r.reason == reason)
        .count()
}

/// Every file in a folder tree, relative names only.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.file_name().unwrap_or_default().to_string_lossy().into());
            }
        }
    }
    out
}

/// Scrubs every version with repair; the number of shards rebuilt.
fn repair_all(store: &Store, objs: &[(ObjectKey, Vec<u8>)]) -> u64 {
    let mut repaired = 0;
    for (k, _) in objs {
        let rec = store.head_object(&bucket(), k, None).expect("head");
        let s = store
            .scrub_version(&bucket(), k, &rec, true)
            .expect("scrub");
        assert_eq!(s.repair_error, None, "{k}");
        assert_eq!(s.unrepairable, None, "{k}");
        repaired += s.repaired;
    }
    repaired
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eio_on_read_is_reconstructed_around_and_queued_for_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    let objs = objects("read");
    put_all(&n.store, &objs).await;
    // Two of six disks (M = 2) fail every read: each stripe still has K good blocks.
    // They are the disks of the last object's first two data shards, so reads meet them.
    let rec = n
        .store
        .head_object(&bucket(), &objs[2].0, None)
        .expect("head");
    let failing: Vec<usize> = rec.segments[0].shards[..2]
        .iter()
        .map(|s| disk_number(&n.store, &s.disk))
        .collect();
    for &i in &failing {
        n.disks[i].set_plan(FaultPlan {
            read_eio: true,
            ..FaultPlan::default()
        });
    }
    assert_all_exact(&n.store, &objs).await;
    assert!(failing.iter().all(|&i| n.disks[i].injected() > 0));
    assert!(queued_for(&n.store, RepairReason::ReadFailed) > 0);
    // A read error condemns the shard, not the disk.
    assert!(n.store.disks().iter().all(|d| d.state == DiskState::Online));
    // A third failing disk is one too many: the read fails, it never returns wrong bytes.
    let third = (0..6).find(|i| !failing.contains(i)).expect("a third disk");
    n.disks[third].set_plan(FaultPlan {
        read_eio: true,
        ..FaultPlan::default()
    });
    let (k, _) = &objs[1];
    assert!(
        read(&n.store, k).await.is_err(),
        "read with 3 of 6 shards failing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_writes_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    // Disk d3 fills after 300 KB: each 1 MiB of object puts 256 KiB on every disk.
    n.disks[3].set_plan(FaultPlan {
        enospc_after_bytes: Some(300_000),
        ..FaultPlan::default()
    });
    let objs = objects("full");
    put_all(&n.store, &objs).await;
    assert!(n.disks[3].injected() > 0);
    assert_eq!(n.store.disks()[3].state, DiskState::Full);
    assert_all_exact(&n.store, &objs).await;
    assert!(queued_for(&n.store, RepairReason::WriteFailed) > 0);
    // Room again: after its rest the disk takes shards again and repair fills it.
    n.disks[3].set_plan(FaultPlan::default());
    std::thread::sleep(REST * 2);
    assert_eq!(n.store.disks()[3].state, DiskState::Online);
    assert!(repair_all(&n.store, &objs) > 0);
    assert_eq!(
        repair_all(&n.store, &objs),
        0,
        "a second pass found more to do"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eio_on_write_keeps_the_quorum_and_queues_repair_until_too_many_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    // d2 fails after its third block.
    n.disks[2].set_plan(FaultPlan {
        write_eio_after_blocks: Some(3),
        ..FaultPlan::default()
    });
    let objs = objects("eio");
    put_all(&n.store, &objs).await;
    assert!(n.disks[2].injected() > 0);
    assert_eq!(n.store.disks()[2].state, DiskState::Offline);
    assert_all_exact(&n.store, &objs).await;
    assert!(queued_for(&n.store, RepairReason::WriteFailed) > 0);

    // Two disks failing leaves 4 of 6 shards, below the write quorum of 5: the write is
    // refused and leaves no version and no shard file behind.
    std::thread::sleep(REST * 2);
    for i in [0, 5] {
        n.disks[i].set_plan(FaultPlan {
            write_eio_after_blocks: Some(1),
            ..FaultPlan::default()
        });
    }
    n.disks[2].set_plan(FaultPlan::default());
    let before: usize = n
        .config
        .disks
        .iter()
        .map(|d| files_under(&d.path.join("shards")).len())
        .sum();
    let key = ObjectKey::new("refused").expect("key");
    let err = put(&n.store, &key, &vec![9u8; 1 << 20])
        .await
        .expect_err("a write below quorum was acknowledged");
    assert!(
        matches!(err, StoreError::InsufficientDisks { .. }),
        "{err:?}"
    );
    assert!(n.store.head_object(&bucket(), &key, None).is_err());
    let after: usize = n
        .config
        .disks
        .iter()
        .map(|d| files_under(&d.path.join("shards")).len())
        .sum();
    assert_eq!(after, before, "a refused write left shard files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_write_is_never_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    n.disks[0].set_plan(FaultPlan {
        torn_write: true,
        ..FaultPlan::default()
    });
    let objs = objects("torn");
    put_all(&n.store, &objs).await;
    assert_eq!(n.disks[0].injected(), 1);
    // The torn shard never got its name: d0 holds no file of the first object's segment,
    // and nothing is left in tmp/.
    let rec = n
        .store
        .head_object(&bucket(), &objs[0].0, None)
        .expect("head");
    let seg = &rec.segments[0];
    let torn: Vec<usize> = (0..seg.shards.len())
        .filter(|&i| seg.shards[i].root.is_none())
        .collect();
    assert_eq!(torn.len(), 1, "exactly one shard missing: {:?}", seg.shards);
    assert_eq!(
        n.store.disk_id_of(&seg.shards[torn[0]].disk).as_deref(),
        Some("d0")
    );
    let d0 = n.config.disks[0].path.clone();
    assert!(
        !files_under(&d0.join("shards"))
            .iter()
            .any(|f| f.starts_with(&seg.id.to_string())),
        "a torn shard is visible"
    );
    assert_eq!(files_under(&d0.join("tmp")), Vec::<String>::new());
    assert_all_exact(&n.store, &objs).await;
    // Reopened, the node reads the same bytes, and repair writes the shard whole.
    drop(n);
    let n = open(dir.path());
    assert_all_exact(&n.store, &objs).await;
    std::thread::sleep(REST * 2);
    assert!(n.store.disks().iter().all(|d| d.state == DiskState::Online));
    assert!(repair_all(&n.store, &objs) > 0);
    assert!(
        files_under(&d0.join("shards"))
            .iter()
            .any(|f| f.starts_with(&seg.id.to_string())),
        "repair did not write the torn shard"
    );
    assert_all_exact(&n.store, &objs).await;
}

/// A write torn by a crash: half a block in a temporary file that nobody removed. It is
/// never visible under a shard's name, the node reads around it, and the next start sweeps
/// it away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_torn_by_a_crash_is_never_visible_and_swept_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    n.disks[1].set_plan(FaultPlan {
        torn_and_abandoned: true,
        ..FaultPlan::default()
    });
    let objs = objects("crash");
    put_all(&n.store, &objs).await;
    assert_eq!(n.disks[1].injected(), 1);
    let d1 = n.config.disks[1].path.clone();
    let left = files_under(&d1.join("tmp"));
    assert_eq!(left.len(), 1, "the torn file is not in tmp/: {left:?}");
    let rec = n
        .store
        .head_object(&bucket(), &objs[0].0, None)
        .expect("head");
    let seg = &rec.segments[0];
    assert!(
        !files_under(&d1.join("shards"))
            .iter()
            .any(|f| f.starts_with(&seg.id.to_string())),
        "a torn shard is visible"
    );
    assert_all_exact(&n.store, &objs).await;
    drop(n);
    let n = open(dir.path());
    assert_eq!(
        files_under(&d1.join("tmp")),
        Vec::<String>::new(),
        "not swept"
    );
    assert_all_exact(&n.store, &objs).await;
    std::thread::sleep(REST * 2);
    assert!(n.store.disks().iter().all(|d| d.state == DiskState::Online));
    assert!(repair_all(&n.store, &objs) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_directory_goes_offline_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    let before = objects("before");
    put_all(&n.store, &before).await;
    n.disks[5].vanish().expect("vanish");
    assert_eq!(n.store.disks()[5].state, DiskState::Offline);
    // Reads and writes go on without it.
    assert_all_exact(&n.store, &before).await;
    let during = objects("during");
    put_all(&n.store, &during).await;
    let rec = n
        .store
        .head_object(&bucket(), &during[1].0, None)
        .expect("head");
    assert!(
        rec.segments[0]
            .shards
            .iter()
            .all(|s| n.store.disk_id_of(&s.disk).as_deref() != Some("d5") || s.root.is_none()),
        "a shard was written to a vanished disk"
    );
    n.disks[5].reappear().expect("reappear");
    std::thread::sleep(REST * 2);
    assert_eq!(n.store.disks()[5].state, DiskState::Online);
    let after = objects("after");
    put_all(&n.store, &after).await;
    let rec = n
        .store
        .head_object(&bucket(), &after[1].0, None)
        .expect("head");
    assert!(
        rec.segments[0]
            .shards
            .iter()
            .any(|s| n.store.disk_id_of(&s.disk).as_deref() == Some("d5") && s.root.is_some()),
        "the disk that came back takes no shards"
    );
    let mut all = before;
    all.extend(during);
    all.extend(after);
    assert_all_exact(&n.store, &all).await;
    repair_all(&n.store, &all);
    assert_eq!(repair_all(&n.store, &all), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_slows_but_does_not_change_an_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    n.disks[3].set_plan(FaultPlan {
        delay: Duration::from_millis(2),
        ..FaultPlan::default()
    });
    let objs = objects("slow");
    put_all(&n.store, &objs).await;
    assert_all_exact(&n.store, &objs).await;
    assert_eq!(queued_for(&n.store, RepairReason::WriteFailed), 0);
    assert_eq!(queued_for(&n.store, RepairReason::ReadFailed), 0);
}

/// A crash left a write unfinished, and at the next start one disk cannot remove its
/// shard: the node still opens (one bad disk does not stop it), keeps the unfinished
/// record so a later start tries again, and does so once the disk is well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_cannot_remove_does_not_stop_the_node_from_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = open(dir.path());
    let seg = stele::SegmentId([9; 16]);
    let names: Vec<String> = n
        .store
        .disks()
        .iter()
        .map(|d| d.uuid.expect("uuid").to_string())
        .collect();
    n.store
        .meta()
        .add_pending(&stele::meta::PendingRecord {
            segment: seg,
            shards: names
                .iter()
                .enumerate()
                .map(|(i, d)| (i as u16, d.clone()))
                .collect(),
            created: stele::Timestamp(1),
        })
        .expect("pending");
    drop(n);
    let n = open_with(dir.path(), |i| FaultPlan {
        remove_eio: i == 2,
        ..FaultPlan::default()
    });
    assert!(n.disks[2].injected() > 0, "the remove was not tried");
    let pending = n.store.meta().pending().expect("pending");
    assert_eq!(pending.len(), 1, "the unfinished write was forgotten");
    // Still serving.
    put_all(&n.store, &objects("after")).await;
    drop(n);
    let n = open(dir.path());
    assert!(n.store.meta().pending().expect("pending").is_empty());
}
