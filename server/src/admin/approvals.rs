//! The two-person rule: approvals pending, approving, denying, turning it on or off.

use super::*;

pub(super) async fn list_approvals(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::approvals::Approval>>, ApiError> {
    need(&actor, Action::Approve, None)?;
    let list = actor.node.approvals().await?;
    Ok(Json(list.into_iter().map(wire::approval).collect()))
}

pub(super) async fn approve(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<api::approvals::Approved>, ApiError> {
    need(&actor, Action::Approve, None)?;
    let op = actor.node.approve(&actor.user.name, &id).await?;
    actor.node.audit(&AuditEvent::Approved {
        actor: actor.user.name.clone(),
        operation: op.clone(),
    });
    Ok(Json(api::approvals::Approved {
        operation: wire::operation(op),
        status: api::approvals::OutcomeStatus::Done,
    }))
}

pub(super) async fn deny(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::Approve, None)?;
    let rec = actor.node.deny(&id).await?;
    actor.node.audit(&AuditEvent::ApprovalDenied {
        actor: actor.user.name.clone(),
        id: rec.id,
    });
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn set_two_person(
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::approvals::SetTwoPersonRule>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let o = actor
        .node
        .set_two_person_rule(&actor.user.name, body.enabled)
        .await?;
    actor.node.audit(&AuditEvent::TwoPersonRule {
        actor: actor.user.name.clone(),
        enabled: body.enabled,
        pending: matches!(o, Outcome::Pending(_)),
    });
    Ok(outcome(o))
}
