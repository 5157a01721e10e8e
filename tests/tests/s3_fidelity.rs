//! Where Stele once differed from Amazon S3 and real clients tripped (issue "S3
//! fidelity"): listings, bucket paging, CreateBucket in us-east-1, conditional writes, 304
//! answers, delete markers on reads, GetObjectAttributes as the aws CLI sends it, ACLs.
//! Each through aws-sdk-s3, or a raw signed request where the SDK hides the wire.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use stele_tests::{Server, error_code, error_status, http_status, runtime as rt, start_default};

fn put(c: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    rt().block_on(async {
        c.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put")
            .e_tag()
            .expect("etag")
            .to_owned()
    })
}

fn bucket(c: &Client, name: &str) {
    rt().block_on(async {
        c.create_bucket().bucket(name).send().await.expect("bucket");
    });
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Starts an upload of `key` and uploads `body` as its part 1: the upload id and the part
/// list a Complete names.
async fn one_part_upload(
    c: &Client,
    bucket: &str,
    key: &str,
    body: &'static [u8],
) -> (String, CompletedMultipartUpload) {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_owned();
    let part = c
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .expect("part");
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().expect("etag"))
                .build(),
        )
        .build();
    (id, parts)
}

#[test]
fn listings_encode_keys_as_s3_does_and_page_buckets() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "lists");
    put(&c, "lists", "a b/c+d.txt", b"x");
    put(&c, "lists", "a b/e", b"x");
    // encoding-type=url: `/` stays, other reserved characters are encoded.
    let raw = server.s3_raw(
        "GET",
        "/lists",
        "delimiter=%2F&encoding-type=url&list-type=2",
        &[],
        b"",
    );
    assert_eq!(http_status(&raw), 200, "{raw}");
    assert!(raw.contains("<Prefix>a%20b/</Prefix>"), "{raw}");
    assert!(raw.contains("<Delimiter>/</Delimiter>"), "{raw}");
    let raw = server.s3_raw("GET", "/lists", "encoding-type=url&list-type=2", &[], b"");
    assert!(raw.contains("<Key>a%20b/c%2Bd.txt</Key>"), "{raw}");
    assert!(!raw.contains("%2F"), "{raw}");
    // An empty delimiter is no delimiter, and is not echoed.
    for query in [
        "delimiter=&list-type=2",
        "delimiter=",
        "delimiter=&versions=",
    ] {
        let raw = server.s3_raw("GET", "/lists", query, &[], b"");
        assert_eq!(http_status(&raw), 200, "{raw}");
        assert!(!raw.contains("<Delimiter>"), "{query}: {raw}");
    }
    // max-keys=0: no keys, not truncated.
    for query in [
        "list-type=2&max-keys=0",
        "max-keys=0",
        "max-keys=0&versions=",
    ] {
        let raw = server.s3_raw("GET", "/lists", query, &[], b"");
        assert_eq!(http_status(&raw), 200, "{raw}");
        assert!(
            raw.contains("<IsTruncated>false</IsTruncated>"),
            "{query}: {raw}"
        );
        assert!(!raw.contains("<Key>"), "{query}: {raw}");
    }
    // ListBuckets pages with max-buckets and continuation-token, filters by prefix.
    for b in ["page-a", "page-b", "page-c"] {
        bucket(&c, b);
    }
    rt().block_on(async {
        let first = c
            .list_buckets()
            .max_buckets(2)
            .prefix("page-")
            .send()
            .await
            .expect("page 1");
        let names: Vec<_> = first.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, ["page-a", "page-b"]);
        let token = first.continuation_token().expect("more").to_owned();
        let second = c
            .list_buckets()
            .max_buckets(2)
            .prefix("page-")
            .continuation_token(token)
            .send()
            .await
            .expect("page 2");
        let names: Vec<_> = second.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, ["page-c"]);
        assert!(second.continuation_token().is_none());
        let all = c.list_buckets().send().await.expect("all");
        assert_eq!(all.buckets().len(), 4);
        let e = c
            .list_buckets()
            .max_buckets(0)
            .send()
            .await
            .expect_err("0 buckets per page");
        assert_eq!(error_code(&e), "InvalidArgument");
    });
}

