//! Helpers for end-to-end tests: locating the workspace's binaries, starting a real
//! `stele-server` on 127.0.0.1 with ports chosen by the OS, and stopping it. For several
//! sites on one box: [`netns`] (namespaces joined by a `wan` namespace) and [`relay`] (the
//! user-space WAN relay: delay, rate, corruption, cuts).

pub mod engine;
pub mod geo;
pub mod lock;
pub mod netns;
pub mod relay;
pub mod shards;
pub mod sites;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary of this workspace, built next to the running test (`cargo build --workspace`
/// builds them; `.ci/run` does so before the tests), or in `STELE_BIN_DIR` when set (a
/// benchmark run by a debug harness against release binaries).
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("STELE_BIN_DIR") {
        let p = PathBuf::from(dir).join(name);
        assert!(p.exists(), "{} is not built", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// The S3 credential every test server is started with.
pub const ACCESS_KEY: &str = "STELETESTACCESSKEY01";
pub const SECRET_KEY: &str = "stele/test/secret/key/0123456789abcdefghij";
/// The admin credential every test server is started with (admin port only).
pub const ADMIN_KEY: &str = "STELETESTADMINKEY001";
pub const ADMIN_SECRET: &str = "stele-test-admin-secret-0123456789abcdef";

/// An aws-sdk-s3 client for `url` with the given credential, path-style, plain HTTP.
pub fn s3_client_with(url: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "stele-tests",
        ))
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl Server {
    /// A client with the server's credential.
    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client_with(&self.s3_url, ACCESS_KEY, SECRET_KEY)
    }

    /// [`Server::client`] that does not retry: each refusal is seen as it is.
    pub fn client_once(&self) -> aws_sdk_s3::Client {
        let conf = self
            .client()
            .config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

/// `len` bytes no one can compress or deduplicate (xorshift), distinct per `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The S3 error code of a failed SDK call.
pub fn error_code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("not a service error: {e:?}"))
}

/// The HTTP status of a failed SDK call.
pub fn error_status<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> u16 {
    e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0)
}

/// A server on the embedded default in a fresh temporary data folder (dropped with it).
pub fn start_default() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&["--data", data.to_str().expect("path")], dir.path());
    (dir, server)
}

/// Creates `bucket` with versioning enabled (S3's two calls).
pub async fn create_versioned(c: &aws_sdk_s3::Client, bucket: &str) {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {bucket}: {e:?}"));
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("versioning on {bucket}: {e:?}"));
}

/// A small multi-threaded runtime for driving async clients from a plain `#[test]`.
/// restic against the S3 repository `repo` with the test S3 credential and the
/// repository password `password` (path-style, no cache); add the arguments.
pub fn restic(repo: &str, password: &str) -> Command {
    let mut cmd = Command::new("restic");
    cmd.args(["-o", "s3.bucket-lookup=path", "--no-cache"])
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", password)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1");
    cmd
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A running `stele-server`, killed when dropped.
pub struct Server {
    child: Child,
    pub s3_url: String,
    pub admin_url: String,
    pub stderr_log: PathBuf,
    /// The TLS certificate's SHA-256 fingerprint the server printed, when it serves TLS.
    pub tls_fingerprint: Option<String>,
    /// The node-to-node listener (host:port), when it serves one (`--cluster-addr`).
    pub cluster_addr: Option<String>,
}

impl Server {
    /// Starts the server with `args` (plus ports 0) and waits for its ready line.
    pub fn start(args: &[&str], log_dir: &Path) -> Server {
        let mut cmd = Command::new(workspace_bin("stele-server"));
        cmd.args(args)
            .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"]);
        Server::spawn(cmd, log_dir)
    }

    /// Starts the server with `args` as they are (they name its listen addresses: a
    /// server restarted where it was) and waits for its ready line.
    pub fn start_exact(args: &[&str], log_dir: &Path) -> Server {
        let mut cmd = Command::new(workspace_bin("stele-server"));
        cmd.args(args);
        Server::spawn(cmd, log_dir)
    }

    /// Starts the server inside `site`'s network namespace of `ns`: its S3 listener on the
    /// site's address (port 0), its admin listener on that namespace's loopback. Reach
    /// them from inside the namespace ([`netns::Netns::run_in`]).
    pub fn start_in(ns: &netns::Netns, site: &str, args: &[&str], log_dir: &Path) -> Server {
        let mut cmd = ns.command(site, workspace_bin("stele-server"));
        cmd.args(args)
            .arg("--s3-addr")
            .arg(format!("{}:0", ns.addr(site)))
            .args(["--admin-addr", "127.0.0.1:0"]);
        Server::spawn(cmd, log_dir)
    }

