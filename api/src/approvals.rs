//! The two-person rule: `GET /v1/approvals`, `POST /v1/approvals/{id}/approve`,
//! `POST /v1/approvals/{id}/deny` (204), `PUT /v1/settings/two-person-rule`, and the
//! [`Outcome`] every privileged call answers.
//!
//! Objects built by the server as free-form JSON before this crate existed keep their
//! fields in alphabetical order here, so the bytes on the wire (and `stelectl`'s rendering
//! of an [`Operation`]) stay the same.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Whether a privileged call was carried out or waits for a second administrator,
/// spelled in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    /// `done`: carried out.
    Done,
    /// `pending`: waits for a second administrator's approval.
    Pending,
    /// A value this release does not know (sent by a newer server): shown, never
    /// guessed at. Only read, never sent.
    #[serde(other)]
    Unknown,
}

/// The answer of a call that may need a second administrator (deleting a user, a
/// governance-bypass grant, a retention policy, the two-person rule): 200
/// `{"status": "done"}`, or 202 `{"approval": {...}, "status": "pending"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The approval the operation waits for; absent when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<PendingApproval>,
    /// `done` or `pending`.
    pub status: OutcomeStatus,
}

impl Outcome {
    /// `{"status": "done"}`.
    pub fn done() -> Self {
        Self {
            approval: None,
            status: OutcomeStatus::Done,
        }
    }

    /// `{"approval": approval, "status": "pending"}`.
    pub fn pending(approval: PendingApproval) -> Self {
        Self {
            approval: Some(approval),
            status: OutcomeStatus::Pending,
        }
    }
}

/// The approval a 202 [`Outcome`] names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// When it lapses (24 hours after it was filed): approved later, it does nothing.
    pub expires: Timestamp,
    /// The id `approve` and `deny` take (hex digits).
    pub id: String,
    /// What runs when it is approved.
    pub operation: Operation,
    /// The administrator who asked; it cannot approve its own request.
    pub requested_by: String,
}

/// A privileged operation waiting for a second administrator (`GET /v1/approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// When it was filed.
    pub created: Timestamp,
    /// When it lapses (`created` plus 24 hours).
    pub expires: Timestamp,
    /// The id `approve` and `deny` take (hex digits).
    pub id: String,
    /// What runs when it is approved.
    pub operation: Operation,
    /// The administrator who asked.
    pub requested_by: String,
}

/// The answer of `POST /v1/approvals/{id}/approve`: `{"operation": {...}, "status":
/// "done"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    /// What was carried out.
    pub operation: Operation,
    /// Always `done`.
    pub status: OutcomeStatus,
}

/// The body of `PUT /v1/settings/two-person-rule`: `{"enabled": true | false}`. Answers
/// an [`Outcome`] (turning it off is itself privileged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTwoPersonRule {
    /// The rule's new state.
    pub enabled: bool,
}

/// An operation that loosens protection or widens power, as recorded for approval. It
/// is written as the engine records it: externally tagged, variant names in
/// UpperCamelCase (`{"DeleteAdmin": {"user": "bob"}}`,
/// `{"SetTwoPersonRule": {"enabled": false}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Replace a bucket's retention policy with a looser one, or remove it.
    LoosenPolicy {
        /// The bucket whose policy changes.
        bucket: String,
        /// The new policy; `null` removes it.
        policy: Option<OperationPolicy>,
    },
    /// Let a user bypass GOVERNANCE retention.
    GrantBypass {
        /// The buckets it covers (`null` would remove it, which is never held).
        scope: Option<OperationScope>,
        /// The user who gets the permission.
        user: String,
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
    /// Move the retention clock forward by `advance_micros` (fixed when asked; carried
    /// out from retention time when approved, never past the wall clock).
    ResyncClock {
        /// How far, in microseconds.
        advance_micros: i64,
    },
}

/// A retention policy inside an [`Operation`], in the engine's spelling (unlike
/// [`crate::buckets::Policy`]): `{"below_min": "Refuse", "max_days": null, "min_days": 7,
/// "modes": ["Governance"]}`. Days count from each version's creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationPolicy {
    /// What a write below `min_days` gets.
    pub below_min: OperationBelowMin,
    /// The longest retention that may be set, in days; `null`: no maximum.
    pub max_days: Option<u32>,
    /// The shortest retention a new version may have, in days; `null`: no minimum.
    pub min_days: Option<u32>,
    /// The modes allowed.
    pub modes: Vec<OperationMode>,
}

/// A retention mode inside an [`Operation`]: `Governance` or `Compliance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationMode {
    /// GOVERNANCE: removable early by a user holding the bucket's bypass grant.
    Governance,
    /// COMPLIANCE: removable early by nobody.
    Compliance,
}

/// What a write below a policy's minimum gets, inside an [`Operation`]: `Refuse` or
/// `Raise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationBelowMin {
    /// Refused.
    Refuse,
    /// Stored with its retention raised to the minimum.
    Raise,
}

/// The buckets a grant covers, inside an [`Operation`]: `"All"` or
/// `{"Buckets": ["b1", ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationScope {
    /// Every bucket, present and future.
    All,
    /// Only these buckets.
    Buckets(Vec<String>),
}
