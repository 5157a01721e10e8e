//! What the background workers share: the throttle, the controls (run, pause, resume,
//! cancel) and the one runner every background job runs on (scrub, lifecycle, repair,
//! restore drills, the watchdog, alert delivery), after Garage's worker: a pass each
//! interval or when asked, resumable from a checkpoint, error backoff, a failure counted,
//! shown and alerted, an exit deadline at shutdown, and a scope.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

/// Spreads work so that at most `rate` units are done per second.
pub struct Throttle {
    rate: u32,
    start: Instant,
    done: u64,
}

impl Throttle {
    /// A throttle of `rate` units a second (at least 1), counting from now.
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate.max(1),
            start: Instant::now(),
            done: 0,
        }
    }

    /// Counts `units` more done and, if that is ahead of the rate, sleeps until it is not
    /// (at most a second per call, so a pass still sees a stop in good time).
    pub fn wait(&mut self, units: u64) {
        self.done += units;
        let due = Duration::from_secs_f64(self.done as f64 / f64::from(self.rate));
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead.min(Duration::from_secs(1)));
        }
    }
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassEnd {
    /// Every key was handled.
    Finished,
    /// Stopped early by shutdown, pause or cancel; its checkpoint is kept (but on cancel).
    Stopped,
    /// It met an error it could not go past (a metadata read or write, a checkpoint that
    /// could not be saved). Its checkpoint is kept: the next pass resumes there. Never
    /// reported as a pass done.
    Failed(String),
}

/// The controls every pass-based worker shares: run now, pause, resume, cancel, and
/// waiting for a pass to end.
#[derive(Debug, Default)]
pub struct Control {
    paused: AtomicBool,
    cancel: AtomicBool,
    running: AtomicBool,
    /// Passes finished.
    passes: AtomicU64,
    /// Passes that ended, finished or failed.
    ended: AtomicU64,
    failed: AtomicU64,
    /// Why the last pass that ended failed; `None` once one finishes.
    last_failure: std::sync::Mutex<Option<String>>,
    /// A once-per-cluster worker whose last pass was not started: another node holds
    /// the cluster's lease.
    standby: AtomicBool,
    trigger: Notify,
    done: Notify,
}

impl Control {
    /// Whether the worker is paused: its pass stops at the next key and no pass starts
    /// until it is resumed.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Whether a pass is under way.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Whether the last pass due was not started because another node holds the
    /// cluster's lease ([`PassWorker::holds_lease`]).
    pub fn standby(&self) -> bool {
        self.standby.load(Ordering::SeqCst)
    }

    /// A pass due and not started: this node stands by.
    fn stood_by(&self) {
        self.standby.store(true, Ordering::SeqCst);
        self.done.notify_waiters();
    }

    /// Pausing stops a pass at its next key (its checkpoint kept); resuming continues it.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        if !paused {
            self.trigger.notify_one();
        }
    }

    /// Stops the pass in progress at its next key and forgets it (no resume).
    pub fn cancel(&self) {
        if self.running() {
            self.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Starts a pass now (after the one running, if any).
    pub fn run_now(&self) {
        self.trigger.notify_one();
    }

    /// Whether a pass must stop at this key: shutdown, pause or cancel.
    pub fn should_stop(&self, stop: &watch::Receiver<bool>) -> bool {
        *stop.borrow() || self.paused() || self.cancel.load(Ordering::SeqCst)
    }

    /// Passes that failed since the process started.
    pub fn failed_passes(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// Why the last pass that ended failed, if it did.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn ended(&self, end: Result<(), String>) {
        match &end {
            Ok(()) => self.passes.fetch_add(1, Ordering::SeqCst),
            Err(_) => self.failed.fetch_add(1, Ordering::SeqCst),
        };
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = end.err();
        self.ended.fetch_add(1, Ordering::SeqCst);
        self.done.notify_waiters();
    }

    /// Starts a pass and waits for one to end: `None` at once while paused, or when the
    /// pass was not started on a node standing by; else `Ok` if it finished or
    /// `Err(reason)` if it failed.
    pub async fn run_and_wait(&self) -> Option<Result<(), String>> {
        if self.paused() {
            return None;
        }
        let before = self.ended.load(Ordering::SeqCst);
        loop {
            let done = self.done.notified();
            self.trigger.notify_one();
            done.await;
            if self.ended.load(Ordering::SeqCst) > before {
                return Some(self.last_failure().map_or(Ok(()), Err));
            }
            if self.standby() {
                return None;
            }
        }
    }
}

/// The wait before retrying after the `n`th failed pass in a row: 10 s doubling, never
/// more than the worker's interval nor an hour.
pub fn error_backoff(n: u32, interval: Duration) -> Duration {
    let secs = 10u64.saturating_mul(1 << n.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(3600)).min(interval.max(Duration::from_secs(1)))
}

/// Where a worker runs once a cluster spans nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On every node, over that node's own state (its disks, its queues).
    Node,
    /// Once per cluster (on the node that holds the cluster's lease), over cluster-wide
    /// state. On a single node, there.
    Cluster,
}

