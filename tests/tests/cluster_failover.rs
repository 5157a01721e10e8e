//! The Raft leader killed under load, again and again (issue 14, item 2): three real
//! processes, writers through every node, the leader SIGKILLed 20 times (each time
//! restarted on its folders and address). The clients keep a ledger of what was
//! acknowledged; at the end every node holds every acknowledged version, byte for byte,
//! under the id it was acknowledged with, and no write made two versions. Objects are
//! small (inline), so that every node can serve every one of them without remote shards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::primitives::ByteStream;
use stele_tests::sites::{cluster_node_at, raft, raft_agree, three_node_cluster, until_statuses};
use stele_tests::{Server, runtime};

/// How many times the leader is killed: 20 in the suite; the benchmark run sets
/// `STELE_FAILOVER_KILLS=100` (BENCHMARKS.md).
fn kills() -> usize {
    std::env::var("STELE_FAILOVER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// What the clients were told: key → (version id, bytes).
type Ledger = HashMap<String, (String, Vec<u8>)>;

/// A client for `url` that sends each request once (no retries: a retried PUT whose
/// first try was applied would make a second version, which is the client's doing).
fn once(url: &str) -> aws_sdk_s3::Client {
    let base = stele_tests::s3_client_with(url, stele_tests::ACCESS_KEY, stele_tests::SECRET_KEY);
    aws_sdk_s3::Client::from_conf(
        base.config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

#[test]
fn killing_the_leader_twenty_times_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = three_node_cluster(dir.path());
    let rpcs: Vec<String> = nodes
        .iter()
        .map(|n| n.cluster_addr.clone().expect("rpc"))
        .collect();
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| {
            stele_tests::sites::cluster_status(n)["node_id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    // Where each node's S3 listener is now (it moves on every restart).
    let urls = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.s3_url.clone()).collect::<Vec<_>>(),
    ));
    let mut nodes: Vec<Option<Server>> = nodes.into_iter().map(Some).collect();
    let rt = runtime();
    let first = urls.lock().expect("urls")[0].clone();
    rt.block_on(stele_tests::create_versioned(&once(&first), "ledger-v"));

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let tried = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, ledger, urls, tried) =
                (stop.clone(), ledger.clone(), urls.clone(), tried.clone());
            rt.spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let key = format!("w{w}-{n}");
                    let body = format!("{key} {}", "x".repeat((n % 64) as usize)).into_bytes();
                    let url = urls.lock().expect("urls")[(w + n as usize) % 3].clone();
                    let put = tokio::time::timeout(
                        Duration::from_secs(30),
                        once(&url)
                            .put_object()
                            .bucket("ledger-v")
                            .key(&key)
                            .body(ByteStream::from(body.clone()))
                            .send(),
                    )
                    .await;
                    match put {
                        Ok(Ok(out)) => {
                            let v = out.version_id.unwrap_or_default();
                            // A versioned bucket's PUT always names its version.
                            assert!(!v.is_empty(), "{key}: acknowledged without a version id");
                            ledger.lock().expect("ledger").insert(key, (v, body));
                        }
                        // Not acknowledged (refused with 503, cut off, timed out): the
                        // version may or may not exist; the ledger does not count it.
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            })
        })
        .collect();

    let mut elected_within = Vec::new();
    let kills = kills();
    for round in 0..kills {
        let live: Vec<&Server> = nodes.iter().flatten().collect();
        let all = until_statuses("a leader", &live, |all| raft_agree(all, 3));
        let leader_id = raft(&all[0], "leader").as_str().expect("leader").to_owned();
        let i = ids
            .iter()
            .position(|id| *id == leader_id)
            .expect("a member leads");
        let term = raft(&all[0], "term").as_u64().expect("term");
        let before = ledger.lock().expect("ledger").len();
        // Some acknowledged writes under this leader before it goes.
        let start = Instant::now();
        while ledger.lock().expect("ledger").len() < before + 5 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "round {round}: no write acknowledged"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nodes[i].take().expect("running").kill();
        let killed_at = Instant::now();
        let others: Vec<&Server> = nodes.iter().flatten().collect();
        until_statuses("the two others elect a new leader", &others, |all| {
            raft(&all[0], "leader")
                .as_str()
                .is_some_and(|l| l != leader_id)
                && raft(&all[0], "leader") == raft(&all[1], "leader")
                && raft(&all[0], "term").as_u64() > Some(term)
        });
        elected_within.push(killed_at.elapsed());
        let back = cluster_node_at(dir.path(), ["a", "b", "c"][i], &rpcs[i], &[]);
        urls.lock().expect("urls")[i] = back.s3_url.clone();
        nodes[i] = Some(back);
    }
    // Writes under the last leader, then the writers stop.
    let before = ledger.lock().expect("ledger").len();
    let start = Instant::now();
    while ledger.lock().expect("ledger").len() < before + 5 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no write after the last kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    rt.block_on(async {
        for w in writers {
            w.await.expect("writer");
        }
    });
    let ledger = ledger.lock().expect("ledger").clone();
    let mut sorted = elected_within.clone();
    sorted.sort();
    eprintln!(
        "{kills} kills: {} writes acknowledged of {} tried; a new leader seen within {:?} (median), {:?} (slowest)",
        ledger.len(),
        tried.load(std::sync::atomic::Ordering::SeqCst),
        sorted.get(sorted.len() / 2),
        sorted.last()
    );

    let live: Vec<&Server> = nodes.iter().flatten().collect();
    rt.block_on(async {
        for n in &live {
            let c = once(&n.s3_url);
            // Every version the bucket holds, through this node (after every write
            // acknowledged anywhere: its reads are linearizable).
            let mut versions: HashMap<String, Vec<String>> = HashMap::new();
            let (mut key_marker, mut version_marker) = (None, None);
            loop {
                let page = c
                    .list_object_versions()
                    .bucket("ledger-v")
                    .set_key_marker(key_marker.clone())
                    .set_version_id_marker(version_marker.clone())
                    .send()
                    .await
                    .expect("list");
                for v in page.versions() {
                    versions
                        .entry(v.key().unwrap_or_default().to_owned())
                        .or_default()
                        .push(v.version_id().unwrap_or_default().to_owned());
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_owned);
                version_marker = page.next_version_id_marker().map(str::to_owned);
            }
            for (key, ids) in &versions {
                assert_eq!(ids.len(), 1, "{key}: one write made {} versions", ids.len());
            }
            for (key, (version, body)) in &ledger {
                assert_eq!(
                    versions.get(key),
                    Some(&vec![version.clone()]),
                    "{key}: acknowledged as {version}, through {}",
                    n.s3_url
                );
                let got = c
                    .get_object()
                    .bucket("ledger-v")
                    .key(key)
                    .version_id(version)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{key} through {}: {e:?}", n.s3_url))
                    .body
                    .collect()
                    .await
                    .expect("body")
                    .into_bytes();
                assert_eq!(&got[..], &body[..], "{key}");
            }
        }
    });
}
