//! Multipart uploads through aws-sdk-s3 against the real server binary.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use stele_tests::{error_code, error_status, runtime as rt, start_default as start};

fn bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed) >> 7) as u8)
        .collect()
}

async fn part(c: &Client, key: &str, id: &str, n: i32, body: &[u8]) -> String {
    c.upload_part()
        .bucket("mpart")
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("part {n}: {e:?}"))
        .e_tag()
        .expect("etag")
        .to_owned()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

async fn create(c: &Client, key: &str) -> String {
    c.create_multipart_upload()
        .bucket("mpart")
        .key(key)
        .content_type("application/octet-stream")
        .metadata("kind", "full")
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_owned()
}

#[test]
fn upload_parts_and_complete() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("mpart")
            .send()
            .await
            .expect("bucket");
        let id = create(&c, "big.bin").await;
        let p1 = bytes(5 << 20, 3);
        let p2 = bytes(5 << 20, 5);
        let p3 = bytes(1 << 20 | 17, 7);
        let e2 = part(&c, "big.bin", &id, 2, &p2).await;
        // Re-uploading a part replaces it.
        part(&c, "big.bin", &id, 1, &p2).await;
        let e1 = part(&c, "big.bin", &id, 1, &p1).await;
        let e3 = part(&c, "big.bin", &id, 3, &p3).await;

        let parts = c
            .list_parts()
            .bucket("mpart")
            .key("big.bin")
            .upload_id(&id)
            .send()
            .await
            .expect("list parts");
        let listed: Vec<_> = parts
            .parts()
            .iter()
            .map(|p| (p.part_number(), p.e_tag().map(str::to_owned), p.size()))
            .collect();
        assert_eq!(
            listed,
            [
                (Some(1), Some(e1.clone()), Some(p1.len() as i64)),
                (Some(2), Some(e2.clone()), Some(p2.len() as i64)),
                (Some(3), Some(e3.clone()), Some(p3.len() as i64)),
            ]
        );
        let uploads = c
            .list_multipart_uploads()
            .bucket("mpart")
            .send()
            .await
            .expect("uploads");
        assert_eq!(uploads.uploads().len(), 1);
        assert_eq!(uploads.uploads()[0].upload_id(), Some(id.as_str()));

        // Refusals leave the upload as it was.
        let e = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("big.bin")
            .upload_id(&id)
            .multipart_upload(completed(&[(2, &e2), (1, &e1)]))
            .send()
            .await
            .expect_err("order");
        assert_eq!(error_code(&e), "InvalidPartOrder");
        let e = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("big.bin")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e1)]))
            .send()
            .await
            .expect_err("etag");
        assert_eq!(error_code(&e), "InvalidPart");
        assert_eq!(error_status(&e), 400);
        let e = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("big.bin")
            .upload_id(&id)
            .multipart_upload(completed(&[(3, &e3), (4, &e3)]))
            .send()
            .await
            .expect_err("missing part");
        assert_eq!(error_code(&e), "InvalidPart");
        let e = c
            .get_object()
            .bucket("mpart")
            .key("big.bin")
            .send()
            .await
            .expect_err("not yet");
        assert_eq!(error_code(&e), "NoSuchKey");

        let done = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("big.bin")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e2), (3, &e3)]))
            .send()
            .await
            .expect("complete");
        let etag = done.e_tag().expect("etag");
        assert!(etag.ends_with("-3\""), "{etag}");

        let got = c
            .get_object()
            .bucket("mpart")
            .key("big.bin")
            .send()
            .await
            .expect("get");
        assert_eq!(got.e_tag(), Some(etag));
        assert_eq!(got.content_type(), Some("application/octet-stream"));
        assert_eq!(
            got.metadata()
                .and_then(|m| m.get("kind"))
                .map(String::as_str),
            Some("full")
        );
        let body = got.body.collect().await.expect("body").into_bytes();
        let expected: Vec<u8> = [p1.clone(), p2.clone(), p3.clone()].concat();
        assert!(body[..] == expected[..], "bytes differ");
        // A range across the boundary of parts 1 and 2.
        let r = c
            .get_object()
            .bucket("mpart")
            .key("big.bin")
            .range(format!("bytes={}-{}", (5 << 20) - 10, (5 << 20) + 9))
            .send()
            .await
            .expect("range");
        let b = r.body.collect().await.expect("body").into_bytes();
        assert_eq!(&b[..], &expected[(5 << 20) - 10..(5 << 20) + 10]);

        let attrs = c
            .get_object_attributes()
            .bucket("mpart")
            .key("big.bin")
            .object_attributes(aws_sdk_s3::types::ObjectAttributes::ObjectParts)
            .object_attributes(aws_sdk_s3::types::ObjectAttributes::ObjectSize)
            .object_attributes(aws_sdk_s3::types::ObjectAttributes::Etag)
            .send()
            .await
            .expect("attributes");
        assert_eq!(attrs.object_size(), Some(expected.len() as i64));
        assert_eq!(
            attrs.e_tag().map(|e| e.trim_matches('"')),
            Some(etag.trim_matches('"'))
        );
        let parts = attrs.object_parts().expect("parts");
        assert_eq!(parts.total_parts_count(), Some(3));
        let sizes: Vec<_> = parts.parts().iter().map(|p| p.size()).collect();
        assert_eq!(
            sizes,
            [
                Some(p1.len() as i64),
                Some(p2.len() as i64),
                Some(p3.len() as i64)
            ]
        );

        // partNumber reads one part back (206, x-amz-mp-parts-count).
        for (n, expected) in [(1, &p1), (2, &p2), (3, &p3)] {
            let part = c
                .get_object()
                .bucket("mpart")
                .key("big.bin")
                .part_number(n)
                .send()
                .await
                .unwrap_or_else(|e| panic!("part {n}: {e:?}"));
            assert_eq!(part.parts_count(), Some(3));
            assert_eq!(part.content_length(), Some(expected.len() as i64));
            let b = part.body.collect().await.expect("body").into_bytes();
            assert!(b[..] == expected[..], "part {n} differs");
        }
        let e = c
            .get_object()
            .bucket("mpart")
            .key("big.bin")
            .part_number(4)
            .send()
            .await
            .expect_err("no part 4");
        assert_eq!(error_code(&e), "InvalidPartNumber");
        assert_eq!(error_status(&e), 416);

        let e = c
            .upload_part()
            .bucket("mpart")
            .key("big.bin")
            .upload_id(&id)
            .part_number(4)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await
            .expect_err("completed");
        assert_eq!(error_code(&e), "NoSuchUpload");
        assert_eq!(error_status(&e), 404);
        let uploads = c
            .list_multipart_uploads()
            .bucket("mpart")
            .send()
            .await
            .expect("uploads");
        assert!(uploads.uploads().is_empty());
    });
}

