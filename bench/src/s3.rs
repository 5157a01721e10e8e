//! `stele-bench s3`: an S3 load generator in the spirit of MinIO's warp, usable against
//! any S3 endpoint. Plain HTTP/1.1 with keep-alive and TCP_NODELAY, SigV4 with
//! UNSIGNED-PAYLOAD, so the client stays cheap next to the server it measures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::engine::parse_size;
use stele_tools::sigv4::Signer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    Put,
    Get,
    List,
    /// Two GETs, one PUT and one LIST in every four operations.
    Mixed,
    /// PutObjectRetention (COMPLIANCE, a later date each pass) on the seeded objects, one
    /// call per object as Veeam extends its blocks' immutability; needs `--lock-days`.
    /// Each worker owns its share of the objects, so no call shortens another's date.
    Retention,
}

#[derive(Debug, clap::Args)]
pub struct S3Args {
    #[arg(
        long,
        env = "STELE_BENCH_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "stele-bench")]
    bucket: String,
    #[arg(long, value_enum, default_value = "put")]
    op: Op,
    /// Object size, e.g. 4KiB, 1MiB, 64MiB.
    #[arg(long, default_value = "1MiB")]
    size: String,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Objects written before a GET/LIST/mixed run (default: 8 per worker).
    #[arg(long)]
    objects: Option<usize>,
    #[arg(long)]
    json: bool,
    /// Use an Object Lock bucket whose default retention is COMPLIANCE for this many days
    /// (every PUT then carries Content-MD5, as S3 requires): the cost of locked writes.
    #[arg(long)]
    lock_days: Option<u32>,
}

fn content_md5(bytes: &[u8]) -> String {
    use base64::Engine;
    let mut h = stele::checksum::Md5::default();
    h.update(bytes);
    base64::engine::general_purpose::STANDARD.encode(h.finish())
}

struct Target {
    client: Client<HttpConnector, Full<Bytes>>,
    signer: Signer,
    scheme_host: String,
    host: String,
}

impl Target {
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Bytes,
        extra: &[(&str, String)],
    ) -> anyhow::Result<u64> {
        let headers = self.signer.sign(method, &self.host, path, query);
        let uri = if query.is_empty() {
            format!("{}{path}", self.scheme_host)
        } else {
            format!("{}{path}?{query}", self.scheme_host)
        };
        let mut req = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        for (k, v) in extra {
            req = req.header(*k, v.as_str());
        }
        let resp = self.client.request(req.body(Full::new(body))?).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                n += data.len() as u64;
            }
        }
        // Creating the bench bucket again answers 409; that is fine.
        let bucket_exists = method == "PUT" && path.matches('/').count() == 1 && status == 409;
        if !(status.is_success() || bucket_exists) {
            bail!("{method} {path}: HTTP {status}");
        }
        Ok(n)
    }
}

#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

pub fn run(a: S3Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(a))
}

