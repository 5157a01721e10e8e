//! `audit`: the offline check of an exported audit trail (`stele-tlog`'s verifier).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use stele_tlog::note::Verifier;

/// Exit status for input that cannot be checked (the design's 2; 1 is a broken trail).
const UNUSABLE: u8 = 2;

fn unusable(what: &str) -> ExitCode {
    eprintln!("stelectl: {what}");
    ExitCode::from(UNUSABLE)
}

/// A key given on the command line, or the first line of the file it names.
fn key_text(arg: &str) -> Result<String, String> {
    let path = Path::new(arg);
    if !arg.contains('+') && path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{arg}: {e}"))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    Ok(arg.to_owned())
}

pub(super) fn verify(exports: &[PathBuf], keys: &[String], trust: Option<&Path>) -> ExitCode {
    let mut known = Vec::new();
    for k in keys {
        match key_text(k).and_then(|t| Verifier::parse(&t).map_err(|e| e.to_string())) {
            Ok(v) => known.push(v),
            Err(e) => return unusable(&format!("--key {k}: {e}")),
        }
    }
    let mut export = String::new();
    for path in exports {
        match std::fs::read(path) {
            Ok(bytes) => {
                // A byte that is no UTF-8 is tampering like any other: the line it is in
                // no longer hashes to what the chain names, and the check says where.
                let text = String::from_utf8_lossy(&bytes);
                export.push_str(&text);
                if !text.ends_with('\n') {
                    export.push('\n');
                }
            }
            Err(e) => return unusable(&format!("{}: {e}", path.display())),
        }
    }
    let trusted = match trust.map(std::fs::read_to_string).transpose() {
        Ok(t) => t,
        Err(e) => return unusable(&format!("--trust: {e}")),
    };
    let report = match stele_tlog::verify::verify(&export, &known, trusted.as_deref()) {
        Ok(r) => r,
        Err(e) => return unusable(&e.to_string()),
    };
    match serde_json::to_string_pretty(&report) {
        Ok(j) => println!("{j}"),
        Err(e) => return unusable(&e.to_string()),
    }
    match &report.first_break {
        None => {
            eprintln!(
                "verified: {} leaves, {} checkpoints, signed up to size {}",
                report.leaves, report.checkpoints, report.verified_size
            );
            if trust.is_none() {
                eprintln!(
                    "note: without --trust, a tail cut off together with its checkpoints \
                     cannot show; keep this export's last checkpoint for the next check"
                );
            }
            ExitCode::SUCCESS
        }
        Some(b) => {
            let at = b.seq.map_or(String::new(), |s| format!(" at seq {s}"));
            eprintln!("BROKEN{at}: {}", b.reason);
            ExitCode::from(1)
        }
    }
}
