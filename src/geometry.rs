//! Stripe geometry: how an object of `len` bytes is cut into stripes of K blocks.
//!
//! Every stripe but the last holds `K * block_size` bytes. The last holds the rest, cut into
//! K blocks of `ceil(rest / K)` bytes, zero-padded. Shard `i` of a segment is the file made
//! of block `i` of every stripe, so the offset of any block in a shard file is computable
//! from the geometry alone.

use serde::{Deserialize, Serialize};

/// How one segment is erasure-coded: K+M shards, the block size and the segment's length.
/// Kept in the segment's record, so a segment is read with the geometry it was written with
/// whatever the node's configuration says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// K: data shards, blocks of object bytes per stripe.
    pub data: u16,
    /// M: parity shards; any M of the K+M shards may be lost.
    pub parity: u16,
    /// Bytes of a full block; only the last stripe's blocks are shorter.
    pub block_size: u32,
    /// The segment's length in bytes (object bytes, before padding).
    pub len: u64,
}

impl Geometry {
    /// K data shards, M parity shards, blocks of `block_size` bytes, `len` bytes in all.
    pub fn new(data: usize, parity: usize, block_size: usize, len: u64) -> Self {
        Self {
            data: data as u16,
            parity: parity as u16,
            block_size: block_size as u32,
            len,
        }
    }

    /// K: the data shards, and the good blocks a stripe needs to be read.
    pub fn k(&self) -> usize {
        self.data as usize
    }
    /// K+M: the shards of the segment, each on its own disk.
    pub fn width(&self) -> usize {
        (self.data + self.parity) as usize
    }
    /// Object bytes in a full stripe: K × `block_size`.
    pub fn stripe_size(&self) -> u64 {
        self.data as u64 * self.block_size as u64
    }

    /// Stripes in the segment (0 for an empty one); also the blocks in each shard file.
    pub fn stripes(&self) -> u64 {
        self.len.div_ceil(self.stripe_size())
    }

    /// Object bytes held by stripe `s`.
    pub fn stripe_len(&self, s: u64) -> u64 {
        let start = s * self.stripe_size();
        self.stripe_size().min(self.len.saturating_sub(start))
    }

    /// Bytes of each block of stripe `s` (all K+M blocks of a stripe have one length).
    pub fn block_len(&self, s: u64) -> usize {
        self.stripe_len(s).div_ceil(self.data as u64) as usize
    }

    /// Offset of stripe `s`'s block inside a shard file.
    pub fn block_offset(&self, s: u64) -> u64 {
        s * self.block_size as u64
    }

    /// Bytes of block data in each shard file (before the hash list and trailer).
    pub fn shard_data_len(&self) -> u64 {
        match self.stripes() {
            0 => 0,
            n => (n - 1) * self.block_size as u64 + self.block_len(n - 1) as u64,
        }
    }

    /// The stripes that hold bytes `[start, end)` of the object.
    pub fn stripes_for(&self, start: u64, end: u64) -> std::ops::Range<u64> {
        if start >= end {
            return 0..0;
        }
        let ss = self.stripe_size();
        (start / ss)..end.div_ceil(ss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_objects_into_stripes() {
        let g = Geometry::new(4, 2, 1024, 0);
        assert_eq!(g.stripes(), 0);
        assert_eq!(g.shard_data_len(), 0);

        let g = Geometry::new(4, 2, 1024, 1);
        assert_eq!((g.stripes(), g.block_len(0), g.shard_data_len()), (1, 1, 1));

        let g = Geometry::new(4, 2, 1024, 4096 + 5);
        assert_eq!(g.stripes(), 2);
        assert_eq!(g.stripe_len(0), 4096);
        assert_eq!(g.stripe_len(1), 5);
        assert_eq!(g.block_len(0), 1024);
        assert_eq!(g.block_len(1), 2);
        assert_eq!(g.shard_data_len(), 1026);
        assert_eq!(g.stripes_for(0, 4096), 0..1);
        assert_eq!(g.stripes_for(4095, 4097), 0..2);
        assert_eq!(g.stripes_for(4096, 4101), 1..2);
    }
}
