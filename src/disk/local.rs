//! A local directory (a mount point in production) as a [`ShardStore`]: its stamp, its
//! health, and shard files written with fsync and linked create-only.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::shard::{ShardReader, ShardWriter};
use super::{
    DiskError, DiskState, DiskStatus, DiskUuid, Expect, FoundShard, Hash, ShardName, ShardSink,
    ShardSource, ShardStore,
};
use crate::config::DiskSpec;

const STAMP_FILE: &str = ".stele-disk";
/// Format 2 added the disk's UUID; format 1 (id only) is upgraded at open.
const STAMP_FORMAT: u32 = 2;

/// How a disk's health is checked.
#[derive(Debug, Clone, Copy)]
pub struct DiskTiming {
    /// How long a failed disk is left alone before the next operation probes it again.
    pub retry_after: Duration,
    /// How often an online disk's stamp is checked on the way to using it.
    pub stamp_check_every: Duration,
}

impl Default for DiskTiming {
    fn default() -> Self {
        Self {
            retry_after: Duration::from_secs(5),
            stamp_check_every: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    format: u32,
    id: String,
    /// Absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uuid: Option<DiskUuid>,
}

#[derive(Debug)]
struct Health {
    state: DiskState,
    since: Instant,
    checked: Instant,
}

/// One local disk. Cheap to clone: clones share the health.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    spec: DiskSpec,
    timing: DiskTiming,
    health: Mutex<Health>,
    /// From the stamp, once it has been read.
    uuid: Mutex<Option<DiskUuid>>,
    /// Held across reading and writing the stamp: two threads never stamp one disk with
    /// two UUIDs.
    stamping: Mutex<()>,
}

/// Where shard `name` lives under the disk directory `root`.
pub fn shard_path(root: &Path, name: ShardName) -> PathBuf {
    root.join("shards")
        .join(format!("{:02x}", name.segment.0[15]))
        .join(name.to_string())
}

impl LocalDisk {
    /// Opens (and on first use formats) the disk at `spec.path`. A directory stamped with
    /// another id is refused; a missing or unreadable one makes an offline disk, so one bad
    /// disk does not stop the node.
    pub fn open(spec: DiskSpec) -> Result<Self, DiskError> {
        Self::open_with(spec, DiskTiming::default())
    }

    /// [`LocalDisk::open`] with health checks on another schedule (tests shorten it).
    pub fn open_with(spec: DiskSpec, timing: DiskTiming) -> Result<Self, DiskError> {
        let disk = Self {
            inner: Arc::new(Inner {
                health: Mutex::new(Health {
                    state: DiskState::Online,
                    since: Instant::now(),
                    checked: Instant::now(),
                }),
                spec,
                timing,
                uuid: Mutex::new(None),
                stamping: Mutex::new(()),
            }),
        };
        match disk.format_or_check() {
            Ok(()) => {
                disk.sweep_tmp();
                Ok(disk)
            }
            Err(
                e @ (DiskError::WrongDisk { .. }
                | DiskError::Unformatted { .. }
                | DiskError::UnknownStampFormat { .. }),
            ) => Err(e),
            Err(e) => {
                tracing::warn!(disk = %disk.inner.spec.id, error = %e, "disk offline at start");
                disk.set_state(DiskState::Offline);
                Ok(disk)
            }
        }
    }

    /// The disk's id (the inherent twin of [`ShardStore::id`]).
    pub(crate) fn root_id(&self) -> &str {
        &self.inner.spec.id
    }

    /// The disk's directory.
    pub fn root(&self) -> &Path {
        &self.inner.spec.path
    }

    fn current_state(&self) -> DiskState {
        self.inner
            .health
            .lock()
            .map(|h| h.state)
            .unwrap_or(DiskState::Offline)
    }

