//! `stele-bench engine`: PUT and GET throughput of the engine itself (no HTTP), beside
//! this machine's bound for the same bytes on one core: MD5 + BLAKE3 + Reed-Solomon encode
//! for a PUT, BLAKE3 + copy for a GET.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use stele::checksum::Md5;
use stele::erasure::Codec;
use stele::{BucketName, EcParams, NodeConfig, ObjectKey, PutOptions, Store, SystemClock};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Engine PUT/GET throughput against a fresh node in a temporary directory.
    Engine(EngineArgs),
    /// S3 load against any endpoint: PUT / GET / LIST / mixed.
    S3(crate::s3::S3Args),
}

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// Object sizes, e.g. 1MiB,64MiB.
    #[arg(long, value_delimiter = ',', default_value = "1MiB,64MiB")]
    sizes: Vec<String>,
    /// Bytes to write per size (at least one object).
    #[arg(long, default_value = "1GiB")]
    total: String,
    /// Concurrent streams.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Erasure coding.
    #[arg(long, default_value = "4+2")]
    ec: EcParams,
    /// Parent directory for the node's data (default: the system temp directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Engine(a) => engine(a),
        BenchCommand::S3(a) => crate::s3::run(a),
    }
}

pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("bad size {s:?}"))?;
    let mul = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => anyhow::bail!("bad size unit in {s:?}"),
    };
    Ok(n * mul)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// One-core throughput (MB/s) of the work in a PUT and a GET of `buf`.
fn bounds(buf: &[u8], ec: EcParams) -> anyhow::Result<(f64, f64)> {
    let reps = (256usize << 20).div_ceil(buf.len()).max(1);
    let time = |f: &mut dyn FnMut()| {
        f();
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        t.elapsed()
    };
    let t_md5 = time(&mut || {
        let mut m = Md5::default();
        m.update(buf);
        std::hint::black_box(m.finish());
    });
    let t_blake3 = time(&mut || {
        std::hint::black_box(blake3::hash(buf));
    });
    let codec = Codec::new(ec.data, ec.parity)?;
    let block = 256 * 1024;
    let stripes: Vec<&[u8]> = buf.chunks(block * ec.data).collect();
    let mut parity = vec![vec![0u8; block]; ec.parity];
    let mut rs_err = None;
    let t_rs = time(&mut || {
        for s in &stripes {
            if s.len() != block * ec.data {
                continue;
            }
            let data: Vec<&[u8]> = s.chunks(block).collect();
            if let Err(e) = codec.encode(&data, &mut parity) {
                rs_err = Some(e);
            }
        }
    });
    if let Some(e) = rs_err {
        return Err(e.into());
    }
    let mut dst = vec![0u8; buf.len()];
    let t_copy = time(&mut || {
        dst.copy_from_slice(buf);
        std::hint::black_box(&dst);
    });
    let bytes = (buf.len() * reps) as u64;
    Ok((
        mbps(bytes, t_md5 + t_blake3 + t_rs),
        mbps(bytes, t_blake3 + t_copy),
    ))
}

