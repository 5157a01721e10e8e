//! The replication transport: a peer's S3 listener reached with its `replication-peer`
//! key (SigV4, `stele-client`), over TLS checked against the peer's CA or pinned
//! fingerprint. Each [`ReplicaOp`] is one PUT with the `x-stele-replication` header; the
//! peer's answer is classified into the sender's [`SendError`] kinds.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use stele::background::replication::{
    BodyStream, Connector, Held, SendError, TargetBucket, Transport,
};
use stele::meta::Record;
use stele::replication::epoch::SenderEpoch;
use stele::replication::log::DeadReason;
use stele::replication::{PeerRecord, PeerTrust, ReplicaOp, ReplicaResult};
use stele::{BucketName, ObjectKey, VersionId};
use stele_client::{ClientError, S3Client, S3Request, S3Response, Trust};

use crate::s3::replication::{EPOCH_HEADER, HEADER, RESULT_HEADER, STAGED_HEADER};

/// Makes an [`HttpsTransport`] per peer.
#[derive(Debug, Default)]
pub struct HttpsConnector;

impl Connector for HttpsConnector {
    fn connect(&self, peer: &PeerRecord, secret: &str) -> Result<Arc<dyn Transport>, String> {
        let trust = match &peer.trust {
            PeerTrust::CaPem(pem) => Some(Trust::CaPem(pem.clone())),
            PeerTrust::Fingerprint(f) => Some(Trust::Fingerprint(*f)),
            PeerTrust::Plain => None,
        };
        let client = S3Client::new(
            &peer.endpoint,
            trust.as_ref(),
            &peer.access_key,
            secret,
            "us-east-1",
        )
        .map_err(|e| e.to_string())?
        // Each request gets its own deadline below, scaled to its body.
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(24 * 3600));
        Ok(Arc::new(HttpsTransport { client }))
    }
}

/// Replication requests to one peer.
#[derive(Debug)]
pub struct HttpsTransport {
    client: S3Client,
}

/// How long a request may take: 30 s, plus its body at 64 KiB/s (a link slower than that
/// for a whole object is treated as down, and the entry retried).
fn deadline(body: u64) -> Duration {
    Duration::from_secs(30) + Duration::from_secs(body / (64 << 10))
}

fn transport_error(e: &ClientError) -> SendError {
    if e.is_tls_failure() {
        SendError::Permanent(DeadReason::Tls, e.to_string())
    } else {
        // Connection, timeout, a body cut short: the link, not the entry.
        SendError::Transient(e.to_string())
    }
}

/// The peer's epoch in a `StaleEpoch` message (`... is written at epoch N here; ...`).
fn stale_epoch(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once(" at epoch ")?;
    rest.split_ascii_whitespace().next()?.parse().ok()
}

/// The sender's reading of a peer's answer that is not a success.
fn refusal(r: &S3Response) -> SendError {
    let code = r.error_code().unwrap_or_default();
    let detail = format!(
        "{} {code}: {}",
        r.status,
        r.error_message().unwrap_or_default()
    );
    match (r.status, code.as_str()) {
        // Bytes damaged on the way (the receiver recomputed the BLAKE3): send again.
        (400, "BadDigest" | "IncompleteBody") => SendError::Transient(detail),
        // A lock for a version not there yet; an assembly whose parts are not all staged
        // (the peer restarted, a part was refused): sent again, the missing parts first.
        (404, "NoSuchVersion" | "NoSuchKey" | "NoSuchUpload") | (400, "InvalidPart") => {
            SendError::NotYet(detail)
        }
        (404, "NoSuchBucket") => SendError::Permanent(DeadReason::NoSuchBucket, detail),
        (409, "ReplicaConflict") => SendError::Permanent(DeadReason::Conflict, detail),
        // Without a readable epoch, fencing at this bucket's own epoch is still safe: the
        // peer's next answer or heartbeat raises it.
        (409, "StaleEpoch") => {
            SendError::Stale(stale_epoch(&r.error_message().unwrap_or_default()).unwrap_or(0))
        }
        (400, "InvalidRequest") => SendError::Permanent(DeadReason::LockConfiguration, detail),
        (401 | 403, _) => SendError::Permanent(DeadReason::Refused, detail),
        (408 | 429, _) | (500.., _) => SendError::Transient(detail),
        _ => SendError::Permanent(DeadReason::Other, detail),
    }
}

/// The PUT carrying `op` for `key` in `target`, with the source bucket's `epoch`.
fn replication_request(
    target: &BucketName,
    key: &ObjectKey,
    op: &ReplicaOp,
    epoch: SenderEpoch,
) -> Result<S3Request, SendError> {
    let encoded = op
        .encode()
        .map_err(|e| SendError::Permanent(DeadReason::Other, e.to_string()))?;
    Ok(S3Request::new(http::Method::PUT, target.as_str())
        .with_key(key.as_str())
        .with_header(
            HEADER,
            base64::engine::general_purpose::STANDARD.encode(encoded),
        )
        .with_header(EPOCH_HEADER, epoch.header()))
}

