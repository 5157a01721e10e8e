//! Object Lock through aws-sdk-s3 against the real server: every numbered rule of
//! ../shared/spec/object-lock.md (rule numbers in the comments), with status and error code.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, DefaultRetention, Delete,
    ObjectIdentifier, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule, VersioningConfiguration,
};
use stele_tests::lock::{days_from_now, grant_bypass, lock_bucket, put, put_locked, readable};
use stele_tests::{error_code, error_status, http_status, runtime, start_default};

fn lock_config(
    mode: ObjectLockRetentionMode,
    days: Option<i32>,
    years: Option<i32>,
) -> ObjectLockConfiguration {
    ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(
            ObjectLockRule::builder()
                .default_retention(
                    DefaultRetention::builder()
                        .mode(mode)
                        .set_days(days)
                        .set_years(years)
                        .build(),
                )
                .build(),
        )
        .build()
}

#[test]
fn turning_it_on() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        // 1. CreateBucket with the header enables Object Lock and versioning.
        lock_bucket(&c, "locked").await;
        let v = c
            .get_bucket_versioning()
            .bucket("locked")
            .send()
            .await
            .expect("versioning");
        assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
        let conf = c
            .get_object_lock_configuration()
            .bucket("locked")
            .send()
            .await
            .expect("lock configuration");
        let conf = conf.object_lock_configuration().expect("configuration");
        assert_eq!(
            conf.object_lock_enabled(),
            Some(&ObjectLockEnabled::Enabled)
        );
        assert!(conf.rule().is_none());

        // 5. A bucket without lock: 404 on the configuration, 400 on retention and hold.
        c.create_bucket()
            .bucket("plain")
            .send()
            .await
            .expect("create");
        let e = c
            .get_object_lock_configuration()
            .bucket("plain")
            .send()
            .await
            .expect_err("no lock configuration");
        assert_eq!(error_code(&e), "ObjectLockConfigurationNotFoundError");
        assert_eq!(error_status(&e), 404);
        put(&c, "plain", "k", b"x").await;
        let e = c
            .get_object_retention()
            .bucket("plain")
            .key("k")
            .send()
            .await
            .expect_err("retention");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );
        let e = c
            .get_object_legal_hold()
            .bucket("plain")
            .key("k")
            .send()
            .await
            .expect_err("hold");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );
        let e = c
            .put_object_retention()
            .bucket("plain")
            .key("k")
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(days_from_now(1))
                    .build(),
            )
            .send()
            .await
            .expect_err("put retention");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );
        let e = c
            .put_object_legal_hold()
            .bucket("plain")
            .key("k")
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect_err("put hold");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );

        // 2. PutObjectLockConfiguration needs versioning Enabled: 409 before, fine after.
        let conf = lock_config(ObjectLockRetentionMode::Governance, Some(1), None);
        let e = c
            .put_object_lock_configuration()
            .bucket("plain")
            .object_lock_configuration(conf.clone())
            .send()
            .await
            .expect_err("unversioned");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidBucketState", 409)
        );
        c.put_bucket_versioning()
            .bucket("plain")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable versioning");
        c.put_object_lock_configuration()
            .bucket("plain")
            .object_lock_configuration(conf)
            .send()
            .await
            .expect("lock on a versioned bucket");
        let got = c
            .get_object_lock_configuration()
            .bucket("plain")
            .send()
            .await
            .expect("get");
        let d = got
            .object_lock_configuration()
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention())
            .expect("default retention");
        assert_eq!(
            (d.mode(), d.days(), d.years()),
            (Some(&ObjectLockRetentionMode::Governance), Some(1), None)
        );

        // 3. Never off: suspending versioning on a lock bucket is 409.
        for b in ["locked", "plain"] {
            let e = c
                .put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Suspended)
                        .build(),
                )
                .send()
                .await
                .expect_err("suspend");
            assert_eq!(
                (error_code(&e).as_str(), error_status(&e)),
                ("InvalidBucketState", 409)
            );
        }

        // 4. Validation: all 400, and nothing changes.
        let cases: Vec<(ObjectLockConfiguration, &str)> = vec![
            (
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::from("Disabled"))
                    .build(),
                "MalformedXML",
            ),
            (
                lock_config(ObjectLockRetentionMode::from("governance"), Some(1), None),
                "MalformedXML",
            ),
            (
                lock_config(ObjectLockRetentionMode::Compliance, Some(1), Some(1)),
                "MalformedXML",
            ),
            (
                lock_config(ObjectLockRetentionMode::Compliance, Some(0), None),
                "InvalidRetentionPeriod",
            ),
            (
                lock_config(ObjectLockRetentionMode::Compliance, Some(-3), None),
                "InvalidRetentionPeriod",
            ),
            (
                lock_config(ObjectLockRetentionMode::Compliance, Some(36_501), None),
                "InvalidRetentionPeriod",
            ),
            (
                lock_config(ObjectLockRetentionMode::Compliance, None, Some(101)),
                "InvalidRetentionPeriod",
            ),
        ];
        for (conf, code) in cases {
            let e = c
                .put_object_lock_configuration()
                .bucket("locked")
                .object_lock_configuration(conf.clone())
                .send()
                .await
                .expect_err("invalid configuration");
            assert_eq!(
                (error_code(&e).as_str(), error_status(&e)),
                (code, 400),
                "{conf:?}"
            );
        }
        let got = c
            .get_object_lock_configuration()
            .bucket("locked")
            .send()
            .await
            .expect("get");
        assert!(
            got.object_lock_configuration()
                .and_then(|c| c.rule())
                .is_none()
        );
        // The longest periods S3 allows are accepted.
        for conf in [
            lock_config(ObjectLockRetentionMode::Compliance, Some(36_500), None),
            lock_config(ObjectLockRetentionMode::Compliance, None, Some(100)),
        ] {
            c.put_object_lock_configuration()
                .bucket("locked")
                .object_lock_configuration(conf)
                .send()
                .await
                .expect("longest period");
        }
    });
}

