//! Work that must run once per cluster (issue 14, item 6): the lifecycle, restore drills
//! and replication senders run on the node that holds the cluster's lease (the Raft
//! leader, heard by a majority within an election timeout); every other member stands by,
//! says so in its workers' status, and refuses to run them when asked. The lease moves
//! with the leadership. Three real processes, their clocks moved through test-clock files.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, VersioningConfiguration,
};
use stele_tests::sites::{
    cluster_status, json, raft, raft_agree, three_node_cluster_with, until_statuses,
};
use stele_tests::{ClockFile, DAY_SECS, Server, runtime};

/// Whether `s`'s once-per-cluster workers stand by (`Some(true)`), all run here
/// (`Some(false)`), or disagree (`None`).
fn standing_by(s: &Server) -> Option<bool> {
    let (status, body) = s.admin("GET", "/v1/workers", None);
    assert_eq!(status, 200, "{body}");
    let runners = json(&body)["runners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let flags: Vec<bool> = runners
        .iter()
        .filter(|w| w["scope"] == "cluster")
        .map(|w| w["standby"].as_bool().expect("standby"))
        .collect();
    assert!(
        ["lifecycle", "drill"].iter().all(|n| runners
            .iter()
            .any(|w| w["name"] == *n && w["scope"] == "cluster")),
        "lifecycle and drill run once per cluster: {body}"
    );
    if flags.iter().all(|&f| f) {
        Some(true)
    } else if flags.iter().all(|&f| !f) {
        Some(false)
    } else {
        None
    }
}

/// Waits until exactly `leader` runs the once-per-cluster work and every other node of
/// `nodes` stands by (at most 60 s: the lease needs the leader's first majority answer).
fn until_lease_on(leader: &Server, nodes: &[&Server]) {
    let start = std::time::Instant::now();
    loop {
        let states: Vec<Option<bool>> = nodes.iter().map(|n| standing_by(n)).collect();
        let want: Vec<Option<bool>> = nodes
            .iter()
            .map(|n| Some(n.s3_url != leader.s3_url))
            .collect();
        if states == want {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the lease did not settle on the leader: standby per node {states:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The node of `nodes` that every live status names as leader.
fn leader_of<'a>(nodes: &[&'a Server]) -> &'a Server {
    let all = until_statuses("one leader", nodes, |all| raft_agree(all, 3));
    let id = raft(&all[0], "leader").as_str().expect("leader").to_owned();
    nodes
        .iter()
        .find(|n| cluster_status(n)["node_id"].as_str() == Some(id.as_str()))
        .copied()
        .expect("a member leads")
}

/// The samples of metric `name` in `s`'s `/metrics`: (labels, value).
fn samples(s: &Server, name: &str) -> Vec<(String, String)> {
    let (status, text) = s.admin("GET", "/metrics", None);
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = match series.split_once('{') {
                Some((n, labels)) if n == name => labels.trim_end_matches('}').to_owned(),
                None if series == name => String::new(),
                _ => return None,
            };
            Some((labels, value.to_owned()))
        })
        .collect()
}

/// The value of the unlabelled metric `name` in `s`'s `/metrics`.
fn value(s: &Server, name: &str) -> String {
    let found = samples(s, name);
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found[0].1.clone()
}

