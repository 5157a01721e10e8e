//! Background workers: their status and controls (run, pause, resume, cancel), scrub,
//! lifecycle, restore drills, the repair queue, the watchdog, and healing a disk.

use super::*;

pub(super) async fn lifecycle_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::LifecycleStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(wire::lifecycle_status(admin.lifecycle.status())))
}

/// A once-per-cluster worker asked to run on a node that does not hold the cluster's
/// lease (a member that is not the Raft leader): 409 `NotLeaseHolder`, nothing started.
fn on_lease_holder(admin: &Admin, actor: &Actor, worker: &str) -> Result<(), ApiError> {
    if actor.node.holds_lease() {
        return Ok(());
    }
    let leader = admin.cluster.group().map(|g| g.status()).and_then(|s| {
        s.leader.map(|l| {
            format!(
                "; the leader is {l} (node listener {})",
                s.leader_addr.unwrap_or_default()
            )
        })
    });
    Err(ApiError(
        StatusCode::CONFLICT,
        "NotLeaseHolder",
        format!(
            "the {worker} worker runs once per cluster, on the node that holds the cluster's \
             lease (the Raft leader; ask its admin listener: `stelectl cluster status` there \
             says \"lease: held here\"); this node stands by{}",
            leader.unwrap_or_default()
        ),
    ))
}

/// A pass that ended in failure: 500 `PassFailed` with the reason (also in the worker's
/// status, `/metrics` and an alert).
pub(super) fn pass_failed(worker: &str, reason: String) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "PassFailed",
        format!("the {worker} pass failed: {reason}"),
    )
}

pub(super) async fn lifecycle_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<api::workers::RunQuery>,
) -> Result<Json<Option<api::workers::LifecyclePass>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    on_lease_holder(&admin, &actor, "lifecycle")?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "lifecycle".into(),
        action: "run".into(),
    });
    if q.wait.unwrap_or(false) {
        match admin.lifecycle.run_and_wait().await {
            None => Ok(Json(None)),
            Some(Ok(r)) => Ok(Json(Some(wire::lifecycle_pass(r)))),
            Some(Err(reason)) => Err(pass_failed("lifecycle", reason)),
        }
    } else {
        admin.lifecycle.run_now();
        Ok(Json(None))
    }
}

pub(super) async fn watchdog_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::WatchStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(wire::watch_status(admin.watchdog.status())))
}

/// The status of every background worker.
pub(super) async fn workers(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::Workers>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let repair = admin.repair.status().await?;
    Ok(Json(api::workers::Workers {
        scrub: wire::scrub_status(admin.scrub.status()),
        lifecycle: wire::lifecycle_status(admin.lifecycle.status()),
        drill: wire::drill_status(admin.drill.status()),
        repair: wire::repair_status(repair),
        watchdog: wire::watch_status(admin.watchdog.status()),
        runners: admin
            .runners()
            .into_iter()
            .map(wire::worker_status)
            .collect(),
    }))
}

/// `run`, `pause`, `resume` or `cancel` any worker on the runner (`scrub`, `lifecycle`,
/// `repair`, `drill`, `watchdog`, `alert-delivery`).
pub(super) async fn worker_action(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path((name, action)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    let no_such = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "NoSuchWorkerAction",
            format!("no action {action} for worker {name}"),
        )
    };
    let c = admin.runner(&name).ok_or_else(no_such)?;
    // The audit trail's own workers are never paused or cancelled: events would wait in
    // memory, and ticks stop, with nothing in the trail to say why.
    if name.starts_with("audit-") && matches!(action.as_str(), "pause" | "cancel") {
        actor.node.audit(&AuditEvent::AccessDenied {
            plane: Plane::Admin,
            actor: actor.user.name.clone(),
            action: format!("{action} {name}: the audit trail's workers are never stopped"),
        });
        return Err(ApiError(
            StatusCode::CONFLICT,
            "WorkerNotStoppable",
            format!("the audit trail's worker {name} cannot be paused or cancelled"),
        ));
    }
    let once_per_cluster = admin
        .runners()
        .iter()
        .any(|w| w.name == name && w.scope == stele::background::runner::Scope::Cluster);
    if action == "run" && once_per_cluster {
        on_lease_holder(&admin, &actor, &name)?;
    }
    match action.as_str() {
        "run" => c.run_now(),
        "pause" => c.set_paused(true),
        "resume" => c.set_paused(false),
        "cancel" => c.cancel(),
        _ => return Err(no_such()),
    }
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: name.clone(),
        action: action.clone(),
    });
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn scrub_pause(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "scrub".into(),
        action: "pause".into(),
    });
    admin.scrub.set_paused(true);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn scrub_resume(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "scrub".into(),
        action: "resume".into(),
    });
    admin.scrub.set_paused(false);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn drill_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::DrillStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(wire::drill_status(admin.drill.status())))
}

