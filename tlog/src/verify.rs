//! The offline check of an exported audit trail (`stelectl audit verify`): needs the
//! export and the log's public key, never a server or a secret.
//!
//! An export is NDJSON. Each line is either a leaf — the event exactly as the log stored
//! it, a JSON object with at least `seq` (its position, from 0) and `prev` (the hex
//! SHA-256 of the previous leaf's bytes; 64 zeros for the first) — or a checkpoint,
//! `{"checkpoint": "<signed note>"}` (see [`crate::checkpoint`]). What is checked:
//!
//! - `seq` runs from 0 without a gap, and every `prev` is the hash of the leaf before it
//!   (a reader finds the first changed, removed or reordered leaf without any tree code);
//! - every checkpoint is signed by a known key (signatures of unknown keys are ignored;
//!   a checkpoint with no known signature breaks the trail, as a trail recomputed and
//!   signed with another key must) and its root is the RFC 6962 root of the leaves it
//!   covers, so leaves cut off after a checkpoint, or changed, show;
//! - no leaf lies after the last checkpoint (an export ends with one made at export time);
//! - with a trusted checkpoint kept from earlier (`--trust`), the export still holds its
//!   leaves unchanged: a tail removed together with the checkpoints that covered it shows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::crypto::sha256;
use crate::merkle;
use crate::note::Verifier;
use crate::{Hash, TlogError};

/// The `prev` of the first leaf.
pub const FIRST_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first place where a trail does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The leaf at fault, when one can be named.
    pub seq: Option<u64>,
    /// What does not hold there.
    pub reason: String,
}

/// What the check found (`stelectl audit verify` prints it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check held.
    pub verified: bool,
    /// Leaves in the export.
    pub leaves: u64,
    /// Checkpoints whose signature and root held.
    pub checkpoints: u64,
    /// The size the largest verified checkpoint covers.
    pub verified_size: u64,
    /// The base64 root of that checkpoint.
    pub verified_root: Option<String>,
    /// The first break, if any.
    pub first_break: Option<Break>,
}

enum Line<'a> {
    Leaf {
        bytes: &'a str,
        seq: Option<u64>,
        prev: Option<String>,
    },
    Checkpoint(String),
}

