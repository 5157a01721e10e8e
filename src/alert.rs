//! Alerts: what must reach a person — corruption found, repaired or past repair, a repair
//! that keeps failing, a disk going offline, online or full, a scrub pass done, a
//! background pass that failed, a failed restore drill, an overdue backup, a clock
//! anomaly. Each alert is a structured log line and, for every webhook
//! sink an administrator configured, an entry in a durable queue in the metadata store
//! that the server delivers (JSON POST) and retries with backoff until it is taken. The
//! core keeps the queue; the HTTP delivery lives in the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::meta::{Meta, MetaError, Record, Space};
use crate::types::Timestamp;

/// Something a person must know about. Serialized with its kind as a kebab-case `kind` tag
/// (`corruption-found`, `disk-offline`, ...) beside its fields, which is what a webhook
/// sink receives under `alert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Alert {
    /// Scrub found missing or corrupt shards in a version. It tries to rebuild them in the
    /// same pass: a `repaired` or `unrepairable` alert for the same version follows.
    CorruptionFound {
        /// The bucket of the damaged version.
        bucket: String,
        /// Its object key.
        key: String,
        /// Its version id, as S3 clients name it (`null` for the null version).
        version: String,
        /// Shards whose file is gone or whose disk is offline.
        missing: u64,
        /// Shards present whose content no longer hashes to the recorded root.
        corrupt: u64,
    },
    /// Scrub rebuilt bad shards of a version; the version is whole again and the record
    /// unchanged.
    Repaired {
        /// The bucket of the repaired version.
        bucket: String,
        /// Its object key.
        key: String,
        /// Its version id, as S3 clients name it (`null` for the null version).
        version: String,
        /// How many shards were rewritten.
        shards: u64,
    },
    /// A version has a stripe with fewer than K good blocks: its data cannot be rebuilt
    /// from this node's disks. The version is kept, never dropped; restore it from another
    /// copy or bring back the missing disks.
    Unrepairable {
        /// The bucket of the lost version.
        bucket: String,
        /// Its object key.
        key: String,
        /// Its version id, as S3 clients name it (`null` for the null version).
        version: String,
        /// The first stripe found below K good blocks (0 for a corrupt inline version).
        stripe: u64,
    },
    /// A disk went offline (an I/O error, or its stamp is gone or names another disk). Its
    /// shards count as missing: scrub and repair rebuild them on other disks.
    DiskOffline {
        /// The disk's id, as `/v1/disks` shows it.
        disk: String,
    },
    /// A disk that was offline or full is online again.
    DiskOnline {
        /// The disk's id, as `/v1/disks` shows it.
        disk: String,
    },
    /// A disk ran out of space: it takes no new shards until space is freed.
    DiskFull {
        /// The disk's id, as `/v1/disks` shows it.
        disk: String,
    },
    /// A bucket's usage reached 90% of its hard quota: writes past the quota will be
    /// refused. Raised once each time the usage crosses the mark (and once after a
    /// restart while it stays above).
    QuotaNearlyFull {
        /// The bucket.
        bucket: String,
        /// Its usage in bytes: versions and parts of uploads in progress.
        used_bytes: u64,
        /// Its quota in bytes.
        quota_bytes: u64,
    },
    /// A scrub pass finished over every bucket; its totals. Not raised for a pass that
    /// stopped or failed.
    ScrubPassDone {
        /// Versions checked.
        versions: u64,
        /// Shards that read back whole and matched their root.
        shards_verified: u64,
        /// Shards found missing.
        missing: u64,
        /// Shards found corrupt.
        corrupt: u64,
        /// Shards rebuilt.
        repaired: u64,
        /// Versions that could not be rebuilt (each also raised as `unrepairable`).
        unrepairable: u64,
    },
    /// A restore drill could not read a sampled version back whole through the read path:
    /// a restore of it would fail today.
    DrillFailed {
        /// The bucket of the sampled version.
        bucket: String,
        /// Its object key.
        key: String,
        /// Its version id.
        version: String,
        /// What went wrong: the read error or the check (size, MD5, checksum) that failed.
        reason: String,
    },
    /// A background pass (scrub, lifecycle, restore drill) met an error and did not
    /// finish; it is retried from its checkpoint.
    WorkerPassFailed {
        /// The worker's name, as `GET /v1/workers` lists it.
        worker: String,
        /// Why the pass stopped.
        reason: String,
    },
    /// A queued repair keeps failing (alerted at its 3rd failed attempt, then every 10th).
    RepairFailing {
        /// The bucket of the version waiting for repair.
        bucket: String,
        /// Its object key.
        key: String,
        /// Its version id.
        version: String,
        /// Failed attempts so far.
        attempts: u32,
        /// The last attempt's error.
        error: String,
    },
    /// Erasure coding across sites: acknowledged bytes that would not survive losing one
    /// more site have been waiting longer than the threshold (`--site-unsafe-alert`).
    /// Raised once per episode (the bytes dropping to zero ends it).
    SiteUnsafe {
        /// Site-unsafe bytes now (`stele_geo_site_unsafe_bytes`).
        bytes: u64,
        /// Seconds since the bytes became non-zero, as this node saw them.
        since_secs: u64,
    },
    /// A bucket with a backup expectation has had no new version within `every_secs`.
    /// Raised once per missed deadline, judged on the wall clock.
    BackupOverdue {
        /// The bucket whose backups stopped arriving.
        bucket: String,
        /// When its newest version was written; `None` if it has none (the deadline then
        /// runs from the bucket's creation).
        last_version: Option<Timestamp>,
        /// The expected interval between backups, in seconds.
        every_secs: u64,
    },
    /// The wall clock jumped and the retention clock refused to follow it: check the
    /// node's time source. Retention keeps counting monotonic time meanwhile.
    ClockAnomaly {
        /// Anomalies seen since the node was first started (kept across restarts).
        anomalies: u64,
        /// The latest jump, in microseconds (negative: the wall clock went backwards).
        step_micros: i64,
    },
    /// The replication RPO to a peer passed the lowest threshold of the rules naming it.
    ReplicationLag {
        /// The peer.
        peer: String,
        /// The RPO now, in whole seconds.
        rpo_secs: u64,
        /// The threshold passed, in seconds.
        threshold_secs: u64,
        /// Entries the peer has not acknowledged.
        backlog_entries: u64,
    },
    /// The replication RPO to a peer is back under its threshold.
    ReplicationCaughtUp {
        /// The peer.
        peer: String,
        /// The RPO now, in whole seconds.
        rpo_secs: u64,
    },
    /// A peer refused a replication entry for good (or the version could not be read
    /// here): parked with its reason, listed by `stelectl replication status`, retried
    /// only by an administrator (or by itself after repair for `waiting_repair`).
    ReplicationParked {
        /// The peer.
        peer: String,
        /// The reason's name (`refused`, `conflict`, `waiting_repair`, ...).
        reason: String,
        /// The source bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The version.
        version_id: String,
        /// The peer's answer or the local error.
        detail: String,
    },
    /// A peer answered that a bucket's pair was promoted there (a higher writer epoch):
    /// this old primary's bucket turned into a read-only replica by itself. What it had
    /// not sent yet still goes (the union); clients must write to the peer now.
    ReplicationFenced {
        /// The peer.
        peer: String,
        /// The bucket, read-only from now on.
        bucket: String,
        /// The peer's epoch, now this bucket's.
        epoch: u64,
    },
    /// The replication audit found versions a peer had acknowledged and no longer holds
    /// (queued again) or holds with other bytes (named; never overwritten).
    ReplicationAudit {
        /// The peer.
        peer: String,
        /// The source bucket.
        bucket: String,
        /// Versions asked about.
        checked: u64,
        /// Not on the peer.
        missing: u64,
        /// On the peer with another ETag or size.
        mismatched: u64,
    },
    /// Sent on request (`POST /v1/alerts/test`) to check that sinks are reached.
    Test {
        /// Free text naming who asked for it.
        message: String,
    },
}

