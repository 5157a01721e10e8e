//! Versioning, delete markers and listings as S3 defines them, through aws-sdk-s3 against
//! the real server binary.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use stele_tests::{error_code, error_status, runtime as rt, start_default as start};

async fn put(c: &Client, bucket: &str, key: &str, body: &str) -> Option<String> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"))
        .version_id()
        .map(str::to_owned)
}

async fn get(c: &Client, bucket: &str, key: &str, version: Option<&str>) -> String {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key} {version:?}: {e:?}"));
    String::from_utf8(
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec(),
    )
    .expect("utf-8")
}

async fn set_versioning(c: &Client, bucket: &str, status: BucketVersioningStatus) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .expect("put versioning");
}

#[test]
fn unversioned_bucket_keeps_one_null_version_per_key() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("plain")
            .send()
            .await
            .expect("create");
        let v = c
            .get_bucket_versioning()
            .bucket("plain")
            .send()
            .await
            .expect("versioning");
        assert_eq!(v.status(), None);
        assert_eq!(
            put(&c, "plain", "k", "one").await,
            None,
            "no version id when unversioned"
        );
        put(&c, "plain", "k", "two").await;
        assert_eq!(get(&c, "plain", "k", None).await, "two");
        // rclone asks for versionId=null on unversioned buckets.
        assert_eq!(get(&c, "plain", "k", Some("null")).await, "two");
        c.head_object()
            .bucket("plain")
            .key("k")
            .version_id("null")
            .send()
            .await
            .expect("head null");
        let vs = c
            .list_object_versions()
            .bucket("plain")
            .send()
            .await
            .expect("versions");
        assert_eq!(vs.versions().len(), 1);
        assert_eq!(vs.versions()[0].version_id(), Some("null"));

        let d = c
            .delete_object()
            .bucket("plain")
            .key("k")
            .send()
            .await
            .expect("delete");
        assert_eq!(d.delete_marker(), None);
        let e = c
            .get_object()
            .bucket("plain")
            .key("k")
            .send()
            .await
            .expect_err("gone");
        assert_eq!(error_code(&e), "NoSuchKey");
        c.delete_object()
            .bucket("plain")
            .key("never-was")
            .send()
            .await
            .expect("idempotent");
        let vs = c
            .list_object_versions()
            .bucket("plain")
            .send()
            .await
            .expect("versions");
        assert!(vs.versions().is_empty() && vs.delete_markers().is_empty());
    });
}

