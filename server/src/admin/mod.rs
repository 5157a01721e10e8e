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
use serde::{Deserialize, Serialize};
use stele::audit::AuditEvent;
use stele::control::{Control, Outcome};
use stele::identity::{
    Action, Grant, Identities, KeyRecord, NewKey, Plane, Role, Scope, UserRecord, access,
};
use stele::lifecycle::LifecycleWorker;
use stele::meta::{
    BelowMinimum, DefaultRetention, RetentionMode, RetentionPeriod, RetentionPolicy,
};
use stele::types::BucketName;
use stele::worker::PassWorker;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::limiter::AuthLimiter;

mod error;

pub use error::ApiError;
use error::bad;

#[derive(Clone)]
pub struct Admin {
    pub control: Control,
    pub ids: Arc<Identities>,
    pub lifecycle: Arc<LifecycleWorker>,
    pub scrub: Arc<stele::scrub::ScrubWorker>,
    pub alerts: Arc<stele::alert::Alerts>,
    pub watchdog: Arc<stele::watchdog::Watchdog>,
    pub drill: Arc<stele::drill::DrillWorker>,
    pub repair: Arc<stele::drill::RepairWorker>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub limiter: Arc<AuthLimiter>,
}

/// The authenticated caller, put in the request by [`authenticate`].
#[derive(Clone)]
struct Actor {
    user: UserRecord,
}

pub fn router(admin: Admin) -> axum::Router {
    let v1 = axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/disks", get(disks))
        .route("/v1/clock", get(clock))
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
        .route("/v1/buckets", post(create_bucket))
        .route(
            "/v1/buckets/{bucket}/retention-policy",
            get(get_policy).put(put_policy),
        )
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
        AuditEvent::AccessDenied {
            plane: Plane::Admin,
            actor: actor.user.name.clone(),
            action: format!("{action:?}"),
        }
        .emit();
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

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            e.to_string(),
        )
    })?
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
    if admin.limiter.blocked(key.as_deref(), addr) {
        AuditEvent::AuthRateLimited {
            plane: Plane::Admin,
            access_key: key.clone(),
            source: Some(peer.ip().to_string()),
        }
        .emit();
        return ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "SlowDown",
            "too many failed authentications; try again later".into(),
        )
        .into_response();
    }
    let ids = admin.ids.clone();
    let k = key.clone();
    let found = tokio::task::spawn_blocking(move || {
        k.and_then(|k| ids.credential(&k, Plane::Admin).ok().flatten())
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((user, stored))
            if stele::crypto::same_secret(stored.as_bytes(), secret.as_bytes()) =>
        {
            req.extensions_mut().insert(Actor { user });
            next.run(req).await
        }
        _ => {
            admin.limiter.failed(key.as_deref(), addr);
            AuditEvent::AuthFailed {
                plane: Plane::Admin,
                access_key: key.clone(),
                source: Some(peer.ip().to_string()),
            }
            .emit();
            ApiError(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "admin credentials required".into(),
            )
            .into_response()
        }
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    clock_anomalies: u64,
}

async fn health(State(admin): State<Admin>) -> Json<Health> {
    let clock = admin.control.store().retention_clock().status();
    Json(Health {
        status: if clock.anomalies > 0 {
            "clock-anomaly"
        } else {
            "ok"
        },
        clock_anomalies: clock.anomalies,
    })
}

/// Ready: enough disks online to take writes.
async fn ready(State(admin): State<Admin>) -> (StatusCode, Json<serde_json::Value>) {
    let store = admin.control.store();
    let online = store
        .disks()
        .iter()
        .filter(|d| d.state == stele::disk::DiskState::Online)
        .count();
    let needed = store.config().write_quorum;
    let status = if online >= needed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({"disks_online": online, "write_quorum": needed})),
    )
}

