//! A handle on a running `stele-relay` (`tests/src/bin/relay.rs`): the WAN between sites.
//!
//! ```no_run
//! use stele_tests::relay::{Dir, Relay, Shape};
//! // One link "ab": connections to its address go on to 127.0.0.1:9000.
//! let relay = Relay::start(&[("ab", "127.0.0.1:0", "127.0.0.1:9000")]);
//! let addr = relay.link_addr("ab"); // connect here instead of 127.0.0.1:9000
//! relay.set("ab", Dir::Both, Shape { delay_ms: 40, jitter_ms: 5, ..Shape::default() });
//! relay.cut("ab"); // blackhole: nothing flows, nothing is closed
//! relay.heal("ab");
//! assert_eq!(relay.stats("ab").corrupted_bytes, 0);
//! ```
//!
//! In the multi-site harness the relay runs in the `wan` namespace of a
//! [`crate::netns::Netns`] with [`Relay::start_in`]: its links listen on the wan
//! address and connect to the sites' addresses, and this handle reaches its control port
//! (on the namespace's loopback) through a socket opened inside that namespace.
//!
//! The relay is started with `--exit-on-stdin-eof` and its stdin kept open here, so it also
//! ends if the test process dies without dropping the handle. Drop kills it by the pid this
//! handle started (`ip netns exec` execs the relay, so that pid is the relay's).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::netns::{Netns, run_in_namespace};
use crate::workspace_bin;

/// The direction(s) a [`Relay::set`] applies to: `Fwd` is client → target, `Rev` is target
/// → client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Fwd,
    Rev,
    Both,
}

impl Dir {
    fn word(self) -> &'static str {
        match self {
            Dir::Fwd => "fwd",
            Dir::Rev => "rev",
            Dir::Both => "both",
        }
    }
}

/// How one direction of a link treats bytes. The default passes them untouched.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shape {
    /// Added to every chunk's travel time (chunks keep their order).
    pub delay_ms: u64,
    /// The delay varies uniformly within ± this.
    pub jitter_ms: u64,
    /// Token-bucket cap in bytes per second; 0 is unlimited.
    pub rate_bytes_per_s: u64,
    /// Probability that a byte gets one bit flipped.
    pub corrupt_prob: f64,
}

/// A link's counters and state, from the `stats` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayStats {
    /// `up`, `cut` or `cut-oneway`.
    pub state: String,
    /// Bytes written to the target (client → target).
    pub fwd_bytes: u64,
    /// Bytes written to the client (target → client).
    pub rev_bytes: u64,
    pub fwd_corrupted: u64,
    pub rev_corrupted: u64,
    /// `fwd_corrupted + rev_corrupted`.
    pub corrupted_bytes: u64,
    /// Connections accepted since the relay started.
    pub connections: u64,
    /// Connections still open.
    pub open: u64,
}

/// A running `stele-relay`, killed when dropped.
pub struct Relay {
    child: Child,
    /// Kept open so the relay's `--exit-on-stdin-eof` fires only when we are gone.
    _stdin: Option<ChildStdin>,
    control_addr: SocketAddr,
    links: BTreeMap<String, SocketAddr>,
    /// The namespace the relay runs in (its control port is on that namespace's loopback).
    namespace: Option<String>,
    control: Mutex<Option<(BufReader<TcpStream>, TcpStream)>>,
}

impl Relay {
    /// Starts a relay in this namespace with `links` as (name, listen address, target
    /// address), e.g. `("ab", "127.0.0.1:0", "127.0.0.1:9000")`; waits for its ready line.
    pub fn start(links: &[(&str, &str, &str)]) -> Relay {
        Relay::spawn(Command::new(workspace_bin("stele-relay")), links, None)
    }

    /// Starts a relay inside `site`'s namespace of `ns` (usually `"wan"`): listen and target
    /// addresses are that namespace's (e.g. `ns.wan_addr()` and `ns.addr("b")`).
    pub fn start_in(ns: &Netns, site: &str, links: &[(&str, &str, &str)]) -> Relay {
        let cmd = ns.command(site, workspace_bin("stele-relay"));
        Relay::spawn(cmd, links, Some(ns.name(site)))
    }

