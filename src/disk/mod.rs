//! Where shards live: the [`ShardStore`] seam, the local disk behind it, and the shard file
//! format.
//!
//! The engine never touches a file: it asks a [`ShardStore`] to create a shard (a
//! [`ShardSink`] that takes blocks and finishes with the root of their hashes, durable on
//! return), to open one against the root the metadata vouches for (a [`ShardSource`] that
//! hands out only verified blocks), to remove or quarantine one, and for its health. Today
//! every store is a [`LocalDisk`]; a remote shard server (the cluster) is the next
//! implementation, and [`FaultyDisk`] (feature `test-hooks`) injects the faults real disks
//! have. Every implementation passes [`conformance`].
//!
//! Layout of one local disk:
//! ```text
//! <disk>/.stele-disk                      stamp: format version and disk id
//! <disk>/tmp/                             shard files being written (swept at start)
//! <disk>/shards/<xx>/<segment>.<index>    finished shard files, read-only, never rewritten
//! <disk>/quarantine/                      orphan shard files moved aside by scrub
//! ```
//! `xx` is the last byte of the segment id (its random part) in hex. Object keys never
//! appear in a path.
//!
//! The seam is blocking, not async: the engine's data path (erasure coding, BLAKE3, rayon)
//! runs on blocking threads, where a local disk's I/O is blocking too. A remote
//! implementation pipelines behind the same calls (a sink forwards blocks to a connection
//! task through a bounded channel; `finish` waits for the peer's durable root). See
//! ARCHITECTURE.md, "Where shards live".

#[cfg(any(test, feature = "test-hooks"))]
pub mod conformance;
#[cfg(any(test, feature = "test-hooks"))]
pub mod faulty;
pub mod local;
pub mod remote;
pub mod shard;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::DiskSpec;
use crate::types::SegmentId;

#[cfg(any(test, feature = "test-hooks"))]
pub use faulty::{FaultPlan, FaultyDisk};
pub use local::{DiskTiming, LocalDisk};
pub use remote::{RemoteDisk, ShardServer, ShardTransport};
pub use shard::{Corruption, Expect, Hash};

/// What a disk operation failed with. I/O errors carry the operation and the path; a
/// full disk and an offline disk are their own variants, so placement and alerts can tell
/// them apart.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The disk is offline (an earlier I/O error, its stamp gone or naming another disk):
    /// the operation was not tried.
    #[error("disk {disk} is offline")]
    Offline {
        /// The disk's configured id.
        disk: String,
    },
    /// The disk ran out of space (ENOSPC) earlier: it takes no new shards, but its shards
    /// can still be read.
    #[error("disk {disk} is full")]
    Full {
        /// The disk's configured id.
        disk: String,
    },
    /// An I/O call failed. Most such failures change the disk's [`DiskState`] too (ENOSPC
    /// makes it full, others offline); a missing file or a failed block read does not.
    #[error("disk {disk}: {op} {path}: {source}")]
    Io {
        /// The disk's configured id.
        disk: String,
        /// The operation that failed (`create`, `write`, `fsync`, `link`, `read`, ...).
        op: &'static str,
        /// The file or directory it failed on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A shard file does not match what the metadata says it holds, or a rebuilt one does
    /// not hash to the recorded root. The shard is bad, not the disk.
    #[error("shard file {path} is corrupt: {what}")]
    Corrupt {
        /// The shard file.
        path: PathBuf,
        /// What does not match.
        what: Corruption,
    },
    /// A shard of that name is already finished: finishing a new one never replaces it.
    #[error("shard file {path} already exists; shard files are never rewritten")]
    AlreadyExists {
        /// The finished shard file.
        path: PathBuf,
    },
    /// The directory's stamp names another disk: a mount or configuration mix-up. Refused
    /// at start rather than writing into another disk.
    #[error("directory {path} is stamped as disk {found:?} but configured as {expected:?}")]
    WrongDisk {
        /// The disk directory.
        path: PathBuf,
        /// The id in the configuration.
        expected: String,
        /// The id in the stamp.
        found: String,
    },
    /// The directory holds files but no stamp: someone else's data, never formatted over.
    #[error("directory {path} holds files but no disk stamp; refusing to use it as disk {id:?}")]
    Unformatted {
        /// The disk directory.
        path: PathBuf,
        /// The id it is configured as.
        id: String,
    },
    /// The stamp was written by a newer release, whose files this one may not read.
    #[error("disk stamp {path} has format {format}, newer than this release reads")]
    UnknownStampFormat {
        /// The stamp file.
        path: PathBuf,
        /// The format number in it.
        format: u32,
    },
}