#[test]
fn conditional_writes_hold_on_put_and_complete() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "cond");
    rt().block_on(async {
        // If-Match on a key with no object: 404 NoSuchKey.
        let e = c
            .put_object()
            .bucket("cond")
            .key("k")
            .if_match("\"0123\"")
            .body(ByteStream::from_static(b"one"))
            .send()
            .await
            .expect_err("nothing to match");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (404, "NoSuchKey")
        );
    });
    let first = put(&c, "cond", "k", b"one");
    rt().block_on(async {
        let e = c
            .put_object()
            .bucket("cond")
            .key("k")
            .if_match("\"00000000000000000000000000000000\"")
            .body(ByteStream::from_static(b"two"))
            .send()
            .await
            .expect_err("etag differs");
        assert_eq!(error_status(&e), 412, "{e:?}");
        c.put_object()
            .bucket("cond")
            .key("k")
            .if_match(&first)
            .body(ByteStream::from_static(b"two"))
            .send()
            .await
            .expect("etag matches");
        // Complete with If-None-Match: * onto an existing key: 412, key unchanged, the
        // upload still open; and with If-Match of the current ETag it completes.
        let (id, parts) = one_part_upload(&c, "cond", "k", b"three").await;
        let e = c
            .complete_multipart_upload()
            .bucket("cond")
            .key("k")
            .upload_id(&id)
            .if_none_match("*")
            .multipart_upload(parts.clone())
            .send()
            .await
            .expect_err("key exists");
        assert_eq!(error_status(&e), 412, "{e:?}");
        let body = c
            .get_object()
            .bucket("cond")
            .key("k")
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&body[..], b"two");
        let e = c
            .complete_multipart_upload()
            .bucket("cond")
            .key("k")
            .upload_id(&id)
            .if_match("\"00000000000000000000000000000000\"")
            .multipart_upload(parts.clone())
            .send()
            .await
            .expect_err("etag differs");
        assert_eq!(error_status(&e), 412, "{e:?}");
        let current = c
            .head_object()
            .bucket("cond")
            .key("k")
            .send()
            .await
            .expect("head");
        c.complete_multipart_upload()
            .bucket("cond")
            .key("k")
            .upload_id(&id)
            .if_match(current.e_tag().expect("etag"))
            .multipart_upload(parts)
            .send()
            .await
            .expect("etag matches");
    });
}

#[test]
fn a_not_modified_answer_carries_the_etag() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "notmod");
    let etag = put(&c, "notmod", "k", b"body");
    for method in ["GET", "HEAD"] {
        let raw = server.s3_raw(method, "/notmod/k", "", &[("if-none-match", &etag)], b"");
        assert_eq!(http_status(&raw), 304, "{raw}");
        assert_eq!(header(&raw, "etag"), Some(etag.as_str()), "{raw}");
        assert!(header(&raw, "last-modified").is_some(), "{raw}");
    }
}

#[test]
fn delete_markers_show_on_reads() {
    let (_dir, server) = start_default();
    let c = server.client();
    // An Object Lock bucket (versioned), so that retention and legal hold apply.
    rt().block_on(async {
        c.create_bucket()
            .bucket("markers")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect("bucket");
    });
    put(&c, "markers", "k", b"x");
    let marker = rt().block_on(async {
        c.delete_object()
            .bucket("markers")
            .key("k")
            .send()
            .await
            .expect("delete")
            .version_id()
            .expect("marker id")
            .to_owned()
    });
    // The current version is a marker: 404 NoSuchKey with x-amz-delete-marker.
    for method in ["GET", "HEAD"] {
        let raw = server.s3_raw(method, "/markers/k", "", &[], b"");
        assert_eq!(http_status(&raw), 404, "{raw}");
        assert_eq!(header(&raw, "x-amz-delete-marker"), Some("true"), "{raw}");
        assert_eq!(
            header(&raw, "x-amz-version-id"),
            Some(marker.as_str()),
            "{raw}"
        );
    }
    // Naming the marker's version: 405 with the marker flag and its Last-Modified, for a
    // read and for every operation on the version.
    let q = format!("versionId={marker}");
    for (method, query) in [
        ("GET", q.clone()),
        ("HEAD", q.clone()),
        ("GET", format!("tagging=&{q}")),
        ("GET", format!("retention=&{q}")),
        ("GET", format!("legal-hold=&{q}")),
        ("GET", format!("attributes=&{q}")),
    ] {
        let headers: &[(&str, &str)] = if query.starts_with("attributes") {
            &[("x-amz-object-attributes", "ETag")]
        } else {
            &[]
        };
        let raw = server.s3_raw(method, "/markers/k", &query, headers, b"");
        assert_eq!(http_status(&raw), 405, "{method} ?{query}: {raw}");
        assert_eq!(header(&raw, "x-amz-delete-marker"), Some("true"), "{raw}");
        assert!(header(&raw, "last-modified").is_some(), "{raw}");
    }
}

