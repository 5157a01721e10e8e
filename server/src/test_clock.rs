//! Test builds only (feature `test-clock`): wall and monotonic clocks offset by the two
//! numbers in a file, so end-to-end tests can let days pass (both offsets) or jump the
//! wall clock alone (first offset), against the real binary.

use std::path::PathBuf;
use std::time::Instant;

use stele::lock::Monotonic;
use stele::{Clock, SystemClock, Timestamp};

fn offsets(path: &PathBuf) -> (i64, i64) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<i64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

pub struct FileWall(pub PathBuf);

impl Clock for FileWall {
    fn now(&self) -> Timestamp {
        SystemClock
            .now()
            .plus_micros(offsets(&self.0).0 * 1_000_000)
    }
}

pub struct FileMono(pub PathBuf, pub Instant);

impl Monotonic for FileMono {
    fn micros(&self) -> i64 {
        self.1.elapsed().as_micros() as i64 + offsets(&self.0).1 * 1_000_000
    }
}
