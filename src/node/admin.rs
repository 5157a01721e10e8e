//! The admin plane's calls on [`Node`]: identities, the two-person rule, bucket policy,
//! alert sinks and the node's state. Every write, and every read that scans, runs on the
//! blocking pool; counters kept at commit time are read in place. A blocking task that
//! does not finish is its layer's `Task` error.

use super::{Node, offload};
use crate::alert::{Alert, QueuedAlert, SinkRecord};
use crate::audit::trail::TrailError;
use crate::control::{ControlError, Outcome};
use crate::disk::DiskStatus;
use crate::identity::{
    ApprovalRecord, Grant, Identities, IdentityError, KeyRecord, NewKey, Plane, Privileged, Scope,
    UserRecord,
};
use crate::lock::ClockStatus;
use crate::meta::{
    BucketRecord, BucketUsage, DefaultRetention, MetaError, QueueLengths, RetentionPolicy,
};
use crate::store::StoreError;
use crate::types::BucketName;

/// A user with its keys (secrets sealed), as the admin API lists users.
pub type UserWithKeys = (UserRecord, Vec<KeyRecord>);

/// What `GET /v1/status` counts of the identity store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityCounts {
    /// Users, enabled or not.
    pub users: usize,
    /// Privileged operations waiting for a second administrator.
    pub pending_approvals: usize,
    /// Whether the two-person rule is in force (two administrators or more, enabled).
    pub two_person_rule_in_force: bool,
}

/// `bucket`'s record for the trail's reports and queries, or [`TrailError::NoSuchBucket`].
fn bucket_for_audit(
    store: &crate::store::Store,
    bucket: &BucketName,
) -> Result<BucketRecord, TrailError> {
    store
        .meta()
        .bucket(bucket)?
        .ok_or_else(|| TrailError::NoSuchBucket {
            bucket: bucket.to_string(),
        })
}

impl Node {
    // ---- audit trail ------------------------------------------------------------------

    /// The whole audit trail as NDJSON with its checkpoints (see
    /// [`crate::audit::trail::Export`]), after recording the export itself (by this
    /// handle's requester) so that an auditor's export is in the trail it returns.
    /// Blocking pool.
    ///
    /// # Errors
    /// [`TrailError::NoKey`] before the node has its signing key; a metadata error.
    pub async fn audit_export(&self) -> Result<crate::audit::trail::Export, TrailError> {
        let store = self.store().clone();
        offload(move || {
            let now = store.retention_clock().readings();
            store
                .trail()
                .record(crate::audit::Entry::new("audit-exported", now).by(store.requester()));
            store.trail().export()
        })
        .await
    }

    /// Records a clean stop in the audit trail and signs its last checkpoint: the last
    /// thing a node does, once every request has ended. Blocking pool.
    ///
    /// # Errors
    /// The write's.
    pub async fn audit_stopped(&self) -> Result<(), TrailError> {
        let store = self.store().clone();
        offload(move || {
            let now = store.retention_clock().readings();
            store.trail().node_stopped(now)
        })
        .await
    }

    /// The name of the user whose active key `access_key` is, when the key is cached (it
    /// is once a request signed with it was authenticated). In place.
    pub fn user_of_cached_key(&self, access_key: &str) -> Option<String> {
        self.identities().cached_user(access_key)
    }

    /// A signed retention report of `bucket`'s versions under `prefix` (see
    /// [`crate::audit::report`]), recorded in the trail as this handle's requester's.
    /// Blocking pool.
    ///
    /// # Errors
    /// [`TrailError::NoSuchBucket`]; [`TrailError::NoKey`]; a metadata error.
    pub async fn audit_report(
        &self,
        bucket: BucketName,
        prefix: String,
    ) -> Result<crate::audit::report::Report, TrailError> {
        let store = self.store().clone();
        offload(move || {
            let rec = bucket_for_audit(&store, &bucket)?;
            store.trail().report(
                store.meta(),
                &rec,
                &prefix,
                store.retention_clock(),
                store.requester(),
            )
        })
        .await
    }

