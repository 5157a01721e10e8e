//! A SigV4-signing S3 client over hyper (HTTP/1.1, pooled connections) and rustls:
//! path-style requests (`endpoint/bucket/key`) to one endpoint with one credential, the
//! whole answer read into memory (up to a limit).
//!
//! Signing is aws-sigv4's, set up for S3: the path is signed as sent (no double encoding,
//! no normalisation of `.` segments), and `x-amz-content-sha256` is always sent and
//! signed. Over TLS it is `UNSIGNED-PAYLOAD` (TLS protects the body); over plain HTTP a
//! byte body's SHA-256 is signed, and a streamed body is `UNSIGNED-PAYLOAD` (it cannot be
//! hashed before it is sent).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use futures::Stream;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::ClientError;
use crate::body::{Checked, FailureSlot};
use crate::error::{describe, find_in_chain};
use crate::tls::{Trust, client_config, plain_config};

/// The largest answer body [`S3Client::send`] reads unless told otherwise: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;
/// How long a connection (TCP) may take unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole exchange may take unless told otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unused pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Headers the client sets itself; a request may not give them.
const RESERVED: [&str; 6] = [
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "content-length",
    "transfer-encoding",
];

type RequestBody = UnsyncBoxBody<Bytes, io::Error>;
type Http = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// A client for one S3 endpoint with one credential. Cloning is cheap, and clones share
/// the connection pool.
#[derive(Clone)]
pub struct S3Client {
    http: Http,
    conf: Arc<Conf>,
}

#[derive(Clone)]
struct Conf {
    /// `scheme://authority`, no trailing slash.
    endpoint: String,
    authority: String,
    https: bool,
    credentials: Credentials,
    region: String,
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
    request_timeout: Duration,
    body_limit: usize,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.conf.endpoint)
            .field("region", &self.conf.region)
            .field("access_key", &self.conf.credentials.access_key_id())
            .field("connect_timeout", &self.conf.connect_timeout)
            .field("request_timeout", &self.conf.request_timeout)
            .field("body_limit", &self.conf.body_limit)
            .finish_non_exhaustive()
    }
}

/// One S3 request. `key` and the query pairs are given decoded; the client encodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    /// The HTTP method.
    pub method: Method,
    /// The bucket; empty for the service itself (`GET /`, list buckets).
    pub bucket: String,
    /// The object key, if the request names one.
    pub key: Option<String>,
    /// Query parameters, in any order (an empty value is sent as the bare name, as in
    /// `?uploads`).
    pub query: Vec<(String, String)>,
    /// Extra headers, all signed (`x-amz-meta-*`, `x-amz-object-lock-*`, `content-type`,
    /// ...). Those the client sets itself (`host`, `authorization`, `x-amz-date`,
    /// `x-amz-content-sha256`, `content-length`, `transfer-encoding`) are refused.
    pub headers: Vec<(String, String)>,
    /// The body (empty for most requests; must be empty with [`S3Client::send_stream`]).
    pub body: Bytes,
}

