//! C2SP transparency-log checkpoints (<https://c2sp.org/tlog-checkpoint>): the text of a
//! signed note whose lines are the log's origin, its size in decimal and the base64 of its
//! RFC 6962 root. Stele's audit log writes no extension lines (monitors cannot audit
//! them); lines after the third are kept when read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::TlogError;
use crate::crypto::Hash;
use crate::note::{self, Signer, Verifier};

/// A log's state: origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name, unique to it (`stele/<deployment>/audit/<node>`); also the name of
    /// the key that signs its checkpoints.
    pub origin: String,
    /// How many leaves the log holds.
    pub size: u64,
    /// The RFC 6962 root of those leaves.
    pub root: Hash,
    /// Extension lines, as read (none when written by Stele).
    pub extensions: Vec<String>,
}

fn malformed(reason: impl Into<String>) -> TlogError {
    TlogError::Malformed {
        what: "checkpoint",
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// The checkpoint of the log `origin` at `size` leaves with root `root`.
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `origin\nsize\nbase64(root)\n`, then any extension lines.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        t
    }

    /// Reads a checkpoint's text.
    ///
    /// # Errors
    /// [`TlogError::Malformed`]: fewer than three lines, an empty origin, a size that is
    /// not a decimal number without leading zeros, or a root that is not 32 bytes.
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let mut lines = text.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(malformed("empty origin"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(malformed("the size is not a decimal number"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| malformed("the size is too large"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| malformed("the root is not 32 bytes of base64"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: lines.map(str::to_owned).collect(),
        })
    }

    /// The signed note of this checkpoint, signed by each of `signers`.
    ///
    /// # Errors
    /// [`TlogError::Malformed`] for an origin that is empty or holds whitespace or `+`
    /// (it names the log's key), or an extension line that is empty or holds a newline:
    /// either would make the text read back as another checkpoint.
    pub fn sign(&self, signers: &[&Signer]) -> Result<String, TlogError> {
        if self.origin.is_empty() || self.origin.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(malformed("the origin must be a key name"));
        }
        if self
            .extensions
            .iter()
            .any(|e| e.is_empty() || e.contains('\n'))
        {
            return Err(malformed("an extension line is empty or holds a newline"));
        }
        note::sign(&self.text(), signers)
    }

    /// Opens a signed checkpoint of the log `origin`, checked against the keys `known`:
    /// it must name `origin` and be signed by a known key of that name (the log's own
    /// key; other known keys' signatures, a witness's, are checked but do not suffice).
    ///
    /// # Errors
    /// Those of [`note::open`] and [`Checkpoint::parse`]; [`TlogError::OriginMismatch`]
    /// for a checkpoint of another log; [`TlogError::Unverified`] if no key named
    /// `origin` signed it.
    pub fn open(signed: &str, origin: &str, known: &[Verifier]) -> Result<Self, TlogError> {
        let opened = note::open(signed, known)?;
        let c = Self::parse(&opened.text)?;
        if c.origin != origin {
            return Err(TlogError::OriginMismatch {
                expected: origin.to_owned(),
                found: c.origin,
            });
        }
        if !opened.signed_by.iter().any(|n| n == origin) {
            return Err(TlogError::Unverified);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;

    #[test]
    fn a_signed_checkpoint_opens_to_itself_and_nothing_else() {
        let origin = "stele/3f9c1e/audit/n1";
        let key = Signer::from_seed(origin, &[5; 32]).expect("key");
        let leaves: Vec<Hash> = (0..5u8).map(|i| merkle::leaf_hash(&[i])).collect();
        let c = Checkpoint::new(origin, 5, merkle::root(&leaves));
        let signed = c.sign(&[&key]).expect("sign");
        assert!(signed.starts_with(&format!("{origin}\n5\n")));
        assert!(signed.contains("\n\n\u{2014} stele/3f9c1e/audit/n1 "));
        let known = [key.verifier()];
        assert_eq!(Checkpoint::open(&signed, origin, &known), Ok(c.clone()));
        // Signed by a known key of another name only (a witness): not the log's word.
        let witness = Signer::from_seed("witness.example", &[8; 32]).expect("key");
        let by_witness = c.sign(&[&witness]).expect("sign");
        assert_eq!(
            Checkpoint::open(&by_witness, origin, &[key.verifier(), witness.verifier()]),
            Err(TlogError::Unverified)
        );
        // An origin that would read back as another checkpoint is refused.
        let sneaky = Checkpoint::new("a\n3\nAAAA", 5, c.root);
        assert!(sneaky.sign(&[&key]).is_err());
        // Another log's name is refused even with a good signature.
        assert!(matches!(
            Checkpoint::open(&signed, "stele/3f9c1e/audit/n2", &known),
            Err(TlogError::OriginMismatch { .. })
        ));
        // A size changed after signing.
        let bumped = signed.replacen("\n5\n", "\n6\n", 1);
        assert!(matches!(
            Checkpoint::open(&bumped, origin, &known),
            Err(TlogError::BadSignature { .. })
        ));
        // The same log signed by a key the auditor does not hold.
        let other = Signer::from_seed(origin, &[6; 32]).expect("key");
        let resigned = c.sign(&[&other]).expect("sign");
        assert_eq!(
            Checkpoint::open(&resigned, origin, &known),
            Err(TlogError::Unverified)
        );
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        for bad in [
            "o\n5\n",
            "\n5\nAAAA\n",
            "o\n05\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
            "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
            "o\n5\nAAAA\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        let ok = Checkpoint::parse("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nx\n")
            .expect("parse");
        assert_eq!(ok.root, merkle::empty_root());
        assert_eq!(ok.extensions, ["x"]);
    }
}
