//! Where a segment's shards go across failure domains ([`placement`]); the layout that
//! weighs the disks is the membership's (`membership::layout`).

pub mod placement;
