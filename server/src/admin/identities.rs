//! Users, their role grants and keys, and governance-bypass grants.

use super::*;

pub(super) fn scope_of(buckets: &Option<Vec<String>>) -> Result<Scope, ApiError> {
    match buckets {
        None => Ok(Scope::All),
        Some(list) => Ok(Scope::Buckets(
            list.iter().map(|b| bucket(b)).collect::<Result<_, _>>()?,
        )),
    }
}

pub(super) fn scope_body(s: &Scope) -> Option<Vec<String>> {
    match s {
        Scope::All => None,
        Scope::Buckets(l) => Some(l.iter().map(|b| b.to_string()).collect()),
    }
}

pub(super) fn grants_of(body: &[api::identities::Grant]) -> Result<Vec<Grant>, ApiError> {
    body.iter()
        .map(|g| {
            Ok(Grant {
                role: Role::parse(&g.role).ok_or_else(|| {
                    bad("roles: backup-writer, restore-reader, auditor, admin, replication-peer")
                })?,
                scope: scope_of(&g.buckets)?,
            })
        })
        .collect()
}

pub(super) fn key_view(k: &KeyRecord) -> api::identities::Key {
    api::identities::Key {
        access_key: k.access_key.clone(),
        plane: wire::plane(k.plane),
        created: wire::time(k.created),
        revoked: k.revoked.map(wire::time),
    }
}

pub(super) fn user_view((u, keys): UserWithKeys) -> api::identities::User {
    api::identities::User {
        name: u.name.clone(),
        disabled: u.disabled,
        grants: u
            .grants
            .iter()
            .map(|g| api::identities::Grant {
                role: g.role.as_str().to_owned(),
                buckets: scope_body(&g.scope),
            })
            .collect(),
        governance_bypass: u
            .bypass_governance
            .as_ref()
            .map(|s| api::identities::Bypass {
                buckets: scope_body(s),
            }),
        keys: keys.iter().map(key_view).collect(),
    }
}

pub(super) async fn list_users(
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<api::identities::User>>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let users = actor.node.users().await?;
    Ok(Json(users.into_iter().map(user_view).collect()))
}

pub(super) async fn add_user(
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<api::identities::NewUser>,
) -> Result<(StatusCode, Json<api::identities::User>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let grants = grants_of(&body.grants)?;
    let view = user_view(actor.node.create_user(&body.name, grants).await?);
    actor.node.audit(&AuditEvent::UserCreated {
        actor: actor.user.name.clone(),
        user: view.name.clone(),
    });
    Ok((StatusCode::CREATED, Json(view)))
}

pub(super) fn outcome(o: Outcome) -> (StatusCode, Json<api::approvals::Outcome>) {
    match o {
        Outcome::Done => (StatusCode::OK, Json(api::approvals::Outcome::done())),
        Outcome::Pending(rec) => (
            StatusCode::ACCEPTED,
            Json(api::approvals::Outcome::pending(wire::pending(rec))),
        ),
    }
}

pub(super) async fn delete_user(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let o = actor.node.delete_user(&actor.user.name, &name).await?;
    actor.node.audit(&AuditEvent::UserDeleted {
        actor: actor.user.name.clone(),
        user: name,
        pending: matches!(o, Outcome::Pending(_)),
    });
    Ok(outcome(o))
}

pub(super) async fn set_grants(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<api::identities::SetGrants>,
) -> Result<Json<api::identities::User>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let grants = grants_of(&body.grants)?;
    let view = user_view(actor.node.set_grants(&name, grants).await?);
    actor.node.audit(&AuditEvent::GrantsSet {
        actor: actor.user.name.clone(),
        user: view.name.clone(),
    });
    Ok(Json(view))
}

pub(super) async fn toggle_user(
    actor: Actor,
    name: String,
    disabled: bool,
) -> Result<Json<api::identities::User>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let view = user_view(actor.node.set_disabled(&name, disabled).await?);
    actor.node.audit(&AuditEvent::UserDisabled {
        actor: actor.user.name.clone(),
        user: view.name.clone(),
        disabled,
    });
    Ok(Json(view))
}

pub(super) async fn disable_user(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::identities::User>, ApiError> {
    toggle_user(actor, name, true).await
}

pub(super) async fn enable_user(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<api::identities::User>, ApiError> {
    toggle_user(actor, name, false).await
}

pub(super) fn new_key_view(k: NewKey) -> api::identities::NewKey {
    api::identities::NewKey {
        user: k.record.user.clone(),
        plane: wire::plane(k.record.plane),
        access_key: k.record.access_key.clone(),
        secret_key: k.secret,
    }
}

pub(super) async fn create_key(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    body: Option<Json<api::identities::KeyRequest>>,
) -> Result<(StatusCode, Json<api::identities::NewKey>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let plane = match body.and_then(|b| b.0.plane).as_deref() {
        None | Some("s3") => Plane::S3,
        Some("admin") => Plane::Admin,
        Some(_) => return Err(bad("plane is s3 or admin")),
    };
    let k = actor.node.create_key(&name, plane).await?;
    actor.node.audit(&AuditEvent::KeyCreated {
        actor: actor.user.name.clone(),
        user: k.record.user.clone(),
        access_key: k.record.access_key.clone(),
    });
    Ok((StatusCode::CREATED, Json(new_key_view(k))))
}

pub(super) async fn rotate_key(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(access_key): Path<String>,
) -> Result<(StatusCode, Json<api::identities::NewKey>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let k = actor.node.rotate_key(&access_key).await?;
    actor.node.audit(&AuditEvent::KeyRotated {
        actor: actor.user.name.clone(),
        old: access_key,
        new: k.record.access_key.clone(),
    });
    Ok((StatusCode::CREATED, Json(new_key_view(k))))
}

pub(super) async fn revoke_key(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(access_key): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    actor.node.revoke_key(&access_key).await?;
    actor.node.audit(&AuditEvent::KeyRevoked {
        actor: actor.user.name.clone(),
        access_key,
    });
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn bypass_for(
    actor: Actor,
    user: String,
    body: api::identities::SetBypass,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let scope = if body.allowed {
        Some(scope_of(&body.buckets)?)
    } else {
        None
    };
    let o = actor
        .node
        .set_bypass(&actor.user.name, &user, scope)
        .await?;
    actor.node.audit(&AuditEvent::GovernanceBypass {
        actor: actor.user.name.clone(),
        user,
        allowed: body.allowed,
        pending: matches!(o, Outcome::Pending(_)),
    });
    Ok(outcome(o))
}

pub(super) async fn set_user_bypass(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(user): Path<String>,
    Json(body): Json<api::identities::SetBypass>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    bypass_for(actor, user, body).await
}

/// The same, naming the user by one of its S3 keys.
pub(super) async fn set_key_bypass(
    axum::Extension(actor): axum::Extension<Actor>,
    Path(access_key): Path<String>,
    Json(body): Json<api::identities::SetBypass>,
) -> Result<(StatusCode, Json<api::approvals::Outcome>), ApiError> {
    let user = actor.node.key(&access_key).await?.user;
    bypass_for(actor, user, body).await
}
