//! The HTTP client side of Stele, shared by `stelectl` and the server's replication
//! sender: how a node's TLS certificate is trusted ([`tls`]: a CA file or PEM text, or a
//! pinned SHA-256 fingerprint) and a SigV4-signing S3 client over hyper and rustls
//! ([`s3`]). It links neither the engine (`stele`) nor an HTTP server stack (s3s, axum);
//! `scripts/check-layers` checks its manifest and sources.
//!
//! Errors are one [`ClientError`] with structured fields; [`ClientError::is_tls_failure`]
//! and [`ClientError::is_transient`] tell a refused certificate from a network failure.

#![warn(missing_docs)]

mod body;
mod error;
pub mod s3;
pub mod tls;

pub use error::ClientError;
pub use s3::{S3Client, S3Request, S3Response};
pub use tls::Trust;
