//! The admin API: its own listener, JSON, never S3.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use stele::Store;
use stele::disk::DiskStatus;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub fn router(store: Store) -> axum::Router {
    axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/disks", get(disks))
        .with_state(store)
}

async fn disks(State(store): State<Store>) -> Json<Vec<DiskStatus>> {
    Json(store.disks())
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn run(
    store: Store,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}
