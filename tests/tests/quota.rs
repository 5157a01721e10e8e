//! Bucket quotas against the real server: a write that would pass the quota (PUT,
//! multipart part and Complete, copy) is refused with S3's 403 QuotaExceeded and stores
//! nothing; usage is right after deletions and a restart; stelectl, `/metrics` and the
//! 90% alert show it.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use stele_tests::sites::{ctl, ctl_fails, json};
use stele_tests::webhook::Receiver;
use stele_tests::{Server, create_versioned, error_code, error_status, runtime};

const MIB: usize = 1 << 20;

async fn put(c: &Client, bucket: &str, key: &str, len: usize) -> Result<String, String> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(vec![9u8; len]))
        .send()
        .await
        .map(|o| o.version_id().unwrap_or("null").to_owned())
        .map_err(|e| format!("{} {}", error_status(&e), error_code(&e)))
}

async fn version_count(c: &Client, bucket: &str) -> usize {
    c.list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .expect("versions")
        .versions()
        .len()
}

/// The bucket's (quota, used bytes, versions) as the admin API reports them.
fn usage(server: &Server, bucket: &str) -> (Option<u64>, u64, u64) {
    let (s, body) = server.admin("GET", &format!("/v1/buckets/{bucket}/quota"), None);
    assert_eq!(s, 200, "{body}");
    let v = json(&body);
    (
        v["quota_bytes"].as_u64(),
        v["used_bytes"].as_u64().expect("used"),
        v["objects"].as_u64().expect("objects"),
    )
}

/// The bytes in the bucket's uploads in progress.
fn uploads(server: &Server, bucket: &str) -> u64 {
    let (_, body) = server.admin("GET", &format!("/v1/buckets/{bucket}/quota"), None);
    json(&body)["upload_bytes"].as_u64().expect("upload bytes")
}

