//! The formats of Stele's audit trail, and their checks, with nothing else: no server, no
//! RocksDB, no async runtime. The node writes with them and an auditor's `stelectl`
//! verifies with them, so an export can be checked offline, and the formats are standard
//! enough that an independent verifier can be written from their specifications.
//!
//! - [`merkle`]: the RFC 6962 Merkle tree (SHA-256, RFC 9162 §2.1), its inclusion and
//!   consistency proofs and their verification.
//! - [`note`]: C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//! - [`checkpoint`]: C2SP transparency-log checkpoints (<https://c2sp.org/tlog-checkpoint>):
//!   origin, tree size and root, inside a signed note.
//! - [`verify`]: the offline check of an exported trail (NDJSON leaves and checkpoints).
//! - [`report`]: signed retention reports, their offline check and their comparison.
//!
//! `ring` (SHA-256, Ed25519) is used only in the private `crypto` module.

#![warn(missing_docs)]

pub mod checkpoint;
mod crypto;
pub mod merkle;
pub mod note;
pub mod report;
pub mod verify;

pub use crypto::Hash;

/// Why a proof, a note or a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    /// A Merkle proof does not prove what it was asked to.
    #[error("invalid proof: {reason}")]
    InvalidProof {
        /// What did not hold.
        reason: &'static str,
    },
    /// A text does not have the shape its format requires.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read: `note`, `checkpoint`, `verifier key`, `signer key`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A signature by a known key does not verify: the note was altered or forged.
    #[error("the signature by {name} does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
    },
    /// No signature on the note is by a key the caller trusts.
    #[error("no signature by a known key")]
    Unverified,
    /// A checkpoint of another log than the one expected.
    #[error("checkpoint of origin {found:?}, expected {expected:?}")]
    OriginMismatch {
        /// The origin the caller expected.
        expected: String,
        /// The origin the checkpoint names.
        found: String,
    },
}
