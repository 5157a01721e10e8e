//! openraft's own storage suite (`openraft::testing::Suite`) over the log and the state
//! machine, on RocksDB and on the in-memory engine.

use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, StorageError,
};

use super::{Applied, LogStore, NodeId, Proposal, StateMachine, TypeConfig};
use crate::command::tests as command_tests;
use crate::meta::{MemoryEngine, Meta};

struct OnRocks;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnRocks {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Arc::new(Meta::open(&dir.path().join("meta")).expect("open"));
        Ok((dir, LogStore::new(meta.clone()), StateMachine::new(meta)))
    }
}

struct InMemory;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for InMemory {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<NodeId>> {
        let meta = Arc::new(Meta::with_engine(Box::new(MemoryEngine::default())));
        Ok(((), LogStore::new(meta.clone()), StateMachine::new(meta)))
    }
}

#[test]
fn the_log_and_state_machine_pass_openraft_suite_on_rocksdb() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(OnRocks)
}

#[test]
fn the_log_and_state_machine_pass_openraft_suite_in_memory() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(InMemory)
}

fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 7), index),
        payload,
    }
}

/// The answers as the command tests write them.
fn answers(applied: Vec<Applied>) -> Vec<String> {
    applied
        .into_iter()
        .filter_map(|a| a.answer)
        .map(|a| match a {
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("refused: {e}"),
        })
        .collect()
}

fn without_raft_family(dump: Vec<crate::meta::DumpedRecord>) -> Vec<crate::meta::DumpedRecord> {
    dump.into_iter()
        .filter(|(cf, _, _)| *cf != "raft")
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The command tests' log applied as Raft entries — in one group, and one entry at a
/// time — answers and holds byte for byte what one node applying it directly does; a
/// snapshot of it installed on an empty node holds the same replicated records.
#[test]
fn entries_apply_the_commands_as_one_node_does_and_a_snapshot_carries_them() {
    let direct = command_tests::memory();
    command_tests::create_bucket(&direct);
    direct.put_upload(&command_tests::upload()).expect("upload");
    let expected = command_tests::run(&direct, &command_tests::log());

    let rt = runtime();
    let members = Membership::new(vec![BTreeSet::from([7u64])], None);
    let mut replicas = Vec::new();
    for group in [usize::MAX, 1] {
        let meta = Arc::new(command_tests::memory());
        command_tests::create_bucket(&meta);
        meta.put_upload(&command_tests::upload()).expect("upload");
        let mut sm = StateMachine::new(meta.clone());
        let mut entries = vec![entry(1, EntryPayload::Membership(members.clone()))];
        for (i, c) in command_tests::log().iter().enumerate() {
            let p = Proposal::of(c).expect("encode");
            entries.push(entry(i as u64 + 2, EntryPayload::Normal(p)));
        }
        let last = entries.len() as u64;
        let mut got = Vec::new();
        for chunk in entries.chunks(group) {
            got.extend(answers(
                rt.block_on(sm.apply(chunk.to_vec())).expect("apply"),
            ));
        }
        assert_eq!(got, expected, "groups of {group}");
        assert_eq!(
            without_raft_family(meta.dump().expect("dump")),
            direct.dump().expect("dump"),
            "groups of {group}"
        );
        let (applied, membership) = rt.block_on(sm.applied_state()).expect("state");
        assert_eq!(applied.map(|l| l.index), Some(last));
        assert_eq!(membership.membership(), &members);
        replicas.push((meta, sm));
    }

    let (meta, mut sm) = replicas.remove(0);
    let mut builder = rt.block_on(sm.get_snapshot_builder());
    let snap = rt.block_on(builder.build_snapshot()).expect("build");
    // A node holding what the snapshot does not: gone once it is installed.
    let fresh = Arc::new(command_tests::memory());
    fresh
        .put_upload(&crate::meta::UploadRecord {
            upload_id: crate::types::SegmentId([9; 16]),
            ..command_tests::upload()
        })
        .expect("upload");
    let mut other = StateMachine::new(fresh.clone());
    rt.block_on(other.install_snapshot(&snap.meta, snap.snapshot))
        .expect("install");
    let replicated = |m: &Meta| {
        m.dump()
            .expect("dump")
            .into_iter()
            .filter(|(cf, _, _)| {
                crate::meta::Cf::ALL
                    .iter()
                    .any(|f| f.name() == *cf && f.replicated())
            })
            .collect::<Vec<_>>()
    };
    assert!(!replicated(&meta).is_empty());
    assert_eq!(replicated(&fresh), replicated(&meta));
    assert_eq!(
        rt.block_on(other.applied_state()).expect("state"),
        rt.block_on(sm.applied_state()).expect("state")
    );
}
