//! `replication`: peers, a bucket's rule, every peer's state, parked entries.

use stele_api::replication::{
    BucketReplication, DeadEntry, NewPeer, Peer, PeerStatus, Retried, Rule, TrustKind, WriterEpoch,
};

use super::*;

fn peer_path(name: &str) -> String {
    format!("/v1/replication/peers/{}", segment(name))
}

fn rules_path(bucket: &str) -> String {
    format!("/v1/buckets/{}/replication", segment(bucket))
}

/// What a promoted bucket knew of its old primary: the realized RPO.
fn promotion_text(e: &WriterEpoch) {
    let Some(p) = &e.promotion else {
        return;
    };
    let Some(heard) = p.last_heard else {
        out!("its old primary never sent a heartbeat here: the realized RPO is unknown");
        return;
    };
    out!(
        "old primary last heard {}: {} entries / {} bytes not yet here{}",
        time(heard),
        p.backlog_entries.unwrap_or(0),
        p.backlog_bytes.unwrap_or(0),
        p.oldest_unreplicated
            .map(|o| format!(", the oldest committed {}", time(o)))
            .unwrap_or_default()
    );
    out!(
        "realized RPO: {:.1} s at that heartbeat, at most {:.1} s if it stopped within one heartbeat interval ({:.0} s) of it",
        p.reported_rpo_seconds.unwrap_or(0.0),
        p.rpo_bound_seconds.unwrap_or(0.0),
        p.heartbeat_interval_seconds
    );
}

impl Ctx {
    pub(super) fn replication(&self, cmd: ReplicationCommand) -> anyhow::Result<()> {
        match cmd {
            ReplicationCommand::Peer(c) => self.peer(c),
            ReplicationCommand::Rule(c) => self.rule(c),
            ReplicationCommand::Status => {
                let r = self.client.get("/v1/replication")?;
                self.show(&r, |list: &Vec<PeerStatus>| {
                    replication_status(list);
                    Ok(())
                })
            }
            ReplicationCommand::Resync { peer } => {
                let r = self.client.post(&format!("{}/resync", peer_path(&peer)))?;
                self.show(&r, |v: &serde_json::Value| {
                    out!(
                        "peer {peer}: {} rule(s) walked again; only what it lacks is sent",
                        v["rules"]
                    );
                    Ok(())
                })
            }
            ReplicationCommand::Sources => {
                let r = self.client.get("/v1/replication/sources")?;
                self.show(&r, |list: &Vec<stele_api::replication::Source>| {
                    if list.is_empty() {
                        out!("no source has replicated here");
                    }
                    for s in list {
                        out!(
                            "source {}: last seen {}, {} entries / {} bytes not yet here{}, RPO {:.1} s",
                            s.access_key,
                            time(s.last_seen),
                            s.backlog_entries,
                            s.backlog_bytes,
                            s.oldest.map(|o| format!(", oldest from {}", time(o))).unwrap_or_default(),
                            s.rpo_seconds
                        );
                    }
                    Ok(())
                })
            }
            ReplicationCommand::Dead { peer } => {
                let r = self.client.get(&format!("{}/dead", peer_path(&peer)))?;
                self.show(&r, |list: &Vec<DeadEntry>| {
                    if list.is_empty() {
                        out!("peer {peer}: no parked entries");
                        return Ok(());
                    }
                    dead_table(list);
                    out!();
                    out!("Once the cause is fixed: stelectl replication retry {peer}");
                    Ok(())
                })
            }
            ReplicationCommand::Promote { bucket } => {
                let r = self
                    .client
                    .post(&format!("{}/promote", rules_path(&bucket)))?;
                self.show(&r, |e: &WriterEpoch| {
                    out!(
                        "bucket {}: promoted, writable here at epoch {}",
                        e.bucket,
                        e.epoch
                    );
                    promotion_text(e);
                    Ok(())
                })
            }
            ReplicationCommand::Epoch { bucket } => {
                let r = self.client.get(&format!("{}/epoch", rules_path(&bucket)))?;
                self.show(&r, |e: &WriterEpoch| {
                    match (&e.reason, e.since) {
                        (Some(reason), Some(since)) => out!(
                            "bucket {}: {} at epoch {} ({reason} {})",
                            e.bucket,
                            e.role,
                            e.epoch,
                            time(since)
                        ),
                        _ => out!(
                            "bucket {}: unpaired (no replica has arrived; writable)",
                            e.bucket
                        ),
                    }
                    if e.role == "replica" {
                        out!("read-only: only its primary's replicas change it; `stelectl replication promote {}` makes it writable", e.bucket);
                    }
                    promotion_text(e);
                    Ok(())
                })
            }
            ReplicationCommand::Audit { run } => {
                if run {
                    self.client.post("/v1/replication/audit/run")?;
                    out!("replication audit started");
                    return Ok(());
                }
                let r = self.client.get("/v1/replication/audit")?;
                self.show(&r, |list: &Vec<stele_api::replication::AuditReport>| {
                    if list.is_empty() {
                        out!("no audit has run yet (stelectl replication audit --run)");
                    }
                    for a in list {
                        out!(
                            "{} rule {} -> {}: {}{} checked, {} missing (sent again), {} mismatched",
                            a.bucket,
                            a.rule,
                            a.peer,
                            if a.running { "running, " } else { "" },
                            a.checked,
                            a.missing,
                            a.mismatched
                        );
                        if let Some(e) = &a.error {
                            out!("  stopped short: {e}");
                        }
                        for f in &a.named {
                            out!("  {} {} {}", f.finding, f.key, f.version_id);
                        }
                    }
                    Ok(())
                })
            }
            ReplicationCommand::Retry { peer } => {
                let r = self.client.post(&format!("{}/retry", peer_path(&peer)))?;
                self.show(&r, |v: &Retried| {
                    let n = v.retried;
                    let s = if n == 1 { "y" } else { "ies" };
                    out!("peer {peer}: {n} parked entr{s} put back in its log");
                    Ok(())
                })
            }
        }
    }

