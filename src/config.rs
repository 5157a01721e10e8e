//! Node configuration: where the disks are, which failure domains they belong to, and the
//! erasure-coding parameters. Built from a config file, flags or the embedded default;
//! [`NodeConfig::validate`] refuses every combination the engine cannot honour, at start.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--ec`, `STELE_EC` or the file's `ec` is not `K+M`.
    #[error("erasure coding {text:?} is not of the form K+M (for example 4+2)")]
    EcSyntax {
        /// The text given.
        text: String,
    },
    /// K is 0: there would be nothing to reconstruct from.
    #[error("erasure coding needs at least one data shard (K = 0 given)")]
    NoDataShards,
    /// K+M above 256, the most shards Reed-Solomon over GF(2^8) can code.
    #[error("erasure coding {k}+{m} is wider than the 256 shards Reed-Solomon allows")]
    TooWide {
        /// Data shards asked for.
        k: usize,
        /// Parity shards asked for.
        m: usize,
    },
    /// Fewer disks than K+M: each shard of a segment must go to a distinct disk.
    #[error("erasure coding {k}+{m} needs at least {} disks; {disks} configured", k + m)]
    NotEnoughDisks {
        /// Data shards asked for.
        k: usize,
        /// Parity shards asked for.
        m: usize,
        /// Disks configured.
        disks: usize,
    },
    /// The disk list is empty.
    #[error("no disks configured")]
    NoDisks,
    /// A disk path names a regular file.
    #[error("disk path {path} is a file, not a directory")]
    DiskIsFile {
        /// The path as configured.
        path: PathBuf,
    },
    /// Two disk paths resolve to one directory (through `..` or a symlink): they would be
    /// one failure domain counted twice.
    #[error("disks {first} and {second} are the same directory ({path})")]
    DuplicateDiskPath {
        /// The id of the disk listed first.
        first: String,
        /// The id of the disk listed second.
        second: String,
        /// The directory both resolve to.
        path: PathBuf,
    },
    /// `Store::open_on` was given shard stores other than the configured disks, or in
    /// another order.
    #[error("the shard stores given ({given:?}) are not the configured disks ({configured:?})")]
    DisksMismatch {
        /// The configured disks' ids, in order.
        configured: Vec<String>,
        /// The ids of the shard stores given, in order.
        given: Vec<String>,
    },
    /// A disk id of 32 hex digits: shard records name disks by UUID or by id, and the two
    /// must never collide.
    #[error("disk id {id:?} looks like a disk UUID (32 hex digits); choose another")]
    DiskIdLikeUuid {
        /// The id.
        id: String,
    },
    /// Two disks have one id.
    #[error("two disks share the id {id:?}")]
    DuplicateDiskId {
        /// The id.
        id: String,
    },
    /// The write quorum is below K (a write could not be read back) or above K+M (no
    /// write could meet it).
    #[error("write quorum {quorum} must lie between K = {k} and K+M = {width}")]
    BadQuorum {
        /// The quorum asked for.
        quorum: usize,
        /// Data shards per stripe.
        k: usize,
        /// Shards per stripe, K+M.
        width: usize,
    },
    /// The block size is outside 4 KiB to 16 MiB.
    #[error("block size {size} must be between 4 KiB and 16 MiB")]
    BadBlockSize {
        /// The block size asked for, in bytes.
        size: usize,
    },
    /// `inline_max` is not below a stripe: an inline object must fit in less than one.
    #[error("inline_max {size} must be below the stripe size {stripe}")]
    BadInlineMax {
        /// `inline_max` asked for, in bytes.
        size: usize,
        /// The stripe size, K × block size, in bytes.
        stripe: usize,
    },
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for [`ConfigFile`] (an unknown field included).
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with the line.
        message: String,
    },
    /// A folder the node needs cannot be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why it cannot be created.
        #[source]
        source: std::io::Error,
    },
}

/// Reed-Solomon parameters: K data shards and M parity shards per stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EcParams {
    /// K: data shards per stripe, the fewest a read needs.
    pub data: usize,
    /// M: parity shards per stripe, the shards that may be lost.
    pub parity: usize,
}

