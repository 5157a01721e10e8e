//! `/metrics` in the Prometheus text format: S3 requests by operation and status, their
//! latency, bytes in and out (counted as requests pass), and the node's state read at
//! scrape time (disks, scrub, repair queue, restore drill, overdue backups, clock
//! anomalies, alert queue).

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
        if labels.is_empty() {
            let _ = writeln!(out, "{name}{suffix} {v}");
        } else {
            let _ = writeln!(out, "{name}{suffix}{{{labels}}} {v}");
        }
    }
}

#[cfg(test)]
mod tests {
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
