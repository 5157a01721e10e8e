//! Erasure coding: the Reed-Solomon codec (the only user of the Reed-Solomon crate). The
//! stripe geometry that maps object offsets to stripes and shard blocks is plain
//! arithmetic that records name, so it lives with the names, in [`crate::geometry`].

pub mod codec;

pub use crate::geometry::Geometry;
pub use codec::{Codec, CodecError, Codecs};
