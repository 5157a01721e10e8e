//! The facade's own paths: what it reads in place must answer exactly as the blocking
//! engine does, and the paths it sends to the pool (the null version, a large inline
//! object) too.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::*;
use crate::clock::SystemClock;
use crate::lock::SystemMonotonic;
use crate::meta::{Cf, Record, keys};

struct Opened {
    _dir: tempfile::TempDir,
    node: Node,
    bucket: BucketName,
}

async fn open(inline_max: usize, block_size: usize) -> Opened {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::embedded(dir.path().join("data"));
    config.block_size = block_size;
    config.inline_max = inline_max;
    let node = Node::open(
        config,
        Arc::new(SystemClock),
        Arc::new(SystemMonotonic::default()),
        &dir.path().join("keys"),
        Duration::from_secs(60),
    )
    .await
    .expect("open");
    let bucket = BucketName::new("facade").expect("name");
    node.create_bucket(&bucket, false).await.expect("bucket");
    Opened {
        _dir: dir,
        node,
        bucket,
    }
}

async fn put(o: &Opened, key: &ObjectKey, body: &[u8]) -> PutOutcome {
    let chunks = futures::stream::iter([Ok(Bytes::copy_from_slice(body))]);
    o.node
        .put_object(&o.bucket, key, PutOptions::default(), chunks)
        .await
        .expect("put")
}

