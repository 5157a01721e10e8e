//! Listings: ListObjects (v1 and v2) and ListObjectVersions.

use super::*;

pub(super) async fn list_objects_v2(
    s3: &SteleS3,
    req: S3Request<dto::ListObjectsV2Input>,
) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let max = max_keys(input.max_keys)?;
    let after = match &input.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => input.start_after.clone(),
    };
    let q = ListQuery {
        prefix: input.prefix.clone().unwrap_or_default(),
        delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
        after,
        max_keys: max,
    };
    let b = bucket.clone();
    let page = s3.node.list_objects(&b, q).await.map_err(to_s3)?;
    let enc = encoder(input.encoding_type.as_ref());
    let fetch_owner = input.fetch_owner.unwrap_or(false);
    let (contents, prefixes) = listing(&page, &enc, fetch_owner);
    Ok(S3Response::new(dto::ListObjectsV2Output {
        name: Some(bucket.to_string()),
        prefix: Some(enc(input.prefix.as_deref().unwrap_or(""))),
        delimiter: echoed_delimiter(input.delimiter.as_deref(), &enc),
        max_keys: Some(max as i32),
        key_count: Some((contents.len() + prefixes.len()) as i32),
        continuation_token: input.continuation_token.clone(),
        next_continuation_token: page
            .truncated
            .then(|| page.last.as_deref().map(encode_token))
            .flatten(),
        is_truncated: Some(page.truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type.clone(),
        start_after: input.start_after.as_deref().map(&enc),
        ..Default::default()
    }))
}

pub(super) async fn list_objects(
    s3: &SteleS3,
    req: S3Request<dto::ListObjectsInput>,
) -> S3Result<S3Response<dto::ListObjectsOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let max = max_keys(input.max_keys)?;
    let q = ListQuery {
        prefix: input.prefix.clone().unwrap_or_default(),
        delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
        after: input.marker.clone().filter(|m| !m.is_empty()),
        max_keys: max,
    };
    let b = bucket.clone();
    let page = s3.node.list_objects(&b, q).await.map_err(to_s3)?;
    let enc = encoder(input.encoding_type.as_ref());
    let (contents, prefixes) = listing(&page, &enc, true);
    // S3 sends NextMarker only with a delimiter; clients use the last key otherwise.
    let next_marker = (page.truncated && input.delimiter.as_deref().is_some_and(|d| !d.is_empty()))
        .then(|| page.last.as_deref().map(&enc))
        .flatten();
    Ok(S3Response::new(dto::ListObjectsOutput {
        name: Some(bucket.to_string()),
        prefix: Some(enc(input.prefix.as_deref().unwrap_or(""))),
        marker: Some(enc(input.marker.as_deref().unwrap_or(""))),
        delimiter: echoed_delimiter(input.delimiter.as_deref(), &enc),
        max_keys: Some(max as i32),
        is_truncated: Some(page.truncated),
        next_marker,
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type.clone(),
        ..Default::default()
    }))
}

pub(super) async fn list_object_versions(
    s3: &SteleS3,
    req: S3Request<dto::ListObjectVersionsInput>,
) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let max = max_keys(input.max_keys)?;
    let version_marker = version_ref(input.version_id_marker.as_deref().filter(|v| !v.is_empty()))?;
    let q = VersionsQuery {
        prefix: input.prefix.clone().unwrap_or_default(),
        delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
        key_marker: input.key_marker.clone().filter(|m| !m.is_empty()),
        version_marker,
        max_keys: max,
    };
    let b = bucket.clone();
    let page = s3.node.list_object_versions(&b, q).await.map_err(to_s3)?;
    let enc = encoder(input.encoding_type.as_ref());
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for v in &page.versions {
        let r = &v.record;
        match r.kind {
            VersionKind::Object => versions.push(dto::ObjectVersion {
                key: Some(enc(v.key.as_str())),
                version_id: Some(r.version_ref().to_string()),
                is_latest: Some(v.is_latest),
                e_tag: Some(etag(&r.etag)),
                last_modified: Some(time(r.created)),
                size: Some(r.size as i64),
                storage_class: Some(dto::ObjectVersionStorageClass::from_static(
                    dto::ObjectVersionStorageClass::STANDARD,
                )),
                owner: Some(owner()),
                ..Default::default()
            }),
            VersionKind::DeleteMarker => markers.push(dto::DeleteMarkerEntry {
                key: Some(enc(v.key.as_str())),
                version_id: Some(r.version_ref().to_string()),
                is_latest: Some(v.is_latest),
                last_modified: Some(time(r.created)),
                owner: Some(owner()),
            }),
        }
    }
    Ok(S3Response::new(dto::ListObjectVersionsOutput {
        name: Some(bucket.to_string()),
        prefix: Some(enc(input.prefix.as_deref().unwrap_or(""))),
        delimiter: echoed_delimiter(input.delimiter.as_deref(), &enc),
        key_marker: Some(enc(input.key_marker.as_deref().unwrap_or(""))),
        version_id_marker: Some(input.version_id_marker.clone().unwrap_or_default()),
        max_keys: Some(max as i32),
        is_truncated: Some(page.truncated),
        next_key_marker: page.next_key_marker.as_deref().map(&enc),
        next_version_id_marker: page.next_version_marker.map(|v| v.to_string()),
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(
            page.common_prefixes
                .iter()
                .map(|p| dto::CommonPrefix {
                    prefix: Some(enc(p)),
                })
                .collect(),
        ),
        encoding_type: input.encoding_type.clone(),
        ..Default::default()
    }))
}