#[test]
fn versioned_bucket_keeps_every_version_and_delete_markers() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("vers")
            .send()
            .await
            .expect("create");
        set_versioning(&c, "vers", BucketVersioningStatus::Enabled).await;
        let v = c
            .get_bucket_versioning()
            .bucket("vers")
            .send()
            .await
            .expect("versioning");
        assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));

        let v1 = put(&c, "vers", "k", "one").await.expect("version id");
        let v2 = put(&c, "vers", "k", "two").await.expect("version id");
        assert_ne!(v1, v2);
        assert_eq!(get(&c, "vers", "k", None).await, "two");
        assert_eq!(get(&c, "vers", "k", Some(&v1)).await, "one");

        let d = c
            .delete_object()
            .bucket("vers")
            .key("k")
            .send()
            .await
            .expect("delete");
        assert_eq!(d.delete_marker(), Some(true));
        let marker = d.version_id().expect("marker id").to_owned();
        let e = c
            .get_object()
            .bucket("vers")
            .key("k")
            .send()
            .await
            .expect_err("hidden");
        assert_eq!(error_code(&e), "NoSuchKey");
        assert_eq!(error_status(&e), 404);
        let e = c
            .get_object()
            .bucket("vers")
            .key("k")
            .version_id(&marker)
            .send()
            .await
            .expect_err("a marker has no body");
        assert_eq!(error_status(&e), 405);
        assert_eq!(
            get(&c, "vers", "k", Some(&v2)).await,
            "two",
            "data survives the marker"
        );

        let listed = c
            .list_objects_v2()
            .bucket("vers")
            .send()
            .await
            .expect("list");
        assert_eq!(listed.key_count(), Some(0), "a deleted key is not listed");

        put(&c, "vers", "a", "other").await;
        let vs = c
            .list_object_versions()
            .bucket("vers")
            .send()
            .await
            .expect("versions");
        let order: Vec<(String, String, bool)> = vs
            .versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or_default().to_owned(),
                    v.is_latest().unwrap_or(false),
                )
            })
            .collect();
        assert_eq!(order.len(), 3);
        assert_eq!(order[0].0, "a");
        assert!(order[0].2);
        assert_eq!((order[1].1.as_str(), order[1].2), (v2.as_str(), false));
        assert_eq!((order[2].1.as_str(), order[2].2), (v1.as_str(), false));
        assert_eq!(vs.delete_markers().len(), 1);
        assert_eq!(vs.delete_markers()[0].version_id(), Some(marker.as_str()));
        assert_eq!(vs.delete_markers()[0].is_latest(), Some(true));

        // Paging through versions one at a time visits the same sequence.
        let mut seen = Vec::new();
        let (mut km, mut vm) = (None::<String>, None::<String>);
        loop {
            let page = c
                .list_object_versions()
                .bucket("vers")
                .max_keys(1)
                .set_key_marker(km.clone())
                .set_version_id_marker(vm.clone())
                .send()
                .await
                .expect("page");
            for v in page.versions() {
                seen.push(v.version_id().unwrap_or_default().to_owned());
            }
            for m in page.delete_markers() {
                seen.push(m.version_id().unwrap_or_default().to_owned());
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            km = page.next_key_marker().map(str::to_owned);
            vm = page.next_version_id_marker().map(str::to_owned);
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(&seen[1..], [marker.clone(), v2.clone(), v1.clone()]);

        // Removing the marker by id brings the object back.
        c.delete_object()
            .bucket("vers")
            .key("k")
            .version_id(&marker)
            .send()
            .await
            .expect("rm marker");
        assert_eq!(get(&c, "vers", "k", None).await, "two");
        // Removing a version by id removes exactly that version.
        let d = c
            .delete_object()
            .bucket("vers")
            .key("k")
            .version_id(&v2)
            .send()
            .await
            .expect("rm v2");
        assert_eq!(d.version_id(), Some(v2.as_str()));
        assert_eq!(get(&c, "vers", "k", None).await, "one");

        let e = c
            .delete_bucket()
            .bucket("vers")
            .send()
            .await
            .expect_err("not empty");
        assert_eq!(error_code(&e), "BucketNotEmpty");
        assert_eq!(error_status(&e), 409);

        // Suspended: new writes are null versions that replace each other, ids stay.
        set_versioning(&c, "vers", BucketVersioningStatus::Suspended).await;
        assert_eq!(put(&c, "vers", "k", "n1").await.as_deref(), Some("null"));
        assert_eq!(put(&c, "vers", "k", "n2").await.as_deref(), Some("null"));
        let vs = c
            .list_object_versions()
            .bucket("vers")
            .prefix("k")
            .send()
            .await
            .expect("versions");
        let ids: Vec<_> = vs
            .versions()
            .iter()
            .filter_map(|v| v.version_id())
            .collect();
        assert_eq!(ids, ["null", v1.as_str()]);
        assert_eq!(get(&c, "vers", "k", Some("null")).await, "n2");

        let e = c
            .get_object()
            .bucket("vers")
            .key("k")
            .version_id("not-a-version")
            .send()
            .await
            .expect_err("malformed id");
        assert_eq!(error_code(&e), "InvalidArgument");

        // Empty it, then the bucket can go.
        for (k, v) in [("k", "null"), ("k", v1.as_str())] {
            c.delete_object()
                .bucket("vers")
                .key(k)
                .version_id(v)
                .send()
                .await
                .expect("rm");
        }
        let vs = c
            .list_object_versions()
            .bucket("vers")
            .send()
            .await
            .expect("versions");
        for v in vs.versions() {
            c.delete_object()
                .bucket("vers")
                .key(v.key().unwrap_or_default())
                .version_id(v.version_id().unwrap_or_default())
                .send()
                .await
                .expect("rm");
        }
        c.delete_bucket()
            .bucket("vers")
            .send()
            .await
            .expect("delete empty bucket");
        let e = c
            .head_bucket()
            .bucket("vers")
            .send()
            .await
            .expect_err("gone");
        assert_eq!(error_status(&e), 404);
    });
}

