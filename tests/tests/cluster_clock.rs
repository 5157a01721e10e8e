//! Time from the other members (issue 15, item 5, on issue 14's cluster): every node reads
//! the others' wall clocks with each two-second refresh, and a node whose clock is more
//! than two minutes from theirs raises the clock anomaly, takes no write (503 SlowDown:
//! a version's time and every retention decision would rest on it) and does not stand
//! for leadership, until its clock is set right. Three real processes, their clocks
//! moved through test-clock files: `c` starts with its wall clock an hour ahead.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::sites::{cluster_node_at, cluster_status, json, three_node_cluster_with};
use stele_tests::{ClockFile, Server, error_code, runtime};

fn clock(s: &Server) -> serde_json::Value {
    let (status, body) = s.admin("GET", "/v1/clock", None);
    assert_eq!(status, 200, "{body}");
    json(&body)
}

/// Polls `f` until it holds, at most 60 s (progress on a loaded machine, not speed).
fn until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not within 60 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn put(s: &Server, key: &str) -> Result<(), String> {
    s.client()
        .put_object()
        .bucket("clocks")
        .key(key)
        .body(ByteStream::from_static(b"a small object"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            format!("{}: {}", error_code(&e), e.message().unwrap_or_default())
        })
}

/// Whether `r` is the refusal of a node whose clock the others do not vouch for.
fn refused_for_its_clock(r: &Result<(), String>) -> bool {
    r.as_ref()
        .is_err_and(|e| e.starts_with("SlowDown") && e.contains("wall clock"))
}

