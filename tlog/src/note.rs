//! C2SP signed notes (<https://c2sp.org/signed-note>, the format of Go's
//! `golang.org/x/mod/sumdb/note`) with Ed25519 keys.
//!
//! A note is a text — UTF-8 lines, each ending in a newline — then a blank line, then one
//! signature line per signer: an em dash (U+2014), a space, the key name, a space, and the
//! base64 of the key id (4 bytes) followed by the signature of the text. The key id is
//! the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public key)`, 0x01 naming
//! Ed25519. A verifier key is written `name+hex(key id)+base64(0x01 || public key)`, a
//! signer key `PRIVATE+KEY+name+hex(key id)+base64(0x01 || seed)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::TlogError;
use crate::crypto::{Ed25519, ed25519_verify, sha256};

/// The signature type byte of Ed25519 keys.
const ED25519: u8 = 0x01;

/// The longest note accepted, in bytes (Stele's bound; the format sets none).
pub const MAX_NOTE: usize = 1 << 20;

/// The most signature lines a note may carry (Go's `sumdb/note` bound): a note cannot
/// make its reader check signatures without end.
pub const MAX_SIGNATURES: usize = 100;

fn malformed(what: &'static str, reason: impl Into<String>) -> TlogError {
    TlogError::Malformed {
        what,
        reason: reason.into(),
    }
}

/// The key id of the Ed25519 key `public` named `name`.
pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let h = sha256(&[name.as_bytes(), b"\n", &[ED25519], public]);
    [h[0], h[1], h[2], h[3]]
}

/// A key name: non-empty, no whitespace and no `+` (it is split on `+` in key strings).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A public key that checks signatures of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// The key's name (for a log's checkpoints: the log's origin).
    pub name: String,
    /// Its key id.
    pub id: [u8; 4],
    /// The Ed25519 public key.
    pub public: [u8; 32],
}

impl Verifier {
    /// The verifier of `public` under `name`.
    pub fn new(name: &str, public: [u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            id: key_id(name, &public),
            public,
        }
    }

    /// Reads a verifier key string `name+hex(id)+base64(0x01 || public key)`.
    ///
    /// # Errors
    /// [`TlogError::Malformed`]: another shape, another key type, or a key id that is not
    /// the key's.
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let what = "verifier key";
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed(what, "not name+id+key"));
        };
        if !valid_name(name) {
            return Err(malformed(what, "invalid name"));
        }
        let raw = B64
            .decode(key)
            .map_err(|e| malformed(what, format!("key: {e}")))?;
        let Some((&ED25519, public)) = raw.split_first() else {
            return Err(malformed(what, "not an Ed25519 key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| malformed(what, "an Ed25519 key is 32 bytes"))?;
        let v = Self::new(name, public);
        if !id.eq_ignore_ascii_case(&hex(&v.id)) {
            return Err(malformed(what, "the key id is not the key's"));
        }
        Ok(v)
    }

    /// The verifier key string ([`Verifier::parse`] reads it back).
    pub fn encode(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(&self.public);
        format!("{}+{}+{}", self.name, hex(&self.id), B64.encode(raw))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A private key that signs notes under one name.
pub struct Signer {
    name: String,
    id: [u8; 4],
    key: Ed25519,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("id", &hex(&self.id))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signer of the Ed25519 key with `seed` (its 32-byte private key) under `name`.
    ///
    /// # Errors
    /// [`TlogError::Malformed`]: an invalid name or a seed ring refuses.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, TlogError> {
        if !valid_name(name) {
            return Err(malformed("signer key", "invalid name"));
        }
        let key = Ed25519::from_seed(seed).ok_or_else(|| malformed("signer key", "bad seed"))?;
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, &key.public()),
            key,
        })
    }

    /// Reads a signer key string `PRIVATE+KEY+name+hex(id)+base64(0x01 || seed)`.
    ///
    /// # Errors
    /// [`TlogError::Malformed`]: another shape or key type, or a key id not the key's.
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let what = "signer key";
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed(what, "no PRIVATE+KEY+ prefix"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed(what, "not name+id+key"));
        };
        let raw = B64
            .decode(key)
            .map_err(|e| malformed(what, format!("key: {e}")))?;
        let Some((&ED25519, seed)) = raw.split_first() else {
            return Err(malformed(what, "not an Ed25519 key"));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| malformed(what, "an Ed25519 seed is 32 bytes"))?;
        let s = Self::from_seed(name, &seed)?;
        if id != hex(&s.id) {
            return Err(malformed(what, "the key id is not the key's"));
        }
        Ok(s)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier of this key.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(&self.name, self.key.public())
    }
}

/// Signs `text` with each of `signers`: the note's bytes.
///
/// # Errors
/// [`TlogError::Malformed`]: a text that is empty, does not end in a newline, holds a
/// blank line or a control character other than newline, or is past [`MAX_NOTE`].
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, TlogError> {
    check_text(text)?;
    let mut out = format!("{text}\n");
    for s in signers {
        let mut blob = s.id.to_vec();
        blob.extend_from_slice(&s.key.sign(text.as_bytes()));
        out.push_str(&format!("\u{2014} {} {}\n", s.name, B64.encode(blob)));
    }
    Ok(out)
}

