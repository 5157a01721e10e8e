//! Cluster membership on the blocking pool: the cluster's identity, join tokens, joins
//! and removals (`crate::membership`).

use super::{Node, offload};
use crate::membership::{self, ClusterChange, ClusterIdentity, ClusterOutcome, Member};
use crate::store::StoreError;
use crate::types::Timestamp;

/// A join token as issued: the secret (shown once, never stored) and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// 64 hex digits.
    pub secret: String,
    /// When it stops being accepted.
    pub expires: Timestamp,
}

impl Node {
    /// Proposes a membership change.
    ///
    /// # Errors
    /// [`StoreError::Membership`] for a refusal; a commit's errors.
    pub async fn change_membership(
        &self,
        change: ClusterChange,
    ) -> Result<ClusterOutcome, StoreError> {
        let store = self.store().clone();
        offload(move || store.change_membership(change)).await
    }

    /// Issues a join token valid for `ttl_secs` seconds from now (wall clock).
    ///
    /// # Errors
    /// [`membership::MembershipError::NotInitialized`]; a commit's errors.
    pub async fn issue_join_token(&self, ttl_secs: u64) -> Result<IssuedToken, StoreError> {
        let secret = crate::crypto::random_bytes::<32>();
        let now = self.store().clock().now();
        let expires =
            Timestamp(now.0.saturating_add(
                i64::try_from(ttl_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            ));
        self.change_membership(ClusterChange::IssueToken {
            token_hash: token_hash(&hex::encode(secret)),
            expires,
        })
        .await?;
        Ok(IssuedToken {
            secret: hex::encode(secret),
            expires,
        })
    }

    /// The cluster this node belongs to, and every member (removed ones too).
    ///
    /// # Errors
    /// A metadata read.
    pub async fn cluster(&self) -> Result<(Option<ClusterIdentity>, Vec<Member>), StoreError> {
        let store = self.store().clone();
        offload(move || {
            Ok((
                membership::identity(store.meta())?,
                membership::members(store.meta())?,
            ))
        })
        .await
    }

    /// The hash of the join token named `id` if it admits a node now (known, unused, not
    /// expired) and `proof` is the HMAC-SHA256, keyed by that hash, of `binding` (the
    /// joining connection's TLS exporter): read before anything is signed for a join. A
    /// scan of the tokens (a few records), in place.
    ///
    /// # Errors
    /// [`StoreError::Membership`] saying why not ([`membership::MembershipError::UnknownToken`]
    /// for a proof that does not match); a metadata read.
    pub fn join_token_proven(
        &self,
        id: &str,
        proof: &[u8],
        binding: &[u8],
    ) -> Result<[u8; 32], StoreError> {
        let meta = self.store().meta();
        let hash = membership::token_hash_by_id(meta, id)?
            .ok_or(membership::MembershipError::UnknownToken)?;
        if !crate::crypto::same_secret(&crate::crypto::hmac_sha256(&hash, binding), proof) {
            return Err(membership::MembershipError::UnknownToken.into());
        }
        membership::usable_token(meta, &hash, self.store().clock().now())?;
        Ok(hash)
    }

    /// The active member whose node certificate has this fingerprint, if any: what the
    /// node-to-node listener admits, for every request. A scan of the members (a few
    /// records), in place.
    ///
    /// # Errors
    /// A metadata read.
    pub fn member_by_certificate(&self, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        Ok(membership::members(self.store().meta())?
            .into_iter()
            .find(|m| m.active() && m.cert_fingerprint == fingerprint))
    }
}

/// The hash a token is kept under: SHA-256 of its secret's text.
pub fn token_hash(secret: &str) -> [u8; 32] {
    crate::crypto::sha256(secret.trim().as_bytes())
}
