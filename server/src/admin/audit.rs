//! The audit trail for auditors and administrators (`ReadAudit`): its public keys, its
//! latest checkpoint, and the export `stelectl audit verify` checks offline. Every export
//! is itself an event of the trail.

use super::*;

#[derive(serde::Deserialize)]
pub(super) struct EventsQuery {
    format: Option<String>,
}

pub(super) async fn audit_keys(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::audit::Keys>, ApiError> {
    need(&actor, Action::ReadAudit, None)?;
    let (origin, key) = actor.node.audit_key();
    Ok(Json(api::audit::Keys {
        origin,
        keys: key.into_iter().collect(),
    }))
}

pub(super) async fn audit_latest(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::audit::LatestCheckpoint>, ApiError> {
    need(&actor, Action::ReadAudit, None)?;
    match actor.node.audit_latest().await? {
        Some((size, checkpoint)) => Ok(Json(api::audit::LatestCheckpoint { size, checkpoint })),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no checkpoint has been signed yet".into(),
        )),
    }
}

pub(super) async fn audit_events(
    axum::Extension(actor): axum::Extension<Actor>,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> Result<Response, ApiError> {
    need(&actor, Action::ReadAudit, None)?;
    match q.format.as_deref() {
        None | Some("ndjson") => {}
        Some(other) => {
            return Err(bad(format!(
                "format {other:?} is not offered: the export is ndjson"
            )));
        }
    }
    let export = actor.node.audit_export().await?;
    Ok((
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        export.ndjson,
    )
        .into_response())
}

pub(super) async fn make_report(
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::audit::ReportRequest>,
) -> Result<Json<api::audit::Report>, ApiError> {
    let b = bucket(&body.bucket)?;
    need(&actor, Action::ReadAudit, Some(&b))?;
    let r = actor
        .node
        .audit_report(b, body.prefix.unwrap_or_default())
        .await?;
    Ok(Json(api::audit::Report {
        attestation: String::from_utf8_lossy(&r.attestation).into_owned(),
        signature: r.signature,
        rows_csv: r.rows_csv,
    }))
}
