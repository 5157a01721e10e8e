//! The S3 API through s3s. Each operation translates its input, calls one core method and
//! translates the answer; [`error`] holds the one table from core errors to S3 errors.

mod acl;
pub mod auth;
pub mod checksum;
pub mod conditions;
pub mod error;
pub mod host;
mod lifecycle;
mod object_lock;
pub mod request_id;
pub mod skew;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::{self, StreamingBlob};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use stele::checksum::ChecksumAlgorithm;
use stele::identity::Identities;
use stele::meta::{VersionKind, Versioning};
use stele::store::{
    CompletedPart, CopySource, ListQuery, MetadataDirective, MultipartChecksum, VersionRef,
    VersionsQuery,
};
use stele::{BucketName, ByteRange, ObjectKey, PutOptions, Store, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::watch;

use error::{bad_request, to_s3};

/// The `x-amz-checksum-*` fields of any input that carries them (PutObject, UploadPart,
/// a part named by CompleteMultipartUpload).
macro_rules! checksum_fields {
    ($input:expr, $algorithm:expr) => {
        checksum::Fields {
            algorithm: $algorithm,
            crc32: $input.checksum_crc32.as_deref(),
            crc32c: $input.checksum_crc32c.as_deref(),
            crc64nvme: $input.checksum_crc64nvme.as_deref(),
            sha1: $input.checksum_sha1.as_deref(),
            sha256: $input.checksum_sha256.as_deref(),
        }
    };
}

/// The digests a body upload (PutObject, UploadPart) announces: its `x-amz-checksum-*`
/// (header or trailer) and its Content-MD5, both checked against the body by the core.
macro_rules! body_digests {
    ($input:expr, $trailers:expr) => {
        (
            checksum::spec(
                &checksum_fields!($input, $input.checksum_algorithm.as_ref()),
                $trailers,
            )?,
            $input
                .content_md5
                .as_deref()
                .map(error::decode_content_md5)
                .transpose()?,
        )
    };
}

/// What S3 refuses about a body upload's headers before reading the body: an empty
/// `Content-MD5` (400 InvalidDigest), and a body framed neither by `Content-Length` nor by
/// chunked transfer coding (plain or aws-chunked): 411 MissingContentLength.
fn body_headers(h: &http::HeaderMap) -> S3Result<()> {
    if h.get("content-md5")
        .is_some_and(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace))
    {
        return Err(bad_request(
            s3s::S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified was invalid.",
        ));
    }
    let framed = h.contains_key(http::header::CONTENT_LENGTH)
        || h.contains_key(http::header::TRANSFER_ENCODING)
        || h.contains_key("x-amz-decoded-content-length");
    if !framed {
        let mut e = bad_request(
            s3s::S3ErrorCode::MissingContentLength,
            "You must provide the Content-Length HTTP header.",
        );
        e.set_status_code(http::StatusCode::LENGTH_REQUIRED);
        return Err(e);
    }
    Ok(())
}

/// The `x-amz-object-lock-*` headers of PutObject, CreateMultipartUpload and CopyObject.
macro_rules! lock_request {
    ($input:expr) => {
        object_lock::lock_request(
            $input.object_lock_mode.as_ref(),
            $input.object_lock_retain_until_date.as_ref(),
            $input.object_lock_legal_hold_status.as_ref(),
        )
    };
}

/// The `x-amz-copy-source-if-*` conditions of CopyObject and UploadPartCopy.
macro_rules! copy_source_conditions {
    ($input:expr) => {
        conditions::Conditions {
            if_match: $input.copy_source_if_match.as_ref(),
            if_none_match: $input.copy_source_if_none_match.as_ref(),
            if_modified_since: $input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: $input.copy_source_if_unmodified_since.as_ref(),
        }
    };
}

pub struct SteleS3 {
    store: Store,
    ids: Arc<Identities>,
}

impl SteleS3 {
    pub fn new(store: Store, ids: Arc<Identities>) -> Self {
        Self { store, ids }
    }
}

