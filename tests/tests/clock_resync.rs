//! Trusted time (issue 16, item 5): after a restart the retention clock runs behind the
//! wall clock by the downtime it did not count; a resync approved by a second
//! administrator gives it back (a version whose retention ended by wall time becomes
//! removable), a resync past the wall clock or backward is refused, and each is audited.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ObjectLockMode;
use stele_tests::sites::{ctl, ctl_fails, json};
use stele_tests::{DAY_SECS, Server, error_code, error_status, runtime, start_with_clock};

const DAY_MICROS: i64 = DAY_SECS * 1_000_000;

fn clock_now(server: &Server) -> (i64, i64, i64) {
    let (s, body) = server.admin("GET", "/v1/clock", None);
    assert_eq!(s, 200, "{body}");
    let v = json(&body);
    (
        v["retention_now"].as_i64().expect("retention"),
        v["wall_now"].as_i64().expect("wall"),
        v["behind_wall_micros"].as_i64().expect("behind"),
    )
}

#[test]
fn a_resync_approved_by_a_second_admin_gives_back_the_downtime() {
    let (dir, server, clock) = start_with_clock(&[]);
    let (s, body) = server.admin(
        "POST",
        "/v1/buckets",
        Some(r#"{"name":"kept","lock":true}"#),
    );
    assert_eq!(s, 201, "{body}");
    let (retention_now, _, _) = clock_now(&server);
    let until = retention_now / 1_000_000 + DAY_SECS;
    let version = runtime().block_on(async {
        server
            .client()
            .put_object()
            .bucket("kept")
            .key("k")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(until))
            .content_md5("xEk34VdHEO2H3M7D4Ob8Yw==")
            .body(ByteStream::from_static(b"one day"))
            .send()
            .await
            .expect("put")
            .version_id()
            .expect("version")
            .to_owned()
    });

    // Down, and the wall clock two days on when the node comes back: the retention clock
    // resumes where it stopped.
    server.kill();
    clock.jump_wall(2 * DAY_SECS);
    let data = dir.path().join("data");
    let args = [
        "--data",
        data.to_str().expect("path"),
        "--test-clock",
        clock.0.to_str().expect("path"),
    ];
    let server = Server::start(&args, dir.path());
    let (_, _, behind) = clock_now(&server);
    assert!(
        behind > 2 * DAY_MICROS - 60_000_000,
        "behind by {behind} µs"
    );
    let (s, body) = server.admin("GET", "/health", None);
    assert_eq!(s, 200);
    assert!(
        json(&body)["clock_behind_wall_micros"]
            .as_i64()
            .expect("lag")
            > DAY_MICROS
    );
    // (status, S3 code) of a refusal.
    let delete = |server: &Server| -> Result<(), (u16, String)> {
        runtime()
            .block_on(
                server
                    .client()
                    .delete_object()
                    .bucket("kept")
                    .key("k")
                    .version_id(&version)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| (error_status(&e), error_code(&e)))
    };
    assert_eq!(
        delete(&server),
        Err((403, "AccessDenied".to_owned())),
        "retained by retention time"
    );

    // One administrator alone may not end retention sooner: refused until the two-person
    // rule is in force.
    let (s, body) = server.admin("POST", "/v1/clock/resync", Some("{}"));
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("TwoPersonRuleRequired"), "{body}");

    // A second administrator: the two-person rule is in force.
    let (s, body) = server.admin(
        "POST",
        "/v1/users",
        Some(r#"{"name":"second","grants":[{"role":"admin"}]}"#),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = server.admin(
        "POST",
        "/v1/users/second/keys",
        Some(r#"{"plane":"admin"}"#),
    );
    assert_eq!(s, 201, "{body}");
    let k = json(&body);
    let (k2, s2) = (
        k["access_key"].as_str().expect("key").to_owned(),
        k["secret_key"].as_str().expect("secret").to_owned(),
    );

    // Past the wall clock, or backward: refused, nothing moves.
    let (retention_now, wall_now, _) = clock_now(&server);
    for to in [wall_now + 3_600_000_000, retention_now - 3_600_000_000] {
        let (s, body) = server.admin(
            "POST",
            "/v1/clock/resync",
            Some(&format!(r#"{{"to":{to}}}"#)),
        );
        assert_eq!(s, 400, "{body}");
        assert!(body.contains("ClockResyncRefused"), "{body}");
    }
    let err = ctl_fails(
        &server,
        &["clock", "resync", "--to", "2099-01-01T00:00:00Z"],
    );
    assert!(err.contains("past"), "{err}");
    assert!(
        clock_now(&server).2 > DAY_MICROS,
        "a refused resync moved the clock"
    );

    // Asked, then the wall clock steps while the node runs: the approval judges again
    // and refuses (the step is no downtime).
    let out = ctl(&server, &["clock", "resync"]);
    assert!(out.contains("pending"), "{out}");
    let (_, body) = server.admin("GET", "/v1/approvals", None);
    let id = json(&body)[0]["id"].as_str().expect("id").to_owned();
    assert!(body.contains("ResyncClock"), "{body}");
    let listed = ctl(&server, &["approvals", "list"]);
    assert!(
        listed.contains("advance the retention clock by 2d"),
        "{listed}"
    );
    clock.jump_wall(3600);
    let (s, body) = server.approve_as(&k2, &s2, &id);
    assert_eq!(s, 400, "{body}");
    assert!(
        body.contains("ClockResyncRefused") && body.contains("stepped"),
        "{body}"
    );
    assert_eq!(delete(&server), Err((403, "AccessDenied".to_owned())));
    let first_log = std::fs::read_to_string(&server.stderr_log).expect("log");

    // After a restart: to the wall clock, held for the second administrator, carried out.
    // A kill -9 loses what the trail's queue held (at most its last 100 ms of refusals):
    // a query writes the queue first, and shows this run's refusals are in.
    let asked = ctl(
        &server,
        &["audit", "events", "--event", "clock-resync-refused"],
    );
    assert_eq!(
        asked.matches("\\\"outcome\\\":\\\"refused\\\"").count(),
        5,
        "{asked}"
    );
    server.kill();
    let server = Server::start(&args, dir.path());
    let out = ctl(&server, &["clock", "resync"]);
    assert!(out.contains("pending"), "{out}");
    assert!(
        delete(&server).is_err(),
        "nothing moved before the approval"
    );
    let (_, body) = server.admin("GET", "/v1/approvals", None);
    let id = json(&body)[0]["id"].as_str().expect("id").to_owned();
    let (s, body) = server.approve_as(&k2, &s2, &id);
    assert_eq!(s, 200, "{body}");
    let (_, _, behind) = clock_now(&server);
    assert!(behind < 60_000_000, "still behind by {behind} µs");
    // The version whose retention ended by wall time is removable now.
    delete(&server).expect("retention over");
    let out = ctl(&server, &["clock", "show"]);
    assert!(out.contains("behind the wall clock"), "{out}");

    // Audited: every refusal (one admin alone, past the wall, backward, past the wall
    // through stelectl, the step at approval), the requests, the resync with its approver.
    let log = first_log + &std::fs::read_to_string(&server.stderr_log).expect("log");
    assert_eq!(
        log.matches("event=\"clock-resync-refused\"").count(),
        5,
        "{log}"
    );
    assert_eq!(log.matches("event=\"approval-requested\"").count(), 2);
    let resynced = log
        .lines()
        .find(|l| l.contains("event=\"clock-resynced\""))
        .expect("the resync is audited");
    assert!(resynced.contains("second"), "{resynced}");
    // And in the audit trail, refusals and all (the first run's too: one log).
    let trail = ctl(&server, &["audit", "events", "--csv"]);
    let rows: Vec<&str> = trail.lines().collect();
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("\"clock-resync-refused\",\"refused\""))
            .count(),
        5,
        "{trail}"
    );
    let done: Vec<&&str> = rows
        .iter()
        .filter(|r| r.contains("\"clock-resynced\",\"ok\""))
        .collect();
    assert_eq!(done.len(), 1, "{trail}");
    assert!(done[0].contains("\"second\""), "{}", done[0]);
}
