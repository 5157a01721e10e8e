//! From the core's types to the admin API's wire types (`stele_api`): one function per
//! type the API shows. Each takes the core type apart field by field, so a field added to
//! the core does not reach the wire, or fail to, without a decision here.

use stele::Timestamp;
use stele::background::{drill, lifecycle, runner, scrub, watchdog};
use stele::identity::{ApprovalRecord, Privileged, Scope};
use stele::meta::{BelowMinimum, RetentionMode, RetentionPolicy};
use stele_api as api;

pub(super) fn time(t: Timestamp) -> api::Timestamp {
    api::Timestamp(t.micros())
}

pub(super) fn plane(p: stele::identity::Plane) -> api::identities::Plane {
    match p {
        stele::identity::Plane::S3 => api::identities::Plane::S3,
        stele::identity::Plane::Admin => api::identities::Plane::Admin,
    }
}

pub(super) fn disk(d: stele::disk::DiskStatus) -> api::node::DiskStatus {
    let stele::disk::DiskStatus {
        id,
        path,
        node,
        site,
        state,
        uuid,
        free_bytes,
        total_bytes: _,
        filesystem: _,
    } = d;
    api::node::DiskStatus {
        id,
        path: path.to_string_lossy().into_owned(),
        node,
        site,
        state: match state {
            stele::disk::DiskState::Online => api::node::DiskState::Online,
            stele::disk::DiskState::Offline => api::node::DiskState::Offline,
            stele::disk::DiskState::Full => api::node::DiskState::Full,
        },
        uuid: uuid.map(|u| u.to_string()),
        free_bytes,
    }
}

pub(super) fn disks(list: Vec<stele::disk::DiskStatus>) -> Vec<api::node::DiskStatus> {
    list.into_iter().map(disk).collect()
}

pub(super) fn clock(c: stele::lock::ClockStatus) -> api::node::ClockStatus {
    let stele::lock::ClockStatus {
        retention_now,
        wall_now,
        behind_wall_micros,
        anomalies,
        last_anomaly,
        resync_credit_micros,
        peer_offset_micros,
        peer_skewed,
    } = c;
    api::node::ClockStatus {
        peer_offset_micros,
        peer_skewed,
        retention_now: time(retention_now),
        wall_now: time(wall_now),
        behind_wall_micros,
        anomalies,
        resync_credit_micros,
        last_anomaly: last_anomaly.map(|a| api::node::ClockAnomaly {
            at: time(a.at),
            step_micros: a.step_micros,
        }),
    }
}

pub(super) fn lifecycle_pass(p: lifecycle::PassReport) -> api::workers::LifecyclePass {
    let lifecycle::PassReport {
        started,
        finished,
        versions_examined,
        delete_markers_added,
        versions_removed,
        kept_locked,
        uploads_aborted,
        errors,
    } = p;
    api::workers::LifecyclePass {
        started: started.map(time),
        finished: finished.map(time),
        versions_examined,
        delete_markers_added,
        versions_removed,
        kept_locked,
        uploads_aborted,
        errors,
    }
}

pub(super) fn lifecycle_status(s: lifecycle::LifecycleStatus) -> api::workers::LifecycleStatus {
    let lifecycle::LifecycleStatus {
        running,
        paused,
        passes,
        current,
        last_pass,
        rate_limit,
        interval_secs,
        failed_passes,
        last_failure,
    } = s;
    api::workers::LifecycleStatus {
        running,
        paused,
        passes,
        current: current.map(lifecycle_pass),
        last_pass: last_pass.map(lifecycle_pass),
        rate_limit,
        interval_secs,
        failed_passes,
        last_failure,
    }
}

pub(super) fn scrub_report(r: scrub::ScrubReport) -> api::workers::ScrubReport {
    let scrub::ScrubReport {
        started,
        finished,
        versions,
        shards_verified,
        bytes_verified,
        missing,
        corrupt,
        repaired,
        unrepairable,
        resumed,
        keys_before_resume,
        keys,
        duration_ms,
        orphans_quarantined,
    } = r;
    api::workers::ScrubReport {
        started: started.map(time),
        finished: finished.map(time),
        versions,
        shards_verified,
        bytes_verified,
        missing,
        corrupt,
        repaired,
        unrepairable: unrepairable
            .into_iter()
            .map(|u| {
                let scrub::Unrepairable {
                    bucket,
                    key,
                    version_id,
                    stripe,
                } = u;
                api::workers::Unrepairable {
                    bucket: bucket.into(),
                    key: key.into(),
                    version_id,
                    stripe,
                }
            })
            .collect(),
        resumed,
        keys_before_resume,
        keys,
        duration_ms,
        orphans_quarantined,
    }
}