#[test]
fn object_attributes_as_one_comma_separated_header() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "attrs");
    put(&c, "attrs", "k", b"12345");
    let raw = server.s3_raw(
        "GET",
        "/attrs/k",
        "attributes=",
        &[("x-amz-object-attributes", "ObjectSize,ETag,StorageClass")],
        b"",
    );
    assert_eq!(http_status(&raw), 200, "{raw}");
    assert!(raw.contains("<ObjectSize>5</ObjectSize>"), "{raw}");
    assert!(raw.contains("<ETag>"), "{raw}");
    assert!(
        raw.contains("<StorageClass>STANDARD</StorageClass>"),
        "{raw}"
    );
}

fn acl_refused(raw: &str) {
    assert_eq!(http_status(raw), 400, "{raw}");
    assert!(
        raw.contains("<Code>AccessControlListNotSupported</Code>"),
        "{raw}"
    );
}

#[test]
fn acls_answer_the_owner_and_accept_only_private() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "acl");
    put(&c, "acl", "k", b"x");
    rt().block_on(async {
        let b = c
            .get_bucket_acl()
            .bucket("acl")
            .send()
            .await
            .expect("bucket acl");
        let o = c
            .get_object_acl()
            .bucket("acl")
            .key("k")
            .send()
            .await
            .expect("object acl");
        for grants in [b.grants(), o.grants()] {
            assert_eq!(grants.len(), 1);
            assert_eq!(
                grants[0].permission().map(|p| p.as_str()),
                Some("FULL_CONTROL")
            );
        }
        let e = c
            .get_object_acl()
            .bucket("acl")
            .key("nope")
            .send()
            .await
            .expect_err("no such key");
        assert_eq!(error_status(&e), 404);
        c.put_bucket_acl()
            .bucket("acl")
            .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
            .send()
            .await
            .expect("private is what is");
        c.put_object_acl()
            .bucket("acl")
            .key("k")
            .acl(aws_sdk_s3::types::ObjectCannedAcl::Private)
            .send()
            .await
            .expect("private is what is");
        c.put_object()
            .bucket("acl")
            .key("p")
            .acl(aws_sdk_s3::types::ObjectCannedAcl::Private)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("a private write");
    });
    // Anything wider is refused, and changes nothing.
    acl_refused(&server.s3_raw("PUT", "/acl", "acl=", &[("x-amz-acl", "public-read")], b""));
    acl_refused(&server.s3_raw(
        "PUT",
        "/acl/k",
        "acl=",
        &[("x-amz-acl", "public-read-write")],
        b"",
    ));
    acl_refused(&server.s3_raw(
        "PUT",
        "/acl/q",
        "",
        &[("x-amz-acl", "public-read")],
        b"body",
    ));
    acl_refused(&server.s3_raw(
        "PUT",
        "/acl/q",
        "",
        &[(
            "x-amz-grant-read",
            "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
        )],
        b"body",
    ));
    let raw = server.s3_raw("HEAD", "/acl/q", "", &[], b"");
    assert_eq!(
        http_status(&raw),
        404,
        "a refused write stores nothing: {raw}"
    );
}

