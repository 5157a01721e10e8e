//! Driving the engine (`stele::Store`) directly, for the tests of disk faults and loss:
//! writing a set of objects and reading each back whole.

use bytes::Bytes;
use futures::StreamExt;
use stele::{BucketName, ObjectKey, PutOptions, Store, StoreError};

/// Puts `v` as `key` in `bucket` in one body chunk.
///
/// # Errors
/// The store's.
pub async fn put(
    store: &Store,
    bucket: &BucketName,
    key: &ObjectKey,
    v: &[u8],
) -> Result<(), StoreError> {
    let body = futures::stream::iter(vec![Ok(Bytes::copy_from_slice(v))]);
    store
        .put_object(bucket, key, PutOptions::default(), body)
        .await
        .map(|_| ())
}

/// Puts every object, panicking on the first failure.
pub async fn put_all(store: &Store, bucket: &BucketName, objs: &[(ObjectKey, Vec<u8>)]) {
    for (k, v) in objs {
        put(store, bucket, k, v).await.expect("put");
    }
}

/// The current version of `key`, read whole; the error as text.
///
/// # Errors
/// The read's, or a failure in the body.
pub async fn read(store: &Store, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<u8>, String> {
    let r = store
        .get_object(bucket, key, None, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut body = r.body;
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Every object reads back exactly.
pub async fn assert_all_exact(store: &Store, bucket: &BucketName, objs: &[(ObjectKey, Vec<u8>)]) {
    for (k, v) in objs {
        let got = read(store, bucket, k)
            .await
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        assert!(got == *v, "{k}: bytes differ");
    }
}
