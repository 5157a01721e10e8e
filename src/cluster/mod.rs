//! Where a segment's shards go across failure domains ([`placement`]), and what erasure
//! coding across sites demands of profiles and acknowledgements ([`geo`]); the layout
//! that weighs the disks is the membership's (`membership::layout`).

pub mod geo;
pub mod placement;