#[test]
fn get_and_head_of_a_part_carry_the_parts_count() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "parts");
    let first = vec![7u8; 5 * 1024 * 1024];
    rt().block_on(async {
        let up = c
            .create_multipart_upload()
            .bucket("parts")
            .key("k")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id").to_owned();
        let mut done = Vec::new();
        for (n, body) in [(1, first.clone()), (2, b"tail".to_vec())] {
            let p = c
                .upload_part()
                .bucket("parts")
                .key("k")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(body))
                .send()
                .await
                .expect("part");
            done.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(p.e_tag().expect("etag"))
                    .build(),
            );
        }
        c.complete_multipart_upload()
            .bucket("parts")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .expect("complete");
    });
    for method in ["GET", "HEAD"] {
        let raw = server.s3_raw(method, "/parts/k", "partNumber=2", &[], b"");
        assert_eq!(http_status(&raw), 206, "{method}: {raw}");
        assert_eq!(
            header(&raw, "x-amz-mp-parts-count"),
            Some("2"),
            "{method}: {raw}"
        );
        assert_eq!(header(&raw, "content-length"), Some("4"), "{method}: {raw}");
        let range = format!(
            "bytes {}-{}/{}",
            first.len(),
            first.len() + 3,
            first.len() + 4
        );
        assert_eq!(
            header(&raw, "content-range"),
            Some(range.as_str()),
            "{method}: {raw}"
        );
    }
    let raw = server.s3_raw("HEAD", "/parts/k", "partNumber=3", &[], b"");
    assert_eq!(http_status(&raw), 416, "{raw}");
}

/// The stored HTTP headers S3 keeps with an object, checked on HEAD and GET.
async fn stored_headers(c: &Client, key: &str) -> [Option<String>; 5] {
    let h = c
        .head_object()
        .bucket("sysmeta")
        .key(key)
        .send()
        .await
        .expect("head");
    [
        h.content_encoding().map(str::to_owned),
        h.cache_control().map(str::to_owned),
        h.content_disposition().map(str::to_owned),
        h.content_language().map(str::to_owned),
        h.expires_string().map(str::to_owned),
    ]
}

#[test]
fn system_metadata_round_trips_on_put_multipart_and_copy() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "sysmeta");
    let expires = "Thu, 01 Dec 2033 16:00:00 GMT";
    let expected = [
        Some("gzip".to_owned()),
        Some("max-age=60".to_owned()),
        Some("attachment; filename=\"b.tar\"".to_owned()),
        Some("en".to_owned()),
        Some(expires.to_owned()),
    ];
    rt().block_on(async {
        let when = aws_sdk_s3::primitives::DateTime::from_str(
            expires,
            aws_sdk_s3::primitives::DateTimeFormat::HttpDate,
        )
        .expect("date");
        c.put_object()
            .bucket("sysmeta")
            .key("put")
            .content_encoding("gzip")
            .cache_control("max-age=60")
            .content_disposition("attachment; filename=\"b.tar\"")
            .content_language("en")
            .expires(when)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
        assert_eq!(stored_headers(&c, "put").await, expected);
        // GET sends them too; its response-* overrides still win.
        let got = c
            .get_object()
            .bucket("sysmeta")
            .key("put")
            .response_cache_control("no-store")
            .send()
            .await
            .expect("get");
        assert_eq!(got.cache_control(), Some("no-store"));
        assert_eq!(got.content_encoding(), Some("gzip"));
        assert_eq!(got.content_language(), Some("en"));
        // Given at CreateMultipartUpload, applied at Complete.
        let up = c
            .create_multipart_upload()
            .bucket("sysmeta")
            .key("mp")
            .content_encoding("gzip")
            .cache_control("max-age=60")
            .content_disposition("attachment; filename=\"b.tar\"")
            .content_language("en")
            .expires(when)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .send()
            .await
            .expect("create");
        assert_eq!(
            up.checksum_algorithm(),
            Some(&aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        );
        let id = up.upload_id().expect("id").to_owned();
        let part = c
            .upload_part()
            .bucket("sysmeta")
            .key("mp")
            .upload_id(&id)
            .part_number(1)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .body(ByteStream::from_static(b"part"))
            .send()
            .await
            .expect("part");
        let listed = c
            .list_parts()
            .bucket("sysmeta")
            .key("mp")
            .upload_id(&id)
            .send()
            .await
            .expect("list parts");
        assert_eq!(
            listed.checksum_algorithm(),
            Some(&aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        );
        c.complete_multipart_upload()
            .bucket("sysmeta")
            .key("mp")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.e_tag().expect("etag"))
                            .checksum_crc32(part.checksum_crc32().expect("crc"))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        assert_eq!(stored_headers(&c, "mp").await, expected);
        // CopyObject keeps them (COPY) or takes the request's (REPLACE).
        c.copy_object()
            .bucket("sysmeta")
            .key("copied")
            .copy_source("sysmeta/put")
            .send()
            .await
            .expect("copy");
        assert_eq!(stored_headers(&c, "copied").await, expected);
        c.copy_object()
            .bucket("sysmeta")
            .key("replaced")
            .copy_source("sysmeta/put")
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .cache_control("no-cache")
            .send()
            .await
            .expect("copy");
        assert_eq!(
            stored_headers(&c, "replaced").await,
            [None, Some("no-cache".to_owned()), None, None, None]
        );
    });
}

