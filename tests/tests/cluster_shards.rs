//! Shards on other nodes (issue 14, items 4 and 5): three real processes with two disks
//! each and erasure coding 4+2 over all six, so every object larger than the inline
//! bound has one shard on each disk of the cluster, streamed over the node listeners.
//! Any node reads it back, checking every block against the root in the metadata; with
//! one node killed (SIGKILL) the others read by reconstruction and go on writing at the
//! write quorum; the node returns and reads everything.

use std::path::{Path, PathBuf};

use stele_tests::sites::{
    cluster_node_at, cluster_status, ctl, get_backup as get, json, put_backup as put,
    shard_files_in, three_node_cluster_with, until_statuses,
};
use stele_tests::{Server, noise, runtime};

/// Two disks per node under `dir/<name>/disks`, 4+2, a write quorum of 4: one node's
/// two shards may be missing.
fn flags(dir: &Path) -> impl Fn(&str) -> Vec<String> + '_ {
    move |name| {
        let disk = |d: &str| {
            dir.join(name)
                .join("disks")
                .join(d)
                .to_str()
                .expect("path")
                .to_owned()
        };
        [
            "--disk",
            &disk("d0"),
            "--disk",
            &disk("d1"),
            "--ec",
            "4+2",
            "--write-quorum",
            "4",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }
}

/// The shard files on each of node `name`'s disks.
fn shard_files(dir: &Path, name: &str) -> Vec<Vec<PathBuf>> {
    ["d0", "d1"]
        .iter()
        .map(|d| shard_files_in(&dir.join(name).join("disks").join(d)))
        .collect()
}

fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

/// Creates the bucket `backups` through `s`.
async fn create_backups(s: &Server) {
    s.client()
        .create_bucket()
        .bucket("backups")
        .send()
        .await
        .expect("create bucket");
}

/// Three nodes under `dir` with `extra` flags each, once every node places shards on all
/// six disks; and the third node's id.
fn placing_on_all(dir: &Path, extra: impl Fn(&str) -> Vec<String>) -> ([Server; 3], String) {
    let [a, b, c] = three_node_cluster_with(dir, extra);
    until_statuses(
        "every node places shards on all six disks",
        &[&a, &b, &c],
        |all| disks_are(all, "online", None),
    );
    let c_id = cluster_status(&c)["node_id"]
        .as_str()
        .expect("node id")
        .to_owned();
    ([a, b, c], c_id)
}

/// Every status lists the six disks, each in `state` unless its node is `except`.
fn disks_are(all: &[serde_json::Value], state: &str, except: Option<&str>) -> bool {
    all.iter().all(|v| {
        v["disks"].as_array().is_some_and(|d| {
            d.len() == 6
                && d.iter().all(|d| {
                    Some(d["node"].as_str().unwrap_or_default()) == except || d["state"] == state
                })
        })
    })
}