impl EcParams {
    /// K+M as given; [`NodeConfig::validate`] checks them.
    pub const fn new(data: usize, parity: usize) -> Self {
        Self { data, parity }
    }
    /// K+M: shards per stripe, and the disks each segment is spread over.
    pub const fn width(&self) -> usize {
        self.data + self.parity
    }
}

impl Default for EcParams {
    fn default() -> Self {
        Self::new(4, 2)
    }
}

impl FromStr for EcParams {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let err = || ConfigError::EcSyntax { text: s.to_owned() };
        let (k, m) = s.trim().split_once('+').ok_or_else(err)?;
        let k = k.trim().parse().map_err(|_| err())?;
        let m = m.trim().parse().map_err(|_| err())?;
        Ok(Self::new(k, m))
    }
}

impl TryFrom<String> for EcParams {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

impl From<EcParams> for String {
    fn from(e: EcParams) -> String {
        e.to_string()
    }
}

impl fmt::Display for EcParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.data, self.parity)
    }
}

/// One disk: a directory (a mount point in production) in a node in a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// The node-local id (`d0`): written into the disk's stamp, which must match at every
    /// start, and how records before disk UUIDs name the disk.
    pub id: String,
    /// The directory; formatted (stamped) only when empty.
    pub path: PathBuf,
    /// The node the disk belongs to, a failure domain for placement.
    #[serde(default = "default_node")]
    pub node: String,
    /// The site the node is in, the widest failure domain: shards spread over sites first.
    #[serde(default = "default_site")]
    pub site: String,
}

fn default_node() -> String {
    "node1".into()
}
fn default_site() -> String {
    "site1".into()
}

impl DiskSpec {
    /// A disk of the default node (`node1`) in the default site (`site1`).
    pub fn local(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            path: path.into(),
            node: default_node(),
            site: default_site(),
        }
    }
}

/// Bytes per shard block: 256 KiB, so a 4+2 stripe holds 1 MiB of data.
pub const DEFAULT_BLOCK_SIZE: usize = 256 * 1024;
/// Objects up to 16 KiB are kept inline in the metadata store.
pub const DEFAULT_INLINE_MAX: usize = 16 * 1024;
/// Disks of the embedded default: six, the width of 4+2.
pub const EMBEDDED_DISKS: usize = 6;

/// Everything the engine needs to open a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Holds the metadata store (`meta/`) and, in the embedded default, the disks.
    pub data_dir: PathBuf,
    /// The disks, in order: shard stores are opened in this order and must match it.
    pub disks: Vec<DiskSpec>,
    /// K+M for new segments (each segment records its own geometry).
    pub ec: EcParams,
    /// Shards per stripe that must be durable before a write is acknowledged.
    pub write_quorum: usize,
    /// Bytes of one shard's block in a full stripe; a stripe holds K blocks of data.
    pub block_size: usize,
    /// Objects up to this size live in the metadata store, committed with their version
    /// (one fsync instead of one per shard file and directory). Must be below a stripe.
    pub inline_max: usize,
    /// Every new bucket gets Object Lock (`--require-object-lock`).
    pub require_object_lock: bool,
    /// Shards may go to other nodes' disks too (the node serves a node listener,
    /// `--cluster-addr`): the node may have fewer disks than K+M, and a write waits for
    /// enough of the cluster's ([`crate::store::StoreError::InsufficientDisks`] until then).
    pub spans_nodes: bool,
    /// How long repair waits for a cluster member that cannot be reached before it
    /// rebuilds that member's shards elsewhere (`--node-grace`, default
    /// [`DEFAULT_NODE_GRACE`], 15 minutes: a restart or a network blip starts no rebuild
    /// storm).
    pub node_grace: std::time::Duration,
}

