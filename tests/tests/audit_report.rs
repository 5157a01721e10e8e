//! Signed retention reports (issue 16, item 3) through the real node and `stelectl`: a
//! report verifies offline with the trail's key; one with a retain-until date edited, or
//! its summary, does not; `diff` flags a locked version made to vanish behind the node's
//! back (its record deleted from RocksDB offline) and not one removed legally after its
//! retention; the report is an event of the trail.

use std::path::Path;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectLockLegalHoldStatus, ObjectLockMode};
use serde_json::Value;
use stele::meta::Record;
use stele_tests::sites::{ctl, json};
use stele_tests::{DAY_SECS, Server, runtime, start_with_clock};

/// (exit code, stdout, stderr) of `stelectl audit ARGS` run offline.
fn offline(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    stele_tests::stelectl_offline(&all)
}

fn report(server: &Server, dir: &Path, name: &str) -> String {
    let out = dir.join(name);
    ctl(
        server,
        &[
            "audit",
            "report",
            "--bucket",
            "vault",
            "--out",
            out.to_str().expect("path"),
        ],
    );
    out.to_str().expect("path").to_owned()
}

fn copy_report(from: &str, to: &Path) -> String {
    std::fs::create_dir(to).expect("dir");
    for f in ["attestation.json", "attestation.sig", "rows.csv"] {
        std::fs::copy(Path::new(from).join(f), to.join(f)).expect("copy");
    }
    to.to_str().expect("path").to_owned()
}

/// The rows.csv line of `key`.
fn row_of(dir: &str, key: &str) -> String {
    std::fs::read_to_string(Path::new(dir).join("rows.csv"))
        .expect("rows")
        .lines()
        .find(|l| l.starts_with(&format!("\"vault\",\"{key}\",")))
        .unwrap_or_else(|| panic!("no row for {key}"))
        .to_owned()
}

