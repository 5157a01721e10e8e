//! The node's own state: `/health`, `/ready`, `/metrics` (open, for probes and
//! scrapers), status, disks and the retention clock.

use super::*;

pub(super) async fn health(
    State(admin): State<Admin>,
) -> Result<Json<api::node::Health>, ApiError> {
    let clock = admin.node.clock_status().await?;
    Ok(Json(api::node::Health {
        status: if clock.anomalies > 0 {
            api::node::HealthState::ClockAnomaly
        } else {
            api::node::HealthState::Ok
        },
        clock_anomalies: clock.anomalies,
        clock_behind_wall_micros: clock.behind_wall_micros,
    }))
}

/// Ready: enough disks online to take writes.
pub(super) async fn ready(
    State(admin): State<Admin>,
) -> Result<(StatusCode, Json<api::node::Ready>), ApiError> {
    let online = admin
        .node
        .disks()
        .await?
        .iter()
        .filter(|d| d.state == stele::disk::DiskState::Online)
        .count();
    let needed = admin.node.config().write_quorum;
    let skewed = admin.node.clock_status().await?.peer_skewed;
    let status = if online >= needed && !skewed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((
        status,
        Json(api::node::Ready {
            disks_online: online as u64,
            write_quorum: needed as u64,
            clock_skewed: skewed,
        }),
    ))
}

/// The node's state as Prometheus metrics (open, like `/health`: no secrets in it).
pub(super) async fn metrics(State(admin): State<Admin>) -> Response {
    use crate::metrics::gauge;
    // Queue lengths are counters kept at commit time: no scan per scrape.
    // Disks that cannot be listed have no samples (never made-up states).
    let disks = admin.node.disks().await.unwrap_or_default();
    let clock = match admin.node.clock_status().await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let totals = admin.repair.totals().ok();
    let queues = admin.node.queue_lengths().await.ok();
    // A queue that cannot be read has no length: NaN, never a made-up 0; the failing
    // count is unknown while an entry cannot be decoded.
    let queue_read = totals.is_some();
    let (repair_st, failing) = totals.unwrap_or_default();
    let queue_gauge = |n: u64| if queue_read { n as f64 } else { f64::NAN };
    let alert_queue = queues.map_or(f64::NAN, |q| q.alerts as f64);
    let failing_gauge = failing.map_or(f64::NAN, |n| n as f64);
    let scrub = admin.scrub.status();
    let drill = admin.drill.status();
    let watch = admin.watchdog.status();
    let lifecycle = admin.lifecycle.status();
    let mut x = String::new();
    let per_disk = |f: &dyn Fn(&stele::disk::DiskStatus) -> Option<f64>| -> Vec<(String, f64)> {
        disks
            .iter()
            .filter_map(|d| f(d).map(|v| (format!("disk=\"{}\"", d.id), v)))
            .collect()
    };
    gauge(
        &mut x,
        "stele_disk_online",
        "gauge",
        "1 if the disk is online",
        &per_disk(&|d| {
            Some(f64::from(u8::from(
                d.state == stele::disk::DiskState::Online,
            )))
        }),
    );
    gauge(
        &mut x,
        "stele_disk_full",
        "gauge",
        "1 if the disk is full",
        &per_disk(&|d| Some(f64::from(u8::from(d.state == stele::disk::DiskState::Full)))),
    );
    gauge(
        &mut x,
        "stele_disk_free_bytes",
        "gauge",
        "Bytes free on the disk's filesystem",
        &per_disk(&|d| d.free_bytes.map(|b| b as f64)),
    );
    // Usage is kept at commit time: one point read per bucket, no scan. Buckets that
    // cannot be read have no samples.
    let buckets = admin.node.bucket_usages().await.unwrap_or_default();
    let per_bucket =
        |f: &dyn Fn(&stele::meta::BucketRecord, &stele::meta::BucketUsage) -> Option<f64>| {
            buckets
                .iter()
                .filter_map(|(b, u)| f(b, u).map(|v| (format!("bucket=\"{}\"", b.name), v)))
                .collect::<Vec<_>>()
        };
    gauge(
        &mut x,
        "stele_bucket_used_bytes",
        "gauge",
        "Bytes held by the bucket's object versions (all versions)",
        &per_bucket(&|_, u| Some(u.bytes as f64)),
    );
    gauge(
        &mut x,
        "stele_bucket_objects",
        "gauge",
        "Object versions held by the bucket",
        &per_bucket(&|_, u| Some(u.objects as f64)),
    );
    gauge(
        &mut x,
        "stele_bucket_upload_bytes",
        "gauge",
        "Bytes in the parts of the bucket's uploads in progress",
        &per_bucket(&|_, u| Some(u.upload_bytes as f64)),
    );
    gauge(
        &mut x,
        "stele_bucket_quota_bytes",
        "gauge",
        "The bucket's hard quota in bytes (buckets with one)",
        &per_bucket(&|b, _| b.quota.map(|q| q as f64)),
    );
    let t = scrub.totals;
    for (name, help, v) in [
        (
            "stele_scrub_shards_verified",
            "Shards verified by scrub",
            t.shards_verified,
        ),
        (
            "stele_scrub_bytes_verified",
            "Bytes verified by scrub",
            t.bytes_verified,
        ),
        (
            "stele_scrub_shards_corrupt",
            "Corrupt shards found by scrub",
            t.corrupt,
        ),
        (
            "stele_scrub_shards_missing",
            "Missing shards found by scrub",
            t.missing,
        ),
        (
            "stele_scrub_shards_repaired",
            "Shards rebuilt by scrub",
            t.repaired,
        ),
        ("stele_scrub_passes", "Scrub passes finished", scrub.passes),
        (
            "stele_repair_shards_rebuilt",
            "Shards rebuilt from the repair queue",
            repair_st.shards_rebuilt,
        ),
        ("stele_drills", "Restore drills run", drill.drills),
        (
            "stele_clock_anomalies",
            "Wall-clock steps the retention clock refused",
            clock.anomalies,
        ),
        (
            "stele_lifecycle_passes",
            "Lifecycle passes finished",
            lifecycle.passes,
        ),
    ] {
        gauge(&mut x, name, "counter", help, &[(String::new(), v as f64)]);
    }
    let last_unrepairable = scrub.last_pass.as_ref().map_or(0, |r| r.unrepairable.len());
    let (drill_passed, drill_failed) = drill.last.as_ref().map_or((0, 0), |r| (r.passed, r.failed));
    for (name, help, v) in [
        (
            "stele_unrepairable_versions",
            "Versions the last scrub pass could not rebuild",
            last_unrepairable as f64,
        ),
        (
            "stele_repair_queue_length",
            "Entries waiting in the repair queue",
            queue_gauge(repair_st.queue_length),
        ),
        (
            "stele_geo_site_unsafe_bytes",
            "Acknowledged bytes that would not survive losing one more site",
            queue_gauge(repair_st.site_unsafe_bytes),
        ),
        (
            "stele_drill_last_passed",
            "Versions the last restore drill read back intact",
            drill_passed as f64,
        ),
        (
            "stele_drill_last_failed",
            "Versions the last restore drill could not read back",
            drill_failed as f64,
        ),
        (
            "stele_backups_overdue",
            "Buckets whose expected backups are overdue",
            watch.overdue.len() as f64,
        ),
        (
            "stele_alerts_queued",
            "Alerts waiting for delivery",
            alert_queue,
        ),
        (
            "stele_retention_clock_behind_wall_seconds",
            "How far retention time runs behind the wall clock",
            clock.behind_wall_micros as f64 / 1e6,
        ),
    ] {
        gauge(&mut x, name, "gauge", help, &[(String::new(), v)]);
    }
    // A pass that did not finish is never counted as one: it is counted here, and its
    // worker shows 1 in the gauge until a pass finishes.
    let workers: Vec<(&str, u64, bool)> = admin
        .runners()
        .iter()
        .map(|w| (w.name, w.failed_passes, w.last_failure.is_some()))
        .collect();
    gauge(
        &mut x,
        "stele_worker_failed_passes",
        "counter",
        "Background passes that met an error and did not finish",
        &workers
            .iter()
            .map(|(w, n, _)| (format!("worker=\"{w}\""), *n as f64))
            .collect::<Vec<_>>(),
    );
    gauge(
        &mut x,
        "stele_worker_last_pass_failed",
        "gauge",
        "1 if the worker's last pass failed",
        &workers
            .iter()
            .map(|(w, _, f)| (format!("worker=\"{w}\""), f64::from(u8::from(*f))))
            .collect::<Vec<_>>(),
    );
    gauge(
        &mut x,
        "stele_repair_failed_attempts",
        "counter",
        "Repair attempts that failed (the entry stays queued)",
        &[(String::new(), repair_st.failed_attempts as f64)],
    );
    gauge(
        &mut x,
        "stele_repair_queue_failing",
        "gauge",
        "Repair queue entries whose last attempt failed",
        &[(String::new(), failing_gauge)],
    );
    // Peers whose state cannot be read have no samples (never made-up values).
    let peers = admin.node.replication_status().await.unwrap_or_default();
    crate::metrics::replication(&mut x, &peers);
    if let Some(group) = admin.cluster.group() {
        // Disks that cannot be listed have no samples.
        let disks = admin.node.placement_disks().await.unwrap_or_default();
        crate::metrics::cluster(&mut x, &group.status(), &disks);
        crate::metrics::members(&mut x, &admin.node.member_reachability());
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.render(&x),
    )
        .into_response()
}

