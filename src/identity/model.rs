//! The persisted identity records: users with their grants, and access keys with their
//! sealed secrets.

use serde::{Deserialize, Serialize};

use crate::meta::{Record, RetentionPolicy};
use crate::types::{BucketName, Timestamp};

/// What an identity may do, by role (see [`super::access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Writes backups: create/put/get/list/multipart/tagging, retention and legal hold at
    /// or above the policy, deletes what is no longer protected.
    BackupWriter,
    /// Reads backups back: get/head/list.
    RestoreReader,
    /// Reads what is retained and how: list, head, retention, legal hold, lock
    /// configuration, policies; never object data.
    Auditor,
    /// Users, keys, buckets, policies, lifecycle; no object data.
    Admin,
    /// Reserved for site replication.
    ReplicationPeer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::BackupWriter,
        Role::RestoreReader,
        Role::Auditor,
        Role::Admin,
        Role::ReplicationPeer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::BackupWriter => "backup-writer",
            Role::RestoreReader => "restore-reader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::ReplicationPeer => "replication-peer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The buckets a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    All,
    Buckets(Vec<BucketName>),
}

impl Scope {
    pub fn covers(&self, bucket: Option<&BucketName>) -> bool {
        match (self, bucket) {
            (Scope::All, _) => true,
            (Scope::Buckets(_), None) => false,
            (Scope::Buckets(list), Some(b)) => list.contains(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub role: Role,
    pub scope: Scope,
}

/// A user: a name, its grants, and whether it may bypass GOVERNANCE retention (only ever
/// granted explicitly, and under the two-person rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub created: Timestamp,
    pub disabled: bool,
    pub grants: Vec<Grant>,
    pub bypass_governance: Option<Scope>,
}

impl Record for UserRecord {
    const NAME: &'static str = "user";
    const FORMAT: u8 = 1;
}

impl UserRecord {
    pub fn is_admin(&self) -> bool {
        !self.disabled && self.grants.iter().any(|g| g.role == Role::Admin)
    }
}

/// Which listener a key opens: the S3 port or the admin port, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plane {
    S3,
    Admin,
}

/// An access key. The secret is sealed under the node's master key and bound to the access
/// key id; it is never stored or logged in plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub access_key: String,
    pub user: String,
    pub plane: Plane,
    pub sealed_secret: Vec<u8>,
    pub created: Timestamp,
    pub revoked: Option<Timestamp>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("access_key", &self.access_key)
            .field("user", &self.user)
            .field("plane", &self.plane)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl Record for KeyRecord {
    const NAME: &'static str = "key";
    const FORMAT: u8 = 1;
}

/// An operation that loosens protection or widens power: with two or more administrators
/// it needs a second one's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Privileged {
    LoosenPolicy {
        bucket: BucketName,
        policy: Option<RetentionPolicy>,
    },
    GrantBypass {
        user: String,
        scope: Option<Scope>,
    },
    DeleteAdmin {
        user: String,
    },
    SetTwoPersonRule {
        enabled: bool,
    },
}

/// A privileged operation waiting for a second administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub operation: Privileged,
    pub requested_by: String,
    pub created: Timestamp,
    pub expires: Timestamp,
}

impl Record for ApprovalRecord {
    const NAME: &'static str = "approval";
    const FORMAT: u8 = 1;
}

/// Node-wide identity settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The two-person rule (on by default; in force once two administrators exist).
    pub two_person_rule: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            two_person_rule: true,
        }
    }
}

impl Record for Settings {
    const NAME: &'static str = "identity-settings";
    const FORMAT: u8 = 1;
}