/// How often a once-per-cluster worker standing by looks at the lease again.
pub const STANDBY_RECHECK: Duration = Duration::from_secs(5);

/// How long the runner waits at shutdown for a pass to stop at its next key before it
/// gives up on it (the pass's checkpoint, saved as it goes, is where the next start
/// resumes).
pub const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// A worker that works in passes, each resumable from a checkpoint.
pub trait PassWorker: Send + Sync + 'static {
    /// What a pass resumes from; `()` for workers whose state is their queue.
    type Checkpoint: Send + 'static;

    /// The worker's name in statuses, alerts and metrics (`scrub`, `lifecycle`).
    fn name(&self) -> &'static str;
    /// Where it runs in a cluster.
    fn scope(&self) -> Scope {
        Scope::Node
    }
    /// For a [`Scope::Cluster`] worker: whether this node holds the cluster's lease now
    /// (`Store::holds_lease`: the Raft leader; always on one node). Its passes start only
    /// while it does; elsewhere it stands by.
    fn holds_lease(&self) -> bool {
        true
    }
    /// The worker's controls, which the runner and the admin API share.
    fn control(&self) -> &Control;
    /// Where a failed pass is alerted.
    fn alerts(&self) -> Option<&crate::alert::Alerts>;
    /// Time between scheduled passes.
    fn interval(&self) -> Duration;
    /// How long shutdown waits for a pass to stop ([`EXIT_DEADLINE`]).
    fn exit_deadline(&self) -> Duration {
        EXIT_DEADLINE
    }
    /// Whether a pass runs as soon as the worker starts (not only after an interval).
    fn pass_at_start(&self) -> bool {
        false
    }
    /// The checkpoint an interrupted or failed pass left, if any: the next pass resumes
    /// from it.
    fn load_checkpoint(&self) -> Option<Self::Checkpoint> {
        None
    }
    /// Forgets the checkpoint (a cancelled pass), so the next pass starts from the top.
    fn clear_checkpoint(&self) {}
    /// One pass (from `resume`); see [`PassEnd`] and [`Control::should_stop`].
    fn pass(&self, resume: Option<Self::Checkpoint>, stop: &watch::Receiver<bool>) -> PassEnd;

    /// Pause (the pass in progress stops at its next key and resumes later) or resume.
    fn set_paused(&self, paused: bool) {
        self.control().set_paused(paused);
    }

    /// Stops the pass in progress at its next key and forgets it.
    fn cancel(&self) {
        self.control().cancel();
    }

    /// Starts a pass now (after the one running, if any).
    fn run_now(&self) {
        self.control().run_now();
    }
}

