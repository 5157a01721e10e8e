//! `stelectl`'s admin commands against the real server: users, grants, keys, buckets,
//! retention policies, status and the two-person rule; scrub, repair, restore drills,
//! alerts and backup expectations, through the binary exactly as an operator runs it
//! (credentials from the environment, `--json` parsed back).

use std::process::{Command, Output};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockRetentionMode};
use serde_json::Value;
use stele_tests::{ADMIN_KEY, ADMIN_SECRET, Server, runtime, start_default, workspace_bin};

/// Runs `stelectl args` against `server` with the given admin credential.
fn stelectl_as(server: &Server, key: &str, secret: &str, args: &[&str]) -> Output {
    Command::new(workspace_bin("stelectl"))
        .args(args)
        .env("STELE_ADMIN_URL", &server.admin_url)
        .env("STELE_ADMIN_KEY", key)
        .env("STELE_ADMIN_SECRET", secret)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run stelectl")
}

/// Runs `stelectl args` with the test admin credential, expecting success: its stdout.
fn stelectl(server: &Server, args: &[&str]) -> String {
    ok(args, stelectl_as(server, ADMIN_KEY, ADMIN_SECRET, args))
}

fn ok(args: &[&str], out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stelectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `stelectl args --json`, parsed.
fn stelectl_json(server: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = stelectl(server, &args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stelectl {args:?}: not JSON ({e}): {out}"))
}

fn user<'a>(users: &'a Value, name: &str) -> &'a Value {
    users
        .as_array()
        .expect("a list of users")
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no user {name} in {users}"))
}

fn key<'a>(user: &'a Value, access_key: &str) -> &'a Value {
    user["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["access_key"] == access_key)
        .unwrap_or_else(|| panic!("no key {access_key} in {user}"))
}

