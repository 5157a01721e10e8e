//! Command-line flags and `STELE_*` environment variables, layered over the optional config
//! file: a flag or variable wins over the file, the file over the built-in default.

use std::path::PathBuf;

use clap::Parser;
use stele::config::{ConfigError, ConfigFile, DiskSpec, EcParams, NodeConfig, default_quorum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "stele-server",
    version,
    about = "Stele: a write-once S3 object store for backups"
)]
pub struct Args {
    /// Data folder: holds the metadata store and, unless --disk is given, the disks.
    #[arg(long, env = "STELE_DATA")]
    pub data: Option<PathBuf>,
    /// A disk directory (repeatable). Default: 6 directories under the data folder.
    #[arg(long = "disk", env = "STELE_DISKS", value_delimiter = ',')]
    pub disks: Vec<PathBuf>,
    /// Erasure coding K+M (data+parity shards per stripe). Default 4+2.
    #[arg(long, env = "STELE_EC")]
    pub ec: Option<EcParams>,
    /// Shards per stripe that must be durable before a write is acknowledged. Default K+1.
    #[arg(long, env = "STELE_WRITE_QUORUM")]
    pub write_quorum: Option<usize>,
    /// Config file (TOML).
    #[arg(long, env = "STELE_CONFIG")]
    pub config: Option<PathBuf>,
    /// S3 API listener.
    #[arg(long, env = "STELE_S3_ADDR")]
    pub s3_addr: Option<String>,
    /// The first S3 access key, created on first start (generated and printed once if
    /// neither this nor the stored one exists).
    #[arg(long, env = "STELE_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// The first S3 secret key.
    #[arg(long, env = "STELE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Serve virtual-host-style requests (`BUCKET.DOMAIN`) for this domain, besides
    /// path-style ones.
    #[arg(long, env = "STELE_DOMAIN")]
    pub domain: Option<String>,
    /// Admin API listener (never serves S3).
    #[arg(long, env = "STELE_ADMIN_ADDR")]
    pub admin_addr: Option<String>,
    /// The first administrator's key for the admin API (generated and printed once if
    /// neither this nor a stored one exists). Never accepted on the S3 port.
    #[arg(long, env = "STELE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    #[arg(long, env = "STELE_ADMIN_SECRET", hide_env_values = true)]
    pub admin_secret: Option<String>,
    /// The key folder: the master key that seals every secret (and, when generated, the
    /// first admin credential). Keep it outside the data folder. Default: `stele-keys`
    /// next to the data folder.
    #[arg(long, env = "STELE_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
    /// Every new bucket gets Object Lock (and versioning), whatever the request says.
    #[arg(long, env = "STELE_REQUIRE_OBJECT_LOCK")]
    pub require_object_lock: bool,
    /// Seconds between scrub passes (default 7 days).
    #[arg(long, env = "STELE_SCRUB_INTERVAL", default_value_t = 7 * 24 * 3600)]
    pub scrub_interval: u64,
    /// Scrub rate limit, MB verified per second (leaves the disks to foreground traffic).
    #[arg(long, env = "STELE_SCRUB_RATE", default_value_t = 50)]
    pub scrub_rate: u32,
    /// Seconds between two drains of the repair queue; also the first retry delay of a
    /// failed repair (doubling up to an hour).
    #[arg(long, env = "STELE_REPAIR_INTERVAL", default_value_t = 10)]
    pub repair_interval: u64,
    /// Seconds repair waits for a cluster member that cannot be reached before it
    /// rebuilds that member's shards on the other members' disks (default 15 minutes).
    #[arg(long, env = "STELE_NODE_GRACE", default_value_t = 15 * 60)]
    pub node_grace: u64,
    /// Seconds between rebalance passes on a cluster (each moves the shards the current
    /// layout places elsewhere; `stelectl cluster rebalance` runs one now).
    #[arg(long, env = "STELE_REBALANCE_INTERVAL", default_value_t = 3600)]
    pub rebalance_interval: u64,
    /// Rebalance rate limit, MB copied per second.
    #[arg(long, env = "STELE_REBALANCE_RATE", default_value_t = 50)]
    pub rebalance_rate: u32,
    /// Seconds a moved shard's old copy is kept (a read that began before the move still
    /// finds it); removed by the first rebalance pass after (default 15 minutes).
    #[arg(long, env = "STELE_REBALANCE_GRACE", default_value_t = 15 * 60)]
    pub rebalance_grace: u64,
    /// Seconds acknowledged bytes may stay site-unsafe (a cluster across three or more
    /// sites: they would not survive losing one more site) before a `site-unsafe` alert
    /// (default 15 minutes).
    #[arg(long, env = "STELE_SITE_UNSAFE_ALERT", default_value_t = 15 * 60)]
    pub site_unsafe_alert: u64,
    /// Seconds between two replication audits (each peer asked, version by version,
    /// whether it holds what it acknowledged); `stelectl replication audit --run` starts
    /// one now.
    #[arg(
        long,
        env = "STELE_REPLICATION_AUDIT_INTERVAL",
        default_value_t = 86_400
    )]
    pub replication_audit_interval: u64,
    /// Longest wait between two delivery attempts of an alert to a webhook, in seconds.
    #[arg(long, env = "STELE_ALERT_RETRY_MAX", default_value_t = 60)]
    pub alert_retry_max: u64,
    /// Seconds between watchdog rounds (disk states, clock anomalies, backup freshness).
    #[arg(long, env = "STELE_WATCH_INTERVAL", default_value_t = 30)]
    pub watch_interval: u64,
    /// Seconds between two signed checkpoints of the audit trail, each after a `tick`
    /// event: made whether or not anything happened, so that a trail cut short shows as
    /// missing ticks.
    #[arg(long, env = "STELE_AUDIT_CHECKPOINT_INTERVAL", default_value_t = 60)]
    pub audit_checkpoint_interval: u64,
    /// Seconds between restore drills (default: daily).
    #[arg(long, env = "STELE_DRILL_INTERVAL", default_value_t = 24 * 3600)]
    pub drill_interval: u64,
    /// Versions a restore drill reads back.
    #[arg(long, env = "STELE_DRILL_SAMPLE", default_value_t = 16)]
    pub drill_sample: usize,
    /// Seconds between lifecycle passes.
    #[arg(long, env = "STELE_LIFECYCLE_INTERVAL", default_value_t = 3600)]
    pub lifecycle_interval: u64,
    /// TLS on both listeners: `auto` serves it on every address but loopback (and on
    /// loopback too when a certificate is given), `on` everywhere, `off` nowhere (plain
    /// HTTP, asked for explicitly).
    #[arg(long, env = "STELE_TLS", value_enum, default_value_t = crate::tls::Mode::Auto)]
    pub tls: crate::tls::Mode,
    /// The listeners' PEM certificate chain, leaf first. Without it (and --tls-key), a
    /// self-signed certificate is made on first start and kept in the key folder.
    #[arg(long, env = "STELE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, env = "STELE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// More names (host names, addresses) a generated certificate is valid for, besides
    /// localhost, the loopback addresses and the listeners' own addresses.
    #[arg(long = "tls-name", env = "STELE_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,
    /// The node-to-node listener (host:port; port 0 picks one): mutual TLS with the
    /// cluster's certificates. Without it the node serves no cluster traffic.
    #[arg(long, env = "STELE_CLUSTER_ADDR")]
    pub cluster_addr: Option<String>,
    /// Join the cluster whose node-to-node listener is at this host:port (with
    /// --join-token and --ca-fingerprint), once: a node with a certificate ignores it.
    #[arg(long, env = "STELE_JOIN", requires_all = ["join_token", "ca_fingerprint"])]
    pub join: Option<String>,
    /// The one-time token `stelectl cluster join-token` printed.
    #[arg(long, env = "STELE_JOIN_TOKEN", requires = "join")]
    pub join_token: Option<String>,
    /// SHA-256 of the cluster CA's certificate, as `stelectl cluster join-token` printed
    /// it: the only CA the join trusts.
    #[arg(long, env = "STELE_CA_FINGERPRINT", requires = "join")]
    pub ca_fingerprint: Option<String>,
    /// Test builds only: a file holding two offsets in seconds, "WALL MONO", added to the
    /// wall clock and to monotonic time, so tests can move time (both) or jump the wall
    /// clock alone. Not compiled into release builds of the server.
    #[cfg(feature = "test-clock")]
    #[arg(long)]
    pub test_clock: Option<PathBuf>,
}

