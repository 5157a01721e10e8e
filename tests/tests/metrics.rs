//! The admin listener's `/metrics` (Prometheus text), `/ready` and `/health`, scraped
//! while the node works: the counters move.

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::{Server, http_request, http_status, runtime, start_default};

fn scrape(server: &Server) -> String {
    let addr = server.admin_url.strip_prefix("http://").expect("http");
    let r = http_request(addr, "GET /metrics HTTP/1.1", b"");
    assert_eq!(http_status(&r), 200, "{r}");
    r.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The value of the sample `name{labels}` (exact label text), 0 if absent.
fn value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[test]
fn metrics_move_with_the_work() {
    let (_dir, server) = start_default();
    let c = server.client();
    let put_ok = r#"stele_s3_requests_total{op="PUT object",status="200"}"#;
    let before = scrape(&server);
    assert!(before.trim_end().ends_with("# EOF"), "{before}");
    for name in [
        "stele_disk_online{disk=\"d0\"}",
        "stele_repair_queue_length",
        "stele_clock_anomalies_total",
        "stele_backups_overdue",
    ] {
        assert!(before.contains(name), "{name} missing from:\n{before}");
    }
    assert_eq!(value(&before, "stele_disk_online{disk=\"d3\"}"), 1.0);
    assert!(
        value(&before, "stele_disk_free_bytes{disk=\"d0\"}") > 0.0,
        "{before}"
    );
    runtime().block_on(async {
        c.create_bucket()
            .bucket("met")
            .send()
            .await
            .expect("bucket");
        for i in 0..3 {
            c.put_object()
                .bucket("met")
                .key(format!("k{i}"))
                .body(ByteStream::from(vec![1u8; 300_000]))
                .send()
                .await
                .expect("put");
        }
        let e = c.get_object().bucket("met").key("absent").send().await;
        assert!(e.is_err());
    });
    let after = scrape(&server);
    assert_eq!(
        value(&after, put_ok) - value(&before, put_ok),
        3.0,
        "{after}"
    );
    assert_eq!(
        value(
            &after,
            r#"stele_s3_requests_total{op="GET object",status="404"}"#
        ),
        1.0,
        "{after}"
    );
    assert!(
        value(&after, "stele_s3_received_bytes_total") >= 900_000.0,
        "{after}"
    );
    assert!(
        after.contains("stele_s3_request_duration_seconds_bucket"),
        "{after}"
    );
    let (s, body) = server.admin("POST", "/v1/scrub/run?wait=true", None);
    assert_eq!(s, 200, "{body}");
    let scrubbed = scrape(&server);
    assert_eq!(
        value(&scrubbed, "stele_scrub_shards_verified_total"),
        18.0,
        "{scrubbed}"
    );
    assert_eq!(value(&scrubbed, "stele_scrub_passes_total"), 1.0);
    let (s, body) = server.admin("POST", "/v1/drill/run", None);
    assert_eq!(s, 200, "{body}");
    let drilled = scrape(&server);
    assert_eq!(value(&drilled, "stele_drill_last_passed"), 3.0, "{drilled}");
    assert_eq!(value(&drilled, "stele_drill_last_failed"), 0.0);
    let addr = server.admin_url.strip_prefix("http://").expect("http");
    assert_eq!(
        http_status(&http_request(addr, "GET /ready HTTP/1.1", b"")),
        200
    );
    assert_eq!(
        http_status(&http_request(addr, "GET /health HTTP/1.1", b"")),
        200
    );
}
