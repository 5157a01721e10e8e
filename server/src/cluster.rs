//! The cluster's certificates and the node-to-node listener (`../shared/design/sites.md`
//! §3.2).
//!
//! `stelectl cluster init` makes a cluster CA (rcgen, P-256) and this node's certificate,
//! kept in the key folder under `cluster/` (`ca.pem`, `ca.key`, `node.pem`, `node.key`,
//! and the cluster's [`IDENTITY_KEY`]; keys mode 0600). A node certificate names `stele://<cluster>/node/<id>` (SAN URI) and
//! the DNS name [`NODE_NAME`], which nodes connect by, and serves both TLS roles.
//!
//! The node-to-node listener (`--cluster-addr`) speaks HTTP/2 or HTTP/1.1 over TLS 1.3
//! with ALPN `stele-rpc/1` (`h2` and `http/1.1` besides). It asks every client for a
//! certificate: one chaining to the cluster CA whose fingerprint is an active member's
//! is that member; none at all may only ask to join; anything else fails the handshake.
//! Membership is read for every request, so removing a node refuses it at once, on
//! connections already open too. `Authorization` headers are ignored: no S3 or admin
//! key opens anything here. The S3 and admin listeners never ask for a client
//! certificate, so a node certificate opens nothing there.
//!
//! Joining: the new node starts with `--join <url> --join-token <secret>
//! --ca-fingerprint <sha256>`; it connects trusting only a CA with that fingerprint,
//! sends the token, its id and a certificate request (its key never leaves it), and the
//! CA's node answers with the certificate once the token is used up
//! (`ClusterChange::Join`). A token admits one node, once, until it expires.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::extract::{Extension, Json};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use stele::consensus::Group;
use stele::consensus::network::RaftCall;
use stele::membership::{ClusterChange, ClusterOutcome};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The DNS name in every node certificate; nodes connect to each other by it.
pub const NODE_NAME: &str = "stele-node";
/// The node-to-node protocol's ALPN id.
pub const ALPN: &[u8] = b"stele-rpc/1";
const DIR: &str = "cluster";
/// The file of the member certificates a joined node takes Raft's messages from until
/// the membership reaches it.
const ADMITTED_BY: &str = "admitted-by";

/// SHA-256 of a certificate's DER, 64 lower-case hex digits.
pub fn fingerprint(der: &[u8]) -> String {
    crate::tls::fingerprint(der)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// This node's cluster files in the key folder.
#[derive(Debug, Clone)]
pub struct Files {
    dir: PathBuf,
}

impl Files {
    /// The files under `key_dir/cluster`.
    pub fn new(key_dir: &Path) -> Self {
        Self {
            dir: key_dir.join(DIR),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// This node's TLS identity in the cluster: the CA, its certificate and key, and a
    /// root store of the CA alone (both the listener and the transport trust only it).
    ///
    /// # Errors
    /// A file missing or not PEM.
    fn node_identity(
        &self,
    ) -> anyhow::Result<(
        CertificateDer<'static>,
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
        rustls::RootCertStore,
    )> {
        let ca = self.ca_pem()?.context("the CA certificate is missing")?;
        let cert = self.read("node.pem")?.unwrap_or_default();
        let key = self.read("node.key")?.unwrap_or_default();
        let ca = CertificateDer::from_pem_slice(ca.as_bytes()).context("ca.pem")?;
        let cert = CertificateDer::from_pem_slice(cert.as_bytes()).context("node.pem")?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).context("node.key")?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone())?;
        Ok((ca, cert, key, roots))
    }

    fn read(&self, name: &str) -> anyhow::Result<Option<String>> {
        let p = self.path(name);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot make {}", self.dir.display()))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        crate::tls::write_file(&self.path(name), text, 0o600)?;
        // The rename survives a power cut before anything relies on the file.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", self.dir.display()))
    }

    /// This node's id in its cluster, once it has one.
    pub fn node_id(&self) -> anyhow::Result<Option<String>> {
        Ok(self.read("node-id")?.map(|s| s.trim().to_owned()))
    }

    /// The id of the cluster this node's certificate is from, once it has one.
    pub fn cluster_id(&self) -> anyhow::Result<Option<String>> {
        Ok(self.read("cluster-id")?.map(|s| s.trim().to_owned()))
    }

    /// SHA-256 of the CA certificate this node keeps, once it keeps one.
    pub fn ca_fingerprint(&self) -> anyhow::Result<Option<String>> {
        Ok(self.ca_pem()?.and_then(|pem| {
            CertificateDer::from_pem_slice(pem.as_bytes())
                .ok()
                .map(|d| fingerprint(&d))
        }))
    }

    /// Whether this node has a node certificate (it belongs to a cluster).
    pub fn has_node_certificate(&self) -> bool {
        self.path("node.pem").exists()
    }

    /// The CA certificate (PEM), when this node has one.
    pub fn ca_pem(&self) -> anyhow::Result<Option<String>> {
        self.read("ca.pem")
    }

    /// The cluster's identity key (32 bytes, [`IDENTITY_KEY`]), once this node has it.
    ///
    /// # Errors
    /// A file that cannot be read or does not hold 64 hex digits.
    pub fn identity_key(&self) -> anyhow::Result<Option<[u8; 32]>> {
        let Some(text) = self.read(IDENTITY_KEY)? else {
            return Ok(None);
        };
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).with_context(|| {
            format!("{} is not 64 hex digits", self.path(IDENTITY_KEY).display())
        })?;
        Ok(Some(key))
    }

    /// The cluster's identity key, made (and kept, mode 0600) if this node has none yet:
    /// the node that holds the CA of a cluster made before the key existed.
    ///
    /// # Errors
    /// The file's.
    fn identity_key_made(&self) -> anyhow::Result<[u8; 32]> {
        if let Some(k) = self.identity_key()? {
            return Ok(k);
        }
        self.new_identity_key()
    }

    /// A new cluster identity key, kept (mode 0600) in place of any file left behind
    /// (`cluster init`: a new cluster gets a key of its own).
    ///
    /// # Errors
    /// The file's.
    fn new_identity_key(&self) -> anyhow::Result<[u8; 32]> {
        let key = stele::crypto::random_bytes::<32>();
        self.write(IDENTITY_KEY, &hex::encode(key))?;
        tracing::info!("made the cluster's identity key");
        Ok(key)
    }
}

