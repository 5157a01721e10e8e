//! Content digests a client can ask for: the MD5 ETag and the S3 checksum algorithms
//! (`x-amz-checksum-*`), computed while a body streams through the write path.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::crypto;

/// S3's additional checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, the CRC of zlib and Ethernet).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// SHA-1 (an integrity check here, nothing security-related).
    Sha1,
    /// SHA-256.
    Sha256,
    /// CRC-64/NVME.
    Crc64Nvme,
}

impl ChecksumAlgorithm {
    /// Every algorithm S3 offers.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Crc64Nvme,
    ];

    /// The name S3 uses (`CRC32`, ...); the header is `x-amz-checksum-` + lower case.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
        }
    }

    /// The algorithm S3 calls `name`, in any case (`crc32c` or `CRC32C`); `None` for
    /// a name S3 does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// A checksum value as stored with a version: the raw digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// The algorithm that computed it.
    pub algorithm: ChecksumAlgorithm,
    /// The digest, [`ChecksumAlgorithm::digest_len`] bytes, big-endian for the CRCs
    /// (headers carry it in base64).
    pub value: Vec<u8>,
}

impl ChecksumAlgorithm {
    /// The CRC of `a ++ b` from the CRCs of `a` and `b` (`b` being `len_b` bytes long);
    /// `None` for the SHA algorithms, which cannot be combined.
    pub fn combine(self, a: &[u8], b: &[u8], len_b: u64) -> Option<Vec<u8>> {
        use crc_fast::CrcAlgorithm as C;
        let alg = match self {
            ChecksumAlgorithm::Crc32 => C::Crc32IsoHdlc,
            ChecksumAlgorithm::Crc32c => C::Crc32Iscsi,
            ChecksumAlgorithm::Crc64Nvme => C::Crc64Nvme,
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => return None,
        };
        let n = self.digest_len();
        let num = |v: &[u8]| -> Option<u64> {
            (v.len() == n).then(|| v.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
        };
        let c = crc_fast::checksum_combine(alg, num(a)?, num(b)?, len_b);
        Some(c.to_be_bytes()[8 - n..].to_vec())
    }
}

/// A running checksum of one algorithm.
pub struct ChecksumHasher {
    algorithm: ChecksumAlgorithm,
    state: State,
}

enum State {
    Crc(crc_fast::Digest),
    Digest(crypto::Digest),
}

impl ChecksumHasher {
    /// A checksum of `algorithm` over no bytes yet.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        use crc_fast::CrcAlgorithm as C;
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc(crc_fast::Digest::new(C::Crc32IsoHdlc)),
            ChecksumAlgorithm::Crc32c => State::Crc(crc_fast::Digest::new(C::Crc32Iscsi)),
            ChecksumAlgorithm::Crc64Nvme => State::Crc(crc_fast::Digest::new(C::Crc64Nvme)),
            ChecksumAlgorithm::Sha1 => State::Digest(crypto::Digest::sha1()),
            ChecksumAlgorithm::Sha256 => State::Digest(crypto::Digest::sha256()),
        };
        Self { algorithm, state }
    }

    /// Feeds the next bytes of the body.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Crc(d) => d.update(bytes),
            State::Digest(d) => d.update(bytes),
        }
    }

    /// The digest, big-endian for CRCs, as S3 encodes it.
    pub fn finish(self) -> Checksum {
        let value = match self.state {
            State::Crc(d) => {
                let v = d.finalize().to_be_bytes();
                v[8 - self.algorithm.digest_len()..].to_vec()
            }
            State::Digest(d) => d.finish(),
        };
        Checksum {
            algorithm: self.algorithm,
            value,
        }
    }
}

/// The checksum a client asked for, and the value it claims.
#[derive(Clone)]
pub struct ChecksumSpec {
    /// The algorithm the client named, by its checksum header or for its trailer.
    pub algorithm: ChecksumAlgorithm,
    /// The client's value, or where it will come from.
    pub expected: Expected,
}

/// Where the client's value comes from.
#[derive(Clone)]
pub enum Expected {
    /// A request header, known before the body.
    Value(Vec<u8>),
    /// A trailer, known only once the body has been read.
    Trailer(Arc<dyn Fn() -> Option<Vec<u8>> + Send + Sync>),
}

impl std::fmt::Debug for ChecksumSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.expected {
            Expected::Value(_) => "header",
            Expected::Trailer(_) => "trailer",
        };
        write!(f, "ChecksumSpec({}, {from})", self.algorithm.name())
    }
}

/// The running MD5 of a body, whose hex form is a single-part object's ETag.
#[derive(Clone, Default)]
pub struct Md5(md5::Md5);

impl Md5 {
    /// Feeds the next bytes of the body.
    pub fn update(&mut self, bytes: &[u8]) {
        use md5::Digest;
        self.0.update(bytes);
    }
    /// The 16-byte digest.
    pub fn finish(self) -> [u8; 16] {
        use md5::Digest;
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(a: ChecksumAlgorithm, parts: &[&[u8]]) -> String {
        let mut h = ChecksumHasher::new(a);
        for p in parts {
            h.update(p);
        }
        hex::encode(h.finish().value)
    }

    /// Check values of each algorithm for "123456789", fed in pieces.
    #[test]
    fn known_check_values() {
        let parts: &[&[u8]] = &[b"1234", b"56789"];
        assert_eq!(digest(ChecksumAlgorithm::Crc32, parts), "cbf43926");
        assert_eq!(digest(ChecksumAlgorithm::Crc32c, parts), "e3069283");
        assert_eq!(
            digest(ChecksumAlgorithm::Crc64Nvme, parts),
            "ae8b14860a799888"
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Sha1, parts),
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Sha256, parts),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        assert_eq!(
            ChecksumAlgorithm::parse("crc64nvme"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
    }
}
