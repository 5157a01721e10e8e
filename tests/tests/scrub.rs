//! Scrub and repair against the real server: flipped and deleted shard files are counted
//! exactly and rebuilt, a second pass is clean; an emptied disk is healed; a version past
//! repair is reported by name; a scrub killed midway resumes from its checkpoint.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use stele_tests::shards::{flip_byte, shard_files};
use stele_tests::{Server, runtime, start_default};

const SIZE: usize = 300_000;

fn body(i: usize) -> Vec<u8> {
    (0..SIZE).map(|j| ((i * 7 + j * 13) % 251) as u8).collect()
}

/// Puts `n` objects `k0..` (large enough to live in shard files).
fn fill(c: &Client, bucket: &str, n: usize) {
    runtime().block_on(async {
        c.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket");
        for i in 0..n {
            c.put_object()
                .bucket(bucket)
                .key(format!("k{i}"))
                .body(ByteStream::from(body(i)))
                .send()
                .await
                .expect("put");
        }
    });
}

fn all_read_back(c: &Client, bucket: &str, n: usize) {
    runtime().block_on(async {
        for i in 0..n {
            let got = c
                .get_object()
                .bucket(bucket)
                .key(format!("k{i}"))
                .send()
                .await
                .expect("get")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes();
            assert!(got[..] == body(i)[..], "k{i} differs");
        }
    });
}

fn scrub(server: &Server) -> serde_json::Value {
    let (s, body) = server.admin("POST", "/v1/scrub/run?wait=true", None);
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).expect("report")
}

#[test]
fn scrub_counts_exactly_what_was_damaged_and_repairs_it() {
    let (dir, server) = start_default();
    let c = server.client();
    fill(&c, "scr", 12);
    let files = shard_files(&dir.path().join("data"));
    assert_eq!(files.len(), 12);
    // One damaged shard per segment (at most M per stripe): 4 flipped, 3 deleted.
    let segs: Vec<&Vec<PathBuf>> = files.values().collect();
    for (n, shards) in segs.iter().take(7).enumerate() {
        let victim = &shards[n % shards.len()];
        if n < 4 {
            flip_byte(victim);
        } else {
            std::fs::remove_file(victim).expect("delete");
        }
    }
    let r = scrub(&server);
    assert_eq!(
        (&r["corrupt"], &r["missing"], &r["repaired"]),
        (
            &serde_json::json!(4),
            &serde_json::json!(3),
            &serde_json::json!(7)
        ),
        "{r}"
    );
    assert_eq!(r["unrepairable"], serde_json::json!([]), "{r}");
    assert_eq!(r["versions"], 12, "{r}");
    let again = scrub(&server);
    assert_eq!(
        (&again["corrupt"], &again["missing"], &again["repaired"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(0),
            &serde_json::json!(0)
        ),
        "{again}"
    );
    assert_eq!(again["shards_verified"], 72, "{again}");
    // Rebuilt files are read-only like every shard file.
    for shards in shard_files(&dir.path().join("data")).values() {
        for p in shards {
            let mode = std::fs::metadata(p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o222, 0, "{} is writable", p.display());
        }
    }
    all_read_back(&c, "scr", 12);
}

#[test]
fn a_version_past_repair_is_reported_by_name_and_others_are_fine() {
    let (dir, server) = start_default();
    let c = server.client();
    fill(&c, "bad", 4);
    let version = runtime().block_on(async {
        c.put_bucket_versioning()
            .bucket("bad")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
        c.put_object()
            .bucket("bad")
            .key("doomed")
            .body(ByteStream::from(body(99)))
            .send()
            .await
            .expect("put")
            .version_id()
            .expect("version")
            .to_owned()
    });
    let before = shard_files(&dir.path().join("data"));
    // The newest segment is the doomed object's (ids sort by time).
    let doomed = before.iter().max_by_key(|(_, v)| {
        v.iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .max()
    });
    let (_, shards) = doomed.expect("segment");
    for p in shards.iter().take(3) {
        flip_byte(p);
    }
    let r = scrub(&server);
    let lost = r["unrepairable"].as_array().expect("list");
    assert_eq!(lost.len(), 1, "{r}");
    assert_eq!(lost[0]["bucket"], "bad");
    assert_eq!(lost[0]["key"], "doomed");
    assert_eq!(lost[0]["version_id"], serde_json::json!(version));
    assert_eq!(r["repaired"], 0, "{r}");
    all_read_back(&c, "bad", 4);
}

#[test]
fn an_emptied_disk_is_healed_with_every_shard_rebuilt() {
    let (dir, server) = start_default();
    let c = server.client();
    fill(&c, "heal", 8);
    let disk = dir.path().join("data/disks/d2");
    for e in std::fs::read_dir(&disk).expect("disk").flatten() {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("rm");
        } else {
            std::fs::remove_file(&p).expect("rm");
        }
    }
    let (s, body) = server.admin("POST", "/v1/disks/d2/heal?wait=true", None);
    assert_eq!(s, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).expect("report");
    assert_eq!(
        (&r["missing"], &r["repaired"]),
        (&serde_json::json!(8), &serde_json::json!(8)),
        "{r}"
    );
    let rebuilt: usize = shard_files(&dir.path().join("data"))
        .values()
        .map(|v| v.iter().filter(|p| p.starts_with(&disk)).count())
        .sum();
    assert_eq!(rebuilt, 8);
    all_read_back(&c, "heal", 8);
}

