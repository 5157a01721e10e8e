//! The rules every [`ShardStore`] keeps, as one suite that runs against each
//! implementation (feature `test-hooks`; in the spirit of `object_store`'s shared tests).
//!
//! [`run`] takes a function that opens a fresh store on a given directory and panics with
//! the rule that was broken.

use std::path::Path;
use std::sync::Arc;

use super::{Corruption, DiskError, DiskState, Expect, ShardName, ShardStore};
use crate::config::DiskSpec;
use crate::types::SegmentId;

const BLOCK: u32 = 8;

/// Runs every check, each on a fresh directory under `dir`.
///
/// # Panics
/// On the first rule the store breaks.
pub fn run(dir: &Path, open: &dyn Fn(DiskSpec) -> Arc<dyn ShardStore>) {
    type Check = fn(&dyn ShardStore);
    let checks: [(&str, Check); 8] = [
        ("round_trip", round_trip),
        ("unfinished_is_invisible", unfinished_is_invisible),
        ("never_replaced", never_replaced),
        ("open_checks_the_root", open_checks_the_root),
        ("rebuild_needs_the_root", rebuild_needs_the_root),
        ("remove", remove),
        ("list_and_quarantine", list_and_quarantine),
        ("status", status),
    ];
    for (name, check) in checks {
        let spec = DiskSpec {
            id: format!("conf-{name}"),
            path: dir.join(name),
            node: "node1".into(),
            site: "site1".into(),
        };
        let store = open(spec);
        check(store.as_ref());
    }
}

fn name(n: u8, index: usize) -> ShardName {
    ShardName::new(SegmentId([n; 16]), index)
}

const BLOCKS: [&[u8]; 3] = [b"abcdefgh", b"ijklmnop", b"qrs"];

/// Writes the three test blocks as `name`; their expectation.
fn write(store: &dyn ShardStore, name: ShardName) -> Expect {
    let mut sink = store.create(name, BLOCK).expect("create");
    for b in BLOCKS {
        sink.append(b).expect("append");
    }
    let root = sink.finish().expect("finish");
    let hashes: Vec<u8> = BLOCKS
        .iter()
        .flat_map(|b| *blake3::hash(b).as_bytes())
        .collect();
    assert_eq!(
        root,
        *blake3::hash(&hashes).as_bytes(),
        "the root is BLAKE3 of the block hashes"
    );
    Expect {
        block_size: BLOCK,
        blocks: BLOCKS.len() as u64,
        data_len: BLOCKS.iter().map(|b| b.len() as u64).sum(),
        root,
    }
}

fn read_all(store: &dyn ShardStore, name: ShardName, expect: &Expect) -> Vec<Vec<u8>> {
    let source = store.open(name, expect).expect("open");
    BLOCKS
        .iter()
        .enumerate()
        .map(|(s, b)| {
            let mut buf = vec![0u8; b.len()];
            source.read_block(s as u64, &mut buf).expect("read");
            buf
        })
        .collect()
}

fn round_trip(store: &dyn ShardStore) {
    let n = name(1, 0);
    let expect = write(store, n);
    assert_eq!(read_all(store, n, &expect), BLOCKS.map(<[u8]>::to_vec));
    // Read ahead: in order, skipping a block, going back, past the hint.
    let source = store.open(n, &expect).expect("open");
    source.read_ahead(2);
    for s in [0usize, 2, 1, 0, 1, 2] {
        let mut buf = vec![0u8; BLOCKS[s].len()];
        source.read_block(s as u64, &mut buf).expect("read ahead");
        assert_eq!(buf, BLOCKS[s], "block {s} read with a read-ahead hint");
    }
    // Another index of the same segment is another shard.
    let other = write(store, name(1, 1));
    assert_eq!(other, expect);
}

fn unfinished_is_invisible(store: &dyn ShardStore) {
    let n = name(2, 0);
    let mut sink = store.create(n, BLOCK).expect("create");
    sink.append(BLOCKS[0]).expect("append");
    drop(sink);
    let expect = Expect {
        block_size: BLOCK,
        blocks: 1,
        data_len: BLOCK as u64,
        root: *blake3::hash(blake3::hash(BLOCKS[0]).as_bytes()).as_bytes(),
    };
    assert!(
        store.open(n, &expect).is_err(),
        "a dropped sink left a shard"
    );
    let listed = store.list_older_than(i64::MAX).expect("list");
    assert!(listed.is_empty(), "a dropped sink left a file: {listed:?}");
    // The name is free: the shard can be written afresh.
    write(store, n);
}

