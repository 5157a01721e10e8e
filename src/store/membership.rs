//! Membership changes through the command log (`crate::membership`).

use super::{Store, StoreError};
use crate::command::{MetaCommand, Outcome};
use crate::membership::{ClusterChange, ClusterOutcome};

impl Store {
    /// Proposes a membership change.
    ///
    /// # Errors
    /// [`StoreError::Membership`] for a refusal; a commit's errors.
    pub fn change_membership(&self, change: ClusterChange) -> Result<ClusterOutcome, StoreError> {
        match self.propose(MetaCommand::Cluster(change))? {
            Outcome::Cluster(o) => Ok(o),
            other => Err(crate::command::unexpected(other).into()),
        }
    }
}
