//! The audit trail for auditors and administrators (`ReadAudit`): its public keys, its
//! latest checkpoint, and the export `stelectl audit verify` checks offline. Every export
//! is itself an event of the trail.

use super::*;

#[derive(serde::Deserialize)]
pub(super) struct EventsQuery {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    actor: Option<String>,
    event: Option<String>,
    outcome: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// The most events one answer holds (`limit` lowers it; `after` pages on).
const EVENTS_MAX: usize = 10_000;

#[derive(serde::Deserialize)]
pub(super) struct VersionsQuery {
    bucket: String,
    prefix: Option<String>,
    mode: Option<String>,
    retain_before: Option<String>,
    retain_after: Option<String>,
    legal_hold: Option<bool>,
    format: Option<String>,
}

/// A time argument in the trail's own form, or 400.
fn time_arg(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|t| {
        stele::audit::entry::normalize_time(&t).ok_or_else(|| {
            bad(format!(
                "{name} {t:?} is not a date (2026-11-30) or an RFC 3339 time"
            ))
        })
    })
    .transpose()
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
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
    let csv = match q.format.as_deref() {
        None | Some("ndjson") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(bad(format!(
                "format {other:?} is not offered: ndjson or csv"
            )));
        }
    };
    if let Some(o) = q.outcome.as_deref()
        && !matches!(o, "ok" | "refused")
    {
        return Err(bad(format!("outcome {o:?} is ok or refused")));
    }
    let filter = stele::audit::query::EventFilter {
        from: time_arg("from", q.from)?,
        to: time_arg("to", q.to)?,
        bucket: q.bucket,
        key: q.key,
        actor: q.actor,
        event: q.event,
        outcome: q.outcome,
        after: q.after,
    };
    if csv || filter != stele::audit::query::EventFilter::default() || q.limit.is_some() {
        return events_query(&actor, filter, q.limit, csv).await;
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

/// A query's answer: NDJSON events with proofs and the checkpoint they lead to, or CSV
/// for reading (not verifiable). `x-stele-next` names the `after` of the next page.
async fn events_query(
    actor: &Actor,
    filter: stele::audit::query::EventFilter,
    limit: Option<usize>,
    csv: bool,
) -> Result<Response, ApiError> {
    let limit = limit.unwrap_or(EVENTS_MAX).clamp(1, EVENTS_MAX);
    let page = actor.node.audit_query(filter, limit).await?;
    let mut body = String::new();
    if csv {
        body.push_str("\"seq\",\"ts\",\"wall\",\"event\",\"outcome\",\"user\",\"access_key\",\"source\",\"request_id\",\"bucket\",\"key\",\"version\",\"reason\"\n");
        for e in &page.events {
            let v: serde_json::Value = serde_json::from_str(&e.leaf).unwrap_or_default();
            let t = |path: &[&str]| {
                path.iter()
                    .try_fold(&v, |v, p| v.get(p))
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_owned()
            };
            let fields = [
                e.seq.to_string(),
                t(&["ts"]),
                t(&["wall"]),
                t(&["event"]),
                t(&["outcome"]),
                t(&["actor", "user"]),
                t(&["actor", "key"]),
                t(&["actor", "source"]),
                t(&["request_id"]),
                t(&["target", "bucket"]),
                t(&["target", "key"]),
                t(&["target", "version"]),
                t(&["reason"]),
            ];
            body.push_str(
                &fields
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            body.push('\n');
        }
    } else {
        for e in &page.events {
            body.push_str(&serde_json::to_string(e).unwrap_or_default());
            body.push('\n');
        }
        body.push_str(&serde_json::json!({ "checkpoint": page.checkpoint }).to_string());
        body.push('\n');
    }
    let mut resp = (
        [(
            http::header::CONTENT_TYPE,
            if csv {
                "text/csv"
            } else {
                "application/x-ndjson"
            },
        )],
        body,
    )
        .into_response();
    if let Some(next) = page.next
        && let Ok(v) = http::HeaderValue::from_str(&next.to_string())
    {
        resp.headers_mut().insert("x-stele-next", v);
    }
    Ok(resp)
}

pub(super) async fn retention_versions(
    axum::Extension(actor): axum::Extension<Actor>,
    axum::extract::Query(q): axum::extract::Query<VersionsQuery>,
) -> Result<Response, ApiError> {
    let b = bucket(&q.bucket)?;
    need(&actor, Action::ReadAudit, Some(&b))?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(bad(format!("format {other:?} is not offered: json or csv"))),
    };
    if let Some(m) = q.mode.as_deref()
        && !matches!(m, "COMPLIANCE" | "GOVERNANCE" | "none")
    {
        return Err(bad("mode is COMPLIANCE, GOVERNANCE or none"));
    }
    let filter = stele::audit::report::VersionFilter {
        mode: q.mode,
        retain_before: time_arg("retain_before", q.retain_before)?,
        retain_after: time_arg("retain_after", q.retain_after)?,
        legal_hold: q.legal_hold,
    };
    let rows = actor
        .node
        .retention_versions(b, q.prefix.unwrap_or_default(), filter)
        .await?;
    Ok(if csv {
        (
            [(http::header::CONTENT_TYPE, "text/csv")],
            stele_tlog::report::rows_csv(&rows),
        )
            .into_response()
    } else {
        Json(rows).into_response()
    })
}
