//! The bridge from the engine's blocking threads to async work (a Raft proposal, a shard
//! on another node): run a future to its end on this thread.

use std::future::Future;

/// Runs `f` on `runtime` to its end on this thread: a blocking thread, as every caller
/// should be; on a worker of a multi-threaded runtime, the worker's other tasks are moved
/// off first (`block_in_place`) rather than the runtime panicking.
pub(crate) fn wait<T>(runtime: &tokio::runtime::Handle, f: impl Future<Output = T>) -> T {
    let on_worker = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_worker {
        tokio::task::block_in_place(|| runtime.block_on(f))
    } else {
        runtime.block_on(f)
    }
}
