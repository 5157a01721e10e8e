//! The admin API: its own listener, JSON, never S3. Everything under `/v1` needs the
//! administrator credential (HTTP Basic: key and secret), which the S3 port never accepts;
//! `/health` is open so load balancers and probes can use it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use stele::Store;
use stele::disk::DiskStatus;
use stele::identity::Credential;
use stele::lifecycle::{LifecycleStatus, LifecycleWorker, PassReport};
use stele::lock::{ClockStatus, PolicyChange};
use stele::meta::{BelowMinimum, RetentionMode, RetentionPolicy};
use stele::types::BucketName;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Admin {
    pub store: Store,
    pub credential: Arc<Credential>,
    pub lifecycle: Arc<LifecycleWorker>,
}

pub fn router(admin: Admin) -> axum::Router {
    let v1 = axum::Router::new()
        .route("/v1/disks", get(disks))
        .route("/v1/clock", get(clock))
        .route(
            "/v1/buckets/{bucket}/retention-policy",
            get(get_policy).put(put_policy),
        )
        .route(
            "/v1/s3-keys/{access_key}/governance-bypass",
            put(put_bypass),
        )
        .route("/v1/lifecycle", get(lifecycle_status))
        .route("/v1/lifecycle/run", post(lifecycle_run))
        .route_layer(middleware::from_fn_with_state(admin.clone(), authenticate));
    axum::Router::new()
        .route("/health", get(health))
        .merge(v1)
        .with_state(admin)
}

/// An error answer: status and a JSON body `{"error": ..., "message": ...}`.
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(serde_json::json!({"error": self.1, "message": self.2})),
        )
            .into_response()
    }
}

impl From<stele::StoreError> for ApiError {
    fn from(e: stele::StoreError) -> Self {
        use stele::StoreError as E;
        let (status, code) = match &e {
            E::NoSuchBucket { .. } => (StatusCode::NOT_FOUND, "NoSuchBucket"),
            E::PolicyLoosening { .. } => (StatusCode::FORBIDDEN, "PolicyLoosening"),
            E::LockNotEnabled { .. } => (StatusCode::BAD_REQUEST, "LockNotEnabled"),
            E::Lock(_) => (StatusCode::BAD_REQUEST, "InvalidPolicy"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        ApiError(status, code, e.to_string())
    }
}

fn bucket(name: &str) -> Result<BucketName, ApiError> {
    BucketName::new(name)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "InvalidBucketName", e.to_string()))
}

async fn authenticate(State(admin): State<Admin>, req: Request, next: Next) -> Response {
    use base64::Engine;
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let ok = given
        .as_deref()
        .and_then(|g| g.split_once(':'))
        .is_some_and(|(k, s)| {
            let c = &admin.credential;
            // Constant-time on the secret: it is compared through digests.
            k == c.access_key
                && stele::crypto::sha256(s.as_bytes())
                    == stele::crypto::sha256(c.secret_key.as_bytes())
        });
    if !ok {
        tracing::warn!(path = %req.uri().path(), "admin API: authentication failed");
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "admin credentials required".into(),
        )
        .into_response();
    }
    next.run(req).await
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    clock_anomalies: u64,
}

async fn health(State(admin): State<Admin>) -> Json<Health> {
    let clock = admin.store.retention_clock().status();
    Json(Health {
        status: if clock.anomalies > 0 {
            "clock-anomaly"
        } else {
            "ok"
        },
        clock_anomalies: clock.anomalies,
    })
}

async fn disks(State(admin): State<Admin>) -> Json<Vec<DiskStatus>> {
    Json(admin.store.disks())
}

async fn clock(State(admin): State<Admin>) -> Json<ClockStatus> {
    Json(admin.store.retention_clock().status())
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
    Path(name): Path<String>,
) -> Result<Json<Option<PolicyBody>>, ApiError> {
    let b = admin.store.bucket(&bucket(&name)?)?;
    Ok(Json(b.policy.map(|p| PolicyBody {
        min_days: p.min_days,
        max_days: p.max_days,
        modes: p.modes.iter().map(|m| m.as_str().to_owned()).collect(),
        below_min: match p.below_min {
            BelowMinimum::Refuse => "refuse".into(),
            BelowMinimum::Raise => "raise".into(),
        },
    })))
}

#[derive(Deserialize)]
struct PolicyQuery {
    /// `confirm`: the administrator knowingly loosens the policy.
    loosen: Option<String>,
}

async fn put_policy(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    Query(q): Query<PolicyQuery>,
    Json(body): Json<Option<PolicyBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bad = |m: &str| ApiError(StatusCode::BAD_REQUEST, "InvalidPolicy", m.to_owned());
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
    let privileged = q.loosen.as_deref() == Some("confirm");
    let b = bucket(&name)?;
    let store = admin.store.clone();
    let change =
        tokio::task::spawn_blocking(move || store.set_retention_policy(&b, policy, privileged))
            .await
            .map_err(|e| {
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    e.to_string(),
                )
            })??;
    tracing::info!(bucket = %name, ?change, "admin: retention policy set");
    Ok(Json(serde_json::json!({
        "change": match change { PolicyChange::Tightens => "tightens", PolicyChange::Loosens => "loosens" }
    })))
}

#[derive(Deserialize)]
struct BypassBody {
    allowed: bool,
}

async fn put_bypass(
    State(admin): State<Admin>,
    Path(access_key): Path<String>,
    Json(body): Json<BypassBody>,
) -> Result<StatusCode, ApiError> {
    stele::identity::set_bypass_governance(admin.store.meta(), &access_key, body.allowed).map_err(
        |e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                e.to_string(),
            )
        },
    )?;
    tracing::warn!(%access_key, allowed = body.allowed, "admin: governance bypass permission changed");
    Ok(StatusCode::NO_CONTENT)
}

async fn lifecycle_status(State(admin): State<Admin>) -> Json<LifecycleStatus> {
    Json(admin.lifecycle.status())
}

#[derive(Deserialize)]
struct RunQuery {
    wait: Option<bool>,
}

async fn lifecycle_run(
    State(admin): State<Admin>,
    Query(q): Query<RunQuery>,
) -> Json<Option<PassReport>> {
    if q.wait.unwrap_or(false) {
        Json(admin.lifecycle.run_and_wait().await)
    } else {
        admin.lifecycle.run_now();
        Json(None)
    }
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn run(
    admin: Admin,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    axum::serve(listener, router(admin))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}
