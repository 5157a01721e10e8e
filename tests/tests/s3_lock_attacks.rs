//! Attacks on locked versions, each expected to fail with the right error and leave the
//! version readable; the retention clock against wall-clock jumps; lifecycle over locked
//! versions; retention policies. Time is driven through the server's test clock.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, CompletedMultipartUpload, CompletedPart, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, MetadataDirective,
    NoncurrentVersionExpiration, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
};
use stele_tests::lock::{days_from_now, intact, lock_bucket, put, put_locked};
use stele_tests::{DAY_SECS, Server, error_code, error_status, runtime, start_with_clock};

async fn delete_fails(c: &Client, b: &str, k: &str, v: &str) {
    let e = c
        .delete_object()
        .bucket(b)
        .key(k)
        .version_id(v)
        .bypass_governance_retention(true)
        .send()
        .await
        .expect_err("delete of a locked version");
    assert_eq!(
        (error_code(&e).as_str(), error_status(&e)),
        ("AccessDenied", 403)
    );
    intact(c, b, k, v).await;
}

fn lifecycle_run(server: &Server) -> serde_json::Value {
    let (status, body) = server.admin("POST", "/v1/lifecycle/run?wait=true", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("pass report")
}

#[test]
fn overwrite_attempts_make_new_versions_and_leave_the_locked_one() {
    let (_dir, server, _clock) = start_with_clock(&[]);
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "att").await;
        let v = put_locked(&c, "att", "k", ObjectLockMode::Compliance, days_from_now(5)).await;
        // Copy onto the same key, from the locked version itself, replacing metadata.
        let copied = c
            .copy_object()
            .bucket("att")
            .key("k")
            .copy_source(format!("att/k?versionId={v}"))
            .metadata_directive(MetadataDirective::Replace)
            .content_type("text/evil")
            .send()
            .await
            .expect("copy makes a new version");
        assert_ne!(copied.version_id(), Some(v.as_str()));
        // A multipart upload completed onto the key.
        let up = c
            .create_multipart_upload()
            .bucket("att")
            .key("k")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id");
        let p = c
            .upload_part()
            .bucket("att")
            .key("k")
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"overwrite"))
            .send()
            .await
            .expect("part");
        let done = c
            .complete_multipart_upload()
            .bucket("att")
            .key("k")
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(p.e_tag().expect("etag"))
                            .set_checksum_crc32(p.checksum_crc32().map(str::to_owned))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("complete makes a new version");
        assert_ne!(done.version_id(), Some(v.as_str()));
        // A plain PUT, and a delete marker on top.
        put(&c, "att", "k", b"plain bytes").await;
        c.delete_object()
            .bucket("att")
            .key("k")
            .send()
            .await
            .expect("marker");
        intact(&c, "att", "k", &v).await;
        let h = c
            .head_object()
            .bucket("att")
            .key("k")
            .version_id(&v)
            .send()
            .await
            .expect("head");
        assert_eq!(h.content_type(), Some("application/octet-stream"));
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Compliance));
        delete_fails(&c, "att", "k", &v).await;
        // The bucket cannot go while it holds the version.
        let e = c
            .delete_bucket()
            .bucket("att")
            .send()
            .await
            .expect_err("delete bucket");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("BucketNotEmpty", 409)
        );
        intact(&c, "att", "k", &v).await;
    });
    // Every refusal to touch protected data leaves an audit line.
    let log = std::fs::read_to_string(&server.stderr_log).expect("log");
    assert!(log.contains("lock-refused"), "{log}");
}

#[test]
fn a_wall_clock_jump_expires_nothing_even_across_a_restart() {
    let (dir, server, clock) = start_with_clock(&[]);
    let c = server.client();
    let (gov, comp) = runtime().block_on(async {
        lock_bucket(&c, "jmp").await;
        let gov = put_locked(&c, "jmp", "g", ObjectLockMode::Governance, days_from_now(2)).await;
        let comp = put_locked(&c, "jmp", "c", ObjectLockMode::Compliance, days_from_now(2)).await;
        (gov, comp)
    });
    assert!(server.admin("GET", "/health", None).1.contains("\"ok\""));
    // Someone sets the date 100 years ahead.
    clock.jump_wall(100 * 365 * DAY_SECS);
    runtime().block_on(async {
        delete_fails(&c, "jmp", "c", &comp).await;
        let e = c
            .delete_object()
            .bucket("jmp")
            .key("g")
            .version_id(&gov)
            .send()
            .await
            .expect_err("gov");
        assert_eq!(error_code(&e), "AccessDenied");
    });
    let (_, health) = server.admin("GET", "/health", None);
    assert!(health.contains("clock-anomaly"), "{health}");
    let (_, clock_status) = server.admin("GET", "/v1/clock", None);
    let st: serde_json::Value = serde_json::from_str(&clock_status).expect("json");
    assert_eq!(st["anomalies"], 1, "{clock_status}");
    // Restarted with the wall clock still in 2126: retention resumes from its mark.
    drop(server);
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--test-clock",
            clock.0.to_str().expect("path"),
        ],
        dir.path(),
    );
    let c = server.client();
    runtime().block_on(async {
        delete_fails(&c, "jmp", "c", &comp).await;
        let e = c
            .delete_object()
            .bucket("jmp")
            .key("g")
            .version_id(&gov)
            .send()
            .await
            .expect_err("gov");
        assert_eq!(error_code(&e), "AccessDenied");
    });
    // Real time passing (both clocks) does end retention.
    clock.pass(3 * DAY_SECS);
    runtime().block_on(async {
        c.delete_object()
            .bucket("jmp")
            .key("c")
            .version_id(&comp)
            .send()
            .await
            .expect("expired");
    });
}