/// The node's state as Prometheus metrics (open, like `/health`: no secrets in it).
async fn metrics(State(admin): State<Admin>) -> Response {
    use crate::metrics::gauge;
    let store = admin.control.store().clone();
    let repair = admin.repair.clone();
    let alerts = admin.alerts.clone();
    let (disks, repair_st, alert_queue) = tokio::task::spawn_blocking(move || {
        (
            store.disks(),
            repair.status().ok(),
            alerts.queue(100_000).map(|q| q.len()).unwrap_or(0),
        )
    })
    .await
    .unwrap_or_default();
    // A queue that cannot be read has no length: NaN, never a made-up 0.
    let queue_read = repair_st.is_some();
    let repair_st = repair_st.unwrap_or_default();
    let queue_gauge = |n: u64| if queue_read { n as f64 } else { f64::NAN };
    let scrub = admin.scrub.status();
    let drill = admin.drill.status();
    let watch = admin.watchdog.status();
    let clock = admin.control.store().retention_clock().status();
    let lifecycle = admin.lifecycle.status();
    let mut x = String::new();
    let per_disk = |f: &dyn Fn(&stele::disk::DiskStatus) -> Option<f64>| -> Vec<(String, f64)> {
        disks
            .iter()
            .filter_map(|d| f(d).map(|v| (format!("disk=\"{}\"", d.id), v)))
            .collect()
    };
    gauge(
        &mut x,
        "stele_disk_online",
        "gauge",
        "1 if the disk is online",
        &per_disk(&|d| {
            Some(f64::from(u8::from(
                d.state == stele::disk::DiskState::Online,
            )))
        }),
    );
    gauge(
        &mut x,
        "stele_disk_full",
        "gauge",
        "1 if the disk is full",
        &per_disk(&|d| Some(f64::from(u8::from(d.state == stele::disk::DiskState::Full)))),
    );
    gauge(
        &mut x,
        "stele_disk_free_bytes",
        "gauge",
        "Bytes free on the disk's filesystem",
        &per_disk(&|d| d.free_bytes.map(|b| b as f64)),
    );
    let t = scrub.totals;
    for (name, help, v) in [
        (
            "stele_scrub_shards_verified",
            "Shards verified by scrub",
            t.shards_verified,
        ),
        (
            "stele_scrub_bytes_verified",
            "Bytes verified by scrub",
            t.bytes_verified,
        ),
        (
            "stele_scrub_shards_corrupt",
            "Corrupt shards found by scrub",
            t.corrupt,
        ),
        (
            "stele_scrub_shards_missing",
            "Missing shards found by scrub",
            t.missing,
        ),
        (
            "stele_scrub_shards_repaired",
            "Shards rebuilt by scrub",
            t.repaired,
        ),
        ("stele_scrub_passes", "Scrub passes finished", scrub.passes),
        (
            "stele_repair_shards_rebuilt",
            "Shards rebuilt from the repair queue",
            repair_st.shards_rebuilt,
        ),
        ("stele_drills", "Restore drills run", drill.drills),
        (
            "stele_clock_anomalies",
            "Wall-clock steps the retention clock refused",
            clock.anomalies,
        ),
        (
            "stele_lifecycle_passes",
            "Lifecycle passes finished",
            lifecycle.passes,
        ),
    ] {
        gauge(&mut x, name, "counter", help, &[(String::new(), v as f64)]);
    }
    let last_unrepairable = scrub.last_pass.as_ref().map_or(0, |r| r.unrepairable.len());
    let (drill_passed, drill_failed) = drill.last.as_ref().map_or((0, 0), |r| (r.passed, r.failed));
    for (name, help, v) in [
        (
            "stele_unrepairable_versions",
            "Versions the last scrub pass could not rebuild",
            last_unrepairable as f64,
        ),
        (
            "stele_repair_queue_length",
            "Entries waiting in the repair queue",
            queue_gauge(repair_st.queue_length),
        ),
        (
            "stele_drill_last_passed",
            "Versions the last restore drill read back intact",
            drill_passed as f64,
        ),
        (
            "stele_drill_last_failed",
            "Versions the last restore drill could not read back",
            drill_failed as f64,
        ),
        (
            "stele_backups_overdue",
            "Buckets whose expected backups are overdue",
            watch.overdue.len() as f64,
        ),
        (
            "stele_alerts_queued",
            "Alerts waiting for delivery",
            alert_queue as f64,
        ),
        (
            "stele_retention_clock_behind_wall_seconds",
            "How far retention time runs behind the wall clock",
            clock.behind_wall_micros as f64 / 1e6,
        ),
    ] {
        gauge(&mut x, name, "gauge", help, &[(String::new(), v)]);
    }
    // A pass that did not finish is never counted as one: it is counted here, and its
    // worker shows 1 in the gauge until a pass finishes.
    let workers = [
        ("scrub", scrub.failed_passes, scrub.last_failure.is_some()),
        (
            "lifecycle",
            lifecycle.failed_passes,
            lifecycle.last_failure.is_some(),
        ),
        ("drill", drill.failed_runs, drill.last_failure.is_some()),
    ];
    gauge(
        &mut x,
        "stele_worker_failed_passes",
        "counter",
        "Background passes that met an error and did not finish",
        &workers
            .iter()
            .map(|(w, n, _)| (format!("worker=\"{w}\""), *n as f64))
            .collect::<Vec<_>>(),
    );
    gauge(
        &mut x,
        "stele_worker_last_pass_failed",
        "gauge",
        "1 if the worker's last pass failed",
        &workers
            .iter()
            .map(|(w, _, f)| (format!("worker=\"{w}\""), f64::from(u8::from(*f))))
            .collect::<Vec<_>>(),
    );
    gauge(
        &mut x,
        "stele_repair_failed_attempts",
        "counter",
        "Repair attempts that failed (the entry stays queued)",
        &[(String::new(), repair_st.failed_attempts as f64)],
    );
    gauge(
        &mut x,
        "stele_repair_queue_failing",
        "gauge",
        "Repair queue entries whose last attempt failed",
        &[(String::new(), queue_gauge(repair_st.failing))],
    );
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.render(&x),
    )
        .into_response()
}