impl S3Request {
    /// A request for `bucket` with no key, query, extra header or body.
    pub fn new(method: Method, bucket: impl Into<String>) -> Self {
        Self {
            method,
            bucket: bucket.into(),
            key: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The same request for object `key`.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The same request with the query parameter `name=value` added.
    #[must_use]
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// The same request with the header `name: value` added.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same request with `body`.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct S3Response {
    /// The HTTP status code.
    pub status: u16,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl S3Response {
    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The header `name` as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `<Code>` of an S3 XML error body (`NoSuchKey`, `AccessDenied`, ...).
    pub fn error_code(&self) -> Option<String> {
        xml_element(&self.body, "Code")
    }

    /// The `<Message>` of an S3 XML error body.
    pub fn error_message(&self) -> Option<String> {
        xml_element(&self.body, "Message")
    }
}

/// The text of the first `<name>` element of an XML error body, entities decoded.
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.trim_start().starts_with('<') {
        return None;
    }
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(
        text[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

impl S3Client {
    /// A client for `endpoint` (`https://host[:port]` or `http://host[:port]`, nothing
    /// after the authority but an optional `/`) signing with `access_key`/`secret_key`
    /// for `region`. An https endpoint needs `trust` (there is no system store); an http
    /// endpoint takes none. Timeouts and the body limit are the defaults until
    /// [`S3Client::with_timeouts`] and [`S3Client::with_body_limit`].
    ///
    /// # Errors
    /// [`ClientError::Endpoint`] for a bad URL or a trust that does not fit its scheme;
    /// the errors of [`client_config`] for the trust.
    pub fn new(
        endpoint: &str,
        trust: Option<&Trust>,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("expected https://host:port or http://host:port")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad("expected https://host:port or http://host:port"))?
            .as_str()
            .to_owned();
        if authority.contains('@') {
            return Err(bad("no user information in the URL, please"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("no path or query after host:port, please"));
        }
        let tls = match (https, trust) {
            (true, Some(t)) => client_config(t)?,
            (true, None) => {
                return Err(bad(
                    "https needs a trust: the peer's CA or its certificate's fingerprint",
                ));
            }
            (false, None) => plain_config()?,
            (false, Some(_)) => {
                return Err(bad(
                    "plain http: a CA or fingerprint applies to https:// only",
                ));
            }
        };
        let scheme = if https { "https" } else { "http" };
        let conf = Conf {
            endpoint: format!("{scheme}://{authority}"),
            authority,
            https,
            credentials: Credentials::new(access_key, secret_key, None, None, "stele-client"),
            region: region.to_owned(),
            tls,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
        };
        Ok(Self {
            http: http_client(&conf),
            conf: Arc::new(conf),
        })
    }

    /// The same client with these limits: `connect` for each TCP connection, `request`
    /// for a whole exchange (connection, TLS handshake, sending the body, reading the
    /// answer). The result has a connection pool of its own.
    #[must_use]
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        let conf = Arc::make_mut(&mut self.conf);
        conf.connect_timeout = connect;
        conf.request_timeout = request;
        self.http = http_client(conf);
        self
    }

    /// The same client (sharing its pool) refusing answer bodies over `limit` bytes.
    #[must_use]
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.conf).body_limit = limit;
        self
    }

    /// The endpoint, as `scheme://host:port`.
    pub fn endpoint(&self) -> &str {
        &self.conf.endpoint
    }

    /// Sends `req` with its byte body and reads the whole answer, whatever its status.
    ///
    /// # Errors
    /// [`ClientError::Request`] or [`ClientError::Signing`] before anything is sent;
    /// then [`ClientError::Tls`], [`ClientError::Connect`], [`ClientError::Timeout`],
    /// [`ClientError::Transport`] or [`ClientError::BodyTooLarge`]. An S3 error is an
    /// answer, not an error (see [`S3Response::error_code`]).
    pub async fn send(&self, req: S3Request) -> Result<S3Response, ClientError> {
        let payload = if self.conf.https {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(&req.body)
        };
        let head = self.signed_head(&req, payload, SystemTime::now())?;
        let body = Full::new(req.body.clone())
            .map_err(|never| match never {})
            .boxed_unsync();
        self.exchange(head, body, None).await
    }

    /// Sends `req` (whose `body` must be empty) with `body` streamed as its body: exactly
    /// `length` bytes, sent with that `Content-Length` and signed as `UNSIGNED-PAYLOAD`.
    ///
    /// # Errors
    /// As [`S3Client::send`], and [`ClientError::Body`] when the stream fails or gives
    /// more or fewer than `length` bytes (the request is then cut short).
    pub async fn send_stream<S>(
        &self,
        req: S3Request,
        length: u64,
        body: S,
    ) -> Result<S3Response, ClientError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    {
        if !req.body.is_empty() {
            return Err(ClientError::Request {
                reason: "a streamed request has its body in the stream, not in `body`".into(),
            });
        }
        let head = self.signed_head(&req, SignableBody::UnsignedPayload, SystemTime::now())?;
        let failed = FailureSlot::default();
        let body = Checked::new(body, length, failed.clone()).boxed_unsync();
        self.exchange(head, body, Some(failed)).await
    }

    /// The request's head: URL, `host`, the extra headers, and the signature's headers.
    fn signed_head(
        &self,
        req: &S3Request,
        payload: SignableBody<'_>,
        now: SystemTime,
    ) -> Result<http::Request<()>, ClientError> {
        let bad = |reason: String| ClientError::Request { reason };
        let url = format!(
            "{}{}",
            self.conf.endpoint,
            path_and_query(&req.bucket, req.key.as_deref(), &req.query)
        );
        let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers.len() + 1);
        headers.push(("host".into(), self.conf.authority.clone()));
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED.contains(&lower.as_str()) {
                return Err(bad(format!("the header {name} is set by the client")));
            }
            headers.push((lower, value.clone()));
        }
        let signature = sign(
            req.method.as_str(),
            &url,
            &headers,
            payload,
            &self.conf.credentials,
            &self.conf.region,
            now,
        )?;
        let mut head = http::Request::builder()
            .method(req.method.clone())
            .uri(&url)
            .body(())
            .map_err(|e| bad(format!("{url}: {e}")))?;
        let map = head.headers_mut();
        for (name, value) in headers.iter().chain(&signature) {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(format!("header name {name:?}: {e}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|e| bad(format!("header {name} value {value:?}: {e}")))?;
            map.append(n, v);
        }
        map.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("stele-client/", env!("CARGO_PKG_VERSION"))),
        );
        Ok(head)
    }

