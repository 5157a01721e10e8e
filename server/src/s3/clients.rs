//! What the S3 listener recognises of a request before s3s routes it: the backup client
//! that sent it (from its User-Agent, for the request log), and a bucket query naming a
//! sub-resource nobody implements, which must not fall through to a listing.

use std::collections::HashSet;
use std::sync::Mutex;

/// The backup client a User-Agent names, by its documented tokens: Veeam sends
/// `APN/1.0 Veeam/1.0 ...`, Kopia `kopia/...`, restic `restic/...`, rclone `rclone/...`,
/// Velero's AWS plugin `velero/...`, the aws CLI `aws-cli/...`, the SDKs `aws-sdk-...`.
pub fn client_of(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    const KNOWN: [(&str, &str); 8] = [
        ("veeam/", "veeam"),
        ("kopia", "kopia"),
        ("restic/", "restic"),
        ("rclone/", "rclone"),
        ("velero", "velero"),
        ("aws-cli/", "aws-cli"),
        ("s3cmd", "s3cmd"),
        ("aws-sdk-", "aws-sdk"),
    ];
    KNOWN
        .iter()
        .find(|(token, _)| ua.contains(token))
        .map_or("other", |(_, name)| name)
}

/// Logs once per process, at info, the first request of each recognised client (so an
/// operator sees "Veeam is connected" without a line per request).
pub fn note_client(client: &'static str, user_agent: &str) {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    if client == "other" {
        return;
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(client) {
        tracing::info!(client, user_agent, "S3 client recognised");
    }
}

/// Query keys a GET on the service or a bucket may carry: ListObjects(V2),
/// ListObjectVersions and ListMultipartUploads parameters, the bucket sub-resources
/// Amazon S3 defines (implemented here or answered NotImplemented by the router), the
/// SDKs' `x-id`, minio-go's `metadata`, and presigned-URL parameters.
const BUCKET_QUERY: &[&str] = &[
    "list-type",
    "prefix",
    "delimiter",
    "marker",
    "max-keys",
    "encoding-type",
    "continuation-token",
    "fetch-owner",
    "start-after",
    "versions",
    "key-marker",
    "version-id-marker",
    "uploads",
    "upload-id-marker",
    "max-uploads",
    "max-buckets",
    "bucket-region",
    "location",
    "versioning",
    "object-lock",
    "lifecycle",
    "replication",
    "acl",
    "tagging",
    "policy",
    "policyStatus",
    "cors",
    "website",
    "encryption",
    "logging",
    "notification",
    "accelerate",
    "requestPayment",
    "ownershipControls",
    "publicAccessBlock",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "x-id",
    "allow-unordered",
    "optional-object-attributes",
    // minio-go (restic, Kopia) asks for user metadata in listings this way.
    "metadata",
    // Presigned URLs of Signature Version 2.
    "AWSAccessKeyId",
    "Signature",
    "Expires",
    // Bucket sub-resources that carry an id.
    "id",
];

/// The first query key of a GET addressed to the service or a bucket (path style: a path
/// of at most one segment; virtual-host style, `virtual_bucket`: the path `/`) that is
/// neither a listing parameter nor a sub-resource S3 defines, if any. Amazon S3 ignores
/// such keys and lists; a backup client probing a sub-resource by a name this server does
/// not know (Kopia's lock probes) would then read a listing as the answer, so the server
/// answers NotImplemented instead of the listing s3s made.
pub fn unknown_bucket_query(
    method: &http::Method,
    virtual_bucket: bool,
    path: &str,
    query: Option<&str>,
) -> Option<String> {
    if method != http::Method::GET && method != http::Method::HEAD {
        return None;
    }
    let bucket_level = if virtual_bucket {
        path.trim_matches('/').is_empty()
    } else {
        !path.trim_matches('/').contains('/')
    };
    if !bucket_level {
        return None;
    }
    query?
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(""))
        .map(|k| urlencoding::decode(k).map_or_else(|_| k.to_owned(), |c| c.into_owned()))
        .find(|k| {
            !k.starts_with("X-Amz-")
                && !k.starts_with("x-amz-")
                && !BUCKET_QUERY.contains(&k.as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_named_by_their_user_agents() {
        assert_eq!(client_of("APN/1.0 Veeam/1.0 Backup/12.1"), "veeam");
        assert_eq!(client_of("kopia/v0.17.0 (linux/amd64)"), "kopia");
        assert_eq!(client_of("restic/0.14.0 (linux/amd64)"), "restic");
        assert_eq!(client_of("aws-cli/2.15.0 Python/3.11"), "aws-cli");
        assert_eq!(client_of("aws-sdk-rust/1.3.0 os/linux"), "aws-sdk");
        assert_eq!(client_of("curl/8.0"), "other");
    }

    #[test]
    fn unknown_bucket_queries_are_found() {
        let get = http::Method::GET;
        assert_eq!(
            unknown_bucket_query(&get, false, "/b", Some("object-lockx")),
            Some("object-lockx".into())
        );
        assert_eq!(
            unknown_bucket_query(&get, false, "/b", Some("list-type=2&prefix=a")),
            None
        );
        assert_eq!(
            unknown_bucket_query(&get, false, "/b", Some("object-lock")),
            None
        );
        assert_eq!(
            unknown_bucket_query(&get, false, "/b/", Some("versions&key-marker=a")),
            None
        );
        assert_eq!(
            unknown_bucket_query(&get, false, "/", Some("retention")),
            Some("retention".into())
        );
        // Object requests are s3s's to judge.
        assert_eq!(
            unknown_bucket_query(&get, false, "/b/k", Some("whatever")),
            None
        );
        assert_eq!(
            unknown_bucket_query(&http::Method::PUT, false, "/b", Some("whatever")),
            None
        );
        assert_eq!(
            unknown_bucket_query(
                &get,
                false,
                "/b",
                Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&list-type=2")
            ),
            None
        );
        // SigV2 presigned URLs.
        assert_eq!(
            unknown_bucket_query(
                &get,
                false,
                "/b",
                Some("AWSAccessKeyId=a&Signature=s&Expires=1")
            ),
            None
        );
        // Virtual-host style: `/key` is an object, `/` the bucket.
        assert_eq!(
            unknown_bucket_query(&get, true, "/k", Some("versionId=v1")),
            None
        );
        assert_eq!(
            unknown_bucket_query(&get, true, "/", Some("object-lockx")),
            Some("object-lockx".into())
        );
    }
}
