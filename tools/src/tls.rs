//! How `stelectl` trusts a node's TLS certificate: a CA file (PEM; a node's self-signed
//! `tls/cert.pem` serves as its own CA), or the certificate's pinned SHA-256 fingerprint
//! (64 hex digits, colons allowed, as `stele-server` prints it at start). There is no
//! fallback to a system store: an `https://` URL needs one of the two.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What a TLS peer is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates signed by (or equal to) one in this PEM file, for the URL's host.
    Ca(PathBuf),
    /// Exactly this certificate: the SHA-256 of its DER form.
    Fingerprint([u8; 32]),
}

impl Trust {
    /// `--ca` or `--fingerprint` (not both); `None` when neither is given.
    ///
    /// # Errors
    /// Both given, or a fingerprint that is not 32 bytes of hex.
    pub fn from_flags(
        ca: Option<&Path>,
        fingerprint: Option<&str>,
    ) -> anyhow::Result<Option<Self>> {
        match (ca, fingerprint) {
            (Some(_), Some(_)) => bail!("give --ca or --fingerprint, not both"),
            (Some(p), None) => Ok(Some(Trust::Ca(p.to_owned()))),
            (None, Some(f)) => Ok(Some(Trust::Fingerprint(parse_fingerprint(f)?))),
            (None, None) => Ok(None),
        }
    }
}

/// 64 hex digits, upper or lower case, with or without `:` between bytes.
///
/// # Errors
/// Anything else.
pub fn parse_fingerprint(s: &str) -> anyhow::Result<[u8; 32]> {
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&digits).with_context(|| format!("fingerprint {s:?} is not hex"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow::anyhow!("fingerprint {s:?} has {} bytes, not 32 (SHA-256)", b.len())
    })
}

fn sha256(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The client configuration that checks a peer as `trust` says.
///
/// # Errors
/// The CA file cannot be read or holds no certificate.
pub fn client_config(trust: &Trust) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match trust {
        Trust::Ca(path) => {
            let mut roots = RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                bail!("{} holds no usable certificate", path.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
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
        let got = sha256(end_entity);
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
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
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        assert!(Trust::from_flags(Some(Path::new("x")), Some(&hex64)).is_err());
        assert_eq!(Trust::from_flags(None, None).expect("none"), None);
    }
}