fn check_text(text: &str) -> Result<(), TlogError> {
    let what = "note";
    if text.is_empty() || !text.ends_with('\n') {
        return Err(malformed(what, "the text must end in a newline"));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(malformed(what, "the text holds a blank line"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(malformed(what, "the text holds a control character"));
    }
    if text.len() > MAX_NOTE {
        return Err(malformed(what, "too long"));
    }
    Ok(())
}

/// A note whose signatures were checked: its text, and the names of the known keys that
/// signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The signed text (ending in a newline).
    pub text: String,
    /// The known keys whose signatures verified, in the note's order.
    pub signed_by: Vec<String>,
}

/// Checks the note `note` against the keys `known`. Signatures by unknown keys are
/// ignored (the format's rule: a note may carry cosignatures its reader does not know).
///
/// # Errors
/// [`TlogError::Malformed`] for a note of another shape; [`TlogError::BadSignature`] if a
/// signature by a known key does not verify; [`TlogError::Unverified`] if no known key
/// signed it.
pub fn open(note: &str, known: &[Verifier]) -> Result<Opened, TlogError> {
    let what = "note";
    if note.len() > MAX_NOTE {
        return Err(malformed(what, "too long"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed(what, "no signature block"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    check_text(text)?;
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(malformed(what, "no signature lines"));
    }
    if sigs.contains('\r') {
        return Err(malformed(what, "a carriage return in the signature lines"));
    }
    if sigs.lines().count() > MAX_SIGNATURES {
        return Err(malformed(what, "too many signatures"));
    }
    let mut signed_by = Vec::new();
    for line in sigs.lines() {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| malformed(what, "a signature line without its em dash"))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| malformed(what, "a signature line without a signature"))?;
        if !valid_name(name) {
            return Err(malformed(what, "a signature by an invalid name"));
        }
        let blob = B64
            .decode(blob)
            .map_err(|e| malformed(what, format!("signature: {e}")))?;
        if blob.len() < 5 {
            return Err(malformed(what, "a signature shorter than its key id"));
        }
        let (id, sig) = blob.split_at(4);
        let Some(v) = known.iter().find(|v| v.name == name && v.id == id) else {
            continue;
        };
        if !ed25519_verify(&v.public, text.as_bytes(), sig) {
            return Err(TlogError::BadSignature {
                name: name.to_owned(),
            });
        }
        if !signed_by.iter().any(|n| n == name) {
            signed_by.push(name.to_owned());
        }
    }
    if signed_by.is_empty() {
        return Err(TlogError::Unverified);
    }
    Ok(Opened {
        text: text.to_owned(),
        signed_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of Go's golang.org/x/mod/sumdb/note, which the C2SP format restates:
    // an independent implementation's key, text and signature.
    const PETER_VERIFIER: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const SIGNATURE: &str = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

    fn peter_note() -> String {
        format!("{TEXT}\n\u{2014} PeterNeumann {SIGNATURE}\n")
    }

    #[test]
    fn the_reference_note_verifies_and_signing_reproduces_it() {
        let v = Verifier::parse(PETER_VERIFIER).expect("verifier");
        assert_eq!(v.encode(), PETER_VERIFIER);
        let opened = open(&peter_note(), std::slice::from_ref(&v)).expect("opens");
        assert_eq!(opened.text, TEXT);
        assert_eq!(opened.signed_by, ["PeterNeumann"]);
        // Ed25519 is deterministic: our signer makes the very same note.
        let s = Signer::parse(PETER_SIGNER).expect("signer");
        assert_eq!(s.verifier(), v);
        assert_eq!(sign(TEXT, &[&s]).expect("sign"), peter_note());
    }

    #[test]
    fn altered_forged_or_unknown_notes_are_refused() {
        let v = Verifier::parse(PETER_VERIFIER).expect("verifier");
        let known = std::slice::from_ref(&v);
        let altered = peter_note().replace("cryptography", "cryptographY");
        assert_eq!(
            open(&altered, known),
            Err(TlogError::BadSignature {
                name: "PeterNeumann".into()
            })
        );
        // Signed again by another key of the same name: its key id differs, unknown.
        let forger = Signer::from_seed("PeterNeumann", &[9; 32]).expect("signer");
        let forged = sign(TEXT, &[&forger]).expect("sign");
        assert_eq!(open(&forged, known), Err(TlogError::Unverified));
        // An unknown cosignature beside the known one is ignored.
        let other = Signer::from_seed("witness.example", &[3; 32]).expect("signer");
        let both = format!(
            "{}{}",
            peter_note(),
            sign(TEXT, &[&other])
                .expect("sign")
                .trim_start_matches(TEXT)
                .trim_start_matches('\n')
        );
        assert_eq!(
            open(&both, known).expect("opens").signed_by,
            ["PeterNeumann"]
        );
        for bad in [
            TEXT.to_owned(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n- PeterNeumann {SIGNATURE}\n"),
            format!("{TEXT}\n\u{2014} PeterNeumann\n"),
            format!("{TEXT}\n\u{2014} PeterNeumann !!!\n"),
            format!("{TEXT}\n\u{2014} PeterNeumann {SIGNATURE}"),
        ] {
            assert!(
                matches!(open(&bad, known), Err(TlogError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert!(
            Verifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                .is_err()
        );
        // The key id's hex in capitals names the same key (as Go reads it).
        assert_eq!(
            Verifier::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Ok(v.clone())
        );
        // A carriage return in the signature block, or more signatures than the bound.
        let crlf = format!("{TEXT}\n\u{2014} PeterNeumann {SIGNATURE}\r\n");
        assert!(matches!(
            open(&crlf, known),
            Err(TlogError::Malformed { .. })
        ));
        let many = format!(
            "{}{}",
            peter_note(),
            format!("\u{2014} x {SIGNATURE}\n").repeat(MAX_SIGNATURES)
        );
        assert!(matches!(
            open(&many, known),
            Err(TlogError::Malformed { .. })
        ));
        assert!(sign("no newline", &[&forger]).is_err());
        assert!(sign("a\n\nb\n", &[&forger]).is_err());
    }
}
