//! The replication senders: one per peer, each draining that peer's part of the
//! replication log (`replication::log`) through a [`Transport`] the server provides (S3
//! requests signed with the peer's key, over TLS).
//!
//! A sender keeps a window of entries in flight; acknowledged entries leave the log in
//! batches (so a crash resends at most a window, which the receiver answers as
//! unchanged). Bytes come only from the verified read path; a version that cannot be read
//! is parked `waiting_repair` and retried by itself later. Transient failures back off
//! exponentially with jitter, and after [`BREAKER_AFTER`] in a row the peer's circuit
//! breaker opens: nothing is sent but a probe every [`PROBE_EVERY`] until one succeeds.
//! Permanent refusals are parked with their reason, alerted, and never retried in a loop.
//! A token bucket holds the bytes sent to the slowest bandwidth limit of the peer's rules.
//! Design: `sites.md` §4.3.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::sync::watch;

use crate::alert::{Alert, Alerts};
use crate::meta::{LockRecord, Record, VersionKind, VersionRecord};
use crate::replication::epoch::SenderEpoch;
use crate::replication::log::{DeadReason, EntryClass, LogEntry, LogOp};
use crate::replication::{
    PeerRecord, ReplicaOp, ReplicaResult, ReplicaVersion, ReplicationChange, log,
};
use crate::store::{ByteRange, Store, StoreError, VersionRef};
use crate::types::{BucketName, ObjectKey, Timestamp, VersionId};

/// Entries in flight per peer.
pub const WINDOW: usize = 8;
/// Transient failures in a row that open a peer's circuit breaker.
pub const BREAKER_AFTER: u32 = 5;
/// How often an open breaker probes the peer.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);
/// How often an idle sender looks at the log again.
pub const IDLE_POLL: Duration = Duration::from_millis(250);
/// Attempts of one entry that failed for a reason of its own (not yet on the peer, a
/// local read) before it is parked rather than retried for ever.
pub const ENTRY_ATTEMPTS: u32 = 30;
/// Versions at least this large, written in several parts, travel part by part: a
/// transfer cut short resumes at the first part the peer does not hold (8 MiB, the aws
/// CLI's multipart threshold).
pub const PART_BY_PART_MIN: u64 = 8 << 20;
/// How often the RPO is checked and a heartbeat sent to the peer (one per bucket pair).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How often parked `waiting_repair` entries are tried again.
pub const REPAIR_RETRY_EVERY: Duration = Duration::from_secs(600);

/// A body sent to a peer: verified blocks.
pub type BodyStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Why a request to a peer did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The link or the peer failed (connection, timeout, 5xx, a body damaged in transit):
    /// retried with backoff, and counted towards the circuit breaker.
    Transient(String),
    /// The peer cannot take this entry yet (a lock change whose version has not arrived):
    /// retried later, not a link failure.
    NotYet(String),
    /// This node could not prepare the entry (a local read failed): retried later, not a
    /// link failure.
    Local(String),
    /// The peer refused for good: the entry is parked with this reason.
    Permanent(DeadReason, String),
    /// The peer's bucket is written at a higher epoch (this one): the other side was
    /// promoted. The source bucket fences itself, and the entry goes again as its tail.
    Stale(u64),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transient(s) | SendError::NotYet(s) | SendError::Local(s) => f.write_str(s),
            SendError::Permanent(r, s) => write!(f, "{}: {s}", r.as_str()),
            SendError::Stale(e) => write!(f, "the peer is written at epoch {e}: stale here"),
        }
    }
}

/// How a peer holds a version it was asked about (a HEAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// With the same ETag and size.
    Same,
    /// With another ETag or size.
    Other,
    /// Not at all.
    Missing,
}

/// What the peer says about a target bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetBucket {
    /// Versioning is enabled.
    pub versioning: bool,
    /// Object Lock is enabled.
    pub object_lock: bool,
}

/// How replication requests reach one peer (the server implements it over HTTPS).
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends `op` for `key` into `target`, saying `epoch` of the source bucket, with its
    /// body for a version.
    fn send<'a>(
        &'a self,
        target: &'a BucketName,
        key: &'a ObjectKey,
        op: &'a ReplicaOp,
        epoch: SenderEpoch,
        body: Option<(BodyStream, u64)>,
    ) -> BoxFuture<'a, Result<ReplicaResult, SendError>>;

    /// Whether the target holds `version_id` of `key`, with this ETag and size (a HEAD):
    /// a backfill or resync then sends no bytes for it, and the audit names what differs.
    fn has_version<'a>(
        &'a self,
        target: &'a BucketName,
        key: &'a ObjectKey,
        version_id: VersionId,
        etag: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<Held, SendError>>;

    /// The numbers of the parts of `version_id` the peer holds staged (a
    /// [`ReplicaOp::Staged`] query); `None` when it holds the version itself already. A
    /// peer that predates staging answers [`SendError::Permanent`]: the version then goes
    /// whole.
    fn staged<'a>(
        &'a self,
        target: &'a BucketName,
        key: &'a ObjectKey,
        version_id: VersionId,
        epoch: SenderEpoch,
    ) -> BoxFuture<'a, Result<Option<Vec<u16>>, SendError>>;

    /// Reads the target bucket's versioning and Object Lock state (also the breaker's
    /// probe).
    fn bucket<'a>(
        &'a self,
        target: &'a BucketName,
    ) -> BoxFuture<'a, Result<TargetBucket, SendError>>;
}

/// Makes the [`Transport`] of a peer from its record and its key's secret.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// # Errors
    /// The peer's settings cannot make a client (a malformed endpoint or CA).
    fn connect(&self, peer: &PeerRecord, secret: &str) -> Result<Arc<dyn Transport>, String>;
}