/// The runner of every pass worker: a pass each interval or when asked; a pass cut short
/// by a crash or shutdown resumes from its checkpoint at the next start, a paused one when
/// resumed, a cancelled one never, a failed one after an error backoff ([`error_backoff`]),
/// its failure counted, shown in the worker's status and alerted.
pub async fn run<W: PassWorker>(w: Arc<W>, mut shutdown: watch::Receiver<bool>) {
    let mut resume = w.load_checkpoint();
    // A pass to continue at once (an interrupted one, or the retry after a failure).
    let mut pending = resume.is_some() || w.pass_at_start();
    let mut failures_in_row = 0u32;
    loop {
        let c = w.control();
        if !pending || c.paused() {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = c.trigger.notified() => {}
                _ = tokio::time::sleep(w.interval()) => {}
            }
        }
        if w.control().paused() {
            continue;
        }
        if w.scope() == Scope::Cluster && !w.holds_lease() {
            // Another node runs it (from the top: checkpoints are each node's). The pass
            // stays due and the lease is looked at again shortly, so that a node taking
            // the lease runs what fell due meanwhile without waiting a whole interval.
            w.control().stood_by();
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = w.control().trigger.notified() => {}
                _ = tokio::time::sleep(STANDBY_RECHECK) => {}
            }
            pending = true;
            continue;
        }
        w.control().standby.store(false, Ordering::SeqCst);
        pending = false;
        let from = resume.take();
        let me = w.clone();
        let stop = shutdown.clone();
        w.control().running.store(true, Ordering::SeqCst);
        let mut pass = tokio::task::spawn_blocking(move || me.pass(from, &stop));
        let joined = tokio::select! {
            j = &mut pass => Some(j),
            () = async {
                // A sender dropped without a shutdown is no shutdown: the pass runs on.
                if shutdown.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(w.exit_deadline()).await;
            } => None,
        };
        let Some(joined) = joined else {
            // The pass did not stop in time; its thread is left to the process's exit.
            tracing::warn!(
                worker = w.name(),
                "pass still running at the exit deadline; left behind"
            );
            w.control().running.store(false, Ordering::SeqCst);
            return;
        };
        let end = joined.unwrap_or_else(|e| PassEnd::Failed(format!("the pass panicked: {e}")));
        let c = w.control();
        c.running.store(false, Ordering::SeqCst);
        match end {
            PassEnd::Finished => {
                failures_in_row = 0;
                c.ended(Ok(()));
            }
            PassEnd::Failed(reason) => {
                failures_in_row += 1;
                tracing::error!(worker = w.name(), %reason, "worker pass failed");
                if let Some(a) = w.alerts() {
                    a.raise(crate::alert::Alert::WorkerPassFailed {
                        worker: w.name().to_owned(),
                        reason: reason.clone(),
                    });
                }
                c.ended(Err(reason));
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return,
                    _ = c.trigger.notified() => {}
                    _ = tokio::time::sleep(error_backoff(failures_in_row, w.interval())) => {}
                }
                resume = w.load_checkpoint();
                pending = true;
            }
            PassEnd::Stopped => {
                if *shutdown.borrow() {
                    return;
                }
                if c.cancel.swap(false, Ordering::SeqCst) {
                    w.clear_checkpoint();
                    tracing::info!(worker = w.name(), "worker pass cancelled");
                    continue;
                }
                resume = w.load_checkpoint();
                pending = resume.is_some();
            }
        }
    }
}

/// What every worker shows, whatever it does (`/v1/workers`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStatus {
    /// The worker's name ([`PassWorker::name`]).
    pub name: &'static str,
    /// Where it runs in a cluster.
    pub scope: Scope,
    /// A pass is under way.
    pub running: bool,
    /// Paused by an administrator: no pass runs until it is resumed.
    pub paused: bool,
    /// Passes finished since the process started.
    pub passes: u64,
    /// Passes that failed since the process started.
    pub failed_passes: u64,
    /// Why the last pass that ended failed; `None` once one finishes.
    pub last_failure: Option<String>,
    /// Seconds from the end of one pass to the start of the next.
    pub interval_secs: u64,
    /// Once per cluster, and another node holds the cluster's lease: passes run there.
    pub standby: bool,
}

/// The common status of `w`.
pub fn status_of<W: PassWorker + ?Sized>(w: &W) -> WorkerStatus {
    let c = w.control();
    WorkerStatus {
        name: w.name(),
        scope: w.scope(),
        running: c.running(),
        paused: c.paused(),
        passes: c.passes.load(Ordering::SeqCst),
        failed_passes: c.failed_passes(),
        last_failure: c.last_failure(),
        interval_secs: w.interval().as_secs(),
        standby: w.scope() == Scope::Cluster && !w.holds_lease(),
    }
}

/// A worker's checkpoint from the `node` family, if there is a readable one.
pub fn load_checkpoint<R: crate::meta::Record>(meta: &crate::meta::Meta, key: &str) -> Option<R> {
    meta.node_get(key)
        .ok()
        .flatten()
        .and_then(|b| R::decode(&b).ok())
}

/// The status of a pass worker that reports each pass (scrub, lifecycle): its own
/// fields, plus the runner's pause state and failures copied in when it is read.
pub(crate) trait PassStatus: Clone {
    /// What one finished pass reports.
    type Report: Clone + Default;
    /// The report of the last finished pass.
    fn last_report(&self) -> Option<Self::Report>;
    /// Copies the runner's state in.
    fn set_runner(&mut self, paused: bool, failed_passes: u64, last_failure: Option<String>);
}

