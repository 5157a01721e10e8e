//! `stele-relay`: a user-space TCP relay that plays a WAN link between sites in tests.
//!
//! The kernel of the test machines has no `tc netem`, so delay, jitter, rate caps, corruption
//! and cuts come from here (see `design/sites.md`, section 5). The test harness drives it
//! through `stele_tests::relay::Relay`.
//!
//! # Command line
//!
//! ```text
//! stele-relay --control ADDR --link NAME=LISTEN->TARGET [--link NAME=LISTEN->TARGET ...]
//!             [--exit-on-stdin-eof]
//! ```
//!
//! - `--control ADDR`: where the control protocol listens (TCP, e.g. `127.0.0.1:0`).
//! - `--link NAME=LISTEN->TARGET`: a link called NAME (letters, digits, `-`, `_`) accepts TCP
//!   connections on LISTEN and forwards each to TARGET (`host:port`), both ways. A link is one
//!   direction of a site pair as far as who connects goes; its bytes flow both ways. "fwd"
//!   is client → target, "rev" is target → client.
//! - `--exit-on-stdin-eof`: exit when standard input reaches end of file, so a relay started
//!   by a test process that dies (and so closes the pipe) does not outlive it.
//!
//! Once every listener is bound it prints one line on stdout, with the bound addresses (so
//! port 0 works): `stele-relay ready control=ADDR link NAME=ADDR link NAME=ADDR ...`
//! It exits with status 0 on SIGTERM, SIGINT or the `quit` command.
//!
//! # Behaviour of a link, per direction
//!
//! - **delay D ± J ms**: each chunk read is released at `max(arrival + D + U(-J, J),
//!   previous release)`, so chunks never overtake each other. The end of stream (FIN) travels
//!   the same way, after the data.
//! - **rate R bytes/s** (0 = unlimited): a token bucket (burst about 1/50 s of R) in front of
//!   the writer, applied after the delay.
//! - **corruption p**: every byte independently, with probability p, gets one random bit
//!   flipped as it is written.
//! - **state** (per link): `up`; `cut` blackholes both directions (nothing is read or
//!   written, no socket is closed, no RST; new connections are accepted but their connection
//!   to the target waits for the heal); `cut-oneway` blackholes only fwd (and new connections'
//!   connects, as a lost SYN would); `reset` closes every current connection of the link with
//!   SO_LINGER 0 (both peers see RST), then the link is up; `heal` makes it up.
//!   A read or write error on either side of a connection resets the whole connection.
//!
//! # Control protocol
//!
//! One command per line on the control address, one reply line each: `ok`, a JSON line for
//! `stats`, or `error: WHY`.
//!
//! ```text
//! set LINK DIR DELAY_MS JITTER_MS RATE_BYTES_PER_S CORRUPT_PROB    DIR = fwd | rev | both
//! cut LINK
//! cut-oneway LINK
//! reset LINK
//! heal LINK
//! stats LINK    -> {"link":..,"state":..,"fwd_bytes":..,"rev_bytes":..,"fwd_corrupted":..,
//!                   "rev_corrupted":..,"corrupted_bytes":..,"connections":..,"open":..}
//! quit          -> ok, then the relay exits
//! ```
//!
//! `fwd_bytes`/`rev_bytes` count bytes written to the far side; `connections` counts
//! connections accepted on the link since start, `open` those still open.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

/// Size of one read from a socket (one chunk).
const CHUNK: usize = 64 * 1024;
/// Chunks queued per direction of a connection (read but not yet written).
const QUEUE: usize = 256;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct DirSettings {
    delay_ms: u64,
    jitter_ms: u64,
    rate: u64,
    corrupt: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Up,
    Cut,
    CutOneway,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Cut => "cut",
            State::CutOneway => "cut-oneway",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Fwd,
    Rev,
}

/// What every task of a link watches: settings, state, and the reset generation (bumped by
/// `reset`; a connection accepted under an older generation closes with RST).
#[derive(Clone, Debug)]
struct Ctl {
    fwd: DirSettings,
    rev: DirSettings,
    state: State,
    reset_gen: u64,
}

impl Ctl {
    fn settings(&self, dir: Dir) -> DirSettings {
        match dir {
            Dir::Fwd => self.fwd,
            Dir::Rev => self.rev,
        }
    }

    fn blocked(&self, dir: Dir) -> bool {
        match self.state {
            State::Up => false,
            State::Cut => true,
            State::CutOneway => dir == Dir::Fwd,
        }
    }
}

#[derive(Default)]
struct Stats {
    fwd_bytes: AtomicU64,
    rev_bytes: AtomicU64,
    fwd_corrupted: AtomicU64,
    rev_corrupted: AtomicU64,
    connections: AtomicU64,
    open: AtomicU64,
}

