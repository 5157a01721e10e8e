//! The backup clients' own request patterns against the real server, emulated with the
//! SDK and raw signed requests where the client cannot run here (Veeam, Kopia and Velero
//! do not; restic runs for real in `tests/e2e/clients.sh` and `replication.rs`).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    Delete, ObjectIdentifier, ObjectLockEnabled, ObjectLockMode, ObjectLockRetention,
    ObjectLockRetentionMode,
};
use stele_tests::{
    DAY_SECS, Server, create_versioned, error_code, error_status, http_request, http_status,
    runtime, s3_client_with, start_default, start_with_clock,
};

const VEEAM_UA: &str = "APN/1.0 Veeam/1.0 Backup/12.1";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

fn iso(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .expect("date")
}

fn content_md5(body: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

fn rt_lock_bucket(server: &Server, bucket: &str) {
    let (s, body) = server.admin(
        "POST",
        "/v1/buckets",
        Some(&format!(r#"{{"name":"{bucket}","lock":true}}"#)),
    );
    assert_eq!(s, 201, "{body}");
}

async fn lock_bucket(c: &Client, bucket: &str) {
    c.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("bucket with Object Lock");
}

/// Veeam's own identity: a user with the `backup-writer` role and an S3 key for it.
struct Writer {
    key: String,
    secret: String,
}

fn backup_writer(server: &Server) -> Writer {
    let (s, body) = server.admin(
        "POST",
        "/v1/users",
        Some(r#"{"name":"veeam","grants":[{"role":"backup-writer"}]}"#),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = server.admin("POST", "/v1/users/veeam/keys", Some(r#"{"plane":"s3"}"#));
    assert_eq!(s, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    Writer {
        key: v["access_key"].as_str().expect("key").to_owned(),
        secret: v["secret_key"].as_str().expect("secret").to_owned(),
    }
}

/// A request signed with `w`'s key as Veeam sends it (its User-Agent; for a body,
/// Content-MD5): (status, response body).
fn veeam_raw(
    server: &Server,
    w: &Writer,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> (u16, String) {
    let host = server.s3_url.strip_prefix("http://").expect("http");
    let signer = stele_tools::sigv4::Signer {
        access_key: w.key.clone(),
        secret_key: w.secret.clone(),
        region: "us-east-1".into(),
    };
    let mut head = format!("{method} {path}?{query} HTTP/1.1\r\nUser-Agent: {VEEAM_UA}");
    for (k, v) in signer.sign(method, host, path, query) {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    if !body.is_empty() {
        head.push_str(&format!("\r\nContent-MD5: {}", content_md5(body)));
    }
    let resp = http_request(host, &head, body);
    let text = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (http_status(&resp), text)
}

/// Veeam: probes `?object-lock` first; COMPLIANCE per object with the bucket's default
/// retention off; a new version on a locked key; PutObjectRetention one object at a time
/// with namespace-less `<Retention>` bodies; conditional writes; DeleteObjects of 1000
/// keys, refused per key while locked and taken once retention ends; its User-Agent in
/// the log. All of it with a `backup-writer` key: the role covers Veeam's permission set.
#[test]
fn veeam_immutable_repository() {
    let (_dir, server, clock) = start_with_clock(&[]);
    let bucket = "veeam-immutable";
    // The administrator makes the bucket (Object Lock, no default retention) and Veeam's
    // identity; Veeam works with that key only.
    rt_lock_bucket(&server, bucket);
    let w = backup_writer(&server);
    let c = s3_client_with(&server.s3_url, &w.key, &w.secret);
    let n = 1000;
    let rt = runtime();

    // The probe: Object Lock enabled, no default retention (Veeam requires it off), in
    // S3's namespace.
    let (s, body) = veeam_raw(
        &server,
        &w,
        "GET",
        &format!("/{bucket}"),
        "object-lock=",
        b"",
    );
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        ) && body.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")
            && !body.contains("<Rule>"),
        "{body}"
    );

    // Blocks, each with its own COMPLIANCE date (block generation + 10 days).
    let until = now_secs() + 10 * DAY_SECS;
    let versions: Vec<(String, String)> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..n {
            let key = format!("Veeam/Backup/job/Clients/blocks/{i:04}.blk");
            let body = format!("block {i}").into_bytes();
            let put = c
                .put_object()
                .bucket(bucket)
                .key(&key)
                .content_md5(content_md5(&body))
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(DateTime::from_secs(until))
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
            // Veeam needs x-amz-version-id on every PUT.
            out.push((key, put.version_id().expect("x-amz-version-id").to_owned()));
        }
        out
    });

    rt.block_on(async {
        // A locked key takes a new version; the old one stays.
        let (key, first) = &versions[0];
        let again = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_md5(content_md5(b"block 0 v2"))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(until))
            .body(ByteStream::from_static(b"block 0 v2"))
            .send()
            .await
            .expect("new version on a locked key");
        assert_ne!(again.version_id(), Some(first.as_str()));
        let old = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(first)
            .send()
            .await
            .expect("old version");
        assert_eq!(
            &old.body.collect().await.expect("body").into_bytes()[..],
            b"block 0"
        );

        // Conditional write of a checkpoint: refused when the key exists.
        let e = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .content_md5(content_md5(b"x"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("If-None-Match: * on an existing key");
        assert_eq!(error_status(&e), 412);
    });

    // Reused blocks: retention extended one call per object, bodies without a
    // namespace, as Veeam sends them.
    let extended = until + 20 * DAY_SECS;
    for (key, version) in versions.iter().take(200) {
        let body = format!(
            "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            iso(extended)
        );
        let (s, text) = veeam_raw(
            &server,
            &w,
            "PUT",
            &format!("/{bucket}/{key}"),
            &format!("retention=&versionId={version}"),
            body.as_bytes(),
        );
        assert_eq!(s, 200, "{key}: {text}");
    }
    rt.block_on(async {
        for (key, version) in [&versions[0], &versions[199]] {
            let r = c
                .get_object_retention()
                .bucket(bucket)
                .key(key)
                .version_id(version)
                .send()
                .await
                .expect("retention");
            let r = r.retention().expect("retention");
            assert_eq!(r.mode(), Some(&ObjectLockRetentionMode::Compliance));
            assert_eq!(r.retain_until_date().map(|d| d.secs()), Some(extended));
        }
        let untouched = c
            .get_object_retention()
            .bucket(bucket)
            .key(&versions[200].0)
            .version_id(&versions[200].1)
            .send()
            .await
            .expect("retention");
        assert_eq!(
            untouched
                .retention()
                .and_then(|r| r.retain_until_date())
                .map(|d| d.secs()),
            Some(until)
        );
        // Shortening COMPLIANCE is refused.
        let e = c
            .put_object_retention()
            .bucket(bucket)
            .key(&versions[0].0)
            .version_id(&versions[0].1)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .retain_until_date(DateTime::from_secs(until))
                    .build(),
            )
            .send()
            .await
            .expect_err("shorten");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "AccessDenied")
        );
    });

    // Deleting expired data: DeleteObjects of 1000 version ids. While locked, every
    // key is refused and nothing goes.
    let delete_batch = |batch: &[(String, String)]| {
        Delete::builder()
            .set_objects(Some(
                batch
                    .iter()
                    .map(|(k, v)| {
                        ObjectIdentifier::builder()
                            .key(k)
                            .version_id(v)
                            .build()
                            .expect("id")
                    })
                    .collect(),
            ))
            .quiet(false)
            .build()
            .expect("delete")
    };
    rt.block_on(async {
        let out = c
            .delete_objects()
            .bucket(bucket)
            .delete(delete_batch(&versions))
            .send()
            .await
            .expect("DeleteObjects");
        assert_eq!(out.errors().len(), n);
        assert!(
            out.errors()
                .iter()
                .all(|e| e.code() == Some("AccessDenied"))
        );
        assert!(out.deleted().is_empty());
        // More than 1000 keys in one request is S3's MalformedXML.
        let mut too_many = versions.clone();
        too_many.push(versions[0].clone());
        let e = c
            .delete_objects()
            .bucket(bucket)
            .delete(delete_batch(&too_many))
            .send()
            .await
            .expect_err("1001 keys");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (400, "MalformedXML")
        );
    });
    // Once the (unextended) retention has ended, the same batch removes those.
    clock.pass(11 * DAY_SECS);
    rt.block_on(async {
        let out = c
            .delete_objects()
            .bucket(bucket)
            .delete(delete_batch(&versions))
            .send()
            .await
            .expect("DeleteObjects");
        assert_eq!(out.deleted().len(), n - 200);
        assert_eq!(out.errors().len(), 200, "the extended ones stay");
        let left = c
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .expect("versions");
        // 200 extended blocks and block 0's second version.
        assert_eq!(left.versions().len(), 201);
    });

    let log = std::fs::read_to_string(&server.stderr_log).expect("log");
    assert!(
        log.lines().any(|l| l.contains("S3 client recognised")
            && l.contains("veeam")
            && l.contains(VEEAM_UA)),
        "Veeam not recognised in the log"
    );
}

/// Kopia: GetObjectLockConfiguration at open; retention headers and Content-MD5 on every
/// blob; extension of retention at maintenance; a point-in-time read of old versions; and
/// a sub-resource the server does not know never answered with a listing.
#[test]
fn kopia_repository_with_retention() {
    let (_dir, server) = start_default();
    let c = server.client();
    let bucket = "kopia-repo";
    runtime().block_on(async {
        lock_bucket(&c, bucket).await;
        let cfg = c
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
            .expect("lock configuration at open");
        assert_eq!(
            cfg.object_lock_configuration()
                .and_then(|c| c.object_lock_enabled()),
            Some(&ObjectLockEnabled::Enabled)
        );
        let until = now_secs() + 30 * DAY_SECS;
        let put = |key: &'static str, body: &'static [u8]| {
            c.put_object()
                .bucket(bucket)
                .key(key)
                .content_md5(content_md5(body))
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(DateTime::from_secs(until))
                .body(ByteStream::from_static(body))
                .send()
        };
        put("p0123456789abcdef", b"pack one").await.expect("pack");
        put("kopia.repository", b"format v1")
            .await
            .expect("format blob");
        let first_epoch = c
            .head_object()
            .bucket(bucket)
            .key("kopia.repository")
            .send()
            .await
            .expect("head")
            .last_modified()
            .expect("last modified")
            .secs();
        // A second later Kopia rewrites its format blob (a new version).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        put("kopia.repository", b"format v2")
            .await
            .expect("format blob v2");

        // Maintenance: every blob's retention extended.
        let later = until + 30 * DAY_SECS;
        let versions = c
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .expect("versions");
        for v in versions.versions() {
            c.put_object_retention()
                .bucket(bucket)
                .key(v.key().expect("key"))
                .version_id(v.version_id().expect("id"))
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::Compliance)
                        .retain_until_date(DateTime::from_secs(later))
                        .build(),
                )
                .send()
                .await
                .expect("extend");
        }
        for v in versions.versions() {
            let r = c
                .get_object_retention()
                .bucket(bucket)
                .key(v.key().expect("key"))
                .version_id(v.version_id().expect("id"))
                .send()
                .await
                .expect("retention");
            assert_eq!(
                r.retention()
                    .and_then(|r| r.retain_until_date())
                    .map(|d| d.secs()),
                Some(later)
            );
        }

        // Point in time: for each key, the newest version no later than the first
        // epoch, read by its id.
        let mut at_point = Vec::new();
        for key in ["kopia.repository", "p0123456789abcdef"] {
            let v = versions
                .versions()
                .iter()
                .filter(|v| v.key() == Some(key))
                .filter(|v| v.last_modified().is_some_and(|t| t.secs() <= first_epoch))
                .max_by_key(|v| v.last_modified().map(|t| t.secs()))
                .unwrap_or_else(|| panic!("{key} at the point in time"));
            let got = c
                .get_object()
                .bucket(bucket)
                .key(key)
                .version_id(v.version_id().expect("id"))
                .send()
                .await
                .expect("read at the point in time");
            at_point.push(
                got.body
                    .collect()
                    .await
                    .expect("body")
                    .into_bytes()
                    .to_vec(),
            );
        }
        assert_eq!(at_point, [b"format v1".to_vec(), b"pack one".to_vec()]);
    });

    // Lock probes by a name the server does not know are refused, never a listing.
    for query in ["object-lockx=", "retention=", "legal-hold=", "kopia-lock="] {
        let resp = server.s3_raw("GET", &format!("/{bucket}"), query, &[], b"");
        assert_eq!(http_status(&resp), 501, "?{query}: {resp}");
        assert!(resp.contains("<Code>NotImplemented</Code>"), "{resp}");
        assert!(!resp.contains("ListBucketResult"), "{resp}");
    }
    // Authentication comes first: unsigned, the probe is refused as S3 refuses it; for a
    // bucket that does not exist, NoSuchBucket.
    let host = server.s3_url.strip_prefix("http://").expect("http");
    let unsigned = http_request(host, &format!("GET /{bucket}?object-lockx HTTP/1.1"), b"");
    assert_eq!(http_status(&unsigned), 403, "{unsigned}");
    let missing = server.s3_raw("GET", "/no-such-bucket", "object-lockx=", &[], b"");
    assert_eq!(http_status(&missing), 404, "{missing}");
    assert!(missing.contains("<Code>NoSuchBucket</Code>"), "{missing}");
    // The listing itself still answers.
    let resp = server.s3_raw(
        "GET",
        &format!("/{bucket}"),
        "list-type=2&prefix=p",
        &[],
        b"",
    );
    assert_eq!(http_status(&resp), 200);
    assert!(resp.contains("<Key>p0123456789abcdef</Key>"), "{resp}");
}

