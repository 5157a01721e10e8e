//! Cluster membership through the real binaries (issue 14, item 1): `stelectl cluster
//! init` makes the CA and the first member; a node started with `--join` and a token
//! from `stelectl cluster join-token` receives its certificate; a used or expired token,
//! or a CA other than the pinned one, is refused; on the node-to-node listener (curl, over
//! HTTP/2 with mutual TLS) a member's certificate is admitted, no certificate, an S3 key
//! or a certificate the CA did not sign is not, and a removed member's is refused at
//! once; on the S3 and admin listeners a node certificate opens nothing.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stele_tests::sites::{ctl, ctl_fails, join_args, json};
use stele_tests::{ACCESS_KEY, SECRET_KEY, Server};

fn node(dir: &Path, name: &str, extra: &[&str]) -> Server {
    stele_tests::sites::cluster_node(dir, name, extra)
}

/// (HTTP status, body) of `curl` to `url`, with `args` before it; status 0 when the TLS
/// handshake or the connection failed. The body of an HTTP/2 answer starts `HTTP/2 `.
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "0 0"));
    let (version, code) = tail.trim().split_once(' ').unwrap_or(("0", "0"));
    let body = if version == "2" {
        format!("HTTP/2 {body}")
    } else {
        body.to_owned()
    };
    (code.parse().unwrap_or(0), body)
}

/// `curl` to the node-to-node listener at `rpc` (host:port), trusting the cluster CA in
/// `ca`, presenting the certificate `cert` (a `cluster` folder's `node.pem`/`node.key`) when
/// given, over HTTP/2.
fn rpc_get(rpc: &str, ca: &Path, cert: Option<&Path>, extra: &[&str], path: &str) -> (u16, String) {
    let port = rpc.rsplit_once(':').expect("port").1;
    let resolve = format!("stele-node:{port}:127.0.0.1");
    let ca = ca.to_str().expect("path").to_owned();
    let mut args = vec!["--http2", "--resolve", &resolve, "--cacert", &ca];
    let (c, k);
    if let Some(dir) = cert {
        c = dir.join("node.pem").to_str().expect("path").to_owned();
        k = dir.join("node.key").to_str().expect("path").to_owned();
        args.extend(["--cert", &c, "--key", &k]);
    }
    args.extend_from_slice(extra);
    curl(&args, &format!("https://stele-node:{port}{path}"))
}