#[test]
fn writing_locked_versions() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "wlk").await;
        // 7. Lock headers on PUT.
        let until = days_from_now(3);
        let v1 = put_locked(&c, "wlk", "k", ObjectLockMode::Compliance, until).await;
        let h = c
            .head_object()
            .bucket("wlk")
            .key("k")
            .version_id(&v1)
            .send()
            .await
            .expect("head");
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Compliance));
        assert_eq!(
            h.object_lock_retain_until_date().map(|d| d.secs()),
            Some(until.secs())
        );
        assert_eq!(
            h.object_lock_legal_hold_status(),
            Some(&ObjectLockLegalHoldStatus::Off)
        );

        // Bad headers: 400 InvalidArgument, nothing stored.
        let before = c
            .list_object_versions()
            .bucket("wlk")
            .send()
            .await
            .expect("list")
            .versions()
            .len();
        let mode_only = c
            .put_object()
            .bucket("wlk")
            .key("bad")
            .body(ByteStream::from_static(b"x"))
            .object_lock_mode(ObjectLockMode::Governance)
            .send()
            .await
            .expect_err("mode without date");
        assert_eq!(
            (error_code(&mode_only).as_str(), error_status(&mode_only)),
            ("InvalidArgument", 400)
        );
        let date_only = c
            .put_object()
            .bucket("wlk")
            .key("bad")
            .body(ByteStream::from_static(b"x"))
            .object_lock_retain_until_date(days_from_now(1))
            .send()
            .await
            .expect_err("date without mode");
        assert_eq!(error_code(&date_only), "InvalidArgument");
        let past = c
            .put_object()
            .bucket("wlk")
            .key("bad")
            .body(ByteStream::from_static(b"x"))
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(days_from_now(-1))
            .send()
            .await
            .expect_err("date in the past");
        assert_eq!(
            (error_code(&past).as_str(), error_status(&past)),
            ("InvalidArgument", 400)
        );
        let unknown = c
            .put_object()
            .bucket("wlk")
            .key("bad")
            .body(ByteStream::from_static(b"x"))
            .object_lock_mode(ObjectLockMode::from("FOREVER"))
            .object_lock_retain_until_date(days_from_now(1))
            .send()
            .await
            .expect_err("unknown mode");
        assert_eq!(error_code(&unknown), "InvalidArgument");
        let hold = c
            .put_object()
            .bucket("wlk")
            .key("bad")
            .body(ByteStream::from_static(b"x"))
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::from("MAYBE"))
            .send()
            .await
            .expect_err("unknown legal hold");
        assert_eq!(error_code(&hold), "InvalidArgument");
        let after = c
            .list_object_versions()
            .bucket("wlk")
            .send()
            .await
            .expect("list")
            .versions()
            .len();
        assert_eq!(before, after);

        // Lock headers on a bucket without lock: 400 InvalidRequest.
        c.create_bucket()
            .bucket("nolock")
            .send()
            .await
            .expect("create");
        let e = c
            .put_object()
            .bucket("nolock")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
            .send()
            .await
            .expect_err("lock on a plain bucket");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );

        // 9. Locks belong to versions: a PUT to a locked key makes a new version.
        let v2 = put(&c, "wlk", "k", b"newer").await;
        assert_ne!(v1, v2);
        let h2 = c
            .head_object()
            .bucket("wlk")
            .key("k")
            .send()
            .await
            .expect("head");
        assert!(h2.object_lock_mode().is_none());
        assert!(readable(&c, "wlk", "k", &v1).await);

        // 8. Default retention: creation time + days; explicit headers win; changing the
        // default changes no existing version.
        c.put_object_lock_configuration()
            .bucket("wlk")
            .object_lock_configuration(lock_config(
                ObjectLockRetentionMode::Governance,
                Some(2),
                None,
            ))
            .send()
            .await
            .expect("default");
        let vd = put(&c, "wlk", "d", b"default").await;
        let h = c
            .head_object()
            .bucket("wlk")
            .key("d")
            .version_id(&vd)
            .send()
            .await
            .expect("head");
        let created = h.last_modified().expect("last modified").secs();
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Governance));
        let until = h.object_lock_retain_until_date().expect("until").secs();
        assert!(
            (until - created - 2 * 86_400).abs() <= 1,
            "until {until} created {created}"
        );
        let explicit = days_from_now(5);
        let ve = put_locked(&c, "wlk", "e", ObjectLockMode::Compliance, explicit).await;
        let h = c
            .head_object()
            .bucket("wlk")
            .key("e")
            .version_id(&ve)
            .send()
            .await
            .expect("head");
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Compliance));
        assert_eq!(
            h.object_lock_retain_until_date().map(|d| d.secs()),
            Some(explicit.secs())
        );
        c.put_object_lock_configuration()
            .bucket("wlk")
            .object_lock_configuration(lock_config(
                ObjectLockRetentionMode::Compliance,
                Some(30),
                None,
            ))
            .send()
            .await
            .expect("new default");
        let h = c
            .head_object()
            .bucket("wlk")
            .key("d")
            .version_id(&vd)
            .send()
            .await
            .expect("head");
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Governance));

        // 7. Multipart: headers at Create apply at Complete.
        let until = days_from_now(4);
        let up = c
            .create_multipart_upload()
            .bucket("wlk")
            .key("mp")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(until)
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
            .send()
            .await
            .expect("create upload");
        let id = up.upload_id().expect("id");
        let part = c
            .upload_part()
            .bucket("wlk")
            .key("mp")
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"one part"))
            .send()
            .await
            .expect("part");
        let done = c
            .complete_multipart_upload()
            .bucket("wlk")
            .key("mp")
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.e_tag().expect("etag"))
                            .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        let vm = done.version_id().expect("version");
        let h = c
            .head_object()
            .bucket("wlk")
            .key("mp")
            .version_id(vm)
            .send()
            .await
            .expect("head");
        assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Governance));
        assert_eq!(
            h.object_lock_retain_until_date().map(|d| d.secs()),
            Some(until.secs())
        );
        assert_eq!(
            h.object_lock_legal_hold_status(),
            Some(&ObjectLockLegalHoldStatus::On)
        );

        // 7. CopyObject with headers: the copy is locked as asked.
        let cp = c
            .copy_object()
            .bucket("wlk")
            .key("copy")
            .copy_source(format!("wlk/k?versionId={v1}"))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(until)
            .send()
            .await
            .expect("copy");
        let vc = cp.version_id().expect("version");
        let r = c
            .get_object_retention()
            .bucket("wlk")
            .key("copy")
            .version_id(vc)
            .send()
            .await
            .expect("retention");
        assert_eq!(
            r.retention().and_then(|r| r.mode()),
            Some(&ObjectLockRetentionMode::Compliance)
        );
    });
}

