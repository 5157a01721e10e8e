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
//! - every checkpoint names the log (the keys' name) and is signed by the log's key
//!   (signatures of unknown keys are ignored; a checkpoint without the log's signature
//!   breaks the trail, as a trail recomputed and signed with another key must), and its
//!   root is the RFC 6962 root of the leaves it covers, so leaves a checkpoint covers
//!   cannot be changed or cut off;
//! - no leaf lies after the last checkpoint;
//! - with a trusted checkpoint kept from earlier (`--trust`), the export still holds its
//!   leaves unchanged.
//!
//! What an export alone cannot show: a tail cut off together with every checkpoint that
//! covered it leaves a shorter trail that is consistent by itself. Only a checkpoint kept
//! outside the node (`--trust`: an earlier export's, a webhook's copy) shows that cut.

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
    /// The leaf at fault when the chain names it; for a root that the leaves do not give,
    /// the first leaf of the range at fault (between the last checkpoint that held and the
    /// one that failed); `None` when no leaf can be named.
    pub seq: Option<u64>,
    /// What does not hold there.
    pub reason: String,
}

/// What the check found (`stelectl audit verify` prints it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check held.
    pub verified: bool,
    /// The log checked: the name of its keys, which its checkpoints must carry.
    pub origin: String,
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

/// Checks the export `export` against the log's keys `keys` (all of one name, the log's
/// origin: its key and, after a rotation, its earlier keys), and, if given, against
/// `trusted`, a signed checkpoint kept from an earlier export. Runs in one pass over the
/// leaves: each distinct checkpoint size costs O(log n) more hashes.
///
/// # Errors
/// [`TlogError::Malformed`] for input that cannot be checked at all: no key, keys of
/// different names, or a trusted checkpoint that does not open with the keys. A trail
/// that does not verify (an empty one included) is no error: the [`Report`] names its
/// first break.
pub fn verify(export: &str, keys: &[Verifier], trusted: Option<&str>) -> Result<Report, TlogError> {
    let unusable = |reason: &str| TlogError::Malformed {
        what: "export",
        reason: reason.to_owned(),
    };
    let Some(origin) = keys.first().map(|k| k.name.clone()) else {
        return Err(unusable("no public key to check against"));
    };
    if keys.iter().any(|k| k.name != origin) {
        return Err(unusable("the keys name different logs"));
    }
    let lines: Vec<&str> = export.lines().filter(|l| !l.trim().is_empty()).collect();
    // The wrong file or the wrong key is no tampering: said as such (exit 2), not as a
    // break.
    for line in &lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v.get("leaf").is_some() && v.get("proof").is_some() {
            return Err(unusable(
                "this is a query answer (events with proofs), not an export: check it with `audit verify-events`",
            ));
        }
        if let Some(note) = v.get("checkpoint").and_then(|c| c.as_str()) {
            let named = note.lines().next().unwrap_or("");
            if named != origin {
                return Err(unusable(&format!(
                    "the export is the log {named:?}'s, the key the log {origin:?}'s: give that log's key"
                )));
            }
            break;
        }
    }
    let trusted = trusted
        .map(|t| Checkpoint::open(t, &origin, keys))
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

    // Checkpoints: the log's, signed by its key; then, by size, roots the leaves give.
    let mut opened: Vec<Checkpoint> = Vec::new();
    for note in &notes {
        match Checkpoint::open(note, &origin, keys) {
            Ok(c) => opened.push(c),
            Err(e) => note_break(
                Break {
                    seq: None,
                    reason: format!("a checkpoint does not verify: {e}"),
                },
                &mut first_break,
            ),
        }
    }
    opened.sort_by_key(|c| c.size);
    opened.dedup();
    let sizes: Vec<u64> = opened.iter().map(|c| c.size.min(n)).collect();
    let roots = roots_at(&hashes, &sizes);
    let mut checkpoints = 0;
    let mut covered = 0u64;
    let mut verified_root = None;
    for (c, root) in opened.iter().zip(&roots) {
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
        if *root != c.root {
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
        covered = c.size;
        verified_root = Some(B64.encode(c.root));
    }
    // A trusted checkpoint first: a tail cut off is named as that, even when the cut
    // took every checkpoint of the export with it.
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
        } else if roots_at(&hashes, &[t.size]).first() != Some(&t.root) {
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
    if lines.is_empty() {
        note_break(
            Break {
                seq: None,
                reason: "the export is empty".to_owned(),
            },
            &mut first_break,
        );
    } else if checkpoints == 0 {
        note_break(
            Break {
                seq: None,
                reason: "no checkpoint signed by the log's key verifies".to_owned(),
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
    Ok(Report {
        verified: first_break.is_none(),
        origin,
        leaves: n,
        checkpoints,
        verified_size: covered,
        verified_root,
        first_break,
    })
}

/// The RFC 6962 roots of the first `sizes[i]` leaves of `hashes`, for `sizes` in
/// ascending order (each at most `hashes.len()`): one pass, keeping the stack of complete
/// subtrees (a "compact range"), so each size costs O(log n) hashes beyond the pass.
fn roots_at(hashes: &[Hash], sizes: &[u64]) -> Vec<Hash> {
    // stack[i] = (height, hash) of complete subtrees, left to right, heights decreasing.
    let mut stack: Vec<(u32, Hash)> = Vec::new();
    let mut out = Vec::with_capacity(sizes.len());
    let mut next = sizes.iter().peekable();
    let mut done = 0u64;
    fn emit(stack: &[(u32, Hash)], out: &mut Vec<Hash>) {
        let root = match stack.split_last() {
            None => merkle::empty_root(),
            Some((last, rest)) => rest
                .iter()
                .rev()
                .fold(last.1, |acc, (_, h)| merkle::node_hash(h, &acc)),
        };
        out.push(root);
    }
    while let Some(&&size) = next.peek() {
        if size == done {
            emit(&stack, &mut out);
            next.next();
            continue;
        }
        let Some(leaf) = hashes.get(done as usize) else {
            break;
        };
        let mut cur = (0u32, *leaf);
        while let Some(&(h, left)) = stack.last() {
            if h != cur.0 {
                break;
            }
            stack.pop();
            cur = (h + 1, merkle::node_hash(&left, &cur.1));
        }
        stack.push(cur);
        done += 1;
    }
    out
}

#[cfg(test)]
mod tests;

/// What [`verify_events`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsReport {
    /// Every proof held and the checkpoint is the log's.
    pub verified: bool,
    /// Events checked.
    pub events: u64,
    /// The checkpoint's size.
    pub size: u64,
    /// The first event whose proof failed, or why none could be checked.
    pub first_break: Option<Break>,
}

/// Checks a query's answer offline: NDJSON lines `{"seq", "leaf", "proof": [base64…]}`
/// and exactly one `{"checkpoint": NOTE}`; every leaf's inclusion proof must lead to the
/// root of that checkpoint, signed by the log's key (`keys`, all of one name), every leaf
/// say its own seq, and no event appear twice. Proofs show each event is in the log
/// unchanged; they cannot show the answer left none out.
///
/// # Errors
/// [`TlogError::Malformed`] for input that cannot be checked: no key, no checkpoint, a
/// checkpoint that does not open with the keys.
pub fn verify_events(answer: &str, keys: &[Verifier]) -> Result<EventsReport, TlogError> {
    let unusable = |reason: String| TlogError::Malformed {
        what: "query answer",
        reason,
    };
    let Some(origin) = keys.first().map(|k| k.name.clone()) else {
        return Err(unusable("no public key to check against".into()));
    };
    let values: Vec<serde_json::Value> = answer
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| unusable(e.to_string())))
        .collect::<Result<_, _>>()?;
    let notes: Vec<&str> = values
        .iter()
        .filter_map(|v| v.get("checkpoint").and_then(|c| c.as_str()))
        .collect();
    let [note] = notes.as_slice() else {
        return Err(unusable(format!(
            "an answer holds one checkpoint, this one {}",
            notes.len()
        )));
    };
    if values
        .iter()
        .any(|v| v.get("checkpoint").is_none() && v.get("leaf").is_none())
    {
        return Err(unusable(
            "a line is neither an event with its proof nor the checkpoint (an export? check it with `audit verify`)"
                .into(),
        ));
    }
    let cp = Checkpoint::open(note, &origin, keys).map_err(|e| unusable(e.to_string()))?;
    let mut events = 0;
    let mut first_break = None;
    let mut seen = std::collections::HashSet::new();
    for v in values.iter().filter(|v| v.get("checkpoint").is_none()) {
        events += 1;
        let seq = v.get("seq").and_then(|s| s.as_u64());
        if let Some(s) = seq
            && !seen.insert(s)
            && first_break.is_none()
        {
            first_break = Some(Break {
                seq: Some(s),
                reason: "the event appears twice".into(),
            });
        }
        let leaf = v.get("leaf").and_then(|l| l.as_str());
        let proof: Option<Vec<Hash>> = v.get("proof").and_then(|p| p.as_array()).and_then(|a| {
            a.iter()
                .map(|h| {
                    h.as_str()
                        .and_then(|t| B64.decode(t).ok())
                        .and_then(|b| Hash::try_from(b.as_slice()).ok())
                })
                .collect()
        });
        let checked = match (seq, leaf, proof) {
            (Some(seq), Some(leaf), Some(proof)) => {
                // The leaf must also say it is at that place.
                let said = serde_json::from_str::<serde_json::Value>(leaf)
                    .ok()
                    .and_then(|l| l.get("seq").and_then(|s| s.as_u64()));
                if said != Some(seq) {
                    Err(format!("the leaf does not say seq {seq}"))
                } else {
                    merkle::verify_inclusion(
                        seq,
                        cp.size,
                        &merkle::leaf_hash(leaf.as_bytes()),
                        &proof,
                        &cp.root,
                    )
                    .map_err(|e| e.to_string())
                }
            }
            _ => Err("not an event line (seq, leaf, proof)".to_owned()),
        };
        if let Err(reason) = checked
            && first_break.is_none()
        {
            first_break = Some(Break { seq, reason });
        }
    }
    Ok(EventsReport {
        verified: first_break.is_none(),
        events,
        size: cp.size,
        first_break,
    })
}