async fn status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<serde_json::Value>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let ids = admin.ids.clone();
    let (users, approvals, in_force) = blocking(move || {
        Ok((
            ids.users()?.len(),
            ids.approvals()?.len(),
            ids.two_person_in_force()?,
        ))
    })
    .await?;
    let store = admin.control.store();
    Ok(Json(serde_json::json!({
        "disks": store.disks(),
        "buckets": store.buckets().map(|b| b.len()).unwrap_or(0),
        "users": users,
        "pending_approvals": approvals,
        "two_person_rule_in_force": in_force,
        "clock": store.retention_clock().status(),
        "lifecycle": admin.lifecycle.status(),
    })))
}

async fn disks(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<stele::disk::DiskStatus>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.control.store().disks()))
}

async fn clock(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::lock::ClockStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.control.store().retention_clock().status()))
}

/// A grant as the API reads and writes it: a role and its buckets (none: all buckets).
#[derive(Debug, Serialize, Deserialize)]
pub struct GrantBody {
    pub role: String,
    #[serde(default)]
    pub buckets: Option<Vec<String>>,
}

fn scope_of(buckets: &Option<Vec<String>>) -> Result<Scope, ApiError> {
    match buckets {
        None => Ok(Scope::All),
        Some(list) => Ok(Scope::Buckets(
            list.iter().map(|b| bucket(b)).collect::<Result<_, _>>()?,
        )),
    }
}

fn scope_body(s: &Scope) -> Option<Vec<String>> {
    match s {
        Scope::All => None,
        Scope::Buckets(l) => Some(l.iter().map(|b| b.to_string()).collect()),
    }
}

fn grants_of(body: &[GrantBody]) -> Result<Vec<Grant>, ApiError> {
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

#[derive(Serialize)]
struct KeyView {
    access_key: String,
    plane: &'static str,
    created: stele::Timestamp,
    revoked: Option<stele::Timestamp>,
}

fn key_view(k: &KeyRecord) -> KeyView {
    KeyView {
        access_key: k.access_key.clone(),
        plane: match k.plane {
            Plane::S3 => "s3",
            Plane::Admin => "admin",
        },
        created: k.created,
        revoked: k.revoked,
    }
}

#[derive(Serialize)]
struct BypassView {
    buckets: Option<Vec<String>>,
}

#[derive(Serialize)]
struct UserView {
    name: String,
    disabled: bool,
    grants: Vec<GrantBody>,
    /// `null`: no bypass; `{"buckets": null}`: every bucket; `{"buckets": [..]}`: those.
    governance_bypass: Option<BypassView>,
    keys: Vec<KeyView>,
}

fn user_view(ids: &Identities, u: &UserRecord) -> Result<UserView, ApiError> {
    Ok(UserView {
        name: u.name.clone(),
        disabled: u.disabled,
        grants: u
            .grants
            .iter()
            .map(|g| GrantBody {
                role: g.role.as_str().to_owned(),
                buckets: scope_body(&g.scope),
            })
            .collect(),
        governance_bypass: u.bypass_governance.as_ref().map(|s| BypassView {
            buckets: scope_body(s),
        }),
        keys: ids.keys_of(&u.name)?.iter().map(key_view).collect(),
    })
}

async fn list_users(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let ids = admin.ids.clone();
    blocking(move || {
        let users = ids.users()?;
        users
            .iter()
            .map(|u| user_view(&ids, u))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map(Json)
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    #[serde(default)]
    grants: Vec<GrantBody>,
}

async fn add_user(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let grants = grants_of(&body.grants)?;
    let ids = admin.ids.clone();
    let view = blocking(move || {
        let u = ids.create_user(&body.name, grants)?;
        user_view(&ids, &u)
    })
    .await?;
    AuditEvent::UserCreated {
        actor: actor.user.name.clone(),
        user: view.name.clone(),
    }
    .emit();
    Ok((StatusCode::CREATED, Json(view)))
}

fn outcome(o: Outcome) -> (StatusCode, Json<serde_json::Value>) {
    match o {
        Outcome::Done => (StatusCode::OK, Json(serde_json::json!({"status": "done"}))),
        Outcome::Pending(rec) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "status": "pending",
                "approval": {
                    "id": rec.id,
                    "operation": rec.operation,
                    "requested_by": rec.requested_by,
                    "expires": rec.expires,
                },
            })),
        ),
    }
}

