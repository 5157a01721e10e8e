//! Background workers: their status and controls (run, pause, resume, cancel), scrub,
//! lifecycle, restore drills, the repair queue, the watchdog, and healing a disk.

use super::*;

pub(super) async fn lifecycle_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::background::lifecycle::LifecycleStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.lifecycle.status()))
}

#[derive(Deserialize)]
pub(super) struct RunQuery {
    wait: Option<bool>,
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
    Query(q): Query<RunQuery>,
) -> Result<Json<Option<stele::background::lifecycle::PassReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    if q.wait.unwrap_or(false) {
        match admin.lifecycle.run_and_wait().await {
            None => Ok(Json(None)),
            Some(Ok(r)) => Ok(Json(Some(r))),
            Some(Err(reason)) => Err(pass_failed("lifecycle", reason)),
        }
    } else {
        admin.lifecycle.run_now();
        Ok(Json(None))
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        e.to_string(),
    )
}

pub(super) async fn watchdog_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::background::watchdog::WatchStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.watchdog.status()))
}

/// The status of every background worker.
pub(super) async fn workers(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<serde_json::Value>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let r = admin.repair.clone();
    let repair = blocking(move || Ok(r.status()?)).await?;
    Ok(Json(serde_json::json!({
        "scrub": admin.scrub.status(),
        "lifecycle": admin.lifecycle.status(),
        "drill": admin.drill.status(),
        "repair": repair,
        "watchdog": admin.watchdog.status(),
        "runners": admin.runners(),
    })))
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
    match action.as_str() {
        "run" => c.run_now(),
        "pause" => c.set_paused(true),
        "resume" => c.set_paused(false),
        "cancel" => c.cancel(),
        _ => return Err(no_such()),
    }
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn scrub_pause(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    admin.scrub.set_paused(true);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn scrub_resume(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    admin.scrub.set_paused(false);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn drill_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::background::drill::DrillStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.drill.status()))
}

pub(super) async fn drill_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::background::drill::DrillReport>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    match admin.drill.run_and_wait().await {
        Ok(r) => Ok(Json(r)),
        Err(reason) => Err(pass_failed("drill", reason)),
    }
}

pub(super) async fn repair_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::background::drill::RepairStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let r = admin.repair.clone();
    blocking(move || Ok(r.status()?)).await.map(Json)
}

pub(super) async fn scrub_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::background::scrub::ScrubStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.scrub.status()))
}

pub(super) async fn scrub_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Option<stele::background::scrub::ScrubReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    if q.wait.unwrap_or(false) {
        scrub_and_wait(&admin).await
    } else {
        admin.scrub.run_now();
        Ok(Json(None))
    }
}

pub(super) async fn scrub_and_wait(
    admin: &Admin,
) -> Result<Json<Option<stele::background::scrub::ScrubReport>>, ApiError> {
    match admin.scrub.run_and_wait().await {
        None => Ok(Json(None)),
        Some(Ok(r)) => Ok(Json(Some(r))),
        Some(Err(reason)) => Err(pass_failed("scrub", reason)),
    }
}

/// Heal: a replaced (emptied) disk directory is stamped and brought online; a scrub pass
/// with repair then rebuilds its shards. With `?wait=true` the pass's report is returned.
pub(super) async fn heal_disk(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Option<stele::background::scrub::ScrubReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    let store = admin.control.store().clone();
    if !store.disks().iter().any(|d| d.id == id) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "NoSuchDisk",
            format!("no disk {id}"),
        ));
    }
    blocking(move || Ok(store.heal_disk(&id)?)).await?;
    if q.wait.unwrap_or(false) {
        scrub_and_wait(&admin).await
    } else {
        admin.scrub.run_now();
        Ok(Json(None))
    }
}
