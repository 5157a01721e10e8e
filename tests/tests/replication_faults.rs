//! Replication under faults, between two real deployments joined through the relay
//! (`stele-relay`): a shard damaged at the source before it ships, bytes damaged in
//! transit, a sender killed with SIGKILL mid-backlog, and a cut link under a steady load
//! whose RPO is judged against the client's own ledger of acknowledged writes.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use stele_client::S3Request;
use stele_tests::relay::{Dir, Relay, Shape};
use stele_tests::shards::{flip_byte, shard_files};
use stele_tests::sites::{
    Peer, add_peer, ctl, data_dir, drained, replica_version, replicate, send_replication, start_a,
    status,
};
use stele_tests::webhook::Receiver;
use stele_tests::{Server, runtime};

/// A (plain HTTP) with a versioned bucket `src` replicating everything to B's `replica`
/// through the relay link `ab`; B serves TLS, pinned by A.
struct Wan {
    dir: tempfile::TempDir,
    a: Server,
    b: Peer,
    relay: Relay,
}

fn wan(rt: &tokio::runtime::Runtime, rpo_alert_secs: u64) -> Wan {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Peer::start(rt, dir.path(), true);
    let relay = Relay::start(&[("ab", "127.0.0.1:0", &b.s3_addr())]);
    let a = start_a(dir.path());
    add_peer(&a, "b", &format!("https://{}", relay.link_addr("ab")), &b);
    rt.block_on(async {
        let c = a.client();
        c.create_bucket()
            .bucket("src")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect("src");
    });
    replicate(&a, "src", "b", false, rpo_alert_secs);
    Wan { dir, a, b, relay }
}

fn put(rt: &tokio::runtime::Runtime, a: &Server, key: &str, body: Vec<u8>) -> String {
    rt.block_on(
        a.client()
            .put_object()
            .bucket("src")
            .key(key)
            .body(ByteStream::from(body))
            .send(),
    )
    .expect("put")
    .version_id
    .expect("vid")
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(131).wrapping_add(seed))
        .collect()
}

#[test]
fn a_shard_damaged_at_the_source_is_rebuilt_before_it_leaves() {
    let rt = runtime();
    let w = wan(&rt, 900);
    // Close the sender's pooled connection, then hold new ones in their handshake: the
    // version cannot be read for sending before its shard is damaged.
    w.relay.reset("ab");
    w.relay.cut("ab");
    let body = data(1 << 20, 7);
    let vid = put(&rt, &w.a, "victim", body.clone());
    let files = shard_files(&data_dir(w.dir.path(), "a"));
    assert_eq!(files.len(), 1, "one segment: {files:?}");
    // Data shard 0: the one a read uses first.
    let shard = files
        .values()
        .next()
        .expect("segment")
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "0"))
        .expect("data shard 0")
        .clone();
    flip_byte(&shard);
    w.relay.heal("ab");
    w.b.wait_for(&rt, "victim", &vid, Duration::from_secs(90));
    assert_eq!(w.b.get(&rt, "victim", &vid), body, "B has the right bytes");
    drained(&w.a, "b", Duration::from_secs(30));
    // The sender's read met the damage (and queued its repair): the bytes B has were
    // rebuilt from the other shards, not read past the damage.
    let (s, repair) = w.a.admin("GET", "/v1/repair", None);
    assert_eq!(s, 200, "{repair}");
    let repair = stele_tests::sites::json(&repair);
    let seen = repair["queue_length"].as_u64().unwrap_or(0)
        + repair["handled"].as_u64().unwrap_or(0)
        + repair["shards_rebuilt"].as_u64().unwrap_or(0);
    assert!(seen > 0, "the damaged shard was never noticed: {repair}");
}

#[test]
fn bytes_damaged_in_transit_are_refused_and_sent_again() {
    let rt = runtime();
    let w = wan(&rt, 900);
    // About 40 flipped bytes per attempt at 4 MiB: TLS refuses every damaged record.
    w.relay.set(
        "ab",
        Dir::Fwd,
        Shape {
            corrupt_prob: 1e-5,
            ..Shape::default()
        },
    );
    let body = data(4 << 20, 9);
    let vid = put(&rt, &w.a, "obj", body.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&w.a, "b")["last_error"].is_null() {
        assert!(Instant::now() < deadline, "no failed attempt seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(w.relay.stats("ab").corrupted_bytes > 0);
    let versions = w.b.versions(&rt);
    assert!(
        !versions.iter().any(|(k, _)| k == "obj"),
        "nothing damaged was committed: {versions:?}"
    );
    w.relay.set("ab", Dir::Fwd, Shape::default());
    w.b.wait_for(&rt, "obj", &vid, Duration::from_secs(90));
    assert_eq!(w.b.get(&rt, "obj", &vid), body);
    // A body that does not match the digests sent with it is refused by B (BadDigest),
    // and nothing is stored.
    let good = data(1000, 1);
    let mut bad = good.clone();
    bad[10] ^= 1;
    let vid2 = stele::VersionId::generate(stele::Timestamp(1_800_000_000_000_000));
    let op = replica_version(vid2, &good, 1000);
    let r = send_replication(&rt, &w.b.peer, "forged", &op, bad);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("BadDigest"))
    );
    assert!(!w.b.versions(&rt).iter().any(|(k, _)| k == "forged"));
}

