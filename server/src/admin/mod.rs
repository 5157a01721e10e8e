//! The admin API: its own listener, JSON, never S3. Everything under `/v1` needs an
//! admin-plane credential (HTTP Basic: access key and secret), which the S3 port never
//! accepts, and the caller's roles must allow the call; `/health` is open for probes.
//! Privileged calls answer 202 with a pending approval while the two-person rule is in
//! force.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use stele::audit::AuditEvent;
use stele::background::lifecycle::LifecycleWorker;
use stele::background::runner::PassWorker;
use stele::control::Outcome;
use stele::identity::{Action, Grant, KeyRecord, NewKey, Plane, Role, Scope, UserRecord, access};
use stele::meta::{
    BelowMinimum, DefaultRetention, RetentionMode, RetentionPeriod, RetentionPolicy, Versioning,
};
use stele::node::UserWithKeys;
use stele::types::BucketName;
use stele_api as api;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::limiter::AuthLimiter;

mod alerts;
mod approvals;
mod audit;
mod buckets;
mod cluster;
mod error;
mod identities;
mod node;
mod replication;
mod wire;
mod workers;

use alerts::*;
use approvals::*;
use audit::*;
use buckets::*;
use cluster::*;
use identities::*;
use node::*;
use replication::*;
use workers::*;

pub use error::ApiError;
use error::bad;

#[derive(Clone)]
pub struct Admin {
    pub node: stele::Node,
    pub lifecycle: Arc<LifecycleWorker>,
    pub scrub: Arc<stele::background::scrub::ScrubWorker>,
    pub watchdog: Arc<stele::background::watchdog::Watchdog>,
    pub drill: Arc<stele::background::drill::DrillWorker>,
    pub repair: Arc<stele::background::drill::RepairWorker>,
    pub rebalance: Arc<stele::background::rebalance::RebalanceWorker>,
    pub delivery: Arc<crate::alerts::DeliveryWorker>,
    pub backfill: Arc<stele::background::backfill::BackfillWorker>,
    /// The replication audit.
    pub audit: Arc<stele::background::replication_audit::AuditWorker>,
    /// The audit trail's checkpointer.
    pub checkpoints: Arc<stele::background::trail::CheckpointWorker>,
    /// The audit trail's queue writer.
    pub trail_flush: Arc<stele::background::trail::FlushWorker>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub limiter: Arc<AuthLimiter>,
    /// The listeners' TLS and which of them serve it (`None`: both plain).
    pub tls: Option<(crate::tls::Tls, bool, bool)>,
    pub cluster: crate::cluster::Cluster,
}

/// The authenticated caller, put in the request by [`authenticate`].
#[derive(Clone)]
struct Actor {
    user: UserRecord,
    /// The node, acting for this caller: the audit trail names it with what it does.
    node: stele::Node,
}

