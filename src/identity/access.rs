//! Who may do what: the one table from roles to actions, and the pure decision over it.

use super::model::{Plane, Role, Scope, UserRecord};
use crate::types::BucketName;

/// Every operation class a request can fall in, on either listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    // S3 listener.
    /// ListBuckets. Any grant allows it whatever its scope.
    ListBuckets,
    /// CreateBucket.
    CreateBucket,
    /// DeleteBucket (only an empty bucket is ever deleted).
    DeleteBucket,
    /// HeadBucket, GetBucketLocation, GetBucketVersioning.
    ReadBucket,
    /// PutBucketVersioning (and PutBucketAcl, accepted only when it changes nothing).
    WriteVersioning,
    /// GetObjectLockConfiguration.
    ReadLockConfig,
    /// PutObjectLockConfiguration: the bucket's default retention. Admin only.
    WriteLockConfig,
    /// GetBucketLifecycleConfiguration.
    ReadLifecycle,
    /// PutBucketLifecycleConfiguration, DeleteBucketLifecycle.
    WriteLifecycle,
    /// ListObjects(V2), ListObjectVersions, ListMultipartUploads: keys and metadata, no
    /// data.
    ListObjects,
    /// Object data: GetObject (and a copy's source).
    ReadObject,
    /// HeadObject, GetObjectAttributes.
    HeadObject,
    /// PutObject, multipart, a copy's destination.
    WriteObject,
    /// DeleteObject(s); Object Lock still refuses to remove a protected version (short of
    /// a GOVERNANCE bypass).
    DeleteObject,
    /// GetObjectTagging.
    ReadTags,
    /// PutObjectTagging, DeleteObjectTagging.
    WriteTags,
    /// GetObjectRetention.
    ReadRetention,
    /// PutObjectRetention; shortening GOVERNANCE retention also needs the bypass grant.
    WriteRetention,
    /// GetObjectLegalHold.
    ReadLegalHold,
    /// PutObjectLegalHold.
    WriteLegalHold,
    /// GetBucketReplication.
    ReadReplication,
    /// PutBucketReplication, DeleteBucketReplication: which peer gets a bucket's
    /// versions. Admin only.
    WriteReplication,
    /// A replication request from a peer site (`x-stele-replication`): add a version or
    /// delete marker with the source's id, or raise a lock state. Never a deletion, a
    /// bypass or a configuration change.
    Replicate,
    // Admin listener.
    /// Status, disks, clock, workers, queues and alert sinks (health, readiness and
    /// metrics need no key).
    ReadStatus,
    /// Read a bucket's retention policy.
    ReadPolicy,
    /// Set or remove a bucket's retention policy (loosening is held for approval).
    WritePolicy,
    /// Create buckets and set their backup expectations.
    ManageBuckets,
    /// Users, grants, keys, governance bypass, alert sinks and the two-person rule.
    ManageIdentities,
    /// Run, pause, resume or cancel background workers; heal a disk; send a test alert.
    RunWorkers,
    /// List, approve or deny pending privileged operations.
    Approve,
    /// Read the audit trail: its events, checkpoints, public keys and exports (auditors
    /// and administrators; never object data). Appended last.
    ReadAudit,
}

impl Action {
    /// Every action, for tests that walk the whole table.
    pub const ALL: [Action; 31] = [
        Action::ListBuckets,
        Action::CreateBucket,
        Action::DeleteBucket,
        Action::ReadBucket,
        Action::WriteVersioning,
        Action::ReadLockConfig,
        Action::WriteLockConfig,
        Action::ReadLifecycle,
        Action::WriteLifecycle,
        Action::ListObjects,
        Action::ReadObject,
        Action::HeadObject,
        Action::WriteObject,
        Action::DeleteObject,
        Action::ReadTags,
        Action::WriteTags,
        Action::ReadRetention,
        Action::WriteRetention,
        Action::ReadLegalHold,
        Action::WriteLegalHold,
        Action::ReadReplication,
        Action::WriteReplication,
        Action::Replicate,
        Action::ReadStatus,
        Action::ReadPolicy,
        Action::WritePolicy,
        Action::ManageBuckets,
        Action::ManageIdentities,
        Action::RunWorkers,
        Action::Approve,
        Action::ReadAudit,
    ];

    /// The listener the action belongs to.
    pub fn plane(self) -> Plane {
        match self {
            Action::ReadStatus
            | Action::ReadPolicy
            | Action::WritePolicy
            | Action::ManageBuckets
            | Action::ManageIdentities
            | Action::RunWorkers
            | Action::Approve
            | Action::ReadAudit => Plane::Admin,
            _ => Plane::S3,
        }
    }

    /// Actions that are not about one bucket (a bucket scope cannot grant them).
    fn node_wide(self) -> bool {
        matches!(
            self,
            Action::ListBuckets
                | Action::ReadStatus
                | Action::ManageIdentities
                | Action::RunWorkers
                | Action::Approve
                | Action::ReadAudit
        )
    }
}

