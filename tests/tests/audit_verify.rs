//! `stelectl audit verify`, the auditor's offline check, as the real binary: no server,
//! no secret; exit 0 for a verified trail, 1 for a broken one (the first break named on
//! stderr and in the JSON report), 2 for input it cannot check. The trails are made here
//! with the log's formats (the node does not write its audit log yet).

use std::path::Path;
use std::process::Command;

use stele_tlog::checkpoint::Checkpoint;
use stele_tlog::merkle;
use stele_tlog::note::Signer;
use stele_tlog::verify::FIRST_PREV;

const ORIGIN: &str = "stele/test/audit/n1";

fn sha256_hex(b: &[u8]) -> String {
    // The chain's hash, computed apart from the crate under test (coreutils).
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.split_whitespace().next().expect("digest").to_owned()
}

/// NDJSON lines of a trail of `n` leaves with a checkpoint every 5 and at the end.
fn trail(n: u64, signer: &Signer) -> Vec<String> {
    let mut lines = Vec::new();
    let mut hashes = Vec::new();
    let mut prev = FIRST_PREV.to_owned();
    for seq in 0..n {
        let leaf = format!(
            r#"{{"event":"version-removed","outcome":"ok","prev":"{prev}","seq":{seq},"target":{{"bucket":"b","key":"k{seq}"}}}}"#
        );
        prev = sha256_hex(leaf.as_bytes());
        hashes.push(merkle::leaf_hash(leaf.as_bytes()));
        lines.push(leaf);
        if (seq + 1) % 5 == 0 || seq + 1 == n {
            let note = Checkpoint::new(ORIGIN, seq + 1, merkle::root(&hashes))
                .sign(&[signer])
                .expect("sign");
            lines.push(serde_json::json!({ "checkpoint": note }).to_string());
        }
    }
    lines
}

fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").expect("write");
    p.to_str().expect("path").to_owned()
}

/// (exit code, stdout, stderr)
fn verify(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    stele_tests::stelectl_offline(&all)
}

#[test]
fn the_verifier_names_each_tampering_and_passes_an_intact_trail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::from_seed(ORIGIN, &[11; 32]).expect("key");
    let key = signer.verifier().encode();
    let key_file = dir.path().join("audit.pub");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    let lines = trail(23, &signer);

    let good = write(dir.path(), "good.ndjson", &lines);
    let (code, out, err) = verify(&[&good, "--key", key_file.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json report");
    assert_eq!(report["verified"], true);
    assert_eq!(report["leaves"], 23);
    assert!(err.contains("verified: 23 leaves"), "{err}");

    let leaf = |t: &[String], seq: u64| {
        t.iter()
            .position(|l| l.contains(&format!(r#""seq":{seq},"#)))
            .expect("leaf")
    };
    // One byte of one stored event changed.
    let mut t = lines.clone();
    let i = leaf(&t, 13);
    t[i] = t[i].replacen("k13", "k14", 1);
    let (code, out, err) = verify(&[&write(dir.path(), "byte.ndjson", &t), "--key", &key]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("BROKEN at seq 13"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json report");
    assert_eq!(report["first_break"]["seq"], 13);

    // The last 3 events removed (and, with them, the checkpoints covering them): only a
    // checkpoint kept from before shows it.
    let kept = dir.path().join("kept.checkpoint");
    let last: serde_json::Value = serde_json::from_str(lines.last().expect("line")).expect("json");
    std::fs::write(&kept, last["checkpoint"].as_str().expect("note")).expect("kept");
    let cut: Vec<String> = lines[..leaf(&lines, 20)].to_vec();
    let cut_file = write(dir.path(), "cut.ndjson", &cut);
    let (code, _, _) = verify(&[&cut_file, "--key", &key]);
    assert_eq!(code, 0, "a clean prefix verifies alone");
    let (code, out, err) = verify(&[
        &cut_file,
        "--key",
        &key,
        "--trust",
        kept.to_str().expect("path"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("BROKEN at seq 20") && err.contains("removed"),
        "{err}"
    );

    // Two events swapped.
    let mut t = lines.clone();
    let (a, b) = (leaf(&t, 7), leaf(&t, 8));
    t.swap(a, b);
    let (code, _, err) = verify(&[&write(dir.path(), "swap.ndjson", &t), "--key", &key]);
    assert_eq!(code, 1);
    assert!(err.contains("BROKEN at seq 7"), "{err}");

    // The whole trail recomputed and signed without the log's key.
    let forger = Signer::from_seed(ORIGIN, &[12; 32]).expect("key");
    let forged = write(dir.path(), "forged.ndjson", &trail(23, &forger));
    let (code, _, err) = verify(&[&forged, "--key", &key]);
    assert_eq!(code, 1);
    assert!(err.contains("no signature by a known key"), "{err}");

    // Input it cannot check at all.
    let (code, _, err) = verify(&[&good, "--key", "not-a-key"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = verify(&[
        dir.path().join("missing").to_str().expect("path"),
        "--key",
        &key,
    ]);
    assert_eq!(code, 2);
}
