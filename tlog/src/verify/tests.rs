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
    // A checkpoint of the real log whose root was changed after signing.
    let mut t = trail(8, 4, &key());
    let last = t.len() - 1;
    let note: serde_json::Value = serde_json::from_str(&t[last]).expect("json");
    let text = note["checkpoint"].as_str().expect("note");
    let root_line = text.lines().nth(2).expect("root");
    let flipped = if root_line.starts_with('A') { "B" } else { "A" };
    let edited = text.replacen(root_line, &format!("{flipped}{}", &root_line[1..]), 1);
    t[last] = serde_json::json!({ "checkpoint": edited }).to_string();
    let r = check(&t, None);
    let reason = r.first_break.expect("break").reason;
    assert!(
        reason.contains("signature by stele/3f9c1e/audit/n1 does not verify"),
        "{reason}"
    );
}

#[test]
fn checkpoints_repeated_or_out_of_order_change_nothing_and_another_signer_does_not_suffice() {
    let mut t = trail(12, 4, &key());
    let cps: Vec<String> = t
        .iter()
        .filter(|l| l.contains("checkpoint"))
        .cloned()
        .collect();
    for _ in 0..50 {
        t.extend(cps.iter().rev().cloned());
    }
    let r = check(&t, None);
    assert!(r.verified, "{r:?}");
    assert_eq!((r.checkpoints, r.verified_size), (3, 12));
    // A trail whose checkpoint another key (a witness's) signed, not the log's.
    let witness = Signer::from_seed("witness.example", &[1; 32]).expect("key");
    let mut hashes = Vec::new();
    let leaves: Vec<String> = trail(4, 4, &key())
        .into_iter()
        .filter(|l| !l.contains("checkpoint"))
        .collect();
    for l in &leaves {
        hashes.push(merkle::leaf_hash(l.as_bytes()));
    }
    let note = Checkpoint::new(ORIGIN, 4, merkle::root(&hashes))
        .sign(&[&witness])
        .expect("sign");
    let mut w = leaves.clone();
    w.push(serde_json::json!({ "checkpoint": note }).to_string());
    let r = verify(&(w.join("\n") + "\n"), &[key().verifier()], None).expect("usable");
    assert!(!r.verified);
}

#[test]
fn roots_at_many_sizes_match_the_tree() {
    let hashes: Vec<Hash> = (0..100u32)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let sizes: Vec<u64> = (0..=100).collect();
    let roots = roots_at(&hashes, &sizes);
    for (n, r) in roots.iter().enumerate() {
        assert_eq!(*r, merkle::root(&hashes[..n]), "size {n}");
    }
}

#[test]
fn leaves_past_the_last_checkpoint_are_not_covered() {
    let mut t = trail(8, 4, &key());
    t.pop();
    assert_eq!(broken_at(&check(&t, None)), Some(4));
}

#[test]
fn unusable_input_is_an_error_not_a_verdict() {
    // A wiped export is a broken trail, not unusable input.
    let r = verify("", &[key().verifier()], None).expect("usable");
    assert!(!r.verified);
    assert!(verify("{}\n", &[], None).is_err());
    assert!(verify("{}\n", &[key().verifier()], Some("not a checkpoint")).is_err());
    let other = Signer::from_seed("another/log", &[2; 32]).expect("key");
    assert!(verify("{}\n", &[key().verifier(), other.verifier()], None).is_err());
}