/// A worker's status behind its lock, as read: a copy with the runner's state.
pub(crate) fn read_status<S: PassStatus>(status: &std::sync::Mutex<S>, control: &Control) -> S {
    let mut st = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    st.set_runner(
        control.paused(),
        control.failed_passes(),
        control.last_failure(),
    );
    st
}

/// Starts a pass and waits for it to end: `None` at once while paused, the pass's report
/// if it finished, why not if it failed.
pub(crate) async fn run_and_report<S: PassStatus>(
    status: &std::sync::Mutex<S>,
    control: &Control,
) -> Option<Result<S::Report, String>> {
    let end = control.run_and_wait().await?;
    Some(end.map(|()| {
        status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_report()
            .unwrap_or_default()
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// A pass that does not look at shutdown: it runs until `release`.
    struct Stubborn {
        control: Control,
        started: AtomicBool,
        release: AtomicBool,
        finished: AtomicBool,
    }

    impl PassWorker for Stubborn {
        type Checkpoint = ();
        fn name(&self) -> &'static str {
            "stubborn"
        }
        fn scope(&self) -> Scope {
            Scope::Cluster
        }
        fn control(&self) -> &Control {
            &self.control
        }
        fn alerts(&self) -> Option<&crate::alert::Alerts> {
            None
        }
        fn interval(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn exit_deadline(&self) -> Duration {
            Duration::from_millis(50)
        }
        fn pass_at_start(&self) -> bool {
            true
        }
        fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> PassEnd {
            self.started.store(true, Ordering::SeqCst);
            while !self.release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.finished.store(true, Ordering::SeqCst);
            PassEnd::Finished
        }
    }

    /// Shutdown does not wait forever for a pass that will not stop: the runner returns
    /// at its exit deadline, with the pass still running, and says it is not running.
    #[test]
    fn the_runner_leaves_a_pass_that_will_not_stop_at_its_exit_deadline() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let w = Arc::new(Stubborn {
            control: Control::default(),
            started: AtomicBool::new(false),
            release: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        });
        let (tx, rx) = watch::channel(false);
        let runner = rt.spawn(run(w.clone(), rx));
        while !w.started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let st = status_of(w.as_ref());
        assert!(st.running && st.scope == Scope::Cluster && st.name == "stubborn");
        tx.send(true).expect("shutdown");
        rt.block_on(runner).expect("runner");
        assert!(
            !w.finished.load(Ordering::SeqCst),
            "the runner waited for the pass"
        );
        assert!(!status_of(w.as_ref()).running);
        w.release.store(true, Ordering::SeqCst);
    }

    /// A once-per-cluster worker whose lease a test hands out.
    struct Leased {
        control: Control,
        lease: AtomicBool,
        passes: std::sync::atomic::AtomicU32,
    }

    impl PassWorker for Leased {
        type Checkpoint = ();
        fn name(&self) -> &'static str {
            "leased"
        }
        fn scope(&self) -> Scope {
            Scope::Cluster
        }
        fn holds_lease(&self) -> bool {
            self.lease.load(Ordering::SeqCst)
        }
        fn control(&self) -> &Control {
            &self.control
        }
        fn alerts(&self) -> Option<&crate::alert::Alerts> {
            None
        }
        fn interval(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn pass_at_start(&self) -> bool {
            true
        }
        fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> PassEnd {
            self.passes.fetch_add(1, Ordering::SeqCst);
            PassEnd::Finished
        }
    }

    /// A once-per-cluster worker runs no pass, not even the one due at start or one asked
    /// for, while another node holds the lease; it says it stands by. With the lease, it
    /// runs them.
    #[test]
    fn a_cluster_worker_stands_by_without_the_lease() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let w = Arc::new(Leased {
            control: Control::default(),
            lease: AtomicBool::new(false),
            passes: 0.into(),
        });
        let (tx, rx) = watch::channel(false);
        let runner = rt.spawn(run(w.clone(), rx));
        assert_eq!(rt.block_on(w.control.run_and_wait()), None);
        assert_eq!(w.passes.load(Ordering::SeqCst), 0);
        let st = status_of(w.as_ref());
        assert!(st.standby && st.passes == 0, "{st:?}");
        w.lease.store(true, Ordering::SeqCst);
        assert_eq!(rt.block_on(w.control.run_and_wait()), Some(Ok(())));
        assert!(w.passes.load(Ordering::SeqCst) >= 1);
        let st = status_of(w.as_ref());
        assert!(!st.standby && st.passes >= 1, "{st:?}");
        tx.send(true).expect("shutdown");
        rt.block_on(runner).expect("runner");
    }
}