/// The cluster's identity key in the cluster files: every member seals and opens access
/// keys' secrets with it (they are in the records the Raft group agrees on). Made by
/// `cluster init`, handed to each joining node in its join answer (over the join's TLS,
/// after the token's proof); kept in the key folder, never in the data folder.
pub const IDENTITY_KEY: &str = "identity.key";

fn node_params(cluster_id: &str, node_id: &str) -> anyhow::Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(vec![NODE_NAME.to_owned()])?;
    p.subject_alt_names.push(rcgen::SanType::URI(
        format!("stele://{cluster_id}/node/{node_id}").try_into()?,
    ));
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, format!("stele node {node_id}"));
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

fn load_ca(files: &Files) -> anyhow::Result<(rcgen::Certificate, rcgen::KeyPair, String)> {
    let pem = files
        .ca_pem()?
        .context("this node holds no cluster CA (only the node that ran cluster init does)")?;
    let key = files
        .read("ca.key")?
        .context("the cluster CA's key is missing")?;
    let key = rcgen::KeyPair::from_pem(&key).context("the cluster CA's key")?;
    let params = rcgen::CertificateParams::from_ca_cert_pem(&pem).context("the CA certificate")?;
    let cert = params.self_signed(&key)?;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).context("the CA certificate")?;
    Ok((cert, key, fingerprint(&der)))
}

/// Makes the cluster CA and this node's certificate (`stelectl cluster init`), keeps
/// them in the key folder and returns (cluster id, CA fingerprint, node id, node
/// certificate fingerprint). Refused when this node has cluster files already.
///
/// # Errors
/// Files that exist or cannot be written; rcgen's.
pub fn make_cluster(files: &Files) -> anyhow::Result<(String, String, String, String)> {
    if files.path("ca.pem").exists() || files.has_node_certificate() {
        bail!(
            "{} already holds cluster certificates: this node belongs to a cluster",
            files.dir.display()
        );
    }
    let cluster_id = hex::encode(stele::crypto::random_bytes::<8>());
    let node_id = hex::encode(stele::crypto::random_bytes::<8>());
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("stele cluster {cluster_id} CA"),
    );
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let ca_cert = ca.self_signed(&ca_key)?;
    let node_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let node = node_params(&cluster_id, &node_id)?.signed_by(&node_key, &ca_cert, &ca_key)?;
    files.write("ca.key", &ca_key.serialize_pem())?;
    files.write("ca.pem", &ca_cert.pem())?;
    files.write("node.key", &node_key.serialize_pem())?;
    files.write("node.pem", &node.pem())?;
    files.write("node-id", &node_id)?;
    files.write("cluster-id", &cluster_id)?;
    Ok((
        cluster_id,
        fingerprint(ca_cert.der()),
        node_id,
        fingerprint(node.der()),
    ))
}

/// Signs a joining node's certificate request with the CA: the certificate names the
/// cluster and the node; whatever else the request asked for is ignored.
fn sign_request(
    files: &Files,
    cluster_id: &str,
    node_id: &str,
    mut csr: rcgen::CertificateSigningRequestParams,
) -> anyhow::Result<rcgen::Certificate> {
    let (ca, ca_key, _) = load_ca(files)?;
    csr.params = node_params(cluster_id, node_id)?;
    Ok(csr.signed_by(&ca, &ca_key)?)
}

/// What a node's listener and its joins need: the key folder's files and the node.
#[derive(Clone)]
pub struct Cluster {
    /// The cluster files.
    pub files: Files,
    /// The node.
    pub node: stele::Node,
    /// The node-to-node listener's address, when it serves one.
    pub rpc_addr: Option<SocketAddr>,
    acceptor: Arc<RwLock<Option<tokio_rustls::TlsAcceptor>>>,
    /// One `init` at a time: two would both write a CA.
    init_lock: Arc<tokio::sync::Mutex<()>>,
    /// Refused joins, per token id and per source address: past the limit a join is
    /// refused unread (429), so a token cannot be guessed and the audit trail (a leaf
    /// per refused join) cannot be flooded.
    joins: Arc<crate::limiter::AuthLimiter>,
    /// This node's member of the cluster's Raft group, once it runs (a member with a
    /// node listener).
    group: Arc<RwLock<Option<Group>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("rpc_addr", &self.rpc_addr)
            .finish()
    }
}

impl Cluster {
    /// The cluster state of `node` with the files in `key_dir`; its TLS is set up when
    /// the node has a certificate.
    ///
    /// # Errors
    /// Certificate files that do not load.
    pub fn new(
        key_dir: &Path,
        node: stele::Node,
        rpc_addr: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let c = Self {
            files: Files::new(key_dir),
            node,
            rpc_addr,
            acceptor: Arc::new(RwLock::new(None)),
            init_lock: Arc::new(tokio::sync::Mutex::new(())),
            joins: Arc::new(crate::limiter::AuthLimiter::new(
                Duration::from_secs(60),
                5,
                10,
            )),
            group: Arc::new(RwLock::new(None)),
        };
        c.reload()?;
        Ok(c)
    }

