//! Erasure coding across three sites (issue 15's acceptance): three sites of two nodes,
//! each site its own network namespace, every byte between sites through the relay at
//! 8-10 ms round trips (`stele_tests::geo`). A whole site is killed (kill -9, both nodes)
//! in the middle of a restic backup and of a client's stream of PUTs: every PUT the
//! client saw acknowledged reads back byte-exact from the two other sites, the backup
//! completes and verifies, the aws CLI writes and reads during the outage; the bytes
//! acknowledged while the site was gone are counted as site-unsafe, and drain to zero
//! once it returns (missing shards rebuilt onto it, shards written elsewhere moved back).
//! Then the bytes on all disks are (K+M)/K of the data. A site cut off by the relay
//! accepts no write while the other two go on; healed, it holds their history.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::geo::GeoCluster;
use stele_tests::netns::Netns;
use stele_tests::sites::{json, shard_files_in};
use stele_tests::{ACCESS_KEY, SECRET_KEY, Server, error_code, error_status, noise};

/// A client of `s` that does not retry, so an answer is the server's own.
fn client(s: &Server) -> aws_sdk_s3::Client {
    s.client_once()
}

async fn put(s: &Server, key: &str, body: &[u8]) -> Result<(), (u16, String)> {
    client(s)
        .put_object()
        .bucket("backups")
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (error_status(&e), error_code(&e)))
}

async fn create_bucket(s: &Server, name: &str) {
    client(s)
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("bucket");
}

async fn get(s: &Server, key: &str) -> Result<Vec<u8>, (u16, String)> {
    match client(s)
        .get_object()
        .bucket("backups")
        .key(key)
        .send()
        .await
    {
        Ok(o) => Ok(o.body.collect().await.expect("body").into_bytes().to_vec()),
        Err(e) => Err((error_status(&e), error_code(&e))),
    }
}

fn restic(s: &Server, args: &[&str]) -> Command {
    let mut cmd = stele_tests::restic(&format!("s3:{}/backups/restic", s.s3_url), "geo");
    cmd.args(args);
    cmd
}

fn aws(s: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new("aws");
    cmd.args(["--endpoint-url", &s.s3_url])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE");
    cmd
}

/// Runs `cmd`; its output, which must be a success.
fn ok(mut cmd: Command) -> String {
    let o = cmd
        .output()
        .expect("client (installed by scripts/setup-deps --clients)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{cmd:?}: {text}");
    text
}

/// The site-unsafe bytes node `name` reports, from `/v1/repair` and from `/metrics`
/// (which must agree).
fn site_unsafe(g: &GeoCluster, name: &str) -> u64 {
    let bytes = g.repair_status(name)["site_unsafe_bytes"]
        .as_u64()
        .expect("site_unsafe_bytes");
    let (status, metrics) = g.admin(name, "GET", "/metrics");
    assert_eq!(status, 200);
    let line = metrics
        .lines()
        .find(|l| l.starts_with("stele_geo_site_unsafe_bytes "))
        .unwrap_or_else(|| panic!("no site-unsafe gauge in {metrics}"));
    let gauge: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("value");
    // Read a moment apart: equal unless repair moved between the two reads.
    assert!(
        gauge as u64 == bytes || g.repair_status(name)["site_unsafe_bytes"] != bytes,
        "{name}: /v1/repair {bytes}, /metrics {gauge}"
    );
    bytes
}