pub(super) fn scrub_status(s: scrub::ScrubStatus) -> api::workers::ScrubStatus {
    let scrub::ScrubStatus {
        totals,
        running,
        paused,
        passes,
        current,
        last_pass,
        rate_bytes_per_sec,
        interval_secs,
        failed_passes,
        last_failure,
    } = s;
    let scrub::ScrubTotals {
        shards_verified,
        bytes_verified,
        missing,
        corrupt,
        repaired,
    } = totals;
    api::workers::ScrubStatus {
        totals: api::workers::ScrubTotals {
            shards_verified,
            bytes_verified,
            missing,
            corrupt,
            repaired,
        },
        running,
        paused,
        passes,
        current: current.map(scrub_report),
        last_pass: last_pass.map(scrub_report),
        rate_bytes_per_sec,
        interval_secs,
        failed_passes,
        last_failure,
    }
}

pub(super) fn drill_report(r: drill::DrillReport) -> api::workers::DrillReport {
    let drill::DrillReport {
        started,
        finished,
        versions_total,
        sample,
        passed,
        failed,
        error,
    } = r;
    api::workers::DrillReport {
        started: started.map(time),
        finished: finished.map(time),
        versions_total,
        sample: sample
            .into_iter()
            .map(|s| {
                let drill::Sampled {
                    bucket,
                    key,
                    version,
                    bytes,
                    failure,
                } = s;
                api::workers::Sampled {
                    bucket,
                    key,
                    version,
                    bytes,
                    failure,
                }
            })
            .collect(),
        passed,
        failed,
        error,
    }
}

pub(super) fn drill_status(s: drill::DrillStatus) -> api::workers::DrillStatus {
    let drill::DrillStatus {
        drills,
        failed_runs,
        last_failure,
        last,
        sample_size,
        interval_secs,
    } = s;
    api::workers::DrillStatus {
        drills,
        failed_runs,
        last_failure,
        last: last.map(drill_report),
        sample_size: sample_size as u64,
        interval_secs,
    }
}

pub(super) fn repair_status(s: drill::RepairStatus) -> api::workers::RepairStatus {
    let drill::RepairStatus {
        queue_length,
        failing,
        handled,
        shards_rebuilt,
        shards_moved,
        site_unsafe_bytes,
        unrepairable,
        failed_attempts,
        failing_entries,
        last_error,
    } = s;
    api::workers::RepairStatus {
        queue_length,
        failing,
        handled,
        shards_rebuilt,
        shards_moved,
        site_unsafe_bytes,
        unrepairable,
        failed_attempts,
        failing_entries: failing_entries
            .into_iter()
            .map(|f| {
                let drill::FailingRepair {
                    bucket,
                    key,
                    version,
                    attempts,
                    last_error,
                    next_attempt,
                } = f;
                api::workers::FailingRepair {
                    bucket,
                    key,
                    version,
                    attempts,
                    last_error,
                    next_attempt: time(next_attempt),
                }
            })
            .collect(),
        last_error,
    }
}

pub(super) fn watch_status(s: watchdog::WatchStatus) -> api::workers::WatchStatus {
    let watchdog::WatchStatus { checks, overdue } = s;
    api::workers::WatchStatus { checks, overdue }
}

pub(super) fn worker_status(w: runner::WorkerStatus) -> api::workers::WorkerStatus {
    let runner::WorkerStatus {
        name,
        scope,
        running,
        paused,
        passes,
        failed_passes,
        last_failure,
        interval_secs,
        standby,
    } = w;
    api::workers::WorkerStatus {
        name: name.to_owned(),
        scope: match scope {
            runner::Scope::Node => api::workers::WorkerScope::Node,
            runner::Scope::Cluster => api::workers::WorkerScope::Cluster,
        },
        running,
        paused,
        passes,
        failed_passes,
        last_failure,
        interval_secs,
        standby,
    }
}

