//! Two deployments for replication tests: a source A and a peer B, each a real
//! `stele-server`, B with a `replication-peer` key on its target bucket `replica`. A reaches B
//! directly or through a [`crate::relay::Relay`] link (whose address then is B's
//! endpoint for A).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use stele_client::{S3Client, S3Request, S3Response, Trust};

use crate::{ACCESS_KEY, ADMIN_KEY, ADMIN_SECRET, SECRET_KEY, Server, workspace_bin};

/// Parses JSON or fails the test with the text.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Runs stelectl against `server`'s admin listener (pinned to its fingerprint when it
/// serves TLS); its stdout, after checking it succeeded.
pub fn ctl(server: &Server, args: &[&str]) -> String {
    let out = ctl_command(server, args).output().expect("stelectl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stelectl {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// stelectl with `args` for `server`'s admin listener, with the test admin credential
/// (pinned to its fingerprint when it serves TLS).
fn ctl_command(server: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(workspace_bin("stelectl"));
    cmd.args(args)
        .env("STELE_ADMIN_URL", &server.admin_url)
        .env("STELE_ADMIN_KEY", ADMIN_KEY)
        .env("STELE_ADMIN_SECRET", ADMIN_SECRET)
        .env_remove("STELE_CA")
        .env_remove("STELE_FINGERPRINT");
    if let Some(fp) = &server.tls_fingerprint {
        cmd.env("STELE_FINGERPRINT", fp);
    }
    cmd
}

/// [`ctl`] for a server in network namespace `site` of `ns` (its admin listener is on
/// that namespace's loopback): stelectl runs there.
pub fn ctl_in(ns: &crate::netns::Netns, site: &str, server: &Server, args: &[&str]) -> String {
    let (ok, text, err) = ctl_in_result(ns, site, server, args);
    assert!(ok, "stelectl {args:?} in {site}: {text}{err}");
    text
}

/// [`ctl_in`] expecting a failure: its stdout and stderr.
pub fn ctl_in_fails(
    ns: &crate::netns::Netns,
    site: &str,
    server: &Server,
    args: &[&str],
) -> String {
    let (ok, text, err) = ctl_in_result(ns, site, server, args);
    assert!(!ok, "stelectl {args:?} in {site} succeeded: {text}");
    format!("{text}{err}")
}

/// Whether stelectl succeeded, its stdout and its stderr.
fn ctl_in_result(
    ns: &crate::netns::Netns,
    site: &str,
    server: &Server,
    args: &[&str],
) -> (bool, String, String) {
    let plain = ctl_command(server, args);
    let mut cmd = ns.command(site, plain.get_program());
    cmd.args(plain.get_args());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("stelectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs stelectl against `server` expecting it to fail; its stdout and stderr.
pub fn ctl_fails(server: &Server, args: &[&str]) -> String {
    let out = ctl_command(server, args).output().expect("stelectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "stelectl {args:?} succeeded: {text}");
    text
}

/// The peer B: its server, clients for its S3 listener (its own credential, and the
/// replication-peer key), and that key.
pub struct Peer {
    pub server: Server,
    /// B's S3 listener with B's own S3 credential.
    pub s3: S3Client,
    /// B's S3 listener with the replication-peer key.
    pub peer: S3Client,
    /// The replication-peer key (access key, secret).
    pub key: (String, String),
    /// How B's certificate is trusted (`None`: plain HTTP).
    pub trust: Option<Trust>,
}

impl Peer {
    /// Starts B in `dir/b` (data folder `dir/b/data`, key folder `dir/b/stele-keys`: its
    /// own, never A's), TLS with a self-signed certificate when `tls`, with a locked,
    /// versioned bucket `replica` and a user `peer-a` holding only `replication-peer` on it.
    pub fn start(rt: &tokio::runtime::Runtime, dir: &Path, tls: bool) -> Peer {
        let data = data_dir(dir, "b");
        let data = data.to_str().expect("path");
        let args: Vec<&str> = if tls {
            vec!["--data", data, "--tls", "on"]
        } else {
            vec!["--data", data]
        };
        Peer::setup(rt, Server::start(&args, dir))
    }

    /// Sets up a started B (run it where B's listeners are reachable: inside its network
    /// namespace for one started with [`Server::start_in`]).
    pub fn setup(rt: &tokio::runtime::Runtime, server: Server) -> Peer {
        let trust = server
            .tls_fingerprint
            .as_deref()
            .map(|fp| Trust::fingerprint(fp).expect("pin"));
        let s3 = S3Client::new(
            &server.s3_url,
            trust.as_ref(),
            ACCESS_KEY,
            SECRET_KEY,
            "us-east-1",
        )
        .expect("client");
        let made = rt
            .block_on(
                s3.send(
                    S3Request::new(http::Method::PUT, "replica")
                        .with_header("x-amz-bucket-object-lock-enabled", "true"),
                ),
            )
            .expect("create replica");
        assert_eq!(made.status, 200, "{:?}", made.body);
        ctl(
            &server,
            &[
                "user",
                "add",
                "peer-a",
                "--role",
                "replication-peer:replica",
            ],
        );
        let k = json(&ctl(&server, &["key", "create", "peer-a", "--json"]));
        let key = (
            k["access_key"].as_str().expect("ak").to_owned(),
            k["secret_key"].as_str().expect("sk").to_owned(),
        );
        let peer = S3Client::new(&server.s3_url, trust.as_ref(), &key.0, &key.1, "us-east-1")
            .expect("client");
        Peer {
            server,
            s3,
            peer,
            key,
            trust,
        }
    }

    /// New clients (new connection pools): for a B in a network namespace, call it inside
    /// the namespace before using the clients there.
    pub fn reconnect(&mut self) {
        let client = |ak: &str, sk: &str| {
            S3Client::new(
                &self.server.s3_url,
                self.trust.as_ref(),
                ak,
                sk,
                "us-east-1",
            )
            .expect("client")
        };
        let (s3, peer) = (
            client(ACCESS_KEY, SECRET_KEY),
            client(&self.key.0, &self.key.1),
        );
        self.s3 = s3;
        self.peer = peer;
    }

    /// The `host:port` of B's S3 listener.
    pub fn s3_addr(&self) -> String {
        self.server
            .s3_url
            .split("://")
            .nth(1)
            .expect("url")
            .trim_end_matches('/')
            .to_owned()
    }

    /// HEAD of `key` version `vid` in `replica`, polled until it is there (at most `within`).
    pub fn wait_for(
        &self,
        rt: &tokio::runtime::Runtime,
        key: &str,
        vid: &str,
        within: Duration,
    ) -> S3Response {
        let deadline = Instant::now() + within;
        loop {
            let r = rt
                .block_on(
                    self.s3.send(
                        S3Request::new(http::Method::HEAD, "replica")
                            .with_key(key)
                            .with_query("versionId", vid),
                    ),
                )
                .expect("head");
            if r.status == 200 {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{key} {vid} never reached B: {}",
                r.status
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The bytes of `key` version `vid` in `replica`.
    pub fn get(&self, rt: &tokio::runtime::Runtime, key: &str, vid: &str) -> Vec<u8> {
        let r = rt
            .block_on(
                self.s3.clone().with_body_limit(64 << 20).send(
                    S3Request::new(http::Method::GET, "replica")
                        .with_key(key)
                        .with_query("versionId", vid),
                ),
            )
            .expect("get");
        assert_eq!(r.status, 200, "{key} {vid}");
        r.body.to_vec()
    }

    /// Every (key, version id) in `replica`, objects and delete markers.
    pub fn versions(&self, rt: &tokio::runtime::Runtime) -> Vec<(String, String)> {
        versions_of(rt, &self.s3, "replica")
    }
}

/// Every (key, version id) in `bucket` through `client`, objects and delete markers
/// (ListObjectVersions, every page).
pub fn versions_of(
    rt: &tokio::runtime::Runtime,
    client: &S3Client,
    bucket: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut marker: Option<(String, String)> = None;
    loop {
        let mut req = S3Request::new(http::Method::GET, bucket).with_query("versions", "");
        if let Some((k, v)) = &marker {
            req = req
                .with_query("key-marker", k)
                .with_query("version-id-marker", v);
        }
        let r = rt.block_on(client.send(req)).expect("list");
        assert_eq!(r.status, 200, "{:?}", r.body);
        let text = String::from_utf8_lossy(&r.body).into_owned();
        for chunk in text.split("<Key>").skip(1) {
            let key = chunk.split("</Key>").next().unwrap_or_default().to_owned();
            let vid = chunk
                .split("<VersionId>")
                .nth(1)
                .and_then(|c| c.split("</VersionId>").next())
                .unwrap_or_default()
                .to_owned();
            out.push((key, vid));
        }
        if !text.contains("<IsTruncated>true</IsTruncated>") {
            return out;
        }
        let next = |tag: &str| {
            text.split(&format!("<{tag}>"))
                .nth(1)
                .and_then(|c| c.split(&format!("</{tag}>")).next())
                .unwrap_or_default()
                .to_owned()
        };
        marker = Some((next("NextKeyMarker"), next("NextVersionIdMarker")));
    }
}

/// A site's data folder under `dir`: `dir/NAME/data`, so that its key folder (beside it,
/// `dir/NAME/stele-keys`) is its own.
pub fn data_dir(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(name).join("data")
}

/// Starts site A: a plain-HTTP server on `data_dir(dir, "a")`.
pub fn start_a(dir: &Path) -> Server {
    let data = data_dir(dir, "a");
    Server::start(&["--data", data.to_str().expect("path")], dir)
}

/// Adds B to A as peer `name` at `endpoint` (B's listener, or a relay in front of it),
/// trusting B's certificate by its fingerprint (or over plain HTTP).
pub fn add_peer(a: &Server, name: &str, endpoint: &str, b: &Peer) {
    let mut body = serde_json::json!({
        "name": name,
        "endpoint": endpoint,
        "access_key": b.key.0,
        "secret_key": b.key.1,
    });
    if let Some(fp) = &b.server.tls_fingerprint {
        body["fingerprint"] = serde_json::Value::String(fp.clone());
    }
    let (s, out) = a.admin("POST", "/v1/replication/peers", Some(&body.to_string()));
    assert_eq!(s, 201, "{out}");
    assert!(
        !out.contains(&b.key.1),
        "the secret never comes back: {out}"
    );
}

/// Sets A's rules for `bucket` through the admin API: everything to `replica` on `peer`.
pub fn replicate(a: &Server, bucket: &str, peer: &str, delete_markers: bool, rpo_alert_secs: u64) {
    let body = serde_json::json!({
        "rules": [{
            "id": "to-b",
            "peer": peer,
            "target_bucket": "replica",
            "delete_markers": delete_markers,
            "rpo_alert_secs": rpo_alert_secs,
        }]
    });
    let (s, out) = a.admin(
        "PUT",
        &format!("/v1/buckets/{bucket}/replication"),
        Some(&body.to_string()),
    );
    assert_eq!(s, 200, "{out}");
}

/// A's replication status of `peer` (`GET /v1/replication`).
pub fn status(a: &Server, peer: &str) -> serde_json::Value {
    let body = if a.admin_url.starts_with("https://") {
        ctl(a, &["replication", "status", "--json"])
    } else {
        let (s, body) = a.admin("GET", "/v1/replication", None);
        assert_eq!(s, 200, "{body}");
        body
    };
    json(&body)
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == peer))
        .cloned()
        .unwrap_or_else(|| panic!("no peer {peer}: {body}"))
}

/// Polls A's status of `peer` until its backlog is empty (at most `within`); fails if any
/// entry was parked on the way.
pub fn drained(a: &Server, peer: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let p = status(a, peer);
        let parked: u64 = p["dead"]
            .as_object()
            .map(|d| d.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0);
        assert_eq!(parked, 0, "entries were parked: {p}");
        if p["backlog_entries"] == 0 {
            return p;
        }
        assert!(Instant::now() < deadline, "never drained: {p}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A replication request for a version with `body`'s digest as its one part (what a peer's
/// sender would send), `size` bytes declared.
pub fn replica_version(
    version_id: stele::VersionId,
    digest_of: &[u8],
    size: u64,
) -> stele::replication::ReplicaOp {
    stele::replication::ReplicaOp::Version(Box::new(stele::replication::ReplicaVersion {
        version_id,
        created: version_id.timestamp(),
        size,
        etag: "x".into(),
        content_type: None,
        user_meta: Vec::new(),
        system: stele::meta::SystemMeta::default(),
        checksums: Vec::new(),
        composite_checksum: false,
        parts: vec![(size, *blake3::hash(digest_of).as_bytes())],
        lock: stele::meta::LockRecord::default(),
        tags: Vec::new(),
    }))
}

/// Sends `op` for `key` in `replica` with `client` as a peer's sender would (the
/// `x-stele-replication` header), with `body`.
pub fn send_replication(
    rt: &tokio::runtime::Runtime,
    client: &S3Client,
    key: &str,
    op: &stele::replication::ReplicaOp,
    body: Vec<u8>,
) -> S3Response {
    use base64::Engine;
    use stele::meta::Record;
    let header = base64::engine::general_purpose::STANDARD.encode(op.encode().expect("encode"));
    rt.block_on(
        client.send(
            S3Request::new(http::Method::PUT, "replica")
                .with_key(key)
                .with_header("x-stele-replication", &header)
                .with_body(bytes::Bytes::from(body)),
        ),
    )
    .expect("answer")
}

/// A node with its own data and key folders under `dir/name`, serving a node-to-node
/// listener on a port of its choosing; `extra` adds flags (a join).
pub fn cluster_node(dir: &Path, name: &str, extra: &[&str]) -> Server {
    cluster_node_at(dir, name, "127.0.0.1:0", extra)
}

/// [`cluster_node`] with its node-to-node listener on `rpc` (a node started again where
/// the others know it).
pub fn cluster_node_at(dir: &Path, name: &str, rpc: &str, extra: &[&str]) -> Server {
    let data = dir.join(name).join("data");
    let keys = dir.join(name).join("keys");
    let mut args = vec![
        "--data".to_owned(),
        data.to_str().expect("path").to_owned(),
        "--key-dir".to_owned(),
        keys.to_str().expect("path").to_owned(),
        "--cluster-addr".to_owned(),
        rpc.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs, dir)
}

/// A cluster node's `stelectl cluster status --json`.
pub fn cluster_status(s: &Server) -> serde_json::Value {
    json(&ctl(s, &["--json", "cluster", "status"]))
}

/// Polls `f` over the nodes' statuses until it holds, at most 60 s (a bound on progress
/// for a loaded machine, not a speed check); the statuses that satisfied it.
pub fn until_statuses(
    what: &str,
    nodes: &[&Server],
    f: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let all: Vec<serde_json::Value> = nodes.iter().map(|n| cluster_status(n)).collect();
        if f(&all) {
            return all;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| std::fs::read_to_string(&n.stderr_log).unwrap_or_default())
                .collect();
            panic!(
                "not within 60 s: {what}: {all:#?}\nlogs:\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Raft group's `field` in a cluster status.
pub fn raft<'a>(v: &'a serde_json::Value, field: &str) -> &'a serde_json::Value {
    &v["raft"][field]
}

/// Every status names one leader leading `voters` voters in one term.
pub fn raft_agree(all: &[serde_json::Value], voters: usize) -> bool {
    let leader = raft(&all[0], "leader");
    !leader.is_null()
        && all.iter().all(|v| {
            raft(v, "leader") == leader
                && raft(v, "term") == raft(&all[0], "term")
                && raft(v, "voters").as_array().map(Vec::len) == Some(voters)
        })
}

/// A new node `name` under `dir` that joins the cluster through `leader` with a fresh
/// token, trusting the CA of fingerprint `fingerprint`.
pub fn join_node(dir: &Path, name: &str, leader: &Server, fingerprint: &str) -> Server {
    join_node_with(dir, name, leader, fingerprint, &[])
}

/// [`join_node`] with more flags (its disks, its erasure coding).
pub fn join_node_with(
    dir: &Path,
    name: &str,
    leader: &Server,
    fingerprint: &str,
    extra: &[String],
) -> Server {
    let token = json(&ctl(leader, &["--json", "cluster", "join-token"]));
    let secret = token["token"].as_str().expect("token").to_owned();
    let rpc = leader.cluster_addr.clone().expect("rpc");
    let mut args: Vec<&str> = vec![
        "--join",
        &rpc,
        "--join-token",
        &secret,
        "--ca-fingerprint",
        fingerprint,
    ];
    args.extend(extra.iter().map(String::as_str));
    cluster_node(dir, name, &args)
}

/// Three nodes under `dir` in one cluster (`a` made it, `b` and `c` joined), once all
/// three agree on `a`'s lead with three voters and three members.
pub fn three_node_cluster(dir: &Path) -> [Server; 3] {
    three_node_cluster_with(dir, |_| Vec::new())
}

/// [`three_node_cluster`], each node started with the flags `extra` gives for its name.
pub fn three_node_cluster_with(dir: &Path, extra: impl Fn(&str) -> Vec<String>) -> [Server; 3] {
    three_node_cluster_after(dir, extra, |_| {})
}

/// [`three_node_cluster_with`], `before_init` run on `a` while it is a single node.
pub fn three_node_cluster_after(
    dir: &Path,
    extra: impl Fn(&str) -> Vec<String>,
    before_init: impl FnOnce(&Server),
) -> [Server; 3] {
    let a_extra = extra("a");
    let a_refs: Vec<&str> = a_extra.iter().map(String::as_str).collect();
    let a = cluster_node(dir, "a", &a_refs);
    before_init(&a);
    let init = json(&ctl(&a, &["--json", "cluster", "init"]));
    let fingerprint = init["ca_fingerprint"].as_str().expect("fp").to_owned();
    let b = join_node_with(dir, "b", &a, &fingerprint, &extra("b"));
    let c = join_node_with(dir, "c", &a, &fingerprint, &extra("c"));
    until_statuses("three voters agree", &[&a, &b, &c], |all| {
        raft_agree(all, 3)
            && all
                .iter()
                .all(|v| v["members"].as_array().map(Vec::len) == Some(3))
    });
    [a, b, c]
}

/// The flags of a node that would join under `dir/name` through `rpc` with `token` and
/// `fingerprint`, without the S3 and admin listen addresses (for `server_refuses`).
pub fn join_args(dir: &Path, name: &str, rpc: &str, token: &str, fingerprint: &str) -> Vec<String> {
    [
        "--data",
        dir.join(name).join("data").to_str().expect("path"),
        "--key-dir",
        dir.join(name).join("keys").to_str().expect("path"),
        "--join",
        rpc,
        "--join-token",
        token,
        "--ca-fingerprint",
        fingerprint,
        "--cluster-addr",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// PUTs `data` as `backups/key` through `s`, panicking with the node's address.
pub async fn put_backup(s: &Server, key: &str, data: &[u8]) {
    s.client()
        .put_object()
        .bucket("backups")
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key} through {}: {e:?}", s.s3_url));
}

/// GETs `backups/key` through `s`, panicking with the node's address.
pub async fn get_backup(s: &Server, key: &str) -> Vec<u8> {
    s.client()
        .get_object()
        .bucket("backups")
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key} through {}: {e:?}", s.s3_url))
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// The shard files in the disk folder `disk` (`shards/<xx>/<segment>.<index>`).
pub fn shard_files_in(disk: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(disk.join("shards"))
        .map(|folders| {
            folders
                .flatten()
                .flat_map(|f| std::fs::read_dir(f.path()).into_iter().flatten())
                .flatten()
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}
