//! Alerts: what must reach a person — corruption found, repaired or past repair, a repair
//! that keeps failing, a disk going offline, online or full, a scrub pass done, a
//! background pass that failed, a failed restore drill, an overdue backup, a clock anomaly. Each alert is a structured log line and, for every webhook
//! sink an administrator configured, an entry in a durable queue in the metadata store
//! that the server delivers (JSON POST) and retries with backoff until it is taken. The
//! core keeps the queue; the HTTP delivery lives in the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::meta::{Meta, MetaError, Record, Space};
use crate::types::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Alert {
    CorruptionFound {
        bucket: String,
        key: String,
        version: String,
        missing: u64,
        corrupt: u64,
    },
    Repaired {
        bucket: String,
        key: String,
        version: String,
        shards: u64,
    },
    Unrepairable {
        bucket: String,
        key: String,
        version: String,
        stripe: u64,
    },
    DiskOffline {
        disk: String,
    },
    DiskOnline {
        disk: String,
    },
    DiskFull {
        disk: String,
    },
    ScrubPassDone {
        versions: u64,
        shards_verified: u64,
        missing: u64,
        corrupt: u64,
        repaired: u64,
        unrepairable: u64,
    },
    DrillFailed {
        bucket: String,
        key: String,
        version: String,
        reason: String,
    },
    /// A background pass (scrub, lifecycle, restore drill) met an error and did not
    /// finish; it is retried from its checkpoint.
    WorkerPassFailed {
        worker: String,
        reason: String,
    },
    /// A queued repair keeps failing (alerted at its 3rd failed attempt, then every 10th).
    RepairFailing {
        bucket: String,
        key: String,
        version: String,
        attempts: u32,
        error: String,
    },
    BackupOverdue {
        bucket: String,
        last_version: Option<Timestamp>,
        every_secs: u64,
    },
    ClockAnomaly {
        anomalies: u64,
        step_micros: i64,
    },
    Test {
        message: String,
    },
}

impl Alert {
    pub fn kind(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A webhook an administrator configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkRecord {
    pub name: String,
    pub url: String,
    pub created: Timestamp,
}

impl Record for SinkRecord {
    const NAME: &'static str = "alert-sink";
    const FORMAT: u8 = 1;
}

/// One alert waiting to reach one sink. The alert is kept as the JSON the sink receives
/// (`{"kind": ..., ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedAlert {
    pub id: String,
    pub sink: String,
    pub payload: String,
    pub raised: Timestamp,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
}

impl Record for QueuedAlert {
    const NAME: &'static str = "queued-alert";
    const FORMAT: u8 = 1;
}

/// A bucket's backup freshness expectation: a new version at least every `every_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub bucket: String,
    pub every_secs: u64,
    /// The deadline already alerted on (one alert per missed deadline).
    pub alerted_for: Option<Timestamp>,
}

impl Record for Expectation {
    const NAME: &'static str = "expectation";
    const FORMAT: u8 = 1;
}

/// How long delivery waits after the n-th failure: 1 s, 2 s, 4 s... up to `max`.
pub fn backoff_micros(attempts: u32, max_micros: i64) -> i64 {
    let base = 1_000_000i64.saturating_mul(1i64 << attempts.min(30));
    base.min(max_micros)
}

pub struct Alerts {
    meta: Arc<Meta>,
    clock: SharedClock,
    last_id: AtomicI64,
    max_backoff_micros: i64,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Alerts")
    }
}

fn queue_key(id: &str) -> String {
    format!("q/{id}")
}

impl Alerts {
    pub fn new(meta: Arc<Meta>, clock: SharedClock, max_backoff_micros: i64) -> Self {
        Self {
            meta,
            clock,
            last_id: AtomicI64::new(0),
            max_backoff_micros,
        }
    }

    pub fn sinks(&self) -> Result<Vec<SinkRecord>, MetaError> {
        self.meta.kv_list(Space::Alerts, "sink/", usize::MAX)
    }

    pub fn set_sink(&self, name: &str, url: &str) -> Result<SinkRecord, MetaError> {
        let rec = SinkRecord {
            name: name.to_owned(),
            url: url.to_owned(),
            created: self.clock.now(),
        };
        self.meta.kv_write(
            Space::Alerts,
            &[(format!("sink/{name}"), rec.encode()?)],
            &[],
        )?;
        Ok(rec)
    }

    pub fn remove_sink(&self, name: &str) -> Result<(), MetaError> {
        self.meta
            .kv_write(Space::Alerts, &[], &[format!("sink/{name}")])
    }

    /// A time-ordered id, unique within the process (and across restarts, as time moves
    /// on).
    fn next_id(&self) -> String {
        let now = self.clock.now().micros();
        let mut prev = self.last_id.load(Ordering::SeqCst);
        loop {
            let id = now.max(prev + 1);
            match self
                .last_id
                .compare_exchange(prev, id, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return format!("{id:016x}"),
                Err(p) => prev = p,
            }
        }
    }

