//! The replication admin API and `stelectl replication` against real servers: site A
//! replicates to site B, a second real server with a versioned target bucket and a user
//! holding only the `replication-peer` role there. Peers (validation, no secret in any
//! answer, duplicates, removal while in use), a bucket's rules (versioning required, an
//! unknown peer refused, get and delete), the status and parked entries of an empty log,
//! the `/metrics` families, and who may do what.

use std::process::{Command, Output};

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use serde_json::Value;
use stele_tests::{ADMIN_KEY, ADMIN_SECRET, Server, runtime, start_default, workspace_bin};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The `error` code of an admin API error body.
fn code(body: &str) -> String {
    json(body)["error"].as_str().unwrap_or_default().to_owned()
}

/// Creates `bucket` on `server` through S3, with versioning enabled if asked.
fn bucket(server: &Server, bucket: &str, versioned: bool) {
    let rt = runtime();
    let c = server.client();
    rt.block_on(async {
        c.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
        if versioned {
            c.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .expect("versioning");
        }
    });
}

/// On `site`: a user with only the `replication-peer` role on `target`, and an S3 key of
/// it: (access key, secret).
fn replication_key(site: &Server, user: &str, target: &str) -> (String, String) {
    let (s, body) = site.admin(
        "POST",
        "/v1/users",
        Some(&format!(
            r#"{{"name":"{user}","grants":[{{"role":"replication-peer","buckets":["{target}"]}}]}}"#
        )),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = site.admin(
        "POST",
        &format!("/v1/users/{user}/keys"),
        Some(r#"{"plane":"s3"}"#),
    );
    assert_eq!(s, 201, "{body}");
    let v = json(&body);
    (
        v["access_key"].as_str().expect("access key").to_owned(),
        v["secret_key"].as_str().expect("secret").to_owned(),
    )
}

/// An admin-plane key for a new user with `role` on every bucket.
fn admin_key_for(site: &Server, user: &str, role: &str) -> (String, String) {
    let (s, body) = site.admin(
        "POST",
        "/v1/users",
        Some(&format!(
            r#"{{"name":"{user}","grants":[{{"role":"{role}"}}]}}"#
        )),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = site.admin(
        "POST",
        &format!("/v1/users/{user}/keys"),
        Some(r#"{"plane":"admin"}"#),
    );
    assert_eq!(s, 201, "{body}");
    let v = json(&body);
    (
        v["access_key"].as_str().expect("access key").to_owned(),
        v["secret_key"].as_str().expect("secret").to_owned(),
    )
}

fn peer_body(name: &str, endpoint: &str, key: &str, secret: &str) -> String {
    format!(
        r#"{{"name":"{name}","endpoint":"{endpoint}","access_key":"{key}","secret_key":"{secret}"}}"#
    )
}

#[test]
fn peers_rules_status_and_metrics() {
    let (_dir_b, b) = start_default();
    bucket(&b, "replica", true);
    let (key, secret) = replication_key(&b, "site-a", "replica");

    let (_dir_a, a) = start_default();
    bucket(&a, "src", true);
    bucket(&a, "plain", false);

    // Refusals first: a bad name, https without a trust, both trusts, a bad pin.
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&peer_body("Site_B", &b.s3_url, &key, &secret)),
    );
    assert_eq!((s, code(&body).as_str()), (400, "InvalidPeer"), "{body}");
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&peer_body("b", "https://127.0.0.1:1", &key, &secret)),
    );
    assert_eq!((s, code(&body).as_str()), (400, "InvalidPeer"), "{body}");
    let pin = vec!["AB"; 32].join(":");
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&format!(
            r#"{{"name":"b","endpoint":"https://127.0.0.1:1","ca_pem":"x","fingerprint":"{pin}","access_key":"{key}","secret_key":"{secret}"}}"#
        )),
    );
    assert_eq!((s, code(&body).as_str()), (400, "InvalidPeer"), "{body}");
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&format!(
            r#"{{"name":"b","endpoint":"https://127.0.0.1:1","fingerprint":"abcd","access_key":"{key}","secret_key":"{secret}"}}"#
        )),
    );
    assert_eq!((s, code(&body).as_str()), (400, "InvalidPeer"), "{body}");
    // A plain http endpoint with a pin is refused too (the pin would never be checked).
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&format!(
            r#"{{"name":"b","endpoint":"{}","fingerprint":"{pin}","access_key":"{key}","secret_key":"{secret}"}}"#,
            b.s3_url
        )),
    );
    assert_eq!((s, code(&body).as_str()), (400, "InvalidPeer"), "{body}");

    // B as peer over plain http (one host): 201 with the peer, never the secret.
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&peer_body("b", &b.s3_url, &key, &secret)),
    );
    assert_eq!(s, 201, "{body}");
    assert!(!body.contains(&secret), "the secret came back: {body}");
    let p = json(&body);
    assert_eq!(p["name"], "b", "{p}");
    assert_eq!(p["endpoint"], b.s3_url.as_str(), "{p}");
    assert_eq!(p["trust"], "plain", "{p}");
    assert_eq!(p["fingerprint"], Value::Null, "{p}");
    assert_eq!(p["access_key"], key.as_str(), "{p}");
    assert!(p["id"].as_u64().is_some_and(|id| id >= 1), "{p}");
    assert!(p["created"].as_i64().is_some_and(|t| t > 0), "{p}");
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&peer_body("b", &b.s3_url, &key, &secret)),
    );
    assert_eq!((s, code(&body).as_str()), (409, "PeerExists"), "{body}");

    // A pinned https peer (never reached here): its pin is shown in lower-case hex.
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&format!(
            r#"{{"name":"pinned","endpoint":"https://127.0.0.1:1","fingerprint":"{pin}","access_key":"K","secret_key":"pinned-secret-123"}}"#
        )),
    );
    assert_eq!(s, 201, "{body}");
    let p = json(&body);
    assert_eq!(p["trust"], "fingerprint", "{p}");
    assert_eq!(p["fingerprint"], "ab".repeat(32), "{p}");

    let (s, body) = a.admin("GET", "/v1/replication/peers", None);
    assert_eq!(s, 200, "{body}");
    assert!(!body.contains(&secret), "the secret is listed: {body}");
    assert!(!body.contains("pinned-secret-123"), "{body}");
    assert!(!body.contains("sealed"), "{body}");
    let list = json(&body);
    let names: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["b", "pinned"], "{body}");
    let (s, body) = a.admin("DELETE", "/v1/replication/peers/pinned", None);
    assert_eq!(s, 204, "{body}");
    let (s, body) = a.admin("DELETE", "/v1/replication/peers/pinned", None);
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchPeer"), "{body}");

    // Rules: versioning is required, the peer must exist, the names must be valid.
    let rule = |peer: &str, target: &str| {
        format!(r#"{{"rules":[{{"id":"r1","peer":"{peer}","target_bucket":"{target}"}}]}}"#)
    };
    let (s, body) = a.admin(
        "PUT",
        "/v1/buckets/plain/replication",
        Some(&rule("b", "replica")),
    );
    assert_eq!(
        (s, code(&body).as_str()),
        (400, "InvalidReplication"),
        "{body}"
    );
    assert!(body.contains("Versioning"), "{body}");
    let (s, body) = a.admin(
        "PUT",
        "/v1/buckets/src/replication",
        Some(&rule("nope", "replica")),
    );
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchPeer"), "{body}");
    let (s, body) = a.admin(
        "PUT",
        "/v1/buckets/src/replication",
        Some(&rule("b", "Not_A_Bucket")),
    );
    assert_eq!(
        (s, code(&body).as_str()),
        (400, "InvalidBucketName"),
        "{body}"
    );
    let (s, body) = a.admin(
        "PUT",
        "/v1/buckets/missing/replication",
        Some(&rule("b", "replica")),
    );
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchBucket"), "{body}");
    let (s, body) = a.admin("GET", "/v1/buckets/src/replication", None);
    assert_eq!((s, code(&body).as_str()), (404, "NoReplication"), "{body}");

    let (s, body) = a.admin(
        "PUT",
        "/v1/buckets/src/replication",
        Some(&rule("b", "replica")),
    );
    assert_eq!(s, 200, "{body}");
    let expected = serde_json::json!({"rules": [{
        "id": "r1", "enabled": true, "prefix": "", "peer": "b", "target_bucket": "replica",
        "delete_markers": false, "rpo_alert_secs": 900, "bandwidth_bytes_per_sec": null,
        "backfill": false,
    }]});
    assert_eq!(json(&body), expected, "{body}");
    let (s, body) = a.admin("GET", "/v1/buckets/src/replication", None);
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body), expected, "{body}");

    // A peer a rule names stays.
    let (s, body) = a.admin("DELETE", "/v1/replication/peers/b", None);
    assert_eq!((s, code(&body).as_str()), (409, "PeerInUse"), "{body}");

    // Status of an empty log: RPO 0, nothing waiting, every dead reason at 0.
    let (s, body) = a.admin("GET", "/v1/replication", None);
    assert_eq!(s, 200, "{body}");
    assert!(!body.contains(&secret), "{body}");
    let list = json(&body);
    let st = &list.as_array().expect("a list")[0];
    assert_eq!(st["name"], "b", "{st}");
    assert_eq!(st["rpo_seconds"], 0.0, "{st}");
    assert_eq!(st["rpo_alert_seconds"], 900, "{st}");
    assert_eq!(st["backlog_entries"], 0, "{st}");
    assert_eq!(st["backlog_bytes"], 0, "{st}");
    assert_eq!(st["oldest"], Value::Null, "{st}");
    assert_eq!(st["drain_eta_seconds"], 0.0, "{st}");
    assert_eq!(st["buckets"], serde_json::json!(["src"]), "{st}");
    let dead = st["dead"].as_object().expect("dead counts");
    assert_eq!(dead.len(), 7, "{st}");
    assert!(dead.values().all(|n| n == 0), "{st}");
    for field in [
        "link_up",
        "breaker_open",
        "failures_in_row",
        "last_ack",
        "sent_entries",
        "sent_bytes",
        "lock_divergences",
        "throughput_bytes_per_sec",
        "bandwidth_bytes_per_sec",
        "at",
    ] {
        assert!(st.get(field).is_some(), "no {field} in {st}");
    }

    let (s, body) = a.admin("GET", "/v1/replication/peers/b/dead", None);
    assert_eq!((s, body.trim()), (200, "[]"));
    let (s, body) = a.admin("POST", "/v1/replication/peers/b/retry", None);
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body), serde_json::json!({"retried": 0}));
    let (s, body) = a.admin("GET", "/v1/replication/peers/nope/dead", None);
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchPeer"), "{body}");

    // /metrics (open, like /health): every family, one sample per peer.
    let (s, m) = a.admin("GET", "/metrics", None);
    assert_eq!(s, 200, "{m}");
    for line in [
        "stele_replication_rpo_seconds{peer=\"b\"} 0\n",
        "stele_replication_backlog_ops{peer=\"b\",class=\"live\"} 0\n",
        "stele_replication_backlog_ops{peer=\"b\",class=\"backfill\"} 0\n",
        "stele_replication_backlog_bytes{peer=\"b\"} 0\n",
        "stele_replication_dead_entries{peer=\"b\",reason=\"conflict\"} 0\n",
        "stele_replication_dead_entries{peer=\"b\",reason=\"waiting_repair\"} 0\n",
        "stele_replication_drain_eta_seconds{peer=\"b\"} 0\n",
        "stele_replication_lock_divergence_total{peer=\"b\"} 0\n",
        "stele_replication_sent_bytes_total{peer=\"b\"} 0\n",
        "# TYPE stele_replication_link_up gauge\n",
        "# TYPE stele_replication_last_ack_timestamp_seconds gauge\n",
        "# TYPE stele_replication_throughput_bytes gauge\n",
    ] {
        assert!(m.contains(line), "no {line:?} in /metrics:\n{m}");
    }
    assert_eq!(
        m.matches("stele_replication_dead_entries{peer=\"b\"")
            .count(),
        7,
        "{m}"
    );
    assert!(!m.contains(&secret), "{m}");

    // Who may: an auditor reads the status, not the peers' settings' changes.
    let (ak, sk) = admin_key_for(&a, "watcher", "auditor");
    let (s, body) = a.admin_as(&ak, &sk, "GET", "/v1/replication", None);
    assert_eq!(s, 200, "{body}");
    let (s, body) = a.admin_as(
        &ak,
        &sk,
        "POST",
        "/v1/replication/peers",
        Some(&peer_body("c", &b.s3_url, &key, &secret)),
    );
    assert_eq!((s, code(&body).as_str()), (403, "AccessDenied"), "{body}");
    let (s, body) = a.admin_as(&ak, &sk, "DELETE", "/v1/buckets/src/replication", None);
    assert_eq!((s, code(&body).as_str()), (403, "AccessDenied"), "{body}");

    // Rules removed, then the peer may go.
    let (s, body) = a.admin("DELETE", "/v1/buckets/src/replication", None);
    assert_eq!(s, 204, "{body}");
    let (s, body) = a.admin("GET", "/v1/buckets/src/replication", None);
    assert_eq!((s, code(&body).as_str()), (404, "NoReplication"), "{body}");
    let (s, body) = a.admin("DELETE", "/v1/replication/peers/b", None);
    assert_eq!(s, 204, "{body}");
    let (s, body) = a.admin("GET", "/v1/replication", None);
    assert_eq!((s, body.trim()), (200, "[]"));

    // The secret reached no log line.
    let log = std::fs::read_to_string(&a.stderr_log).unwrap_or_default();
    assert!(!log.contains(&secret), "the peer's secret is in the log");
}

