//! Identity writes as data: every check-then-write of the identity store (a unique user
//! name, the last administrator kept, an approval consumed once) is an [`IdentityChange`]
//! applied by one deterministic function, [`apply`], to the records as they are when it
//! runs. The proposer ([`super::Identities`]) draws every id and secret and seals it
//! first; the time comes with the change, never from the applier's clock.
//!
//! Changes go through an [`IdentityLog`]: on one node the command log
//! (`command::IdentityProposer` over `command::LocalLog`, which applies them under the
//! metadata write guard like every other command), in a cluster the replicated log. Rules
//! [`apply`] keeps, as `command::apply` does: no clock reads, no randomness, no I/O besides
//! the metadata reads, no panic; a refusal writes nothing.

use serde::{Deserialize, Serialize};

use super::model::{ApprovalRecord, Grant, KeyRecord, Plane, Scope, Settings, UserRecord};
use super::{IdentityError, SETTINGS, approval_key, key_key, user_key};
use crate::meta::{Meta, Record, Space};
use crate::types::Timestamp;

/// An identity write, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityChange {
    /// Create `user`; refused if the name is taken. Answers [`IdentityOutcome::User`].
    CreateUser {
        /// The new user, its creation time set by the proposer.
        user: UserRecord,
    },
    /// Change an existing user; refused if it would leave no administrator. Answers
    /// [`IdentityOutcome::User`].
    ChangeUser {
        /// The user's name.
        name: String,
        /// What changes.
        change: UserChange,
    },
    /// Delete a user and revoke its active keys at the change's time; refused for the
    /// last administrator. Answers [`IdentityOutcome::Done`].
    DeleteUser {
        /// The user's name.
        name: String,
    },
    /// Store a key (made and sealed by the proposer) for an existing user. Answers
    /// [`IdentityOutcome::Key`].
    PutKey {
        /// The key record.
        key: KeyRecord,
    },
    /// Revoke a key at the change's time (a revoked key stays revoked as it was).
    /// Answers [`IdentityOutcome::Key`].
    RevokeKey {
        /// The key's access key id.
        access_key: String,
    },
    /// File a privileged operation for a second administrator. Answers
    /// [`IdentityOutcome::Approval`].
    FileApproval {
        /// The request, its id and expiry drawn by the proposer.
        approval: ApprovalRecord,
    },
    /// Consume a pending request on a second administrator's approval; refused for its
    /// own requester. An expired request is consumed too and answers
    /// [`IdentityOutcome::Expired`]; otherwise [`IdentityOutcome::Approved`].
    ConsumeApproval {
        /// The request's id.
        id: String,
        /// The approving administrator.
        actor: String,
    },
    /// Withdraw or deny a pending request. Answers [`IdentityOutcome::Approval`].
    DenyApproval {
        /// The request's id.
        id: String,
    },
    /// Replace the node-wide settings. Answers [`IdentityOutcome::Done`].
    SetSettings {
        /// The new settings.
        settings: Settings,
    },
    /// Replace an existing key's sealed secret by the same secret sealed under another
    /// key (the cluster's identity key, when the node that made a cluster moves its keys
    /// there); nothing else of the key changes. Answers [`IdentityOutcome::Key`].
    /// Appended last: the encodings of the variants above are unchanged.
    ResealKey {
        /// The key's access key id.
        access_key: String,
        /// Its secret, sealed by the proposer (bound to the access key id).
        sealed_secret: Vec<u8>,
    },
    /// Store a new key for an existing user, refused if any record of that access key id
    /// exists (active or revoked): a cluster member adding a credential from its
    /// environment must never revive or replace one. Answers [`IdentityOutcome::Key`].
    /// Appended last.
    AddKey {
        /// The key record (made and sealed by the proposer).
        key: KeyRecord,
    },
}

