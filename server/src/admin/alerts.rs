//! Alert sinks (webhooks), the delivery queue, test alerts, and backup-freshness
//! expectations.

use super::*;

pub(super) async fn list_sinks(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::alerts::Sink>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    actor
        .node
        .alert_sinks()
        .await
        .map_err(ApiError::from)
        .map(|l| Json(l.into_iter().map(wire::sink).collect()))
}

pub(super) async fn set_sink(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::alerts::SetSink>,
) -> Result<Json<api::alerts::Sink>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    if !body.url.starts_with("http://") && !body.url.starts_with("https://") {
        return Err(bad("a sink URL starts with http:// or https://"));
    }
    actor
        .node
        .set_alert_sink(&name, &body.url)
        .await
        .map_err(ApiError::from)
        .map(|s| Json(wire::sink(s)))
}

pub(super) async fn remove_sink(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    actor
        .node
        .remove_alert_sink(&name)
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn alert_queue(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::alerts::QueuedAlert>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    actor
        .node
        .alert_queue(1000)
        .await
        .map_err(ApiError::from)
        .map(|l| Json(l.into_iter().map(wire::queued_alert).collect()))
}

pub(super) async fn alert_test(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    actor
        .node
        .raise(stele::alert::Alert::Test {
            message: format!("test alert sent by {}", actor.user.name),
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn set_expectation(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::alerts::Expectation>,
) -> Result<StatusCode, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    actor.node.bucket(&b).await?;
    actor
        .node
        .expect_backups(&name, body.every_secs)
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