#[test]
fn lifecycle_never_removes_locked_versions() {
    let (_dir, server, clock) = start_with_clock(&[]);
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "lcy").await;
        let locked = put_locked(
            &c,
            "lcy",
            "locked",
            ObjectLockMode::Compliance,
            days_from_now(5),
        )
        .await;
        let gov = put_locked(
            &c,
            "lcy",
            "gov",
            ObjectLockMode::Governance,
            days_from_now(5),
        )
        .await;
        let old_free = put(&c, "lcy", "free", b"plain bytes").await;
        put(&c, "lcy", "free", b"plain bytes").await;
        let rule = LifecycleRule::builder()
            .id("expire-fast")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(LifecycleExpiration::builder().days(1).build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(1)
                    .build(),
            )
            .build()
            .expect("rule");
        c.put_bucket_lifecycle_configuration()
            .bucket("lcy")
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .expect("config"),
            )
            .send()
            .await
            .expect("lifecycle");
        let got = c
            .get_bucket_lifecycle_configuration()
            .bucket("lcy")
            .send()
            .await
            .expect("get");
        assert_eq!(got.rules().len(), 1);
        assert_eq!(got.rules()[0].expiration().and_then(|e| e.days()), Some(1));
        let _ = (&locked, &gov, &old_free);
    });
    // Nothing is due yet.
    let r = lifecycle_run(&server);
    assert_eq!(r["versions_removed"], 0, "{r}");
    assert_eq!(r["delete_markers_added"], 0, "{r}");
    clock.pass(2 * DAY_SECS);
    // First pass: every current version expires (a delete marker each), and the older
    // "free" version, noncurrent for 2 days, is removed.
    let r1 = lifecycle_run(&server);
    assert_eq!(r1["delete_markers_added"], 3, "{r1}");
    assert_eq!(r1["versions_removed"], 1, "{r1}");
    assert_eq!(r1["kept_locked"], 0, "{r1}");
    clock.pass(2 * DAY_SECS);
    // Second pass: the versions under the markers are noncurrent and due; only the
    // unlocked one goes.
    let r2 = lifecycle_run(&server);
    assert_eq!(r2["versions_removed"], 1, "the unlocked free version: {r2}");
    assert_eq!(r2["kept_locked"], 2, "{r2}");
    runtime().block_on(async {
        let vs = c
            .list_object_versions()
            .bucket("lcy")
            .send()
            .await
            .expect("list");
        let keys: Vec<&str> = vs.versions().iter().filter_map(|v| v.key()).collect();
        assert_eq!(keys, vec!["gov", "locked"]);
        let locked = vs.versions()[1].version_id().expect("id").to_owned();
        intact(&c, "lcy", "locked", &locked).await;
        delete_fails(&c, "lcy", "locked", &locked).await;
    });
    let (_, status) = server.admin("GET", "/v1/lifecycle", None);
    assert!(status.contains("\"passes\":3"), "{status}");
}

#[test]
fn legal_hold_outlives_retention() {
    let (_dir, server, clock) = start_with_clock(&[]);
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "hld").await;
        let v = put_locked(&c, "hld", "k", ObjectLockMode::Compliance, days_from_now(1)).await;
        c.put_object_legal_hold()
            .bucket("hld")
            .key("k")
            .version_id(&v)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect("hold");
        clock.pass(2 * DAY_SECS);
        delete_fails(&c, "hld", "k", &v).await;
        c.put_object_legal_hold()
            .bucket("hld")
            .key("k")
            .version_id(&v)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::Off)
                    .build(),
            )
            .send()
            .await
            .expect("release");
        c.delete_object()
            .bucket("hld")
            .key("k")
            .version_id(&v)
            .send()
            .await
            .expect("free now");
    });
}

