//! TLS for both listeners (S3 and admin): rustls with the ring provider.
//!
//! The certificate is the operator's (PEM certificate chain and key, by flag, variable or
//! config file) or, without one, a self-signed certificate made with rcgen on first start
//! and kept in the key folder (`tls/cert.pem`, `tls/key.pem`, mode 0600), so clients can
//! pin it across restarts. Its SHA-256 fingerprint (of the DER certificate, as clients
//! pin it) is printed at start and shown by `GET /v1/status`. SIGHUP reloads the files:
//! handshakes after the reload present the new certificate, connections already open go
//! on with theirs.
//!
//! Whether a listener serves TLS: `--tls on` or `off` decide; `auto` (the default) serves
//! TLS on every address but loopback, and on loopback too when a certificate is given.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// `--tls`: whether the listeners serve TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// TLS on every address but loopback; on loopback too when a certificate is given.
    #[default]
    Auto,
    /// TLS on every listener.
    On,
    /// Plain HTTP on every listener, whatever the address (asked for explicitly).
    Off,
}

impl Mode {
    /// Whether a listener bound to `addr` serves TLS, with or without a given certificate.
    pub fn serves_tls(self, addr: IpAddr, given: bool) -> bool {
        match self {
            Mode::On => true,
            Mode::Off => false,
            Mode::Auto => given || !addr.is_loopback(),
        }
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Made by this node on first start (self-signed), not given by the operator.
    pub generated: bool,
}

impl Source {
    /// The operator's files, when both are given; else the key folder's self-signed pair,
    /// made now if missing, naming `names` (host names and addresses clients use) besides
    /// `localhost`, 127.0.0.1 and ::1.
    ///
    /// # Errors
    /// Only one of the two files given; the key folder's pair cannot be made or written.
    pub fn resolve(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        key_dir: &Path,
        names: &[String],
    ) -> anyhow::Result<Self> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Self {
                cert,
                key,
                generated: false,
            }),
            (None, None) => {
                let dir = key_dir.join("tls");
                let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
                if !cert.exists() || !key.exists() {
                    if cert.exists() || key.exists() {
                        // A crash between the two writes, or a file lost: clients that
                        // pinned the old certificate will see a new fingerprint.
                        tracing::warn!(dir = %dir.display(), "half a generated TLS pair found: making a new certificate (pinned fingerprints change)");
                    }
                    generate(&dir, &cert, &key, names)?;
                }
                Ok(Self {
                    cert,
                    key,
                    generated: true,
                })
            }
            _ => bail!("--tls-cert and --tls-key go together"),
        }
    }
}