/// The leader all of `nodes` name, once they agree on one not in `not` (node ids).
fn agreed_leader(nodes: &[&Server], not: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let leaders: Vec<serde_json::Value> = nodes
            .iter()
            .map(|n| cluster_status(n)["raft"]["leader"].clone())
            .collect();
        if leaders[0].as_str().is_some_and(|l| !not.contains(&l))
            && leaders.iter().all(|l| *l == leaders[0])
        {
            return leaders[0].as_str().unwrap_or_default().to_owned();
        }
        if start.elapsed() > Duration::from_secs(60) {
            let raft: Vec<String> = nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} {}\n{}",
                        cluster_status(n)["raft"],
                        clock(n),
                        std::fs::read_to_string(&n.stderr_log)
                            .unwrap_or_default()
                            .lines()
                            .filter(|l| l.contains("WARN") || l.contains("clock"))
                            .take(30)
                            .collect::<Vec<_>>()
                            .join("\n")
                    )
                })
                .collect();
            panic!(
                "no agreed leader within 60 s: {leaders:?}\n{}",
                raft.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_whose_clock_the_others_do_not_vouch_for_takes_no_write_and_does_not_lead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let file = |name: &str| ClockFile(d.join(format!("{name}.clock")));
    file("a").set(0, 0);
    file("b").set(0, 0);
    // c's wall clock reads an hour ahead from its first start (no step to see there).
    file("c").set(3600, 0);
    let flags = |name: &str| {
        vec![
            "--test-clock".to_owned(),
            file(name).0.to_str().expect("path").to_owned(),
        ]
    };
    let [a, b, c] = three_node_cluster_with(d, flags);
    let id = |s: &Server| {
        cluster_status(s)["node_id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let c_id = id(&c);

    // c reads the others an hour behind it; a and b read one peer right and one wrong,
    // and of two the one nearer their own time counts.
    until("c sees itself skewed", || clock(&c)["peer_skewed"] == true);
    let offset = clock(&c)["peer_offset_micros"].as_i64().expect("offset");
    assert!(
        (offset + 3_600_000_000).abs() < 60_000_000,
        "c's peers read {offset} µs from it"
    );
    for n in [&a, &b] {
        until("a and b read their peers' clocks", || {
            !clock(n)["peer_offset_micros"].is_null()
        });
        let st = clock(n);
        assert_eq!(st["peer_skewed"], false, "{st}");
        assert!(
            st["peer_offset_micros"]
                .as_i64()
                .is_some_and(|o| o.abs() < 60_000_000),
            "{st}"
        );
    }
    let (_, health) = c.admin("GET", "/health", None);
    assert!(health.contains("clock-anomaly"), "{health}");
    assert!(clock(&c)["anomalies"].as_u64() >= Some(1));
    // Not ready: a load balancer sends its clients elsewhere.
    let (status, ready) = c.admin("GET", "/ready", None);
    assert_eq!(
        (status, json(&ready)["clock_skewed"].clone()),
        (503, true.into()),
        "{ready}"
    );
    assert_eq!(a.admin("GET", "/ready", None).0, 200);

    // c takes no write; the others do, and c still serves reads.
    runtime().block_on(async {
        a.client()
            .create_bucket()
            .bucket("clocks")
            .send()
            .await
            .expect("bucket");
        put(&a, "through-a").await.expect("a takes writes");
        let r = put(&c, "through-c").await;
        assert!(refused_for_its_clock(&r), "{r:?}");
        let got = c
            .client()
            .get_object()
            .bucket("clocks")
            .key("through-a")
            .send()
            .await
            .expect("c serves reads");
        assert_eq!(
            got.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .as_ref(),
            b"a small object"
        );
    });

    // c does not keep the leadership: each time the leader is killed, the other node
    // that is not c ends up leading (c, standing for election, would win about half of
    // them and keep leading).
    let mut ab = [Some(a), Some(b)];
    for _ in 0..3 {
        let [Some(a), Some(b)] = &ab else {
            unreachable!("both restarted")
        };
        let leader = agreed_leader(&[a, b, &c], &[c_id.as_str()]);
        let k = usize::from(leader != id(a));
        let name = ["a", "b"][k];
        let killed = ab[k].take().expect("the leader");
        let rpc = killed.cluster_addr.clone().expect("rpc");
        killed.kill();
        let survivor = ab[1 - k].as_ref().expect("the other node");
        // c stands for election only if no leader reaches it for ten seconds (its log may
        // be the only complete one); it then hands over: the survivor leads.
        let next = agreed_leader(&[survivor, &c], &[leader.as_str(), c_id.as_str()]);
        assert_eq!(next, id(survivor));
        assert_eq!(cluster_status(&c)["raft"]["lease"], false);
        let flags_back = flags(name);
        let refs: Vec<&str> = flags_back.iter().map(String::as_str).collect();
        ab[k] = Some(cluster_node_at(d, name, &rpc, &refs));
    }

    // The judgement outlives a restart: c started again while b is down sees one peer
    // only (too few to judge by) and still takes no write.
    let [Some(a), Some(b)] = ab else {
        unreachable!("both restarted")
    };
    let b_rpc = b.cluster_addr.clone().expect("rpc");
    b.kill();
    let c_rpc = c.cluster_addr.clone().expect("rpc");
    c.kill();
    let refs: Vec<String> = flags("c");
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let c = cluster_node_at(d, "c", &c_rpc, &refs);
    agreed_leader(&[&a, &c], &[c_id.as_str()]);
    // Several refreshes (each reads a's clock).
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(clock(&c)["peer_skewed"], true, "{}", clock(&c));
    // The group may still be settling after the restart: other refusals are retried;
    // a write taken fails the test.
    let start = Instant::now();
    loop {
        let r = runtime().block_on(put(&c, "after-restart"));
        assert!(r.is_err(), "c took a write after its restart");
        if refused_for_its_clock(&r) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{r:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let refs: Vec<String> = flags("b");
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let _b = cluster_node_at(d, "b", &b_rpc, &refs);

    // Its clock set right (a step back of an hour, itself an anomaly), c takes writes.
    file("c").set(0, 0);
    until("c's clock is vouched for again", || {
        clock(&c)["peer_skewed"] == false
    });
    // The group may be settling after b's return (and the switch follows the judgement a
    // moment after the clock's status): a refusal is retried for a while.
    let start = Instant::now();
    loop {
        let r = runtime().block_on(put(&c, "through-c"));
        if r.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "c takes no write: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