/// What [`IdentityChange::ChangeUser`] changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserChange {
    /// Replace the user's grants.
    Grants(Vec<Grant>),
    /// Disable (`true`) or enable the user.
    Disabled(bool),
    /// Set or remove the governance-bypass grant.
    Bypass(Option<Scope>),
}

/// What an applied identity change answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityOutcome {
    /// The change was made.
    Done,
    /// The user as it is now.
    User(UserRecord),
    /// The key as it is now.
    Key(KeyRecord),
    /// The approval request filed, or the one denied.
    Approval(ApprovalRecord),
    /// The approved request (consumed).
    Approved(ApprovalRecord),
    /// The request had expired (consumed, not approved).
    Expired(ApprovalRecord),
}

/// Where identity changes go to be agreed and applied.
pub trait IdentityLog: Send + Sync {
    /// Applies `change` at time `now` (the proposer's wall clock), asked by `by`, once it
    /// is agreed.
    ///
    /// # Errors
    /// The refusal from [`apply`], or the log's failure.
    fn propose(
        &self,
        change: IdentityChange,
        now: Timestamp,
        by: Option<&crate::types::Requester>,
    ) -> Result<IdentityOutcome, IdentityError>;

    /// Waits until this node's copy of the records holds every change agreed before the
    /// call (a read barrier; nothing to wait for on one node).
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`] when the log cannot confirm it in time.
    fn barrier(&self) -> Result<(), IdentityError> {
        Ok(())
    }

    /// Whether the changes are agreed with other nodes (a cluster's member): then secrets
    /// must be sealed under the cluster's identity key, which every member holds.
    fn replicated(&self) -> bool {
        false
    }
}

/// Records to write and to remove in the identity space, by key.
pub type IdentityWrites = (Vec<(String, Vec<u8>)>, Vec<String>);

/// The administrators who can act: enabled, with the admin role and an active key on the
/// admin listener.
pub(super) fn admins(meta: &Meta) -> Result<Vec<UserRecord>, IdentityError> {
    let keys = meta.kv_list::<KeyRecord>(Space::Identity, "key/", usize::MAX)?;
    Ok(meta
        .kv_list::<UserRecord>(Space::Identity, "user/", usize::MAX)?
        .into_iter()
        .filter(|u| {
            u.is_admin()
                && keys
                    .iter()
                    .any(|k| k.user == u.name && k.plane == Plane::Admin && k.revoked.is_none())
        })
        .collect())
}

fn user(meta: &Meta, name: &str) -> Result<UserRecord, IdentityError> {
    meta.kv_get(Space::Identity, &user_key(name))?
        .ok_or_else(|| IdentityError::UnknownUser {
            name: name.to_owned(),
        })
}

fn approval(meta: &Meta, id: &str) -> Result<ApprovalRecord, IdentityError> {
    meta.kv_get(Space::Identity, &approval_key(id))?
        .ok_or_else(|| IdentityError::UnknownApproval { id: id.to_owned() })
}

/// Applies `change` at `now` to the identity records `meta` holds: what to write and
/// remove, and the answer. Deterministic: the same change on the same records gives the
/// same result on every replica.
///
/// # Errors
/// The refusals of [`IdentityChange`]'s variants ([`IdentityError::UserExists`],
/// [`IdentityError::UnknownUser`], [`IdentityError::LastAdmin`],
/// [`IdentityError::UnknownKey`], [`IdentityError::UnknownApproval`],
/// [`IdentityError::SameApprover`]), or a metadata read or encoding error.
pub fn apply(
    meta: &Meta,
    change: &IdentityChange,
    now: Timestamp,
) -> Result<(IdentityWrites, IdentityOutcome), IdentityError> {
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    let outcome = match change {
        IdentityChange::CreateUser { user: u } => {
            if meta
                .kv_get::<UserRecord>(Space::Identity, &user_key(&u.name))?
                .is_some()
            {
                return Err(IdentityError::UserExists {
                    name: u.name.clone(),
                });
            }
            puts.push((user_key(&u.name), u.encode()?));
            IdentityOutcome::User(u.clone())
        }
        IdentityChange::ChangeUser { name, change } => {
            let mut u = user(meta, name)?;
            let was_admin = u.is_admin();
            match change {
                UserChange::Grants(g) => u.grants = g.clone(),
                UserChange::Disabled(d) => u.disabled = *d,
                UserChange::Bypass(s) => u.bypass_governance = s.clone(),
            }
            if was_admin && !u.is_admin() && admins(meta)?.len() <= 1 {
                return Err(IdentityError::LastAdmin);
            }
            puts.push((user_key(&u.name), u.encode()?));
            IdentityOutcome::User(u)
        }
        IdentityChange::DeleteUser { name } => {
            let u = user(meta, name)?;
            if u.is_admin() && admins(meta)?.len() <= 1 {
                return Err(IdentityError::LastAdmin);
            }
            let keys = meta.kv_list::<KeyRecord>(Space::Identity, "key/", usize::MAX)?;
            for mut k in keys.into_iter().filter(|k| &k.user == name) {
                if k.revoked.is_none() {
                    k.revoked = Some(now);
                    puts.push((key_key(&k.access_key), k.encode()?));
                }
            }
            deletes.push(user_key(name));
            IdentityOutcome::Done
        }
        IdentityChange::PutKey { key } => {
            user(meta, &key.user)?;
            puts.push((key_key(&key.access_key), key.encode()?));
            IdentityOutcome::Key(key.clone())
        }
        IdentityChange::RevokeKey { access_key } => {
            let mut k: KeyRecord = meta
                .kv_get(Space::Identity, &key_key(access_key))?
                .ok_or_else(|| IdentityError::UnknownKey {
                    access_key: access_key.clone(),
                })?;
            if k.revoked.is_none() {
                k.revoked = Some(now);
                puts.push((key_key(access_key), k.encode()?));
            }
            IdentityOutcome::Key(k)
        }
        IdentityChange::FileApproval { approval: a } => {
            puts.push((approval_key(&a.id), a.encode()?));
            IdentityOutcome::Approval(a.clone())
        }
        IdentityChange::ConsumeApproval { id, actor } => {
            let a = approval(meta, id)?;
            if &a.requested_by == actor {
                return Err(IdentityError::SameApprover {
                    requested_by: a.requested_by,
                });
            }
            deletes.push(approval_key(id));
            if now > a.expires {
                IdentityOutcome::Expired(a)
            } else {
                IdentityOutcome::Approved(a)
            }
        }
        IdentityChange::DenyApproval { id } => {
            let a = approval(meta, id)?;
            deletes.push(approval_key(id));
            IdentityOutcome::Approval(a)
        }
        IdentityChange::SetSettings { settings } => {
            puts.push((SETTINGS.to_owned(), settings.encode()?));
            IdentityOutcome::Done
        }
        IdentityChange::AddKey { key } => {
            user(meta, &key.user)?;
            if meta
                .kv_get::<KeyRecord>(Space::Identity, &key_key(&key.access_key))?
                .is_some()
            {
                return Err(IdentityError::KeyExists {
                    access_key: key.access_key.clone(),
                });
            }
            puts.push((key_key(&key.access_key), key.encode()?));
            IdentityOutcome::Key(key.clone())
        }
        IdentityChange::ResealKey {
            access_key,
            sealed_secret,
        } => {
            let mut k: KeyRecord = meta
                .kv_get(Space::Identity, &key_key(access_key))?
                .ok_or_else(|| IdentityError::UnknownKey {
                    access_key: access_key.clone(),
                })?;
            k.sealed_secret = sealed_secret.clone();
            puts.push((key_key(access_key), k.encode()?));
            IdentityOutcome::Key(k)
        }
    };
    Ok(((puts, deletes), outcome))
}