#[test]
fn nodes_join_with_one_time_tokens_and_only_members_certificates_open_the_node_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(dir.path(), "a", &["--tls", "on"]);
    let rpc = a.cluster_addr.clone().expect("a node-to-node listener");

    // Before init: no cluster, tokens refused.
    let status = json(&ctl(&a, &["--json", "cluster", "status"]));
    assert_eq!(status["cluster_id"], Value::Null);
    let refused = ctl_fails(&a, &["cluster", "join-token"]);
    assert!(refused.contains("NotInitialized"), "{refused}");

    let init = json(&ctl(&a, &["--json", "cluster", "init"]));
    let fingerprint = init["ca_fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    let a_id = init["node_id"].as_str().expect("node id").to_owned();
    assert_eq!(init["members"].as_array().expect("members").len(), 1);
    let again = ctl_fails(&a, &["cluster", "init"]);
    assert!(again.contains("AlreadyInitialized"), "{again}");

    let token = json(&ctl(&a, &["--json", "cluster", "join-token"]));
    let secret = token["token"].as_str().expect("token").to_owned();
    assert_eq!(token["ca_fingerprint"], fingerprint.as_str());
    assert_eq!(token["rpc_addr"], rpc.as_str());

    // No node listener the others can reach: the node would join no Raft group.
    let mut args = join_args(dir.path(), "x", &rpc, &secret, &fingerprint);
    args.truncate(args.len() - 2);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stele_tests::server_refuses(&refs);
    assert!(err.contains("--join needs --cluster-addr"), "{err}");

    // A CA other than the pinned one: the joining node refuses the cluster.
    let wrong = "00".repeat(32);
    let args = join_args(dir.path(), "x", &rpc, &secret, &wrong);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stele_tests::server_refuses(&refs);
    assert!(err.contains("ca-fingerprint"), "{err}");

    let b = node(
        dir.path(),
        "b",
        &[
            "--join",
            &rpc,
            "--join-token",
            &secret,
            "--ca-fingerprint",
            &fingerprint,
        ],
    );
    let b_certs = dir.path().join("b/keys/cluster");
    let b_id = std::fs::read_to_string(b_certs.join("node-id")).expect("node id");
    let members = json(&ctl(&a, &["--json", "cluster", "status"]));
    let ids: Vec<&str> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["node_id"].as_str().expect("id"))
        .collect();
    assert!(
        ids.contains(&b_id.as_str()) && ids.contains(&a_id.as_str()),
        "{members}"
    );
    // The joined node knows its cluster, and receives the membership through the Raft
    // group (`cluster_raft.rs` shows the group itself); it does not lead, so tokens and
    // removals asked of it are refused (503, retried), and init too.
    let start = std::time::Instant::now();
    let on_b = loop {
        let on_b = json(&ctl(&b, &["--json", "cluster", "status"]));
        if on_b["membership_kept_here"] == true && on_b["raft"]["leader"] == a_id.as_str() {
            break on_b;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the membership did not reach the joined node: {on_b:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(on_b["cluster_id"], init["cluster_id"]);
    assert_eq!(on_b["ca_fingerprint"], fingerprint.as_str());
    assert_eq!(on_b["node_id"], b_id.as_str());
    assert_eq!(members["membership_kept_here"], true);
    // A follower forwards a membership change to the leader: a token issued through b.
    let through_b = json(&ctl(&b, &["--json", "cluster", "join-token"]));
    assert_eq!(through_b["token"].as_str().map(str::len), Some(64));
    // It names the node that signs certificates (a, which ran init), not b; a join
    // through b is refused with that address.
    assert_eq!(through_b["rpc_addr"], rpc.as_str());
    let b_rpc = b.cluster_addr.clone().expect("b's node listener");
    let secret_b = through_b["token"].as_str().expect("token").to_owned();
    let args = join_args(dir.path(), "c-via-b", &b_rpc, &secret_b, &fingerprint);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stele_tests::server_refuses(&refs);
    assert!(
        err.contains("does not hold the cluster CA's key") && err.contains(&rpc),
        "{err}"
    );
    let refused = ctl_fails(&b, &["cluster", "init"]);
    assert!(refused.contains("AlreadyInitialized"), "{refused}");

    // The same token again, and an expired one: refused, and nothing joins.
    let args = join_args(dir.path(), "c", &rpc, &secret, &fingerprint);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stele_tests::server_refuses(&refs);
    assert!(err.contains("used already"), "{err}");
    let short = json(&ctl(&a, &["--json", "cluster", "join-token", "--ttl", "1"]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let args = join_args(
        dir.path(),
        "d",
        &rpc,
        short["token"].as_str().expect("token"),
        &fingerprint,
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stele_tests::server_refuses(&refs);
    assert!(err.contains("expired"), "{err}");
    let after = json(&ctl(&a, &["--json", "cluster", "status"]));
    assert_eq!(after["members"].as_array().expect("members").len(), 2);

    // A join naming a valid token with a proof made for another TLS session (what a
    // machine in the middle could replay): refused, and the token still admits a node.
    let fresh = json(&ctl(&a, &["--json", "cluster", "join-token"]));
    let fresh = fresh["token"].as_str().expect("token").to_owned();
    let hash = stele::node::token_hash(&fresh);
    let forged = serde_json::json!({
        "token_id": stele::membership::token_id(&hash),
        "proof": hex::encode(stele::crypto::hmac_sha256(&hash, &[0u8; 32])),
        "node_id": "intruder",
        "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n",
    })
    .to_string();
    let (code, body) = rpc_get(
        &rpc,
        &dir.path().join("a/keys/cluster/ca.pem"),
        None,
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &forged,
        ],
        "/v1/join",
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("JoinRefused"), "{body}");
    // Guessing is throttled: past five refused joins for one token id, the next is
    // refused unread (429) for a minute (another token than the one node e joins with).
    let guessed = json(&ctl(&a, &["--json", "cluster", "join-token"]));
    let guessed_hash = stele::node::token_hash(guessed["token"].as_str().expect("token"));
    let guess = serde_json::json!({
        "token_id": stele::membership::token_id(&guessed_hash),
        "proof": "00",
        "node_id": "guesser",
        "csr_pem": "",
    })
    .to_string();
    let codes: Vec<u16> = (0..6)
        .map(|_| {
            let post = [
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                &guess,
            ];
            rpc_get(
                &rpc,
                &dir.path().join("a/keys/cluster/ca.pem"),
                None,
                &post,
                "/v1/join",
            )
            .0
        })
        .collect();
    assert_eq!(codes, [403, 403, 403, 403, 403, 429]);
    let e = node(
        dir.path(),
        "e",
        &[
            "--join",
            &rpc,
            "--join-token",
            &fresh,
            "--ca-fingerprint",
            &fingerprint,
        ],
    );
    e.kill();
    // A node without a node-to-node listener cannot start a cluster: nobody could join.
    let lone = dir.path().join("lone");
    let f = Server::start(
        &[
            "--data",
            lone.join("data").to_str().expect("path"),
            "--key-dir",
            lone.join("keys").to_str().expect("path"),
        ],
        dir.path(),
    );
    let refused = ctl_fails(&f, &["cluster", "init"]);
    assert!(refused.contains("NoClusterListener"), "{refused}");
    assert!(!lone.join("keys/cluster").exists());
    f.kill();

    // The node-to-node listener: a member's certificate is admitted (over HTTP/2)...
    let ca = b_certs.join("ca.pem");
    let (code, body) = rpc_get(&rpc, &ca, Some(&b_certs), &[], "/v1/ping");
    assert_eq!(code, 200, "{body}");
    let body = body.strip_prefix("HTTP/2 ").expect("answered over HTTP/2");
    assert_eq!(json(body)["peer"], b_id.as_str());
    // ... no certificate, or an S3 key, is not ...
    let (code, body) = rpc_get(&rpc, &ca, None, &[], "/v1/ping");
    assert_eq!(
        (
            code,
            json(body.trim_start_matches("HTTP/2 "))["error"].clone()
        ),
        (401, "NodeCertificateRequired".into())
    );
    let user = format!("{ACCESS_KEY}:{SECRET_KEY}");
    let (code, body) = rpc_get(
        &rpc,
        &ca,
        None,
        &["--user", &user, "--aws-sigv4", "aws:amz:us-east-1:s3"],
        "/v1/ping",
    );
    assert_eq!(
        (
            code,
            json(body.trim_start_matches("HTTP/2 "))["error"].clone()
        ),
        (401, "NodeCertificateRequired".into())
    );
    // ... and a certificate the cluster CA did not sign fails the handshake.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=stele-node", "-days", "1"])
        .arg("-keyout")
        .arg(other.join("node.key"))
        .arg("-out")
        .arg(other.join("node.pem"))
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let (code, _) = rpc_get(&rpc, &ca, Some(&other), &[], "/v1/ping");
    assert_eq!(code, 0, "a foreign certificate was admitted");

    // On the S3 and admin listeners a node certificate opens nothing.
    let s3_port = a.s3_url.rsplit_once(':').expect("port").1.to_owned();
    let (c, k) = (b_certs.join("node.pem"), b_certs.join("node.key"));
    let cert_args = [
        "-k",
        "--cert",
        c.to_str().expect("path"),
        "--key",
        k.to_str().expect("path"),
    ];
    let (code, body) = curl(&cert_args, &format!("https://127.0.0.1:{s3_port}/"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    let (code, body) = curl(&cert_args, &format!("{}/v1/cluster", a.admin_url));
    assert_eq!(code, 401, "{body}");

    // Why: the S3 listener's handshake never asks for a client certificate, the
    // node-to-node one does (openssl shows the CertificateRequest, or its absence).
    let asks = |port: &str| {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "stele-node", "-cert"])
            .arg(&c)
            .arg("-key")
            .arg(&k)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("client certificate CA names"), "{text}");
        !text.contains("No client certificate CA names sent")
    };
    assert!(
        !asks(&s3_port),
        "the S3 listener asks for client certificates"
    );
    let rpc_port = rpc.rsplit_once(':').expect("port").1.to_owned();
    assert!(asks(&rpc_port), "the node-to-node listener does not ask");
    // A non-member learns nothing of the node-to-node calls, not even which exist.
    let (code, _) = rpc_get(&rpc, &ca, None, &[], "/v1/no-such-call");
    assert_eq!(code, 401);

    // Removed: its certificate is refused from now on; the node does not remove itself.
    let refused = ctl_fails(&a, &["cluster", "remove", &a_id]);
    assert!(refused.contains("RemovesItself"), "{refused}");
    ctl(&a, &["cluster", "remove", &b_id]);
    let (code, body) = rpc_get(&rpc, &ca, Some(&b_certs), &[], "/v1/ping");
    assert_eq!(
        (
            code,
            json(body.trim_start_matches("HTTP/2 "))["error"].clone()
        ),
        (403, "NotAMember".into())
    );

    // Each change is in the audit trail, the token by its hash's prefix only.
    let trail = ctl(&a, &["audit", "events", "--limit", "1000"]);
    for event in [
        "cluster-initialized",
        "join-token-issued",
        "node-joined",
        "node-removed",
    ] {
        assert!(
            trail.contains(&format!(r#"\"event\":\"{event}\""#)),
            "{event}: {trail}"
        );
    }
    assert!(!trail.contains(&secret), "a token's secret is in the trail");

    b.kill();
    a.kill();
}