/// Sends `head` (request line and headers, without the blank line) and `body` as they
/// are: no Content-Length is added.
fn send_raw(server: &Server, head: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let host = server.s3_url.strip_prefix("http://").expect("http");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    write!(s, "{head}\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("head");
    s.write_all(body).expect("body");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn signed_head(server: &Server, method: &str, path: &str, query: &str) -> String {
    let host = server.s3_url.strip_prefix("http://").expect("http");
    let signer = stele_tools::sigv4::Signer {
        access_key: stele_tests::ACCESS_KEY.into(),
        secret_key: stele_tests::SECRET_KEY.into(),
        region: "us-east-1".into(),
    };
    let line = if query.is_empty() {
        format!("{method} {path} HTTP/1.1")
    } else {
        format!("{method} {path}?{query} HTTP/1.1")
    };
    let mut head = line;
    for (k, v) in signer.sign(method, host, path, query) {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    head
}

#[test]
fn digests_and_lengths_are_refused_as_s3_refuses_them() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "digests");
    // A checksum value that is no digest at all (ceph/s3-tests sends "bad"): Amazon S3
    // answers InvalidRequest (the s3-tests expectation of BadDigest is not S3's answer).
    for header in ["x-amz-checksum-sha256", "x-amz-checksum-crc64nvme"] {
        let raw = server.s3_raw("PUT", "/digests/k", "", &[(header, "bad")], b"body");
        assert_eq!(http_status(&raw), 400, "{raw}");
        assert!(raw.contains("<Code>InvalidRequest</Code>"), "{raw}");
        assert!(
            raw.contains(&format!("Value for {header} header is invalid")),
            "{raw}"
        );
    }
    // A digest of the right length that does not match: BadDigest.
    for (header, value) in [
        (
            "x-amz-checksum-sha256",
            "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=",
        ),
        ("x-amz-checksum-crc64nvme", "Qeh8oXvGiSo="),
    ] {
        let raw = server.s3_raw("PUT", "/digests/k", "", &[(header, value)], b"body");
        assert_eq!(http_status(&raw), 400, "{raw}");
        assert!(raw.contains("<Code>BadDigest</Code>"), "{raw}");
    }
    // An empty Content-MD5 is an invalid digest.
    let raw = server.s3_raw("PUT", "/digests/k", "", &[("content-md5", "")], b"body");
    assert_eq!(http_status(&raw), 400, "{raw}");
    assert!(raw.contains("<Code>InvalidDigest</Code>"), "{raw}");
    // Neither Content-Length nor a chunked body: 411 MissingContentLength.
    let head = signed_head(&server, "PUT", "/digests/k", "");
    let raw = send_raw(&server, &head, b"");
    assert_eq!(http_status(&raw), 411, "{raw}");
    assert!(raw.contains("<Code>MissingContentLength</Code>"), "{raw}");
    let raw = server.s3_raw("HEAD", "/digests/k", "", &[], b"");
    assert_eq!(http_status(&raw), 404, "nothing was stored: {raw}");
    // A plain HTTP chunked body without aws-chunked framing has no length to sign or
    // check: refused (Amazon S3 answers 501 for Transfer-Encoding: chunked on a PUT;
    // s3s, like MinIO, answers 411), and nothing is stored.
    let raw = send_raw(
        &server,
        &format!("{head}\r\nTransfer-Encoding: chunked"),
        b"4\r\nbody\r\n5\r\n-more\r\n0\r\n\r\n",
    );
    assert_eq!(http_status(&raw), 411, "{raw}");
    let raw = server.s3_raw("HEAD", "/digests/k", "", &[], b"");
    assert_eq!(http_status(&raw), 404, "nothing was stored: {raw}");
}

#[test]
fn a_presigned_expiry_beyond_a_week_is_a_query_error() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "presign");
    put(&c, "presign", "k", b"x");
    let url = rt().block_on(async {
        c.get_object()
            .bucket("presign")
            .key("k")
            .presigned(
                PresigningConfig::expires_in(std::time::Duration::from_secs(3600)).expect("config"),
            )
            .await
            .expect("presign")
            .uri()
            .to_owned()
    });
    let path = url.strip_prefix(&server.s3_url).expect("same server");
    for expires in ["604801", "0", "soon"] {
        let bad = path.replace("X-Amz-Expires=3600", &format!("X-Amz-Expires={expires}"));
        let raw = send_raw(&server, &format!("GET {bad} HTTP/1.1"), b"");
        assert_eq!(http_status(&raw), 400, "{expires}: {raw}");
        assert!(
            raw.contains("<Code>AuthorizationQueryParametersError</Code>"),
            "{expires}: {raw}"
        );
    }
    let raw = send_raw(&server, &format!("GET {path} HTTP/1.1"), b"");
    assert_eq!(http_status(&raw), 200, "{raw}");
}

