//! `/metrics` in the Prometheus text format: S3 requests by operation and status, their
//! latency, bytes in and out (counted as requests pass), and the node's state read at
//! scrape time (disks, scrub, repair queue, restore drill, overdue backups, clock
//! anomalies, alert queue, replication per peer).

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    op: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OpLabels, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let mut registry = Registry::with_prefix("stele_s3");
        registry.register(
            "requests",
            "S3 requests by operation and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "S3 request latency by operation (to the response head)",
            latency.clone(),
        );
        registry.register(
            "received_bytes",
            "Request body bytes received",
            bytes_in.clone(),
        );
        registry.register("sent_bytes", "Response body bytes sent", bytes_out.clone());
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            bytes_in,
            bytes_out,
        }
    }
}

/// The operation class of a request for labels: method, what it addresses, and its
/// sub-resource (`GET object`, `PUT object?retention`, `GET bucket?list-type`...).
pub fn op_label(method: &str, path: &str, query: Option<&str>) -> String {
    const SUB: [&str; 14] = [
        "uploads",
        "uploadId",
        "partNumber",
        "versioning",
        "object-lock",
        "retention",
        "legal-hold",
        "tagging",
        "lifecycle",
        "versions",
        "delete",
        "list-type",
        "location",
        "attributes",
    ];
    let depth = path
        .trim_start_matches('/')
        .splitn(2, '/')
        .filter(|s| !s.is_empty())
        .count();
    let target = ["service", "bucket", "object"][depth.min(2)];
    let sub = query.and_then(|q| {
        q.split('&')
            .filter_map(|p| p.split('=').next())
            .find(|name| SUB.contains(name))
    });
    match sub {
        Some(s) => format!("{method} {target}?{s}"),
        None => format!("{method} {target}"),
    }
}

impl Metrics {
    pub fn observe(&self, op: &str, status: u16, took: Duration, bytes_in: u64, bytes_out: u64) {
        self.requests
            .get_or_create(&RequestLabels {
                op: op.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&OpLabels { op: op.to_owned() })
            .observe(took.as_secs_f64());
        self.bytes_in.inc_by(bytes_in);
        self.bytes_out.inc_by(bytes_out);
    }

    /// The request metrics, then `extra` (gauges and counters read now), as one text
    /// exposition ending with `# EOF`.
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = encode(&mut out, &r);
        }
        let body = out.trim_end().trim_end_matches("# EOF").to_owned();
        let mut s = body;
        s.push_str(extra);
        s.push_str("# EOF\n");
        s
    }
}

/// Appends one metric (with its type and help lines) to an exposition.
pub fn gauge(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        let suffix = if kind == "counter" { "_total" } else { "" };
        let v = value(*v);
        if labels.is_empty() {
            let _ = writeln!(out, "{name}{suffix} {v}");
        } else {
            let _ = writeln!(out, "{name}{suffix}{{{labels}}} {v}");
        }
    }
}

/// A sample's value as the exposition format spells it: `+Inf`, `-Inf` and `NaN` (Rust
/// writes `inf`, which OpenMetrics parsers refuse).
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// How long a backlog of `entries` holding `bytes` body bytes takes to drain at
/// `throughput` bytes per second, in seconds: 0 when nothing waits, `None` when entries
/// wait and nothing moves.
pub fn drain_eta(entries: u64, bytes: u64, throughput: f64) -> Option<f64> {
    if entries == 0 {
        Some(0.0)
    } else if throughput > 0.0 {
        Some(bytes as f64 / throughput)
    } else {
        None
    }
}

