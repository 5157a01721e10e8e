//! What the background workers share: the throttle, the controls (run, pause, resume,
//! cancel) and the runner of pass-based workers (lifecycle, scrub), after Garage's worker.

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
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate.max(1),
            start: Instant::now(),
            done: 0,
        }
    }

    pub fn wait(&mut self, units: u64) {
        self.done += units;
        let due = Duration::from_secs_f64(self.done as f64 / f64::from(self.rate));
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead.min(Duration::from_secs(1)));
        }
    }
}

/// The controls every pass-based worker shares: run now, pause, resume, cancel, and
/// waiting for a pass to finish.
#[derive(Debug, Default)]
pub struct Control {
    paused: AtomicBool,
    cancel: AtomicBool,
    running: AtomicBool,
    passes: AtomicU64,
    trigger: Notify,
    done: Notify,
}

impl Control {
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
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

    /// Starts a pass and waits for one to finish; false at once while paused.
    pub async fn run_and_wait(&self) -> bool {
        if self.paused() {
            return false;
        }
        let before = self.passes.load(Ordering::SeqCst);
        loop {
            let done = self.done.notified();
            self.trigger.notify_one();
            done.await;
            if self.passes.load(Ordering::SeqCst) > before {
                return true;
            }
        }
    }
}

/// A worker that works in passes, each resumable from a checkpoint.
pub trait PassWorker: Send + Sync + 'static {
    type Checkpoint: Send + 'static;

    fn control(&self) -> &Control;
    /// Time between scheduled passes.
    fn interval(&self) -> Duration;
    fn load_checkpoint(&self) -> Option<Self::Checkpoint>;
    fn clear_checkpoint(&self);
    /// One pass (from `resume`); false if it stopped early (see [`Control::should_stop`]).
    fn pass(&self, resume: Option<Self::Checkpoint>, stop: &watch::Receiver<bool>) -> bool;

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
/// resumed, a cancelled one never.
pub async fn run<W: PassWorker>(w: Arc<W>, mut shutdown: watch::Receiver<bool>) {
    let mut resume = w.load_checkpoint();
    loop {
        let c = w.control();
        if resume.is_none() || c.paused() {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = c.trigger.notified() => {}
                _ = tokio::time::sleep(w.interval()) => {}
            }
        }
        if w.control().paused() {
            continue;
        }
        let from = resume.take();
        let me = w.clone();
        let stop = shutdown.clone();
        w.control().running.store(true, Ordering::SeqCst);
        let finished = tokio::task::spawn_blocking(move || me.pass(from, &stop))
            .await
            .unwrap_or(false);
        let c = w.control();
        c.running.store(false, Ordering::SeqCst);
        if finished {
            c.passes.fetch_add(1, Ordering::SeqCst);
            c.done.notify_waiters();
            continue;
        }
        if *shutdown.borrow() {
            return;
        }
        if c.cancel.swap(false, Ordering::SeqCst) {
            w.clear_checkpoint();
            tracing::info!("worker pass cancelled");
            continue;
        }
        resume = w.load_checkpoint();
    }
}

/// A worker's checkpoint from the `system` family, if there is a readable one.
pub fn load_checkpoint<R: crate::meta::Record>(meta: &crate::meta::Meta, key: &str) -> Option<R> {
    meta.system_get(key)
        .ok()
        .flatten()
        .and_then(|b| R::decode(&b).ok())
}