#[test]
fn upload_part_copy_refuses_a_range_past_the_source() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "partcopy");
    put(&c, "partcopy", "src", b"0123456789");
    rt().block_on(async {
        let up = c
            .create_multipart_upload()
            .bucket("partcopy")
            .key("dst")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id");
        let e = c
            .upload_part_copy()
            .bucket("partcopy")
            .key("dst")
            .upload_id(id)
            .part_number(1)
            .copy_source("partcopy/src")
            .copy_source_range("bytes=5-10")
            .send()
            .await
            .expect_err("past the end");
        assert_eq!(error_code(&e), "InvalidRange", "{e:?}");
        let ok = c
            .upload_part_copy()
            .bucket("partcopy")
            .key("dst")
            .upload_id(id)
            .part_number(1)
            .copy_source("partcopy/src")
            .copy_source_range("bytes=5-9")
            .send()
            .await
            .expect("within");
        assert!(ok.copy_part_result().and_then(|r| r.e_tag()).is_some());
    });
}

/// Two uploads of one part number at once: the one that finishes last is the part, and
/// a Complete naming its ETag returns its bytes.
#[test]
fn the_part_uploaded_last_is_the_part() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "racing");
    rt().block_on(async {
        let up = c
            .create_multipart_upload()
            .bucket("racing")
            .key("k")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id").to_owned();
        for round in 0..5u8 {
            let big = vec![round; 6 * 1024 * 1024];
            let small = vec![round.wrapping_add(100); 1024];
            let send = |body: Vec<u8>| {
                c.upload_part()
                    .bucket("racing")
                    .key("k")
                    .upload_id(&id)
                    .part_number(1)
                    .body(ByteStream::from(body))
                    .send()
            };
            let timed = |body: Vec<u8>, delay: u64| {
                let send = &send;
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    let r = send(body).await;
                    (r, std::time::Instant::now())
                }
            };
            // Even rounds start the big upload first, odd rounds the small one: the part
            // is the upload that finished last either way (not the first or last started).
            let (big_delay, small_delay) = if round % 2 == 0 { (0, 5) } else { (5, 0) };
            let ((a, a_done), (b, b_done)) = tokio::join!(
                timed(big.clone(), big_delay),
                timed(small.clone(), small_delay)
            );
            let (a, b) = (a.expect("big"), b.expect("small"));
            let last = if a_done > b_done { &a } else { &b };
            // The one that finished last is what the listing shows as part 1.
            let listed = c
                .list_parts()
                .bucket("racing")
                .key("k")
                .upload_id(&id)
                .send()
                .await
                .expect("list");
            assert_eq!(
                listed.parts()[0].e_tag(),
                last.e_tag(),
                "round {round}: the part is the upload that finished last"
            );
        }
        let listed = c
            .list_parts()
            .bucket("racing")
            .key("k")
            .upload_id(&id)
            .send()
            .await
            .expect("list");
        let part = &listed.parts()[0];
        let etag = part.e_tag().expect("etag").to_owned();
        let size = part.size().expect("size");
        c.complete_multipart_upload()
            .bucket("racing")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(&etag).build())
                    .build(),
            )
            .send()
            .await
            .expect("complete with the listed part");
        let got = c
            .get_object()
            .bucket("racing")
            .key("k")
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(got.len() as i64, size);
    });
}

