//! A local disk that fails on purpose (feature `test-hooks`): the faults real disks have,
//! injected at the [`ShardStore`] seam so the engine above meets them through its
//! production code paths.
//!
//! Each fault returns the `io::Error` the kernel would (EIO, ENOSPC) through the local
//! disk's own error path, so the disk's health changes as it would for a real fault: ENOSPC
//! makes it full, EIO on a write offline. A read error condemns the shard, not the disk, as
//! on a real disk.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::local::LocalDisk;
use super::shard::{ShardReader, ShardWriter};
use super::{
    DiskError, DiskState, DiskStatus, DiskTiming, DiskUuid, Expect, FoundShard, Hash, ShardName,
    ShardSink, ShardSource, ShardStore,
};
use crate::config::DiskSpec;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Which faults a [`FaultyDisk`] injects from now on. The default injects none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Every block read fails with EIO.
    pub read_eio: bool,
    /// Every block write fails with EIO once this many more blocks have been written.
    pub write_eio_after_blocks: Option<u64>,
    /// The disk fills up (ENOSPC) once this many more bytes have been written to it.
    pub enospc_after_bytes: Option<u64>,
    /// The next write to a shard file is torn: only the first half of the block reaches
    /// the file, then the write fails with EIO (as when power is lost mid-write).
    pub torn_write: bool,
    /// Like `torn_write`, but the writer is then abandoned as by a process that died
    /// mid-write: the half-written file stays in the disk's `tmp/` (no `Drop` removes it)
    /// until the disk is opened again and sweeps it.
    pub torn_and_abandoned: bool,
    /// Every block read and write takes this long first.
    pub delay: Duration,
    /// Removing a shard fails with EIO.
    pub remove_eio: bool,
}

/// A [`LocalDisk`] with a [`FaultPlan`] that a test can change at any time.
#[derive(Debug, Clone)]
pub struct FaultyDisk {
    disk: LocalDisk,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    plan: Mutex<FaultPlan>,
    /// Blocks and bytes written since the plan was set.
    blocks: AtomicU64,
    bytes: AtomicU64,
    /// Faults injected so far (a test checks that its fault happened).
    injected: AtomicU64,
}

impl FaultyDisk {
    /// Opens the local disk at `spec.path` with no fault planned.
    ///
    /// # Errors
    /// As [`LocalDisk::open_with`].
    pub fn open(spec: DiskSpec, timing: DiskTiming) -> Result<Self, DiskError> {
        Ok(Self {
            disk: LocalDisk::open_with(spec, timing)?,
            state: Arc::default(),
        })
    }

    /// Replaces the plan; counting for `*_after_*` starts again from zero.
    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut p) = self.state.plan.lock() {
            *p = plan;
        }
        self.state.blocks.store(0, Ordering::SeqCst);
        self.state.bytes.store(0, Ordering::SeqCst);
    }

    /// How many faults have been injected.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }

    /// The disk's directory disappears (an unmounted or pulled disk): it is renamed aside
    /// until [`FaultyDisk::reappear`].
    ///
    /// # Errors
    /// The rename's.
    pub fn vanish(&self) -> io::Result<()> {
        std::fs::rename(self.disk.root(), self.aside())
    }

    /// Puts a vanished directory back.
    ///
    /// # Errors
    /// The rename's.
    pub fn reappear(&self) -> io::Result<()> {
        std::fs::rename(self.aside(), self.disk.root())
    }

    fn aside(&self) -> PathBuf {
        let mut p = self.disk.root().as_os_str().to_owned();
        p.push(".vanished");
        PathBuf::from(p)
    }
}

/// The fault a write of `len` bytes meets, if any; counts the write.
/// What happens to the writer after a fault.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Torn {
    /// The write fails whole.
    No,
    /// Half the block reaches the file, then the write fails.
    Half,
    /// Half the block reaches the file and the writer is abandoned (a crash).
    HalfAbandoned,
}

fn write_fault(state: &State, len: usize) -> Option<(i32, Torn)> {
    let plan = state.plan.lock().ok()?.clone();
    if !plan.delay.is_zero() {
        std::thread::sleep(plan.delay);
    }
    let blocks = state.blocks.fetch_add(1, Ordering::SeqCst);
    let bytes = state.bytes.fetch_add(len as u64, Ordering::SeqCst) + len as u64;
    let fault = if plan.torn_write || plan.torn_and_abandoned {
        if let Ok(mut p) = state.plan.lock() {
            p.torn_write = false;
            p.torn_and_abandoned = false;
        }
        let how = if plan.torn_and_abandoned {
            Torn::HalfAbandoned
        } else {
            Torn::Half
        };
        Some((EIO, how))
    } else if plan.write_eio_after_blocks.is_some_and(|n| blocks >= n) {
        Some((EIO, Torn::No))
    } else if plan.enospc_after_bytes.is_some_and(|n| bytes > n) {
        Some((ENOSPC, Torn::No))
    } else {
        None
    };
    if fault.is_some() {
        state.injected.fetch_add(1, Ordering::SeqCst);
    }
    fault
}

