//! Failover and failback between two real deployments (`sites.md` §4.7): site A, the
//! primary, is killed with SIGKILL under a backup load while its link to B is slow; B's
//! replica bucket is promoted with `stelectl` (which prints the realized RPO, judged
//! against the client's own ledger of acknowledged writes); restic restores from B and
//! goes on backing up to it; A comes back, learns the higher writer epoch from B and turns
//! its own bucket read-only, while its unreplicated tail still reaches B; failback
//! replicates B back to A. Both sides end with the union: every acknowledged version, on
//! both, nothing lost.

use std::time::{Duration, Instant, SystemTime};

use stele_client::{S3Client, S3Request};
use stele_tests::relay::{Dir, Relay, Shape};
use stele_tests::sites::{
    Peer, add_peer, ctl, ctl_fails, drained, json, replica_version, replicate, start_a, status,
    versions_of,
};
use stele_tests::webhook::Receiver;
use stele_tests::{ACCESS_KEY, SECRET_KEY, Server, runtime};

fn restic(repo: &str, extra: &[&str], args: &[&str]) -> std::process::Output {
    stele_tests::restic(repo, "stele-failover")
        .args(extra)
        .args(args)
        .output()
        .expect("restic (installed by scripts/setup-deps --clients)")
}

fn ok(o: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    text
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
        .collect()
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// A's S3 listener with the S3 user's key (plain HTTP).
fn client_a(a: &Server) -> S3Client {
    S3Client::new(&a.s3_url, None, ACCESS_KEY, SECRET_KEY, "us-east-1").expect("client")
}

fn put(
    rt: &tokio::runtime::Runtime,
    c: &S3Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> (u16, String, String) {
    let r = rt
        .block_on(
            c.send(
                S3Request::new(http::Method::PUT, bucket)
                    .with_key(key)
                    .with_body(bytes::Bytes::from(body)),
            ),
        )
        .expect("answer");
    let vid = r.header("x-amz-version-id").unwrap_or_default().to_owned();
    (r.status, r.error_code().unwrap_or_default(), vid)
}

/// A bucket's writer epoch, as `stelectl replication epoch --json` shows it.
fn epoch(server: &Server, bucket: &str) -> serde_json::Value {
    json(&ctl(server, &["replication", "epoch", bucket, "--json"]))
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn failover_promotes_b_fences_a_and_failback_leaves_the_union() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Peer::start(&rt, dir.path(), true);
    let relay = Relay::start(&[("ab", "127.0.0.1:0", &b.s3_addr())]);
    let mut a = start_a(dir.path());
    add_peer(&a, "b", &format!("https://{}", relay.link_addr("ab")), &b);
    let (hook, hook_url) = Receiver::start();
    let (s, out) = a.admin(
        "PUT",
        "/v1/alerts/sinks/ops",
        Some(&serde_json::json!({ "url": hook_url }).to_string()),
    );
    assert_eq!(s, 200, "{out}");
    let ca = client_a(&a);
    let made = rt
        .block_on(
            ca.send(
                S3Request::new(http::Method::PUT, "src")
                    .with_header("x-amz-bucket-object-lock-enabled", "true"),
            ),
        )
        .expect("create src");
    assert_eq!(made.status, 200);
    replicate(&a, "src", "b", true, 900);

    // restic backs up to A; the backup reaches B, whose bucket is now a read-only replica.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(tree.join("one.bin"), data(1 << 20, 1)).expect("file");
    let repo_a = format!("s3:{}/src", a.s3_url);
    ok(&restic(&repo_a, &[], &["init"]));
    ok(&restic(
        &repo_a,
        &[],
        &["backup", tree.to_str().expect("path")],
    ));
    drained(&a, "b", Duration::from_secs(120));
    let e = epoch(&b.server, "replica");
    assert_eq!(
        (e["role"].as_str(), e["epoch"].as_u64()),
        (Some("replica"), Some(0)),
        "{e}"
    );
    assert_eq!(epoch(&a, "src")["role"], "unpaired");
    let (st, code, _) = put(&rt, &b.s3, "replica", "direct", b"no".to_vec());
    assert_eq!(
        (st, code.as_str()),
        (409, "InvalidBucketState"),
        "a replica refuses client writes"
    );
    assert!(!b.versions(&rt).iter().any(|(k, _)| k == "direct"));

    // A slow link (the relay limits each connection) and a steady load on A: a backlog.
    relay.set(
        "ab",
        Dir::Fwd,
        Shape {
            rate_bytes_per_s: 32 << 10,
            ..Shape::default()
        },
    );
    let mut ledger: Vec<(String, String, SystemTime)> = Vec::new();
    let mut n = 0u32;
    let mut write = |ledger: &mut Vec<(String, String, SystemTime)>| {
        let key = format!("load/{n:04}");
        let (st, code, vid) = put(&rt, &ca, "src", &key, data(48 << 10, n as u8));
        assert_eq!(st, 200, "{code}");
        ledger.push((key, vid, SystemTime::now()));
        n += 1;
    };
    let heard = |b: &Peer| -> serde_json::Value {
        let all = json(&ctl(&b.server, &["replication", "sources", "--json"]));
        all.as_array()
            .and_then(|l| l.iter().find(|s| s["access_key"] == b.key.0.as_str()))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    // Until B has heard of a backlog; then until the next heartbeat, A is killed right
    // after it (so that the heartbeat is as recent as it can be, and the ledger's loss
    // window starts where the heartbeat said).
    let deadline = Instant::now() + Duration::from_secs(60);
    while heard(&b)["backlog_entries"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no heartbeat with a backlog");
        write(&mut ledger);
    }
    let last = heard(&b)["sent_at"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while heard(&b)["sent_at"] == last {
        assert!(Instant::now() < deadline, "no next heartbeat");
        write(&mut ledger);
    }
    // The newest write is not on B yet: A says so.
    let (k_last, v_last, _) = ledger.last().expect("writes").clone();
    let head = rt
        .block_on(
            ca.send(
                S3Request::new(http::Method::HEAD, "src")
                    .with_key(&k_last)
                    .with_query("versionId", &v_last),
            ),
        )
        .expect("head");
    assert_eq!(head.header("x-amz-replication-status"), Some("PENDING"));
    a.kill();
    let killed = SystemTime::now();

    // Failover: B is promoted; what it prints is judged against the ledger.
    let text = ctl(&b.server, &["replication", "promote", "replica"]);
    assert!(
        text.contains("promoted, writable here at epoch 1"),
        "{text}"
    );
    assert!(text.contains("realized RPO"), "{text}");
    let e = epoch(&b.server, "replica");
    assert_eq!(
        (
            e["role"].as_str(),
            e["epoch"].as_u64(),
            e["reason"].as_str()
        ),
        (Some("primary"), Some(1), Some("promoted")),
        "{e}"
    );
    let p = &e["promotion"];
    let reported = p["reported_rpo_seconds"].as_f64().expect("reported");
    let bound = p["rpo_bound_seconds"].as_f64().expect("bound");
    let on_b: std::collections::HashSet<(String, String)> = b.versions(&rt).into_iter().collect();
    let missing: Vec<&(String, String, SystemTime)> = ledger
        .iter()
        .filter(|(k, v, _)| !on_b.contains(&(k.clone(), v.clone())))
        .collect();
    assert!(
        !missing.is_empty(),
        "the slow link left nothing behind: nothing to judge"
    );
    let oldest_missing = missing.iter().map(|m| secs(m.2)).fold(f64::MAX, f64::min);
    let ledger_rpo = secs(killed) - oldest_missing;
    eprintln!(
        "failover: {} of {} acknowledged writes not on B; ledger RPO {ledger_rpo:.1} s, reported {reported:.1} s, bound {bound:.1} s",
        missing.len(),
        ledger.len()
    );
    // Truthful: what the ledger lost is within the printed bound, and what the heartbeat
    // reported is not far above it (at most what was acknowledged in the heartbeat
    // interval after it).
    assert!(
        ledger_rpo <= bound + 0.5,
        "ledger RPO {ledger_rpo:.1} s above the printed bound {bound:.1} s ({e})"
    );
    assert!(
        reported <= ledger_rpo + 5.0,
        "reported RPO {reported:.1} s, ledger RPO {ledger_rpo:.1} s ({e})"
    );
    let out = ctl_fails(&b.server, &["replication", "promote", "replica"]);
    assert!(out.contains("AlreadyPrimary"), "{out}");
    // A sender still at epoch 0 is refused, and nothing is written.
    let op = replica_version(
        stele::VersionId::generate(stele::Timestamp(1_900_000_000_000_000)),
        b"x",
        1,
    );
    let r = rt
        .block_on(
            b.peer.send(
                S3Request::new(http::Method::PUT, "replica")
                    .with_key("stale")
                    .with_header("x-stele-replication", &{
                        use base64::Engine;
                        use stele::meta::Record;
                        base64::engine::general_purpose::STANDARD
                            .encode(op.encode().expect("encode"))
                    })
                    .with_header("x-stele-replication-epoch", "1 0 primary")
                    .with_body(bytes::Bytes::from_static(b"x")),
            ),
        )
        .expect("answer");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (409, Some("StaleEpoch")),
        "{:?}",
        r.body
    );
    assert!(!b.versions(&rt).iter().any(|(k, _)| k == "stale"));

    // restic restores from B and goes on backing up to it.
    let cert = dir.path().join("b/stele-keys/tls/cert.pem");
    let tls = ["--cacert", cert.to_str().expect("path")];
    let repo_b = format!("s3:{}/replica", b.server.s3_url);
    let back = dir.path().join("back");
    ok(&restic(
        &repo_b,
        &tls,
        &[
            "restore",
            "latest",
            "--target",
            back.to_str().expect("path"),
        ],
    ));
    let restored = back.join(tree.strip_prefix("/").expect("absolute"));
    assert_eq!(
        std::fs::read(restored.join("one.bin")).expect("one"),
        data(1 << 20, 1)
    );
    std::fs::write(tree.join("two.bin"), data(300 << 10, 2)).expect("file");
    ok(&restic(
        &repo_b,
        &tls,
        &["backup", tree.to_str().expect("path")],
    ));
    let (st, _, vid_b) = put(
        &rt,
        &b.s3,
        "replica",
        "written-on-b",
        b"after failover".to_vec(),
    );
    assert_eq!(st, 200);

    // A comes back: it learns epoch 1 from B and turns its bucket read-only by itself.
    relay.set("ab", Dir::Fwd, Shape::default());
    a = start_a(dir.path());
    wait_until("A fenced", Duration::from_secs(60), || {
        epoch(&a, "src")["reason"] == "fenced"
    });
    let e = epoch(&a, "src");
    assert_eq!(
        (e["role"].as_str(), e["epoch"].as_u64()),
        (Some("replica"), Some(1)),
        "{e}"
    );
    let ca = client_a(&a);
    let (st, code, _) = put(&rt, &ca, "src", "split-brain", b"no".to_vec());
    assert_eq!(
        (st, code.as_str()),
        (409, "InvalidBucketState"),
        "a fenced primary refuses writes"
    );
    let fenced = hook.wait_for("replication-fenced", 1);
    assert_eq!(fenced[0]["alert"]["bucket"], "src", "{fenced:?}");
    // Its tail still reaches B: every acknowledged write is there now.
    drained(&a, "b", Duration::from_secs(120));
    let on_b: std::collections::HashSet<(String, String)> = b.versions(&rt).into_iter().collect();
    for (k, v, _) in &ledger {
        assert!(on_b.contains(&(k.clone(), v.clone())), "{k} {v} lost");
    }

    // Failback: B replicates back to A (a peer key on A, a rule on B with backfill).
    ctl(
        &a,
        &["user", "add", "peer-b", "--role", "replication-peer:src"],
    );
    let k = json(&ctl(&a, &["key", "create", "peer-b", "--json"]));
    ctl(
        &b.server,
        &[
            "replication",
            "peer",
            "add",
            "a",
            "--endpoint",
            a.s3_url.trim_end_matches('/'),
            "--access-key",
            k["access_key"].as_str().expect("ak"),
            "--secret-key",
            k["secret_key"].as_str().expect("sk"),
        ],
    );
    ctl(
        &b.server,
        &[
            "replication",
            "rule",
            "set",
            "replica",
            "--peer",
            "a",
            "--target-bucket",
            "src",
            "--id",
            "back-to-a",
            "--delete-markers",
            "--backfill",
        ],
    );
    wait_until("B's backfill to A", Duration::from_secs(180), || {
        let st = status(&b.server, "a");
        st["backlog_entries"] == 0
            && versions_of(&rt, &ca, "src")
                .iter()
                .any(|(k, _)| k == "written-on-b")
    });
    drained(&b.server, "a", Duration::from_secs(120));
    // The union, on both sides: the same versions and markers.
    let mut on_a = versions_of(&rt, &ca, "src");
    let mut on_b = b.versions(&rt);
    on_a.sort();
    on_b.sort();
    assert_eq!(on_a, on_b, "the union on both sides");
    assert!(on_a.contains(&("written-on-b".to_owned(), vid_b)));
    for (k, v, _) in &ledger {
        assert!(on_a.contains(&(k.clone(), v.clone())), "{k} {v} lost on A");
    }
    // restic on A (read-only: no lock) sees both backups and restores the one made on B.
    let repo_a = format!("s3:{}/src", a.s3_url);
    let snaps = ok(&restic(&repo_a, &[], &["--no-lock", "snapshots", "--json"]));
    let list = json(
        snaps
            .lines()
            .find(|l| l.starts_with('['))
            .expect("snapshot list"),
    );
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{snaps}");
    let again = dir.path().join("again");
    ok(&restic(
        &repo_a,
        &[],
        &[
            "--no-lock",
            "restore",
            "latest",
            "--target",
            again.to_str().expect("path"),
        ],
    ));
    let restored = again.join(tree.strip_prefix("/").expect("absolute"));
    assert_eq!(
        std::fs::read(restored.join("two.bin")).expect("two"),
        data(300 << 10, 2)
    );
    // Switch back: A, its new source's heartbeats on record, is promoted again (its
    // realized RPO known), and B turns read-only at its next request.
    wait_until("B's heartbeat on A", Duration::from_secs(30), || {
        json(&ctl(&a, &["replication", "sources", "--json"]))
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    let text = ctl(&a, &["replication", "promote", "src"]);
    assert!(
        text.contains("promoted, writable here at epoch 2"),
        "{text}"
    );
    let e = epoch(&a, "src");
    assert!(!e["promotion"]["last_heard"].is_null(), "{e}");
    wait_until("B demoted", Duration::from_secs(30), || {
        epoch(&b.server, "replica")["role"] == "replica"
    });
    let (st, code, _) = put(&rt, &b.s3, "replica", "after-switch", b"no".to_vec());
    assert_eq!((st, code.as_str()), (409, "InvalidBucketState"));
    let (st, _, _) = put(&rt, &ca, "src", "after-switch", b"yes".to_vec());
    assert_eq!(st, 200, "A takes writes again");
    relay.quit(Duration::from_secs(5));
}