#[test]
fn a_sender_killed_mid_backlog_resumes_and_loses_and_duplicates_nothing() {
    let rt = runtime();
    let mut w = wan(&rt, 900);
    // A slow link (the relay limits each connection: 8 in flight make 512 KiB/s), so
    // the backlog is still there when the sender dies.
    w.relay.set(
        "ab",
        Dir::Fwd,
        Shape {
            rate_bytes_per_s: 64 << 10,
            ..Shape::default()
        },
    );
    let mut ledger = Vec::new();
    for i in 0..24 {
        let key = format!("k{i:02}");
        let vid = put(&rt, &w.a, &key, data(512 << 10, i as u8));
        ledger.push((key, vid));
    }
    // Some arrived, not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.b.versions(&rt).is_empty() {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = status(&w.a, "b");
    assert!(
        before["backlog_entries"].as_u64().expect("n") > 0,
        "{before}"
    );
    // B hears from A how far behind it is (heartbeats, every 5 s)...
    let heard = |b: &Peer| -> serde_json::Value {
        let all = stele_tests::sites::json(&ctl(&b.server, &["replication", "sources", "--json"]));
        all.as_array()
            .and_then(|l| l.iter().find(|s| s["access_key"] == b.key.0.as_str()))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while heard(&w.b)["backlog_entries"].as_u64().unwrap_or(0) == 0 {
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(&w.a.stderr_log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "no heartbeat with a backlog: {} (A: {tail:#?})",
                heard(&w.b)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    w.a.kill();
    // ... and still knows it once A is gone: what had not arrived, and since when.
    let last = heard(&w.b);
    assert!(last["rpo_seconds"].as_f64().expect("rpo") > 0.0, "{last}");
    assert!(!last["oldest"].is_null(), "{last}");
    w.a = start_a(w.dir.path());
    // The log survived: the RPO is still counted after the restart.
    let after = status(&w.a, "b");
    assert!(after["rpo_seconds"].as_f64().expect("rpo") > 0.0, "{after}");
    w.relay.set("ab", Dir::Fwd, Shape::default());
    drained(&w.a, "b", Duration::from_secs(120));
    let mut on_b = w.b.versions(&rt);
    on_b.sort();
    ledger.sort();
    assert_eq!(
        on_b, ledger,
        "every acknowledged version once, nothing else"
    );
    for (i, (key, vid)) in ledger.iter().enumerate() {
        assert_eq!(w.b.get(&rt, key, vid), data(512 << 10, i as u8), "{key}");
    }
}

#[test]
fn a_cut_link_shows_in_the_rpo_as_the_ledger_sees_it_and_drains_after() {
    let rt = runtime();
    let w = wan(&rt, 5);
    let (rx, url) = Receiver::start();
    let (s, body) = w.a.admin(
        "PUT",
        "/v1/alerts/sinks/ops",
        Some(&format!(r#"{{"url":"{url}"}}"#)),
    );
    assert_eq!(s, 200, "{body}");
    // The client's ledger: when each write was acknowledged.
    let mut ledger: Vec<(String, String, Instant)> = Vec::new();
    let write = |i: usize, ledger: &mut Vec<(String, String, Instant)>| {
        let key = format!("steady/{i:04}");
        let vid = put(&rt, &w.a, &key, data(64 << 10, i as u8));
        ledger.push((key, vid, Instant::now()));
    };
    for i in 0..10 {
        write(i, &mut ledger);
        std::thread::sleep(Duration::from_millis(100));
    }
    drained(&w.a, "b", Duration::from_secs(30));
    w.relay.reset("ab");
    w.relay.cut("ab");
    let cut_at = ledger.len();
    let mut i = ledger.len();
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        write(i, &mut ledger);
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nothing written since the cut is on B; the true RPO is the age of the first of
    // those writes, and the gauge must say so.
    let first_unreplicated = ledger[cut_at].2;
    let on_b: Vec<String> = w.b.versions(&rt).into_iter().map(|(k, _)| k).collect();
    assert!(!on_b.contains(&ledger[cut_at].0), "the cut held");
    let low = first_unreplicated.elapsed().as_secs_f64();
    let s = status(&w.a, "b");
    let high = first_unreplicated.elapsed().as_secs_f64();
    let gauge = s["rpo_seconds"].as_f64().expect("rpo");
    assert!(
        (low - 2.0..=high + 2.0).contains(&gauge),
        "gauge {gauge} s against the ledger's {low:.2}..{high:.2} s"
    );
    let metrics = w.a.admin("GET", "/metrics", None).1;
    assert!(
        metrics.contains("stele_replication_rpo_seconds{peer=\"b\"}"),
        "{metrics}"
    );
    let lag = rx.wait_for("replication-lag", 1);
    assert_eq!(lag[0]["alert"]["peer"], "b", "{lag:?}");
    w.relay.heal("ab");
    let drained_status = drained(&w.a, "b", Duration::from_secs(120));
    assert_eq!(drained_status["rpo_seconds"], 0.0);
    rx.wait_for("replication-caught-up", 1);
    let on_b: Vec<(String, String)> = w.b.versions(&rt);
    for (key, vid, _) in &ledger {
        assert!(
            on_b.iter().any(|(k, v)| k == key && v == vid),
            "{key} {vid} lost"
        );
    }
}

/// Kills the peer B (SIGKILL) and starts it again on the same S3 address, with its data
/// and key folder (so its certificate, and A's pin of it, stay).
fn restart_b(dir: &std::path::Path, b: Peer) -> Peer {
    let addr = b.s3_addr();
    let Peer {
        server,
        s3,
        peer,
        key,
        trust,
    } = b;
    server.kill();
    let data = data_dir(dir, "b");
    let server = Server::start_exact(
        &[
            "--data",
            data.to_str().expect("path"),
            "--tls",
            "on",
            "--s3-addr",
            &addr,
            "--admin-addr",
            "127.0.0.1:0",
        ],
        dir,
    );
    let mut b = Peer {
        server,
        s3,
        peer,
        key,
        trust,
    };
    b.reconnect();
    b
}

#[test]
fn a_peer_killed_mid_transfer_gets_the_rest_of_a_large_version_from_where_it_stopped() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let rt = runtime();
    let w = wan(&rt, 900);
    let Wan { dir, a, b, relay } = w;
    // 5 MiB parts (S3's smallest but the last) at 2 MiB/s: a part takes about 2.5 s.
    relay.set(
        "ab",
        Dir::Fwd,
        Shape {
            rate_bytes_per_s: 2 << 20,
            ..Shape::default()
        },
    );
    let part = 5 << 20;
    let parts: Vec<Vec<u8>> = (0..4u8)
        .map(|i| data(if i == 3 { 1 << 20 } else { part }, 40 + i))
        .collect();
    let whole = parts.concat();
    let c = a.client();
    let (vid, etag) = rt.block_on(async {
        let up = c
            .create_multipart_upload()
            .bucket("src")
            .key("big")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id").to_owned();
        let mut done = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let n = i as i32 + 1;
            let r = c
                .upload_part()
                .bucket("src")
                .key("big")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(p.clone()))
                .send()
                .await
                .expect("part");
            done.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(r.e_tag().expect("etag"))
                    .build(),
            );
        }
        let r = c
            .complete_multipart_upload()
            .bucket("src")
            .key("big")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        (
            r.version_id().expect("vid").to_owned(),
            r.e_tag().expect("etag").to_owned(),
        )
    });
    // B stages the parts as they arrive (an upload named by the version id): kill it once
    // it holds two.
    let staged = |b: &Peer| -> usize {
        let r = rt
            .block_on(
                b.s3.send(
                    S3Request::new(http::Method::GET, "replica")
                        .with_key("big")
                        .with_query("uploadId", &vid),
                ),
            )
            .expect("list parts");
        String::from_utf8_lossy(&r.body)
            .matches("<PartNumber>")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while staged(&b) < 2 {
        assert!(Instant::now() < deadline, "no part staged on B");
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = restart_b(dir.path(), b);
    assert!(staged(&b) >= 2, "the staged parts survived the kill");
    relay.set("ab", Dir::Fwd, Shape::default());
    let st = drained(&a, "b", Duration::from_secs(120));
    assert!(
        st["resumed_parts"].as_u64().expect("resumed") >= 2,
        "the parts B held were not sent again: {st}"
    );
    // What crossed the link: the version once, plus at most the part cut short (and
    // TLS and request overhead), not the version again from its start.
    let sent = relay.stats("ab").fwd_bytes;
    eprintln!(
        "resume: {sent} bytes crossed for a {} byte version, {} parts resumed",
        whole.len(),
        st["resumed_parts"]
    );
    assert!(
        sent < (whole.len() + part + (512 << 10)) as u64,
        "{sent} bytes crossed for a {} byte version",
        whole.len()
    );
    let head = b.wait_for(&rt, "big", &vid, Duration::from_secs(5));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(b.get(&rt, "big", &vid), whole);
    assert_eq!(staged(&b), 0, "nothing left staged");
}