/// Velero: `velero-backup.json` rewritten while a backup finalizes makes a new version
/// (the old one stays, locked by the bucket's default retention); deleting the backup
/// leaves a delete marker and every version readable by id.
#[test]
fn velero_rewrites_and_deletes_keep_every_version() {
    let (_dir, server) = start_default();
    let c = server.client();
    let bucket = "velero-backups";
    runtime().block_on(async {
        create_versioned(&c, bucket).await;
        c.put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(
                aws_sdk_s3::types::ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(
                        aws_sdk_s3::types::ObjectLockRule::builder()
                            .default_retention(
                                aws_sdk_s3::types::DefaultRetention::builder()
                                    .mode(ObjectLockRetentionMode::Governance)
                                    .days(7)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("default retention");
        let key = "backups/nightly-1/velero-backup.json";
        let mut ids = Vec::new();
        for phase in ["InProgress", "Finalizing", "Completed"] {
            let body = format!("{{\"status\":{{\"phase\":\"{phase}\"}}}}").into_bytes();
            let put = c
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_md5(content_md5(&body))
                .body(ByteStream::from(body))
                .send()
                .await
                .expect("write velero-backup.json");
            ids.push(put.version_id().expect("version").to_owned());
        }
        let current = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("current");
        assert_eq!(
            &current.body.collect().await.expect("body").into_bytes()[..],
            br#"{"status":{"phase":"Completed"}}"#
        );
        // `velero backup delete`: a delete marker, nothing removed.
        let del = c
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("delete");
        assert_eq!(del.delete_marker(), Some(true));
        let e = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect_err("deleted");
        assert_eq!(error_code(&e), "NoSuchKey");
        for (id, phase) in ids.iter().zip(["InProgress", "Finalizing", "Completed"]) {
            let v = c
                .get_object()
                .bucket(bucket)
                .key(key)
                .version_id(id)
                .send()
                .await
                .expect("old version");
            let text =
                String::from_utf8(v.body.collect().await.expect("body").into_bytes().to_vec())
                    .expect("utf-8");
            assert!(text.contains(phase), "{text}");
            let r = c
                .get_object_retention()
                .bucket(bucket)
                .key(key)
                .version_id(id)
                .send()
                .await
                .expect("retention");
            assert_eq!(
                r.retention().and_then(|r| r.mode()),
                Some(&ObjectLockRetentionMode::Governance)
            );
            // Removing a version before its retention ends is refused.
            let e = c
                .delete_object()
                .bucket(bucket)
                .key(key)
                .version_id(id)
                .send()
                .await
                .expect_err("locked version");
            assert_eq!(error_status(&e), 403);
        }
    });
}