/// Rule 6: a write that may be locked needs Content-MD5 or a checksum; a wrong one is
/// BadDigest; nothing is stored either way.
#[test]
fn locked_writes_need_a_digest() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "dgs").await;
        c.create_bucket()
            .bucket("plain")
            .send()
            .await
            .expect("create");
    });
    let until = "2099-01-01T00:00:00.000Z";
    let lock_headers = [
        ("x-amz-object-lock-mode", "GOVERNANCE"),
        ("x-amz-object-lock-retain-until-date", until),
    ];
    let r = server.s3_raw("PUT", "/dgs/nodigest", "", &lock_headers, b"body");
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(r.contains("<Code>InvalidRequest</Code>"), "{r}");
    // Content-MD5 of "body" is correct here, wrong there.
    let good_md5 = ("Content-MD5", "hBotaJrYa9FhFEdFPCLG/A==");
    let bad_md5 = ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==");
    let r = server.s3_raw(
        "PUT",
        "/dgs/bad",
        "",
        &[lock_headers[0], lock_headers[1], bad_md5],
        b"body",
    );
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(r.contains("<Code>BadDigest</Code>"), "{r}");
    let r = server.s3_raw(
        "PUT",
        "/dgs/good",
        "",
        &[lock_headers[0], lock_headers[1], good_md5],
        b"body",
    );
    assert_eq!(http_status(&r), 200, "{r}");
    // A plain bucket needs no digest; a lock bucket with a default retention does.
    let r = server.s3_raw("PUT", "/plain/x", "", &[], b"body");
    assert_eq!(http_status(&r), 200, "{r}");
    runtime().block_on(async {
        c.put_object_lock_configuration()
            .bucket("dgs")
            .object_lock_configuration(lock_config(
                ObjectLockRetentionMode::Governance,
                Some(1),
                None,
            ))
            .send()
            .await
            .expect("default");
    });
    let r = server.s3_raw("PUT", "/dgs/default", "", &[], b"body");
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(r.contains("<Code>InvalidRequest</Code>"), "{r}");
    runtime().block_on(async {
        let keys: Vec<String> = c
            .list_object_versions()
            .bucket("dgs")
            .send()
            .await
            .expect("list")
            .versions()
            .iter()
            .filter_map(|v| v.key().map(str::to_owned))
            .collect();
        assert_eq!(keys, vec!["good".to_owned()]);
    });
}