pub const DEFAULT_DATA: &str = "./stele-data";
pub const DEFAULT_S3_ADDR: &str = "127.0.0.1:9000";
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9001";

impl Args {
    fn file(&self) -> Result<ConfigFile, ConfigError> {
        match &self.config {
            Some(p) => ConfigFile::load(p),
            None => Ok(ConfigFile::default()),
        }
    }

    /// The node configuration these flags, variables and file describe, validated.
    pub fn node_config(&self) -> Result<NodeConfig, ConfigError> {
        let file = self.file()?;
        let data = self
            .data
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        let ec = self.ec.or(file.ec).unwrap_or_default();
        let mut config = if !self.disks.is_empty() {
            NodeConfig::with_disks(&data, NodeConfig::disks_from_paths(&self.disks), ec)
        } else if !file.disks.is_empty() {
            let disks = file
                .disks
                .iter()
                .enumerate()
                .map(|(i, d)| DiskSpec {
                    id: d.id.clone().unwrap_or_else(|| format!("d{i}")),
                    path: d.path.clone(),
                    node: d.node.clone().unwrap_or_else(|| "node1".into()),
                    site: d.site.clone().unwrap_or_else(|| "site1".into()),
                })
                .collect();
            NodeConfig::with_disks(&data, disks, ec)
        } else {
            let mut c = NodeConfig::embedded(&data);
            c.ec = ec;
            c
        };
        config.write_quorum = self
            .write_quorum
            .or(file.write_quorum)
            .unwrap_or_else(|| default_quorum(ec));
        if let Some(b) = file.block_size {
            config.block_size = b;
        }
        if let Some(i) = file.inline_max {
            config.inline_max = i;
        }
        config.require_object_lock =
            self.require_object_lock || file.require_object_lock.unwrap_or(false);
        config.spans_nodes = self.cluster_addr.is_some();
        config.node_grace = std::time::Duration::from_secs(self.node_grace);
        config.validate()?;
        Ok(config)
    }

