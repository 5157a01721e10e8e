//! Alerts reach webhooks: an unrepairable version, a receiver that was down (every alert
//! arrives once it is back), backup freshness with an injected clock, a clock anomaly.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::shards::flip_byte;
use stele_tests::webhook::Receiver;
use stele_tests::{DAY_SECS, Server, runtime, start_default, start_with_clock};

fn add_sink(server: &Server, url: &str) {
    let (s, body) = server.admin(
        "PUT",
        "/v1/alerts/sinks/ops",
        Some(&format!(r#"{{"url":"{url}"}}"#)),
    );
    assert_eq!(s, 200, "{body}");
}

#[test]
fn an_unrepairable_version_is_alerted_by_name() {
    let (dir, server) = start_default();
    let (rx, url) = Receiver::start();
    add_sink(&server, &url);
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("alarm")
            .send()
            .await
            .expect("bucket");
        c.put_object()
            .bucket("alarm")
            .key("doomed")
            .body(ByteStream::from(vec![7u8; 300_000]))
            .send()
            .await
            .expect("put");
    });
    // Its one segment: corrupt three of its six shard files (M = 2).
    let mut files = Vec::new();
    for d in std::fs::read_dir(dir.path().join("data/disks"))
        .expect("disks")
        .flatten()
    {
        for sub in std::fs::read_dir(d.path().join("shards"))
            .expect("shards")
            .flatten()
        {
            for f in std::fs::read_dir(sub.path()).expect("dir").flatten() {
                files.push(f.path());
            }
        }
    }
    assert_eq!(files.len(), 6);
    for p in files.iter().take(3) {
        flip_byte(p);
    }
    // A restore drill reads it back and fails, loudly.
    let (s, body) = server.admin("POST", "/v1/drill/run", None);
    assert_eq!(s, 200, "{body}");
    let drill: serde_json::Value = serde_json::from_str(&body).expect("report");
    assert_eq!(
        (drill["passed"].as_u64(), drill["failed"].as_u64()),
        (Some(0), Some(1)),
        "{drill}"
    );
    assert_eq!(drill["sample"][0]["key"], "doomed", "{drill}");
    let failed = rx.wait_for("drill-failed", 1);
    assert_eq!(failed[0]["alert"]["key"], "doomed", "{failed:?}");
    let (s, body) = server.admin("POST", "/v1/scrub/run?wait=true", None);
    assert_eq!(s, 200, "{body}");
    let got = rx.wait_for("unrepairable", 1);
    assert_eq!(got[0]["alert"]["bucket"], "alarm", "{got:?}");
    assert_eq!(got[0]["alert"]["key"], "doomed", "{got:?}");
    assert_eq!(got[0]["alert"]["version"], "null", "{got:?}");
    rx.wait_for("corruption-found", 1);
    rx.wait_for("scrub-pass-done", 1);
}

#[test]
fn a_receiver_that_was_down_gets_every_alert_once_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--alert-retry-max",
            "1",
        ],
        dir.path(),
    );
    // A port nobody listens on yet.
    let reserved = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    add_sink(&server, &format!("http://{addr}/hook"));
    for _ in 0..3 {
        let (s, _) = server.admin("POST", "/v1/alerts/test", None);
        assert_eq!(s, 202);
    }
    // Deliveries fail and back off; the alerts wait in the durable queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, q) = server.admin("GET", "/v1/alerts/queue", None);
        let q: serde_json::Value = serde_json::from_str(&q).expect("json");
        let list = q.as_array().expect("list");
        if list.len() == 3 && list.iter().all(|e| e["attempts"].as_u64() >= Some(1)) {
            break;
        }
        assert!(Instant::now() < deadline, "{q}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // `/metrics` counts them (a counter kept at each write, not a scan).
    let (_, metrics) = server.admin("GET", "/metrics", None);
    assert!(metrics.contains("stele_alerts_queued 3\n"), "{metrics}");
    let rx = Receiver::serve(TcpListener::bind(addr).expect("rebind"));
    assert_eq!(rx.wait_for("test", 3).len(), 3);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, q) = server.admin("GET", "/v1/alerts/queue", None);
        if q.trim() == "[]" {
            break;
        }
        assert!(Instant::now() < deadline, "{q}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, metrics) = server.admin("GET", "/metrics", None);
    assert!(metrics.contains("stele_alerts_queued 0\n"), "{metrics}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rx.of_kind("test").len(), 3, "each alert exactly once");
}

#[test]
fn overdue_backups_and_clock_anomalies_raise_alerts() {
    let (_dir, server, clock) = start_with_clock(&["--watch-interval", "1"]);
    let (rx, url) = Receiver::start();
    add_sink(&server, &url);
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("nightly")
            .send()
            .await
            .expect("bucket");
        c.put_object()
            .bucket("nightly")
            .key("backup-1")
            .body(ByteStream::from_static(b"day one"))
            .send()
            .await
            .expect("put");
    });
    let (s, body) = server.admin(
        "PUT",
        "/v1/buckets/nightly/expect",
        Some(r#"{"every_secs": 86400}"#),
    );
    assert_eq!(s, 204, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(rx.of_kind("backup-overdue").is_empty(), "not due yet");
    // Two days pass without a backup (wall and monotonic clocks together).
    clock.pass(2 * DAY_SECS);
    let got = rx.wait_for("backup-overdue", 1);
    assert_eq!(got[0]["alert"]["bucket"], "nightly");
    let (_, st) = server.admin("GET", "/v1/watchdog", None);
    assert!(st.contains("nightly"), "{st}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        rx.of_kind("backup-overdue").len(),
        1,
        "one alert per missed deadline"
    );
    // A new backup clears it.
    runtime().block_on(async {
        c.put_object()
            .bucket("nightly")
            .key("backup-2")
            .body(ByteStream::from_static(b"day three"))
            .send()
            .await
            .expect("put");
    });
    std::thread::sleep(Duration::from_secs(2));
    let (_, st) = server.admin("GET", "/v1/watchdog", None);
    assert!(!st.contains("nightly"), "{st}");
    // Someone sets the date forward: a clock anomaly alert.
    clock.jump_wall(100 * 365 * DAY_SECS);
    let _ = server.admin("GET", "/health", None);
    rx.wait_for("clock-anomaly", 1);
}