    /// Sets the listener's TLS up from the files (after `init` or a join).
    ///
    /// # Errors
    /// Certificate files that do not load.
    pub fn reload(&self) -> anyhow::Result<()> {
        if !self.files.has_node_certificate() {
            return Ok(());
        }
        let (ca, cert, key, roots) = self.files.node_identity()?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .allow_unauthenticated()
        .build()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert, ca], key)?;
        config.alpn_protocols = vec![ALPN.to_vec(), b"h2".to_vec(), b"http/1.1".to_vec()];
        *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) =
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        Ok(())
    }

    /// This node's member of the Raft group, when it runs.
    pub fn group(&self) -> Option<Group> {
        self.group.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether this node holds the cluster CA's key (it ran `cluster init`): only it signs
    /// a joining node's certificate.
    pub fn holds_ca_key(&self) -> bool {
        self.files.path("ca.key").exists()
    }

    /// The node listener of the node that holds the CA key, where nodes join: this one's
    /// when it holds it; else the first member's (the node that ran `cluster init`) as
    /// the Raft group knows it. `None` when unknown, or when that node was removed (no
    /// node can admit another then).
    pub async fn join_addr(&self) -> Option<String> {
        if self.holds_ca_key() {
            return self.rpc_addr.map(|a| a.to_string());
        }
        let (_, members) = self.node.cluster().await.ok()?;
        // The first member ran init; once it is removed, no node signs any more.
        let first = members.iter().min_by_key(|m| m.joined)?;
        if !first.active() {
            return None;
        }
        self.group()?.address_of(&first.node_id)
    }

    /// The address other nodes reach this one's node listener at.
    ///
    /// # Errors
    /// No node listener, or one on an unspecified address (0.0.0.0, ::).
    pub fn advertised(&self) -> anyhow::Result<String> {
        let addr = self
            .rpc_addr
            .context("this node has no node listener (--cluster-addr)")?;
        if addr.ip().is_unspecified() {
            bail!(
                "--cluster-addr {addr} names no address other nodes can reach: give this node's own"
            );
        }
        Ok(addr.to_string())
    }

    /// Starts this node's member of the Raft group, when the node is in a cluster and
    /// serves a node listener (at start, after `init`, after a join); from then on its
    /// membership changes go through the group. Returns the member, or `None`.
    ///
    /// # Errors
    /// Certificate files that do not load; a node id that is not 16 hex digits; openraft
    /// that cannot start on this node's log.
    pub async fn start_group(&self) -> anyhow::Result<Option<Group>> {
        if let Some(g) = self.group() {
            return Ok(Some(g));
        }
        if !self.files.has_node_certificate() || self.rpc_addr.is_none() {
            return Ok(None);
        }
        let node_id = self
            .files
            .node_id()?
            .context("the node-id file is missing")?;
        let id = stele::consensus::raft_id(&node_id)
            .with_context(|| format!("node id {node_id:?} is not 16 hex digits"))?;
        let transport: Arc<dyn stele::consensus::network::Transport> =
            Arc::new(NodeTransport::new(&self.files)?);
        let store = self.node.store();
        let group = Group::start(id, store.meta_handle(), transport).await?;
        // The node that made the cluster (it holds the CA key) and whose group has no
        // membership yet — just after `init`, or `init` cut short, or a cluster made by a
        // release without Raft — makes the group: itself the only voter, then a snapshot
        // of its metadata with the log dropped behind it, so every node added later
        // starts from the state that was there before the group existed.
        if self.files.path("ca.key").exists()
            && stele::membership::identity(store.meta())?.is_some()
            && !group.is_initialized().await?
        {
            group.initialize(self.advertised()?).await?;
            group.until_leader(Duration::from_secs(30)).await?;
            group.compact(Duration::from_secs(60)).await?;
            tracing::info!(node = %node_id, "made the cluster's Raft group of this node's metadata");
        }
        store.use_consensus(group.clone(), tokio::runtime::Handle::current());
        *self.group.write().unwrap_or_else(|p| p.into_inner()) = Some(group.clone());
        tracing::info!(node = %node_id, "this node's member of the cluster's Raft group runs");
        Ok(Some(group))
    }

    /// Adds `node_id`, reachable at `addr`, to the Raft group as a voter, in the
    /// background: retried for a minute (the node may still be starting).
    fn add_to_group(&self, node_id: &str, addr: String) {
        let Some(group) = self.group() else {
            return;
        };
        let Some(id) = stele::consensus::raft_id(node_id) else {
            tracing::warn!(node = %node_id, "a node id that is not 16 hex digits joins no Raft group");
            return;
        };
        let node_id = node_id.to_owned();
        tokio::spawn(async move {
            for attempt in 1..=30 {
                let added = tokio::time::timeout(
                    Duration::from_secs(20),
                    group.add_voter(id, addr.clone()),
                )
                .await;
                match added {
                    Ok(Ok(())) => {
                        tracing::info!(node = %node_id, %addr, "the node is a voter of the Raft group");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(node = %node_id, attempt, error = %e, "adding the node to the Raft group failed");
                    }
                    Err(_) => {
                        tracing::warn!(node = %node_id, attempt, "the node did not catch up within 20 s");
                    }
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            tracing::error!(node = %node_id, "the node was not added to the Raft group: remove it and join again");
        });
    }

    /// Seals and opens access keys' secrets with the cluster's identity key from now on.
    /// The node that holds the CA makes the key if the cluster has none yet (one made
    /// before it existed) and moves its keys still sealed under its master key there
    /// (through the group: a crash between `cluster init` and that move, or that
    /// upgrade); a member without it is told (it joined through an earlier release: remove
    /// it and join again).
    ///
    /// # Errors
    /// The key file's.
    pub async fn use_identity_key(&self) -> anyhow::Result<()> {
        let ca = self.holds_ca_key();
        let key = if ca {
            Some(self.files.identity_key_made()?)
        } else {
            self.files.identity_key()?
        };
        let Some(key) = key else {
            tracing::error!(
                "this member has no cluster identity key (it joined through an earlier release): \
                 the cluster's access keys do not open here; remove it and join it again"
            );
            return Ok(());
        };
        match self.node.use_cluster_key(key, ca).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                keys = n,
                "access keys sealed under the cluster's identity key"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "access keys not yet sealed under the cluster's identity key (tried again at the next start)")
            }
        }
        Ok(())
    }

    /// Waits at most `limit` until this node holds the cluster's records (the membership
    /// reached it: at once on a member that restarts, after the group's snapshot on one
    /// that just joined).
    pub async fn until_caught_up(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match stele::membership::identity(self.node.store().meta()) {
                Ok(Some(_)) => return,
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(None) => {
                    tracing::warn!(
                        "the cluster's records did not reach this node within {limit:?}"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the membership could not be read");
                    return;
                }
            }
        }
    }

    /// Removes `node_id` from the Raft group, in the background.
    pub fn leave_group(&self, node_id: &str) {
        let (Some(group), Some(id)) = (self.group(), stele::consensus::raft_id(node_id)) else {
            return;
        };
        let node_id = node_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = group.remove(id).await {
                tracing::warn!(node = %node_id, error = %e, "removing the node from the Raft group failed");
            }
        });
    }

    /// Removes `node_id` from the Raft group and waits until that went through, asking
    /// again while another membership change is in progress (a site's members go one
    /// after the other), for `within` at most; the last error when it never went through.
    pub async fn leave_group_and_wait(
        &self,
        node_id: &str,
        within: std::time::Duration,
    ) -> Result<(), String> {
        let (Some(group), Some(id)) = (self.group(), stele::consensus::raft_id(node_id)) else {
            return Ok(());
        };
        let start = std::time::Instant::now();
        loop {
            match group.remove(id).await {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() >= within => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            }
        }
    }

    /// Stops this node's member of the Raft group (its log and state stay).
    pub async fn stop_group(&self) {
        if let Some(g) = self.group()
            && let Err(e) = g.shutdown().await
        {
            tracing::error!(error = %e, "the Raft group did not stop cleanly");
        }
    }

    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.acceptor
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes this node the first member of a new cluster: the CA, its certificate, the
    /// `Init` command. Returns the cluster's identity.
    ///
    /// # Errors
    /// A node in a cluster already; files; the command's refusal.
    pub async fn init(&self) -> anyhow::Result<stele::membership::ClusterIdentity> {
        let _one = self.init_lock.lock().await;
        // Before anything is made: the group needs an address the others reach.
        self.advertised()?;
        // In place: two P-256 keys and five small files, once per cluster.
        let (cluster_id, ca_fingerprint, node_id, cert_fingerprint) = make_cluster(&self.files)?;
        let changed = self
            .node
            .change_membership(ClusterChange::Init {
                cluster_id,
                ca_fingerprint,
                node_id,
                cert_fingerprint,
            })
            .await;
        let out = match changed {
            Ok(o) => o,
            Err(e) => {
                // A member of nothing: the certificates go, so init can be tried again.
                for f in [
                    "ca.key",
                    "ca.pem",
                    "node.key",
                    "node.pem",
                    "node-id",
                    "cluster-id",
                ] {
                    let _ = std::fs::remove_file(self.files.path(f));
                }
                return Err(e.into());
            }
        };
        self.reload()?;
        let ClusterOutcome::Initialized(i) = out else {
            bail!("cluster init answered {out:?}");
        };
        // Before the group exists (its first state is this node's metadata): this node's
        // keys move under a new identity key, which the joining nodes will receive. The
        // cluster exists from here on: a failed move is made at the next start.
        match self.files.new_identity_key() {
            Ok(key) => match self.node.use_cluster_key(key, true).await {
                Ok(moved) => tracing::info!(
                    keys = moved,
                    "access keys sealed under the cluster's identity key"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "access keys not sealed under the cluster's identity key yet (done at the next start)")
                }
            },
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the cluster's identity key was not made (made at the next start)")
            }
        }
        self.start_group()
            .await?
            .context("the Raft group did not start")?;
        Ok(i)
    }
}

