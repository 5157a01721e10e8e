//! Delivers queued alerts to their webhook sinks: a JSON POST each, retried with backoff
//! (by the core's queue) until the sink answers 2xx.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use stele::alert::{Alerts, QueuedAlert};
use tokio::sync::watch;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn post(client: &HttpClient, url: &str, payload: &str) -> Result<(), String> {
    let req = http::Request::builder()
        .method("POST")
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload.to_owned())))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

async fn deliver(alerts: &Arc<Alerts>, client: &HttpClient, q: QueuedAlert) {
    let a = alerts.clone();
    let name = q.sink.clone();
    let sink = tokio::task::spawn_blocking(move || a.sink(&name)).await;
    let url = match sink {
        Ok(Ok(Some(s))) => s.url,
        Ok(Ok(None)) => {
            let a = alerts.clone();
            let _ = tokio::task::spawn_blocking(move || a.drop_entry(&q)).await;
            return;
        }
        _ => return,
    };
    let result = post(client, &url, &q.payload).await;
    let a = alerts.clone();
    let sink = q.sink.clone();
    let _ = tokio::task::spawn_blocking(move || match &result {
        Ok(()) => a.delivered(&q),
        Err(e) => {
            tracing::warn!(sink = %q.sink, attempts = q.attempts + 1, error = %e, "alert not delivered; will retry");
            a.failed(&q, e)
        }
    })
    .await;
    tracing::debug!(%sink, "alert delivery attempt done");
}

/// Delivers due alerts every half second until `shutdown`.
pub async fn run(alerts: Arc<Alerts>, mut shutdown: watch::Receiver<bool>) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    loop {
        let a = alerts.clone();
        let due = tokio::task::spawn_blocking(move || a.due(100))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        for q in due {
            deliver(&alerts, &client, q).await;
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
