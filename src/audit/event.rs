//! Audit events of the listeners and the administrative layer: every authentication
//! failure, every refusal (role or Object Lock) and every administrative change, as one
//! typed record. Each is written as a structured log line (target `stele::audit`, the
//! record as JSON) and, through [`crate::audit::Trail::record`], as a leaf of the trail.

use serde::Serialize;

use crate::identity::{Plane, Privileged};

/// One auditable event. Serialized with its name as a kebab-case `event` tag
/// (`auth-failed`, `key-created`, ...) beside its fields. `actor` is the name of the user
/// who acted, except where a variant says otherwise. `pending: true` means the change was
/// filed for a second administrator's approval under the two-person rule and has not
/// happened yet: `approved` and `privileged-done` follow when it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AuditEvent {
    /// A request's credentials were refused: an unknown or revoked access key, a disabled
    /// user, a bad signature or password, or a key of the other listener.
    AuthFailed {
        /// The listener that refused it.
        plane: Plane,
        /// The access key id presented, if any (it may not exist).
        access_key: Option<String>,
        /// The client's IP address, when known.
        source: Option<String>,
    },
    /// A request was refused unchecked: its access key or source address had too many
    /// recent authentication failures (a guessing attempt, or a misconfigured client).
    AuthRateLimited {
        /// The listener that refused it.
        plane: Plane,
        /// The access key id presented, if any.
        access_key: Option<String>,
        /// The client's IP address, when known.
        source: Option<String>,
    },
    /// An authenticated identity asked for something its roles or scopes do not allow;
    /// nothing was changed.
    AccessDenied {
        /// The listener that refused it.
        plane: Plane,
        /// On the admin listener the user's name; on the S3 listener the access key id.
        actor: String,
        /// The action refused (on S3, the operation and why it was refused).
        action: String,
    },
    /// Object Lock refused to remove a version or cut its protection short (retention
    /// still active, a legal hold, a shortened date or a changed mode).
    LockRefused {
        /// The refusal, as returned to the client.
        reason: String,
    },
    /// A user was created.
    UserCreated {
        /// Who created it.
        actor: String,
        /// The new user's name.
        user: String,
    },
    /// A user was deleted and its keys revoked; its data stays in the buckets. Deleting an
    /// administrator is held for approval.
    UserDeleted {
        /// Who deleted it.
        actor: String,
        /// The user deleted.
        user: String,
        /// Filed for approval, not yet done.
        pending: bool,
    },
    /// A user's grants (roles and their bucket scopes) were replaced.
    GrantsSet {
        /// Who changed them.
        actor: String,
        /// The user whose grants changed.
        user: String,
    },
    /// A user was disabled (all its keys stop working at once) or enabled again.
    UserDisabled {
        /// Who changed it.
        actor: String,
        /// The user changed.
        user: String,
        /// `true`: disabled; `false`: enabled again.
        disabled: bool,
    },
    /// An access key was made for a user.
    KeyCreated {
        /// Who made it.
        actor: String,
        /// The user the key belongs to.
        user: String,
        /// The new access key id (never the secret).
        access_key: String,
    },
    /// A key was rotated: a new key for the same user and listener. The old one keeps
    /// working until it is revoked.
    KeyRotated {
        /// Who rotated it.
        actor: String,
        /// The access key id rotated.
        old: String,
        /// The access key id made.
        new: String,
    },
    /// An access key was revoked; it stops working at once.
    KeyRevoked {
        /// Who revoked it.
        actor: String,
        /// The access key id revoked.
        access_key: String,
    },
    /// A user's permission to bypass GOVERNANCE retention was granted (held for approval
    /// under the two-person rule) or removed (at once).
    GovernanceBypass {
        /// Who changed it.
        actor: String,
        /// The user whose permission changed.
        user: String,
        /// `true`: granted; `false`: removed.
        allowed: bool,
        /// Filed for approval, not yet done.
        pending: bool,
    },
    /// A bucket was created through the admin API.
    BucketCreated {
        /// Who created it.
        actor: String,
        /// The bucket's name.
        bucket: String,
        /// Whether it was created with Object Lock enabled.
        lock: bool,
    },
    /// A bucket's retention policy was set or removed. Tightening is done at once;
    /// loosening is held for approval under the two-person rule.
    RetentionPolicy {
        /// Who changed it.
        actor: String,
        /// The bucket whose policy changed.
        bucket: String,
        /// Filed for approval, not yet done.
        pending: bool,
    },
    /// A bucket's hard quota was set or removed.
    BucketQuota {
        /// Who changed it.
        actor: String,
        /// The bucket whose quota changed.
        bucket: String,
        /// The new quota in bytes; `None`: removed.
        quota: Option<u64>,
    },
    /// A privileged operation was filed for a second administrator's approval.
    ApprovalRequested {
        /// Who asked for it.
        actor: String,
        /// The approval's id, for `approve` or `deny`.
        id: String,
        /// What will be done if it is approved in time.
        operation: Privileged,
    },
    /// A second administrator approved a pending operation, which was then carried out.
    Approved {
        /// Who approved it (never the requester).
        actor: String,
        /// The operation carried out.
        operation: Privileged,
    },
    /// A pending operation was denied or withdrawn; it will not run.
    ApprovalDenied {
        /// Who denied or withdrew it.
        actor: String,
        /// The approval's id.
        id: String,
    },
    /// The two-person rule was turned on (at once) or off (held for approval).
    TwoPersonRule {
        /// Who changed it.
        actor: String,
        /// `true`: turned on; `false`: turned off.
        enabled: bool,
        /// Filed for approval, not yet done.
        pending: bool,
    },
    /// A privileged operation took effect: at once when the two-person rule was not in
    /// force, else on approval (an `approved` event then names the approver).
    PrivilegedDone {
        /// The operation carried out.
        operation: Privileged,
    },
    /// A background worker was run, paused, resumed or cancelled by an administrator.
    WorkerControlled {
        /// Who.
        actor: String,
        /// The worker (`scrub`, `lifecycle`, ...).
        worker: String,
        /// `run`, `pause`, `resume` or `cancel`.
        action: String,
    },
    /// The retention clock was moved forward by an administrators' resync.
    ClockResynced {
        /// The administrator whose approval carried it out.
        approved_by: String,
        /// Retention time before, µs since the epoch.
        from: crate::types::Timestamp,
        /// Retention time after.
        to: crate::types::Timestamp,
    },
    /// A resync of the retention clock was refused (backward, or past the wall clock).
    ClockResyncRefused {
        /// Who asked (the approver, when refused as it was carried out).
        actor: String,
        /// Why.
        reason: String,
    },
}

