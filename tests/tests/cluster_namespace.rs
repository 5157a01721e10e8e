//! One namespace over a cluster (issue 14, item 2): every bucket and object command goes
//! through the Raft group, whichever node a client sends it to (a follower forwards it to
//! the leader and answers once it applied the entry itself), so every node holds the same
//! buckets, versions and locks, and Object Lock decisions are made once, in log order.
//! Three real processes over their node listeners, clients through aws-sdk-s3. Objects are
//! small (inline: their bytes travel with their record); larger objects' shards stay on
//! the node that wrote them until remote shards (item 4).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
use stele_tests::sites::three_node_cluster;
use stele_tests::{Server, error_code, error_status, runtime};

async fn get(s: &Server, bucket: &str, key: &str, version: Option<&str>) -> Option<Vec<u8>> {
    let out = s
        .client()
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .ok()?;
    Some(
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec(),
    )
}

/// Creates `bucket` with Object Lock through `s`.
async fn create_locked(s: &Server, bucket: &str) {
    s.client()
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {bucket} through {}: {e:?}", s.s3_url));
}

async fn put(s: &Server, bucket: &str, key: &str, body: &[u8]) -> String {
    s.client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"))
        .version_id
        .unwrap_or_default()
}

#[test]
fn every_node_serves_what_any_node_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = three_node_cluster(dir.path());
    runtime().block_on(async {
        // Created through a follower (forwarded to the leader), seen by every node.
        let follower = &nodes[1];
        create_locked(follower, "shared").await;
        // Every node has it at once, with Object Lock; a second creation of the name
        // through another node changes nothing (S3's us-east-1 answer to its owner: 200).
        for n in &nodes {
            let lock = n
                .client()
                .get_object_lock_configuration()
                .bucket("shared")
                .send()
                .await
                .expect("lock configuration")
                .object_lock_configuration
                .and_then(|c| c.object_lock_enabled);
            assert!(lock.is_some(), "through {}", n.s3_url);
        }
        nodes[2]
            .client()
            .create_bucket()
            .bucket("shared")
            .send()
            .await
            .expect("created again: 200");

        // Each node writes one object; the next node reads it at once (a read on any
        // node follows every write acknowledged before it: S3's read-after-write).
        let mut written = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let key = format!("from-{i}");
            let body = format!("object {i} written through node {i}").into_bytes();
            let version = put(n, "shared", &key, &body).await;
            let next = &nodes[(i + 1) % 3];
            assert_eq!(
                get(next, "shared", &key, None).await.as_deref(),
                Some(&body[..]),
                "read through another node right after the write"
            );
            written.push((key, version, body));
        }
        // Every node lists and reads every object, byte for byte, under the same version.
        for n in &nodes {
            let list = n
                .client()
                .list_object_versions()
                .bucket("shared")
                .send()
                .await
                .expect("list");
            assert_eq!(list.versions().len(), 3, "through {}", n.s3_url);
            for (key, version, body) in &written {
                assert_eq!(
                    get(n, "shared", key, Some(version)).await.as_deref(),
                    Some(&body[..]),
                    "{key} through {}",
                    n.s3_url
                );
            }
        }

        // Create-only through two nodes at once: exactly one write wins.
        let (x, y) = tokio::join!(
            nodes[0]
                .client()
                .put_object()
                .bucket("shared")
                .key("once")
                .if_none_match("*")
                .body(ByteStream::from_static(b"first"))
                .send(),
            nodes[2]
                .client()
                .put_object()
                .bucket("shared")
                .key("once")
                .if_none_match("*")
                .body(ByteStream::from_static(b"second"))
                .send(),
        );
        let refused: Vec<u16> = [
            x.err().map(|e| error_status(&e)),
            y.err().map(|e| error_status(&e)),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(refused, [412], "exactly one create-only write is refused");

        // A bucket removed through one node is gone on every node.
        nodes[2]
            .client()
            .create_bucket()
            .bucket("brief")
            .send()
            .await
            .expect("create");
        nodes[0]
            .client()
            .delete_bucket()
            .bucket("brief")
            .send()
            .await
            .expect("delete through another node");
        for n in &nodes {
            let gone = n
                .client()
                .head_bucket()
                .bucket("brief")
                .send()
                .await
                .expect_err("removed through another node");
            assert_eq!(error_status(&gone), 404);
        }
    });
}