    fn set_state(&self, state: DiskState) {
        if let Ok(mut h) = self.inner.health.lock() {
            if h.state != state {
                tracing::warn!(disk = %self.inner.spec.id, from = ?h.state, to = ?state, "disk state changed");
            }
            h.state = state;
            h.since = Instant::now();
        }
    }

    /// Whether to send work to this disk now. An online disk's stamp is checked at most
    /// once a second (a vanished mount or directory takes it offline); a failed disk is
    /// probed again once it has rested for a few seconds.
    fn check_usable(&self) -> bool {
        let (state, since, checked) = match self.inner.health.lock() {
            Ok(h) => (h.state, h.since, h.checked),
            Err(_) => return false,
        };
        if state == DiskState::Online {
            return checked.elapsed() < self.inner.timing.stamp_check_every || self.check_stamp();
        }
        if since.elapsed() < self.inner.timing.retry_after {
            return false;
        }
        let ok = self.read_stamp().is_ok_and(|s| self.accept(&s));
        if ok {
            // A disk that was offline at start may still carry a format-1 stamp.
            if let Err(e) = self.upgrade_stamp() {
                tracing::warn!(disk = %self.inner.spec.id, error = %e, "cannot upgrade disk stamp");
            }
            self.set_state(DiskState::Online);
        } else {
            self.set_state(state);
        }
        ok
    }

    /// Checks now that the disk's stamp is still there and names this disk; an online disk
    /// without it goes offline. Returns whether the disk is online.
    fn check_stamp(&self) -> bool {
        let ok = self.read_stamp().is_ok_and(|s| self.accept(&s));
        if let Ok(mut h) = self.inner.health.lock() {
            h.checked = Instant::now();
        }
        match (ok, self.current_state()) {
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
            disk: self.inner.spec.id.clone(),
            op,
            path: path.to_owned(),
            source,
        }
    }

    /// An error that says nothing about the disk's health (a file that went away).
    fn plain_io(&self, op: &'static str, path: &Path, source: io::Error) -> DiskError {
        DiskError::Io {
            disk: self.inner.spec.id.clone(),
            op,
            path: path.to_owned(),
            source,
        }
    }

    fn stamp_path(&self) -> PathBuf {
        self.inner.spec.path.join(STAMP_FILE)
    }

    fn read_stamp(&self) -> Result<Stamp, DiskError> {
        let p = self.stamp_path();
        let text = std::fs::read_to_string(&p).map_err(|source| DiskError::Io {
            disk: self.inner.spec.id.clone(),
            op: "read stamp",
            path: p.clone(),
            source,
        })?;
        let stamp: Stamp = toml::from_str(&text).map_err(|e| DiskError::Io {
            disk: self.inner.spec.id.clone(),
            op: "parse stamp",
            path: p.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        })?;
        // A stamp from a newer release may mean files this one cannot read.
        if !(1..=STAMP_FORMAT).contains(&stamp.format) {
            return Err(DiskError::UnknownStampFormat {
                path: p,
                format: stamp.format,
            });
        }
        Ok(stamp)
    }

