//! The S3 API's first operations through aws-sdk-s3 against the real server binary:
//! buckets, PUT/GET/HEAD with ranges and Content-MD5, authentication failures.

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::{
    error_code, error_status, runtime as rt, s3_client_with, start_default as start,
};

#[test]
fn buckets_and_objects_round_trip() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("backups")
            .send()
            .await
            .expect("create");
        // In us-east-1 Amazon S3 answers its owner's CreateBucket of an existing bucket
        // with 200 and changes nothing; naming another region it is 409.
        c.create_bucket()
            .bucket("backups")
            .send()
            .await
            .expect("exists: 200 in us-east-1");
        let e = c
            .create_bucket()
            .bucket("backups")
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .expect_err("exists");
        assert_eq!(error_code(&e), "BucketAlreadyOwnedByYou");
        assert_eq!(error_status(&e), 409);
        let listed = c.list_buckets().send().await.expect("list");
        let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, ["backups"]);
        c.head_bucket()
            .bucket("backups")
            .send()
            .await
            .expect("head bucket");
        let e = c
            .head_bucket()
            .bucket("nope")
            .send()
            .await
            .expect_err("missing");
        assert_eq!(error_status(&e), 404);

        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let put = c
            .put_object()
            .bucket("backups")
            .key("daily/2026-11-22.tar")
            .content_type("application/x-tar")
            .metadata("origin", "host-1")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .expect("put");
        let etag = put.e_tag().expect("etag").to_owned();
        assert_eq!(etag.len(), 34, "quoted hex MD5: {etag}");

        let got = c
            .get_object()
            .bucket("backups")
            .key("daily/2026-11-22.tar")
            .send()
            .await
            .expect("get");
        assert_eq!(got.e_tag(), Some(etag.as_str()));
        assert_eq!(got.content_type(), Some("application/x-tar"));
        assert_eq!(got.content_length(), Some(body.len() as i64));
        assert_eq!(
            got.metadata()
                .and_then(|m| m.get("origin"))
                .map(String::as_str),
            Some("host-1")
        );
        let bytes = got.body.collect().await.expect("body").into_bytes();
        assert!(bytes == body, "bytes differ");

        let ranged = c
            .get_object()
            .bucket("backups")
            .key("daily/2026-11-22.tar")
            .range("bytes=1048570-1048580")
            .send()
            .await
            .expect("range");
        assert_eq!(
            ranged.content_range(),
            Some("bytes 1048570-1048580/3000000")
        );
        let bytes = ranged.body.collect().await.expect("body").into_bytes();
        assert_eq!(&bytes[..], &body[1_048_570..=1_048_580]);

        let e = c
            .get_object()
            .bucket("backups")
            .key("daily/2026-11-22.tar")
            .range("bytes=3000000-")
            .send()
            .await
            .expect_err("unsatisfiable");
        assert_eq!(error_code(&e), "InvalidRange");
        assert_eq!(error_status(&e), 416);

        let head = c
            .head_object()
            .bucket("backups")
            .key("daily/2026-11-22.tar")
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_length(), Some(body.len() as i64));

        let e = c
            .get_object()
            .bucket("backups")
            .key("missing")
            .send()
            .await
            .expect_err("404");
        assert_eq!(error_code(&e), "NoSuchKey");
        assert_eq!(error_status(&e), 404);
        let e = c
            .get_object()
            .bucket("nobucket")
            .key("k")
            .send()
            .await
            .expect_err("404");
        assert_eq!(error_code(&e), "NoSuchBucket");
    });
}

#[test]
fn bad_input_is_refused_and_stores_nothing() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("bkt1")
            .send()
            .await
            .expect("create");
        let e = c
            .create_bucket()
            .bucket("Bad_Name")
            .send()
            .await
            .expect_err("invalid");
        assert_eq!(error_code(&e), "InvalidBucketName");
        assert_eq!(error_status(&e), 400);

        let long_key = "k".repeat(1025);
        let e = c
            .put_object()
            .bucket("bkt1")
            .key(&long_key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("key too long");
        assert_eq!(error_code(&e), "KeyTooLongError");

        // MD5 of "hello" given for another body.
        let e = c
            .put_object()
            .bucket("bkt1")
            .key("k")
            .content_md5("XUFAKrxLKna5cZ2REBfFkg==")
            .body(ByteStream::from_static(b"not hello"))
            .send()
            .await
            .expect_err("bad digest");
        assert_eq!(error_code(&e), "BadDigest");
        assert_eq!(error_status(&e), 400);
        let e = c
            .head_object()
            .bucket("bkt1")
            .key("k")
            .send()
            .await
            .expect_err("nothing stored");
        assert_eq!(error_status(&e), 404);

        c.put_object()
            .bucket("bkt1")
            .key("k")
            .content_md5("XUFAKrxLKna5cZ2REBfFkg==")
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .expect("good digest");

        // Keys are names, never paths.
        for key in ["../escape", "a//b", "ünïcödé/\u{7}bell", "./."] {
            c.put_object()
                .bucket("bkt1")
                .key(key)
                .body(ByteStream::from(key.as_bytes().to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
            let got = c
                .get_object()
                .bucket("bkt1")
                .key(key)
                .send()
                .await
                .expect("get");
            let bytes = got.body.collect().await.expect("body").into_bytes();
            assert_eq!(&bytes[..], key.as_bytes());
        }
    });
}

