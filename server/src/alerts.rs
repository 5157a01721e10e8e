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

/// Delivers due alerts every half second, on the worker runner: a pass that cannot read
/// the queue fails (counted and retried after a backoff; not alerted, since alerts are
/// what it could not deliver). A failed delivery is not a failed pass: the entry stays
/// queued with its own backoff.
pub struct DeliveryWorker {
    alerts: Arc<Alerts>,
    client: HttpClient,
    control: stele::background::runner::Control,
}

impl DeliveryWorker {
    pub fn new(alerts: Arc<Alerts>) -> Arc<Self> {
        Arc::new(Self {
            alerts,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            control: stele::background::runner::Control::default(),
        })
    }

    /// One pass. It runs on the runner's blocking thread, so the queue is read and
    /// updated in place; only the POSTs go through the runtime.
    fn deliver_due(&self, rt: &tokio::runtime::Handle) -> Result<(), String> {
        let due = self
            .alerts
            .due(100)
            .map_err(|e| format!("cannot read the alert queue: {e}"))?;
        for q in due {
            self.deliver(rt, q);
        }
        Ok(())
    }

    fn deliver(&self, rt: &tokio::runtime::Handle, q: QueuedAlert) {
        let url = match self.alerts.sink(&q.sink) {
            Ok(Some(s)) => s.url,
            Ok(None) => {
                // The sink was removed: its deliveries go with it.
                let _ = self.alerts.drop_entry(&q);
                return;
            }
            Err(_) => return,
        };
        let recorded = match rt.block_on(post(&self.client, &url, &q.payload)) {
            Ok(()) => self.alerts.delivered(&q),
            Err(e) => {
                tracing::warn!(sink = %q.sink, attempts = q.attempts + 1, error = %e, "alert not delivered; will retry");
                self.alerts.failed(&q, &e)
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(sink = %q.sink, error = %e, "cannot record an alert delivery attempt");
        }
        tracing::debug!(sink = %q.sink, "alert delivery attempt done");
    }
}

impl stele::background::runner::PassWorker for DeliveryWorker {
    type Checkpoint = ();

    fn name(&self) -> &'static str {
        "alert-delivery"
    }

    fn control(&self) -> &stele::background::runner::Control {
        &self.control
    }

    fn alerts(&self) -> Option<&Alerts> {
        None
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(500)
    }

    fn pass_at_start(&self) -> bool {
        true
    }

    fn pass(&self, _: Option<()>, _: &watch::Receiver<bool>) -> stele::background::runner::PassEnd {
        use stele::background::runner::PassEnd;
        let rt = match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt,
            Err(e) => return PassEnd::Failed(format!("no runtime to deliver on: {e}")),
        };
        match self.deliver_due(&rt) {
            Ok(()) => PassEnd::Finished,
            Err(reason) => PassEnd::Failed(reason),
        }
    }
}