#[test]
fn deleting() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "del").await;
        let gov = put_locked(&c, "del", "g", ObjectLockMode::Governance, days_from_now(3)).await;
        let comp = put_locked(&c, "del", "c", ObjectLockMode::Compliance, days_from_now(3)).await;

        // 10. Without a version id: a delete marker, 204, never locked, removable by id.
        let d = c
            .delete_object()
            .bucket("del")
            .key("g")
            .send()
            .await
            .expect("marker");
        assert_eq!(d.delete_marker(), Some(true));
        let marker = d.version_id().expect("marker id").to_owned();
        c.delete_object()
            .bucket("del")
            .key("g")
            .version_id(&marker)
            .send()
            .await
            .expect("remove marker");

        // 11. A locked version by id: 403 AccessDenied, and it stays.
        for (k, v) in [("g", &gov), ("c", &comp)] {
            let e = c
                .delete_object()
                .bucket("del")
                .key(k)
                .version_id(v)
                .send()
                .await
                .expect_err("locked");
            assert_eq!(
                (error_code(&e).as_str(), error_status(&e)),
                ("AccessDenied", 403)
            );
            assert!(readable(&c, "del", k, v).await);
        }

        // 12. The bypass header without the permission: 403.
        let e = c
            .delete_object()
            .bucket("del")
            .key("g")
            .version_id(&gov)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect_err("bypass without permission");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("AccessDenied", 403)
        );
        assert!(readable(&c, "del", "g", &gov).await);

        // 14. A bucket with versions cannot be deleted.
        let e = c
            .delete_bucket()
            .bucket("del")
            .send()
            .await
            .expect_err("not empty");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("BucketNotEmpty", 409)
        );

        // 13. DeleteObjects mixing locked and unlocked versions: 200, errors per version.
        let free = put(&c, "del", "free", b"free").await;
        let out = c
            .delete_objects()
            .bucket("del")
            .delete(
                Delete::builder()
                    .objects(
                        ObjectIdentifier::builder()
                            .key("c")
                            .version_id(&comp)
                            .build()
                            .expect("id"),
                    )
                    .objects(
                        ObjectIdentifier::builder()
                            .key("free")
                            .version_id(&free)
                            .build()
                            .expect("id"),
                    )
                    .objects(
                        ObjectIdentifier::builder()
                            .key("g")
                            .version_id(&gov)
                            .build()
                            .expect("id"),
                    )
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect("batch");
        let mut errors: Vec<(String, String, String)> = out
            .errors()
            .iter()
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_owned(),
                    e.version_id().unwrap_or_default().to_owned(),
                    e.code().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        errors.sort();
        assert_eq!(
            errors,
            vec![
                ("c".to_owned(), comp.clone(), "AccessDenied".to_owned()),
                ("g".to_owned(), gov.clone(), "AccessDenied".to_owned()),
            ]
        );
        assert_eq!(out.deleted().len(), 1);
        assert_eq!(out.deleted()[0].key(), Some("free"));

        // 12. With the permission and the header, GOVERNANCE goes; COMPLIANCE never.
        grant_bypass(&server);
        let e = c
            .delete_object()
            .bucket("del")
            .key("c")
            .version_id(&comp)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect_err("bypass never overrides compliance");
        assert_eq!(error_code(&e), "AccessDenied");
        // The permission alone, without the header, is no bypass.
        let e = c
            .delete_object()
            .bucket("del")
            .key("g")
            .version_id(&gov)
            .send()
            .await
            .expect_err("no header");
        assert_eq!(error_code(&e), "AccessDenied");
        c.delete_object()
            .bucket("del")
            .key("g")
            .version_id(&gov)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect("governance bypassed");
        assert!(!readable(&c, "del", "g", &gov).await);
        // Bypass never overrides a legal hold either.
        let held = put(&c, "del", "h", b"held").await;
        c.put_object_legal_hold()
            .bucket("del")
            .key("h")
            .version_id(&held)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect("hold");
        let e = c
            .delete_object()
            .bucket("del")
            .key("h")
            .version_id(&held)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect_err("held");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("AccessDenied", 403)
        );
        assert!(readable(&c, "del", "c", &comp).await);
    });
}

