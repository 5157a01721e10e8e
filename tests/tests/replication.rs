//! Site replication between two real deployments: site A (the source) sends to site B
//! over TLS, B's certificate pinned by its fingerprint, with a key that holds only the
//! `replication-peer` role on B's target bucket. What arrives is judged on B through its
//! own S3 listener, never through A's view of it.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, DeleteMarkerReplication,
    DeleteMarkerReplicationStatus, Destination, ObjectLockMode, ReplicationConfiguration,
    ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, VersioningConfiguration,
};
use stele_client::S3Request;
use stele_tests::sites::{
    Peer, add_peer, ctl, drained, replica_version, send_replication, start_a,
};
use stele_tests::{Server, runtime};

struct Sites {
    _dir: tempfile::TempDir,
    a: Server,
    b: Peer,
}

/// A plain-HTTP source A with a locked bucket `src`, and a TLS peer B (see
/// [`Peer::start`]) that A knows as peer `b`, its certificate pinned.
fn sites(rt: &tokio::runtime::Runtime) -> Sites {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Peer::start(rt, dir.path(), true);
    let a = start_a(dir.path());
    add_peer(&a, "b", &b.server.s3_url, &b);
    rt.block_on(async {
        a.client()
            .create_bucket()
            .bucket("src")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect("src");
    });
    Sites { _dir: dir, a, b }
}