/// Polls `f` until it holds (a bound on progress for a loaded machine, not a speed
/// check).
fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Bytes of every shard file on every disk of every node.
fn shard_bytes(g: &GeoCluster) -> u64 {
    g.nodes
        .iter()
        .flat_map(|n| g.disks(&n.name))
        .flat_map(|d| shard_files_in(&d))
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// The sizes of every version in `backups` above the inline limit (16 KiB: smaller ones
/// live in the metadata, not in shards), listed through `s`.
async fn erasure_coded_bytes(s: &Server) -> u64 {
    let mut total = 0;
    let mut marker: (Option<String>, Option<String>) = (None, None);
    loop {
        let page = client(s)
            .list_object_versions()
            .bucket("backups")
            .set_key_marker(marker.0.clone())
            .set_version_id_marker(marker.1.clone())
            .send()
            .await
            .expect("versions");
        total += page
            .versions()
            .iter()
            .map(|v| v.size.unwrap_or(0) as u64)
            .filter(|&n| n > 16 * 1024)
            .sum::<u64>();
        if page.is_truncated != Some(true) {
            return total;
        }
        marker = (
            page.next_key_marker.clone(),
            page.next_version_id_marker.clone(),
        );
    }
}

#[test]
fn a_site_lost_mid_upload_loses_nothing_acknowledged_and_its_debt_drains_on_return() {
    if !Netns::require_or_skip("geo_sites") {
        return;
    }
    let mut g = GeoCluster::start(&["--repair-interval", "1", "--rebalance-grace", "0"], 4);
    g.in_site("a", || async {
        create_bucket(g.server("a1"), "backups").await;
    });
    let tree = g.dir.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    for i in 0..10u64 {
        std::fs::write(tree.join(format!("f{i}.bin")), noise(i + 1, 3 << 20)).expect("file");
    }
    ok(g.command_in("a", &restic(g.server("a1"), &["init"])));
    assert_eq!(
        site_unsafe(&g, "a1"),
        0,
        "nothing site-unsafe with three sites up"
    );

    // A paced restic backup (3 MiB/s for 30 MiB) and a client's PUTs through a2 and b1,
    // each acknowledged one written to the ledger; site c is killed in the middle.
    let mid = g.dir.path().join("mid.bin");
    std::fs::write(&mid, noise(78, 48 << 20)).expect("file");
    let mid_s = mid.to_str().expect("path").to_owned();
    let backup = g
        .command_in(
            "a",
            &restic(
                g.server("a1"),
                &[
                    "--limit-upload",
                    "3072",
                    "backup",
                    tree.to_str().expect("path"),
                ],
            ),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("restic");
    let mut backup = KillOnDrop(Some(backup));
    let ledger: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(AtomicBool::new(false));
    let acked_after_kill = Arc::new(Mutex::new(0u32));
    let mut upload = KillOnDrop(None);
    std::thread::scope(|scope| {
        // A panic below (a bound passed) stops the PUT threads, so the scope ends.
        let _stop = StopOnDrop(stop.clone());
        for (site, node) in [("a", "a2"), ("b", "b1")] {
            let (g, ledger, refused, stop, after_kill, acked_after_kill) = (
                &g,
                ledger.clone(),
                refused.clone(),
                stop.clone(),
                after_kill.clone(),
                acked_after_kill.clone(),
            );
            scope.spawn(move || {
                let s = g.server(node);
                g.in_site(site, || async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let seed = i * 100 + u64::from(node.as_bytes()[0]);
                        let key = format!("ledger/{node}/{i}");
                        let len = 200_000 + (seed as usize * 7919) % 1_800_000;
                        let killed = after_kill.load(Ordering::SeqCst);
                        match put(s, &key, &noise(seed, len)).await {
                            Ok(()) => {
                                ledger.lock().expect("ledger").insert(key, seed);
                                if killed {
                                    *acked_after_kill.lock().expect("count") += 1;
                                }
                            }
                            Err(e) => refused.lock().expect("refused").push((key, e)),
                        }
                    }
                });
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            ledger.lock().expect("ledger").len() >= 2,
            "the PUTs did not start before the kill: the test would show nothing"
        );
        // The aws CLI too: a 48 MiB multipart upload through b1 when the site goes.
        upload.0 = Some(
            g.command_in(
                "b",
                &aws(
                    g.server("b1"),
                    &["s3", "cp", &mid_s, "s3://backups/aws/mid.bin"],
                ),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aws"),
        );
        std::thread::sleep(Duration::from_millis(300));
        let running = |c: &mut KillOnDrop| {
            c.0.as_mut()
                .is_some_and(|c| c.try_wait().expect("wait").is_none())
        };
        assert!(
            running(&mut backup) && running(&mut upload),
            "the backup or the upload ended before the kill: the test would show nothing"
        );
        g_kill(&g, &after_kill);
        until("ten PUTs acknowledged with site c gone", 120, || {
            *acked_after_kill.lock().expect("count") >= 10
        });
        stop.store(true, Ordering::SeqCst);
    });
    // The scope borrowed `g` immutably; the kill happened through `g_kill` by pid.
    g.forget_site("c");
    for (what, child) in [
        ("restic backup", &mut backup),
        ("aws CLI upload", &mut upload),
    ] {
        let out = child
            .0
            .take()
            .expect("started")
            .wait_with_output()
            .expect("wait");
        assert!(
            out.status.success(),
            "the {what} failed with a site killed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ledger = ledger.lock().expect("ledger").clone();
    let refused = refused.lock().expect("refused").clone();
    eprintln!(
        "ledger: {} acknowledged, {} refused: {:?}",
        ledger.len(),
        refused.len(),
        refused.iter().take(5).collect::<Vec<_>>()
    );

    // Counted: what was acknowledged while c was gone would not survive losing a or b.
    let unsafe_now = site_unsafe(&g, "a1");
    assert!(unsafe_now > 0, "no site-unsafe bytes with site c down");
    until("a1's and b2's queues agree", 30, || {
        site_unsafe(&g, "b2") == site_unsafe(&g, "a1")
    });
    let unsafe_now = site_unsafe(&g, "a1");

    // Zero lost: every acknowledged PUT reads back byte-exact from each remaining site.
    for (site, node) in [("a", "a1"), ("b", "b2")] {
        g.in_site(site, || async {
            for (key, seed) in &ledger {
                let len = 200_000 + (*seed as usize * 7919) % 1_800_000;
                assert!(
                    get(g.server(node), key).await == Ok(noise(*seed, len)),
                    "{key} through {node}"
                );
            }
        });
    }
    ok(g.command_in("b", &restic(g.server("b1"), &["check", "--read-data"])));
    // The aws CLI, during the outage: a multipart upload through b1, read through a2.
    let big = g.dir.path().join("big.bin");
    std::fs::write(&big, noise(77, 20 << 20)).expect("file");
    let big_s = big.to_str().expect("path");
    ok(g.command_in(
        "b",
        &aws(
            g.server("b1"),
            &["s3", "cp", big_s, "s3://backups/aws/big.bin"],
        ),
    ));
    let back = g.dir.path().join("back.bin");
    let back_s = back.to_str().expect("path");
    ok(g.command_in(
        "a",
        &aws(
            g.server("a2"),
            &["s3", "cp", "s3://backups/aws/big.bin", back_s],
        ),
    ));
    assert!(std::fs::read(&back).expect("back") == std::fs::read(&big).expect("big"));
    ok(g.command_in(
        "b",
        &aws(
            g.server("b2"),
            &["s3", "cp", "s3://backups/aws/mid.bin", back_s],
        ),
    ));
    assert!(
        std::fs::read(&back).expect("back") == std::fs::read(&mid).expect("mid"),
        "the upload that crossed the kill"
    );
    assert!(
        site_unsafe(&g, "a1") > unsafe_now,
        "the aws CLI's upload is site-unsafe too"
    );

    // The site returns: metadata catches up through Raft, its missing shards are rebuilt
    // onto it and shards written elsewhere move back; site-unsafe bytes drain to zero on
    // every node.
    g.restart_site("c");
    g.until_settled("site c caught up");
    until("site-unsafe bytes drained on every node", 300, || {
        g.running().iter().all(|n| site_unsafe(&g, n) == 0)
    });
    // The other entries (reads' and failed rebuilds' during the outage, pushed back by
    // their backoff) drain too.
    until("every repair queue empty", 180, || {
        g.running()
            .iter()
            .all(|n| g.repair_status(n)["queue_length"] == 0)
    });
    let moved: u64 = g
        .running()
        .iter()
        .map(|n| g.repair_status(n)["shards_moved"].as_u64().unwrap_or(0))
        .sum();
    assert!(moved > 0, "no shard moved back to site c");
    // Read through c: the whole ledger, the aws CLI's object, the restic repository.
    g.in_site("c", || async {
        for (key, seed) in &ledger {
            let len = 200_000 + (*seed as usize * 7919) % 1_800_000;
            assert!(
                get(g.server("c1"), key).await == Ok(noise(*seed, len)),
                "{key} through c1"
            );
        }
    });
    ok(g.command_in("c", &restic(g.server("c2"), &["check", "--read-data"])));

    // (K+M)/K on disk: 1.5 for 4+2, within a few percent (block hashes, the last stripe's
    // padding); once the old copies of moved shards are gone (grace 0: the mover's next
    // repair pass).
    let data = g.in_site("a", || async { erasure_coded_bytes(g.server("a1")).await });
    let mut ratio = 0.0;
    until("old copies removed", 60, || {
        ratio = shard_bytes(&g) as f64 / data as f64;
        ratio < 1.5 * 1.04
    });
    assert!(
        ratio >= 1.5,
        "{ratio}: fewer shard bytes than (K+M)/K of {data}"
    );
    eprintln!("bytes on disk per byte of data: {ratio:.4} (4+2: 1.5)");

    // A site cut off by the relay (blackholed: nothing flows, nothing is closed) takes no
    // write; the two others go on; healed, it holds their history and nothing of its own.
    g.cut_site("c");
    g.in_site("c", || async {
        assert_eq!(
            put(g.server("c1"), "partition/from-c", b"cut off").await,
            Err((503, "SlowDown".to_owned()))
        );
    });
    // Retried for a while: if a node of c led, the others elect a leader first.
    for (site, node) in [("a", "a1"), ("b", "b2")] {
        g.in_site(site, || async {
            let start = Instant::now();
            while let Err(e) = put(
                g.server(node),
                &format!("partition/{node}"),
                &noise(9, 300_000),
            )
            .await
            {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "the majority cannot write through {node}: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    g.heal_site("c");
    g.until_settled("site c caught up after the partition");
    let histories: Vec<Vec<String>> = [("a", "a1"), ("c", "c2")]
        .iter()
        .map(|(site, node)| {
            let text = g.command_in(
                site,
                &aws(
                    g.server(node),
                    &[
                        "s3api",
                        "list-object-versions",
                        "--bucket",
                        "backups",
                        "--prefix",
                        "partition/",
                    ],
                ),
            );
            let v = json(&ok(text));
            v["Versions"]
                .as_array()
                .expect("versions")
                .iter()
                .map(|v| format!("{} {}", v["Key"], v["VersionId"]))
                .collect()
        })
        .collect();
    assert_eq!(histories[0], histories[1], "one history");
    assert_eq!(histories[0].len(), 2, "{:?}", histories[0]);
    g.in_site("c", || async {
        assert!(get(g.server("c1"), "partition/a1").await == Ok(noise(9, 300_000)));
    });
}

/// Sets the flag when dropped (also while unwinding from a panic).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A client process killed (by its pid) and reaped when dropped, unless taken.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kills site c's nodes by pid while other threads hold `g` (the handles stay in place
/// until [`GeoCluster::forget_site`]).
fn g_kill(g: &GeoCluster, after_kill: &AtomicBool) {
    after_kill.store(true, Ordering::SeqCst);
    for n in g.nodes.iter().filter(|n| n.site == "c") {
        if let Some(s) = &n.server {
            let pid = s.pid().to_string();
            let status = Command::new("kill").args(["-9", &pid]).status();
            assert!(status.is_ok_and(|s| s.success()), "kill -9 {pid}");
        }
    }
}

/// Objects (key, seed, length) of noise, into a new bucket `backups`, through a1.
fn put_objects(g: &GeoCluster, objects: &[(String, u64, usize)]) {
    g.in_site("a", || async {
        create_bucket(g.server("a1"), "backups").await;
        for (key, seed, len) in objects {
            put(g.server("a1"), key, &noise(*seed, *len))
                .await
                .expect("put");
        }
    });
}

/// 5+4 over three sites puts three shards in each: any one site and one more disk may be
/// lost. Site c killed and one more shard of every object deleted at site a, every object
/// still reads back byte-exact from site b.
#[test]
fn five_plus_four_survives_a_site_and_a_disk() {
    if !Netns::require_or_skip("geo_sites") {
        return;
    }
    let mut g = GeoCluster::start(&["--ec", "5+4"], 4);
    let objects: Vec<(String, u64, usize)> = (0..8u64)
        .map(|i| (format!("o{i}"), i + 1, 300_000 + (i as usize) * 250_000))
        .collect();
    put_objects(&g, &objects);
    // Eight of nine durable is site-safe for 5+4: all nine were written here.
    assert_eq!(site_unsafe(&g, "a1"), 0);
    g.kill_site("c");
    // One more shard of every object lost at site a (a disk's worth for each): with c's
    // three, four of nine gone, as many as 5+4 can lose.
    let mut by_segment: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for n in g.nodes.iter().filter(|n| n.site == "a") {
        for d in g.disks(&n.name) {
            for f in shard_files_in(&d) {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let segment = name.split('.').next().unwrap_or_default().to_owned();
                by_segment.insert(segment, f);
            }
        }
    }
    assert_eq!(by_segment.len(), objects.len(), "one segment per object");
    for f in by_segment.values() {
        std::fs::remove_file(f).expect("remove");
    }
    g.in_site("b", || async {
        for (key, seed, len) in &objects {
            assert!(
                get(g.server("b1"), key).await == Ok(noise(*seed, *len)),
                "{key} with site c and a disk of a1 lost"
            );
        }
    });
}

/// A bucket chooses its own profile: one that cannot survive a site over three sites is
/// refused with the profiles that can; 5+4 is taken and puts three shards in each site.
/// While a site is down, a bucket set to refuse answers 503 SlowDown, the others degrade
/// and go on. Over two sites, erasure coding across them is refused, pointing to
/// replication.
#[test]
fn a_bucket_chooses_a_profile_that_survives_a_site_and_what_a_site_down_does() {
    if !Netns::require_or_skip("geo_sites") {
        return;
    }
    let mut g = GeoCluster::start(&[], 2);
    g.in_site("a", || async {
        for b in ["backups", "strict"] {
            create_bucket(g.server("a1"), b).await;
        }
    });
    let status = json(&g.ctl("a1", &["--json", "cluster", "status"]));
    assert_eq!(status["geo"]["sites"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(status["geo"]["per_site"], 2);
    assert!(status["geo"]["refusal"].is_null(), "{status}");

    let refused = g.ctl_fails("a1", &["bucket", "geo", "backups", "--profile", "9+3"]);
    assert!(
        refused.contains("409") && refused.contains("InvalidProfile"),
        "{refused}"
    );
    assert!(
        refused.contains("4 shards in each site")
            && refused.contains("4+2, 6+3 (a site); 5+4, 7+5 (a site and one more disk)"),
        "{refused}"
    );
    let set = json(&g.ctl(
        "b1",
        &["--json", "bucket", "geo", "backups", "--profile", "5+4"],
    ));
    assert_eq!(set["profile"], "5+4");
    assert_eq!(set["site_down_writes"], "degrade");
    let strict = json(&g.ctl(
        "a1",
        &["--json", "bucket", "geo", "strict", "--site-down", "refuse"],
    ));
    assert_eq!(strict["effective_profile"], "4+2");
    assert_eq!(strict["site_down_writes"], "refuse");

    // 5+4: nine shard files, three in each site.
    let data = noise(5, 1 << 20);
    g.in_site("a", || async {
        put(g.server("a1"), "five-four", &data).await.expect("put");
    });
    for site in ["a", "b", "c"] {
        let files: usize = g
            .nodes
            .iter()
            .filter(|n| n.site == site)
            .flat_map(|n| g.disks(&n.name))
            .map(|d| shard_files_in(&d).len())
            .sum();
        assert_eq!(files, 3, "shard files in site {site}");
    }

    // Site c down: the refusing bucket refuses, the others degrade.
    g.kill_site("c");
    g.until("a1 sees site c down", |all| {
        all[0]["geo"]["sites_down"] == serde_json::json!(["c"])
    });
    g.in_site("a", || async {
        assert_eq!(
            client(g.server("a1"))
                .put_object()
                .bucket("strict")
                .key("k")
                .body(ByteStream::from(noise(6, 300_000)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_status(&e), error_code(&e))),
            Err((503, "SlowDown".to_owned()))
        );
        put(g.server("a2"), "degraded", &noise(7, 700_000))
            .await
            .expect("a degrading bucket writes");
        assert!(get(g.server("a1"), "degraded").await == Ok(noise(7, 700_000)));
        assert!(get(g.server("a1"), "five-four").await == Ok(data.clone()));
    });
    assert!(site_unsafe(&g, "a1") > 0);
    drop(g);

    // Two sites: no profile spans them.
    let two = GeoCluster::start_sites(&["a", "b"], &[], 2);
    let status = json(&two.ctl("a1", &["--json", "cluster", "status"]));
    let refusal = status["geo"]["refusal"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("two sites") && refusal.contains("replicat"),
        "{status}"
    );
    two.in_site("a", || async {
        create_bucket(two.server("a1"), "backups").await;
    });
    let refused = two.ctl_fails("a1", &["bucket", "geo", "backups", "--profile", "4+2"]);
    assert!(
        refused.contains("InvalidProfile") && refused.contains("replication peer add"),
        "{refused}"
    );
}

/// A site lost for good: `stelectl site remove` first shows what it held and changes
/// nothing; with `--yes` its members are removed and every shard it held is rebuilt on
/// the two sites left, so every object has its six shards there and reads back.
#[test]
fn a_site_lost_for_good_is_removed_and_its_shards_rebuilt_on_the_others() {
    if !Netns::require_or_skip("geo_sites") {
        return;
    }
    let mut g = GeoCluster::start(&["--repair-interval", "1"], 2);
    let objects: Vec<(String, u64, usize)> = (0..6u64)
        .map(|i| (format!("o{i}"), i + 20, 300_000 + (i as usize) * 200_000))
        .collect();
    put_objects(&g, &objects);
    let on_sites = |g: &GeoCluster, sites: &[&str]| -> usize {
        g.nodes
            .iter()
            .filter(|n| sites.contains(&n.site))
            .flat_map(|n| g.disks(&n.name))
            .map(|d| shard_files_in(&d).len())
            .sum()
    };
    assert_eq!(on_sites(&g, &["a", "b"]), 6 * 4);
    g.kill_site("c");

    let own = g.ctl_fails("a1", &["site", "remove", "a"]);
    assert!(own.contains("RemovesItself"), "{own}");
    let preview = json(&g.ctl("a1", &["--json", "site", "remove", "c"]));
    assert_eq!(preview["removed"], false);
    assert_eq!(preview["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(preview["segments"], 6);
    assert_eq!(preview["shards"], 12, "two shards of each object in site c");
    assert!(preview["bytes"].as_u64().unwrap_or(0) > 0);
    let warned = preview["warnings"].to_string();
    assert!(warned.contains("2 site(s) left"), "{preview}");
    assert!(
        !warned.contains("cluster init"),
        "a1 ran init and stays: {preview}"
    );
    let members = |g: &GeoCluster| -> usize {
        let s = json(&g.ctl("a1", &["--json", "cluster", "status"]));
        s["members"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["removed"].is_null()).count())
    };
    assert_eq!(members(&g), 6, "the preview removed nothing");

    let removed = json(&g.ctl("a1", &["--json", "site", "remove", "c", "--yes"]));
    assert_eq!(removed["removed"], true);
    assert_eq!(removed["shards"], 12);
    assert_eq!(members(&g), 4);
    // Both left the Raft group too (one membership change after the other).
    g.until("four voters on every node", |all| {
        all.iter()
            .all(|v| v["raft"]["voters"].as_array().map(Vec::len) == Some(4))
    });
    assert!(
        !removed["warnings"]
            .to_string()
            .contains("still in the Raft group"),
        "{removed}"
    );
    until("the removed site's shards rebuilt on a and b", 120, || {
        on_sites(&g, &["a", "b"]) == 6 * 6 && g.repair_status("a1")["queue_length"] == 0
    });
    let status = json(&g.ctl("b2", &["--json", "cluster", "status"]));
    assert_eq!(status["geo"]["sites"], serde_json::json!(["a", "b"]));
    g.in_site("b", || async {
        for (key, seed, len) in &objects {
            assert!(
                get(g.server("b1"), key).await == Ok(noise(*seed, *len)),
                "{key} after site c was removed"
            );
        }
    });
}
