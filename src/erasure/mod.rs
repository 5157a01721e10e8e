//! Erasure coding: the Reed-Solomon codec (the only user of the Reed-Solomon crate) and the
//! stripe geometry that maps object offsets to stripes and shard blocks.

pub mod codec;
pub mod geometry;

pub use codec::{Codec, CodecError};
pub use geometry::Geometry;
