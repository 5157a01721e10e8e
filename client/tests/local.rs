//! `S3Client` against a tiny local HTTP/1.1 server (over TLS with a self-signed rcgen
//! certificate, or plain): which trusts connect, how failures are classified, and what
//! the requests carry (signature, custom headers, encoded path, body and its hash).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use stele_client::tls::fingerprint_of;
use stele_client::{ClientError, S3Client, S3Request, Trust};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the server read it.
#[derive(Debug)]
struct Seen {
    /// The request line.
    line: String,
    /// Header names lower-cased, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Local {
    addr: SocketAddr,
    /// The certificate's PEM and fingerprint (TLS servers only).
    pem: String,
    fingerprint: [u8; 32],
    seen: mpsc::UnboundedReceiver<Seen>,
    /// Connections accepted (handshakes included, failed or not).
    accepted: Arc<AtomicUsize>,
}

impl Local {
    async fn start(tls: bool) -> Local {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
        let der = made.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(made.key_pair.serialize_der()).expect("key");
        let acceptor = tls.then(|| {
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .expect("server config");
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, seen) = mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(tcp).await {
                                serve(s, tx).await;
                            }
                        }
                        None => serve(tcp, tx).await,
                    }
                });
            }
        });
        Local {
            addr,
            pem: made.cert.pem(),
            fingerprint: fingerprint_of(&der),
            seen,
            accepted,
        }
    }

    fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}", self.addr.port())
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("a request within 10s")
            .expect("server running")
    }
}