/// A disk's identity across nodes and sites: 16 random bytes written into its stamp when it
/// is formatted (or when a format-1 stamp is upgraded). Shard records written since name
/// the disk by it, as 32 lowercase hex digits; older records name it by its node-local id
/// (`d0`), which only the node itself resolves. A replaced disk gets a new UUID: records
/// naming the old one are rebuilt elsewhere by repair.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiskUuid(pub [u8; 16]);

impl DiskUuid {
    /// A fresh random UUID.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Reads 32 hex digits; `None` for anything else (a node-local id such as `d0`).
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        (text.len() == 32 && hex::decode_to_slice(text, &mut out).is_ok()).then_some(Self(out))
    }
}

impl std::fmt::Display for DiskUuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for DiskUuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DiskUuid({self})")
    }
}

impl Serialize for DiskUuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DiskUuid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("a disk UUID is 32 hex digits"))
    }
}

/// One shard: shard `index` (0-based, data shards first) of segment `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardName {
    /// The segment the shard belongs to.
    pub segment: SegmentId,
    /// Which of the segment's K+M shards: 0..K hold data blocks, K..K+M parity blocks.
    pub index: usize,
}

impl ShardName {
    /// Shard `index` of `segment`.
    pub fn new(segment: SegmentId, index: usize) -> Self {
        Self { segment, index }
    }
}

impl std::fmt::Display for ShardName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.segment, self.index)
    }
}

/// A file found among a disk's shards (see [`ShardStore::list_older_than`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundShard {
    /// The segment id as the file name writes it (the part before the first `.`).
    pub segment: String,
    /// The file's name.
    pub name: String,
    /// The shard folder it is in.
    pub(crate) folder: String,
}

/// What the engine reports about a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskState {
    /// Takes new shards and serves reads.
    Online,
    /// Failed (an I/O error, its stamp gone or naming another disk): takes no work until a
    /// probe after a rest finds it well again.
    Offline,
    /// Out of space (ENOSPC): still serves reads, takes no new shards until a probe after a
    /// rest finds it well again.
    Full,
}

/// A disk's place, state and free space, as `/v1/disks` and the watchdog show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskStatus {
    /// The disk's configured, node-local id (`d0`).
    pub id: String,
    /// The disk's directory.
    pub path: PathBuf,
    /// The node the disk belongs to (a failure domain).
    pub node: String,
    /// The site the disk's node is in (the widest failure domain).
    pub site: String,
    /// The state when the status was taken (`Store::disks` probes each disk first).
    pub state: DiskState,
    /// From the disk's stamp, once read (an offline disk's may not be known yet).
    pub uuid: Option<DiskUuid>,
    /// Bytes free for the node's user on the disk's filesystem, if it can be read.
    pub free_bytes: Option<u64>,
    /// The size of the disk's filesystem in bytes, if it can be read.
    pub total_bytes: Option<u64>,
    /// The filesystem's device id: disks on one filesystem share its bytes, so capacity
    /// sums count each filesystem once.
    pub filesystem: Option<u64>,
}

