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
    if !arg.contains('+') {
        if !path.exists() {
            return Err("no such file, and not a key (name+id+base64)".to_owned());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{arg}: {e}"))?;
        if text.contains("\n\n\u{2014} ") {
            return Err(
                "this file holds a signed checkpoint, not a key (give it as --trust)".to_owned(),
            );
        }
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    Ok(arg.to_owned())
}

/// The `--key` arguments as verifier keys, or the unusable-input exit.
fn known_keys(keys: &[String]) -> Result<Vec<Verifier>, ExitCode> {
    keys.iter()
        .map(|k| {
            key_text(k)
                .and_then(|t| Verifier::parse(&t).map_err(|e| e.to_string()))
                .map_err(|e| unusable(&format!("--key {k}: {e}")))
        })
        .collect()
}

pub(super) fn verify(exports: &[PathBuf], keys: &[String], trust: Option<&Path>) -> ExitCode {
    let known = match known_keys(keys) {
        Ok(k) => k,
        Err(code) => return code,
    };
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

/// The three files of a report folder.
fn read_report(dir: &Path) -> Result<(Vec<u8>, String, Vec<u8>), String> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let sig = String::from_utf8(read("attestation.sig")?)
        .map_err(|_| "attestation.sig is not UTF-8".to_owned())?;
    Ok((read("attestation.json")?, sig, read("rows.csv")?))
}

pub(super) fn verify_report(dir: &Path, keys: &[String]) -> ExitCode {
    let known = match known_keys(keys) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let (attestation, sig, rows) = match read_report(dir) {
        Ok(files) => files,
        Err(e) => return unusable(&e),
    };
    let (a, checked) = match stele_tlog::report::verify(&attestation, &sig, &rows, &known) {
        Ok(r) => r,
        Err(e) => return unusable(&e.to_string()),
    };
    match serde_json::to_string_pretty(&checked) {
        Ok(j) => println!("{j}"),
        Err(e) => return unusable(&e.to_string()),
    }
    if checked.verified {
        eprintln!(
            "verified: {} versions of {}{} at {} (trusted time)",
            checked.rows,
            a.scope.bucket,
            if a.scope.prefix.is_empty() {
                String::new()
            } else {
                format!("/{}", a.scope.prefix)
            },
            a.generated_at.trusted
        );
        ExitCode::SUCCESS
    } else {
        for p in &checked.problems {
            eprintln!("NOT VERIFIED: {p}");
        }
        ExitCode::from(1)
    }
}

pub(super) fn diff(old: &Path, new: &Path, keys: &[String]) -> ExitCode {
    let known = match known_keys(keys) {
        Ok(k) => k,
        Err(code) => return code,
    };
    // Both reports must be genuine before their rows mean anything.
    let load = |dir: &Path| -> Result<_, String> {
        let (attestation, sig, rows) = read_report(dir)?;
        let (a, checked) = stele_tlog::report::verify(&attestation, &sig, &rows, &known)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if !checked.verified {
            return Err(format!(
                "{} does not verify: {}",
                dir.display(),
                checked.problems.join("; ")
            ));
        }
        let (_, rows) = stele_tlog::report::read_rows(&rows)
            .map_err(|e| format!("{}: rows.csv: {e}", dir.display()))?;
        Ok((a, rows))
    };
    let ((a, ra), (b, rb)) = match (load(old), load(new)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return unusable(&e),
    };
    if let Err(e) = stele_tlog::report::comparable(&a, &b) {
        return unusable(&e.to_string());
    }
    let violations = stele_tlog::report::diff(&a, &ra, &b, &rb);
    match serde_json::to_string_pretty(&violations) {
        Ok(j) => println!("{j}"),
        Err(e) => return unusable(&e.to_string()),
    }
    if violations.is_empty() {
        eprintln!(
            "no violation: every version protected at {} is in the report of {}",
            a.generated_at.trusted, b.generated_at.trusted
        );
        ExitCode::SUCCESS
    } else {
        for v in &violations {
            eprintln!(
                "VIOLATION {}/{} version {}: {}",
                v.bucket, v.key, v.version_id, v.problem
            );
        }
        ExitCode::from(1)
    }
}

pub(super) fn verify_events(file: &Path, keys: &[String]) -> ExitCode {
    let known = match known_keys(keys) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let text = match std::fs::read(file) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return unusable(&format!("{}: {e}", file.display())),
    };
    let report = match stele_tlog::verify::verify_events(&text, &known) {
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
                "verified: {} events, each in the signed log of size {}",
                report.events, report.size
            );
            ExitCode::SUCCESS
        }
        Some(b) => {
            let at = b.seq.map_or(String::new(), |s| format!(" at seq {s}"));
            eprintln!("BROKEN{at}: {}", b.reason);
            ExitCode::from(1)
        }
    }
}
