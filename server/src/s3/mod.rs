//! The S3 API through s3s. Each operation translates its input, calls one core method and
//! translates the answer; [`error`] holds the one table from core errors to S3 errors.

pub mod error;

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::{self, StreamingBlob};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use stele::{BucketName, ByteRange, ObjectKey, PutOptions, Store, Timestamp, VersionId};
use tokio::net::TcpListener;
use tokio::sync::watch;

use error::{bad_request, to_s3};

pub struct SteleS3 {
    store: Store,
}

impl SteleS3 {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn bucket_name(s: &str) -> S3Result<BucketName> {
    BucketName::new(s).map_err(|e| to_s3(e.into()))
}

fn object_key(s: &str) -> S3Result<ObjectKey> {
    ObjectKey::new(s).map_err(|e| to_s3(e.into()))
}

fn version_id(v: Option<&str>) -> S3Result<Option<VersionId>> {
    v.filter(|v| *v != "null")
        .map(|v| {
            v.parse::<VersionId>()
                .map_err(|_| bad_request(s3s::S3ErrorCode::InvalidArgument, "invalid version id"))
        })
        .transpose()
}

fn time(t: Timestamp) -> dto::Timestamp {
    dto::Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_micros(t.micros().max(0) as u64))
}

fn etag(hex: &str) -> dto::ETag {
    dto::ETag::Strong(hex.to_owned())
}

#[async_trait::async_trait]
impl S3 for SteleS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let store = self.store.clone();
        let buckets = tokio::task::spawn_blocking(move || store.buckets())
            .await
            .map_err(|e| to_s3(e.into()))?
            .map_err(to_s3)?;
        let buckets = buckets
            .into_iter()
            .map(|b| dto::Bucket {
                name: Some(b.name.to_string()),
                creation_date: Some(time(b.created)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        let store = self.store.clone();
        let n = name.clone();
        tokio::task::spawn_blocking(move || store.create_bucket(&n))
            .await
            .map_err(|e| to_s3(e.into()))?
            .map_err(to_s3)?;
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
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let content_md5 = input
            .content_md5
            .as_deref()
            .map(error::decode_content_md5)
            .transpose()?;
        let opts = PutOptions {
            content_type: input.content_type.clone(),
            user_meta: input.metadata.unwrap_or_default().into_iter().collect(),
            content_length: input.content_length.map(|l| l.max(0) as u64),
            content_md5,
        };
        let body = match input.body {
            Some(b) => b.map(|r| r.map_err(std::io::Error::other)).boxed(),
            None => futures::stream::empty().boxed(),
        };
        let out = self
            .store
            .put_object(&bucket, &key, opts, body)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag(&out.etag)),
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
        let version = version_id(input.version_id.as_deref())?;
        let range = input.range.map(|r| match r {
            dto::Range::Int {
                first,
                last: Some(last),
            } => ByteRange::FromTo { first, last },
            dto::Range::Int { first, last: None } => ByteRange::From { first },
            dto::Range::Suffix { length } => ByteRange::Suffix { len: length },
        });
        let read = self
            .store
            .get_object(&bucket, &key, version.as_ref(), range)
            .await
            .map_err(to_s3)?;
        let rec = &read.record;
        let (start, end) = read.range;
        let content_range = range.map(|_| format!("bytes {}-{}/{}", start, end - 1, rec.size));
        let output = dto::GetObjectOutput {
            body: Some(StreamingBlob::wrap(read.body)),
            content_length: Some((end - start) as i64),
            content_range,
            content_type: rec.content_type.clone(),
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(time(rec.created)),
            metadata: Some(rec.user_meta.iter().cloned().collect()),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        };
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
        let version = version_id(input.version_id.as_deref())?;
        let store = self.store.clone();
        let rec =
            tokio::task::spawn_blocking(move || store.head_object(&bucket, &key, version.as_ref()))
                .await
                .map_err(|e| to_s3(e.into()))?
                .map_err(to_s3)?;
        Ok(S3Response::new(dto::HeadObjectOutput {
            content_length: Some(rec.size as i64),
            content_type: rec.content_type.clone(),
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(time(rec.created)),
            metadata: Some(rec.user_meta.iter().cloned().collect()),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        }))
    }
}

/// Serves S3 on `listener` until `shutdown` turns true, then lets requests in flight finish.
pub async fn run(
    store: Store,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let service = S3ServiceBuilder::new(SteleS3::new(store)).build();
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (socket, _) = tokio::select! {
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
        let conn = http.serve_connection(TokioIo::new(socket), service.clone());
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
