//! Identities against the real server: the role matrix on both listeners, keys per
//! listener, no plaintext secret anywhere on disk or in the logs, the two-person rule,
//! rate-limited authentication, and key rotation.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, DefaultRetention, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, ObjectLockRule, Tag, Tagging,
    VersioningConfiguration,
};
use stele_tests::lock::{days_from_now, lock_bucket, put, put_locked};
use stele_tests::{
    ACCESS_KEY, ADMIN_KEY, ADMIN_SECRET, DAY_SECS, SECRET_KEY, Server, error_code, error_status,
    runtime, s3_client_with, start_default, start_with_clock,
};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Creates a user with one role on all buckets; returns it.
fn add_user(server: &Server, name: &str, role: &str) {
    let (s, body) = server.admin(
        "POST",
        "/v1/users",
        Some(&format!(
            r#"{{"name":"{name}","grants":[{{"role":"{role}"}}]}}"#
        )),
    );
    assert_eq!(s, 201, "{body}");
}

/// A new key for `user` on `plane` ("s3" or "admin"): (access key, secret).
fn new_key(server: &Server, user: &str, plane: &str) -> (String, String) {
    let (s, body) = server.admin(
        "POST",
        &format!("/v1/users/{user}/keys"),
        Some(&format!(r#"{{"plane":"{plane}"}}"#)),
    );
    assert_eq!(s, 201, "{body}");
    let v = json(&body);
    (
        v["access_key"].as_str().expect("access key").to_owned(),
        v["secret_key"].as_str().expect("secret").to_owned(),
    )
}

const S3_CLASSES: [&str; 22] = [
    "list-buckets",
    "create-bucket",
    "delete-bucket",
    "head-bucket",
    "put-versioning",
    "get-lock-config",
    "put-lock-config",
    "get-lifecycle",
    "put-lifecycle",
    "list-objects",
    "get-object",
    "head-object",
    "put-object",
    "delete-object",
    "get-tags",
    "put-tags",
    "get-retention",
    "put-retention",
    "get-legal-hold",
    "put-legal-hold",
    "copy-object",
    "multipart",
];

/// What each role may do on the S3 listener (the issue's role list).
fn s3_allowed(role: &str) -> &'static [&'static str] {
    match role {
        "backup-writer" => &[
            "list-buckets",
            "create-bucket",
            "head-bucket",
            "get-lock-config",
            "list-objects",
            "get-object",
            "head-object",
            "put-object",
            "delete-object",
            "get-tags",
            "put-tags",
            "get-retention",
            "put-retention",
            "get-legal-hold",
            "put-legal-hold",
            "copy-object",
            "multipart",
        ],
        "restore-reader" => &[
            "list-buckets",
            "head-bucket",
            "list-objects",
            "get-object",
            "head-object",
        ],
        "auditor" => &[
            "list-buckets",
            "head-bucket",
            "get-lock-config",
            "get-lifecycle",
            "list-objects",
            "head-object",
            "get-retention",
            "get-legal-hold",
        ],
        "admin" => &[
            "list-buckets",
            "create-bucket",
            "delete-bucket",
            "head-bucket",
            "put-versioning",
            "get-lock-config",
            "put-lock-config",
            "get-lifecycle",
            "put-lifecycle",
            "list-objects",
        ],
        // What a peer site's sender asks of its target bucket (its settings, whether a
        // version is there); its replication requests are tested in replication.rs.
        "replication-peer" => &["head-bucket", "get-lock-config", "head-object"],
        _ => &[],
    }
}

struct Fixture {
    obj_version: String,
    locked_version: String,
}

fn lifecycle(id: &str) -> BucketLifecycleConfiguration {
    BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id(id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                .expiration(LifecycleExpiration::builder().days(30).build())
                .build()
                .expect("rule"),
        )
        .build()
        .expect("config")
}

/// One operation of class `class` as `c`; the S3 error code if it failed.
async fn attempt(c: &Client, class: &str, role: &str, f: &Fixture) -> Result<(), (String, u16)> {
    macro_rules! run {
        ($e:expr) => {
            $e.await
                .map(|_| ())
                .map_err(|e| (error_code(&e), error_status(&e)))
        };
    }
    let tag = Tagging::builder()
        .tag_set(Tag::builder().key("k").value(role).build().expect("tag"))
        .build()
        .expect("tagging");
    match class {
        "list-buckets" => run!(c.list_buckets().send()),
        "create-bucket" => run!(c.create_bucket().bucket(format!("cb-{role}")).send()),
        "delete-bucket" => run!(c.delete_bucket().bucket(format!("db-{role}")).send()),
        "head-bucket" => run!(c.head_bucket().bucket("mtx").send()),
        "put-versioning" => run!(
            c.put_bucket_versioning()
                .bucket("pvv")
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build()
                )
                .send()
        ),
        "get-lock-config" => run!(c.get_object_lock_configuration().bucket("mtx").send()),
        "put-lock-config" => run!(
            c.put_object_lock_configuration()
                .bucket("mtx")
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .rule(
                            ObjectLockRule::builder()
                                .default_retention(
                                    DefaultRetention::builder()
                                        .mode(ObjectLockRetentionMode::Governance)
                                        .days(1)
                                        .build()
                                )
                                .build()
                        )
                        .build()
                )
                .send()
        ),
        "get-lifecycle" => run!(c.get_bucket_lifecycle_configuration().bucket("mtx").send()),
        "put-lifecycle" => run!(
            c.put_bucket_lifecycle_configuration()
                .bucket("mtx")
                .lifecycle_configuration(lifecycle(role))
                .send()
        ),
        "list-objects" => run!(c.list_objects_v2().bucket("mtx").send()),
        "get-object" => run!(
            c.get_object()
                .bucket("mtx")
                .key("obj")
                .version_id(&f.obj_version)
                .send()
        ),
        "head-object" => run!(
            c.head_object()
                .bucket("mtx")
                .key("obj")
                .version_id(&f.obj_version)
                .send()
        ),
        "put-object" => run!(
            c.put_object()
                .bucket("mtx")
                .key(format!("new-{role}"))
                .body(ByteStream::from_static(b"new"))
                .send()
        ),
        "delete-object" => run!(
            c.delete_object()
                .bucket("mtx")
                .key(format!("del-{role}"))
                .send()
        ),
        "get-tags" => run!(
            c.get_object_tagging()
                .bucket("mtx")
                .key("obj")
                .version_id(&f.obj_version)
                .send()
        ),
        "put-tags" => run!(
            c.put_object_tagging()
                .bucket("mtx")
                .key("obj")
                .version_id(&f.obj_version)
                .tagging(tag)
                .send()
        ),
        "get-retention" => run!(
            c.get_object_retention()
                .bucket("mtx")
                .key("locked")
                .version_id(&f.locked_version)
                .send()
        ),
        "put-retention" => run!(
            c.put_object_retention()
                .bucket("mtx")
                .key("locked")
                .version_id(&f.locked_version)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::Governance)
                        .retain_until_date(days_from_now(40))
                        .build()
                )
                .send()
        ),
        "get-legal-hold" => run!(
            c.get_object_legal_hold()
                .bucket("mtx")
                .key("locked")
                .version_id(&f.locked_version)
                .send()
        ),
        "put-legal-hold" => run!(
            c.put_object_legal_hold()
                .bucket("mtx")
                .key("locked")
                .version_id(&f.locked_version)
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(ObjectLockLegalHoldStatus::On)
                        .build()
                )
                .send()
        ),
        "copy-object" => run!(
            c.copy_object()
                .bucket("mtx")
                .key(format!("copy-{role}"))
                .copy_source(format!("mtx/obj?versionId={}", f.obj_version))
                .send()
        ),
        "multipart" => {
            let up = c
                .create_multipart_upload()
                .bucket("mtx")
                .key(format!("mp-{role}"))
                .send()
                .await
                .map_err(|e| (error_code(&e), error_status(&e)))?;
            run!(
                c.abort_multipart_upload()
                    .bucket("mtx")
                    .key(format!("mp-{role}"))
                    .upload_id(up.upload_id().unwrap_or_default())
                    .send()
            )
        }
        other => panic!("unknown class {other}"),
    }
}