/// The TLS exporter label a join's proof is bound to (RFC 8446 §7.5).
const JOIN_EXPORTER: &[u8] = b"EXPORTER-stele-join";

/// The request a joining node sends (`POST /v1/join`, no client certificate). The
/// token's secret is never sent: `token_id` names it and `proof` shows it is held, bound
/// to this TLS session, so a machine in the middle (even one with a certificate of the
/// cluster) can neither replay it on its own connection nor learn the secret.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    /// SHA-256 of the SHA-256 of the token's secret, hex (`membership::token_id`).
    pub token_id: String,
    /// HMAC-SHA256, keyed by the SHA-256 of the secret, of this connection's TLS
    /// exporter (label `EXPORTER-stele-join`, 32 bytes, no context), hex.
    pub proof: String,
    /// The joining node's id (16 hex digits, chosen by it).
    pub node_id: String,
    /// Its certificate request (PEM PKCS#10).
    pub csr_pem: String,
    /// Where other nodes reach its node listener (`host:port`): it joins the Raft
    /// group there.
    #[serde(default)]
    pub addr: Option<String>,
}

/// The answer to a join.
#[derive(Serialize, Deserialize)]
pub struct JoinAnswer {
    /// The cluster's id.
    pub cluster_id: String,
    /// The node's certificate (PEM).
    pub cert_pem: String,
    /// The CA's certificate (PEM).
    pub ca_pem: String,
    /// The certificate fingerprints (SHA-256, hex) of the members when the node was
    /// admitted: until the membership reaches it through the Raft group, the new node
    /// takes Raft's messages from these only.
    #[serde(default)]
    pub members: Vec<String>,
    /// The cluster's identity key, 64 hex digits ([`IDENTITY_KEY`]): the users and keys
    /// the new node receives through the group have their secrets sealed under it. Absent
    /// from an earlier release's answer.
    #[serde(default)]
    pub identity_key: Option<String>,
}

impl std::fmt::Debug for JoinAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinAnswer")
            .field("cluster_id", &self.cluster_id)
            .field("members", &self.members)
            .field(
                "identity_key",
                &self.identity_key.as_ref().map(|_| "<secret>"),
            )
            .finish_non_exhaustive()
    }
}

/// Who is on the other end of a node-to-node connection.
#[derive(Debug, Clone)]
struct Peer {
    /// SHA-256 of the client certificate, when one was presented (it chains to the CA:
    /// the handshake checked that).
    fingerprint: Option<String>,
    /// The connection's TLS exporter for joins ([`JOIN_EXPORTER`]).
    binding: Option<[u8; 32]>,
    /// Where it connects from.
    addr: SocketAddr,
}

/// A refusal on the node-to-node listener: status, code and message as JSON.
struct RpcError(StatusCode, &'static str, String);

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(serde_json::json!({"error": self.1, "message": self.2})),
        )
            .into_response()
    }
}