/// How long repair waits for an unreachable cluster member by default: 15 minutes.
pub const DEFAULT_NODE_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The config file, `stele.toml`. Every field is optional; flags and `STELE_*` variables
/// override it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// [`NodeConfig::data_dir`] (`--data`, `STELE_DATA`).
    pub data_dir: Option<PathBuf>,
    /// Erasure coding as `"K+M"` (`--ec`, `STELE_EC`).
    pub ec: Option<EcParams>,
    /// [`NodeConfig::write_quorum`] (`--write-quorum`, `STELE_WRITE_QUORUM`).
    pub write_quorum: Option<usize>,
    /// [`NodeConfig::block_size`] in bytes; set only here.
    pub block_size: Option<usize>,
    /// [`NodeConfig::inline_max`] in bytes; set only here.
    pub inline_max: Option<usize>,
    /// [`NodeConfig::require_object_lock`]; the flag turns it on whatever the file says.
    pub require_object_lock: Option<bool>,
    /// The `[[disk]]` tables, in order; `--disk` replaces them all.
    #[serde(default, rename = "disk")]
    pub disks: Vec<DiskFileEntry>,
    /// The S3 listener's address (`--s3-addr`, `STELE_S3_ADDR`).
    pub s3_addr: Option<String>,
    /// The admin API listener's address (`--admin-addr`, `STELE_ADMIN_ADDR`).
    pub admin_addr: Option<String>,
    /// The listeners' PEM certificate chain (`--tls-cert`, `STELE_TLS_CERT`).
    pub tls_cert: Option<PathBuf>,
    /// Its PEM private key (`--tls-key`, `STELE_TLS_KEY`).
    pub tls_key: Option<PathBuf>,
}

/// One `[[disk]]` table of the config file: a [`DiskSpec`] in which every field but the
/// path may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFileEntry {
    /// The disk's directory.
    pub path: PathBuf,
    /// Its id; default `d<position>` (`d0` for the first table).
    pub id: Option<String>,
    /// Its node; default `node1`.
    pub node: Option<String>,
    /// Its site; default `site1`.
    pub site: Option<String>,
}

impl ConfigFile {
    /// Reads and parses a config file; an unknown field is refused, not ignored.
    ///
    /// # Errors
    /// [`ConfigError::ReadFile`], [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

impl NodeConfig {
    /// The embedded default: six directories under `data_dir/disks` and 4+2.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let disks = (0..EMBEDDED_DISKS)
            .map(|i| {
                DiskSpec::local(
                    format!("d{i}"),
                    data_dir.join("disks").join(format!("d{i}")),
                )
            })
            .collect();
        Self::with_disks(data_dir, disks, EcParams::default())
    }

    /// `disks` with `ec`, and the defaults for the rest: [`default_quorum`], 256 KiB blocks,
    /// 16 KiB inline, Object Lock not required.
    pub fn with_disks(data_dir: impl Into<PathBuf>, disks: Vec<DiskSpec>, ec: EcParams) -> Self {
        Self {
            data_dir: data_dir.into(),
            disks,
            write_quorum: default_quorum(ec),
            ec,
            block_size: DEFAULT_BLOCK_SIZE,
            inline_max: DEFAULT_INLINE_MAX,
            require_object_lock: false,
            spans_nodes: false,
            node_grace: DEFAULT_NODE_GRACE,
        }
    }

    /// Disks named only by path get ids `d0`, `d1`, ... in the order given.
    pub fn disks_from_paths(paths: &[PathBuf]) -> Vec<DiskSpec> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| DiskSpec::local(format!("d{i}"), p.clone()))
            .collect()
    }

    /// Where the metadata store (RocksDB) lives: `data_dir/meta`.
    pub fn meta_dir(&self) -> PathBuf {
        self.data_dir.join("meta")
    }

    /// Creates the metadata folder (and its parents) if missing; its path.
    ///
    /// # Errors
    /// [`ConfigError::CreateDir`] when it cannot be created.
    pub fn create_meta_dir(&self) -> Result<PathBuf, ConfigError> {
        let dir = self.meta_dir();
        std::fs::create_dir_all(&dir).map_err(|source| ConfigError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// Refuses combinations the engine cannot honour. Checks the filesystem too (a disk path
    /// that is a file, two disks on one directory), so run it at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (k, m) = (self.ec.data, self.ec.parity);
        if k == 0 {
            return Err(ConfigError::NoDataShards);
        }
        if k + m > 256 {
            return Err(ConfigError::TooWide { k, m });
        }
        if self.disks.is_empty() {
            return Err(ConfigError::NoDisks);
        }
        if k + m > self.disks.len() && !self.spans_nodes {
            return Err(ConfigError::NotEnoughDisks {
                k,
                m,
                disks: self.disks.len(),
            });
        }
        if self.write_quorum < k || self.write_quorum > k + m {
            return Err(ConfigError::BadQuorum {
                quorum: self.write_quorum,
                k,
                width: k + m,
            });
        }
        if !(4096..=16 << 20).contains(&self.block_size) {
            return Err(ConfigError::BadBlockSize {
                size: self.block_size,
            });
        }
        if self.inline_max >= k * self.block_size {
            return Err(ConfigError::BadInlineMax {
                size: self.inline_max,
                stripe: k * self.block_size,
            });
        }
        let mut ids = HashSet::new();
        let mut seen: Vec<(PathBuf, &str)> = Vec::new();
        for d in &self.disks {
            if !ids.insert(d.id.as_str()) {
                return Err(ConfigError::DuplicateDiskId { id: d.id.clone() });
            }
            // Shard records name disks by UUID (32 hex digits) or by id: never ambiguous.
            if d.id.len() == 32 && d.id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::DiskIdLikeUuid { id: d.id.clone() });
            }
            if d.path.is_file() {
                return Err(ConfigError::DiskIsFile {
                    path: d.path.clone(),
                });
            }
            let canon = canonical(&d.path);
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == canon) {
                return Err(ConfigError::DuplicateDiskPath {
                    first: (*first).to_owned(),
                    second: d.id.clone(),
                    path: canon,
                });
            }
            seen.push((canon, &d.id));
        }
        Ok(())
    }
}