pub fn router(admin: Admin) -> axum::Router {
    let v1 = axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/disks", get(disks))
        .route("/v1/clock", get(clock))
        .route("/v1/clock/resync", post(clock_resync))
        .route("/v1/users", get(list_users).post(add_user))
        .route("/v1/users/{name}", axum::routing::delete(delete_user))
        .route("/v1/users/{name}/grants", put(set_grants))
        .route("/v1/users/{name}/disable", post(disable_user))
        .route("/v1/users/{name}/enable", post(enable_user))
        .route("/v1/users/{name}/keys", post(create_key))
        .route("/v1/users/{name}/governance-bypass", put(set_user_bypass))
        .route("/v1/keys/{access_key}/rotate", post(rotate_key))
        .route("/v1/keys/{access_key}", axum::routing::delete(revoke_key))
        .route(
            "/v1/s3-keys/{access_key}/governance-bypass",
            put(set_key_bypass),
        )
        .route("/v1/buckets", get(list_buckets).post(create_bucket))
        .route("/v1/buckets/{bucket}/quota", get(get_quota).put(put_quota))
        .route(
            "/v1/buckets/{bucket}/geo",
            get(get_geo).put(put_geo).delete(delete_geo),
        )
        .route(
            "/v1/buckets/{bucket}/retention-policy",
            get(get_policy).put(put_policy),
        )
        .route("/v1/audit/keys", get(audit_keys))
        .route("/v1/audit/checkpoints/latest", get(audit_latest))
        .route("/v1/audit/events", get(audit_events))
        .route("/v1/reports", post(make_report))
        .route("/v1/retention/versions", get(retention_versions))
        .route("/v1/approvals", get(list_approvals))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
        .route("/v1/settings/two-person-rule", put(set_two_person))
        .route("/v1/alerts/sinks", get(list_sinks))
        .route("/v1/alerts/sinks/{name}", put(set_sink).delete(remove_sink))
        .route("/v1/alerts/queue", get(alert_queue))
        .route("/v1/alerts/test", post(alert_test))
        .route("/v1/buckets/{bucket}/expect", put(set_expectation))
        .route("/v1/watchdog", get(watchdog_status))
        .route("/v1/workers", get(workers))
        .route("/v1/workers/{name}/{action}", post(worker_action))
        .route("/v1/drill", get(drill_status))
        .route("/v1/drill/run", post(drill_run))
        .route("/v1/repair", get(repair_status))
        .route("/v1/scrub", get(scrub_status))
        .route("/v1/scrub/run", post(scrub_run))
        .route("/v1/scrub/pause", post(scrub_pause))
        .route("/v1/scrub/resume", post(scrub_resume))
        .route("/v1/disks/{id}/heal", post(heal_disk))
        .route("/v1/lifecycle", get(lifecycle_status))
        .route("/v1/lifecycle/run", post(lifecycle_run))
        .route("/v1/replication", get(replication_status))
        .route("/v1/replication/sources", get(sources))
        .route("/v1/replication/audit", get(audit_reports))
        .route("/v1/replication/audit/run", post(audit_run))
        .route("/v1/replication/peers", get(list_peers).post(add_peer))
        .route("/v1/cluster", get(cluster_status))
        .route("/v1/cluster/init", post(cluster_init))
        .route("/v1/cluster/join-tokens", post(join_token))
        .route("/v1/cluster/layout", get(layout_show))
        .route(
            "/v1/cluster/sites/{site}",
            get(site_preview).delete(site_remove),
        )
        .route("/v1/cluster/layout/disks/{uuid}", put(layout_stage))
        .route("/v1/cluster/layout/apply", post(layout_apply))
        .route(
            "/v1/cluster/layout/staged",
            axum::routing::delete(layout_revert),
        )
        .route("/v1/rebalance", get(rebalance_status))
        .route("/v1/rebalance/run", post(rebalance_run))
        .route(
            "/v1/cluster/members/{id}",
            axum::routing::delete(remove_member),
        )
        .route(
            "/v1/replication/peers/{name}",
            axum::routing::delete(remove_peer),
        )
        .route("/v1/replication/peers/{name}/dead", get(dead_entries))
        .route("/v1/replication/peers/{name}/retry", post(retry_dead))
        .route("/v1/replication/peers/{name}/resync", post(resync))
        .route("/v1/buckets/{bucket}/replication/epoch", get(writer_epoch))
        .route("/v1/buckets/{bucket}/replication/promote", post(promote))
        .route(
            "/v1/buckets/{bucket}/replication",
            get(get_bucket_replication)
                .put(put_bucket_replication)
                .delete(delete_bucket_replication),
        )
        .route_layer(middleware::from_fn_with_state(admin.clone(), authenticate));
    axum::Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(v1)
        .with_state(admin)
}

fn need(actor: &Actor, action: Action, bucket: Option<&BucketName>) -> Result<(), ApiError> {
    if access::allows(&actor.user, action, bucket) {
        Ok(())
    } else {
        actor.node.audit(&AuditEvent::AccessDenied {
            plane: Plane::Admin,
            actor: actor.user.name.clone(),
            action: format!("{action:?}"),
        });
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("{} may not {action:?}", actor.user.name),
        ))
    }
}

