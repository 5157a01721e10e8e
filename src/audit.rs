//! Audit events: every authentication failure, every refusal (role or Object Lock) and
//! every administrative change, as one typed record. Today each is written as a
//! structured log line (target `stele::audit`, the record as JSON); the tamper-evident
//! audit log will consume the same type.

use serde::Serialize;

use crate::identity::{Plane, Privileged};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AuditEvent {
    AuthFailed {
        plane: Plane,
        access_key: Option<String>,
        source: Option<String>,
    },
    AuthRateLimited {
        plane: Plane,
        access_key: Option<String>,
        source: Option<String>,
    },
    AccessDenied {
        plane: Plane,
        actor: String,
        action: String,
    },
    LockRefused {
        reason: String,
    },
    UserCreated {
        actor: String,
        user: String,
    },
    UserDeleted {
        actor: String,
        user: String,
        pending: bool,
    },
    GrantsSet {
        actor: String,
        user: String,
    },
    UserDisabled {
        actor: String,
        user: String,
        disabled: bool,
    },
    KeyCreated {
        actor: String,
        user: String,
        access_key: String,
    },
    KeyRotated {
        actor: String,
        old: String,
        new: String,
    },
    KeyRevoked {
        actor: String,
        access_key: String,
    },
    GovernanceBypass {
        actor: String,
        user: String,
        allowed: bool,
        pending: bool,
    },
    BucketCreated {
        actor: String,
        bucket: String,
        lock: bool,
    },
    RetentionPolicy {
        actor: String,
        bucket: String,
        pending: bool,
    },
    ApprovalRequested {
        actor: String,
        id: String,
        operation: Privileged,
    },
    Approved {
        actor: String,
        operation: Privileged,
    },
    ApprovalDenied {
        actor: String,
        id: String,
    },
    TwoPersonRule {
        actor: String,
        enabled: bool,
        pending: bool,
    },
    PrivilegedDone {
        operation: Privileged,
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
        )
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
