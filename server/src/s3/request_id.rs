//! Every S3 response carries `x-amz-request-id`, and every S3 error body names its
//! `Resource` and `RequestId`, as clients and support scripts expect; each request runs in
//! a tracing span with the same id. s3s leaves both to the implementation.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::limiter::AuthLimiter;
use crate::metrics::Metrics;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::service::S3Service;
use tracing::Instrument;

/// Error bodies larger than this are passed through untouched.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the S3 handlers learn of a request beyond s3s's view: its id (as answered in
/// `x-amz-request-id`) and the client's address, for the audit trail.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id.
    pub id: String,
    /// The client's IP address.
    pub peer: Option<IpAddr>,
}

#[derive(Clone)]
pub struct WithRequestId {
    /// The node, for the audit trail's records of refusals made here.
    node: stele::Node,
    inner: S3Service,
    prefix: u32,
    limiter: Arc<AuthLimiter>,
    metrics: Arc<Metrics>,
    peer: Option<IpAddr>,
    /// The `--domain` of virtual-host-style addressing, if set.
    vhost: Option<Arc<super::host::Domain>>,
}

impl WithRequestId {
    pub fn new(
        node: stele::Node,
        inner: S3Service,
        limiter: Arc<AuthLimiter>,
        metrics: Arc<Metrics>,
        vhost: Option<Arc<super::host::Domain>>,
    ) -> Self {
        // A per-process prefix keeps ids unique across restarts without coordination.
        Self {
            node,
            inner,
            prefix: rand::random(),
            limiter,
            metrics,
            peer: None,
            vhost,
        }
    }

    /// The service for one connection from `peer`.
    pub fn for_peer(&self, peer: IpAddr) -> Self {
        Self {
            peer: Some(peer),
            ..self.clone()
        }
    }