/// Makes a self-signed certificate (ECDSA P-256) valid for `names` and the loopback names.
fn generate(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> anyhow::Result<()> {
    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for n in names {
        if !sans.contains(n) {
            sans.push(n.clone());
        }
    }
    let made = rcgen::generate_simple_self_signed(sans)
        .context("cannot make a self-signed TLS certificate")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    // The key first: a certificate is never on disk without its key.
    write_file(key, &made.key_pair.serialize_pem(), 0o600)?;
    write_file(cert, &made.cert.pem(), 0o644)?;
    // The renames are durable before the fingerprint is printed (and pinned by clients).
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

/// Writes `body` to `path` with `mode`, whole or not at all: into a fresh `.tmp` beside
/// it, fsynced, then renamed over it (the caller fsyncs the folder when the rename must
/// survive a power cut). Also the cluster's certificate files (`cluster.rs`).
pub(crate) fn write_file(path: &Path, body: &str, mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    // A leftover from a crash keeps its mode when reopened: start afresh.
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(body.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads and checks a certificate chain and its key.
fn load(source: &Source) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&source.cert)
        .with_context(|| format!("cannot read {}", source.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", source.cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", source.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&source.key)
        .with_context(|| format!("{} is not a PEM private key", source.key.display()))?;
    let signing = any_supported_type(&key)
        .with_context(|| format!("{}: unsupported key type", source.key.display()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().with_context(|| {
        format!(
            "{} is not the key of {}",
            source.key.display(),
            source.cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The SHA-256 of a DER certificate, as lower-case hex (what `--fingerprint` pins).
pub fn fingerprint(der: &[u8]) -> String {
    let mut d = stele::crypto::Digest::sha256();
    d.update(der);
    hex::encode(d.finish())
}

/// The certificate every handshake gets: the current one, swapped on reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The listeners' TLS: the acceptor both share and the certificate behind it.
#[derive(Clone)]
pub struct Tls {
    source: Source,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads `source` and builds the acceptor (TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
    ///
    /// # Errors
    /// The files cannot be read, are not PEM, or the key is not the certificate's.
    pub fn new(source: Source) -> anyhow::Result<Self> {
        let current = Arc::new(Current(RwLock::new(load(&source)?)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            source,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor the listeners wrap their connections with.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Where the certificate comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The SHA-256 fingerprint of the certificate handshakes present now.
    pub fn fingerprint(&self) -> String {
        let current = self.current.0.read().unwrap_or_else(|p| p.into_inner());
        current
            .cert
            .first()
            .map(|c| fingerprint(c))
            .unwrap_or_default()
    }

    /// Reads the files again; new handshakes present what they hold, open connections
    /// keep theirs. A bad file changes nothing.
    ///
    /// # Errors
    /// As [`Tls::new`]: the certificate in use then stays.
    pub fn reload(&self) -> anyhow::Result<String> {
        let next = load(&self.source)?;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(self.fingerprint())
    }
}

/// The names a generated certificate is made for: the listeners' addresses when they are
/// specific ones, and `extra` (`--tls-name`).
pub fn names_for(addrs: &[SocketAddr], extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = addrs
        .iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .map(|ip| ip.to_string())
        .collect();
    names.extend(extra.iter().cloned());
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_serves_tls_off_loopback_or_with_a_certificate() {
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let lo6: IpAddr = "::1".parse().expect("ip");
        let lan: IpAddr = "10.1.2.3".parse().expect("ip");
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        assert!(!Mode::Auto.serves_tls(lo, false));
        assert!(!Mode::Auto.serves_tls(lo6, false));
        assert!(Mode::Auto.serves_tls(lo, true));
        assert!(Mode::Auto.serves_tls(lan, false));
        assert!(Mode::Auto.serves_tls(any, false));
        assert!(!Mode::Off.serves_tls(lan, true));
        assert!(Mode::On.serves_tls(lo, false));
    }

    #[test]
    fn a_generated_certificate_is_kept_and_reloaded_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Source::resolve(None, None, dir.path(), &["10.9.8.7".into()]).expect("made");
        assert!(s.generated);
        let key_mode = fs::metadata(&s.key).expect("key").permissions().mode() & 0o777;
        assert_eq!(key_mode, 0o600);
        let tls = Tls::new(s.clone()).expect("tls");
        let first = tls.fingerprint();
        assert_eq!(first.len(), 64);
        // A second start finds the same pair.
        let again = Source::resolve(None, None, dir.path(), &[]).expect("found");
        assert_eq!(Tls::new(again).expect("tls").fingerprint(), first);
        assert_eq!(tls.reload().expect("reload"), first);
        // A broken file on reload keeps the certificate in use.
        fs::write(&s.cert, "not a certificate").expect("break");
        assert!(tls.reload().is_err());
        assert_eq!(tls.fingerprint(), first);
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Source::resolve(None, None, &dir.path().join("a"), &[]).expect("a");
        let b = Source::resolve(None, None, &dir.path().join("b"), &[]).expect("b");
        let mixed = Source {
            cert: a.cert,
            key: b.key,
            generated: false,
        };
        assert!(Tls::new(mixed).is_err());
    }
}
