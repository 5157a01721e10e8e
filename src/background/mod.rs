//! Background work: the one runner every job runs on, and the jobs — aging versions out by
//! bucket rules ([`lifecycle`]), verifying and rebuilding shards ([`scrub`]), restore drills
//! and the repair queue ([`drill`]), and watching disks, the retention clock and backup
//! freshness ([`watchdog`]), checkpointing the audit trail and writing its queue
//! ([`trail`]). Alert delivery, which needs HTTP, runs on the same runner from
//! the server.

pub mod backfill;
pub mod drill;
pub mod lifecycle;
pub mod rebalance;
pub mod replication;
pub mod replication_audit;
pub mod runner;
pub mod scrub;
pub mod trail;
pub mod watchdog;