fn scrub_status(server: &Server) -> serde_json::Value {
    let (s, body) = server.admin("GET", "/v1/scrub", None);
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).expect("status")
}

#[test]
fn a_scrub_killed_midway_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = |rate: &'static str| {
        vec![
            "--data".to_owned(),
            data.to_str().expect("path").to_owned(),
            "--scrub-rate".to_owned(),
            rate.to_owned(),
        ]
    };
    let slow = args("1");
    let slow: Vec<&str> = slow.iter().map(String::as_str).collect();
    let server = Server::start(&slow, dir.path());
    fill(&server.client(), "resume", 20);
    let (s, _) = server.admin("POST", "/v1/scrub/run", None);
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the scrub never got going");
        let st = scrub_status(&server);
        if st["current"]["keys"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill();
    let fast = args("1000");
    let fast: Vec<&str> = fast.iter().map(String::as_str).collect();
    let server = Server::start(&fast, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        assert!(
            Instant::now() < deadline,
            "the resumed scrub never finished"
        );
        let st = scrub_status(&server);
        if !st["last_pass"].is_null() {
            break st["last_pass"].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(last["resumed"], true, "{last}");
    let before = last["keys_before_resume"].as_u64().expect("count");
    assert!((3..20).contains(&before), "{last}");
    assert_eq!(last["keys"], 20, "every key once: {last}");
    assert_eq!(last["versions"], 20, "{last}");
}

/// A read that meets a corrupt shard queues it; the repair worker drains the queue and
/// rebuilds the shard, without any scrub.
#[test]
fn the_repair_queue_fed_by_reads_is_drained() {
    let (dir, server) = start_default();
    let c = server.client();
    fill(&c, "rqq", 1);
    let files = shard_files(&dir.path().join("data"));
    // A data shard (index 0): a GET reads it.
    let victim = files
        .values()
        .next()
        .expect("segment")
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".0"))
        .expect("shard 0")
        .clone();
    let original = std::fs::read(&victim).expect("read");
    flip_byte(&victim);
    all_read_back(&c, "rqq", 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, body) = server.admin("GET", "/v1/repair", None);
        assert_eq!(s, 200, "{body}");
        let st: serde_json::Value = serde_json::from_str(&body).expect("json");
        if st["shards_rebuilt"].as_u64() >= Some(1) && st["queue_length"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read(&victim).expect("read"),
        original,
        "rebuilt byte for byte"
    );
}