    /// Raises an alert: a log line, and a durable queue entry per sink.
    pub fn raise(&self, alert: Alert) {
        let record = serde_json::to_string(&alert).unwrap_or_default();
        tracing::warn!(target: "stele::alert", kind = alert.kind(), record, "alert");
        let sinks = match self.sinks() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "alerts: cannot read sinks");
                return;
            }
        };
        let now = self.clock.now();
        let payload = serde_json::json!({
            "kind": alert.kind(),
            "raised": now,
            "alert": serde_json::to_value(&alert).unwrap_or_default(),
        })
        .to_string();
        let puts: Result<Vec<(String, Vec<u8>)>, MetaError> = sinks
            .iter()
            .map(|s| {
                let q = QueuedAlert {
                    id: self.next_id(),
                    sink: s.name.clone(),
                    payload: payload.clone(),
                    raised: now,
                    attempts: 0,
                    next_attempt: now,
                    last_error: None,
                };
                Ok((queue_key(&q.id), q.encode()?))
            })
            .collect();
        if let Err(e) = puts.and_then(|puts| {
            if puts.is_empty() {
                Ok(())
            } else {
                self.meta.kv_write(Space::Node, &puts, &[])
            }
        }) {
            tracing::error!(error = %e, "alerts: cannot queue an alert");
        }
    }

    /// Everything still to deliver, oldest first.
    pub fn queue(&self, limit: usize) -> Result<Vec<QueuedAlert>, MetaError> {
        self.meta.kv_list(Space::Node, "q/", limit)
    }

    /// Entries whose next attempt is due.
    pub fn due(&self, limit: usize) -> Result<Vec<QueuedAlert>, MetaError> {
        let now = self.clock.now();
        Ok(self
            .queue(usize::MAX)?
            .into_iter()
            .filter(|q| q.next_attempt <= now)
            .take(limit)
            .collect())
    }

    pub fn sink(&self, name: &str) -> Result<Option<SinkRecord>, MetaError> {
        self.meta.kv_get(Space::Alerts, &format!("sink/{name}"))
    }

    /// The sink took it.
    pub fn delivered(&self, q: &QueuedAlert) -> Result<(), MetaError> {
        self.meta.kv_write(Space::Node, &[], &[queue_key(&q.id)])
    }

    /// The sink did not take it: try again later.
    pub fn failed(&self, q: &QueuedAlert, error: &str) -> Result<(), MetaError> {
        let mut next = q.clone();
        next.attempts += 1;
        next.next_attempt = self
            .clock
            .now()
            .plus_micros(backoff_micros(q.attempts, self.max_backoff_micros));
        next.last_error = Some(error.to_owned());
        self.meta
            .kv_write(Space::Node, &[(queue_key(&q.id), next.encode()?)], &[])
    }

    /// Declares (or with `None` removes) how often backups are expected in `bucket`.
    pub fn expect(&self, bucket: &str, every_secs: Option<u64>) -> Result<(), MetaError> {
        let key = format!("expect/{bucket}");
        match every_secs {
            Some(every_secs) => {
                let e = Expectation {
                    bucket: bucket.to_owned(),
                    every_secs,
                    alerted_for: None,
                };
                self.meta
                    .kv_write(Space::Alerts, &[(key, e.encode()?)], &[])
            }
            None => self.meta.kv_write(Space::Alerts, &[], &[key]),
        }
    }

    pub fn expectations(&self) -> Result<Vec<Expectation>, MetaError> {
        self.meta.kv_list(Space::Alerts, "expect/", usize::MAX)
    }

    pub(crate) fn save_expectation(&self, e: &Expectation) -> Result<(), MetaError> {
        self.meta.kv_write(
            Space::Alerts,
            &[(format!("expect/{}", e.bucket), e.encode()?)],
            &[],
        )
    }

    /// An entry whose sink was removed is dropped.
    pub fn drop_entry(&self, q: &QueuedAlert) -> Result<(), MetaError> {
        self.delivered(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn alerts_queue_per_sink_and_back_off_until_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Arc::new(Meta::open(dir.path()).expect("meta"));
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let a = Alerts::new(meta, clock.clone(), 10_000_000);
        a.raise(Alert::Test {
            message: "no sink yet".into(),
        });
        assert!(a.queue(10).expect("queue").is_empty());
        a.set_sink("ops", "http://127.0.0.1:1/hook").expect("sink");
        a.set_sink("pager", "http://127.0.0.1:2/hook")
            .expect("sink");
        a.raise(Alert::DiskOffline { disk: "d1".into() });
        let due = a.due(10).expect("due");
        assert_eq!(due.len(), 2);
        a.failed(&due[0], "refused").expect("failed");
        a.delivered(&due[1]).expect("delivered");
        assert!(a.due(10).expect("due").is_empty(), "backing off");
        clock.advance_micros(1_000_001);
        let again = a.due(10).expect("due");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        assert_eq!(backoff_micros(10, 10_000_000), 10_000_000);
    }

    #[test]
    fn queued_alert_of_format_1_decodes() {
        let q = QueuedAlert {
            id: "1".into(),
            sink: "s".into(),
            payload: "{}".into(),
            raised: Timestamp(64),
            attempts: 0,
            next_attempt: Timestamp(64),
            last_error: None,
        };
        let bytes = q.encode().expect("encode");
        assert_eq!(bytes[0], 1);
        assert_eq!(QueuedAlert::decode(&bytes).expect("decode"), q);
    }
}