async fn get(
    o: &Opened,
    key: &ObjectKey,
    version: Option<&VersionRef>,
    range: Option<ByteRange>,
) -> Result<Vec<u8>, StoreError> {
    let read = o.node.get_object(&o.bucket, key, version, range).await?;
    let mut body = read.body;
    let mut out = Vec::new();
    while let Some(b) = body.next().await {
        out.extend_from_slice(&b.expect("block"));
    }
    Ok(out)
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_object_read_in_place_is_exact_whole_and_in_ranges() {
    let o = open(16 * 1024, 64 * 1024).await;
    let key = ObjectKey::new("small").expect("key");
    let body = bytes(3000);
    put(&o, &key, &body).await;
    let head = o
        .node
        .head_object(&o.bucket, &key, None)
        .await
        .expect("head");
    assert!(head.inline, "3000 bytes under inline_max are stored inline");
    assert_eq!(get(&o, &key, None, None).await.expect("get"), body);
    let range = ByteRange::FromTo {
        first: 10,
        last: 1009,
    };
    assert_eq!(
        get(&o, &key, None, Some(range)).await.expect("range"),
        body[10..1010]
    );
    let suffix = ByteRange::Suffix { len: 7 };
    assert_eq!(
        get(&o, &key, None, Some(suffix)).await.expect("suffix"),
        body[body.len() - 7..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_inline_object_read_in_place_fails_and_never_returns_bytes() {
    let o = open(16 * 1024, 64 * 1024).await;
    let key = ObjectKey::new("rotten").expect("key");
    let body = bytes(500);
    let out = put(&o, &key, &body).await;
    let meta = o.node.store().meta();
    let vkey = keys::version_key(&o.bucket, &key, &out.version_id);
    let mut rec = meta
        .inline(&o.bucket, &key, &out.version_id)
        .expect("read")
        .expect("inline record");
    rec.data[17] ^= 0x40;
    meta.put_raw(Cf::Inline, &vkey, &rec.encode().expect("encode"))
        .expect("plant");
    match get(&o, &key, None, None).await {
        Err(StoreError::InlineCorrupt { version_id, .. }) => {
            assert_eq!(version_id, out.version_id)
        }
        other => panic!("a flipped bit must fail the read, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_inline_object_goes_to_the_pool_and_is_exact() {
    // inline_max above the in-place bound: the bytes are read and hashed on the pool.
    let o = open(200 * 1024, 64 * 1024).await;
    let key = ObjectKey::new("large-inline").expect("key");
    let body = bytes(150 * 1024);
    put(&o, &key, &body).await;
    let head = o
        .node
        .head_object(&o.bucket, &key, None)
        .await
        .expect("head");
    assert!(head.inline && head.size > 64 * 1024);
    assert_eq!(get(&o, &key, None, None).await.expect("get"), body);
    let range = ByteRange::FromTo {
        first: 100_000,
        last: 100_099,
    };
    assert_eq!(
        get(&o, &key, None, Some(range)).await.expect("range"),
        body[100_000..100_100]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_null_version_is_read_on_the_pool_and_answers_as_the_current_one() {
    let o = open(16 * 1024, 64 * 1024).await;
    let key = ObjectKey::new("null").expect("key");
    // Unversioned: every write replaces the null version.
    put(&o, &key, b"first").await;
    put(&o, &key, b"second").await;
    let null = Some(&VersionRef::Null);
    let by_null = o
        .node
        .head_object(&o.bucket, &key, null)
        .await
        .expect("head null");
    let current = o
        .node
        .head_object(&o.bucket, &key, None)
        .await
        .expect("head");
    assert_eq!(by_null.version_id, current.version_id);
    let (with_lock, _) = o
        .node
        .head_object_with_lock(&o.bucket, &key, null)
        .await
        .expect("head with lock");
    assert_eq!(with_lock.version_id, current.version_id);
    let (tagged, tags) = o
        .node
        .object_tags(&o.bucket, &key, null)
        .await
        .expect("tags");
    assert_eq!((tagged.version_id, tags.len()), (current.version_id, 0));
    assert_eq!(
        get(&o, &key, null, None).await.expect("get null"),
        b"second"
    );
    // A key with no null version answers NoSuchVersion-style errors, as the engine does.
    let other = ObjectKey::new("absent").expect("key");
    let e = o
        .node
        .head_object(&o.bucket, &other, null)
        .await
        .expect_err("absent");
    let direct = o
        .node
        .store()
        .head_object(&o.bucket, &other, null)
        .expect_err("absent");
    assert_eq!(format!("{e:?}"), format!("{direct:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facade_answers_match_the_engine() {
    let o = open(16 * 1024, 64 * 1024).await;
    let key = ObjectKey::new("same").expect("key");
    put(&o, &key, &bytes(100)).await;
    let store = o.node.store();
    assert_eq!(
        o.node.bucket(&o.bucket).await.expect("bucket").name,
        store.bucket(&o.bucket).expect("bucket").name
    );
    assert_eq!(
        o.node.buckets().await.expect("buckets").len(),
        store.buckets().expect("buckets").len()
    );
    let q = ListQuery::default();
    let page = o
        .node
        .list_objects(&o.bucket, q.clone())
        .await
        .expect("list");
    let direct = store.list_objects(&o.bucket, &q).expect("list");
    assert_eq!(page.objects.len(), direct.objects.len());
    assert_eq!(
        o.node.disks().await.expect("disks").len(),
        store.disks().len()
    );
    let missing = BucketName::new("missing").expect("name");
    assert!(matches!(
        o.node.bucket(&missing).await,
        Err(StoreError::NoSuchBucket { .. })
    ));
}

/// Every version written records the BLAKE3 of its bytes as received (what a replica
/// recomputes): one digest for a PUT or a copy, whatever the size or layout, one per part
/// for a multipart upload; none for a delete marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_records_the_blake3_of_its_bytes() {
    let o = open(16 * 1024, 64 * 1024).await;
    let digest = |b: &[u8]| *blake3::hash(b).as_bytes();
    // Empty, inline, one stripe, several stripes.
    for (name, len) in [
        ("empty", 0),
        ("inline", 700),
        ("stripe", 100_000),
        ("multi", 1 << 20),
    ] {
        let key = ObjectKey::new(name).expect("key");
        let body = bytes(len);
        put(&o, &key, &body).await;
        let rec = o
            .node
            .head_object(&o.bucket, &key, None)
            .await
            .expect("head");
        assert_eq!(rec.blake3, vec![digest(&body)], "{name}");
    }
    // A copy hashes the bytes it wrote.
    let src = ObjectKey::new("multi").expect("key");
    let dst = ObjectKey::new("copy").expect("key");
    let source = CopySource {
        bucket: o.bucket.clone(),
        key: src,
        version: None,
        pinned: None,
    };
    let (_, _) = o
        .node
        .copy_object(
            &source,
            &o.bucket,
            &dst,
            MetadataDirective::Copy,
            None,
            LockRequest::default(),
        )
        .await
        .expect("copy");
    let rec = o
        .node
        .head_object(&o.bucket, &dst, None)
        .await
        .expect("head");
    assert_eq!(rec.blake3, vec![digest(&bytes(1 << 20))]);
    // Multipart: one digest per part, in order.
    let key = ObjectKey::new("parts").expect("key");
    let upload = o
        .node
        .create_multipart_upload(&o.bucket, &key, PutOptions::default())
        .await
        .expect("create")
        .to_string();
    let parts = [bytes(5 << 20), bytes(3000)];
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let chunks = futures::stream::iter([Ok(Bytes::copy_from_slice(p))]);
        let info = o
            .node
            .upload_part(
                &o.bucket,
                &key,
                &upload,
                i as i32 + 1,
                PutOptions::default(),
                chunks,
            )
            .await
            .expect("part");
        done.push(CompletedPart {
            part_number: i as i32 + 1,
            etag: info.etag,
            checksum: None,
        });
    }
    o.node
        .complete_multipart_upload(
            &o.bucket,
            &key,
            &upload,
            done,
            MultipartChecksum::Composite,
            WriteCondition::Always,
        )
        .await
        .expect("complete");
    let rec = o
        .node
        .head_object(&o.bucket, &key, None)
        .await
        .expect("head");
    assert_eq!(rec.blake3, vec![digest(&parts[0]), digest(&parts[1])]);
    // A delete marker has none.
    o.node
        .set_versioning(&o.bucket, Versioning::Enabled)
        .await
        .expect("versioning");
    let out = o
        .node
        .delete_object(&o.bucket, &key, None, false)
        .await
        .expect("delete");
    let Some(VersionRef::Id(id)) = out.version else {
        panic!("a versioned delete makes a marker: {out:?}");
    };
    assert!(out.delete_marker);
    let marker = o
        .node
        .store()
        .meta()
        .version(&o.bucket, &key, &id)
        .expect("read")
        .expect("marker");
    assert!(marker.blake3.is_empty());
}
