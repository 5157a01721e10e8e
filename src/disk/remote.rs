//! Shards on another node's disks: [`RemoteDisk`], a [`ShardStore`] over the node-to-node
//! listener, and [`ShardServer`], which answers for this node's own disks.
//!
//! The reader trusts no node's bytes: opening a remote shard fetches its hash list and
//! checks it against the root the metadata holds, and every block fetched is checked
//! against its hash in that list, here. A writer hashes every block it sends and sends
//! the root last; the receiving node makes the shard visible only after that finish frame
//! and answers the root it wrote, which must be the writer's. A stream cut before the
//! finish frame leaves nothing on the peer, as a dropped local sink leaves nothing.
//!
//! The core defines every byte: a call is a format byte and the postcard of a
//! [`ShardCall`], its answer a format byte and the postcard of a [`ShardAnswer`] or a
//! [`WireError`]; an upload is a format byte, a length-prefixed [`UploadHeader`], then
//! frames (`1`, a u32 LE length and a block; or `2` and the 32-byte root, which ends it).
//! The server only carries them ([`ShardTransport`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{
    Corruption, DiskError, DiskState, DiskStatus, DiskUuid, Expect, FoundShard, Hash, ShardName,
    ShardSink, ShardSource, ShardStore,
};
use crate::config::DiskSpec;
use crate::types::SegmentId;

/// The format byte of every shard call, answer and upload this release sends. Another
/// format is refused, never guessed at.
pub const SHARD_FORMAT: u8 = 1;

/// How long one call (an open, a block, a removal) may take before the peer counts as
/// unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a writer waits for the peer to take one block (four are in flight).
const BLOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a writer waits for the peer's durable root after the last block.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a disk whose node could not be reached rests before work is sent again.
const REST: Duration = Duration::from_secs(5);
/// Blocks in flight to one peer per shard: the writer encodes the next stripe while
/// these travel.
const PIPELINE: usize = 4;
/// The largest upload header taken.
const HEADER_MAX: usize = 4096;
/// Bytes a reader fetches ahead from one remote shard in one call (whole blocks, at least
/// one), while the blocks of the call before are verified and used: a GET streams at the
/// link's speed rather than one round trip per block.
const READ_AHEAD: u64 = 2 << 20;
/// The most bytes of blocks one [`ShardCall::ReadBlocks`] may ask for.
const READ_BLOCKS_MAX: u64 = 16 << 20;
/// Batches fetched ahead of their readers at once, in this process (each about
/// [`READ_AHEAD`]: 64 MiB): past it a reader fetches a batch when it needs it, so many
/// GETs at once hold no more memory than this beyond the batch each is reading.
const PREFETCH_BATCHES: usize = 32;

/// The permits of [`PREFETCH_BATCHES`], shared by every remote shard of the process (a
/// memory bound is the process's, whatever the number of disks or readers).
static PREFETCH: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(PREFETCH_BATCHES)));
/// How long a peer that refused the batch calls is read block by block before it is
/// asked again.
const OLDER_PEER_RETRY: Duration = Duration::from_secs(600);
/// The most blocks one [`ShardCall::ReadBlocks`] may ask for (tiny blocks would otherwise
/// make a long list of nothing).
const READ_BLOCKS_COUNT_MAX: u32 = 4096;

const FRAME_BLOCK: u8 = 1;
const FRAME_FINISH: u8 = 2;

/// Why a peer's node listener gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShardTransportError {
    /// No connection, no answer in time, or an answer that is not the peer's (an HTTP
    /// refusal).
    #[error("node listener {addr} unreachable: {reason}")]
    Unreachable {
        /// The peer's node listener.
        addr: String,
        /// What failed.
        reason: String,
    },
}

/// Carries shard calls and uploads to another node's listener (the server: HTTP/2 over
/// mutual TLS), where [`ShardServer`] answers them. Bytes only: the core encodes both ends.
pub trait ShardTransport: Send + Sync + std::fmt::Debug {
    /// Sends one encoded [`ShardCall`]; the peer's encoded answer.
    fn call(
        &self,
        addr: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>>;

    /// Streams an upload, chunk by chunk as they arrive on `body` until it closes; the
    /// peer's encoded answer. If the transport fails the stream part-way, the peer must
    /// see it end (it then keeps nothing).
    fn upload(
        &self,
        addr: String,
        body: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>>;
}

/// One shard by wire: its segment and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireName {
    /// The segment.
    pub segment: SegmentId,
    /// The shard's index in it.
    pub index: u32,
}

impl From<ShardName> for WireName {
    fn from(n: ShardName) -> Self {
        Self {
            segment: n.segment,
            index: n.index as u32,
        }
    }
}

impl From<WireName> for ShardName {
    fn from(n: WireName) -> Self {
        ShardName::new(n.segment, n.index as usize)
    }
}

/// A call to another node's disks (postcard, after [`SHARD_FORMAT`]). New variants go
/// last: older peers then refuse just the new call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardCall {
    /// Open a shard against what the metadata expects: [`ShardAnswer::Hashes`].
    Open {
        /// The disk.
        disk: DiskUuid,
        /// The shard.
        name: WireName,
        /// What the metadata says it holds.
        expect: Expect,
    },
    /// Block `block` (`len` bytes) of a shard: [`ShardAnswer::Block`], checked by the
    /// caller against the hash list it verified.
    Read {
        /// The disk.
        disk: DiskUuid,
        /// The shard.
        name: WireName,
        /// What the metadata says it holds.
        expect: Expect,
        /// The block (its stripe's index).
        block: u64,
        /// Its length in bytes.
        len: u32,
    },
    /// Remove a shard: [`ShardAnswer::Done`].
    Remove {
        /// The disk.
        disk: DiskUuid,
        /// The shard.
        name: WireName,
    },
    /// The disk's shard files older than the bound: [`ShardAnswer::Found`].
    List {
        /// The disk.
        disk: DiskUuid,
        /// µs since the Unix epoch.
        older_than_micros: i64,
    },
    /// Move a listed file into the disk's quarantine: [`ShardAnswer::Done`].
    Quarantine {
        /// The disk.
        disk: DiskUuid,
        /// The file's segment, name and folder as listed.
        file: (String, String, String),
    },
    /// Every disk of the node: [`ShardAnswer::Disks`].
    Status,
    /// Blocks `first..first + count` of a shard (at most 16 MiB together):
    /// [`ShardAnswer::Blocks`], each checked by the caller against the hash list it
    /// verified. A peer older than this call refuses it as a bad request; the caller then
    /// reads block by block.
    ReadBlocks {
        /// The disk.
        disk: DiskUuid,
        /// The shard.
        name: WireName,
        /// What the metadata says it holds.
        expect: Expect,
        /// The first block.
        first: u64,
        /// How many blocks.
        count: u32,
    },
    /// Open a shard and read blocks `first..first + count` of it in one round trip (at
    /// most 16 MiB of blocks): [`ShardAnswer::Opened`]. A peer older than this call
    /// refuses it as a bad request; the caller then opens and reads apart.
    OpenRead {
        /// The disk.
        disk: DiskUuid,
        /// The shard.
        name: WireName,
        /// What the metadata says it holds.
        expect: Expect,
        /// The first block.
        first: u64,
        /// How many blocks.
        count: u32,
    },
    /// The node's wall clock: [`ShardAnswer::Clock`] (the caller compares it with its own
    /// at the middle of the round trip). A peer older than this call refuses it as a bad
    /// request. Appended last.
    Clock,
}

/// A successful answer to a [`ShardCall`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShardAnswer {
    /// The shard's hash list: 32 bytes per block.
    Hashes(Vec<u8>),
    /// A block's bytes.
    Block(Vec<u8>),
    /// Done.
    Done,
    /// Files found: segment, name and folder of each.
    Found(Vec<(String, String, String)>),
    /// The node's disks.
    Disks(Vec<DiskStatus>),
    /// Blocks one after the other, each as long as [`Expect::block_len`] says.
    Blocks(Vec<u8>),
    /// A shard's hash list and its first blocks (as [`ShardAnswer::Blocks`]).
    Opened {
        /// 32 bytes per block.
        hashes: Vec<u8>,
        /// The blocks asked for, one after the other.
        blocks: Vec<u8>,
    },
    /// The node's wall clock when it answered. Appended last.
    Clock(crate::types::Timestamp),
}

/// What a peer's disk refused with, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireErrorKind {
    /// The disk is offline.
    Offline,
    /// The disk is full.
    Full,
    /// No such shard file.
    NotFound,
    /// Another I/O failure.
    Io,
    /// The shard does not match what the metadata expects.
    Corrupt(Corruption),
    /// A finished shard of that name exists.
    AlreadyExists,
    /// The node has no disk with that UUID (replaced, or never its).
    UnknownDisk,
    /// The call or upload is malformed, or of another format.
    BadRequest,
}

