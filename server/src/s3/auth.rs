//! SigV4 credentials and authorization for the S3 listener. s3s verifies signatures with
//! the secret this module looks up (S3-plane keys only: an admin key is unknown here);
//! every authenticated request is then checked against the caller's roles before its
//! handler runs, so a request outside its role changes nothing.

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Result};
use stele::Node;
use stele::identity::{Action, Plane};
use stele::types::BucketName;

pub struct Auth {
    node: Node,
}

impl Auth {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

fn unknown_key() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records.",
    )
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.node.credential(access_key, Plane::S3).await {
            Ok(Some((_, secret))) => Ok(SecretKey::from(secret)),
            Ok(None) => Err(unknown_key()),
            Err(e) => {
                tracing::error!(error = %e, "credential lookup failed");
                Err(S3Error::new(S3ErrorCode::InternalError))
            }
        }
    }
}

/// The action class of an S3 operation; `None` for operations Stele does not implement
/// (they answer NotImplemented and change nothing).
pub fn action_of(op: &str) -> Option<Action> {
    use Action as A;
    Some(match op {
        "ListBuckets" => A::ListBuckets,
        "CreateBucket" => A::CreateBucket,
        "DeleteBucket" => A::DeleteBucket,
        "HeadBucket" | "GetBucketLocation" | "GetBucketVersioning" | "GetBucketAcl" => {
            A::ReadBucket
        }
        // Accepted only when it changes nothing, but asked of whoever configures buckets.
        "PutBucketAcl" => A::WriteVersioning,
        "GetObjectAcl" => A::HeadObject,
        "PutObjectAcl" => A::WriteTags,
        "PutBucketVersioning" => A::WriteVersioning,
        "GetObjectLockConfiguration" => A::ReadLockConfig,
        "PutObjectLockConfiguration" => A::WriteLockConfig,
        "GetBucketLifecycleConfiguration" => A::ReadLifecycle,
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => A::WriteLifecycle,
        "ListObjects" | "ListObjectsV2" | "ListObjectVersions" | "ListMultipartUploads" => {
            A::ListObjects
        }
        "GetObject" => A::ReadObject,
        "HeadObject" | "GetObjectAttributes" => A::HeadObject,
        "PutObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts"
        | "CopyObject"
        | "UploadPartCopy" => A::WriteObject,
        "DeleteObject" | "DeleteObjects" => A::DeleteObject,
        "GetObjectTagging" => A::ReadTags,
        "PutObjectTagging" | "DeleteObjectTagging" => A::WriteTags,
        "GetObjectRetention" => A::ReadRetention,
        "PutObjectRetention" => A::WriteRetention,
        "GetObjectLegalHold" => A::ReadLegalHold,
        "PutObjectLegalHold" => A::WriteLegalHold,
        "GetBucketReplication" => A::ReadReplication,
        "PutBucketReplication" | "DeleteBucketReplication" => A::WriteReplication,
        _ => return None,
    })
}

/// Every operation the S3 layer implements (kept next to the table so a test can check
/// that none is missing from it).
pub const IMPLEMENTED: [&str; 43] = [
    "ListBuckets",
    "CreateBucket",
    "DeleteBucket",
    "HeadBucket",
    "GetBucketLocation",
    "GetBucketVersioning",
    "PutBucketVersioning",
    "GetObjectLockConfiguration",
    "PutObjectLockConfiguration",
    "GetBucketLifecycleConfiguration",
    "PutBucketLifecycleConfiguration",
    "DeleteBucketLifecycle",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListMultipartUploads",
    "GetObject",
    "HeadObject",
    "GetObjectAttributes",
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "CopyObject",
    "UploadPartCopy",
    "DeleteObject",
    "DeleteObjects",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
    "GetObjectRetention",
    "PutObjectRetention",
    "GetObjectLegalHold",
    "PutObjectLegalHold",
    "GetBucketAcl",
    "PutBucketAcl",
    "GetObjectAcl",
    "PutObjectAcl",
    "GetBucketReplication",
    "PutBucketReplication",
    "DeleteBucketReplication",
];

pub struct Access {
    node: Node,
}

impl Access {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

fn denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

/// The bucket of `x-amz-copy-source` (`bucket/key`, optionally URL-encoded, optionally
/// with a leading slash).
fn copy_source_bucket(cx: &S3AccessContext<'_>) -> Option<String> {
    let v = cx.headers().get("x-amz-copy-source")?.to_str().ok()?;
    let v = urlencoding::decode(v).ok()?;
    let v = v.trim_start_matches('/');
    Some(v.split('/').next()?.to_owned())
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(denied());
        };
        let Some(mut action) = action_of(cx.s3_op().name()) else {
            return Ok(());
        };
        // A replication request is a PUT only the replication-peer role may make: the
        // header names a version id and creation time no client may choose.
        if cx.s3_op().name() == "PutObject" && cx.headers().contains_key(super::replication::HEADER)
        {
            action = Action::Replicate;
        }
        let bucket = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => {
                Some(BucketName::new(bucket.to_string()).map_err(|_| denied())?)
            }
        };
        let mut checks = vec![(action, bucket)];
        if matches!(cx.s3_op().name(), "CopyObject" | "UploadPartCopy")
            && let Some(src) = copy_source_bucket(cx)
        {
            checks.push((
                Action::ReadObject,
                Some(BucketName::new(src).map_err(|_| denied())?),
            ));
        }
        let op = cx.s3_op().name().to_owned();
        let access_key = creds.access_key.clone();
        let verdict = self.node.authorize(&access_key, checks).await;
        if let Err(
            e @ (stele::identity::IdentityError::Task { .. }
            | stele::identity::IdentityError::Log { .. }
            | stele::identity::IdentityError::Unavailable { .. }),
        ) = &verdict
        {
            // The check did not run: refused, but not an access decision to audit.
            tracing::error!(error = %e, "authorization check failed");
            return Err(denied());
        }
        if let Err(e) = verdict {
            let ctx = cx
                .extensions_mut()
                .get::<super::request_id::RequestContext>()
                .cloned();
            self.node
                .acting_for(stele::audit::Requester {
                    user: None,
                    key: Some(access_key.clone()),
                    source: ctx.as_ref().and_then(|c| c.peer).map(|p| p.to_string()),
                    request_id: ctx.map(|c| c.id),
                })
                .audit(&stele::audit::AuditEvent::AccessDenied {
                    plane: Plane::S3,
                    actor: access_key.clone(),
                    action: format!("{op}: {e}"),
                });
            return Err(denied());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_implemented_operation_has_an_action() {
        for op in super::IMPLEMENTED {
            assert!(super::action_of(op).is_some(), "{op} has no action class");
        }
    }

    /// IMPLEMENTED is every operation the S3 trait impl answers (read from its source),
    /// so an operation added there cannot miss its action class.
    #[test]
    fn implemented_lists_every_operation_of_the_trait_impl() {
        let src = include_str!("mod.rs");
        let start = src.find("impl S3 for SteleS3 {").expect("the impl");
        let body = &src[start..];
        let end = body.find("\n}\n").expect("its end");
        let mut found: Vec<String> = body[..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("async fn "))
            .filter_map(|l| l.split('(').next())
            .map(|snake| {
                snake
                    .split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect::<String>()
            })
            .collect();
        found.sort();
        let mut listed: Vec<String> = super::IMPLEMENTED.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}
