//! How the node's disks are laid out across failure domains and where a segment's shards go
//! ([`placement`]). The cluster's membership and layout versions come here next.

pub mod placement;
