//! A partitioned node (issue 14's acceptance): three nodes, each in its own network
//! namespace (joined: they reach each other directly), and one of them cut off by
//! nftables inside its namespace (every packet in or out of its `eth0` dropped; its S3
//! and admin listeners still answer from inside the namespace). Cut off, it answers 503
//! SlowDown to a write, a legal hold, a removal and a read: it decides nothing from its
//! stale state, while the other two go on deciding. Healed, it holds their history and
//! none of its own refusals.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
use stele_tests::netns::Netns;
use stele_tests::sites::{ctl_in, json, raft_agree};
use stele_tests::{Server, error_code, error_status, runtime};

/// 1 MiB (erasure-coded: above the inline limit), distinct per `seed`.
fn big(seed: u8) -> Vec<u8> {
    (0..1 << 20)
        .map(|i: usize| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// A client of `s` that does not retry: each refusal is seen as it is.
fn client(s: &Server) -> aws_sdk_s3::Client {
    s.client_once()
}

/// Drops every packet in or out of `site`'s link to the others (`heal` removes the
/// table again).
fn cut(ns: &Netns, site: &str) {
    let rules = "table inet stele_cut {\n\
                 chain in { type filter hook input priority 0; policy accept; iifname \"eth0\" drop; }\n\
                 chain out { type filter hook output priority 0; policy accept; oifname \"eth0\" drop; }\n\
                 }\n";
    ns.nft(site, rules);
}

fn heal(ns: &Netns, site: &str) {
    let out = ns
        .command(site, "nft")
        .args(["delete", "table", "inet", "stele_cut"])
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn statuses(ns: &Netns, nodes: &[(&str, &Server)]) -> Vec<serde_json::Value> {
    nodes
        .iter()
        .map(|(site, s)| json(&ctl_in(ns, site, s, &["--json", "cluster", "status"])))
        .collect()
}

/// Polls the statuses until `f` holds (a bound on progress, 90 s, not a speed check).
fn until(
    what: &str,
    ns: &Netns,
    nodes: &[(&str, &Server)],
    f: impl Fn(&[serde_json::Value]) -> bool,
) {
    let start = Instant::now();
    loop {
        let all = statuses(ns, nodes);
        if f(&all) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not within 90 s: {what}: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

async fn hold(s: &Server, version: &str) -> Result<(), (u16, String)> {
    client(s)
        .put_object_legal_hold()
        .bucket("locked")
        .key("kept")
        .version_id(version)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (error_status(&e), error_code(&e)))
}

async fn delete(s: &Server, version: &str) -> Result<(), (u16, String)> {
    client(s)
        .delete_object()
        .bucket("locked")
        .key("kept")
        .version_id(version)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (error_status(&e), error_code(&e)))
}

async fn put(s: &Server, key: &str, body: &[u8]) -> Result<String, (u16, String)> {
    client(s)
        .put_object()
        .bucket("locked")
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .map(|o| o.version_id.unwrap_or_default())
        .map_err(|e| (error_status(&e), error_code(&e)))
}

async fn get(s: &Server, key: &str) -> Result<Vec<u8>, (u16, String)> {
    match client(s)
        .get_object()
        .bucket("locked")
        .key(key)
        .send()
        .await
    {
        Ok(o) => Ok(o.body.collect().await.expect("body").into_bytes().to_vec()),
        Err(e) => Err((error_status(&e), error_code(&e))),
    }
}

async fn held(s: &Server, version: &str) -> Option<ObjectLockLegalHoldStatus> {
    client(s)
        .get_object_legal_hold()
        .bucket("locked")
        .key("kept")
        .version_id(version)
        .send()
        .await
        .ok()
        .and_then(|h| h.legal_hold)
        .and_then(|h| h.status)
}

#[test]
fn a_partitioned_node_decides_nothing_and_converges_after_healing() {
    if !Netns::require_or_skip("cluster_partition") {
        return;
    }
    // Declared before the servers: dropped (namespaces deleted) after they are killed.
    let ns = Netns::create_joined(&["a", "b", "c"]).expect("namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |site: &str, extra: &[String]| -> Server {
        let path = |p: &str| {
            dir.path()
                .join(site)
                .join(p)
                .to_str()
                .expect("path")
                .to_owned()
        };
        let rpc = format!("{}:0", ns.addr(site));
        let mut args: Vec<String> = [
            "--data",
            &path("data"),
            "--key-dir",
            &path("keys"),
            "--cluster-addr",
            &rpc,
            // Plain HTTP on the namespaces' own addresses (TLS is tls.rs's subject).
            "--tls",
            "off",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_in(&ns, site, &refs, dir.path())
    };
    let a = start("a", &[]);
    let init = json(&ctl_in(&ns, "a", &a, &["--json", "cluster", "init"]));
    let fingerprint = init["ca_fingerprint"].as_str().expect("fp").to_owned();
    let join = |site: &str| {
        let token = json(&ctl_in(&ns, "a", &a, &["--json", "cluster", "join-token"]));
        let extra = [
            "--join".to_owned(),
            a.cluster_addr.clone().expect("rpc"),
            "--join-token".to_owned(),
            token["token"].as_str().expect("token").to_owned(),
            "--ca-fingerprint".to_owned(),
            fingerprint.clone(),
        ];
        start(site, &extra)
    };
    let b = join("b");
    let c = join("c");
    let all = [("a", &a), ("b", &b), ("c", &c)];
    until("three voters agree", &ns, &all, |s| {
        raft_agree(s, 3)
            && s.iter()
                .all(|v| v["members"].as_array().map(Vec::len) == Some(3))
    });
    let version = ns
        .run_in("a", || {
            runtime().block_on(async {
                a.client()
                    .create_bucket()
                    .bucket("locked")
                    .object_lock_enabled_for_bucket(true)
                    .send()
                    .await
                    .expect("bucket");
                // Large: erasure-coded, two of its six shards on c's disks.
                put(&a, "big", &big(1)).await.expect("put big");
                put(&a, "kept", b"before the cut").await.expect("put")
            })
        })
        .expect("in a");
    ns.run_in("c", || {
        runtime().block_on(async {
            assert_eq!(get(&c, "kept").await.as_deref(), Ok(&b"before the cut"[..]));
        })
    })
    .expect("in c");

    cut(&ns, "c");
    // Cut off: every decision, and every read it cannot confirm, refused.
    ns.run_in("c", || {
        runtime().block_on(async {
            let slow = Err((503, "SlowDown".to_owned()));
            assert_eq!(
                put(&c, "new", b"through the cut-off node")
                    .await
                    .map(|_| ()),
                slow
            );
            assert_eq!(hold(&c, &version).await, slow);
            assert_eq!(delete(&c, &version).await, slow);
            assert_eq!(get(&c, "kept").await.map(|_| ()), slow);
        })
    })
    .expect("in c");
    // The majority goes on deciding meanwhile, reads large objects around c's shards
    // (c drops packets: its disks rest, calls to them fail at once) and writes new ones.
    ns.run_in("a", || {
        runtime().block_on(async {
            hold(&b, &version).await.expect("hold through b");
            put(&a, "after", b"while c is cut off").await.expect("put");
            for n in [&a, &b] {
                assert!(get(n, "big").await == Ok(big(1)), "through {}", n.s3_url);
            }
            put(&b, "big2", &big(2)).await.expect("put big2");
            assert_eq!(
                delete(&a, &version).await,
                Err((403, "AccessDenied".to_owned())),
                "a held version removed"
            );
        })
    })
    .expect("in a");

    heal(&ns, "c");
    // Caught up: one log, and every node sees every disk online again (a node's view of
    // another's disks comes back with its next probe, two seconds at most; until then
    // reads through it avoid them).
    until("c caught up", &ns, &all, |s| {
        raft_agree(s, 3)
            && s.iter().all(|v| {
                v["raft"]["last_applied"] == s[0]["raft"]["last_applied"]
                    && v["disks"]
                        .as_array()
                        .is_some_and(|d| d.len() == 18 && d.iter().all(|d| d["state"] == "online"))
            })
    });
    ns.run_in("c", || {
        runtime().block_on(async {
            for n in [&a, &b, &c] {
                assert_eq!(
                    get(n, "after").await.as_deref(),
                    Ok(&b"while c is cut off"[..]),
                    "through {}",
                    n.s3_url
                );
                assert!(get(n, "big2").await == Ok(big(2)), "through {}", n.s3_url);
                assert_eq!(
                    held(n, &version).await,
                    Some(ObjectLockLegalHoldStatus::On),
                    "through {}",
                    n.s3_url
                );
                let versions = client(n)
                    .list_object_versions()
                    .bucket("locked")
                    .prefix("kept")
                    .send()
                    .await
                    .expect("versions");
                assert_eq!(versions.versions().len(), 1, "through {}", n.s3_url);
                // The PUT refused through c had an unknown outcome for its client only
                // if it reached the leader, which it could not: it is nowhere.
                assert_eq!(
                    get(n, "new").await.map(|_| ()),
                    Err((404, "NoSuchKey".to_owned()))
                );
            }
            put(&c, "healed", b"through c again")
                .await
                .expect("c writes again");
        })
    })
    .expect("in c");
    drop((a, b, c));
}
