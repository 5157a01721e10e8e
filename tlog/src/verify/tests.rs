//! Tampering of each kind the audit design lists, caught with the place named.

use super::*;
use crate::note::Signer;

const ORIGIN: &str = "stele/3f9c1e/audit/n1";

fn key() -> Signer {
    Signer::from_seed(ORIGIN, &[42; 32]).expect("key")
}

/// A trail of `n` leaves, each as the log writes it (canonical JSON, sorted keys), with a
/// signed checkpoint after every `every` leaves and one at the end.
fn trail(n: u64, every: u64, signer: &Signer) -> Vec<String> {
    let mut lines = Vec::new();
    let mut hashes = Vec::new();
    let mut prev = FIRST_PREV.to_owned();
    for seq in 0..n {
        let leaf = format!(
            r#"{{"actor":{{"user":"veeam"}},"event":"version-created","outcome":"ok","prev":"{prev}","seq":{seq},"target":{{"bucket":"b","key":"k{seq}"}}}}"#
        );
        prev = hex(&sha256(&[leaf.as_bytes()]));
        hashes.push(merkle::leaf_hash(leaf.as_bytes()));
        lines.push(leaf);
        if (seq + 1) % every == 0 || seq + 1 == n {
            let c = Checkpoint::new(ORIGIN, seq + 1, merkle::root(&hashes));
            let note = c.sign(&[signer]).expect("sign");
            lines.push(serde_json::json!({ "checkpoint": note }).to_string());
        }
    }
    lines
}

fn check(lines: &[String], trusted: Option<&str>) -> Report {
    let export = lines.join("\n") + "\n";
    verify(&export, &[key().verifier()], trusted).expect("usable")
}

fn broken_at(r: &Report) -> Option<u64> {
    assert!(!r.verified, "verified: {r:?}");
    r.first_break.as_ref().and_then(|b| b.seq)
}

/// The line index of leaf `seq` in `lines`.
fn leaf_line(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| l.contains(&format!(r#""seq":{seq},"#)))
        .expect("leaf")
}

#[test]
fn an_untouched_trail_verifies() {
    let lines = trail(25, 4, &key());
    let r = check(&lines, None);
    assert!(r.verified, "{r:?}");
    assert_eq!((r.leaves, r.verified_size), (25, 25));
    assert_eq!(r.checkpoints, 7);
}

#[test]
fn one_changed_byte_is_named_by_its_seq() {
    let lines = trail(25, 4, &key());
    for seq in [0, 7, 12, 24] {
        let mut t = lines.clone();
        let i = leaf_line(&t, seq);
        t[i] = t[i].replace("version-created", "version-creates");
        assert_eq!(broken_at(&check(&t, None)), Some(seq), "leaf {seq}");
    }
    // A byte that breaks the JSON itself.
    let mut t = lines.clone();
    let i = leaf_line(&t, 9);
    t[i] = t[i].replacen('{', "[", 1);
    assert_eq!(broken_at(&check(&t, None)), Some(9));
}

#[test]
fn the_last_leaves_removed_are_found() {
    let lines = trail(25, 4, &key());
    // Leaves cut, the checkpoints left: the last checkpoint covers leaves that are gone.
    let mut t = lines.clone();
    for seq in (22..25).rev() {
        t.remove(leaf_line(&t, seq));
    }
    assert_eq!(broken_at(&check(&t, None)), Some(22));
    // Leaves cut with the checkpoints that covered them: consistent by itself, caught
    // against a checkpoint the auditor kept from before.
    let kept = lines
        .iter()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["checkpoint"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("a checkpoint");
    let cut: Vec<String> = lines[..leaf_line(&lines, 20)].to_vec();
    assert!(check(&cut, None).verified, "a clean prefix verifies alone");
    assert_eq!(broken_at(&check(&cut, Some(&kept))), Some(20));
}

#[test]
fn two_swapped_leaves_are_found() {
    let mut t = trail(25, 4, &key());
    let (a, b) = (leaf_line(&t, 10), leaf_line(&t, 11));
    t.swap(a, b);
    assert_eq!(broken_at(&check(&t, None)), Some(10));
}

#[test]
fn a_trail_recomputed_without_the_key_is_refused() {
    let forger = Signer::from_seed(ORIGIN, &[7; 32]).expect("key");
    // The whole trail made again (whatever it now says) and signed with another key.
    let forged = trail(25, 4, &forger);
    let r = check(&forged, None);
    assert!(!r.verified);
    assert_eq!(r.checkpoints, 0);
    let reason = r.first_break.expect("break").reason;
    assert!(reason.contains("no signature by a known key"), "{reason}");
    // A checkpoint of the real log changed after signing.
    let mut t = trail(8, 4, &key());
    let last = t.len() - 1;
    t[last] = t[last].replace("\\n8\\n", "\\n9\\n");
    assert!(!check(&t, None).verified);
}

#[test]
fn leaves_past_the_last_checkpoint_are_not_covered() {
    let mut t = trail(8, 4, &key());
    t.pop();
    assert_eq!(broken_at(&check(&t, None)), Some(4));
}

#[test]
fn unusable_input_is_an_error_not_a_verdict() {
    assert!(verify("", &[key().verifier()], None).is_err());
    assert!(verify("{}\n", &[], None).is_err());
    assert!(verify("{}\n", &[key().verifier()], Some("not a checkpoint")).is_err());
}
