//! The S3 API through s3s. Each operation translates its input, calls one core method and
//! translates the answer; [`error`] holds the one table from core errors to S3 errors.

mod acl;
pub mod auth;
pub mod checksum;
pub mod clients;
pub mod conditions;
pub mod error;
pub mod host;
mod lifecycle;
mod object_lock;
pub mod replication;
pub mod request_id;
pub mod skew;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use s3s::dto::{self, StreamingBlob};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use stele::checksum::ChecksumAlgorithm;
use stele::meta::{VersionKind, Versioning};
use stele::store::{
    CompletedPart, CopySource, ListQuery, MetadataDirective, MultipartChecksum, VersionRef,
    VersionsQuery,
};
use stele::{BucketName, ByteRange, Node, ObjectKey, PutOptions, Timestamp};
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

/// An S3 output with its five `checksum_*` fields from `shown(algorithm)` (the base64
/// value shown for that algorithm, if any) and every other field not named defaulted.
macro_rules! with_checksums {
    ($ty:path { $($field:ident: $value:expr),* $(,)? }, $shown:expr) => {{
        let shown = $shown;
        $ty {
            $($field: $value,)*
            checksum_crc32: shown(ChecksumAlgorithm::Crc32),
            checksum_crc32c: shown(ChecksumAlgorithm::Crc32c),
            checksum_crc64nvme: shown(ChecksumAlgorithm::Crc64Nvme),
            checksum_sha1: shown(ChecksumAlgorithm::Sha1),
            checksum_sha256: shown(ChecksumAlgorithm::Sha256),
            ..Default::default()
        }
    }};
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
    node: Node,
}