fn replicate_to_b(
    rt: &tokio::runtime::Runtime,
    a: &aws_sdk_s3::Client,
    delete_markers: bool,
) -> Result<(), String> {
    let status = if delete_markers {
        DeleteMarkerReplicationStatus::Enabled
    } else {
        DeleteMarkerReplicationStatus::Disabled
    };
    let rule = ReplicationRule::builder()
        .id("to-b")
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(DeleteMarkerReplication::builder().status(status).build())
        .destination(
            Destination::builder()
                .bucket("arn:aws:s3:::replica")
                .account("b")
                .build()
                .expect("destination"),
        )
        .build()
        .expect("rule");
    let config = ReplicationConfiguration::builder()
        .role("ignored")
        .rules(rule)
        .build()
        .expect("config");
    rt.block_on(
        a.put_bucket_replication()
            .bucket("src")
            .replication_configuration(config)
            .send(),
    )
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

/// B's own administrator removes a replica version (unlocked): B loses it.
fn lose_on_b(rt: &tokio::runtime::Runtime, b: &Peer, key: &str, vid: &str) {
    let r = rt
        .block_on(
            b.s3.send(
                S3Request::new(http::Method::DELETE, "replica")
                    .with_key(key)
                    .with_query("versionId", vid),
            ),
        )
        .expect("delete");
    assert_eq!(r.status, 204, "{key}");
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn versions_reach_the_peer_with_their_ids_times_locks_and_bytes() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    replicate_to_b(&rt, &a, false).expect("rule");
    let until = aws_sdk_s3::primitives::DateTime::from_secs(
        (std::time::SystemTime::now() + Duration::from_secs(3 * 86_400))
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64,
    );
    let small = data(1000, 1);
    let big = data(3 << 20, 2);
    let (small_v, big_v) = rt.block_on(async {
        let small_v = a
            .put_object()
            .bucket("src")
            .key("backup/small")
            .content_type("application/x-test")
            .metadata("client", "restic")
            .body(ByteStream::from(small.clone()))
            .send()
            .await
            .expect("small")
            .version_id
            .expect("vid");
        let big_v = a
            .put_object()
            .bucket("src")
            .key("backup/big")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(until)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(big.clone()))
            .send()
            .await
            .expect("big")
            .version_id
            .expect("vid");
        (small_v, big_v)
    });
    // A multipart object: its parts' digests travel, the ETag stays `hex-2`.
    let part1 = data(5 << 20, 3);
    let part2 = data(1 << 20, 4);
    let multi_v = rt.block_on(async {
        let up = a
            .create_multipart_upload()
            .bucket("src")
            .key("backup/multi")
            .send()
            .await
            .expect("create");
        let id = up.upload_id().expect("id");
        let mut parts = Vec::new();
        for (n, p) in [(1, &part1), (2, &part2)] {
            let r = a
                .upload_part()
                .bucket("src")
                .key("backup/multi")
                .upload_id(id)
                .part_number(n)
                .body(ByteStream::from(p.clone()))
                .send()
                .await
                .expect("part");
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(n)
                    .e_tag(r.e_tag().expect("etag"))
                    .build(),
            );
        }
        a.complete_multipart_upload()
            .bucket("src")
            .key("backup/multi")
            .upload_id(id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .expect("complete")
            .version_id
            .expect("vid")
    });
    let multi = [part1.clone(), part2.clone()].concat();
    for (key, vid, bytes) in [
        ("backup/small", &small_v, &small),
        ("backup/big", &big_v, &big),
        ("backup/multi", &multi_v, &multi),
    ] {
        let on_b = s.b.wait_for(&rt, key, vid, Duration::from_secs(60));
        let on_a = rt
            .block_on(
                a.head_object()
                    .bucket("src")
                    .key(key)
                    .version_id(vid)
                    .send(),
            )
            .expect("head a");
        assert_eq!(on_b.header("x-amz-version-id"), Some(vid.as_str()), "{key}");
        assert_eq!(
            on_b.header("x-amz-replication-status"),
            Some("REPLICA"),
            "{key}"
        );
        assert_eq!(on_b.header("etag"), on_a.e_tag(), "{key}");
        let modified_a = on_a
            .last_modified()
            .expect("last modified")
            .fmt(aws_sdk_s3::primitives::DateTimeFormat::HttpDate)
            .expect("format");
        assert_eq!(
            on_b.header("last-modified"),
            Some(modified_a.as_str()),
            "{key}"
        );
        assert_eq!(s.b.get(&rt, key, vid), *bytes, "{key}");
    }
    let small_b =
        s.b.wait_for(&rt, "backup/small", &small_v, Duration::from_secs(60));
    assert_eq!(small_b.header("content-type"), Some("application/x-test"));
    assert_eq!(small_b.header("x-amz-meta-client"), Some("restic"));
    let big_b =
        s.b.wait_for(&rt, "backup/big", &big_v, Duration::from_secs(60));
    assert_eq!(big_b.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    let until_b = big_b
        .header("x-amz-object-lock-retain-until-date")
        .expect("until");
    let until_a = until
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .expect("fmt");
    assert_eq!(&until_b[..19], &until_a[..19], "same retain-until date");
    let status = drained(&s.a, "b", Duration::from_secs(60));
    assert_eq!(status["rpo_seconds"], 0.0, "{status}");
    // A's source version answers COMPLETED once B acknowledged it (S3's spelling).
    let on_a = rt
        .block_on(a.head_object().bucket("src").key("backup/big").send())
        .expect("head a");
    assert_eq!(
        on_a.replication_status().map(|s| s.as_str().to_owned()),
        Some("COMPLETED".to_owned())
    );
    // A tag change on A follows the version to B (S3 replicates tag changes).
    rt.block_on(
        a.put_object_tagging()
            .bucket("src")
            .key("backup/small")
            .version_id(&small_v)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(
                        aws_sdk_s3::types::Tag::builder()
                            .key("tier")
                            .value("gold")
                            .build()
                            .expect("tag"),
                    )
                    .build()
                    .expect("tagging"),
            )
            .send(),
    )
    .expect("tag on A");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = rt
            .block_on(
                s.b.s3.send(
                    S3Request::new(http::Method::GET, "replica")
                        .with_key("backup/small")
                        .with_query("versionId", &small_v)
                        .with_query("tagging", ""),
                ),
            )
            .expect("tagging on B");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if text.contains("<Key>tier</Key><Value>gold</Value>") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tags never reached B: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // B is a read-only replica: its own tag change is refused.
    let r = rt
        .block_on(
            s.b.s3.send(
                S3Request::new(http::Method::PUT, "replica")
                    .with_key("backup/small")
                    .with_query("versionId", &small_v)
                    .with_query("tagging", "")
                    .with_body(bytes::Bytes::from_static(
                        b"<Tagging><TagSet><Tag><Key>x</Key><Value>y</Value></Tag></TagSet></Tagging>",
                    )),
            ),
        )
        .expect("answer");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (409, Some("InvalidBucketState"))
    );
}

