//! Disks: directories (mount points in production) that hold shard files, their health, and
//! the shard file format.
//!
//! Layout of one disk:
//! ```text
//! <disk>/.stele-disk                      stamp: format version and disk id
//! <disk>/tmp/                             shard files being written (swept at start)
//! <disk>/shards/<xx>/<segment>.<index>    finished shard files, read-only, never rewritten
//! ```
//! `xx` is the last byte of the segment id (its random part) in hex. Object keys never
//! appear in a path.

pub mod shard;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::DiskSpec;
use crate::types::SegmentId;

pub use shard::{Corruption, ShardReader, ShardWriter};

const STAMP_FILE: &str = ".stele-disk";
const STAMP_FORMAT: u32 = 1;
/// How long a failed disk is left alone before the next operation probes it again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often an online disk's stamp is checked on the way to using it.
const STAMP_CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk {disk} is offline")]
    Offline { disk: String },
    #[error("disk {disk} is full")]
    Full { disk: String },
    #[error("disk {disk}: {op} {path}: {source}")]
    Io {
        disk: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("shard file {path} is corrupt: {what}")]
    Corrupt { path: PathBuf, what: Corruption },
    #[error("shard file {path} already exists; shard files are never rewritten")]
    AlreadyExists { path: PathBuf },
    #[error("directory {path} is stamped as disk {found:?} but configured as {expected:?}")]
    WrongDisk {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("directory {path} holds files but no disk stamp; refusing to use it as disk {id:?}")]
    Unformatted { path: PathBuf, id: String },
}

/// A file found in a disk's shard folders (see [`Disk::shard_files_older_than`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundShard {
    /// The segment id as the file name writes it (the part before the first `.`).
    pub segment: String,
    /// The file's name.
    pub name: String,
    /// The shard folder it is in.
    folder: String,
}

/// What the engine reports about a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskState {
    Online,
    Offline,
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskStatus {
    pub id: String,
    pub path: PathBuf,
    pub node: String,
    pub site: String,
    pub state: DiskState,
    /// Bytes free for the node's user on the disk's filesystem, if it can be read.
    pub free_bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    format: u32,
    id: String,
}

#[derive(Debug)]
struct Health {
    state: DiskState,
    since: Instant,
    checked: Instant,
}

#[derive(Debug)]
pub struct Disk {
    spec: DiskSpec,
    health: Mutex<Health>,
}

impl Disk {
    /// Opens (and on first use formats) the disk at `spec.path`. A directory stamped with
    /// another id is refused; a missing or unreadable one makes an offline disk, so one bad
    /// disk does not stop the node.
    pub fn open(spec: DiskSpec) -> Result<Self, DiskError> {
        let disk = Self {
            health: Mutex::new(Health {
                state: DiskState::Online,
                since: Instant::now(),
                checked: Instant::now(),
            }),
            spec,
        };
        match disk.format_or_check() {
            Ok(()) => {
                disk.sweep_tmp();
                Ok(disk)
            }
            Err(e @ (DiskError::WrongDisk { .. } | DiskError::Unformatted { .. })) => Err(e),
            Err(e) => {
                tracing::warn!(disk = %disk.spec.id, error = %e, "disk offline at start");
                disk.set_state(DiskState::Offline);
                Ok(disk)
            }
        }
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }
    pub fn spec(&self) -> &DiskSpec {
        &self.spec
    }

    pub fn status(&self) -> DiskStatus {
        DiskStatus {
            id: self.spec.id.clone(),
            path: self.spec.path.clone(),
            node: self.spec.node.clone(),
            site: self.spec.site.clone(),
            state: self.state(),
            free_bytes: rustix::fs::statvfs(&self.spec.path)
                .ok()
                .map(|v| v.f_bavail.saturating_mul(v.f_frsize)),
        }
    }

    pub fn state(&self) -> DiskState {
        self.health
            .lock()
            .map(|h| h.state)
            .unwrap_or(DiskState::Offline)
    }

    fn set_state(&self, state: DiskState) {
        if let Ok(mut h) = self.health.lock() {
            if h.state != state {
                tracing::warn!(disk = %self.spec.id, from = ?h.state, to = ?state, "disk state changed");
            }
            h.state = state;
            h.since = Instant::now();
        }
    }

    /// Whether to send work to this disk now. An online disk's stamp is checked at most
    /// once a second (a vanished mount or directory takes it offline); a failed disk is
    /// probed again once it has rested for a few seconds.
    pub fn usable(&self) -> bool {
        let (state, since, checked) = match self.health.lock() {
            Ok(h) => (h.state, h.since, h.checked),
            Err(_) => return false,
        };
        if state == DiskState::Online {
            return checked.elapsed() < STAMP_CHECK_EVERY || self.probe();
        }
        if since.elapsed() < RETRY_AFTER {
            return false;
        }
        let ok = self.read_stamp().is_ok_and(|s| s.id == self.spec.id);
        if ok {
            self.set_state(DiskState::Online);
        } else {
            self.set_state(state);
        }
        ok
    }

