//! Veeam's Smart Object Storage API against the real server: the two generated documents
//! under every bucket (exact content and quoting; GET, ranged GET, HEAD, both listings),
//! the reserved folder refusing writes, a nested `.system-...` key as an ordinary key, and
//! capacity.xml following the quota and the data written.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use stele_tests::{error_code, error_status, runtime, start_default};

const FOLDER: &str = ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/";
const BUCKET: &str = "veeam-repo";

fn system() -> String {
    format!("{FOLDER}system.xml")
}

fn capacity() -> String {
    format!("{FOLDER}capacity.xml")
}

/// system.xml exactly as Veeam expects it: the protocol version and the model in
/// literal quotes, capacity information on, no recommendations.
fn expected_system_xml() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <SystemInfo>\n  \
         <ProtocolVersion>\"1.0\"</ProtocolVersion>\n  \
         <ModelName>\"Stele {}\"</ModelName>\n  \
         <ProtocolCapabilities>\n    \
         <CapacityInfo>true</CapacityInfo>\n    \
         <UploadSessions>false</UploadSessions>\n    \
         <IAMSTS>false</IAMSTS>\n  \
         </ProtocolCapabilities>\n\
         </SystemInfo>\n",
        env!("CARGO_PKG_VERSION")
    )
}

async fn get_text(c: &Client, key: &str) -> String {
    let out = c
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
    let body = out.body.collect().await.expect("body").into_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// The three numbers of capacity.xml, checking its shape on the way.
async fn capacity_numbers(c: &Client) -> (u64, u64, u64) {
    let x = get_text(c, &capacity()).await;
    assert!(
        x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CapacityInfo>"),
        "{x}"
    );
    let field = |name: &str| -> u64 {
        let open = format!("<{name}>");
        let start = x.find(&open).unwrap_or_else(|| panic!("{name} in {x}")) + open.len();
        let end = start + x[start..].find('<').expect("close");
        x[start..end].parse().expect("number")
    };
    (field("Capacity"), field("Available"), field("Used"))
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

#[test]
fn the_two_documents_answer_get_range_head_and_both_listings() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("bucket");
        c.put_object()
            .bucket(BUCKET)
            .key("backup/blk-1")
            .body(ByteStream::from(vec![1u8; 1000]))
            .send()
            .await
            .expect("put");

        // GET: exact bytes, type, MD5 ETag, Last-Modified.
        let want = expected_system_xml();
        let out = c
            .get_object()
            .bucket(BUCKET)
            .key(system())
            .send()
            .await
            .expect("GET system.xml");
        assert_eq!(out.content_type(), Some("application/xml"));
        assert_eq!(
            out.e_tag(),
            Some(format!("\"{}\"", md5_hex(want.as_bytes())).as_str())
        );
        assert_eq!(out.content_length(), Some(want.len() as i64));
        assert!(out.last_modified().is_some());
        let got = out.body.collect().await.expect("body").into_bytes();
        assert_eq!(String::from_utf8_lossy(&got), want);

        // A range, and a suffix range.
        let part = c
            .get_object()
            .bucket(BUCKET)
            .key(system())
            .range("bytes=0-37")
            .send()
            .await
            .expect("ranged GET");
        assert_eq!(
            part.content_range(),
            Some(format!("bytes 0-37/{}", want.len()).as_str())
        );
        let bytes = part.body.collect().await.expect("body").into_bytes();
        assert_eq!(&bytes[..], &want.as_bytes()[..38]);
        let tail = c
            .get_object()
            .bucket(BUCKET)
            .key(system())
            .range("bytes=-13")
            .send()
            .await
            .expect("suffix GET");
        let bytes = tail.body.collect().await.expect("body").into_bytes();
        assert_eq!(&bytes[..], &want.as_bytes()[want.len() - 13..]);

        // HEAD: the same ETag and length; the null version is the only one.
        let head = c
            .head_object()
            .bucket(BUCKET)
            .key(system())
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.content_length(), Some(want.len() as i64));
        assert_eq!(head.content_type(), Some("application/xml"));
        assert_eq!(
            head.e_tag(),
            Some(format!("\"{}\"", md5_hex(want.as_bytes())).as_str())
        );
        c.head_object()
            .bucket(BUCKET)
            .key(system())
            .version_id("null")
            .send()
            .await
            .expect("HEAD ?versionId=null");
        let head = c
            .head_object()
            .bucket(BUCKET)
            .key(capacity())
            .send()
            .await
            .expect("HEAD capacity.xml");
        let cap = get_text(&c, &capacity()).await;
        assert_eq!(head.content_length(), Some(cap.len() as i64));

        // ListObjectsV2 under the folder: both, in key order, with sizes and ETags.
        let list = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(FOLDER)
            .send()
            .await
            .expect("list");
        let keys: Vec<_> = list.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, [capacity().as_str(), system().as_str()]);
        assert_eq!(list.contents()[1].size(), Some(want.len() as i64));
        assert_eq!(
            list.contents()[1].e_tag(),
            Some(format!("\"{}\"", md5_hex(want.as_bytes())).as_str())
        );
        // Paged one at a time.
        let first = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(FOLDER)
            .max_keys(1)
            .send()
            .await
            .expect("page 1");
        assert_eq!(first.contents().len(), 1);
        assert_eq!(first.is_truncated(), Some(true));
        let second = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(FOLDER)
            .max_keys(1)
            .set_continuation_token(first.next_continuation_token().map(str::to_owned))
            .send()
            .await
            .expect("page 2");
        let keys: Vec<_> = second.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, [system().as_str()]);
        assert_ne!(second.is_truncated(), Some(true));
        // A delimiter under the folder rolls the names up, as for stored keys.
        let rolled = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(FOLDER)
            .delimiter(".")
            .send()
            .await
            .expect("delimited");
        let prefixes: Vec<_> = rolled
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect();
        assert_eq!(
            prefixes,
            [format!("{FOLDER}capacity."), format!("{FOLDER}system.")]
        );
        assert!(rolled.contents().is_empty());
        // A prefix naming one document.
        let one = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(format!("{FOLDER}sys"))
            .send()
            .await
            .expect("list sys");
        assert_eq!(one.contents().len(), 1);

        // ListObjectVersions under the folder: one null version each, latest.
        let versions = c
            .list_object_versions()
            .bucket(BUCKET)
            .prefix(FOLDER)
            .send()
            .await
            .expect("versions");
        let v: Vec<_> = versions
            .versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or(""),
                    v.version_id().unwrap_or(""),
                    v.is_latest(),
                )
            })
            .collect();
        assert_eq!(
            v,
            [
                (capacity().as_str(), "null", Some(true)),
                (system().as_str(), "null", Some(true))
            ]
        );

        // Not objects: no other listing shows them.
        let all = c
            .list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .expect("all");
        let keys: Vec<_> = all.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["backup/blk-1"]);
        let top = c
            .list_objects_v2()
            .bucket(BUCKET)
            .delimiter("/")
            .send()
            .await
            .expect("top");
        let prefixes: Vec<_> = top
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect();
        assert_eq!(prefixes, ["backup/"]);
        let all_versions = c
            .list_object_versions()
            .bucket(BUCKET)
            .send()
            .await
            .expect("all versions");
        assert_eq!(all_versions.versions().len(), 1);

        // A document may be a copy's source, as any object.
        c.copy_object()
            .bucket(BUCKET)
            .key("copied-system.xml")
            .copy_source(format!("{BUCKET}/{}", system()))
            .send()
            .await
            .expect("copy from system.xml");
        assert_eq!(get_text(&c, "copied-system.xml").await, want);
        c.delete_object()
            .bucket(BUCKET)
            .key("copied-system.xml")
            .send()
            .await
            .expect("delete the copy");

        // A bucket that does not exist has no documents.
        let e = c
            .get_object()
            .bucket("no-such-bucket")
            .key(system())
            .send()
            .await
            .expect_err("no bucket");
        assert_eq!(error_code(&e), "NoSuchBucket");
    });
}