impl Alert {
    /// The alert's kebab-case kind (`corruption-found`, `disk-full`, ...), as in its JSON.
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
    /// The administrator's name for it; setting a sink of the same name replaces it.
    pub name: String,
    /// Where alerts are POSTed as JSON.
    pub url: String,
    /// When it was last set.
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
    /// Time-ordered id (16 hex digits), so the queue lists oldest first.
    pub id: String,
    /// The name of the sink it is for; an entry whose sink was removed is dropped.
    pub sink: String,
    /// The JSON body POSTed: `{"kind", "raised", "alert"}`.
    pub payload: String,
    /// When the alert was raised.
    pub raised: Timestamp,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Not retried before this time (backoff after each failure).
    pub next_attempt: Timestamp,
    /// Why the last delivery failed, if one did.
    pub last_error: Option<String>,
}

impl Record for QueuedAlert {
    const NAME: &'static str = "queued-alert";
    const FORMAT: u8 = 1;
}

/// A bucket's backup freshness expectation: a new version at least every `every_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// The bucket watched.
    pub bucket: String,
    /// The longest expected gap between new versions, in seconds.
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

/// The alert raiser and its durable delivery queue, with the sinks and backup
/// expectations administrators configured.
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
    /// Alerts kept in `meta`; a failed delivery waits at most `max_backoff_micros` before
    /// the next try (`--alert-retry-max`).
    pub fn new(meta: Arc<Meta>, clock: SharedClock, max_backoff_micros: i64) -> Self {
        Self {
            meta,
            clock,
            last_id: AtomicI64::new(0),
            max_backoff_micros,
        }
    }

    /// Every configured webhook sink.
    pub fn sinks(&self) -> Result<Vec<SinkRecord>, MetaError> {
        self.meta.kv_list(Space::Alerts, "sink/", usize::MAX)
    }

    /// Adds the sink `name`, or points it at a new `url`. Only alerts raised from now on
    /// are queued for it.
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

    /// Removes a sink; entries still queued for it are dropped at their next delivery.
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

    /// The sink `name`, if configured.
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

    /// Every bucket's backup expectation, as the watchdog checks them.
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
