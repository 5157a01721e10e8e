//! Object operations: PUT, GET, HEAD, DELETE (one and many), copy, attributes, tagging,
//! retention and legal hold, ACLs.

use super::*;

/// The stored headers a GET or HEAD answers with (content type, cache control,
/// disposition, encoding, language, expiry): the version's, each unless the request's
/// `response-*` parameter overrides it (as S3 lets GET and HEAD do).
struct Shown {
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<dto::Timestamp>,
}

macro_rules! shown_headers {
    ($input:expr, $rec:expr) => {
        Shown {
            content_type: $input
                .response_content_type
                .clone()
                .or_else(|| $rec.content_type.clone()),
            cache_control: $input
                .response_cache_control
                .clone()
                .or_else(|| $rec.system.cache_control.clone()),
            content_disposition: $input
                .response_content_disposition
                .clone()
                .or_else(|| $rec.system.content_disposition.clone()),
            content_encoding: $input
                .response_content_encoding
                .clone()
                .or_else(|| $rec.system.content_encoding.clone()),
            content_language: $input
                .response_content_language
                .clone()
                .or_else(|| $rec.system.content_language.clone()),
            expires: $input
                .response_expires
                .clone()
                .or_else(|| $rec.system.expires.map(time)),
        }
    };
}

pub(super) async fn put_object(
    s3: &SteleS3,
    req: S3Request<dto::PutObjectInput>,
) -> S3Result<S3Response<dto::PutObjectOutput>> {
    if req.headers.contains_key(super::replication::HEADER) {
        // The access check asked for the replication-peer role (`auth::action_for`).
        return super::replication::replicate(s3, req).await;
    }
    body_headers(&req.headers)?;
    let trailers = req.trailing_headers.clone();
    let input = req.input;
    acl_headers!(input, None)?;
    let (checksum, content_md5) = body_digests!(input, trailers);
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let opts = PutOptions {
        content_type: input.content_type.clone(),
        system: system_meta!(input),
        user_meta: input.metadata.unwrap_or_default().into_iter().collect(),
        content_length: input.content_length.map(|l| l.max(0) as u64),
        content_md5,
        checksum,
        condition: conditions::write_condition(
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
        )?,
        tags: input
            .tagging
            .as_deref()
            .map(parse_tagging)
            .transpose()?
            .unwrap_or_default(),
        lock: lock_request!(input)?,
        verified_source: false,
        checksum_algorithm: None,
    };
    let body = body_stream(input.body);
    let out = s3
        .node
        .put_object(&bucket, &key, opts, body)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(with_checksums!(
        dto::PutObjectOutput {
            e_tag: Some(etag(&out.etag)),
            version_id: versioned(&s3.node, &bucket, out.version).await,
        },
        |a| checksum::value(&out.checksums, a)
    )))
}