fn bucket_name(s: &str) -> S3Result<BucketName> {
    BucketName::new(s).map_err(|e| to_s3(e.into()))
}

fn object_key(s: &str) -> S3Result<ObjectKey> {
    ObjectKey::new(s).map_err(|e| to_s3(e.into()))
}

fn version_ref(v: Option<&str>) -> S3Result<Option<VersionRef>> {
    v.map(|v| {
        v.parse::<VersionRef>().map_err(|_| {
            bad_request(
                s3s::S3ErrorCode::InvalidArgument,
                "Invalid version id specified",
            )
        })
    })
    .transpose()
}

/// Runs a blocking core call (metadata reads and writes) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, stele::StoreError> + Send + 'static,
) -> S3Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| to_s3(e.into()))?
        .map_err(to_s3)
}

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(m) if m < 0 => Err(bad_request(
            s3s::S3ErrorCode::InvalidArgument,
            "max-keys must be between 0 and 2147483647",
        )),
        Some(m) => Ok((m as usize).min(1000)),
    }
}

/// With `encoding-type=url`, keys and prefixes in a listing are URL-encoded, `/` left as
/// it is (as Amazon S3 does: clients split on it before decoding).
fn encoder(encoding: Option<&dto::EncodingType>) -> impl Fn(&str) -> String {
    let url = encoding.is_some_and(|e| e.as_str() == dto::EncodingType::URL);
    move |s: &str| {
        if url {
            urlencoding::encode(s).replace("%2F", "/")
        } else {
            s.to_owned()
        }
    }
}

/// The delimiter as a listing echoes it: an empty one is no delimiter, and S3 omits it.
fn echoed_delimiter(d: Option<&str>, enc: &impl Fn(&str) -> String) -> Option<String> {
    d.filter(|d| !d.is_empty()).map(enc)
}

use acl::owner;

/// The HTTP headers a write stores with the object ([`stele::meta::SystemMeta`]).
/// `aws-chunked` in `Content-Encoding` names the request's framing, not the object's, and
/// is dropped (`aws-chunked,gzip` is stored as `gzip`, `aws-chunked` alone as nothing).
macro_rules! system_meta {
    ($input:expr) => {
        stele::meta::SystemMeta {
            content_encoding: $input.content_encoding.as_deref().and_then(object_encoding),
            cache_control: $input.cache_control.clone(),
            content_disposition: $input.content_disposition.clone(),
            content_language: $input.content_language.clone(),
            expires: $input.expires.clone().map(from_time),
        }
    };
}

fn object_encoding(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

fn from_time(t: dto::Timestamp) -> Timestamp {
    let t = time::OffsetDateTime::from(t);
    Timestamp::from_micros((t.unix_timestamp_nanos() / 1000) as i64)
}

/// The ACL a request names (`x-amz-acl`, `x-amz-grant-*`; `$write` is its
/// `x-amz-grant-write`, which only bucket requests have): nothing wider than the owner's
/// own (see [`acl`]).
macro_rules! acl_headers {
    ($input:expr, $write:expr) => {
        acl::check_canned($input.acl.as_ref().map(|a| a.as_str())).and_then(|()| {
            acl::check_grant_headers(
                $input.grant_full_control.as_deref(),
                [
                    $input.grant_read.as_deref(),
                    $input.grant_read_acp.as_deref(),
                    $input.grant_write_acp.as_deref(),
                    $write,
                ],
            )
        })
    };
}

fn time(t: Timestamp) -> dto::Timestamp {
    dto::Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_micros(t.micros().max(0) as u64))
}

fn etag(hex: &str) -> dto::ETag {
    dto::ETag::Strong(hex.to_owned())
}

