//! A data folder written by an earlier release opens, reads back exactly and takes new
//! writes: backups outlive releases. `tests/fixtures/data-folder-2026-11.tar.gz` was
//! written by `tests/fixtures/make-data-folder.sh` with the November 2026 release
//! (VersionRecord format 5, UploadRecord 4, ...); a later release that changes a format
//! must still read it. Add a fixture per release that changes a format; never rewrite one.

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::{Server, runtime};

/// The fixture's bodies: N bytes of (i * 31 + 7) mod 251.
fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

#[test]
fn the_november_2026_data_folder_opens_reads_and_takes_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/data-folder-2026-11.tar.gz");
    let unpacked = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-xzf")
        .arg(&fixture)
        .status()
        .expect("tar");
    assert!(unpacked.success());
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    let server = Server::start(
        &[
            "--data",
            data.to_str().expect("path"),
            "--key-dir",
            keys.to_str().expect("path"),
        ],
        dir.path(),
    );
    let c = server.client();
    runtime().block_on(async {
        let get = |bucket: &'static str, key: &'static str, version: Option<String>| {
            let c = c.clone();
            async move {
                let r = c
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version)
                    .send()
                    .await
                    .expect("get");
                let meta = (
                    r.content_encoding().map(str::to_owned),
                    r.cache_control().map(str::to_owned),
                    r.metadata().and_then(|m| m.get("origin").cloned()),
                    r.object_lock_mode().map(|m| m.as_str().to_owned()),
                    r.object_lock_legal_hold_status()
                        .map(|h| h.as_str().to_owned()),
                );
                (r.body.collect().await.expect("body").into_bytes(), meta)
            }
        };
        let (small, _) = get("plain", "small", None).await;
        assert_eq!(small[..], body(11)[..]);
        let (large, meta) = get("plain", "large", None).await;
        assert_eq!(large[..], body(300_000)[..]);
        assert_eq!(
            (meta.0.as_deref(), meta.1.as_deref(), meta.2.as_deref()),
            (Some("gzip"), Some("max-age=60"), Some("fixture"))
        );
        let tags = c
            .get_object_tagging()
            .bucket("plain")
            .key("large")
            .send()
            .await
            .expect("tags");
        assert_eq!(tags.tag_set().len(), 1);
        // The versioned key: a delete marker over two versions, both still readable.
        let versions = c
            .list_object_versions()
            .bucket("versioned")
            .send()
            .await
            .expect("versions");
        assert_eq!(versions.versions().len(), 2);
        assert_eq!(versions.delete_markers().len(), 1);
        let e = c
            .get_object()
            .bucket("versioned")
            .key("k")
            .send()
            .await
            .expect_err("a marker is current");
        assert_eq!(stele_tests::error_code(&e), "NoSuchKey");
        let mut sizes = Vec::new();
        for v in versions.versions() {
            let id = v.version_id().map(str::to_owned);
            let (bytes, _) = get("versioned", "k", id).await;
            sizes.push(bytes.len());
        }
        sizes.sort_unstable();
        assert_eq!(sizes, vec![11, 300_000]);
        // The locked version keeps its lock, and cannot be removed.
        let (locked, meta) = get("locked", "kept", None).await;
        assert_eq!(locked[..], body(300_000)[..]);
        assert_eq!(
            (meta.3.as_deref(), meta.4.as_deref()),
            (Some("COMPLIANCE"), Some("ON"))
        );
        let kept = c
            .list_object_versions()
            .bucket("locked")
            .send()
            .await
            .expect("versions");
        let id = kept.versions()[0].version_id().expect("id").to_owned();
        let e = c
            .delete_object()
            .bucket("locked")
            .key("kept")
            .version_id(&id)
            .send()
            .await
            .expect_err("locked");
        assert_eq!(stele_tests::error_code(&e), "AccessDenied");
        // New writes go in beside the old ones.
        c.put_object()
            .bucket("plain")
            .key("new")
            .body(ByteStream::from_static(b"written by this release"))
            .send()
            .await
            .expect("new write");
        let got = c
            .get_object()
            .bucket("plain")
            .key("new")
            .send()
            .await
            .expect("read back")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&got[..], b"written by this release");
    });
}