#[test]
fn changing_retention_and_legal_hold() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "chg").await;
        let until = days_from_now(10);
        let g = put_locked(&c, "chg", "g", ObjectLockMode::Governance, until).await;
        let k = put_locked(&c, "chg", "c", ObjectLockMode::Compliance, until).await;
        let before = c
            .head_object()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .send()
            .await
            .expect("head");
        let retention = |mode: ObjectLockRetentionMode, d: DateTime| {
            ObjectLockRetention::builder()
                .mode(mode)
                .retain_until_date(d)
                .build()
        };
        let put_ret = |key: &'static str, v: String, r: ObjectLockRetention, bypass: bool| {
            c.put_object_retention()
                .bucket("chg")
                .key(key)
                .version_id(v)
                .retention(r)
                .bypass_governance_retention(bypass)
                .send()
        };

        // 15. Bad mode: MalformedXML; date in the past: InvalidArgument.
        let e = put_ret(
            "g",
            g.clone(),
            retention(
                ObjectLockRetentionMode::from("governance"),
                days_from_now(20),
            ),
            false,
        )
        .await
        .expect_err("bad mode");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("MalformedXML", 400)
        );
        let e = put_ret(
            "g",
            g.clone(),
            retention(ObjectLockRetentionMode::Governance, days_from_now(-1)),
            false,
        )
        .await
        .expect_err("past");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidArgument", 400)
        );

        // 16. Extending is allowed in either mode.
        let later = days_from_now(20);
        put_ret(
            "g",
            g.clone(),
            retention(ObjectLockRetentionMode::Governance, later),
            false,
        )
        .await
        .expect("extend governance");
        put_ret(
            "c",
            k.clone(),
            retention(ObjectLockRetentionMode::Compliance, later),
            false,
        )
        .await
        .expect("extend compliance");
        // Shortening GOVERNANCE needs bypass; COMPLIANCE: never, nor COMPLIANCE -> GOVERNANCE.
        let shorter = days_from_now(5);
        let e = put_ret(
            "g",
            g.clone(),
            retention(ObjectLockRetentionMode::Governance, shorter),
            false,
        )
        .await
        .expect_err("shorten governance");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("AccessDenied", 403)
        );
        let e = put_ret(
            "g",
            g.clone(),
            retention(ObjectLockRetentionMode::Compliance, later),
            false,
        )
        .await
        .expect_err("governance to compliance without bypass");
        assert_eq!(error_code(&e), "AccessDenied");
        grant_bypass(&server);
        for (r, what) in [
            (
                retention(ObjectLockRetentionMode::Compliance, shorter),
                "shorten compliance",
            ),
            (
                retention(ObjectLockRetentionMode::Governance, days_from_now(30)),
                "compliance to governance",
            ),
        ] {
            let e = put_ret("c", k.clone(), r, true).await.expect_err(what);
            assert_eq!(
                (error_code(&e).as_str(), error_status(&e)),
                ("AccessDenied", 403),
                "{what}"
            );
        }
        put_ret(
            "g",
            g.clone(),
            retention(ObjectLockRetentionMode::Governance, shorter),
            true,
        )
        .await
        .expect("shorten governance with bypass");
        let r = c
            .get_object_retention()
            .bucket("chg")
            .key("c")
            .version_id(&k)
            .send()
            .await
            .expect("get");
        assert_eq!(
            r.retention()
                .and_then(|r| r.retain_until_date())
                .map(|d| d.secs()),
            Some(later.secs())
        );
        put_ret(
            "g",
            g.clone(),
            retention(ObjectLockRetentionMode::Compliance, shorter),
            true,
        )
        .await
        .expect("governance to compliance with bypass");
        let r = c
            .get_object_retention()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .send()
            .await
            .expect("get");
        assert_eq!(
            r.retention().and_then(|r| r.mode()),
            Some(&ObjectLockRetentionMode::Compliance)
        );

        // 17. Legal hold ON/OFF; other values MalformedXML.
        let hold = |s: ObjectLockLegalHoldStatus| ObjectLockLegalHold::builder().status(s).build();
        c.put_object_legal_hold()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .legal_hold(hold(ObjectLockLegalHoldStatus::On))
            .send()
            .await
            .expect("on");
        let h = c
            .get_object_legal_hold()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .send()
            .await
            .expect("get hold");
        assert_eq!(
            h.legal_hold().and_then(|h| h.status()),
            Some(&ObjectLockLegalHoldStatus::On)
        );
        let e = c
            .put_object_legal_hold()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .legal_hold(hold(ObjectLockLegalHoldStatus::from("on")))
            .send()
            .await
            .expect_err("bad hold");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("MalformedXML", 400)
        );
        c.put_object_legal_hold()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .legal_hold(hold(ObjectLockLegalHoldStatus::Off))
            .send()
            .await
            .expect("off");

        // 18. No new version, Last-Modified unchanged.
        let versions = c
            .list_object_versions()
            .bucket("chg")
            .prefix("g")
            .send()
            .await
            .expect("list");
        assert_eq!(versions.versions().len(), 1);
        let after = c
            .head_object()
            .bucket("chg")
            .key("g")
            .version_id(&g)
            .send()
            .await
            .expect("head");
        assert_eq!(before.last_modified(), after.last_modified());
        assert_eq!(before.e_tag(), after.e_tag());

        // 15. Without versionId the current version is targeted.
        let r = c
            .get_object_retention()
            .bucket("chg")
            .key("c")
            .send()
            .await
            .expect("current");
        assert_eq!(
            r.retention().and_then(|r| r.mode()),
            Some(&ObjectLockRetentionMode::Compliance)
        );
    });
}