#[test]
fn the_folder_is_reserved_at_the_root_only() {
    let (_dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("bucket");
        let before = c
            .list_object_versions()
            .bucket(BUCKET)
            .send()
            .await
            .expect("list");
        assert!(before.versions().is_empty());

        // Writes to the documents, or anywhere in the folder, are refused.
        for key in [system(), capacity(), format!("{FOLDER}other.xml")] {
            let e = c
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(ByteStream::from_static(b"<forged/>"))
                .send()
                .await
                .expect_err("PUT to the reserved folder");
            assert_eq!(
                (error_status(&e), error_code(&e).as_str()),
                (403, "AccessDenied"),
                "{key}"
            );
        }
        let e = c
            .delete_object()
            .bucket(BUCKET)
            .key(system())
            .send()
            .await
            .expect_err("DELETE");
        assert_eq!(
            (error_status(&e), error_code(&e).as_str()),
            (403, "AccessDenied")
        );
        let e = c
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(capacity())
            .send()
            .await
            .expect_err("multipart");
        assert_eq!(error_code(&e), "AccessDenied");
        c.put_object()
            .bucket(BUCKET)
            .key("src")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("src");
        let e = c
            .copy_object()
            .bucket(BUCKET)
            .key(system())
            .copy_source(format!("{BUCKET}/src"))
            .send()
            .await
            .expect_err("copy onto system.xml");
        assert_eq!(error_code(&e), "AccessDenied");
        let e = c
            .put_object_tagging()
            .bucket(BUCKET)
            .key(system())
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .set_tag_set(Some(vec![]))
                    .build()
                    .expect("tagging"),
            )
            .send()
            .await
            .expect_err("tag system.xml");
        assert_eq!(error_code(&e), "AccessDenied");
        let batch = c
            .delete_objects()
            .bucket(BUCKET)
            .delete(
                Delete::builder()
                    .objects(
                        ObjectIdentifier::builder()
                            .key(system())
                            .build()
                            .expect("id"),
                    )
                    .objects(ObjectIdentifier::builder().key("src").build().expect("id"))
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect("DeleteObjects");
        let errors: Vec<_> = batch
            .errors()
            .iter()
            .map(|e| (e.key().unwrap_or(""), e.code().unwrap_or("")))
            .collect();
        assert_eq!(errors, [(system().as_str(), "AccessDenied")]);
        assert_eq!(batch.deleted().len(), 1);
        // The documents are unchanged, and nothing was stored under the folder.
        assert_eq!(get_text(&c, &system()).await, expected_system_xml());
        let e = c
            .get_object()
            .bucket(BUCKET)
            .key(format!("{FOLDER}other.xml"))
            .send()
            .await
            .expect_err("nothing stored");
        assert_eq!(error_code(&e), "NoSuchKey");

        // Deeper in a key, the folder name is an ordinary key.
        let nested = format!("tenant/{}", system());
        c.put_object()
            .bucket(BUCKET)
            .key(&nested)
            .body(ByteStream::from_static(b"mine"))
            .send()
            .await
            .expect("nested PUT");
        assert_eq!(get_text(&c, &nested).await, "mine");
        let listed = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(format!("tenant/{FOLDER}"))
            .send()
            .await
            .expect("nested list");
        let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, [nested.as_str()]);
        c.delete_object()
            .bucket(BUCKET)
            .key(&nested)
            .send()
            .await
            .expect("nested DELETE");
    });
}

