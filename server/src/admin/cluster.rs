//! The cluster's membership: `cluster init` (the CA, this node's certificate, the first
//! state of the cluster), join tokens, members and their removal. Administrators only
//! (`ManageIdentities`: membership decides which machines hold every object); the status
//! is readable with `ReadStatus`.

use stele::membership::ClusterChange;

use super::*;

fn member(
    m: stele::membership::Member,
    reach: &[(String, Option<std::time::Duration>)],
) -> api::cluster::Member {
    api::cluster::Member {
        unreachable_secs: reach
            .iter()
            .find(|(n, _)| *n == m.node_id)
            .and_then(|(_, down)| down.map(|d| d.as_secs())),
        node_id: m.node_id,
        cert_fingerprint: m.cert_fingerprint,
        joined: wire::time(m.joined),
        removed: m.removed.map(wire::time),
    }
}

async fn answer(admin: &Admin) -> Result<api::cluster::Cluster, ApiError> {
    let (ident, members) = admin.node.cluster().await?;
    let disks = admin.node.placement_disks().await?;
    let files = &admin.cluster.files;
    Ok(api::cluster::Cluster {
        membership_kept_here: ident.is_some(),
        cluster_id: match &ident {
            Some(i) => Some(i.cluster_id.clone()),
            None => files.cluster_id().ok().flatten(),
        },
        ca_fingerprint: match ident {
            Some(i) => Some(i.ca_fingerprint),
            None => files.ca_fingerprint().ok().flatten(),
        },
        node_id: files.node_id().ok().flatten(),
        rpc_addr: admin.cluster.rpc_addr.map(|a| a.to_string()),
        members: {
            let reach = admin.node.member_reachability();
            members.into_iter().map(|m| member(m, &reach)).collect()
        },
        raft: admin.cluster.group().map(|g| {
            let s = g.status();
            api::cluster::RaftStatus {
                state: s.state.to_owned(),
                leader: s.leader,
                leader_addr: s.leader_addr,
                term: s.term,
                last_log_index: s.last_log_index,
                last_applied: s.last_applied,
                voters: s.voters,
                learners: s.learners,
                lease: s.lease,
                replication: s
                    .matched
                    .into_iter()
                    .map(|(node, matched)| api::cluster::MemberLag {
                        lag: matched
                            .zip(s.last_log_index)
                            .map(|(m, last)| last.saturating_sub(m)),
                        node,
                        matched,
                    })
                    .collect(),
            }
        }),
        disks: disks
            .into_iter()
            .map(|d| api::cluster::PlacementDisk {
                id: d.id,
                uuid: d.uuid.map(|u| u.to_string()),
                node: d.node,
                site: d.site,
                state: serde_json::to_value(d.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                free_bytes: d.free_bytes,
            })
            .collect(),
        geo: {
            let g = admin.node.geo_status();
            Some(api::cluster::Geo {
                sites: g.sites,
                profile: g.profile,
                per_site: g.per_site,
                refusal: g.refusal,
                sites_down: g.sites_down,
            })
        },
    })
}

/// The refusal for a membership change asked of a node that joined a cluster but has not
/// received its membership yet (the Raft group's snapshot reaches it shortly after it
/// joins).
fn joined_elsewhere(admin: &Admin) -> Option<ApiError> {
    let files = &admin.cluster.files;
    if !files.has_node_certificate() {
        return None;
    }
    let cluster = files.cluster_id().ok().flatten().unwrap_or_default();
    Some(ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "MembershipNotReceived",
        format!(
            "this node joined cluster {cluster} and has not received its membership yet: \
             try again shortly, or ask the cluster's leader"
        ),
    ))
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
    if admin.node.replicates().await? {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "ReplicationConfigured",
            "this node replicates (peers, rules or a replica bucket): replication to or from a \
             cluster is not built yet; remove its replication first"
                .into(),
        ));
    }
    if let (Some(i), _) = admin.node.cluster().await? {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "AlreadyInitialized",
            format!("this node already belongs to cluster {}", i.cluster_id),
        ));
    }
    if admin.cluster.files.has_node_certificate() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "AlreadyInitialized",
            format!(
                "this node joined cluster {}",
                admin
                    .cluster
                    .files
                    .cluster_id()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            ),
        ));
    }
    if admin.cluster.rpc_addr.is_none() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "NoClusterListener",
            "start this node with --cluster-addr first: the nodes join through it".into(),
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
        return Err(bad(
            "the token's lifetime (--ttl, ttl_secs) is 1 to 604800 seconds (a week)",
        ));
    }
    let (ident, _) = admin.node.cluster().await?;
    if ident.is_none()
        && let Some(e) = joined_elsewhere(&admin)
    {
        return Err(e);
    }
    let t = actor.node.issue_join_token(ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(api::cluster::JoinToken {
            token: t.secret,
            expires: wire::time(t.expires),
            ca_fingerprint: ident.map(|i| i.ca_fingerprint).unwrap_or_default(),
            // Where the joiner goes: the node that signs certificates.
            rpc_addr: admin.cluster.join_addr().await,
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
    if admin.node.cluster().await?.0.is_none()
        && let Some(e) = joined_elsewhere(&admin)
    {
        return Err(e);
    }
    let out = actor
        .node
        .change_membership(ClusterChange::Remove { node_id: id })
        .await?;
    match out {
        stele::membership::ClusterOutcome::Removed(m) => {
            tracing::info!(actor = %actor.user.name, node = %m.node_id, "cluster member removed");
            admin.cluster.leave_group(&m.node_id);
            Ok(Json(member(m, &admin.node.member_reachability())))
        }
        other => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("removing a member answered {other:?}"),
        )),
    }
}