    fn next_id(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        format!(
            "{:08X}{:016X}",
            self.prefix,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Queries of the Object Lock reads whose XML s3s writes without S3's namespace.
const LOCK_QUERIES: [&str; 3] = ["retention", "legal-hold", "object-lock"];
const XMLNS: &str = r#" xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;

/// Adds S3's namespace to the root element of an Object Lock body, as Amazon S3 writes it:
/// strict parsers (Veeam's) expect it.
async fn namespaced(
    parts: http::response::Parts,
    body: s3s::Body,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    let text = body_text(body).await;
    let patched = ["<Retention>", "<LegalHold>", "<ObjectLockConfiguration>"]
        .iter()
        .find_map(|root| {
            text.find(root).map(|at| {
                let name = &root[..root.len() - 1];
                format!("{}{name}{XMLNS}>{}", &text[..at], &text[at + root.len()..])
            })
        })
        .unwrap_or(text);
    Ok(with_body(parts, patched))
}

/// A small body, whole, as text.
async fn body_text(body: s3s::Body) -> String {
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The response with `text` as its body (and a Content-Length to match).
fn with_body(mut parts: http::response::Parts, text: String) -> http::Response<s3s::Body> {
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(text.len()),
    );
    http::Response::from_parts(parts, s3s::Body::from(Bytes::from(text)))
}

/// The access key a SigV4 request names (header or presigned query), if any.
fn access_key_of(req: &http::Request<Incoming>) -> Option<String> {
    let from_header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .map(str::to_owned);
    from_header.or_else(|| {
        let q = req.uri().query()?;
        q.split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))
            .and_then(|c| urlencoding::decode(c).ok())
            .and_then(|c| c.split('/').next().map(str::to_owned))
    })
}

/// User metadata goes back as it came: s3s encodes a non-ASCII value as RFC 2047
/// encoded-words (`=?UTF-8?B?...?=`), where Amazon S3 returns the bytes a client sent
/// (`x-amz-meta-x: Hello Worldé` comes back as `Hello Worldé`). A value that holds bytes
/// a header cannot carry (control characters) keeps its encoding.
fn raw_user_metadata(headers: &mut http::HeaderMap) {
    use base64::Engine;
    for (name, value) in headers.iter_mut() {
        if !name.as_str().starts_with("x-amz-meta-") || !value.as_bytes().starts_with(b"=?UTF-8?B?")
        {
            continue;
        }
        let Ok(text) = value.to_str() else { continue };
        let decoded: Option<Vec<u8>> = text
            .split(' ')
            .map(|word| {
                let b64 = word.strip_prefix("=?UTF-8?B?")?.strip_suffix("?=")?;
                base64::engine::general_purpose::STANDARD.decode(b64).ok()
            })
            .collect::<Option<Vec<Vec<u8>>>>()
            .map(|words| words.concat());
        if let Some(raw) = decoded.filter(|b| std::str::from_utf8(b).is_ok())
            && let Ok(v) = http::HeaderValue::from_bytes(&raw)
        {
            *value = v;
        }
    }
}

fn slow_down() -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Too many failed authentications; try again later.</Message></Error>";
    http::Response::builder()
        .status(http::StatusCode::SERVICE_UNAVAILABLE)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(s3s::Body::from(Bytes::from_static(body.as_bytes())))
        .map_err(|e| s3s::HttpError::new(Box::new(e)))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl hyper::service::Service<http::Request<Incoming>> for WithRequestId {
    type Response = http::Response<s3s::Body>;
    type Error = s3s::HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let id = self.next_id();
        req.extensions_mut().insert(RequestContext {
            id: id.clone(),
            peer: self.peer,
        });
        let path = req.uri().path().to_owned();
        let lock_read = req.method() == http::Method::GET
            && req.uri().query().is_some_and(|q| {
                LOCK_QUERIES
                    .iter()
                    .any(|l| q.split('&').any(|p| p.split('=').next() == Some(l)))
            });
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let client = super::clients::client_of(user_agent);
        super::clients::note_client(client, user_agent);
        let virtual_bucket = self.vhost.as_ref().is_some_and(|d| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| d.bucket_of(h))
                .is_some()
        });
        let unknown_query = super::clients::unknown_bucket_query(
            req.method(),
            virtual_bucket,
            &path,
            req.uri().query(),
        );
        let span = tracing::info_span!(
            "s3",
            request_id = %id,
            method = %req.method(),
            path = %path,
            client
        );
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        let peer = self.peer;
        let access_key = access_key_of(&req);
        // Refusals made here precede authentication: the key is only claimed, and is
        // recorded as such (in the event's detail, shape-checked), never as the actor's.
        let node = self.node.clone();
        let refusal_id = id.clone();
        // Made only for a refusal: most requests are not refused here.
        let audit = move |event: &stele::audit::AuditEvent| {
            node.acting_for(stele::audit::Requester {
                user: None,
                key: None,
                source: peer.map(|p| p.to_string()),
                request_id: Some(refusal_id.clone()),
            })
            .audit(event);
        };
        let metrics = self.metrics.clone();
        let started = std::time::Instant::now();
        let op = crate::metrics::op_label(req.method().as_str(), &path, req.uri().query());
        let bytes_in = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let skewed = super::skew::too_skewed(req.headers(), stele::Clock::now(&stele::SystemClock));
        let is_head = req.method() == http::Method::HEAD;
        let bad_expiry = super::skew::bad_presign_expiry(req.uri().query());
        Box::pin(
            async move {
                let resp = if limiter.blocked(access_key.as_deref(), peer) {
                    audit(&stele::audit::AuditEvent::AuthRateLimited {
                        plane: stele::identity::Plane::S3,
                        access_key: stele::audit::claimed_key(access_key.as_deref()),
                        source: peer.map(|p| p.to_string()),
                    });
                    slow_down()?
                } else if let Some(reason) = bad_expiry {
                    let body = format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AuthorizationQueryParametersError</Code><Message>{reason}</Message></Error>"
                    );
                    http::Response::builder()
                        .status(http::StatusCode::BAD_REQUEST)
                        .header(http::header::CONTENT_TYPE, "application/xml")
                        .body(s3s::Body::from(Bytes::from(body)))
                        .map_err(|e| s3s::HttpError::new(Box::new(e)))?
                } else if skewed {
                    tracing::warn!("request time too skewed");
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>";
                    http::Response::builder()
                        .status(http::StatusCode::FORBIDDEN)
                        .header(http::header::CONTENT_TYPE, "application/xml")
                        .body(s3s::Body::from(Bytes::from_static(body.as_bytes())))
                        .map_err(|e| s3s::HttpError::new(Box::new(e)))?
                } else {
                    let resp = hyper::service::Service::call(&inner, req).await?;
                    match unknown_query {
                        // s3s authenticated the request and answered it with a listing (it
                        // routes unknown keys there): refused instead. Its errors (a bad
                        // signature, no such bucket) go out as they are.
                        Some(key) if resp.status().is_success() => {
                            let body = format!(
                                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NotImplemented</Code><Message>The bucket sub-resource {} is not implemented.</Message></Error>",
                                escape(&key)
                            );
                            http::Response::builder()
                                .status(http::StatusCode::NOT_IMPLEMENTED)
                                .header(http::header::CONTENT_TYPE, "application/xml")
                                .body(s3s::Body::from(Bytes::from(body)))
                                .map_err(|e| s3s::HttpError::new(Box::new(e)))?
                        }
                        _ => resp,
                    }
                };
                let status = resp.status();
                let bytes_out = resp
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                metrics.observe(&op, status.as_u16(), started.elapsed(), bytes_in, bytes_out);
                let (mut parts, body) = resp.into_parts();
                // s3s answers every successful HEAD with 200; a HEAD of one part
                // (partNumber) describes a partial answer, 206 as S3 sends it.
                if is_head
                    && parts.status == http::StatusCode::OK
                    && parts.headers.contains_key(http::header::CONTENT_RANGE)
                {
                    parts.status = http::StatusCode::PARTIAL_CONTENT;
                }
                if let Ok(v) = http::HeaderValue::from_str(&id) {
                    parts.headers.insert("x-amz-request-id", v);
                }
                raw_user_metadata(&mut parts.headers);
                let is_xml = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
                let small = hyper::body::Body::size_hint(&body)
                    .upper()
                    .is_some_and(|n| n <= MAX_ERROR_BODY as u64);
                if status.is_success() && is_xml && small && lock_read {
                    return namespaced(parts, body).await;
                }
                if !(status.is_client_error() || status.is_server_error()) || !is_xml || !small {
                    return Ok(http::Response::from_parts(parts, body));
                }
                if status.is_server_error() {
                    tracing::warn!(%status, "request failed");
                }
                let text = body_text(body).await;
                if status == http::StatusCode::FORBIDDEN
                    && (text.contains("<Code>SignatureDoesNotMatch</Code>")
                        || text.contains("<Code>InvalidAccessKeyId</Code>"))
                {
                    limiter.failed(access_key.as_deref(), peer);
                    audit(&stele::audit::AuditEvent::AuthFailed {
                        plane: stele::identity::Plane::S3,
                        access_key: stele::audit::claimed_key(access_key.as_deref()),
                        source: peer.map(|p| p.to_string()),
                    });
                }
                let extra = format!(
                    "<Resource>{}</Resource><RequestId>{}</RequestId>",
                    escape(&path),
                    id
                );
                let patched = match text.rfind("</Error>") {
                    Some(at) if !text.contains("<RequestId>") => {
                        format!("{}{extra}{}", &text[..at], &text[at..])
                    }
                    _ => text,
                };
                Ok(with_body(parts, patched))
            }
            .instrument(span),
        )
    }
}