/// A shard file no version references is moved to the disk's quarantine folder (never
/// deleted); one written just now is left alone, as it may belong to a write in flight.
#[test]
fn orphan_shard_files_are_quarantined_not_deleted() {
    let (dir, server) = start_default();
    let c = server.client();
    fill(&c, "orph", 2);
    let files = shard_files(&dir.path().join("data"));
    let real = files.values().next().expect("segment")[0].clone();
    let shards_dir = real.parent().expect("dir").to_owned();
    let old = shards_dir.join("0000000000000000ffffffffffffffff.1");
    let fresh = shards_dir.join("0000000000000000eeeeeeeeeeeeeeee.1");
    std::fs::copy(&real, &old).expect("copy");
    std::fs::copy(&real, &fresh).expect("copy");
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(an_hour_ago))
        .or_else(|_| {
            std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644))?;
            std::fs::File::options()
                .write(true)
                .open(&old)?
                .set_modified(an_hour_ago)
        })
        .expect("age the orphan");
    let r = scrub(&server);
    assert_eq!(r["orphans_quarantined"], 1, "{r}");
    assert!(!old.exists() && fresh.exists());
    let disk_root = shards_dir.parent().and_then(Path::parent).expect("disk");
    assert!(
        disk_root
            .join("quarantine/0000000000000000ffffffffffffffff.1")
            .exists()
    );
    all_read_back(&c, "orph", 2);
}

/// Pausing a pass stops it at a key boundary; resuming continues from its checkpoint.
#[test]
fn a_paused_scrub_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &["--data", data.to_str().expect("path"), "--scrub-rate", "1"],
        dir.path(),
    );
    fill(&server.client(), "pause", 10);
    let (s, _) = server.admin("POST", "/v1/scrub/run", None);
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while scrub_status(&server)["current"]["keys"]
        .as_u64()
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "the scrub never got going");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, _) = server.admin("POST", "/v1/scrub/pause", None);
    assert_eq!(s, 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while scrub_status(&server)["running"] == true {
        assert!(Instant::now() < deadline, "pause did not stop the pass");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let paused = scrub_status(&server);
    assert!(paused["last_pass"].is_null(), "{paused}");
    let (s, _) = server.admin("POST", "/v1/scrub/resume", None);
    assert_eq!(s, 204);
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let st = scrub_status(&server);
        if !st["last_pass"].is_null() {
            break st["last_pass"].clone();
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(last["resumed"], true, "{last}");
    assert_eq!(last["keys"], 10, "{last}");
}

/// Cancelling stops a pass and forgets it: the next pass starts from the beginning.
#[test]
fn a_cancelled_scrub_is_forgotten_and_workers_report_their_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &["--data", data.to_str().expect("path"), "--scrub-rate", "1"],
        dir.path(),
    );
    fill(&server.client(), "cancel", 8);
    let (s, _) = server.admin("POST", "/v1/workers/scrub/run", None);
    assert_eq!(s, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while scrub_status(&server)["current"]["keys"]
        .as_u64()
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "the scrub never got going");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, _) = server.admin("POST", "/v1/workers/scrub/cancel", None);
    assert_eq!(s, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while scrub_status(&server)["running"] == true {
        assert!(Instant::now() < deadline, "cancel did not stop the pass");
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = scrub_status(&server);
    assert!(st["last_pass"].is_null() && st["passes"] == 0, "{st}");
    // Nothing resumes by itself; the workers' status names each of them.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(scrub_status(&server)["running"], false);
    let (s, body) = server.admin("GET", "/v1/workers", None);
    assert_eq!(s, 200, "{body}");
    let w: serde_json::Value = serde_json::from_str(&body).expect("json");
    for name in ["scrub", "lifecycle", "drill", "repair", "watchdog"] {
        assert!(!w[name].is_null(), "{name} missing: {w}");
    }
    // Every background job runs on the one runner, with one status shape and scope.
    let runners = w["runners"].as_array().expect("runners");
    let names: Vec<&str> = runners.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "scrub",
            "lifecycle",
            "repair",
            "drill",
            "rebalance",
            "watchdog",
            "alert-delivery",
            "replication-backfill",
            "replication-audit",
            "audit-checkpoint",
            "audit-flush"
        ],
        "{w}"
    );
    let drill = runners
        .iter()
        .find(|r| r["name"] == "drill")
        .expect("drill");
    assert_eq!(drill["scope"], "cluster", "{w}");
    // The watchdog and the alert delivery ran a pass at start.
    for name in ["watchdog", "alert-delivery"] {
        let r = runners.iter().find(|r| r["name"] == name).expect("runner");
        assert!(r["passes"].as_u64() >= Some(1), "{name}: {w}");
    }
    // Any of them can be paused and resumed through the same action.
    for action in ["pause", "resume"] {
        let (s, _) = server.admin("POST", &format!("/v1/workers/repair/{action}"), None);
        assert_eq!(s, 202, "{action}");
        let (_, body) = server.admin("GET", "/v1/workers", None);
        let w: serde_json::Value = serde_json::from_str(&body).expect("json");
        let repair = w["runners"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "repair").cloned())
            .expect("repair");
        assert_eq!(repair["paused"], action == "pause", "{w}");
    }
    let (s, _) = server.admin("POST", "/v1/workers/scrub/explode", None);
    assert_eq!(s, 404);
    let (s, _) = server.admin("POST", "/v1/workers/nobody/run", None);
    assert_eq!(s, 404);
}