/// The size in bytes of the filesystem holding `path`, as `df` reports it.
fn filesystem_size(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=size"])
        .arg(path)
        .output()
        .expect("df");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df output: {text}"))
}

#[test]
fn capacity_follows_the_quota_and_the_data_written() {
    let (dir, server) = start_default();
    let c = server.client();
    runtime().block_on(async {
        c.create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("bucket");
        // No quota: the disks' usable capacity after erasure coding, nothing used. The
        // embedded default puts six disks (4+2) in one filesystem: counted once, times 4/6.
        let (cap, avail, used) = capacity_numbers(&c).await;
        assert_eq!(used, 0);
        let fs = filesystem_size(&dir.path().join("data"));
        assert_eq!(
            cap,
            (u128::from(fs) * 4 / 6) as u64,
            "filesystem of {fs} bytes"
        );
        assert!(avail > 0 && avail <= cap, "{cap} {avail}");

        c.put_object()
            .bucket(BUCKET)
            .key("a")
            .body(ByteStream::from(vec![3u8; 300_000]))
            .send()
            .await
            .expect("put");
        let (_, _, used) = capacity_numbers(&c).await;
        assert_eq!(used, 300_000);

        let (s, body) = server.admin(
            "PUT",
            &format!("/v1/buckets/{BUCKET}/quota"),
            Some(r#"{"quota_bytes":1000000}"#),
        );
        assert_eq!(s, 200, "{body}");
        assert_eq!(capacity_numbers(&c).await, (1_000_000, 700_000, 300_000));

        c.put_object()
            .bucket(BUCKET)
            .key("b")
            .body(ByteStream::from(vec![4u8; 200_000]))
            .send()
            .await
            .expect("put b");
        assert_eq!(capacity_numbers(&c).await, (1_000_000, 500_000, 500_000));
        c.delete_object()
            .bucket(BUCKET)
            .key("b")
            .send()
            .await
            .expect("delete");
        // Unversioned: the delete removed b's bytes.
        assert_eq!(capacity_numbers(&c).await, (1_000_000, 700_000, 300_000));

        let (s, _) = server.admin(
            "PUT",
            &format!("/v1/buckets/{BUCKET}/quota"),
            Some(r#"{"quota_bytes":2000000}"#),
        );
        assert_eq!(s, 200);
        assert_eq!(capacity_numbers(&c).await, (2_000_000, 1_700_000, 300_000));
        let (s, _) = server.admin(
            "PUT",
            &format!("/v1/buckets/{BUCKET}/quota"),
            Some(r#"{"quota_bytes":null}"#),
        );
        assert_eq!(s, 200);
        let (cap, _, used) = capacity_numbers(&c).await;
        assert_eq!(used, 300_000);
        assert_ne!(cap, 2_000_000);
    });
}
