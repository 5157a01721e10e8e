//! `scripts/bench geo` (a benchmark, not a test: root, network namespaces): PUT and GET across
//! three sites of two nodes (`stele_tests::geo`) with 10 ms round trips between sites
//! through the relay, against the same cluster with the relay adding no delay, in one
//! run; and the bytes that leave the coordinating site per object byte, counted by the
//! relay. The load generator (`stele-bench s3`) runs in site a against a1. Run with
//! `STELE_BIN_DIR` pointing at release binaries (the script does); it refuses to run
//! without, as debug servers would measure nothing useful.

use std::time::Duration;

use stele_tests::geo::GeoCluster;
use stele_tests::relay::{Dir, Shape};
use stele_tests::{ACCESS_KEY, SECRET_KEY};

/// Bytes that left site `site`: everything its nodes sent to other sites' nodes (the
/// links `site-*`, forward) and answered to connections from other sites (`*-<node of
/// site>`, reverse).
fn leaving(g: &GeoCluster, site: &str) -> u64 {
    let mut total = 0;
    for from in stele_tests::geo::SITES {
        for n in g.nodes.iter().filter(|n| n.site != from) {
            let s = g.relay.stats(&format!("{from}-{}", n.name));
            if from == site {
                total += s.fwd_bytes;
            }
            if n.site == site {
                total += s.rev_bytes;
            }
        }
    }
    total
}

fn set_delay(g: &GeoCluster, delay_ms: u64) {
    for from in stele_tests::geo::SITES {
        for n in g.nodes.iter().filter(|n| n.site != from) {
            g.relay.set(
                &format!("{from}-{}", n.name),
                Dir::Both,
                Shape {
                    delay_ms,
                    jitter_ms: 0,
                    ..Shape::default()
                },
            );
        }
    }
}

fn main() {
    if std::env::var_os("STELE_BIN_DIR").is_none() {
        eprintln!("stele-geo-bench: set STELE_BIN_DIR to the release binaries (scripts/bench geo)");
        std::process::exit(2);
    }
    let g = GeoCluster::start(&[], 5);
    let a1 = g.server("a1");
    g.in_site("a", || async {
        a1.client()
            .create_bucket()
            .bucket("bench")
            .send()
            .await
            .expect("bucket");
    });
    // Bytes leaving site a per object byte: 20 PUTs of 4 MiB through a1.
    let before = leaving(&g, "a");
    let body = vec![7u8; 4 << 20];
    g.in_site("a", || async {
        for i in 0..20 {
            a1.client()
                .put_object()
                .bucket("bench")
                .key(format!("out/{i}"))
                .body(body.clone().into())
                .send()
                .await
                .expect("put");
        }
    });
    // The relay counts bytes as it forwards them: let the last ones through.
    std::thread::sleep(Duration::from_secs(1));
    let out = leaving(&g, "a") - before;
    println!(
        "bytes leaving site a per object byte (4+2 over 3 sites, 20 x 4 MiB PUT through a1): \
         {:.3} (shards alone: 4 of 6 = 1.000)",
        out as f64 / (20.0 * f64::from(4u32 << 20))
    );
    let sizes = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "4KiB 1MiB 64MiB".into());
    let seconds = std::env::var("BENCH_SECONDS").unwrap_or_else(|_| "8".into());
    for (label, delay) in [
        ("3 sites, 10 ms round trips", 5),
        ("3 sites, no delay        ", 0),
    ] {
        set_delay(&g, delay);
        matrix(&g, label, &sizes, &seconds);
    }
    drop(g);
    // The baseline: the same six nodes and twelve disks in one site (no relay between).
    let one = GeoCluster::start_layout(&["a"], 6, &[], 0);
    matrix(&one, "1 site of six nodes      ", &sizes, &seconds);
}

/// PUT and GET by size and streams through a1, one `stele-bench s3` line each.
fn matrix(g: &GeoCluster, label: &str, sizes: &str, seconds: &str) {
    let a1 = g.server("a1");
    for size in sizes.split_whitespace() {
        for conc in [1u32, 16] {
            for op in ["put", "get"] {
                let objects = if size == "64MiB" { 16 } else { conc * 8 };
                let mut cmd = std::process::Command::new(stele_tests::workspace_bin("stele-bench"));
                cmd.args(["s3", "--endpoint", &a1.s3_url, "--bucket"])
                    .arg(format!("b-{}-{conc}", size.to_lowercase()))
                    .args(["--op", op, "--size", size, "--concurrency"])
                    .arg(conc.to_string())
                    .args(["--duration", seconds, "--objects"])
                    .arg(objects.to_string())
                    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
                let o = g.command_in("a", &cmd).output().expect("stele-bench");
                let text = String::from_utf8_lossy(&o.stdout);
                let last = text.lines().last().unwrap_or("FAILED");
                println!("{label}: {last}");
            }
        }
    }
}