#[test]
fn the_peer_key_can_only_add_and_strengthen() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    replicate_to_b(&rt, &a, false).expect("rule");
    let until = aws_sdk_s3::primitives::DateTime::from_secs(
        (std::time::SystemTime::now() + Duration::from_secs(86_400))
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64,
    );
    let vid = rt
        .block_on(
            a.put_object()
                .bucket("src")
                .key("k")
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(until)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from_static(b"locked"))
                .send(),
        )
        .expect("put")
        .version_id
        .expect("vid");
    let before = s.b.wait_for(&rt, "k", &vid, Duration::from_secs(60));
    // A version deletion, an ordinary overwrite, a read of data, a configuration change.
    let attempts = [
        (
            "version deletion",
            S3Request::new(http::Method::DELETE, "replica")
                .with_key("k")
                .with_query("versionId", &vid),
        ),
        (
            "overwrite",
            S3Request::new(http::Method::PUT, "replica")
                .with_key("k")
                .with_body(bytes::Bytes::from_static(b"overwrite")),
        ),
        (
            "read",
            S3Request::new(http::Method::GET, "replica")
                .with_key("k")
                .with_query("versionId", &vid),
        ),
        (
            "versioning suspended",
            S3Request::new(http::Method::PUT, "replica")
                .with_query("versioning", "")
                .with_body(bytes::Bytes::from_static(
                    b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>",
                )),
        ),
    ];
    for (what, req) in attempts {
        let r = rt.block_on(s.b.peer.send(req)).expect("answer");
        assert_eq!(
            (r.status, r.error_code().unwrap_or_default()),
            (403, "AccessDenied".to_owned()),
            "{what}"
        );
    }
    // A replication request with a client's key (one that may write) is refused: only the
    // peer role may choose version ids.
    let forged = stele::replication::ReplicaOp::DeleteMarker {
        version_id: stele::VersionId::generate(stele::Timestamp(1)),
        created: stele::Timestamp(1),
    };
    let r = send_replication(&rt, &s.b.s3, "k", &forged, Vec::new());
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("AccessDenied"))
    );
    // A weaker lock through the peer key: answered as a divergence, nothing weakened.
    let weaker = stele::replication::ReplicaOp::Lock {
        version_id: vid.parse().expect("vid"),
        lock: stele::meta::LockRecord::default(),
    };
    let r = send_replication(&rt, &s.b.peer, "k", &weaker, Vec::new());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-stele-replication-result"), Some("diverged"));
    let after = s.b.wait_for(&rt, "k", &vid, Duration::from_secs(60));
    assert_eq!(after.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert_eq!(
        after.header("x-amz-object-lock-retain-until-date"),
        before.header("x-amz-object-lock-retain-until-date"),
        "the COMPLIANCE date stays"
    );
    // The same version id with other bytes: refused (409), the stored one kept.
    let other = b"other bytes".to_vec();
    let forged = replica_version(vid.parse().expect("vid"), &other, other.len() as u64);
    let r = send_replication(&rt, &s.b.peer, "k", &forged, other);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (409, Some("ReplicaConflict"))
    );
    assert_eq!(s.b.get(&rt, "k", &vid), b"locked");
    // B's own backup credential cannot delete the COMPLIANCE replica either.
    let r = rt
        .block_on(
            s.b.s3.send(
                S3Request::new(http::Method::DELETE, "replica")
                    .with_key("k")
                    .with_query("versionId", &vid),
            ),
        )
        .expect("answer");
    assert_eq!(r.status, 403);
}

