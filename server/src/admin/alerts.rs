//! Alert sinks (webhooks), the delivery queue, test alerts, and backup-freshness
//! expectations.

use super::*;

pub(super) async fn list_sinks(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::alerts::Sink>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let a = admin.alerts.clone();
    blocking(move || a.sinks().map_err(internal))
        .await
        .map(|l| Json(l.into_iter().map(wire::sink).collect()))
}

pub(super) async fn set_sink(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::alerts::SetSink>,
) -> Result<Json<api::alerts::Sink>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    if !body.url.starts_with("http://") && !body.url.starts_with("https://") {
        return Err(bad("a sink URL starts with http:// or https://"));
    }
    let a = admin.alerts.clone();
    blocking(move || a.set_sink(&name, &body.url).map_err(internal))
        .await
        .map(|s| Json(wire::sink(s)))
}

pub(super) async fn remove_sink(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let a = admin.alerts.clone();
    blocking(move || a.remove_sink(&name).map_err(internal)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn alert_queue(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::alerts::QueuedAlert>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let a = admin.alerts.clone();
    blocking(move || a.queue(1000).map_err(internal))
        .await
        .map(|l| Json(l.into_iter().map(wire::queued_alert).collect()))
}

pub(super) async fn alert_test(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    let a = admin.alerts.clone();
    let who = actor.user.name.clone();
    blocking(move || {
        a.raise(stele::alert::Alert::Test {
            message: format!("test alert sent by {who}"),
        });
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn set_expectation(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::alerts::Expectation>,
) -> Result<StatusCode, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    admin.control.store().bucket(&b)?;
    let a = admin.alerts.clone();
    blocking(move || a.expect(&name, body.every_secs).map_err(internal)).await?;
    Ok(StatusCode::NO_CONTENT)
}