/// Object bytes per second the disk under `dir` can make durable when each object byte
/// costs (K+M)/K bytes of shard data: sequential 1 MiB writes, then fsync.
fn disk_bound(dir: &std::path::Path, ec: EcParams) -> anyhow::Result<f64> {
    use std::io::Write;
    let path = dir.join("stele-bench-disk-probe");
    let chunk = vec![0x5au8; 1 << 20];
    let written: u64 = 512 << 20;
    let t = Instant::now();
    {
        let mut f = std::fs::File::create(&path)?;
        for _ in 0..(written >> 20) {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    let elapsed = t.elapsed();
    std::fs::remove_file(&path)?;
    Ok(mbps(written, elapsed) * ec.data as f64 / ec.width() as f64)
}

fn engine(a: EngineArgs) -> anyhow::Result<()> {
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let total = parse_size(&a.total)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let probe: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (put_bound, get_bound) = bounds(&probe, a.ec)?;
    let disk = disk_bound(&parent, a.ec)?;
    for size in &a.sizes {
        let size_b = parse_size(size)?;
        let count = (total / size_b.max(1)).max(1) as usize;
        let dir = tempfile::Builder::new()
            .prefix("stele-bench")
            .tempdir_in(&parent)?;
        let mut config = NodeConfig::embedded(dir.path());
        config.ec = a.ec;
        config.write_quorum = stele::config::default_quorum(a.ec);
        let store = Store::open(config, Arc::new(SystemClock))?;
        let bucket = BucketName::new("bench")?;
        store.create_bucket(&bucket, false)?;
        let body = Bytes::from(
            probe
                .iter()
                .copied()
                .cycle()
                .take(size_b as usize)
                .collect::<Vec<u8>>(),
        );
        let (put_t, get_t) = rt.block_on(async {
            let t = Instant::now();
            let per = count.div_ceil(a.concurrency);
            let mut tasks = Vec::new();
            for c in 0..a.concurrency {
                let (store, bucket, body) = (store.clone(), bucket.clone(), body.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..per {
                        let key = ObjectKey::new(format!("o-{c}-{i}"))?;
                        // The body arrives in 1 MiB chunks, as from a network.
                        let chunks: Vec<std::io::Result<Bytes>> = (0..body.len())
                            .step_by(1 << 20)
                            .map(|o| Ok(body.slice(o..(o + (1 << 20)).min(body.len()))))
                            .collect();
                        store
                            .put_object(
                                &bucket,
                                &key,
                                PutOptions::default(),
                                futures::stream::iter(chunks),
                            )
                            .await?;
                    }
                    anyhow::Ok(())
                }));
            }
            for t in tasks {
                t.await??;
            }
            let put_t = t.elapsed();
            let t = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..a.concurrency {
                let (store, bucket) = (store.clone(), bucket.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    for i in 0..per {
                        let key = ObjectKey::new(format!("o-{c}-{i}"))?;
                        let r = store.get_object(&bucket, &key, None, None).await?;
                        let mut body = r.body;
                        while let Some(chunk) = body.next().await {
                            n += chunk?.len() as u64;
                        }
                    }
                    anyhow::Ok(n)
                }));
            }
            let mut read = 0;
            for t in tasks {
                read += t.await??;
            }
            anyhow::ensure!(read == size_b * (per * a.concurrency) as u64, "short read");
            anyhow::Ok((put_t, t.elapsed()))
        })?;
        let bytes = size_b * (count.div_ceil(a.concurrency) * a.concurrency) as u64;
        let (put, get) = (mbps(bytes, put_t), mbps(bytes, get_t));
        rows.push(serde_json::json!({
            "size": size, "objects": count.div_ceil(a.concurrency) * a.concurrency,
            "concurrency": a.concurrency, "ec": a.ec.to_string(),
            "put_mb_s": put, "get_mb_s": get,
            "put_bound_mb_s": put_bound, "get_bound_mb_s": get_bound,
            "put_ratio": put / put_bound, "get_ratio": get / get_bound,
            "disk_bound_mb_s": disk, "put_disk_ratio": put / disk,
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "bound (1 core): PUT md5+blake3+rs {put_bound:.0} MB/s, GET blake3+copy {get_bound:.0} MB/s"
        );
        println!(
            "{:>8} {:>7} {:>4} {:>10} {:>7} {:>7} {:>10} {:>7}",
            "size", "objects", "conc", "PUT MB/s", "/cpu", "/disk", "GET MB/s", "/cpu"
        );
        for r in &rows {
            println!(
                "{:>8} {:>7} {:>4} {:>10.0} {:>7.2} {:>7.2} {:>10.0} {:>7.2}",
                r["size"].as_str().unwrap_or(""),
                r["objects"],
                r["concurrency"],
                r["put_mb_s"].as_f64().unwrap_or(0.0),
                r["put_ratio"].as_f64().unwrap_or(0.0),
                r["put_disk_ratio"].as_f64().unwrap_or(0.0),
                r["get_mb_s"].as_f64().unwrap_or(0.0),
                r["get_ratio"].as_f64().unwrap_or(0.0),
            );
        }
    }
    Ok(())
}