#[test]
fn delete_markers_replicate_only_when_the_rule_says_and_version_deletions_never() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    replicate_to_b(&rt, &a, false).expect("rule");
    let put = |key: &str| {
        rt.block_on(
            a.put_object()
                .bucket("src")
                .key(key)
                .body(ByteStream::from_static(b"v"))
                .send(),
        )
        .expect("put")
        .version_id
        .expect("vid")
    };
    let off = put("off");
    s.b.wait_for(&rt, "off", &off, Duration::from_secs(60));
    let marker_off = rt
        .block_on(a.delete_object().bucket("src").key("off").send())
        .expect("marker")
        .version_id
        .expect("marker id");
    // A version deletion at the source (no lock on it).
    let gone = put("gone");
    s.b.wait_for(&rt, "gone", &gone, Duration::from_secs(60));
    rt.block_on(
        a.delete_object()
            .bucket("src")
            .key("gone")
            .version_id(&gone)
            .send(),
    )
    .expect("version delete");
    replicate_to_b(&rt, &a, true).expect("rule with markers");
    let on = put("on");
    s.b.wait_for(&rt, "on", &on, Duration::from_secs(60));
    let marker_on = rt
        .block_on(a.delete_object().bucket("src").key("on").send())
        .expect("marker")
        .version_id
        .expect("marker id");
    drained(&s.a, "b", Duration::from_secs(60));
    let versions = |key: &str| -> String {
        let r = rt
            .block_on(
                s.b.s3.send(
                    S3Request::new(http::Method::GET, "replica")
                        .with_query("versions", "")
                        .with_query("prefix", key),
                ),
            )
            .expect("list");
        String::from_utf8_lossy(&r.body).into_owned()
    };
    let on_list = versions("on");
    assert!(on_list.contains(&marker_on), "marker replicated: {on_list}");
    assert!(on_list.contains("<DeleteMarker>"), "{on_list}");
    let off_list = versions("off");
    assert!(
        !off_list.contains(&marker_off),
        "no marker while off: {off_list}"
    );
    assert!(!off_list.contains("<DeleteMarker>"), "{off_list}");
    let gone_list = versions("gone");
    assert!(
        gone_list.contains(&gone),
        "the deleted version stays on B: {gone_list}"
    );
}

#[test]
fn a_rule_is_refused_when_the_target_cannot_keep_the_locks_or_the_pin_is_wrong() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    // A target bucket without Object Lock on B.
    let plain = rt
        .block_on(s.b.s3.send(S3Request::new(http::Method::PUT, "plain")))
        .expect("create");
    assert_eq!(plain.status, 200);
    let versioning = rt
        .block_on(
            s.b.s3.send(
                S3Request::new(http::Method::PUT, "plain")
                    .with_query("versioning", "")
                    .with_body(bytes::Bytes::from_static(
                        b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
                    )),
            ),
        )
        .expect("versioning");
    assert_eq!(versioning.status, 200);
    ctl(
        &s.b.server,
        &[
            "grant",
            "peer-a",
            "--role",
            "replication-peer:replica,plain",
        ],
    );
    let rule = |bucket: &str, account: &str| {
        ReplicationConfiguration::builder()
            .role("ignored")
            .rules(
                ReplicationRule::builder()
                    .status(ReplicationRuleStatus::Enabled)
                    .filter(ReplicationRuleFilter::builder().prefix("").build())
                    .destination(
                        Destination::builder()
                            .bucket(format!("arn:aws:s3:::{bucket}"))
                            .account(account)
                            .build()
                            .expect("destination"),
                    )
                    .build()
                    .expect("rule"),
            )
            .build()
            .expect("config")
    };
    let e = rt
        .block_on(
            a.put_bucket_replication()
                .bucket("src")
                .replication_configuration(rule("plain", "b"))
                .send(),
        )
        .expect_err("no Object Lock on the target");
    assert_eq!(stele_tests::error_code(&e), "InvalidRequest");
    assert!(format!("{e:?}").contains("Object Lock"), "{e:?}");
    // A peer pinned to another certificate: the sender's client refuses the handshake.
    let (s2, body) = s.a.admin(
        "POST",
        "/v1/replication/peers",
        Some(
            &serde_json::json!({
                "name": "wrong",
                "endpoint": s.b.server.s3_url,
                "fingerprint": "00".repeat(32),
                "access_key": s.b.key.0,
                "secret_key": s.b.key.1,
            })
            .to_string(),
        ),
    );
    assert_eq!(s2, 201, "{body}");
    let e = rt
        .block_on(
            a.put_bucket_replication()
                .bucket("src")
                .replication_configuration(rule("replica", "wrong"))
                .send(),
        )
        .expect_err("wrong pin");
    assert!(
        format!("{e:?}").to_lowercase().contains("certificate"),
        "{e:?}"
    );
    // Nothing was configured by the refusals.
    let e = rt
        .block_on(a.get_bucket_replication().bucket("src").send())
        .expect_err("no configuration");
    assert_eq!(
        stele_tests::error_code(&e),
        "ReplicationConfigurationNotFoundError"
    );
    // An unversioned source cannot replicate at all.
    rt.block_on(a.create_bucket().bucket("unversioned").send())
        .expect("bucket");
    let e = rt
        .block_on(
            a.put_bucket_replication()
                .bucket("unversioned")
                .replication_configuration(rule("replica", "b"))
                .send(),
        )
        .expect_err("unversioned");
    assert_eq!(stele_tests::error_code(&e), "InvalidRequest");
    // Enabled versioning makes it acceptable (the target has Object Lock; the source
    // does not need it).
    rt.block_on(
        a.put_bucket_versioning()
            .bucket("unversioned")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send(),
    )
    .expect("versioning");
    rt.block_on(
        a.put_bucket_replication()
            .bucket("unversioned")
            .replication_configuration(rule("replica", "b"))
            .send(),
    )
    .expect("accepted");
    let got = rt
        .block_on(a.get_bucket_replication().bucket("unversioned").send())
        .expect("get");
    let rules = got.replication_configuration().expect("config").rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].destination().expect("dest").account(), Some("b"));
    assert_eq!(
        rules[0].destination().expect("dest").bucket(),
        "arn:aws:s3:::replica"
    );
}

