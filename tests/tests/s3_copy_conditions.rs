//! CopyObject, UploadPartCopy, conditional GET/HEAD/PUT and response overrides through
//! aws-sdk-s3 against the real server binary.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use stele_tests::{error_code, error_status, runtime as rt, start_default as start};

async fn body_of(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get");
    got.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

#[test]
fn copies_objects_and_parts() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        for b in ["src-bucket", "dst-bucket"] {
            c.create_bucket().bucket(b).send().await.expect("create");
        }
        let data: Vec<u8> = (0..6_000_000u32).map(|i| (i % 253) as u8).collect();
        c.put_object()
            .bucket("src-bucket")
            .key("orig")
            .content_type("text/x-orig")
            .metadata("who", "me")
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("put");

        let out = c
            .copy_object()
            .bucket("dst-bucket")
            .key("copy")
            .copy_source("src-bucket/orig")
            .send()
            .await
            .expect("copy");
        assert!(out.copy_object_result().and_then(|r| r.e_tag()).is_some());
        assert!(body_of(&c, "dst-bucket", "copy").await == data);
        let head = c
            .head_object()
            .bucket("dst-bucket")
            .key("copy")
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_type(), Some("text/x-orig"));
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("who"))
                .map(String::as_str),
            Some("me")
        );

        c.copy_object()
            .bucket("src-bucket")
            .key("replaced")
            .copy_source("src-bucket/orig")
            .metadata_directive(MetadataDirective::Replace)
            .content_type("text/x-new")
            .metadata("who", "you")
            .send()
            .await
            .expect("copy replace");
        let head = c
            .head_object()
            .bucket("src-bucket")
            .key("replaced")
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_type(), Some("text/x-new"));
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("who"))
                .map(String::as_str),
            Some("you")
        );

        let e = c
            .copy_object()
            .bucket("src-bucket")
            .key("orig")
            .copy_source("src-bucket/orig")
            .send()
            .await
            .expect_err("onto itself");
        assert_eq!(error_code(&e), "InvalidRequest");
        assert_eq!(error_status(&e), 400);

        let e = c
            .copy_object()
            .bucket("dst-bucket")
            .key("x")
            .copy_source("src-bucket/orig")
            .copy_source_if_match("\"00000000000000000000000000000000\"")
            .send()
            .await
            .expect_err("condition");
        assert_eq!(error_code(&e), "PreconditionFailed");
        assert_eq!(error_status(&e), 412);
        let e = c
            .copy_object()
            .bucket("dst-bucket")
            .key("x")
            .copy_source("src-bucket/missing")
            .send()
            .await
            .expect_err("no source");
        assert_eq!(error_code(&e), "NoSuchKey");

        // Parts copied from ranges of the source assemble into the same bytes.
        let id = c
            .create_multipart_upload()
            .bucket("dst-bucket")
            .key("assembled")
            .send()
            .await
            .expect("create")
            .upload_id()
            .expect("id")
            .to_owned();
        let mut parts = Vec::new();
        for (n, (a, b)) in [(1, (0, 5_242_879)), (2, (5_242_880, 5_999_999))] {
            let r = c
                .upload_part_copy()
                .bucket("dst-bucket")
                .key("assembled")
                .upload_id(&id)
                .part_number(n)
                .copy_source("src-bucket/orig")
                .copy_source_range(format!("bytes={a}-{b}"))
                .send()
                .await
                .expect("part copy");
            let etag = r
                .copy_part_result()
                .and_then(|p| p.e_tag())
                .expect("etag")
                .to_owned();
            parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
        }
        c.complete_multipart_upload()
            .bucket("dst-bucket")
            .key("assembled")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        assert!(body_of(&c, "dst-bucket", "assembled").await == data);
    });
}

#[test]
fn conditional_requests_and_overrides() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("cond")
            .send()
            .await
            .expect("create");
        let etag = c
            .put_object()
            .bucket("cond")
            .key("k")
            .body(ByteStream::from_static(b"v1"))
            .send()
            .await
            .expect("put")
            .e_tag()
            .expect("etag")
            .to_owned();

        let e = c
            .get_object()
            .bucket("cond")
            .key("k")
            .if_none_match(&etag)
            .send()
            .await
            .expect_err("304");
        assert_eq!(error_status(&e), 304);
        let e = c
            .head_object()
            .bucket("cond")
            .key("k")
            .if_none_match(&etag)
            .send()
            .await
            .expect_err("304");
        assert_eq!(error_status(&e), 304);
        let e = c
            .get_object()
            .bucket("cond")
            .key("k")
            .if_match("\"nope\"")
            .send()
            .await
            .expect_err("412");
        assert_eq!(error_status(&e), 412);
        c.get_object()
            .bucket("cond")
            .key("k")
            .if_match(&etag)
            .send()
            .await
            .expect("match");
        let past = DateTime::from_secs(1_000_000_000);
        let future = DateTime::from_secs(4_000_000_000);
        let e = c
            .get_object()
            .bucket("cond")
            .key("k")
            .if_modified_since(future)
            .send()
            .await
            .expect_err("304");
        assert_eq!(error_status(&e), 304);
        c.get_object()
            .bucket("cond")
            .key("k")
            .if_modified_since(past)
            .send()
            .await
            .expect("modified");
        let e = c
            .get_object()
            .bucket("cond")
            .key("k")
            .if_unmodified_since(past)
            .send()
            .await
            .expect_err("412");
        assert_eq!(error_status(&e), 412);

        // Conditional create: If-None-Match: * refuses to replace an existing object.
        let e = c
            .put_object()
            .bucket("cond")
            .key("k")
            .if_none_match("*")
            .body(ByteStream::from_static(b"v2"))
            .send()
            .await
            .expect_err("exists");
        assert_eq!(error_code(&e), "PreconditionFailed");
        assert_eq!(error_status(&e), 412);
        assert_eq!(body_of(&c, "cond", "k").await, b"v1");
        c.put_object()
            .bucket("cond")
            .key("fresh")
            .if_none_match("*")
            .body(ByteStream::from_static(b"new"))
            .send()
            .await
            .expect("absent key");

        let got = c
            .get_object()
            .bucket("cond")
            .key("k")
            .response_content_type("application/x-override")
            .response_content_disposition("attachment; filename=\"k.bin\"")
            .response_cache_control("no-cache")
            .send()
            .await
            .expect("overrides");
        assert_eq!(got.content_type(), Some("application/x-override"));
        assert_eq!(
            got.content_disposition(),
            Some("attachment; filename=\"k.bin\"")
        );
        assert_eq!(got.cache_control(), Some("no-cache"));
    });
}