#[test]
fn wrong_credentials_are_refused() {
    let (_dir, server) = start();
    rt().block_on(async {
        let unknown = s3_client_with(&server.s3_url, "NOSUCHACCESSKEY00000", "whatever-secret");
        let e = unknown
            .list_buckets()
            .send()
            .await
            .expect_err("unknown key");
        assert_eq!(error_code(&e), "InvalidAccessKeyId");
        assert_eq!(error_status(&e), 403);

        let wrong = s3_client_with(&server.s3_url, stele_tests::ACCESS_KEY, "wrong-secret");
        let e = wrong
            .list_buckets()
            .send()
            .await
            .expect_err("bad signature");
        assert_eq!(error_code(&e), "SignatureDoesNotMatch");
        assert_eq!(error_status(&e), 403);
        let e = wrong
            .create_bucket()
            .bucket("sneaky")
            .send()
            .await
            .expect_err("refused");
        assert_eq!(error_status(&e), 403);
        // Nothing was created by the refused request.
        let ok = server.client().list_buckets().send().await.expect("list");
        assert!(ok.buckets().is_empty());
    });
}

#[test]
fn generated_credential_is_printed_once_and_kept() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = || {
        let mut child = Command::new(stele_tests::workspace_bin("stele-server"))
            .args(["--data", data.to_str().expect("path")])
            .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
            .env_remove("STELE_ACCESS_KEY")
            .env_remove("STELE_SECRET_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut out = Vec::new();
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            let line = line.expect("line");
            let ready = line.starts_with("stele-server ready");
            out.push(line);
            if ready {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        out
    };
    let first = run();
    let created: Vec<_> = first
        .iter()
        .filter(|l| l.contains("first S3 credential"))
        .collect();
    assert_eq!(created.len(), 1, "{first:?}");
    let second = run();
    assert!(
        !second.iter().any(|l| l.contains("first S3 credential")),
        "printed again: {second:?}"
    );
}

#[test]
fn checksums_are_verified_stored_and_returned() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("sums")
            .send()
            .await
            .expect("create");
        // SHA-256 of "hello", base64.
        let sha = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
        c.put_object()
            .bucket("sums")
            .key("h")
            .checksum_sha256(sha)
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .expect("matching checksum");
        let head = c
            .head_object()
            .bucket("sums")
            .key("h")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("head");
        assert_eq!(head.checksum_sha256(), Some(sha));
        let plain = c
            .head_object()
            .bucket("sums")
            .key("h")
            .send()
            .await
            .expect("head");
        assert_eq!(
            plain.checksum_sha256(),
            None,
            "only with x-amz-checksum-mode"
        );

        let e = c
            .put_object()
            .bucket("sums")
            .key("bad")
            .checksum_sha256(sha)
            .body(ByteStream::from_static(b"jello"))
            .send()
            .await
            .expect_err("mismatch");
        assert_eq!(error_code(&e), "BadDigest");
        assert_eq!(error_status(&e), 400);
        let e = c
            .head_object()
            .bucket("sums")
            .key("bad")
            .send()
            .await
            .expect_err("nothing");
        assert_eq!(error_status(&e), 404);

        // The SDK computes the checksum itself (header or trailer): each algorithm round-trips.
        for (algo, key) in [
            (ChecksumAlgorithm::Crc32, "crc32"),
            (ChecksumAlgorithm::Crc32C, "crc32c"),
            (ChecksumAlgorithm::Sha1, "sha1"),
            (ChecksumAlgorithm::Crc64Nvme, "crc64"),
        ] {
            c.put_object()
                .bucket("sums")
                .key(key)
                .checksum_algorithm(algo.clone())
                .body(ByteStream::from(vec![7u8; 300_000]))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key}: {e:?}"));
            let got = c
                .get_object()
                .bucket("sums")
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .expect("get");
            let stored = match algo {
                ChecksumAlgorithm::Crc32 => got.checksum_crc32(),
                ChecksumAlgorithm::Crc32C => got.checksum_crc32_c(),
                ChecksumAlgorithm::Sha1 => got.checksum_sha1(),
                _ => got.checksum_crc64_nvme(),
            };
            assert!(stored.is_some(), "{key}: checksum not stored");
            // The SDK validates the returned checksum against the body it reads.
            got.body.collect().await.expect("body validates");
        }
    });
}