/// K+1 when there is parity to spare: a write survives one more failure before it is
/// acknowledged than the bare minimum needed to read it back.
pub fn default_quorum(ec: EcParams) -> usize {
    (ec.data + 1).min(ec.width())
}

/// The path with `.`/`..` folded and symlinks resolved as far as it exists, so `a/../b`
/// and `b` compare equal even before the directories are created.
fn canonical(p: &Path) -> PathBuf {
    use std::path::Component;
    let abs = if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut norm = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::CurDir => {}
            other => norm.push(other),
        }
    }
    let mut existing = norm.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut out) = existing.canonicalize() {
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return norm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ec() {
        assert_eq!("4+2".parse::<EcParams>().ok(), Some(EcParams::new(4, 2)));
        assert_eq!(
            " 8 + 3 ".parse::<EcParams>().ok(),
            Some(EcParams::new(8, 3))
        );
        assert!("4".parse::<EcParams>().is_err());
        assert!("a+2".parse::<EcParams>().is_err());
    }

    #[test]
    fn embedded_default_is_valid() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|source| ConfigError::CreateDir {
            path: "tmp".into(),
            source,
        })?;
        let c = NodeConfig::embedded(dir.path());
        assert_eq!(c.disks.len(), 6);
        assert_eq!(c.ec, EcParams::new(4, 2));
        assert_eq!(c.write_quorum, 5);
        c.validate()
    }

    #[test]
    fn refuses_invalid_combinations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = NodeConfig::embedded(dir.path());

        let mut c = base.clone();
        c.ec = EcParams::new(4, 3);
        c.write_quorum = 5;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NotEnoughDisks { disks: 6, .. })
        ));

        let mut c = base.clone();
        c.ec = EcParams::new(0, 2);
        assert!(matches!(c.validate(), Err(ConfigError::NoDataShards)));

        let file = dir.path().join("plainfile");
        std::fs::write(&file, b"x").expect("write");
        let mut c = base.clone();
        c.disks[2].path = file;
        assert!(matches!(c.validate(), Err(ConfigError::DiskIsFile { .. })));

        let mut c = base.clone();
        c.disks[3].path = c.disks[1].path.join("..").join("d1");
        assert!(matches!(
            c.validate(),
            Err(ConfigError::DuplicateDiskPath { .. })
        ));

        let mut c = base;
        c.write_quorum = 7;
        assert!(matches!(c.validate(), Err(ConfigError::BadQuorum { .. })));
    }

    #[test]
    fn reads_config_file() -> Result<(), ConfigError> {
        let f: ConfigFile = toml::from_str(
            r#"
            ec = "2+1"
            [[disk]]
            path = "/a"
            site = "east"
            "#,
        )
        .map_err(|e| ConfigError::Parse {
            path: "inline".into(),
            message: e.to_string(),
        })?;
        assert_eq!(f.ec, Some(EcParams::new(2, 1)));
        assert_eq!(f.disks[0].site.as_deref(), Some("east"));
        Ok(())
    }
}