/// The replication families, one sample per peer (and per class or dead reason), read
/// from the log and the senders at scrape time. A peer without a running sender shows
/// its link down and its sender counters at 0; a peer that never acknowledged since start
/// has no `last_ack` sample.
pub fn replication(out: &mut String, peers: &[stele::node::PeerStatus]) {
    use stele::replication::log::DeadReason;
    let per_peer = |f: &dyn Fn(&stele::node::PeerStatus) -> Option<f64>| -> Vec<(String, f64)> {
        peers
            .iter()
            .filter_map(|p| f(p).map(|v| (format!("peer=\"{}\"", p.peer.name), v)))
            .collect()
    };
    let sender = |p: &stele::node::PeerStatus| p.sender.clone().unwrap_or_default();
    gauge(
        out,
        "stele_replication_rpo_seconds",
        "gauge",
        "Age of the oldest change the peer has not acknowledged (live or parked); 0 when none",
        &per_peer(&|p| Some(p.rpo_secs)),
    );
    let mut ops = Vec::new();
    for p in peers {
        let b = &p.backlog;
        let live = b.entries.saturating_sub(b.backfill_entries);
        for (class, n) in [("live", live), ("backfill", b.backfill_entries)] {
            ops.push((
                format!("peer=\"{}\",class=\"{class}\"", p.peer.name),
                n as f64,
            ));
        }
    }
    gauge(
        out,
        "stele_replication_backlog_ops",
        "gauge",
        "Entries waiting to be sent to the peer, by class (live: logged with a change; backfill: by a backfill)",
        &ops,
    );
    gauge(
        out,
        "stele_replication_backlog_bytes",
        "gauge",
        "Body bytes waiting to be sent to the peer",
        &per_peer(&|p| Some(p.backlog.bytes as f64)),
    );
    let mut dead = Vec::new();
    for p in peers {
        for r in DeadReason::ALL {
            let n = p.backlog.dead.get(&r).copied().unwrap_or(0);
            dead.push((
                format!("peer=\"{}\",reason=\"{}\"", p.peer.name, r.as_str()),
                n as f64,
            ));
        }
    }
    gauge(
        out,
        "stele_replication_dead_entries",
        "gauge",
        "Entries the peer refused for good, parked until retried, by reason",
        &dead,
    );
    gauge(
        out,
        "stele_replication_link_up",
        "gauge",
        "1 if the last request or probe reached the peer",
        &per_peer(&|p| Some(f64::from(u8::from(sender(p).link_up)))),
    );
    gauge(
        out,
        "stele_replication_last_ack_timestamp_seconds",
        "gauge",
        "When the peer last acknowledged an entry (Unix time; no sample if never since start)",
        &per_peer(&|p| sender(p).last_ack.map(|t| t.0 as f64 / 1e6)),
    );
    gauge(
        out,
        "stele_replication_throughput_bytes",
        "gauge",
        "Body bytes per second the peer acknowledged (moving average over about a minute)",
        &per_peer(&|p| Some(sender(p).throughput)),
    );
    gauge(
        out,
        "stele_replication_drain_eta_seconds",
        "gauge",
        "Seconds until the backlog drains at the current throughput; +Inf while entries wait and nothing moves",
        &per_peer(&|p| {
            Some(
                drain_eta(p.backlog.entries, p.backlog.bytes, sender(p).throughput)
                    .unwrap_or(f64::INFINITY),
            )
        }),
    );
    gauge(
        out,
        "stele_replication_lock_divergence",
        "counter",
        "Lock changes the peer kept stronger than the source's, since start",
        &per_peer(&|p| Some(sender(p).lock_divergences as f64)),
    );
    gauge(
        out,
        "stele_replication_sent_bytes",
        "counter",
        "Body bytes the peer acknowledged, since start",
        &per_peer(&|p| Some(sender(p).sent_bytes as f64)),
    );
}

/// Each other member this node places shards on: 1 while it answers, 0 while every call
/// to its disks fails.
pub fn members(out: &mut String, reach: &[(String, Option<std::time::Duration>)]) {
    let samples: Vec<(String, f64)> = reach
        .iter()
        .map(|(node, down)| {
            (
                format!("node=\"{node}\""),
                f64::from(u8::from(down.is_none())),
            )
        })
        .collect();
    gauge(
        out,
        "stele_cluster_member_reachable",
        "gauge",
        "1 while another member answers this node, 0 while every call to its disks fails",
        &samples,
    );
}

/// `last - matched` when both are known.
fn last_sub(last: Option<u64>, matched: Option<u64>) -> Option<u64> {
    Some(last?.saturating_sub(matched?))
}

