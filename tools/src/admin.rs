//! The client behind `stelectl`'s admin commands: HTTP/1.1 to a node's admin listener
//! (never the S3 port), HTTP Basic with an admin-plane credential, JSON both ways: request
//! bodies are serialized from, and answers read into, the wire types of [`stele_api`],
//! which the server answers with too.
//!
//! A non-2xx answer becomes an [`ApiError`] holding the server's body as is, so the caller
//! can show the server's `{"error": ..., "message": ...}` unchanged.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use stele_client::tls::{Trust, client_config, plain_config};

use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stele_api::errors::ErrorBody;

/// How long one call may take, connection included (calls that wait for a worker's pass,
/// [`AdminClient::post_waiting`], have no such limit).
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct AdminClient {
    /// `http://host:port` plus any path prefix, without a trailing slash.
    base: String,
    /// The `Authorization` header value.
    auth: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    rt: tokio::runtime::Runtime,
}

/// A 2xx answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// The answer's headers.
    pub headers: http::HeaderMap,
}

impl Reply {
    /// The header `name`'s value, if it is there and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text, exactly as the server sent it.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body read as JSON into the wire type `T` (an empty body reads as `null`, so
    /// as `None` for an `Option`).
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).context("the server's answer is not the JSON expected")
    }

    /// 202: the operation waits for a second administrator's approval.
    pub fn is_pending(&self) -> bool {
        self.status == StatusCode::ACCEPTED
    }
}

/// A non-2xx answer: the call, the status and the server's body as is.
#[derive(Debug)]
pub struct ApiError {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub body: String,
}

impl ApiError {
    /// The server's `error` and `message` fields, when the body is the usual JSON error.
    pub fn parts(&self) -> Option<(String, String)> {
        let e: ErrorBody = serde_json::from_str(&self.body).ok()?;
        Some((e.error, e.message))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.method, self.path, self.status)?;
        match self.parts() {
            Some((code, msg)) if msg.is_empty() => write!(f, ": {code}"),
            Some((code, msg)) => write!(f, ": {code}: {msg}"),
            None if self.body.trim().is_empty() => Ok(()),
            None => write!(f, ": {}", self.body.trim()),
        }
    }
}

impl std::error::Error for ApiError {}

impl AdminClient {
    /// A client for the admin API at `url` (`http://host:port` or `https://host:port`,
    /// optionally with a path prefix) with the admin-plane credential `key`/`secret`;
    /// over https, the node's certificate is checked as `trust` says (required then).
    pub fn new(url: &str, key: &str, secret: &str, trust: Option<&Trust>) -> anyhow::Result<Self> {
        use base64::Engine;
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("bad admin URL {url:?}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => {
                if trust.is_some() {
                    bail!(
                        "{url} is plain http: --ca/--fingerprint (STELE_CA, STELE_FINGERPRINT) \
                         apply to an https:// admin URL only"
                    );
                }
                None
            }
            Some("https") => Some(trust.with_context(|| {
                format!(
                    "{url} is https: give the node's certificate as --ca FILE (its \
                     tls/cert.pem when self-signed) or --fingerprint HEX (printed at its start)"
                )
            })?),
            _ => bail!("bad admin URL {url:?}: expected http://host:port or https://host:port"),
        };
        if uri.authority().is_none() {
            bail!("bad admin URL {url:?}: expected http://host:port");
        }
        if uri.query().is_some() {
            bail!("bad admin URL {url:?}: no query string, please");
        }
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
        );
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.enforce_http(false);
        // A plain URL never starts a handshake; its config is never used.
        let config = match tls {
            Some(t) => client_config(t)?,
            None => plain_config()?,
        };
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            auth,
            client: Client::builder(TokioExecutor::new()).build(connector),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.call(Method::GET, path, None)
    }

    /// A POST without a body.
    pub fn post(&self, path: &str) -> anyhow::Result<Reply> {
        self.call(Method::POST, path, None)
    }

    /// A POST of `body` as JSON.
    pub fn post_json(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Reply> {
        self.call(Method::POST, path, Some(serde_json::to_vec(body)?))
    }

    /// A PUT of `body` as JSON.
    pub fn put(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Reply> {
        self.call(Method::PUT, path, Some(serde_json::to_vec(body)?))
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        self.call(Method::DELETE, path, None)
    }

    /// A POST without a body that answers when a worker's pass is done (a scrub pass, a
    /// restore drill): it may take as long as the pass does, so only the connection has
    /// a time limit.
    pub fn post_waiting(&self, path: &str) -> anyhow::Result<Reply> {
        self.call_within(Method::POST, path, None, None)
    }

    /// One call with `body` (JSON) if any; `path` starts with `/` and has its segments
    /// already escaped (see [`segment`]). A non-2xx answer is an [`ApiError`].
    pub fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> anyhow::Result<Reply> {
        self.call_within(method, path, body, Some(TIMEOUT))
    }

    /// [`Self::call`] with the answer due within `limit` (`None`: no limit but the
    /// connection's).
    fn call_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        limit: Option<Duration>,
    ) -> anyhow::Result<Reply> {
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(http::header::AUTHORIZATION, &self.auth)
            .header(http::header::ACCEPT, "application/json");
        let bytes = match body {
            Some(json) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(json)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(bytes))?;
        let (status, headers, body) = self
            .rt
            .block_on(async {
                let exchange = async {
                    let resp = self.client.request(req).await?;
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = resp.into_body().collect().await?.to_bytes();
                    anyhow::Ok((status, headers, body))
                };
                match limit {
                    Some(limit) => tokio::time::timeout(limit, exchange)
                        .await
                        .map_err(|_| anyhow::anyhow!("no answer within {}s", limit.as_secs()))?,
                    None => exchange.await,
                }
            })
            .with_context(|| format!("{method} {}{path}", self.base))?;
        if !status.is_success() {
            return Err(ApiError {
                method,
                path: path.to_owned(),
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
            .into());
        }
        Ok(Reply {
            status,
            body,
            headers,
        })
    }
}

/// `s` escaped for use as one path segment: everything but RFC 3986's unreserved
/// characters is percent-encoded, and so are the dots of `.` and `..`.
pub fn segment(s: &str) -> String {
    let dots = s == "." || s == "..";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (b == b'.' && !dots) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(segment("alice-1.x_y~"), "alice-1.x_y~");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a..b"), "a..b");
    }

    #[test]
    fn api_errors_show_the_server_message() {
        let e = ApiError {
            method: Method::GET,
            path: "/v1/users".into(),
            status: StatusCode::UNAUTHORIZED,
            body: r#"{"error":"Unauthorized","message":"admin credentials required"}"#.into(),
        };
        assert_eq!(
            e.to_string(),
            "GET /v1/users: HTTP 401 Unauthorized: Unauthorized: admin credentials required"
        );
    }

    #[test]
    fn http_urls_and_https_with_a_trust() {
        assert!(AdminClient::new("https://h:1", "k", "s", None).is_err());
        let pin = Trust::Fingerprint([1; 32]);
        assert!(AdminClient::new("https://h:1", "k", "s", Some(&pin)).is_ok());
        assert!(AdminClient::new("h:1", "k", "s", None).is_err());
        assert!(AdminClient::new("http://127.0.0.1:9001/", "k", "s", None).is_ok());
    }
}