pub(super) async fn drill_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::DrillReport>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    on_lease_holder(&admin, &actor, "drill")?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "drill".into(),
        action: "run".into(),
    });
    match admin.drill.run_and_wait().await {
        Ok(r) => Ok(Json(wire::drill_report(r))),
        Err(reason) => Err(pass_failed("drill", reason)),
    }
}

pub(super) async fn repair_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::RepairStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let status = admin.repair.status().await?;
    Ok(Json(wire::repair_status(status)))
}

pub(super) async fn scrub_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::ScrubStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(wire::scrub_status(admin.scrub.status())))
}

pub(super) async fn scrub_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<api::workers::RunQuery>,
) -> Result<Json<Option<api::workers::ScrubReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "scrub".into(),
        action: "run".into(),
    });
    if q.wait.unwrap_or(false) {
        scrub_and_wait(&admin).await
    } else {
        admin.scrub.run_now();
        Ok(Json(None))
    }
}

pub(super) async fn scrub_and_wait(
    admin: &Admin,
) -> Result<Json<Option<api::workers::ScrubReport>>, ApiError> {
    match admin.scrub.run_and_wait().await {
        None => Ok(Json(None)),
        Some(Ok(r)) => Ok(Json(Some(wire::scrub_report(r)))),
        Some(Err(reason)) => Err(pass_failed("scrub", reason)),
    }
}

/// Heal: a replaced (emptied) disk directory is stamped and brought online; a scrub pass
/// with repair then rebuilds its shards. With `?wait=true` the pass's report is returned.
pub(super) async fn heal_disk(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    Query(q): Query<api::workers::RunQuery>,
) -> Result<Json<Option<api::workers::ScrubReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "disk".into(),
        action: "heal".into(),
    });
    if !actor.node.disks().await?.iter().any(|d| d.id == id) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "NoSuchDisk",
            format!("no disk {id}"),
        ));
    }
    actor.node.heal_disk(&id).await?;
    if q.wait.unwrap_or(false) {
        scrub_and_wait(&admin).await
    } else {
        admin.scrub.run_now();
        Ok(Json(None))
    }
}

pub(super) async fn rebalance_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::workers::RebalanceStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let waiting = admin.node.old_copies_waiting().await?;
    Ok(Json(wire::rebalance_status(
        admin.rebalance.status(),
        waiting,
        !admin.node.holds_lease(),
    )))
}

/// Runs a rebalance pass on the lease holder (409 `NotLeaseHolder` elsewhere); with
/// `?wait=true` its report is returned.
pub(super) async fn rebalance_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<api::workers::RunQuery>,
) -> Result<Json<Option<api::workers::RebalanceReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    on_lease_holder(&admin, &actor, "rebalance")?;
    actor.node.audit(&AuditEvent::WorkerControlled {
        actor: actor.user.name.clone(),
        worker: "rebalance".into(),
        action: "run".into(),
    });
    if !q.wait.unwrap_or(false) {
        admin.rebalance.run_now();
        return Ok(Json(None));
    }
    match admin.rebalance.run_and_wait().await {
        None => Ok(Json(None)),
        Some(Ok(r)) => Ok(Json(Some(wire::rebalance_report(r)))),
        Some(Err(reason)) => Err(pass_failed("rebalance", reason)),
    }
}
