//! `S3Client` against the real `stele-server` (its signature check is the judge): over
//! TLS with the pinned fingerprint the server prints, and over plain HTTP where the body's
//! SHA-256 is signed. Keys that need encoding, metadata headers, a bare query name, a
//! streamed body, and a wrong secret refused.
//!
//! The server binary is not a dependency of this crate: the test uses
//! `$STELE_SERVER_BIN`, or `stele-server` in the target directory this test was built in
//! (`cargo build -p stele-server` puts it there), and is skipped when there is none.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use stele_client::{S3Client, S3Request, Trust};

const ACCESS_KEY: &str = "STELECLIENTTESTKEY01";
const SECRET_KEY: &str = "stele/client/test/secret/0123456789abcdefgh";

fn server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STELE_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let dir = if dir.ends_with("deps") {
        dir.parent()?
    } else {
        dir
    };
    let p = dir.join("stele-server");
    p.exists().then_some(p)
}

/// A running server, killed when dropped.
struct Server {
    child: Child,
    s3_url: String,
    fingerprint: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &PathBuf, tls: bool) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
    let child = Command::new(bin)
        .args(["--data", data.to_str().expect("path")])
        .args(["--tls", if tls { "on" } else { "off" }])
        .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env("STELE_ACCESS_KEY", ACCESS_KEY)
        .env("STELE_SECRET_KEY", SECRET_KEY)
        .env("STELE_ADMIN_KEY", "STELECLIENTADMINKEY1")
        .env(
            "STELE_ADMIN_SECRET",
            "stele-client-admin-secret-0123456789abc",
        )
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn stele-server");
    let mut server = Server {
        child,
        s3_url: String::new(),
        fingerprint: None,
        _dir: dir,
    };
    let stdout = server.child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "server did not become ready");
        let Some(Ok(line)) = lines.next() else {
            let log =
                std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
            panic!("server exited before it was ready: {log}");
        };
        if let Some(rest) = line.strip_prefix("stele-server TLS certificate sha256 ") {
            server.fingerprint = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("stele-server ready ") {
            server.s3_url = rest
                .split_whitespace()
                .find_map(|p| p.strip_prefix("s3="))
                .expect("s3 url")
                .to_owned();
            std::thread::spawn(move || for _ in lines {});
            return server;
        }
    }
}

async fn exercise(c: &S3Client, bucket: &str) {
    let ok = |r: &stele_client::S3Response, what: &str| {
        assert!(
            r.is_success(),
            "{what}: HTTP {} {:?} {}",
            r.status,
            r.error_code(),
            String::from_utf8_lossy(&r.body)
        );
    };
    let r = c
        .send(S3Request::new(Method::PUT, bucket))
        .await
        .expect("create bucket");
    ok(&r, "create bucket");

    let key = "dir/a b+ü~=&%.txt";
    let put = S3Request::new(Method::PUT, bucket)
        .with_key(key)
        .with_header("x-amz-meta-colour", "blue")
        .with_header("content-type", "text/plain")
        .with_body(Bytes::from_static(b"hello stele"));
    let r = c.send(put).await.expect("put");
    ok(&r, "put");
    assert!(r.header("etag").is_some(), "{:?}", r.headers);

    let r = c
        .send(S3Request::new(Method::GET, bucket).with_key(key))
        .await
        .expect("get");
    ok(&r, "get");
    assert_eq!(&r.body[..], b"hello stele");
    assert_eq!(r.header("x-amz-meta-colour"), Some("blue"));

    let r = c
        .send(
            S3Request::new(Method::GET, bucket)
                .with_query("list-type", "2")
                .with_query("prefix", "dir/a b"),
        )
        .await
        .expect("list");
    ok(&r, "list");
    let xml = String::from_utf8_lossy(&r.body);
    assert!(xml.contains("<Key>dir/a b+ü~=&amp;%.txt</Key>"), "{xml}");

    let r = c
        .send(S3Request::new(Method::GET, bucket).with_query("versioning", ""))
        .await
        .expect("versioning");
    ok(&r, "get versioning");

    // 3 MiB streamed in 64 KiB chunks, read back whole.
    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let chunk = Bytes::from(chunk);
    let parts: Vec<Result<Bytes, std::io::Error>> = (0..48).map(|_| Ok(chunk.clone())).collect();
    let r = c
        .send_stream(
            S3Request::new(Method::PUT, bucket).with_key("streamed"),
            48 * 65_536,
            futures::stream::iter(parts),
        )
        .await
        .expect("streamed put");
    ok(&r, "streamed put");
    let r = c
        .send(S3Request::new(Method::GET, bucket).with_key("streamed"))
        .await
        .expect("get streamed");
    ok(&r, "get streamed");
    assert_eq!(r.body.len(), 48 * 65_536);
    assert!(r.body.chunks(65_536).all(|c| c == &chunk[..]));

    let r = c
        .send(S3Request::new(Method::HEAD, bucket).with_key("missing"))
        .await
        .expect("head");
    assert_eq!(r.status, 404);
}

#[test]
fn the_real_server_accepts_the_signatures() {
    let Some(bin) = server_bin() else {
        eprintln!(
            "skipped: no stele-server binary (cargo build -p stele-server, or STELE_SERVER_BIN)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let tls = start(&bin, true);
    assert!(tls.s3_url.starts_with("https://"), "{}", tls.s3_url);
    let pin =
        Trust::fingerprint(tls.fingerprint.as_deref().expect("fingerprint printed")).expect("pin");
    let c = S3Client::new(&tls.s3_url, Some(&pin), ACCESS_KEY, SECRET_KEY, "us-east-1")
        .expect("client");
    rt.block_on(exercise(&c, "over-tls"));

    let wrong = S3Client::new(
        &tls.s3_url,
        Some(&pin),
        ACCESS_KEY,
        "not-the-secret",
        "us-east-1",
    )
    .expect("client");
    let r = rt
        .block_on(wrong.send(S3Request::new(Method::GET, "over-tls")))
        .expect("an answer");
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code().as_deref(), Some("SignatureDoesNotMatch"));
    drop(tls);

    let plain = start(&bin, false);
    assert!(plain.s3_url.starts_with("http://"), "{}", plain.s3_url);
    let c =
        S3Client::new(&plain.s3_url, None, ACCESS_KEY, SECRET_KEY, "us-east-1").expect("client");
    rt.block_on(exercise(&c, "plain"));
}