/// The member a request comes from, or the refusal.
fn member_of(cluster: &Cluster, peer: &Peer) -> Result<stele::membership::Member, RpcError> {
    let Some(fp) = &peer.fingerprint else {
        return Err(RpcError(
            StatusCode::UNAUTHORIZED,
            "NodeCertificateRequired",
            "the node-to-node listener admits cluster members by certificate only".into(),
        ));
    };
    match cluster.node.member_by_certificate(fp) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(RpcError(
            StatusCode::FORBIDDEN,
            "NotAMember",
            "this certificate names no current member (removed, or never joined)".into(),
        )),
        Err(e) => Err(RpcError(
            StatusCode::SERVICE_UNAVAILABLE,
            "MembershipUnreadable",
            e.to_string(),
        )),
    }
}

/// Every call but a join needs a member's certificate: checked here, for every request,
/// before routing (an unknown path answers a non-member 401 too).
async fn members_only(
    Extension(cluster): Extension<Cluster>,
    Extension(peer): Extension<Peer>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == http::Method::POST && req.uri().path() == "/v1/join" {
        return next.run(req).await;
    }
    // A node that joined knows no member until the group's first snapshot reaches it:
    // until then it takes Raft's messages from the members that admitted it (their
    // certificate fingerprints came with its own certificate).
    if req.uri().path().starts_with("/v1/raft/")
        && let Some(fp) = &peer.fingerprint
        && matches!(
            stele::membership::identity(cluster.node.store().meta()),
            Ok(None)
        )
        && cluster
            .files
            .read(ADMITTED_BY)
            .ok()
            .flatten()
            .is_some_and(|list| list.lines().any(|l| l.trim() == fp))
    {
        return next.run(req).await;
    }
    match member_of(&cluster, &peer) {
        Ok(m) => {
            req.extensions_mut().insert(m);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn ping(
    Extension(cluster): Extension<Cluster>,
    Extension(m): Extension<stele::membership::Member>,
) -> Result<Json<serde_json::Value>, RpcError> {
    Ok(Json(serde_json::json!({
        "node_id": cluster.files.node_id().ok().flatten(),
        "peer": m.node_id,
    })))
}

async fn join(
    Extension(cluster): Extension<Cluster>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<JoinRequest>,
) -> Result<Json<JoinAnswer>, RpcError> {
    let internal = |e: anyhow::Error| {
        tracing::error!(error = %format!("{e:#}"), "a join failed");
        RpcError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the join failed on this node (see its log)".into(),
        )
    };
    let (token_id, ip) = (req.token_id.trim(), peer.addr.ip());
    // A token id has one shape (64 hex digits): anything else is refused before it is
    // remembered by the limiter (whose keys would otherwise be the caller's to size).
    if token_id.len() != 64 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        cluster.joins.failed(None, Some(ip));
        return Err(RpcError(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "token_id is 64 hex digits".into(),
        ));
    }
    if cluster.joins.blocked(Some(token_id), Some(ip)) {
        return Err(RpcError(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyJoins",
            "too many refused joins for this token or from this address: wait a minute".into(),
        ));
    }
    let refused = |e: stele::membership::MembershipError| {
        tracing::warn!(node = %req.node_id, reason = %e, "a join was refused");
        cluster.joins.failed(Some(token_id), Some(ip));
        RpcError(StatusCode::FORBIDDEN, "JoinRefused", e.to_string())
    };
    if req.node_id.is_empty()
        || req.node_id.len() > 64
        || !req
            .node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(RpcError(
            StatusCode::BAD_REQUEST,
            "InvalidNodeId",
            "a node id is 1 to 64 of a-z, A-Z, 0-9 and -".into(),
        ));
    }
    let (ident, _) = cluster
        .node
        .cluster()
        .await
        .map_err(|e| internal(e.into()))?;
    let Some(ident) = ident else {
        return Err(RpcError(
            StatusCode::CONFLICT,
            "NotInitialized",
            "this node is not in a cluster".into(),
        ));
    };
    // Only the node that ran init signs: another one says where to join (before the
    // token is looked at, so it is not spent).
    if !cluster.holds_ca_key() {
        let at = cluster.join_addr().await;
        return Err(RpcError(
            StatusCode::MISDIRECTED_REQUEST,
            "NotTheClusterCa",
            format!(
                "this node does not hold the cluster CA's key (only the node that ran \
                 cluster init signs joining nodes' certificates): join through {}",
                at.as_deref()
                    .unwrap_or("that node (its address is not known here)")
            ),
        ));
    }
    // Read before the token is spent: a node admitted without it would open none of the
    // cluster's access keys.
    let identity_key = cluster
        .files
        .identity_key()
        .map_err(internal)?
        .ok_or_else(|| {
            internal(anyhow::anyhow!(
                "this node holds the CA but no cluster identity key (it is made at its next start)"
            ))
        })?;
    // The token first: nothing is signed (no CA key read) for a caller without one.
    let proof = hex::decode(req.proof.trim()).unwrap_or_default();
    let Some(binding) = peer.binding else {
        return Err(internal(anyhow::anyhow!(
            "the connection has no TLS exporter"
        )));
    };
    let token_hash = match cluster.node.join_token_proven(token_id, &proof, &binding) {
        Ok(h) => h,
        Err(stele::StoreError::Membership(e)) => return Err(refused(e)),
        Err(e) => return Err(internal(e.into())),
    };
    let csr = rcgen::CertificateSigningRequestParams::from_pem(&req.csr_pem).map_err(|e| {
        RpcError(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            format!("csr_pem is not a PEM PKCS#10 certificate request: {e}"),
        )
    })?;
    // In place: one signature and two small reads, once per join.
    let cert =
        sign_request(&cluster.files, &ident.cluster_id, &req.node_id, csr).map_err(internal)?;
    let joined = cluster
        .node
        .change_membership(ClusterChange::Join {
            token_hash,
            node_id: req.node_id.clone(),
            cert_fingerprint: fingerprint(cert.der()),
        })
        .await;
    match joined {
        Ok(_) => {
            tracing::info!(node = %req.node_id, "a node joined the cluster");
            if let Some(addr) = &req.addr {
                cluster.add_to_group(&req.node_id, addr.clone());
            }
            // The node is admitted whatever happens now: its answer must reach it.
            let members = match cluster.node.cluster().await {
                Ok((_, m)) => m
                    .into_iter()
                    .filter(|m| m.active() && m.node_id != req.node_id)
                    .map(|m| m.cert_fingerprint)
                    .collect(),
                Err(e) => {
                    tracing::error!(error = %e, "the members could not be read for a join's answer");
                    Vec::new()
                }
            };
            Ok(Json(JoinAnswer {
                identity_key: Some(hex::encode(identity_key)),
                cluster_id: ident.cluster_id,
                cert_pem: cert.pem(),
                ca_pem: cluster
                    .files
                    .ca_pem()
                    .map_err(internal)?
                    .unwrap_or_default(),
                members,
            }))
        }
        Err(stele::StoreError::Membership(e)) => Err(refused(e)),
        Err(e) => Err(internal(e.into())),
    }
}