    /// Events of the trail matching `filter` (at most `limit`), each with its inclusion
    /// proof, the query recorded as this handle's requester's. Blocking pool.
    ///
    /// # Errors
    /// [`TrailError::NoKey`]; a metadata error.
    pub async fn audit_query(
        &self,
        filter: crate::audit::query::EventFilter,
        limit: usize,
    ) -> Result<crate::audit::query::EventPage, TrailError> {
        let store = self.store().clone();
        offload(move || {
            let now = store.retention_clock().readings();
            store.trail().query(&filter, limit, store.requester(), now)
        })
        .await
    }

    /// The versions of `bucket` under `prefix` that `filter` wants, as report rows; the
    /// query is recorded in the trail. Blocking pool.
    ///
    /// # Errors
    /// [`TrailError::NoSuchBucket`]; a metadata error.
    pub async fn retention_versions(
        &self,
        bucket: BucketName,
        prefix: String,
        filter: crate::audit::report::VersionFilter,
    ) -> Result<Vec<stele_tlog::report::Row>, TrailError> {
        let store = self.store().clone();
        offload(move || {
            let rec = bucket_for_audit(&store, &bucket)?;
            let now = store.retention_clock().readings();
            store.trail().record(
                crate::audit::Entry::new("retention-queried", now)
                    .by(store.requester())
                    .on(
                        bucket.as_str(),
                        (!prefix.is_empty()).then_some(&prefix),
                        None,
                    )
                    .with("filter", &filter),
            );
            let rows = crate::audit::report::rows(store.meta(), &rec, &prefix)?;
            Ok(rows.into_iter().filter(|r| filter.matches(r)).collect())
        })
        .await
    }

    /// The trail's origin and its public key (note verifier format), if it has one.
    pub fn audit_key(&self) -> (String, Option<String>) {
        let t = self.store().trail();
        (t.origin().to_owned(), t.public_key())
    }