    fn format_or_check(&self) -> Result<(), DiskError> {
        let root = &self.inner.spec.path;
        let io = |op, path: &Path, source| DiskError::Io {
            disk: self.inner.spec.id.clone(),
            op,
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| io("create", root, e))?;
        if self.stamp_path().exists() {
            let stamp = self.read_stamp()?;
            if stamp.id != self.inner.spec.id {
                return Err(DiskError::WrongDisk {
                    path: root.clone(),
                    expected: self.inner.spec.id.clone(),
                    found: stamp.id,
                });
            }
            self.accept(&stamp);
            self.upgrade_stamp()?;
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
                id: self.inner.spec.id.clone(),
            });
        }
        {
            let _one = self
                .inner
                .stamping
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Stamped by another thread (a heal) meanwhile: check that stamp instead.
            if self.stamp_path().exists() {
                drop(_one);
                return self.format_or_check();
            }
            self.write_stamp(DiskUuid::generate())?;
        }
        self.make_dirs()?;
        tracing::info!(disk = %self.inner.spec.id, path = %root.display(), "formatted new disk");
        Ok(())
    }

    /// Takes a stamp naming this disk: remembers its UUID. Whether it names this disk.
    fn accept(&self, stamp: &Stamp) -> bool {
        if stamp.id != self.inner.spec.id {
            return false;
        }
        if let (Some(u), Ok(mut mine)) = (stamp.uuid, self.inner.uuid.lock()) {
            if mine.is_some_and(|m| m != u) {
                // Another disk stamped with this id took its place (replaced, healed
                // elsewhere): records naming the old UUID count as lost shards, and
                // repair rebuilds them.
                tracing::warn!(disk = %self.inner.spec.id, was = ?*mine, now = %u, "disk UUID changed");
            }
            *mine = Some(u);
        }
        true
    }

    /// Gives a format-1 stamp (id only) its UUID: written once, atomically, beside the
    /// shards it names.
    fn upgrade_stamp(&self) -> Result<(), DiskError> {
        if self.uuid().is_some() {
            return Ok(());
        }
        let _one = self
            .inner
            .stamping
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Another thread may have upgraded it while this one waited.
        let current = self.read_stamp()?;
        if current.uuid.is_some() {
            self.accept(&current);
            return Ok(());
        }
        let uuid = DiskUuid::generate();
        self.write_stamp(uuid)?;
        tracing::info!(disk = %self.inner.spec.id, %uuid, "disk stamp upgraded to format 2");
        Ok(())
    }

    /// Writes the stamp through `tmp/` and a rename: never an empty or half stamp.
    fn write_stamp(&self, uuid: DiskUuid) -> Result<(), DiskError> {
        let root = self.root();
        let stamp = toml::to_string(&Stamp {
            format: STAMP_FORMAT,
            id: self.inner.spec.id.clone(),
            uuid: Some(uuid),
        })
        .map_err(|e| self.plain_io("encode stamp", root, io::Error::other(e)))?;
        let tmp_dir = root.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|e| self.plain_io("create", &tmp_dir, e))?;
        let tmp = tmp_dir.join(STAMP_FILE);
        write_durable(&tmp, stamp.as_bytes()).map_err(|e| self.plain_io("write stamp", &tmp, e))?;
        std::fs::rename(&tmp, self.stamp_path())
            .map_err(|e| self.plain_io("rename stamp", &tmp, e))?;
        sync_dir(root).map_err(|e| self.plain_io("sync", root, e))?;
        if let Ok(mut mine) = self.inner.uuid.lock() {
            *mine = Some(uuid);
        }
        Ok(())
    }

    /// The UUID from the disk's stamp, once read.
    pub fn uuid(&self) -> Option<DiskUuid> {
        self.inner.uuid.lock().ok().and_then(|u| *u)
    }

    fn make_dirs(&self) -> Result<(), DiskError> {
        let root = &self.inner.spec.path;
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
        let tmp = self.inner.spec.path.join("tmp");
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
            tracing::info!(disk = %self.inner.spec.id, swept, "removed unfinished shard files");
        }
    }

    fn tmp_path(&self, name: ShardName) -> PathBuf {
        self.root()
            .join("tmp")
            .join(format!("{name}.{:016x}", rand::random::<u64>()))
    }

    fn writable(&self) -> Result<(), DiskError> {
        let disk = self.inner.spec.id.clone();
        match self.current_state() {
            DiskState::Online => Ok(()),
            DiskState::Full => Err(DiskError::Full { disk }),
            DiskState::Offline => Err(DiskError::Offline { disk }),
        }
    }

    fn writer(&self, name: ShardName, block_size: u32) -> Result<ShardWriter, DiskError> {
        self.writable()?;
        ShardWriter::create(
            self.clone(),
            self.tmp_path(name),
            shard_path(self.root(), name),
            block_size,
        )
    }

    /// A finished shard as the concrete reader ([`FaultyDisk`](super::FaultyDisk) wraps it).
    pub(crate) fn open_reader(
        &self,
        name: ShardName,
        expect: &Expect,
    ) -> Result<ShardReader, DiskError> {
        if self.current_state() == DiskState::Offline && !self.check_usable() {
            return Err(DiskError::Offline {
                disk: self.inner.spec.id.clone(),
            });
        }
        ShardReader::open(self, shard_path(self.root(), name), expect)
    }

    /// A new shard as the concrete writer ([`FaultyDisk`](super::FaultyDisk) wraps it).
    pub(crate) fn create_writer(
        &self,
        name: ShardName,
        block_size: u32,
        replaces: Option<Hash>,
    ) -> Result<ShardWriter, DiskError> {
        let mut w = self.writer(name, block_size)?;
        if let Some(root) = replaces {
            w.set_replaces(root);
        }
        Ok(w)
    }
}

