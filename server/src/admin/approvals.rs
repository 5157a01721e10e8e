//! The two-person rule: approvals pending, approving, denying, turning it on or off.

use super::*;

pub(super) async fn list_approvals(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::approvals::Approval>>, ApiError> {
    need(&actor, Action::Approve, None)?;
    let list = admin.node.approvals().await?;
    Ok(Json(list.into_iter().map(wire::approval).collect()))
}

pub(super) async fn approve(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<api::approvals::Approved>, ApiError> {
    need(&actor, Action::Approve, None)?;
    let op = admin.node.approve(&actor.user.name, &id).await?;
    AuditEvent::Approved {
        actor: actor.user.name.clone(),
        operation: op.clone(),
    }
    .emit();
    Ok(Json(api::approvals::Approved {
        operation: wire::operation(op),
        status: api::approvals::OutcomeStatus::Done,
    }))
}

pub(super) async fn deny(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::Approve, None)?;
    let rec = admin.node.deny(&id).await?;
    AuditEvent::ApprovalDenied {
        actor: actor.user.name.clone(),
        id: rec.id,
    }
    .emit();
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn set_two_person(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::approvals::SetTwoPersonRule>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let o = admin
        .node
        .set_two_person_rule(&actor.user.name, body.enabled)
        .await?;
    AuditEvent::TwoPersonRule {
        actor: actor.user.name.clone(),
        enabled: body.enabled,
        pending: matches!(o, Outcome::Pending(_)),
    }
    .emit();
    Ok(outcome(o))
}
