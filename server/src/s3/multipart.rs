//! Multipart uploads: create, upload a part (or copy one), complete, abort, list parts
//! and uploads.

use super::*;

pub(super) async fn create_multipart_upload(
    s3: &SteleS3,
    req: S3Request<dto::CreateMultipartUploadInput>,
) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
    let input = req.input;
    acl_headers!(input, None)?;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let algorithm = input
        .checksum_algorithm
        .as_ref()
        .map(|a| {
            ChecksumAlgorithm::parse(a.as_str()).ok_or_else(|| {
                bad_request(
                    s3s::S3ErrorCode::InvalidRequest,
                    "Checksum algorithm provided is unsupported",
                )
            })
        })
        .transpose()?;
    let opts = PutOptions {
        content_type: input.content_type.clone(),
        system: system_meta!(input),
        checksum_algorithm: algorithm,
        user_meta: input.metadata.unwrap_or_default().into_iter().collect(),
        tags: input
            .tagging
            .as_deref()
            .map(parse_tagging)
            .transpose()?
            .unwrap_or_default(),
        lock: lock_request!(input)?,
        ..Default::default()
    };
    let (b, k) = (bucket.clone(), key.clone());
    let id = s3
        .node
        .create_multipart_upload(&b, &k, opts)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::CreateMultipartUploadOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        upload_id: Some(id.to_string()),
        checksum_algorithm: input.checksum_algorithm.clone(),
        checksum_type: input.checksum_type.clone(),
        ..Default::default()
    }))
}

pub(super) async fn upload_part(
    s3: &SteleS3,
    req: S3Request<dto::UploadPartInput>,
) -> S3Result<S3Response<dto::UploadPartOutput>> {
    body_headers(&req.headers)?;
    let trailers = req.trailing_headers.clone();
    let input = req.input;
    let (checksum, content_md5) = body_digests!(input, trailers);
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let opts = PutOptions {
        content_length: input.content_length.map(|l| l.max(0) as u64),
        content_md5,
        checksum,
        ..Default::default()
    };
    let part = s3
        .node
        .upload_part(
            &bucket,
            &key,
            &input.upload_id,
            input.part_number,
            opts,
            body_stream(input.body),
        )
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(with_checksums!(
        dto::UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
        },
        |a| checksum::value(&part.checksums, a)
    )))
}

pub(super) async fn complete_multipart_upload(
    s3: &SteleS3,
    req: S3Request<dto::CompleteMultipartUploadInput>,
) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let chosen: Vec<CompletedPart> = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            Ok(CompletedPart {
                part_number: p.part_number.unwrap_or(0),
                etag: p
                    .e_tag
                    .as_ref()
                    .map(etag_value)
                    .unwrap_or_default()
                    .to_owned(),
                checksum: checksum::claimed(&checksum_fields!(p, None))?,
            })
        })
        .collect::<S3Result<_>>()?;
    let full_object = input
        .checksum_type
        .as_ref()
        .is_some_and(|t| t.as_str() == dto::ChecksumType::FULL_OBJECT);
    let kind = if full_object {
        MultipartChecksum::FullObject {
            claimed: checksum::claimed(&checksum_fields!(input, None))?,
        }
    } else {
        MultipartChecksum::Composite
    };
    let condition =
        conditions::write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let out = s3
        .node
        .complete_multipart_upload(&bucket, &key, &input.upload_id, chosen, kind, condition)
        .await
        .map_err(to_s3)?;
    let shown = |a| {
        if full_object {
            checksum::value(&out.checksums, a)
        } else {
            composite(&out, a)
        }
    };
    Ok(S3Response::new(with_checksums!(
        dto::CompleteMultipartUploadOutput {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            e_tag: Some(etag(&out.etag)),
            location: Some(format!("/{bucket}/{key}")),
            version_id: versioned(&s3.node, &bucket, out.version).await,
            checksum_type: (!out.checksums.is_empty()).then(|| {
                dto::ChecksumType::from_static(if full_object {
                    dto::ChecksumType::FULL_OBJECT
                } else {
                    dto::ChecksumType::COMPOSITE
                })
            }),
        },
        shown
    )))
}