/// What a source bucket says of itself when it sends (its writer epoch; epoch 0 and
/// primary when it has none, or when it cannot be read: the peer then answers stale if
/// it was promoted, which fences this bucket).
fn sender_epoch(store: &Store, bucket: &BucketName) -> SenderEpoch {
    SenderEpoch::of(
        crate::replication::writer_epoch(store.meta(), bucket)
            .ok()
            .flatten()
            .as_ref(),
    )
}

/// The peer answered `StaleEpoch` with `current` for `bucket`: it turns read-only here
/// ([`crate::replication::epoch::fence`]), and the fencing is alerted once.
async fn fence(
    store: &Store,
    alerts: Option<&Arc<Alerts>>,
    peer: &str,
    bucket: &BucketName,
    current: u64,
) {
    let before = crate::replication::writer_epoch(store.meta(), bucket)
        .ok()
        .flatten();
    if crate::replication::epoch::fence(before.as_ref(), current).is_none() {
        return;
    }
    let (st, b) = (store.clone(), bucket.clone());
    let r = tokio::task::spawn_blocking(move || {
        st.change_replication(ReplicationChange::Fence { bucket: b, current })
    })
    .await;
    match r {
        Ok(Ok(crate::replication::ReplicationOutcome::Epoch(rec))) => {
            tracing::warn!(%peer, %bucket, epoch = rec.epoch, "the peer was promoted: bucket fenced, read-only here");
            if let Some(a) = alerts {
                a.raise(Alert::ReplicationFenced {
                    peer: peer.to_owned(),
                    bucket: bucket.to_string(),
                    epoch: rec.epoch,
                });
            }
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(%peer, %bucket, error = %e, "cannot fence the bucket"),
        Err(e) => tracing::error!(%peer, %bucket, error = %e, "fencing task failed"),
    }
}

/// A token bucket on bytes: `take(n)` waits until the bucket is not in debt, then takes
/// `n` (possibly going into debt), so the long-run rate holds whatever the sizes.
#[derive(Debug)]
struct TokenBucket {
    rate: Option<u64>,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: Option<u64>) -> Self {
        Self {
            rate,
            tokens: 0.0,
            at: Instant::now(),
        }
    }

    /// How long to wait before `n` bytes may go, having taken them.
    #[allow(clippy::cast_precision_loss)]
    fn take(&mut self, n: u64) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let rate = rate as f64;
        let now = Instant::now();
        // At most one second of burst.
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(rate);
        self.at = now;
        let wait = if self.tokens < 0.0 {
            Duration::from_secs_f64(-self.tokens / rate)
        } else {
            Duration::ZERO
        };
        self.tokens -= n as f64;
        wait
    }
}

/// What a sender shows besides the log's backlog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SenderStatus {
    /// The peer's name.
    pub peer: String,
    /// The last request or probe reached the peer.
    pub link_up: bool,
    /// The circuit breaker is open: only probes are sent.
    pub breaker_open: bool,
    /// Transient failures in a row.
    pub failures_in_row: u32,
    /// The last failure, if any since the last success.
    pub last_error: Option<String>,
    /// When the peer last acknowledged an entry.
    pub last_ack: Option<Timestamp>,
    /// Entries acknowledged since start.
    pub sent_entries: u64,
    /// Body bytes acknowledged since start.
    pub sent_bytes: u64,
    /// Lock changes the peer kept stronger than the source's since start.
    pub lock_divergences: u64,
    /// Entries parked since start.
    pub parked: u64,
    /// Backfill entries the peer held already (nothing sent) since start.
    pub backfill_skipped: u64,
    /// Parts of large versions the peer held staged already when their transfer started
    /// again (not sent again) since start.
    pub resumed_parts: u64,
    /// Body bytes per second acknowledged (moving average over about a minute).
    pub throughput: f64,
    /// The slowest bandwidth limit of the peer's rules, bytes per second.
    pub bandwidth: Option<u64>,
    /// Paused by an administrator.
    pub paused: bool,
}

/// One peer's sender.
#[derive(Debug)]
pub struct Sender {
    store: Store,
    peer: PeerRecord,
    transport: Arc<dyn Transport>,
    alerts: Option<Arc<Alerts>>,
    status: Mutex<SenderStatus>,
    paused: AtomicBool,
    /// A heartbeat is on its way.
    heartbeat_busy: Arc<AtomicBool>,
}

enum Sent {
    Done {
        seq: u64,
        bytes: u64,
        result: ReplicaResult,
    },
    Failed {
        seq: u64,
        entry: LogEntry,
        error: SendError,
    },
}