async fn run_async(a: S3Args) -> anyhow::Result<()> {
    let size = parse_size(&a.size)? as usize;
    let host = a
        .endpoint
        .strip_prefix("http://")
        .context("the endpoint must be http://host:port")?
        .trim_end_matches('/')
        .to_owned();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let target = Arc::new(Target {
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(a.concurrency * 2)
            .build(connector),
        signer: Signer {
            access_key: a.access_key.clone(),
            secret_key: a.secret_key.clone(),
            region: a.region.clone(),
        },
        scheme_host: a.endpoint.trim_end_matches('/').to_owned(),
        host,
    });
    let bucket_path = format!("/{}", a.bucket);
    let body = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let mut put_headers: Vec<(&str, String)> = Vec::new();
    match a.lock_days {
        None => {
            target
                .send("PUT", &bucket_path, "", Bytes::new(), &[])
                .await?;
        }
        Some(days) => {
            let lock = [("x-amz-bucket-object-lock-enabled", "true".to_owned())];
            target
                .send("PUT", &bucket_path, "", Bytes::new(), &lock)
                .await?;
            let config = format!(
                "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>{days}</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
            );
            let md5 = [("Content-MD5", content_md5(config.as_bytes()))];
            target
                .send(
                    "PUT",
                    &bucket_path,
                    "object-lock=",
                    Bytes::from(config),
                    &md5,
                )
                .await?;
            put_headers.push(("Content-MD5", content_md5(&body)));
        }
    }
    let put_headers = Arc::new(put_headers);
    let prepared = a.objects.unwrap_or(a.concurrency * 8).max(1);
    if a.op == Op::Retention && a.lock_days.is_none() {
        bail!("--op retention needs --lock-days (an Object Lock bucket)");
    }
    if a.op != Op::Put {
        // Seeded by `concurrency` workers at once (10,000 objects for a retention run).
        let mut seeders = tokio::task::JoinSet::new();
        for w in 0..a.concurrency {
            let (target, body, bucket_path, put_headers) = (
                target.clone(),
                body.clone(),
                bucket_path.clone(),
                put_headers.clone(),
            );
            let step = a.concurrency;
            seeders.spawn(async move {
                for i in (w..prepared).step_by(step) {
                    target
                        .send(
                            "PUT",
                            &format!("{bucket_path}/seed/{i}"),
                            "",
                            body.clone(),
                            &put_headers,
                        )
                        .await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = seeders.join_next().await {
            r??;
        }
    }
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(a.duration);
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (target, tally, body, bucket_path, put_headers) = (
            target.clone(),
            tally.clone(),
            body.clone(),
            bucket_path.clone(),
            put_headers.clone(),
        );
        let op = a.op;
        let (concurrency, lock_days) = (a.concurrency, a.lock_days.unwrap_or(0));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let kind = match op {
                    Op::Mixed => [Op::Get, Op::Put, Op::Get, Op::List][i % 4],
                    o => o,
                };
                let t = Instant::now();
                let r = match kind {
                    Op::Retention => {
                        // Worker w extends objects w, w + concurrency, ...; each pass over
                        // them moves the date one day later (never shorter).
                        let mine = prepared.div_ceil(concurrency).max(1);
                        let (n, pass) = (w + (i % mine) * concurrency, i / mine);
                        if n >= prepared {
                            i += 1;
                            continue;
                        }
                        let body = Bytes::from(format!(
                            "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
                            retain_until(lock_days + 1 + pass as u32)
                        ));
                        let md5 = [("Content-MD5", content_md5(&body))];
                        target
                            .send(
                                "PUT",
                                &format!("{bucket_path}/seed/{n}"),
                                "retention=",
                                body,
                                &md5,
                            )
                            .await
                            .map(|_| 0)
                    }
                    Op::Put => target
                        .send(
                            "PUT",
                            &format!("{bucket_path}/w{w}/{i}"),
                            "",
                            body.clone(),
                            &put_headers,
                        )
                        .await
                        .map(|_| body.len() as u64),
                    Op::Get => {
                        let n = (w * 7919 + i) % prepared;
                        target
                            .send(
                                "GET",
                                &format!("{bucket_path}/seed/{n}"),
                                "",
                                Bytes::new(),
                                &[],
                            )
                            .await
                    }
                    _ => target
                        .send(
                            "GET",
                            &bucket_path,
                            "list-type=2&max-keys=1000&prefix=seed%2F",
                            Bytes::new(),
                            &[],
                        )
                        .await
                        .map(|_| 0),
                };
                match r {
                    Ok(n) => {
                        latencies.push(t.elapsed());
                        tally.ops.fetch_add(1, Ordering::Relaxed);
                        tally.bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if tally.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {e:#}");
                        }
                    }
                }
                i += 1;
            }
            latencies
        }));
    }
    let start = Instant::now();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let ops = tally.ops.load(Ordering::Relaxed);
    let bytes = tally.bytes.load(Ordering::Relaxed);
    let report = serde_json::json!({
        "op": format!("{:?}", a.op).to_lowercase(), "size": a.size, "concurrency": a.concurrency,
        "seconds": elapsed, "ops": ops, "errors": tally.errors.load(Ordering::Relaxed),
        "ops_per_s": ops as f64 / elapsed, "mb_per_s": bytes as f64 / elapsed / 1e6,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99),
    });
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:>5} {:>7} conc {:>3}: {:>9.1} ops/s {:>9.1} MB/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({} ops, {} errors)",
            report["op"].as_str().unwrap_or(""),
            a.size,
            a.concurrency,
            report["ops_per_s"].as_f64().unwrap_or(0.0),
            report["mb_per_s"].as_f64().unwrap_or(0.0),
            report["p50_ms"].as_f64().unwrap_or(0.0),
            report["p99_ms"].as_f64().unwrap_or(0.0),
            ops,
            report["errors"],
        );
    }
    if ops == 0 {
        bail!("no operation succeeded");
    }
    Ok(())
}

/// An ISO 8601 date `days` from now, as a Retention body names it.
fn retain_until(days: u32) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + i64::from(days) * 86_400;
    stele::Timestamp::from_secs(secs).to_string()
}