/// A Complete sent again after it succeeded (its answer lost) gets the same answer;
/// naming other parts, or an upload that never was, is NoSuchUpload.
#[test]
fn a_retried_complete_gets_the_same_answer() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "retry");
    rt().block_on(async {
        let (id, named) = one_part_upload(&c, "retry", "k", b"payload").await;
        let parts = |etag: &str| {
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build()
        };
        let complete = |body: CompletedMultipartUpload| {
            c.complete_multipart_upload()
                .bucket("retry")
                .key("k")
                .upload_id(&id)
                .multipart_upload(body)
                .send()
        };
        let first = complete(named.clone()).await.expect("complete");
        let again = complete(named).await.expect("the same Complete again");
        assert_eq!(first.e_tag(), again.e_tag());
        assert_eq!(first.version_id(), again.version_id());
        let e = complete(parts("\"00000000000000000000000000000000\""))
            .await
            .expect_err("other parts");
        assert_eq!(error_code(&e), "NoSuchUpload");
        let versions = c
            .list_object_versions()
            .bucket("retry")
            .send()
            .await
            .expect("versions");
        assert_eq!(versions.versions().len(), 1, "one version, not two");
    });
}

/// User metadata with non-ASCII characters comes back as the bytes that were sent.
#[test]
fn non_ascii_user_metadata_comes_back_as_sent() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "unicode");
    let value = "Hello Worldé — ünïcödé ✓";
    let raw = server.s3_raw("PUT", "/unicode/k", "", &[("x-amz-meta-note", value)], b"x");
    assert_eq!(http_status(&raw), 200, "{raw}");
    for method in ["HEAD", "GET"] {
        let raw = server.s3_raw(method, "/unicode/k", "", &[], b"");
        assert_eq!(http_status(&raw), 200, "{raw}");
        assert_eq!(
            header(&raw, "x-amz-meta-note"),
            Some(value),
            "{method}: {raw}"
        );
    }
}

/// An unversioned bucket's answers carry no version id; a versioned one's do.
#[test]
fn unversioned_answers_name_no_version() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "plain");
    for (method, path) in [
        ("PUT", "/plain/k"),
        ("HEAD", "/plain/k"),
        ("GET", "/plain/k"),
    ] {
        let raw = server.s3_raw(method, path, "", &[], b"body");
        assert!(http_status(&raw) < 300, "{raw}");
        assert_eq!(header(&raw, "x-amz-version-id"), None, "{method}: {raw}");
    }
    for query in ["versionId=null", ""] {
        let raw = server.s3_raw("PUT", "/plain/k", "", &[], b"body");
        assert_eq!(http_status(&raw), 200, "{raw}");
        let raw = server.s3_raw("DELETE", "/plain/k", query, &[], b"");
        assert_eq!(http_status(&raw), 204, "{raw}");
        assert_eq!(
            header(&raw, "x-amz-version-id"),
            None,
            "DELETE ?{query}: {raw}"
        );
    }
    rt().block_on(async {
        c.put_bucket_versioning()
            .bucket("plain")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    });
    let raw = server.s3_raw("PUT", "/plain/v", "", &[], b"body");
    assert!(header(&raw, "x-amz-version-id").is_some(), "{raw}");
    let raw = server.s3_raw("DELETE", "/plain/v", "", &[], b"");
    assert!(header(&raw, "x-amz-version-id").is_some(), "{raw}");
    assert_eq!(header(&raw, "x-amz-delete-marker"), Some("true"), "{raw}");
}