async fn delete_user(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let control = admin.control.clone();
    let who = actor.user.name.clone();
    let user = name.clone();
    let o = blocking(move || Ok(control.delete_user(&who, &name)?)).await?;
    AuditEvent::UserDeleted {
        actor: actor.user.name.clone(),
        user,
        pending: matches!(o, Outcome::Pending(_)),
    }
    .emit();
    Ok(outcome(o))
}

#[derive(Deserialize)]
struct GrantsBody {
    grants: Vec<GrantBody>,
}

async fn set_grants(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<GrantsBody>,
) -> Result<Json<UserView>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let grants = grants_of(&body.grants)?;
    let ids = admin.ids.clone();
    let view = blocking(move || {
        let u = ids.set_grants(&name, grants)?;
        user_view(&ids, &u)
    })
    .await?;
    AuditEvent::GrantsSet {
        actor: actor.user.name.clone(),
        user: view.name.clone(),
    }
    .emit();
    Ok(Json(view))
}

async fn toggle_user(
    admin: Admin,
    actor: Actor,
    name: String,
    disabled: bool,
) -> Result<Json<UserView>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let ids = admin.ids.clone();
    let view = blocking(move || {
        let u = ids.set_disabled(&name, disabled)?;
        user_view(&ids, &u)
    })
    .await?;
    AuditEvent::UserDisabled {
        actor: actor.user.name.clone(),
        user: view.name.clone(),
        disabled,
    }
    .emit();
    Ok(Json(view))
}

async fn disable_user(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    toggle_user(admin, actor, name, true).await
}

async fn enable_user(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    toggle_user(admin, actor, name, false).await
}

#[derive(Deserialize)]
struct KeyBody {
    /// "s3" (default) or "admin".
    #[serde(default)]
    plane: Option<String>,
}

#[derive(Serialize)]
struct NewKeyView {
    user: String,
    access_key: String,
    secret_key: String,
    plane: &'static str,
}

fn new_key_view(k: NewKey) -> NewKeyView {
    NewKeyView {
        user: k.record.user.clone(),
        plane: key_view(&k.record).plane,
        access_key: k.record.access_key.clone(),
        secret_key: k.secret,
    }
}

async fn create_key(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    body: Option<Json<KeyBody>>,
) -> Result<(StatusCode, Json<NewKeyView>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let plane = match body.and_then(|b| b.0.plane).as_deref() {
        None | Some("s3") => Plane::S3,
        Some("admin") => Plane::Admin,
        Some(_) => return Err(bad("plane is s3 or admin")),
    };
    let ids = admin.ids.clone();
    let k = blocking(move || Ok(ids.create_key(&name, plane, None)?)).await?;
    AuditEvent::KeyCreated {
        actor: actor.user.name.clone(),
        user: k.record.user.clone(),
        access_key: k.record.access_key.clone(),
    }
    .emit();
    Ok((StatusCode::CREATED, Json(new_key_view(k))))
}

async fn rotate_key(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(access_key): Path<String>,
) -> Result<(StatusCode, Json<NewKeyView>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let ids = admin.ids.clone();
    let old = access_key.clone();
    let k = blocking(move || Ok(ids.rotate_key(&old)?)).await?;
    AuditEvent::KeyRotated {
        actor: actor.user.name.clone(),
        old: access_key,
        new: k.record.access_key.clone(),
    }
    .emit();
    Ok((StatusCode::CREATED, Json(new_key_view(k))))
}