#[test]
fn small_parts_bad_numbers_and_abort() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("mpart")
            .send()
            .await
            .expect("bucket");
        let id = create(&c, "small").await;
        let e1 = part(&c, "small", &id, 1, &bytes(1 << 20, 3)).await;
        let e2 = part(&c, "small", &id, 2, &bytes(100, 5)).await;
        let e = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
            .send()
            .await
            .expect_err("too small");
        assert_eq!(error_code(&e), "EntityTooSmall");
        assert_eq!(error_status(&e), 400);
        // A single small part is fine: it is the last.
        for n in [0, 10_001] {
            let e = c
                .upload_part()
                .bucket("mpart")
                .key("small")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .expect_err("part number");
            assert_eq!(error_code(&e), "InvalidArgument", "part {n}");
        }
        c.abort_multipart_upload()
            .bucket("mpart")
            .key("small")
            .upload_id(&id)
            .send()
            .await
            .expect("abort");
        let e = c
            .list_parts()
            .bucket("mpart")
            .key("small")
            .upload_id(&id)
            .send()
            .await
            .expect_err("aborted");
        assert_eq!(error_code(&e), "NoSuchUpload");
        let e = c
            .abort_multipart_upload()
            .bucket("mpart")
            .key("small")
            .upload_id("00000000000000000000000000000000")
            .send()
            .await
            .expect_err("unknown");
        assert_eq!(error_code(&e), "NoSuchUpload");

        let id = create(&c, "one").await;
        let e1 = part(&c, "one", &id, 1, b"just one small part").await;
        c.complete_multipart_upload()
            .bucket("mpart")
            .key("one")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1)]))
            .send()
            .await
            .expect("one part");
        let got = c
            .get_object()
            .bucket("mpart")
            .key("one")
            .send()
            .await
            .expect("get");
        let b = got.body.collect().await.expect("body").into_bytes();
        assert_eq!(&b[..], b"just one small part");
        // partNumber=1 of a one-part upload, and of a plain object, is the whole object.
        c.put_object()
            .bucket("mpart")
            .key("plain")
            .body(ByteStream::from_static(b"plain bytes"))
            .send()
            .await
            .expect("put");
        // PartsCount only for an object uploaded in parts (S3's GetObject: "only returned
        // if you specify partNumber ... and the object was uploaded as a multipart upload").
        for (key, parts) in [("one", Some(1)), ("plain", None)] {
            let got = c
                .get_object()
                .bucket("mpart")
                .key(key)
                .part_number(1)
                .send()
                .await
                .expect("part 1");
            assert_eq!(got.parts_count(), parts, "{key}");
            let b = got.body.collect().await.expect("body").into_bytes();
            assert!(!b.is_empty());
        }
        let e = c
            .get_object()
            .bucket("mpart")
            .key("plain")
            .part_number(2)
            .send()
            .await
            .expect_err("one part only");
        assert_eq!(error_status(&e), 416);
    });
}