/// A refusal from a peer's disk: its kind and the peer's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What kind of refusal.
    pub kind: WireErrorKind,
    /// The peer's words.
    pub message: String,
}

impl WireError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            kind: WireErrorKind::BadRequest,
            message: message.into(),
        }
    }
}

impl From<&DiskError> for WireError {
    fn from(e: &DiskError) -> Self {
        let kind = match e {
            DiskError::Offline { .. } => WireErrorKind::Offline,
            DiskError::Full { .. } => WireErrorKind::Full,
            DiskError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                WireErrorKind::NotFound
            }
            DiskError::Corrupt { what, .. } => WireErrorKind::Corrupt(*what),
            DiskError::AlreadyExists { .. } => WireErrorKind::AlreadyExists,
            _ => WireErrorKind::Io,
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }
}

/// The header of an upload: which shard, its block size, and for a rebuild the root it
/// must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadHeader {
    /// The disk.
    pub disk: DiskUuid,
    /// The shard.
    pub name: WireName,
    /// Bytes of a full block.
    pub block_size: u32,
    /// For a rebuild (repair): the recorded root; it replaces what is at the name.
    pub rebuild: Option<Hash>,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![SHARD_FORMAT];
    // Encoding these types into a Vec cannot fail (no maps with non-string keys, no
    // unsized sequences).
    out.extend(postcard::to_stdvec(v).unwrap_or_default());
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    match bytes.split_first() {
        Some((&SHARD_FORMAT, body)) => {
            postcard::from_bytes(body).map_err(|e| WireError::bad(format!("undecodable: {e}")))
        }
        Some((f, _)) => Err(WireError::bad(format!(
            "shard message format {f}; this release reads {SHARD_FORMAT}"
        ))),
        None => Err(WireError::bad("an empty shard message")),
    }
}

/// Encodes a call ([`ShardTransport::call`]'s body).
pub fn encode_call(call: &ShardCall) -> Vec<u8> {
    encode(call)
}

/// Decodes a peer's answer to a call.
///
/// # Errors
/// The peer's refusal, or [`WireErrorKind::BadRequest`] for bytes that are no answer of
/// this format.
pub fn decode_answer(bytes: &[u8]) -> Result<ShardAnswer, WireError> {
    decode::<Result<ShardAnswer, WireError>>(bytes)?
}

/// What a remote disk knows of its peer's disk.
#[derive(Debug)]
struct Health {
    /// When the node last could not be reached (cleared by any answer).
    unreachable: Option<Instant>,
    /// Since when it has not been reached, through every failure since the last answer.
    down_since: Option<Instant>,
    /// The disk's state as its node last reported it.
    reported: DiskState,
    /// The node's last full report of the disk.
    status: Option<DiskStatus>,
}

/// Shared by a remote disk and its sinks and sources.
#[derive(Debug)]
struct Link {
    spec: DiskSpec,
    uuid: DiskUuid,
    addr: String,
    transport: Arc<dyn ShardTransport>,
    runtime: tokio::runtime::Handle,
    health: Mutex<Health>,
    /// When the peer last refused [`ShardCall::ReadBlocks`] or [`ShardCall::OpenRead`]
    /// (an older release): its shards are then opened and read one block per call, and
    /// asked again after [`OLDER_PEER_RETRY`] (it may have been upgraded).
    older: Mutex<Option<Instant>>,
    /// The node's round trip as last measured (microseconds, smoothed; 0: never).
    round_trip: std::sync::atomic::AtomicU64,
}

impl Health {
    fn failed(&mut self) {
        let now = Instant::now();
        self.unreachable = Some(now);
        self.down_since.get_or_insert(now);
    }

    fn answered(&mut self) {
        self.unreachable = None;
        self.down_since = None;
    }
}

impl Link {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, name: Option<ShardName>) -> std::path::PathBuf {
        match name {
            Some(n) => format!("{}:{}/{n}", self.addr, self.uuid).into(),
            None => format!("{}:{}", self.addr, self.uuid).into(),
        }
    }

    fn unreachable(&self, op: &'static str, e: ShardTransportError) -> DiskError {
        self.health().failed();
        DiskError::Io {
            disk: self.spec.id.clone(),
            op,
            path: self.path(None),
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// The peer's refusal as the seam's error; an offline or full disk's state noted.
    fn refused(&self, op: &'static str, name: Option<ShardName>, e: WireError) -> DiskError {
        let disk = self.spec.id.clone();
        let path = self.path(name);
        match e.kind {
            WireErrorKind::Offline | WireErrorKind::UnknownDisk => {
                self.health().reported = DiskState::Offline;
                DiskError::Offline { disk }
            }
            WireErrorKind::Full => {
                self.health().reported = DiskState::Full;
                DiskError::Full { disk }
            }
            WireErrorKind::NotFound => DiskError::Io {
                disk,
                op,
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, e.message),
            },
            WireErrorKind::Corrupt(what) => DiskError::Corrupt { path, what },
            WireErrorKind::AlreadyExists => DiskError::AlreadyExists { path },
            WireErrorKind::Io | WireErrorKind::BadRequest => DiskError::Io {
                disk,
                op,
                path,
                source: std::io::Error::other(e.message),
            },
        }
    }

    /// Whether the node could not be reached less than [`REST`] ago: calls fail at once
    /// rather than each waiting out a timeout on a node that drops packets.
    /// Whether the peer takes the batch calls (not known to refuse them lately).
    fn ranged(&self) -> bool {
        self.older
            .lock()
            .map(|o| o.is_none_or(|t| t.elapsed() >= OLDER_PEER_RETRY))
            .unwrap_or(true)
    }

    /// The peer refused a batch call: an older release.
    fn is_older(&self) {
        if let Ok(mut o) = self.older.lock() {
            *o = Some(Instant::now());
        }
    }

    fn resting(&self) -> bool {
        self.health()
            .unreachable
            .is_some_and(|t| t.elapsed() < REST)
    }

    fn call(
        &self,
        op: &'static str,
        name: Option<ShardName>,
        call: &ShardCall,
    ) -> Result<ShardAnswer, DiskError> {
        // The probe is what ends a rest.
        if !matches!(call, ShardCall::Status) && self.resting() {
            return Err(DiskError::Offline {
                disk: self.spec.id.clone(),
            });
        }
        let sent = self.send(call);
        self.answer(op, name, crate::runtime::wait(&self.runtime, sent))
    }

    fn send(&self, call: &ShardCall) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
        self.transport
            .call(self.addr.clone(), encode(call), CALL_TIMEOUT)
    }

    /// What the peer answered (or why it did not), as the seam's answer or error.
    fn answer(
        &self,
        op: &'static str,
        name: Option<ShardName>,
        sent: Result<Vec<u8>, ShardTransportError>,
    ) -> Result<ShardAnswer, DiskError> {
        let bytes = sent.map_err(|e| self.unreachable(op, e))?;
        self.health().answered();
        let answer: Result<ShardAnswer, WireError> =
            decode(&bytes).map_err(|e| self.refused(op, name, e))?;
        answer.map_err(|e| self.refused(op, name, e))
    }

    fn unexpected(&self, op: &'static str, a: &ShardAnswer) -> DiskError {
        DiskError::Io {
            disk: self.spec.id.clone(),
            op,
            path: self.path(None),
            source: std::io::Error::other(format!("an unexpected answer {a:?}")),
        }
    }
}

/// A disk of another node of the cluster, reached through its node listener. Its state
/// is what the node last reported, or offline for five seconds after the node could not be
/// reached.
#[derive(Debug, Clone)]
pub struct RemoteDisk {
    link: Arc<Link>,
}