/// Runs `stelectl args` against `server` with the test admin credential, expecting
/// success: its stdout.
fn stelectl(server: &Server, args: &[&str]) -> String {
    let out = stelectl_out(server, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stelectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn stelectl_out(server: &Server, args: &[&str]) -> Output {
    Command::new(workspace_bin("stelectl"))
        .args(args)
        .env("STELE_ADMIN_URL", &server.admin_url)
        .env("STELE_ADMIN_KEY", ADMIN_KEY)
        .env("STELE_ADMIN_SECRET", ADMIN_SECRET)
        .env_remove("STELE_PEER_SECRET_KEY")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run stelectl")
}

#[test]
fn stelectl_replication_commands() {
    let (_dir_b, b) = start_default();
    bucket(&b, "replica", true);
    let (key, secret) = replication_key(&b, "site-a", "replica");
    let (_dir_a, a) = start_default();
    bucket(&a, "src", true);

    let out = stelectl(
        &a,
        &[
            "replication",
            "peer",
            "add",
            "site-b",
            "--endpoint",
            &b.s3_url,
            "--access-key",
            &key,
            "--secret-key",
            &secret,
        ],
    );
    assert!(out.contains("peer site-b added"), "{out}");
    assert!(!out.contains(&secret), "{out}");
    // The secret may come from the environment instead of the command line.
    let out = Command::new(workspace_bin("stelectl"))
        .args([
            "replication",
            "peer",
            "add",
            "pinned",
            "--endpoint",
            "https://127.0.0.1:1",
            "--peer-fingerprint",
            &"cd".repeat(32),
            "--access-key",
            "K",
        ])
        .env("STELE_ADMIN_URL", &a.admin_url)
        .env("STELE_ADMIN_KEY", ADMIN_KEY)
        .env("STELE_ADMIN_SECRET", ADMIN_SECRET)
        .env("STELE_PEER_SECRET_KEY", "from-the-environment")
        .output()
        .expect("run stelectl");
    assert!(out.status.success(), "{out:?}");
    // https without a trust is refused by the server, its message shown.
    let out = stelectl_out(
        &a,
        &[
            "replication",
            "peer",
            "add",
            "c",
            "--endpoint",
            "https://127.0.0.1:1",
            "--access-key",
            "K",
            "--secret-key",
            "S",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidPeer"),
        "{out:?}"
    );

    let out = stelectl(&a, &["replication", "peer", "list"]);
    assert!(out.contains("site-b") && out.contains(&b.s3_url), "{out}");
    assert!(
        out.contains(&format!("fingerprint {}", "cd".repeat(32))),
        "{out}"
    );
    assert!(!out.contains(&secret), "{out}");
    let out = stelectl(&a, &["replication", "peer", "list", "--json"]);
    assert_eq!(json(&out).as_array().map(Vec::len), Some(2), "{out}");
    let out = stelectl(&a, &["replication", "peer", "remove", "pinned"]);
    assert!(out.contains("pinned removed"), "{out}");

    let out = stelectl(
        &a,
        &[
            "replication",
            "rule",
            "set",
            "src",
            "--peer",
            "site-b",
            "--target-bucket",
            "replica",
            "--prefix",
            "db/",
            "--rpo-alert",
            "5m",
            "--bandwidth",
            "1000000",
        ],
    );
    assert!(out.contains("rule rule-1 on"), "{out}");
    let out = stelectl(&a, &["replication", "rule", "get", "src"]);
    let v = json(&out);
    let r = &v["rules"][0];
    assert_eq!(r["id"], "rule-1", "{v}");
    assert_eq!(r["prefix"], "db/", "{v}");
    assert_eq!(r["rpo_alert_secs"], 300, "{v}");
    assert_eq!(r["bandwidth_bytes_per_sec"], 1_000_000, "{v}");
    assert_eq!(r["target_bucket"], "replica", "{v}");

    let out = stelectl(&a, &["replication", "status"]);
    assert!(out.contains("PEER") && out.contains("RPO"), "{out}");
    assert!(out.contains("site-b"), "{out}");
    let out = stelectl(&a, &["replication", "status", "--json"]);
    let v = json(&out);
    assert_eq!(v[0]["name"], "site-b", "{v}");
    assert_eq!(v[0]["rpo_seconds"], 0.0, "{v}");
    let out = stelectl(&a, &["replication", "dead", "site-b"]);
    assert!(out.contains("no parked entries"), "{out}");
    let out = stelectl(&a, &["replication", "retry", "site-b"]);
    assert!(out.contains("0 parked entries"), "{out}");

    // A peer a rule names is not removed; without the rule it is.
    let out = stelectl_out(&a, &["replication", "peer", "remove", "site-b"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PeerInUse"),
        "{out:?}"
    );
    stelectl(&a, &["replication", "rule", "delete", "src"]);
    let out = stelectl_out(&a, &["replication", "rule", "get", "src"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NoReplication"),
        "{out:?}"
    );
    stelectl(&a, &["replication", "peer", "remove", "site-b"]);
    let out = stelectl(&a, &["replication", "status"]);
    assert!(out.contains("no replication peers"), "{out}");
}

/// Polls A's status of `peer` until `done` holds (at most 30 s).
fn status_until(a: &Server, peer: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (s, body) = a.admin("GET", "/v1/replication", None);
        assert_eq!(s, 200, "{body}");
        let list = json(&body);
        let st = list
            .as_array()
            .and_then(|l| l.iter().find(|p| p["name"] == peer))
            .cloned()
            .unwrap_or_else(|| panic!("no peer {peer}: {body}"));
        if done(&st) {
            return st;
        }
        assert!(std::time::Instant::now() < deadline, "never {what}: {st}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// PUT of `len` bytes to `bucket/key` on `server`; the new version id.
fn put(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    bucket: &str,
    key: &str,
    len: usize,
) -> String {
    let out = rt
        .block_on(
            server
                .client()
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(vec![7u8; len].into())
                .send(),
        )
        .expect("put");
    out.version_id().expect("a version id").to_owned()
}

/// Polls B until it holds `key` version `vid` in bucket `replica` (at most 30 s).
fn on_b(rt: &tokio::runtime::Runtime, b: &Server, key: &str, vid: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let c = b.client();
    while rt
        .block_on(
            c.head_object()
                .bucket("replica")
                .key(key)
                .version_id(vid)
                .send(),
        )
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{key} {vid} never reached B"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The value of the first sample of /metrics whose line starts with `prefix`.
fn sample(server: &Server, prefix: &str) -> Option<String> {
    let (s, m) = server.admin("GET", "/metrics", None);
    assert_eq!(s, 200, "{m}");
    m.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

/// The status, `/metrics` and the parked entries follow a real sender: a version sent
/// and acknowledged, one refused by B (its key's user disabled) and parked, shown by
/// `dead` and `stelectl`, then retried once B takes it again.
#[test]
fn status_metrics_and_parked_entries_follow_the_sender() {
    let rt = runtime();
    let (_dir_b, b) = start_default();
    bucket(&b, "replica", true);
    let (key, secret) = replication_key(&b, "site-a", "replica");
    let (_dir_a, a) = start_default();
    bucket(&a, "src", true);
    let (s, body) = a.admin(
        "POST",
        "/v1/replication/peers",
        Some(&peer_body("b", &b.s3_url, &key, &secret)),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = a.admin(
        "PUT",
        "/v1/buckets/src/replication",
        Some(r#"{"rules":[{"id":"to-b","peer":"b","target_bucket":"replica"}]}"#),
    );
    assert_eq!(s, 200, "{body}");

    let v1 = put(&rt, &a, "src", "k1", 1000);
    on_b(&rt, &b, "k1", &v1);
    let st = status_until(&a, "b", "acknowledged", |s| s["sent_entries"] == 1);
    assert_eq!(st["sent_bytes"], 1000, "{st}");
    assert_eq!(st["link_up"], true, "{st}");
    assert_eq!(st["sending"], true, "{st}");
    assert!(st["last_ack"].as_i64().is_some(), "{st}");
    assert_eq!(st["backlog_entries"], 0, "{st}");
    assert_eq!(st["rpo_seconds"], 0.0, "{st}");
    assert_eq!(
        sample(&a, "stele_replication_link_up{peer=\"b\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(&a, "stele_replication_sent_bytes_total{peer=\"b\"}").as_deref(),
        Some("1000")
    );
    let ack = sample(
        &a,
        "stele_replication_last_ack_timestamp_seconds{peer=\"b\"}",
    )
    .and_then(|v| v.parse::<f64>().ok())
    .expect("a last-ack sample");
    assert!(ack > 1.7e9, "{ack}");

    // B stops taking A's key: the next version is refused for good and parked.
    let (s, body) = b.admin("POST", "/v1/users/site-a/disable", None);
    assert!(s == 200 || s == 204, "{s} {body}");
    let v2 = put(&rt, &a, "src", "k2", 500);
    let st = status_until(&a, "b", "parked", |s| s["dead"]["refused"] == 1);
    assert_eq!(st["backlog_entries"], 0, "{st}");
    assert!(st["oldest_dead"].as_i64().is_some(), "{st}");
    assert!(st["rpo_seconds"].as_f64().is_some_and(|r| r > 0.0), "{st}");
    assert_eq!(
        sample(
            &a,
            "stele_replication_dead_entries{peer=\"b\",reason=\"refused\"}"
        )
        .as_deref(),
        Some("1")
    );
    let (s, body) = a.admin("GET", "/v1/replication/peers/b/dead", None);
    assert_eq!(s, 200, "{body}");
    let dead = json(&body);
    let d = &dead[0];
    assert_eq!(dead.as_array().map(Vec::len), Some(1), "{dead}");
    assert_eq!(
        (&d["bucket"], &d["key"], &d["version_id"]),
        (
            &Value::from("src"),
            &Value::from("k2"),
            &Value::from(v2.as_str())
        ),
        "{d}"
    );
    assert_eq!(
        (&d["op"], &d["reason"]),
        (&Value::from("version"), &Value::from("refused"))
    );
    assert_eq!(
        (&d["target_bucket"], &d["size"]),
        (&Value::from("replica"), &Value::from(500))
    );
    assert!(
        d["parked_at"].as_i64().is_some() && d["seq"].as_u64().is_some(),
        "{d}"
    );
    let out = stelectl(&a, &["replication", "dead", "b"]);
    assert!(out.contains("k2") && out.contains("refused"), "{out}");
    let out = stelectl(&a, &["replication", "status"]);
    assert!(out.contains("1 (refused 1)"), "{out}");

    // B takes the key again; a retry sends the parked version.
    let (s, body) = b.admin("POST", "/v1/users/site-a/enable", None);
    assert!(s == 200 || s == 204, "{s} {body}");
    let out = stelectl(&a, &["replication", "retry", "b"]);
    assert!(out.contains("1 parked entry put back"), "{out}");
    on_b(&rt, &b, "k2", &v2);
    let st = status_until(&a, "b", "drained", |s| {
        s["backlog_entries"] == 0 && s["dead"]["refused"] == 0 && s["sent_entries"] == 2
    });
    assert_eq!(st["rpo_seconds"], 0.0, "{st}");
    assert_eq!(st["oldest_dead"], Value::Null, "{st}");
}