    /// Sends `head` with `body` and reads the answer, within the request timeout.
    async fn exchange(
        &self,
        head: http::Request<()>,
        body: RequestBody,
        failed: Option<FailureSlot>,
    ) -> Result<S3Response, ClientError> {
        let method = head.method().to_string();
        let url = head.uri().to_string();
        let request = head.map(|()| body);
        let limit = self.conf.body_limit;
        let exchange = async {
            let answer = self
                .http
                .request(request)
                .await
                .map_err(|e| self.classify(&method, &url, &e, failed.as_ref()))?;
            let (parts, incoming) = answer.into_parts();
            let body = Limited::new(incoming, limit)
                .collect()
                .await
                .map_err(|e| {
                    if find_in_chain::<LengthLimitError>(&*e).is_some() {
                        ClientError::BodyTooLarge {
                            method: method.clone(),
                            url: url.clone(),
                            limit,
                        }
                    } else {
                        ClientError::Transport {
                            method: method.clone(),
                            url: url.clone(),
                            reason: describe(&*e),
                        }
                    }
                })?
                .to_bytes();
            Ok(S3Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.conf.request_timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                endpoint: self.conf.endpoint.clone(),
                what: "answer",
                after: self.conf.request_timeout,
            })?
    }

    /// What a failed hyper request means.
    fn classify(
        &self,
        method: &str,
        url: &str,
        e: &hyper_util::client::legacy::Error,
        failed: Option<&FailureSlot>,
    ) -> ClientError {
        if let Some(reason) = failed.and_then(|f| f.lock().ok().and_then(|mut s| s.take())) {
            return ClientError::Body {
                method: method.to_owned(),
                url: url.to_owned(),
                reason,
            };
        }
        let endpoint = self.conf.endpoint.clone();
        if e.is_connect() {
            if let Some(tls) = find_in_chain::<rustls::Error>(e) {
                return ClientError::Tls {
                    endpoint,
                    reason: tls.to_string(),
                };
            }
            if find_in_chain::<io::Error>(e).is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
            {
                return ClientError::Timeout {
                    endpoint,
                    what: "connection",
                    after: self.conf.connect_timeout,
                };
            }
            return ClientError::Connect {
                endpoint,
                reason: describe(e),
            };
        }
        ClientError::Transport {
            method: method.to_owned(),
            url: url.to_owned(),
            reason: describe(e),
        }
    }
}

/// The pooled hyper client for `conf`'s TLS configuration and connect timeout.
fn http_client(conf: &Conf) -> Http {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(conf.connect_timeout));
    tcp.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(conf.tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector)
}