pub(super) fn sink(s: stele::alert::SinkRecord) -> api::alerts::Sink {
    let stele::alert::SinkRecord { name, url, created } = s;
    api::alerts::Sink {
        name,
        url,
        created: time(created),
    }
}

pub(super) fn queued_alert(q: stele::alert::QueuedAlert) -> api::alerts::QueuedAlert {
    let stele::alert::QueuedAlert {
        id,
        sink,
        payload,
        raised,
        attempts,
        next_attempt,
        last_error,
    } = q;
    api::alerts::QueuedAlert {
        id,
        sink,
        payload,
        raised: time(raised),
        attempts,
        next_attempt: time(next_attempt),
        last_error,
    }
}

fn scope(s: Scope) -> api::approvals::OperationScope {
    match s {
        Scope::All => api::approvals::OperationScope::All,
        Scope::Buckets(list) => {
            api::approvals::OperationScope::Buckets(list.into_iter().map(String::from).collect())
        }
    }
}

fn recorded_policy(p: RetentionPolicy) -> api::approvals::OperationPolicy {
    use api::approvals::{OperationBelowMin, OperationMode};
    let RetentionPolicy {
        min_days,
        max_days,
        modes,
        below_min,
    } = p;
    api::approvals::OperationPolicy {
        below_min: match below_min {
            BelowMinimum::Refuse => OperationBelowMin::Refuse,
            BelowMinimum::Raise => OperationBelowMin::Raise,
        },
        max_days,
        min_days,
        modes: modes
            .into_iter()
            .map(|m| match m {
                RetentionMode::Governance => OperationMode::Governance,
                RetentionMode::Compliance => OperationMode::Compliance,
            })
            .collect(),
    }
}

pub(super) fn operation(p: Privileged) -> api::approvals::Operation {
    use api::approvals::Operation as O;
    match p {
        Privileged::LoosenPolicy { bucket, policy } => O::LoosenPolicy {
            bucket: bucket.into(),
            policy: policy.map(recorded_policy),
        },
        Privileged::GrantBypass { user, scope: s } => O::GrantBypass {
            scope: s.map(scope),
            user,
        },
        Privileged::DeleteAdmin { user } => O::DeleteAdmin { user },
        Privileged::SetTwoPersonRule { enabled } => O::SetTwoPersonRule { enabled },
        Privileged::ResyncClock { advance_micros } => O::ResyncClock { advance_micros },
    }
}

pub(super) fn approval(r: ApprovalRecord) -> api::approvals::Approval {
    let ApprovalRecord {
        id,
        operation: op,
        requested_by,
        created,
        expires,
    } = r;
    api::approvals::Approval {
        created: time(created),
        expires: time(expires),
        id,
        operation: operation(op),
        requested_by,
    }
}

pub(super) fn pending(r: ApprovalRecord) -> api::approvals::PendingApproval {
    let api::approvals::Approval {
        created: _,
        expires,
        id,
        operation,
        requested_by,
    } = approval(r);
    api::approvals::PendingApproval {
        expires,
        id,
        operation,
        requested_by,
    }
}

/// A peer without its secret: the sealed secret is dropped here, by name.
pub(super) fn peer(p: stele::replication::PeerRecord) -> api::replication::Peer {
    use stele::replication::PeerTrust;
    let stele::replication::PeerRecord {
        name,
        id,
        endpoint,
        trust,
        access_key,
        sealed_secret: _,
        created,
    } = p;
    let (trust, fingerprint) = match trust {
        PeerTrust::CaPem(_) => (api::replication::TrustKind::Ca, None),
        PeerTrust::Fingerprint(f) => (
            api::replication::TrustKind::Fingerprint,
            Some(hex::encode(f)),
        ),
        PeerTrust::Plain => (api::replication::TrustKind::Plain, None),
    };
    api::replication::Peer {
        name,
        id,
        endpoint,
        trust,
        fingerprint,
        access_key,
        created: time(created),
    }
}