#[test]
fn listings_page_by_prefix_delimiter_and_tokens() {
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("lists")
            .send()
            .await
            .expect("create");
        let keys = [
            "a.txt",
            "dir/1",
            "dir/2",
            "dir/sub/3",
            "dirt",
            "e f+g",
            "z/9",
        ];
        for k in keys {
            put(&c, "lists", k, k).await;
        }
        let loc = c
            .get_bucket_location()
            .bucket("lists")
            .send()
            .await
            .expect("location");
        // us-east-1 is an empty LocationConstraint.
        assert_eq!(loc.location_constraint().map_or("", |l| l.as_str()), "");

        let all = c
            .list_objects_v2()
            .bucket("lists")
            .send()
            .await
            .expect("list");
        let got: Vec<_> = all.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, keys);
        assert_eq!(all.contents()[0].size(), Some(5));

        let d = c
            .list_objects_v2()
            .bucket("lists")
            .delimiter("/")
            .send()
            .await
            .expect("list");
        let got: Vec<_> = d.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, ["a.txt", "dirt", "e f+g"]);
        let cps: Vec<_> = d
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect();
        assert_eq!(cps, ["dir/", "z/"]);

        let p = c
            .list_objects_v2()
            .bucket("lists")
            .prefix("dir/")
            .delimiter("/")
            .send()
            .await
            .expect("list");
        let got: Vec<_> = p.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, ["dir/1", "dir/2"]);
        let cps: Vec<_> = p
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect();
        assert_eq!(cps, ["dir/sub/"]);

        // Pages of two, by continuation token, cover everything once.
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = c
                .list_objects_v2()
                .bucket("lists")
                .max_keys(2)
                .set_continuation_token(token.clone())
                .send()
                .await
                .expect("page");
            assert!(page.key_count().unwrap_or(0) <= 2);
            seen.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(str::to_owned),
            );
            if page.is_truncated() != Some(true) {
                break;
            }
            token = page.next_continuation_token().map(str::to_owned);
        }
        assert_eq!(seen, keys);

        let after = c
            .list_objects_v2()
            .bucket("lists")
            .start_after("dir/sub/3")
            .send()
            .await
            .expect("list");
        let got: Vec<_> = after.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, ["dirt", "e f+g", "z/9"]);

        // v1 with a marker, and delimiter paging through common prefixes.
        let v1 = c
            .list_objects()
            .bucket("lists")
            .marker("dirt")
            .send()
            .await
            .expect("v1");
        let got: Vec<_> = v1.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, ["e f+g", "z/9"]);
        let page1 = c
            .list_objects()
            .bucket("lists")
            .delimiter("/")
            .max_keys(2)
            .send()
            .await
            .expect("v1");
        assert_eq!(page1.is_truncated(), Some(true));
        assert_eq!(page1.next_marker(), Some("dir/"));
        let page2 = c
            .list_objects()
            .bucket("lists")
            .delimiter("/")
            .marker("dir/")
            .send()
            .await
            .expect("v1");
        let got: Vec<_> = page2.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, ["dirt", "e f+g"]);

        // encoding-type=url: keys come back URL-encoded; fetch-owner adds the owner.
        let enc = c
            .list_objects_v2()
            .bucket("lists")
            .prefix("e")
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .fetch_owner(true)
            .send()
            .await
            .expect("encoded");
        let got: Vec<_> = enc.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(got, ["e%20f%2Bg"]);
        assert!(enc.contents()[0].owner().is_some());
        let plain = c
            .list_objects_v2()
            .bucket("lists")
            .prefix("e")
            .send()
            .await
            .expect("plain");
        assert!(
            plain.contents()[0].owner().is_none(),
            "owner only with fetch-owner"
        );

        let e = c
            .list_objects_v2()
            .bucket("lists")
            .continuation_token("zz")
            .send()
            .await
            .expect_err("bad token");
        assert_eq!(error_code(&e), "InvalidArgument");
        let e = c
            .list_objects_v2()
            .bucket("nope")
            .send()
            .await
            .expect_err("no bucket");
        assert_eq!(error_code(&e), "NoSuchBucket");
    });
}

#[test]
fn delete_objects_removes_versions_and_adds_markers_in_one_request() {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let (_dir, server) = start();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("batch")
            .send()
            .await
            .expect("create");
        set_versioning(&c, "batch", BucketVersioningStatus::Enabled).await;
        let v_a = put(&c, "batch", "a", "a").await.expect("id");
        put(&c, "batch", "b", "b").await;
        put(&c, "batch", "c", "c").await;
        let ids = vec![
            ObjectIdentifier::builder()
                .key("a")
                .version_id(&v_a)
                .build()
                .expect("id"),
            ObjectIdentifier::builder().key("b").build().expect("id"),
            ObjectIdentifier::builder()
                .key("never-was")
                .build()
                .expect("id"),
            ObjectIdentifier::builder()
                .key("c")
                .version_id("not-a-version")
                .build()
                .expect("id"),
        ];
        let out = c
            .delete_objects()
            .bucket("batch")
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect("delete objects");
        let deleted: Vec<_> = out
            .deleted()
            .iter()
            .map(|d| (d.key().unwrap_or_default().to_owned(), d.delete_marker()))
            .collect();
        assert_eq!(deleted.len(), 3, "{deleted:?}");
        assert!(deleted.contains(&("a".into(), None)), "{deleted:?}");
        assert!(deleted.contains(&("b".into(), Some(true))), "{deleted:?}");
        let errors: Vec<_> = out
            .errors()
            .iter()
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_owned(),
                    e.code().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(errors, [("c".to_owned(), "InvalidArgument".to_owned())]);
        // a's only version is gone, b is hidden by a marker, c is untouched; as in S3, a
        // key that never existed gets a delete marker too in a versioned bucket.
        let vs = c
            .list_object_versions()
            .bucket("batch")
            .send()
            .await
            .expect("versions");
        let keys: Vec<_> = vs.versions().iter().filter_map(|v| v.key()).collect();
        assert_eq!(keys, ["b", "c"]);
        let markers: Vec<_> = vs.delete_markers().iter().filter_map(|m| m.key()).collect();
        assert_eq!(markers, ["b", "never-was"]);
        assert_eq!(get(&c, "batch", "c", None).await, "c");

        // Quiet mode reports only errors.
        let quiet = c
            .delete_objects()
            .bucket("batch")
            .delete(
                Delete::builder()
                    .objects(ObjectIdentifier::builder().key("c").build().expect("id"))
                    .quiet(true)
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect("quiet");
        assert!(quiet.deleted().is_empty() && quiet.errors().is_empty());
    });
}
