//! Order-preserving key encodings.
//!
//! A version key is `bucket 0x00 escaped(key) 0x00 0x01 !version_id`: bucket names hold no
//! zero byte; in the object key each 0x00 becomes 0x00 0xFF and the key ends with 0x00 0x01,
//! so byte order of encoded keys is the order of (bucket, key) and a key never runs into the
//! next one. The version id is inverted so the newest version of a key comes first.

use crate::types::{BucketName, ObjectKey, SegmentId, VersionId};

/// `bucket 0x00`: the prefix of every version key in the bucket.
pub fn bucket_prefix(bucket: &BucketName) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.as_str().len() + 1);
    out.extend_from_slice(bucket.as_str().as_bytes());
    out.push(0);
    out
}

/// Where keys `>= start` begin in the bucket (`start` need not be a whole key).
pub fn key_start(bucket: &BucketName, start: &str) -> Vec<u8> {
    let mut out = bucket_prefix(bucket);
    for &b in start.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out
}

/// The prefix shared by every version of `key`.
pub fn object_prefix(bucket: &BucketName, key: &ObjectKey) -> Vec<u8> {
    let mut out = key_start(bucket, key.as_str());
    out.extend_from_slice(&[0, 1]);
    out
}

/// The key of one version in `versions`, and of what is keyed like it (`tags`, `inline`,
/// `locks`): the object prefix, then the inverted version id, so newer sorts first.
pub fn version_key(bucket: &BucketName, key: &ObjectKey, vid: &VersionId) -> Vec<u8> {
    let mut out = object_prefix(bucket, key);
    out.extend(vid.0.iter().map(|b| !b));
    out
}

/// Upload records live under `U bucket 0x00 escaped(key) 0x00 0x01 upload_id`, so a bucket's
/// uploads list by key then age; parts under `P upload_id part_number`.
pub fn upload_key(bucket: &BucketName, key: &ObjectKey, id: &SegmentId) -> Vec<u8> {
    let mut out = vec![b'U'];
    out.extend(object_prefix(bucket, key));
    out.extend_from_slice(id.as_bytes());
    out
}

/// `U bucket 0x00`: the prefix of every upload record in the bucket.
pub fn upload_key_prefix(bucket: &BucketName) -> Vec<u8> {
    let mut out = vec![b'U'];
    out.extend(bucket_prefix(bucket));
    out
}

/// A completed upload's outcome, kept for a while under `C upload_id` so that a Complete
/// retried after it succeeded gets the same answer.
pub fn completed_key(id: &SegmentId) -> Vec<u8> {
    let mut out = vec![b'C'];
    out.extend_from_slice(id.as_bytes());
    out
}

/// `P upload_id`: the prefix of every part record of an upload.
pub fn part_prefix(id: &SegmentId) -> Vec<u8> {
    let mut out = vec![b'P'];
    out.extend_from_slice(id.as_bytes());
    out
}

/// `P upload_id part_number`, the number big-endian so parts list in ascending order.
pub fn part_key(id: &SegmentId, part: u16) -> Vec<u8> {
    let mut out = part_prefix(id);
    out.extend_from_slice(&part.to_be_bytes());
    out
}

/// Splits a version key (with the bucket prefix already removed) into key and version id.
pub fn split_version_key(rest: &[u8]) -> Option<(ObjectKey, VersionId)> {
    let mut key = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i + 1 < rest.len() {
        match (rest[i], rest[i + 1]) {
            (0, 0xFF) => {
                key.push(0);
                i += 2;
            }
            (0, 1) => {
                let vid = rest.get(i + 2..i + 18)?;
                let mut id = [0u8; 16];
                for (o, b) in id.iter_mut().zip(vid) {
                    *o = !b;
                }
                let key = ObjectKey::new(String::from_utf8(key).ok()?).ok()?;
                return Some((key, VersionId(id)));
            }
            (b, _) => {
                key.push(b);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Timestamp;
    use proptest::prelude::*;

    fn b() -> BucketName {
        BucketName::new("bkt").expect("bucket")
    }

    proptest! {
        #[test]
        fn version_keys_round_trip_and_sort_like_names(
            a in "[a\\x00-\\x02z/é]{1,8}", c in "[a\\x00-\\x02z/é]{1,8}"
        ) {
            let (ka, kc) = (ObjectKey::new(a.clone()).expect("key"), ObjectKey::new(c.clone()).expect("key"));
            let v = VersionId::generate(Timestamp::from_secs(1));
            let ea = version_key(&b(), &ka, &v);
            let ec = version_key(&b(), &kc, &v);
            prop_assert_eq!(a.as_bytes().cmp(c.as_bytes()), ea.cmp(&ec));
            let p = bucket_prefix(&b());
            prop_assert_eq!(split_version_key(&ea[p.len()..]), Some((ka, v)));
        }
    }

    #[test]
    fn newest_version_sorts_first() {
        let k = ObjectKey::new("k").expect("key");
        let old = VersionId::generate(Timestamp::from_secs(1));
        let new = VersionId::generate(Timestamp::from_secs(2));
        assert!(version_key(&b(), &k, &new) < version_key(&b(), &k, &old));
    }
}
