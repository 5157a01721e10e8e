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

    /// Whether a join token's secret admits a node now (known, unused, not expired): read
    /// before anything is signed for a join. A point read (in place).
    ///
    /// # Errors
    /// [`StoreError::Membership`] saying why not; a metadata read.
    pub fn join_token_usable(&self, secret: &str) -> Result<(), StoreError> {
        let now = self.store().clock().now();
        membership::usable_token(self.store().meta(), &token_hash(secret), now)?;
        Ok(())
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