/// Rules 19-20: lock headers on GET and HEAD (ISO 8601 with milliseconds), and the XML bodies.
#[test]
fn reading_lock_state() {
    let (_dir, server) = start_default();
    let c = server.client();
    let until = DateTime::from_secs(4_102_444_800); // 2100-01-01T00:00:00Z
    let v = runtime().block_on(async {
        lock_bucket(&c, "rdb").await;
        let v = put_locked(&c, "rdb", "k", ObjectLockMode::Compliance, until).await;
        let g = c
            .get_object()
            .bucket("rdb")
            .key("k")
            .send()
            .await
            .expect("get");
        assert_eq!(g.object_lock_mode(), Some(&ObjectLockMode::Compliance));
        assert_eq!(
            g.object_lock_retain_until_date().map(|d| d.secs()),
            Some(until.secs())
        );
        assert_eq!(
            g.object_lock_legal_hold_status(),
            Some(&ObjectLockLegalHoldStatus::Off)
        );
        v
    });
    let head = server.s3_raw("HEAD", "/rdb/k", &format!("versionId={v}"), &[], b"");
    assert!(
        head.contains("x-amz-object-lock-mode: COMPLIANCE"),
        "{head}"
    );
    assert!(
        head.contains("x-amz-object-lock-retain-until-date: 2100-01-01T00:00:00.000Z"),
        "{head}"
    );
    assert!(head.contains("x-amz-object-lock-legal-hold: OFF"), "{head}");
    let body = server.s3_raw("GET", "/rdb/k", "retention=", &[], b"");
    assert_eq!(http_status(&body), 200, "{body}");
    assert!(body.contains("<Mode>COMPLIANCE</Mode>"), "{body}");
    assert!(
        body.contains("<RetainUntilDate>2100-01-01T00:00:00.000Z</RetainUntilDate>"),
        "{body}"
    );
    let body = server.s3_raw("GET", "/rdb/k", "legal-hold=", &[], b"");
    assert!(
        body.contains("<LegalHold") && body.contains("<Status>OFF</Status>"),
        "{body}"
    );
}