impl Sender {
    /// A sender for `peer` through `transport`.
    pub fn new(
        store: Store,
        peer: PeerRecord,
        transport: Arc<dyn Transport>,
        alerts: Option<Arc<Alerts>>,
    ) -> Self {
        let status = SenderStatus {
            peer: peer.name.clone(),
            link_up: true,
            ..SenderStatus::default()
        };
        Self {
            store,
            peer,
            transport,
            alerts,
            status: Mutex::new(status),
            paused: AtomicBool::new(false),
            heartbeat_busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The peer it sends to.
    pub fn peer(&self) -> &PeerRecord {
        &self.peer
    }

    /// Its status now.
    pub fn status(&self) -> SenderStatus {
        let mut s = self.lock_status().clone();
        s.paused = self.paused.load(Ordering::SeqCst);
        s
    }

    /// Pause (nothing is sent; the log keeps growing and the RPO shows it) or resume.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, SenderStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bandwidth(&self) -> Option<u64> {
        let rules = crate::replication::all_rules(self.store.meta()).unwrap_or_default();
        rules
            .iter()
            .flat_map(|(_, r)| r.rules.iter())
            .filter(|r| r.peer == self.peer.name && r.enabled)
            .map(|r| r.bandwidth)
            .try_fold(None::<u64>, |acc, b| match b {
                // One unlimited rule does not lift the others' limits: the slowest holds.
                None => Some(acc),
                Some(b) => Some(Some(acc.map_or(b, |a| a.min(b)))),
            })
            .flatten()
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        // Shared by the bodies in flight: the limit holds on the bytes actually sent.
        let mut bucket = Arc::new(Mutex::new(TokenBucket::new(self.bandwidth())));
        let mut bucket_checked = Instant::now();
        let mut inflight: FuturesUnordered<BoxFuture<'static, Sent>> = FuturesUnordered::new();
        // The last sequence number dispatched, live and backfill.
        let mut dispatched: (u64, u64) = (0, 0);
        let mut acks: Vec<u64> = Vec::new();
        let mut acked_bytes: u64 = 0;
        let mut last_flush = Instant::now();
        let mut backoff_until: Option<Instant> = None;
        // Failures of single entries (not of the link), by sequence number.
        let mut attempts: HashMap<u64, u32> = HashMap::new();
        let mut last_rpo_check = Instant::now() - Duration::from_secs(60);
        let mut last_repair_retry = Instant::now();
        let mut lag_alerted = false;
        let mut ewma = Ewma::default();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if last_rpo_check.elapsed() >= HEARTBEAT_EVERY {
                last_rpo_check = Instant::now();
                lag_alerted = self.check_rpo(lag_alerted).await;
            }
            if last_repair_retry.elapsed() >= REPAIR_RETRY_EVERY {
                last_repair_retry = Instant::now();
                self.retry_waiting_repair().await;
            }
            if bucket_checked.elapsed() >= Duration::from_secs(5) {
                bucket_checked = Instant::now();
                let rate = self.bandwidth();
                if rate != bucket_rate(&bucket) {
                    bucket = Arc::new(Mutex::new(TokenBucket::new(rate)));
                }
                self.lock_status().bandwidth = rate;
            }
            let breaker_open = self.lock_status().breaker_open;
            let waiting = backoff_until.is_some_and(|t| Instant::now() < t);
            if !waiting {
                backoff_until = None;
            }
            if breaker_open && inflight.is_empty() && !waiting {
                self.probe().await;
                backoff_until = Some(Instant::now() + PROBE_EVERY);
                continue;
            }
            // Fill the window.
            if !breaker_open && !waiting && !self.paused.load(Ordering::SeqCst) {
                let room = WINDOW.saturating_sub(inflight.len());
                if room > 0 {
                    // Live changes first; backfill fills what room is left.
                    let mut next = self.pending(EntryClass::Live, dispatched.0, room).await;
                    if let Some((seq, _)) = next.last() {
                        dispatched.0 = *seq;
                    }
                    if next.len() < room {
                        let more = self
                            .pending(EntryClass::Backfill, dispatched.1, room - next.len())
                            .await;
                        if let Some((seq, _)) = more.last() {
                            dispatched.1 = *seq;
                        }
                        next.extend(more);
                    }
                    for (seq, entry) in next {
                        let me = self.clone();
                        let limit = bucket.clone();
                        inflight.push(Box::pin(
                            async move { me.send_one(seq, entry, limit).await },
                        ));
                    }
                }
            }
            if inflight.is_empty() {
                self.flush(&mut acks, &mut acked_bytes, &mut ewma).await;
                last_flush = Instant::now();
                // Everything dispatched was answered: the next fill rescans from the start
                // of the log, picking up what failed.
                dispatched = (0, 0);
                let sleep = backoff_until
                    .map_or(IDLE_POLL, |t| t.saturating_duration_since(Instant::now()))
                    .clamp(Duration::from_millis(10), IDLE_POLL.max(PROBE_EVERY));
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(sleep) => {}
                }
                continue;
            }
            let done = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                d = inflight.next() => d,
            };
            match done {
                Some(Sent::Done { seq, bytes, result }) => {
                    acks.push(seq);
                    acked_bytes += bytes;
                    attempts.remove(&seq);
                    let mut s = self.lock_status();
                    s.link_up = true;
                    s.breaker_open = false;
                    s.failures_in_row = 0;
                    s.last_error = None;
                    if result == ReplicaResult::Diverged {
                        s.lock_divergences += 1;
                    }
                }
                Some(Sent::Failed { seq, entry, error }) => match error {
                    SendError::Permanent(reason, detail) => {
                        self.park(seq, &entry, reason, &detail).await;
                    }
                    SendError::NotYet(_) | SendError::Local(_) | SendError::Stale(_) => {
                        if let SendError::Stale(current) = error {
                            fence(
                                &self.store,
                                self.alerts.as_ref(),
                                &self.peer.name,
                                &entry.bucket,
                                current,
                            )
                            .await;
                            // Fenced: the entry goes again as the bucket's tail, not
                            // counted against it.
                            continue;
                        }
                        let detail = error.to_string();
                        // This entry's own trouble: it waits, the others go on; it is
                        // parked once it has failed too often.
                        let n = attempts.entry(seq).or_default();
                        *n += 1;
                        if *n >= ENTRY_ATTEMPTS {
                            attempts.remove(&seq);
                            self.park(
                                seq,
                                &entry,
                                DeadReason::Other,
                                &format!("{ENTRY_ATTEMPTS} attempts: {detail}"),
                            )
                            .await;
                        } else {
                            tracing::debug!(peer = %self.peer.name, seq, %detail, "entry not sent; later");
                            let later = Instant::now() + Duration::from_secs(1);
                            backoff_until = Some(backoff_until.map_or(later, |t| t.max(later)));
                        }
                    }
                    SendError::Transient(detail) => {
                        // One failure of the link per backoff period, however many entries
                        // were in flight when it failed.
                        let counted = backoff_until.is_none();
                        let n = {
                            let mut s = self.lock_status();
                            if counted {
                                s.failures_in_row += 1;
                            }
                            s.link_up = false;
                            s.last_error = Some(detail.clone());
                            if s.failures_in_row >= BREAKER_AFTER && !s.breaker_open {
                                s.breaker_open = true;
                                tracing::warn!(peer = %self.peer.name, %detail, "replication link down: circuit breaker open");
                            }
                            s.failures_in_row
                        };
                        tracing::info!(peer = %self.peer.name, seq, %detail, "replication send failed; retrying");
                        if counted {
                            backoff_until = Some(Instant::now() + backoff(n));
                        }
                    }
                },
                None => {}
            }
            if acks.len() >= 64 || last_flush.elapsed() >= Duration::from_millis(200) {
                self.flush(&mut acks, &mut acked_bytes, &mut ewma).await;
                last_flush = Instant::now();
            }
        }
        // Drain what is in flight a moment, so acknowledged work is not resent.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(d) = inflight.next().await {
                if let Sent::Done { seq, bytes, .. } = d {
                    acks.push(seq);
                    acked_bytes += bytes;
                }
            }
        })
        .await;
        self.flush(&mut acks, &mut acked_bytes, &mut ewma).await;
    }

    async fn pending(&self, class: EntryClass, after: u64, limit: usize) -> Vec<(u64, LogEntry)> {
        let store = self.store.clone();
        let peer = self.peer.id;
        match tokio::task::spawn_blocking(move || {
            log::pending(store.meta(), peer, class, after, limit)
        })
        .await
        {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(peer = %self.peer.name, error = %e, "cannot read the replication log");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(peer = %self.peer.name, error = %e, "replication log read task failed");
                Vec::new()
            }
        }
    }

    async fn flush(&self, acks: &mut Vec<u64>, bytes: &mut u64, ewma: &mut Ewma) {
        if acks.is_empty() {
            ewma.add(0);
            self.lock_status().throughput = ewma.rate();
            return;
        }
        let seqs = std::mem::take(acks);
        let n = seqs.len() as u64;
        let store = self.store.clone();
        let change = ReplicationChange::Acknowledge {
            peer: self.peer.id,
            seqs,
        };
        let r = tokio::task::spawn_blocking(move || store.change_replication(change)).await;
        match r {
            Ok(Ok(_)) => {
                ewma.add(*bytes);
                let mut s = self.lock_status();
                s.sent_entries += n;
                s.sent_bytes += *bytes;
                s.last_ack = Some(self.store.clock().now());
                s.throughput = ewma.rate();
            }
            // The entries stay in the log and go again: the receiver answers unchanged.
            Ok(Err(e)) => {
                tracing::error!(peer = %self.peer.name, error = %e, "cannot record acknowledgements")
            }
            Err(e) => {
                tracing::error!(peer = %self.peer.name, error = %e, "acknowledgement task failed")
            }
        }
        *bytes = 0;
    }

    async fn park(&self, seq: u64, entry: &LogEntry, reason: DeadReason, detail: &str) {
        tracing::warn!(peer = %self.peer.name, seq, bucket = %entry.bucket, key = %entry.key,
            version = %entry.version_id, reason = reason.as_str(), detail, "replication entry parked");
        let store = self.store.clone();
        let change = ReplicationChange::Park {
            peer: self.peer.id,
            seq,
            reason,
            detail: detail.to_owned(),
        };
        match tokio::task::spawn_blocking(move || store.change_replication(change)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot park a replication entry"),
            Err(e) => tracing::error!(error = %e, "parking task failed"),
        }
        self.lock_status().parked += 1;
        if let Some(a) = &self.alerts {
            a.raise(Alert::ReplicationParked {
                peer: self.peer.name.clone(),
                reason: reason.as_str().to_owned(),
                bucket: entry.bucket.to_string(),
                key: entry.key.to_string(),
                version_id: entry.version_id.to_string(),
                detail: detail.to_owned(),
            });
        }
    }

    async fn retry_waiting_repair(&self) {
        let store = self.store.clone();
        let peer = self.peer.id;
        let _ = tokio::task::spawn_blocking(move || {
            store.change_replication(ReplicationChange::RetryDead {
                peer,
                reason: Some(DeadReason::WaitingRepair),
            })
        })
        .await;
    }

    async fn probe(&self) {
        let rules = crate::replication::all_rules(self.store.meta()).unwrap_or_default();
        let target = rules
            .iter()
            .flat_map(|(_, r)| r.rules.iter())
            .find(|r| r.peer == self.peer.name)
            .map(|r| r.target_bucket.clone());
        let Some(target) = target else {
            let mut s = self.lock_status();
            s.breaker_open = false;
            s.failures_in_row = 0;
            return;
        };
        match self.transport.bucket(&target).await {
            Ok(_)
            | Err(
                SendError::Permanent(..)
                | SendError::NotYet(_)
                | SendError::Local(_)
                | SendError::Stale(_),
            ) => {
                tracing::info!(peer = %self.peer.name, "replication link back: circuit breaker closed");
                let mut s = self.lock_status();
                s.breaker_open = false;
                s.link_up = true;
                s.failures_in_row = 0;
            }
            Err(SendError::Transient(e)) => {
                self.lock_status().last_error = Some(e);
            }
        }
    }

    /// Raises the lag alert when the RPO passes the lowest threshold of the peer's rules,
    /// and the recovery when it is back under. Returns whether the lag is alerted now.
    async fn check_rpo(&self, alerted: bool) -> bool {
        let store = self.store.clone();
        let peer = self.peer.clone();
        let r = tokio::task::spawn_blocking(move || {
            let threshold = crate::replication::all_rules(store.meta())?
                .iter()
                .flat_map(|(_, r)| r.rules.iter())
                .filter(|r| r.peer == peer.name)
                .map(|r| r.rpo_alert_secs)
                .min();
            let backlog = log::backlog(store.meta(), peer.id)?;
            Ok::<_, crate::meta::MetaError>((threshold, backlog))
        })
        .await;
        let Ok(Ok((Some(threshold), backlog))) = r else {
            return alerted;
        };
        self.heartbeat(&backlog).await;
        #[allow(clippy::cast_precision_loss)]
        let over = backlog.rpo_secs(self.store.clock().now()) > threshold as f64;
        if over != alerted
            && let Some(a) = &self.alerts
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rpo = backlog.rpo_secs(self.store.clock().now()) as u64;
            a.raise(if over {
                Alert::ReplicationLag {
                    peer: self.peer.name.clone(),
                    rpo_secs: rpo,
                    threshold_secs: threshold,
                    backlog_entries: backlog.entries,
                }
            } else {
                Alert::ReplicationCaughtUp {
                    peer: self.peer.name.clone(),
                    rpo_secs: rpo,
                }
            });
        }
        over
    }

    /// Tells the peer how far behind it is (best effort: a heartbeat lost is replaced by
    /// the next one).
    async fn heartbeat(&self, backlog: &log::Backlog) {
        // One per bucket pair, each with its source bucket's epoch: an old primary back
        // after a failover learns it from the first one, even with nothing to send.
        let rules = crate::replication::all_rules(self.store.meta()).unwrap_or_default();
        let mut pairs: Vec<(BucketName, BucketName)> = rules
            .iter()
            .flat_map(|(b, r)| r.rules.iter().map(move |r| (b, r)))
            .filter(|(_, r)| r.peer == self.peer.name && r.enabled)
            .map(|(b, r)| (b.clone(), r.target_bucket.clone()))
            .collect();
        pairs.sort();
        pairs.dedup();
        if pairs.is_empty() {
            return;
        }
        let oldest = [
            backlog.oldest.as_ref().map(|(_, e)| e.enqueued_at),
            backlog.oldest_dead,
        ]
        .into_iter()
        .flatten()
        .min();
        let hb = crate::replication::Heartbeat {
            sent_at: self.store.clock().now(),
            head: backlog.head,
            backlog_entries: backlog.entries + backlog.dead_total(),
            backlog_bytes: backlog.bytes,
            oldest,
        };
        let Ok(key) = ObjectKey::new("stele-heartbeat") else {
            return;
        };
        // On its own task, so that a cut link delays neither the sends nor the
        // acknowledgements; one at a time (a busy link may hold one back a while).
        if self.heartbeat_busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let (transport, peer) = (self.transport.clone(), self.peer.name.clone());
        let (store, alerts) = (self.store.clone(), self.alerts.clone());
        let flag = self.heartbeat_busy.clone();
        tokio::spawn(async move {
            let op = ReplicaOp::Heartbeat(hb);
            // All pairs at once: a slow answer for one delays no other's fencing.
            let sends = pairs.into_iter().map(|(source, target)| {
                let (transport, store, alerts, peer, key, op) = (
                    transport.clone(),
                    store.clone(),
                    alerts.clone(),
                    peer.clone(),
                    key.clone(),
                    op.clone(),
                );
                async move {
                    let epoch = sender_epoch(&store, &source);
                    match tokio::time::timeout(
                        Duration::from_secs(60),
                        transport.send(&target, &key, &op, epoch, None),
                    )
                    .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(SendError::Stale(current))) => {
                            fence(&store, alerts.as_ref(), &peer, &source, current).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "heartbeat not delivered");
                        }
                        Err(_) => tracing::debug!(%peer, "heartbeat not delivered in 60 s"),
                    }
                }
            });
            futures::future::join_all(sends).await;
            flag.store(false, Ordering::SeqCst);
        });
    }

    async fn send_one(
        self: Arc<Self>,
        seq: u64,
        entry: LogEntry,
        limit: Arc<Mutex<TokenBucket>>,
    ) -> Sent {
        match self.ship(&entry, &limit).await {
            Ok((bytes, result)) => Sent::Done { seq, bytes, result },
            Err(error) => Sent::Failed { seq, entry, error },
        }
    }

    /// Sends one entry; `Ok` with the body bytes sent.
    async fn ship(
        &self,
        e: &LogEntry,
        limit: &Arc<Mutex<TokenBucket>>,
    ) -> Result<(u64, ReplicaResult), SendError> {
        match e.op {
            LogOp::Lock => {
                let lock = self.local_lock(e).await?;
                let Some(lock) = lock else {
                    return Ok((0, ReplicaResult::Unchanged));
                };
                let op = ReplicaOp::Lock {
                    version_id: e.version_id,
                    lock,
                };
                let epoch = sender_epoch(&self.store, &e.bucket);
                match self
                    .transport
                    .send(&e.target, &e.key, &op, epoch, None)
                    .await
                {
                    // The version is not on the peer (written before the rule, or its own
                    // entry parked): send it whole, with its lock state as it is now.
                    Err(SendError::NotYet(_)) => self.ship_version(e, limit).await,
                    r => Ok((0, r?)),
                }
            }
            LogOp::DeleteMarker => {
                let op = ReplicaOp::DeleteMarker {
                    version_id: e.version_id,
                    created: e.version_id.timestamp(),
                };
                let epoch = sender_epoch(&self.store, &e.bucket);
                let r = self
                    .transport
                    .send(&e.target, &e.key, &op, epoch, None)
                    .await?;
                Ok((0, r))
            }
            LogOp::Version => self.ship_version(e, limit).await,
            LogOp::Tags => {
                if self.local_lock(e).await?.is_none() {
                    // Removed here since: nothing left to send.
                    return Ok((0, ReplicaResult::Unchanged));
                }
                let op = ReplicaOp::Tags {
                    version_id: e.version_id,
                    tags: self.local_tags(e).await?,
                };
                let epoch = sender_epoch(&self.store, &e.bucket);
                match self
                    .transport
                    .send(&e.target, &e.key, &op, epoch, None)
                    .await
                {
                    // The version is not on the peer yet: send it whole, then the tags
                    // again (its own entry, in flight, may have carried older ones).
                    Err(SendError::NotYet(_)) => {
                        let (bytes, _) = self.ship_version(e, limit).await?;
                        let r = self
                            .transport
                            .send(&e.target, &e.key, &op, epoch, None)
                            .await?;
                        Ok((bytes, r))
                    }
                    r => Ok((0, r?)),
                }
            }
        }
    }

    /// Sends a version with its bytes (read through the verified path), at the peer's
    /// bandwidth limit.
    async fn ship_version(
        &self,
        e: &LogEntry,
        limit: &Arc<Mutex<TokenBucket>>,
    ) -> Result<(u64, ReplicaResult), SendError> {
        let version = VersionRef::Id(e.version_id);

        let read = match self
            .store
            .get_object(&e.bucket, &e.key, Some(&version), None)
            .await
        {
            Ok(r) => r,
            Err(err) => {
                read_failure(err)?;
                return Ok((0, ReplicaResult::Unchanged));
            }
        };
        let record = read.record.clone();
        if record.kind != VersionKind::Object {
            return Ok((0, ReplicaResult::Unchanged));
        }
        if e.class == EntryClass::Backfill
            && self
                .transport
                .has_version(&e.target, &e.key, e.version_id, &record.etag, record.size)
                .await?
                == Held::Same
        {
            self.lock_status().backfill_skipped += 1;
            return Ok((0, ReplicaResult::Unchanged));
        }
        let parts = match known_parts(&record) {
            Some(p) => p,
            None => self.digest_parts(e, &record).await?,
        };
        let tags = self.local_tags(e).await?;
        let rv = ReplicaVersion {
            version_id: record.version_id,
            created: record.created,
            size: record.size,
            etag: record.etag.clone(),
            content_type: record.content_type.clone(),
            user_meta: record.user_meta.clone(),
            system: record.system.clone(),
            checksums: record.checksums.clone(),
            composite_checksum: record.composite_checksum,
            parts,
            lock: read.lock,
            tags,
        };
        let epoch = sender_epoch(&self.store, &e.bucket);
        if rv.parts.len() > 1
            && rv.size >= PART_BY_PART_MIN
            && let Some(done) = self.ship_parts(e, &rv, limit, epoch).await?
        {
            return Ok(done);
        }
        let (body, failed) = Watched::new(read.body, limit);
        let op = ReplicaOp::Version(Box::new(rv));
        let sent = self
            .transport
            .send(
                &e.target,
                &e.key,
                &op,
                epoch,
                Some((Box::pin(body), record.size)),
            )
            .await;
        if failed.load(Ordering::SeqCst) {
            // The local read failed mid-way: not the peer's fault.
            return Err(SendError::Permanent(
                DeadReason::WaitingRepair,
                "the version could not be read to its end".into(),
            ));
        }
        Ok((record.size, sent?))
    }

    /// Sends a large version part by part, skipping the parts the peer holds staged
    /// already, then asks it to assemble them; `None` when the peer cannot stage (it
    /// predates staging): the caller sends the version whole.
    async fn ship_parts(
        &self,
        e: &LogEntry,
        rv: &ReplicaVersion,
        limit: &Arc<Mutex<TokenBucket>>,
        epoch: SenderEpoch,
    ) -> Result<Option<(u64, ReplicaResult)>, SendError> {
        let staged = match self
            .transport
            .staged(&e.target, &e.key, rv.version_id, epoch)
            .await
        {
            Ok(Some(s)) => s,
            // Assembled already (its answer was lost): confirm, nothing else to send.
            Ok(None) => rv
                .parts
                .iter()
                .enumerate()
                .filter_map(|(i, _)| u16::try_from(i + 1).ok())
                .collect(),
            Err(SendError::Permanent(_, detail)) => {
                tracing::debug!(peer = %self.peer.name, %detail, "the peer cannot stage parts: sent whole");
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let version = VersionRef::Id(rv.version_id);
        let (mut offset, mut sent) = (0u64, 0u64);
        for (i, &(len, digest)) in rv.parts.iter().enumerate() {
            let number = u16::try_from(i + 1)
                .map_err(|_| SendError::Permanent(DeadReason::Other, "over 65535 parts".into()))?;
            let range = ByteRange::FromTo {
                first: offset,
                last: offset + len.saturating_sub(1),
            };
            offset += len;
            if staged.contains(&number) {
                self.lock_status().resumed_parts += 1;
                continue;
            }
            let read = match self
                .store
                .get_object(&e.bucket, &e.key, Some(&version), Some(range))
                .await
            {
                Ok(r) => r,
                Err(err) => {
                    read_failure(err)?;
                    return Ok(Some((sent, ReplicaResult::Unchanged)));
                }
            };
            let (body, failed) = Watched::new(read.body, limit);
            let op = ReplicaOp::Part {
                version_id: rv.version_id,
                number,
                len,
                blake3: digest,
            };
            let r = self
                .transport
                .send(&e.target, &e.key, &op, epoch, Some((Box::pin(body), len)))
                .await;
            if failed.load(Ordering::SeqCst) {
                return Err(SendError::Permanent(
                    DeadReason::WaitingRepair,
                    format!("part {number} could not be read to its end"),
                ));
            }
            r?;
            sent += len;
        }
        // The version's record goes as the body: 10,000 parts' digests do not fit in a
        // request header.
        let record = ReplicaOp::Version(Box::new(rv.clone()))
            .encode()
            .map_err(|err| SendError::Local(format!("encode: {err}")))?;
        let len = record.len() as u64;
        let body: BodyStream = Box::pin(futures::stream::once(async move {
            Ok::<_, io::Error>(Bytes::from(record))
        }));
        let op = ReplicaOp::Assemble {
            version_id: rv.version_id,
        };
        let r = self
            .transport
            .send(&e.target, &e.key, &op, epoch, Some((body, len)))
            .await?;
        Ok(Some((sent, r)))
    }

    async fn local_lock(&self, e: &LogEntry) -> Result<Option<LockRecord>, SendError> {
        let store = self.store.clone();
        let (b, k, v) = (e.bucket.clone(), e.key.clone(), e.version_id);
        let r = tokio::task::spawn_blocking(move || {
            if store.meta().version(&b, &k, &v)?.is_none() {
                return Ok(None);
            }
            store.meta().lock(&b, &k, &v).map(Some)
        })
        .await;
        match r {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => Err(SendError::Local(format!("local read: {e}"))),
            Err(e) => Err(SendError::Local(format!("local read: {e}"))),
        }
    }

    async fn local_tags(&self, e: &LogEntry) -> Result<Vec<(String, String)>, SendError> {
        let store = self.store.clone();
        let (b, k, v) = (e.bucket.clone(), e.key.clone(), e.version_id);
        match tokio::task::spawn_blocking(move || store.meta().tags(&b, &k, &v)).await {
            Ok(Ok(t)) => Ok(t.tags),
            // Never an empty set for one that could not be read: it would wipe the
            // replica's.
            Ok(Err(err)) => Err(SendError::Local(format!("local tags: {err}"))),
            Err(err) => Err(SendError::Local(format!("local tags: {err}"))),
        }
    }

    /// The parts' digests of a version written before they were kept: one verified read.
    async fn digest_parts(
        &self,
        e: &LogEntry,
        record: &VersionRecord,
    ) -> Result<Vec<(u64, [u8; 32])>, SendError> {
        let lens: Vec<u64> = if record.segments.len() > 1 {
            record.segments.iter().map(|s| s.geometry.len).collect()
        } else {
            vec![record.size]
        };
        let read = self
            .store
            .get_object(&e.bucket, &e.key, Some(&VersionRef::Id(e.version_id)), None)
            .await
            .map_err(|err| SendError::Permanent(DeadReason::WaitingRepair, err.to_string()))?;
        let mut body = read.body;
        let mut out = Vec::with_capacity(lens.len());
        let mut i = 0;
        let mut left = lens.first().copied().unwrap_or(0);
        let mut h = blake3::Hasher::new();
        while let Some(chunk) = body.next().await {
            let mut chunk: &[u8] = &chunk
                .map_err(|err| SendError::Permanent(DeadReason::WaitingRepair, err.to_string()))?;
            while !chunk.is_empty() && i < lens.len() {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
                h.update(&chunk[..take]);
                left -= take as u64;
                chunk = &chunk[take..];
                if left == 0 {
                    out.push((lens[i], *h.finalize().as_bytes()));
                    h = blake3::Hasher::new();
                    i += 1;
                    left = lens.get(i).copied().unwrap_or(0);
                }
            }
        }
        while out.len() < lens.len() {
            out.push((lens[out.len()], *h.finalize().as_bytes()));
            h = blake3::Hasher::new();
        }
        Ok(out)
    }
}

/// The parts' lengths and digests as the record keeps them, when it has them all.
fn known_parts(r: &VersionRecord) -> Option<Vec<(u64, [u8; 32])>> {
    if r.segments.len() > 1 {
        (r.blake3.len() == r.segments.len()).then(|| {
            r.segments
                .iter()
                .zip(&r.blake3)
                .map(|(s, d)| (s.geometry.len, *d))
                .collect()
        })
    } else {
        (r.blake3.len() == 1).then(|| vec![(r.size, r.blake3[0])])
    }
}

/// Exponential backoff with jitter after `n` transient failures in a row: 1 s doubling up
/// to a minute, times a random factor in [0.5, 1).
fn backoff(n: u32) -> Duration {
    let base = Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(Duration::from_secs(60));
    base.mul_f64(rand::random_range(0.5..1.0))
}

/// A body stream that notes whether the local read failed, and holds each chunk until the
/// peer's token bucket lets it go (so the limit holds on the bytes sent, whatever the
/// object sizes).
struct Watched {
    inner: crate::store::Body,
    failed: Arc<AtomicBool>,
    limit: Arc<Mutex<TokenBucket>>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    held: Option<Bytes>,
}

impl Watched {
    /// `inner` held to `limit`; the flag tells whether its read failed.
    fn new(inner: crate::store::Body, limit: &Arc<Mutex<TokenBucket>>) -> (Self, Arc<AtomicBool>) {
        let failed = Arc::new(AtomicBool::new(false));
        let w = Self {
            inner,
            failed: failed.clone(),
            limit: limit.clone(),
            sleep: None,
            held: None,
        };
        (w, failed)
    }
}

/// How a failed local read of a version to send is answered: `Ok` when the version is
/// gone (an unprotected version removed before it was sent: nothing left to replicate),
/// parked `waiting_repair` when it cannot be read, a local error otherwise.
fn read_failure(err: StoreError) -> Result<(), SendError> {
    match err {
        StoreError::NoSuchVersion { .. } | StoreError::NoSuchKey { .. } => Ok(()),
        StoreError::Unreadable { .. } | StoreError::InlineCorrupt { .. } => Err(
            SendError::Permanent(DeadReason::WaitingRepair, err.to_string()),
        ),
        err => Err(SendError::Local(format!("local read: {err}"))),
    }
}

impl Stream for Watched {
    type Item = io::Result<Bytes>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
            if let Some(b) = self.held.take() {
                return Poll::Ready(Some(Ok(b)));
            }
        }
        let p = self.inner.as_mut().poll_next(cx);
        match p {
            Poll::Ready(Some(Ok(chunk))) => {
                let wait = self
                    .limit
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(chunk.len() as u64);
                if wait.is_zero() {
                    return Poll::Ready(Some(Ok(chunk)));
                }
                let mut sleep = Box::pin(tokio::time::sleep(wait));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Ok(chunk)));
                }
                self.sleep = Some(sleep);
                self.held = Some(chunk);
                Poll::Pending
            }
            Poll::Ready(Some(Err(e))) => {
                self.failed.store(true, Ordering::SeqCst);
                Poll::Ready(Some(Err(e)))
            }
            other => other,
        }
    }
}

