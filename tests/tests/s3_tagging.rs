//! Object tagging through aws-sdk-s3 against the real server binary.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
use stele_tests::{error_code, error_status, runtime as rt, start_default};

async fn tags(c: &Client, key: &str, version: Option<&str>) -> Vec<(String, String)> {
    let out = c
        .get_object_tagging()
        .bucket("tagged")
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("tags of {key}: {e:?}"));
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    Tagging::builder()
        .set_tag_set(Some(
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build().expect("tag"))
                .collect(),
        ))
        .build()
        .expect("tagging")
}

#[test]
fn tags_belong_to_versions_and_change_without_new_versions() {
    let (_dir, server) = start_default();
    let c = server.client();
    rt().block_on(async {
        c.create_bucket()
            .bucket("tagged")
            .send()
            .await
            .expect("create");
        c.put_bucket_versioning()
            .bucket("tagged")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
        let v1 = c
            .put_object()
            .bucket("tagged")
            .key("k")
            .tagging("retention=daily&owner=ops%20team")
            .body(ByteStream::from_static(b"one"))
            .send()
            .await
            .expect("put")
            .version_id()
            .expect("id")
            .to_owned();
        let get = c
            .get_object()
            .bucket("tagged")
            .key("k")
            .send()
            .await
            .expect("get");
        assert_eq!(get.tag_count(), Some(2));
        let mut got = tags(&c, "k", None).await;
        got.sort();
        assert_eq!(
            got,
            [
                ("owner".into(), "ops team".into()),
                ("retention".into(), "daily".into())
            ]
        );

        let v2 = c
            .put_object()
            .bucket("tagged")
            .key("k")
            .body(ByteStream::from_static(b"two"))
            .send()
            .await
            .expect("put")
            .version_id()
            .expect("id")
            .to_owned();
        assert!(
            tags(&c, "k", None).await.is_empty(),
            "a new version starts untagged"
        );
        assert_eq!(
            tags(&c, "k", Some(&v1)).await.len(),
            2,
            "old version keeps its tags"
        );

        c.put_object_tagging()
            .bucket("tagged")
            .key("k")
            .version_id(&v1)
            .tagging(tagging(&[("tier", "cold")]))
            .send()
            .await
            .expect("retag");
        assert_eq!(
            tags(&c, "k", Some(&v1)).await,
            [("tier".into(), "cold".into())]
        );
        let versions = c
            .list_object_versions()
            .bucket("tagged")
            .send()
            .await
            .expect("list");
        assert_eq!(versions.versions().len(), 2, "tagging creates no version");
        let head = c
            .head_object()
            .bucket("tagged")
            .key("k")
            .version_id(&v1)
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_length(), Some(3));

        // Copies take the source's tags unless told to replace them.
        c.copy_object()
            .bucket("tagged")
            .key("copy")
            .copy_source(format!("tagged/k?versionId={v1}"))
            .send()
            .await
            .expect("copy");
        assert_eq!(
            tags(&c, "copy", None).await,
            [("tier".into(), "cold".into())]
        );

        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let refs: Vec<(&str, &str)> = eleven
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let e = c
            .put_object_tagging()
            .bucket("tagged")
            .key("k")
            .tagging(tagging(&refs))
            .send()
            .await
            .expect_err("too many");
        assert_eq!(error_code(&e), "InvalidTag");
        assert_eq!(error_status(&e), 400);
        let e = c
            .put_object()
            .bucket("tagged")
            .key("bad")
            .tagging("a=1&a=2")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("duplicate key");
        assert_eq!(error_code(&e), "InvalidTag");

        // Tags given when a multipart upload starts land on the completed version.
        let id = c
            .create_multipart_upload()
            .bucket("tagged")
            .key("mp")
            .tagging("source=multipart")
            .send()
            .await
            .expect("create")
            .upload_id()
            .expect("id")
            .to_owned();
        let etag = c
            .upload_part()
            .bucket("tagged")
            .key("mp")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"part"))
            .send()
            .await
            .expect("part")
            .e_tag()
            .expect("etag")
            .to_owned();
        c.complete_multipart_upload()
            .bucket("tagged")
            .key("mp")
            .upload_id(&id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .parts(
                        aws_sdk_s3::types::CompletedPart::builder()
                            .part_number(1)
                            .e_tag(etag)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("complete");
        assert_eq!(
            tags(&c, "mp", None).await,
            [("source".into(), "multipart".into())]
        );

        c.delete_object_tagging()
            .bucket("tagged")
            .key("k")
            .version_id(&v1)
            .send()
            .await
            .expect("untag");
        assert!(tags(&c, "k", Some(&v1)).await.is_empty());

        c.delete_object()
            .bucket("tagged")
            .key("k")
            .version_id(&v2)
            .send()
            .await
            .expect("rm");
        let e = c
            .get_object_tagging()
            .bucket("tagged")
            .key("k")
            .version_id(&v2)
            .send()
            .await
            .expect_err("gone");
        assert_eq!(error_code(&e), "NoSuchVersion");
    });
}