impl Stats {
    fn bytes(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Fwd => &self.fwd_bytes,
            Dir::Rev => &self.rev_bytes,
        }
    }

    fn corrupted(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Fwd => &self.fwd_corrupted,
            Dir::Rev => &self.rev_corrupted,
        }
    }
}

struct Link {
    name: String,
    target: String,
    ctl: watch::Sender<Ctl>,
    stats: Stats,
}

struct LinkArg {
    name: String,
    listen: String,
    target: String,
}

fn parse_link(s: &str) -> anyhow::Result<LinkArg> {
    let (name, rest) = s
        .split_once('=')
        .context("--link wants NAME=LISTEN->TARGET")?;
    let (listen, target) = rest
        .split_once("->")
        .context("--link wants NAME=LISTEN->TARGET")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("link name {name:?}: letters, digits, '-' and '_' only");
    }
    if listen.is_empty() || target.is_empty() {
        bail!("--link {s}: empty address");
    }
    Ok(LinkArg {
        name: name.to_owned(),
        listen: listen.to_owned(),
        target: target.to_owned(),
    })
}

struct Args {
    control: String,
    links: Vec<LinkArg>,
    exit_on_stdin_eof: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut control = None;
    let mut links: Vec<LinkArg> = Vec::new();
    let mut exit_on_stdin_eof = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--control" => control = Some(it.next().context("--control needs an address")?),
            "--link" => {
                let l = parse_link(&it.next().context("--link needs NAME=LISTEN->TARGET")?)?;
                if links.iter().any(|x| x.name == l.name) {
                    bail!("link {} given twice", l.name);
                }
                links.push(l);
            }
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "-h" | "--help" => {
                println!(
                    "stele-relay --control ADDR --link NAME=LISTEN->TARGET [--link ...] [--exit-on-stdin-eof]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let control = control.context("--control ADDR is required")?;
    if links.is_empty() {
        bail!("at least one --link NAME=LISTEN->TARGET is required");
    }
    Ok(Args {
        control,
        links,
        exit_on_stdin_eof,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // Before the ready line: a SIGTERM sent as soon as it is read must not kill us uncleanly.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let shutdown = Arc::new(Notify::new());

    let control = TcpListener::bind(&args.control)
        .await
        .with_context(|| format!("bind control {}", args.control))?;
    let mut ready = format!("stele-relay ready control={}", control.local_addr()?);
    let mut links = BTreeMap::new();
    let mut listeners = Vec::new();
    for l in &args.links {
        let listener = TcpListener::bind(&l.listen)
            .await
            .with_context(|| format!("bind link {} on {}", l.name, l.listen))?;
        ready.push_str(&format!(" link {}={}", l.name, listener.local_addr()?));
        let (ctl, _) = watch::channel(Ctl {
            fwd: DirSettings::default(),
            rev: DirSettings::default(),
            state: State::Up,
            reset_gen: 0,
        });
        let link = Arc::new(Link {
            name: l.name.clone(),
            target: l.target.clone(),
            ctl,
            stats: Stats::default(),
        });
        links.insert(l.name.clone(), link.clone());
        listeners.push((listener, link));
    }
    for (listener, link) in listeners {
        tokio::spawn(accept_loop(listener, link));
    }
    let links = Arc::new(links);
    tokio::spawn(control_loop(control, links, shutdown.clone()));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}")?;
        out.flush()?;
    }

    // A plain thread, not tokio's stdin: a blocked read there would hold up the runtime's
    // shutdown, while this thread simply ends with the process.
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    if args.exit_on_stdin_eof {
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(std::io::Read::read(&mut stdin, &mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        });
    }
    // Without the flag nothing is ever sent: this waits forever.
    let stdin_eof = async {
        if eof_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = shutdown.notified() => {}
        _ = stdin_eof => {}
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener, link: Arc<Link>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                link.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(link.clone(), client));
            }
            Err(e) => {
                eprintln!("stele-relay: link {}: accept: {e}", link.name);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Counts a connection as open while alive.
struct OpenGuard<'a>(&'a AtomicU64);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until `dir` is not blackholed (returns at once when it is not).
async fn wait_passes(rx: &mut watch::Receiver<Ctl>, dir: Dir) {
    loop {
        if !rx.borrow_and_update().blocked(dir) {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Completes when the link is reset after generation `gen`.
async fn wait_reset(mut rx: watch::Receiver<Ctl>, generation: u64) {
    loop {
        if rx.borrow_and_update().reset_gen != generation {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Closes a socket so that the peer sees RST (SO_LINGER 0).
fn close_with_rst(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn connection(link: Arc<Link>, client: TcpStream) {
    link.stats.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(&link.stats.open);
    let rx = link.ctl.subscribe();
    let generation = rx.borrow().reset_gen;

    // A blackholed link loses the SYN: connect to the target only once fwd passes.
    let upstream = {
        let mut rx1 = rx.clone();
        let target = link.target.clone();
        tokio::select! {
            r = async move {
                wait_passes(&mut rx1, Dir::Fwd).await;
                TcpStream::connect(target.as_str()).await
            } => r.map_err(|e| format!("connect to {target}: {e}", target = link.target)),
            _ = wait_reset(rx.clone(), generation) => Err("reset".to_owned()),
        }
    };
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            if e != "reset" {
                eprintln!("stele-relay: link {}: {e}", link.name);
            }
            close_with_rst(client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();

    let clean = {
        let fwd = pump(Dir::Fwd, &mut cr, &mut uw, &link, rx.clone());
        let rev = pump(Dir::Rev, &mut ur, &mut cw, &link, rx.clone());
        tokio::select! {
            r = async { tokio::try_join!(fwd, rev) } => r.is_ok(),
            _ = wait_reset(rx.clone(), generation) => false,
        }
    };
    if !clean {
        if let Ok(s) = cr.reunite(cw) {
            close_with_rst(s);
        }
        if let Ok(s) = ur.reunite(uw) {
            close_with_rst(s);
        }
    }
}

enum Item {
    Data(Vec<u8>, Instant),
    Eof(Instant),
}

/// One direction of a connection: a reader that stamps each chunk with its release time and
/// a writer that releases chunks in order, applying cut, rate and corruption.
async fn pump(
    dir: Dir,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    link: &Link,
    rx: watch::Receiver<Ctl>,
) -> std::io::Result<()> {
    let (tx, mut queue) = mpsc::channel::<Item>(QUEUE);
    let mut rx_read = rx.clone();
    let read_side = async move {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let mut last = Instant::now();
        loop {
            wait_passes(&mut rx_read, dir).await;
            let mut buf = vec![0u8; CHUNK];
            let n = reader.read(&mut buf).await?;
            let s = rx_read.borrow().settings(dir);
            let jitter = if s.jitter_ms > 0 {
                rng.random_range(-(s.jitter_ms as i64)..=s.jitter_ms as i64)
            } else {
                0
            };
            let delay = (s.delay_ms as i64 + jitter).max(0) as u64;
            last = last.max(Instant::now() + Duration::from_millis(delay));
            if n == 0 {
                // The writer may be gone already (it failed); its error wins.
                let _ = tx.send(Item::Eof(last)).await;
                return Ok::<(), std::io::Error>(());
            }
            buf.truncate(n);
            if tx.send(Item::Data(buf, last)).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut rx_write = rx;
    let write_side = async move {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let mut bucket = Bucket::new();
        while let Some(item) = queue.recv().await {
            match item {
                Item::Eof(at) => {
                    tokio::time::sleep_until(at).await;
                    wait_passes(&mut rx_write, dir).await;
                    writer.shutdown().await?;
                    return Ok(());
                }
                Item::Data(mut data, at) => {
                    tokio::time::sleep_until(at).await;
                    let mut off = 0;
                    while off < data.len() {
                        wait_passes(&mut rx_write, dir).await;
                        let s = rx_write.borrow().settings(dir);
                        let piece = bucket.piece(s.rate).min(data.len() - off);
                        bucket.take(piece, s.rate).await;
                        // The state may have changed while the bucket refilled.
                        wait_passes(&mut rx_write, dir).await;
                        let part = &mut data[off..off + piece];
                        let flipped = corrupt(part, s.corrupt, &mut rng);
                        link.stats
                            .corrupted(dir)
                            .fetch_add(flipped, Ordering::Relaxed);
                        writer.write_all(part).await?;
                        link.stats
                            .bytes(dir)
                            .fetch_add(piece as u64, Ordering::Relaxed);
                        off += piece;
                    }
                }
            }
        }
        Ok(())
    };
    tokio::try_join!(read_side, write_side).map(|_| ())
}

/// Flips one random bit in each byte with probability `p`; the number of bytes changed.
fn corrupt(data: &mut [u8], p: f64, rng: &mut SmallRng) -> u64 {
    if p <= 0.0 {
        return 0;
    }
    let mut n = 0;
    for b in data.iter_mut() {
        if p >= 1.0 || rng.random_bool(p) {
            *b ^= 1 << rng.random_range(0..8u32);
            n += 1;
        }
    }
    n
}

/// A token bucket of `rate` bytes/s holding at most one piece (about 1/50 s of traffic).
/// Tokens may go negative: the writer then sleeps until the debt is repaid.
struct Bucket {
    rate: u64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            rate: 0,
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// The largest write at `rate`.
    fn piece(&self, rate: u64) -> usize {
        if rate == 0 {
            CHUNK
        } else {
            (rate / 50).clamp(512, CHUNK as u64) as usize
        }
    }

    async fn take(&mut self, n: usize, rate: u64) {
        if rate == 0 {
            self.rate = 0;
            return;
        }
        let now = Instant::now();
        let burst = self.piece(rate) as f64;
        if rate != self.rate {
            self.rate = rate;
            self.tokens = burst;
        } else {
            let elapsed = now.duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate as f64).min(burst);
        }
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.tokens / rate as f64)).await;
        }
    }
}

async fn control_loop(
    listener: TcpListener,
    links: Arc<BTreeMap<String, Arc<Link>>>,
    shutdown: Arc<Notify>,
) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                tokio::spawn(control_conn(s, links.clone(), shutdown.clone()));
            }
            Err(e) => {
                eprintln!("stele-relay: control accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn control_conn(
    s: TcpStream,
    links: Arc<BTreeMap<String, Arc<Link>>>,
    shutdown: Arc<Notify>,
) {
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let quit = words == ["quit"];
        let reply = match command(&words, &links) {
            Ok(r) => r,
            Err(e) => format!("error: {e}"),
        };
        if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
            return;
        }
        if quit {
            let _ = w.flush().await;
            shutdown.notify_one();
            return;
        }
    }
}

/// Runs one control command; its reply line.
fn command(words: &[&str], links: &BTreeMap<String, Arc<Link>>) -> anyhow::Result<String> {
    let link = |i: usize| -> anyhow::Result<&Arc<Link>> {
        let name = words.get(i).context("missing link name")?;
        links
            .get(*name)
            .with_context(|| format!("no link named {name}"))
    };
    let arity = |n: usize| -> anyhow::Result<()> {
        if words.len() != n {
            bail!("{} takes {} argument(s)", words[0], n - 1);
        }
        Ok(())
    };
    match words[0] {
        "set" => {
            arity(7)?;
            let l = link(1)?;
            let num = |i: usize, what: &str| -> anyhow::Result<u64> {
                words[i]
                    .parse()
                    .with_context(|| format!("{what} {:?} is not a whole number", words[i]))
            };
            let s = DirSettings {
                delay_ms: num(3, "delay_ms")?,
                jitter_ms: num(4, "jitter_ms")?,
                rate: num(5, "rate_bytes_per_s")?,
                corrupt: words[6]
                    .parse()
                    .with_context(|| format!("corrupt_prob {:?} is not a number", words[6]))?,
            };
            if !(0.0..=1.0).contains(&s.corrupt) {
                bail!("corrupt_prob must be within 0..=1");
            }
            let (fwd, rev) = match words[2] {
                "fwd" => (true, false),
                "rev" => (false, true),
                "both" => (true, true),
                other => bail!("direction {other:?}: fwd, rev or both"),
            };
            l.ctl.send_modify(|c| {
                if fwd {
                    c.fwd = s;
                }
                if rev {
                    c.rev = s;
                }
            });
            Ok("ok".into())
        }
        "cut" | "cut-oneway" | "heal" => {
            arity(2)?;
            let state = match words[0] {
                "cut" => State::Cut,
                "cut-oneway" => State::CutOneway,
                _ => State::Up,
            };
            link(1)?.ctl.send_modify(|c| c.state = state);
            Ok("ok".into())
        }
        "reset" => {
            arity(2)?;
            link(1)?.ctl.send_modify(|c| {
                c.state = State::Up;
                c.reset_gen += 1;
            });
            Ok("ok".into())
        }
        "stats" => {
            arity(2)?;
            let l = link(1)?;
            let st = &l.stats;
            let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let fc = get(&st.fwd_corrupted);
            let rc = get(&st.rev_corrupted);
            Ok(serde_json::json!({
                "link": l.name,
                "state": l.ctl.borrow().state.name(),
                "fwd_bytes": get(&st.fwd_bytes),
                "rev_bytes": get(&st.rev_bytes),
                "fwd_corrupted": fc,
                "rev_corrupted": rc,
                "corrupted_bytes": fc + rc,
                "connections": get(&st.connections),
                "open": get(&st.open),
            })
            .to_string())
        }
        "quit" => {
            arity(1)?;
            Ok("ok".into())
        }
        other => bail!("unknown command {other:?}"),
    }
}