/// The rate a shared token bucket holds.
fn bucket_rate(b: &Arc<Mutex<TokenBucket>>) -> Option<u64> {
    b.lock().unwrap_or_else(|e| e.into_inner()).rate
}

/// A moving average of bytes per second over flushes.
#[derive(Debug)]
struct Ewma {
    rate: f64,
    at: Instant,
}

impl Default for Ewma {
    fn default() -> Self {
        Self {
            rate: 0.0,
            at: Instant::now(),
        }
    }
}

impl Ewma {
    #[allow(clippy::cast_precision_loss)]
    fn add(&mut self, bytes: u64) {
        let dt = self.at.elapsed().as_secs_f64();
        if dt < 0.05 {
            return;
        }
        self.at = Instant::now();
        let inst = bytes as f64 / dt;
        let alpha = (dt / 60.0).min(1.0);
        self.rate += alpha * (inst - self.rate);
    }

    fn rate(&self) -> f64 {
        self.rate
    }
}

/// A running sender and what stops it.
type Running = (Arc<Sender>, watch::Sender<bool>);

/// Every peer's sender, started and stopped as peers come and go.
#[derive(Debug)]
pub struct Senders {
    store: Store,
    alerts: Option<Arc<Alerts>>,
    connector: Arc<dyn Connector>,
    shutdown: watch::Receiver<bool>,
    running: Mutex<BTreeMap<String, Running>>,
}