impl RemoteDisk {
    /// The disk `uuid` of the node whose listener is `addr`; `spec` names its id, node
    /// and site (its path is the node's address). `runtime` runs the transport's futures.
    pub fn new(
        spec: DiskSpec,
        uuid: DiskUuid,
        addr: String,
        transport: Arc<dyn ShardTransport>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            link: Arc::new(Link {
                spec,
                uuid,
                addr,
                transport,
                runtime,
                health: Mutex::new(Health {
                    unreachable: None,
                    down_since: None,
                    reported: DiskState::Online,
                    status: None,
                }),
                older: Mutex::new(None),
                round_trip: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Takes a round trip to its node measured now (a cluster refresh times one small
    /// call): kept smoothed (7/8 of the last, 1/8 of the new, as TCP's SRTT, RFC 6298).
    pub fn note_round_trip(&self, rtt: Duration) {
        use std::sync::atomic::Ordering;
        let new = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.link.round_trip.load(Ordering::Relaxed);
        let next = if old == 0 { new } else { (old * 7 + new) / 8 };
        self.link.round_trip.store(next.max(1), Ordering::Relaxed);
    }

    /// The node listener it is reached at.
    pub fn addr(&self) -> &str {
        &self.link.addr
    }

    /// Takes the node's latest report of this disk (from a [`ShardCall::Status`] of the
    /// whole node).
    pub fn update(&self, status: DiskStatus) {
        let mut h = self.link.health();
        h.answered();
        h.reported = status.state;
        h.status = Some(status);
    }

    /// Notes that the node could not be reached now.
    pub fn mark_unreachable(&self) {
        self.link.health().failed();
    }

    /// How long its node has not been reached (every attempt since failed); `None`
    /// while it answers.
    pub fn down_for(&self) -> Option<Duration> {
        self.link.health().down_since.map(|t| t.elapsed())
    }

    /// `hashes` if they are the hash list the metadata's root vouches for (the peer
    /// checked them too; this node believes only the root it holds).
    fn checked(
        &self,
        name: ShardName,
        expect: &Expect,
        hashes: Vec<u8>,
    ) -> Result<Vec<u8>, DiskError> {
        if hashes.len() as u64 != expect.blocks * 32
            || blake3::hash(&hashes).as_bytes() != &expect.root
        {
            return Err(DiskError::Corrupt {
                path: self.link.path(Some(name)),
                what: Corruption::RootMismatch,
            });
        }
        Ok(hashes)
    }

    fn name(&self, n: ShardName) -> WireName {
        n.into()
    }
}

impl ShardStore for RemoteDisk {
    fn spec(&self) -> &DiskSpec {
        &self.link.spec
    }

    fn round_trip(&self) -> Option<Duration> {
        match self
            .link
            .round_trip
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    fn status(&self) -> DiskStatus {
        let state = self.state();
        let h = self.link.health();
        let spec = &self.link.spec;
        let mut s = h.status.clone().unwrap_or_else(|| DiskStatus {
            id: spec.id.clone(),
            path: spec.path.clone(),
            node: spec.node.clone(),
            site: spec.site.clone(),
            state,
            uuid: Some(self.link.uuid),
            free_bytes: None,
            total_bytes: None,
            filesystem: None,
        });
        // This node's view of where it is and how it is reached, the peer's of the rest.
        s.node = spec.node.clone();
        s.site = spec.site.clone();
        s.path = spec.path.clone();
        s.state = state;
        s
    }

    fn state(&self) -> DiskState {
        let h = self.link.health();
        if h.unreachable.is_some() {
            DiskState::Offline
        } else {
            h.reported
        }
    }

    fn uuid(&self) -> Option<DiskUuid> {
        Some(self.link.uuid)
    }

    fn record_name(&self) -> String {
        self.link.uuid.to_string()
    }

    fn usable(&self) -> bool {
        let rested = {
            let h = self.link.health();
            match h.unreachable {
                None => return h.reported == DiskState::Online,
                Some(since) => since.elapsed() >= REST,
            }
        };
        rested && self.probe()
    }

    fn probe(&self) -> bool {
        if let Ok(ShardAnswer::Disks(disks)) = self.link.call("status", None, &ShardCall::Status) {
            match disks.into_iter().find(|d| d.uuid == Some(self.link.uuid)) {
                Some(d) => self.update(d),
                None => self.link.health().reported = DiskState::Offline,
            }
        }
        self.state() == DiskState::Online
    }

    fn heal(&self) -> Result<(), DiskError> {
        Err(DiskError::Io {
            disk: self.link.spec.id.clone(),
            op: "heal",
            path: self.link.path(None),
            source: std::io::Error::other("a disk is brought back on its own node"),
        })
    }

    fn create(&self, name: ShardName, block_size: u32) -> Result<Box<dyn ShardSink>, DiskError> {
        self.start(name, block_size, None)
    }

    fn rebuild(
        &self,
        name: ShardName,
        block_size: u32,
        root: Hash,
    ) -> Result<Box<dyn ShardSink>, DiskError> {
        self.start(name, block_size, Some(root))
    }

    fn open(&self, name: ShardName, expect: &Expect) -> Result<Box<dyn ShardSource>, DiskError> {
        let call = ShardCall::Open {
            disk: self.link.uuid,
            name: self.name(name),
            expect: *expect,
        };
        let hashes = match self.link.call("open", Some(name), &call)? {
            ShardAnswer::Hashes(h) => h,
            other => return Err(self.link.unexpected("open", &other)),
        };
        let hashes = self.checked(name, expect, hashes)?;
        Ok(Box::new(RemoteSource::new(
            self.link.clone(),
            name,
            *expect,
            hashes,
        )))
    }

    fn open_reading(
        &self,
        name: ShardName,
        expect: &Expect,
        blocks: std::ops::Range<u64>,
    ) -> Result<Box<dyn ShardSource>, DiskError> {
        let apart = || {
            let source = self.open(name, expect)?;
            source.read_ahead(blocks.end);
            Ok(source)
        };
        if blocks.start >= blocks.end.min(expect.blocks) || !self.link.ranged() {
            return apart();
        }
        if self.link.resting() {
            return Err(DiskError::Offline {
                disk: self.link.spec.id.clone(),
            });
        }
        let mut source = RemoteSource::new(self.link.clone(), name, *expect, Vec::new());
        source.read_ahead(blocks.end);
        let range = source.batch(blocks.start);
        let call = ShardCall::OpenRead {
            disk: self.link.uuid,
            name: self.name(name),
            expect: *expect,
            first: range.start,
            count: (range.end - range.start) as u32,
        };
        let sent = crate::runtime::wait(&self.link.runtime, self.link.send(&call));
        let bytes = sent.map_err(|e| self.link.unreachable("open", e))?;
        self.link.health().answered();
        let answer: Result<ShardAnswer, WireError> =
            decode(&bytes).map_err(|e| self.link.refused("open", Some(name), e))?;
        match answer {
            Ok(ShardAnswer::Opened { hashes, blocks }) => {
                source.hashes = self.checked(name, expect, hashes)?;
                let ready = source.split(&range, blocks)?;
                let ahead = source.ahead.get_mut().unwrap_or_else(|p| p.into_inner());
                ahead.first = range.start;
                ahead.ready = ready.into();
                Ok(Box::new(source))
            }
            Ok(other) => Err(self.link.unexpected("open", &other)),
            // An older peer cannot decode the call: open, then read, apart.
            Err(e) if e.kind == WireErrorKind::BadRequest => {
                self.link.is_older();
                apart()
            }
            // A bad block among the first ones: the shard opens apart, and its good
            // blocks still read (the bad one fails alone).
            Err(WireError {
                kind: WireErrorKind::Corrupt(Corruption::BlockHash { .. }),
                ..
            }) => apart(),
            Err(e) => Err(self.link.refused("open", Some(name), e)),
        }
    }

    fn remove(&self, name: ShardName) -> Result<(), DiskError> {
        let call = ShardCall::Remove {
            disk: self.link.uuid,
            name: self.name(name),
        };
        match self.link.call("remove", Some(name), &call)? {
            ShardAnswer::Done => Ok(()),
            other => Err(self.link.unexpected("remove", &other)),
        }
    }

    fn list_older_than(&self, older_than_micros: i64) -> Result<Vec<FoundShard>, DiskError> {
        let call = ShardCall::List {
            disk: self.link.uuid,
            older_than_micros,
        };
        match self.link.call("list", None, &call)? {
            ShardAnswer::Found(files) => Ok(files
                .into_iter()
                .map(|(segment, name, folder)| FoundShard {
                    segment,
                    name,
                    folder,
                })
                .collect()),
            other => Err(self.link.unexpected("list", &other)),
        }
    }

    fn quarantine(&self, file: &FoundShard) -> Result<(), DiskError> {
        let call = ShardCall::Quarantine {
            disk: self.link.uuid,
            file: (file.segment.clone(), file.name.clone(), file.folder.clone()),
        };
        match self.link.call("quarantine", None, &call)? {
            ShardAnswer::Done => Ok(()),
            other => Err(self.link.unexpected("quarantine", &other)),
        }
    }
}

impl RemoteDisk {
    fn start(
        &self,
        name: ShardName,
        block_size: u32,
        rebuild: Option<Hash>,
    ) -> Result<Box<dyn ShardSink>, DiskError> {
        let (reported, unreachable) = {
            let h = self.link.health();
            (h.reported, h.unreachable.is_some())
        };
        let disk = self.link.spec.id.clone();
        if unreachable {
            return Err(DiskError::Offline { disk });
        }
        match reported {
            DiskState::Offline => return Err(DiskError::Offline { disk }),
            DiskState::Full => return Err(DiskError::Full { disk }),
            DiskState::Online => {}
        }
        let header = encode(&UploadHeader {
            disk: self.link.uuid,
            name: self.name(name),
            block_size,
            rebuild,
        });
        let mut first = BytesMut::with_capacity(4 + header.len());
        first.put_u8(SHARD_FORMAT);
        // The header's own format byte is the upload's; the length covers the rest.
        first.put_u32_le(header.len() as u32 - 1);
        first.extend_from_slice(&header[1..]);
        let (tx, rx) = tokio::sync::mpsc::channel(PIPELINE);
        let answer = self
            .link
            .runtime
            .spawn(self.link.transport.upload(self.link.addr.clone(), rx));
        let mut sink = RemoteSink {
            link: self.link.clone(),
            name,
            tx: Some(tx),
            answer: Some(answer),
            hashes: Vec::new(),
        };
        sink.send("create", first.freeze())?;
        Ok(Box::new(sink))
    }
}

/// A shard being streamed to a peer. Dropped before `finish`, its stream closes without
/// the finish frame and the peer keeps nothing.
struct RemoteSink {
    link: Arc<Link>,
    name: ShardName,
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    answer: Option<tokio::task::JoinHandle<Result<Vec<u8>, ShardTransportError>>>,
    hashes: Vec<u8>,
}

impl RemoteSink {
    fn send(&mut self, op: &'static str, chunk: Bytes) -> Result<(), DiskError> {
        let Some(tx) = &self.tx else {
            return Err(self.failed(op, "the upload ended"));
        };
        if self.link.resting() {
            // Found unreachable meanwhile (by this write or another): give up now.
            self.abandon();
            return Err(DiskError::Offline {
                disk: self.link.spec.id.clone(),
            });
        }
        let sent = crate::runtime::wait(&self.link.runtime, tx.send_timeout(chunk, BLOCK_TIMEOUT));
        match sent {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.abandon();
                Err(self.link.unreachable(
                    op,
                    ShardTransportError::Unreachable {
                        addr: self.link.addr.clone(),
                        reason: format!("the peer took no block within {BLOCK_TIMEOUT:?}"),
                    },
                ))
            }
            Err(tokio::sync::mpsc::error::SendTimeoutError::Closed(_)) => {
                // The upload ended (refused or cut): its answer, there now, says why.
                self.tx = None;
                Err(self
                    .answer(op)
                    .err()
                    .unwrap_or_else(|| self.failed(op, "the upload ended early")))
            }
        }
    }

    /// Ends the upload without its finish frame, not waiting for the peer: it keeps
    /// nothing.
    fn abandon(&mut self) {
        self.tx = None;
        if let Some(a) = self.answer.take() {
            a.abort();
        }
    }

    fn failed(&self, op: &'static str, why: &str) -> DiskError {
        DiskError::Io {
            disk: self.link.spec.id.clone(),
            op,
            path: self.link.path(Some(self.name)),
            source: std::io::Error::other(why.to_owned()),
        }
    }

    /// The peer's answer to the upload: the root it wrote.
    fn answer(&mut self, op: &'static str) -> Result<Hash, DiskError> {
        let Some(mut answer) = self.answer.take() else {
            return Err(self.failed(op, "the upload ended"));
        };
        // A second at a time, so that a node found unreachable meanwhile (by the refresh
        // or another call) ends the wait at once. Made inside the runtime: a timer needs
        // its reactor.
        let start = Instant::now();
        let joined = loop {
            let slice = crate::runtime::wait(&self.link.runtime, async {
                tokio::time::timeout(Duration::from_secs(1), &mut answer).await
            });
            if let Ok(j) = slice {
                break Some(j);
            }
            if self.link.resting() || start.elapsed() >= UPLOAD_TIMEOUT {
                answer.abort();
                break None;
            }
        };
        let bytes = match joined {
            Some(Ok(Ok(b))) => b,
            Some(Ok(Err(e))) => return Err(self.link.unreachable(op, e)),
            Some(Err(e)) => return Err(self.failed(op, &format!("the upload task ended: {e}"))),
            None => {
                return Err(self.link.unreachable(
                    op,
                    ShardTransportError::Unreachable {
                        addr: self.link.addr.clone(),
                        reason: format!(
                            "no answer within {:?} (or the node found unreachable meanwhile)",
                            start.elapsed()
                        ),
                    },
                ));
            }
        };
        self.link.health().answered();
        let answer: Result<Hash, WireError> =
            decode(&bytes).map_err(|e| self.link.refused(op, Some(self.name), e))?;
        answer.map_err(|e| self.link.refused(op, Some(self.name), e))
    }
}

impl ShardSink for RemoteSink {
    fn append(&mut self, block: &[u8]) -> Result<(), DiskError> {
        self.hashes
            .extend_from_slice(blake3::hash(block).as_bytes());
        let mut frame = BytesMut::with_capacity(5 + block.len());
        frame.put_u8(FRAME_BLOCK);
        frame.put_u32_le(block.len() as u32);
        frame.extend_from_slice(block);
        self.send("write", frame.freeze())
    }

    fn finish(mut self: Box<Self>) -> Result<Hash, DiskError> {
        let root = *blake3::hash(&self.hashes).as_bytes();
        let mut frame = BytesMut::with_capacity(33);
        frame.put_u8(FRAME_FINISH);
        frame.extend_from_slice(&root);
        self.send("finish", frame.freeze())?;
        self.tx = None;
        let written = self.answer("finish")?;
        if written != root {
            return Err(DiskError::Corrupt {
                path: self.link.path(Some(self.name)),
                what: Corruption::RootMismatch,
            });
        }
        Ok(root)
    }
}

/// A remote shard whose hash list was checked against the metadata's root here.
struct RemoteSource {
    link: Arc<Link>,
    name: ShardName,
    expect: Expect,
    hashes: Vec<u8>,
    /// Blocks below this will be read in order ([`ShardSource::read_ahead`]; 0: no hint).
    until: std::sync::atomic::AtomicU64,
    /// Blocks below this are read one per call: a batch that held them was refused at a
    /// bad block, and the good ones before it must not be condemned with it.
    single_until: std::sync::atomic::AtomicU64,
    ahead: Mutex<Ahead>,
}

type Pending = tokio::task::JoinHandle<Result<Vec<u8>, ShardTransportError>>;

/// Blocks fetched ahead of the reader, and the call fetching the next ones.
#[derive(Default)]
struct Ahead {
    /// The index of `ready`'s first block.
    first: u64,
    /// Fetched blocks, not yet checked against their hashes.
    ready: std::collections::VecDeque<Vec<u8>>,
    /// The call for blocks `range`, under way, and its permit of [`PREFETCH`].
    pending: Option<(
        std::ops::Range<u64>,
        Pending,
        tokio::sync::OwnedSemaphorePermit,
    )>,
    /// The permit of the prefetched batch in `ready`, released with it.
    ready_permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for RemoteSource {
    fn drop(&mut self) {
        if let Ok(mut a) = self.ahead.lock()
            && let Some((_, call, _permit)) = a.pending.take()
        {
            call.abort();
        }
    }
}

impl RemoteSource {
    fn new(link: Arc<Link>, name: ShardName, expect: Expect, hashes: Vec<u8>) -> Self {
        Self {
            link,
            name,
            expect,
            hashes,
            until: std::sync::atomic::AtomicU64::new(0),
            single_until: std::sync::atomic::AtomicU64::new(0),
            ahead: Mutex::new(Ahead::default()),
        }
    }

    fn corrupt(&self, what: Corruption) -> DiskError {
        DiskError::Corrupt {
            path: self.link.path(Some(self.name)),
            what,
        }
    }

    /// The blocks one call fetches from `first`: whole blocks of about [`READ_AHEAD`]
    /// bytes, none past the hint.
    fn batch(&self, first: u64) -> std::ops::Range<u64> {
        let until = self
            .until
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(self.expect.blocks);
        let per_call = (READ_AHEAD / u64::from(self.expect.block_size.max(1))).max(1);
        first..until.min(first + per_call).max(first + 1)
    }

    fn read_blocks(&self, blocks: &std::ops::Range<u64>) -> ShardCall {
        ShardCall::ReadBlocks {
            disk: self.link.uuid,
            name: self.name.into(),
            expect: self.expect,
            first: blocks.start,
            count: (blocks.end - blocks.start) as u32,
        }
    }

    /// Splits a [`ShardAnswer::Blocks`] for `blocks` into its blocks.
    fn split(
        &self,
        blocks: &std::ops::Range<u64>,
        bytes: Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, DiskError> {
        // Not a bad block: an answer of another shape than asked for.
        let bad = || DiskError::Io {
            disk: self.link.spec.id.clone(),
            op: "read",
            path: self.link.path(Some(self.name)),
            source: std::io::Error::other("blocks of other lengths than asked for"),
        };
        let mut out = Vec::with_capacity((blocks.end - blocks.start) as usize);
        let mut at = 0usize;
        for s in blocks.clone() {
            let len = self.expect.block_len(s).ok_or_else(bad)?;
            out.push(bytes.get(at..at + len).ok_or_else(bad)?.to_vec());
            at += len;
        }
        if at != bytes.len() {
            return Err(bad());
        }
        Ok(out)
    }

    /// Block `s`, unchecked: from what was fetched ahead, from the call under way, or
    /// fetched now with the blocks after it; the next batch is then asked for. `None`
    /// when the peer does not know [`ShardCall::ReadBlocks`].
    fn fetch(&self, s: u64) -> Result<Option<Vec<u8>>, DiskError> {
        let mut ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let a = &mut *ahead;
        let have = |a: &Ahead| s >= a.first && s < a.first + a.ready.len() as u64;
        if !have(a) {
            a.ready.clear();
            a.ready_permit = None;
            let blocks = match a.pending.take() {
                Some((range, call, permit)) if range.contains(&s) => {
                    let sent = crate::runtime::wait(&self.link.runtime, call).unwrap_or_else(|e| {
                        Err(ShardTransportError::Unreachable {
                            addr: self.link.addr.clone(),
                            reason: e.to_string(),
                        })
                    });
                    a.ready_permit = Some(permit);
                    (range, sent)
                }
                other => {
                    if let Some((_, call, _permit)) = other {
                        call.abort();
                    }
                    let range = self.batch(s);
                    if self.link.resting() {
                        return Err(DiskError::Offline {
                            disk: self.link.spec.id.clone(),
                        });
                    }
                    let sent = self.link.send(&self.read_blocks(&range));
                    (range, crate::runtime::wait(&self.link.runtime, sent))
                }
            };
            let (range, sent) = blocks;
            let bytes = sent.map_err(|e| self.link.unreachable("read", e))?;
            self.link.health().answered();
            let answer: Result<ShardAnswer, WireError> =
                decode(&bytes).map_err(|e| self.link.refused("read", Some(self.name), e))?;
            match answer {
                Ok(ShardAnswer::Blocks(bytes)) => {
                    a.first = range.start;
                    a.ready = self.split(&range, bytes)?.into();
                }
                Ok(other) => return Err(self.link.unexpected("read", &other)),
                // An older peer cannot decode the call.
                Err(e) if e.kind == WireErrorKind::BadRequest => return Ok(None),
                Err(e) => return Err(self.link.refused("read", Some(self.name), e)),
            }
        }
        // Blocks before `s` were skipped by the reader: dropped.
        while a.first < s {
            a.ready.pop_front();
            a.first += 1;
        }
        let block = a
            .ready
            .pop_front()
            .ok_or_else(|| self.corrupt(Corruption::BadTrailer))?;
        a.first += 1;
        if a.ready.is_empty() {
            a.ready_permit = None;
        }
        let next = a.first + a.ready.len() as u64;
        if a.pending.is_none()
            && next
                < self
                    .until
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .min(self.expect.blocks)
            && !self.link.resting()
            // Within the process's budget; else the batch is fetched when it is needed.
            && let Ok(permit) = PREFETCH.clone().try_acquire_owned()
        {
            let range = self.batch(next);
            let call = self
                .link
                .runtime
                .spawn(self.link.send(&self.read_blocks(&range)));
            a.pending = Some((range, call, permit));
        }
        Ok(Some(block))
    }

    /// Block `s` in its own call (no hint, or a peer without [`ShardCall::ReadBlocks`]).
    fn fetch_one(&self, s: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let call = ShardCall::Read {
            disk: self.link.uuid,
            name: self.name.into(),
            expect: self.expect,
            block: s,
            len: len as u32,
        };
        match self.link.call("read", Some(self.name), &call)? {
            ShardAnswer::Block(b) => Ok(b),
            other => Err(self.link.unexpected("read", &other)),
        }
    }
}

impl ShardSource for RemoteSource {
    fn read_block(&self, s: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        use std::sync::atomic::Ordering::Relaxed;
        let h = s as usize * 32;
        let Some(expected) = self.hashes.get(h..h + 32) else {
            return Err(self.corrupt(Corruption::BadTrailer));
        };
        let ahead = s < self.until.load(Relaxed)
            && s >= self.single_until.load(Relaxed)
            && self.link.ranged();
        let bytes = if ahead {
            match self.fetch(s) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.link.is_older();
                    self.fetch_one(s, buf.len())?
                }
                // The peer refused the batch at its bad block: this block, and those up
                // to the bad one, one per call.
                Err(DiskError::Corrupt {
                    what: Corruption::BlockHash { block },
                    ..
                }) => {
                    self.single_until
                        .fetch_max(block.saturating_add(1), Relaxed);
                    self.fetch_one(s, buf.len())?
                }
                Err(e) => return Err(e),
            }
        } else {
            self.fetch_one(s, buf.len())?
        };
        if bytes.len() != buf.len() || blake3::hash(&bytes).as_bytes() != expected {
            return Err(self.corrupt(Corruption::BlockHash { block: s }));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    fn hashes(&self) -> &[u8] {
        &self.hashes
    }

    fn read_ahead(&self, until: u64) {
        self.until
            .store(until, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The blocks `first..first + count` of a shard that `expect` describes, each with its
/// length; refused past the shard's end or above [`READ_BLOCKS_MAX`] bytes.
fn blocks_asked(expect: &Expect, first: u64, count: u32) -> Result<Vec<(u64, usize)>, WireError> {
    if count > READ_BLOCKS_COUNT_MAX
        || u64::from(count) * u64::from(expect.block_size.max(1)) > READ_BLOCKS_MAX
    {
        return Err(WireError::bad("more blocks than one call carries"));
    }
    (first..first.saturating_add(u64::from(count)))
        .map(|s| {
            expect
                .block_len(s)
                .map(|len| (s, len))
                .ok_or_else(|| WireError::bad("a block outside the shard"))
        })
        .collect()
}

/// `blocks` of `source`, each verified, one after the other.
fn read_blocks(source: &dyn ShardSource, blocks: &[(u64, usize)]) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; blocks.iter().map(|(_, len)| len).sum()];
    let mut at = 0;
    for &(s, len) in blocks {
        source
            .read_block(s, &mut out[at..at + len])
            .map_err(|e| WireError::from(&e))?;
        at += len;
    }
    Ok(out)
}

/// Answers other nodes' shard calls and uploads for this node's own disks.
#[derive(Clone)]
pub struct ShardServer {
    disks: Vec<Arc<dyn ShardStore>>,
    clock: Option<crate::clock::SharedClock>,
}

impl std::fmt::Debug for ShardServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardServer")
            .field("disks", &self.disks)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

impl ShardServer {
    /// Serves `disks` (this node's).
    pub fn new(disks: Vec<Arc<dyn ShardStore>>) -> Self {
        Self { disks, clock: None }
    }

    /// Answers [`ShardCall::Clock`] from `clock` (the node's wall clock).
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    fn disk(&self, uuid: DiskUuid) -> Result<&Arc<dyn ShardStore>, WireError> {
        self.disks
            .iter()
            .find(|d| d.uuid() == Some(uuid))
            .ok_or_else(|| WireError {
                kind: WireErrorKind::UnknownDisk,
                message: format!("this node has no disk {uuid}"),
            })
    }

    /// Answers one encoded [`ShardCall`] (on a blocking thread: it does disk I/O).
    pub fn call(&self, body: &[u8]) -> Vec<u8> {
        encode(&decode::<ShardCall>(body).and_then(|c| self.answer(c)))
    }

    fn answer(&self, call: ShardCall) -> Result<ShardAnswer, WireError> {
        let wire = |e: DiskError| WireError::from(&e);
        match call {
            ShardCall::Open { disk, name, expect } => {
                // Opening checks the trailer and hash list against the expectation.
                let source = self.disk(disk)?.open(name.into(), &expect).map_err(wire)?;
                Ok(ShardAnswer::Hashes(source.hashes().to_vec()))
            }
            ShardCall::Read {
                disk,
                name,
                expect,
                block,
                len,
            } => {
                if len > expect.block_size || block >= expect.blocks {
                    return Err(WireError::bad("a block outside the shard"));
                }
                let source = self.disk(disk)?.open(name.into(), &expect).map_err(wire)?;
                let mut buf = vec![0u8; len as usize];
                source.read_block(block, &mut buf).map_err(wire)?;
                Ok(ShardAnswer::Block(buf))
            }
            ShardCall::Remove { disk, name } => {
                self.disk(disk)?.remove(name.into()).map_err(wire)?;
                Ok(ShardAnswer::Done)
            }
            ShardCall::List {
                disk,
                older_than_micros,
            } => {
                let found = self
                    .disk(disk)?
                    .list_older_than(older_than_micros)
                    .map_err(wire)?;
                Ok(ShardAnswer::Found(
                    found
                        .into_iter()
                        .map(|f| (f.segment, f.name, f.folder))
                        .collect(),
                ))
            }
            ShardCall::Quarantine {
                disk,
                file: (segment, name, folder),
            } => {
                // A name and folder as this node's listing makes them: never a path
                // elsewhere.
                let plain = |s: &str| {
                    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
                };
                if !plain(&name) || !plain(&folder) {
                    return Err(WireError::bad("a file name that is not a shard's"));
                }
                self.disk(disk)?
                    .quarantine(&FoundShard {
                        segment,
                        name,
                        folder,
                    })
                    .map_err(wire)?;
                Ok(ShardAnswer::Done)
            }
            ShardCall::Status => Ok(ShardAnswer::Disks(
                self.disks.iter().map(|d| d.status()).collect(),
            )),
            ShardCall::Clock => match &self.clock {
                Some(c) => Ok(ShardAnswer::Clock(c.now())),
                None => Err(WireError {
                    kind: WireErrorKind::BadRequest,
                    message: "this node serves no clock".into(),
                }),
            },
            ShardCall::ReadBlocks {
                disk,
                name,
                expect,
                first,
                count,
            } => {
                let blocks = blocks_asked(&expect, first, count)?;
                // One open for the batch: the trailer and hash list are checked once.
                let source = self.disk(disk)?.open(name.into(), &expect).map_err(wire)?;
                Ok(ShardAnswer::Blocks(read_blocks(source.as_ref(), &blocks)?))
            }
            ShardCall::OpenRead {
                disk,
                name,
                expect,
                first,
                count,
            } => {
                let blocks = blocks_asked(&expect, first, count)?;
                let source = self.disk(disk)?.open(name.into(), &expect).map_err(wire)?;
                Ok(ShardAnswer::Opened {
                    blocks: read_blocks(source.as_ref(), &blocks)?,
                    hashes: source.hashes().to_vec(),
                })
            }
        }
    }

    /// Receives one upload, pulling its chunks from `next` until it returns `None` (on a
    /// blocking thread); the encoded answer. The shard becomes visible only at the finish
    /// frame, and stays only if its root is the writer's.
    pub fn upload(&self, next: impl FnMut() -> Option<Bytes>) -> Vec<u8> {
        encode(&self.receive(Chunks {
            next,
            buf: BytesMut::new(),
        }))
    }

    fn receive<F: FnMut() -> Option<Bytes>>(&self, mut c: Chunks<F>) -> Result<Hash, WireError> {
        let cut = || WireError::bad("the upload ended without its finish frame");
        let format = c.take(1).ok_or_else(cut)?;
        if format[0] != SHARD_FORMAT {
            return Err(WireError::bad(format!(
                "shard upload format {}; this release reads {SHARD_FORMAT}",
                format[0]
            )));
        }
        let len = c.u32().ok_or_else(cut)? as usize;
        if len > HEADER_MAX {
            return Err(WireError::bad("an upload header too long"));
        }
        let header: UploadHeader = postcard::from_bytes(&c.take(len).ok_or_else(cut)?)
            .map_err(|e| WireError::bad(format!("undecodable upload header: {e}")))?;
        // The largest block a node is configured with (`NodeConfig::validate`): a peer's
        // lengths never size an allocation beyond it.
        if !(1..=16 << 20).contains(&header.block_size) {
            return Err(WireError::bad("a block size outside 1 B..16 MiB"));
        }
        let disk = self.disk(header.disk)?;
        let name: ShardName = header.name.into();
        let wire = |e: DiskError| WireError::from(&e);
        let mut sink = match header.rebuild {
            Some(root) => disk.rebuild(name, header.block_size, root),
            None => disk.create(name, header.block_size),
        }
        .map_err(wire)?;
        let mut short = false;
        loop {
            let tag = c.take(1).ok_or_else(cut)?;
            match tag[0] {
                FRAME_BLOCK => {
                    let len = c.u32().ok_or_else(cut)?;
                    if len > header.block_size || short {
                        return Err(WireError::bad(
                            "a block longer than the block size, or after the short last one",
                        ));
                    }
                    short = len < header.block_size;
                    let block = c.take(len as usize).ok_or_else(cut)?;
                    sink.append(&block).map_err(wire)?;
                }
                FRAME_FINISH => {
                    let root = c.take(32).ok_or_else(cut)?;
                    let written = sink.finish().map_err(wire)?;
                    if written[..] != root[..] {
                        // Bytes changed on the way: the writer's shard is not this one.
                        if header.rebuild.is_none() {
                            let _ = disk.remove(name);
                        }
                        return Err(WireError::from(&DiskError::Corrupt {
                            path: name.to_string().into(),
                            what: Corruption::RootMismatch,
                        }));
                    }
                    return Ok(written);
                }
                other => return Err(WireError::bad(format!("an unknown upload frame {other}"))),
            }
        }
    }
}

/// An upload's bytes as they arrive, taken in the pieces its format names.
struct Chunks<F> {
    next: F,
    buf: BytesMut,
}

impl<F: FnMut() -> Option<Bytes>> Chunks<F> {
    fn take(&mut self, n: usize) -> Option<Bytes> {
        while self.buf.len() < n {
            let chunk = (self.next)()?;
            self.buf.extend_from_slice(&chunk);
        }
        Some(self.buf.split_to(n).freeze())
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::LocalDisk;

    /// Carries the bytes to a [`ShardServer`] in this process: everything but the
    /// sockets, which the cluster's end-to-end tests cover.
    #[derive(Debug)]
    struct Loopback(ShardServer);

    impl ShardTransport for Loopback {
        fn call(
            &self,
            _addr: String,
            body: Vec<u8>,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
            let server = self.0.clone();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || server.call(&body))
                    .await
                    .map_err(|e| ShardTransportError::Unreachable {
                        addr: "loopback".into(),
                        reason: e.to_string(),
                    })
            })
        }

        fn upload(
            &self,
            _addr: String,
            mut body: tokio::sync::mpsc::Receiver<Bytes>,
        ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
            let server = self.0.clone();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || server.upload(|| body.blocking_recv()))
                    .await
                    .map_err(|e| ShardTransportError::Unreachable {
                        addr: "loopback".into(),
                        reason: e.to_string(),
                    })
            })
        }
    }

    /// Disk `d0` of node `b` under `dir`, served: its spec, its UUID, its server.
    fn served(dir: &std::path::Path) -> (DiskSpec, DiskUuid, ShardServer) {
        let spec = DiskSpec {
            id: "d0".into(),
            path: dir.join("d0"),
            node: "b".into(),
            site: "site1".into(),
        };
        let local = Arc::new(LocalDisk::open(spec.clone()).expect("open"));
        let uuid = local.uuid().expect("stamped");
        (spec, uuid, ShardServer::new(vec![local]))
    }

    /// [`served`]'s disk as another node's, through a [`Loopback`].
    fn loopback_disk(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> RemoteDisk {
        let (spec, uuid, server) = served(dir);
        RemoteDisk::new(
            spec,
            uuid,
            "loopback".into(),
            Arc::new(Loopback(server)),
            rt.handle().clone(),
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn the_remote_disk_keeps_the_rules() {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        crate::disk::conformance::run(dir.path(), &|spec| {
            let local = Arc::new(LocalDisk::open(spec.clone()).expect("open"));
            let uuid = local.uuid().expect("stamped");
            let server = ShardServer::new(vec![local as Arc<dyn ShardStore>]);
            Arc::new(RemoteDisk::new(
                spec,
                uuid,
                "loopback".into(),
                Arc::new(Loopback(server)),
                rt.handle().clone(),
            )) as Arc<dyn ShardStore>
        });
    }

    /// A loopback whose answers to block reads arrive with their last byte flipped.
    #[derive(Debug)]
    struct Tampering(Loopback);

    impl ShardTransport for Tampering {
        fn call(
            &self,
            addr: String,
            body: Vec<u8>,
            timeout: Duration,
        ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
            let read = matches!(
                decode::<ShardCall>(&body),
                Ok(ShardCall::Read { .. }
                    | ShardCall::Open { .. }
                    | ShardCall::ReadBlocks { .. }
                    | ShardCall::OpenRead { .. })
            );
            let answer = self.0.call(addr, body, timeout);
            Box::pin(async move {
                let mut a = answer.await?;
                if read && let Some(last) = a.last_mut() {
                    *last ^= 1;
                }
                Ok(a)
            })
        }

        fn upload(
            &self,
            addr: String,
            body: tokio::sync::mpsc::Receiver<Bytes>,
        ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
            self.0.upload(addr, body)
        }
    }

    #[test]
    fn a_block_changed_on_the_way_is_caught_here() {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let (spec, uuid, server) = served(dir.path());
        let remote = |t: Arc<dyn ShardTransport>| {
            RemoteDisk::new(
                spec.clone(),
                uuid,
                "loopback".into(),
                t,
                rt.handle().clone(),
            )
        };
        let honest = remote(Arc::new(Loopback(server.clone())));
        let name = ShardName::new(SegmentId([9; 16]), 1);
        let mut sink = honest.create(name, 8).expect("create");
        sink.append(b"abcdefgh").expect("append");
        sink.append(b"ijk").expect("append");
        let root = sink.finish().expect("finish");
        let expect = Expect {
            block_size: 8,
            blocks: 2,
            data_len: 11,
            root,
        };
        let mut buf = [0u8; 3];
        honest
            .open(name, &expect)
            .expect("open")
            .read_block(1, &mut buf)
            .expect("read");
        assert_eq!(&buf, b"ijk");
        // A hash list changed on the way is refused here (the peer checked the true one).
        let lying = remote(Arc::new(Tampering(Loopback(server.clone()))));
        assert!(matches!(
            lying.open(name, &expect).err(),
            Some(DiskError::Corrupt {
                what: Corruption::RootMismatch,
                ..
            })
        ));
        // A block changed on the way, under a true hash list, is refused here.
        let source = honest.open(name, &expect).expect("open");
        let lying_source =
            RemoteSource::new(lying.link.clone(), name, expect, source.hashes().to_vec());
        assert!(matches!(
            lying_source.read_block(1, &mut buf),
            Err(DiskError::Corrupt {
                what: Corruption::BlockHash { block: 1 },
                ..
            })
        ));
        // And the last block fetched with the hash list, in one call.
        let opened = lying
            .open_reading(name, &expect, 0..2)
            .expect("the hash list came unchanged");
        let mut first = [0u8; 8];
        opened
            .read_block(0, &mut first)
            .expect("block 0 came unchanged");
        assert!(matches!(
            opened.read_block(1, &mut buf),
            Err(DiskError::Corrupt {
                what: Corruption::BlockHash { block: 1 },
                ..
            })
        ));
        // And one of the blocks fetched ahead in one call.
        let lying_source =
            RemoteSource::new(lying.link.clone(), name, expect, source.hashes().to_vec());
        lying_source.read_ahead(2);
        let mut first = [0u8; 8];
        lying_source
            .read_block(0, &mut first)
            .expect("block 0 came unchanged");
        assert_eq!(&first, b"abcdefgh");
        assert!(matches!(
            lying_source.read_block(1, &mut buf),
            Err(DiskError::Corrupt {
                what: Corruption::BlockHash { block: 1 },
                ..
            })
        ));
        // Another root than the metadata's: refused here, whatever the peer says.
        let other = Expect {
            root: [1; 32],
            ..expect
        };
        assert!(matches!(
            honest.open(name, &other).err(),
            Some(DiskError::Corrupt {
                what: Corruption::RootMismatch,
                ..
            })
        ));
    }

    /// A loopback that counts opens and block calls; as an `older` peer it answers
    /// [`ShardCall::ReadBlocks`] and [`ShardCall::OpenRead`] as a release without them
    /// does: a call it cannot decode.
    #[derive(Debug)]
    struct Counting {
        inner: Loopback,
        older: bool,
        open: std::sync::atomic::AtomicU32,
        open_read: std::sync::atomic::AtomicU32,
        read: std::sync::atomic::AtomicU32,
        read_blocks: std::sync::atomic::AtomicU32,
    }

    impl ShardTransport for Counting {
        fn call(
            &self,
            addr: String,
            body: Vec<u8>,
            timeout: Duration,
        ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
            use std::sync::atomic::Ordering::SeqCst;
            let (counter, new) = match decode::<ShardCall>(&body) {
                Ok(ShardCall::Open { .. }) => (Some(&self.open), false),
                Ok(ShardCall::OpenRead { .. }) => (Some(&self.open_read), true),
                Ok(ShardCall::Read { .. }) => (Some(&self.read), false),
                Ok(ShardCall::ReadBlocks { .. }) => (Some(&self.read_blocks), true),
                _ => (None, false),
            };
            if let Some(c) = counter {
                c.fetch_add(1, SeqCst);
            }
            if new && self.older {
                return self.inner.call(addr, vec![SHARD_FORMAT, 200], timeout);
            }
            self.inner.call(addr, body, timeout)
        }

        fn upload(
            &self,
            addr: String,
            body: tokio::sync::mpsc::Receiver<Bytes>,
        ) -> BoxFuture<'static, Result<Vec<u8>, ShardTransportError>> {
            self.inner.upload(addr, body)
        }
    }

    /// A reader told how far it will read fetches blocks in batches of about
    /// [`READ_AHEAD`] bytes, each block still checked; from a peer without the batch call
    /// it reads block by block.
    #[test]
    fn a_reader_fetches_ahead_in_batches_and_falls_back_for_an_older_peer() {
        use std::sync::atomic::Ordering::SeqCst;
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let (spec, uuid, server) = served(dir.path());
        let block = 256 << 10;
        let blocks = 20u64;
        let data: Vec<Vec<u8>> = (0..blocks)
            .map(|s| {
                let len = if s + 1 == blocks { 1000 } else { block };
                (0..len).map(|i| (i as u64 * 7 + s) as u8).collect()
            })
            .collect();
        for older in [false, true] {
            let transport = Arc::new(Counting {
                inner: Loopback(server.clone()),
                older,
                open: 0.into(),
                open_read: 0.into(),
                read: 0.into(),
                read_blocks: 0.into(),
            });
            let remote = RemoteDisk::new(
                spec.clone(),
                uuid,
                "loopback".into(),
                transport.clone(),
                rt.handle().clone(),
            );
            let n = ShardName::new(SegmentId([5; 16]), usize::from(older));
            let mut sink = remote.create(n, block as u32).expect("create");
            for b in &data {
                sink.append(b).expect("append");
            }
            let expect = Expect {
                block_size: block as u32,
                blocks,
                data_len: data.iter().map(|b| b.len() as u64).sum(),
                root: sink.finish().expect("finish"),
            };
            // Opened and read ahead apart, then opened with the first batch.
            let apart = remote.open(n, &expect).expect("open");
            apart.read_ahead(blocks);
            let together = remote.open_reading(n, &expect, 0..blocks).expect("open");
            for source in [apart, together] {
                for (s, want) in data.iter().enumerate() {
                    let mut buf = vec![0u8; want.len()];
                    source.read_block(s as u64, &mut buf).expect("read");
                    assert!(&buf == want, "block {s} (older peer: {older})");
                }
            }
            let count = |c: &std::sync::atomic::AtomicU32| c.load(SeqCst);
            let calls = [
                count(&transport.open),
                count(&transport.open_read),
                count(&transport.read),
                count(&transport.read_blocks),
            ];
            if older {
                // The first call it does not know (the open-and-read) is refused: from
                // then on both shards are opened and read apart, block by block.
                assert_eq!(calls, [2, 1, 40, 0], "open, read block by block");
            } else {
                // 2 MiB of 256 KiB blocks a call: 20 blocks in 3 calls, the first with
                // the hash list the second time.
                assert_eq!(calls, [1, 1, 0, 5]);
            }
        }
    }

    /// Readers fetch ahead within the process's budget: with more remote shards being
    /// read than [`PREFETCH_BATCHES`], no more batches than that are under way at once
    /// (the others are fetched when read), and every block still reads.
    #[test]
    fn read_ahead_stays_within_the_process_budget() {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let remote = loopback_disk(dir.path(), &rt);
        // Blocks of 1 MiB, two to a batch: reading block 0 fetches 0..2, then asks for
        // the last (small) block ahead.
        let name = ShardName::new(SegmentId([8; 16]), 0);
        let block = 1u32 << 20;
        let blocks: Vec<Vec<u8>> = vec![
            vec![0; block as usize],
            vec![1; block as usize],
            vec![2; 10],
        ];
        let mut sink = remote.create(name, block).expect("create");
        for b in &blocks {
            sink.append(b).expect("append");
        }
        let expect = Expect {
            block_size: block,
            blocks: 3,
            data_len: 2 * u64::from(block) + 10,
            root: sink.finish().expect("finish"),
        };
        let sources: Vec<RemoteSource> = (0..PREFETCH_BATCHES + 8)
            .map(|_| {
                let s = RemoteSource::new(
                    remote.link.clone(),
                    name,
                    expect,
                    remote.open(name, &expect).expect("open").hashes().to_vec(),
                );
                s.read_ahead(3);
                let mut buf = vec![0u8; block as usize];
                s.read_block(0, &mut buf).expect("block 0");
                s
            })
            .collect();
        let pending = sources
            .iter()
            .filter(|s| s.ahead.lock().is_ok_and(|a| a.pending.is_some()))
            .count();
        assert!(
            pending <= PREFETCH_BATCHES,
            "{pending} batches fetched ahead at once"
        );
        assert!(
            pending >= 1,
            "nothing was fetched ahead: the test shows nothing"
        );
        for s in &sources {
            for (i, want) in blocks.iter().enumerate().skip(1) {
                let mut buf = vec![0u8; want.len()];
                s.read_block(i as u64, &mut buf).expect("block");
                assert!(&buf == want, "block {i}");
            }
        }
    }

    /// A bad block on the peer's disk fails only itself: the blocks before it in its
    /// batch, and after it, still read (opened with the first batch or apart).
    #[test]
    fn a_bad_block_on_the_peer_condemns_no_other_block_of_its_batch() {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let remote = loopback_disk(dir.path(), &rt);
        let name = ShardName::new(SegmentId([7; 16]), 2);
        let blocks: [&[u8]; 4] = [b"aaaaaaaa", b"bbbbbbbb", b"cccccccc", b"dd"];
        let mut sink = remote.create(name, 8).expect("create");
        for b in blocks {
            sink.append(b).expect("append");
        }
        let expect = Expect {
            block_size: 8,
            blocks: 4,
            data_len: 26,
            root: sink.finish().expect("finish"),
        };
        // Block 1's first byte changed on the peer's disk.
        let file = walk(&dir.path().join("d0").join("shards"));
        let mut perms = std::fs::metadata(&file).expect("meta").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&file, perms).expect("writable");
        let mut bytes = std::fs::read(&file).expect("read");
        bytes[8] ^= 1;
        std::fs::write(&file, bytes).expect("write");
        let opened = remote.open_reading(name, &expect, 0..4).expect("opens");
        let apart = remote.open(name, &expect).expect("opens");
        apart.read_ahead(4);
        for source in [opened, apart] {
            for (s, want) in blocks.iter().enumerate() {
                let mut buf = vec![0u8; want.len()];
                let read = source.read_block(s as u64, &mut buf);
                if s == 1 {
                    assert!(matches!(
                        read,
                        Err(DiskError::Corrupt {
                            what: Corruption::BlockHash { block: 1 },
                            ..
                        })
                    ));
                } else {
                    read.unwrap_or_else(|e| panic!("block {s}: {e}"));
                    assert_eq!(&buf, want);
                }
            }
        }
    }

    /// The one file under `dir`.
    fn walk(dir: &std::path::Path) -> std::path::PathBuf {
        let mut found = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).expect("dir").flatten() {
                if e.path().is_dir() {
                    todo.push(e.path());
                } else {
                    found.push(e.path());
                }
            }
        }
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    #[test]
    fn an_unknown_disk_or_format_is_refused_and_an_unreachable_node_rests() {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = DiskSpec {
            id: "d0".into(),
            path: dir.path().join("d0"),
            node: "b".into(),
            site: "site1".into(),
        };
        let server = ShardServer::new(Vec::new());
        let remote = RemoteDisk::new(
            spec,
            DiskUuid([3; 16]),
            "loopback".into(),
            Arc::new(Loopback(server.clone())),
            rt.handle().clone(),
        );
        assert!(matches!(
            remote.remove(ShardName::new(SegmentId([1; 16]), 0)),
            Err(DiskError::Offline { .. })
        ));
        let answer: Result<ShardAnswer, WireError> =
            decode(&server.call(&[9, 0])).expect("decodes");
        assert_eq!(answer.expect_err("refused").kind, WireErrorKind::BadRequest);
        // The current bytes of a call, pinned: older peers decode them.
        assert_eq!(encode_call(&ShardCall::Status), [SHARD_FORMAT, 5]);
        remote.mark_unreachable();
        assert_eq!(remote.state(), DiskState::Offline);
        assert!(!remote.usable(), "a node just found unreachable rests");
    }

    /// Every call, answer and upload header as this release sends them, pinned: a peer
    /// of the next release must decode these bytes (a change needs a new format byte).
    #[test]
    fn the_wire_keeps_its_bytes() {
        let disk = DiskUuid([1; 16]);
        let name = WireName {
            segment: SegmentId([2; 16]),
            index: 3,
        };
        let expect = Expect {
            block_size: 8,
            blocks: 2,
            data_len: 11,
            root: [4; 32],
        };
        let status = DiskStatus {
            id: "d0".into(),
            path: "/d0".into(),
            node: "n".into(),
            site: "s".into(),
            state: DiskState::Full,
            uuid: Some(disk),
            free_bytes: Some(5),
            total_bytes: None,
            filesystem: Some(6),
        };
        let answers: Vec<Result<ShardAnswer, WireError>> = vec![
            Ok(ShardAnswer::Hashes(vec![1, 2])),
            Ok(ShardAnswer::Block(vec![3])),
            Ok(ShardAnswer::Done),
            Ok(ShardAnswer::Found(vec![(
                "s".into(),
                "n".into(),
                "f".into(),
            )])),
            Ok(ShardAnswer::Disks(vec![status])),
            Err(WireError {
                kind: WireErrorKind::Corrupt(Corruption::BlockHash { block: 1 }),
                message: "m".into(),
            }),
            Err(WireError::bad("b")),
            Ok(ShardAnswer::Blocks(vec![5, 6])),
            Ok(ShardAnswer::Opened {
                hashes: vec![7],
                blocks: vec![8, 9],
            }),
            Ok(ShardAnswer::Clock(crate::types::Timestamp(5))),
        ];
        let calls = [
            ShardCall::Open { disk, name, expect },
            ShardCall::Read {
                disk,
                name,
                expect,
                block: 1,
                len: 3,
            },
            ShardCall::Remove { disk, name },
            ShardCall::List {
                disk,
                older_than_micros: 5,
            },
            ShardCall::Quarantine {
                disk,
                file: ("s".into(), "n".into(), "f".into()),
            },
            ShardCall::Status,
            ShardCall::ReadBlocks {
                disk,
                name,
                expect,
                first: 1,
                count: 1,
            },
            ShardCall::OpenRead {
                disk,
                name,
                expect,
                first: 0,
                count: 2,
            },
            ShardCall::Clock,
        ];
        let mut got: Vec<String> = calls.iter().map(|c| hex::encode(encode_call(c))).collect();
        got.extend(answers.iter().map(|a| hex::encode(encode(a))));
        got.push(hex::encode(encode(&UploadHeader {
            disk,
            name,
            block_size: 8,
            rebuild: Some([4; 32]),
        })));
        let root: Result<Hash, WireError> = Ok([4; 32]);
        got.push(hex::encode(encode(&root)));
        let pinned: [&str; 21] = PINNED;
        assert_eq!(got, pinned);
        // And every pinned call decodes to what it was made from.
        for (c, hex) in calls.iter().zip(pinned) {
            let bytes = hex::decode(hex).expect("hex");
            assert_eq!(&decode::<ShardCall>(&bytes).expect("decodes"), c);
        }
    }

    const PINNED: [&str; 21] = [
        "0100203031303130313031303130313031303130313031303130313031303130313031020202020202020202020202020202020308020b0404040404040404040404040404040404040404040404040404040404040404",
        "0101203031303130313031303130313031303130313031303130313031303130313031020202020202020202020202020202020308020b04040404040404040404040404040404040404040404040404040404040404040103",
        "01022030313031303130313031303130313031303130313031303130313031303130310202020202020202020202020202020203",
        "01032030313031303130313031303130313031303130313031303130313031303130310a",
        "01042030313031303130313031303130313031303130313031303130313031303130310173016e0166",
        "0105",
        "0106203031303130313031303130313031303130313031303130313031303130313031020202020202020202020202020202020308020b04040404040404040404040404040404040404040404040404040404040404040101",
        "0107203031303130313031303130313031303130313031303130313031303130313031020202020202020202020202020202020308020b04040404040404040404040404040404040404040404040404040404040404040002",
        "0108",
        "010000020102",
        "0100010103",
        "010002",
        "010003010173016e0166",
        "01000401026430032f6430016e017302012030313031303130313031303130313031303130313031303130313031303130310105000106",
        "0101040301016d",
        "0101070162",
        "010005020506",
        "0100060107020809",
        "0100070a",
        "01203031303130313031303130313031303130313031303130313031303130313031020202020202020202020202020202020308010404040404040404040404040404040404040404040404040404040404040404",
        "01000404040404040404040404040404040404040404040404040404040404040404",
    ];
}
