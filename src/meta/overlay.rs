//! Batches staged in memory ahead of the engine: the write half of group commit.
//!
//! A guarded command's batch is *staged* — visible to every read through [`Overlay`] at
//! once — and reaches the engine only at the next [`KvEngine::sync`], merged with every
//! other batch staged meanwhile into one engine write (one write-ahead-log record, one
//! memtable pass) followed by one fsync. The write guard is then held for a command's
//! reads and decision only, not for the engine's write (`../shared/design/layout.md`
//! §3: a group of commands applied as one batch through an overlay of those not yet
//! written). Nothing staged is acknowledged before the sync that writes it returns, so a
//! crash loses only unacknowledged batches, each whole (a merged group is one atomic
//! engine write).

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, RwLock};

use super::engine::{KvEngine, Visit};
use super::{Batch, Cf, MetaError, Op};

/// The latest staged operation per key of one family: `Some(value)` a put, `None` a delete.
type Writes = HashMap<Cf, BTreeMap<Vec<u8>, Option<Vec<u8>>>>;

/// What readers see above the engine: the batches staged since the last flush
/// (`pending`), and those a flush is writing (`flushing`, until the engine holds them).
#[derive(Default)]
struct Layers {
    pending: Writes,
    flushing: Arc<Writes>,
}

impl Layers {
    /// The staged operation on `key`, the newest layer first.
    fn get(&self, cf: Cf, key: &[u8]) -> Option<Option<Vec<u8>>> {
        [&self.pending, &*self.flushing]
            .into_iter()
            .find_map(|w| w.get(&cf).and_then(|m| m.get(key)).cloned())
    }

    /// Every staged operation on keys from `from` up in `cf`, in key order, the newest
    /// layer's winning.
    fn range(&self, cf: Cf, from: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut merged: BTreeMap<&[u8], &Option<Vec<u8>>> = BTreeMap::new();
        for w in [&*self.flushing, &self.pending] {
            if let Some(m) = w.get(&cf) {
                for (k, v) in m
                    .range::<[u8], _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
                {
                    merged.insert(k, v);
                }
            }
        }
        merged
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.clone()))
            .collect()
    }
}

fn stage_into(w: &mut Writes, ops: Vec<Op>) {
    for op in ops {
        match op {
            Op::Put(cf, k, v) => w.entry(cf).or_default().insert(k, Some(v)),
            Op::Delete(cf, k) => w.entry(cf).or_default().insert(k, None),
        };
    }
}

/// The engine write of a merged group: every key's latest operation.
fn batch_of(w: &Writes) -> Batch {
    let mut b = Batch::default();
    for (cf, m) in w {
        for (k, v) in m {
            match v {
                Some(v) => b.put(*cf, k.clone(), v.clone()),
                None => b.delete(*cf, k.clone()),
            }
        }
    }
    b
}

/// A [`KvEngine`] with staged batches above it (see the module). Every write of `Meta`
/// goes through it, staged or not, so that no batch reaches the engine before one
/// staged earlier.
pub struct Overlay {
    base: Box<dyn KvEngine>,
    layers: RwLock<Layers>,
    /// One flush at a time: it moves `pending` to `flushing`, writes, then clears.
    flush: Mutex<()>,
}

impl Overlay {
    /// `base` with nothing staged.
    pub fn new(base: Box<dyn KvEngine>) -> Self {
        Self {
            base,
            layers: RwLock::new(Layers::default()),
            flush: Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Layers> {
        self.layers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn layers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Layers> {
        self.layers.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `batch` visible to every read at once; the engine gets it at the next
    /// [`KvEngine::sync`] or write. Cannot fail: the engine's errors come with the flush.
    pub fn stage(&self, batch: Batch) {
        stage_into(&mut self.layers_mut().pending, batch.ops);
    }

    /// Writes everything staged, then `extra` (later operations win), as one engine
    /// write; readers see `extra` with the group while it is written, never half of it.
    /// On failure the group stays staged (newer batches above it), to be written by a
    /// later flush: whether the engine kept any of it is not known.
    fn flush_with(&self, extra: Option<Batch>, sync: bool) -> Result<(), MetaError> {
        let _one = self.flush.lock().unwrap_or_else(|p| p.into_inner());
        let group = {
            let mut l = self.layers_mut();
            let mut pending = std::mem::take(&mut l.pending);
            if let Some(extra) = extra {
                stage_into(&mut pending, extra.ops);
            }
            l.flushing = Arc::new(pending);
            Arc::clone(&l.flushing)
        };
        let b = batch_of(&group);
        let written = if b.ops.is_empty() {
            Ok(())
        } else {
            self.base.write(b, sync)
        };
        let mut l = self.layers_mut();
        let group = std::mem::take(&mut l.flushing);
        if written.is_err() {
            let newer = std::mem::replace(&mut l.pending, Arc::unwrap_or_clone(group));
            for (cf, m) in newer {
                l.pending.entry(cf).or_default().extend(m);
            }
        }
        written
    }
}

impl KvEngine for Overlay {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        if let Some(staged) = self.read().get(cf, key) {
            return Ok(staged);
        }
        // A flush clears `flushing` only after the engine holds it: nothing is missed.
        self.base.get(cf, key)
    }

    fn write(&self, batch: Batch, sync: bool) -> Result<(), MetaError> {
        self.flush_with(Some(batch), sync)
    }

    fn sync(&self) -> Result<(), MetaError> {
        self.flush_with(None, false)?;
        self.base.sync()
    }

    fn scan(&self, cf: Cf, from: &[u8], f: &mut Visit<'_>) -> Result<(), MetaError> {
        // Copied out: `f` may read the overlay again.
        let staged = self.read().range(cf, from);
        if staged.is_empty() {
            return self.base.scan(cf, from, f);
        }
        let mut next = staged.into_iter().peekable();
        let mut stopped = false;
        self.base.scan(cf, from, &mut |k, v| {
            while let Some((sk, sv)) = next.next_if(|(sk, _)| sk.as_slice() <= k) {
                let same = sk.as_slice() == k;
                if let Some(sv) = sv
                    && f(&sk, &sv).is_break()
                {
                    stopped = true;
                    return ControlFlow::Break(());
                }
                if same {
                    return ControlFlow::Continue(());
                }
            }
            let flow = f(k, v);
            stopped = flow.is_break();
            flow
        })?;
        if !stopped {
            for (sk, sv) in next {
                if let Some(sv) = sv
                    && f(&sk, &sv).is_break()
                {
                    break;
                }
            }
        }
        Ok(())
    }
}