#[test]
fn users_keys_buckets_policies_and_status() {
    let (_dir, server) = start_default();

    let out = stelectl(
        &server,
        &["user", "add", "alice", "--role", "backup-writer:bkt1"],
    );
    assert!(out.contains("alice"), "{out}");
    let created = stelectl_json(&server, &["key", "create", "alice"]);
    assert_eq!(created["user"], "alice", "{created}");
    assert_eq!(created["plane"], "s3", "{created}");
    let access_key = created["access_key"]
        .as_str()
        .expect("access key")
        .to_owned();
    assert!(
        created["secret_key"]
            .as_str()
            .is_some_and(|s| s.len() >= 20),
        "{created}"
    );

    let users = stelectl_json(&server, &["user", "list"]);
    let alice = user(&users, "alice");
    assert_eq!(alice["disabled"], false, "{alice}");
    assert_eq!(
        alice["grants"],
        serde_json::json!([{"role": "backup-writer", "buckets": ["bkt1"]}]),
        "{alice}"
    );
    let k = key(alice, &access_key);
    assert_eq!(k["plane"], "s3", "{k}");
    assert!(k["revoked"].is_null(), "{k}");
    // The human table shows the grant in the syntax `--role` takes, and the key.
    let table = stelectl(&server, &["user", "list"]);
    assert!(table.contains("backup-writer:bkt1"), "{table}");
    assert!(table.contains(&access_key), "{table}");

    // --retention implies Object Lock, COMPLIANCE by default.
    stelectl(&server, &["bucket", "create", "bkt1", "--retention", "7d"]);
    runtime().block_on(async {
        let conf = server
            .client()
            .get_object_lock_configuration()
            .bucket("bkt1")
            .send()
            .await
            .expect("lock configuration")
            .object_lock_configuration
            .expect("configuration");
        assert_eq!(
            conf.object_lock_enabled(),
            Some(&ObjectLockEnabled::Enabled)
        );
        let d = conf
            .rule()
            .and_then(|r| r.default_retention())
            .expect("default retention");
        assert_eq!(d.mode(), Some(&ObjectLockRetentionMode::Compliance));
        assert_eq!(d.days(), Some(7));
    });
    // A second bucket of the same name is the server's 409, shown on stderr once: its
    // code and message in one line, not the JSON body again.
    let out = stelectl_as(
        &server,
        ADMIN_KEY,
        ADMIN_SECRET,
        &["bucket", "create", "bkt1"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("409 Conflict: BucketExists: bucket bkt1 already exists")
            && !err.contains(r#""error""#),
        "{out:?}"
    );

    let none = stelectl_json(&server, &["policy", "show", "bkt1"]);
    assert!(none.is_null(), "{none}");
    stelectl(
        &server,
        &[
            "policy",
            "set",
            "bkt1",
            "--min-days",
            "7",
            "--modes",
            "COMPLIANCE",
            "--below-min",
            "refuse",
        ],
    );
    let policy = stelectl_json(&server, &["policy", "show", "bkt1"]);
    assert_eq!(policy["min_days"], 7, "{policy}");
    assert!(policy["max_days"].is_null(), "{policy}");
    assert_eq!(
        policy["modes"],
        serde_json::json!(["COMPLIANCE"]),
        "{policy}"
    );
    assert_eq!(policy["below_min"], "refuse", "{policy}");

    stelectl(&server, &["key", "revoke", &access_key]);
    let users = stelectl_json(&server, &["user", "list"]);
    let k = key(user(&users, "alice"), &access_key);
    assert!(k["revoked"].as_i64().is_some(), "{k}");

    let status = stelectl_json(&server, &["status"]);
    assert_eq!(status["buckets"], 1, "{status}");
    assert_eq!(
        status["disks"].as_array().map(Vec::len),
        Some(6),
        "{status}"
    );
    assert_eq!(status["two_person_rule_in_force"], false, "{status}");
    let human = stelectl(&server, &["status"]);
    assert!(human.contains("pending approvals"), "{human}");

    // A wrong secret: the server's 401 on stderr, and a failed exit.
    for json in [false, true] {
        let mut args = vec!["status"];
        if json {
            args.push("--json");
        }
        let out = stelectl_as(&server, ADMIN_KEY, "not-the-secret", &args);
        assert!(!out.status.success(), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // With --json the server's body as it is; else one line with its code and message.
        if json {
            assert!(stderr.contains(r#""error":"Unauthorized""#), "{stderr}");
        } else {
            assert!(
                stderr.contains("401 Unauthorized: Unauthorized: admin credentials required")
                    && !stderr.contains(r#""error""#),
                "{stderr}"
            );
        }
    }
    // No credential at all: refused before any call.
    let out = Command::new(workspace_bin("stelectl"))
        .args(["status"])
        .env("STELE_ADMIN_URL", &server.admin_url)
        .env_remove("STELE_ADMIN_KEY")
        .env_remove("STELE_ADMIN_SECRET")
        .output()
        .expect("run stelectl");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("STELE_ADMIN_KEY"),
        "{out:?}"
    );
}

#[test]
fn privileged_calls_wait_for_a_second_administrator() {
    let (_dir, server) = start_default();
    stelectl(&server, &["user", "add", "bob", "--role", "admin"]);
    let bob = stelectl_json(&server, &["key", "create", "bob", "--admin"]);
    assert_eq!(bob["plane"], "admin", "{bob}");
    let (bob_key, bob_secret) = (
        bob["access_key"].as_str().expect("key").to_owned(),
        bob["secret_key"].as_str().expect("secret").to_owned(),
    );
    stelectl(
        &server,
        &["user", "add", "carol", "--role", "restore-reader"],
    );
    let out = stelectl(&server, &["two-person-rule", "on"]);
    assert!(out.contains("two-person rule on"), "{out}");

    // Granting a governance bypass is privileged: 202, an approval id, a reminder.
    let out = stelectl(&server, &["bypass", "carol", "--bucket", "vault"]);
    assert!(out.contains("pending approval"), "{out}");
    assert!(out.contains("second administrator"), "{out}");
    let pending = stelectl_json(&server, &["approvals", "list"]);
    let list = pending.as_array().expect("approvals");
    assert_eq!(list.len(), 1, "{pending}");
    let id = list[0]["id"].as_str().expect("id").to_owned();
    assert!(out.contains(&id), "{out}");
    let users = stelectl_json(&server, &["user", "list"]);
    assert!(
        user(&users, "carol")["governance_bypass"].is_null(),
        "{users}"
    );

    // Not by the administrator who asked; by the other one.
    let args = ["approvals", "approve", id.as_str()];
    let out = stelectl_as(&server, ADMIN_KEY, ADMIN_SECRET, &args);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SameApprover"),
        "{out:?}"
    );
    let out = ok(&args, stelectl_as(&server, &bob_key, &bob_secret, &args));
    assert!(out.contains("approved"), "{out}");
    let users = stelectl_json(&server, &["user", "list"]);
    assert_eq!(
        user(&users, "carol")["governance_bypass"],
        serde_json::json!({"buckets": ["vault"]}),
        "{users}"
    );

    // --json keeps stdout the server's JSON; a denied request is gone.
    let v = stelectl_json(&server, &["two-person-rule", "off"]);
    assert_eq!(v["status"], "pending", "{v}");
    let id = v["approval"]["id"].as_str().expect("id").to_owned();
    let args = ["approvals", "deny", id.as_str()];
    ok(&args, stelectl_as(&server, &bob_key, &bob_secret, &args));
    let pending = stelectl_json(&server, &["approvals", "list"]);
    assert_eq!(pending, serde_json::json!([]), "{pending}");
    let status = stelectl_json(&server, &["status"]);
    assert_eq!(status["two_person_rule_in_force"], true, "{status}");
}

#[test]
fn scrub_repair_drill_alerts_and_expectations() {
    let (_dir, server) = start_default();
    // Two objects large enough to live in shard files.
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket("bkup")
            .send()
            .await
            .expect("bucket");
        for i in 0..2usize {
            let body: Vec<u8> = (0..300_000)
                .map(|j| ((i * 7 + j * 13) % 251) as u8)
                .collect();
            c.put_object()
                .bucket("bkup")
                .key(format!("obj{i}"))
                .body(ByteStream::from(body))
                .send()
                .await
                .expect("put");
        }
    });

    let report = stelectl_json(&server, &["scrub", "run", "--wait"]);
    assert!(
        report["versions"].as_u64().is_some_and(|n| n >= 2),
        "{report}"
    );
    assert!(
        report["shards_verified"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert_eq!(report["corrupt"], 0, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["unrepairable"], serde_json::json!([]), "{report}");
    let human = stelectl(&server, &["scrub", "run", "--wait"]);
    assert!(human.contains("shards verified"), "{human}");
    assert!(human.contains("unrepairable"), "{human}");
    // Without --wait it only starts a pass.
    let out = stelectl(&server, &["scrub", "run"]);
    assert!(out.contains("started"), "{out}");

    let status = stelectl_json(&server, &["scrub", "status"]);
    assert!(
        status["passes"].as_u64().is_some_and(|n| n >= 2),
        "{status}"
    );
    assert!(
        status["last_pass"]["versions"].as_u64() >= Some(2),
        "{status}"
    );
    assert_eq!(status["last_pass"]["corrupt"], 0, "{status}");
    let human = stelectl(&server, &["scrub", "status"]);
    assert!(human.contains("last pass"), "{human}");

    let repair = stelectl_json(&server, &["repair", "status"]);
    assert_eq!(repair["queue_length"], 0, "{repair}");
    assert_eq!(repair["unrepairable"], 0, "{repair}");
    let human = stelectl(&server, &["repair", "status"]);
    assert!(human.contains("queue length"), "{human}");

    let drill = stelectl_json(&server, &["drill", "run"]);
    assert!(drill["passed"].as_u64().is_some_and(|n| n >= 2), "{drill}");
    assert_eq!(drill["failed"], 0, "{drill}");
    assert!(
        drill["sample"]
            .as_array()
            .expect("sample")
            .iter()
            .all(|s| s["failure"].is_null() && s["bytes"] == 300_000),
        "{drill}"
    );
    let human = stelectl(&server, &["drill", "run"]);
    assert!(human.contains("passed"), "{human}");
    let drills = stelectl_json(&server, &["drill", "status"]);
    assert!(drills["drills"].as_u64() >= Some(2), "{drills}");
    assert_eq!(drills["last"]["failed"], 0, "{drills}");

    // Sinks: set, listed; a test alert is queued for it (port 9 takes nothing).
    let out = stelectl(
        &server,
        &["alerts", "sink", "set", "ops", "http://127.0.0.1:9/x"],
    );
    assert!(out.contains("ops"), "{out}");
    let sinks = stelectl_json(&server, &["alerts", "sink", "list"]);
    let list = sinks.as_array().expect("sinks");
    assert!(
        list.iter()
            .any(|s| s["name"] == "ops" && s["url"] == "http://127.0.0.1:9/x"),
        "{sinks}"
    );
    let human = stelectl(&server, &["alerts", "sink", "list"]);
    assert!(human.contains("http://127.0.0.1:9/x"), "{human}");
    let out = stelectl(&server, &["alerts", "test"]);
    assert!(out.contains("test alert"), "{out}");
    let queue = stelectl_json(&server, &["alerts", "queue"]);
    assert!(
        queue
            .as_array()
            .expect("queue")
            .iter()
            .any(|q| q["sink"] == "ops"
                && q["payload"]
                    .as_str()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .is_some_and(|p| p["kind"] == "test")),
        "{queue}"
    );
    let human = stelectl(&server, &["alerts", "queue"]);
    assert!(human.contains("test"), "{human}");
    // A sink URL must be http(s): the server's 400 on stderr.
    let args = ["alerts", "sink", "set", "bad", "ftp://h/x"];
    let out = stelectl_as(&server, ADMIN_KEY, ADMIN_SECRET, &args);
    assert!(!out.status.success(), "{out:?}");
    stelectl(&server, &["alerts", "sink", "remove", "ops"]);
    let sinks = stelectl_json(&server, &["alerts", "sink", "list"]);
    assert_eq!(sinks, serde_json::json!([]), "{sinks}");

    // Backup freshness expectations.
    let out = stelectl(&server, &["bucket", "expect", "bkup", "--every", "24h"]);
    assert!(out.contains("every 1d (86400s)"), "{out}");
    stelectl(&server, &["bucket", "expect", "bkup", "--every", "90s"]);
    stelectl(&server, &["bucket", "expect", "bkup", "--none"]);
    let args = ["bucket", "expect", "nosuchbucket", "--every", "1d"];
    let out = stelectl_as(&server, ADMIN_KEY, ADMIN_SECRET, &args);
    assert!(!out.status.success(), "{out:?}");
}