async fn revoke_key(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(access_key): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let ids = admin.ids.clone();
    let k = access_key.clone();
    blocking(move || Ok(ids.revoke_key(&k)?)).await?;
    AuditEvent::KeyRevoked {
        actor: actor.user.name.clone(),
        access_key,
    }
    .emit();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BypassBody {
    allowed: bool,
    /// The buckets it covers; none: all.
    #[serde(default)]
    buckets: Option<Vec<String>>,
}

async fn bypass_for(
    admin: Admin,
    actor: Actor,
    user: String,
    body: BypassBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let scope = if body.allowed {
        Some(scope_of(&body.buckets)?)
    } else {
        None
    };
    let control = admin.control.clone();
    let who = actor.user.name.clone();
    let u = user.clone();
    let o = blocking(move || Ok(control.set_bypass(&who, &u, scope)?)).await?;
    AuditEvent::GovernanceBypass {
        actor: actor.user.name.clone(),
        user,
        allowed: body.allowed,
        pending: matches!(o, Outcome::Pending(_)),
    }
    .emit();
    Ok(outcome(o))
}

async fn set_user_bypass(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(user): Path<String>,
    Json(body): Json<BypassBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    bypass_for(admin, actor, user, body).await
}

/// The same, naming the user by one of its S3 keys.
async fn set_key_bypass(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(access_key): Path<String>,
    Json(body): Json<BypassBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let ids = admin.ids.clone();
    let user = blocking(move || Ok(ids.key(&access_key)?.user)).await?;
    bypass_for(admin, actor, user, body).await
}

#[derive(Deserialize)]
struct NewBucket {
    name: String,
    #[serde(default)]
    lock: bool,
    /// Default retention: mode and days.
    #[serde(default)]
    retention_mode: Option<String>,
    #[serde(default)]
    retention_days: Option<u32>,
}

async fn create_bucket(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<NewBucket>,
) -> Result<StatusCode, ApiError> {
    let name = bucket(&body.name)?;
    need(&actor, Action::ManageBuckets, Some(&name))?;
    let default = match (body.retention_mode.as_deref(), body.retention_days) {
        (None, None) => None,
        (Some(m), Some(d)) => Some(DefaultRetention {
            mode: RetentionMode::parse(m).ok_or_else(|| bad("mode is GOVERNANCE or COMPLIANCE"))?,
            period: RetentionPeriod::Days(d),
        }),
        _ => return Err(bad("retention_mode and retention_days go together")),
    };
    let lock = body.lock || default.is_some();
    let store = admin.control.store().clone();
    let n = name.clone();
    blocking(move || {
        store.create_bucket(&n, lock)?;
        if default.is_some() {
            store.set_lock_configuration(&n, default)?;
        }
        Ok(())
    })
    .await?;
    AuditEvent::BucketCreated {
        actor: actor.user.name.clone(),
        bucket: name.to_string(),
        lock,
    }
    .emit();
    Ok(StatusCode::CREATED)
}

/// A retention policy as the admin API reads and writes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PolicyBody {
    pub min_days: Option<u32>,
    pub max_days: Option<u32>,
    /// "GOVERNANCE" and/or "COMPLIANCE".
    pub modes: Vec<String>,
    /// "refuse" or "raise".
    pub below_min: String,
}

async fn get_policy(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<Option<PolicyBody>>, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ReadPolicy, Some(&b))?;
    let rec = admin.control.store().bucket(&b)?;
    Ok(Json(rec.policy.map(|p| PolicyBody {
        min_days: p.min_days,
        max_days: p.max_days,
        modes: p.modes.iter().map(|m| m.as_str().to_owned()).collect(),
        below_min: match p.below_min {
            BelowMinimum::Refuse => "refuse".into(),
            BelowMinimum::Raise => "raise".into(),
        },
    })))
}

