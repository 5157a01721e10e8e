//! A small binary that drives the engine directly, for tests that must kill a real process.
//!
//! - `engine-driver put DATA ROUND COUNT`: puts COUNT objects whose content is derived from
//!   a seed kept in their user metadata; prints `ACK key version` after each acknowledged put.
//! - `engine-driver verify DATA`: opens the node (running crash recovery), reads every
//!   version back and checks it against its seed and ETag, checks that no unfinished write
//!   left a trace (pending records, temporary files, unreferenced shard files); prints
//!   `OK key version` per version and exits non-zero on any violation.
//! - `engine-driver big DATA GIB`: puts then gets a GIB-sized object, printing the peak RSS
//!   above the idle RSS for each (`RSS put=.. get=..` in KiB).
//! - `engine-driver plant-lifecycle DATA BUCKET`: writes, as BUCKET's lifecycle
//!   configuration, a record of a format this release does not know (as a newer release
//!   would), for tests of how workers meet unreadable metadata.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use stele::checksum::Md5;
use stele::{BucketName, NodeConfig, ObjectKey, PutOptions, Store, SystemClock};

fn open(data: &Path) -> anyhow::Result<Store> {
    Ok(Store::open(
        NodeConfig::embedded(data),
        Arc::new(SystemClock),
    )?)
}

fn bucket() -> BucketName {
    BucketName::new("crash").unwrap_or_else(|_| unreachable!("valid literal"))
}

/// Deterministic content for a seed: sizes from 0 to ~3 MiB, cheap to generate.
pub fn content(seed: u64) -> Vec<u8> {
    let len = match seed % 5 {
        0 => 0,
        1 => (seed % 97) as usize,
        _ => ((seed.wrapping_mul(2_654_435_761)) % (3 << 20)) as usize,
    };
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn put(data: &Path, round: u64, count: u64) -> anyhow::Result<()> {
    let store = open(data)?;
    let b = bucket();
    if store.bucket(&b).is_err() {
        store.create_bucket(&b, false)?;
    }
    // Every round writes new versions of the same keys; older ones must stay.
    store.set_versioning(&b, stele::meta::Versioning::Enabled)?;
    let mut out = std::io::stdout();
    for i in 0..count {
        let seed = round * 1_000_000 + i;
        let key = ObjectKey::new(format!("k{}", i % 13))?;
        let bytes = content(seed);
        let opts = PutOptions {
            user_meta: vec![("seed".into(), seed.to_string())],
            content_length: Some(bytes.len() as u64),
            ..Default::default()
        };
        let chunks: Vec<std::io::Result<Bytes>> = bytes
            .chunks(100_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let done = store
            .put_object(&b, &key, opts, futures::stream::iter(chunks))
            .await?;
        writeln!(out, "ACK {key} {}", done.version_id)?;
        out.flush()?;
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

async fn verify(data: &Path) -> anyhow::Result<()> {
    let store = open(data)?;
    let b = bucket();
    if store.bucket(&b).is_err() {
        println!("VERSIONS 0");
        return Ok(());
    }
    if !store.meta().pending().context("pending")?.is_empty() {
        bail!("pending records survived recovery");
    }
    let versions = store.list_versions(&b, None, usize::MAX)?;
    let mut referenced = HashSet::new();
    for (key, rec) in &versions {
        let seed: u64 = rec
            .user_meta
            .iter()
            .find(|(k, _)| k == "seed")
            .context("seed")?
            .1
            .parse()?;
        let expected = content(seed);
        let read = store
            .get_object(&b, key, Some(&rec.version_ref()), None)
            .await?;
        let mut got = Vec::with_capacity(expected.len());
        let mut body = read.body;
        while let Some(c) = body.next().await {
            got.extend_from_slice(&c?);
        }
        let mut md5 = Md5::default();
        md5.update(&got);
        if got != expected || hex::encode(md5.finish()) != rec.etag || rec.size != got.len() as u64
        {
            bail!("BAD {key} {}: content differs", rec.version_id);
        }
        for seg in &rec.segments {
            for (i, s) in seg.shards.iter().enumerate() {
                if s.root.is_some() {
                    referenced.insert(format!("{}.{i}", seg.id));
                }
            }
        }
        println!("OK {key} {}", rec.version_id);
    }
    for d in &store.config().disks {
        let mut tmp = Vec::new();
        walk(&d.path.join("tmp"), &mut tmp);
        if !tmp.is_empty() {
            bail!("temporary files left: {tmp:?}");
        }
        let mut files = Vec::new();
        walk(&d.path.join("shards"), &mut files);
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !referenced.contains(name) {
                bail!("unreferenced shard file {}", f.display());
            }
        }
    }
    println!("VERSIONS {}", versions.len());
    Ok(())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Samples RSS every 20 ms until stopped; returns the peak.
fn sample_peak(stop: Arc<AtomicBool>, peak: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            peak.fetch_max(rss_kib(), Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    })
}

async fn big(data: &Path, gib: u64) -> anyhow::Result<()> {
    let store = open(data)?;
    let b = bucket();
    store.create_bucket(&b, false)?;
    let key = ObjectKey::new("big")?;
    // Warm up: one small put and get so allocator arenas and thread pools exist.
    store
        .put_object(
            &b,
            &ObjectKey::new("warm")?,
            PutOptions::default(),
            futures::stream::iter(vec![Ok(Bytes::from(vec![1u8; 4 << 20]))]),
        )
        .await?;
    let idle = rss_kib();
    let block = Bytes::from(
        content(3)
            .into_iter()
            .cycle()
            .take(1 << 20)
            .collect::<Vec<u8>>(),
    );
    let total = gib << 30;
    let chunks = (0..(total >> 20)).map(move |i| {
        let mut c = block.to_vec();
        c[..8].copy_from_slice(&i.to_le_bytes());
        Ok(Bytes::from(c))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let t = sample_peak(stop.clone(), peak.clone());
    store
        .put_object(
            &b,
            &key,
            PutOptions::default(),
            futures::stream::iter(chunks),
        )
        .await?;
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    let put_peak = peak.load(Ordering::Relaxed);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let t = sample_peak(stop.clone(), peak.clone());
    let read = store.get_object(&b, &key, None, None).await?;
    let mut body = read.body;
    let mut n = 0u64;
    while let Some(c) = body.next().await {
        n += c?.len() as u64;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    if n != total {
        bail!("read {n} bytes of {total}");
    }
    println!(
        "RSS idle={idle} put={} get={}",
        put_peak.saturating_sub(idle),
        peak.load(Ordering::Relaxed).saturating_sub(idle)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().context("missing argument");
    match arg(1)?.as_str() {
        "put" => put(Path::new(&arg(2)?), arg(3)?.parse()?, arg(4)?.parse()?).await,
        "verify" => verify(Path::new(&arg(2)?)).await,
        "big" => big(Path::new(&arg(2)?), arg(3)?.parse()?).await,
        "plant-lifecycle" => {
            let store = open(Path::new(&arg(2)?))?;
            let key = format!("lifecycle/{}", arg(3)?);
            let cf = stele::meta::Cf::Cluster;
            Ok(store.meta().put_raw(cf, key.as_bytes(), &[99, 0])?)
        }
        other => bail!("unknown command {other}"),
    }
}