/// Replication to or from a cluster's member is refused (not built yet: its rules would
/// be one node's while every node applies the writes they decide), and nothing is kept.
#[test]
fn a_cluster_member_refuses_replication() {
    use stele_tests::sites::{ctl, ctl_fails};
    let dir = tempfile::tempdir().expect("tempdir");
    let fingerprint = "ab".repeat(32);
    let add_peer = [
        "replication",
        "peer",
        "add",
        "site-b",
        "--endpoint",
        "https://127.0.0.1:9",
        "--peer-fingerprint",
        &fingerprint,
        "--access-key",
        "AK",
        "--secret-key",
        "SK",
    ];
    let a = stele_tests::sites::cluster_node(dir.path(), "a", &[]);
    ctl(&a, &["cluster", "init"]);
    let refused = ctl_fails(&a, &add_peer);
    assert!(refused.contains("NotImplemented"), "{refused}");
    let peers = ctl(&a, &["replication", "status"]);
    assert!(!peers.contains("site-b"), "{peers}");
    // And a node that replicates makes no cluster (nothing is made).
    let z = stele_tests::sites::cluster_node(dir.path(), "z", &[]);
    ctl(&z, &add_peer);
    let refused = ctl_fails(&z, &["cluster", "init"]);
    assert!(refused.contains("ReplicationConfigured"), "{refused}");
    let status = stele_tests::sites::cluster_status(&z);
    assert!(status["cluster_id"].is_null(), "{status:#}");
}