pub(super) async fn get_object(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectInput>,
) -> S3Result<S3Response<dto::GetObjectOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let range = match (input.range, input.part_number) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                s3s::S3ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        (None, Some(n)) if n >= 1 => Some(ByteRange::Part { number: n as u32 }),
        (None, Some(_)) => {
            return Err(bad_request(
                s3s::S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
        (r, None) => r.map(|r| match r {
            dto::Range::Int {
                first,
                last: Some(last),
            } => ByteRange::FromTo { first, last },
            dto::Range::Int { first, last: None } => ByteRange::From { first },
            dto::Range::Suffix { length } => ByteRange::Suffix { len: length },
        }),
    };
    let read = s3
        .node
        .get_object(&bucket, &key, version.as_ref(), range)
        .await
        .map_err(to_s3)?;
    let rec = &read.record;
    conditions::check(
        &conditions::Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &rec.etag,
        rec.created,
        false,
    )?;
    let (start, end) = read.range;
    let content_range = range
        .filter(|_| end > start)
        .map(|_| format!("bytes {}-{}/{}", start, end - 1, rec.size));
    let parts_count = matches!(range, Some(ByteRange::Part { .. }))
        .then(|| multipart_parts(rec))
        .flatten();
    let shown = shown_headers!(input, rec);
    let output = dto::GetObjectOutput {
        body: Some(StreamingBlob::wrap(read.body)),
        content_length: Some((end - start) as i64),
        content_range,
        content_type: shown.content_type,
        cache_control: shown.cache_control,
        content_disposition: shown.content_disposition,
        content_encoding: shown.content_encoding,
        content_language: shown.content_language,
        expires: shown.expires,
        e_tag: Some(etag(&rec.etag)),
        last_modified: Some(time(rec.created)),
        metadata: Some(rec.user_meta.iter().cloned().collect()),
        accept_ranges: Some("bytes".into()),
        version_id: versioned(&s3.node, &bucket, rec.version_ref()).await,
        parts_count,
        tag_count: (read.tag_count > 0).then_some(read.tag_count as i32),
        ..Default::default()
    };
    let mut output = output;
    output.replication_status = super::replication::status_of(&s3.node, &bucket, &key, rec);
    let lock = object_lock::lock_headers(&read.lock);
    output.object_lock_mode = lock.mode;
    output.object_lock_retain_until_date = lock.until;
    output.object_lock_legal_hold_status = lock.legal_hold;
    if checksum::wanted(input.checksum_mode.as_ref()) && range.is_none() {
        output.checksum_crc32 = checksum::value_of(rec, ChecksumAlgorithm::Crc32);
        output.checksum_crc32c = checksum::value_of(rec, ChecksumAlgorithm::Crc32c);
        output.checksum_crc64nvme = checksum::value_of(rec, ChecksumAlgorithm::Crc64Nvme);
        output.checksum_sha1 = checksum::value_of(rec, ChecksumAlgorithm::Sha1);
        output.checksum_sha256 = checksum::value_of(rec, ChecksumAlgorithm::Sha256);
    }
    let mut resp = S3Response::new(output);
    if range.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}

pub(super) async fn head_object(
    s3: &SteleS3,
    req: S3Request<dto::HeadObjectInput>,
) -> S3Result<S3Response<dto::HeadObjectOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let want = checksum::wanted(input.checksum_mode.as_ref());
    let part = match input.part_number {
        None => None,
        Some(n) if n >= 1 => Some(n as u32),
        Some(_) => {
            return Err(bad_request(
                s3s::S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
    };
    let bucket2 = bucket.clone();
    let (rec, lock) = s3
        .node
        .head_object_with_lock(&bucket, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    // HEAD with partNumber describes that part, as GET would send it (206).
    let part = part
        .map(|n| {
            rec.part_interval(n).ok_or_else(|| {
                to_s3(stele::StoreError::PartNotInObject {
                    part_number: n,
                    parts: rec.parts_count(),
                })
            })
        })
        .transpose()?;
    let lock = object_lock::lock_headers(&lock);
    conditions::check(
        &conditions::Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &rec.etag,
        rec.created,
        false,
    )?;
    let shown = shown_headers!(input, rec);
    let mut resp = S3Response::new(with_checksums!(
        dto::HeadObjectOutput {
            content_length: Some(part.map_or(rec.size, |(a, b)| b - a) as i64),
            content_range: part.filter(|(a, b)| b > a).map(|(a, b)| format!(
                "bytes {}-{}/{}",
                a,
                b - 1,
                rec.size
            )),
            parts_count: part.and(multipart_parts(&rec)),
            content_type: shown.content_type,
            cache_control: shown.cache_control,
            content_disposition: shown.content_disposition,
            content_encoding: shown.content_encoding,
            content_language: shown.content_language,
            expires: shown.expires,
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(time(rec.created)),
            metadata: Some(rec.user_meta.iter().cloned().collect()),
            accept_ranges: Some("bytes".into()),
            version_id: versioned(&s3.node, &bucket2, rec.version_ref()).await,
            object_lock_mode: lock.mode,
            object_lock_retain_until_date: lock.until,
            object_lock_legal_hold_status: lock.legal_hold,
        },
        |a| want.then(|| checksum::value_of(&rec, a)).flatten()
    ));
    resp.output.replication_status = super::replication::status_of(&s3.node, &bucket2, &key, &rec);
    if part.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}

pub(super) async fn delete_object(
    s3: &SteleS3,
    req: S3Request<dto::DeleteObjectInput>,
) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
    let bypass = object_lock::bypass(
        &s3.node,
        &req,
        &req.input.bucket,
        req.input.bypass_governance_retention,
    )
    .await;
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let out = s3
        .node
        .delete_object(&bucket, &key, version.as_ref(), bypass)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::DeleteObjectOutput {
        delete_marker: out.delete_marker.then_some(true),
        // An unversioned bucket's answers name no version, as S3's.
        version_id: match out.version {
            Some(v) => versioned(&s3.node, &bucket, v).await,
            None => None,
        },
        ..Default::default()
    }))
}

pub(super) async fn delete_objects(
    s3: &SteleS3,
    req: S3Request<dto::DeleteObjectsInput>,
) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
    let bypass = object_lock::bypass(
        &s3.node,
        &req,
        &req.input.bucket,
        req.input.bypass_governance_retention,
    )
    .await;
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    if input.delete.objects.len() > 1000 {
        return Err(bad_request(
            s3s::S3ErrorCode::MalformedXML,
            "A DeleteObjects request names at most 1000 keys.",
        ));
    }
    s3.node.bucket(&bucket).await.map_err(to_s3)?;
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for obj in &input.delete.objects {
        let outcome = async {
            let key = object_key(&obj.key)?;
            let version = version_ref(obj.version_id.as_deref())?;
            s3.node
                .delete_object(&bucket, &key, version.as_ref(), bypass)
                .await
                .map_err(to_s3)
        }
        .await;
        match outcome {
            Ok(out) => {
                if !quiet {
                    let marker_id = out
                        .delete_marker
                        .then(|| out.version.map(|v| v.to_string()))
                        .flatten();
                    deleted.push(dto::DeletedObject {
                        key: Some(obj.key.clone()),
                        version_id: obj.version_id.clone(),
                        delete_marker: out.delete_marker.then_some(true),
                        delete_marker_version_id: if obj.version_id.is_none() {
                            marker_id
                        } else {
                            None
                        },
                    });
                }
            }
            Err(e) => errors.push(dto::Error {
                key: Some(obj.key.clone()),
                version_id: obj.version_id.clone(),
                code: Some(e.code().as_str().to_owned()),
                message: e.message().map(str::to_owned),
            }),
        }
    }
    Ok(S3Response::new(dto::DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}

pub(super) async fn copy_object(
    s3: &SteleS3,
    req: S3Request<dto::CopyObjectInput>,
) -> S3Result<S3Response<dto::CopyObjectOutput>> {
    let input = req.input;
    acl_headers!(input, None)?;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let src = s3
        .pinned_source(&input.copy_source, &copy_source_conditions!(input))
        .await?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == dto::MetadataDirective::REPLACE);
    let directive = if replace {
        MetadataDirective::Replace {
            system: system_meta!(input),
            content_type: input.content_type.clone(),
            user_meta: input
                .metadata
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        }
    } else {
        MetadataDirective::Copy
    };
    let replace_tags = input
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == dto::TaggingDirective::REPLACE);
    let tags = if replace_tags {
        Some(
            input
                .tagging
                .as_deref()
                .map(parse_tagging)
                .transpose()?
                .unwrap_or_default(),
        )
    } else {
        None
    };
    let lock = lock_request!(input)?;
    let (out, source) = s3
        .node
        .copy_object(&src, &bucket, &key, directive, tags, lock)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::CopyObjectOutput {
        copy_object_result: Some(dto::CopyObjectResult {
            e_tag: Some(etag(&out.etag)),
            last_modified: Some(time(out.created)),
            ..Default::default()
        }),
        version_id: versioned(&s3.node, &bucket, out.version).await,
        copy_source_version_id: versioned(&s3.node, &src.bucket, source.version_ref()).await,
        ..Default::default()
    }))
}

