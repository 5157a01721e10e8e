//! Users, their role grants and keys, and governance-bypass grants: `GET`/`POST
//! /v1/users`, `DELETE /v1/users/{name}`, `PUT /v1/users/{name}/grants`,
//! `POST /v1/users/{name}/disable|enable`, `POST /v1/users/{name}/keys`,
//! `PUT /v1/users/{name}/governance-bypass`, `POST /v1/keys/{access_key}/rotate`,
//! `DELETE /v1/keys/{access_key}` (204) and
//! `PUT /v1/s3-keys/{access_key}/governance-bypass`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A role on some buckets, as the API reads and writes it:
/// `{"role": "backup-writer", "buckets": ["b1"]}` or `{"role": "admin", "buckets": null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `backup-writer`, `restore-reader`, `auditor`, `admin` or `replication-peer` (another
    /// name is refused with 400).
    pub role: String,
    /// The buckets it covers; `null` (or absent in a request): every bucket.
    #[serde(default)]
    pub buckets: Option<Vec<String>>,
}

/// Which listener a key opens, spelled in lower case: `s3` or `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    /// `s3`: the S3 API port.
    S3,
    /// `admin`: the admin API port.
    Admin,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

impl Plane {
    /// The wire spelling: `s3` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plane::S3 => "s3",
            Plane::Admin => "admin",
            Plane::Unknown => "unknown",
        }
    }
}

/// An access key, as a [`User`] lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// The access key id (public).
    pub access_key: String,
    /// The listener it opens.
    pub plane: Plane,
    /// When it was made.
    pub created: Timestamp,
    /// When it was revoked; `null` while it is active.
    pub revoked: Option<Timestamp>,
}

/// Where a user may bypass GOVERNANCE retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bypass {
    /// The buckets; `null`: every bucket.
    pub buckets: Option<Vec<String>>,
}

/// A user, as `GET /v1/users` lists them and the calls that change one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique: 1 to 64 letters, digits, '.', '_' or '-'.
    pub name: String,
    /// A disabled user may do nothing and none of its keys authenticate.
    pub disabled: bool,
    /// What it may do, and on which buckets.
    pub grants: Vec<Grant>,
    /// `null`: no bypass; `{"buckets": null}`: every bucket; `{"buckets": [..]}`: those.
    pub governance_bypass: Option<Bypass>,
    /// Its keys, revoked ones included.
    pub keys: Vec<Key>,
}

/// The body of `POST /v1/users` (201 with the [`User`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// The user's name.
    pub name: String,
    /// Its grants; absent: none.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// The body of `PUT /v1/users/{name}/grants`: the grants that replace the user's (an
/// empty list removes them all). Answers the [`User`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetGrants {
    /// The new grants.
    pub grants: Vec<Grant>,
}

/// The optional body of `POST /v1/users/{name}/keys`: `{"plane": "s3" | "admin"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// `s3` (the default when absent or `null`) or `admin` (another value is refused with
    /// 400; see [`Plane::as_str`]).
    #[serde(default)]
    pub plane: Option<String>,
}

/// A new key with its secret (201 from `POST /v1/users/{name}/keys` and
/// `POST /v1/keys/{access_key}/rotate`). The secret is shown only this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    /// The user it acts as.
    pub user: String,
    /// The access key id.
    pub access_key: String,
    /// The secret, in plain text.
    pub secret_key: String,
    /// The listener it opens.
    pub plane: Plane,
}

/// The body of `PUT /v1/users/{name}/governance-bypass` and
/// `PUT /v1/s3-keys/{access_key}/governance-bypass`. Answers a
/// [`crate::approvals::Outcome`] (granting is privileged under the two-person rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetBypass {
    /// Grant (`true`) or withdraw (`false`) the bypass.
    pub allowed: bool,
    /// The buckets it covers; `null` or absent: every bucket. Ignored when withdrawing.
    #[serde(default)]
    pub buckets: Option<Vec<String>>,
}