pub(super) async fn abort_multipart_upload(
    s3: &SteleS3,
    req: S3Request<dto::AbortMultipartUploadInput>,
) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let id = input.upload_id.clone();
    s3.node
        .abort_multipart_upload(&bucket, &key, &id)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
}

pub(super) async fn list_parts(
    s3: &SteleS3,
    req: S3Request<dto::ListPartsInput>,
) -> S3Result<S3Response<dto::ListPartsOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let (b, k, id) = (bucket.clone(), key.clone(), input.upload_id.clone());
    let (parts, algorithm) = s3.node.list_parts(&b, &k, &id).await.map_err(to_s3)?;
    let marker = input.part_number_marker.unwrap_or(0);
    let max = input.max_parts.map_or(1000, |m| m.clamp(0, 1000)) as usize;
    let after: Vec<_> = parts
        .iter()
        .filter(|p| p.part_number as i32 > marker)
        .collect();
    let truncated = after.len() > max;
    let page: Vec<dto::Part> = after
        .iter()
        .take(max)
        .map(|p| dto::Part {
            part_number: Some(p.part_number as i32),
            e_tag: Some(etag(&p.etag)),
            size: Some(p.size as i64),
            last_modified: Some(time(p.created)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(dto::ListPartsOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        upload_id: Some(input.upload_id),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: truncated
            .then(|| page.last().and_then(|p| p.part_number))
            .flatten(),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(page),
        owner: Some(owner()),
        checksum_algorithm: algorithm.map(|a| dto::ChecksumAlgorithm::from(a.name().to_owned())),
        ..Default::default()
    }))
}

pub(super) async fn list_multipart_uploads(
    s3: &SteleS3,
    req: S3Request<dto::ListMultipartUploadsInput>,
) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let b = bucket.clone();
    let uploads = s3.node.list_uploads(&b).await.map_err(to_s3)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let id_marker = input.upload_id_marker.clone().unwrap_or_default();
    let max = input.max_uploads.map_or(1000, |m| m.clamp(0, 1000)) as usize;
    let enc = encoder(input.encoding_type.as_ref());
    let selected: Vec<_> = uploads
        .iter()
        .filter(|u| u.key.as_str().starts_with(&prefix))
        .filter(|u| {
            key_marker.is_empty()
                || u.key.as_str() > key_marker.as_str()
                || (u.key.as_str() == key_marker
                    && !id_marker.is_empty()
                    && u.upload_id.to_string() > id_marker)
        })
        .collect();
    let truncated = selected.len() > max;
    let page: Vec<_> = selected.into_iter().take(max).collect();
    Ok(S3Response::new(dto::ListMultipartUploadsOutput {
        bucket: Some(bucket.to_string()),
        prefix: Some(enc(&prefix)),
        key_marker: Some(enc(&key_marker)),
        upload_id_marker: Some(id_marker.clone()),
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: truncated
            .then(|| page.last().map(|u| enc(u.key.as_str())))
            .flatten(),
        next_upload_id_marker: truncated
            .then(|| page.last().map(|u| u.upload_id.to_string()))
            .flatten(),
        uploads: Some(
            page.iter()
                .map(|u| dto::MultipartUpload {
                    key: Some(enc(u.key.as_str())),
                    upload_id: Some(u.upload_id.to_string()),
                    initiated: Some(time(u.created)),
                    owner: Some(owner()),
                    ..Default::default()
                })
                .collect(),
        ),
        encoding_type: input.encoding_type.clone(),
        ..Default::default()
    }))
}

pub(super) async fn upload_part_copy(
    s3: &SteleS3,
    req: S3Request<dto::UploadPartCopyInput>,
) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let src = s3
        .pinned_source(&input.copy_source, &copy_source_conditions!(input))
        .await?;
    let range = input
        .copy_source_range
        .as_deref()
        .map(parse_copy_range)
        .transpose()?;
    let (part, source) = s3
        .node
        .upload_part_copy(
            &src,
            range,
            &bucket,
            &key,
            &input.upload_id,
            input.part_number,
        )
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::UploadPartCopyOutput {
        copy_part_result: Some(dto::CopyPartResult {
            e_tag: Some(etag(&part.etag)),
            last_modified: Some(time(part.created)),
            ..Default::default()
        }),
        copy_source_version_id: versioned(&s3.node, &src.bucket, source.version_ref()).await,
        ..Default::default()
    }))
}