fn read_line(line: &str) -> Line<'_> {
    let value: Option<serde_json::Value> = serde_json::from_str(line).ok();
    if let Some(note) = value
        .as_ref()
        .and_then(|v| v.get("checkpoint"))
        .and_then(|c| c.as_str())
    {
        return Line::Checkpoint(note.to_owned());
    }
    Line::Leaf {
        bytes: line,
        seq: value
            .as_ref()
            .and_then(|v| v.get("seq"))
            .and_then(|s| s.as_u64()),
        prev: value
            .as_ref()
            .and_then(|v| v.get("prev"))
            .and_then(|s| s.as_str())
            .map(str::to_owned),
    }
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the export `export` against the log's keys `keys` (the checkpoints' origin is
/// a key's name), and, if given, against `trusted`, a signed checkpoint kept from an
/// earlier export.
///
/// # Errors
/// [`TlogError::Malformed`] for input that cannot be checked at all: no key, an export
/// without a single line, or a trusted checkpoint that does not open with the keys. A
/// trail that does not verify is no error: the [`Report`] names its first break.
pub fn verify(export: &str, keys: &[Verifier], trusted: Option<&str>) -> Result<Report, TlogError> {
    let unusable = |reason: &str| TlogError::Malformed {
        what: "export",
        reason: reason.to_owned(),
    };
    if keys.is_empty() {
        return Err(unusable("no public key to check against"));
    }
    let lines: Vec<&str> = export.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(unusable("empty"));
    }
    let trusted = trusted
        .map(|t| open_any(t, keys))
        .transpose()
        .map_err(|e| TlogError::Malformed {
            what: "trusted checkpoint",
            reason: e.to_string(),
        })?;

    let mut first_break: Option<Break> = None;
    let note_break = |b: Break, slot: &mut Option<Break>| {
        if slot.is_none() {
            *slot = Some(b);
        }
    };
    // Leaves: the chain of seq and prev.
    let mut hashes: Vec<Hash> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut last_bytes: Option<&str> = None;
    for line in &lines {
        match read_line(line) {
            Line::Checkpoint(n) => notes.push(n),
            Line::Leaf { bytes, seq, prev } => {
                let i = hashes.len() as u64;
                if seq != Some(i) {
                    let found = seq.map_or("no seq".to_owned(), |s| format!("seq {s}"));
                    note_break(
                        Break {
                            seq: Some(i),
                            reason: format!("leaf {i} expected, found {found}"),
                        },
                        &mut first_break,
                    );
                }
                let want =
                    last_bytes.map_or(FIRST_PREV.to_owned(), |b| hex(&sha256(&[b.as_bytes()])));
                if prev.as_deref() != Some(want.as_str()) && first_break.is_none() {
                    // The leaf before changed, or this one's `prev` did: either way the
                    // chain breaks between them; the earlier one is named.
                    let at = i.saturating_sub(1);
                    let reason = if i == 0 {
                        "the first leaf does not start the chain".to_owned()
                    } else {
                        format!(
                            "the hash of leaf {at} is not the prev of leaf {i}: leaf {at} (or leaf {i}'s prev) was changed"
                        )
                    };
                    note_break(
                        Break {
                            seq: Some(at),
                            reason,
                        },
                        &mut first_break,
                    );
                }
                last_bytes = Some(bytes);
                hashes.push(merkle::leaf_hash(bytes.as_bytes()));
            }
        }
    }
    let n = hashes.len() as u64;

    // Checkpoints: signed by a known key, and roots that the leaves give.
    let mut checkpoints = 0;
    let mut verified_size = 0;
    let mut verified_root = None;
    let mut covered = 0u64;
    for note in &notes {
        let c = match open_any(note, keys) {
            Ok(c) => c,
            Err(e) => {
                note_break(
                    Break {
                        seq: None,
                        reason: format!("a checkpoint does not verify: {e}"),
                    },
                    &mut first_break,
                );
                continue;
            }
        };
        if c.size > n {
            note_break(
                Break {
                    seq: Some(n),
                    reason: format!(
                        "the checkpoint of size {} covers leaves the export lacks: leaves {n} to {} are missing",
                        c.size,
                        c.size - 1
                    ),
                },
                &mut first_break,
            );
            continue;
        }
        if merkle::root(&hashes[..c.size as usize]) != c.root {
            note_break(
                Break {
                    seq: Some(covered.min(c.size.saturating_sub(1))),
                    reason: format!(
                        "the leaves do not give the root of the checkpoint of size {}: a leaf from {covered} to {} was changed",
                        c.size,
                        c.size.saturating_sub(1)
                    ),
                },
                &mut first_break,
            );
            continue;
        }
        checkpoints += 1;
        covered = covered.max(c.size);
        if c.size >= verified_size {
            verified_size = c.size;
            verified_root = Some(B64.encode(c.root));
        }
    }
    if checkpoints == 0 {
        note_break(
            Break {
                seq: None,
                reason: "no checkpoint signed by a known key verifies".to_owned(),
            },
            &mut first_break,
        );
    } else if covered < n {
        note_break(
            Break {
                seq: Some(covered),
                reason: format!(
                    "leaves {covered} to {} are covered by no signed checkpoint",
                    n - 1
                ),
            },
            &mut first_break,
        );
    }
    if let Some(t) = trusted {
        if t.size > n {
            note_break(
                Break {
                    seq: Some(n),
                    reason: format!(
                        "the trusted checkpoint of size {} is past the export's end: leaves {n} to {} were removed",
                        t.size,
                        t.size - 1
                    ),
                },
                &mut first_break,
            );
        } else if merkle::root(&hashes[..t.size as usize]) != t.root {
            note_break(
                Break {
                    seq: None,
                    reason: format!(
                        "the export is not consistent with the trusted checkpoint of size {}",
                        t.size
                    ),
                },
                &mut first_break,
            );
        }
    }
    Ok(Report {
        verified: first_break.is_none(),
        leaves: n,
        checkpoints,
        verified_size,
        verified_root,
        first_break,
    })
}

/// Opens a signed checkpoint with whichever of `keys` names its origin.
fn open_any(note: &str, keys: &[Verifier]) -> Result<Checkpoint, TlogError> {
    let origin = note.lines().next().unwrap_or("");
    Checkpoint::open(note, origin, keys).and_then(|c| {
        if keys.iter().any(|k| k.name == c.origin) {
            Ok(c)
        } else {
            Err(TlogError::OriginMismatch {
                expected: keys[0].name.clone(),
                found: c.origin,
            })
        }
    })
}

#[cfg(test)]
mod tests;