/// Whether `role` allows `action`: the whole policy in one table.
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action as A;
    match role {
        Role::BackupWriter => matches!(
            action,
            A::ListBuckets
                | A::CreateBucket
                | A::ReadBucket
                | A::ReadLockConfig
                | A::ListObjects
                | A::ReadObject
                | A::HeadObject
                | A::WriteObject
                | A::DeleteObject
                | A::ReadTags
                | A::WriteTags
                | A::ReadRetention
                | A::WriteRetention
                | A::ReadLegalHold
                | A::WriteLegalHold
        ),
        Role::RestoreReader => matches!(
            action,
            A::ListBuckets | A::ReadBucket | A::ListObjects | A::ReadObject | A::HeadObject
        ),
        Role::Auditor => matches!(
            action,
            A::ListBuckets
                | A::ReadBucket
                | A::ListObjects
                | A::HeadObject
                | A::ReadRetention
                | A::ReadLegalHold
                | A::ReadLockConfig
                | A::ReadLifecycle
                | A::ReadReplication
                | A::ReadStatus
                | A::ReadPolicy
                | A::ReadAudit
        ),
        Role::Admin => matches!(
            action,
            A::ListBuckets
                | A::CreateBucket
                | A::DeleteBucket
                | A::ReadBucket
                | A::WriteVersioning
                | A::ReadLockConfig
                | A::WriteLockConfig
                | A::ReadLifecycle
                | A::WriteLifecycle
                | A::ReadReplication
                | A::WriteReplication
                | A::ListObjects
                | A::ReadStatus
                | A::ReadPolicy
                | A::WritePolicy
                | A::ManageBuckets
                | A::ManageIdentities
                | A::RunWorkers
                | A::ReadAudit
                | A::Approve
        ),
        // Replicas and the probes a sender makes (its target bucket's settings, whether a
        // version is there already), nothing else: no data read, no deletion.
        Role::ReplicationPeer => matches!(
            action,
            A::ReadBucket | A::ReadLockConfig | A::HeadObject | A::Replicate
        ),
    }
}

/// Whether `user` may do `action` on `bucket` (None: not about one bucket). A disabled
/// user may do nothing.
pub fn allows(user: &UserRecord, action: Action, bucket: Option<&BucketName>) -> bool {
    !user.disabled
        && user.grants.iter().any(|g| {
            let in_scope = if action == Action::ListBuckets {
                true
            } else if action.node_wide() {
                g.scope == Scope::All
            } else {
                g.scope.covers(bucket)
            };
            in_scope && role_allows(g.role, action)
        })
}

/// Whether `user` may bypass GOVERNANCE retention in `bucket`: only by explicit grant.
pub fn may_bypass(user: &UserRecord, bucket: &BucketName) -> bool {
    !user.disabled
        && user
            .bypass_governance
            .as_ref()
            .is_some_and(|s| s.covers(Some(bucket)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::model::Grant;
    use crate::types::Timestamp;

    fn user(role: Role, scope: Scope) -> UserRecord {
        UserRecord {
            name: "u".into(),
            created: Timestamp(0),
            disabled: false,
            grants: vec![Grant { role, scope }],
            bypass_governance: None,
        }
    }

    fn b(n: &str) -> BucketName {
        BucketName::new(n).expect("name")
    }

    #[test]
    fn no_role_but_admin_manages_identities_and_only_data_roles_read_objects() {
        for role in Role::ALL {
            assert_eq!(
                role_allows(role, Action::ManageIdentities),
                role == Role::Admin
            );
            assert_eq!(
                role_allows(role, Action::ReadObject),
                matches!(role, Role::BackupWriter | Role::RestoreReader)
            );
            // Nobody changes lock configuration but administrators.
            assert_eq!(
                role_allows(role, Action::WriteLockConfig),
                role == Role::Admin
            );
        }
    }

    #[test]
    fn scopes_limit_bucket_actions_and_node_wide_actions_need_all() {
        let u = user(Role::BackupWriter, Scope::Buckets(vec![b("mine")]));
        assert!(allows(&u, Action::WriteObject, Some(&b("mine"))));
        assert!(!allows(&u, Action::WriteObject, Some(&b("theirs"))));
        assert!(allows(&u, Action::ListBuckets, None));
        let a = user(Role::Admin, Scope::Buckets(vec![b("mine")]));
        assert!(!allows(&a, Action::ManageIdentities, None));
        assert!(allows(&a, Action::WritePolicy, Some(&b("mine"))));
        let mut d = user(Role::Admin, Scope::All);
        assert!(allows(&d, Action::ManageIdentities, None));
        d.disabled = true;
        assert!(!allows(&d, Action::ManageIdentities, None));
    }

    #[test]
    fn bypass_is_only_by_explicit_grant() {
        let mut u = user(Role::Admin, Scope::All);
        assert!(!may_bypass(&u, &b("xxx")));
        u.bypass_governance = Some(Scope::Buckets(vec![b("xxx")]));
        assert!(may_bypass(&u, &b("xxx")));
        assert!(!may_bypass(&u, &b("yyy")));
    }
}
