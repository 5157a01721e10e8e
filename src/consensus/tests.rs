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
use crate::command::CommandLog as _;
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

fn init(cluster_id: &str, node_id: &str) -> crate::command::Stamped {
    crate::command::Stamped {
        cmd: crate::command::MetaCommand::Cluster(crate::membership::ClusterChange::Init {
            cluster_id: cluster_id.into(),
            ca_fingerprint: "ab".repeat(32),
            node_id: node_id.into(),
            cert_fingerprint: "cd".repeat(32),
        }),
        now: crate::lock::Now::at(crate::types::Timestamp(1_800_000_000_000_000)),
        by: None,
    }
}

/// The command tests' log and a cluster's first membership, applied as Raft entries —
/// in one group, and one entry at a time — answer and hold byte for byte what one node
/// applying them directly does. A snapshot installed on another node replaces exactly
/// what the consensus agrees on (the namespace and membership: a record the snapshot
/// lacks is gone) and nothing else (a bucket's activity stays).
#[test]
fn entries_apply_the_commands_as_one_node_does_and_a_snapshot_carries_them() {
    let mut log = command_tests::log();
    log.push(init("c1", "0000000000000007"));
    let direct = command_tests::memory();
    command_tests::create_bucket(&direct);
    direct.put_upload(&command_tests::upload()).expect("upload");
    let expected = command_tests::run(&direct, &log);

    let rt = runtime();
    let members = Membership::new(vec![BTreeSet::from([7u64])], None);
    let mut replicas = Vec::new();
    for group in [usize::MAX, 1] {
        let meta = Arc::new(command_tests::memory());
        command_tests::create_bucket(&meta);
        meta.put_upload(&command_tests::upload()).expect("upload");
        let mut sm = StateMachine::new(meta.clone());
        let mut entries = vec![entry(1, EntryPayload::Membership(members.clone()))];
        for (i, c) in log.iter().enumerate() {
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
    // A node with a membership and an upload of its own (replaced), and a bucket's
    // activity (a record outside the consensus: kept).
    let fresh = Arc::new(command_tests::memory());
    crate::command::LocalLog::new(fresh.clone())
        .propose(&init("c2", "0000000000000009"))
        .expect("another cluster");
    let own_upload = crate::meta::UploadRecord {
        upload_id: crate::types::SegmentId([9; 16]),
        ..command_tests::upload()
    };
    fresh.put_upload(&own_upload).expect("upload");
    let bucket = command_tests::upload().bucket;
    fresh
        .note_last_write(&bucket, crate::types::Timestamp::from_micros(5))
        .expect("activity");
    let mut other = StateMachine::new(fresh.clone());
    rt.block_on(other.install_snapshot(&snap.meta, snap.snapshot))
        .expect("install");
    let replicated = |m: &Meta| {
        m.dump()
            .expect("dump")
            .into_iter()
            .filter(|(cf, k, _)| {
                crate::meta::Cf::ALL
                    .iter()
                    .any(|f| f.name() == *cf && crate::meta::is_replicated(*f, k))
            })
            .collect::<Vec<_>>()
    };
    assert!(
        replicated(&meta).len() >= 4,
        "identity, member, buckets, versions"
    );
    assert_eq!(replicated(&fresh), replicated(&meta));
    assert_eq!(
        fresh
            .upload(&own_upload.bucket, &own_upload.key, &own_upload.upload_id)
            .expect("read"),
        None,
        "an upload the group does not hold stayed"
    );
    assert_eq!(
        fresh.last_write(&bucket).expect("read"),
        Some(crate::types::Timestamp::from_micros(5)),
        "a record outside the consensus was touched"
    );
    assert_eq!(
        fresh.bucket_geo(&bucket).expect("read"),
        Some(command_tests::bucket_geo()),
        "a bucket's erasure coding across sites travels with the snapshot"
    );
    assert_eq!(
        rt.block_on(other.applied_state()).expect("state"),
        rt.block_on(sm.applied_state()).expect("state")
    );
}

/// Messages between groups of one process: each call goes through the real codec into
/// the addressed node's `Group::handle`; a node marked down is unreachable. (The server's
/// transport over the node listener is tested end to end with real processes.)
#[derive(Default)]
struct Loopback {
    nodes: std::sync::RwLock<std::collections::HashMap<String, super::Group>>,
    down: std::sync::RwLock<BTreeSet<String>>,
}

impl super::network::Transport for Arc<Loopback> {
    fn call(
        &self,
        addr: String,
        call: super::network::RaftCall,
        body: Vec<u8>,
        _timeout: std::time::Duration,
    ) -> futures::future::BoxFuture<'static, Result<Vec<u8>, super::network::TransportError>> {
        let me = self.clone();
        Box::pin(async move {
            let unreachable = |reason: &str| super::network::TransportError::Unreachable {
                addr: addr.clone(),
                reason: reason.into(),
            };
            if me.down.read().expect("down").contains(&addr) {
                return Err(unreachable("down"));
            }
            let g = me.nodes.read().expect("nodes").get(&addr).cloned();
            let g = g.ok_or_else(|| unreachable("no such node"))?;
            g.handle(call, &body)
                .await
                .map_err(|e| unreachable(&e.to_string()))
        })
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    // A bound on liveness, loose enough for a loaded machine: not a speed check.
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not within 30 s: {what}");
}

/// Three groups over the codec: one initialised, two added as voters; the command tests'
/// log submitted through every member in turn (followers forward to the leader) answers
/// as one node does and leaves every replica with the same bytes; a follower refuses to propose, naming the leader; with the
/// leader down the other two elect another and go on.
#[test]
fn three_groups_agree_on_the_log_and_elect_a_new_leader_when_one_goes() {
    let rt = runtime();
    rt.block_on(async {
        let direct = command_tests::memory();
        command_tests::create_bucket(&direct);
        direct.put_upload(&command_tests::upload()).expect("upload");
        let log = command_tests::log();
        let expected = command_tests::run(&direct, &log[..log.len() - 1]);

        let net = Arc::new(Loopback::default());
        let mut metas = Vec::new();
        let mut groups = Vec::new();
        for n in 1..=3u64 {
            let meta = Arc::new(command_tests::memory());
            command_tests::create_bucket(&meta);
            meta.put_upload(&command_tests::upload()).expect("upload");
            let g = super::Group::start(n, meta.clone(), Arc::new(net.clone()))
                .await
                .expect("start");
            net.nodes
                .write()
                .expect("nodes")
                .insert(format!("n{n}"), g.clone());
            metas.push(meta);
            groups.push(g);
        }
        groups[0].initialize("n1".into()).await.expect("initialize");
        until("n1 leads", || groups[0].status().state == "leader").await;
        for n in 2..=3u64 {
            groups[0]
                .add_voter(n, format!("n{n}"))
                .await
                .expect("add voter");
        }
        assert_eq!(groups[0].status().voters.len(), 3);

        // Each command through another member: the leader proposes its own, a follower
        // forwards its to the leader and answers from applying the entry itself.
        let mut got = Vec::new();
        let mut last = 0;
        for (i, c) in log[..log.len() - 1].iter().enumerate() {
            let applied = groups[i % 3]
                .submit(
                    Proposal::of(c).expect("encode"),
                    std::time::Duration::from_secs(30),
                )
                .await
                .expect("submit");
            last = applied.index;
            got.extend(answers(vec![applied]));
        }
        assert_eq!(got, expected);
        for g in &groups {
            until("every replica applied the log", || {
                g.status().last_applied >= Some(last)
            })
            .await;
        }
        for m in &metas[1..] {
            assert_eq!(
                without_raft_family(m.dump().expect("dump")),
                without_raft_family(metas[0].dump().expect("dump"))
            );
        }
        assert_eq!(
            without_raft_family(metas[0].dump().expect("dump")),
            direct.dump().expect("dump")
        );

        match groups[1]
            .propose(Proposal::of(&log[0]).expect("encode"))
            .await
        {
            Err(super::ConsensusError::NotLeader {
                leader,
                leader_addr,
            }) => {
                assert_eq!(leader.as_deref(), Some(super::node_name(1).as_str()));
                assert_eq!(leader_addr.as_deref(), Some("n1"));
            }
            other => panic!("a follower proposed: {other:?}"),
        }

        // The leader goes: the two others elect one of them and take the last command.
        let term = groups[0].status().term;
        net.down.write().expect("down").insert("n1".into());
        groups[0].shutdown().await.expect("shutdown");
        until("a new leader", || {
            groups[1..]
                .iter()
                .any(|g| g.status().state == "leader" && g.status().term > term)
        })
        .await;
        let leader = groups[1..]
            .iter()
            .find(|g| g.status().state == "leader")
            .expect("leader");
        let applied = leader
            .propose(Proposal::of(&log[log.len() - 1]).expect("encode"))
            .await
            .expect("propose to the new leader");
        let direct_last = command_tests::run(&direct, &log[log.len() - 1..]);
        assert_eq!(answers(vec![applied]), direct_last);
        for g in &groups[1..] {
            g.shutdown().await.expect("shutdown");
        }
    });
}

/// A Raft message keeps its bytes: nodes of one cluster run mixed releases, so a change
/// of openraft's serde form (or ours) must come with a new [`MESSAGE_FORMAT`].
///
/// [`MESSAGE_FORMAT`]: super::network::MESSAGE_FORMAT
#[test]
fn a_raft_message_keeps_its_bytes() {
    let req = openraft::raft::VoteRequest::new(
        openraft::Vote::new(3, 5),
        Some(LogId::new(CommittedLeaderId::new(2, 5), 7)),
    );
    let bytes = super::network::encode(&req).expect("encode");
    assert_eq!(hex::encode(&bytes), "0103050001020507");
    let back: openraft::raft::VoteRequest<NodeId> = super::network::decode(&bytes).expect("decode");
    assert_eq!(back, req);
    // An append with one command entry, as a leader sends it.
    let append = openraft::raft::AppendEntriesRequest::<TypeConfig> {
        vote: openraft::Vote::new_committed(4, 5),
        prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 5), 8)),
        entries: vec![entry(9, EntryPayload::Normal(Proposal(vec![0x0e, 0x0f])))],
        leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 5), 7)),
    };
    let append_bytes = super::network::encode(&append).expect("encode");
    assert_eq!(
        hex::encode(&append_bytes),
        "01040501010305080101070901020e0f01030507"
    );
    // The leader's answer to a forwarded command: the entry's index, or why not.
    let forwarded: super::network::Forwarded = Ok(9);
    let fwd = super::network::encode(&forwarded).expect("encode");
    assert_eq!(hex::encode(&fwd), "010009");
    let refused: super::network::Forwarded = Err("no".into());
    assert_eq!(
        hex::encode(super::network::encode(&refused).expect("encode")),
        "0101026e6f"
    );
    let mut other = bytes.clone();
    other[0] = 2;
    assert!(super::network::decode::<openraft::raft::VoteRequest<NodeId>>(&other).is_err());
}