    pub fn s3_addr(&self) -> Result<String, ConfigError> {
        Ok(self
            .s3_addr
            .clone()
            .or(self.file()?.s3_addr)
            .unwrap_or_else(|| DEFAULT_S3_ADDR.into()))
    }

    /// The key folder: the flag, else `stele-keys` beside the data folder.
    pub fn key_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(d) = &self.key_dir {
            return Ok(d.clone());
        }
        let data = self
            .data
            .clone()
            .or(self.file()?.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        let parent = data
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        Ok(parent.join("stele-keys"))
    }

    /// The listeners' certificate and key files, as a pair from one place: the flags (or
    /// variables) when either is given, else the config file's.
    ///
    /// # Errors
    /// The config file cannot be read.
    pub fn tls_files(&self) -> Result<(Option<PathBuf>, Option<PathBuf>), ConfigError> {
        if self.tls_cert.is_some() || self.tls_key.is_some() {
            return Ok((self.tls_cert.clone(), self.tls_key.clone()));
        }
        let file = self.file()?;
        Ok((file.tls_cert, file.tls_key))
    }

    pub fn admin_addr(&self) -> Result<String, ConfigError> {
        Ok(self
            .admin_addr
            .clone()
            .or(self.file()?.admin_addr)
            .unwrap_or_else(|| DEFAULT_ADMIN_ADDR.into()))
    }
}