/// restic's own commands against the real deployments: a backup to A, restored from B.
fn restic(repo: &str, key: (&str, &str), extra: &[&str], args: &[&str]) -> std::process::Output {
    std::process::Command::new("restic")
        .args(["-o", "s3.bucket-lookup=path", "--no-cache"])
        .args(extra)
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", "stele-replication")
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("restic (installed by scripts/setup-deps --clients)")
}

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn restic_backs_up_to_a_and_restores_from_b() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    replicate_to_b(&rt, &a, false).expect("rule");
    let tree = s._dir.path().join("tree");
    std::fs::create_dir_all(tree.join("d")).expect("tree");
    std::fs::write(tree.join("d/big.bin"), data(2 << 20, 5)).expect("file");
    std::fs::write(tree.join("small.txt"), b"a small file\n").expect("file");
    let key = (stele_tests::ACCESS_KEY, stele_tests::SECRET_KEY);
    let repo_a = format!("s3:{}/src", s.a.s3_url);
    ok(&restic(&repo_a, key, &[], &["init"]));
    ok(&restic(
        &repo_a,
        key,
        &[],
        &["backup", tree.to_str().expect("path")],
    ));
    std::fs::write(tree.join("small.txt"), b"changed\n").expect("file");
    ok(&restic(
        &repo_a,
        key,
        &[],
        &["backup", tree.to_str().expect("path")],
    ));
    // Every object version A holds reaches B with its id.
    let listed = rt
        .block_on(a.list_object_versions().bucket("src").send())
        .expect("versions");
    for v in listed.versions() {
        s.b.wait_for(
            &rt,
            v.key().expect("key"),
            v.version_id().expect("vid"),
            Duration::from_secs(60),
        );
    }
    drained(&s.a, "b", Duration::from_secs(60));
    // restic reads the copy on B, over TLS with B's certificate as its CA.
    let ca = s._dir.path().join("b/stele-keys/tls/cert.pem");
    let repo_b = format!("s3:{}/replica", s.b.server.s3_url);
    let tls = ["--cacert", ca.to_str().expect("path")];
    ok(&restic(
        &repo_b,
        key,
        &tls,
        &["--no-lock", "check", "--read-data"],
    ));
    let back = s._dir.path().join("back");
    ok(&restic(
        &repo_b,
        key,
        &tls,
        &[
            "--no-lock",
            "restore",
            "latest",
            "--target",
            back.to_str().expect("path"),
        ],
    ));
    let restored = back.join(tree.strip_prefix("/").expect("absolute"));
    assert_eq!(
        std::fs::read(restored.join("d/big.bin")).expect("big"),
        data(2 << 20, 5)
    );
    assert_eq!(
        std::fs::read(restored.join("small.txt")).expect("small"),
        b"changed\n"
    );
}

