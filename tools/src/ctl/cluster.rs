//! `cluster`: make this node the first member of a cluster, issue join tokens, list and
//! remove members.

use stele_api::cluster::{Cluster, JoinToken, Member, NewJoinToken};

use super::*;

fn members(c: &Cluster) {
    rows(&[
        (
            "cluster",
            c.cluster_id.clone().unwrap_or_else(|| "(none)".into()),
        ),
        (
            "CA sha256",
            c.ca_fingerprint.clone().unwrap_or_else(|| "-".into()),
        ),
        ("this node", c.node_id.clone().unwrap_or_else(|| "-".into())),
        (
            "node-to-node listener",
            c.rpc_addr
                .clone()
                .unwrap_or_else(|| "(none: --cluster-addr)".into()),
        ),
    ]);
    if let Some(r) = &c.raft {
        let index = |i: Option<u64>| i.map_or_else(|| "-".to_owned(), |i| i.to_string());
        rows(&[
            ("raft state", r.state.clone()),
            (
                "leader",
                match (&r.leader, &r.leader_addr) {
                    (Some(l), Some(a)) => format!("{l} (node listener {a})"),
                    (Some(l), None) => l.clone(),
                    _ => "(none known)".into(),
                },
            ),
            ("term", r.term.to_string()),
            (
                "log / applied",
                format!("{} / {}", index(r.last_log_index), index(r.last_applied)),
            ),
            ("voters", r.voters.join(", ")),
            (
                "lease",
                if r.lease {
                    "held here (once-per-cluster work runs here)".to_owned()
                } else {
                    "not here".to_owned()
                },
            ),
        ]);
        if !r.replication.is_empty() {
            let lags: Vec<String> = r
                .replication
                .iter()
                .map(|m| match m.lag {
                    Some(l) => format!("{} {l} behind", m.node),
                    None => format!("{} (no entry confirmed yet: unreachable or new)", m.node),
                })
                .collect();
            rows(&[("log lag", lags.join(", "))]);
        }
        if !r.learners.is_empty() {
            rows(&[("learners", r.learners.join(", "))]);
        }
    }
    if c.cluster_id.is_some() && !c.membership_kept_here {
        out!("the membership has not reached this node yet (the Raft group's snapshot)");
    }
    if c.members.is_empty() {
        return;
    }
    table(
        &["NODE", "STATE", "JOINED", "CERTIFICATE SHA256"],
        c.members
            .iter()
            .map(|m: &Member| {
                vec![
                    m.node_id.clone(),
                    match (m.removed, m.unreachable_secs) {
                        (Some(t), _) => format!("removed {}", time(t)),
                        (None, Some(s)) => format!("member, unreachable for {s} s"),
                        (None, None) => "member".to_owned(),
                    },
                    time(m.joined),
                    m.cert_fingerprint.clone(),
                ]
            })
            .collect(),
    );
    if c.disks.is_empty() {
        return;
    }
    table(
        &["DISK", "NODE", "SITE", "STATE", "FREE", "UUID"],
        c.disks
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    d.node.clone(),
                    d.site.clone(),
                    d.state.clone(),
                    d.free_bytes.map_or_else(|| "-".into(), |b| b.to_string()),
                    d.uuid.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect(),
    );
}

impl Ctx {
    pub(super) fn cluster(&self, cmd: ClusterCommand) -> anyhow::Result<()> {
        match cmd {
            ClusterCommand::Init => {
                let r = self.client.post("/v1/cluster/init")?;
                self.show(&r, |c: &Cluster| {
                    members(c);
                    Ok(())
                })
            }
            ClusterCommand::Status => {
                let r = self.client.get("/v1/cluster")?;
                self.show(&r, |c: &Cluster| {
                    members(c);
                    Ok(())
                })
            }
            ClusterCommand::JoinToken { ttl } => {
                let r = self.client.post_json(
                    "/v1/cluster/join-tokens",
                    &NewJoinToken {
                        ttl_secs: Some(ttl),
                    },
                )?;
                self.show(&r, |t: &JoinToken| {
                    out!(
                        "token {} (shown once; valid until {})",
                        t.token,
                        time(t.expires)
                    );
                    out!(
                        "join with (the token in the environment, not on the command line): \
                         STELE_JOIN_TOKEN={} stele-server --join {} --ca-fingerprint {} \
                         --cluster-addr ADDR (with the new node's own --data, --key-dir and \
                         disks, and the --ec and --write-quorum of the others)",
                        t.token,
                        t.rpc_addr.as_deref().unwrap_or("HOST:PORT"),
                        t.ca_fingerprint
                    );
                    Ok(())
                })
            }
            ClusterCommand::Remove { node } => {
                let r = self
                    .client
                    .delete(&format!("/v1/cluster/members/{}", segment(&node)))?;
                self.outcome(
                    &r,
                    &format!("node {node} removed: its certificate is refused from now on"),
                )
            }
        }
    }
}