#[test]
fn retention_policies_bound_retention_and_loosening_is_privileged() {
    let (_dir, server, _clock) = start_with_clock(&["--require-object-lock"]);
    let c = server.client();
    runtime().block_on(async {
        // --require-object-lock: a plain CreateBucket gets Object Lock.
        c.create_bucket()
            .bucket("pol")
            .send()
            .await
            .expect("create");
        c.get_object_lock_configuration()
            .bucket("pol")
            .send()
            .await
            .expect("lock is on");
    });
    let policy =
        r#"{"min_days": 10, "max_days": 100, "modes": ["COMPLIANCE"], "below_min": "refuse"}"#;
    let (s, body) = server.admin("PUT", "/v1/buckets/pol/retention-policy", Some(policy));
    assert_eq!(s, 200, "{body}");
    // The S3 key is not an admin credential.
    let (s, _) = server.admin_as(
        stele_tests::ACCESS_KEY,
        stele_tests::SECRET_KEY,
        "GET",
        "/v1/buckets/pol/retention-policy",
        None,
    );
    assert_eq!(s, 401);
    runtime().block_on(async {
        for (mode, days, what) in [
            (ObjectLockMode::Compliance, 2, "below the minimum"),
            (ObjectLockMode::Compliance, 200, "above the maximum"),
            (
                ObjectLockMode::Governance,
                20,
                "a mode the policy does not allow",
            ),
        ] {
            let e = c
                .put_object()
                .bucket("pol")
                .key("k")
                .body(ByteStream::from_static(b"x"))
                .object_lock_mode(mode)
                .object_lock_retain_until_date(days_from_now(days))
                .send()
                .await
                .expect_err(what);
            assert_eq!(
                (error_code(&e).as_str(), error_status(&e)),
                ("InvalidRequest", 400),
                "{what}"
            );
            let msg = e
                .as_service_error()
                .and_then(|s| s.meta().message())
                .unwrap_or_default()
                .to_owned();
            assert!(msg.contains("policy"), "{what}: {msg}");
        }
        // A PUT with no retention at all is below the minimum too.
        let e = c
            .put_object()
            .bucket("pol")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("none");
        assert_eq!(error_code(&e), "InvalidRequest");
        put_locked(
            &c,
            "pol",
            "k",
            ObjectLockMode::Compliance,
            days_from_now(20),
        )
        .await;
    });
    // Tightening takes effect at once. (Loosening is privileged: with two administrators it
    // waits for the second one, see tests/tests/identity.rs.)
    let raise =
        r#"{"min_days": 10, "max_days": 50, "modes": ["COMPLIANCE"], "below_min": "raise"}"#;
    let (s, body) = server.admin("PUT", "/v1/buckets/pol/retention-policy", Some(raise));
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("done"), "{body}");
    // Raise: a PUT without retention is stored with the minimum, in COMPLIANCE.
    runtime().block_on(async {
        let v = put(&c, "pol", "raised", b"plain bytes").await;
        let h = c
            .head_object()
            .bucket("pol")
            .key("raised")
            .version_id(&v)
            .send()
            .await
            .expect("head");
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Compliance));
        let created = h.last_modified().expect("lm").secs();
        let until = h.object_lock_retain_until_date().expect("until").secs();
        assert!(
            (until - created - 10 * DAY_SECS).abs() <= 1,
            "{until} {created}"
        );
        delete_fails_plain(&c, "pol", "raised", &v).await;
    });
    // One administrator alone: the two-person rule is not in force yet.
    let looser =
        r#"{"min_days": 1, "max_days": 100, "modes": ["COMPLIANCE"], "below_min": "raise"}"#;
    let (s, body) = server.admin("PUT", "/v1/buckets/pol/retention-policy", Some(looser));
    assert_eq!(s, 200, "{body}");
    let (_, shown) = server.admin("GET", "/v1/buckets/pol/retention-policy", None);
    assert!(shown.contains("\"min_days\":1,"), "{shown}");
}

async fn delete_fails_plain(c: &Client, b: &str, k: &str, v: &str) {
    let e = c
        .delete_object()
        .bucket(b)
        .key(k)
        .version_id(v)
        .send()
        .await
        .expect_err("locked");
    assert_eq!(error_code(&e), "AccessDenied");
}

/// Lifecycle's AbortIncompleteMultipartUpload: uploads older than the rule's days go, with
/// their parts; younger ones and those under other prefixes stay.
#[test]
fn lifecycle_aborts_stale_multipart_uploads() {
    use aws_sdk_s3::types::AbortIncompleteMultipartUpload;
    let (_dir, server, clock) = start_with_clock(&[]);
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("mpu")
            .send()
            .await
            .expect("create");
        for key in ["tmp/old", "keep/old"] {
            c.create_multipart_upload()
                .bucket("mpu")
                .key(key)
                .send()
                .await
                .expect("upload");
        }
        let rule = LifecycleRule::builder()
            .id("abort")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build()
            .expect("rule");
        c.put_bucket_lifecycle_configuration()
            .bucket("mpu")
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .expect("config"),
            )
            .send()
            .await
            .expect("lifecycle");
    });
    assert_eq!(lifecycle_run(&server)["uploads_aborted"], 0);
    clock.pass(2 * DAY_SECS);
    runtime().block_on(async {
        c.create_multipart_upload()
            .bucket("mpu")
            .key("tmp/new")
            .send()
            .await
            .expect("upload");
    });
    let r = lifecycle_run(&server);
    assert_eq!(r["uploads_aborted"], 1, "{r}");
    runtime().block_on(async {
        let left = c
            .list_multipart_uploads()
            .bucket("mpu")
            .send()
            .await
            .expect("list");
        let mut keys: Vec<&str> = left.uploads().iter().filter_map(|u| u.key()).collect();
        keys.sort();
        assert_eq!(keys, vec!["keep/old", "tmp/new"]);
    });
}
