//! Bucket operations: create, list (paged), head, delete, location, versioning, lifecycle
//! and Object Lock configuration, ACLs.

use super::*;

/// ListBuckets, paged as Amazon S3 pages it since 2024: `max-buckets` (1 to 10000),
/// `continuation-token` (opaque: the last name of the previous page) and `prefix`.
pub(super) async fn list_buckets(
    s3: &SteleS3,
    req: S3Request<dto::ListBucketsInput>,
) -> S3Result<S3Response<dto::ListBucketsOutput>> {
    let input = req.input;
    let max = match input.max_buckets {
        None => usize::MAX,
        Some(m) if (1..=10_000).contains(&m) => m as usize,
        Some(_) => {
            return Err(bad_request(
                s3s::S3ErrorCode::InvalidArgument,
                "max-buckets must be an integer between 1 and 10000",
            ));
        }
    };
    let after = input
        .continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    let buckets = s3.node.buckets().await.map_err(to_s3)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let mut page: Vec<_> = buckets
        .into_iter()
        .filter(|b| b.name.as_str().starts_with(&prefix))
        .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a))
        .take(max.saturating_add(1))
        .collect();
    let more = page.len() > max;
    page.truncate(max);
    let next = more
        .then(|| page.last().map(|b| encode_token(b.name.as_str())))
        .flatten();
    let buckets = page
        .into_iter()
        .map(|b| dto::Bucket {
            name: Some(b.name.to_string()),
            creation_date: Some(time(b.created)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(dto::ListBucketsOutput {
        buckets: Some(buckets),
        continuation_token: next,
        owner: Some(owner()),
        prefix: input.prefix,
    }))
}

pub(super) async fn create_bucket(
    s3: &SteleS3,
    req: S3Request<dto::CreateBucketInput>,
) -> S3Result<S3Response<dto::CreateBucketOutput>> {
    acl_headers!(req.input, req.input.grant_write.as_deref())?;
    let name = bucket_name(&req.input.bucket)?;
    let lock = req.input.object_lock_enabled_for_bucket.unwrap_or(false);
    // In us-east-1 (the region a request without a LocationConstraint names) Amazon S3
    // answers 200 to its owner's CreateBucket of a bucket that exists, and changes
    // nothing; elsewhere it is BucketAlreadyOwnedByYou.
    let us_east_1 = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .is_none_or(|l| l.as_str().is_empty() || l.as_str() == "us-east-1");
    match s3.node.create_bucket(&name, lock).await {
        Ok(_) => {}
        // ...but never when the request asks for Object Lock and the bucket has none:
        // a backup tool that "creates" its lock bucket must not be told it has one.
        Err(e @ stele::StoreError::BucketExists { .. }) if us_east_1 => {
            let has_lock = s3.node.bucket(&name).await.map_err(to_s3)?.object_lock;
            if lock && !has_lock {
                return Err(to_s3(e));
            }
        }
        Err(e) => return Err(to_s3(e)),
    }
    Ok(S3Response::new(dto::CreateBucketOutput {
        location: Some(format!("/{name}")),
    }))
}

pub(super) async fn head_bucket(
    s3: &SteleS3,
    req: S3Request<dto::HeadBucketInput>,
) -> S3Result<S3Response<dto::HeadBucketOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    s3.node.bucket(&name).await.map_err(to_s3)?;
    Ok(S3Response::new(dto::HeadBucketOutput::default()))
}

pub(super) async fn delete_bucket(
    s3: &SteleS3,
    req: S3Request<dto::DeleteBucketInput>,
) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    s3.node.delete_bucket(&name).await.map_err(to_s3)?;
    Ok(S3Response::new(dto::DeleteBucketOutput::default()))
}

pub(super) async fn get_bucket_location(
    s3: &SteleS3,
    req: S3Request<dto::GetBucketLocationInput>,
) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    s3.node.bucket(&name).await.map_err(to_s3)?;
    // us-east-1 is written as an empty LocationConstraint, as S3 does.
    Ok(S3Response::new(dto::GetBucketLocationOutput::default()))
}

