//! Stele's core: an erasure-coded, self-verifying, write-once object engine. No HTTP here:
//! the server translates requests into calls on [`store::Store`].
//!
//! # Layout
//! Layers point one way (a module may use those above it in this list, never below):
//!
//! - [`types`], [`clock`], [`checksum`], [`crypto`], [`geometry`]: names, ids and hashes,
//!   injected time, digests, AEAD, the stripe geometry records name.
//! - [`config`], [`cluster`]: node configuration; failure domains and shard placement.
//! - [`meta`]: the metadata store (RocksDB lives only in `meta/rocks.rs`) and its
//!   versioned records.
//! - [`disk`]: where shards live: the `ShardStore` seam, local disks behind it, the shard
//!   file format, and (feature `test-hooks`) the faulty disk and the seam's conformance suite.
//! - [`erasure`]: the Reed-Solomon codec (the only user of the crate) and stripe geometry.
//! - [`identity`]: users, roles and grants, sealed access keys, the two-person rule.
//! - [`membership`]: the cluster's identity, one-time join tokens and its members (whose
//!   node certificates the node-to-node listener admits).
//! - [`lock`]: Object Lock's pure decisions and the retention clock.
//! - [`sosapi`]: the two documents of Veeam's Smart Object Storage API, generated.
//! - [`replication`]: peer sites, per-bucket replication rules, the durable replication
//!   log written with each change, and what travels to a peer.
//! - [`command`]: metadata check-then-writes as commands, applied by one deterministic
//!   function (the shape of a Raft state machine), and the log they go through.
//! - [`store`]: the engine: buckets, the write path and the read path.
//! - [`background`]: the one runner every background job runs on, and the jobs: aging
//!   versions out by bucket rules, verifying and rebuilding shards, restore drills and the
//!   repair queue, watching disks, clock and backup freshness.
//! - [`alert`]: alerts and their durable delivery queue (the server delivers them).
//! - [`audit`]: the typed audit events (logged today; the audit log's input later).
//! - [`control`]: administrative operations across identities and the engine, under the
//!   two-person rule.
//! - [`node`]: the async facade the listeners call; it decides what runs in place and what
//!   on the blocking pool.
//!
//! Still to come: the audit log and the cluster (Raft) on top of `command`, `disk` and
//! `cluster`.

// Every public item of the core is documented: under the test command's
// `clippy -D warnings` a gap is an error.
#![warn(missing_docs)]

pub mod alert;
pub mod audit;
pub mod background;
pub mod checksum;
pub mod clock;
pub mod cluster;
pub mod command;
pub mod config;
pub mod consensus;
pub mod control;
pub mod crypto;
pub mod disk;
pub mod erasure;
pub mod geometry;
pub mod identity;
pub mod lock;
pub mod membership;
pub mod meta;
pub mod node;
pub mod replication;
mod runtime;
pub mod sosapi;
pub mod store;
pub mod types;

#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::{EcParams, NodeConfig};
pub use node::Node;
pub use store::{ByteRange, ObjectRead, PutOptions, PutOutcome, Store, StoreError};
pub use types::{BucketName, ObjectKey, SegmentId, Timestamp, VersionId};
