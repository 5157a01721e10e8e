//! A data folder written by an earlier release opens, reads back exactly and takes new
//! writes: backups outlive releases. `tests/fixtures/data-folder-23ecec5.tar.gz` was
//! written by `tests/fixtures/make-data-folder.sh` with the release CI landed on
//! 2026-11-22 (commit 23ecec5: VersionRecord format 4, UploadRecord 3, RepairRecord 1,
//! lifecycle rules, checkpoints, the retention clock and the alert queue in their old
//! families). Add a fixture per release that changes a format; never rewrite one.

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::{Server, runtime};

/// The fixture's bodies: N bytes of (i * 31 + 7) mod 251.
fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

#[test]
fn the_data_folder_of_release_23ecec5_opens_reads_and_takes_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/data-folder-23ecec5.tar.gz");
    let unpacked = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-xzf")
        .arg(&fixture)
        .status()
        .expect("tar");
    assert!(unpacked.success());
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--key-dir",
            keys.to_str().expect("path"),
            "--watch-interval",
            "1",
        ],
        dir.path(),
    );
    // Usage, kept at commit time since, is counted once for the buckets this release
    // wrote: every version, the delete marker holding nothing.
    for (bucket, bytes, objects) in [("versioned", 300_011, 2), ("locked", 300_000, 1)] {
        let (status, body) = server.admin("GET", &format!("/v1/buckets/{bucket}/quota"), None);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            (v["used_bytes"].as_u64(), v["objects"].as_u64()),
            (Some(bytes), Some(objects)),
            "{bucket}: {body}"
        );
    }
    let c = server.client();
    runtime().block_on(async {
        let get = |bucket: &'static str, key: &'static str, version: Option<String>| {
            let c = c.clone();
            async move {
                let r = c
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version)
                    .send()
                    .await
                    .expect("get");
                let meta = (
                    r.content_type().map(str::to_owned),
                    r.object_lock_retain_until_date().map(|d| d.secs()),
                    r.metadata().and_then(|m| m.get("origin").cloned()),
                    r.object_lock_mode().map(|m| m.as_str().to_owned()),
                    r.object_lock_legal_hold_status()
                        .map(|h| h.as_str().to_owned()),
                );
                (r.body.collect().await.expect("body").into_bytes(), meta)
            }
        };
        let (small, _) = get("plain", "small", None).await;
        assert_eq!(small[..], body(11)[..]);
        let (large, meta) = get("plain", "large", None).await;
        assert_eq!(large[..], body(300_000)[..]);
        assert_eq!(
            (meta.0.as_deref(), meta.2.as_deref()),
            (Some("application/octet-stream"), Some("fixture"))
        );
        let tags = c
            .get_object_tagging()
            .bucket("plain")
            .key("large")
            .send()
            .await
            .expect("tags");
        let tag = &tags.tag_set()[0];
        assert_eq!((tag.key(), tag.value()), ("kept", "yes"));
        // The versioned key: a delete marker over two versions, both still readable.
        let versions = c
            .list_object_versions()
            .bucket("versioned")
            .send()
            .await
            .expect("versions");
        assert_eq!(versions.versions().len(), 2);
        assert_eq!(versions.delete_markers().len(), 1);
        let e = c
            .get_object()
            .bucket("versioned")
            .key("k")
            .send()
            .await
            .expect_err("a marker is current");
        assert_eq!(stele_tests::error_code(&e), "NoSuchKey");
        let mut sizes = Vec::new();
        for v in versions.versions() {
            let id = v.version_id().map(str::to_owned);
            let (bytes, _) = get("versioned", "k", id).await;
            sizes.push(bytes.len());
        }
        sizes.sort_unstable();
        assert_eq!(sizes, vec![11, 300_000]);
        // The locked version keeps its lock, and cannot be removed.
        let (locked, meta) = get("locked", "kept", None).await;
        assert_eq!(locked[..], body(300_000)[..]);
        assert_eq!(
            (meta.3.as_deref(), meta.4.as_deref(), meta.1),
            (Some("COMPLIANCE"), Some("ON"), Some(4_102_444_800))
        );
        let kept = c
            .list_object_versions()
            .bucket("locked")
            .send()
            .await
            .expect("versions");
        let id = kept.versions()[0].version_id().expect("id").to_owned();
        let e = c
            .delete_object()
            .bucket("locked")
            .key("kept")
            .version_id(&id)
            .send()
            .await
            .expect_err("locked");
        assert_eq!(stele_tests::error_code(&e), "AccessDenied");
        // Bucket configuration kept by that release (moved to its family at open).
        let rules = c
            .get_bucket_lifecycle_configuration()
            .bucket("plain")
            .send()
            .await
            .expect("lifecycle rules");
        assert_eq!(rules.rules()[0].id(), Some("age"));
        // The upload left open completes with its part.
        let upload_id = std::fs::read_to_string(dir.path().join("upload-id")).expect("id");
        let parts = c
            .list_parts()
            .bucket("plain")
            .key("open")
            .upload_id(upload_id.trim())
            .send()
            .await
            .expect("the open upload");
        let etag = parts.parts()[0].e_tag().expect("etag").to_owned();
        c.complete_multipart_upload()
            .bucket("plain")
            .key("open")
            .upload_id(upload_id.trim())
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .parts(
                        aws_sdk_s3::types::CompletedPart::builder()
                            .part_number(1)
                            .e_tag(etag)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        let (open, _) = get("plain", "open", None).await;
        assert_eq!(open[..], body(11)[..]);
        // New writes go in beside the old ones.
        c.put_object()
            .bucket("plain")
            .key("new")
            .body(ByteStream::from_static(b"written by this release"))
            .send()
            .await
            .expect("new write");
        let got = c
            .get_object()
            .bucket("plain")
            .key("new")
            .send()
            .await
            .expect("read back")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&got[..], b"written by this release");
        // One in shard files too: named by the disks' UUIDs beside records naming `d0`.
        let big = body(3 << 20);
        c.put_object()
            .bucket("plain")
            .key("new-big")
            .body(ByteStream::from(big.clone()))
            .send()
            .await
            .expect("new big write");
        let got = c
            .get_object()
            .bucket("plain")
            .key("new-big")
            .send()
            .await
            .expect("read back")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert!(got[..] == big[..], "the new object reads back");
    });
    // The release's disk stamps (format 1) were given their UUIDs.
    for d in 0..6 {
        let stamp =
            std::fs::read_to_string(data.join(format!("disks/d{d}/.stele-disk"))).expect("stamp");
        assert!(
            stamp.starts_with(&format!("format = 2\nid = \"d{d}\"\nuuid = \"")),
            "{stamp}"
        );
    }
    // Alerting as that release kept it: the sink, the alert still queued for it (its
    // delivery queue moved to this node's family), and the freshness expectation.
    let (status, sinks) = server.admin("GET", "/v1/alerts/sinks", None);
    assert_eq!(status, 200, "{sinks}");
    assert!(sinks.contains("never-delivered"), "{sinks}");
    let (_, queue) = server.admin("GET", "/v1/alerts/queue", None);
    assert!(queue.contains("test alert sent by admin"), "{queue}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, watch) = server.admin("GET", "/v1/watchdog", None);
        if watch.contains("versioned") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no overdue backup seen: {watch}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