fn bucket(name: &str) -> Result<BucketName, ApiError> {
    BucketName::new(name)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "InvalidBucketName", e.to_string()))
}

async fn authenticate(
    State(admin): State<Admin>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    use base64::Engine;
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (key, secret) = match given.as_deref().and_then(|g| g.split_once(':')) {
        Some((k, s)) => (Some(k.to_owned()), s.to_owned()),
        None => (None, String::new()),
    };
    let addr = Some(peer.ip());
    // The key is the actor's once its secret matched; before, it is only claimed (kept in
    // the refusal's detail, shape-checked).
    let by = |user: Option<String>| stele::audit::Requester {
        key: user.as_ref().and(key.clone()),
        user,
        source: Some(peer.ip().to_string()),
        request_id: None,
    };
    let claimed = stele::audit::claimed_key(key.as_deref());
    if admin.limiter.blocked(key.as_deref(), addr) {
        admin
            .node
            .acting_for(by(None))
            .audit(&AuditEvent::AuthRateLimited {
                plane: Plane::Admin,
                access_key: claimed.clone(),
                source: Some(peer.ip().to_string()),
            });
        return ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "SlowDown",
            "too many failed authentications; try again later".into(),
        )
        .into_response();
    }
    let found = match &key {
        Some(k) => admin.node.credential(k, Plane::Admin).await.ok().flatten(),
        None => None,
    };
    match found {
        Some((user, stored))
            if stele::crypto::same_secret(stored.as_bytes(), secret.as_bytes()) =>
        {
            let node = admin.node.acting_for(by(Some(user.name.clone())));
            req.extensions_mut().insert(Actor { user, node });
            next.run(req).await
        }
        _ => {
            admin.limiter.failed(key.as_deref(), addr);
            admin
                .node
                .acting_for(by(None))
                .audit(&AuditEvent::AuthFailed {
                    plane: Plane::Admin,
                    access_key: claimed.clone(),
                    source: Some(peer.ip().to_string()),
                });
            ApiError(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "admin credentials required".into(),
            )
            .into_response()
        }
    }
}

/// Serves the admin API on `listener` (over TLS with `tls`) until `shutdown` turns true.
pub async fn run(
    admin: Admin,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = router(admin);
    crate::listener::serve(listener, tls, shutdown, move |peer: SocketAddr| {
        // What `into_make_service_with_connect_info` would give the handlers.
        hyper_util::service::TowerToHyperService::new(
            app.clone().layer(axum::Extension(ConnectInfo(peer))),
        )
    })
    .await
}

impl Admin {
    /// Every background worker, as the runner sees it.
    pub(crate) fn runners(&self) -> Vec<stele::background::runner::WorkerStatus> {
        use stele::background::runner::status_of;
        vec![
            status_of(self.scrub.as_ref()),
            status_of(self.lifecycle.as_ref()),
            status_of(self.repair.as_ref()),
            status_of(self.drill.as_ref()),
            status_of(self.rebalance.as_ref()),
            status_of(self.watchdog.as_ref()),
            status_of(self.delivery.as_ref()),
            status_of(self.backfill.as_ref()),
            status_of(self.audit.as_ref()),
            status_of(self.checkpoints.as_ref()),
            status_of(self.trail_flush.as_ref()),
        ]
    }

    /// The runner controls of the worker named `name`.
    pub(crate) fn runner(&self, name: &str) -> Option<&stele::background::runner::Control> {
        use stele::background::runner::PassWorker;
        Some(match name {
            "scrub" => self.scrub.control(),
            "lifecycle" => self.lifecycle.control(),
            "repair" => self.repair.control(),
            "drill" => self.drill.control(),
            "rebalance" => self.rebalance.control(),
            "watchdog" => self.watchdog.control(),
            "alert-delivery" => self.delivery.control(),
            "replication-backfill" => self.backfill.control(),
            "replication-audit" => self.audit.control(),
            "audit-checkpoint" => self.checkpoints.control(),
            "audit-flush" => self.trail_flush.control(),
            _ => return None,
        })
    }
}