/// The layout as `GET /v1/cluster/layout` answers it.
async fn layout_answer(admin: &Admin) -> Result<api::cluster::Layout, ApiError> {
    let (l, staged) = admin.node.layout().await?;
    let staged_weight = |u: stele::disk::DiskUuid| {
        staged
            .as_ref()
            .and_then(|s| s.weights.iter().find(|(d, _)| *d == u).map(|(_, w)| *w))
    };
    Ok(api::cluster::Layout {
        epoch: l.epoch,
        since: (l.epoch > 0).then(|| wire::time(l.since)),
        disks: l
            .disks
            .iter()
            .map(|d| api::cluster::LayoutDisk {
                uuid: d.uuid.to_string(),
                id: d.id.clone(),
                node: d.node_id.clone(),
                site: d.site.clone(),
                weight: d.weight,
                staged_weight: staged_weight(d.uuid),
            })
            .collect(),
        staged_base: staged.as_ref().map(|s| s.base),
        placing_epoch: admin.node.layout_epoch(),
    })
}

pub(super) async fn layout_show(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::cluster::Layout>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(layout_answer(&admin).await?))
}

/// Stages a disk's weight for the next epoch (nothing moves, nothing is placed
/// differently until it is applied).
pub(super) async fn layout_stage(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(uuid): Path<String>,
    body: Option<Json<api::cluster::StageWeight>>,
) -> Result<Json<api::cluster::Layout>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let disk = stele::disk::DiskUuid::parse(&uuid)
        .ok_or_else(|| bad("a disk is named by its UUID, 32 hex digits"))?;
    let Some(Json(body)) = body else {
        return Err(bad("the body is {\"weight\": N}"));
    };
    actor
        .node
        .change_membership(ClusterChange::StageWeight {
            disk,
            weight: body.weight,
        })
        .await?;
    Ok(Json(layout_answer(&admin).await?))
}

/// Applies what is staged, if the layout is still at the epoch the caller saw: new
/// writes follow it from then on; existing shards move only by the rebalancer.
pub(super) async fn layout_apply(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    body: Option<Json<api::cluster::ApplyLayout>>,
) -> Result<Json<api::cluster::Layout>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let Some(Json(body)) = body else {
        return Err(bad(
            "the body is {\"epoch\": N}, the epoch the layout is at",
        ));
    };
    actor.node.apply_layout(body.epoch).await?;
    Ok(Json(layout_answer(&admin).await?))
}

/// Forgets what is staged.
pub(super) async fn layout_revert(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<api::cluster::Layout>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    actor
        .node
        .change_membership(ClusterChange::RevertLayout)
        .await?;
    Ok(Json(layout_answer(&admin).await?))
}

/// The members of `site` in the layout and its disks' record names; 404 when the layout
/// has no such site, 409 when it is this node's own.
async fn site_members(
    admin: &Admin,
    site: &str,
) -> Result<(Vec<String>, std::collections::HashSet<String>), ApiError> {
    let (layout, _) = admin.node.layout().await?;
    let disks: Vec<_> = layout.disks.iter().filter(|d| d.site == site).collect();
    if disks.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "NoSuchSite",
            format!("the layout has no disk in site {site}"),
        ));
    }
    let mut nodes: Vec<String> = disks.iter().map(|d| d.node_id.clone()).collect();
    nodes.sort();
    nodes.dedup();
    let me = admin.cluster.files.node_id().ok().flatten();
    if me.as_ref().is_some_and(|m| nodes.contains(m)) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "RemovesItself",
            format!("this node is in site {site}: ask a node of another site"),
        ));
    }
    Ok((nodes, disks.iter().map(|d| d.uuid.to_string()).collect()))
}

