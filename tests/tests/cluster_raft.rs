//! The cluster's Raft group through the real binaries over their node listeners (issue
//! 14, item 2): `cluster init` makes a one-voter group of the first node's metadata; nodes
//! that join with a token become voters; every node reports the same leader and term and
//! the same members (membership changes go through the group); when the leader is killed
//! (SIGKILL) the two others elect one of them and take membership changes; the old
//! leader, started again on its folders, follows the new one.

use stele_tests::sites::{
    cluster_node, cluster_node_at, cluster_status as status, ctl, join_node as join, json, raft,
    raft_agree as agree, until_statuses as until,
};

#[test]
fn three_nodes_agree_through_raft_and_elect_a_new_leader_when_it_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = cluster_node(dir.path(), "a", &[]);
    let init = json(&ctl(&a, &["--json", "cluster", "init"]));
    let fingerprint = init["ca_fingerprint"].as_str().expect("fp").to_owned();
    let a_id = init["node_id"].as_str().expect("id").to_owned();
    let first = status(&a);
    assert_eq!(raft(&first, "state"), "leader", "{first:#}");
    assert_eq!(raft(&first, "voters"), &serde_json::json!([a_id]));

    let b = join(dir.path(), "b", &a, &fingerprint);
    let c = join(dir.path(), "c", &a, &fingerprint);
    let all = until("three voters agree on a's lead", &[&a, &b, &c], |all| {
        agree(all, 3)
            && raft(&all[0], "leader") == a_id.as_str()
            // The membership itself went through the group: every node lists the three.
            && all.iter().all(|v| v["members"].as_array().map(Vec::len) == Some(3))
    });
    assert!(all.iter().all(|v| v["membership_kept_here"] == true));
    // Every node names the leader's node listener (where to turn after a 503).
    let a_rpc = a.cluster_addr.clone().expect("rpc");
    assert!(
        all.iter().all(|v| raft(v, "leader_addr") == a_rpc.as_str()),
        "{all:#?}"
    );
    let term = raft(&all[0], "term").as_u64().expect("term");
    let b_id = all[1]["node_id"].as_str().expect("id").to_owned();
    let c_id = all[2]["node_id"].as_str().expect("id").to_owned();

    // A follower forwards a change to the leader: a token issued through b.
    let token = json(&ctl(&b, &["--json", "cluster", "join-token"]));
    assert_eq!(token["token"].as_str().map(str::len), Some(64));

    // The leader is killed (SIGKILL): the two others elect one of them, in a later term.
    a.kill();
    let all = until("b and c elect one of them", &[&b, &c], |all| {
        let leader = raft(&all[0], "leader");
        agree(all, 3)
            && (leader == b_id.as_str() || leader == c_id.as_str())
            && raft(&all[0], "term").as_u64().is_some_and(|t| t > term)
    });
    let new_leader = raft(&all[0], "leader").as_str().expect("leader").to_owned();
    let leader = if new_leader == b_id { &b } else { &c };
    // It takes membership changes: a token is issued through the group.
    let token = json(&ctl(leader, &["--json", "cluster", "join-token"]));
    assert_eq!(token["token"].as_str().map(str::len), Some(64));
    let applied = raft(&status(leader), "last_applied")
        .as_u64()
        .expect("applied");

    // The old leader comes back on its folders, where the others know it, follows the
    // new leader and applies what it missed (the token's entry among it).
    let a = cluster_node_at(dir.path(), "a", &a_rpc, &[]);
    until(
        "a follows the new leader and catches up",
        &[&a, &b, &c],
        |all| {
            agree(all, 3)
                && raft(&all[0], "leader") == new_leader.as_str()
                && raft(&all[0], "state") == "follower"
                && raft(&all[0], "last_applied").as_u64() >= Some(applied)
        },
    );

    // A token issued through the new leader names `a`, the node that signs (it ran
    // init); a node joining there is admitted by `a`, a follower now, which has the
    // leader add it to the group: four voters.
    let through_leader = json(&ctl(leader, &["--json", "cluster", "join-token"]));
    assert_eq!(through_leader["rpc_addr"], a_rpc.as_str());
    let fingerprint = status(&a)["ca_fingerprint"]
        .as_str()
        .expect("fp")
        .to_owned();
    let d = join(dir.path(), "d", &a, &fingerprint);
    until("d is the fourth voter", &[&a, &b, &c, &d], |all| {
        agree(all, 4)
    });
}