#[async_trait::async_trait]
impl S3 for SteleS3 {
    /// ListBuckets, paged as Amazon S3 pages it since 2024: `max-buckets` (1 to 10000),
    /// `continuation-token` (opaque: the last name of the previous page) and `prefix`.
    async fn list_buckets(
        &self,
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
        let store = self.store.clone();
        let buckets = tokio::task::spawn_blocking(move || store.buckets())
            .await
            .map_err(|e| to_s3(e.into()))?
            .map_err(to_s3)?;
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

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        acl_headers!(req.input, req.input.grant_write.as_deref())?;
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        let n = name.clone();
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
        let existing = self.store.clone();
        match tokio::task::spawn_blocking(move || store.create_bucket(&n, lock))
            .await
            .map_err(|e| to_s3(e.into()))?
        {
            Ok(_) => {}
            // ...but never when the request asks for Object Lock and the bucket has none:
            // a backup tool that "creates" its lock bucket must not be told it has one.
            Err(e @ stele::StoreError::BucketExists { .. }) if us_east_1 => {
                let nm = name.clone();
                let has_lock = blocking(move || existing.bucket(&nm)).await?.object_lock;
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

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        self.store.bucket(&name).map_err(to_s3)?;
        Ok(S3Response::new(dto::HeadBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
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
        let out = self
            .store
            .put_object(&bucket, &key, opts, body)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag(&out.etag)),
            version_id: versioned(&self.store, &bucket, out.version),
            checksum_crc32: checksum::value(&out.checksums, ChecksumAlgorithm::Crc32),
            checksum_crc32c: checksum::value(&out.checksums, ChecksumAlgorithm::Crc32c),
            checksum_crc64nvme: checksum::value(&out.checksums, ChecksumAlgorithm::Crc64Nvme),
            checksum_sha1: checksum::value(&out.checksums, ChecksumAlgorithm::Sha1),
            checksum_sha256: checksum::value(&out.checksums, ChecksumAlgorithm::Sha256),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
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
        let read = self
            .store
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
        let output = dto::GetObjectOutput {
            body: Some(StreamingBlob::wrap(read.body)),
            content_length: Some((end - start) as i64),
            content_range,
            content_type: input
                .response_content_type
                .clone()
                .or_else(|| rec.content_type.clone()),
            cache_control: input
                .response_cache_control
                .clone()
                .or_else(|| rec.system.cache_control.clone()),
            content_disposition: input
                .response_content_disposition
                .clone()
                .or_else(|| rec.system.content_disposition.clone()),
            content_encoding: input
                .response_content_encoding
                .clone()
                .or_else(|| rec.system.content_encoding.clone()),
            content_language: input
                .response_content_language
                .clone()
                .or_else(|| rec.system.content_language.clone()),
            expires: input
                .response_expires
                .clone()
                .or_else(|| rec.system.expires.map(time)),
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(time(rec.created)),
            metadata: Some(rec.user_meta.iter().cloned().collect()),
            accept_ranges: Some("bytes".into()),
            version_id: versioned(&self.store, &bucket, rec.version_ref()),
            parts_count,
            tag_count: (read.tag_count > 0).then_some(read.tag_count as i32),
            ..Default::default()
        };
        let mut output = output;
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

    async fn head_object(
        &self,
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
        let store = self.store.clone();
        let bucket2 = bucket.clone();
        let (rec, lock) =
            blocking(move || store.head_object_with_lock(&bucket, &key, version.as_ref())).await?;
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
        let mut resp = S3Response::new(dto::HeadObjectOutput {
            content_length: Some(part.map_or(rec.size, |(a, b)| b - a) as i64),
            content_range: part
                .filter(|(a, b)| b > a)
                .map(|(a, b)| format!("bytes {}-{}/{}", a, b - 1, rec.size)),
            parts_count: part.and(multipart_parts(&rec)),
            // As on GET, the response-* parameters override what is stored.
            content_type: input
                .response_content_type
                .clone()
                .or_else(|| rec.content_type.clone()),
            cache_control: input
                .response_cache_control
                .clone()
                .or_else(|| rec.system.cache_control.clone()),
            content_disposition: input
                .response_content_disposition
                .clone()
                .or_else(|| rec.system.content_disposition.clone()),
            content_encoding: input
                .response_content_encoding
                .clone()
                .or_else(|| rec.system.content_encoding.clone()),
            content_language: input
                .response_content_language
                .clone()
                .or_else(|| rec.system.content_language.clone()),
            expires: input
                .response_expires
                .clone()
                .or_else(|| rec.system.expires.map(time)),
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(time(rec.created)),
            metadata: Some(rec.user_meta.iter().cloned().collect()),
            accept_ranges: Some("bytes".into()),
            version_id: versioned(&self.store, &bucket2, rec.version_ref()),
            checksum_crc32: want
                .then(|| checksum::value_of(&rec, ChecksumAlgorithm::Crc32))
                .flatten(),
            checksum_crc32c: want
                .then(|| checksum::value_of(&rec, ChecksumAlgorithm::Crc32c))
                .flatten(),
            checksum_crc64nvme: want
                .then(|| checksum::value_of(&rec, ChecksumAlgorithm::Crc64Nvme))
                .flatten(),
            checksum_sha1: want
                .then(|| checksum::value_of(&rec, ChecksumAlgorithm::Sha1))
                .flatten(),
            checksum_sha256: want
                .then(|| checksum::value_of(&rec, ChecksumAlgorithm::Sha256))
                .flatten(),
            object_lock_mode: lock.mode,
            object_lock_retain_until_date: lock.until,
            object_lock_legal_hold_status: lock.legal_hold,
            ..Default::default()
        });
        if part.is_some() {
            resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(resp)
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        blocking(move || store.delete_bucket(&name)).await?;
        Ok(S3Response::new(dto::DeleteBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        blocking(move || store.bucket(&name)).await?;
        // us-east-1 is written as an empty LocationConstraint, as S3 does.
        Ok(S3Response::new(dto::GetBucketLocationOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        let b = blocking(move || store.bucket(&name)).await?;
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

    async fn put_bucket_versioning(
        &self,
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
        let store = self.store.clone();
        blocking(move || store.set_versioning(&name, state)).await?;
        Ok(S3Response::new(dto::PutBucketVersioningOutput::default()))
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let bypass = object_lock::bypass(
            &self.ids,
            &req,
            &req.input.bucket,
            req.input.bypass_governance_retention,
        );
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let out = self
            .store
            .delete_object(&bucket, &key, version.as_ref(), bypass)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(dto::DeleteObjectOutput {
            delete_marker: out.delete_marker.then_some(true),
            // An unversioned bucket's answers name no version, as S3's.
            version_id: out.version.and_then(|v| versioned(&self.store, &bucket, v)),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
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
        let store = self.store.clone();
        let b = bucket.clone();
        let page = blocking(move || store.list_objects(&b, &q)).await?;
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

    async fn list_objects(
        &self,
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
        let store = self.store.clone();
        let b = bucket.clone();
        let page = blocking(move || store.list_objects(&b, &q)).await?;
        let enc = encoder(input.encoding_type.as_ref());
        let (contents, prefixes) = listing(&page, &enc, true);
        // S3 sends NextMarker only with a delimiter; clients use the last key otherwise.
        let next_marker = (page.truncated
            && input.delimiter.as_deref().is_some_and(|d| !d.is_empty()))
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

    async fn list_object_versions(
        &self,
        req: S3Request<dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let max = max_keys(input.max_keys)?;
        let version_marker =
            version_ref(input.version_id_marker.as_deref().filter(|v| !v.is_empty()))?;
        let q = VersionsQuery {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            key_marker: input.key_marker.clone().filter(|m| !m.is_empty()),
            version_marker,
            max_keys: max,
        };
        let store = self.store.clone();
        let b = bucket.clone();
        let page = blocking(move || store.list_object_versions(&b, &q)).await?;
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

    async fn create_multipart_upload(
        &self,
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
        let store = self.store.clone();
        let (b, k) = (bucket.clone(), key.clone());
        let id = blocking(move || store.create_multipart_upload(&b, &k, opts)).await?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            upload_id: Some(id.to_string()),
            checksum_algorithm: input.checksum_algorithm.clone(),
            checksum_type: input.checksum_type.clone(),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
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
        let part = self
            .store
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
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            checksum_crc32: checksum::value(&part.checksums, ChecksumAlgorithm::Crc32),
            checksum_crc32c: checksum::value(&part.checksums, ChecksumAlgorithm::Crc32c),
            checksum_crc64nvme: checksum::value(&part.checksums, ChecksumAlgorithm::Crc64Nvme),
            checksum_sha1: checksum::value(&part.checksums, ChecksumAlgorithm::Sha1),
            checksum_sha256: checksum::value(&part.checksums, ChecksumAlgorithm::Sha256),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
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
        let store = self.store.clone();
        let (b, k, id) = (bucket.clone(), key.clone(), input.upload_id.clone());
        let out = blocking(move || {
            store.complete_multipart_upload(&b, &k, &id, &chosen, &kind, &condition)
        })
        .await?;
        let shown = |a| {
            if full_object {
                checksum::value(&out.checksums, a)
            } else {
                composite(&out, a)
            }
        };
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            e_tag: Some(etag(&out.etag)),
            location: Some(format!("/{bucket}/{key}")),
            version_id: versioned(&self.store, &bucket, out.version),
            checksum_crc32: shown(ChecksumAlgorithm::Crc32),
            checksum_crc32c: shown(ChecksumAlgorithm::Crc32c),
            checksum_crc64nvme: shown(ChecksumAlgorithm::Crc64Nvme),
            checksum_sha1: shown(ChecksumAlgorithm::Sha1),
            checksum_sha256: shown(ChecksumAlgorithm::Sha256),
            checksum_type: (!out.checksums.is_empty()).then(|| {
                dto::ChecksumType::from_static(if full_object {
                    dto::ChecksumType::FULL_OBJECT
                } else {
                    dto::ChecksumType::COMPOSITE
                })
            }),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let store = self.store.clone();
        let id = input.upload_id.clone();
        blocking(move || store.abort_multipart_upload(&bucket, &key, &id)).await?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let store = self.store.clone();
        let (b, k, id) = (bucket.clone(), key.clone(), input.upload_id.clone());
        let (parts, algorithm) = blocking(move || store.list_parts(&b, &k, &id)).await?;
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
            checksum_algorithm: algorithm
                .map(|a| dto::ChecksumAlgorithm::from(a.name().to_owned())),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let store = self.store.clone();
        let b = bucket.clone();
        let uploads = blocking(move || store.list_uploads(&b)).await?;
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

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let bypass = object_lock::bypass(
            &self.ids,
            &req,
            &req.input.bucket,
            req.input.bypass_governance_retention,
        );
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        if input.delete.objects.len() > 1000 {
            return Err(bad_request(
                s3s::S3ErrorCode::MalformedXML,
                "A DeleteObjects request names at most 1000 keys.",
            ));
        }
        self.store.bucket(&bucket).map_err(to_s3)?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for obj in &input.delete.objects {
            let outcome = async {
                let key = object_key(&obj.key)?;
                let version = version_ref(obj.version_id.as_deref())?;
                self.store
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

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let input = req.input;
        acl_headers!(input, None)?;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let src = self
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
        let (out, source) = self
            .store
            .copy_object(&src, &bucket, &key, directive, tags, lock)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: Some(etag(&out.etag)),
                last_modified: Some(time(out.created)),
                ..Default::default()
            }),
            version_id: versioned(&self.store, &bucket, out.version),
            copy_source_version_id: versioned(&self.store, &src.bucket, source.version_ref()),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let src = self
            .pinned_source(&input.copy_source, &copy_source_conditions!(input))
            .await?;
        let range = input
            .copy_source_range
            .as_deref()
            .map(parse_copy_range)
            .transpose()?;
        let (part, source) = self
            .store
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
            copy_source_version_id: versioned(&self.store, &src.bucket, source.version_ref()),
            ..Default::default()
        }))
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<dto::GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetObjectLockConfigurationOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        let c = blocking(move || store.lock_configuration(&name)).await?;
        Ok(S3Response::new(dto::GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(object_lock::lock_configuration_dto(
                c.default_retention,
            )),
        }))
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<dto::PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::PutObjectLockConfigurationOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let default =
            object_lock::parse_lock_configuration(req.input.object_lock_configuration.as_ref())?;
        let store = self.store.clone();
        blocking(move || store.set_lock_configuration(&name, default)).await?;
        Ok(S3Response::new(
            dto::PutObjectLockConfigurationOutput::default(),
        ))
    }

    async fn get_object_retention(
        &self,
        req: S3Request<dto::GetObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::GetObjectRetentionOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        let lock = blocking(move || store.object_lock(&bucket, &key, version.as_ref())).await?;
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

    async fn put_object_retention(
        &self,
        req: S3Request<dto::PutObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::PutObjectRetentionOutput>> {
        let bypass = object_lock::bypass(
            &self.ids,
            &req,
            &req.input.bucket,
            req.input.bypass_governance_retention,
        );
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let requested = object_lock::parse_retention(input.retention.as_ref())?;
        let store = self.store.clone();
        blocking(move || {
            store.set_object_retention(&bucket, &key, version.as_ref(), requested, bypass)
        })
        .await?;
        Ok(S3Response::new(dto::PutObjectRetentionOutput::default()))
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<dto::GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::GetObjectLegalHoldOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        let lock = blocking(move || store.object_lock(&bucket, &key, version.as_ref())).await?;
        Ok(S3Response::new(dto::GetObjectLegalHoldOutput {
            legal_hold: Some(object_lock::legal_hold_dto(&lock)),
        }))
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<dto::PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::PutObjectLegalHoldOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let on = object_lock::parse_legal_hold(input.legal_hold.as_ref())?;
        let store = self.store.clone();
        blocking(move || store.set_object_legal_hold(&bucket, &key, version.as_ref(), on)).await?;
        Ok(S3Response::new(dto::PutObjectLegalHoldOutput::default()))
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLifecycleConfigurationOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        let c = blocking(move || store.lifecycle(&name)).await?;
        Ok(S3Response::new(
            dto::GetBucketLifecycleConfigurationOutput {
                rules: Some(lifecycle::to_dto(&c)),
                ..Default::default()
            },
        ))
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::PutBucketLifecycleConfigurationOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let config = lifecycle::parse(req.input.lifecycle_configuration.as_ref())?;
        let store = self.store.clone();
        blocking(move || store.set_lifecycle(&name, Some(&config))).await?;
        Ok(S3Response::new(
            dto::PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<dto::DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketLifecycleOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        blocking(move || store.set_lifecycle(&name, None)).await?;
        Ok(S3Response::new(dto::DeleteBucketLifecycleOutput::default()))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<dto::GetObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::GetObjectTaggingOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        let b = bucket.clone();
        let (rec, tags) = blocking(move || store.object_tags(&b, &key, version.as_ref())).await?;
        Ok(S3Response::new(dto::GetObjectTaggingOutput {
            tag_set: tags
                .into_iter()
                .map(|(k, v)| dto::Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
            version_id: versioned(&self.store, &bucket, rec.version_ref()),
        }))
    }

    async fn put_object_tagging(
        &self,
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
        let store = self.store.clone();
        let b = bucket.clone();
        let rec = blocking(move || store.set_object_tags(&b, &key, version.as_ref(), tags)).await?;
        Ok(S3Response::new(dto::PutObjectTaggingOutput {
            version_id: versioned(&self.store, &bucket, rec.version_ref()),
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<dto::DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectTaggingOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        let b = bucket.clone();
        let rec =
            blocking(move || store.set_object_tags(&b, &key, version.as_ref(), Vec::new())).await?;
        let mut resp = S3Response::new(dto::DeleteObjectTaggingOutput {
            version_id: versioned(&self.store, &bucket, rec.version_ref()),
        });
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<dto::GetBucketAclInput>,
    ) -> S3Result<S3Response<dto::GetBucketAclOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        self.store.bucket(&name).map_err(to_s3)?;
        Ok(S3Response::new(dto::GetBucketAclOutput {
            grants: Some(acl::grants()),
            owner: Some(owner()),
        }))
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<dto::PutBucketAclInput>,
    ) -> S3Result<S3Response<dto::PutBucketAclOutput>> {
        let input = req.input;
        let name = bucket_name(&input.bucket)?;
        self.store.bucket(&name).map_err(to_s3)?;
        acl_headers!(input, input.grant_write.as_deref())?;
        acl::check_policy(input.access_control_policy.as_ref())?;
        Ok(S3Response::new(dto::PutBucketAclOutput::default()))
    }

    async fn get_object_acl(
        &self,
        req: S3Request<dto::GetObjectAclInput>,
    ) -> S3Result<S3Response<dto::GetObjectAclOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        blocking(move || store.head_object(&bucket, &key, version.as_ref())).await?;
        Ok(S3Response::new(dto::GetObjectAclOutput {
            grants: Some(acl::grants()),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn put_object_acl(
        &self,
        req: S3Request<dto::PutObjectAclInput>,
    ) -> S3Result<S3Response<dto::PutObjectAclOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        blocking(move || store.head_object(&bucket, &key, version.as_ref())).await?;
        acl_headers!(input, input.grant_write.as_deref())?;
        acl::check_policy(input.access_control_policy.as_ref())?;
        Ok(S3Response::new(dto::PutObjectAclOutput::default()))
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<dto::GetObjectAttributesInput>,
    ) -> S3Result<S3Response<dto::GetObjectAttributesOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version = version_ref(input.version_id.as_deref())?;
        let store = self.store.clone();
        let b = bucket.clone();
        let rec = blocking(move || store.head_object(&b, &key, version.as_ref())).await?;
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
            .then(|| dto::Checksum {
                checksum_crc32: checksum::value_of(&rec, ChecksumAlgorithm::Crc32),
                checksum_crc32c: checksum::value_of(&rec, ChecksumAlgorithm::Crc32c),
                checksum_crc64nvme: checksum::value_of(&rec, ChecksumAlgorithm::Crc64Nvme),
                checksum_sha1: checksum::value_of(&rec, ChecksumAlgorithm::Sha1),
                checksum_sha256: checksum::value_of(&rec, ChecksumAlgorithm::Sha256),
                ..Default::default()
            })
            .filter(|_| !rec.checksums.is_empty());
        let object_parts = (want(dto::ObjectAttributes::OBJECT_PARTS) && rec.etag.contains('-'))
            .then(|| {
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
            version_id: versioned(&self.store, &bucket, rec.version_ref()),
            ..Default::default()
        }))
    }
}

/// `x-amz-tagging: k1=v1&k2=v2`, URL-encoded like a query string.
fn parse_tagging(s: &str) -> S3Result<Vec<(String, String)>> {
    let bad = || {
        bad_request(
            s3s::S3ErrorCode::InvalidArgument,
            "The x-amz-tagging header is not a valid URL-encoded tag set.",
        )
    };
    let decode = |p: &str| {
        urlencoding::decode(&p.replace('+', " "))
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

impl SteleS3 {
    /// Resolves a copy source to one version and checks its conditions, so the copy reads
    /// exactly the version the conditions were checked against.
    async fn pinned_source(
        &self,
        source: &dto::CopySource,
        cond: &conditions::Conditions<'_>,
    ) -> S3Result<CopySource> {
        let dto::CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(bad_request(
                s3s::S3ErrorCode::NotImplemented,
                "Access point copy sources are not supported.",
            ));
        };
        let b = bucket_name(bucket)?;
        let k = object_key(key)?;
        let v = version_ref(version_id.as_deref())?;
        let store = self.store.clone();
        let (b2, k2) = (b.clone(), k.clone());
        let rec = blocking(move || store.head_object(&b2, &k2, v.as_ref())).await?;
        conditions::check(cond, &rec.etag, rec.created, true)?;
        Ok(CopySource {
            bucket: b,
            key: k,
            version: v,
            pinned: Some(rec.version_id),
        })
    }
}

/// `x-amz-copy-source-range: bytes=first-last`.
fn parse_copy_range(s: &str) -> S3Result<ByteRange> {
    let bad = || {
        bad_request(
            s3s::S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last.",
        )
    };
    let (a, b) = s
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(ByteRange::FromTo { first, last })
}

/// The objects and common prefixes of a listing page, as S3 returns them.
fn listing(
    page: &stele::store::ListPage,
    enc: &impl Fn(&str) -> String,
    with_owner: bool,
) -> (Vec<dto::Object>, Vec<dto::CommonPrefix>) {
    let objects = page
        .objects
        .iter()
        .map(|(k, r)| dto::Object {
            key: Some(enc(k.as_str())),
            e_tag: Some(etag(&r.etag)),
            last_modified: Some(time(r.created)),
            size: Some(r.size as i64),
            storage_class: Some(dto::ObjectStorageClass::from_static(
                dto::ObjectStorageClass::STANDARD,
            )),
            owner: with_owner.then(owner),
            ..Default::default()
        })
        .collect();
    let prefixes = page
        .common_prefixes
        .iter()
        .map(|p| dto::CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    (objects, prefixes)
}

/// A completed upload's composite checksum, `base64-N`.
fn composite(out: &stele::PutOutcome, algorithm: ChecksumAlgorithm) -> Option<String> {
    let parts = out.etag.rsplit_once('-').map_or("1", |(_, n)| n);
    checksum::value(&out.checksums, algorithm).map(|v| format!("{v}-{parts}"))
}

type BodyStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

fn body_stream(body: Option<StreamingBlob>) -> BodyStream {
    match body {
        Some(b) => b.map(|r| r.map_err(std::io::Error::other)).boxed(),
        None => futures::stream::empty().boxed(),
    }
}

fn etag_value(e: &dto::ETag) -> &str {
    match e {
        dto::ETag::Strong(s) | dto::ETag::Weak(s) => s,
    }
}

/// The version id to report: none for a bucket that was never versioned.
/// `x-amz-mp-parts-count` of a GET or HEAD with `partNumber`: S3 sends it only for
/// objects uploaded in parts.
fn multipart_parts(rec: &stele::meta::VersionRecord) -> Option<i32> {
    rec.etag.contains('-').then(|| rec.parts_count() as i32)
}

fn versioned(store: &Store, bucket: &BucketName, v: VersionRef) -> Option<String> {
    match store.bucket(bucket).map(|b| b.versioning) {
        Ok(Versioning::Unversioned) | Err(_) => None,
        Ok(_) => Some(v.to_string()),
    }
}

/// Continuation tokens are opaque to clients: the hex of the last key returned.
fn encode_token(last: &str) -> String {
    hex::encode(last.as_bytes())
}

fn decode_token(t: &str) -> S3Result<String> {
    hex::decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            bad_request(
                s3s::S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

/// Serves S3 on `listener` until `shutdown` turns true, then lets requests in flight finish.
/// With `domain`, `BUCKET.DOMAIN` hosts address buckets (virtual-host style) too.
pub async fn run(
    store: Store,
    ids: Arc<Identities>,
    metrics: Arc<crate::metrics::Metrics>,
    domain: Option<String>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut builder = S3ServiceBuilder::new(SteleS3::new(store, ids.clone()));
    builder.set_auth(auth::Auth::new(ids.clone()));
    builder.set_access(auth::Access::new(ids));
    if let Some(d) = domain {
        let host =
            host::Domain::new(&d).ok_or_else(|| anyhow::anyhow!("invalid --domain {d:?}"))?;
        builder.set_host(host);
    }
    let service = request_id::WithRequestId::new(
        builder.build(),
        Arc::new(crate::limiter::AuthLimiter::default()),
        metrics,
    );
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        // Small responses must not wait for Nagle's algorithm and delayed ACKs.
        let _ = socket.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(socket), service.for_peer(peer.ip()));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}