pub(super) fn rule(r: stele::replication::ReplicationRule) -> api::replication::Rule {
    let stele::replication::ReplicationRule {
        id,
        enabled,
        prefix,
        peer,
        target_bucket,
        delete_markers,
        rpo_alert_secs,
        bandwidth,
        backfill,
    } = r;
    api::replication::Rule {
        id,
        enabled,
        prefix,
        peer,
        target_bucket: target_bucket.into(),
        delete_markers,
        rpo_alert_secs,
        bandwidth_bytes_per_sec: bandwidth,
        backfill,
    }
}

pub(super) fn bucket_replication(
    r: stele::replication::BucketReplication,
) -> api::replication::BucketReplication {
    let stele::replication::BucketReplication { bucket: _, rules } = r;
    api::replication::BucketReplication {
        rules: rules.into_iter().map(rule).collect(),
    }
}

fn log_op(op: stele::replication::log::LogOp) -> api::replication::Op {
    use stele::replication::log::LogOp;
    match op {
        LogOp::Version => api::replication::Op::Version,
        LogOp::DeleteMarker => api::replication::Op::DeleteMarker,
        LogOp::Lock => api::replication::Op::Lock,
        LogOp::Tags => api::replication::Op::Tags,
    }
}

fn dead_reason(r: stele::replication::log::DeadReason) -> api::replication::DeadReason {
    use api::replication::DeadReason as W;
    use stele::replication::log::DeadReason as D;
    match r {
        D::Refused => W::Refused,
        D::NoSuchBucket => W::NoSuchBucket,
        D::LockConfiguration => W::LockConfiguration,
        D::Conflict => W::Conflict,
        D::WaitingRepair => W::WaitingRepair,
        D::Tls => W::Tls,
        D::Other => W::Other,
    }
}

pub(super) fn dead_entry(d: stele::replication::log::DeadEntry) -> api::replication::DeadEntry {
    let stele::replication::log::DeadEntry {
        entry,
        seq,
        reason,
        detail,
        parked_at,
    } = d;
    let stele::replication::log::LogEntry {
        op,
        bucket,
        key,
        version_id,
        target,
        size,
        enqueued_at,
        class: _,
        rule,
    } = entry;
    api::replication::DeadEntry {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.to_string(),
        op: log_op(op),
        target_bucket: target.into(),
        size,
        rule,
        reason: dead_reason(reason),
        detail,
        parked_at: time(parked_at),
        enqueued_at: time(enqueued_at),
        seq,
    }
}

/// One peer's state: the log's backlog and its sender's status (zeros while no sender
/// runs). Every dead reason is listed, 0 included.
pub(super) fn peer_status(s: stele::node::PeerStatus) -> api::replication::PeerStatus {
    use stele::replication::log::{Backlog, DeadReason};
    let stele::node::PeerStatus {
        peer,
        backlog,
        rpo_secs,
        rpo_alert_secs,
        buckets,
        sender,
        at,
    } = s;
    let stele::replication::PeerRecord { name, endpoint, .. } = peer;
    let Backlog {
        entries,
        bytes,
        backfill_entries,
        oldest,
        dead,
        oldest_dead,
        head,
    } = backlog;
    let sending = sender.is_some();
    let stele::background::replication::SenderStatus {
        peer: _,
        link_up,
        breaker_open,
        failures_in_row,
        last_error,
        last_ack,
        sent_entries,
        sent_bytes,
        lock_divergences,
        parked,
        backfill_skipped,
        resumed_parts,
        throughput,
        bandwidth,
        paused,
    } = sender.unwrap_or_default();
    api::replication::PeerStatus {
        name,
        endpoint,
        rpo_seconds: rpo_secs,
        rpo_alert_seconds: rpo_alert_secs,
        backlog_entries: entries,
        backlog_bytes: bytes,
        backfill_entries,
        oldest: oldest.map(|(seq, e)| api::replication::Unreplicated {
            bucket: e.bucket.into(),
            key: e.key.into(),
            version_id: e.version_id.to_string(),
            enqueued_at: time(e.enqueued_at),
            seq,
        }),
        dead: DeadReason::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), dead.get(r).copied().unwrap_or(0)))
            .collect(),
        oldest_dead: oldest_dead.map(time),
        head_seq: head,
        buckets: buckets.into_iter().map(String::from).collect(),
        sending,
        link_up,
        breaker_open,
        failures_in_row,
        last_error,
        last_ack: last_ack.map(time),
        sent_entries,
        sent_bytes,
        lock_divergences,
        parked,
        backfill_skipped,
        resumed_parts,
        throughput_bytes_per_sec: throughput,
        drain_eta_seconds: crate::metrics::drain_eta(entries, bytes, throughput),
        bandwidth_bytes_per_sec: bandwidth,
        paused,
        at: time(at),
    }
}

