//! Helpers shared by the Object Lock tests.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ObjectLockMode;

use crate::{ACCESS_KEY, Server};

/// The body every locked test version is written with.
pub const LOCKED_BODY: &[u8] = b"backup bytes";

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

pub fn days_from_now(days: i64) -> DateTime {
    DateTime::from_secs(now_secs() + days * crate::DAY_SECS)
}

/// CreateBucket with Object Lock enabled.
pub async fn lock_bucket(c: &Client, name: &str) {
    c.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create lock bucket");
}

/// PUT `body`; the version id (`null` in an unversioned bucket).
pub async fn put(c: &Client, bucket: &str, key: &str, body: &'static [u8]) -> String {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .expect("put")
        .version_id()
        .unwrap_or("null")
        .to_owned()
}

/// PUT [`LOCKED_BODY`] with a retention; the version id.
pub async fn put_locked(
    c: &Client,
    bucket: &str,
    key: &str,
    mode: ObjectLockMode,
    until: DateTime,
) -> String {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(LOCKED_BODY))
        .object_lock_mode(mode)
        .object_lock_retain_until_date(until)
        .send()
        .await
        .expect("put locked")
        .version_id()
        .expect("version id")
        .to_owned()
}

pub async fn readable(c: &Client, bucket: &str, key: &str, version: &str) -> bool {
    c.get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .is_ok()
}

/// The locked version still reads back whole.
pub async fn intact(c: &Client, bucket: &str, key: &str, version: &str) {
    let got = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .expect("locked version readable")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(&got[..], LOCKED_BODY);
}

/// Grants the test S3 key the governance-bypass permission through the admin API.
pub fn grant_bypass(server: &Server) {
    let (status, body) = server.admin(
        "PUT",
        &format!("/v1/s3-keys/{ACCESS_KEY}/governance-bypass"),
        Some(r#"{"allowed": true}"#),
    );
    assert_eq!(status, 200, "{body}");
}
