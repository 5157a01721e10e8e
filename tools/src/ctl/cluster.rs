//! `cluster`: make this node the first member of a cluster, issue join tokens, list and
//! remove members.

use stele_api::cluster::{
    ApplyLayout, Cluster, JoinToken, Layout, Member, NewJoinToken, StageWeight,
};
use stele_api::workers::{RebalanceReport, RebalanceStatus};

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
    if let Some(g) = c.geo.as_ref().filter(|g| g.sites.len() > 1) {
        rows(&[
            (
                "sites",
                format!(
                    "{} ({} shards of {} in each{})",
                    g.sites.join(", "),
                    g.per_site,
                    g.profile,
                    if g.sites_down.is_empty() {
                        String::new()
                    } else {
                        format!("; down: {}", g.sites_down.join(", "))
                    }
                ),
            ),
            (
                "profile survives a site",
                g.refusal
                    .clone()
                    .unwrap_or_else(|| format!("yes ({} over {} sites)", g.profile, g.sites.len())),
            ),
        ]);
        if !g.sites_down.is_empty() {
            rows(&[(
                "now",
                format!(
                    "site {} down: new writes would not survive losing another site \
                     (site-unsafe: stelectl repair status)",
                    g.sites_down.join(", ")
                ),
            )]);
        }
    }
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
            ClusterCommand::Layout { cmd } => self.layout(cmd.unwrap_or(LayoutCommand::Show)),
            ClusterCommand::Rebalance { status: true } => {
                let r = self.client.get("/v1/rebalance")?;
                self.show(&r, |s: &RebalanceStatus| {
                    rows(&[
                        ("running", s.running.to_string()),
                        ("paused", s.paused.to_string()),
                        (
                            "runs here",
                            if s.standby {
                                "no: another node holds the cluster's lease".to_owned()
                            } else {
                                "yes".to_owned()
                            },
                        ),
                        ("passes", s.passes.to_string()),
                        ("rate", format!("{} bytes/s", s.rate_bytes_per_sec)),
                        ("old copies waiting here", s.old_copies_waiting.to_string()),
                        ("grace", format!("{} s", s.grace_secs)),
                    ]);
                    if let Some(f) = &s.last_failure {
                        out!("last pass failed: {f}");
                    }
                    if let Some(p) = &s.last_pass {
                        rebalance_report(p);
                    }
                    Ok(())
                })
            }
            ClusterCommand::Rebalance { status: false } => {
                let r = self.client.post_waiting("/v1/rebalance/run?wait=true")?;
                self.show(&r, |p: &Option<RebalanceReport>| {
                    match p {
                        Some(p) => rebalance_report(p),
                        None => out!("no pass ran (the rebalancer is paused)"),
                    }
                    Ok(())
                })
            }
        }
    }

    fn layout(&self, cmd: LayoutCommand) -> anyhow::Result<()> {
        let r = match cmd {
            LayoutCommand::Show => self.client.get("/v1/cluster/layout")?,
            LayoutCommand::Weight { disk, weight } => {
                let uuid = if disk.len() == 32 && disk.bytes().all(|b| b.is_ascii_hexdigit()) {
                    disk
                } else {
                    let (node, id) = disk
                        .split_once(':')
                        .ok_or_else(|| anyhow::anyhow!("a disk is its UUID or NODE:ID"))?;
                    let l: Layout = self.client.get("/v1/cluster/layout")?.json()?;
                    l.disks
                        .iter()
                        .find(|d| d.node == node && d.id == id)
                        .map(|d| d.uuid.clone())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "no disk {id} of node {node} in the layout: `stelectl cluster \
                                 layout` lists each disk's node id and disk id"
                            )
                        })?
                };
                self.client.put(
                    &format!("/v1/cluster/layout/disks/{}", segment(&uuid)),
                    &StageWeight { weight },
                )?
            }
            LayoutCommand::Apply { epoch } => self
                .client
                .post_json("/v1/cluster/layout/apply", &ApplyLayout { epoch })?,
            LayoutCommand::Revert => self.client.delete("/v1/cluster/layout/staged")?,
        };
        self.show(&r, |l: &Layout| {
            rows(&[
                (
                    "epoch",
                    match l.since {
                        Some(t) => format!("{} (since {})", l.epoch, time(t)),
                        None => format!("{} (no layout recorded yet)", l.epoch),
                    },
                ),
                (
                    "staged",
                    match l.staged_base {
                        Some(b) => format!(
                            "yes (against epoch {b}): apply with stelectl cluster layout apply --epoch {}",
                            l.epoch
                        ),
                        None => "nothing".to_owned(),
                    },
                ),
                (
                    "new writes here follow epoch",
                    if l.placing_epoch < l.epoch {
                        format!("{} (switching to {} within two seconds)", l.placing_epoch, l.epoch)
                    } else {
                        l.placing_epoch.to_string()
                    },
                ),
            ]);
            table(
                &["NODE", "DISK", "SITE", "WEIGHT", "STAGED", "UUID"],
                l.disks
                    .iter()
                    .map(|d| {
                        vec![
                            d.node.clone(),
                            d.id.clone(),
                            d.site.clone(),
                            d.weight.to_string(),
                            d.staged_weight.map_or_else(|| "-".into(), |w| w.to_string()),
                            d.uuid.clone(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        })
    }
}

fn rebalance_report(p: &RebalanceReport) {
    out!(
        "rebalance pass to epoch {}: {} versions looked at, {} shards moved ({} bytes), \
         {} waiting (a disk not online, or repair first), {} raced, {} old copies removed",
        p.epoch,
        p.versions,
        p.moved,
        p.bytes,
        p.waiting,
        p.raced,
        p.old_copies_removed
    );
}