impl SteleS3 {
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    /// This service for one request: its calls act for the request's user, key, address
    /// and request id, which the audit trail records with what they change or are refused.
    fn for_request<T>(&self, req: &S3Request<T>) -> SteleS3 {
        let ctx = req.extensions.get::<request_id::RequestContext>();
        let key = req.credentials.as_ref().map(|c| c.access_key.clone());
        let user = key.as_deref().and_then(|k| self.node.user_of_cached_key(k));
        SteleS3 {
            node: self.node.acting_for(stele::audit::Requester {
                user,
                key,
                source: ctx.and_then(|c| c.peer).map(|p| p.to_string()),
                request_id: ctx.map(|c| c.id.clone()),
            }),
        }
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

// The operations, by group; declared after the macros above so they can use them. The
// S3 trait impl below only delegates to them.
mod bucket;
mod listing;
mod multipart;
mod object;

/// Each operation is a function of the same name in its group's module, called by path:
/// a function renamed or removed there is a compile error here, not a recursion.
#[async_trait::async_trait]
impl S3 for SteleS3 {
    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        bucket::list_buckets(self, req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        bucket::create_bucket(&self.for_request(&req), req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        bucket::head_bucket(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        object::put_object(&self.for_request(&req), req).await
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        object::get_object(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        object::head_object(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        bucket::delete_bucket(&self.for_request(&req), req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        bucket::get_bucket_location(self, req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        bucket::get_bucket_versioning(self, req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<dto::PutBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::PutBucketVersioningOutput>> {
        bucket::put_bucket_versioning(&self.for_request(&req), req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        object::delete_object(&self.for_request(&req), req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        listing::list_objects_v2(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        listing::list_objects(self, req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
        listing::list_object_versions(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        multipart::create_multipart_upload(&self.for_request(&req), req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        multipart::upload_part(&self.for_request(&req), req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        multipart::complete_multipart_upload(&self.for_request(&req), req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        multipart::abort_multipart_upload(&self.for_request(&req), req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        multipart::list_multipart_uploads(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        object::delete_objects(&self.for_request(&req), req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        object::copy_object(&self.for_request(&req), req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        multipart::upload_part_copy(&self.for_request(&req), req).await
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<dto::GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetObjectLockConfigurationOutput>> {
        bucket::get_object_lock_configuration(self, req).await
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<dto::PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::PutObjectLockConfigurationOutput>> {
        bucket::put_object_lock_configuration(&self.for_request(&req), req).await
    }

    async fn get_object_retention(
        &self,
        req: S3Request<dto::GetObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::GetObjectRetentionOutput>> {
        object::get_object_retention(self, req).await
    }

    async fn put_object_retention(
        &self,
        req: S3Request<dto::PutObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::PutObjectRetentionOutput>> {
        object::put_object_retention(&self.for_request(&req), req).await
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<dto::GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::GetObjectLegalHoldOutput>> {
        object::get_object_legal_hold(self, req).await
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<dto::PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::PutObjectLegalHoldOutput>> {
        object::put_object_legal_hold(&self.for_request(&req), req).await
    }

    async fn put_bucket_replication(
        &self,
        req: S3Request<dto::PutBucketReplicationInput>,
    ) -> S3Result<S3Response<dto::PutBucketReplicationOutput>> {
        replication::put_bucket_replication(&self.for_request(&req), req).await
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<dto::GetBucketReplicationInput>,
    ) -> S3Result<S3Response<dto::GetBucketReplicationOutput>> {
        replication::get_bucket_replication(self, req).await
    }

    async fn delete_bucket_replication(
        &self,
        req: S3Request<dto::DeleteBucketReplicationInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketReplicationOutput>> {
        replication::delete_bucket_replication(&self.for_request(&req), req).await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLifecycleConfigurationOutput>> {
        bucket::get_bucket_lifecycle_configuration(self, req).await
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::PutBucketLifecycleConfigurationOutput>> {
        bucket::put_bucket_lifecycle_configuration(&self.for_request(&req), req).await
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<dto::DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketLifecycleOutput>> {
        bucket::delete_bucket_lifecycle(&self.for_request(&req), req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<dto::GetObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::GetObjectTaggingOutput>> {
        object::get_object_tagging(self, req).await
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<dto::PutObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::PutObjectTaggingOutput>> {
        object::put_object_tagging(&self.for_request(&req), req).await
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<dto::DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectTaggingOutput>> {
        object::delete_object_tagging(&self.for_request(&req), req).await
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<dto::GetBucketAclInput>,
    ) -> S3Result<S3Response<dto::GetBucketAclOutput>> {
        bucket::get_bucket_acl(self, req).await
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<dto::PutBucketAclInput>,
    ) -> S3Result<S3Response<dto::PutBucketAclOutput>> {
        bucket::put_bucket_acl(&self.for_request(&req), req).await
    }

    async fn get_object_acl(
        &self,
        req: S3Request<dto::GetObjectAclInput>,
    ) -> S3Result<S3Response<dto::GetObjectAclOutput>> {
        object::get_object_acl(self, req).await
    }

    async fn put_object_acl(
        &self,
        req: S3Request<dto::PutObjectAclInput>,
    ) -> S3Result<S3Response<dto::PutObjectAclOutput>> {
        object::put_object_acl(&self.for_request(&req), req).await
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<dto::GetObjectAttributesInput>,
    ) -> S3Result<S3Response<dto::GetObjectAttributesOutput>> {
        object::get_object_attributes(self, req).await
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
        let (b2, k2) = (b.clone(), k.clone());
        let rec = self
            .node
            .head_object(&b2, &k2, v.as_ref())
            .await
            .map_err(to_s3)?;
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

async fn versioned(node: &Node, bucket: &BucketName, v: VersionRef) -> Option<String> {
    // After the write this node answered: its own state holds it (no read barrier,
    // which could fail and drop the version id of a committed write).
    match node.bucket_here(bucket).map(|b| b.versioning) {
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

/// Serves S3 on `listener` (over TLS with `tls`) until `shutdown` turns true, then lets
/// requests in flight finish.
/// With `domain`, `BUCKET.DOMAIN` hosts address buckets (virtual-host style) too.
pub async fn run(
    node: Node,
    metrics: Arc<crate::metrics::Metrics>,
    domain: Option<String>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let node_for_audit = node.clone();
    let mut builder = S3ServiceBuilder::new(SteleS3::new(node.clone()));
    builder.set_auth(auth::Auth::new(node.clone()));
    builder.set_access(auth::Access::new(node));
    let mut vhost = None;
    if let Some(d) = domain {
        let parse =
            || host::Domain::new(&d).ok_or_else(|| anyhow::anyhow!("invalid --domain {d:?}"));
        builder.set_host(parse()?);
        vhost = Some(Arc::new(parse()?));
    }
    let service = request_id::WithRequestId::new(
        node_for_audit,
        builder.build(),
        Arc::new(crate::limiter::AuthLimiter::default()),
        metrics,
        vhost,
    );
    crate::listener::serve(listener, tls, shutdown, move |peer| {
        service.for_peer(peer.ip())
    })
    .await
}
