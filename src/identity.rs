//! Identities. For now, one: the node's first S3 credential, created on first start from
//! the operator's values or generated. Users, roles and sealed secrets come with the
//! identity issue; until then the secret is stored as given (see ARCHITECTURE.md).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::meta::{Meta, MetaError, Record};
use crate::types::Timestamp;

const FIRST_KEY: &str = "identity.first-s3-key";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    pub created: Timestamp,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl Record for Credential {
    const NAME: &'static str = "credential";
    const FORMAT: u8 = 1;
}

/// Where the first credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The operator supplied it (`STELE_ACCESS_KEY` / `STELE_SECRET_KEY`).
    Given,
    /// Created on an earlier start.
    Stored,
    /// Generated now; shown once.
    Generated,
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// The credential stored under `slot`: the given one (which replaces any stored one),
/// else the stored one, else a newly generated one (access key starting with `prefix`),
/// stored.
fn first_of(
    meta: &Meta,
    slot: &str,
    prefix: &str,
    given: Option<(String, String)>,
    clock: &dyn Clock,
) -> Result<(Credential, Origin), MetaError> {
    let stored = meta
        .system_get(slot)?
        .map(|b| Credential::decode(&b))
        .transpose()?;
    let (cred, origin) = match (given, stored) {
        (Some((access_key, secret_key)), stored) => {
            let cred = match stored {
                Some(s) if s.access_key == access_key && s.secret_key == secret_key => s,
                _ => Credential {
                    access_key,
                    secret_key,
                    created: clock.now(),
                },
            };
            (cred, Origin::Given)
        }
        (None, Some(s)) => return Ok((s, Origin::Stored)),
        (None, None) => (
            Credential {
                access_key: format!(
                    "{prefix}{}",
                    random_string(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
                ),
                secret_key: random_string(
                    40,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                ),
                created: clock.now(),
            },
            Origin::Generated,
        ),
    };
    meta.system_put(slot, cred.encode(), true)?;
    Ok((cred, origin))
}

/// The node's first S3 credential (see [`first_of`]).
pub fn first_credential(
    meta: &Meta,
    given: Option<(String, String)>,
    clock: &dyn Clock,
) -> Result<(Credential, Origin), MetaError> {
    first_of(meta, FIRST_KEY, "SK", given, clock)
}

const BYPASS_PREFIX: &str = "identity.bypass-governance/";

/// Whether the S3 identity with `access_key` holds the permission to bypass GOVERNANCE
/// retention (`s3:BypassGovernanceRetention`). Nobody does unless an administrator
/// granted it.
pub fn may_bypass_governance(meta: &Meta, access_key: &str) -> Result<bool, MetaError> {
    Ok(meta
        .system_get(&format!("{BYPASS_PREFIX}{access_key}"))?
        .is_some_and(|v| v == [1]))
}

/// Grants or revokes the governance-bypass permission of an S3 identity.
pub fn set_bypass_governance(
    meta: &Meta,
    access_key: &str,
    allowed: bool,
) -> Result<(), MetaError> {
    meta.system_put(
        &format!("{BYPASS_PREFIX}{access_key}"),
        vec![u8::from(allowed)],
        true,
    )
}

const FIRST_ADMIN: &str = "identity.first-admin";

/// The node's first administrator credential, for the admin listener only (never an S3
/// key); see [`first_of`]. Sealed storage and more administrators come with the identity
/// issue.
pub fn first_admin(
    meta: &Meta,
    given: Option<(String, String)>,
    clock: &dyn Clock,
) -> Result<(Credential, Origin), MetaError> {
    first_of(meta, FIRST_ADMIN, "SA", given, clock)
}
