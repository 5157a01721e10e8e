//! The layout with an epoch and the rebalancer (issue 14, item 3): three real processes
//! with three disks each and 4+2 over all nine. A disk's weight is staged (nothing
//! changes), applied naming the epoch (a stale epoch is refused: of two applies one wins),
//! new writes avoid the drained disk while existing shards stay where they are, and only a
//! rebalance pass moves them — copied, verified, recorded, each segment still two shards
//! per node — with the old copies kept until the grace period ends. Every object reads
//! back byte-exact through every node, and scrub (one node per object) finds nothing
//! missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stele_tests::sites::{
    cluster_status, ctl, ctl_fails, get_backup as get, json, put_backup as put, shard_files_in,
    three_node_cluster_with, until_statuses,
};
use stele_tests::{ClockFile, Server, runtime};

const DISKS: [&str; 3] = ["d0", "d1", "d2"];

fn flags(dir: &Path) -> impl Fn(&str) -> Vec<String> + '_ {
    move |name| {
        let mut f: Vec<String> = Vec::new();
        for d in DISKS {
            f.push("--disk".into());
            f.push(
                dir.join(name)
                    .join("disks")
                    .join(d)
                    .to_str()
                    .expect("path")
                    .into(),
            );
        }
        let clock = dir.join(format!("{name}.clock"));
        f.extend(
            [
                "--ec",
                "4+2",
                "--write-quorum",
                "4",
                "--test-clock",
                clock.to_str().expect("path"),
                // Passes only when the test asks for one; old copies kept an hour.
                "--rebalance-interval",
                "86400",
                "--rebalance-grace",
                "3600",
            ]
            .map(String::from),
        );
        f
    }
}

/// The shard files on disk `disk` of node `node`.
fn shard_files(dir: &Path, node: &str, disk: &str) -> Vec<PathBuf> {
    shard_files_in(&dir.join(node).join("disks").join(disk))
}

/// For each segment (a shard file's name before its index), how many of its shard files
/// each node holds.
fn per_node(dir: &Path) -> BTreeMap<String, BTreeMap<&'static str, usize>> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for node in ["a", "b", "c"] {
        for disk in DISKS {
            for f in shard_files(dir, node, disk) {
                let name = f.file_name().expect("name").to_string_lossy().into_owned();
                let segment = name.split('.').next().expect("segment").to_owned();
                *out.entry(segment).or_default().entry(node).or_default() += 1;
            }
        }
    }
    out
}

fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 10) as u8)
        .collect()
}

fn layout(s: &Server) -> serde_json::Value {
    json(&ctl(s, &["--json", "cluster", "layout"]))
}

/// Every object reads back byte-exact through every node.
fn all_read(nodes: &[&Server], objects: &[(String, Vec<u8>)]) {
    runtime().block_on(async {
        for n in nodes {
            for (k, v) in objects {
                assert!(get(n, k).await == *v, "{k} through {}", n.s3_url);
            }
        }
    });
}