/// Everything a denied request could have changed, as the owner sees it.
async fn snapshot(owner: &Client) -> String {
    let buckets: Vec<String> = owner
        .list_buckets()
        .send()
        .await
        .expect("buckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    let versions = owner
        .list_object_versions()
        .bucket("mtx")
        .send()
        .await
        .expect("versions");
    let v: Vec<String> = versions
        .versions()
        .iter()
        .map(|v| format!("{:?}/{:?}", v.key(), v.version_id()))
        .chain(
            versions
                .delete_markers()
                .iter()
                .map(|m| format!("marker {:?}", m.key())),
        )
        .collect();
    let lock = owner
        .get_object_lock_configuration()
        .bucket("mtx")
        .send()
        .await
        .map(|o| format!("{:?}", o.object_lock_configuration()))
        .unwrap_or_default();
    let lc = owner
        .get_bucket_lifecycle_configuration()
        .bucket("mtx")
        .send()
        .await
        .map(|o| format!("{:?}", o.rules()))
        .unwrap_or_default();
    let versioning = owner
        .get_bucket_versioning()
        .bucket("pvv")
        .send()
        .await
        .map(|o| format!("{:?}", o.status()))
        .unwrap_or_default();
    let uploads = owner
        .list_multipart_uploads()
        .bucket("mtx")
        .send()
        .await
        .map(|o| o.uploads().len())
        .unwrap_or_default();
    format!("{buckets:?}|{v:?}|{lock}|{lc}|{versioning}|{uploads}")
}

/// Tags, retention and legal hold of the fixture versions.
async fn version_state(owner: &Client, f: &Fixture) -> String {
    let tags = owner
        .get_object_tagging()
        .bucket("mtx")
        .key("obj")
        .version_id(&f.obj_version)
        .send()
        .await
        .map(|o| format!("{:?}", o.tag_set()))
        .unwrap_or_default();
    let ret = owner
        .get_object_retention()
        .bucket("mtx")
        .key("locked")
        .version_id(&f.locked_version)
        .send()
        .await
        .map(|o| format!("{:?}", o.retention()))
        .unwrap_or_default();
    let hold = owner
        .get_object_legal_hold()
        .bucket("mtx")
        .key("locked")
        .version_id(&f.locked_version)
        .send()
        .await
        .map(|o| format!("{:?}", o.legal_hold()))
        .unwrap_or_default();
    format!("{tags}|{ret}|{hold}")
}

/// An admin API call: name, method, path, body, and the roles allowed to make it.
type AdminCall = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
);

