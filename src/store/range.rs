//! Byte ranges as HTTP `Range: bytes=...` expresses them.

use super::StoreError;

/// The part of an object a read asks for: one HTTP range, or S3's `partNumber`. Offsets
/// are bytes from the start of the object, counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, both inclusive.
    FromTo {
        /// The first byte.
        first: u64,
        /// The last byte; past the object's end it means the end, as HTTP says, except in
        /// a copy range (see [`super::Store::upload_part_copy`]).
        last: u64,
    },
    /// `bytes=first-`.
    From {
        /// The first byte; the range runs to the end.
        first: u64,
    },
    /// `bytes=-len`: the last `len` bytes.
    Suffix {
        /// How many bytes from the end; more than the object has selects all of it.
        len: u64,
    },
    /// `partNumber=n`: the bytes of one uploaded part.
    Part {
        /// The part's number, from 1; an object not uploaded in parts has only part 1.
        number: u32,
    },
}

impl ByteRange {
    /// The half-open byte interval this range selects in an object of `len` bytes.
    pub fn resolve(&self, len: u64) -> Result<(u64, u64), StoreError> {
        let bad = || StoreError::InvalidRange { len };
        match *self {
            ByteRange::FromTo { first, last } if first <= last && first < len => {
                Ok((first, last.min(len - 1) + 1))
            }
            ByteRange::From { first } if first < len => Ok((first, len)),
            ByteRange::Suffix { len: n } if n > 0 && len > 0 => Ok((len - n.min(len), len)),
            ByteRange::Part { .. } => Err(bad()),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_http() {
        let r = |b: ByteRange, len| b.resolve(len).ok();
        assert_eq!(r(ByteRange::FromTo { first: 0, last: 0 }, 10), Some((0, 1)));
        assert_eq!(
            r(
                ByteRange::FromTo {
                    first: 5,
                    last: 100
                },
                10
            ),
            Some((5, 10))
        );
        assert_eq!(
            r(
                ByteRange::FromTo {
                    first: 10,
                    last: 12
                },
                10
            ),
            None
        );
        assert_eq!(r(ByteRange::From { first: 9 }, 10), Some((9, 10)));
        assert_eq!(r(ByteRange::Suffix { len: 3 }, 10), Some((7, 10)));
        assert_eq!(r(ByteRange::Suffix { len: 30 }, 10), Some((0, 10)));
        assert_eq!(r(ByteRange::Suffix { len: 3 }, 0), None);
    }
}