#[test]
fn a_drained_disk_takes_no_new_shards_and_only_the_rebalancer_moves_the_old_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for n in ["a", "b", "c"] {
        ClockFile(d.join(format!("{n}.clock"))).set(0, 0);
    }
    let [a, b, c] = three_node_cluster_with(d, flags(d));
    let nodes = [&a, &b, &c];
    until_statuses(
        "every node places shards on all nine disks",
        &nodes,
        |all| {
            all.iter().all(|v| {
                v["disks"]
                    .as_array()
                    .is_some_and(|d| d.len() == 9 && d.iter().all(|d| d["state"] == "online"))
            })
        },
    );
    // Each member's disks entered the layout when it reported them: one epoch each.
    let before = layout(&b);
    let epoch = before["epoch"].as_u64().expect("epoch");
    assert!(epoch >= 3, "{before:#}");
    let disks = before["disks"].as_array().expect("disks");
    assert_eq!(disks.len(), 9, "{before:#}");
    assert!(disks.iter().all(|d| d["weight"] == 1), "{before:#}");
    for n in nodes {
        assert_eq!(layout(n)["epoch"], epoch, "one layout on every node");
    }

    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    runtime().block_on(async {
        a.client()
            .create_bucket()
            .bucket("backups")
            .send()
            .await
            .expect("create bucket");
        for i in 0..9u8 {
            let data = body(i, (3 << 19) + usize::from(i) * 1000);
            let key = format!("old/{i}");
            put(nodes[usize::from(i) % 3], &key, &data).await;
            objects.push((key, data));
        }
    });
    // Drain the disk of c holding the most shards.
    let (drained, held) = DISKS
        .iter()
        .map(|disk| (*disk, shard_files(d, "c", disk).len()))
        .max_by_key(|(_, n)| *n)
        .expect("a disk");
    assert!(held > 0, "c's disks hold no shard");
    let c_id = cluster_status(&c)["node_id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Draining all of c's disks would put three shards of an object on a and on b, more
    // than 4+2's parity: refused; the staged weights are then reverted.
    for disk in DISKS {
        ctl(
            &b,
            &[
                "cluster",
                "layout",
                "weight",
                &format!("{c_id}:{disk}"),
                "0",
            ],
        );
    }
    let crowded = ctl_fails(
        &a,
        &["cluster", "layout", "apply", "--epoch", &epoch.to_string()],
    );
    assert!(crowded.contains("LayoutUnsafe"), "{crowded}");
    let reverted = json(&ctl(&a, &["--json", "cluster", "layout", "revert"]));
    assert!(reverted["staged_base"].is_null(), "{reverted:#}");
    assert_eq!(reverted["epoch"], epoch, "{reverted:#}");

    // Staged through a follower: nothing changes yet.
    let staged = json(&ctl(
        &b,
        &[
            "--json",
            "cluster",
            "layout",
            "weight",
            &format!("{c_id}:{drained}"),
            "0",
        ],
    ));
    assert_eq!(staged["epoch"], epoch, "{staged:#}");
    assert_eq!(staged["staged_base"], epoch, "{staged:#}");
    let drained_uuid = staged["disks"]
        .as_array()
        .expect("disks")
        .iter()
        .find(|x| x["node"] == c_id.as_str() && x["id"] == drained)
        .map(|x| {
            assert_eq!((&x["weight"], &x["staged_weight"]), (&1.into(), &0.into()));
            x["uuid"].as_str().expect("uuid").to_owned()
        })
        .expect("the staged disk");
    // An apply naming another epoch is refused; the one naming the current one wins,
    // and a second apply naming that epoch is refused.
    let stale = ctl_fails(
        &c,
        &[
            "cluster",
            "layout",
            "apply",
            "--epoch",
            &(epoch - 1).to_string(),
        ],
    );
    assert!(stale.contains("LayoutEpochMismatch"), "{stale}");
    let applied = json(&ctl(
        &c,
        &[
            "--json",
            "cluster",
            "layout",
            "apply",
            "--epoch",
            &epoch.to_string(),
        ],
    ));
    assert_eq!(applied["epoch"], epoch + 1, "{applied:#}");
    assert!(applied["staged_base"].is_null(), "{applied:#}");
    let again = ctl_fails(
        &a,
        &["cluster", "layout", "apply", "--epoch", &epoch.to_string()],
    );
    assert!(again.contains("LayoutEpochMismatch"), "{again}");
    let start = std::time::Instant::now();
    while !nodes
        .iter()
        .all(|n| layout(n)["placing_epoch"] == epoch + 1)
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the nodes never placed by the new epoch"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let weight_of = |l: &serde_json::Value| {
        l["disks"]
            .as_array()
            .expect("disks")
            .iter()
            .find(|x| x["uuid"] == drained_uuid.as_str())
            .map(|x| x["weight"].clone())
    };
    for n in nodes {
        assert_eq!(weight_of(&layout(n)), Some(0.into()));
    }

    // New writes avoid the drained disk; the shards it holds stay until a rebalance.
    runtime().block_on(async {
        for i in 0..6u8 {
            let data = body(100 + i, (5 << 18) + usize::from(i) * 777);
            let key = format!("new/{i}");
            put(nodes[usize::from(i) % 3], &key, &data).await;
            objects.push((key, data));
        }
    });
    assert_eq!(
        shard_files(d, "c", drained).len(),
        held,
        "a new layout moved no shard and put none on the drained disk"
    );

    // The rebalancer runs on the lease holder only.
    let holder = *nodes
        .iter()
        .find(|n| cluster_status(n)["raft"]["lease"] == true)
        .expect("a lease holder");
    let other = *nodes
        .iter()
        .find(|n| n.s3_url != holder.s3_url)
        .expect("another node");
    let refused = ctl_fails(other, &["cluster", "rebalance"]);
    assert!(refused.contains("NotLeaseHolder"), "{refused}");
    let pass = json(&ctl(holder, &["--json", "cluster", "rebalance"]));
    assert_eq!(pass["epoch"], epoch + 1, "{pass:#}");
    assert_eq!(pass["moved"], held as u64, "{pass:#}");
    assert_eq!(
        (&pass["waiting"], &pass["raced"]),
        (&0.into(), &0.into()),
        "{pass:#}"
    );
    // Old copies wait for their grace period; reads go to the new ones.
    assert_eq!(shard_files(d, "c", drained).len(), held);
    let status = json(&ctl(
        holder,
        &["--json", "cluster", "rebalance", "--status"],
    ));
    assert_eq!(status["old_copies_waiting"], held as u64, "{status:#}");
    all_read(&nodes, &objects);

    // An hour later the node that moved them removes them (at its next repair drain);
    // a pass then moves nothing.
    for n in ["a", "b", "c"] {
        ClockFile(d.join(format!("{n}.clock"))).pass(3601);
    }
    let start = std::time::Instant::now();
    while !shard_files(d, "c", drained).is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the old copies were never removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pass = json(&ctl(holder, &["--json", "cluster", "rebalance"]));
    assert_eq!(
        (&pass["moved"], &pass["waiting"]),
        (&0.into(), &0.into()),
        "{pass:#}"
    );
    let status = json(&ctl(
        holder,
        &["--json", "cluster", "rebalance", "--status"],
    ));
    assert_eq!(status["old_copies_waiting"], 0, "{status:#}");
    // Every segment has its six shards, two on each node (failure domains kept).
    let spread = per_node(d);
    assert_eq!(spread.len(), objects.len(), "{spread:?}");
    for (segment, counts) in &spread {
        assert!(
            ["a", "b", "c"].iter().all(|n| counts.get(n) == Some(&2)),
            "segment {segment}: {counts:?}"
        );
    }
    all_read(&nodes, &objects);
    // Scrub is coordinated: each object is checked by one node (that of its first shard).
    let mut checked = 0;
    for n in nodes {
        let scrub = json(&ctl(n, &["--json", "scrub", "run", "--wait"]));
        assert_eq!(
            (&scrub["missing"], &scrub["corrupt"]),
            (&0.into(), &0.into()),
            "{scrub:#}"
        );
        checked += scrub["versions"].as_u64().expect("versions");
    }
    assert_eq!(checked, objects.len() as u64, "each object scrubbed once");
}