const ROLES: [&str; 5] = [
    "backup-writer",
    "restore-reader",
    "auditor",
    "admin",
    "replication-peer",
];

/// For each role, every S3 operation class and every admin call: the allowed ones
/// succeed, the rest answer 403 AccessDenied and change nothing.
#[test]
fn role_matrix() {
    let (_dir, server) = start_default();
    let owner = server.client();
    let fixture = runtime().block_on(async {
        lock_bucket(&owner, "mtx").await;
        owner
            .create_bucket()
            .bucket("pvv")
            .send()
            .await
            .expect("pvv");
        for role in ROLES {
            owner
                .create_bucket()
                .bucket(format!("db-{role}"))
                .send()
                .await
                .expect("db");
            put(&owner, "mtx", &format!("del-{role}"), b"to delete").await;
        }
        owner
            .put_bucket_lifecycle_configuration()
            .bucket("mtx")
            .lifecycle_configuration(lifecycle("owner"))
            .send()
            .await
            .expect("lifecycle");
        Fixture {
            obj_version: put(&owner, "mtx", "obj", b"object data").await,
            locked_version: put_locked(
                &owner,
                "mtx",
                "locked",
                ObjectLockMode::Governance,
                days_from_now(30),
            )
            .await,
        }
    });
    let mut admin_keys = Vec::new();
    for role in ROLES {
        let user = format!("u-{role}");
        add_user(&server, &user, role);
        let (k, s) = new_key(&server, &user, "s3");
        admin_keys.push((role, new_key(&server, &user, "admin")));
        let c = s3_client_with(&server.s3_url, &k, &s);
        runtime().block_on(async {
            for class in S3_CLASSES {
                let allowed = s3_allowed(role).contains(&class);
                let before = (
                    snapshot(&owner).await,
                    version_state(&owner, &fixture).await,
                );
                let r = attempt(&c, class, role, &fixture).await;
                if allowed {
                    assert!(r.is_ok(), "{role} should be allowed {class}: {r:?}");
                } else {
                    // A HEAD response has no body, so only its status says why.
                    let r = if class.starts_with("head-") {
                        r.map_err(|(_, status)| ("AccessDenied".to_owned(), status))
                    } else {
                        r
                    };
                    assert_eq!(
                        r,
                        Err(("AccessDenied".to_owned(), 403)),
                        "{role} should be denied {class}"
                    );
                    let after = (
                        snapshot(&owner).await,
                        version_state(&owner, &fixture).await,
                    );
                    assert_eq!(
                        before, after,
                        "{role} {class} was denied but changed something"
                    );
                }
            }
        });
    }
    // The admin listener.
    let (s, _) = server.admin("POST", "/v1/buckets", Some(r#"{"name":"pbb","lock":true}"#));
    assert_eq!(s, 201);
    let calls: [AdminCall; 8] = [
        ("status", "GET", "/v1/status", None, &["auditor", "admin"]),
        ("users", "GET", "/v1/users", None, &["admin"]),
        (
            "get-policy",
            "GET",
            "/v1/buckets/pbb/retention-policy",
            None,
            &["auditor", "admin"],
        ),
        (
            "put-policy",
            "PUT",
            "/v1/buckets/pbb/retention-policy",
            Some(
                r#"{"min_days":1,"max_days":null,"modes":["COMPLIANCE","GOVERNANCE"],"below_min":"raise"}"#,
            ),
            &["admin"],
        ),
        (
            "run-lifecycle",
            "POST",
            "/v1/lifecycle/run",
            None,
            &["admin"],
        ),
        ("approvals", "GET", "/v1/approvals", None, &["admin"]),
        (
            "add-user",
            "POST",
            "/v1/users",
            Some("{\"name\":\"NAME\"}"),
            &["admin"],
        ),
        (
            "create-bucket",
            "POST",
            "/v1/buckets",
            Some("{\"name\":\"NAME\"}"),
            &["admin"],
        ),
    ];
    for (role, (key, secret)) in &admin_keys {
        for (name, method, path, body, allowed) in &calls {
            let body = body.map(|b| b.replace("NAME", &format!("made-by-{role}")));
            let users_before = server.admin("GET", "/v1/users", None).1;
            let (s, resp) = server.admin_as(key, secret, method, path, body.as_deref());
            if allowed.contains(role) {
                assert!((200..300).contains(&s), "{role} {name}: {s} {resp}");
            } else {
                assert_eq!(s, 403, "{role} {name}: {resp}");
                assert!(resp.contains("AccessDenied"), "{resp}");
                assert_eq!(users_before, server.admin("GET", "/v1/users", None).1);
            }
        }
    }
    // Nothing an unauthorised admin call tried exists.
    let users = server.admin("GET", "/v1/users", None).1;
    assert!(!users.contains("made-by-auditor") && !users.contains("made-by-backup-writer"));
}

/// An S3 key is refused on the admin port and an admin credential on the S3 port.
#[test]
fn keys_open_one_listener_only() {
    let (_dir, server) = start_default();
    let (s, body) = server.admin_as(ACCESS_KEY, SECRET_KEY, "GET", "/v1/status", None);
    assert_eq!(s, 401, "{body}");
    let (s, _) = server.admin("GET", "/v1/status", None);
    assert_eq!(s, 200);
    // The admin API is not served on the S3 port, whatever the credential.
    let s3_addr = server.s3_url.strip_prefix("http://").expect("http");
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN_KEY}:{ADMIN_SECRET}"))
    };
    let r = stele_tests::http_request(
        s3_addr,
        &format!("GET /v1/status HTTP/1.1\r\nAuthorization: Basic {auth}"),
        b"",
    );
    assert_ne!(stele_tests::http_status(&r), 200, "{r}");
    assert!(!r.contains("two_person_rule_in_force"), "{r}");
    let admin_on_s3 = s3_client_with(&server.s3_url, ADMIN_KEY, ADMIN_SECRET);
    runtime().block_on(async {
        let e = admin_on_s3
            .list_buckets()
            .send()
            .await
            .expect_err("admin key on S3");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("InvalidAccessKeyId", 403)
        );
    });
}