    fn spawn(mut cmd: Command, links: &[(&str, &str, &str)], namespace: Option<String>) -> Relay {
        cmd.args(["--control", "127.0.0.1:0", "--exit-on-stdin-eof"]);
        for (name, listen, target) in links {
            cmd.arg("--link").arg(format!("{name}={listen}->{target}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stele-relay");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        // Owned by `relay` from here on, so every path below kills and reaps it.
        let mut relay = Relay {
            child,
            _stdin: stdin,
            control_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            links: BTreeMap::new(),
            namespace,
            control: Mutex::new(None),
        };
        // The ready line comes through a thread so a silent relay cannot hang the test; the
        // thread then keeps draining stdout.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut tx = Some(tx);
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.starts_with("stele-relay ready ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(e) => {
                let status = relay.child.try_wait();
                panic!("stele-relay did not become ready ({e}); exit status: {status:?}");
            }
        };
        let mut words = line.split_whitespace().skip(2);
        while let Some(w) = words.next() {
            if let Some(a) = w.strip_prefix("control=") {
                relay.control_addr = a.parse().expect("control address");
            } else if w == "link" {
                let (name, addr) = words
                    .next()
                    .and_then(|l| l.split_once('='))
                    .expect("link NAME=ADDR");
                relay
                    .links
                    .insert(name.to_owned(), addr.parse().expect("link address"));
            }
        }
        relay
    }

    /// The address clients connect to for link `name` (the relay's bound address).
    pub fn link_addr(&self, name: &str) -> SocketAddr {
        *self
            .links
            .get(name)
            .unwrap_or_else(|| panic!("the relay has no link {name}"))
    }

    /// The control address (on the loopback of the relay's namespace).
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The relay's pid (the relay itself, also when started in a namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one control line; the reply line, or the `error: ...` reply (or an I/O failure)
    /// as `Err`.
    pub fn command(&self, line: &str) -> Result<String, String> {
        let mut guard = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(
                self.connect_control()
                    .map_err(|e| format!("control: {e}"))?,
            );
        }
        let result = (|| -> std::io::Result<String> {
            let (reader, writer) = guard.as_mut().expect("connected above");
            writer.write_all(format!("{line}\n").as_bytes())?;
            let mut reply = String::new();
            if reader.read_line(&mut reply)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            Ok(reply.trim_end().to_owned())
        })();
        match result {
            Ok(reply) => match reply.strip_prefix("error: ") {
                Some(e) => Err(e.to_owned()),
                None => Ok(reply),
            },
            Err(e) => {
                *guard = None;
                Err(format!("control: {e}"))
            }
        }
    }

    fn connect_control(&self) -> std::io::Result<(BufReader<TcpStream>, TcpStream)> {
        let addr = self.control_addr;
        let timeout = Duration::from_secs(5);
        let s = match &self.namespace {
            Some(ns) => run_in_namespace(ns, || TcpStream::connect_timeout(&addr, timeout))??,
            None => TcpStream::connect_timeout(&addr, timeout)?,
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok((BufReader::new(s.try_clone()?), s))
    }

    fn ok(&self, line: &str) {
        if let Err(e) = self.command(line) {
            panic!("relay `{line}`: {e}");
        }
    }

    /// Shapes `dir` of `link` (applies to chunks read from now on; rate and corruption to
    /// bytes written from now on).
    pub fn set(&self, link: &str, dir: Dir, shape: Shape) {
        self.ok(&format!(
            "set {link} {} {} {} {} {}",
            dir.word(),
            shape.delay_ms,
            shape.jitter_ms,
            shape.rate_bytes_per_s,
            shape.corrupt_prob
        ));
    }

    /// Blackholes both directions of `link`: nothing is read or written, nothing closed.
    pub fn cut(&self, link: &str) {
        self.ok(&format!("cut {link}"));
    }

    /// Blackholes only the forward direction (client → target) of `link`.
    pub fn cut_oneway(&self, link: &str) {
        self.ok(&format!("cut-oneway {link}"));
    }

    /// Closes every open connection of `link` with RST on both sides; the link is then up.
    pub fn reset(&self, link: &str) {
        self.ok(&format!("reset {link}"));
    }

    /// Ends a cut: `link` is up again and held bytes flow.
    pub fn heal(&self, link: &str) {
        self.ok(&format!("heal {link}"));
    }

    /// `link`'s counters and state.
    pub fn stats(&self, link: &str) -> RelayStats {
        let line = self
            .command(&format!("stats {link}"))
            .unwrap_or_else(|e| panic!("relay stats {link}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&line).expect("stats JSON");
        let n = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("stats {k} in {line}"))
        };
        RelayStats {
            state: v["state"].as_str().unwrap_or_default().to_owned(),
            fwd_bytes: n("fwd_bytes"),
            rev_bytes: n("rev_bytes"),
            fwd_corrupted: n("fwd_corrupted"),
            rev_corrupted: n("rev_corrupted"),
            corrupted_bytes: n("corrupted_bytes"),
            connections: n("connections"),
            open: n("open"),
        }
    }

    /// Sends `quit` and waits up to `timeout` for the relay to exit; its exit code, if it did.
    pub fn quit(mut self, timeout: Duration) -> Option<i32> {
        let _ = self.command("quit");
        self.wait_exit(timeout)
    }

    /// Sends SIGTERM and waits up to `timeout` for the relay to exit; its exit code, if it did.
    pub fn terminate(mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait_exit(timeout)
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