    /// Checks now that the disk's stamp is still there and names this disk; an online disk
    /// without it goes offline. Returns whether the disk is online.
    pub fn probe(&self) -> bool {
        let ok = self.read_stamp().is_ok_and(|s| s.id == self.spec.id);
        if let Ok(mut h) = self.health.lock() {
            h.checked = Instant::now();
        }
        match (ok, self.state()) {
            (false, DiskState::Online) => {
                self.set_state(DiskState::Offline);
                false
            }
            (_, state) => state == DiskState::Online,
        }
    }

    /// Records the outcome of an I/O error: a full disk or an offline one.
    pub fn note_error(&self, e: &io::Error) {
        let full = e.raw_os_error() == Some(28) || e.kind() == io::ErrorKind::StorageFull;
        self.set_state(if full {
            DiskState::Full
        } else {
            DiskState::Offline
        });
    }

    pub(crate) fn io_err(&self, op: &'static str, path: &Path, source: io::Error) -> DiskError {
        self.note_error(&source);
        DiskError::Io {
            disk: self.spec.id.clone(),
            op,
            path: path.to_owned(),
            source,
        }
    }

    fn stamp_path(&self) -> PathBuf {
        self.spec.path.join(STAMP_FILE)
    }

    fn read_stamp(&self) -> Result<Stamp, DiskError> {
        let p = self.stamp_path();
        let text = std::fs::read_to_string(&p).map_err(|source| DiskError::Io {
            disk: self.spec.id.clone(),
            op: "read stamp",
            path: p.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| DiskError::Io {
            disk: self.spec.id.clone(),
            op: "parse stamp",
            path: p,
            source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        })
    }

    fn format_or_check(&self) -> Result<(), DiskError> {
        let root = &self.spec.path;
        let io = |op, path: &Path, source| DiskError::Io {
            disk: self.spec.id.clone(),
            op,
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| io("create", root, e))?;
        if self.stamp_path().exists() {
            let stamp = self.read_stamp()?;
            if stamp.id != self.spec.id {
                return Err(DiskError::WrongDisk {
                    path: root.clone(),
                    expected: self.spec.id.clone(),
                    found: stamp.id,
                });
            }
            return self.make_dirs();
        }
        // The stamp is written first, so an unstamped directory can hold only `tmp/` from
        // a format that was interrupted; anything else is someone else's data.
        let has_data = std::fs::read_dir(root)
            .map_err(|e| io("list", root, e))?
            .flatten()
            .any(|e| e.file_name() != "tmp");
        if has_data {
            return Err(DiskError::Unformatted {
                path: root.clone(),
                id: self.spec.id.clone(),
            });
        }
        let tmp_dir = root.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|e| io("create", &tmp_dir, e))?;
        // Never an empty stamp in place of one that could not be written.
        let stamp = toml::to_string(&Stamp {
            format: STAMP_FORMAT,
            id: self.spec.id.clone(),
        })
        .map_err(|e| io("encode stamp", root, io::Error::other(e)))?;
        let tmp = tmp_dir.join(STAMP_FILE);
        write_durable(&tmp, stamp.as_bytes()).map_err(|e| io("write stamp", &tmp, e))?;
        std::fs::rename(&tmp, self.stamp_path()).map_err(|e| io("rename stamp", &tmp, e))?;
        sync_dir(root).map_err(|e| io("sync", root, e))?;
        self.make_dirs()?;
        tracing::info!(disk = %self.spec.id, path = %root.display(), "formatted new disk");
        Ok(())
    }

    fn make_dirs(&self) -> Result<(), DiskError> {
        let root = &self.spec.path;
        let shards = root.join("shards");
        for dir in [root.join("tmp"), shards.clone()] {
            std::fs::create_dir_all(&dir).map_err(|e| self.io_err("create", &dir, e))?;
        }
        let mut created = false;
        for b in 0..=255u8 {
            let d = shards.join(format!("{b:02x}"));
            if !d.exists() {
                std::fs::create_dir(&d).map_err(|e| self.io_err("create", &d, e))?;
                created = true;
            }
        }
        if created {
            sync_dir(&shards).map_err(|e| self.io_err("sync", &shards, e))?;
            sync_dir(root).map_err(|e| self.io_err("sync", root, e))?;
        }
        Ok(())
    }