fn files_containing(dir: &std::path::Path, needle: &[u8], out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_containing(&p, needle, out);
        } else if let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(p.display().to_string());
        }
    }
}

/// No secret — given at start, generated, or made through the API — appears in plaintext
/// in the data folder, the key folder or the server's log.
#[test]
fn no_plaintext_secret_on_disk_or_in_logs() {
    let (dir, server) = start_default();
    add_user(&server, "writer", "backup-writer");
    let (_, s3_secret) = new_key(&server, "writer", "s3");
    let (_, admin_secret) = new_key(&server, "admin", "admin");
    let (_, rotated) = {
        let (k, _) = new_key(&server, "writer", "s3");
        let (s, body) = server.admin("POST", &format!("/v1/keys/{k}/rotate"), None);
        assert_eq!(s, 201, "{body}");
        (
            k,
            json(&body)["secret_key"]
                .as_str()
                .expect("secret")
                .to_owned(),
        )
    };
    // Some traffic, so every write path has run.
    runtime().block_on(async {
        let c = server.client();
        c.create_bucket()
            .bucket("ggg")
            .send()
            .await
            .expect("bucket");
        put(&c, "ggg", "k", b"data").await;
    });
    let log = server.stderr_log.clone();
    drop(server); // flush and close everything
    let keys = dir.path().join("stele-keys");
    assert!(
        keys.join("master.key").exists(),
        "the key folder is beside the data folder"
    );
    for secret in [
        SECRET_KEY,
        ADMIN_SECRET,
        &s3_secret,
        &admin_secret,
        &rotated,
    ] {
        let mut found = Vec::new();
        for place in [dir.path().join("data"), keys.clone()] {
            files_containing(&place, secret.as_bytes(), &mut found);
        }
        let log_text = std::fs::read(&log).expect("log");
        if log_text
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
        {
            found.push(log.display().to_string());
        }
        assert!(found.is_empty(), "a secret in plaintext in {found:?}");
    }
    // The test harness checks what it can find: the log does name the audited events.
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("key-created") && text.contains("user-created"),
        "{text}"
    );
}

