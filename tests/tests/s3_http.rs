//! HTTP-level behaviour checked with raw sockets: virtual-host-style addressing, a body
//! cut short, and batch limits.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use stele_tests::{Server, error_code, runtime, start_default};

/// Sends `head` (request line and headers, without the blank line) and `body` to the
/// server at `addr`; `cut` stops after that many body bytes and half-closes. Returns the
/// response text (empty if the server closed without one).
fn send(addr: &str, head: &str, body: &[u8], cut: Option<usize>) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(s, "{head}\r\n\r\n").expect("head");
    let n = cut.unwrap_or(body.len());
    s.write_all(&body[..n]).expect("body");
    if cut.is_some() {
        s.shutdown(Shutdown::Write).expect("half-close");
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    (host.to_owned(), format!("/{path}"))
}

#[test]
fn virtual_host_style_with_a_domain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--domain",
            "s3.stele.test",
        ],
        dir.path(),
    );
    let port = server.s3_url.rsplit(':').next().expect("port").to_owned();
    let url = runtime().block_on(async {
        let c = server.client();
        c.create_bucket()
            .bucket("vhost")
            .send()
            .await
            .expect("create");
        c.put_object()
            .bucket("vhost")
            .key("dir/obj")
            .body(ByteStream::from_static(b"virtual"))
            .send()
            .await
            .expect("put");
        c.put_object()
            .bucket("vhost")
            .key("root-obj")
            .body(ByteStream::from_static(b"at the root"))
            .send()
            .await
            .expect("put");
        // A client that addresses the bucket by host name.
        let conf = c
            .config()
            .to_builder()
            .endpoint_url(format!("http://s3.stele.test:{port}"))
            .force_path_style(false)
            .build();
        let vc = aws_sdk_s3::Client::from_conf(conf);
        let presign = || PresigningConfig::expires_in(Duration::from_secs(60)).expect("config");
        let nested = vc
            .get_object()
            .bucket("vhost")
            .key("dir/obj")
            .presigned(presign())
            .await
            .expect("presign")
            .uri()
            .to_owned();
        // A key at the bucket's root, with a query (`/root-obj?versionId=null`): an
        // object request, never taken for a bucket sub-resource.
        let root = vc
            .get_object()
            .bucket("vhost")
            .key("root-obj")
            .version_id("null")
            .presigned(presign())
            .await
            .expect("presign")
            .uri()
            .to_owned();
        (nested, root)
    });
    for (url, want_path, body) in [
        (&url.0, "/dir/obj?", "virtual"),
        (&url.1, "/root-obj?", "at the root"),
    ] {
        let (host, path) = split_url(url);
        assert_eq!(host, format!("vhost.s3.stele.test:{port}"), "{url}");
        assert!(path.starts_with(want_path), "{path}");
        // No DNS here: connect to the server and name the virtual host in the Host header.
        let resp = send(
            &format!("127.0.0.1:{port}"),
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close"),
            b"",
            None,
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.ends_with(body), "{resp}");
    }
}

#[test]
fn a_body_shorter_than_its_content_length_stores_nothing() {
    let (_dir, server) = start_default();
    let c = server.client();
    let url = runtime().block_on(async {
        c.create_bucket()
            .bucket("short")
            .send()
            .await
            .expect("create");
        c.put_object()
            .bucket("short")
            .key("cut")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).expect("config"))
            .await
            .expect("presign")
            .uri()
            .to_owned()
    });
    let (host, path) = split_url(&url);
    let body = vec![9u8; 1_000_000];
    let resp = send(
        &host,
        &format!(
            "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}",
            body.len()
        ),
        &body,
        Some(400_000),
    );
    assert!(
        !resp.starts_with("HTTP/1.1 200"),
        "a cut body was acknowledged: {resp}"
    );
    runtime().block_on(async {
        let e = c
            .head_object()
            .bucket("short")
            .key("cut")
            .send()
            .await
            .expect_err("nothing");
        assert_eq!(stele_tests::error_status(&e), 404);
    });
}

#[test]
fn delete_objects_takes_at_most_1000_keys() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("batch")
            .send()
            .await
            .expect("create");
        c.put_object()
            .bucket("batch")
            .key("k0")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
        let ids: Vec<ObjectIdentifier> = (0..1001)
            .map(|i| {
                ObjectIdentifier::builder()
                    .key(format!("k{i}"))
                    .build()
                    .expect("id")
            })
            .collect();
        let e = c
            .delete_objects()
            .bucket("batch")
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect_err("too many");
        assert_eq!(error_code(&e), "MalformedXML");
        c.head_object()
            .bucket("batch")
            .key("k0")
            .send()
            .await
            .expect("nothing deleted");
    });
}