/// Sets the legal hold on `version` through `s`: whether it was acknowledged.
async fn hold(s: &Server, key: &str, version: &str) -> Result<(), String> {
    s.client()
        .put_object_legal_hold()
        .bucket("locked")
        .key(key)
        .version_id(version)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

async fn delete(s: &Server, key: &str, version: &str) -> Result<(), String> {
    s.client()
        .delete_object()
        .bucket("locked")
        .key(key)
        .version_id(version)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

#[test]
fn a_legal_hold_through_one_node_racing_a_delete_through_another_never_loses_protection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = three_node_cluster(dir.path());
    let rounds = 30;
    runtime().block_on(async {
        create_locked(&nodes[0], "locked").await;
        let mut held = Vec::new();
        let (mut holds_won, mut deletes_won) = (0, 0);
        for i in 0..rounds {
            let key = format!("race-{i}");
            let version = put(&nodes[i % 3], "locked", &key, b"evidence").await;
            // The hold through one node, the delete through another, at once; which one
            // goes first alternates.
            let (h, d) = if i % 2 == 0 {
                tokio::join!(
                    hold(&nodes[0], &key, &version),
                    delete(&nodes[1], &key, &version)
                )
            } else {
                let (d, h) = tokio::join!(
                    delete(&nodes[2], &key, &version),
                    hold(&nodes[1], &key, &version)
                );
                (h, d)
            };
            match (&h, &d) {
                // The hold came first: the delete was refused by it.
                (Ok(()), Err(code)) => {
                    assert_eq!(code, "AccessDenied", "round {i}");
                    holds_won += 1;
                    held.push((key, version));
                }
                // The delete came first: there was nothing left to hold.
                (Err(code), Ok(())) => {
                    assert!(
                        code == "NoSuchVersion" || code == "NoSuchKey",
                        "round {i}: {code}"
                    );
                    deletes_won += 1;
                }
                other => panic!("round {i}: exactly one of the two must win: {other:?}"),
            }
        }
        eprintln!("{holds_won} holds and {deletes_won} deletes won");
        // Every acknowledged hold protects its version on every node.
        for n in &nodes {
            for (key, version) in &held {
                assert_eq!(
                    get(n, "locked", key, Some(version)).await.as_deref(),
                    Some(&b"evidence"[..]),
                    "{key} through {}",
                    n.s3_url
                );
                let status = n
                    .client()
                    .get_object_legal_hold()
                    .bucket("locked")
                    .key(key)
                    .version_id(version)
                    .send()
                    .await
                    .expect("hold")
                    .legal_hold
                    .and_then(|h| h.status);
                assert_eq!(status, Some(ObjectLockLegalHoldStatus::On));
                assert_eq!(
                    delete(n, key, version).await,
                    Err("AccessDenied".to_owned()),
                    "a held version removed through {}",
                    n.s3_url
                );
            }
        }
    });
}

/// The group's metadata replaces a joiner's: a node holding a bucket refuses to join
/// (rather than lose it), and its token stays unused.
#[test]
fn a_node_that_holds_buckets_joins_no_cluster() {
    use stele_tests::sites::{cluster_node, cluster_status, ctl, json};
    let dir = tempfile::tempdir().expect("tempdir");
    let a = cluster_node(dir.path(), "a", &[]);
    let init = json(&ctl(&a, &["--json", "cluster", "init"]));
    let fingerprint = init["ca_fingerprint"].as_str().expect("fp").to_owned();
    let d = cluster_node(dir.path(), "d", &[]);
    runtime()
        .block_on(d.client().create_bucket().bucket("mine").send())
        .expect("create");
    d.kill();
    let token = json(&ctl(&a, &["--json", "cluster", "join-token"]));
    let secret = token["token"].as_str().expect("token").to_owned();
    let rpc = a.cluster_addr.clone().expect("rpc");
    let args = stele_tests::sites::join_args(dir.path(), "d", &rpc, &secret, &fingerprint);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stele_tests::server_refuses(&refs);
    assert!(err.contains("joins a cluster empty"), "{err}");
    assert_eq!(
        cluster_status(&a)["members"].as_array().map(Vec::len),
        Some(1)
    );
    // The token was not spent: a fresh node joins with it.
    let e = cluster_node(
        dir.path(),
        "e",
        &[
            "--join",
            &rpc,
            "--join-token",
            &secret,
            "--ca-fingerprint",
            &fingerprint,
        ],
    );
    stele_tests::sites::until_statuses("e joins", &[&a, &e], |all| {
        all.iter()
            .all(|v| v["members"].as_array().map(Vec::len) == Some(2))
    });
}

/// A node cut off from the majority (here: the other two killed, the worst case being the
/// leader itself, which has not heard that it lost them) makes no decision: a PUT, a legal
/// hold, a delete and a read are answered 503 SlowDown, and nothing it holds changes. When
/// the others return, the three converge on one history and take writes.
#[test]
fn a_node_without_a_majority_refuses_writes_reads_and_lock_decisions() {
    use stele_tests::sites::{cluster_node_at, cluster_status, raft, raft_agree, until_statuses};
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = three_node_cluster(dir.path());
    let rt = runtime();
    let version = rt.block_on(async {
        create_locked(&nodes[0], "locked").await;
        put(&nodes[0], "locked", "kept", b"before the cut").await
    });
    // `a` leads (it made the cluster and nothing moved the lead since).
    assert_eq!(raft(&cluster_status(&nodes[0]), "state"), "leader");
    let rpcs: Vec<String> = nodes
        .iter()
        .map(|n| n.cluster_addr.clone().expect("rpc"))
        .collect();
    let [a, b, c] = nodes;
    b.kill();
    c.kill();
    rt.block_on(async {
        let refused = a
            .client()
            .put_object()
            .bucket("locked")
            .key("new")
            .body(ByteStream::from_static(b"after the cut"))
            .send()
            .await
            .expect_err("a write without a majority");
        assert_eq!(
            (error_status(&refused), error_code(&refused).as_str()),
            (503, "SlowDown")
        );
        assert_eq!(hold(&a, "kept", &version).await, Err("SlowDown".to_owned()));
        assert_eq!(
            delete(&a, "kept", &version).await,
            Err("SlowDown".to_owned())
        );
        let read = a
            .client()
            .get_object()
            .bucket("locked")
            .key("kept")
            .send()
            .await
            .expect_err("a read it cannot confirm");
        assert_eq!(error_status(&read), 503);
    });
    // Identity changes need the majority too (503, not a server error), while the node
    // still shows its own status (read from its copy, for an operator finding out why).
    let (s, body) = a.admin("POST", "/v1/users", Some(r#"{"name":"late","grants":[]}"#));
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("ClusterUnavailable"), "{body}");
    let (s, body) = a.admin("GET", "/v1/status", None);
    assert_eq!(s, 200, "{body}");
    // The others return: one history, the refused writes absent, writes taken again.
    let b = cluster_node_at(dir.path(), "b", &rpcs[1], &[]);
    let c = cluster_node_at(dir.path(), "c", &rpcs[2], &[]);
    until_statuses("the three agree again", &[&a, &b, &c], |all| {
        raft_agree(all, 3)
    });
    rt.block_on(async {
        for n in [&a, &b, &c] {
            // The PUT's entry was in the leader's log when its caller was answered 503
            // (an outcome unknown, as for any write that timed out: S3 clients retry),
            // so it may commit now; as one version of its bytes, or not at all.
            let new = get(n, "locked", "new", None).await;
            assert!(
                new.is_none() || new.as_deref() == Some(&b"after the cut"[..]),
                "{new:?}"
            );
            // The hold and the delete were refused before anything was proposed: the
            // version is there, not held.
            assert_eq!(
                get(n, "locked", "kept", Some(&version)).await.as_deref(),
                Some(&b"before the cut"[..])
            );
            let held = n
                .client()
                .get_object_legal_hold()
                .bucket("locked")
                .key("kept")
                .version_id(&version)
                .send()
                .await
                .ok()
                .and_then(|h| h.legal_hold)
                .and_then(|h| h.status);
            assert_ne!(held, Some(ObjectLockLegalHoldStatus::On));
        }
        put(&b, "locked", "new", b"after the heal").await;
        assert_eq!(
            get(&a, "locked", "new", None).await.as_deref(),
            Some(&b"after the heal"[..])
        );
    });
}

/// Nodes' clocks disagree (b's an hour behind a's and c's): a write through b that
/// follows one through a still becomes the key's current version on every node, and so
/// does a delete marker put through b after it — a version's time is past the key's
/// newest as the writing node holds it, whatever its clock says.
#[test]
fn a_write_through_a_node_whose_clock_is_behind_still_becomes_current() {
    use stele_tests::ClockFile;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_owned();
    let clock = |name: &str| ClockFile(d.join(format!("{name}.clock")));
    for n in ["a", "c"] {
        clock(n).set(0, 0);
    }
    clock("b").set(-3600, 0);
    let [a, b, c] = stele_tests::sites::three_node_cluster_with(&d, |name| {
        vec![
            "--test-clock".to_owned(),
            clock(name).0.to_str().expect("path").to_owned(),
        ]
    });
    runtime().block_on(async {
        create_locked(&a, "skew").await;
        // Through b straight after a's answer, ten times: no read through b between.
        let mut second = String::new();
        for round in 0..10 {
            let first = put(&a, "skew", "k", b"first, through a").await;
            second = put(&b, "skew", "k", b"second, through b").await;
            assert!(
                second > first,
                "round {round}: ids sort by time: {second} after {first}"
            );
        }
        for n in [&a, &b, &c] {
            assert_eq!(
                get(n, "skew", "k", None).await.as_deref(),
                Some(&b"second, through b"[..]),
                "the later write is the current version"
            );
        }
        let listed = c
            .client()
            .list_object_versions()
            .bucket("skew")
            .send()
            .await
            .expect("versions");
        let latest: Vec<_> = listed
            .versions()
            .iter()
            .filter(|v| v.is_latest() == Some(true))
            .map(|v| v.version_id().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(latest, vec![second.clone()]);
        b.client()
            .delete_object()
            .bucket("skew")
            .key("k")
            .send()
            .await
            .expect("delete marker through b");
        for n in [&a, &c] {
            assert_eq!(
                get(n, "skew", "k", None).await,
                None,
                "the marker is current"
            );
        }
    });
}
