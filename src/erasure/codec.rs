//! The Reed-Solomon codec. Only this file imports `reed_solomon_erasure`.

use reed_solomon_erasure::galois_8::ReedSolomon;

/// Encoding runs over slices of this many bytes per shard: the working set of one pass
/// (K+M slices) then stays in cache, which is about twice as fast as whole large blocks.
const SLICE: usize = 64 * 1024;

/// Why encoding or reconstruction failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The Reed-Solomon crate refuses this K+M (no data shards, or more than 256 shards in
    /// all): a configuration error, met when the codec is made.
    #[error("erasure coding {data}+{parity} is not supported: {reason}")]
    Unsupported {
        /// K, the data shards asked for.
        data: usize,
        /// M, the parity shards asked for.
        parity: usize,
        /// The crate's refusal.
        reason: String,
    },
    /// Fewer than K blocks of a stripe are present: the stripe cannot be read or rebuilt.
    #[error("{have} good shards, {need} needed to reconstruct")]
    TooFewShards {
        /// Blocks present.
        have: usize,
        /// K, blocks needed.
        need: usize,
    },
    /// The blocks handed in are not K data and M parity blocks (K+M in all) of one
    /// length.
    #[error("shards have different lengths")]
    ShardLength,
}

/// A Reed-Solomon codec for K data and M parity shards, working on one stripe (K+M blocks
/// of one length) at a time. M may be 0: plain striping, nothing to encode or rebuild.
pub struct Codec {
    rs: ReedSolomon,
    data: usize,
    parity: usize,
}

/// The codecs of every K+M a node writes or reads (a bucket's own profile, segments
/// written under an earlier `--ec`), each made once and shared.
#[derive(Default)]
pub struct Codecs {
    made: std::sync::Mutex<std::collections::HashMap<(usize, usize), std::sync::Arc<Codec>>>,
}

impl Codecs {
    /// The codec for K = `data`, M = `parity`.
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] as [`Codec::new`].
    pub fn get(&self, data: usize, parity: usize) -> Result<std::sync::Arc<Codec>, CodecError> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = made.get(&(data, parity)) {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(Codec::new(data, parity)?);
        made.insert((data, parity), c.clone());
        Ok(c)
    }
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Codec({}+{})", self.data, self.parity)
    }
}

impl Codec {
    /// A codec for `data` (K) data shards and `parity` (M) parity shards.
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] if the Reed-Solomon crate refuses K+M.
    pub fn new(data: usize, parity: usize) -> Result<Self, CodecError> {
        if parity == 0 {
            // The crate refuses zero parity; a 0-parity codec is plain striping.
            return Ok(Self {
                rs: ReedSolomon::new(data, 1).map_err(|e| CodecError::Unsupported {
                    data,
                    parity,
                    reason: format!("{e:?}"),
                })?,
                data,
                parity,
            });
        }
        let rs = ReedSolomon::new(data, parity).map_err(|e| CodecError::Unsupported {
            data,
            parity,
            reason: format!("{e:?}"),
        })?;
        Ok(Self { rs, data, parity })
    }

    /// K: data shards per stripe.
    pub fn data_shards(&self) -> usize {
        self.data
    }
    /// M: parity shards per stripe.
    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    /// Computes the parity blocks of one stripe. All blocks must have one length.
    pub fn encode(&self, data: &[&[u8]], parity: &mut [Vec<u8>]) -> Result<(), CodecError> {
        if self.parity == 0 {
            return Ok(());
        }
        let len = data.first().map_or(0, |d| d.len());
        if data.len() != self.data
            || parity.len() != self.parity
            || data.iter().any(|d| d.len() != len)
            || parity.iter().any(|p| p.len() != len)
        {
            return Err(CodecError::ShardLength);
        }
        let mut off = 0;
        while off < len {
            let end = (off + SLICE).min(len);
            let d: Vec<&[u8]> = data.iter().map(|s| &s[off..end]).collect();
            let mut p: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[off..end]).collect();
            self.rs
                .encode_sep(&d, &mut p)
                .map_err(|_| CodecError::ShardLength)?;
            off = end;
        }
        Ok(())
    }

    /// Fills in the missing data shards (`None`) from any K present shards. Parity shards
    /// that are missing stay missing unless `with_parity`.
    pub fn reconstruct(
        &self,
        shards: &mut [Option<Vec<u8>>],
        with_parity: bool,
    ) -> Result<(), CodecError> {
        let have = shards.iter().filter(|s| s.is_some()).count();
        if have < self.data {
            return Err(CodecError::TooFewShards {
                have,
                need: self.data,
            });
        }
        if shards.len() != self.data + self.parity {
            return Err(CodecError::ShardLength);
        }
        if self.parity == 0 {
            return Ok(());
        }
        let r = if with_parity {
            self.rs.reconstruct(shards)
        } else {
            self.rs.reconstruct_data(shards)
        };
        r.map_err(|e| match e {
            reed_solomon_erasure::Error::TooFewShardsPresent => CodecError::TooFewShards {
                have,
                need: self.data,
            },
            _ => CodecError::ShardLength,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Drop up to M random shards of a stripe: the data comes back exactly.
        #[test]
        fn recovers_from_any_m_losses(
            (k, m) in (1usize..8, 0usize..4),
            len in 1usize..200_000,
            seed in any::<u64>(),
            lose in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let data: Vec<Vec<u8>> = (0..k).map(|_| (0..len).map(|_| rng.random()).collect()).collect();
            let codec = Codec::new(k, m).expect("codec");
            let mut parity = vec![vec![0u8; len]; m];
            let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
            codec.encode(&refs, &mut parity).expect("encode");
            let mut shards: Vec<Option<Vec<u8>>> = data.iter().chain(parity.iter()).cloned().map(Some).collect();
            let mut lost = 0;
            for ix in lose.iter().take(m) {
                let i = ix.index(k + m);
                if shards[i].take().is_some() { lost += 1; }
            }
            prop_assert!(lost <= m);
            codec.reconstruct(&mut shards, true).expect("reconstruct");
            for i in 0..k {
                prop_assert_eq!(shards[i].as_ref().expect("data shard"), &data[i]);
            }
            for i in 0..m {
                prop_assert_eq!(shards[k + i].as_ref().expect("parity shard"), &parity[i]);
            }
        }
    }

    #[test]
    fn m_plus_one_losses_fail_cleanly() {
        let codec = Codec::new(4, 2).expect("codec");
        let mut shards: Vec<Option<Vec<u8>>> = vec![Some(vec![1; 10]); 6];
        shards[0] = None;
        shards[2] = None;
        shards[5] = None;
        assert!(matches!(
            codec.reconstruct(&mut shards, false),
            Err(CodecError::TooFewShards { have: 3, need: 4 })
        ));
    }
}
