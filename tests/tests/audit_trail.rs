//! The audit trail (issue 16, item 1) through the real node: every change is a leaf
//! written with it, refusals and authentication failures too, with actor, address, request
//! id and time; an export from `stelectl audit export` verifies offline with the key from
//! `stelectl audit keys`; each tampering — one stored byte changed in RocksDB, the tail
//! cut, two events swapped, the whole trail recomputed under another key — is named by
//! the verifier; an idle node still signs a checkpoint each interval; a clean stop and a
//! kill -9 show as such at the next start.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ObjectLockMode;
use serde_json::Value;
use stele_tests::sites::{ctl, json};
use stele_tests::{
    ACCESS_KEY, DAY_SECS, Server, error_code, runtime, s3_client_with, start_with_clock,
    workspace_bin,
};
use stele_tlog::checkpoint::Checkpoint;
use stele_tlog::merkle;
use stele_tlog::note::Signer;

/// (exit code, stdout, stderr) of `stelectl audit verify ARGS` (offline).
fn verify(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    stele_tests::stelectl_offline(&all)
}

/// The trail exported through `stelectl audit export -o` into `dir/name`: its lines.
fn export(server: &Server, dir: &Path, name: &str) -> Vec<String> {
    let path = dir.join(name);
    ctl(
        server,
        &["audit", "export", "-o", path.to_str().expect("path")],
    );
    std::fs::read_to_string(&path)
        .expect("export")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn leaves(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| json(l))
        .filter(|v| v.get("checkpoint").is_none())
        .collect()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").expect("write");
    p.to_str().expect("path").to_owned()
}

/// The line index of the leaf at `seq`.
fn line_of(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| json(l)["seq"].as_u64() == Some(seq))
        .expect("leaf")
}