#[test]
fn objects_spread_over_every_node_and_survive_one_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ([a, b, c], c_id) = placing_on_all(d, flags(d));
    let c_rpc = c.cluster_addr.clone().expect("rpc");
    // A node names its own disks' node as placement and the cluster status do: its id.
    let (s, disks) = c.admin("GET", "/v1/disks", None);
    assert_eq!(s, 200, "{disks}");
    let disks = json(&disks);
    let own: Vec<&str> = disks
        .as_array()
        .or_else(|| disks["disks"].as_array())
        .expect("disks")
        .iter()
        .map(|d| d["node"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(own, [c_id.as_str(), c_id.as_str()], "{disks}");
    let first = body(1, 3 << 20);
    let second = body(2, (5 << 20) + 12345);
    runtime().block_on(async {
        create_backups(&a).await;
        put(&a, "first", &first).await;
        // One shard on each of the six disks: four of them on other nodes than the
        // writer's, streamed there.
        for n in ["a", "b", "c"] {
            for (i, files) in shard_files(d, n).iter().enumerate() {
                assert_eq!(files.len(), 1, "node {n} disk d{i}: {files:?}");
            }
        }
        for n in [&a, &b, &c] {
            assert!(get(n, "first").await == first, "through {}", n.s3_url);
        }
    });

    // One node gone: the others see its disks offline, read by reconstruction, and write
    // at the quorum.
    c.kill();
    until_statuses("the killed node's disks are offline", &[&a, &b], |all| {
        disks_are(all, "online", Some(&c_id))
            && all.iter().all(|v| {
                v["disks"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["state"] == "offline"))
            })
    });
    runtime().block_on(async {
        for n in [&a, &b] {
            assert!(get(n, "first").await == first, "through {}", n.s3_url);
        }
        put(&b, "second", &second).await;
        for n in [&a, &b] {
            assert!(get(n, "second").await == second, "through {}", n.s3_url);
        }
    });
    let on_c: usize = shard_files(d, "c").iter().map(Vec::len).sum();
    assert_eq!(
        on_c, 2,
        "no shard of the second object reached the dead node"
    );
    // Scrub coordination: the objects whose first shard is on the dead node are checked
    // by a survivor instead; each object by exactly one node.
    let checked: u64 = [&a, &b]
        .iter()
        .map(|n| {
            let r = json(&ctl(n, &["--json", "scrub", "run", "--wait"]));
            r["versions"].as_u64().expect("versions")
        })
        .sum();
    assert_eq!(checked, 2, "each object scrubbed by one survivor");

    // It returns where the others know it, catches up through Raft, and reads both.
    let flags_c = flags(d)("c");
    let refs: Vec<&str> = flags_c.iter().map(String::as_str).collect();
    let c = cluster_node_at(d, "c", &c_rpc, &refs);
    until_statuses("the node is back", &[&a, &b, &c], |all| {
        disks_are(all, "online", None)
            && all
                .iter()
                .all(|v| v["raft"]["last_applied"] == all[0]["raft"]["last_applied"])
    });
    runtime().block_on(async {
        assert!(get(&c, "first").await == first);
        assert!(get(&c, "second").await == second);
    });
    let status = json(&stele_tests::sites::ctl(
        &a,
        &["--json", "cluster", "status"],
    ));
    assert_eq!(status["disks"].as_array().map(Vec::len), Some(6));
}

/// Issue 14, item 5: past the grace (`--node-grace`, 3 s here), repair rebuilds a down
/// member's shards on the others' disks by failure domain: of the two shards an object
/// written with c down could not place on c, one goes to a and one to b (before, the
/// repairing node took both, and losing it then lost four shards of six), and both
/// survivors read it from their disks alone.
#[test]
fn past_the_grace_a_down_nodes_shards_are_rebuilt_one_per_surviving_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let node_flags = |name: &str| {
        let mut f = flags(d)(name);
        f.extend(["--repair-interval", "1", "--node-grace", "3"].map(str::to_owned));
        f
    };
    let ([a, b, c], c_id) = placing_on_all(d, node_flags);
    runtime().block_on(async {
        create_backups(&a).await;
    });
    c.kill();
    until_statuses("the killed node's disks are offline", &[&a, &b], |all| {
        disks_are(all, "online", Some(&c_id))
            && all.iter().all(|v| {
                v["disks"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["state"] == "offline"))
            })
    });
    // The others show it unreachable, in the status and in /metrics; the others not.
    let members = cluster_status(&a)["members"].clone();
    for m in members.as_array().expect("members") {
        let down = &m["unreachable_secs"];
        assert_eq!(m["node_id"] == c_id.as_str(), down.is_u64(), "{members}");
    }
    let (_, metrics) = a.admin("GET", "/metrics", None);
    let reachable: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("stele_cluster_member_reachable{"))
        .collect();
    assert_eq!(reachable.len(), 2, "{reachable:?}");
    for l in &reachable {
        let want = if l.contains(&c_id) { " 0" } else { " 1" };
        assert!(l.ends_with(want), "{reachable:?}");
    }
    let data = body(7, 1 << 20);
    runtime().block_on(put(&a, "late", &data));
    let count = |n: &str| -> usize { shard_files(d, n).iter().map(Vec::len).sum() };
    let start = std::time::Instant::now();
    loop {
        let (held, queued) = ((count("a"), count("b")), {
            let (s, r) = a.admin("GET", "/v1/repair", None);
            assert_eq!(s, 200, "{r}");
            json(&r)["queue_length"].as_u64()
        });
        if queued == Some(0) && held.0 + held.1 == 6 {
            assert_eq!(
                held,
                (3, 3),
                "the two rebuilt shards go one to each survivor"
            );
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "repair did not rebuild the dead node's shards: shard files on a and b {held:?}, \
             queue {queued:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    runtime().block_on(async {
        for n in [&a, &b] {
            assert!(get(n, "late").await == data, "through {}", n.s3_url);
        }
    });
}

