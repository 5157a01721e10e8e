//! Kill -9 at random instants of PUTs: after each restart, every acknowledged version is
//! there, whole; no unacknowledged write left a partial version or a stray file; earlier
//! versions are untouched.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

fn driver() -> Command {
    Command::new(env!("CARGO_BIN_EXE_engine-driver"))
}

#[test]
fn sigkill_during_puts_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_owned();
    let rounds: u64 = std::env::var("STELE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut rng = rand::rng();
    let mut acked_all: HashSet<(String, String)> = HashSet::new();
    let mut seen_before: HashSet<(String, String)> = HashSet::new();
    let mut kills_mid_write = 0;
    for round in 0..rounds {
        let mut child = driver()
            .args(["put", &data, &round.to_string(), "100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn driver");
        let stdout = child.stdout.take().expect("stdout");
        let acked = Arc::new(Mutex::new(Vec::new()));
        let sink = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                if parts.next() == Some("ACK") {
                    let k = parts.next().unwrap_or_default().to_owned();
                    let v = parts.next().unwrap_or_default().to_owned();
                    sink.lock().expect("lock").push((k, v));
                }
            }
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(150..1200)));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        reader.join().expect("reader");
        let acked = acked.lock().expect("lock").clone();
        if !acked.is_empty() {
            kills_mid_write += 1;
        }
        acked_all.extend(acked);

        let out = driver()
            .args(["verify", &data])
            .output()
            .expect("run verify");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: verify failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let present: HashSet<(String, String)> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("OK "))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let lost: Vec<_> = acked_all.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged versions lost: {lost:?}"
        );
        let vanished: Vec<_> = seen_before.difference(&present).collect();
        assert!(
            vanished.is_empty(),
            "round {round}: earlier versions vanished: {vanished:?}"
        );
        seen_before = present;
    }
    assert!(
        kills_mid_write >= rounds / 2,
        "most kills should land while writes are being acknowledged"
    );
    assert!(acked_all.len() as u64 > rounds, "the driver made progress");
}
