//! Identities: users, their roles and grants, their access keys, and the two-person rule.
//!
//! Secrets are sealed (ChaCha20-Poly1305, [`crate::crypto::SealKey`]) under a master key
//! kept in a key folder outside the data folder, and bound to their access key id; no
//! secret is ever stored or logged in plaintext. Keys belong to one listener ([`Plane`]):
//! an S3 key is refused by the admin API and an admin key by the S3 API.
//!
//! - [`model`]: the persisted records.
//! - [`access`]: the role table and the pure authorization decision.
//! - [`keyfile`]: the master key file.
//! - [`change`]: every identity write as an [`IdentityChange`], applied by one
//!   deterministic function through an [`IdentityLog`].

pub mod access;
pub mod change;
pub mod keyfile;
pub mod model;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use access::Action;
pub use change::{IdentityChange, IdentityLog, IdentityOutcome, UserChange};
pub use model::{
    ApprovalRecord, Grant, KeyRecord, Plane, Privileged, Role, Scope, Settings, UserRecord,
};

use crate::clock::SharedClock;
use crate::crypto::SealKey;
use crate::meta::{Meta, MetaError, Space};
use crate::types::{BucketName, Timestamp};

/// How long a privileged request waits for a second administrator.
pub const APPROVAL_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A blocking task running the call did not finish (it panicked, or the runtime is
    /// shutting down).
    #[error("identity task failed: {reason}")]
    Task {
        /// What the runtime said.
        reason: String,
    },
    /// The log the change went through failed or answered wrongly (never a refusal).
    #[error("identity log: {reason}")]
    Log {
        /// What went wrong.
        reason: String,
    },
    /// The cluster cannot take the change or confirm its state now (no majority
    /// reachable, no leader known): nothing was decided; try again (admin API 503).
    #[error("the cluster cannot take the identity change now: {reason}")]
    Unavailable {
        /// Why, as the log said.
        reason: String,
    },
    /// The key folder or a file in it cannot be used (a master key that is unreadable, not
    /// 64 hex digits or readable by others; a `first-admin` that cannot be written): the
    /// server does not start.
    #[error("key folder {path}: {message}")]
    KeyFile {
        /// The file or folder at fault.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// No user has this name.
    #[error("user {name} does not exist")]
    UnknownUser {
        /// The name asked for.
        name: String,
    },
    /// A user of this name exists already.
    #[error("user {name} already exists")]
    UserExists {
        /// The name asked for.
        name: String,
    },
    /// The name is not a valid user name.
    #[error("invalid user name {name:?}: 1 to 64 letters, digits, '.', '_' or '-'")]
    InvalidName {
        /// The name refused.
        name: String,
    },
    /// No such access key, or it is revoked (also: its user is gone or disabled).
    #[error("access key {access_key} does not exist or is revoked")]
    UnknownKey {
        /// The access key id asked for.
        access_key: String,
    },
    /// The user's grants do not allow the action.
    #[error("{actor} may not {action:?}")]
    AccessDenied {
        /// The user's name.
        actor: String,
        /// The action refused.
        action: Action,
    },
    /// The change would leave no administrator that can act.
    #[error("the last administrator cannot be removed or disabled")]
    LastAdmin,
    /// A key of this access key id exists already (active or revoked): a create-only add
    /// ([`IdentityChange::AddKey`]) never replaces one.
    #[error("access key {access_key} exists already")]
    KeyExists {
        /// The access key id.
        access_key: String,
    },
    /// No pending approval has this id.
    #[error("approval {id} does not exist (approved, denied or never requested)")]
    UnknownApproval {
        /// The id asked for.
        id: String,
    },
    /// The approval came after its 24 h window; the request is removed and nothing runs.
    #[error("approval {id} expired before it was approved")]
    ApprovalExpired {
        /// The expired request's id.
        id: String,
    },
    /// The requester tried to approve its own request: the two-person rule needs another
    /// administrator.
    #[error("a request must be approved by another administrator than {requested_by}")]
    SameApprover {
        /// The administrator who filed the request.
        requested_by: String,
    },
    /// A sealed secret did not open: the master key is not the one it was sealed with, or
    /// the record was altered or moved to another access key id.
    #[error("a secret could not be unsealed: wrong master key or altered record")]
    Unseal,
}

/// An answer of the wrong kind for its change: a log that routed answers wrongly.
fn unexpected(outcome: IdentityOutcome) -> IdentityError {
    IdentityError::Log {
        reason: format!("the log answered an identity change with {outcome:?}"),
    }
}

impl From<tokio::task::JoinError> for IdentityError {
    fn from(e: tokio::task::JoinError) -> Self {
        IdentityError::Task {
            reason: e.to_string(),
        }
    }
}

/// What a privileged request became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// The two-person rule is not in force: the caller carries it out now.
    Now(Privileged),
    /// Waiting for a second administrator.
    Pending(ApprovalRecord),
}