/// Rule 12: with bypass a GOVERNANCE retention may be removed altogether; a version without
/// retention answers GetObjectRetention with 404 NoSuchObjectLockConfiguration.
#[test]
fn removing_a_governance_retention_needs_bypass() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "rmv").await;
        let v = put_locked(&c, "rmv", "k", ObjectLockMode::Governance, days_from_now(3)).await;
        let plain = put(&c, "rmv", "plain", b"p").await;
        let e = c
            .get_object_retention()
            .bucket("rmv")
            .key("plain")
            .version_id(&plain)
            .send()
            .await
            .expect_err("no retention");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("NoSuchObjectLockConfiguration", 404)
        );
        let remove = |bypass: bool| {
            c.put_object_retention()
                .bucket("rmv")
                .key("k")
                .version_id(&v)
                .retention(ObjectLockRetention::builder().build())
                .bypass_governance_retention(bypass)
                .send()
        };
        let e = remove(false).await.expect_err("remove without bypass");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("AccessDenied", 403)
        );
        let e = remove(true)
            .await
            .expect_err("header without the permission");
        assert_eq!(error_code(&e), "AccessDenied");
        grant_bypass(&server);
        remove(true).await.expect("removed with bypass");
        let e = c
            .get_object_retention()
            .bucket("rmv")
            .key("k")
            .version_id(&v)
            .send()
            .await
            .expect_err("gone");
        assert_eq!(error_code(&e), "NoSuchObjectLockConfiguration");
        // Now the version is free.
        c.delete_object()
            .bucket("rmv")
            .key("k")
            .version_id(&v)
            .send()
            .await
            .expect("delete");
    });
}

