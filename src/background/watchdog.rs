//! The watchdog: a worker that notices what nobody asked about — a disk going offline,
//! online or full, a clock anomaly, a bucket whose backups stopped arriving, a bucket
//! nearing its quota — and raises the alert.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::alert::{Alert, Alerts};
use crate::background::runner::{Control, PassEnd, PassWorker, Scope};
use crate::clock::SharedClock;
use crate::disk::DiskState;
use crate::store::Store;
use crate::types::{BucketName, Timestamp};

/// What the watchdog has seen, as `GET /v1/watchdog` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchStatus {
    /// Rounds of checks since the process started.
    pub checks: u64,
    /// Buckets whose backups are overdue now.
    pub overdue: Vec<String>,
}

/// The watchdog worker: each round compares disk states and the retention clock's anomaly
/// count with the last round's, and backup freshness with each bucket's expectation, and
/// alerts what changed or is overdue.
pub struct Watchdog {
    store: Store,
    alerts: Arc<Alerts>,
    clock: SharedClock,
    disks: Mutex<HashMap<String, DiskState>>,
    anomalies: Mutex<u64>,
    /// Buckets alerted as nearly full and still above the mark.
    nearly_full: Mutex<HashSet<String>>,
    status: Mutex<WatchStatus>,
    control: Control,
    every: Duration,
}

impl Watchdog {
    /// A watchdog that checks every `every` (on the worker runner).
    pub fn new(
        store: Store,
        alerts: Arc<Alerts>,
        clock: SharedClock,
        every: Duration,
    ) -> Arc<Self> {
        let anomalies = store.retention_clock().status().anomalies;
        Arc::new(Self {
            store,
            alerts,
            clock,
            disks: Mutex::new(HashMap::new()),
            anomalies: Mutex::new(anomalies),
            nearly_full: Mutex::new(HashSet::new()),
            status: Mutex::new(WatchStatus::default()),
            control: Control::default(),
            every: every.max(Duration::from_secs(1)),
        })
    }

    /// A copy of the status.
    pub fn status(&self) -> WatchStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// One round of checks.
    pub fn check(&self) {
        self.check_disks();
        self.check_clock();
        self.check_quotas();
        let overdue = self.check_freshness();
        if let Ok(mut s) = self.status.lock() {
            s.checks += 1;
            s.overdue = overdue;
        }
    }

    fn check_disks(&self) {
        let Ok(mut seen) = self.disks.lock() else {
            return;
        };
        for d in self.store.disks() {
            let before = seen.insert(d.id.clone(), d.state);
            if before == Some(d.state) || (before.is_none() && d.state == DiskState::Online) {
                continue;
            }
            let disk = d.id.clone();
            self.alerts.raise(match d.state {
                DiskState::Offline => Alert::DiskOffline { disk },
                DiskState::Online => Alert::DiskOnline { disk },
                DiskState::Full => Alert::DiskFull { disk },
            });
        }
    }

    fn check_clock(&self) {
        let st = self.store.retention_clock().status();
        let Ok(mut seen) = self.anomalies.lock() else {
            return;
        };
        if st.anomalies > *seen {
            *seen = st.anomalies;
            self.alerts.raise(Alert::ClockAnomaly {
                anomalies: st.anomalies,
                step_micros: st.last_anomaly.map_or(0, |a| a.step_micros),
            });
        }
    }

    /// Alerts each bucket whose usage crossed 90% of its quota since the last round.
    fn check_quotas(&self) {
        let Ok(buckets) = self.store.buckets() else {
            return;
        };
        let Ok(mut alerted) = self.nearly_full.lock() else {
            return;
        };
        alerted.retain(|name| buckets.iter().any(|b| b.name.as_str() == name));
        for b in buckets {
            let Some(quota) = b.quota else {
                alerted.remove(b.name.as_str());
                continue;
            };
            let Ok(used) = self.store.usage(&b.name) else {
                continue;
            };
            let name = b.name.to_string();
            // 90%, in integers: used / quota >= 9 / 10 (versions and parts in progress).
            if u128::from(used.total()) * 10 < u128::from(quota) * 9 {
                alerted.remove(&name);
                continue;
            }
            if alerted.insert(name.clone()) {
                self.alerts.raise(Alert::QuotaNearlyFull {
                    bucket: name,
                    used_bytes: used.total(),
                    quota_bytes: quota,
                });
            }
        }
    }

    /// Raises one alert per missed deadline; returns the buckets overdue now.
    fn check_freshness(&self) -> Vec<String> {
        let now = self.clock.now();
        let mut overdue = Vec::new();
        for mut e in self.alerts.expectations().unwrap_or_default() {
            let Ok(bucket) = BucketName::new(e.bucket.clone()) else {
                continue;
            };
            let Ok(b) = self.store.bucket(&bucket) else {
                continue;
            };
            let newest = self.store.newest_version_time(&bucket).ok().flatten();
            let basis = newest.unwrap_or(b.created);
            let deadline = basis.plus_micros(e.every_secs as i64 * 1_000_000);
            if deadline > now {
                continue;
            }
            overdue.push(e.bucket.clone());
            if e.alerted_for == Some(deadline) {
                continue;
            }
            self.alerts.raise(Alert::BackupOverdue {
                bucket: e.bucket.clone(),
                last_version: newest,
                every_secs: e.every_secs,
            });
            e.alerted_for = Some(deadline);
            if let Err(err) = self.alerts.save_expectation(&e) {
                tracing::warn!(error = %err, "watchdog: cannot save expectation");
            }
        }
        overdue
    }
}

impl PassWorker for Watchdog {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "watchdog"
    }

    /// It watches this node's disks and retention clock (and, today, backup freshness,
    /// which a cluster will watch once, on the lease holder).
    fn scope(&self) -> Scope {
        Scope::Node
    }

    fn control(&self) -> &Control {
        &self.control
    }

    fn alerts(&self) -> Option<&Alerts> {
        Some(&self.alerts)
    }

    fn interval(&self) -> Duration {
        self.every
    }

    fn pass_at_start(&self) -> bool {
        true
    }

    fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> PassEnd {
        self.check();
        PassEnd::Finished
    }
}

impl Store {
    /// When `bucket` last took a version (object or delete marker): kept at commit time,
    /// so this reads one record. A bucket written before that was kept is scanned once
    /// and its time recorded.
    pub fn newest_version_time(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<Timestamp>, crate::store::StoreError> {
        // An unreadable record (torn, a newer format) is as good as none: scan instead.
        let kept = self.meta().last_write(bucket).unwrap_or_else(|e| {
            tracing::warn!(bucket = %bucket, error = %e, "unreadable last-write record");
            None
        });
        if let Some(t) = kept {
            return Ok(Some(t));
        }
        let mut newest: Option<Timestamp> = None;
        self.meta().scan_versions(bucket, "", |_, v| {
            newest = newest.max(Some(v.created));
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(t) = newest {
            self.meta().note_last_write(bucket, t)?;
        }
        Ok(newest)
    }
}