/// The largest Raft message taken (openraft's batches of entries, snapshot chunks).
const RAFT_BODY_LIMIT: usize = 64 << 20;

/// A Raft message from another member (`POST
/// /v1/raft/{append|vote|snapshot|propose|read-index|members}`, a format byte and postcard): openraft's answer (or the leader's to a forwarded command),
/// the same way.
async fn raft_call(
    Extension(cluster): Extension<Cluster>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: bytes::Bytes,
) -> Response {
    let Some(call) = RaftCall::named(&name) else {
        return RpcError(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no Raft call {name:?}"),
        )
        .into_response();
    };
    let Some(group) = cluster.group() else {
        return RpcError(
            StatusCode::SERVICE_UNAVAILABLE,
            "NoRaftGroup",
            "this node's member of the Raft group does not run".into(),
        )
        .into_response();
    };
    match group.handle(call, &body).await {
        Ok(answer) => (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/octet-stream")],
            answer,
        )
            .into_response(),
        Err(e) => {
            RpcError(StatusCode::BAD_REQUEST, "BadRaftMessage", e.to_string()).into_response()
        }
    }
}

/// Raft's messages to the other members: HTTP/2 over mutual TLS (this node's certificate,
/// the cluster CA as the only root) to their node listeners, one connection per member
/// kept open and multiplexed, dropped after a failed call (a fresh one next time).
/// Forwarded writes (`RaftCall::Propose`) have a connection of their own, aborted when
/// one fails or is given up (its caller's timeout): it closes with a reset and drops what
/// the kernel still holds of it, so a write whose client was answered 503 while the leader
/// was cut off is not delivered by TCP's retransmission once the link heals. Only that
/// connection (by its generation, not a newer one) is aborted, so Raft's own messages and
/// shard traffic never lose calls in flight to another call's failure.
#[derive(Clone)]
pub struct NodeTransport {
    tls: tokio_rustls::TlsConnector,
    senders: Arc<tokio::sync::Mutex<std::collections::HashMap<String, Connection>>>,
    generations: Arc<std::sync::atomic::AtomicU64>,
}

/// A member's connection: its request handle, the task that drives it, its generation.
struct Connection {
    sender: Sender,
    driver: tokio::task::AbortHandle,
    generation: u64,
}

/// Aborts the connection a call used if dropped armed: the call was given up.
struct GiveUp {
    transport: NodeTransport,
    key: String,
    used: Arc<std::sync::atomic::AtomicU64>,
    armed: bool,
}

impl Drop for GiveUp {
    fn drop(&mut self) {
        if self.armed {
            let (t, key) = (self.transport.clone(), std::mem::take(&mut self.key));
            let generation = self.used.load(std::sync::atomic::Ordering::SeqCst);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { t.forget(&key, generation, true).await });
            }
        }
    }
}

/// A request body on the node listener: whole (Raft, shard calls) or streamed (a shard
/// upload).
type RpcBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::io::Error>;
type Sender = hyper::client::conn::http2::SendRequest<RpcBody>;

fn whole(body: Vec<u8>) -> RpcBody {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes::Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync()
}

impl std::fmt::Debug for NodeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTransport").finish_non_exhaustive()
    }
}