/// A generated first admin credential is shown once and kept in a 0600 file in the key
/// folder; nothing else holds it.
#[test]
fn a_generated_admin_credential_goes_to_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = std::process::Command::new(stele_tests::workspace_bin("stele-server"))
        .args(["--data", data.to_str().expect("path")])
        .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env_remove("STELE_ADMIN_KEY")
        .env_remove("STELE_ADMIN_SECRET")
        .env("STELE_ACCESS_KEY", ACCESS_KEY)
        .env("STELE_SECRET_KEY", SECRET_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = out;
    let stdout = child.stdout.take().expect("stdout");
    let mut secret = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.expect("line");
        if let Some(rest) = line.split(" secret ").nth(1) {
            secret = rest.trim().to_owned();
        }
        if line.starts_with("stele-server ready") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !secret.is_empty(),
        "the generated admin secret is shown once"
    );
    let file = dir.path().join("stele-keys/first-admin");
    let mode = std::fs::metadata(&file).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&file)
            .expect("read")
            .contains(&secret)
    );
    let mut found = Vec::new();
    files_containing(&data, secret.as_bytes(), &mut found);
    assert!(found.is_empty(), "{found:?}");
}

/// One admin alone cannot loosen a policy once a second admin exists; the second admin's
/// approval makes it take effect; the requester cannot approve its own request; an
/// expired request does nothing. Granting governance bypass, deleting an admin and
/// turning the rule off go the same way.
#[test]
fn two_person_rule() {
    let (_dir, server, clock) = start_with_clock(&[]);
    let (s, _) = server.admin("POST", "/v1/buckets", Some(r#"{"name":"tpr","lock":true}"#));
    assert_eq!(s, 201);
    let strict = r#"{"min_days":30,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#;
    let loose = r#"{"min_days":1,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#;
    let (s, body) = server.admin("PUT", "/v1/buckets/tpr/retention-policy", Some(strict));
    assert_eq!(s, 200, "{body}");
    // A second administrator appears.
    add_user(&server, "second", "admin");
    let (k2, s2) = new_key(&server, "second", "admin");
    let shown = || {
        server
            .admin("GET", "/v1/buckets/tpr/retention-policy", None)
            .1
    };
    let (s, body) = server.admin("PUT", "/v1/buckets/tpr/retention-policy", Some(loose));
    assert_eq!(s, 202, "one admin alone: pending: {body}");
    assert!(shown().contains("\"min_days\":30"), "{}", shown());
    let id = json(&body)["approval"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (s, body) = server.admin("POST", &format!("/v1/approvals/{id}/approve"), None);
    assert_eq!(s, 403, "the requester cannot approve: {body}");
    assert!(shown().contains("\"min_days\":30"));
    let (s, body) = server.approve_as(&k2, &s2, &id);
    assert_eq!(s, 200, "{body}");
    assert!(shown().contains("\"min_days\":1,"), "{}", shown());
    // Tightening again needs nobody.
    let (s, _) = server.admin("PUT", "/v1/buckets/tpr/retention-policy", Some(strict));
    assert_eq!(s, 200);
    // An expired request does nothing.
    let (s, body) = server.admin("PUT", "/v1/buckets/tpr/retention-policy", Some(loose));
    assert_eq!(s, 202, "{body}");
    let late = json(&body)["approval"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    clock.pass(2 * DAY_SECS);
    let (s, body) = server.admin_as(
        &k2,
        &s2,
        "POST",
        &format!("/v1/approvals/{late}/approve"),
        None,
    );
    assert_eq!(s, 410, "{body}");
    assert!(shown().contains("\"min_days\":30"), "{}", shown());
    // Governance bypass, deleting an administrator, switching the rule off: all pending.
    add_user(&server, "ops", "backup-writer");
    for (method, path, body) in [
        (
            "PUT",
            "/v1/users/ops/governance-bypass",
            Some(r#"{"allowed":true}"#),
        ),
        ("DELETE", "/v1/users/second", None),
        (
            "PUT",
            "/v1/settings/two-person-rule",
            Some(r#"{"enabled":false}"#),
        ),
    ] {
        let (s, resp) = server.admin(method, path, body);
        assert_eq!(s, 202, "{method} {path}: {resp}");
    }
    let users = json(&server.admin("GET", "/v1/users", None).1);
    let ops = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["name"] == "ops")
        .expect("ops");
    assert!(ops["governance_bypass"].is_null(), "{ops}");
    assert!(
        users
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["name"] == "second")
    );
    let (_, list) = server.admin_as(&k2, &s2, "GET", "/v1/approvals", None);
    assert_eq!(json(&list).as_array().expect("list").len(), 3, "{list}");
}

/// Repeated failed authentications are refused for a while, per access key.
#[test]
fn failed_authentications_are_rate_limited() {
    let (_dir, server) = start_default();
    add_user(&server, "target", "backup-writer");
    let (key, secret) = new_key(&server, "target", "s3");
    let wrong = s3_client_with(&server.s3_url, &key, "not-the-secret");
    let right = s3_client_with(&server.s3_url, &key, &secret);
    runtime().block_on(async {
        right.list_buckets().send().await.expect("works before");
        for _ in 0..10 {
            let e = wrong.list_buckets().send().await.expect_err("wrong secret");
            assert_eq!(error_code(&e), "SignatureDoesNotMatch");
        }
        let e = right.list_buckets().send().await.expect_err("limited now");
        assert_eq!(
            (error_code(&e).as_str(), error_status(&e)),
            ("SlowDown", 503)
        );
        // Another key from the same address still works.
        server
            .client()
            .list_buckets()
            .send()
            .await
            .expect("other key");
    });
    for _ in 0..10 {
        let (s, _) = server.admin_as(ADMIN_KEY, "wrong", "GET", "/v1/status", None);
        assert_eq!(s, 401);
    }
    let (s, _) = server.admin("GET", "/v1/status", None);
    assert_eq!(s, 429);
}

/// Rotation without downtime: the new key works at once and the old one until revoked;
/// deleting the user revokes its keys and leaves its data alone.
#[test]
fn key_rotation_and_user_deletion() {
    let (_dir, server) = start_default();
    add_user(&server, "rot", "backup-writer");
    let (old_key, old_secret) = new_key(&server, "rot", "s3");
    let (s, body) = server.admin("POST", &format!("/v1/keys/{old_key}/rotate"), None);
    assert_eq!(s, 201, "{body}");
    let v = json(&body);
    let (new_key_id, new_secret) = (
        v["access_key"].as_str().expect("key").to_owned(),
        v["secret_key"].as_str().expect("secret").to_owned(),
    );
    let old = s3_client_with(&server.s3_url, &old_key, &old_secret);
    let new = s3_client_with(&server.s3_url, &new_key_id, &new_secret);
    runtime().block_on(async {
        old.create_bucket()
            .bucket("rot")
            .send()
            .await
            .expect("old works");
        put(&new, "rot", "k", b"written by the new key").await;
    });
    let (s, _) = server.admin("DELETE", &format!("/v1/keys/{old_key}"), None);
    assert_eq!(s, 204);
    runtime().block_on(async {
        let e = old.list_buckets().send().await.expect_err("revoked");
        assert_eq!(error_code(&e), "InvalidAccessKeyId");
        new.list_buckets().send().await.expect("new still works");
    });
    let (s, _) = server.admin("DELETE", "/v1/users/rot", None);
    assert_eq!(s, 200);
    runtime().block_on(async {
        let e = new.list_buckets().send().await.expect_err("user deleted");
        assert_eq!(error_code(&e), "InvalidAccessKeyId");
        let got = server
            .client()
            .get_object()
            .bucket("rot")
            .key("k")
            .send()
            .await
            .expect("the data stays")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&got[..], b"written by the new key");
    });
}
