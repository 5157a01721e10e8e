//! The cluster's membership: `cluster init` (the CA, this node's certificate, the first
//! state of the cluster), join tokens, members and their removal. Administrators only
//! (`ManageIdentities`: membership decides which machines hold every object); the status
//! is readable with `ReadStatus`.

use stele::membership::ClusterChange;

use super::*;

fn member(m: stele::membership::Member) -> api::cluster::Member {
    api::cluster::Member {
        node_id: m.node_id,
        cert_fingerprint: m.cert_fingerprint,
        joined: wire::time(m.joined),
        removed: m.removed.map(wire::time),
    }
}

async fn answer(admin: &Admin) -> Result<api::cluster::Cluster, ApiError> {
    let (ident, members) = admin.node.cluster().await?;
    Ok(api::cluster::Cluster {
        cluster_id: ident.as_ref().map(|i| i.cluster_id.clone()),
        ca_fingerprint: ident.map(|i| i.ca_fingerprint),
        node_id: admin.cluster.files.node_id().ok().flatten(),
        rpc_addr: admin.cluster.rpc_addr.map(|a| a.to_string()),
        members: members.into_iter().map(member).collect(),
    })
}

pub(super) async fn cluster_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::cluster::Cluster>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(answer(&admin).await?))
}

pub(super) async fn cluster_init(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<(StatusCode, Json<api::cluster::Cluster>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    if let (Some(i), _) = admin.node.cluster().await? {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "AlreadyInitialized",
            format!("this node already belongs to cluster {}", i.cluster_id),
        ));
    }
    let cluster = admin.cluster.clone();
    let i = cluster
        .init()
        .await
        .map_err(|e| match e.downcast::<stele::StoreError>() {
            Ok(store) => ApiError::from(store),
            Err(e) => ApiError(StatusCode::CONFLICT, "ClusterInitFailed", format!("{e:#}")),
        })?;
    tracing::info!(actor = %actor.user.name, cluster = %i.cluster_id, "cluster initialized");
    Ok((StatusCode::CREATED, Json(answer(&admin).await?)))
}

pub(super) async fn join_token(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    body: Option<Json<api::cluster::NewJoinToken>>,
) -> Result<(StatusCode, Json<api::cluster::JoinToken>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let ttl = body.and_then(|Json(b)| b.ttl_secs).unwrap_or(3600);
    if ttl == 0 || ttl > 7 * 86_400 {
        return Err(bad("ttl_secs is 1 to 604800 (a week)"));
    }
    let (ident, _) = admin.node.cluster().await?;
    let t = actor.node.issue_join_token(ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(api::cluster::JoinToken {
            token: t.secret,
            expires: wire::time(t.expires),
            ca_fingerprint: ident.map(|i| i.ca_fingerprint).unwrap_or_default(),
            rpc_addr: admin.cluster.rpc_addr.map(|a| a.to_string()),
        }),
    ))
}

pub(super) async fn remove_member(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<api::cluster::Member>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    if admin.cluster.files.node_id().ok().flatten().as_deref() == Some(id.as_str()) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "RemovesItself",
            "a node does not remove itself: ask another member".into(),
        ));
    }
    let out = actor
        .node
        .change_membership(ClusterChange::Remove { node_id: id })
        .await?;
    match out {
        stele::membership::ClusterOutcome::Removed(m) => Ok(Json(member(m))),
        other => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("removing a member answered {other:?}"),
        )),
    }
}
