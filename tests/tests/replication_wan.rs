//! Two sites in their own network namespaces, joined only through the relay in a `wan`
//! namespace (10 ms each way): site A (plain HTTP inside its namespace) replicates to site
//! B over TLS. Under a steady backup load the link is cut for a minute: the RPO A reports
//! is judged against the client's own ledger of acknowledged writes, the lag alert fires,
//! and after healing everything drains, the RPO returns to 0 and every acknowledged write
//! is on B. Needs root (`ip netns`); skipped with a message otherwise, failing under CI.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::netns::{Netns, WAN};
use stele_tests::relay::{Dir, Relay, Shape};
use stele_tests::sites::{Peer, add_peer, data_dir, drained, replicate, status};
use stele_tests::webhook::Receiver;
use stele_tests::{Server, runtime};

/// How long the link stays cut.
const CUT: Duration = Duration::from_secs(60);

fn data(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed as u8))
        .collect()
}

#[test]
fn a_minute_cut_shows_in_the_rpo_as_the_ledger_sees_it_and_drains_after() {
    if !Netns::require_or_skip("replication_wan") {
        return;
    }
    let ns = Netns::create(&["a", "b"]).expect("namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |site: &str| {
        data_dir(dir.path(), site)
            .to_str()
            .expect("path")
            .to_owned()
    };
    let b_server = Server::start_in(&ns, "b", &["--data", &path("b"), "--tls", "on"], dir.path());
    let mut b = ns
        .run_in("b", || Peer::setup(&runtime(), b_server))
        .expect("in b");
    let relay = Relay::start_in(
        &ns,
        WAN,
        &[("ab", &format!("{}:0", ns.wan_addr()), &b.s3_addr())],
    );
    relay.set(
        "ab",
        Dir::Both,
        Shape {
            delay_ms: 10,
            ..Shape::default()
        },
    );
    let a = Server::start_in(
        &ns,
        "a",
        &["--data", &path("a"), "--tls", "off"],
        dir.path(),
    );
    let hook = ns
        .listen("a", SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("listen in a");
    let url = format!("http://{}/hook", hook.local_addr().expect("addr"));
    let alerts = Receiver::serve(hook);
    // The client's ledger: (key, version id, when the write was acknowledged).
    let ledger: Vec<(String, String, Instant)> = ns
        .run_in("a", || {
            let rt = runtime();
            add_peer(&a, "b", &format!("https://{}", relay.link_addr("ab")), &b);
            let (s, body) = a.admin(
                "PUT",
                "/v1/alerts/sinks/ops",
                Some(&format!(r#"{{"url":"{url}"}}"#)),
            );
            assert_eq!(s, 200, "{body}");
            let c = a.client();
            rt.block_on(
                c.create_bucket()
                    .bucket("src")
                    .object_lock_enabled_for_bucket(true)
                    .send(),
            )
            .expect("src");
            replicate(&a, "src", "b", false, 20);
            let mut ledger = Vec::new();
            let write = |i: usize, ledger: &mut Vec<(String, String, Instant)>| {
                let key = format!("steady/{i:05}");
                let vid = rt
                    .block_on(
                        c.put_object()
                            .bucket("src")
                            .key(&key)
                            .body(ByteStream::from(data(256 << 10, i)))
                            .send(),
                    )
                    .expect("put")
                    .version_id
                    .expect("vid");
                ledger.push((key, vid, Instant::now()));
            };
            // Steady load with the link up: it keeps up.
            for i in 0..20 {
                write(i, &mut ledger);
                std::thread::sleep(Duration::from_millis(250));
            }
            let up = drained(&a, "b", Duration::from_secs(60));
            assert_eq!(up["rpo_seconds"], 0.0, "{up}");
            // Everything written so far is on B: from the cut on, the oldest write not on
            // B is the first one after it, and the true RPO is its age.
            relay.reset("ab");
            relay.cut("ab");
            let first_after = ledger.len();
            let cut_at = Instant::now();
            let mut next_sample = cut_at + Duration::from_secs(10);
            let mut samples = 0;
            while cut_at.elapsed() < CUT {
                let i = ledger.len();
                write(i, &mut ledger);
                if Instant::now() >= next_sample {
                    next_sample += Duration::from_secs(10);
                    let acked = ledger[first_after].2;
                    let low = acked.elapsed().as_secs_f64();
                    let s = status(&a, "b");
                    let high = acked.elapsed().as_secs_f64();
                    let gauge = s["rpo_seconds"].as_f64().expect("rpo");
                    assert!(
                        (low - 2.0..=high + 2.0).contains(&gauge),
                        "RPO {gauge} s against the ledger's {low:.2}..{high:.2} s: {s}"
                    );
                    let backlog = s["backlog_entries"].as_u64().expect("backlog");
                    assert_eq!(backlog as usize, ledger.len() - first_after, "{s}");
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            assert!(samples >= 5, "{samples} samples");
            let metrics = a.admin("GET", "/metrics", None).1;
            let line = metrics
                .lines()
                .find(|l| l.starts_with("stele_replication_rpo_seconds{peer=\"b\"}"))
                .unwrap_or_else(|| panic!("no RPO gauge: {metrics}"));
            let gauge: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("value");
            assert!(gauge > 50.0, "{line}");
            relay.heal("ab");
            for _ in 0..8 {
                let i = ledger.len();
                write(i, &mut ledger);
                std::thread::sleep(Duration::from_millis(250));
            }
            let after = drained(&a, "b", Duration::from_secs(120));
            assert_eq!(after["rpo_seconds"], 0.0, "{after}");
            ledger
        })
        .expect("in a");
    let lag = alerts.wait_for("replication-lag", 1);
    assert_eq!(lag[0]["alert"]["peer"], "b", "{lag:?}");
    alerts.wait_for("replication-caught-up", 1);
    let on_b = ns
        .run_in("b", || {
            let rt = runtime();
            b.reconnect();
            b.versions(&rt)
        })
        .expect("in b");
    for (key, vid, _) in &ledger {
        assert!(
            on_b.iter().any(|(k, v)| k == key && v == vid),
            "{key} {vid} lost"
        );
    }
    assert_eq!(on_b.len(), ledger.len(), "nothing else, nothing twice");
    drop(a);
    drop(relay);
    drop(b);
}