/// Keep-alive HTTP/1.1: reads requests (Content-Length bodies only) and answers each by
/// its path: `/b/error` a 404 S3 error, `/b/big` 4 KiB, `/b/slow` after 5 s, else `ok`.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, tx: mpsc::UnboundedSender<Seen>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            // Not HTTP (a TLS ClientHello): answered as an HTTP server would, then closed.
            if !buf[0].is_ascii_uppercase() {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        buf.drain(..head_end + 4);
        while buf.len() < length {
            let mut chunk = [0u8; 65536];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let _ = tx.send(Seen {
            line,
            headers,
            body,
        });
        let (status, answer): (&str, Vec<u8>) = if path.starts_with("/b/error") {
            (
                "404 Not Found",
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>".to_vec(),
            )
        } else if path.starts_with("/b/big") {
            ("200 OK", vec![b'x'; 4096])
        } else {
            if path.starts_with("/b/slow") {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            ("200 OK", b"ok".to_vec())
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nx-test: yes\r\n\r\n",
            answer.len()
        );
        if s.write_all(reply.as_bytes()).await.is_err() || s.write_all(&answer).await.is_err() {
            return;
        }
    }
}

fn client(url: &str, trust: Option<&Trust>) -> S3Client {
    S3Client::new(url, trust, "AK", "SK", "us-east-1").expect("client")
}

fn put(key: &str, body: &'static [u8]) -> S3Request {
    S3Request::new(Method::PUT, "b")
        .with_key(key)
        .with_header("x-amz-meta-colour", "blue")
        .with_header("Content-Type", "text/plain")
        .with_body(Bytes::from_static(body))
}

#[tokio::test]
async fn a_pinned_fingerprint_connects_and_the_request_is_signed() {
    let mut local = Local::start(true).await;
    let pin = Trust::Fingerprint(local.fingerprint);
    let c = client(&local.url("https", "127.0.0.1"), Some(&pin));
    let r = c.send(put("dir/a b+ü", b"hello")).await.expect("send");
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"ok");
    assert_eq!(r.header("x-test"), Some("yes"));
    let seen = local.next().await;
    assert_eq!(seen.line, "PUT /b/dir/a%20b%2B%C3%BC HTTP/1.1");
    assert_eq!(seen.body, b"hello");
    let auth = seen.header("authorization").expect("authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/")
            && auth.contains("/us-east-1/s3/aws4_request"),
        "{auth}"
    );
    assert!(
        auth.contains(
            "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-colour"
        ),
        "{auth}"
    );
    assert_eq!(seen.header("x-amz-meta-colour"), Some("blue"));
    assert_eq!(seen.header("content-type"), Some("text/plain"));
    assert_eq!(
        seen.header("x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    assert_eq!(seen.header("content-length"), Some("5"));
    assert_eq!(
        seen.header("host"),
        Some(&*format!("127.0.0.1:{}", local.addr.port()))
    );
    assert!(seen.header("x-amz-date").is_some());

    // A second request on the pooled connection; a clone shares the pool.
    let r = c
        .clone()
        .send(S3Request::new(Method::GET, "b").with_query("list-type", "2"))
        .await
        .expect("again");
    assert_eq!(r.status, 200);
    assert_eq!(local.next().await.line, "GET /b?list-type=2 HTTP/1.1");
    assert_eq!(
        local.accepted.load(Ordering::SeqCst),
        1,
        "one pooled connection"
    );
}

#[tokio::test]
async fn a_wrong_fingerprint_is_a_tls_failure() {
    let local = Local::start(true).await;
    let mut wrong = local.fingerprint;
    wrong[0] ^= 1;
    let c = client(
        &local.url("https", "127.0.0.1"),
        Some(&Trust::Fingerprint(wrong)),
    );
    let e = c.send(put("k", b"x")).await.expect_err("refused");
    assert!(e.is_tls_failure(), "{e:?}");
    assert!(!e.is_transient(), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("fingerprint") && text.contains(&hex::encode(wrong)),
        "{text}"
    );
}

#[tokio::test]
async fn a_ca_as_pem_text_is_trusted_and_another_ca_is_refused() {
    let mut local = Local::start(true).await;
    let ca = Trust::CaPem(local.pem.clone());
    for host in ["localhost", "127.0.0.1"] {
        let c = client(&local.url("https", host), Some(&ca));
        let r = c.send(put("k", b"x")).await.expect(host);
        assert_eq!(r.status, 200, "{host}");
        local.next().await;
    }
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let c = client(
        &local.url("https", "localhost"),
        Some(&Trust::CaPem(other.cert.pem())),
    );
    let e = c.send(put("k", b"x")).await.expect_err("refused");
    assert!(e.is_tls_failure() && !e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_tls_failure() {
    let plain = Local::start(false).await;
    let pin = Trust::Fingerprint(plain.fingerprint);
    let c = client(&plain.url("https", "127.0.0.1"), Some(&pin));
    let e = c.send(put("k", b"x")).await.expect_err("refused");
    assert!(e.is_tls_failure() && !e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let c = client(&format!("http://127.0.0.1:{port}"), None);
    let e = c.send(put("k", b"x")).await.expect_err("refused");
    assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    assert!(e.is_transient() && !e.is_tls_failure(), "{e:?}");

    let mut local = Local::start(false).await;
    let c = client(&local.url("http", "127.0.0.1"), None)
        .with_timeouts(Duration::from_secs(2), Duration::from_millis(300));
    let e = c
        .send(S3Request::new(Method::GET, "b").with_key("slow"))
        .await
        .expect_err("too slow");
    assert!(
        matches!(e, ClientError::Timeout { what: "answer", .. }) && e.is_transient(),
        "{e:?}"
    );
    local.next().await;
}

#[tokio::test]
async fn plain_http_signs_the_body_hash() {
    let mut local = Local::start(false).await;
    let c = client(&local.url("http", "127.0.0.1"), None);
    let r = c.send(put("k", b"hello")).await.expect("send");
    assert_eq!(r.status, 200);
    let seen = local.next().await;
    assert_eq!(
        seen.header("x-amz-content-sha256"),
        Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
}

#[tokio::test]
async fn errors_and_limits_of_the_answer() {
    let mut local = Local::start(false).await;
    let c = client(&local.url("http", "127.0.0.1"), None);
    let r = c
        .send(S3Request::new(Method::GET, "b").with_key("error"))
        .await
        .expect("an answer");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("NoSuchKey"));
    local.next().await;

    let big = S3Request::new(Method::GET, "b").with_key("big");
    assert_eq!(c.send(big.clone()).await.expect("4 KiB").body.len(), 4096);
    local.next().await;
    let e = c
        .clone()
        .with_body_limit(1024)
        .send(big)
        .await
        .expect_err("over the limit");
    assert!(
        matches!(e, ClientError::BodyTooLarge { limit: 1024, .. }) && !e.is_transient(),
        "{e:?}"
    );
    local.next().await;

    let e = c
        .send(put("k", b"x").with_header("X-Amz-Date", "20000101T000000Z"))
        .await
        .expect_err("reserved");
    assert!(matches!(e, ClientError::Request { .. }), "{e:?}");
}

fn stream_of(
    parts: Vec<&'static [u8]>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
}

#[tokio::test]
async fn a_streamed_body_goes_with_its_declared_length() {
    let mut local = Local::start(true).await;
    let pin = Trust::Fingerprint(local.fingerprint);
    let c = client(&local.url("https", "127.0.0.1"), Some(&pin));
    let req = S3Request::new(Method::PUT, "b").with_key("streamed");
    let r = c
        .send_stream(req.clone(), 11, stream_of(vec![b"hello", b" ", b"world"]))
        .await
        .expect("streamed");
    assert_eq!(r.status, 200);
    let seen = local.next().await;
    assert_eq!(seen.body, b"hello world");
    assert_eq!(seen.header("content-length"), Some("11"));
    assert_eq!(seen.header("transfer-encoding"), None);
    assert_eq!(
        seen.header("x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );

    let e = c
        .send_stream(req.clone(), 20, stream_of(vec![b"hello"]))
        .await
        .expect_err("short");
    assert!(
        matches!(e, ClientError::Body { .. }) && !e.is_transient(),
        "{e:?}"
    );
    assert!(e.to_string().contains("15 bytes short"), "{e}");
    let e = c
        .send_stream(req.clone(), 2, stream_of(vec![b"hello"]))
        .await
        .expect_err("long");
    assert!(matches!(e, ClientError::Body { .. }), "{e:?}");
    let e = c
        .send_stream(req.with_body("x"), 1, stream_of(vec![b"x"]))
        .await
        .expect_err("two bodies");
    assert!(matches!(e, ClientError::Request { .. }), "{e:?}");
}
