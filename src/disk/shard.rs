//! The shard file: block `s` of every stripe `s` of one segment, then the BLAKE3 hash of
//! each block, then a fixed trailer.
//!
//! ```text
//! [block 0][block 1]...[block n-1]      blocks at offset s * block_size; the last may be short
//! [hash 0][hash 1]...[hash n-1]         32 bytes each: BLAKE3 of the block
//! trailer, 64 bytes:
//!   magic "STELE-SH" | format u32 LE | block_size u32 | blocks u64 | data_len u64 | root [32]
//! ```
//! `root` is BLAKE3 of the hash list; the version's metadata keeps the root of every shard, so
//! a reader trusts a block only when its hash is in a list whose root the metadata vouches for.
//! A range read verifies just the blocks it touches.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::local::{LocalDisk, sync_dir};
use super::{DiskError, ShardSink, ShardSource};

const MAGIC: &[u8; 8] = b"STELE-SH";
const FORMAT: u32 = 1;
const TRAILER: usize = 64;

pub use crate::types::Hash;

/// How a shard file differs from what the metadata says it holds ([`Expect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Corruption {
    /// The file is shorter than its blocks, hash list and trailer: a torn or cut file.
    #[error("file is shorter than its trailer says")]
    Truncated,
    /// The file is too long, or its trailer's magic, format, block size, block count or
    /// data length is not what the metadata expects.
    #[error("trailer is unreadable or does not match the metadata")]
    BadTrailer,
    /// The hash list (or the root in the trailer) does not hash to the recorded root, or a
    /// rebuilt shard came out with another root: no block of the file can be trusted.
    #[error("hash list does not match the root in the metadata")]
    RootMismatch,
    /// One block's bytes do not match its hash: only that stripe's block is bad, the rest
    /// of the file can still be read.
    #[error("block {block} does not match its hash")]
    BlockHash {
        /// The block's index, which is its stripe's index.
        block: u64,
    },
}

/// What the metadata says a shard file must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// Bytes of a full block (the segment's geometry).
    pub block_size: u32,
    /// Blocks in the file: the segment's stripes.
    pub blocks: u64,
    /// Bytes of block data, before the hash list and trailer.
    pub data_len: u64,
    /// BLAKE3 of the hash list, as recorded when the shard was written.
    pub root: Hash,
}

impl Expect {
    /// Bytes of block `s`: `block_size`, the last block what remains of `data_len`;
    /// `None` past the last block.
    pub fn block_len(&self, s: u64) -> Option<usize> {
        if s >= self.blocks {
            return None;
        }
        let start = s.checked_mul(u64::from(self.block_size))?;
        let len = u64::from(self.block_size).min(self.data_len.checked_sub(start)?);
        usize::try_from(len).ok()
    }
}