pub(super) async fn get_object_retention(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectRetentionInput>,
) -> S3Result<S3Response<dto::GetObjectRetentionOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let lock = s3
        .node
        .object_lock(&bucket, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    // S3 answers 404 for a version that has no retention (never set, or removed).
    let retention = object_lock::retention_dto(&lock).ok_or_else(|| {
        s3s::S3Error::with_message(
            s3s::S3ErrorCode::NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration",
        )
    })?;
    Ok(S3Response::new(dto::GetObjectRetentionOutput {
        retention: Some(retention),
    }))
}

pub(super) async fn put_object_retention(
    s3: &SteleS3,
    req: S3Request<dto::PutObjectRetentionInput>,
) -> S3Result<S3Response<dto::PutObjectRetentionOutput>> {
    let bypass = object_lock::bypass(
        &s3.node,
        &req,
        &req.input.bucket,
        req.input.bypass_governance_retention,
    )
    .await;
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let requested = object_lock::parse_retention(input.retention.as_ref())?;
    s3.node
        .set_object_retention(&bucket, &key, version.as_ref(), requested, bypass)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::PutObjectRetentionOutput::default()))
}

pub(super) async fn get_object_legal_hold(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectLegalHoldInput>,
) -> S3Result<S3Response<dto::GetObjectLegalHoldOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let lock = s3
        .node
        .object_lock(&bucket, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::GetObjectLegalHoldOutput {
        legal_hold: Some(object_lock::legal_hold_dto(&lock)),
    }))
}

pub(super) async fn put_object_legal_hold(
    s3: &SteleS3,
    req: S3Request<dto::PutObjectLegalHoldInput>,
) -> S3Result<S3Response<dto::PutObjectLegalHoldOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let on = object_lock::parse_legal_hold(input.legal_hold.as_ref())?;
    s3.node
        .set_object_legal_hold(&bucket, &key, version.as_ref(), on)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::PutObjectLegalHoldOutput::default()))
}

pub(super) async fn get_object_tagging(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectTaggingInput>,
) -> S3Result<S3Response<dto::GetObjectTaggingOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let b = bucket.clone();
    let (rec, tags) = s3
        .node
        .object_tags(&b, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::GetObjectTaggingOutput {
        tag_set: tags
            .into_iter()
            .map(|(k, v)| dto::Tag {
                key: Some(k),
                value: Some(v),
            })
            .collect(),
        version_id: versioned(&s3.node, &bucket, rec.version_ref()).await,
    }))
}

