//! Content digests a client can ask for: the MD5 ETag and the S3 checksum algorithms.

use serde::{Deserialize, Serialize};

/// S3's additional checksum algorithms (`x-amz-checksum-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
    Crc64Nvme,
}

/// A checksum value as stored with a version: the raw digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: Vec<u8>,
}

/// The running MD5 of a body, whose hex form is a single-part object's ETag.
#[derive(Clone, Default)]
pub struct Md5(md5::Md5);

impl Md5 {
    pub fn update(&mut self, bytes: &[u8]) {
        use md5::Digest;
        self.0.update(bytes);
    }
    pub fn finish(self) -> [u8; 16] {
        use md5::Digest;
        self.0.finalize().into()
    }
}