struct FaultySink {
    disk: LocalDisk,
    state: Arc<State>,
    /// `None` once abandoned.
    writer: Option<ShardWriter>,
}

impl FaultySink {
    fn failed(&self, errno: i32) -> DiskError {
        self.disk.io_err(
            "write",
            self.disk.root(),
            io::Error::from_raw_os_error(errno),
        )
    }
}

impl ShardSink for FaultySink {
    fn append(&mut self, block: &[u8]) -> Result<(), DiskError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.failed(EIO));
        };
        match write_fault(&self.state, block.len()) {
            None => writer.append(block),
            Some((errno, torn)) => {
                if torn != Torn::No {
                    // Half the block reaches the file; the caller drops the writer after
                    // this error, as after a real failed write.
                    writer.append(&block[..block.len() / 2])?;
                }
                if torn == Torn::HalfAbandoned {
                    // As if the process died here: nothing removes the temporary file.
                    std::mem::forget(self.writer.take());
                }
                Err(self.failed(errno))
            }
        }
    }

    fn finish(self: Box<Self>) -> Result<Hash, DiskError> {
        match self.writer {
            Some(w) => w.finish(),
            None => Err(self.failed(EIO)),
        }
    }
}

struct FaultySource {
    disk: String,
    path: PathBuf,
    state: Arc<State>,
    reader: ShardReader,
}

impl ShardSource for FaultySource {
    fn hashes(&self) -> &[u8] {
        self.reader.hashes()
    }
    fn read_block(&self, s: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let plan = self
            .state
            .plan
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        if !plan.delay.is_zero() {
            std::thread::sleep(plan.delay);
        }
        if plan.read_eio {
            self.state.injected.fetch_add(1, Ordering::SeqCst);
            return Err(DiskError::Io {
                disk: self.disk.clone(),
                op: "read",
                path: self.path.clone(),
                source: io::Error::from_raw_os_error(EIO),
            });
        }
        self.reader.read_block(s, buf)
    }
}

impl ShardStore for FaultyDisk {
    fn spec(&self) -> &DiskSpec {
        self.disk.spec()
    }
    fn status(&self) -> DiskStatus {
        self.disk.status()
    }
    fn state(&self) -> DiskState {
        self.disk.state()
    }
    fn uuid(&self) -> Option<DiskUuid> {
        self.disk.uuid()
    }
    fn usable(&self) -> bool {
        self.disk.usable()
    }
    fn probe(&self) -> bool {
        self.disk.probe()
    }
    fn heal(&self) -> Result<(), DiskError> {
        self.disk.heal()
    }

    fn create(&self, name: ShardName, block_size: u32) -> Result<Box<dyn ShardSink>, DiskError> {
        Ok(Box::new(FaultySink {
            disk: self.disk.clone(),
            state: self.state.clone(),
            writer: Some(self.disk.create_writer(name, block_size, None)?),
        }))
    }

    fn rebuild(
        &self,
        name: ShardName,
        block_size: u32,
        root: Hash,
    ) -> Result<Box<dyn ShardSink>, DiskError> {
        Ok(Box::new(FaultySink {
            disk: self.disk.clone(),
            state: self.state.clone(),
            writer: Some(self.disk.create_writer(name, block_size, Some(root))?),
        }))
    }

    fn open(&self, name: ShardName, expect: &Expect) -> Result<Box<dyn ShardSource>, DiskError> {
        let reader = self.disk.open_reader(name, expect)?;
        Ok(Box::new(FaultySource {
            disk: self.disk.spec().id.clone(),
            path: super::local::shard_path(self.disk.root(), name),
            state: self.state.clone(),
            reader,
        }))
    }

    fn remove(&self, name: ShardName) -> Result<(), DiskError> {
        let fail = self
            .state
            .plan
            .lock()
            .map(|p| p.remove_eio)
            .unwrap_or(false);
        if fail {
            self.state.injected.fetch_add(1, Ordering::SeqCst);
            return Err(self.disk.io_err(
                "remove",
                self.disk.root(),
                io::Error::from_raw_os_error(EIO),
            ));
        }
        self.disk.remove(name)
    }
    fn list_older_than(&self, older_than_micros: i64) -> Result<Vec<FoundShard>, DiskError> {
        self.disk.list_older_than(older_than_micros)
    }
    fn quarantine(&self, file: &FoundShard) -> Result<(), DiskError> {
        self.disk.quarantine(file)
    }
}