/// A newly made key, with its secret (shown once, never stored in plaintext).
pub struct NewKey {
    /// The stored key, with its secret sealed.
    pub record: KeyRecord,
    /// The secret in plaintext: give it to its holder now, as nothing shows it again.
    pub secret: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

const SETTINGS: &str = "settings";

fn user_key(name: &str) -> String {
    format!("user/{name}")
}
fn key_key(access_key: &str) -> String {
    format!("key/{access_key}")
}
fn approval_key(id: &str) -> String {
    format!("approval/{id}")
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    crate::crypto::random_bytes::<64>()
        .iter()
        .take(len)
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

/// An access key id: a two-letter plane prefix and 18 base-32 characters.
fn new_access_key(plane: Plane) -> String {
    let prefix = match plane {
        Plane::S3 => "SK",
        Plane::Admin => "SA",
    };
    format!(
        "{prefix}{}",
        random_string(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    )
}

fn new_secret() -> String {
    random_string(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    )
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The identity store of a node.
#[derive(Clone)]
pub struct Identities {
    meta: Arc<Meta>,
    /// The node's master key: seals what this node keeps for itself (a replication
    /// peer's key, the audit trail's signing key), and access keys' secrets on a node
    /// outside a cluster.
    seal: Arc<SealKey>,
    /// The cluster's identity key, once this node is a member ([`Identities::use_cluster_key`]):
    /// access keys' secrets are sealed under it, as every member applies the same
    /// identity records and must open them.
    cluster_key: Arc<std::sync::RwLock<Option<Arc<SealKey>>>>,
    clock: SharedClock,
    /// Where every write goes: a check-then-write (a unique name, the last administrator
    /// kept, an approval consumed once) is an [`IdentityChange`] applied there, one at a
    /// time with the other metadata commands.
    log: Arc<dyn IdentityLog>,
    /// Active keys and their users, as read for authentication: every request needs
    /// them. Every identity change goes through [`Identities::change`], which empties it,
    /// so a revocation or a disabled user takes effect at once.
    cache: Arc<Mutex<AuthCache>>,
    /// Who this handle's writes are for ([`Identities::acting_for`]): each identity
    /// command carries it to the audit trail.
    by: Option<Arc<crate::types::Requester>>,
}

type Active = (KeyRecord, UserRecord, String);

/// The authentication cache and its generation. A lookup that missed reads the records,
/// then fills the cache only if no identity write happened since it began (the generation
/// is unchanged, and so is the metadata's [`Meta::identity_generation`], which also moves
/// for changes this handle did not make: another member's, applied from the Raft group):
/// a revocation that lands between the read and the fill can never leave the revoked key
/// cached.
#[derive(Default)]
struct AuthCache {
    generation: u64,
    /// The metadata's identity generation the entries were read at.
    meta_generation: u64,
    entries: std::collections::HashMap<String, Active>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identities")
    }
}

impl Identities {
    /// Opens the identity store with the master key from `key_dir` (created, with a new
    /// key, on first start); its writes go through `log`, its reads to `meta`.
    ///
    /// # Errors
    /// [`IdentityError::KeyFile`] for a master key that cannot be used.
    pub fn open(
        meta: Arc<Meta>,
        key_dir: &Path,
        clock: SharedClock,
        log: Arc<dyn IdentityLog>,
    ) -> Result<Self, IdentityError> {
        let key = keyfile::master_key(key_dir)?;
        Ok(Self {
            meta,
            seal: Arc::new(SealKey::new(&key)),
            cluster_key: Arc::default(),
            clock,
            log,
            cache: Arc::new(Mutex::new(AuthCache::default())),
            by: None,
        })
    }

    /// The authentication cache, emptied first if identity records were written since it
    /// was filled (by anyone: [`Meta::identity_generation`]); with the generation it is at.
    fn cache(&self) -> (std::sync::MutexGuard<'_, AuthCache>, u64) {
        let seen = self.meta.identity_generation();
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.meta_generation != seen {
            c.entries.clear();
            c.generation += 1;
            c.meta_generation = seen;
        }
        (c, seen)
    }

    /// From now on, seals access keys' secrets under the cluster's identity key `key`
    /// (32 bytes, the same on every member) and opens them with it; secrets sealed under
    /// this node's master key before still open until [`Identities::reseal_keys`] moves
    /// them.
    pub fn use_cluster_key(&self, key: &[u8; 32]) {
        *self.cluster_key.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(SealKey::new(key)));
        let (mut c, _) = self.cache();
        c.entries.clear();
        c.generation += 1;
    }

    /// The key access keys' secrets are sealed under now: the cluster's identity key of a
    /// member, the master key otherwise.
    ///
    /// # Errors
    /// [`IdentityError::KeyFile`] on a cluster's member without the cluster's identity key
    /// (joined through an earlier release, or its file lost): a secret sealed under this
    /// node's master key would open on no other member.
    fn key_seal(&self) -> Result<Arc<SealKey>, IdentityError> {
        let cluster = self
            .cluster_key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match cluster {
            Some(k) => Ok(k),
            None if self.log.replicated() => Err(IdentityError::KeyFile {
                path: "cluster/identity.key".into(),
                message: "this cluster member has no cluster identity key: a key made here \
                          would open on no other member (remove the node and join it again)"
                    .into(),
            }),
            None => Ok(self.seal.clone()),
        }
    }

    /// The secret of the key record `k`: opened with the cluster's identity key, or else
    /// with the master key (sealed before this node made or joined a cluster).
    fn open_key_secret(&self, k: &KeyRecord) -> Result<String, IdentityError> {
        let aad = k.access_key.as_bytes();
        let cluster = self
            .cluster_key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let secret = cluster
            .and_then(|c| c.open(aad, &k.sealed_secret))
            .or_else(|| self.seal.open(aad, &k.sealed_secret))
            .ok_or(IdentityError::Unseal)?;
        String::from_utf8(secret).map_err(|_| IdentityError::Unseal)
    }

    /// Seals again, under the cluster's identity key, every access key's secret that is
    /// still sealed under this node's master key (the node that made a cluster: its keys
    /// from before, which the members that join must open); each through the log as
    /// [`IdentityChange::ResealKey`]. Returns how many were sealed again; with no
    /// cluster key, none. A secret that opens under neither key is left as it is (and
    /// logged): it was sealed by another node's master key, and only that node could
    /// move it.
    ///
    /// # Errors
    /// The log's or a metadata read's.
    pub fn reseal_keys(&self) -> Result<usize, IdentityError> {
        let Some(cluster) = self
            .cluster_key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Ok(0);
        };
        let mut moved = 0;
        for k in self
            .meta
            .kv_list::<KeyRecord>(Space::Identity, "key/", usize::MAX)?
        {
            let aad = k.access_key.as_bytes();
            if cluster.open(aad, &k.sealed_secret).is_some() {
                continue;
            }
            let Some(secret) = self.seal.open(aad, &k.sealed_secret) else {
                tracing::error!(access_key = %k.access_key, "an access key's secret opens under neither this node's master key nor the cluster's identity key");
                continue;
            };
            self.change(IdentityChange::ResealKey {
                access_key: k.access_key.clone(),
                sealed_secret: cluster.seal(aad, &secret),
            })?;
            moved += 1;
        }
        Ok(moved)
    }

    /// Every identity write: the change through the log at this node's time, then the
    /// authentication cache emptied and its generation moved on (also when the change
    /// failed: it may have landed).
    fn change(&self, change: IdentityChange) -> Result<IdentityOutcome, IdentityError> {
        let r = self
            .log
            .propose(change, self.clock.now(), self.by.as_deref());
        let (mut c, _) = self.cache();
        c.generation += 1;
        c.entries.clear();
        r
    }

    /// This store, for writes made on behalf of `by` (the audit trail names it with each
    /// identity change). Shares the records, the cache and the log with `self`.
    pub fn acting_for(&self, by: crate::types::Requester) -> Self {
        Self {
            by: Some(Arc::new(by)),
            ..self.clone()
        }
    }

    /// The name of the user of `access_key`, if the key is cached (active, its user
    /// enabled): what the audit trail names the actor, read without copying the records.
    pub fn cached_user(&self, access_key: &str) -> Option<String> {
        self.cache()
            .0
            .entries
            .get(access_key)
            .map(|(_, u, _)| u.name.clone())
    }

    /// The cached key, user and secret of an active key of an enabled user, if cached.
    pub fn cached(&self, access_key: &str) -> Option<Active> {
        self.cache().0.entries.get(access_key).cloned()
    }

    /// The active key, user and secret behind `access_key` (cached), `None` if the key is
    /// unknown or revoked or its user gone or disabled.
    fn active(&self, access_key: &str) -> Result<Option<Active>, IdentityError> {
        let generation = {
            let (c, _) = self.cache();
            if let Some(hit) = c.entries.get(access_key) {
                return Ok(Some(hit.clone()));
            }
            c.generation
        };
        let found = self.read_active(access_key)?;
        if let Some(entry) = &found {
            self.fill(access_key, generation, entry);
        }
        Ok(found)
    }

    /// Caches `entry`, read from the records while the cache was at `generation`, unless
    /// an identity write happened since (then the entry may already be stale): one
    /// through this handle moved `generation`, any other the metadata's, which
    /// [`Identities::cache`] turns into a move of `generation`.
    fn fill(&self, access_key: &str, generation: u64, entry: &Active) {
        let (mut c, _) = self.cache();
        if c.generation == generation {
            c.entries.insert(access_key.to_owned(), entry.clone());
        }
    }

    /// The active key, user and secret behind `access_key`, read from the records.
    fn read_active(&self, access_key: &str) -> Result<Option<Active>, IdentityError> {
        let Some(k) = self
            .meta
            .kv_get::<KeyRecord>(Space::Identity, &key_key(access_key))?
        else {
            return Ok(None);
        };
        if k.revoked.is_some() {
            return Ok(None);
        }
        let Some(u) = self
            .meta
            .kv_get::<UserRecord>(Space::Identity, &user_key(&k.user))?
        else {
            return Ok(None);
        };
        if u.disabled {
            return Ok(None);
        }
        let secret = self.open_key_secret(&k)?;
        Ok(Some((k, u, secret)))
    }

    /// Seals a secret this node keeps for another system (a replication peer's key) under
    /// the master key; `context` (e.g. `replication-peer:NAME`) must be given again to open
    /// it, so a sealed value cannot be moved to another record.
    pub fn seal_secret(&self, context: &str, secret: &str) -> Vec<u8> {
        self.seal.seal(context.as_bytes(), secret.as_bytes())
    }

    /// Opens what [`Identities::seal_secret`] sealed with the same `context`.
    ///
    /// # Errors
    /// [`IdentityError::Unseal`]: another master key, another context, or altered bytes.
    pub fn open_secret(&self, context: &str, sealed: &[u8]) -> Result<String, IdentityError> {
        let bytes = self
            .seal
            .open(context.as_bytes(), sealed)
            .ok_or(IdentityError::Unseal)?;
        String::from_utf8(bytes).map_err(|_| IdentityError::Unseal)
    }

    /// The node-wide identity settings (defaults until first changed).
    pub fn settings(&self) -> Result<Settings, IdentityError> {
        Ok(self
            .meta
            .kv_get(Space::Identity, SETTINGS)?
            .unwrap_or_default())
    }

    /// Every user, disabled ones included.
    pub fn users(&self) -> Result<Vec<UserRecord>, IdentityError> {
        Ok(self.meta.kv_list(Space::Identity, "user/", usize::MAX)?)
    }

    /// The user `name`, or [`IdentityError::UnknownUser`].
    pub fn user(&self, name: &str) -> Result<UserRecord, IdentityError> {
        self.meta
            .kv_get(Space::Identity, &user_key(name))?
            .ok_or_else(|| IdentityError::UnknownUser {
                name: name.to_owned(),
            })
    }

    /// Every key of a user (revoked ones included).
    pub fn keys_of(&self, user: &str) -> Result<Vec<KeyRecord>, IdentityError> {
        Ok(self
            .meta
            .kv_list::<KeyRecord>(Space::Identity, "key/", usize::MAX)?
            .into_iter()
            .filter(|k| k.user == user)
            .collect())
    }

    /// Creates an enabled user with `grants` and no key; it cannot act until it has one.
    pub fn create_user(&self, name: &str, grants: Vec<Grant>) -> Result<UserRecord, IdentityError> {
        if !valid_name(name) {
            return Err(IdentityError::InvalidName {
                name: name.to_owned(),
            });
        }
        let u = UserRecord {
            name: name.to_owned(),
            created: self.clock.now(),
            disabled: false,
            grants,
            bypass_governance: None,
        };
        match self.change(IdentityChange::CreateUser { user: u })? {
            IdentityOutcome::User(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    /// The administrators who can act: enabled, with the admin role and an active key on
    /// the admin listener. (The first S3 identity has the admin role for S3 bucket
    /// settings but no admin-plane key, so it is not a second pair of eyes.)
    pub fn admins(&self) -> Result<Vec<UserRecord>, IdentityError> {
        change::admins(&self.meta)
    }

    /// Changes a user, refusing to leave the node without an administrator.
    fn change_user(&self, name: &str, change: UserChange) -> Result<UserRecord, IdentityError> {
        match self.change(IdentityChange::ChangeUser {
            name: name.to_owned(),
            change,
        })? {
            IdentityOutcome::User(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces a user's grants. Granting the admin role is not privileged (a new admin
    /// adds a second pair of eyes); removing it from the last admin is refused.
    pub fn set_grants(&self, name: &str, grants: Vec<Grant>) -> Result<UserRecord, IdentityError> {
        self.change_user(name, UserChange::Grants(grants))
    }

    /// Disables a user (its keys stop working at once, and are kept) or enables it again.
    /// Disabling the last administrator is refused.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<UserRecord, IdentityError> {
        self.change_user(name, UserChange::Disabled(disabled))
    }

    /// Sets (or with `None` removes) a user's governance-bypass grant. Granting is
    /// privileged: callers pass it through [`Identities::request`] first.
    pub fn set_bypass(
        &self,
        name: &str,
        scope: Option<Scope>,
    ) -> Result<UserRecord, IdentityError> {
        self.change_user(name, UserChange::Bypass(scope))
    }

    /// Deletes a user and revokes its keys. Data is never touched: versions belong to
    /// buckets, not to users.
    pub fn delete_user(&self, name: &str) -> Result<(), IdentityError> {
        self.change(IdentityChange::DeleteUser {
            name: name.to_owned(),
        })?;
        Ok(())
    }

    /// Makes a key for `user` on `plane`; `given` supplies its id and secret (operator
    /// provided), else both are generated.
    pub fn create_key(
        &self,
        user: &str,
        plane: Plane,
        given: Option<(String, String)>,
    ) -> Result<NewKey, IdentityError> {
        self.make_key(user, plane, given, false)
    }

    /// [`Identities::create_key`]; `create_only` refuses ([`IdentityError::KeyExists`])
    /// where a key of that id exists, instead of replacing it.
    fn make_key(
        &self,
        user: &str,
        plane: Plane,
        given: Option<(String, String)>,
        create_only: bool,
    ) -> Result<NewKey, IdentityError> {
        // On a member the user is checked where the change is applied (the records as the
        // log has them, possibly ahead of this node's copy).
        if !self.log.replicated() {
            self.user(user)?;
        }
        let (access_key, secret) = given.unwrap_or_else(|| (new_access_key(plane), new_secret()));
        let record = KeyRecord {
            sealed_secret: self
                .key_seal()?
                .seal(access_key.as_bytes(), secret.as_bytes()),
            access_key,
            user: user.to_owned(),
            plane,
            created: self.clock.now(),
            revoked: None,
        };
        let change = if create_only {
            IdentityChange::AddKey { key: record }
        } else {
            IdentityChange::PutKey { key: record }
        };
        match self.change(change)? {
            IdentityOutcome::Key(record) => Ok(NewKey { record, secret }),
            other => Err(unexpected(other)),
        }
    }

    /// The record of `access_key`, revoked or not.
    pub fn key(&self, access_key: &str) -> Result<KeyRecord, IdentityError> {
        self.meta
            .kv_get(Space::Identity, &key_key(access_key))?
            .ok_or_else(|| IdentityError::UnknownKey {
                access_key: access_key.to_owned(),
            })
    }

    /// Revokes a key at once; its user and data are unaffected.
    pub fn revoke_key(&self, access_key: &str) -> Result<KeyRecord, IdentityError> {
        match self.change(IdentityChange::RevokeKey {
            access_key: access_key.to_owned(),
        })? {
            IdentityOutcome::Key(k) => Ok(k),
            other => Err(unexpected(other)),
        }
    }

    /// Rotation without downtime: a new key for the same user and plane, working at once;
    /// the old one keeps working until revoked.
    pub fn rotate_key(&self, access_key: &str) -> Result<NewKey, IdentityError> {
        let old = self.key(access_key)?;
        if old.revoked.is_some() {
            // A revoked key is no claim to a new one.
            return Err(IdentityError::UnknownKey {
                access_key: access_key.to_owned(),
            });
        }
        self.create_key(&old.user, old.plane, None)
    }

    /// The secret and user of an active key on `plane`, for verifying a signature or a
    /// password. `None` for an unknown, revoked or other-plane key, or a disabled user.
    pub fn credential(
        &self,
        access_key: &str,
        plane: Plane,
    ) -> Result<Option<(UserRecord, String)>, IdentityError> {
        Ok(self
            .active(access_key)?
            .filter(|(k, _, _)| k.plane == plane)
            .map(|(_, u, secret)| (u, secret)))
    }

    /// The user behind an active key (of any plane).
    pub fn user_of(&self, access_key: &str) -> Result<UserRecord, IdentityError> {
        self.active(access_key)?
            .map(|(_, u, _)| u)
            .ok_or_else(|| IdentityError::UnknownKey {
                access_key: access_key.to_owned(),
            })
    }

    /// Whether the identity behind `access_key` may do `action` (on `bucket`).
    pub fn authorize(
        &self,
        access_key: &str,
        action: Action,
        bucket: Option<&BucketName>,
    ) -> Result<UserRecord, IdentityError> {
        let u = self.user_of(access_key)?;
        if access::allows(&u, action, bucket) {
            Ok(u)
        } else {
            Err(IdentityError::AccessDenied {
                actor: u.name,
                action,
            })
        }
    }

    /// Whether the identity behind `access_key` holds the governance-bypass grant for
    /// `bucket`.
    pub fn may_bypass(&self, access_key: &str, bucket: &BucketName) -> bool {
        self.user_of(access_key)
            .is_ok_and(|u| access::may_bypass(&u, bucket))
    }

    /// Whether privileged operations need a second administrator, as this node's copy of
    /// the records says (for display: no barrier, so a member cut off from the others
    /// still answers; decisions use [`Identities::two_person_in_force_now`]).
    pub fn two_person_in_force(&self) -> Result<bool, IdentityError> {
        Ok(self.settings()?.two_person_rule && self.admins()?.len() >= 2)
    }

    /// Whether privileged operations need a second administrator now, to decide one: on a
    /// cluster's member after every change agreed so far (the rule turned on, or a second
    /// administrator made, through another node a moment ago).
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`] when the cluster cannot confirm its state, a
    /// metadata error.
    pub fn two_person_in_force_now(&self) -> Result<bool, IdentityError> {
        self.log.barrier()?;
        self.two_person_in_force()
    }

    /// Asks for a privileged operation on behalf of administrator `actor`.
    pub fn request(&self, actor: &str, op: Privileged) -> Result<Requested, IdentityError> {
        if !self.two_person_in_force_now()? {
            return Ok(Requested::Now(op));
        }
        let created = self.clock.now();
        let rec = ApprovalRecord {
            id: hex::encode(crate::crypto::random_bytes::<8>()),
            operation: op,
            requested_by: actor.to_owned(),
            created,
            expires: created.plus_micros(APPROVAL_WINDOW_MICROS),
        };
        match self.change(IdentityChange::FileApproval { approval: rec })? {
            IdentityOutcome::Approval(rec) => Ok(Requested::Pending(rec)),
            other => Err(unexpected(other)),
        }
    }

    /// Every request still waiting for a second administrator, expired ones included
    /// until someone tries to approve or deny them.
    pub fn approvals(&self) -> Result<Vec<ApprovalRecord>, IdentityError> {
        Ok(self
            .meta
            .kv_list(Space::Identity, "approval/", usize::MAX)?)
    }

    /// A second administrator approves: the request is consumed and its operation returned
    /// for the caller to carry out. An expired request does nothing (and is removed).
    pub fn approve(&self, actor: &str, id: &str) -> Result<Privileged, IdentityError> {
        match self.change(IdentityChange::ConsumeApproval {
            id: id.to_owned(),
            actor: actor.to_owned(),
        })? {
            IdentityOutcome::Approved(rec) => Ok(rec.operation),
            IdentityOutcome::Expired(_) => {
                Err(IdentityError::ApprovalExpired { id: id.to_owned() })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Any administrator (the requester too) may withdraw or deny a request.
    pub fn deny(&self, id: &str) -> Result<ApprovalRecord, IdentityError> {
        match self.change(IdentityChange::DenyApproval { id: id.to_owned() })? {
            IdentityOutcome::Approval(rec) => Ok(rec),
            other => Err(unexpected(other)),
        }
    }

    /// Carries out the privileged operations that are about identities.
    pub fn execute(&self, op: &Privileged) -> Result<(), IdentityError> {
        match op {
            Privileged::GrantBypass { user, scope } => {
                self.set_bypass(user, scope.clone())?;
            }
            Privileged::DeleteAdmin { user } => self.delete_user(user)?,
            Privileged::SetTwoPersonRule { enabled } => {
                let s = Settings {
                    two_person_rule: *enabled,
                };
                self.change(IdentityChange::SetSettings { settings: s })?;
            }
            // The engine's, carried out by `control`.
            Privileged::LoosenPolicy { .. } | Privileged::ResyncClock { .. } => {}
        }
        Ok(())
    }

    /// First start: the first administrator (admin-plane key) and the first S3 identity,
    /// from the operator's values or generated. Later starts: a given credential that
    /// differs from the stored one replaces it (the operator's environment wins). The
    /// returned keys carry a secret only when it was generated now (to be shown once).
    pub fn bootstrap(
        &self,
        admin: Option<(String, String)>,
        s3: Option<(String, String)>,
    ) -> Result<(Option<NewKey>, Option<NewKey>), IdentityError> {
        self.import_legacy()?;
        let first_start = self.users()?.is_empty();
        self.ensure_both(first_start, admin, s3)
    }

    /// A cluster member's start: never generates a credential, never makes or changes a
    /// user, never replaces or revives a key (the cluster's users are every member's, and
    /// one node's environment must not undo a revocation or a rotation made through
    /// another). A given credential (the admin one for the user `admin`, the S3 one for
    /// `owner`) whose access key id the cluster does not know is added to that user,
    /// through the log. Returns what was done or left alone, for the log.
    ///
    /// # Errors
    /// The log's (no majority reachable: the credential is not there yet), or a metadata
    /// read's.
    pub fn bootstrap_member(
        &self,
        admin: Option<(String, String)>,
        s3: Option<(String, String)>,
    ) -> Result<Vec<String>, IdentityError> {
        // Decided on the cluster's records as they are, not on a copy a moment behind; the
        // add itself is create-only, so a key made meanwhile is never replaced either.
        self.log.barrier()?;
        let mut notes = Vec::new();
        for (name, plane, given) in [("admin", Plane::Admin, admin), ("owner", Plane::S3, s3)] {
            let Some((access, secret)) = given else {
                continue;
            };
            match self.key(&access) {
                Ok(k) if k.revoked.is_some() => notes.push(format!(
                    "the given {plane:?} key {access} is revoked in the cluster: left revoked"
                )),
                Ok(_) => match self.credential(&access, plane)? {
                    Some((_, stored)) if stored == secret => {}
                    _ => notes.push(format!(
                        "the given {plane:?} key {access} is the cluster's with another secret, \
                         plane or user state: left as the cluster has it"
                    )),
                },
                Err(IdentityError::UnknownKey { .. }) => {
                    match self.make_key(name, plane, Some((access.clone(), secret)), true) {
                        Ok(_) => notes.push(format!(
                            "the given {plane:?} key {access} was added to the cluster's user {name}"
                        )),
                        Err(IdentityError::KeyExists { .. }) => notes.push(format!(
                            "the given {plane:?} key {access} exists in the cluster: left as it is"
                        )),
                        Err(IdentityError::UnknownUser { .. }) => notes.push(format!(
                            "the given {plane:?} key {access} was not added: the cluster has no user {name}"
                        )),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(notes)
    }

    fn ensure_both(
        &self,
        first_start: bool,
        admin: Option<(String, String)>,
        s3: Option<(String, String)>,
    ) -> Result<(Option<NewKey>, Option<NewKey>), IdentityError> {
        let admin_key = self.ensure_first(
            first_start,
            "admin",
            vec![Grant {
                role: Role::Admin,
                scope: Scope::All,
            }],
            Plane::Admin,
            admin,
        )?;
        // The first S3 identity can set buckets up and write backups; issue narrower keys
        // (backup-writer, restore-reader, auditor) to the software that uses them.
        let s3_key = self.ensure_first(
            first_start,
            "owner",
            vec![
                Grant {
                    role: Role::Admin,
                    scope: Scope::All,
                },
                Grant {
                    role: Role::BackupWriter,
                    scope: Scope::All,
                },
            ],
            Plane::S3,
            s3,
        )?;
        Ok((admin_key, s3_key))
    }

    fn ensure_first(
        &self,
        first_start: bool,
        name: &str,
        grants: Vec<Grant>,
        plane: Plane,
        given: Option<(String, String)>,
    ) -> Result<Option<NewKey>, IdentityError> {
        let exists = self
            .meta
            .kv_get::<UserRecord>(Space::Identity, &user_key(name))?
            .is_some();
        if !exists {
            if !first_start && given.is_none() {
                return Ok(None); // an operator removed it on purpose
            }
            self.create_user(name, grants)?;
        }
        let active: Vec<KeyRecord> = self
            .keys_of(name)?
            .into_iter()
            .filter(|k| k.revoked.is_none() && k.plane == plane)
            .collect();
        match given {
            Some((access, secret)) => {
                if let Some((_, stored)) = self.credential(&access, plane)?
                    && stored == secret
                {
                    return Ok(None);
                }
                self.create_key(name, plane, Some((access, secret)))?;
                Ok(None)
            }
            None if active.is_empty() && !exists => Ok(Some(self.create_key(name, plane, None)?)),
            None => Ok(None),
        }
    }

    /// Whether [`Identities::bootstrap`] without a given admin credential would generate
    /// one: no user exists once an earlier release's credentials are imported (which this
    /// does first; importing is idempotent).
    ///
    /// # Errors
    /// A metadata error.
    pub fn would_generate_admin(&self) -> Result<bool, IdentityError> {
        self.import_legacy()?;
        Ok(self.users()?.is_empty())
    }

    /// Moves credentials an earlier release kept in plaintext into sealed keys, and
    /// removes the plaintext.
    fn import_legacy(&self) -> Result<(), IdentityError> {
        #[derive(serde::Deserialize)]
        struct Legacy {
            access_key: String,
            secret_key: String,
            #[allow(dead_code)]
            created: Timestamp,
        }
        for (slot, name, plane) in [
            ("identity.first-s3-key", "owner", Plane::S3),
            ("identity.first-admin", "admin", Plane::Admin),
        ] {
            let Some(bytes) = self.meta.system_get(slot)? else {
                continue;
            };
            if let Some((1, body)) = bytes.split_first().map(|(v, b)| (*v, b))
                && let Ok(l) = postcard::from_bytes::<Legacy>(body)
            {
                let grants = if plane == Plane::Admin {
                    vec![Grant {
                        role: Role::Admin,
                        scope: Scope::All,
                    }]
                } else {
                    vec![
                        Grant {
                            role: Role::Admin,
                            scope: Scope::All,
                        },
                        Grant {
                            role: Role::BackupWriter,
                            scope: Scope::All,
                        },
                    ]
                };
                if self
                    .meta
                    .kv_get::<UserRecord>(Space::Identity, &user_key(name))?
                    .is_none()
                {
                    self.create_user(name, grants)?;
                }
                self.create_key(name, plane, Some((l.access_key, l.secret_key)))?;
            }
            self.meta.system_delete(slot)?;
            tracing::info!(
                slot,
                "moved a plaintext credential into the sealed identity store"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