impl Transport for HttpsTransport {
    fn send<'a>(
        &'a self,
        target: &'a BucketName,
        key: &'a ObjectKey,
        op: &'a ReplicaOp,
        epoch: SenderEpoch,
        body: Option<(BodyStream, u64)>,
    ) -> BoxFuture<'a, Result<ReplicaResult, SendError>> {
        Box::pin(async move {
            let req = replication_request(target, key, op, epoch)?;
            let size = body.as_ref().map_or(0, |(_, n)| *n);
            let sent = match body {
                Some((stream, len)) => {
                    tokio::time::timeout(deadline(size), self.client.send_stream(req, len, stream))
                        .await
                }
                None => tokio::time::timeout(deadline(0), self.client.send(req)).await,
            };
            let resp = match sent {
                Err(_) => {
                    return Err(SendError::Transient(format!(
                        "no answer within {:?}",
                        deadline(size)
                    )));
                }
                Ok(Err(e)) => return Err(transport_error(&e)),
                Ok(Ok(r)) => r,
            };
            if !resp.is_success() {
                return Err(refusal(&resp));
            }
            resp.header(RESULT_HEADER)
                .and_then(ReplicaResult::parse)
                .ok_or_else(|| {
                    SendError::Permanent(
                        DeadReason::Other,
                        format!(
                            "the peer answered {} without {RESULT_HEADER}: not a Stele peer, or an older one",
                            resp.status
                        ),
                    )
                })
        })
    }

    fn has_version<'a>(
        &'a self,
        target: &'a BucketName,
        key: &'a ObjectKey,
        version_id: VersionId,
        etag: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<Held, SendError>> {
        Box::pin(async move {
            let req = S3Request::new(http::Method::HEAD, target.as_str())
                .with_key(key.as_str())
                .with_query("versionId", version_id.to_string());
            let r = match tokio::time::timeout(deadline(0), self.client.send(req)).await {
                Err(_) => return Err(SendError::Transient("no answer".into())),
                Ok(Err(e)) => return Err(transport_error(&e)),
                Ok(Ok(r)) => r,
            };
            match r.status {
                200 => Ok(
                    if r.header("etag").map(|t| t.trim_matches('"')) == Some(etag)
                        && r.header("content-length").and_then(|l| l.parse().ok()) == Some(size)
                    {
                        Held::Same
                    } else {
                        Held::Other
                    },
                ),
                // HEAD answers carry no body: a 404 is a missing key, version or bucket
                // alike; the send that follows tells them apart.
                404 => Ok(Held::Missing),
                _ => Err(refusal(&r)),
            }
        })
    }

    fn staged<'a>(
        &'a self,
        target: &'a BucketName,
        key: &'a ObjectKey,
        version_id: VersionId,
        epoch: SenderEpoch,
    ) -> BoxFuture<'a, Result<Option<Vec<u16>>, SendError>> {
        Box::pin(async move {
            let req = replication_request(target, key, &ReplicaOp::Staged { version_id }, epoch)?;
            let resp = match tokio::time::timeout(deadline(0), self.client.send(req)).await {
                Err(_) => return Err(SendError::Transient("no answer".into())),
                Ok(Err(e)) => return Err(transport_error(&e)),
                Ok(Ok(r)) => r,
            };
            if !resp.is_success() {
                return Err(refusal(&resp));
            }
            resp.header(STAGED_HEADER)
                .and_then(|h| match h {
                    "complete" => Some(None),
                    list => stele::replication::parse_parts(list).map(Some),
                })
                .ok_or_else(|| {
                    SendError::Permanent(
                        DeadReason::Other,
                        format!("the peer answered {} without {STAGED_HEADER}", resp.status),
                    )
                })
        })
    }

    fn bucket<'a>(
        &'a self,
        target: &'a BucketName,
    ) -> BoxFuture<'a, Result<TargetBucket, SendError>> {
        Box::pin(async move {
            let get = |sub: &'static str| {
                let req = S3Request::new(http::Method::GET, target.as_str()).with_query(sub, "");
                tokio::time::timeout(deadline(0), self.client.send(req))
            };
            let versioning = match get("versioning").await {
                Err(_) => return Err(SendError::Transient("no answer".into())),
                Ok(Err(e)) => return Err(transport_error(&e)),
                Ok(Ok(r)) if r.is_success() => {
                    String::from_utf8_lossy(&r.body).contains("<Status>Enabled</Status>")
                }
                Ok(Ok(r)) => return Err(refusal(&r)),
            };
            let object_lock = match get("object-lock").await {
                Err(_) => return Err(SendError::Transient("no answer".into())),
                Ok(Err(e)) => return Err(transport_error(&e)),
                Ok(Ok(r)) if r.is_success() => String::from_utf8_lossy(&r.body)
                    .contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>"),
                Ok(Ok(r))
                    if r.error_code().as_deref()
                        == Some("ObjectLockConfigurationNotFoundError") =>
                {
                    false
                }
                Ok(Ok(r)) => return Err(refusal(&r)),
            };
            Ok(TargetBucket {
                versioning,
                object_lock,
            })
        })
    }
}
