//! Cryptographic digests, HMAC, randomness and the sealing of secrets (AEAD). Only this
//! module imports `ring`.

use ring::aead::{self, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// `N` bytes from the operating system's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator failing is not recoverable: nothing secret may be made without it.
    if SystemRandom::new().fill(&mut out).is_err() {
        panic!("the operating system's random number generator failed");
    }
    out
}

/// A key that seals secrets (ChaCha20-Poly1305). Built from the node's master key.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl SealKey {
    /// The sealing key made from 32 bytes of key material (the node's master key).
    pub fn new(bytes: &[u8; 32]) -> Self {
        // A 32-byte key is exactly what ChaCha20-Poly1305 takes; this cannot fail.
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .unwrap_or_else(|_| unreachable!("32-byte ChaCha20-Poly1305 key"));
        Self(LessSafeKey::new(key))
    }

    /// Seals `plaintext`, bound to `aad` (which must be given again to open it): a random
    /// 12-byte nonce followed by the ciphertext and its tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<12>();
        let mut buf = plaintext.to_vec();
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf,
            )
            .unwrap_or_else(|_| unreachable!("sealing a small buffer"));
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Opens what [`SealKey::seal`] made with the same `aad`; `None` if it was altered,
    /// sealed under another key, or bound to other data.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + aead::MAX_TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(12);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
        Some(plain.to_vec())
    }
}

/// Compares two secrets without leaking where they differ through timing.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    sha256(a) == sha256(b)
}

/// An incremental SHA-1 or SHA-256.
pub struct Digest(digest::Context);

impl Digest {
    /// A SHA-1 over no bytes yet (S3's `x-amz-checksum-sha1`; not for security).
    pub fn sha1() -> Self {
        Self(digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY))
    }
    /// A SHA-256 over no bytes yet.
    pub fn sha256() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The digest: 20 bytes for SHA-1, 32 for SHA-256.
    pub fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

/// HMAC-SHA256 of `data` under `key` (SigV4 signing).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-1 of `bytes` (S3's `x-amz-checksum-sha1`; not used for anything security-related).
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bytes);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hex::encode(super::hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_binding() {
        let key = super::SealKey::new(&[7; 32]);
        let sealed = key.seal(b"AKID", b"secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(b"AKID", &sealed).as_deref(), Some(&b"secret"[..]));
        assert!(key.open(b"OTHER", &sealed).is_none());
        assert!(
            super::SealKey::new(&[8; 32])
                .open(b"AKID", &sealed)
                .is_none()
        );
        let mut tampered = sealed.clone();
        tampered[14] ^= 1;
        assert!(key.open(b"AKID", &tampered).is_none());
        // A fresh nonce each time.
        assert_ne!(key.seal(b"AKID", b"secret"), sealed);
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(super::sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(super::sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