pub(super) async fn status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::node::Status>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let counts = admin.node.identity_counts().await?;
    Ok(Json(api::node::Status {
        disks: wire::disks(admin.node.disks().await?),
        buckets: admin.node.buckets().await.map(|b| b.len()).unwrap_or(0) as u64,
        users: counts.users as u64,
        pending_approvals: counts.pending_approvals as u64,
        two_person_rule_in_force: counts.two_person_rule_in_force,
        tls: admin.tls.as_ref().map(|(t, s3, adm)| api::node::Tls {
            fingerprint: t.fingerprint(),
            self_signed: t.source().generated,
            s3: *s3,
            admin: *adm,
        }),
        clock: wire::clock(admin.node.clock_status().await?),
        lifecycle: wire::lifecycle_status(admin.lifecycle.status()),
    }))
}

pub(super) async fn disks(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::node::DiskStatus>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(wire::disks(admin.node.disks().await?)))
}

pub(super) async fn clock(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::node::ClockStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(wire::clock(admin.node.clock_status().await?)))
}

/// Moves the retention clock forward (privileged: held for a second administrator under
/// the two-person rule).
pub(super) async fn clock_resync(
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::node::ClockResync>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let to = body
        .to
        .map(|t| stele::types::Timestamp::from_micros(t.micros()));
    let o = actor.node.resync_clock(&actor.user.name, to).await?;
    Ok(outcome(o))
}