pub(super) async fn get_bucket_versioning(
    s3: &SteleS3,
    req: S3Request<dto::GetBucketVersioningInput>,
) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    let b = s3.node.bucket(&name).await.map_err(to_s3)?;
    let status = match b.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(dto::BucketVersioningStatus::from_static(
            dto::BucketVersioningStatus::ENABLED,
        )),
        Versioning::Suspended => Some(dto::BucketVersioningStatus::from_static(
            dto::BucketVersioningStatus::SUSPENDED,
        )),
    };
    Ok(S3Response::new(dto::GetBucketVersioningOutput {
        status,
        ..Default::default()
    }))
}

pub(super) async fn put_bucket_versioning(
    s3: &SteleS3,
    req: S3Request<dto::PutBucketVersioningInput>,
) -> S3Result<S3Response<dto::PutBucketVersioningOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    let state = match req
        .input
        .versioning_configuration
        .status
        .as_ref()
        .map(|s| s.as_str())
    {
        Some(dto::BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(dto::BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => {
            return Err(bad_request(
                s3s::S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema.",
            ));
        }
    };
    s3.node.set_versioning(&name, state).await.map_err(to_s3)?;
    Ok(S3Response::new(dto::PutBucketVersioningOutput::default()))
}

pub(super) async fn get_object_lock_configuration(
    s3: &SteleS3,
    req: S3Request<dto::GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<dto::GetObjectLockConfigurationOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    let c = s3.node.lock_configuration(&name).await.map_err(to_s3)?;
    Ok(S3Response::new(dto::GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(object_lock::lock_configuration_dto(c.default_retention)),
    }))
}

pub(super) async fn put_object_lock_configuration(
    s3: &SteleS3,
    req: S3Request<dto::PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<dto::PutObjectLockConfigurationOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    let default =
        object_lock::parse_lock_configuration(req.input.object_lock_configuration.as_ref())?;
    s3.node
        .set_lock_configuration(&name, default)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(
        dto::PutObjectLockConfigurationOutput::default(),
    ))
}

pub(super) async fn get_bucket_lifecycle_configuration(
    s3: &SteleS3,
    req: S3Request<dto::GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<dto::GetBucketLifecycleConfigurationOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    let c = s3.node.lifecycle(&name).await.map_err(to_s3)?;
    Ok(S3Response::new(
        dto::GetBucketLifecycleConfigurationOutput {
            rules: Some(lifecycle::to_dto(&c)),
            ..Default::default()
        },
    ))
}

pub(super) async fn put_bucket_lifecycle_configuration(
    s3: &SteleS3,
    req: S3Request<dto::PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<dto::PutBucketLifecycleConfigurationOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    let config = lifecycle::parse(req.input.lifecycle_configuration.as_ref())?;
    s3.node
        .set_lifecycle(&name, Some(config))
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(
        dto::PutBucketLifecycleConfigurationOutput::default(),
    ))
}

pub(super) async fn delete_bucket_lifecycle(
    s3: &SteleS3,
    req: S3Request<dto::DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<dto::DeleteBucketLifecycleOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    s3.node.set_lifecycle(&name, None).await.map_err(to_s3)?;
    Ok(S3Response::new(dto::DeleteBucketLifecycleOutput::default()))
}

pub(super) async fn get_bucket_acl(
    s3: &SteleS3,
    req: S3Request<dto::GetBucketAclInput>,
) -> S3Result<S3Response<dto::GetBucketAclOutput>> {
    let name = bucket_name(&req.input.bucket)?;
    s3.node.bucket(&name).await.map_err(to_s3)?;
    Ok(S3Response::new(dto::GetBucketAclOutput {
        grants: Some(acl::grants()),
        owner: Some(owner()),
    }))
}

pub(super) async fn put_bucket_acl(
    s3: &SteleS3,
    req: S3Request<dto::PutBucketAclInput>,
) -> S3Result<S3Response<dto::PutBucketAclOutput>> {
    let input = req.input;
    let name = bucket_name(&input.bucket)?;
    s3.node.bucket(&name).await.map_err(to_s3)?;
    acl_headers!(input, input.grant_write.as_deref())?;
    acl::check_policy(input.access_control_policy.as_ref())?;
    Ok(S3Response::new(dto::PutBucketAclOutput::default()))
}