/// The headers that sign a request (`authorization`, `x-amz-date`,
/// `x-amz-content-sha256`): `url` is the full URL as sent (already encoded), `headers`
/// every header to sign, `host` included.
fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    payload: SignableBody<'_>,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<Vec<(String, String)>, ClientError> {
    let failed = |e: &dyn std::error::Error| ClientError::Signing {
        reason: e.to_string(),
    };
    let mut settings = SigningSettings::default();
    // S3 signs the path as sent: not encoded twice, `.` segments kept.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        payload,
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (added, _query) = instructions.into_parts();
    Ok(added
        .iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

/// `/bucket/key?query` with S3's encoding: every byte of the bucket, the key and the
/// query but RFC 3986's unreserved characters is percent-encoded, except the `/` of keys.
fn path_and_query(bucket: &str, key: Option<&str>, query: &[(String, String)]) -> String {
    let mut out = String::from("/");
    encode_into(&mut out, bucket, false);
    if let Some(key) = key {
        out.push('/');
        encode_into(&mut out, key, true);
    }
    for (i, (name, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        encode_into(&mut out, name, false);
        if !value.is_empty() {
            out.push('=');
            encode_into(&mut out, value, false);
        }
    }
    out
}

/// Appends `s` percent-encoded as SigV4 wants it (upper-case hex), keeping `/` if told.
fn encode_into(out: &mut String, s: &str, keep_slash: bool) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_wants() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        assert_eq!(path_and_query("", None, &[]), "/");
        assert_eq!(path_and_query("b", None, &[]), "/b");
        assert_eq!(path_and_query("b", Some("a/b c"), &[]), "/b/a/b%20c");
        assert_eq!(
            path_and_query("b", Some("ü+=&?#%~._-"), &[]),
            "/b/%C3%BC%2B%3D%26%3F%23%25~._-"
        );
        assert_eq!(path_and_query("b", Some("/lead//x/"), &[]), "/b//lead//x/");
        assert_eq!(path_and_query("b", Some("../x"), &[]), "/b/../x");
        assert_eq!(
            path_and_query("b", Some("k"), &q(&[("uploads", ""), ("prefix", "a/b c+")])),
            "/b/k?uploads&prefix=a%2Fb%20c%2B"
        );
    }

    fn aws_example_time() -> SystemTime {
        // 2013-05-24T00:00:00Z, the date of AWS's published S3 SigV4 examples.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn aws_example_credentials() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
    }

    /// AWS's "GET Object" example of header signing for S3 (Signature Version 4,
    /// "Examples: Signature Calculations in AWS Signature Version 4").
    #[test]
    fn the_signature_matches_the_aws_s3_example() {
        let headers = vec![
            (
                "host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("range".to_owned(), "bytes=0-9".to_owned()),
        ];
        let got = sign(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &headers,
            SignableBody::Bytes(b""),
            &aws_example_credentials(),
            "us-east-1",
            aws_example_time(),
        )
        .expect("sign");
        let get = |n: &str| {
            got.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{n} in {got:?}"))
        };
        assert_eq!(get("x-amz-date"), "20130524T000000Z");
        assert_eq!(
            get("x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert!(
            auth.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{auth}"
        );
    }

    /// AWS's "GET Bucket Lifecycle" example: a query parameter with no value.
    #[test]
    fn a_bare_query_name_signs_as_the_aws_example() {
        let headers = vec![(
            "host".to_owned(),
            "examplebucket.s3.amazonaws.com".to_owned(),
        )];
        let got = sign(
            "GET",
            "https://examplebucket.s3.amazonaws.com/?lifecycle",
            &headers,
            SignableBody::Bytes(b""),
            &aws_example_credentials(),
            "us-east-1",
            aws_example_time(),
        )
        .expect("sign");
        let auth = &got
            .iter()
            .find(|(k, _)| k == "authorization")
            .expect("auth")
            .1;
        assert!(
            auth.ends_with(
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            ),
            "{auth}"
        );
    }

    fn client(endpoint: &str, trust: Option<&Trust>) -> Result<S3Client, ClientError> {
        S3Client::new(endpoint, trust, "AK", "SK", "us-east-1")
    }

    #[test]
    fn endpoints_and_trust_must_fit() {
        let pin = Trust::Fingerprint([1; 32]);
        assert!(client("https://h:1", Some(&pin)).is_ok());
        assert!(client("https://h:1/", Some(&pin)).is_ok());
        assert!(client("http://127.0.0.1:9000", None).is_ok());
        for (url, trust) in [
            ("https://h:1", None),
            ("http://h:1", Some(&pin)),
            ("h:1", None),
            ("ftp://h:1", None),
            ("http://h:1/prefix", None),
            ("http://h:1/?x=1", None),
            ("http://u:p@h:1", None),
        ] {
            let got = client(url, trust);
            assert!(
                matches!(got, Err(ClientError::Endpoint { .. })),
                "{url}: {got:?}"
            );
        }
        let c = client("https://h:1/", Some(&pin)).expect("client");
        assert_eq!(c.endpoint(), "https://h:1");
    }

    #[test]
    fn the_head_carries_host_headers_and_signature() {
        let c = client("http://127.0.0.1:9000", None).expect("client");
        let req = S3Request::new(Method::PUT, "bkt")
            .with_key("a b/c")
            .with_query("tagging", "")
            .with_header("X-Amz-Meta-Colour", "blue")
            .with_body("hello");
        let head = c
            .signed_head(&req, SignableBody::Bytes(&req.body), aws_example_time())
            .expect("head");
        assert_eq!(head.uri(), "http://127.0.0.1:9000/bkt/a%20b/c?tagging");
        let h = |n: &str| {
            head.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert_eq!(h("host"), "127.0.0.1:9000");
        assert_eq!(h("x-amz-meta-colour"), "blue");
        assert_eq!(
            h("x-amz-content-sha256"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let auth = h("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-colour"),
            "{auth}"
        );

        let reserved = S3Request::new(Method::GET, "bkt").with_header("Authorization", "x");
        let got = c.signed_head(&reserved, SignableBody::UnsignedPayload, aws_example_time());
        assert!(matches!(got, Err(ClientError::Request { .. })), "{got:?}");
        let bad = S3Request::new(Method::GET, "bkt").with_header("x-bad", "line\nbreak");
        let got = c.signed_head(&bad, SignableBody::UnsignedPayload, aws_example_time());
        assert!(got.is_err(), "{got:?}");
    }

    #[test]
    fn error_codes_are_read_from_xml() {
        let r = S3Response {
            status: 404,
            headers: HeaderMap::new(),
            body: Bytes::from_static(
                b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>a &amp; b</Message></Error>",
            ),
        };
        assert_eq!(r.error_code().as_deref(), Some("NoSuchKey"));
        assert_eq!(r.error_message().as_deref(), Some("a & b"));
        assert!(!r.is_success());
        let empty = S3Response {
            status: 200,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        assert_eq!(empty.error_code(), None);
    }

    #[test]
    fn the_client_is_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<S3Client>();
    }
}
