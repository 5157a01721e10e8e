//! The key-value engine under [`super::Meta`]: keys ordered byte-wise within each column
//! family, atomic batches. RocksDB (`meta/rocks.rs`) is the engine of a node; the
//! in-memory one ([`MemoryEngine`]) runs the same conformance suite and serves tests
//! (nothing in it survives the process: never a node's metadata). A replicated engine
//! (the Raft state machine) will stand beside them.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::RwLock;

use super::{Batch, Cf, MetaError, Op};

/// What a scan calls with each `(key, value)`: continue or stop.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// One column family's keys and values, in key order.
type Family = BTreeMap<Vec<u8>, Vec<u8>>;

/// What `Meta` needs of a storage engine.
pub trait KvEngine: Send + Sync + 'static {
    /// The value of `key` in `cf`, if any.
    ///
    /// # Errors
    /// [`MetaError::Engine`] when the engine cannot read.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError>;

    /// Applies every operation of `batch`, or none of them; with `sync`, the batch is
    /// durable when this returns.
    ///
    /// # Errors
    /// [`MetaError::Engine`] when the engine cannot write; nothing is applied then.
    fn write(&self, batch: Batch, sync: bool) -> Result<(), MetaError>;

    /// Makes every batch written before this call durable (the write-ahead log fsynced):
    /// the second half of a group commit, after writes made without `sync`.
    ///
    /// # Errors
    /// [`MetaError::Engine`] when the engine cannot sync.
    fn sync(&self) -> Result<(), MetaError>;

    /// Visits `(key, value)` in key order from `from` upward while `f` continues. A scan
    /// need not be a snapshot (RocksDB's is; the in-memory engine's sees batches applied
    /// while it runs): callers that need one decision over several keys read them under
    /// `Meta`'s write guard.
    ///
    /// # Errors
    /// [`MetaError::Engine`] when the engine cannot read.
    fn scan(&self, cf: Cf, from: &[u8], f: &mut Visit<'_>) -> Result<(), MetaError>;
}

/// An engine in memory: nothing survives the process. For tests.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    families: RwLock<HashMap<Cf, Family>>,
}

impl MemoryEngine {
    fn poisoned() -> MetaError {
        MetaError::Engine {
            op: "memory",
            message: "a writer panicked".into(),
        }
    }
}

/// How many entries a scan copies out under the lock at a time: the callback runs
/// without it, so it may read the engine again.
const SCAN_CHUNK: usize = 256;

impl KvEngine for MemoryEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        let f = self.families.read().map_err(|_| Self::poisoned())?;
        Ok(f.get(&cf).and_then(|m| m.get(key)).cloned())
    }

    fn sync(&self) -> Result<(), MetaError> {
        Ok(())
    }

    fn write(&self, batch: Batch, _sync: bool) -> Result<(), MetaError> {
        let mut f = self.families.write().map_err(|_| Self::poisoned())?;
        for op in batch.ops {
            match op {
                Op::Put(cf, k, v) => {
                    f.entry(cf).or_default().insert(k, v);
                }
                Op::Delete(cf, k) => {
                    if let Some(m) = f.get_mut(&cf) {
                        m.remove(&k);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan(&self, cf: Cf, from: &[u8], f: &mut Visit<'_>) -> Result<(), MetaError> {
        let mut start = std::ops::Bound::Included(from.to_vec());
        loop {
            let chunk: Vec<(Vec<u8>, Vec<u8>)> = {
                let fams = self.families.read().map_err(|_| Self::poisoned())?;
                let Some(m) = fams.get(&cf) else {
                    return Ok(());
                };
                m.range((start.clone(), std::ops::Bound::Unbounded))
                    .take(SCAN_CHUNK)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let Some((last, _)) = chunk.last() else {
                return Ok(());
            };
            let next = std::ops::Bound::Excluded(last.clone());
            let full = chunk.len() == SCAN_CHUNK;
            for (k, v) in &chunk {
                if f(k, v).is_break() {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            start = next;
        }
    }
}