#[test]
fn multipart_checksums_are_verified_and_composite() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("mpart")
            .send()
            .await
            .expect("bucket");
        let id = c
            .create_multipart_upload()
            .bucket("mpart")
            .key("summed")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .expect("create")
            .upload_id()
            .expect("id")
            .to_owned();
        let bodies = [bytes(5 << 20, 11), bytes(300_000, 13)];
        let mut parts = Vec::new();
        let mut raw = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let n = i as i32 + 1;
            let out = c
                .upload_part()
                .bucket("mpart")
                .key("summed")
                .upload_id(&id)
                .part_number(n)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .expect("part");
            let sum = out.checksum_crc32().expect("part checksum").to_owned();
            raw.extend(b64.decode(&sum).expect("base64"));
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(out.e_tag().expect("etag"))
                    .checksum_crc32(sum)
                    .build(),
            );
        }
        // A part checksum that is not the one uploaded is refused.
        let mut wrong = parts.clone();
        wrong[1] = CompletedPart::builder()
            .part_number(2)
            .e_tag(parts[1].e_tag().expect("etag"))
            .checksum_crc32("AAAAAA==")
            .build();
        let e = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("summed")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(wrong))
                    .build(),
            )
            .send()
            .await
            .expect_err("wrong part checksum");
        assert_eq!(error_code(&e), "InvalidPart");

        let done = c
            .complete_multipart_upload()
            .bucket("mpart")
            .key("summed")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        let mut h = stele::checksum::ChecksumHasher::new(stele::checksum::ChecksumAlgorithm::Crc32);
        h.update(&raw);
        let expected = format!("{}-2", b64.encode(h.finish().value));
        assert_eq!(done.checksum_crc32(), Some(expected.as_str()));
        let head = c
            .head_object()
            .bucket("mpart")
            .key("summed")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("head");
        assert_eq!(head.checksum_crc32(), Some(expected.as_str()));
    });
}

#[test]
fn full_object_multipart_checksums_combine_part_crcs() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("mpart")
            .send()
            .await
            .expect("bucket");
        let bodies = [bytes(5 << 20, 17), bytes(5 << 20, 19), bytes(123_457, 23)];
        let whole: Vec<u8> = bodies.concat();
        let mut h =
            stele::checksum::ChecksumHasher::new(stele::checksum::ChecksumAlgorithm::Crc64Nvme);
        h.update(&whole);
        let expected = b64.encode(h.finish().value);
        for claimed in ["AAAAAAAAAAA=", expected.as_str()] {
            let id = c
                .create_multipart_upload()
                .bucket("mpart")
                .key("whole")
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .checksum_type(ChecksumType::FullObject)
                .send()
                .await
                .expect("create")
                .upload_id()
                .expect("id")
                .to_owned();
            let mut parts = Vec::new();
            for (i, body) in bodies.iter().enumerate() {
                let n = i as i32 + 1;
                let out = c
                    .upload_part()
                    .bucket("mpart")
                    .key("whole")
                    .upload_id(&id)
                    .part_number(n)
                    .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
                    .expect("part");
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .e_tag(out.e_tag().expect("etag"))
                        .checksum_crc64_nvme(out.checksum_crc64_nvme().expect("part crc"))
                        .build(),
                );
            }
            let done = c
                .complete_multipart_upload()
                .bucket("mpart")
                .key("whole")
                .upload_id(&id)
                .checksum_type(ChecksumType::FullObject)
                .checksum_crc64_nvme(claimed)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await;
            if claimed == expected {
                let done = done.expect("complete");
                assert_eq!(done.checksum_crc64_nvme(), Some(expected.as_str()));
            } else {
                let e = done.expect_err("wrong full-object checksum");
                assert_eq!(error_code(&e), "BadDigest");
                let e = c
                    .head_object()
                    .bucket("mpart")
                    .key("whole")
                    .send()
                    .await
                    .expect_err("nothing");
                assert_eq!(error_status(&e), 404);
            }
        }
        let head = c
            .head_object()
            .bucket("mpart")
            .key("whole")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("head");
        assert_eq!(head.checksum_crc64_nvme(), Some(expected.as_str()));
        // The SDK checks a full-object checksum against the bytes it reads.
        let got = c
            .get_object()
            .bucket("mpart")
            .key("whole")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("get");
        let b = got
            .body
            .collect()
            .await
            .expect("body validates")
            .into_bytes();
        assert!(b[..] == whole[..]);
    });
}