#[test]
fn a_report_verifies_offline_edits_fail_and_diff_names_what_vanished() {
    let (dir, server, clock) = start_with_clock(&[]);
    let (s, body) = server.admin(
        "POST",
        "/v1/buckets",
        Some(r#"{"name":"vault","lock":true}"#),
    );
    assert_eq!(s, 201, "{body}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let client = server.client();
    let put = |key: &'static str, mode: Option<ObjectLockMode>, days: i64| {
        let client = client.clone();
        async move {
            let mut req = client
                .put_object()
                .bucket("vault")
                .key(key)
                .content_md5("3hfw8ktJ+DZBh4kfhVD/uw==")
                .body(ByteStream::from_static(b"record"));
            if let Some(m) = mode {
                req = req
                    .object_lock_mode(m)
                    .object_lock_retain_until_date(DateTime::from_secs(now + days * DAY_SECS));
            }
            req.send()
                .await
                .expect("put")
                .version_id()
                .expect("version")
                .to_owned()
        }
    };
    let (short, long, _gov, _held) = runtime().block_on(async {
        let short = put("short", Some(ObjectLockMode::Compliance), 1).await;
        let long = put("long/one", Some(ObjectLockMode::Compliance), 30).await;
        let gov = put("gov", Some(ObjectLockMode::Governance), 30).await;
        let held = put("held", None, 0).await;
        client
            .put_object_legal_hold()
            .bucket("vault")
            .key("held")
            .legal_hold(
                aws_sdk_s3::types::ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .expect("hold");
        (short, long, gov, held)
    });
    let key = ctl(&server, &["audit", "keys"]).trim().to_owned();

    let r1 = report(&server, dir.path(), "r1");
    let (code, out, err) = offline(&["verify-report", &r1, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("verified: 4 versions of vault"), "{err}");
    let a: Value =
        json(&std::fs::read_to_string(Path::new(&r1).join("attestation.json")).expect("a"));
    assert_eq!(a["type"], "stele.attestation/v1");
    assert_eq!(a["summary"]["compliance"]["versions"], 2);
    assert_eq!(a["summary"]["governance"]["versions"], 1);
    assert_eq!(a["summary"]["legal_holds"], 1);
    assert!(
        a["checkpoint"]
            .as_str()
            .is_some_and(|c| c.starts_with("stele/"))
    );
    // The time the retain-until decisions read, and the clock's anomalies.
    assert_eq!(a["time"]["source"], "retention-clock");
    assert_eq!(a["time"]["anomalies"], 0);
    assert!(a["time"]["behind_wall_micros"].is_i64());
    // S3 Inventory's column names, then Stele's checksum; the key URL-encoded.
    let header = std::fs::read_to_string(Path::new(&r1).join("rows.csv")).expect("rows");
    assert!(header.starts_with("\"Bucket\",\"Key\",\"VersionId\",\"IsLatest\",\"IsDeleteMarker\",\"Size\",\"LastModifiedDate\",\"ETag\",\"ChecksumAlgorithm\",\"ObjectLockRetainUntilDate\",\"ObjectLockMode\",\"ObjectLockLegalHoldStatus\",\"Checksum\"\n"), "{header}");
    let long_row = row_of(&r1, "long/one");
    assert!(
        long_row.contains(&long) && long_row.contains("\"COMPLIANCE\""),
        "{long_row}"
    );
    assert!(
        long_row.contains(&format!("blake3:{}", blake3::hash(b"record").to_hex())),
        "{long_row}"
    );
    assert!(row_of(&r1, "held").contains("\"ON\""));

    // A retain-until date edited in the rows: refused.
    let edited = copy_report(&r1, &dir.path().join("edited"));
    let rows = std::fs::read_to_string(Path::new(&edited).join("rows.csv")).expect("rows");
    let old_row = row_of(&r1, "long/one");
    let until = old_row.split("\",\"").nth(9).expect("until").to_owned();
    let new_row = old_row.replacen(&until, "2099-01-01T00:00:00.000000Z", 1);
    std::fs::write(
        Path::new(&edited).join("rows.csv"),
        rows.replacen(&old_row, &new_row, 1),
    )
    .expect("edit");
    let (code, out, err) = offline(&["verify-report", &edited, "--key", &key]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("NOT VERIFIED"), "{err}");
    // The summary edited in the attestation: the signature no longer covers it.
    let edited = copy_report(&r1, &dir.path().join("edited-summary"));
    let text = std::fs::read_to_string(Path::new(&edited).join("attestation.json")).expect("a");
    std::fs::write(
        Path::new(&edited).join("attestation.json"),
        text.replacen("\"legal_holds\": 1", "\"legal_holds\": 0", 1),
    )
    .expect("edit");
    let (code, _, err) = offline(&["verify-report", &edited, "--key", &key]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another attestation"), "{err}");
    // A report is in the trail.
    let lines = ctl(&server, &["audit", "export"]);
    assert!(
        lines
            .lines()
            .any(|l| l.contains("\"event\":\"report-generated\"")
                && l.contains("\"user\":\"admin\"")),
        "{lines}"
    );

    // Two days on: `short` is removed legally; `long/one` vanishes behind the node's back.
    clock.pass(2 * DAY_SECS);
    runtime().block_on(async {
        client
            .delete_object()
            .bucket("vault")
            .key("short")
            .version_id(&short)
            .send()
            .await
            .expect("removable once its retention ended");
    });
    let data = dir.path().join("data");
    server.kill();
    {
        let meta = stele::meta::Meta::open(&data.join("meta")).expect("meta");
        let victim = meta
            .dump()
            .expect("dump")
            .into_iter()
            .find(|(cf, _, v)| {
                *cf == "versions"
                    && stele::meta::VersionRecord::decode(v)
                        .is_ok_and(|r| r.version_id.to_string() == long)
            })
            .expect("the version's record");
        meta.delete_raw(stele::meta::Cf::Versions, &victim.1)
            .expect("vanish");
    }
    let args = [
        "--data",
        data.to_str().expect("path"),
        "--test-clock",
        clock.0.to_str().expect("path"),
    ];
    let server = Server::start(&args, dir.path());
    let r2 = report(&server, dir.path(), "r2");
    let (code, out, err) = offline(&["verify-report", &r2, "--key", &key]);
    assert_eq!(code, 0, "the later report is genuine: {out}{err}");
    let (code, out, err) = offline(&["diff", &r1, &r2, "--key", &key]);
    assert_eq!(code, 1, "{out}{err}");
    let violations: Value = json(&out);
    let violations = violations.as_array().expect("list");
    assert_eq!(violations.len(), 1, "{out}");
    assert_eq!(violations[0]["key"], "long/one");
    assert_eq!(violations[0]["version_id"], long.as_str());
    assert!(
        violations[0]["problem"]
            .as_str()
            .expect("problem")
            .starts_with("gone while COMPLIANCE")
    );
    assert!(
        !out.contains(&short),
        "a legal removal is no violation: {out}"
    );
    // Nothing vanished between a report and itself; the reports given the wrong way round
    // are refused.
    let (code, _, _) = offline(&["diff", &r1, &r1, "--key", &key]);
    assert_eq!(code, 0);
    let (code, _, err) = offline(&["diff", &r2, &r1, "--key", &key]);
    assert_eq!(code, 2, "{err}");
    // A report that does not verify is no evidence either way: refused, not compared.
    let forged = copy_report(&r2, &dir.path().join("forged"));
    let rows = std::fs::read_to_string(Path::new(&forged).join("rows.csv")).expect("rows");
    std::fs::write(
        Path::new(&forged).join("rows.csv"),
        format!("{rows}{}\n", row_of(&r1, "long/one")),
    )
    .expect("forge");
    let (code, _, err) = offline(&["diff", &r1, &forged, "--key", &key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not verify"), "{err}");
}