/// A cluster member's view (only on a node that runs its member of the Raft group): its
/// term, role, lease, log and applied indexes, the voters, each member's log lag (on the
/// leader) and every placement disk's state as this node sees it (`node` the member id).
pub fn cluster(
    out: &mut String,
    s: &stele::consensus::GroupStatus,
    disks: &[stele::disk::DiskStatus],
) {
    let one = |v: f64| [(String::new(), v)];
    // "None yet" is no sample, never a NaN an alert rule would skip.
    let index = |i: Option<u64>| -> Vec<(String, f64)> {
        i.map(|i| (String::new(), i as f64)).into_iter().collect()
    };
    gauge(
        out,
        "stele_cluster_raft_term",
        "gauge",
        "The Raft term this node is in",
        &one(s.term as f64),
    );
    gauge(
        out,
        "stele_cluster_raft_leader",
        "gauge",
        "1 if this node is the Raft leader",
        &one(f64::from(u8::from(s.state == "leader"))),
    );
    gauge(
        out,
        "stele_cluster_lease_held",
        "gauge",
        "1 if this node holds the cluster's lease (once-per-cluster work runs here)",
        &one(f64::from(u8::from(s.lease))),
    );
    gauge(
        out,
        "stele_cluster_raft_last_log_index",
        "gauge",
        "The index of the last entry in this node's Raft log (no sample: none yet)",
        &index(s.last_log_index),
    );
    gauge(
        out,
        "stele_cluster_raft_last_applied_index",
        "gauge",
        "The index of the last entry this node applied (no sample: none yet)",
        &index(s.last_applied),
    );
    gauge(
        out,
        "stele_cluster_raft_voters",
        "gauge",
        "Voters in the Raft group as this node knows it",
        &one(s.voters.len() as f64),
    );
    let lag: Vec<(String, f64)> = s
        .matched
        .iter()
        .filter_map(|(node, m)| {
            let lag = last_sub(s.last_log_index, *m)?;
            Some((format!("node=\"{node}\""), lag as f64))
        })
        .collect();
    gauge(
        out,
        "stele_cluster_raft_member_lag_entries",
        "gauge",
        "On the leader: entries of its log another member does not hold yet (no sample \
         while none is matched)",
        &lag,
    );
    let online: Vec<(String, f64)> = disks
        .iter()
        .map(|d| {
            (
                format!("node=\"{}\",disk=\"{}\"", d.node, d.id),
                f64::from(u8::from(d.state == stele::disk::DiskState::Online)),
            )
        })
        .collect();
    gauge(
        out,
        "stele_cluster_disk_online",
        "gauge",
        "1 if a disk new shards may go to is online, as this node sees it (a member's disks \
         go offline when it cannot be reached)",
        &online,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn special_values_are_spelled_for_openmetrics() {
        let mut out = String::new();
        super::gauge(
            &mut out,
            "x",
            "gauge",
            "h",
            &[
                ("a=\"1\"".into(), f64::INFINITY),
                ("a=\"2\"".into(), f64::NAN),
                ("a=\"3\"".into(), 2.5),
            ],
        );
        assert!(out.contains("x{a=\"1\"} +Inf\n"), "{out}");
        assert!(out.contains("x{a=\"2\"} NaN\n"), "{out}");
        assert!(out.contains("x{a=\"3\"} 2.5\n"), "{out}");
    }

    #[test]
    fn drain_eta_is_zero_empty_and_unknown_when_stalled() {
        assert_eq!(super::drain_eta(0, 0, 0.0), Some(0.0));
        assert_eq!(super::drain_eta(3, 100, 0.0), None);
        assert_eq!(super::drain_eta(3, 100, 50.0), Some(2.0));
    }

    #[test]
    fn operations_are_labelled_by_target_and_subresource() {
        assert_eq!(super::op_label("GET", "/", None), "GET service");
        assert_eq!(super::op_label("PUT", "/b", None), "PUT bucket");
        assert_eq!(
            super::op_label("GET", "/b/k/x", Some("retention=")),
            "GET object?retention"
        );
        assert_eq!(
            super::op_label("GET", "/b", Some("list-type=2&prefix=a")),
            "GET bucket?list-type"
        );
    }
}