/// A request signed with the server's credential (UNSIGNED-PAYLOAD) over a raw socket,
/// declaring `declared` bytes of body (default: all of `body`).
fn signed_with_length(
    server: &Server,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    declared: usize,
) -> String {
    let host = server
        .s3_url
        .strip_prefix("http://")
        .expect("http")
        .to_owned();
    let signer = stele_tools::sigv4::Signer {
        access_key: stele_tests::ACCESS_KEY.into(),
        secret_key: stele_tests::SECRET_KEY.into(),
        region: "us-east-1".into(),
    };
    let mut head = format!(
        "{method} {path}?{query} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\nConnection: close"
    );
    for (k, v) in signer.sign(method, &host, path, query) {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    send(&host, &head, body, None)
}

fn signed(server: &Server, method: &str, path: &str, query: &str, body: &[u8]) -> String {
    signed_with_length(server, method, path, query, body, body.len())
}

#[test]
fn malformed_xml_is_refused_and_changes_nothing() {
    let (_dir, server) = start_default();
    let c = server.client();
    let id = runtime().block_on(async {
        c.create_bucket()
            .bucket("xml")
            .send()
            .await
            .expect("create");
        c.create_multipart_upload()
            .bucket("xml")
            .key("k")
            .send()
            .await
            .expect("create upload")
            .upload_id()
            .expect("id")
            .to_owned()
    });
    let resp = signed(
        &server,
        "PUT",
        "/xml",
        "versioning=",
        b"<VersioningConfiguration><Status>Enab",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("<Code>MalformedXML</Code>"), "{resp}");
    let resp = signed(
        &server,
        "POST",
        "/xml/k",
        &format!("uploadId={id}"),
        b"<CompleteMultipartUpload><Part><PartNumber>1</Part>",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("<Code>MalformedXML</Code>"), "{resp}");
    runtime().block_on(async {
        let v = c
            .get_bucket_versioning()
            .bucket("xml")
            .send()
            .await
            .expect("versioning");
        assert_eq!(v.status(), None, "versioning unchanged");
        c.list_parts()
            .bucket("xml")
            .key("k")
            .upload_id(&id)
            .send()
            .await
            .expect("upload still open");
    });
}

#[test]
fn bytes_past_content_length_are_not_part_of_the_object() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("long")
            .send()
            .await
            .expect("create");
    });
    let body = b"helloGARBAGE THAT IS NOT A REQUEST\r\n\r\n";
    let resp = signed_with_length(&server, "PUT", "/long/k", "", body, 5);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    runtime().block_on(async {
        let got = c
            .get_object()
            .bucket("long")
            .key("k")
            .send()
            .await
            .expect("get");
        let b = got.body.collect().await.expect("body").into_bytes();
        assert_eq!(&b[..], b"hello");
    });
}

/// An aws-chunked PUT whose CRC32 arrives in a trailer, as current SDKs send over HTTPS.
fn put_with_trailer(server: &Server, path: &str, data: &[u8], crc32_b64: &str) -> String {
    put_chunked(server, path, data, crc32_b64, "aws-chunked")
}

/// [`put_with_trailer`] with the given `Content-Encoding` (which names aws-chunked).
fn put_chunked(
    server: &Server,
    path: &str,
    data: &[u8],
    crc32_b64: &str,
    encoding: &str,
) -> String {
    let host = server
        .s3_url
        .strip_prefix("http://")
        .expect("http")
        .to_owned();
    let signer = stele_tools::sigv4::Signer {
        access_key: stele_tests::ACCESS_KEY.into(),
        secret_key: stele_tests::SECRET_KEY.into(),
        region: "us-east-1".into(),
    };
    let mut body = format!("{:x}\r\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n0\r\nx-amz-checksum-crc32:{crc32_b64}\r\n\r\n").as_bytes());
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nContent-Encoding: {encoding}\r\nx-amz-decoded-content-length: {}\r\nx-amz-trailer: x-amz-checksum-crc32\r\nx-amz-sdk-checksum-algorithm: CRC32\r\nConnection: close",
        body.len(),
        data.len()
    );
    for (k, v) in signer.sign_payload("PUT", &host, path, "", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    send(&host, &head, &body, None)
}

#[test]
fn trailer_checksums_are_verified() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("trailer")
            .send()
            .await
            .expect("create");
    });
    // CRC32 of "123456789" is cbf43926.
    let good = put_with_trailer(&server, "/trailer/good", b"123456789", "y/Q5Jg==");
    assert!(good.starts_with("HTTP/1.1 200"), "{good}");
    let bad = put_with_trailer(&server, "/trailer/bad", b"123456789", "AAAAAA==");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert!(bad.contains("<Code>BadDigest</Code>"), "{bad}");
    runtime().block_on(async {
        let got = c
            .get_object()
            .bucket("trailer")
            .key("good")
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .expect("good stored");
        assert_eq!(got.checksum_crc32(), Some("y/Q5Jg=="));
        let b = got.body.collect().await.expect("body").into_bytes();
        assert_eq!(&b[..], b"123456789");
        let e = c
            .head_object()
            .bucket("trailer")
            .key("bad")
            .send()
            .await
            .expect_err("nothing");
        assert_eq!(stele_tests::error_status(&e), 404);
    });
}

/// `aws-chunked` in Content-Encoding is the request's framing: it is not stored; the
/// object's own encoding beside it is (either order).
#[test]
fn aws_chunked_is_not_the_objects_content_encoding() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("chunked")
            .send()
            .await
            .expect("create");
    });
    for (key, encoding, stored) in [
        ("a", "aws-chunked,gzip", Some("gzip")),
        ("b", "gzip,aws-chunked", Some("gzip")),
        ("c", "aws-chunked", None),
    ] {
        let r = put_chunked(
            &server,
            &format!("/chunked/{key}"),
            b"123456789",
            "y/Q5Jg==",
            encoding,
        );
        assert!(r.starts_with("HTTP/1.1 200"), "{encoding}: {r}");
        let head = runtime().block_on(async {
            c.head_object()
                .bucket("chunked")
                .key(key)
                .send()
                .await
                .expect("head")
        });
        assert_eq!(head.content_encoding(), stored, "{encoding}");
        assert_eq!(head.content_length(), Some(9));
    }
}
