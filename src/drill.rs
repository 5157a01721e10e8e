//! Restore drills and the repair queue: proving, on a schedule, that backups can be read
//! back (a random sample of versions read end to end through the read path, their bytes
//! checked against the stored MD5 and checksums), and draining the repair queue that reads
//! and writes feed.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::alert::{Alert, Alerts};
use crate::checksum::{ChecksumHasher, Md5};
use crate::meta::VersionKind;
use crate::store::{Store, VersionRef};
use crate::types::{BucketName, ObjectKey, Timestamp};

/// One version a drill read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sampled {
    pub bucket: String,
    pub key: String,
    pub version: String,
    pub bytes: u64,
    /// `None` when the bytes came back whole and matched; else why not.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub versions_total: u64,
    pub sample: Vec<Sampled>,
    pub passed: u64,
    pub failed: u64,
}

/// Reads `v` end to end and checks it against what was stored: the MD5 (single-part
/// objects) and every stored checksum that covers the whole object.
async fn read_back(
    store: &Store,
    b: &BucketName,
    k: &ObjectKey,
    v: &VersionRef,
) -> Result<u64, String> {
    let read = store
        .get_object(b, k, Some(v), None)
        .await
        .map_err(|e| e.to_string())?;
    let rec = read.record.clone();
    let mut md5 = Md5::default();
    let mut sums: Vec<ChecksumHasher> = if rec.composite_checksum {
        Vec::new()
    } else {
        rec.checksums
            .iter()
            .map(|c| ChecksumHasher::new(c.algorithm))
            .collect()
    };
    let mut n = 0u64;
    let mut body = read.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        md5.update(&chunk);
        for h in &mut sums {
            h.update(&chunk);
        }
        n += chunk.len() as u64;
    }
    if n != rec.size {
        return Err(format!("{n} bytes read, {} stored", rec.size));
    }
    if !rec.etag.contains('-') && hex::encode(md5.finish()) != rec.etag {
        return Err("MD5 does not match the ETag".into());
    }
    for h in sums {
        let got = h.finish();
        if !rec.checksums.contains(&got) {
            return Err(format!("{} checksum does not match", got.algorithm.name()));
        }
    }
    Ok(n)
}

type Pick = (BucketName, ObjectKey, VersionRef);

/// A uniform random sample (reservoir sampling) of up to `sample` object versions of every
/// bucket, and how many there are.
fn sample_versions(store: &Store, sample: usize) -> (Vec<Pick>, u64) {
    let mut chosen: Vec<Pick> = Vec::new();
    let mut seen = 0u64;
    let mut rng = rand::rng();
    for b in store.buckets().unwrap_or_default() {
        let _ = store.meta().scan_versions(&b.name, "", |k, v| {
            if v.kind == VersionKind::Object {
                seen += 1;
                let item = (b.name.clone(), k, v.version_ref());
                if chosen.len() < sample {
                    chosen.push(item);
                } else {
                    let j = rng.random_range(0..seen);
                    if (j as usize) < sample {
                        chosen[j as usize] = item;
                    }
                }
            }
            ControlFlow::Continue(())
        });
    }
    (chosen, seen)
}

/// Runs one drill over a random sample of up to `sample` object versions.
pub async fn drill(store: &Store, alerts: Option<&Alerts>, sample: usize) -> DrillReport {
    let mut report = DrillReport {
        started: Some(store.retention_clock().now()),
        ..Default::default()
    };
    let (chosen, seen) = sample_versions(store, sample);
    report.versions_total = seen;
    for (b, k, v) in chosen {
        let r = read_back(store, &b, &k, &v).await;
        let s = Sampled {
            bucket: b.to_string(),
            key: k.to_string(),
            version: v.to_string(),
            bytes: *r.as_ref().unwrap_or(&0),
            failure: r.err(),
        };
        if let Some(reason) = &s.failure {
            report.failed += 1;
            tracing::error!(bucket = %s.bucket, key = %s.key, version = %s.version, reason, "restore drill failed");
            if let Some(a) = alerts {
                a.raise(Alert::DrillFailed {
                    bucket: s.bucket.clone(),
                    key: s.key.clone(),
                    version: s.version.clone(),
                    reason: reason.clone(),
                });
            }
        } else {
            report.passed += 1;
        }
        report.sample.push(s);
    }
    report.finished = Some(store.retention_clock().now());
    tracing::info!(
        passed = report.passed,
        failed = report.failed,
        "restore drill done"
    );
    report
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillStatus {
    pub drills: u64,
    pub last: Option<DrillReport>,
    pub sample_size: usize,
    pub interval_secs: u64,
}

/// Runs drills on a schedule and on demand.
pub struct DrillWorker {
    store: Store,
    alerts: Arc<Alerts>,
    status: Mutex<DrillStatus>,
    trigger: Notify,
    done: Notify,
}

impl DrillWorker {
    pub fn new(store: Store, alerts: Arc<Alerts>, interval: Duration, sample: usize) -> Arc<Self> {
        Arc::new(Self {
            store,
            alerts,
            status: Mutex::new(DrillStatus {
                sample_size: sample,
                interval_secs: interval.as_secs(),
                ..Default::default()
            }),
            trigger: Notify::new(),
            done: Notify::new(),
        })
    }

    pub fn status(&self) -> DrillStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub async fn run_and_wait(&self) -> Option<DrillReport> {
        let before = self.status().drills;
        loop {
            let done = self.done.notified();
            self.trigger.notify_one();
            done.await;
            let st = self.status();
            if st.drills > before {
                return st.last;
            }
        }
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (interval, sample) = {
            let st = self.status();
            (Duration::from_secs(st.interval_secs.max(1)), st.sample_size)
        };
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = self.trigger.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
            let report = drill(&self.store, Some(&self.alerts), sample).await;
            if let Ok(mut s) = self.status.lock() {
                s.drills += 1;
                s.last = Some(report);
            }
            self.done.notify_waiters();
        }
    }
}

/// The repair queue's length and oldest entries, and what the repair worker did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairStatus {
    pub queue_length: u64,
    pub handled: u64,
    pub shards_rebuilt: u64,
    pub unrepairable: u64,
}

/// Drains the repair queue: each entry's version is verified and its bad shards rebuilt.
pub struct RepairWorker {
    store: Store,
    status: Mutex<RepairStatus>,
}

impl RepairWorker {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            status: Mutex::new(RepairStatus::default()),
        })
    }

    pub fn status(&self) -> RepairStatus {
        let mut st = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        st.queue_length = self
            .store
            .repair_queue(100_000)
            .map(|q| q.len() as u64)
            .unwrap_or(0);
        st
    }

    /// Handles what is queued now; returns how many entries.
    pub fn drain(&self) -> usize {
        let entries = self.store.repair_queue(100).unwrap_or_default();
        for e in &entries {
            if let Ok(Some(v)) = self.store.meta().version(&e.bucket, &e.key, &e.version_id) {
                let found = self.store.scrub_version(&e.bucket, &e.key, &v, true);
                if let Ok(mut s) = self.status.lock() {
                    s.shards_rebuilt += found.repaired;
                    s.unrepairable += u64::from(found.unrepairable.is_some());
                }
            }
            if let Err(err) = self.store.meta().dequeue_repair(e) {
                tracing::warn!(error = %err, "repair: cannot dequeue");
            }
            if let Ok(mut s) = self.status.lock() {
                s.handled += 1;
            }
        }
        entries.len()
    }

    pub async fn run(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.drain()).await;
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