impl Senders {
    /// No sender yet; [`Senders::sync`] starts them.
    pub fn new(
        store: Store,
        alerts: Option<Arc<Alerts>>,
        connector: Arc<dyn Connector>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            store,
            alerts,
            connector,
            shutdown,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a sender for each of `peers` (with its key's secret) that has none, and
    /// stops those of peers no longer listed. Must run inside a tokio runtime.
    pub fn sync(&self, peers: Vec<(PeerRecord, String)>) {
        let mut running = self.lock();
        let wanted: HashMap<String, ()> = peers.iter().map(|(p, _)| (p.name.clone(), ())).collect();
        running.retain(|name, (_, stop)| {
            let keep = wanted.contains_key(name);
            if !keep {
                let _ = stop.send(true);
            }
            keep
        });
        for (peer, secret) in peers {
            if running
                .get(&peer.name)
                .is_some_and(|(s, _)| s.peer() == &peer)
            {
                continue;
            }
            if let Some((_, stop)) = running.remove(&peer.name) {
                let _ = stop.send(true);
            }
            let transport = match self.connector.connect(&peer, &secret) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(peer = %peer.name, error = %e, "cannot make a replication client");
                    continue;
                }
            };
            let sender = Arc::new(Sender::new(
                self.store.clone(),
                peer.clone(),
                transport,
                self.alerts.clone(),
            ));
            let (stop_tx, stop_rx) = watch::channel(false);
            let mut outer = self.shutdown.clone();
            let s = sender.clone();
            tokio::spawn(async move {
                // Stops on the node's shutdown or when the peer is removed.
                let (tx, rx) = watch::channel(false);
                let mut stop_rx = stop_rx;
                let watcher = tokio::spawn(async move {
                    tokio::select! {
                        _ = outer.wait_for(|s| *s) => {}
                        _ = stop_rx.wait_for(|s| *s) => {}
                    }
                    let _ = tx.send(true);
                });
                s.run(rx).await;
                watcher.abort();
            });
            running.insert(peer.name.clone(), (sender, stop_tx));
        }
    }

    /// Each running sender's status.
    pub fn statuses(&self) -> Vec<SenderStatus> {
        self.lock().values().map(|(s, _)| s.status()).collect()
    }

    /// The sender of the peer named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Sender>> {
        self.lock().get(name).map(|(s, _)| s.clone())
    }

    /// The transport to a peer, to ask it about a bucket before a rule names it.
    pub fn transport(&self, name: &str) -> Option<Arc<dyn Transport>> {
        self.lock().get(name).map(|(s, _)| s.transport.clone())
    }
}