impl NodeTransport {
    /// From this node's certificate files.
    ///
    /// # Errors
    /// Files that do not load.
    pub fn new(files: &Files) -> anyhow::Result<Self> {
        let (ca, cert, key, roots) = files.node_identity()?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert, ca], key)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            senders: Arc::new(tokio::sync::Mutex::new(std::collections::HashMap::new())),
            // 0 is "no connection yet" for a call.
            generations: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        })
    }

    /// The connection kept under `key` to `addr` (made now if there is none): its handle
    /// and generation.
    async fn sender(&self, addr: &str, key: &str) -> anyhow::Result<(Sender, u64)> {
        if let Some(c) = self.senders.lock().await.get(key)
            && !c.sender.is_closed()
        {
            return Ok((c.sender.clone(), c.generation));
        }
        // Connected without the map's lock: an unreachable member delays no other.
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        // Closed with a reset, its unsent bytes dropped (see `NodeTransport`).
        tcp.set_zero_linger()?;
        let tls = self
            .tls
            .connect(ServerName::try_from(NODE_NAME)?, tcp)
            .await?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        let driver = tokio::spawn(conn).abort_handle();
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A connection another call made meanwhile is replaced, not aborted: its calls
        // in flight finish on it.
        self.senders.lock().await.insert(
            key.to_owned(),
            Connection {
                sender: sender.clone(),
                driver,
                generation,
            },
        );
        Ok((sender, generation))
    }

    /// POSTs `body` to `path` on `addr` over the connection kept under `key`, noting its
    /// generation in `used`.
    async fn post(
        &self,
        addr: &str,
        key: &str,
        path: &str,
        body: RpcBody,
        used: &std::sync::atomic::AtomicU64,
    ) -> anyhow::Result<Vec<u8>> {
        let (mut sender, generation) = self.sender(addr, key).await?;
        used.store(generation, std::sync::atomic::Ordering::SeqCst);
        let req = http::Request::post(format!("https://{NODE_NAME}{path}"))
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await?
            .to_bytes();
        if !status.is_success() {
            bail!("{status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes.to_vec())
    }
}

impl stele::consensus::network::Transport for NodeTransport {
    fn call(
        &self,
        addr: String,
        call: RaftCall,
        body: Vec<u8>,
        timeout: Duration,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<u8>, stele::consensus::network::TransportError>,
    > {
        let me = self.clone();
        Box::pin(async move {
            // Forwarded writes apart (see `NodeTransport`).
            let forwarded = matches!(call, RaftCall::Propose);
            let key = if forwarded {
                format!("{addr} forwarded")
            } else {
                addr.clone()
            };
            let used = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let mut give_up = GiveUp {
                transport: me.clone(),
                key: key.clone(),
                used: used.clone(),
                armed: forwarded,
            };
            let path = format!("/v1/raft/{}", call.name());
            let sent =
                tokio::time::timeout(timeout, me.post(&addr, &key, &path, whole(body), &used))
                    .await;
            give_up.armed = false;
            let generation = used.load(std::sync::atomic::Ordering::SeqCst);
            me.answered(&key, generation, forwarded, sent)
                .await
                .map_err(
                    |reason| stele::consensus::network::TransportError::Unreachable {
                        addr,
                        reason,
                    },
                )
        })
    }
}

impl stele::disk::ShardTransport for NodeTransport {
    fn call(
        &self,
        addr: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<u8>, stele::disk::remote::ShardTransportError>,
    > {
        let me = self.clone();
        Box::pin(async move {
            let used = std::sync::atomic::AtomicU64::new(0);
            let sent = tokio::time::timeout(
                timeout,
                me.post(&addr, &addr, "/v1/shards/call", whole(body), &used),
            )
            .await;
            me.shard_answer(addr, &used, sent).await
        })
    }

    fn upload(
        &self,
        addr: String,
        body: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<u8>, stele::disk::remote::ShardTransportError>,
    > {
        use http_body_util::BodyExt;
        let me = self.clone();
        Box::pin(async move {
            // Chunks as the writer hands them over; the stream ends when it closes the
            // channel (after the finish frame, or without it when the write is dropped).
            let chunks = futures::stream::unfold(body, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|b| (Ok::<_, std::io::Error>(hyper::body::Frame::data(b)), rx))
            });
            let body = http_body_util::StreamBody::new(chunks).boxed_unsync();
            // The writer bounds each block's wait; this bounds nothing more.
            let used = std::sync::atomic::AtomicU64::new(0);
            let sent = me
                .post(&addr, &addr, "/v1/shards/upload", body, &used)
                .await;
            me.shard_answer(addr, &used, Ok(sent)).await
        })
    }
}

impl NodeTransport {
    /// The answer, or why there is none: the connection the call used (`generation`
    /// under `key`) is then dropped, a fresh one made next time; with `abort`, aborted.
    async fn answered(
        &self,
        key: &str,
        generation: u64,
        abort: bool,
        sent: Result<anyhow::Result<Vec<u8>>, tokio::time::error::Elapsed>,
    ) -> Result<Vec<u8>, String> {
        let reason = match sent {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "no answer in time".to_owned(),
        };
        self.forget(key, generation, abort).await;
        Err(reason)
    }

    /// Drops the connection kept under `key` if it is still `generation` (never a newer
    /// one); with `abort`, aborts it (a reset: nothing it still holds is sent). Without,
    /// calls in flight on it finish.
    async fn forget(&self, key: &str, generation: u64, abort: bool) {
        let mut senders = self.senders.lock().await;
        if senders.get(key).is_some_and(|c| c.generation == generation)
            && let Some(c) = senders.remove(key)
            && abort
        {
            c.driver.abort();
        }
    }

    async fn shard_answer(
        &self,
        addr: String,
        used: &std::sync::atomic::AtomicU64,
        sent: Result<anyhow::Result<Vec<u8>>, tokio::time::error::Elapsed>,
    ) -> Result<Vec<u8>, stele::disk::remote::ShardTransportError> {
        let generation = used.load(std::sync::atomic::Ordering::SeqCst);
        self.answered(&addr, generation, false, sent)
            .await
            .map_err(
                |reason| stele::disk::remote::ShardTransportError::Unreachable { addr, reason },
            )
    }
}

/// The largest shard call taken (calls are small; blocks travel in answers and uploads).
const SHARD_CALL_LIMIT: usize = 64 << 10;

/// A shard call from another member (`POST /v1/shards/call`): the core's encoded answer.
async fn shard_call(Extension(cluster): Extension<Cluster>, body: bytes::Bytes) -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        cluster.node.shard_call(body).await,
    )
        .into_response()
}

/// How long an upload may go without a byte before it counts as cut.
const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// A shard upload from another member (`POST /v1/shards/upload`), streamed into the core
/// as it arrives: the core's encoded answer. A body cut short ends the stream without
/// its finish frame, and the core keeps nothing.
async fn shard_upload(Extension(cluster): Extension<Cluster>, body: axum::body::Body) -> Response {
    use futures::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let forward = async move {
        let mut data = body.into_data_stream();
        // A writer that goes silent (cut off mid-upload, its socket never reset) ends
        // the upload after a minute, as a cut one: the core then keeps nothing.
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(UPLOAD_IDLE, data.next()).await {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    };
    let (answer, ()) = tokio::join!(cluster.node.shard_upload(rx), forward);
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        answer,
    )
        .into_response()
}

/// Keeps this node's disks recorded in the cluster and the other members' disks in its
/// placement (every 2 s, each member asked for its disks' state), until `shutdown`.
pub async fn keep_disks(cluster: Cluster, mut shutdown: watch::Receiver<bool>) {
    let mut transport: Option<Arc<dyn stele::disk::ShardTransport>> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let (Some(group), Ok(Some(me))) = (cluster.group(), cluster.files.node_id()) else {
            continue;
        };
        if transport.is_none() {
            match NodeTransport::new(&cluster.files) {
                // Its own connections: shards do not queue behind Raft's heartbeats.
                Ok(t) => transport = Some(Arc::new(t)),
                Err(e) => {
                    tracing::warn!(error = %e, "no transport for shards on other nodes");
                    continue;
                }
            }
        }
        let Some(t) = transport.clone() else { continue };
        if let Err(e) = cluster.node.report_disks(&me).await {
            tracing::debug!(error = %e, "this node's disks are not recorded in the cluster yet");
        }
        let refreshed = cluster
            .node
            .refresh_cluster_disks(&me, t, |id| group.address_of(id), Duration::from_secs(2))
            .await;
        if let Err(e) = refreshed {
            tracing::warn!(error = %e, "cannot read the cluster's disks");
        }
    }
}