impl ShardStore for LocalDisk {
    fn spec(&self) -> &DiskSpec {
        &self.inner.spec
    }

    fn status(&self) -> DiskStatus {
        let spec = &self.inner.spec;
        let fs = rustix::fs::statvfs(&spec.path).ok();
        DiskStatus {
            id: spec.id.clone(),
            path: spec.path.clone(),
            node: spec.node.clone(),
            site: spec.site.clone(),
            state: self.current_state(),
            uuid: self.uuid(),
            free_bytes: fs.as_ref().map(|v| v.f_bavail.saturating_mul(v.f_frsize)),
            total_bytes: fs.as_ref().map(|v| v.f_blocks.saturating_mul(v.f_frsize)),
            filesystem: rustix::fs::stat(&spec.path).ok().map(|st| st.st_dev),
        }
    }

    fn state(&self) -> DiskState {
        self.current_state()
    }

    fn uuid(&self) -> Option<DiskUuid> {
        LocalDisk::uuid(self)
    }

    fn usable(&self) -> bool {
        self.check_usable()
    }

    fn probe(&self) -> bool {
        self.check_stamp()
    }

    fn heal(&self) -> Result<(), DiskError> {
        self.format_or_check()?;
        self.set_state(DiskState::Online);
        Ok(())
    }

    fn create(&self, name: ShardName, block_size: u32) -> Result<Box<dyn ShardSink>, DiskError> {
        Ok(Box::new(self.create_writer(name, block_size, None)?))
    }

    fn rebuild(
        &self,
        name: ShardName,
        block_size: u32,
        root: Hash,
    ) -> Result<Box<dyn ShardSink>, DiskError> {
        Ok(Box::new(self.create_writer(
            name,
            block_size,
            Some(root),
        )?))
    }

    fn open(&self, name: ShardName, expect: &Expect) -> Result<Box<dyn ShardSource>, DiskError> {
        Ok(Box::new(self.open_reader(name, expect)?))
    }

    fn remove(&self, name: ShardName) -> Result<(), DiskError> {
        let p = shard_path(self.root(), name);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err("remove", &p, e)),
        }
    }

    fn list_older_than(&self, older_than_micros: i64) -> Result<Vec<FoundShard>, DiskError> {
        let mut out = Vec::new();
        let shards = self.root().join("shards");
        let dirs = std::fs::read_dir(&shards).map_err(|e| self.plain_io("list", &shards, e))?;
        for d in dirs.flatten() {
            // One unreadable folder does not hide the others.
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
        Ok(out)
    }

    fn quarantine(&self, file: &FoundShard) -> Result<(), DiskError> {
        let from = self
            .root()
            .join("shards")
            .join(&file.folder)
            .join(&file.name);
        let q = self.root().join("quarantine");
        std::fs::create_dir_all(&q).map_err(|e| self.plain_io("create", &q, e))?;
        std::fs::rename(&from, q.join(&file.name)).map_err(|e| self.plain_io("rename", &from, e))
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