/// Writes one shard file under a temporary name. Dropped before `ShardWriter::finish`, the
/// temporary file is removed.
pub struct ShardWriter {
    disk: LocalDisk,
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    block_size: u32,
    hashes: Vec<u8>,
    data_len: u64,
    /// A rebuilt shard (repair): it must hash to this root, and it replaces whatever is at
    /// its name (missing or corrupt) by an atomic rename.
    replaces: Option<Hash>,
    /// Bytes written since the last background flush started.
    unflushed: u64,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// A large shard file is flushed to disk in the background every this many bytes, so the
/// final fsync only has the tail left and disk writes overlap with encoding.
const FLUSH_EVERY: u64 = 8 << 20;

impl ShardWriter {
    pub(super) fn create(
        disk: LocalDisk,
        tmp: PathBuf,
        dest: PathBuf,
        block_size: u32,
    ) -> Result<Self, DiskError> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| disk.io_err("create", &tmp, e))?;
        Ok(Self {
            disk,
            file: Some(file),
            tmp,
            dest,
            block_size,
            hashes: Vec::new(),
            data_len: 0,
            replaces: None,
            unflushed: 0,
            flusher: None,
        })
    }

    pub(crate) fn set_replaces(&mut self, root: Hash) {
        self.replaces = Some(root);
    }

    /// Appends the next block. Every block but the last must be `block_size` long.
    pub(crate) fn append(&mut self, block: &[u8]) -> Result<(), DiskError> {
        let hash = blake3::hash(block);
        let file = self.file.as_mut().ok_or_else(|| DiskError::Io {
            disk: self.disk.root_id().to_owned(),
            op: "append",
            path: self.tmp.clone(),
            source: io::Error::other("writer already failed"),
        })?;
        if let Err(e) = file.write_all(block) {
            self.file = None;
            return Err(self.disk.io_err("write", &self.tmp, e));
        }
        self.hashes.extend_from_slice(hash.as_bytes());
        self.data_len += block.len() as u64;
        self.unflushed += block.len() as u64;
        if self.unflushed >= FLUSH_EVERY && self.flusher.as_ref().is_none_or(|f| f.is_finished()) {
            // Best effort: an error here shows up again in the final fsync.
            if let Some(clone) = self.file.as_ref().and_then(|f| f.try_clone().ok()) {
                self.unflushed = 0;
                self.flusher = Some(std::thread::spawn(move || {
                    let _ = clone.sync_data();
                }));
            }
        }
        Ok(())
    }

    /// Writes the hash list and trailer, makes the file read-only and durable, and links it
    /// under its final name (never replacing an existing file). Returns the root hash.
    pub(crate) fn finish(mut self) -> Result<Hash, DiskError> {
        let root = *blake3::hash(&self.hashes).as_bytes();
        let blocks = (self.hashes.len() / 32) as u64;
        let mut trailer = Vec::with_capacity(TRAILER);
        trailer.extend_from_slice(MAGIC);
        trailer.extend_from_slice(&FORMAT.to_le_bytes());
        trailer.extend_from_slice(&self.block_size.to_le_bytes());
        trailer.extend_from_slice(&blocks.to_le_bytes());
        trailer.extend_from_slice(&self.data_len.to_le_bytes());
        trailer.extend_from_slice(&root);
        let file = self.file.take().ok_or_else(|| DiskError::Io {
            disk: self.disk.root_id().to_owned(),
            op: "finish",
            path: self.tmp.clone(),
            source: io::Error::other("writer already failed"),
        })?;
        if let Some(f) = self.flusher.take() {
            let _ = f.join();
        }
        let disk = self.disk.clone();
        let tmp = &self.tmp;
        let mut file = file;
        file.write_all(&self.hashes)
            .and_then(|()| file.write_all(&trailer))
            .map_err(|e| disk.io_err("write", tmp, e))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(|e| disk.io_err("chmod", tmp, e))?;
        file.sync_all().map_err(|e| disk.io_err("fsync", tmp, e))?;
        drop(file);
        if let Some(expected) = self.replaces {
            // Repair: the rebuilt file must be exactly the one the metadata names; it takes
            // the place of the bad one in one rename, never by writing into it.
            if root != expected {
                return Err(DiskError::Corrupt {
                    path: self.dest.clone(),
                    what: Corruption::RootMismatch,
                });
            }
            std::fs::rename(tmp, &self.dest).map_err(|e| disk.io_err("rename", &self.dest, e))?;
            if let Some(dir) = self.dest.parent() {
                sync_dir(dir).map_err(|e| disk.io_err("fsync dir", dir, e))?;
            }
            return Ok(root);
        }
        // A hard link fails if the destination exists: shard files are create-only.
        if let Err(e) = std::fs::hard_link(tmp, &self.dest) {
            if e.kind() == io::ErrorKind::AlreadyExists {
                return Err(DiskError::AlreadyExists {
                    path: self.dest.clone(),
                });
            }
            return Err(disk.io_err("link", &self.dest, e));
        }
        if let Some(dir) = self.dest.parent() {
            sync_dir(dir).map_err(|e| disk.io_err("fsync dir", dir, e))?;
        }
        // The temporary name is left for Drop to remove; it is not needed for durability.
        Ok(root)
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A verified view of a shard file: its hash list has been checked against the root.
pub struct ShardReader {
    disk: String,
    file: File,
    path: PathBuf,
    hashes: Vec<u8>,
    block_size: u32,
}

impl ShardReader {
    pub(super) fn open(
        disk: &LocalDisk,
        path: PathBuf,
        expect: &Expect,
    ) -> Result<Self, DiskError> {
        let corrupt = |what| DiskError::Corrupt {
            path: path.clone(),
            what,
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DiskError::Io {
                    disk: disk.root_id().to_owned(),
                    op: "open",
                    path,
                    source: e,
                });
            }
            Err(e) => return Err(disk.io_err("open", &path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| disk.io_err("stat", &path, e))?
            .len();
        let list_len = expect.blocks * 32;
        let want = expect.data_len + list_len + TRAILER as u64;
        if len != want {
            return Err(corrupt(if len < want {
                Corruption::Truncated
            } else {
                Corruption::BadTrailer
            }));
        }
        let mut trailer = [0u8; TRAILER];
        file.read_exact_at(&mut trailer, len - TRAILER as u64)
            .map_err(|e| disk.io_err("read", &path, e))?;
        let u32_at = |o: usize| {
            u32::from_le_bytes([trailer[o], trailer[o + 1], trailer[o + 2], trailer[o + 3]])
        };
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&trailer[o..o + 8]);
            u64::from_le_bytes(b)
        };
        if &trailer[..8] != MAGIC
            || u32_at(8) != FORMAT
            || u32_at(12) != expect.block_size
            || u64_at(16) != expect.blocks
            || u64_at(24) != expect.data_len
        {
            return Err(corrupt(Corruption::BadTrailer));
        }
        let mut hashes = vec![0u8; list_len as usize];
        file.read_exact_at(&mut hashes, expect.data_len)
            .map_err(|e| disk.io_err("read", &path, e))?;
        if blake3::hash(&hashes).as_bytes() != &expect.root || trailer[32..64] != expect.root {
            return Err(corrupt(Corruption::RootMismatch));
        }
        Ok(Self {
            disk: disk.root_id().to_owned(),
            file,
            path,
            hashes,
            block_size: expect.block_size,
        })
    }

    /// Reads block `s` (of `len` bytes) into `buf` and checks it against its hash.
    pub(crate) fn read_block(&self, s: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let off = s * self.block_size as u64;
        let h = s as usize * 32;
        let Some(expected) = self.hashes.get(h..h + 32) else {
            return Err(DiskError::Corrupt {
                path: self.path.clone(),
                what: Corruption::BadTrailer,
            });
        };
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| DiskError::Io {
                disk: self.disk.clone(),
                op: "read",
                path: self.path.clone(),
                source: e,
            })?;
        if blake3::hash(buf).as_bytes() != expected {
            return Err(DiskError::Corrupt {
                path: self.path.clone(),
                what: Corruption::BlockHash { block: s },
            });
        }
        Ok(())
    }
}

impl ShardSink for ShardWriter {
    fn append(&mut self, block: &[u8]) -> Result<(), DiskError> {
        ShardWriter::append(self, block)
    }
    fn finish(self: Box<Self>) -> Result<Hash, DiskError> {
        ShardWriter::finish(*self)
    }
}

impl ShardSource for ShardReader {
    fn read_block(&self, s: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        ShardReader::read_block(self, s, buf)
    }
    fn hashes(&self) -> &[u8] {
        &self.hashes
    }
}