/// Raw HTTP: status line, headers and body of one request.
fn raw(url: &str, method: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let host = url.strip_prefix("http://").expect("http url");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn every_response_has_a_request_id_and_errors_name_it() {
    let (_dir, server) = start();
    let (head, body) = raw(&server.s3_url, "GET", "/some-bucket/some/key");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-request-id: "))
        .expect("x-amz-request-id header")
        .trim()
        .to_owned();
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(
        body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{body}"
    );
    assert!(
        body.contains("<Resource>/some-bucket/some/key</Resource>"),
        "{body}"
    );
    let (head2, _) = raw(&server.s3_url, "GET", "/");
    let id2 = head2
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-request-id: "))
        .expect("header on every response");
    assert_ne!(id, id2.trim(), "ids are unique");
    rt().block_on(async {
        let out = server.client().list_buckets().send().await.expect("list");
        use aws_sdk_s3::operation::RequestId;
        assert!(out.request_id().is_some_and(|r| !r.is_empty()));
    });
}

#[test]
fn skewed_clocks_and_expired_presigned_urls_are_refused() {
    use aws_sdk_s3::presigning::PresigningConfig;
    use std::time::{Duration, SystemTime};
    let (_dir, server) = start();
    rt().block_on(async {
        let c = server.client();
        c.create_bucket()
            .bucket("skew")
            .send()
            .await
            .expect("create");
        // A client whose clock is 20 minutes behind signs requests the server must refuse.
        // (No retries: the SDK would otherwise correct its clock from the refusal.)
        let behind = c
            .config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .time_source(aws_smithy_async::time::StaticTimeSource::new(
                SystemTime::now() - Duration::from_secs(20 * 60),
            ))
            .build();
        let skewed = aws_sdk_s3::Client::from_conf(behind.clone());
        let e = skewed.list_buckets().send().await.expect_err("skewed");
        assert_eq!(error_status(&e), 403);
        assert_eq!(error_code(&e), "RequestTimeTooSkewed");
        // A fresh client: the first has learned the server's clock from the refusal.
        let skewed = aws_sdk_s3::Client::from_conf(behind);
        let e = skewed
            .put_object()
            .bucket("skew")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("skewed put");
        assert_eq!(error_status(&e), 403);
        c.head_object()
            .bucket("skew")
            .key("k")
            .send()
            .await
            .expect_err("nothing stored");

        c.put_object()
            .bucket("skew")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
        let presigned = c
            .get_object()
            .bucket("skew")
            .key("k")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).expect("config"))
            .await
            .expect("presign");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let url = presigned.uri().to_owned();
        let rest = url.strip_prefix("http://").expect("http");
        let (host, path) = rest.split_once('/').expect("path");
        let (head, body) = tokio::task::spawn_blocking({
            let (host, path) = (host.to_owned(), format!("/{path}"));
            move || raw(&format!("http://{host}"), "GET", &path)
        })
        .await
        .expect("join");
        assert!(head.starts_with("HTTP/1.1 403"), "{head}\n{body}");
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    });
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    use aws_sdk_s3::presigning::PresigningConfig;
    use std::io::{Read, Write};
    use std::time::Duration;
    let (dir, server) = start();
    let c = server.client();
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let url = rt().block_on(async {
        c.create_bucket()
            .bucket("drain")
            .send()
            .await
            .expect("create");
        c.put_object()
            .bucket("drain")
            .key("late")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
            .await
            .expect("presign")
            .uri()
            .to_owned()
    });
    let rest = url.strip_prefix("http://").expect("http");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("headers");
    s.write_all(&body[..body.len() / 2]).expect("first half");
    s.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    // Ask the server to stop while the upload is half sent.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&body[body.len() / 2..]).expect("second half");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let status = server.wait_exit(Duration::from_secs(20));
    assert_eq!(status, Some(0), "clean exit after SIGTERM");

    // The acknowledged object is there after a restart.
    let data = dir.path().join("data");
    let again = stele_tests::Server::start(&["--data", data.to_str().expect("path")], dir.path());
    rt().block_on(async {
        let got = again
            .client()
            .get_object()
            .bucket("drain")
            .key("late")
            .send()
            .await
            .expect("get");
        let bytes = got.body.collect().await.expect("body").into_bytes();
        assert!(bytes[..] == body[..], "bytes differ");
    });
}
