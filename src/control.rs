//! Administrative operations that span identities and the engine, with the two-person
//! rule applied: loosening a retention policy, granting governance bypass, deleting an
//! administrator, and turning the rule off each become a pending request once two
//! administrators exist, carried out only when a different administrator approves it in
//! time.

use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::identity::{ApprovalRecord, Identities, IdentityError, Privileged, Requested, Scope};
use crate::lock::{self, PolicyChange};
use crate::meta::RetentionPolicy;
use crate::store::{Store, StoreError};
use crate::types::BucketName;

/// Why an administrative operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// From the identity store: an unknown user, the last administrator, an approval that
    /// is unknown, expired or approved by its own requester, ...
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// From the engine: an unknown bucket, an invalid retention policy, ...
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An operation that is only ever done by two administrators, asked while the
    /// two-person rule is not in force (one administrator, or the rule off).
    #[error("{operation} needs the two-person rule in force: two administrators, the rule on")]
    TwoPersonRuleRequired {
        /// What was asked.
        operation: &'static str,
    },
}

impl From<tokio::task::JoinError> for ControlError {
    fn from(e: tokio::task::JoinError) -> Self {
        ControlError::Store(e.into())
    }
}

/// What a privileged call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Carried out now.
    Done,
    /// Waiting for a second administrator.
    Pending(ApprovalRecord),
}