/// Shards that could not be written because their disk was gone are rebuilt on other
/// disks (their new place recorded, the version record untouched), so the objects again
/// survive the loss of M more shards.
#[test]
fn shards_of_a_lost_disk_are_rebuilt_on_healthy_disks() {
    let (dir, server) = start_default();
    let c = server.client();
    let data = dir.path().join("data");
    let gone = data.join("disks/d5");
    std::fs::rename(&gone, data.join("d5.gone")).expect("lose d5");
    fill(&c, "lost", 4);
    let r = scrub(&server);
    assert_eq!(r["unrepairable"], serde_json::json!([]), "{r}");
    assert_eq!(
        r["missing"], r["repaired"],
        "everything found was rebuilt: {r}"
    );
    let again = scrub(&server);
    assert_eq!(
        (&again["missing"], &again["corrupt"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "{again}"
    );
    assert_eq!(again["shards_verified"], 24, "{again}");
    // Six shards per object again, on five disks: lose two more of each and read.
    let files = shard_files(&data);
    assert_eq!(files.len(), 4);
    for shards in files.values() {
        assert_eq!(shards.len(), 6, "{shards:?}");
        let mut on_d0_or_d1 = shards.iter().filter(|p| {
            p.starts_with(data.join("disks/d0")) || p.starts_with(data.join("disks/d1"))
        });
        for p in on_d0_or_d1.by_ref().take(2) {
            std::fs::remove_file(p).expect("delete");
        }
    }
    all_read_back(&c, "lost", 4);
}

/// An alert sink on an address this test made and closed: deliveries fail, so raised
/// alerts stay visible in the durable queue.
fn add_dead_sink(server: &Server) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (s, body) = server.admin(
        "PUT",
        "/v1/alerts/sinks/ops",
        Some(&format!(r#"{{"url":"http://127.0.0.1:{port}/"}}"#)),
    );
    assert_eq!(s, 200, "{body}");
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let last = f();
        if let Some(v) = last {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A repair that cannot succeed (a version that lost more shards than M) stays in the
/// queue with its error and attempt count, is retried with backoff, and is alerted once
/// it keeps failing; it never silently leaves the queue.
#[test]
fn a_repair_that_keeps_failing_stays_queued_and_is_alerted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--repair-interval",
            "1",
        ],
        dir.path(),
    );
    add_dead_sink(&server);
    let c = server.client();
    fill(&c, "lost", 1);
    let files = shard_files(&data);
    let (_, shards) = files.iter().next().expect("one segment");
    for p in shards.iter().take(3) {
        std::fs::remove_file(p).expect("rm");
    }
    let read = runtime().block_on(c.get_object().bucket("lost").key("k0").send());
    assert!(read.is_err(), "a version past M losses cannot be read");
    let status = wait_for("three failed attempts", Duration::from_secs(60), || {
        let (s, body) = server.admin("GET", "/v1/repair", None);
        assert_eq!(s, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        (v["failed_attempts"].as_u64() >= Some(3)).then_some(body)
    });
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(v["queue_length"], 1, "{v}");
    assert_eq!(v["failing"], 1, "{v}");
    assert_eq!(v["handled"], 0, "{v}");
    let entry = &v["failing_entries"][0];
    assert_eq!(entry["key"], "k0", "{v}");
    assert!(entry["attempts"].as_u64() >= Some(3), "{v}");
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("fewer")),
        "{v}"
    );
    let (_, queue) = server.admin("GET", "/v1/alerts/queue", None);
    assert!(queue.contains("repair-failing"), "{queue}");
    let (_, metrics) = server.admin("GET", "/metrics", None);
    assert!(
        metrics.contains("stele_repair_queue_failing 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stele_repair_queue_length 1\n"),
        "{metrics}"
    );
}

/// Heal stamps only an empty directory: one that holds unknown files, or that is stamped
/// as another disk, is refused with 409 and a code saying which, and left untouched.
#[test]
fn heal_refuses_a_directory_that_is_not_an_empty_disk() {
    let (dir, server) = start_default();
    let d2 = dir.path().join("data/disks/d2");
    let stamp = d2.join(".stele-disk");
    let original = std::fs::read_to_string(&stamp).expect("stamp");
    // Stamped as another disk.
    std::fs::write(&stamp, original.replace("\"d2\"", "\"d4\"")).expect("restamp");
    let (s, body) = server.admin("POST", "/v1/disks/d2/heal", None);
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("\"DiskMismatch\""), "{body}");
    // Unknown files and no stamp.
    std::fs::remove_file(&stamp).expect("unstamp");
    std::fs::write(d2.join("someone-elses.dat"), b"keep me").expect("plant");
    let (s, body) = server.admin("POST", "/v1/disks/d2/heal", None);
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("\"DiskNotEmpty\""), "{body}");
    assert_eq!(
        std::fs::read(d2.join("someone-elses.dat")).expect("kept"),
        b"keep me"
    );
    assert!(!stamp.exists(), "nothing was stamped");
}