/// A lifecycle pass on `s`, waited for: its report. Retried while the pass was not
/// started (the lease lapsed for a moment on a loaded machine: `null`).
fn lifecycle_pass(s: &Server) -> serde_json::Value {
    for _ in 0..20 {
        let (status, body) = s.admin("POST", "/v1/lifecycle/run?wait=true", None);
        assert!(status == 200 || status == 409, "{status} {body}");
        if status == 200 && body.trim() != "null" {
            return json(&body);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("the leader never ran a lifecycle pass");
}

#[test]
fn once_per_cluster_work_runs_on_the_leader_alone_and_moves_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let clock = |name: &str| ClockFile(d.join(format!("{name}.clock")));
    for n in ["a", "b", "c"] {
        clock(n).set(0, 0);
    }
    let [a, b, c] = three_node_cluster_with(d, |name| {
        vec![
            "--test-clock".to_owned(),
            clock(name).0.to_str().expect("path").to_owned(),
            // No scheduled lifecycle pass during the test: only the ones it asks for.
            "--lifecycle-interval".to_owned(),
            "86400".to_owned(),
            // A restore drill due every second, on every node: only the leader's run.
            "--drill-interval".to_owned(),
            "1".to_owned(),
        ]
    });
    let nodes = [&a, &b, &c];
    let leader = leader_of(&nodes);
    until_lease_on(leader, &nodes);
    let leader_id = cluster_status(leader)["node_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let followers: Vec<&Server> = nodes
        .iter()
        .filter(|n| n.s3_url != leader.s3_url)
        .copied()
        .collect();

    // Each node's `/metrics` shows its part (item 7): the leader leads, holds the lease
    // and sees every member's log lag; the others do not; all are in one term with three
    // voters, and see all eighteen disks online.
    let term = value(leader, "stele_cluster_raft_term");
    for n in nodes {
        let leads = n.s3_url == leader.s3_url;
        assert_eq!(value(n, "stele_cluster_raft_term"), term);
        assert_eq!(value(n, "stele_cluster_raft_voters"), "3");
        assert_eq!(
            value(n, "stele_cluster_raft_leader"),
            if leads { "1" } else { "0" }
        );
        assert_eq!(
            value(n, "stele_cluster_lease_held"),
            if leads { "1" } else { "0" }
        );
        let lags = samples(n, "stele_cluster_raft_member_lag_entries");
        if leads {
            assert!(
                lags.len() >= 2,
                "the leader sees the others' logs: {lags:?}"
            );
        } else {
            assert!(lags.is_empty(), "{lags:?}");
        }
        // The others' disks are known with the next refresh (every two seconds).
        let start = std::time::Instant::now();
        loop {
            let disks = samples(n, "stele_cluster_disk_online");
            if disks.len() == 18 && disks.iter().all(|(_, v)| v == "1") {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "not every disk is seen online: {disks:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    // A follower refuses to run them, and starts nothing.
    for f in &followers {
        for path in [
            "/v1/lifecycle/run?wait=true",
            "/v1/workers/lifecycle/run",
            "/v1/drill/run",
        ] {
            let (status, body) = f.admin("POST", path, None);
            assert_eq!(status, 409, "{path} on a follower: {body}");
            assert!(body.contains("NotLeaseHolder"), "{body}");
            assert!(
                body.contains(&leader_id),
                "the answer names the leader: {body}"
            );
        }
    }
    // Drills fall due every second everywhere; the leader runs them, the others none.
    let passes = |s: &Server, worker: &str| {
        let (_, body) = s.admin("GET", "/v1/workers", None);
        json(&body)["runners"]
            .as_array()
            .and_then(|r| r.iter().find(|w| w["name"] == worker).cloned())
            .and_then(|w| w["passes"].as_u64())
            .expect("passes")
    };
    let start = std::time::Instant::now();
    while passes(leader, "drill") < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the leader runs no drill"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    for f in &followers {
        assert_eq!(passes(f, "drill"), 0, "a follower ran a drill");
        assert_eq!(passes(f, "lifecycle"), 0, "a follower ran a lifecycle pass");
    }

    // An object the rules expire, written through a follower; three days pass everywhere.
    runtime().block_on(async {
        let s3 = followers[0].client();
        s3.create_bucket()
            .bucket("aging")
            .send()
            .await
            .expect("bucket");
        s3.put_bucket_versioning()
            .bucket("aging")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
        s3.put_bucket_lifecycle_configuration()
            .bucket("aging")
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(
                        LifecycleRule::builder()
                            .id("tmp")
                            .status(ExpirationStatus::Enabled)
                            .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                            .expiration(LifecycleExpiration::builder().days(1).build())
                            .build()
                            .expect("rule"),
                    )
                    .build()
                    .expect("config"),
            )
            .send()
            .await
            .expect("lifecycle");
        s3.put_object()
            .bucket("aging")
            .key("tmp/x")
            .body(ByteStream::from_static(b"short-lived"))
            .send()
            .await
            .expect("put");
    });
    for n in ["a", "b", "c"] {
        clock(n).pass(3 * DAY_SECS);
    }
    let report = lifecycle_pass(leader);
    assert_eq!(report["delete_markers_added"], 1, "{report}");
    // One expiry, one delete marker, on every node.
    for n in nodes {
        let (versions, markers) = runtime().block_on(async {
            let out = n
                .client()
                .list_object_versions()
                .bucket("aging")
                .send()
                .await
                .expect("versions");
            (out.versions().len(), out.delete_markers().len())
        });
        assert_eq!((versions, markers), (1, 1), "through {}", n.s3_url);
    }

    // The leader goes; the lease follows the new one.
    let old = leader.s3_url.clone();
    let mut survivors: Vec<Server> = Vec::new();
    for n in [a, b, c] {
        if n.s3_url == old {
            n.kill();
        } else {
            survivors.push(n);
        }
    }
    let live: Vec<&Server> = survivors.iter().collect();
    let all = until_statuses("a new leader", &live, |all| {
        let l = raft(&all[0], "leader");
        !l.is_null()
            && all.iter().all(|v| raft(v, "leader") == l)
            && all.iter().any(|v| v["node_id"] == *l)
    });
    let id = raft(&all[0], "leader").clone();
    let new_leader = live
        .iter()
        .find(|n| cluster_status(n)["node_id"] == id)
        .copied()
        .expect("a survivor leads");
    until_lease_on(new_leader, &live);
    // Its metrics say so, and show the dead node's six disks offline.
    assert_eq!(value(new_leader, "stele_cluster_lease_held"), "1");
    let start = std::time::Instant::now();
    loop {
        let disks = samples(new_leader, "stele_cluster_disk_online");
        let offline = disks.iter().filter(|(_, v)| v == "0").count();
        if offline == 6 && disks.len() == 18 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the dead node's disks are not shown offline: {disks:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let report = lifecycle_pass(new_leader);
    assert_eq!(report["delete_markers_added"], 0, "expired once: {report}");
    assert_eq!(report["versions_examined"], 2, "{report}");
}
