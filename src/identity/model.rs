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
    /// Every role, for listing and parsing.
    pub const ALL: [Role; 5] = [
        Role::BackupWriter,
        Role::RestoreReader,
        Role::Auditor,
        Role::Admin,
        Role::ReplicationPeer,
    ];

    /// The role's name in the admin API and `stelectl` (`backup-writer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::BackupWriter => "backup-writer",
            Role::RestoreReader => "restore-reader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::ReplicationPeer => "replication-peer",
        }
    }

    /// The role named `s` (as [`Role::as_str`] spells it), if any.
    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The buckets a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every bucket, present and future. Node-wide actions (status, identities, workers,
    /// approvals) need it.
    All,
    /// Only these buckets.
    Buckets(Vec<BucketName>),
}

impl Scope {
    /// Whether the scope reaches `bucket`; `None` (an action about no one bucket) only
    /// [`Scope::All`] covers.
    pub fn covers(&self, bucket: Option<&BucketName>) -> bool {
        match (self, bucket) {
            (Scope::All, _) => true,
            (Scope::Buckets(_), None) => false,
            (Scope::Buckets(list), Some(b)) => list.contains(b),
        }
    }
}

/// One role on some buckets. A user's permissions are the union of its grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// What the grant allows.
    pub role: Role,
    /// Where it allows it.
    pub scope: Scope,
}

/// A user: a name, its grants, and whether it may bypass GOVERNANCE retention (only ever
/// granted explicitly, and under the two-person rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Unique: 1 to 64 letters, digits, '.', '_' or '-'.
    pub name: String,
    /// When it was created.
    pub created: Timestamp,
    /// A disabled user may do nothing and none of its keys authenticate; its grants and
    /// keys are kept for when it is enabled again.
    pub disabled: bool,
    /// What it may do, and on which buckets.
    pub grants: Vec<Grant>,
    /// The buckets where it may bypass GOVERNANCE retention; `None`: nowhere. No role
    /// implies it, not even admin.
    pub bypass_governance: Option<Scope>,
}

impl Record for UserRecord {
    const NAME: &'static str = "user";
    const FORMAT: u8 = 1;
}

impl UserRecord {
    /// Whether it is an enabled administrator (admin role on any scope). Whether it can
    /// act on the admin listener also takes an active admin key: see
    /// [`super::Identities::admins`].
    pub fn is_admin(&self) -> bool {
        !self.disabled && self.grants.iter().any(|g| g.role == Role::Admin)
    }
}

/// Which listener a key opens: the S3 port or the admin port, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plane {
    /// The S3 API port; its key ids start with `SK`.
    S3,
    /// The admin API port; its key ids start with `SA`.
    Admin,
}

/// An access key. The secret is sealed under the node's master key and bound to the access
/// key id; it is never stored or logged in plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The access key id clients present; public.
    pub access_key: String,
    /// The user it acts as.
    pub user: String,
    /// The one listener it opens.
    pub plane: Plane,
    /// The secret, sealed (ChaCha20-Poly1305) under the master key with the access key id
    /// as associated data: moved to another key id, it does not open.
    pub sealed_secret: Vec<u8>,
    /// When it was made.
    pub created: Timestamp,
    /// When it was revoked; a revoked key is kept for the record but never authenticates.
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
    /// Replace a bucket's retention policy with a looser one (a lower minimum, a higher
    /// maximum, a newly allowed mode) or remove it.
    LoosenPolicy {
        /// The bucket whose policy changes.
        bucket: BucketName,
        /// The new policy; `None` removes it.
        policy: Option<RetentionPolicy>,
    },
    /// Let a user bypass GOVERNANCE retention.
    GrantBypass {
        /// The user who gets the permission.
        user: String,
        /// The buckets it covers (`None` would remove it, which is never held).
        scope: Option<Scope>,
    },
    /// Delete a user holding the admin role (and revoke its keys).
    DeleteAdmin {
        /// The administrator deleted.
        user: String,
    },
    /// Turn the two-person rule on or off (only turning it off is held).
    SetTwoPersonRule {
        /// The rule's new state.
        enabled: bool,
    },
    /// Move the retention clock forward by `advance_micros` (fixed when asked: the lag it
    /// gives back; both clocks run on while the approval waits, so the amount, not a time,
    /// is what stays true), judged again when carried out (never past the wall clock, no
    /// more than the downtime measured). Appended last: the encodings above are unchanged.
    ResyncClock {
        /// How far to move it, in microseconds (positive).
        advance_micros: i64,
    },
}

/// A privileged operation waiting for a second administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Random id (16 hex digits) that approve and deny name.
    pub id: String,
    /// What runs when it is approved.
    pub operation: Privileged,
    /// The administrator who asked; it cannot approve its own request.
    pub requested_by: String,
    /// When it was filed.
    pub created: Timestamp,
    /// `created` plus 24 h; approved later, it does nothing and is removed.
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