/// Serves the node-to-node listener until `shutdown` turns true. Before the node has a
/// certificate (no `cluster init` or join yet) every connection is closed at once.
///
/// # Errors
/// None today: a failed accept or handshake is logged and the loop goes on.
pub async fn run(
    cluster: Cluster,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let router = axum::Router::new()
        .route("/v1/ping", axum::routing::get(ping))
        .route("/v1/join", axum::routing::post(join))
        .route(
            "/v1/shards/call",
            axum::routing::post(shard_call)
                .layer(axum::extract::DefaultBodyLimit::max(SHARD_CALL_LIMIT)),
        )
        .route(
            "/v1/shards/upload",
            axum::routing::post(shard_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/raft/{call}",
            axum::routing::post(raft_call)
                .layer(axum::extract::DefaultBodyLimit::max(RAFT_BODY_LIMIT)),
        )
        .fallback(|| async {
            RpcError(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such node-to-node call".into(),
            )
        })
        .layer(axum::middleware::from_fn(members_only))
        .layer(Extension(cluster.clone()));
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let Ok((socket, addr)) = accepted else {
            continue;
        };
        // Raft's messages are small and answered at once: no Nagle delay behind them.
        let _ = socket.set_nodelay(true);
        let Some(acceptor) = cluster.acceptor() else {
            tracing::debug!(%addr, "node-to-node connection before the node has a certificate");
            continue;
        };
        let (http, router) = (http.clone(), router.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                Duration::from_secs(10),
                acceptor.accept(socket),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "node-to-node handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let conn = stream.get_ref().1;
            let peer = Peer {
                fingerprint: conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| fingerprint(c)),
                binding: conn
                    .export_keying_material([0u8; 32], JOIN_EXPORTER, None)
                    .ok(),
                addr,
            };
            let service =
                hyper_util::service::TowerToHyperService::new(router.layer(Extension(peer)));
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%addr, error = %e, "node-to-node connection ended");
            }
        });
    }
    Ok(())
}

/// Trusts a server whose chain carries a CA certificate with a given SHA-256 and whose
/// certificate that CA signed for [`NODE_NAME`]: how a joining node, which has no CA
/// yet, knows it talks to the cluster.
#[derive(Debug)]
struct PinnedCa {
    fingerprint: String,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server's chain holds no CA with the pinned fingerprint".into(),
                )
            })?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Joins the cluster whose node-to-node listener is `addr` (host:port) with the token
/// `token`, trusting only a CA whose certificate has SHA-256 `ca_fingerprint`: makes
/// this node's key (kept here), sends a certificate request, keeps the certificate and
/// the CA's. Does nothing when this node has a certificate already.
///
/// # Errors
/// The connection, the TLS handshake (a CA other than the pinned one), the refusal
/// (`JoinRefused`: an unknown, used or expired token), files.
pub async fn join_cluster(
    files: &Files,
    addr: &str,
    token: &str,
    ca_fingerprint: &str,
    advertised: String,
) -> anyhow::Result<bool> {
    if files.has_node_certificate() {
        return Ok(false);
    }
    let pinned = ca_fingerprint
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let node_id = hex::encode(stele::crypto::random_bytes::<8>());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let csr = rcgen::CertificateParams::new(vec![NODE_NAME.to_owned()])?
        .serialize_request(&key)?
        .pem()?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa {
            fingerprint: pinned.clone(),
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| {
            format!(
                "cannot reach the cluster at {addr} (nodes join through the node that ran \
                 `cluster init`: is it up, and is that its --cluster-addr?)"
            )
        })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(NODE_NAME)?, tcp)
        .await
        .with_context(|| format!("TLS with {addr} failed (is --ca-fingerprint right?)"))?;
    let binding = tls
        .get_ref()
        .1
        .export_keying_material([0u8; 32], JOIN_EXPORTER, None)
        .context("the TLS exporter")?;
    let hash = stele::node::token_hash(token);
    let body = serde_json::to_vec(&JoinRequest {
        token_id: stele::membership::token_id(&hash),
        proof: hex::encode(stele::crypto::hmac_sha256(&hash, &binding)),
        node_id: node_id.clone(),
        csr_pem: csr,
        addr: Some(advertised),
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = http::Request::post("/v1/join")
        .header("host", NODE_NAME)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    if !status.is_success() {
        let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        if status == http::StatusCode::MISDIRECTED_REQUEST {
            bail!("{addr} is a member that does not admit nodes: {msg}");
        }
        bail!("the cluster refused to admit this node ({status}): {msg}");
    }
    let answer: JoinAnswer = serde_json::from_slice(&bytes).context("the join answer")?;
    let ca = CertificateDer::from_pem_slice(answer.ca_pem.as_bytes())
        .context("the CA in the join answer")?;
    if fingerprint(&ca) != pinned {
        bail!("the join answer carries a CA other than the pinned one: nothing kept");
    }
    if let Some(k) = &answer.identity_key
        && !(k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("the join answer's identity key is not 64 hex digits: nothing kept");
    }
    // Before the certificate, which makes this node a member at its next start.
    match &answer.identity_key {
        Some(k) => files.write(IDENTITY_KEY, k)?,
        None => tracing::warn!(
            "the cluster gave no identity key (a release before it): this node cannot open the cluster's access keys"
        ),
    }
    files.write("ca.pem", &answer.ca_pem)?;
    files.write("node.key", &key.serialize_pem())?;
    files.write("node.pem", &answer.cert_pem)?;
    files.write("node-id", &node_id)?;
    files.write("cluster-id", &answer.cluster_id)?;
    files.write(ADMITTED_BY, &answer.members.join("\n"))?;
    tracing::info!(cluster = %answer.cluster_id, node = %node_id, "joined the cluster");
    Ok(true)
}