    /// The latest signed checkpoint, as (size, note). Blocking pool.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn audit_latest(&self) -> Result<Option<(u64, String)>, TrailError> {
        let store = self.store().clone();
        offload(move || Ok(store.trail().latest()?)).await
    }

    // ---- identities -------------------------------------------------------------------

    /// Every user with its keys, by name.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn users(&self) -> Result<Vec<UserWithKeys>, IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || {
            ids.users()?
                .into_iter()
                .map(|u| {
                    let keys = ids.keys_of(&u.name)?;
                    Ok((u, keys))
                })
                .collect()
        })
        .await
    }

    /// Creates a user with `grants` (no keys yet).
    ///
    /// # Errors
    /// [`IdentityError::UserExists`], [`IdentityError::InvalidName`], a metadata error.
    pub async fn create_user(
        &self,
        name: &str,
        grants: Vec<Grant>,
    ) -> Result<UserWithKeys, IdentityError> {
        self.user_write(name, move |ids, n| ids.create_user(n, grants))
            .await
    }

    /// Runs a write on user `name` on the blocking pool; the user as it is then, with its
    /// keys.
    async fn user_write(
        &self,
        name: &str,
        write: impl FnOnce(&Identities, &str) -> Result<UserRecord, IdentityError> + Send + 'static,
    ) -> Result<UserWithKeys, IdentityError> {
        let (ids, name) = (self.control.identities_handle(), name.to_owned());
        offload(move || {
            let u = write(&ids, &name)?;
            let keys = ids.keys_of(&u.name)?;
            Ok((u, keys))
        })
        .await
    }

    /// Replaces a user's grants.
    ///
    /// # Errors
    /// [`IdentityError::UnknownUser`], [`IdentityError::LastAdmin`], a metadata error.
    pub async fn set_grants(
        &self,
        name: &str,
        grants: Vec<Grant>,
    ) -> Result<UserWithKeys, IdentityError> {
        self.user_write(name, move |ids, n| ids.set_grants(n, grants))
            .await
    }

    /// Disables or enables a user (a disabled user's keys authenticate nothing).
    ///
    /// # Errors
    /// [`IdentityError::UnknownUser`], [`IdentityError::LastAdmin`], a metadata error.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<UserWithKeys, IdentityError> {
        self.user_write(name, move |ids, n| ids.set_disabled(n, disabled))
            .await
    }

    /// Deletes a user (an administrator: a privileged operation); see
    /// [`crate::control::Control::delete_user`].
    ///
    /// # Errors
    /// See [`crate::control::Control::delete_user`].
    pub async fn delete_user(&self, actor: &str, user: &str) -> Result<Outcome, ControlError> {
        let (c, actor, user) = (self.control.clone(), actor.to_owned(), user.to_owned());
        offload(move || c.delete_user(&actor, &user)).await
    }

    /// A new key for `user` on `plane`; the secret is in the answer only.
    ///
    /// # Errors
    /// [`IdentityError::UnknownUser`], a metadata error.
    pub async fn create_key(&self, user: &str, plane: Plane) -> Result<NewKey, IdentityError> {
        let (ids, user) = (self.control.identities_handle(), user.to_owned());
        offload(move || ids.create_key(&user, plane, None)).await
    }

    /// Replaces a key by a new one of the same user and plane (the old one is revoked).
    ///
    /// # Errors
    /// [`IdentityError::UnknownKey`], a metadata error.
    pub async fn rotate_key(&self, access_key: &str) -> Result<NewKey, IdentityError> {
        let (ids, k) = (self.control.identities_handle(), access_key.to_owned());
        offload(move || ids.rotate_key(&k)).await
    }

    /// Revokes a key.
    ///
    /// # Errors
    /// [`IdentityError::UnknownKey`], [`IdentityError::LastAdmin`], a metadata error.
    pub async fn revoke_key(&self, access_key: &str) -> Result<KeyRecord, IdentityError> {
        let (ids, k) = (self.control.identities_handle(), access_key.to_owned());
        offload(move || ids.revoke_key(&k)).await
    }

    /// A key's record (its secret sealed).
    ///
    /// # Errors
    /// [`IdentityError::UnknownKey`], a metadata error.
    pub async fn key(&self, access_key: &str) -> Result<KeyRecord, IdentityError> {
        let (ids, k) = (self.control.identities_handle(), access_key.to_owned());
        offload(move || ids.key(&k)).await
    }

    /// Grants (privileged) or removes a user's governance-bypass permission; see
    /// [`crate::control::Control::set_bypass`].
    ///
    /// # Errors
    /// See [`crate::control::Control::set_bypass`].
    pub async fn set_bypass(
        &self,
        actor: &str,
        user: &str,
        scope: Option<Scope>,
    ) -> Result<Outcome, ControlError> {
        let (c, actor, user) = (self.control.clone(), actor.to_owned(), user.to_owned());
        offload(move || c.set_bypass(&actor, &user, scope)).await
    }

    /// How many users and pending approvals there are, and whether the two-person rule
    /// is in force.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn identity_counts(&self) -> Result<IdentityCounts, IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || {
            Ok(IdentityCounts {
                users: ids.users()?.len(),
                pending_approvals: ids.approvals()?.len(),
                two_person_rule_in_force: ids.two_person_in_force()?,
            })
        })
        .await
    }

    // ---- the two-person rule ----------------------------------------------------------

    /// The privileged operations waiting for a second administrator.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn approvals(&self) -> Result<Vec<ApprovalRecord>, IdentityError> {
        let ids = self.control.identities_handle();
        offload(move || ids.approvals()).await
    }

    /// Approves and carries out a pending operation; see
    /// [`crate::control::Control::approve`].
    ///
    /// # Errors
    /// See [`crate::control::Control::approve`].
    pub async fn approve(&self, actor: &str, id: &str) -> Result<Privileged, ControlError> {
        let (c, actor, id) = (self.control.clone(), actor.to_owned(), id.to_owned());
        offload(move || c.approve(&actor, &id)).await
    }

    /// Drops a pending operation unexecuted.
    ///
    /// # Errors
    /// [`IdentityError::UnknownApproval`], a metadata error.
    pub async fn deny(&self, id: &str) -> Result<ApprovalRecord, IdentityError> {
        let (ids, id) = (self.control.identities_handle(), id.to_owned());
        offload(move || ids.deny(&id)).await
    }

    /// Turns the two-person rule on (at once) or off (privileged); see
    /// [`crate::control::Control::set_two_person_rule`].
    ///
    /// # Errors
    /// See [`crate::control::Control::set_two_person_rule`].
    pub async fn set_two_person_rule(
        &self,
        actor: &str,
        enabled: bool,
    ) -> Result<Outcome, ControlError> {
        let (c, actor) = (self.control.clone(), actor.to_owned());
        offload(move || c.set_two_person_rule(&actor, enabled)).await
    }

    // ---- buckets ----------------------------------------------------------------------

    /// Creates a bucket, with Object Lock when `object_lock` and then `default` as its
    /// default retention (the admin API's one-call bucket creation).
    ///
    /// # Errors
    /// [`StoreError::BucketExists`], [`StoreError::NoSuchBucket`] if it goes meanwhile,
    /// an invalid default retention, a metadata error.
    pub async fn create_bucket_with_default(
        &self,
        name: &BucketName,
        object_lock: bool,
        default: Option<DefaultRetention>,
    ) -> Result<(), StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || {
            s.create_bucket(&n, object_lock)?;
            if default.is_some() {
                s.set_lock_configuration(&n, default)?;
            }
            Ok(())
        })
        .await
    }

    /// A bucket's erasure coding across sites, and the K+M its new objects get.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a metadata error.
    pub async fn bucket_geo(
        &self,
        name: &BucketName,
    ) -> Result<(crate::meta::BucketGeo, crate::config::EcParams), StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || {
            s.bucket(&n)?;
            let geo = s.bucket_geo(&n)?;
            let ec = s.bucket_profile(&geo);
            Ok((geo, ec))
        })
        .await
    }

    /// Sets (or with `None` removes) a bucket's erasure coding across sites; see
    /// [`crate::store::Store::set_bucket_geo`].
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], [`StoreError::InvalidProfile`], a command the group
    /// did not take.
    pub async fn set_bucket_geo(
        &self,
        name: &BucketName,
        geo: Option<crate::meta::BucketGeo>,
    ) -> Result<(), StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || s.set_bucket_geo(&n, geo)).await
    }

    /// Counts (`dry_run`) or queues the rebuild of every shard on `disks` (a removed
    /// site's); see [`crate::store::Store::queue_site_rebuild`].
    ///
    /// # Errors
    /// A metadata read or write.
    pub async fn queue_site_rebuild(
        &self,
        disks: std::collections::HashSet<String>,
        dry_run: bool,
    ) -> Result<crate::store::SiteRebuild, StoreError> {
        let s = self.owned();
        offload(move || s.queue_site_rebuild(&disks, dry_run)).await
    }

    /// How the cluster's layout stands for erasure coding across sites.
    pub fn geo_status(&self) -> crate::store::GeoStatus {
        self.store().geo_status()
    }

    /// Sets (`Some`, bytes) or removes (`None`) a bucket's hard quota; see
    /// [`crate::store::Store::set_quota`]. Returns the bucket's record and usage after the change.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a metadata error.
    pub async fn set_bucket_quota(
        &self,
        name: &BucketName,
        quota: Option<u64>,
    ) -> Result<(BucketRecord, BucketUsage), StoreError> {
        let (s, n) = (self.owned(), name.clone());
        offload(move || {
            let rec = s.set_quota(&n, quota)?;
            let used = s.usage(&n)?;
            Ok((rec, used))
        })
        .await
    }

    /// A bucket's usage (one point read).
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], a metadata error.
    pub async fn bucket_usage(&self, name: &BucketName) -> Result<BucketUsage, StoreError> {
        self.store().usage(name)
    }

    /// Every bucket with its usage (one point read each: usage is kept at commit time).
    ///
    /// # Errors
    /// A metadata error.
    pub async fn bucket_usages(&self) -> Result<Vec<(BucketRecord, BucketUsage)>, StoreError> {
        let s = self.owned();
        offload(move || {
            s.buckets()?
                .into_iter()
                .map(|b| {
                    let u = s.meta().usage(&b.name)?;
                    Ok((b, u))
                })
                .collect()
        })
        .await
    }

    /// Moves the retention clock forward (privileged); see
    /// [`crate::control::Control::resync_clock`].
    ///
    /// # Errors
    /// See [`crate::control::Control::resync_clock`].
    pub async fn resync_clock(
        &self,
        actor: &str,
        to: Option<crate::types::Timestamp>,
    ) -> Result<Outcome, ControlError> {
        let (c, actor) = (self.control.clone(), actor.to_owned());
        offload(move || c.resync_clock(&actor, to)).await
    }

    /// Sets a bucket's retention policy (loosening is privileged); see
    /// [`crate::control::Control::set_retention_policy`].
    ///
    /// # Errors
    /// See [`crate::control::Control::set_retention_policy`].
    pub async fn set_retention_policy(
        &self,
        actor: &str,
        bucket: &BucketName,
        policy: Option<RetentionPolicy>,
    ) -> Result<Outcome, ControlError> {
        let (c, actor, b) = (self.control.clone(), actor.to_owned(), bucket.clone());
        offload(move || c.set_retention_policy(&actor, &b, policy)).await
    }

    // ---- the node ---------------------------------------------------------------------

    /// Every configured disk's state (each is probed: blocking pool).
    ///
    /// # Errors
    /// [`StoreError::Task`] if the blocking task does not finish.
    pub async fn disks(&self) -> Result<Vec<DiskStatus>, StoreError> {
        let s = self.owned();
        offload(move || Ok(s.disks())).await
    }

    /// The retention clock's state. Reading it advances the clock's persisted
    /// high-water mark (a synced write at most once a second): blocking pool.
    ///
    /// # Errors
    /// [`StoreError::Task`] if the blocking task does not finish.
    pub async fn clock_status(&self) -> Result<ClockStatus, StoreError> {
        let s = self.owned();
        offload(move || Ok(s.retention_clock().status())).await
    }

    /// The queue lengths kept at commit time (counters: in place).
    ///
    /// # Errors
    /// A metadata error.
    pub async fn queue_lengths(&self) -> Result<QueueLengths, MetaError> {
        self.store().meta().queue_lengths()
    }

    /// Clears a disk's failed state after the operator fixed it; see
    /// [`crate::store::Store::heal_disk`].
    ///
    /// # Errors
    /// See [`crate::store::Store::heal_disk`].
    pub async fn heal_disk(&self, id: &str) -> Result<(), StoreError> {
        let (s, id) = (self.owned(), id.to_owned());
        offload(move || s.heal_disk(&id)).await
    }

    // ---- alerts -----------------------------------------------------------------------

    /// The alert sinks, by name.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn alert_sinks(&self) -> Result<Vec<SinkRecord>, MetaError> {
        let a = self.alerts.clone();
        offload(move || a.sinks()).await
    }

    /// Adds or replaces the sink `name` (a webhook URL).
    ///
    /// # Errors
    /// A metadata error.
    pub async fn set_alert_sink(&self, name: &str, url: &str) -> Result<SinkRecord, MetaError> {
        let (a, n, u) = (self.alerts.clone(), name.to_owned(), url.to_owned());
        offload(move || a.set_sink(&n, &u)).await
    }

    /// Removes the sink `name` and its queued deliveries.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn remove_alert_sink(&self, name: &str) -> Result<(), MetaError> {
        let (a, n) = (self.alerts.clone(), name.to_owned());
        offload(move || a.remove_sink(&n)).await
    }

    /// Up to `limit` queued deliveries, oldest first.
    ///
    /// # Errors
    /// A metadata error.
    pub async fn alert_queue(&self, limit: usize) -> Result<Vec<QueuedAlert>, MetaError> {
        let a = self.alerts.clone();
        offload(move || a.queue(limit)).await
    }

    /// Raises `alert` (queued for every sink; failures to queue are logged by the alert
    /// layer).
    ///
    /// # Errors
    /// [`MetaError::Task`] if the blocking task does not finish.
    pub async fn raise(&self, alert: Alert) -> Result<(), MetaError> {
        let a = self.alerts.clone();
        offload(move || {
            a.raise(alert);
            Ok(())
        })
        .await
    }

    /// Expects a backup into `bucket` at least every `every_secs` (`None`: no longer).
    ///
    /// # Errors
    /// A metadata error.
    pub async fn expect_backups(
        &self,
        bucket: &str,
        every_secs: Option<u64>,
    ) -> Result<(), MetaError> {
        let (a, b) = (self.alerts.clone(), bucket.to_owned());
        offload(move || a.expect(&b, every_secs)).await
    }
}
