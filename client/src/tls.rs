//! How a client trusts a Stele node's TLS certificate: a CA (a PEM file, or PEM text held
//! in memory such as a peer's CA kept in the server's metadata; a node's self-signed
//! `tls/cert.pem` serves as its own CA), or the certificate's pinned SHA-256 fingerprint
//! (64 hex digits, colons allowed, as `stele-server` prints it at start). There is no
//! fallback to a system store: an `https://` endpoint needs one of these.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::ClientError;

/// What a TLS peer is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates signed by (or equal to) one in this PEM file, for the URL's host.
    Ca(PathBuf),
    /// As [`Trust::Ca`], with the PEM text itself (one or more certificates).
    CaPem(String),
    /// Exactly this certificate: the SHA-256 of its DER form.
    Fingerprint([u8; 32]),
}

impl Trust {
    /// [`Trust::Fingerprint`] from text, as [`parse_fingerprint`] reads it.
    ///
    /// # Errors
    /// [`ClientError::Fingerprint`]: not 32 bytes of hex.
    pub fn fingerprint(s: &str) -> Result<Self, ClientError> {
        parse_fingerprint(s).map(Trust::Fingerprint)
    }
}

/// 64 hex digits, upper or lower case, with or without `:` between bytes.
///
/// # Errors
/// [`ClientError::Fingerprint`] for anything else.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], ClientError> {
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    let bad = |reason: String| ClientError::Fingerprint {
        input: s.to_owned(),
        reason,
    };
    let bytes = hex::decode(&digits).map_err(|e| bad(format!("not hex ({e})")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(format!("{} bytes, not 32 (SHA-256)", b.len())))
}

/// The SHA-256 fingerprint of a DER certificate, as [`Trust::Fingerprint`] pins it.
pub fn fingerprint_of(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The client configuration that checks a peer as `trust` says (rustls with ring, TLS
/// 1.2 and 1.3, no client certificate).
///
/// # Errors
/// [`ClientError::Ca`]: the CA file cannot be read, or the CA holds no usable
/// certificate; [`ClientError::TlsConfig`] if rustls refuses the protocol versions.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::TlsConfig {
            reason: e.to_string(),
        })?;
    let config = match trust {
        Trust::Ca(path) => {
            let origin = path.display().to_string();
            let bad = |reason: String| ClientError::Ca {
                origin: origin.clone(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("cannot read the file: {e}")))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
            builder
                .with_root_certificates(roots(certs, &origin)?)
                .with_no_client_auth()
        }
        Trust::CaPem(pem) => {
            let origin = "PEM text".to_owned();
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| ClientError::Ca {
                        origin: origin.clone(),
                        reason: format!("not PEM certificates: {e}"),
                    })?;
            builder
                .with_root_certificates(roots(certs, &origin)?)
                .with_no_client_auth()
        }
        Trust::Fingerprint(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin: *pin,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// A client configuration that trusts nothing, for a client that only speaks plain HTTP
/// (its TLS side is never used).
///
/// # Errors
/// [`ClientError::TlsConfig`] if rustls refuses the protocol versions.
pub fn plain_config() -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::TlsConfig {
            reason: e.to_string(),
        })?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// A root store of `certs`; at least one must be usable.
fn roots(certs: Vec<CertificateDer<'static>>, origin: &str) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ClientError::Ca {
            origin: origin.to_owned(),
            reason: "holds no usable certificate".into(),
        });
    }
    Ok(roots)
}

/// Accepts exactly the certificate whose SHA-256 is `pin` (whatever names it holds: the
/// pin is the identity), with a valid handshake signature by its key.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint_of(end_entity);
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            // `General`, not `InvalidCertificate(Other(..))`: rustls shows the latter
            // with Debug, and this message is what a user (stelectl) reads.
            Err(rustls::Error::General(format!(
                "the server's certificate has fingerprint {}, not the pinned {}",
                hex::encode(got),
                hex::encode(self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex64 = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex64).expect("plain"), [0xab; 32]);
        assert_eq!(parse_fingerprint(&colons).expect("colons"), [0xab; 32]);
        assert!(matches!(
            parse_fingerprint("abcd"),
            Err(ClientError::Fingerprint { .. })
        ));
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        assert_eq!(
            Trust::fingerprint(&hex64).expect("trust"),
            Trust::Fingerprint([0xab; 32])
        );
    }

    #[test]
    fn a_ca_is_read_from_a_file_or_from_text() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let pem = made.cert.pem();
        assert!(client_config(&Trust::CaPem(pem.clone())).is_ok());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, &pem).expect("write");
        assert!(client_config(&Trust::Ca(file)).is_ok());

        let missing = client_config(&Trust::Ca(dir.path().join("none.pem")));
        assert!(
            matches!(missing, Err(ClientError::Ca { .. })),
            "{missing:?}"
        );
        for text in ["", "not a certificate"] {
            let got = client_config(&Trust::CaPem(text.into()));
            assert!(
                matches!(&got, Err(ClientError::Ca { origin, .. }) if origin == "PEM text"),
                "{got:?}"
            );
        }
    }
}
