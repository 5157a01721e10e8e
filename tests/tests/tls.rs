//! TLS on both listeners, through the real server and real clients: a self-signed
//! certificate made on first start (kept, printed, shown by `stelectl status`), the aws
//! CLI and curl trusting it as their CA, stelectl pinning its fingerprint, plain HTTP to
//! a TLS listener refused, and SIGHUP swapping the certificate for new handshakes while
//! an open connection goes on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use stele_tests::{ACCESS_KEY, ADMIN_KEY, ADMIN_SECRET, SECRET_KEY, Server, workspace_bin};

fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .expect("url")
        .trim_end_matches('/')
        .to_owned()
}

fn stelectl(server: &Server, trust: &[&str], args: &[&str]) -> Output {
    Command::new(workspace_bin("stelectl"))
        .args(trust)
        .args(args)
        .env("STELE_ADMIN_URL", &server.admin_url)
        .env("STELE_ADMIN_KEY", ADMIN_KEY)
        .env("STELE_ADMIN_SECRET", ADMIN_SECRET)
        .env_remove("STELE_CA")
        .env_remove("STELE_FINGERPRINT")
        .output()
        .expect("run stelectl")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn aws(server: &Server, ca: &Path, args: &[&str]) -> Output {
    Command::new("aws")
        .args(["--endpoint-url", &server.s3_url, "--ca-bundle"])
        .arg(ca)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run aws")
}

/// A TLS client that accepts any certificate and remembers the fingerprint it saw: the
/// tests check which certificate a handshake got, not who signed it.
#[derive(Debug, Default)]
struct Seen(Mutex<Option<String>>);

impl ServerCertVerifier for Seen {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut d = stele::crypto::Digest::sha256();
        d.update(end_entity);
        *self.0.lock().expect("lock") = Some(hex::encode(d.finish()));
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` and the fingerprint of the certificate it was given.
fn connect(addr: &str) -> (Tls, String) {
    let seen = Arc::new(Seen::default());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .dangerous()
    .with_custom_certificate_verifier(seen.clone())
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    let fp = seen
        .0
        .lock()
        .expect("lock")
        .clone()
        .expect("certificate seen");
    (tls, fp)
}

/// One keep-alive `GET /health` on an open connection: the status code.
fn health(tls: &mut Tls, host: &str) -> u16 {
    write!(tls, "GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n").expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The answer is small: read until its body (a JSON object) is complete.
    loop {
        let n = tls.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let s = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = s.split_once("\r\n\r\n")
            && let Some(len) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            && body.len() >= len.trim().parse::<usize>().expect("length")
        {
            return head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .expect("status");
        }
    }
}

fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, made.cert.pem()).expect("cert");
    std::fs::write(&key, made.key_pair.serialize_pem()).expect("key");
    (cert, key)
}

#[test]
fn a_generated_certificate_serves_both_listeners_and_clients_verify_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &["--data", data.to_str().expect("path"), "--tls", "on"],
        dir.path(),
    );
    assert!(server.s3_url.starts_with("https://"), "{}", server.s3_url);
    assert!(
        server.admin_url.starts_with("https://"),
        "{}",
        server.admin_url
    );
    let fp = server.tls_fingerprint.clone().expect("fingerprint printed");
    let cert = dir.path().join("stele-keys/tls/cert.pem");
    assert!(cert.exists(), "kept in the key folder");

    // The handshake presents the printed certificate.
    let (_, seen) = connect(&host_port(&server.s3_url));
    assert_eq!(seen, fp);

    // The aws CLI with the certificate as its CA: a bucket, an object, the object back.
    let out = aws(&server, &cert, &["s3", "mb", "s3://tls-bucket"]);
    assert!(out.status.success(), "aws s3 mb: {}", text(&out));
    let body = dir.path().join("body.txt");
    std::fs::write(&body, b"over TLS, byte for byte").expect("body");
    let out = aws(
        &server,
        &cert,
        &["s3", "cp", body.to_str().expect("p"), "s3://tls-bucket/k"],
    );
    assert!(out.status.success(), "aws s3 cp up: {}", text(&out));
    let back = dir.path().join("back.txt");
    let out = aws(
        &server,
        &cert,
        &["s3", "cp", "s3://tls-bucket/k", back.to_str().expect("p")],
    );
    assert!(out.status.success(), "aws s3 cp down: {}", text(&out));
    assert_eq!(
        std::fs::read(&back).expect("back"),
        b"over TLS, byte for byte"
    );
    // Without the CA the aws CLI refuses the self-signed certificate.
    let mut no_ca = Command::new("aws");
    no_ca
        .args(["--endpoint-url", &server.s3_url, "s3", "ls"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_CA_BUNDLE");
    let out = no_ca.output().expect("aws");
    assert!(!out.status.success(), "an untrusted certificate must fail");
    assert!(
        text(&out).contains("SSL") || text(&out).contains("certificate"),
        "refused for its certificate: {}",
        text(&out)
    );

    // curl on the admin listener with the same CA.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .arg(format!("{}/health", server.admin_url))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        text(&out)
    );

    // Plain HTTP to a TLS listener gets no HTTP answer.
    for url in [&server.s3_url, &server.admin_url] {
        let mut tcp = TcpStream::connect(host_port(url)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let _ = write!(
            tcp,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got);
        assert!(
            !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
            "plain HTTP was answered: {}",
            String::from_utf8_lossy(&got)
        );
    }

    // stelectl: pinned fingerprint (with colons, upper case too), CA file, wrong pin, none.
    let colons = hex::decode(&fp)
        .expect("hex")
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    for trust in [
        vec!["--fingerprint", fp.as_str()],
        vec!["--fingerprint", colons.as_str()],
        vec!["--ca", cert.to_str().expect("p")],
    ] {
        let out = stelectl(&server, &trust, &["status"]);
        assert!(out.status.success(), "stelectl {trust:?}: {}", text(&out));
        let shown = text(&out);
        assert!(
            shown.contains(&format!("certificate sha256 {fp} (self-signed)")),
            "{shown}"
        );
    }
    let wrong = "00".repeat(32);
    let out = stelectl(&server, &["--fingerprint", &wrong], &["status"]);
    assert!(!out.status.success(), "a wrong pin must be refused");
    assert!(text(&out).contains("fingerprint"), "{}", text(&out));
    let out = stelectl(&server, &[], &["status"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--ca"), "{}", text(&out));

    // A restart keeps the same certificate (clients' pins hold).
    drop(server);
    let again = Server::start(
        &["--data", data.to_str().expect("path"), "--tls", "on"],
        dir.path(),
    );
    assert_eq!(again.tls_fingerprint.as_deref(), Some(fp.as_str()));
}

#[test]
fn sighup_swaps_the_certificate_for_new_handshakes_and_keeps_open_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (a_cert, a_key) = write_pair(dir.path(), "a");
    let (b_cert, b_key) = write_pair(dir.path(), "b");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(&a_cert, &cert).expect("cert");
    std::fs::copy(&a_key, &key).expect("key");
    // A given certificate turns TLS on for loopback listeners too (auto mode).
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--tls-cert",
            cert.to_str().expect("p"),
            "--tls-key",
            key.to_str().expect("p"),
        ],
        dir.path(),
    );
    assert!(server.admin_url.starts_with("https://"));
    let addr = host_port(&server.admin_url);
    let (mut open, first) = connect(&addr);
    assert_eq!(Some(first.as_str()), server.tls_fingerprint.as_deref());
    assert_eq!(health(&mut open, &addr), 200);

    // Swap the files (each by rename, as an operator's tooling would) and signal.
    let swap = |from: &Path, to: &Path| {
        let tmp = to.with_extension("new");
        std::fs::copy(from, &tmp).expect("copy");
        std::fs::rename(&tmp, to).expect("rename");
    };
    swap(&b_key, &key);
    swap(&b_cert, &cert);
    let hup = |pid: u32| {
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    };
    hup(server.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        let (_, fp) = connect(&addr);
        if fp != first {
            break fp;
        }
        assert!(
            Instant::now() < deadline,
            "the certificate was not reloaded"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The connection opened before the reload still answers.
    assert_eq!(health(&mut open, &addr), 200);
    let out = stelectl(&server, &["--fingerprint", &second], &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&second));
    assert!(!text(&out).contains("self-signed"), "{}", text(&out));

    // A broken file on reload changes nothing: handshakes keep the second certificate.
    std::fs::write(&cert, "not a certificate").expect("break");
    hup(server.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&server.stderr_log)
        .unwrap_or_default()
        .contains("TLS certificate not reloaded")
    {
        assert!(
            Instant::now() < deadline,
            "the failed reload was not logged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, fp) = connect(&addr);
    assert_eq!(fp, second);
    assert_eq!(health(&mut open, &addr), 200);
}

#[test]
fn a_server_refuses_half_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _) = write_pair(dir.path(), "only");
    let data = dir.path().join("data");
    let err = stele_tests::server_refuses(&[
        "--data",
        data.to_str().expect("path"),
        "--tls-cert",
        cert.to_str().expect("p"),
    ]);
    assert!(
        err.contains("--tls-cert and --tls-key go together"),
        "{err}"
    );
}