/// A place that holds shard files.
///
/// Rules every implementation keeps (checked by [`conformance`]):
/// - a shard becomes visible under its name only once [`ShardSink::finish`] returned, and
///   then durably; a sink dropped before that leaves nothing visible;
/// - a finished shard is never replaced, except by [`ShardStore::rebuild`] with a file
///   that hashes to the root the metadata names;
/// - a [`ShardSource`] never returns a byte it has not checked against the root;
/// - I/O errors change the disk's [`DiskState`] (ENOSPC makes it full, others offline),
///   and a failed disk is probed again after a rest ([`DiskTiming`]).
pub trait ShardStore: Send + Sync + std::fmt::Debug {
    /// The disk's configured id, node and site (placement reads them).
    fn spec(&self) -> &DiskSpec;
    /// The disk's id.
    fn id(&self) -> &str {
        &self.spec().id
    }
    /// State and free space, without probing.
    fn status(&self) -> DiskStatus;
    /// The last known state.
    fn state(&self) -> DiskState;
    /// The disk's UUID, once its stamp has been read.
    fn uuid(&self) -> Option<DiskUuid>;
    /// How shard records written now name this disk: its UUID, or its configured id while
    /// the UUID is unknown.
    fn record_name(&self) -> String {
        self.uuid()
            .map_or_else(|| self.id().to_owned(), |u| u.to_string())
    }
    /// Whether to send work to the disk now; may probe a disk that has rested.
    fn usable(&self) -> bool;
    /// The round trip to the disk's node as last measured; `None` for a local disk or
    /// one never measured. Reads prefer the nearest shards.
    fn round_trip(&self) -> Option<std::time::Duration> {
        None
    }
    /// Checks now that the disk is still the one configured; returns whether it is online.
    fn probe(&self) -> bool;
    /// Brings an emptied (replaced) disk back: stamps it and marks it online.
    ///
    /// # Errors
    /// [`DiskError::Unformatted`] if the directory holds someone else's files,
    /// [`DiskError::Io`] if it cannot be written.
    fn heal(&self) -> Result<(), DiskError>;
    /// Starts a new shard with blocks of `block_size` bytes (the last may be shorter).
    ///
    /// # Errors
    /// [`DiskError::Offline`] or [`DiskError::Full`] from the disk's state, or
    /// [`DiskError::Io`].
    fn create(&self, name: ShardName, block_size: u32) -> Result<Box<dyn ShardSink>, DiskError>;
    /// Starts the rebuild of a missing or corrupt shard (repair): it replaces whatever is
    /// at `name`, and only if it hashes to `root`
    /// ([`DiskError::Corrupt`] from `finish` otherwise).
    fn rebuild(
        &self,
        name: ShardName,
        block_size: u32,
        root: Hash,
    ) -> Result<Box<dyn ShardSink>, DiskError>;
    /// Opens a finished shard and checks its hash list against `expect`.
    ///
    /// # Errors
    /// [`DiskError::Corrupt`] when the shard does not match, [`DiskError::Io`] when it is
    /// missing or unreadable, [`DiskError::Offline`].
    fn open(&self, name: ShardName, expect: &Expect) -> Result<Box<dyn ShardSource>, DiskError>;
    /// [`ShardStore::open`] for a reader that will read `blocks` in order
    /// ([`ShardSource::read_ahead`]): a store behind a round trip may fetch the first of
    /// them with the hash list, in one call. Errors as `open`'s.
    fn open_reading(
        &self,
        name: ShardName,
        expect: &Expect,
        blocks: std::ops::Range<u64>,
    ) -> Result<Box<dyn ShardSource>, DiskError> {
        let source = self.open(name, expect)?;
        source.read_ahead(blocks.end);
        Ok(source)
    }
    /// Removes a shard; a missing one is not an error. The caller has decided that no
    /// record references it (or the lock layer allowed its version's removal).
    fn remove(&self, name: ShardName) -> Result<(), DiskError>;
    /// The shard files last modified before `older_than_micros` (µs since the Unix epoch),
    /// for the orphan check.
    fn list_older_than(&self, older_than_micros: i64) -> Result<Vec<FoundShard>, DiskError>;
    /// Moves a file found by [`ShardStore::list_older_than`] aside into quarantine: never
    /// deleted, an administrator decides.
    fn quarantine(&self, file: &FoundShard) -> Result<(), DiskError>;
}

/// A shard being written. Dropped before [`ShardSink::finish`], it leaves nothing visible.
pub trait ShardSink: Send {
    /// Appends the next block. Every block but the last must be `block_size` long.
    ///
    /// # Errors
    /// [`DiskError::Io`] (the sink is dead afterwards; drop it).
    fn append(&mut self, block: &[u8]) -> Result<(), DiskError>;
    /// Writes the hash list and trailer, makes the shard durable and visible under its
    /// name (never replacing another, unless rebuilding), and returns its root: BLAKE3 of
    /// the concatenated block hashes.
    ///
    /// # Errors
    /// [`DiskError::AlreadyExists`], [`DiskError::Corrupt`] (a rebuild with the wrong
    /// root), [`DiskError::Io`].
    fn finish(self: Box<Self>) -> Result<Hash, DiskError>;
}

/// A verified view of one finished shard.
pub trait ShardSource: Send + Sync {
    /// Reads block `s` into `buf` (exactly the block's length) and checks it against its
    /// hash.
    ///
    /// # Errors
    /// [`DiskError::Corrupt`] with [`Corruption::BlockHash`] for a bad block,
    /// [`DiskError::Io`] for a failed read.
    fn read_block(&self, s: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// The shard's hash list, checked against the root when it was opened: 32 bytes (the
    /// BLAKE3 of a block) per block.
    fn hashes(&self) -> &[u8];
    /// Tells the source that blocks will be read in order up to `until` (exclusive): a
    /// source behind a round trip fetches ahead, in batches, what it will be asked for;
    /// a local one needs nothing. A hint only: blocks outside it, or out of order, are
    /// still read, and each is still checked against its hash.
    fn read_ahead(&self, until: u64) {
        let _ = until;
    }
}
