//! The one error type of the crate, and how a failed exchange is classified: a refused
//! certificate (permanent until someone changes the trust or the peer's certificate) apart
//! from the network failing (transient: retry later).

use std::error::Error as StdError;
use std::time::Duration;

/// What went wrong, with the endpoint or input it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint URL is not `http://host[:port]` or `https://host[:port]`, or its
    /// scheme does not fit the trust given (https needs one, http takes none).
    #[error("bad endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The URL as given.
        endpoint: String,
        /// Why it is refused.
        reason: String,
    },
    /// A pinned fingerprint that is not 32 bytes of hex.
    #[error("bad fingerprint {input:?}: {reason}")]
    Fingerprint {
        /// The text as given.
        input: String,
        /// Why it is refused.
        reason: String,
    },
    /// A CA (file or PEM text) that cannot be read or holds no usable certificate.
    #[error("CA {origin}: {reason}")]
    Ca {
        /// The file's path, or `PEM text` for a CA given in memory.
        origin: String,
        /// Why it is refused.
        reason: String,
    },
    /// The TLS client configuration could not be built.
    #[error("TLS configuration: {reason}")]
    TlsConfig {
        /// rustls's reason.
        reason: String,
    },
    /// The TLS handshake failed: the peer's certificate was refused (a wrong pinned
    /// fingerprint, not signed by the CA, a name it does not hold, expired) or the peer
    /// does not speak TLS as expected. Permanent until the trust or the peer changes.
    #[error("TLS with {endpoint} failed: {reason}")]
    Tls {
        /// The endpoint connected to.
        endpoint: String,
        /// rustls's reason (for a pin: the fingerprint seen and the one pinned).
        reason: String,
    },
    /// No connection: refused, unreachable, name not resolved, reset during the
    /// handshake. Transient.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint connected to.
        endpoint: String,
        /// The underlying error chain.
        reason: String,
    },
    /// No connection within the connect timeout, or no complete answer within the
    /// request timeout. Transient.
    #[error("{endpoint}: no {what} within {after:?}")]
    Timeout {
        /// The endpoint connected to.
        endpoint: String,
        /// `connection` or `answer`.
        what: &'static str,
        /// The limit that ran out.
        after: Duration,
    },
    /// The connection failed during the exchange (closed, reset, a malformed answer).
    /// Transient.
    #[error("{method} {url}: {reason}")]
    Transport {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// The underlying error chain.
        reason: String,
    },
    /// The request cannot be made as given (a header reserved to the signer or not
    /// valid in HTTP, a streamed request with a byte body too).
    #[error("bad request: {reason}")]
    Request {
        /// Why it is refused.
        reason: String,
    },
    /// SigV4 signing failed.
    #[error("cannot sign the request: {reason}")]
    Signing {
        /// aws-sigv4's reason.
        reason: String,
    },
    /// A streamed request body failed: its stream returned an error, or gave more or
    /// fewer bytes than the declared length. The request was not completed.
    #[error("{method} {url}: request body: {reason}")]
    Body {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// What the stream did.
        reason: String,
    },
    /// The answer's body is longer than the client accepts.
    #[error("{method} {url}: the answer's body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
}

impl ClientError {
    /// The TLS handshake failed (for a pinned peer: it presented another certificate).
    /// A replication sender treats this as a refusal, not as a network failure.
    pub fn is_tls_failure(&self) -> bool {
        matches!(self, ClientError::Tls { .. })
    }

    /// Worth retrying later as is: no connection, a timeout, a connection lost during
    /// the exchange. Configuration errors, TLS failures, bad requests, a failing
    /// request body and an oversized answer are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout { .. }
                | ClientError::Transport { .. }
        )
    }
}

/// The next error in `e`'s chain. `std::io::Error::source` skips the error it wraps
/// (it returns that error's source), so an I/O error is opened with `get_ref` instead:
/// hyper-rustls wraps rustls's error in two of them.
fn next_in_chain<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    e.source()
}

/// `e` and every error below it.
pub(crate) fn chain<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| {
        next_in_chain(*e)
    })
}

/// The first error of type `T` in `e`'s chain.
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    e: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    chain(e).find_map(|e| e.downcast_ref::<T>())
}

/// `e`'s chain as one line, each error once (wrappers often repeat their source).
pub(crate) fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(e) {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_opens_nested_io_errors() {
        let tls = rustls::Error::General("bad".into());
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(inner);
        let found: Option<&rustls::Error> = find_in_chain(&outer);
        assert!(matches!(found, Some(rustls::Error::General(m)) if m == "bad"));
        assert!(describe(&outer).contains("bad"));
    }

    #[test]
    fn classification() {
        let tls = ClientError::Tls {
            endpoint: "https://h:1".into(),
            reason: "x".into(),
        };
        assert!(tls.is_tls_failure() && !tls.is_transient());
        let timeout = ClientError::Timeout {
            endpoint: "https://h:1".into(),
            what: "answer",
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_transient() && !timeout.is_tls_failure());
        let bad = ClientError::Request { reason: "x".into() };
        assert!(!bad.is_transient() && !bad.is_tls_failure());
    }
}