    /// Temporary files are shard writes that never finished: nothing references them.
    fn sweep_tmp(&self) {
        let tmp = self.spec.path.join("tmp");
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return;
        };
        let mut swept = 0;
        for e in entries.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                swept += 1;
            }
        }
        if swept > 0 {
            tracing::info!(disk = %self.spec.id, swept, "removed unfinished shard files");
        }
    }

    pub fn shard_path(&self, segment: &SegmentId, index: usize) -> PathBuf {
        self.spec
            .path
            .join("shards")
            .join(format!("{:02x}", segment.0[15]))
            .join(format!("{segment}.{index}"))
    }

    fn tmp_path(&self, segment: &SegmentId, index: usize) -> PathBuf {
        self.spec
            .path
            .join("tmp")
            .join(format!("{segment}.{index}.{:016x}", rand::random::<u64>()))
    }

    /// Starts a new shard file. It becomes visible under its final name only when
    /// [`ShardWriter::finish`] has made it durable.
    pub fn create_shard(
        self: &Arc<Self>,
        segment: &SegmentId,
        index: usize,
        block_size: u32,
    ) -> Result<ShardWriter, DiskError> {
        match self.state() {
            DiskState::Online => {}
            DiskState::Full => {
                return Err(DiskError::Full {
                    disk: self.spec.id.clone(),
                });
            }
            DiskState::Offline => {
                return Err(DiskError::Offline {
                    disk: self.spec.id.clone(),
                });
            }
        }
        ShardWriter::create(
            Arc::clone(self),
            self.tmp_path(segment, index),
            self.shard_path(segment, index),
            block_size,
        )
    }

    /// Starts the rebuild of a missing or corrupt shard (repair): written like a new one,
    /// then renamed over the old name only if it hashes to `root`.
    pub fn rebuild_shard(
        self: &Arc<Self>,
        segment: &SegmentId,
        index: usize,
        block_size: u32,
        root: shard::Hash,
    ) -> Result<ShardWriter, DiskError> {
        let mut w = self.create_shard(segment, index, block_size)?;
        w.set_replaces(root);
        Ok(w)
    }

    /// Heal: a disk whose directory was emptied (replaced) is stamped and brought online
    /// again, so repair can rebuild its shards. A directory holding anything else is left
    /// alone.
    pub fn heal(&self) -> Result<(), DiskError> {
        self.format_or_check()?;
        self.set_state(DiskState::Online);
        Ok(())
    }

    /// The files in the disk's shard folders last modified before `older_than_micros`
    /// (µs since the epoch). Unreadable folders are skipped.
    pub fn shard_files_older_than(&self, older_than_micros: i64) -> Vec<FoundShard> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(self.spec.path.join("shards")) else {
            return out;
        };
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|t| (t.as_micros() as i64) < older_than_micros);
                if old {
                    let name = f.file_name().to_string_lossy().into_owned();
                    out.push(FoundShard {
                        segment: name.split('.').next().unwrap_or_default().to_owned(),
                        folder: d.file_name().to_string_lossy().into_owned(),
                        name,
                    });
                }
            }
        }
        out
    }

    /// Moves `file` into the disk's `quarantine/` folder: never deleted, an administrator
    /// decides. Whether it moved.
    pub fn quarantine_shard_file(&self, file: &FoundShard) -> bool {
        let from = self
            .spec
            .path
            .join("shards")
            .join(&file.folder)
            .join(&file.name);
        let q = self.spec.path.join("quarantine");
        std::fs::create_dir_all(&q).is_ok() && std::fs::rename(from, q.join(&file.name)).is_ok()
    }

    /// Opens a finished shard file and checks its hash list against `root`.
    pub fn open_shard(
        &self,
        segment: &SegmentId,
        index: usize,
        expect: &shard::Expect,
    ) -> Result<ShardReader, DiskError> {
        if self.state() == DiskState::Offline && !self.usable() {
            return Err(DiskError::Offline {
                disk: self.spec.id.clone(),
            });
        }
        ShardReader::open(self, self.shard_path(segment, index), expect)
    }

    /// Removes a shard file. Only for shards no committed version references (an aborted
    /// write); deleting a committed version's data is the lock layer's decision.
    pub(crate) fn remove_uncommitted_shard(&self, segment: &SegmentId, index: usize) {
        let p = self.shard_path(segment, index);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(disk = %self.spec.id, path = %p.display(), error = %e, "could not remove unreferenced shard")
            }
        }
    }
}

impl Disk {
    /// Removes a shard file of a version whose record the store has removed, after the
    /// lock layer allowed it.
    pub(crate) fn remove_shard_of_removed_version(&self, segment: &SegmentId, index: usize) {
        self.remove_uncommitted_shard(segment, index);
    }
}

pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}
