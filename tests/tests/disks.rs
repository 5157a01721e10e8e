//! Disk loss and rot: with two of six disks emptied (4+2), or random bytes flipped in
//! shard files, every object still reads back exactly; the node keeps serving and reports
//! the disks' states.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use stele::disk::DiskState;
use stele::{BucketName, NodeConfig, ObjectKey, PutOptions, Store, StoreError, SystemClock};
use stele_tests::engine;

fn open(dir: &Path) -> Store {
    let mut c = NodeConfig::embedded(dir);
    c.block_size = 64 * 1024;
    Store::open(c, Arc::new(SystemClock)).expect("open")
}

fn bucket() -> BucketName {
    BucketName::new("disks").expect("bucket")
}

fn objects() -> Vec<(ObjectKey, Vec<u8>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    [
        0usize,
        1,
        4096,
        262_143,
        262_144,
        262_145,
        1 << 20,
        3_000_001,
    ]
    .iter()
    .enumerate()
    .map(|(i, &len)| {
        let key = ObjectKey::new(format!("dir/obj-{i}")).expect("key");
        (key, (0..len).map(|_| rng.random()).collect())
    })
    .collect()
}

async fn put_all(store: &Store, objs: &[(ObjectKey, Vec<u8>)]) {
    engine::put_all(store, &bucket(), objs).await;
}

async fn assert_all_exact(store: &Store, objs: &[(ObjectKey, Vec<u8>)]) {
    engine::assert_all_exact(store, &bucket(), objs).await;
}

fn empty_dir(p: &Path) {
    for e in std::fs::read_dir(p).expect("read_dir").flatten() {
        let path = e.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("rm dir");
        } else {
            std::fs::remove_file(&path).expect("rm file");
        }
    }
}

fn shard_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/shards/") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_emptied_disks_lose_nothing_while_running_and_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objs = objects();
    let store = open(dir.path());
    store.create_bucket(&bucket(), false).expect("bucket");
    put_all(&store, &objs).await;
    let disks: Vec<PathBuf> = store
        .config()
        .disks
        .iter()
        .map(|d| d.path.clone())
        .collect();

    // While running: two disks lose everything, including their stamps.
    empty_dir(&disks[1]);
    empty_dir(&disks[4]);
    assert_all_exact(&store, &objs).await;
    let states: Vec<DiskState> = store.disks().iter().map(|d| d.state).collect();
    assert_eq!(states[1], DiskState::Offline, "{states:?}");
    assert_eq!(states[4], DiskState::Offline, "{states:?}");
    assert_eq!(
        states.iter().filter(|s| **s == DiskState::Online).count(),
        4
    );
    // Four usable disks are below the write quorum (K+1 = 5): writes to shards are refused
    // whole (objects small enough to be inline live in the metadata store instead).
    let key = ObjectKey::new("refused").expect("key");
    let r = store
        .put_object(
            &bucket(),
            &key,
            PutOptions::default(),
            futures::stream::iter(vec![Ok(Bytes::from(vec![7u8; 100_000]))]),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(StoreError::InsufficientDisks {
                available: 4,
                needed: 5
            })
        ),
        "{r:?}"
    );
    assert!(store.head_object(&bucket(), &key, None).is_err());
    assert!(!store.repair_queue(100).expect("queue").is_empty());
    drop(store);

    // After a restart the emptied directories are formatted again and reads reconstruct.
    let store = open(dir.path());
    assert!(store.disks().iter().all(|d| d.state == DiskState::Online));
    assert_all_exact(&store, &objs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lost_disk_still_takes_writes_and_queues_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store.create_bucket(&bucket(), false).expect("bucket");
    let disks: Vec<PathBuf> = store
        .config()
        .disks
        .iter()
        .map(|d| d.path.clone())
        .collect();
    std::fs::remove_dir_all(&disks[2]).expect("remove disk dir");
    let objs = objects();
    put_all(&store, &objs).await;
    assert_all_exact(&store, &objs).await;
    assert_eq!(store.disks()[2].state, DiskState::Offline);
    let queued = store.repair_queue(100).expect("queue");
    // Every object stored in shards (not inline) was written with one missing, and queued.
    let inline_max = store.config().inline_max;
    assert_eq!(
        queued.len(),
        objs.iter().filter(|(_, v)| v.len() > inline_max).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_in_random_shard_files_are_detected_and_corrected() {
    use std::os::unix::fs::{FileExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let objs = objects();
    let store = open(dir.path());
    store.create_bucket(&bucket(), false).expect("bucket");
    put_all(&store, &objs).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut flipped = 0;
    // At most two shard files of each segment (M = 2), anywhere in the file: data,
    // hash list or trailer.
    for (k, _) in &objs {
        let rec = store.head_object(&bucket(), k, None).expect("head");
        for seg in &rec.segments {
            let files: Vec<PathBuf> = shard_files(dir.path())
                .into_iter()
                .filter(|p| p.to_string_lossy().contains(&seg.id.to_string()))
                .collect();
            assert_eq!(files.len(), 6);
            for _ in 0..2 {
                let f = &files[rng.random_range(0..files.len())];
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(f)
                    .expect("open");
                let len = file.metadata().expect("stat").len();
                let at = rng.random_range(0..len);
                let mut b = [0u8; 1];
                file.read_exact_at(&mut b, at).expect("read");
                b[0] ^= 1 << rng.random_range(0..8);
                file.write_all_at(&b, at).expect("write");
                flipped += 1;
            }
        }
    }
    assert!(flipped >= 10);
    assert_all_exact(&store, &objs).await;
    assert!(!store.repair_queue(100).expect("queue").is_empty());
}