async fn put_policy(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<Option<PolicyBody>>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::WritePolicy, Some(&b))?;
    let policy = match body {
        None => None,
        Some(p) => Some(RetentionPolicy {
            min_days: p.min_days,
            max_days: p.max_days,
            modes: p
                .modes
                .iter()
                .map(|m| {
                    RetentionMode::parse(m).ok_or_else(|| bad("modes are GOVERNANCE or COMPLIANCE"))
                })
                .collect::<Result<_, _>>()?,
            below_min: match p.below_min.as_str() {
                "refuse" => BelowMinimum::Refuse,
                "raise" => BelowMinimum::Raise,
                _ => return Err(bad("below_min is refuse or raise")),
            },
        }),
    };
    let control = admin.control.clone();
    let who = actor.user.name.clone();
    let o = blocking(move || Ok(control.set_retention_policy(&who, &b, policy)?)).await?;
    AuditEvent::RetentionPolicy {
        actor: actor.user.name.clone(),
        bucket: name,
        pending: matches!(o, Outcome::Pending(_)),
    }
    .emit();
    Ok(outcome(o))
}

async fn list_approvals(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<serde_json::Value>, ApiError> {
    need(&actor, Action::Approve, None)?;
    let ids = admin.ids.clone();
    let list = blocking(move || Ok(ids.approvals()?)).await?;
    Ok(Json(serde_json::json!(
        list.iter()
            .map(|r| serde_json::json!({
                "id": r.id,
                "operation": r.operation,
                "requested_by": r.requested_by,
                "created": r.created,
                "expires": r.expires,
            }))
            .collect::<Vec<_>>()
    )))
}

async fn approve(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    need(&actor, Action::Approve, None)?;
    let control = admin.control.clone();
    let who = actor.user.name.clone();
    let op = blocking(move || Ok(control.approve(&who, &id)?)).await?;
    AuditEvent::Approved {
        actor: actor.user.name.clone(),
        operation: op.clone(),
    }
    .emit();
    Ok(Json(serde_json::json!({"status": "done", "operation": op})))
}

async fn deny(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::Approve, None)?;
    let ids = admin.ids.clone();
    let rec = blocking(move || Ok(ids.deny(&id)?)).await?;
    AuditEvent::ApprovalDenied {
        actor: actor.user.name.clone(),
        id: rec.id,
    }
    .emit();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TwoPersonBody {
    enabled: bool,
}

async fn set_two_person(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Json(body): Json<TwoPersonBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let control = admin.control.clone();
    let who = actor.user.name.clone();
    let o = blocking(move || Ok(control.set_two_person_rule(&who, body.enabled)?)).await?;
    AuditEvent::TwoPersonRule {
        actor: actor.user.name.clone(),
        enabled: body.enabled,
        pending: matches!(o, Outcome::Pending(_)),
    }
    .emit();
    Ok(outcome(o))
}

async fn lifecycle_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::lifecycle::LifecycleStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.lifecycle.status()))
}

#[derive(Deserialize)]
struct RunQuery {
    wait: Option<bool>,
}

/// A pass that ended in failure: 500 `PassFailed` with the reason (also in the worker's
/// status, `/metrics` and an alert).
fn pass_failed(worker: &str, reason: String) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "PassFailed",
        format!("the {worker} pass failed: {reason}"),
    )
}

async fn lifecycle_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Option<stele::lifecycle::PassReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    if q.wait.unwrap_or(false) {
        match admin.lifecycle.run_and_wait().await {
            None => Ok(Json(None)),
            Some(Ok(r)) => Ok(Json(Some(r))),
            Some(Err(reason)) => Err(pass_failed("lifecycle", reason)),
        }
    } else {
        admin.lifecycle.run_now();
        Ok(Json(None))
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        e.to_string(),
    )
}

async fn list_sinks(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<stele::alert::SinkRecord>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let a = admin.alerts.clone();
    blocking(move || a.sinks().map_err(internal))
        .await
        .map(Json)
}

#[derive(Deserialize)]
struct SinkBody {
    url: String,
}

async fn set_sink(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<SinkBody>,
) -> Result<Json<stele::alert::SinkRecord>, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    if !body.url.starts_with("http://") && !body.url.starts_with("https://") {
        return Err(bad("a sink URL starts with http:// or https://"));
    }
    let a = admin.alerts.clone();
    blocking(move || a.set_sink(&name, &body.url).map_err(internal))
        .await
        .map(Json)
}

