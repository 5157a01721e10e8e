//! The audit trail: every state change and every security-relevant refusal, as one leaf of
//! an append-only, hash-chained RFC 6962 Merkle log with signed C2SP checkpoints
//! (`../shared/design/audit.md` §2; the formats and their offline check are the
//! `stele-tlog` crate's).
//!
//! - [`event`]: the typed events of the listeners and the administrative layer.
//! - [`entry`]: who acted ([`Requester`]), and an event as the trail records it
//!   ([`Entry`]): its leaf is canonical JSON.
//! - [`log`]: the log in the metadata store's `audit` family: appending leaves inside a
//!   batch, the subtree hashes, the head, the signed checkpoints, reading them back.
//! - [`query`]: auditors' queries of events, each with its inclusion proof.
//! - [`report`]: signed retention reports of a bucket's versions.
//! - [`trail`]: the running trail: events that change nothing, queued and group-committed;
//!   the signing key; checkpoints; node start and stop; exports.
//!
//! Why two ways in: a change and its record must never disagree, even across kill -9, so
//! the command applier appends the leaf in the batch that makes the change; a refusal or
//! an authentication failure changes nothing, so it is queued and written within
//! [`trail::FLUSH_EVERY`] by one batch for many (a flood of bad signatures costs one synced
//! write per flush, not one per request).

pub mod entry;
pub mod event;
pub mod log;
pub mod query;
pub mod report;
pub mod trail;

pub use entry::{Entry, Outcome, Requester, Target, claimed_key};
pub use event::AuditEvent;
pub use trail::Trail;
