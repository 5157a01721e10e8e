//! SHA-256 and Ed25519 (through ring; the crate's only importer of it).

use ring::signature::{self, Ed25519KeyPair, KeyPair};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Whether `sig` is `public`'s Ed25519 signature of `msg` (RFC 8032).
pub(crate) fn ed25519_verify(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public)
        .verify(msg, sig)
        .is_ok()
}

/// An Ed25519 key pair made from its 32-byte seed (RFC 8032's private key).
pub(crate) struct Ed25519 {
    pair: Ed25519KeyPair,
}

impl Ed25519 {
    /// The key pair of `seed`; `None` if ring refuses it.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Option<Self> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .ok()
            .map(|pair| Self { pair })
    }

    /// The public key.
    pub(crate) fn public(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The signature of `msg` (deterministic, RFC 8032).
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }
}