impl AuditEvent {
    /// The event's name (`auth-failed`, `key-created`, ...).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }

    /// Refusals and failures are warnings; changes are information.
    fn is_warning(&self) -> bool {
        matches!(
            self,
            AuditEvent::AuthFailed { .. }
                | AuditEvent::AuthRateLimited { .. }
                | AuditEvent::AccessDenied { .. }
                | AuditEvent::LockRefused { .. }
                | AuditEvent::GovernanceBypass { .. }
                | AuditEvent::ApprovalRequested { .. }
                | AuditEvent::Approved { .. }
                | AuditEvent::PrivilegedDone { .. }
                | AuditEvent::TwoPersonRule { .. }
                | AuditEvent::ClockResynced { .. }
                | AuditEvent::ClockResyncRefused { .. }
        )
    }

    /// Whether the change this event reports is recorded by its own command's leaf in
    /// the audit trail (written with the change, naming the same requester): then the
    /// event is only logged, not queued as a second leaf. No wildcard: a new variant is
    /// decided here.
    pub fn recorded_with_its_change(&self) -> bool {
        match self {
            AuditEvent::UserCreated { .. }
            | AuditEvent::UserDeleted { .. }
            | AuditEvent::GrantsSet { .. }
            | AuditEvent::UserDisabled { .. }
            | AuditEvent::KeyCreated { .. }
            | AuditEvent::KeyRevoked { .. }
            | AuditEvent::GovernanceBypass { .. }
            | AuditEvent::RetentionPolicy { .. }
            | AuditEvent::BucketQuota { .. }
            | AuditEvent::ApprovalRequested { .. }
            | AuditEvent::Approved { .. }
            | AuditEvent::ApprovalDenied { .. }
            | AuditEvent::TwoPersonRule { .. }
            | AuditEvent::BucketCreated { .. } => true,
            // Refusals change nothing; the retention clock's resync is no command; a
            // rotation names the key it replaces; a privileged operation done without
            // approval says so.
            AuditEvent::AuthFailed { .. }
            | AuditEvent::AuthRateLimited { .. }
            | AuditEvent::AccessDenied { .. }
            | AuditEvent::LockRefused { .. }
            | AuditEvent::KeyRotated { .. }
            | AuditEvent::WorkerControlled { .. }
            | AuditEvent::PrivilegedDone { .. }
            | AuditEvent::ClockResynced { .. }
            | AuditEvent::ClockResyncRefused { .. } => false,
        }
    }

    /// Writes the event (structured log line, target `stele::audit`).
    pub fn emit(&self) {
        let record = serde_json::to_string(self).unwrap_or_default();
        let event = self.name();
        if self.is_warning() {
            tracing::warn!(target: "stele::audit", event, record);
        } else {
            tracing::info!(target: "stele::audit", event, record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_name() {
        let e = AuditEvent::KeyRevoked {
            actor: "admin".into(),
            access_key: "SK1".into(),
        };
        assert_eq!(e.name(), "key-revoked");
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"event":"key-revoked","actor":"admin","access_key":"SK1"}"#
        );
    }
}