    fn spawn(mut cmd: Command, log_dir: &Path) -> Server {
        let stderr_log = log_dir.join(format!("server-{}.log", rand::random::<u32>()));
        let log = std::fs::File::create(&stderr_log).expect("log file");
        let child = cmd
            .env("STELE_ACCESS_KEY", ACCESS_KEY)
            .env("STELE_SECRET_KEY", SECRET_KEY)
            .env("STELE_ADMIN_KEY", ADMIN_KEY)
            .env("STELE_ADMIN_SECRET", ADMIN_SECRET)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn stele-server");
        // Owned by `server` from here on, so every path below kills and reaps it.
        let mut server = Server {
            child,
            s3_url: String::new(),
            admin_url: String::new(),
            stderr_log,
            tls_fingerprint: None,
            cluster_addr: None,
        };
        let stdout = server.child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "server did not become ready");
            let Some(Ok(line)) = lines.next() else {
                let log = std::fs::read_to_string(&server.stderr_log).unwrap_or_default();
                panic!("server exited before it was ready: {log}");
            };
            if let Some(rest) = line.strip_prefix("stele-server TLS certificate sha256 ") {
                server.tls_fingerprint = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("stele-server ready ") {
                for part in rest.split_whitespace() {
                    if let Some(v) = part.strip_prefix("s3=") {
                        server.s3_url = v.to_owned();
                    } else if let Some(v) = part.strip_prefix("admin=") {
                        server.admin_url = v.to_owned();
                    } else if let Some(v) = part.strip_prefix("cluster=") {
                        server.cluster_addr = Some(v.to_owned());
                    }
                }
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return server;
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit on its own; its exit code, if it did.
    pub fn wait_exit(mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stelectl ARGS` run offline (no admin URL in its environment): (exit code, stdout,
/// stderr). The auditor's checks (`audit verify`, `verify-report`, `verify-events`,
/// `diff`) need no server.
pub fn stelectl_offline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(workspace_bin("stelectl"))
        .args(args)
        .env_remove("STELE_ADMIN_URL")
        .output()
        .expect("stelectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `stele-server` with `args` expecting it to refuse to start; returns its stderr.
pub fn server_refuses(args: &[&str]) -> String {
    let out = Command::new(workspace_bin("stele-server"))
        .args(args)
        .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run stele-server");
    assert!(
        !out.status.success(),
        "stele-server {args:?} started but should have refused"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sends one HTTP/1.1 request over a raw socket and returns the whole response text.
pub fn http_request(addr: &str, head: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("head");
    s.write_all(body).expect("body");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The status code of a raw HTTP response.
pub fn http_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

impl Server {
    /// A user `name` with `role` over everything (made unless it exists) and a new key
    /// of it for `plane` (`s3` or `admin`), through the admin API: (access key, secret).
    pub fn user_with_key(&self, name: &str, role: &str, plane: &str) -> (String, String) {
        let (s, body) = self.admin(
            "POST",
            "/v1/users",
            Some(&format!(
                r#"{{"name":"{name}","grants":[{{"role":"{role}"}}]}}"#
            )),
        );
        assert!(s == 201 || body.contains("UserExists"), "{body}");
        let (s, body) = self.admin(
            "POST",
            &format!("/v1/users/{name}/keys"),
            Some(&format!(r#"{{"plane":"{plane}"}}"#)),
        );
        assert_eq!(s, 201, "{body}");
        let k: serde_json::Value = serde_json::from_str(&body).expect("json");
        (
            k["access_key"].as_str().expect("key").to_owned(),
            k["secret_key"].as_str().expect("secret").to_owned(),
        )
    }

    /// The approval `id` given by the administrator of (`key`, `secret`): (status, body).
    pub fn approve_as(&self, key: &str, secret: &str, id: &str) -> (u16, String) {
        self.admin_as(
            key,
            secret,
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            None,
        )
    }

    /// A call to the admin API with the test admin credential: (status, body).
    pub fn admin(&self, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
        self.admin_as(ADMIN_KEY, ADMIN_SECRET, method, path, json)
    }

    /// A call to the admin API with the given credential: (status, body).
    pub fn admin_as(
        &self,
        key: &str,
        secret: &str,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> (u16, String) {
        use base64::Engine;
        let addr = self.admin_url.strip_prefix("http://").expect("http");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json"
        );
        let resp = http_request(addr, &head, json.unwrap_or("").as_bytes());
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (http_status(&resp), body)
    }

    /// An S3 request signed with the test credential (UNSIGNED-PAYLOAD) over a raw socket,
    /// with `headers` added: the whole response text.
    pub fn s3_raw(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> String {
        let host = self.s3_url.strip_prefix("http://").expect("http");
        let signer = stele_tools::sigv4::Signer {
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: "us-east-1".into(),
        };
        let mut head = format!("{method} {path}?{query} HTTP/1.1");
        for (k, v) in signer.sign(method, host, path, query) {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        for (k, v) in headers {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        http_request(host, &head, body)
    }
}

/// A server whose clocks follow a file (the server's `--test-clock`): see [`ClockFile`].
pub fn start_with_clock(extra: &[&str]) -> (tempfile::TempDir, Server, ClockFile) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let clock = ClockFile(dir.path().join("clock"));
    clock.set(0, 0);
    let mut args = vec![
        "--data",
        data.to_str().expect("path"),
        "--test-clock",
        clock.0.to_str().expect("path"),
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args, dir.path());
    (dir, server, clock)
}

/// The offsets a test-clock server adds to its wall clock and to its monotonic clock.
pub struct ClockFile(pub PathBuf);

pub const DAY_SECS: i64 = 86_400;

impl ClockFile {
    pub fn set(&self, wall_secs: i64, mono_secs: i64) {
        std::fs::write(&self.0, format!("{wall_secs} {mono_secs}")).expect("clock file");
    }

    /// Time passes for the node: wall and monotonic clocks move together.
    pub fn pass(&self, secs: i64) {
        let (w, m) = self.get();
        self.set(w + secs, m + secs);
    }

    /// Only the wall clock jumps (someone set the date).
    pub fn jump_wall(&self, secs: i64) {
        let (w, m) = self.get();
        self.set(w + secs, m);
    }

    fn get(&self) -> (i64, i64) {
        let t = std::fs::read_to_string(&self.0).unwrap_or_default();
        let mut it = t.split_whitespace().map(|n| n.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }
}