    fn peer(&self, cmd: PeerCommand) -> anyhow::Result<()> {
        match cmd {
            PeerCommand::Add {
                name,
                endpoint,
                peer_ca,
                peer_fingerprint,
                access_key,
                secret_key,
            } => {
                let ca_pem = peer_ca
                    .map(|p| {
                        std::fs::read_to_string(&p)
                            .with_context(|| format!("cannot read --peer-ca {}", p.display()))
                    })
                    .transpose()?;
                let body = NewPeer {
                    name,
                    endpoint,
                    ca_pem,
                    fingerprint: peer_fingerprint,
                    access_key,
                    secret_key,
                };
                let r = self.client.post_json("/v1/replication/peers", &body)?;
                self.show(&r, |p: &Peer| {
                    out!(
                        "peer {} added (log id {}): {}, {}",
                        p.name,
                        p.id,
                        p.endpoint,
                        trust_text(p)
                    );
                    Ok(())
                })
            }
            PeerCommand::List => {
                let r = self.client.get("/v1/replication/peers")?;
                self.show(&r, |list: &Vec<Peer>| {
                    if list.is_empty() {
                        out!("no replication peers");
                        return Ok(());
                    }
                    table(
                        &["PEER", "ENDPOINT", "ACCESS KEY", "CREATED", "TRUST"],
                        list.iter()
                            .map(|p| {
                                vec![
                                    p.name.clone(),
                                    p.endpoint.clone(),
                                    p.access_key.clone(),
                                    time(p.created),
                                    trust_text(p),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                })
            }
            PeerCommand::Remove { name } => {
                let r = self.client.delete(&peer_path(&name))?;
                self.outcome(&r, &format!("peer {name} removed, with its log"))
            }
        }
    }

    fn rule(&self, cmd: RuleCommand) -> anyhow::Result<()> {
        match cmd {
            RuleCommand::Set {
                bucket,
                peer,
                target_bucket,
                id,
                prefix,
                delete_markers,
                rpo_alert,
                bandwidth,
                backfill,
                disabled,
            } => {
                let body = BucketReplication {
                    rules: vec![Rule {
                        id,
                        enabled: !disabled,
                        prefix,
                        peer,
                        target_bucket,
                        delete_markers,
                        rpo_alert_secs: rpo_alert,
                        bandwidth_bytes_per_sec: bandwidth,
                        backfill,
                    }],
                };
                let r = self.client.put(&rules_path(&bucket), &body)?;
                self.show(&r, |v: &BucketReplication| {
                    for rule in &v.rules {
                        out!("bucket {bucket}: {}", rule_text(rule));
                    }
                    Ok(())
                })
            }
            RuleCommand::Get { bucket } => {
                let r = self.client.get(&rules_path(&bucket))?;
                self.show(&r, |v: &BucketReplication| {
                    out!("{}", serde_json::to_string_pretty(v)?);
                    Ok(())
                })
            }
            RuleCommand::Delete { bucket } => {
                let r = self.client.delete(&rules_path(&bucket))?;
                self.outcome(
                    &r,
                    &format!(
                        "bucket {bucket}: replication rules removed (entries logged already \
                         are still sent)"
                    ),
                )
            }
        }
    }
}

/// `fingerprint ab12...`, `ca` or `plain (no TLS)`.
fn trust_text(p: &Peer) -> String {
    match (p.trust, &p.fingerprint) {
        (TrustKind::Fingerprint, Some(f)) => format!("fingerprint {f}"),
        (TrustKind::Plain, _) => "plain (no TLS)".into(),
        (t, _) => t.as_str().to_owned(),
    }
}

/// One rule in a sentence.
fn rule_text(r: &Rule) -> String {
    let mut s = format!(
        "rule {} {}: {} to bucket {} on peer {}",
        r.id,
        if r.enabled { "on" } else { "off" },
        if r.prefix.is_empty() {
            "every key".to_owned()
        } else {
            format!("keys under {:?}", r.prefix)
        },
        r.target_bucket,
        r.peer
    );
    if r.delete_markers {
        s.push_str(", delete markers too");
    }
    s.push_str(&format!(
        ", RPO alert after {}",
        secs_text(r.rpo_alert_secs)
    ));
    if let Some(b) = r.bandwidth_bytes_per_sec {
        s.push_str(&format!(", at most {}/s", bytes_text(b)));
    }
    if r.backfill {
        s.push_str(", older versions too (backfill)");
    }
    s
}

/// The link as one word or two: `up`, `down`, `breaker open`, `paused`, `not started`.
fn link_text(p: &PeerStatus) -> String {
    if !p.sending {
        "not started".into()
    } else if p.paused {
        "paused".into()
    } else if p.breaker_open {
        "breaker open".into()
    } else if p.link_up {
        "up".into()
    } else {
        "down".into()
    }
}

/// Parked entries: the total, then the reasons that have any.
fn dead_text(p: &PeerStatus) -> String {
    let total: u64 = p.dead.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = p
        .dead
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

/// The RPO for people, flagged when past the rules' alert threshold.
fn rpo_text(p: &PeerStatus) -> String {
    let ms = (p.rpo_seconds.max(0.0) * 1000.0) as u64;
    let t = if ms == 0 {
        "0s".into()
    } else {
        millis_text(ms)
    };
    match p.rpo_alert_seconds {
        Some(a) if p.rpo_seconds > a as f64 => format!("{t} (over {})", secs_text(a)),
        _ => t,
    }
}

fn replication_status(list: &[PeerStatus]) {
    if list.is_empty() {
        out!("no replication peers");
        return;
    }
    table(
        &[
            "PEER",
            "RPO",
            "BACKLOG",
            "OLDEST UNREPLICATED",
            "LINK",
            "DEAD",
        ],
        list.iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    rpo_text(p),
                    format!("{} / {}", p.backlog_entries, bytes_text(p.backlog_bytes)),
                    p.oldest.as_ref().map_or_else(
                        || "-".into(),
                        |o| format!("{}/{}@{}", o.bucket, o.key, o.version_id),
                    ),
                    link_text(p),
                    dead_text(p),
                ]
            })
            .collect(),
    );
    let errors: Vec<&PeerStatus> = list.iter().filter(|p| p.last_error.is_some()).collect();
    if !errors.is_empty() {
        out!();
        for p in errors {
            out!(
                "{}: last error: {}",
                p.name,
                p.last_error.as_deref().unwrap_or_default()
            );
        }
    }
}

fn dead_table(list: &[DeadEntry]) {
    table(
        &[
            "SEQ", "BUCKET", "KEY", "VERSION", "OP", "REASON", "PARKED", "DETAIL",
        ],
        list.iter()
            .map(|d| {
                vec![
                    d.seq.to_string(),
                    d.bucket.clone(),
                    d.key.clone(),
                    d.version_id.clone(),
                    d.op.as_str().to_owned(),
                    d.reason.as_str().to_owned(),
                    time(d.parked_at),
                    d.detail.clone(),
                ]
            })
            .collect(),
    );
}