#[test]
fn writes_past_the_quota_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&["--data", data.to_str().expect("path")], dir.path());
    let c = server.client();
    let quota = 12 * MIB as u64;
    runtime().block_on(async {
        create_versioned(&c, "capped").await;
        let out = ctl(&server, &["bucket", "quota", "capped", "--set", "12MiB"]);
        assert!(out.contains("12.0 MiB (12582912 bytes)"), "{out}");

        // A PUT that fits, then one that would pass the quota: 403 QuotaExceeded, with
        // S3's XML error body, and nothing stored.
        put(&c, "capped", "a", 6 * MIB).await.expect("6 MiB fits");
        let e = c
            .put_object()
            .bucket("capped")
            .key("b")
            .body(ByteStream::from(vec![1u8; 7 * MIB]))
            .send()
            .await
            .expect_err("past the quota");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "QuotaExceeded")
        );
        let raw = e.raw_response().expect("raw");
        let body = String::from_utf8_lossy(raw.body().bytes().expect("body")).into_owned();
        assert!(
            body.contains("<Code>QuotaExceeded</Code>") && body.contains("<RequestId>"),
            "{body}"
        );
        assert_eq!(version_count(&c, "capped").await, 1);
        assert_eq!(usage(&server, "capped"), (Some(quota), 6 * MIB as u64, 1));

        // Multipart: parts count as they arrive (they hold disk space until Complete or
        // Abort): a part that would take versions and parts past the quota is refused.
        let up = c
            .create_multipart_upload()
            .bucket("capped")
            .key("mp")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id").to_owned();
        let e = c
            .upload_part()
            .bucket("capped")
            .key("mp")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from(vec![2u8; 7 * MIB]))
            .send()
            .await
            .expect_err("part past the quota");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "QuotaExceeded")
        );
        let mut parts = Vec::new();
        for (n, len) in [(1, 5 * MIB), (2, MIB)] {
            let p = c
                .upload_part()
                .bucket("capped")
                .key("mp")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(vec![n as u8; len]))
                .send()
                .await
                .expect("part");
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(p.e_tag().expect("etag"))
                    .build(),
            );
        }
        let e = c
            .upload_part()
            .bucket("capped")
            .key("mp")
            .upload_id(&id)
            .part_number(3)
            .body(ByteStream::from(vec![3u8; 1]))
            .send()
            .await
            .expect_err("one byte past versions and parts");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "QuotaExceeded")
        );
        assert_eq!(uploads(&server, "capped"), 6 * MIB as u64);
        // The quota lowered meanwhile: the Complete that would take the versions past it
        // is refused in the commit, with nothing stored (the upload stays, to be aborted).
        ctl(&server, &["bucket", "quota", "capped", "--set", "10MiB"]);
        let e = c
            .complete_multipart_upload()
            .bucket("capped")
            .key("mp")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .expect_err("Complete past the quota");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "QuotaExceeded")
        );
        assert_eq!(version_count(&c, "capped").await, 1);
        assert_eq!(usage(&server, "capped").1, 6 * MIB as u64);
        c.abort_multipart_upload()
            .bucket("capped")
            .key("mp")
            .upload_id(&id)
            .send()
            .await
            .expect("abort");
        assert_eq!(uploads(&server, "capped"), 0);
        ctl(&server, &["bucket", "quota", "capped", "--set", "12MiB"]);

        // A copy exactly up to the quota is taken; the next one is refused.
        c.copy_object()
            .bucket("capped")
            .key("copy-1")
            .copy_source("capped/a")
            .send()
            .await
            .expect("copy to the quota");
        assert_eq!(usage(&server, "capped"), (Some(quota), quota, 2));
        let e = c
            .copy_object()
            .bucket("capped")
            .key("copy-2")
            .copy_source("capped/a")
            .send()
            .await
            .expect_err("copy past the quota");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "QuotaExceeded")
        );
        assert_eq!(version_count(&c, "capped").await, 2);

        // A delete marker frees nothing; removing a version does.
        c.delete_object()
            .bucket("capped")
            .key("copy-1")
            .send()
            .await
            .expect("marker");
        assert_eq!(usage(&server, "capped"), (Some(quota), quota, 2));
        let versions = c
            .list_object_versions()
            .bucket("capped")
            .prefix("copy-1")
            .send()
            .await
            .expect("versions");
        let copy_version = versions.versions()[0].version_id().expect("id").to_owned();
        c.delete_object()
            .bucket("capped")
            .key("copy-1")
            .version_id(&copy_version)
            .send()
            .await
            .expect("remove the version");
        assert_eq!(usage(&server, "capped"), (Some(quota), 6 * MIB as u64, 1));
        put(&c, "capped", "b", 5 * MIB).await.expect("fits again");

        // Unversioned: an overwrite that frees the bytes it replaces fits.
        c.create_bucket()
            .bucket("plain")
            .send()
            .await
            .expect("plain");
        ctl(&server, &["bucket", "quota", "plain", "--set", "1000"]);
        put(&c, "plain", "k", 800).await.expect("800 of 1000");
        put(&c, "plain", "k", 900)
            .await
            .expect("overwrite: 900 of 1000");
        assert_eq!(
            put(&c, "plain", "other", 200).await,
            Err("403 QuotaExceeded".into())
        );
        assert_eq!(usage(&server, "plain"), (Some(1000), 900, 1));
    });

    // Usage survives a restart exactly (kept at commit time, never rescanned).
    let (s3_addr, admin_addr) = (
        server.s3_url.trim_start_matches("http://").to_owned(),
        server.admin_url.trim_start_matches("http://").to_owned(),
    );
    server.kill();
    let server = Server::start_exact(
        &[
            "--data",
            data.to_str().expect("path"),
            "--s3-addr",
            &s3_addr,
            "--admin-addr",
            &admin_addr,
        ],
        dir.path(),
    );
    assert_eq!(usage(&server, "capped"), (Some(quota), 11 * MIB as u64, 2));
    assert_eq!(usage(&server, "plain"), (Some(1000), 900, 1));
    let c = server.client();
    runtime().block_on(async {
        assert_eq!(
            put(&c, "capped", "c", 2 * MIB).await,
            Err("403 QuotaExceeded".into())
        );
    });

    // stelectl and /metrics show it; the quota can be removed.
    let list = ctl(&server, &["bucket", "list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("capped "))
        .expect("capped listed");
    assert!(
        line.contains("11.0 MiB") && line.contains("12.0 MiB") && line.contains("92%"),
        "{list}"
    );
    let (s, metrics) = server.admin("GET", "/metrics", None);
    assert_eq!(s, 200);
    assert!(
        metrics.contains(&format!(
            "stele_bucket_used_bytes{{bucket=\"capped\"}} {}",
            11 * MIB
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "stele_bucket_quota_bytes{{bucket=\"capped\"}} {quota}"
    )));
    assert!(metrics.contains("stele_bucket_objects{bucket=\"plain\"} 1"));
    let err = ctl_fails(&server, &["bucket", "quota", "capped", "--set", "12XB"]);
    assert!(err.contains("unknown unit"), "{err}");
    let out = ctl(&server, &["bucket", "quota", "capped", "--clear"]);
    assert!(out.contains("none"), "{out}");
    runtime().block_on(async {
        put(&c, "capped", "c", 2 * MIB).await.expect("no quota");
    });
    let (s, _) = server.admin(
        "PUT",
        "/v1/buckets/nope/quota",
        Some(r#"{"quota_bytes":1}"#),
    );
    assert_eq!(s, 404);
}

#[test]
fn a_bucket_past_ninety_percent_of_its_quota_is_alerted_once_per_crossing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--watch-interval",
            "1",
        ],
        dir.path(),
    );
    let (rx, url) = Receiver::start();
    let (s, body) = server.admin(
        "PUT",
        "/v1/alerts/sinks/ops",
        Some(&format!(r#"{{"url":"{url}"}}"#)),
    );
    assert_eq!(s, 200, "{body}");
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("nearly")
            .send()
            .await
            .expect("bucket");
        ctl(&server, &["bucket", "quota", "nearly", "--set", "100000"]);
        put(&c, "nearly", "a", 89_000).await.expect("89%");
        // Two watchdog rounds below the mark: no alert.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        assert!(rx.of_kind("quota-nearly-full").is_empty());
        put(&c, "nearly", "b", 2_000).await.expect("91%");
        let alerts = rx.wait_for("quota-nearly-full", 1);
        let a = &alerts[0]["alert"];
        assert_eq!(a["bucket"], "nearly");
        assert_eq!(a["used_bytes"], 91_000);
        assert_eq!(a["quota_bytes"], 100_000);
        // Staying above the mark does not alert again.
        put(&c, "nearly", "c", 1_000).await.expect("92%");
        std::thread::sleep(std::time::Duration::from_millis(2500));
        assert_eq!(rx.of_kind("quota-nearly-full").len(), 1);
        // Below it again (unversioned: deletes free the bytes), then a second crossing.
        for k in ["b", "c"] {
            c.delete_object()
                .bucket("nearly")
                .key(k)
                .send()
                .await
                .expect("delete");
        }
        std::thread::sleep(std::time::Duration::from_millis(2500));
        assert_eq!(rx.of_kind("quota-nearly-full").len(), 1);
        put(&c, "nearly", "d", 2_000).await.expect("91% again");
        let alerts = rx.wait_for("quota-nearly-full", 2);
        assert_eq!(alerts.len(), 2);
    });
}