/// A lifecycle pass that meets metadata it cannot read (a record of a newer release's
/// format, planted while the node was down) fails: the admin call says why (500
/// PassFailed), the status and `/metrics` show it, an alert is raised; nothing reports a
/// pass done.
#[test]
fn a_failed_lifecycle_pass_shows_in_status_metrics_and_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = ["--data", data.to_str().expect("path")];
    let server = Server::start(&args, dir.path());
    let c = server.client();
    fill(&c, "aging", 1);
    server.kill();
    let planted = std::process::Command::new(stele_tests::workspace_bin("engine-driver"))
        .args(["plant-lifecycle", data.to_str().expect("path"), "aging"])
        .status()
        .expect("engine-driver");
    assert!(planted.success());
    let server = Server::start(&args, dir.path());
    add_dead_sink(&server);
    let (s, body) = server.admin("POST", "/v1/lifecycle/run?wait=true", None);
    assert_eq!(s, 500, "{body}");
    assert!(
        body.contains("\"PassFailed\"") && body.contains("aging"),
        "{body}"
    );
    let (_, st) = server.admin("GET", "/v1/lifecycle", None);
    let st: serde_json::Value = serde_json::from_str(&st).expect("json");
    assert_eq!(st["passes"], 0, "{st}");
    assert_eq!(st["failed_passes"], 1, "{st}");
    assert!(st["last_pass"].is_null(), "{st}");
    assert!(
        st["last_failure"]
            .as_str()
            .is_some_and(|r| r.contains("aging")),
        "{st}"
    );
    let (_, metrics) = server.admin("GET", "/metrics", None);
    assert!(
        metrics.contains("stele_worker_failed_passes_total{worker=\"lifecycle\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stele_worker_last_pass_failed{worker=\"lifecycle\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stele_lifecycle_passes_total 0"),
        "{metrics}"
    );
    let (_, queue) = server.admin("GET", "/v1/alerts/queue", None);
    assert!(queue.contains("worker-pass-failed"), "{queue}");
}
