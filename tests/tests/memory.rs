//! A 5 GiB PUT and GET keep the process's RSS within 64 MiB of its idle RSS.

use std::process::Command;

#[test]
#[ignore = "writes 7.5 GiB of shards; run by .ci/run with --include-ignored"]
fn five_gib_put_and_get_stay_within_64_mib_of_idle_rss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gib = std::env::var("STELE_BIG_GIB").unwrap_or_else(|_| "5".into());
    let out = Command::new(env!("CARGO_BIN_EXE_engine-driver"))
        .args(["big", dir.path().to_str().expect("path"), &gib])
        .output()
        .expect("run driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RSS "))
        .expect("RSS line");
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|p| p.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .expect("field")
    };
    let (put, get) = (field("put="), field("get="));
    eprintln!("{line}");
    assert!(put < 64 * 1024, "PUT grew RSS by {put} KiB");
    assert!(get < 64 * 1024, "GET grew RSS by {get} KiB");
}