fn restic(repo: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = stele_tests::restic(repo, "stele-cluster");
    cmd.args(args);
    cmd
}

fn ok(mut cmd: std::process::Command) -> String {
    let o = cmd
        .output()
        .expect("restic (installed by scripts/setup-deps --clients)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    text
}

/// Issue 14's first acceptance test: kill -9 one node of three during a restic backup;
/// the backup completes; everything restic acknowledged (its index names every pack
/// and its hash: `check --read-data` reads and verifies each) reads back through each
/// surviving node; the node returns, and repair writes the shards it missed onto its
/// disks (until every disk holds one shard of every segment again).
#[test]
fn a_restic_backup_survives_a_node_killed_and_the_node_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let node_flags = |name: &str| {
        let mut f = flags(d)(name);
        f.extend(["--repair-interval".to_owned(), "1".to_owned()]);
        f
    };
    let ([a, b, c], _) = placing_on_all(d, node_flags);
    let c_rpc = c.cluster_addr.clone().expect("rpc");
    runtime().block_on(async {
        create_backups(&a).await;
    });
    let tree = d.join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    for i in 0..12u64 {
        std::fs::write(tree.join(format!("f{i}.bin")), noise(i + 1, 4 << 20)).expect("file");
    }
    let repo = |s: &Server| format!("s3:{}/backups", s.s3_url);
    ok(restic(&repo(&a), &["init"]));
    // Paced (4 MiB/s for 48 MiB) so that the kill lands in the middle of the backup.
    let mut backup = restic(
        &repo(&a),
        &[
            "--limit-upload",
            "4096",
            "backup",
            tree.to_str().expect("path"),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("restic");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        backup.try_wait().expect("wait").is_none(),
        "the backup ended before the node was killed: the test would show nothing"
    );
    c.kill();
    let out = backup.wait_with_output().expect("restic");
    assert!(
        out.status.success(),
        "the backup failed with a node killed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for n in [&a, &b] {
        ok(restic(&repo(n), &["check", "--read-data"]));
    }

    // The node returns; the repairs that waited for it (the writer's, queued by the
    // writes, and the reading nodes', queued by `check --read-data`) write the shards it
    // missed onto its disks: whichever drains first rebuilds, the others find them whole.
    let flags_c = node_flags("c");
    let refs: Vec<&str> = flags_c.iter().map(String::as_str).collect();
    let c = cluster_node_at(d, "c", &c_rpc, &refs);
    let start = std::time::Instant::now();
    loop {
        let counts: Vec<usize> = ["a", "b", "c"]
            .iter()
            .flat_map(|n| shard_files(d, n).into_iter().map(|f| f.len()))
            .collect();
        let repairs: Vec<serde_json::Value> = [&a, &b, &c]
            .iter()
            .map(|n| {
                let (s, repair) = n.admin("GET", "/v1/repair", None);
                assert_eq!(s, 200, "{repair}");
                json(&repair)
            })
            .collect();
        let repair = serde_json::Value::Array(repairs.clone());
        let queued: u64 = repairs
            .iter()
            .map(|r| r["queue_length"].as_u64().unwrap_or(1))
            .sum();
        if counts.iter().all(|&n| n == counts[0]) && queued == 0 {
            let rebuilt: u64 = repairs
                .iter()
                .map(|r| r["shards_rebuilt"].as_u64().unwrap_or(0))
                .sum();
            assert!(rebuilt > 0, "no node rebuilt a shard: {repair}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "repair did not catch the node up: shard files per disk {counts:?}, repair {repair}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    ok(restic(&repo(&c), &["check", "--read-data"]));
}