fn never_replaced(store: &dyn ShardStore) {
    let n = name(3, 2);
    let expect = write(store, n);
    let mut sink = store.create(n, BLOCK).expect("create");
    sink.append(b"XXXXXXXX").expect("append");
    let again = sink.finish();
    assert!(
        matches!(again, Err(DiskError::AlreadyExists { .. })),
        "a finished shard was replaced: {again:?}"
    );
    assert_eq!(read_all(store, n, &expect), BLOCKS.map(<[u8]>::to_vec));
}

fn open_checks_the_root(store: &dyn ShardStore) {
    let n = name(4, 0);
    let expect = write(store, n);
    let wrong_root = Expect {
        root: [7; 32],
        ..expect
    };
    assert!(matches!(
        store.open(n, &wrong_root).err(),
        Some(DiskError::Corrupt {
            what: Corruption::RootMismatch,
            ..
        })
    ));
    let wrong_len = Expect {
        data_len: expect.data_len + 1,
        ..expect
    };
    assert!(matches!(
        store.open(n, &wrong_len).err(),
        Some(DiskError::Corrupt { .. })
    ));
    assert!(
        store.open(name(4, 1), &expect).is_err(),
        "a shard never written opened"
    );
}

fn rebuild_needs_the_root(store: &dyn ShardStore) {
    let n = name(5, 0);
    let expect = write(store, n);
    let mut sink = store.rebuild(n, BLOCK, expect.root).expect("rebuild");
    sink.append(b"XXXXXXXX").expect("append");
    let wrong = sink.finish();
    assert!(
        matches!(wrong, Err(DiskError::Corrupt { .. })),
        "a rebuild that hashes to another root was accepted: {wrong:?}"
    );
    assert_eq!(read_all(store, n, &expect), BLOCKS.map(<[u8]>::to_vec));
    let mut sink = store.rebuild(n, BLOCK, expect.root).expect("rebuild");
    for b in BLOCKS {
        sink.append(b).expect("append");
    }
    assert_eq!(sink.finish().expect("finish"), expect.root);
    assert_eq!(read_all(store, n, &expect), BLOCKS.map(<[u8]>::to_vec));
}

fn remove(store: &dyn ShardStore) {
    let n = name(6, 0);
    let expect = write(store, n);
    store.remove(n).expect("remove");
    assert!(store.open(n, &expect).is_err(), "a removed shard opened");
    store
        .remove(n)
        .expect("removing a missing shard is not an error");
    assert_eq!(store.state(), DiskState::Online);
}

fn list_and_quarantine(store: &dyn ShardStore) {
    let keep = name(7, 0);
    let orphan = name(8, 3);
    let expect = write(store, keep);
    write(store, orphan);
    assert!(
        store.list_older_than(0).expect("list").is_empty(),
        "files newer than the bound were listed"
    );
    let mut listed = store.list_older_than(i64::MAX).expect("list");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [keep.to_string(), orphan.to_string()]);
    assert_eq!(listed[1].segment, orphan.segment.to_string());
    store.quarantine(&listed[1]).expect("quarantine");
    let after = store.list_older_than(i64::MAX).expect("list");
    assert_eq!(after.len(), 1, "quarantined file still listed: {after:?}");
    assert_eq!(read_all(store, keep, &expect), BLOCKS.map(<[u8]>::to_vec));
}

fn status(store: &dyn ShardStore) {
    let s = store.status();
    assert_eq!(s.id, store.id());
    assert_eq!(s.node, store.spec().node);
    assert_eq!(s.state, DiskState::Online);
    assert!(store.usable());
    assert!(store.probe());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{DiskTiming, FaultyDisk, LocalDisk};

    #[test]
    fn the_local_disk_keeps_the_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(dir.path(), &|spec| {
            Arc::new(LocalDisk::open(spec).expect("open")) as Arc<dyn ShardStore>
        });
    }

    #[test]
    fn the_faulty_disk_without_faults_keeps_the_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(dir.path(), &|spec| {
            Arc::new(FaultyDisk::open(spec, DiskTiming::default()).expect("open"))
                as Arc<dyn ShardStore>
        });
    }
}