/// Raw requests for what an SDK will not send: a malformed date header (rule 7), an
/// UploadPart without a digest into a bucket with a default retention (rule 6), the
/// DeleteObject status and header (rule 10), and the S3 namespace on lock XML (rule 23).
#[test]
fn raw_lock_requests() {
    let (_dir, server) = start_default();
    let c = server.client();
    let upload_id = runtime().block_on(async {
        lock_bucket(&c, "raw").await;
        c.put_object_lock_configuration()
            .bucket("raw")
            .object_lock_configuration(lock_config(
                ObjectLockRetentionMode::Governance,
                Some(1),
                None,
            ))
            .send()
            .await
            .expect("default");
        c.create_multipart_upload()
            .bucket("raw")
            .key("mp")
            .send()
            .await
            .expect("upload")
            .upload_id()
            .expect("id")
            .to_owned()
    });
    let md5 = ("Content-MD5", "hBotaJrYa9FhFEdFPCLG/A=="); // of "body"
    let r = server.s3_raw(
        "PUT",
        "/raw/k",
        "",
        &[
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            ("x-amz-object-lock-retain-until-date", "next tuesday"),
            md5,
        ],
        b"body",
    );
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(r.contains("<Code>InvalidArgument</Code>"), "{r}");
    let q = format!("partNumber=1&uploadId={upload_id}");
    let r = server.s3_raw("PUT", "/raw/mp", &q, &[], b"body");
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(r.contains("<Code>InvalidRequest</Code>"), "{r}");
    let r = server.s3_raw("PUT", "/raw/mp", &q, &[md5], b"body");
    assert_eq!(http_status(&r), 200, "{r}");
    let r = server.s3_raw("PUT", "/raw/k", "", &[md5], b"body");
    assert_eq!(http_status(&r), 200, "{r}");
    let r = server.s3_raw("GET", "/raw/k", "retention=", &[], b"");
    assert!(
        r.contains(r#"<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#),
        "{r}"
    );
    let r = server.s3_raw("DELETE", "/raw/k", "", &[], b"");
    assert_eq!(http_status(&r), 204, "{r}");
    assert!(
        r.to_ascii_lowercase().contains("x-amz-delete-marker: true"),
        "{r}"
    );
    assert!(r.to_ascii_lowercase().contains("x-amz-version-id: "), "{r}");
}

/// Edge cases of rules 7, 8, 10, 12-13, 15-17.
#[test]
fn lock_edge_cases() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        lock_bucket(&c, "edge").await;
        c.create_bucket()
            .bucket("edge-plain")
            .send()
            .await
            .expect("plain");
        // 7. CreateMultipartUpload and CopyObject: bad headers are 400 InvalidArgument; on
        // a bucket without lock, 400 InvalidRequest.
        let e = c
            .create_multipart_upload()
            .bucket("edge")
            .key("m")
            .object_lock_mode(ObjectLockMode::Governance)
            .send()
            .await
            .expect_err("mode without date");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidArgument", 400)
        );
        let e = c
            .create_multipart_upload()
            .bucket("edge")
            .key("m")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(days_from_now(-2))
            .send()
            .await
            .expect_err("past date");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidArgument", 400)
        );
        let e = c
            .create_multipart_upload()
            .bucket("edge-plain")
            .key("m")
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
            .send()
            .await
            .expect_err("plain bucket");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );
        let src = put(&c, "edge", "src", b"source").await;
        let e = c
            .copy_object()
            .bucket("edge")
            .key("dst")
            .copy_source(format!("edge/src?versionId={src}"))
            .object_lock_retain_until_date(days_from_now(2))
            .send()
            .await
            .expect_err("date without mode");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidArgument", 400)
        );
        let e = c
            .copy_object()
            .bucket("edge-plain")
            .key("dst")
            .copy_source(format!("edge/src?versionId={src}"))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(days_from_now(2))
            .send()
            .await
            .expect_err("copy with lock into a plain bucket");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidRequest", 400)
        );

        // 8. A default in years: until = creation + 1 calendar year (365 or 366 days).
        c.put_object_lock_configuration()
            .bucket("edge")
            .object_lock_configuration(lock_config(
                ObjectLockRetentionMode::Governance,
                None,
                Some(1),
            ))
            .send()
            .await
            .expect("years");
        let vy = put(&c, "edge", "yearly", b"y").await;
        let h = c
            .head_object()
            .bucket("edge")
            .key("yearly")
            .version_id(&vy)
            .send()
            .await
            .expect("head");
        let span = h.object_lock_retain_until_date().expect("until").secs()
            - h.last_modified().expect("lm").secs();
        assert!(
            (365 * 86_400 - 1..=366 * 86_400 + 1).contains(&span),
            "{span}"
        );

        // 10. A delete marker carries no lock: retention or hold on it is 405.
        let marker = c
            .delete_object()
            .bucket("edge")
            .key("yearly")
            .send()
            .await
            .expect("marker");
        let mid = marker.version_id().expect("marker id").to_owned();
        let e = c
            .put_object_legal_hold()
            .bucket("edge")
            .key("yearly")
            .version_id(&mid)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect_err("hold on a marker");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("MethodNotAllowed", 405)
        );
        let e = c
            .put_object_retention()
            .bucket("edge")
            .key("yearly")
            .version_id(&mid)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(days_from_now(2))
                    .build(),
            )
            .send()
            .await
            .expect_err("retention on a marker");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("MethodNotAllowed", 405)
        );

        // 15. Without versionId, PutObjectRetention targets the current version.
        let cur = put_locked(
            &c,
            "edge",
            "cur",
            ObjectLockMode::Compliance,
            days_from_now(2),
        )
        .await;
        let later = days_from_now(9);
        c.put_object_retention()
            .bucket("edge")
            .key("cur")
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .retain_until_date(later)
                    .build(),
            )
            .send()
            .await
            .expect("extend current");
        let r = c
            .get_object_retention()
            .bucket("edge")
            .key("cur")
            .version_id(&cur)
            .send()
            .await
            .expect("get");
        assert_eq!(
            r.retention()
                .and_then(|r| r.retain_until_date())
                .map(|d| d.secs()),
            Some(later.secs())
        );

        // 16. Removing COMPLIANCE (an empty Retention) is 403, bypass or not.
        grant_bypass(&server);
        for bypass in [false, true] {
            let e = c
                .put_object_retention()
                .bucket("edge")
                .key("cur")
                .version_id(&cur)
                .retention(ObjectLockRetention::builder().build())
                .bypass_governance_retention(bypass)
                .send()
                .await
                .expect_err("remove compliance");
            assert_eq!(
                (error_code(&e).as_str(), error_status(&e)),
                ("AccessDenied", 403)
            );
        }

        // 17. A LegalHold without Status is MalformedXML.
        let e = c
            .put_object_legal_hold()
            .bucket("edge")
            .key("cur")
            .version_id(&cur)
            .legal_hold(ObjectLockLegalHold::builder().build())
            .send()
            .await
            .expect_err("no status");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("MalformedXML", 400)
        );

        // 12-13. DeleteObjects with the bypass header and the permission removes GOVERNANCE
        // versions and still refuses COMPLIANCE ones.
        let gov = put_locked(
            &c,
            "edge",
            "gov",
            ObjectLockMode::Governance,
            days_from_now(3),
        )
        .await;
        let out = c
            .delete_objects()
            .bucket("edge")
            .bypass_governance_retention(true)
            .delete(
                Delete::builder()
                    .objects(
                        ObjectIdentifier::builder()
                            .key("gov")
                            .version_id(&gov)
                            .build()
                            .expect("id"),
                    )
                    .objects(
                        ObjectIdentifier::builder()
                            .key("cur")
                            .version_id(&cur)
                            .build()
                            .expect("id"),
                    )
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect("batch");
        assert_eq!(out.deleted().len(), 1);
        assert_eq!(out.deleted()[0].key(), Some("gov"));
        assert_eq!(out.errors().len(), 1);
        assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
        assert!(readable(&c, "edge", "cur", &cur).await);
    });
}
