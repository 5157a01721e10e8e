//! Names and identifiers shared by every layer: bucket names, object keys, version and
//! segment ids, timestamps. Validation lives here so that an invalid name cannot exist as a
//! value past the edge of the system.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A bucket name breaks one of S3's naming rules ([`BucketName::new`]).
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An object key longer than [`ObjectKey::MAX_LEN`].
    #[error("object key is {len} bytes; the limit is {max}")]
    KeyTooLong {
        /// The key's length in bytes (UTF-8).
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// An empty object key.
    #[error("object key is empty")]
    EmptyKey,
    /// A version or segment id that is not 32 hex digits.
    #[error("invalid id {text:?}: {reason}")]
    InvalidId {
        /// The text as given.
        text: String,
        /// What an id must look like.
        reason: &'static str,
    },
}

/// A bucket name that follows S3's naming rules (3-63 characters of lower-case letters,
/// digits, '.' and '-', starting and ending with a letter or digit, not an IP address).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    /// Checks `name` against S3's naming rules.
    ///
    /// # Errors
    /// [`NameError::InvalidBucketName`], with the rule it breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        let bad = |reason| NameError::InvalidBucketName {
            name: name.clone(),
            reason,
        };
        if !(3..=63).contains(&name.len()) {
            return Err(bad("must be 3 to 63 characters long"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(bad(
                "only lower-case letters, digits, '.' and '-' are allowed",
            ));
        }
        let first = name.as_bytes()[0];
        let last = name.as_bytes()[name.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return Err(bad("must start and end with a letter or digit"));
        }
        if name.contains("..") || name.contains(".-") || name.contains("-.") {
            return Err(bad("adjacent periods or a period next to a hyphen"));
        }
        if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
            return Err(bad("must not be formatted as an IP address"));
        }
        if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
            return Err(bad("reserved prefix or suffix"));
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BucketName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl From<BucketName> for String {
    fn from(b: BucketName) -> String {
        b.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key: any non-empty UTF-8 string of at most 1024 bytes. A key is only a name:
/// it is never used to build a filesystem path (shard files are named by segment id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The longest key in bytes of UTF-8, as in S3.
    pub const MAX_LEN: usize = 1024;

    /// Checks that `key` is not empty and at most [`Self::MAX_LEN`] bytes.
    ///
    /// # Errors
    /// [`NameError::EmptyKey`] or [`NameError::KeyTooLong`].
    pub fn new(key: impl Into<String>) -> Result<Self, NameError> {
        let key = key.into();
        if key.is_empty() {
            return Err(NameError::EmptyKey);
        }
        if key.len() > Self::MAX_LEN {
            return Err(NameError::KeyTooLong {
                len: key.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A BLAKE3 digest: of a shard block, of a shard's hash list (its root), of inline bytes.
pub type Hash = [u8; 32];

/// Microseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant `us` microseconds after the Unix epoch (before it if negative).
    pub const fn from_micros(us: i64) -> Self {
        Self(us)
    }
    /// The instant `s` seconds after the Unix epoch.
    pub const fn from_secs(s: i64) -> Self {
        Self(s * 1_000_000)
    }
    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }
    /// `us` microseconds later (earlier if negative), saturating instead of overflowing.
    pub fn plus_micros(self, us: i64) -> Self {
        Self(self.0.saturating_add(us))
    }
}

/// ISO 8601 in UTC with milliseconds (`2030-01-01T00:00:00.000Z`), as S3 writes dates.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ISO: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .ok()
            .and_then(|t| t.format(ISO).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}us", self.0),
        }
    }
}

/// A 128-bit identifier whose first 8 bytes are a big-endian microsecond timestamp, so ids
/// sort by creation time; the last 8 are random so ids from different nodes never collide.
macro_rules! time_sortable_id {
    ($name:ident, $what:literal) => {
        /// A time-sortable id: a big-endian microsecond timestamp, then 8 random bytes.
        /// Written as 32 lower-case hex digits.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A new id for `now`. Ids made by one process strictly increase even when the
            /// clock stands still or steps back.
            pub fn generate(now: Timestamp) -> Self {
                Self(crate::types::next_id_bytes(now))
            }

            /// When the id was made, from its first 8 bytes: the clock's reading, or a
            /// microsecond past the previous id if the clock stood still or stepped back.
            pub fn timestamp(&self) -> Timestamp {
                let mut t = [0u8; 8];
                t.copy_from_slice(&self.0[..8]);
                Timestamp(u64::from_be_bytes(t) as i64)
            }

            /// The 16 bytes, as metadata keys hold them (they sort by time).
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                let bad = |reason| NameError::InvalidId {
                    text: s.to_owned(),
                    reason,
                };
                if s.len() != 32 {
                    return Err(bad(concat!($what, " ids are 32 hex digits")));
                }
                let mut out = [0u8; 16];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| bad(concat!($what, " ids are 32 hex digits")))?;
                Ok(Self(out))
            }
        }
    };
}

time_sortable_id!(VersionId, "version");
time_sortable_id!(SegmentId, "segment");

fn next_id_bytes(now: Timestamp) -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wanted = now.micros().max(0) as u64;
    let mut prev = LAST.load(Ordering::Relaxed);
    let ts = loop {
        let next = wanted.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&ts.to_be_bytes());
    out[8..].copy_from_slice(&rand::random::<u64>().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.1", "a1b", &"a".repeat(63)] {
            assert!(BucketName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "a_b",
            "xn--abc",
            "with space",
        ] {
            assert!(BucketName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_bounded_names() {
        assert!(ObjectKey::new("../x").is_ok());
        assert!(ObjectKey::new("a//b\u{1}ü").is_ok());
        assert!(ObjectKey::new("k".repeat(1024)).is_ok());
        assert_eq!(
            ObjectKey::new("k".repeat(1025)),
            Err(NameError::KeyTooLong {
                len: 1025,
                max: 1024
            })
        );
        assert_eq!(ObjectKey::new(""), Err(NameError::EmptyKey));
    }

    #[test]
    fn ids_increase_and_round_trip() {
        let t = Timestamp::from_secs(1_700_000_000);
        let a = VersionId::generate(t);
        let b = VersionId::generate(t);
        assert!(b > a, "ids from one process strictly increase");
        assert_eq!(a.to_string().parse::<VersionId>(), Ok(a));
        assert!(a.timestamp() >= t);
        assert!("nope".parse::<VersionId>().is_err());
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::Timestamp;

    #[test]
    fn displays_as_iso_8601_with_milliseconds() {
        assert_eq!(
            Timestamp::from_secs(4_102_444_800).to_string(),
            "2100-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_micros(1_700_000_000_123_456).to_string(),
            "2023-11-14T22:13:20.123Z"
        );
    }
}

/// Who made a request, as the trail names its actor. Every metadata command carries it
/// (`command::Stamped::by`), so the applier records it with the change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Requester {
    /// The user's name; for the node's own work `stele:<worker>` (`stele:lifecycle`).
    pub user: Option<String>,
    /// The access key id the request was signed with.
    pub key: Option<String>,
    /// The client's IP address.
    pub source: Option<String>,
    /// The request id the client was answered with (`x-amz-request-id`).
    pub request_id: Option<String>,
}

impl Requester {
    /// The node itself, doing `worker`'s job (`lifecycle`, `replication`).
    pub fn node(worker: &str) -> Self {
        Self {
            user: Some(format!("stele:{worker}")),
            ..Self::default()
        }
    }
}