/// The administrative operations the admin API calls, over the engine and the identity
/// store; cheap to clone.
#[derive(Clone)]
pub struct Control {
    store: Store,
    ids: Arc<Identities>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl Control {
    /// Operations over `store` and `ids`.
    pub fn new(store: Store, ids: Arc<Identities>) -> Self {
        Self { store, ids }
    }

    /// These operations on behalf of `by` (see [`Store::acting_for`]).
    pub fn acting_for(&self, by: crate::audit::Requester) -> Self {
        Self {
            store: self.store.acting_for(by.clone()),
            ids: Arc::new(self.ids.acting_for(by)),
        }
    }

    /// The engine, for calls that need no two-person rule.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The identity store, for calls that need no two-person rule.
    pub fn identities(&self) -> &Identities {
        &self.ids
    }

    /// A shared handle on the identity store (for work moved to another thread).
    pub fn identities_handle(&self) -> Arc<Identities> {
        self.ids.clone()
    }

    /// Runs `op` now if the two-person rule is not in force, else files it.
    fn privileged(&self, actor: &str, op: Privileged) -> Result<Outcome, ControlError> {
        match self.ids.request(actor, op)? {
            Requested::Now(op) => {
                self.execute(&op, actor)?;
                Ok(Outcome::Done)
            }
            Requested::Pending(rec) => {
                self.store.audit(&AuditEvent::ApprovalRequested {
                    actor: actor.to_owned(),
                    id: rec.id.clone(),
                    operation: rec.operation.clone(),
                });
                Ok(Outcome::Pending(rec))
            }
        }
    }

    /// Carries out `op`; `actor` is who made it happen (the approver, or the requester
    /// when no approval was needed).
    fn execute(&self, op: &Privileged, actor: &str) -> Result<(), ControlError> {
        match op {
            Privileged::LoosenPolicy { bucket, policy } => {
                self.store
                    .set_retention_policy(bucket, policy.clone(), true)?;
            }
            Privileged::ResyncClock { advance_micros } => {
                let (from, to) = self
                    .store
                    .retention_clock()
                    .resync_by(*advance_micros)
                    .map_err(|e| match e {
                        lock::ResyncError::Refused(l) => StoreError::Lock(l),
                        lock::ResyncError::Meta(m) => StoreError::Meta(m),
                    })?;
                self.store.audit(&AuditEvent::ClockResynced {
                    approved_by: actor.to_owned(),
                    from,
                    to,
                });
                // The clock moved in its own write (node-local, no command): its record
                // is written now, not within the queue's period.
                self.store.trail().flush().map_err(StoreError::from)?;
            }
            other => self.ids.execute(other)?,
        }
        self.store.audit(&AuditEvent::PrivilegedDone {
            operation: op.clone(),
        });
        Ok(())
    }

    /// Sets a bucket's retention policy: tightening at once, loosening as a privileged
    /// operation.
    pub fn set_retention_policy(
        &self,
        actor: &str,
        bucket: &BucketName,
        policy: Option<RetentionPolicy>,
    ) -> Result<Outcome, ControlError> {
        if let Some(p) = &policy {
            lock::policy::validate(p).map_err(StoreError::from)?;
        }
        let current = self.store.bucket(bucket)?.policy;
        match lock::policy_change(current.as_ref(), policy.as_ref()) {
            PolicyChange::Tightens => {
                self.store.set_retention_policy(bucket, policy, false)?;
                Ok(Outcome::Done)
            }
            PolicyChange::Loosens => self.privileged(
                actor,
                Privileged::LoosenPolicy {
                    bucket: bucket.clone(),
                    policy,
                },
            ),
        }
    }

    /// Moves the retention clock forward to `to` (the wall clock now when `None`): a
    /// privileged operation (it ends retention sooner) that only runs under the two-person
    /// rule in force. The request fixes the advance (`to` minus retention time now, at
    /// least a second); the approval carries it out from retention time then, within
    /// [`lock::resync_target`] and the clock's own limits. A refusal is audited.
    ///
    /// # Errors
    /// [`StoreError::Lock`] with the refusal; those of the two-person rule.
    pub fn resync_clock(
        &self,
        actor: &str,
        to: Option<crate::types::Timestamp>,
    ) -> Result<Outcome, ControlError> {
        // It ends retention sooner: never one administrator's decision alone.
        if !self.ids.two_person_in_force_now()? {
            self.store.audit(&AuditEvent::ClockResyncRefused {
                actor: actor.to_owned(),
                reason: "the two-person rule is not in force".to_owned(),
            });
            return Err(ControlError::TwoPersonRuleRequired {
                operation: "a retention clock resync",
            });
        }
        let st = self.store.retention_clock().status();
        let refused = |e: lock::LockError| {
            self.store.audit(&AuditEvent::ClockResyncRefused {
                actor: actor.to_owned(),
                reason: e.to_string(),
            });
            ControlError::Store(StoreError::Lock(e))
        };
        let to = lock::resync_target(st.retention_now, st.wall_now, to).map_err(refused)?;
        let advance_micros = to.micros() - st.retention_now.micros();
        if advance_micros < 1_000_000 {
            return Err(refused(lock::LockError::ResyncNotBehind {
                behind_micros: st.behind_wall_micros,
            }));
        }
        match self.privileged(actor, Privileged::ResyncClock { advance_micros }) {
            Err(ControlError::Store(StoreError::Lock(e))) => Err(refused(e)),
            other => other,
        }
    }

    /// Grants (privileged) or removes (not) a user's governance-bypass permission.
    pub fn set_bypass(
        &self,
        actor: &str,
        user: &str,
        scope: Option<Scope>,
    ) -> Result<Outcome, ControlError> {
        self.ids.user(user)?;
        match scope {
            None => {
                self.ids.set_bypass(user, None)?;
                Ok(Outcome::Done)
            }
            Some(scope) => self.privileged(
                actor,
                Privileged::GrantBypass {
                    user: user.to_owned(),
                    scope: Some(scope),
                },
            ),
        }
    }

    /// Deletes a user (privileged when it is an administrator). Data is never touched.
    pub fn delete_user(&self, actor: &str, user: &str) -> Result<Outcome, ControlError> {
        if self.ids.user(user)?.is_admin() {
            return self.privileged(
                actor,
                Privileged::DeleteAdmin {
                    user: user.to_owned(),
                },
            );
        }
        self.ids.delete_user(user)?;
        Ok(Outcome::Done)
    }

    /// Turning the two-person rule on is immediate; turning it off is privileged.
    pub fn set_two_person_rule(&self, actor: &str, enabled: bool) -> Result<Outcome, ControlError> {
        let op = Privileged::SetTwoPersonRule { enabled };
        if enabled {
            self.execute(&op, actor)?;
            return Ok(Outcome::Done);
        }
        self.privileged(actor, op)
    }

    /// A second administrator approves a pending request, which is then carried out.
    pub fn approve(&self, actor: &str, id: &str) -> Result<Privileged, ControlError> {
        let op = self.ids.approve(actor, id)?;
        match self.execute(&op, actor) {
            Err(ControlError::Store(StoreError::Lock(e)))
                if matches!(op, Privileged::ResyncClock { .. }) =>
            {
                self.store.audit(&AuditEvent::ClockResyncRefused {
                    actor: actor.to_owned(),
                    reason: e.to_string(),
                });
                Err(ControlError::Store(StoreError::Lock(e)))
            }
            other => other.map(|()| op),
        }
    }
}