#[test]
fn the_trail_records_changes_and_refusals_and_every_tampering_is_named() {
    let (dir, server, clock) = start_with_clock(&[]);
    let (s, body) = server.admin(
        "POST",
        "/v1/buckets",
        Some(r#"{"name":"kept","lock":true}"#),
    );
    assert_eq!(s, 201, "{body}");
    let client = server.client();
    let (version, refused) = runtime().block_on(async {
        let v = client
            .put_object()
            .bucket("kept")
            .key("backup/1")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("time")
                    .as_secs() as i64
                    + DAY_SECS,
            ))
            .content_md5("xEk34VdHEO2H3M7D4Ob8Yw==")
            .body(ByteStream::from_static(b"one day"))
            .send()
            .await
            .expect("put")
            .version_id()
            .expect("version")
            .to_owned();
        let refused = client
            .delete_object()
            .bucket("kept")
            .key("backup/1")
            .version_id(&v)
            .send()
            .await
            .expect_err("locked");
        (v, error_code(&refused))
    });
    assert_eq!(refused, "AccessDenied");
    // A bad signature: an authentication failure, refused before any S3 operation.
    let bad = s3_client_with(&server.s3_url, ACCESS_KEY, "not-the-secret");
    runtime().block_on(async {
        bad.list_buckets().send().await.expect_err("bad secret");
    });
    // The retention ends; the removal is then taken, and recorded with who and when.
    clock.pass(DAY_SECS + 60);
    runtime().block_on(async {
        client
            .delete_object()
            .bucket("kept")
            .key("backup/1")
            .version_id(&version)
            .send()
            .await
            .expect("removed after its retention");
    });

    let key = ctl(&server, &["audit", "keys"]).trim().to_owned();
    assert!(
        key.starts_with("stele/") && key.contains("/audit/node+"),
        "{key}"
    );
    let key_file = dir.path().join("audit.pub");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    let key_path = key_file.to_str().expect("path");

    let lines = export(&server, dir.path(), "e1.ndjson");
    let e1 = write(dir.path(), "e1.ndjson", &lines);
    let (code, out, err) = verify(&[&e1, "--key", key_path]);
    assert_eq!(code, 0, "{out}{err}");

    // What the trail says, leaf by leaf.
    let all = leaves(&lines);
    let find = |event: &str, outcome: &str| -> Value {
        all.iter()
            .find(|l| l["event"] == event && l["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {event} {outcome} in {lines:#?}"))
            .clone()
    };
    assert_eq!(all[0]["event"], "node-started");
    assert_eq!(all[0]["detail"]["previous_stop"], "none");
    let created = find("version-created", "ok");
    assert_eq!(created["target"]["bucket"], "kept");
    assert_eq!(created["target"]["key"], "backup/1");
    assert_eq!(created["target"]["version"], version.as_str());
    assert_eq!(created["actor"]["user"], "owner");
    assert_eq!(created["actor"]["key"], ACCESS_KEY);
    assert_eq!(created["actor"]["source"], "127.0.0.1");
    assert!(
        created["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(created["detail"]["size"], 7);
    assert_eq!(created["detail"]["lock"]["mode"], "COMPLIANCE");
    assert_eq!(
        created["detail"]["blake3"][0],
        blake3::hash(b"one day").to_hex().as_str()
    );
    let refusal = find("version-removed", "refused");
    assert_eq!(refusal["target"]["version"], version.as_str());
    assert_eq!(refusal["actor"]["user"], "owner");
    assert!(
        refusal["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{refusal}"
    );
    let removed = find("version-removed", "ok");
    assert_eq!(removed["actor"]["user"], "owner");
    assert_eq!(removed["target"]["version"], version.as_str());
    // Trusted time: the removal happened a day after the creation, by the retention clock
    // (the test clock moved it; real time did not).
    let day = |l: &Value| l["ts"].as_str().expect("ts")[..10].to_owned();
    assert!(day(&removed) > day(&created), "{created} {removed}");
    let failed = find("auth-failed", "refused");
    let by_claim = ctl(
        &server,
        &[
            "audit",
            "events",
            "--event",
            "auth-failed",
            "--actor",
            ACCESS_KEY,
        ],
    );
    assert_eq!(
        by_claim.lines().filter(|l| l.contains("\"leaf\"")).count(),
        1,
        "{by_claim}"
    );
    // Claimed, not proven: in the detail, never as the actor's key.
    assert_eq!(failed["detail"]["access_key"], ACCESS_KEY);
    assert!(failed["actor"].get("key").is_none(), "{failed}");
    assert_eq!(failed["actor"]["source"], "127.0.0.1");
    assert_eq!(failed["detail"]["plane"], "S3");
    // The bucket made through the admin API, by the administrator.
    assert!(
        all.iter().any(|l| l["event"] == "bucket-created"
            && l["actor"]["user"] == "admin"
            && l["target"]["bucket"] == "kept"),
        "{lines:#?}"
    );
    // The export itself, by the administrator who made it.
    let exported = find("audit-exported", "ok");
    assert_eq!(exported["actor"]["user"], "admin");
    // seq runs from 0 with no gap.
    for (i, l) in all.iter().enumerate() {
        assert_eq!(l["seq"].as_u64(), Some(i as u64));
    }

    // Tampering in an export, each named.
    let created_seq = created["seq"].as_u64().expect("seq");
    let mut t = lines.clone();
    let i = line_of(&t, created_seq);
    t[i] = t[i].replacen("backup/1", "backup/2", 1);
    let (code, out, err) = verify(&[&write(dir.path(), "byte.ndjson", &t), "--key", key_path]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("BROKEN at seq {created_seq}")),
        "{err}"
    );

    let mut t = lines.clone();
    let (a, b) = (line_of(&t, 2), line_of(&t, 3));
    t.swap(a, b);
    let (code, _, err) = verify(&[&write(dir.path(), "swap.ndjson", &t), "--key", key_path]);
    assert_eq!(code, 1);
    assert!(err.contains("BROKEN at seq 2"), "{err}");

    // Recomputed from scratch — every chain link and root right — and signed by a key
    // that is not the node's.
    let origin = key.split('+').next().expect("origin").to_owned();
    let forger = Signer::from_seed(&origin, &[9; 32]).expect("key");
    let mut forged = Vec::new();
    let mut hashes = Vec::new();
    for l in &lines {
        if json(l).get("checkpoint").is_some() {
            let note = Checkpoint::new(&origin, hashes.len() as u64, merkle::root(&hashes))
                .sign(&[&forger])
                .expect("sign");
            forged.push(serde_json::json!({ "checkpoint": note }).to_string());
        } else {
            hashes.push(merkle::leaf_hash(l.as_bytes()));
            forged.push(l.clone());
        }
    }
    let (code, _, err) = verify(&[
        &write(dir.path(), "forged.ndjson", &forged),
        "--key",
        key_path,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no signature by a known key"), "{err}");

    // The tail cut: a later export is checked against the checkpoint kept from this one.
    let kept = dir.path().join("kept.checkpoint");
    let cp = ctl(&server, &["audit", "checkpoint"]);
    std::fs::write(&kept, &cp).expect("kept");
    let kept_size: usize = cp.lines().nth(1).expect("size").parse().expect("size");
    assert!(kept_size >= all.len(), "{cp}");
    let lines2 = export(&server, dir.path(), "e2.ndjson");
    let e2 = write(dir.path(), "e2.ndjson", &lines2);
    let (code, out, err) = verify(&[
        &e2,
        "--key",
        key_path,
        "--trust",
        kept.to_str().expect("path"),
    ]);
    assert_eq!(
        code, 0,
        "a later export extends the kept checkpoint: {out}{err}"
    );
    let cut: Vec<String> = lines2[..line_of(&lines2, kept_size as u64 - 3)].to_vec();
    let cut = write(dir.path(), "cut.ndjson", &cut);
    let (code, out, err) = verify(&[
        &cut,
        "--key",
        key_path,
        "--trust",
        kept.to_str().expect("path"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("BROKEN at seq {}", kept_size - 3)),
        "{err}"
    );

    // One byte of a stored event changed in RocksDB, behind the node's back: the next
    // export (by the restarted node) names it.
    let data = dir.path().join("data");
    server.kill();
    {
        let meta = stele::meta::Meta::open(&data.join("meta")).expect("meta");
        let mut k = vec![b'e'];
        k.extend(created_seq.to_be_bytes());
        let stored = meta
            .dump()
            .expect("dump")
            .into_iter()
            .find(|(cf, key, _)| *cf == "audit" && *key == k)
            .expect("stored leaf")
            .2;
        let text = String::from_utf8(stored).expect("utf-8");
        assert!(text.contains("backup/1"));
        let tampered = text.replacen("backup/1", "backup/X", 1);
        meta.put_raw(stele::meta::Cf::Audit, &k, tampered.as_bytes())
            .expect("tamper");
    }
    let args = [
        "--data",
        data.to_str().expect("path"),
        "--test-clock",
        clock.0.to_str().expect("path"),
    ];
    let server = Server::start(&args, dir.path());
    let lines3 = export(&server, dir.path(), "e3.ndjson");
    let e3 = write(dir.path(), "e3.ndjson", &lines3);
    let (code, out, err) = verify(&[&e3, "--key", key_path]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("BROKEN at seq {created_seq}")),
        "{err}"
    );
    // The kill showed: the restart says the previous run did not stop cleanly.
    let restarted = leaves(&lines3)
        .into_iter()
        .rfind(|l| l["event"] == "node-started")
        .expect("start");
    assert_eq!(restarted["detail"]["previous_stop"], "unclean");
}

#[test]
fn an_idle_node_signs_a_checkpoint_each_interval_and_a_clean_stop_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = [
        "--data",
        data.to_str().expect("path"),
        "--audit-checkpoint-interval",
        "1",
    ];
    let server = Server::start(&args, dir.path());
    let size = |s: &Server| -> u64 {
        let (status, body) = s.admin("GET", "/v1/audit/checkpoints/latest", None);
        assert_eq!(status, 200, "{body}");
        json(&body)["size"].as_u64().expect("size")
    };
    // Nothing is asked of the node; its log still grows a tick a second.
    std::thread::sleep(Duration::from_millis(1500));
    let first = size(&server);
    std::thread::sleep(Duration::from_secs(4));
    let later = size(&server);
    assert!(later >= first + 2, "{first} -> {later}");
    let key = ctl(&server, &["audit", "keys"]).trim().to_owned();
    let lines = export(&server, dir.path(), "idle.ndjson");
    let ticks: Vec<Value> = leaves(&lines)
        .into_iter()
        .filter(|l| l["event"] == "tick")
        .collect();
    assert!(ticks.len() >= 3, "{lines:#?}");
    // Each tick names the checkpoint before it, and each has its own checkpoint after it.
    for w in ticks.windows(2) {
        assert_eq!(
            w[1]["detail"]["previous_checkpoint"].as_u64(),
            Some(w[0]["seq"].as_u64().expect("seq") + 1),
            "{w:?}"
        );
    }
    let checkpoints = lines
        .iter()
        .filter(|l| l.contains("\"checkpoint\""))
        .count();
    assert!(
        checkpoints >= ticks.len(),
        "{checkpoints} checkpoints, {} ticks",
        ticks.len()
    );
    let path = write(dir.path(), "idle.ndjson", &lines);
    let (code, out, err) = verify(&[&path, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");

    // A clean stop (SIGTERM) is the last leaf, and the next start says so.
    let pid = server.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(0));
    let server = Server::start(&args, dir.path());
    let lines = export(&server, dir.path(), "after.ndjson");
    let all = leaves(&lines);
    let start = all
        .iter()
        .rposition(|l| l["event"] == "node-started")
        .expect("start");
    assert_eq!(all[start]["detail"]["previous_stop"], "clean");
    assert_eq!(all[start - 1]["event"], "node-stopped");
    let (code, out, err) = verify(&[&write(dir.path(), "after.ndjson", &lines), "--key", &key]);
    assert_eq!(
        code, 0,
        "the key stays the node's across restarts: {out}{err}"
    );
}

#[test]
fn a_policy_change_its_approval_and_an_auditors_queries_are_in_the_trail() {
    let (dir, server, _clock) = start_with_clock(&[]);
    let (s, _) = server.admin("POST", "/v1/buckets", Some(r#"{"name":"tpr","lock":true}"#));
    assert_eq!(s, 201);
    runtime().block_on(async {
        server
            .client()
            .put_object()
            .bucket("tpr")
            .key("record")
            .body(ByteStream::from_static(b"data"))
            .send()
            .await
            .expect("put");
    });
    let strict = r#"{"min_days":30,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#;
    let loose = r#"{"min_days":1,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#;
    let (s, body) = server.admin("PUT", "/v1/buckets/tpr/retention-policy", Some(strict));
    assert_eq!(s, 200, "{body}");
    let (k2, s2) = server.user_with_key("second", "admin", "admin");
    let (s, body) = server.admin("PUT", "/v1/buckets/tpr/retention-policy", Some(loose));
    assert_eq!(s, 202, "{body}");
    let id = json(&body)["approval"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (s, body) = server.approve_as(&k2, &s2, &id);
    assert_eq!(s, 200, "{body}");

    // The auditor reads the trail, and nothing else it may not.
    let (ak, asecret) = server.user_with_key("aud", "auditor", "admin");
    let (sk, ssecret) = server.user_with_key("aud", "auditor", "s3");
    let auditor_s3 = s3_client_with(&server.s3_url, &sk, &ssecret);
    runtime().block_on(async {
        let e = auditor_s3
            .get_object()
            .bucket("tpr")
            .key("record")
            .send()
            .await
            .expect_err("no object data for an auditor");
        assert_eq!(error_code(&e), "AccessDenied");
        let e = auditor_s3
            .put_object()
            .bucket("tpr")
            .key("x")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("no write for an auditor");
        assert_eq!(error_code(&e), "AccessDenied");
        // Retention it may read.
        auditor_s3
            .head_object()
            .bucket("tpr")
            .key("record")
            .send()
            .await
            .expect("head");
    });
    for (method, path, body) in [
        ("POST", "/v1/buckets", Some(r#"{"name":"aud-made"}"#)),
        ("PUT", "/v1/buckets/tpr/retention-policy", Some(loose)),
        ("POST", "/v1/users", Some(r#"{"name":"x","grants":[]}"#)),
    ] {
        let (s, b) = server.admin_as(&ak, &asecret, method, path, body);
        assert_eq!(s, 403, "{method} {path}: {b}");
    }
    let (s, keys) = server.admin_as(&ak, &asecret, "GET", "/v1/audit/keys", None);
    assert_eq!(s, 200, "{keys}");
    let key = json(&keys)["keys"][0].as_str().expect("key").to_owned();
    let (s, ndjson) = server.admin_as(&ak, &asecret, "GET", "/v1/audit/events?format=ndjson", None);
    assert_eq!(s, 200);
    let (s, b) = server.admin_as(&ak, &asecret, "GET", "/v1/audit/events?format=xml", None);
    assert_eq!(s, 400, "{b}");
    // What the auditor downloaded verifies offline.
    let lines: Vec<String> = ndjson.lines().map(str::to_owned).collect();
    let path = write(dir.path(), "aud.ndjson", &lines);
    let (code, out, err) = verify(&[&path, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");

    let all = leaves(&lines);
    let by = |event: &str, user: &str| -> Vec<Value> {
        all.iter()
            .filter(|l| l["event"] == event && l["actor"]["user"] == user)
            .cloned()
            .collect()
    };
    let set = by("bucket-retention-policy-set", "admin");
    assert_eq!(set.len(), 1, "{lines:#?}");
    assert_eq!(set[0]["detail"]["loosens"], false);
    assert_eq!(set[0]["detail"]["value"]["min_days"], 30);
    let requested = by("approval-requested", "admin");
    assert_eq!(requested.len(), 1, "{lines:#?}");
    assert_eq!(requested[0]["detail"]["id"], id.as_str());
    let consumed = by("approval-consumed", "second");
    assert_eq!(consumed.len(), 1, "{lines:#?}");
    assert_eq!(consumed[0]["detail"]["approved_by"], "second");
    assert_eq!(consumed[0]["detail"]["requested_by"], "admin");
    // The loosening itself, carried out on the second administrator's approval.
    let loosened = by("bucket-retention-policy-set", "second");
    assert_eq!(loosened.len(), 1, "{lines:#?}");
    assert_eq!(loosened[0]["detail"]["loosens"], true);
    assert_eq!(loosened[0]["detail"]["value"]["min_days"], 1);
    assert!(consumed[0]["seq"].as_u64() < loosened[0]["seq"].as_u64());
    // The auditor's refusals (S3 and admin) and its export are in the trail.
    let denied: Vec<&Value> = all
        .iter()
        .filter(|l| l["event"] == "access-denied" && l["outcome"] == "refused")
        .collect();
    assert!(
        denied.iter().any(|l| l["actor"]["key"] == sk.as_str()),
        "{denied:#?}"
    );
    assert!(
        denied.iter().any(|l| l["actor"]["key"] == ak.as_str()),
        "{denied:#?}"
    );
    assert_eq!(by("audit-exported", "aud").len(), 1, "{lines:#?}");
    // The auditor's queries, versions and reports work, and are recorded as its own.
    for (method, path, body) in [
        (
            "GET",
            "/v1/audit/events?event=version-created&format=ndjson",
            None,
        ),
        ("GET", "/v1/retention/versions?bucket=tpr", None),
        ("POST", "/v1/reports", Some(r#"{"bucket":"tpr"}"#)),
    ] {
        let (s, b) = server.admin_as(&ak, &asecret, method, path, body);
        assert_eq!(s, 200, "{method} {path}: {b}");
    }
    let (_, answer) = server.admin("GET", "/v1/audit/events?actor=aud&format=ndjson", None);
    for event in ["audit-queried", "retention-queried", "report-generated"] {
        assert!(
            answer.contains(&format!("\\\"event\\\":\\\"{event}\\\"")),
            "{event}: {answer}"
        );
    }
}

/// The trail's tail deleted in RocksDB behind the node's back: with the head left alone
/// the node refuses to start (it never appends over history); with the head rewritten to
/// match (someone with write access to the metadata) the checkpoints already signed over
/// the deleted leaves break the next export; with those deleted too, only a checkpoint kept
/// off the node shows the cut.
#[test]
fn a_tail_cut_in_rocksdb_is_refused_or_shown() {
    use stele::meta::{Cf, Meta, Record};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = ["--data", data.to_str().expect("path")];
    let server = Server::start(&args, dir.path());
    let (s, _) = server.admin("POST", "/v1/buckets", Some(r#"{"name":"cut"}"#));
    assert_eq!(s, 201);
    runtime().block_on(async {
        for i in 0..5 {
            server
                .client()
                .put_object()
                .bucket("cut")
                .key(format!("k{i}"))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .expect("put");
        }
    });
    let key = ctl(&server, &["audit", "keys"]).trim().to_owned();
    let lines = export(&server, dir.path(), "before.ndjson");
    let kept = dir.path().join("kept.checkpoint");
    std::fs::write(&kept, ctl(&server, &["audit", "checkpoint"])).expect("kept");
    let n = leaves(&lines).len() as u64;
    server.kill();

    let leaf_key = |seq: u64| {
        let mut k = vec![b'e'];
        k.extend(seq.to_be_bytes());
        k
    };
    let meta_dir = data.join("meta");
    let cut = n - 3;
    {
        let meta = Meta::open(&meta_dir).expect("meta");
        for seq in cut..n {
            meta.delete_raw(Cf::Audit, &leaf_key(seq)).expect("cut");
        }
    }
    let err = stele_tests::server_refuses(&args);
    assert!(err.contains("audit trail is inconsistent"), "{err}");

    // The head rewritten to end at the cut, as the node would have left it there.
    {
        let meta = Meta::open(&meta_dir).expect("meta");
        let dump = meta.dump().expect("dump");
        let stored: Vec<Vec<u8>> = (0..cut)
            .map(|seq| {
                dump.iter()
                    .find(|(cf, k, _)| *cf == "audit" && *k == leaf_key(seq))
                    .expect("leaf")
                    .2
                    .clone()
            })
            .collect();
        let hashes: Vec<_> = stored.iter().map(|l| merkle::leaf_hash(l)).collect();
        let mut frontier = Vec::new();
        let mut start = 0usize;
        for level in (0..64u8).rev() {
            let width = 1usize << level;
            if cut as usize & width != 0 {
                frontier.push((level, merkle::root(&hashes[start..start + width])));
                start += width;
            }
        }
        let last = {
            use std::io::Write;
            let mut child = Command::new("sha256sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("sha256sum");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(stored.last().expect("leaf"))
                .expect("write");
            let out = child.wait_with_output().expect("sha256sum");
            let hex_text = String::from_utf8(out.stdout).expect("utf-8");
            let mut h = [0u8; 32];
            hex::decode_to_slice(hex_text.split_whitespace().next().expect("hex"), &mut h)
                .expect("hex");
            h
        };
        let head = stele::audit::log::Head {
            size: cut,
            last,
            frontier,
            checkpointed: 0,
        };
        meta.put_raw(Cf::Audit, b"h", &head.encode().expect("head"))
            .expect("head");
    }
    let server = Server::start(&args, dir.path());
    let after = export(&server, dir.path(), "after.ndjson");
    let path = write(dir.path(), "after.ndjson", &after);
    let (code, out, err) = verify(&[&path, "--key", &key]);
    assert_eq!(
        code, 1,
        "checkpoints signed before the cut break the rewritten trail: {out}{err}"
    );
    server.kill();

    // Those checkpoints deleted too: the trail is consistent by itself, and only the
    // checkpoint kept off the node shows the cut.
    {
        let meta = Meta::open(&meta_dir).expect("meta");
        let old: Vec<Vec<u8>> = meta
            .dump()
            .expect("dump")
            .into_iter()
            .filter(|(cf, k, _)| {
                *cf == "audit"
                    && k.first() == Some(&b'c')
                    && k.len() == 9
                    && u64::from_be_bytes(k[1..9].try_into().expect("size")) > cut
                    && u64::from_be_bytes(k[1..9].try_into().expect("size")) <= n
            })
            .map(|(_, k, _)| k)
            .collect();
        assert!(!old.is_empty());
        for k in old {
            meta.delete_raw(Cf::Audit, &k).expect("delete");
        }
    }
    let server = Server::start(&args, dir.path());
    let after = export(&server, dir.path(), "after2.ndjson");
    let path = write(dir.path(), "after2.ndjson", &after);
    let (code, out, err) = verify(&[&path, "--key", &key]);
    // Leaves written since the rewrite reuse the cut seqs, and every checkpoint left
    // is signed over them: consistent by itself.
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = verify(&[
        &path,
        "--key",
        &key,
        "--trust",
        kept.to_str().expect("path"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("not consistent with the trusted checkpoint"),
        "{err}"
    );
}

/// Auditor queries (issue 16, item 4): events by bucket, event and actor, each with an
/// inclusion proof that checks offline (and fails for an edited event), paged; versions by
/// retention state; every query in the trail.
/// Commands write their leaves but not the log's head (the trail's flush writes it, every
/// 100 ms), so a crash can leave the stored head behind the leaves: at the next start the
/// node folds the leaves after it back in, appends after them, and the whole trail
/// verifies — no leaf lost, none written twice.
#[test]
fn a_head_left_behind_by_a_crash_is_caught_up_at_start() {
    use stele::meta::{Cf, Meta};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let meta_dir = data.join("meta");
    let args = ["--data", data.to_str().expect("path")];
    let put = |server: &Server, keys: std::ops::Range<u32>| {
        runtime().block_on(async {
            for i in keys {
                server
                    .client()
                    .put_object()
                    .bucket("behind")
                    .key(format!("k{i}"))
                    .body(ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .expect("put");
            }
        })
    };
    let server = Server::start(&args, dir.path());
    let (s, _) = server.admin("POST", "/v1/buckets", Some(r#"{"name":"behind"}"#));
    assert_eq!(s, 201);
    put(&server, 0..3);
    let key = ctl(&server, &["audit", "keys"]).trim().to_owned();
    server.kill();
    let stored_head = |meta: &Meta| {
        meta.dump()
            .expect("dump")
            .into_iter()
            .find(|(cf, k, _)| *cf == "audit" && k == b"h")
            .expect("a stored head")
            .2
    };
    let old = stored_head(&Meta::open(&meta_dir).expect("meta"));

    let server = Server::start(&args, dir.path());
    put(&server, 3..6);
    server.kill();
    // The head put back where it was before those writes: what a crash right after them,
    // before a flush, leaves.
    {
        let meta = Meta::open(&meta_dir).expect("meta");
        assert_ne!(stored_head(&meta), old, "the head moved since");
        meta.put_raw(Cf::Audit, b"h", &old).expect("head");
    }

    let server = Server::start(&args, dir.path());
    put(&server, 6..7);
    let lines = export(&server, dir.path(), "trail.ndjson");
    server.kill();
    let path = write(dir.path(), "trail.ndjson", &lines);
    let (code, out, err) = verify(&[&path, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");
    let all = leaves(&lines);
    for (i, leaf) in all.iter().enumerate() {
        assert_eq!(leaf["seq"], i as u64, "{leaf}");
    }
    for i in 0..7 {
        let created = all
            .iter()
            .filter(|l| l["event"] == "version-created" && l["target"]["key"] == format!("k{i}"))
            .count();
        assert_eq!(created, 1, "k{i}");
    }
}

#[test]
fn queries_answer_with_proofs_and_are_recorded() {
    let (dir, server, _clock) = start_with_clock(&[]);
    let (s, _) = server.admin("POST", "/v1/buckets", Some(r#"{"name":"qry","lock":true}"#));
    assert_eq!(s, 201);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let client = server.client();
    runtime().block_on(async {
        for (key, days) in [("a", 1), ("b", 100)] {
            client
                .put_object()
                .bucket("qry")
                .key(key)
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(DateTime::from_secs(now + days * DAY_SECS))
                .content_md5("xEk34VdHEO2H3M7D4Ob8Yw==")
                .body(ByteStream::from_static(b"one day"))
                .send()
                .await
                .expect("put");
        }
        client
            .put_object()
            .bucket("qry")
            .key("c")
            .body(ByteStream::from_static(b"held"))
            .send()
            .await
            .expect("put");
        client
            .put_object_legal_hold()
            .bucket("qry")
            .key("c")
            .legal_hold(
                aws_sdk_s3::types::ObjectLockLegalHold::builder()
                    .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect("hold");
    });
    let key = ctl(&server, &["audit", "keys"]).trim().to_owned();

    let answer = ctl(
        &server,
        &[
            "audit",
            "events",
            "--bucket",
            "qry",
            "--event",
            "version-created",
            "--actor",
            "owner",
        ],
    );
    let lines: Vec<String> = answer.lines().map(str::to_owned).collect();
    let events: Vec<Value> = lines
        .iter()
        .map(|l| json(l))
        .filter(|v| v.get("leaf").is_some())
        .collect();
    assert_eq!(events.len(), 3, "{answer}");
    for e in &events {
        let leaf = json(e["leaf"].as_str().expect("leaf"));
        assert_eq!(leaf["event"], "version-created");
        assert_eq!(leaf["target"]["bucket"], "qry");
    }
    let path = write(dir.path(), "answer.ndjson", &lines);
    let check = |path: &str| {
        let out = Command::new(workspace_bin("stelectl"))
            .args(["audit", "verify-events", path, "--key", &key])
            .env_remove("STELE_ADMIN_URL")
            .output()
            .expect("stelectl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(&path);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("verified: 3 events"), "{err}");
    // One event edited: its proof no longer leads to the signed root.
    let mut edited = lines.clone();
    let i = edited
        .iter()
        .position(|l| l.contains("\"leaf\""))
        .expect("event");
    edited[i] = edited[i].replacen("\\\"key\\\":\\\"a\\\"", "\\\"key\\\":\\\"z\\\"", 1);
    assert_ne!(edited[i], lines[i]);
    let (code, err) = check(&write(dir.path(), "edited.ndjson", &edited));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BROKEN at seq"), "{err}");

    // Paged: one at a time, after the last seen, exactly the unpaged answer's events.
    let unpaged: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    let first = ctl(
        &server,
        &[
            "audit",
            "events",
            "--bucket",
            "qry",
            "--event",
            "version-created",
            "--limit",
            "1",
        ],
    );
    let seq = json(first.lines().next().expect("event"))["seq"]
        .as_u64()
        .expect("seq");
    let second = ctl(
        &server,
        &[
            "audit",
            "events",
            "--bucket",
            "qry",
            "--event",
            "version-created",
            "--limit",
            "1",
            "--after",
            &seq.to_string(),
        ],
    );
    let next = json(second.lines().next().expect("event"))["seq"]
        .as_u64()
        .expect("seq");
    assert_eq!([seq, next], unpaged[..2]);
    // With no filter: still an answer with proofs (not the export), which verifies.
    let all = ctl(&server, &["audit", "events"]);
    let path = write(
        dir.path(),
        "all.ndjson",
        &all.lines().map(str::to_owned).collect::<Vec<_>>(),
    );
    let (code, err) = check(&path);
    assert_eq!(code, 0, "{err}");
    // A query answer is no export, a key of another log is the wrong key, a key file that
    // is not there is no key: each unusable input (exit 2), never called tampering.
    let (code, _, err) = verify(&[&path, "--key", &key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("verify-events"), "{err}");
    let other = Signer::from_seed("stele/other/audit/node", &[5; 32])
        .expect("key")
        .verifier()
        .encode();
    let exported = write(
        dir.path(),
        "mine.ndjson",
        &export(&server, dir.path(), "mine.ndjson"),
    );
    let (code, _, err) = verify(&[&exported, "--key", &other]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give that log's key"), "{err}");
    let (code, _, err) = verify(&[&exported, "--key", "/nonexistent/audit.pub"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no such file"), "{err}");
    let (s, body) = server.admin("GET", "/v1/audit/events?outcome=failed", None);
    assert_eq!(s, 400, "{body}");
    // An export is no query answer: refused as such (exit 2), not called broken.
    let export_lines = export(&server, dir.path(), "x.ndjson");
    let (code, err) = check(&write(dir.path(), "x.ndjson", &export_lines));
    assert_eq!(code, 2, "{err}");
    // A date that is no date is refused.
    let (s, body) = server.admin("GET", "/v1/audit/events?from=yesterday", None);
    assert_eq!(s, 400, "{body}");
    // CSV for reading.
    let csv = ctl(
        &server,
        &[
            "audit",
            "events",
            "--bucket",
            "qry",
            "--event",
            "legal-hold-set",
            "--csv",
        ],
    );
    let mut rows = csv.lines();
    assert!(rows.next().expect("header").starts_with("\"seq\",\"ts\""));
    let row = rows.next().expect("row");
    assert!(
        row.contains("\"legal-hold-set\"") && row.contains("\"owner\"") && row.contains("\"c\""),
        "{row}"
    );

    // Versions by retention state.
    let keys_of = |text: &str| -> Vec<String> {
        json(text)
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["key"].as_str().expect("key").to_owned())
            .collect()
    };
    let soon = ctl(
        &server,
        &[
            "audit",
            "versions",
            "--bucket",
            "qry",
            "--expiring-within",
            "2",
        ],
    );
    assert_eq!(keys_of(&soon), ["a"], "{soon}");
    let held = ctl(
        &server,
        &["audit", "versions", "--bucket", "qry", "--legal-hold"],
    );
    assert_eq!(keys_of(&held), ["c"], "{held}");
    let far = {
        let t = std::time::SystemTime::now() + Duration::from_secs(50 * 86_400);
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        // ISO date by the shell's date(1), apart from the code under test.
        let out = Command::new("date")
            .args([
                "-u",
                "-d",
                &format!("@{secs}"),
                "+%Y-%m-%dT%H:%M:%S.000000Z",
            ])
            .output()
            .expect("date");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    };
    let long = ctl(
        &server,
        &[
            "audit",
            "versions",
            "--bucket",
            "qry",
            "--mode",
            "COMPLIANCE",
            "--retain-after",
            &far,
        ],
    );
    assert_eq!(keys_of(&long), ["b"], "{long}");
    let csv = ctl(&server, &["audit", "versions", "--bucket", "qry", "--csv"]);
    assert!(csv.starts_with("\"Bucket\",\"Key\""), "{csv}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let (s, body) = server.admin("GET", "/v1/retention/versions?bucket=qry&mode=SOFT", None);
    assert_eq!(s, 400, "{body}");
    let (s, _) = server.admin("GET", "/v1/retention/versions?bucket=nope", None);
    assert_eq!(s, 404);

    // Every query is in the trail, by who asked.
    let asked = ctl(
        &server,
        &["audit", "events", "--event", "audit-queried", "--csv"],
    );
    assert!(asked.lines().count() >= 5, "{asked}");
    assert!(
        asked.lines().skip(1).all(|l| l.contains("\"admin\"")),
        "{asked}"
    );
    let asked = ctl(
        &server,
        &["audit", "events", "--event", "retention-queried", "--csv"],
    );
    assert!(asked.lines().count() >= 5, "{asked}");
}
