//! SigV4 credentials for the S3 listener. s3s verifies signatures; this answers which
//! secret belongs to an access key, with S3's error for an unknown one.

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Error, S3ErrorCode, S3Result};
use stele::identity::Credential;

pub struct Keys {
    access_key: String,
    secret_key: SecretKey,
}

impl Keys {
    pub fn new(c: Credential) -> Self {
        Self {
            access_key: c.access_key,
            secret_key: SecretKey::from(c.secret_key),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret_key.clone())
        } else {
            tracing::warn!(access_key, "unknown access key");
            Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            ))
        }
    }
}