/// The kinds above, on the other operations that take them: If-Match on a Complete with
/// no object, UploadPart's digests and length, ACL headers on CreateBucket,
/// CreateMultipartUpload and CopyObject, HEAD's response-* overrides, no parts count for
/// an object uploaded whole, and CreateBucket asking for Object Lock on a bucket without.
#[test]
fn the_same_rules_on_the_other_operations() {
    let (_dir, server) = start_default();
    let c = server.client();
    bucket(&c, "others");
    put(&c, "others", "whole", b"0123456789");
    let id = rt().block_on(async {
        let (id, parts) = one_part_upload(&c, "others", "fresh", b"p").await;
        let e = c
            .complete_multipart_upload()
            .bucket("others")
            .key("fresh")
            .upload_id(&id)
            .if_match("\"0123\"")
            .multipart_upload(parts)
            .send()
            .await
            .expect_err("nothing to match");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (404, "NoSuchKey")
        );
        id
    });
    // UploadPart: an empty Content-MD5, a checksum that is no digest, no length at all.
    let q = format!("partNumber=2&uploadId={id}");
    let raw = server.s3_raw("PUT", "/others/fresh", &q, &[("content-md5", "")], b"p");
    assert!(raw.contains("<Code>InvalidDigest</Code>"), "{raw}");
    let raw = server.s3_raw(
        "PUT",
        "/others/fresh",
        &q,
        &[("x-amz-checksum-crc32", "bad")],
        b"p",
    );
    assert!(raw.contains("<Code>InvalidRequest</Code>"), "{raw}");
    let raw = send_raw(
        &server,
        &signed_head(&server, "PUT", "/others/fresh", &q),
        b"",
    );
    assert_eq!(http_status(&raw), 411, "{raw}");
    // ACL headers wider than the owner's own, on the other writes.
    for (method, path, query, extra) in [
        ("PUT", "/others-new", "", None),
        ("POST", "/others/mp", "uploads=", None),
        (
            "PUT",
            "/others/copy",
            "",
            Some(("x-amz-copy-source", "/others/whole")),
        ),
    ] {
        let mut headers = vec![("x-amz-acl", "public-read")];
        headers.extend(extra);
        let raw = server.s3_raw(method, path, query, &headers, b"");
        assert_eq!(http_status(&raw), 400, "{method} {path}: {raw}");
        assert!(
            raw.contains("<Code>AccessControlListNotSupported</Code>"),
            "{raw}"
        );
    }
    rt().block_on(async {
        let e = c
            .head_bucket()
            .bucket("others-new")
            .send()
            .await
            .expect_err("not created");
        assert_eq!(error_status(&e), 404);
        let e = c
            .head_object()
            .bucket("others")
            .key("copy")
            .send()
            .await
            .expect_err("not copied");
        assert_eq!(error_status(&e), 404);
        // HEAD takes the response-* overrides, as GET does.
        let h = c
            .head_object()
            .bucket("others")
            .key("whole")
            .response_content_type("text/x-override")
            .response_cache_control("no-store")
            .send()
            .await
            .expect("head");
        assert_eq!(h.content_type(), Some("text/x-override"));
        assert_eq!(h.cache_control(), Some("no-store"));
        // CreateBucket asking for Object Lock on an existing bucket without it: refused.
        let e = c
            .create_bucket()
            .bucket("others")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect_err("the bucket has no Object Lock");
        assert_eq!(error_code(&e), "BucketAlreadyOwnedByYou");
    });
    // An object uploaded whole has no parts count, even with partNumber=1.
    for method in ["GET", "HEAD"] {
        let raw = server.s3_raw(method, "/others/whole", "partNumber=1", &[], b"");
        assert_eq!(http_status(&raw), 206, "{method}: {raw}");
        assert_eq!(
            header(&raw, "x-amz-mp-parts-count"),
            None,
            "{method}: {raw}"
        );
    }
}