#[test]
fn a_backfill_sends_older_versions_and_a_resync_only_what_the_peer_lost() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    // Written before any rule: only a backfill sends them.
    let mut ledger = Vec::new();
    for i in 0..20u8 {
        let key = format!("old/{i:02}");
        let vid = rt
            .block_on(
                a.put_object()
                    .bucket("src")
                    .key(&key)
                    .body(ByteStream::from(data(100_000, i)))
                    .send(),
            )
            .expect("put")
            .version_id
            .expect("vid");
        ledger.push((key, vid));
    }
    let rules = serde_json::json!({"rules": [{
        "id": "to-b", "peer": "b", "target_bucket": "replica", "backfill": true,
    }]});
    let (st, body) = s.a.admin(
        "PUT",
        "/v1/buckets/src/replication",
        Some(&rules.to_string()),
    );
    assert_eq!(st, 200, "{body}");
    for (key, vid) in &ledger {
        s.b.wait_for(&rt, key, vid, Duration::from_secs(60));
    }
    // The same rule without backfill: what a resync does must not depend on it.
    let rules = serde_json::json!({"rules": [{
        "id": "to-b", "peer": "b", "target_bucket": "replica", "backfill": false,
    }]});
    let (st, body) = s.a.admin(
        "PUT",
        "/v1/buckets/src/replication",
        Some(&rules.to_string()),
    );
    assert_eq!(st, 200, "{body}");
    let before = drained(&s.a, "b", Duration::from_secs(60));
    // B loses five versions (its own administrator deletes them: they have no lock).
    for (key, vid) in ledger.iter().take(5) {
        lose_on_b(&rt, &s.b, key, vid);
    }
    let (st, body) = s.a.admin("POST", "/v1/replication/peers/b/resync", None);
    assert_eq!(st, 200, "{body}");
    for (key, vid) in &ledger {
        s.b.wait_for(&rt, key, vid, Duration::from_secs(60));
    }
    let after = drained(&s.a, "b", Duration::from_secs(60));
    let sent = after["sent_bytes"].as_u64().expect("bytes")
        - before["sent_bytes"].as_u64().expect("bytes");
    let skipped = after["backfill_skipped"].as_u64().expect("skipped")
        - before["backfill_skipped"].as_u64().expect("skipped");
    assert_eq!(
        sent,
        5 * 100_000,
        "only the lost versions travelled: {after}"
    );
    assert_eq!(skipped, 15, "the others were found on B: {after}");
    for (i, (key, vid)) in ledger.iter().enumerate() {
        assert_eq!(s.b.get(&rt, key, vid), data(100_000, i as u8), "{key}");
    }
}

/// The scheduled audit asks B about every version it acknowledged: two that B's own
/// administrator removed are named missing, alerted, and sent again by themselves.
#[test]
fn the_audit_finds_what_the_peer_lost_and_sends_it_again() {
    let rt = runtime();
    let s = sites(&rt);
    let a = s.a.client();
    replicate_to_b(&rt, &a, false).expect("rule");
    let mut ledger = Vec::new();
    for i in 0..6u8 {
        let key = format!("audit/{i}");
        let vid = rt
            .block_on(
                a.put_object()
                    .bucket("src")
                    .key(&key)
                    .body(ByteStream::from(data(10_000, i)))
                    .send(),
            )
            .expect("put")
            .version_id
            .expect("vid");
        ledger.push((key, vid));
    }
    drained(&s.a, "b", Duration::from_secs(60));
    for i in [1, 4] {
        lose_on_b(&rt, &s.b, &ledger[i].0, &ledger[i].1);
    }
    ctl(&s.a, &["replication", "audit", "--run"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let report = loop {
        let all = stele_tests::sites::json(&ctl(&s.a, &["replication", "audit", "--json"]));
        if let Some(r) = all.as_array().and_then(|l| {
            l.iter()
                .find(|r| r["bucket"] == "src" && !r["finished"].is_null() && r["running"] == false)
        }) {
            break r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit finished: {all}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (
            report["checked"].as_u64(),
            report["missing"].as_u64(),
            report["mismatched"].as_u64()
        ),
        (Some(6), Some(2), Some(0)),
        "{report}"
    );
    let mut named: Vec<&str> = report["named"]
        .as_array()
        .expect("named")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    named.sort_unstable();
    assert_eq!(named, ["audit/1", "audit/4"], "{report}");
    // Sent again by themselves.
    for (key, vid) in &ledger {
        s.b.wait_for(&rt, key, vid, Duration::from_secs(60));
    }
    for (i, (key, vid)) in ledger.iter().enumerate() {
        assert_eq!(s.b.get(&rt, key, vid), data(10_000, i as u8), "{key}");
    }
}