/// What removing `site` (members `nodes`) would leave wrong: the node that admits new
/// ones gone, profiles wider than the disks left, fewer than three sites.
async fn site_warnings(admin: &Admin, site: &str, nodes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok((_, members)) = admin.node.cluster().await
        && let Some(first) = members
            .iter()
            .filter(|m| m.active())
            .min_by_key(|m| m.joined)
        && nodes.contains(&first.node_id)
    {
        out.push(format!(
            "member {} of site {site} ran `cluster init` and alone admits new nodes: once it \
             is removed, no node can join this cluster",
            first.node_id
        ));
    }
    let Ok((layout, _)) = admin.node.layout().await else {
        return out;
    };
    let left: Vec<_> = layout.disks.iter().filter(|d| d.site != site).collect();
    let mut sites: Vec<&str> = left.iter().map(|d| d.site.as_str()).collect();
    sites.sort_unstable();
    sites.dedup();
    if sites.len() < 3 {
        out.push(format!(
            "{} site(s) left ({}): no object will survive losing another site; add a site's \
             nodes and run `stelectl cluster rebalance` to spread the objects over it",
            sites.len(),
            sites.join(", ")
        ));
    }
    let mut profiles = vec![(
        "the node's profile".to_owned(),
        admin.node.geo_status().profile,
    )];
    if let Ok(buckets) = admin.node.bucket_usages().await {
        for (b, _) in buckets {
            if let Ok((geo, ec)) = admin.node.bucket_geo(&b.name).await
                && geo.profile.is_some()
            {
                profiles.push((format!("bucket {}'s profile", b.name), ec.to_string()));
            }
        }
    }
    for (what, profile) in profiles {
        let width: usize = profile
            .split('+')
            .filter_map(|n| n.parse::<usize>().ok())
            .sum();
        if width > left.len() {
            out.push(format!(
                "{what} {profile} needs {width} disks and {} would be left: those writes fail \
                 (503) until disks are added or the profile changed",
                left.len()
            ));
        }
    }
    out
}

/// `GET /v1/cluster/sites/{site}`: what removing the site for good would rebuild.
pub(super) async fn site_preview(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(site): Path<String>,
) -> Result<Json<api::cluster::SiteRemoval>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let (nodes, disks) = site_members(&admin, &site).await?;
    let cost = admin.node.queue_site_rebuild(disks, true).await?;
    let warnings = site_warnings(&admin, &site, &nodes).await;
    Ok(Json(api::cluster::SiteRemoval {
        site,
        nodes,
        removed: false,
        segments: cost.segments,
        shards: cost.shards,
        bytes: cost.bytes,
        warnings,
    }))
}

/// `DELETE /v1/cluster/sites/{site}`: removes a site lost for good. Every segment with
/// shards on its disks is queued for repair on this node (which rebuilds them onto the
/// disks left once they leave the layout), then its members are removed (their
/// certificates refused from then on, as `DELETE /v1/cluster/members/{id}` does). Queued
/// first, so a removal that fails half-way is simply asked again.
pub(super) async fn site_remove(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(site): Path<String>,
) -> Result<Json<api::cluster::SiteRemoval>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let (nodes, disks) = site_members(&admin, &site).await?;
    let mut warnings = site_warnings(&admin, &site, &nodes).await;
    let cost = admin.node.queue_site_rebuild(disks, false).await?;
    for id in &nodes {
        let out = actor
            .node
            .change_membership(ClusterChange::Remove {
                node_id: id.clone(),
            })
            .await?;
        if let stele::membership::ClusterOutcome::Removed(m) = out {
            tracing::info!(actor = %actor.user.name, node = %m.node_id, %site, "cluster member removed with its site");
            // One membership change at a time: each waits for the one before.
            if let Err(e) = admin
                .cluster
                .leave_group_and_wait(&m.node_id, std::time::Duration::from_secs(30))
                .await
            {
                warnings.push(format!(
                    "member {} is still in the Raft group ({e}): remove it again with \
                     `stelectl cluster remove {}`",
                    m.node_id, m.node_id
                ));
            }
        }
    }
    tracing::info!(actor = %actor.user.name, %site, segments = cost.segments, bytes = cost.bytes, "site removed: its shards are queued for rebuilding here");
    Ok(Json(api::cluster::SiteRemoval {
        site,
        nodes,
        removed: true,
        segments: cost.segments,
        shards: cost.shards,
        bytes: cost.bytes,
        warnings,
    }))
}