pub(super) fn writer_epoch(
    bucket: &stele::BucketName,
    e: Option<stele::replication::epoch::WriterEpoch>,
) -> api::replication::WriterEpoch {
    use stele::background::replication::HEARTBEAT_EVERY;
    let interval = HEARTBEAT_EVERY.as_secs_f64();
    let Some(e) = e else {
        return api::replication::WriterEpoch {
            bucket: bucket.to_string(),
            role: "unpaired".into(),
            epoch: 0,
            reason: None,
            since: None,
            source: None,
            promotion: None,
        };
    };
    let stele::replication::epoch::WriterEpoch {
        bucket,
        epoch,
        role,
        reason,
        since,
        source,
        promotion,
    } = e;
    api::replication::WriterEpoch {
        bucket: bucket.to_string(),
        role: role.as_str().into(),
        epoch,
        reason: Some(reason.as_str().into()),
        since: Some(time(since)),
        source,
        promotion: promotion.map(|p| api::replication::Promotion {
            at: time(p.at),
            last_heard: p.last_heard.map(time),
            backlog_entries: p.heartbeat.map(|h| h.backlog_entries),
            backlog_bytes: p.heartbeat.map(|h| h.backlog_bytes),
            oldest_unreplicated: p.heartbeat.and_then(|h| h.oldest).map(time),
            reported_rpo_seconds: p.reported_rpo_secs(),
            rpo_bound_seconds: p.rpo_bound_secs(interval),
            heartbeat_interval_seconds: interval,
        }),
    }
}

pub(super) fn audit_report(
    r: stele::background::replication_audit::AuditReport,
) -> api::replication::AuditReport {
    use stele::background::replication_audit::Finding;
    let stele::background::replication_audit::AuditReport {
        bucket,
        rule,
        peer,
        started,
        finished,
        after,
        checked,
        missing,
        mismatched,
        named,
        error,
    } = r;
    api::replication::AuditReport {
        bucket,
        rule,
        peer,
        started: started.map(time),
        finished: finished.map(time),
        running: after.is_some(),
        error,
        checked,
        missing,
        mismatched,
        named: named
            .into_iter()
            .map(|(k, v, f)| api::replication::AuditFinding {
                key: k.into(),
                version_id: v.to_string(),
                finding: match f {
                    Finding::Missing => "missing",
                    Finding::Mismatched => "mismatched",
                }
                .into(),
            })
            .collect(),
    }
}

pub(super) fn rebalance_report(
    r: stele::background::rebalance::RebalanceReport,
) -> api::workers::RebalanceReport {
    let stele::background::rebalance::RebalanceReport {
        started,
        finished,
        epoch,
        versions,
        moves,
        old_copies_removed,
    } = r;
    api::workers::RebalanceReport {
        started: started.map(time),
        finished: finished.map(time),
        epoch,
        versions,
        moved: moves.moved,
        bytes: moves.bytes,
        waiting: moves.waiting,
        raced: moves.raced,
        old_copies_removed,
    }
}

pub(super) fn rebalance_status(
    s: stele::background::rebalance::RebalanceStatus,
    old_copies_waiting: u64,
    standby: bool,
) -> api::workers::RebalanceStatus {
    let stele::background::rebalance::RebalanceStatus {
        running,
        paused,
        passes,
        current,
        last_pass,
        rate_bytes_per_sec,
        interval_secs,
        grace_secs,
        failed_passes,
        last_failure,
    } = s;
    api::workers::RebalanceStatus {
        running,
        paused,
        passes,
        current: current.map(rebalance_report),
        last_pass: last_pass.map(rebalance_report),
        rate_bytes_per_sec,
        interval_secs,
        grace_secs,
        old_copies_waiting,
        standby,
        failed_passes,
        last_failure,
    }
}