async fn remove_sink(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::ManageIdentities, None)?;
    let a = admin.alerts.clone();
    blocking(move || a.remove_sink(&name).map_err(internal)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn alert_queue(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<Vec<stele::alert::QueuedAlert>>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let a = admin.alerts.clone();
    blocking(move || a.queue(1000).map_err(internal))
        .await
        .map(Json)
}

async fn alert_test(
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

#[derive(Deserialize)]
struct ExpectBody {
    every_secs: Option<u64>,
}

async fn set_expectation(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<ExpectBody>,
) -> Result<StatusCode, ApiError> {
    let b = bucket(&name)?;
    need(&actor, Action::ManageBuckets, Some(&b))?;
    admin.control.store().bucket(&b)?;
    let a = admin.alerts.clone();
    blocking(move || a.expect(&name, body.every_secs).map_err(internal)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn watchdog_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::watchdog::WatchStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.watchdog.status()))
}

/// The status of every background worker.
async fn workers(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<serde_json::Value>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let r = admin.repair.clone();
    let repair = blocking(move || Ok(r.status()?)).await?;
    Ok(Json(serde_json::json!({
        "scrub": admin.scrub.status(),
        "lifecycle": admin.lifecycle.status(),
        "drill": admin.drill.status(),
        "repair": repair,
        "watchdog": admin.watchdog.status(),
    })))
}

/// `run`, `pause`, `resume` or `cancel` a worker (`scrub`, `lifecycle`; `drill`: run).
async fn worker_action(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path((name, action)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    match (name.as_str(), action.as_str()) {
        ("scrub", "run") => admin.scrub.run_now(),
        ("scrub", "pause") => admin.scrub.set_paused(true),
        ("scrub", "resume") => admin.scrub.set_paused(false),
        ("scrub", "cancel") => admin.scrub.cancel(),
        ("lifecycle", "run") => admin.lifecycle.run_now(),
        ("lifecycle", "pause") => admin.lifecycle.set_paused(true),
        ("lifecycle", "resume") => admin.lifecycle.set_paused(false),
        ("lifecycle", "cancel") => admin.lifecycle.cancel(),
        ("drill", "run") => {
            let d = admin.drill.clone();
            tokio::spawn(async move { d.run_and_wait().await });
        }
        _ => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "NoSuchWorkerAction",
                format!("no action {action} for worker {name}"),
            ));
        }
    }
    Ok(StatusCode::ACCEPTED)
}

async fn scrub_pause(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    admin.scrub.set_paused(true);
    Ok(StatusCode::NO_CONTENT)
}

async fn scrub_resume(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<StatusCode, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    admin.scrub.set_paused(false);
    Ok(StatusCode::NO_CONTENT)
}

async fn drill_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::drill::DrillStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.drill.status()))
}

async fn drill_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::drill::DrillReport>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    match admin.drill.run_and_wait().await {
        Ok(r) => Ok(Json(r)),
        Err(reason) => Err(pass_failed("drill", reason)),
    }
}

async fn repair_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::drill::RepairStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    let r = admin.repair.clone();
    blocking(move || Ok(r.status()?)).await.map(Json)
}

async fn scrub_status(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
) -> Result<Json<stele::scrub::ScrubStatus>, ApiError> {
    need(&actor, Action::ReadStatus, None)?;
    Ok(Json(admin.scrub.status()))
}

async fn scrub_run(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Option<stele::scrub::ScrubReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    if q.wait.unwrap_or(false) {
        scrub_and_wait(&admin).await
    } else {
        admin.scrub.run_now();
        Ok(Json(None))
    }
}

async fn scrub_and_wait(
    admin: &Admin,
) -> Result<Json<Option<stele::scrub::ScrubReport>>, ApiError> {
    match admin.scrub.run_and_wait().await {
        None => Ok(Json(None)),
        Some(Ok(r)) => Ok(Json(Some(r))),
        Some(Err(reason)) => Err(pass_failed("scrub", reason)),
    }
}

/// Heal: a replaced (emptied) disk directory is stamped and brought online; a scrub pass
/// with repair then rebuilds its shards. With `?wait=true` the pass's report is returned.
async fn heal_disk(
    State(admin): State<Admin>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Option<stele::scrub::ScrubReport>>, ApiError> {
    need(&actor, Action::RunWorkers, None)?;
    let store = admin.control.store().clone();
    if !store.disks().iter().any(|d| d.id == id) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "NoSuchDisk",
            format!("no disk {id}"),
        ));
    }
    blocking(move || Ok(store.heal_disk(&id)?)).await?;
    if q.wait.unwrap_or(false) {
        scrub_and_wait(&admin).await
    } else {
        admin.scrub.run_now();
        Ok(Json(None))
    }
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn run(
    admin: Admin,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router(admin).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
    .await?;
    Ok(())
}