pub(super) async fn put_object_tagging(
    s3: &SteleS3,
    req: S3Request<dto::PutObjectTaggingInput>,
) -> S3Result<S3Response<dto::PutObjectTaggingOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let tags: Vec<(String, String)> = input
        .tagging
        .tag_set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    let b = bucket.clone();
    let rec = s3
        .node
        .set_object_tags(&b, &key, version.as_ref(), tags)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::PutObjectTaggingOutput {
        version_id: versioned(&s3.node, &bucket, rec.version_ref()).await,
    }))
}

pub(super) async fn delete_object_tagging(
    s3: &SteleS3,
    req: S3Request<dto::DeleteObjectTaggingInput>,
) -> S3Result<S3Response<dto::DeleteObjectTaggingOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let b = bucket.clone();
    let rec = s3
        .node
        .set_object_tags(&b, &key, version.as_ref(), Vec::new())
        .await
        .map_err(to_s3)?;
    let mut resp = S3Response::new(dto::DeleteObjectTaggingOutput {
        version_id: versioned(&s3.node, &bucket, rec.version_ref()).await,
    });
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(super) async fn get_object_acl(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectAclInput>,
) -> S3Result<S3Response<dto::GetObjectAclOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    s3.node
        .head_object(&bucket, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(dto::GetObjectAclOutput {
        grants: Some(acl::grants()),
        owner: Some(owner()),
        ..Default::default()
    }))
}

pub(super) async fn put_object_acl(
    s3: &SteleS3,
    req: S3Request<dto::PutObjectAclInput>,
) -> S3Result<S3Response<dto::PutObjectAclOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    s3.node
        .head_object(&bucket, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    acl_headers!(input, input.grant_write.as_deref())?;
    acl::check_policy(input.access_control_policy.as_ref())?;
    Ok(S3Response::new(dto::PutObjectAclOutput::default()))
}

pub(super) async fn get_object_attributes(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectAttributesInput>,
) -> S3Result<S3Response<dto::GetObjectAttributesOutput>> {
    let input = req.input;
    let bucket = bucket_name(&input.bucket)?;
    let key = object_key(&input.key)?;
    let version = version_ref(input.version_id.as_deref())?;
    let b = bucket.clone();
    let rec = s3
        .node
        .head_object(&b, &key, version.as_ref())
        .await
        .map_err(to_s3)?;
    // The attribute list arrives as repeated headers (the SDKs) or as one
    // comma-separated header (the aws CLI): both name the same set.
    let want = |a: &str| {
        input
            .object_attributes
            .iter()
            .flat_map(|x| x.as_str().split(','))
            .any(|x| x.trim() == a)
    };
    let checksum = want(dto::ObjectAttributes::CHECKSUM)
        .then(|| with_checksums!(dto::Checksum {}, |a| checksum::value_of(&rec, a)))
        .filter(|_| !rec.checksums.is_empty());
    let object_parts =
        (want(dto::ObjectAttributes::OBJECT_PARTS) && rec.etag.contains('-')).then(|| {
            let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
            let max = input.max_parts.map_or(1000, |m| m.clamp(0, 1000)) as u32;
            let total = rec.parts_count();
            let parts: Vec<dto::ObjectPart> = (marker + 1..=total)
                .take(max as usize)
                .filter_map(|n| {
                    rec.part_interval(n).map(|(a, b)| dto::ObjectPart {
                        part_number: Some(n as i32),
                        size: Some((b - a) as i64),
                        ..Default::default()
                    })
                })
                .collect();
            let last = parts.last().and_then(|p| p.part_number);
            let truncated = last.is_some_and(|l| (l as u32) < total);
            dto::GetObjectAttributesParts {
                total_parts_count: Some(total as i32),
                part_number_marker: input.part_number_marker,
                next_part_number_marker: if truncated { last } else { None },
                max_parts: Some(max as i32),
                is_truncated: Some(truncated),
                parts: Some(parts),
            }
        });
    Ok(S3Response::new(dto::GetObjectAttributesOutput {
        e_tag: want(dto::ObjectAttributes::ETAG).then(|| etag(&rec.etag)),
        object_size: want(dto::ObjectAttributes::OBJECT_SIZE).then_some(rec.size as i64),
        storage_class: want(dto::ObjectAttributes::STORAGE_CLASS)
            .then(|| dto::StorageClass::from_static(dto::StorageClass::STANDARD)),
        checksum,
        object_parts,
        last_modified: Some(time(rec.created)),
        version_id: versioned(&s3.node, &bucket, rec.version_ref()).await,
        ..Default::default()
    }))
}
