//! Several sites on one box: network namespaces joined by a `wan` namespace (root only).
//!
//! ```text
//!   ns <prefix>-a            ns <prefix>-wan                      ns <prefix>-b
//!   eth0 198.18.X.10 ── p0 ─┐  br0 198.18.X.1  ┌─ p1 ── eth0 198.18.X.11
//!                           └──── bridge ──────┘
//! ```
//!
//! - [`Netns::create`]`(&["a", "b"])` makes one namespace per site and a `wan` namespace
//!   holding a bridge; each site's `eth0` is a veth whose peer is a bridge port in `wan`.
//!   Every namespace has its loopback up. All addresses come from 198.18.0.0/15 and exist only
//!   inside these namespaces: nothing is added to the namespace the tests run in.
//! - The site ports are **isolated** bridge ports: a site reaches the `wan` address but not
//!   another site. So the intended layout is: site A's server in `a`, site B's in `b`, a
//!   [`Relay`](crate::relay::Relay) started in `wan` with a link listening on
//!   `wan_addr():PORT` and targeting `addr("b"):PORT_B`; A is given the link's address as
//!   B's address, and every byte between them crosses the relay.
//!   [`Netns::create_joined`] leaves the ports open (sites reach each other directly, for
//!   kernel-level faults with nftables or tc on the veths).
//! - Names carry a per-run prefix `st<pid>-<n>` (n counts harnesses in this process), so
//!   concurrent test binaries never share a namespace. The /24 is derived from the prefix too,
//!   so logs of concurrent runs are told apart; as every address lives only in its own
//!   harness's namespaces, two harnesses could not clash even on the same /24.
//! - Processes: [`Netns::command`] wraps `ip netns exec NS PROGRAM`, which execs PROGRAM, so
//!   the spawned child's pid is the program's and killing it by that pid works. The test
//!   process itself can open sockets in a namespace ([`Netns::connect`], [`Netns::listen`],
//!   [`Netns::run_in`]): a helper thread enters the namespace (setns), creates the socket and
//!   ends; the socket stays in that namespace.
//! - Drop deletes exactly the namespaces this harness created (which removes their veths and
//!   the bridge). Stop the processes started in them first (declare the `Netns` before them,
//!   so it drops after them): a namespace deleted while a process runs in it loses its name
//!   but lives on until that process exits.
//! - Without root or a working `ip netns`, a test calls [`Netns::require_or_skip`]: it fails
//!   loudly when `CI=true`, and otherwise prints why and skips.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

/// The name of the namespace holding the bridge (and usually the relay).
pub const WAN: &str = "wan";

static HARNESSES: AtomicU32 = AtomicU32::new(0);

/// Namespaces for sites joined through a `wan` namespace; deleted when dropped.
pub struct Netns {
    prefix: String,
    /// The first three octets of this harness's /24.
    net: [u8; 3],
    sites: Vec<String>,
    /// Namespaces created so far (also on a failed create), deleted in reverse on drop.
    created: Vec<String>,
}

impl Netns {
    /// Whether this process can build namespaces: root, and a probe harness (namespaces,
    /// veth, bridge, setns) builds. The answer is computed once per process.
    pub fn available() -> Result<(), String> {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        PROBE
            .get_or_init(|| {
                let status = std::fs::read_to_string("/proc/self/status")
                    .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
                let euid = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("?");
                if euid != "0" {
                    return Err(format!("network namespaces need root (euid {euid})"));
                }
                let probe = Netns::create(&["probe"]).map_err(|e| format!("{e:#}"))?;
                run_in_namespace(&probe.name("probe"), || ())
                    .map_err(|e| format!("setns into a namespace: {e}"))?;
                Ok(())
            })
            .clone()
    }

    /// For a test that needs namespaces: true when they are available. Otherwise, under
    /// `CI=true` it panics (the suite must not pass by skipping), and elsewhere it prints
    /// why `test` is skipped and returns false.
    pub fn require_or_skip(test: &str) -> bool {
        match Netns::available() {
            Ok(()) => true,
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{test}: network namespaces are required when CI=true: {e}");
                }
                eprintln!("skipping {test}: {e}");
                false
            }
        }
    }

    /// Namespaces for `sites` (short names: lowercase letters and digits, at most 10) and
    /// `wan`, the sites reaching only `wan` (see the module doc).
    pub fn create(sites: &[&str]) -> anyhow::Result<Netns> {
        Netns::build(sites, true)
    }

    /// As [`Netns::create`], but the sites also reach each other directly over the bridge.
    pub fn create_joined(sites: &[&str]) -> anyhow::Result<Netns> {
        Netns::build(sites, false)
    }

    fn build(sites: &[&str], isolated: bool) -> anyhow::Result<Netns> {
        if sites.is_empty() || sites.len() > 200 {
            bail!("between 1 and 200 sites");
        }
        for (i, s) in sites.iter().enumerate() {
            if s.is_empty()
                || s.len() > 10
                || !s
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                bail!("site name {s:?}: 1 to 10 lowercase letters or digits");
            }
            if *s == WAN || sites[..i].contains(s) {
                bail!("site name {s:?} is reserved or repeated");
            }
        }
        let pid = std::process::id();
        let n = HARNESSES.fetch_add(1, Ordering::Relaxed);
        let subnet = (pid as usize).wrapping_mul(37).wrapping_add(n as usize) % 512;
        let mut ns = Netns {
            prefix: format!("st{pid}-{n}"),
            net: [198, 18 + (subnet / 256) as u8, (subnet % 256) as u8],
            sites: sites.iter().map(|s| (*s).to_owned()).collect(),
            created: Vec::new(),
        };
        // From here a failure returns early and `ns` drops: what was created is deleted.
        let wan = ns.name(WAN);
        ns.add_namespace(&wan)?;
        let wan_cidr = format!("{}/24", ns.wan_addr());
        ip(&["-n", &wan, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &wan, "addr", "add", &wan_cidr, "dev", "br0"])?;
        ip(&["-n", &wan, "link", "set", "br0", "up"])?;
        for (i, site) in sites.iter().enumerate() {
            let name = ns.name(site);
            ns.add_namespace(&name)?;
            let port = format!("p{i}");
            ip(&[
                "link", "add", "eth0", "netns", &name, "type", "veth", "peer", "name", &port,
                "netns", &wan,
            ])?;
            ip(&["-n", &wan, "link", "set", &port, "master", "br0"])?;
            if isolated {
                ip(&[
                    "-n",
                    &wan,
                    "link",
                    "set",
                    "dev",
                    &port,
                    "type",
                    "bridge_slave",
                    "isolated",
                    "on",
                ])?;
            }
            ip(&["-n", &wan, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", ns.addr(site));
            ip(&["-n", &name, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &name, "link", "set", "eth0", "up"])?;
        }
        Ok(ns)
    }

    fn add_namespace(&mut self, name: &str) -> anyhow::Result<()> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    /// The per-run prefix of every namespace name, `st<pid>-<n>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The site names, in the order given to create.
    pub fn sites(&self) -> &[String] {
        &self.sites
    }

    fn check(&self, site: &str) {
        assert!(
            site == WAN || self.sites.iter().any(|s| s == site),
            "no site {site} in this harness"
        );
    }

    /// The namespace of `site` (or of `"wan"`), as `ip netns` names it.
    pub fn name(&self, site: &str) -> String {
        self.check(site);
        format!("{}-{site}", self.prefix)
    }

    /// Every namespace of this harness (`wan` first).
    pub fn names(&self) -> Vec<String> {
        std::iter::once(WAN)
            .chain(self.sites.iter().map(String::as_str))
            .map(|s| self.name(s))
            .collect()
    }

    /// The address of `site` on its `eth0` (for `"wan"`, the bridge's address).
    pub fn addr(&self, site: &str) -> Ipv4Addr {
        if site == WAN {
            return self.wan_addr();
        }
        let i = self
            .sites
            .iter()
            .position(|s| s == site)
            .unwrap_or_else(|| panic!("no site {site} in this harness"));
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, 10 + i as u8)
    }

    /// The `wan` namespace's address on the bridge: where relays listen.
    pub fn wan_addr(&self) -> Ipv4Addr {
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// `ip netns exec NS program`: add arguments, then spawn. The child's pid is the
    /// program's (ip execs it), so kill it by `child.id()` / `Child::kill`.
    pub fn command(&self, site: &str, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec"]).arg(self.name(site)).arg(program);
        c
    }

    /// Runs `ip -n NS ARGS...` for `site`'s namespace (addresses, links, routes; run `tc` or
    /// `nft` there with [`Netns::command`]).
    pub fn ip(&self, site: &str, args: &[&str]) -> anyhow::Result<()> {
        let name = self.name(site);
        let mut all = vec!["-n", name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `f` on a thread inside `site`'s namespace: sockets it creates belong there.
    pub fn run_in<T: Send>(&self, site: &str, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
        run_in_namespace(&self.name(site), f)
    }

    /// A TCP connection made from inside `site`'s namespace.
    pub fn connect(
        &self,
        site: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<TcpStream> {
        self.run_in(site, || TcpStream::connect_timeout(&addr, timeout))?
    }

    /// Loads the nftables `rules` (a whole `nft -f` file) inside `site`'s namespace.
    pub fn nft(&self, site: &str, rules: &str) {
        let file = std::env::temp_dir().join(format!("stele-nft-{}-{site}.nft", self.prefix));
        std::fs::write(&file, rules).expect("rules");
        let out = self
            .command(site, "nft")
            .arg("-f")
            .arg(&file)
            .output()
            .expect("nft (installed by scripts/setup-deps --clients)");
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "nft: {}\n{rules}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A TCP listener bound inside `site`'s namespace.
    pub fn listen(&self, site: &str, addr: SocketAddr) -> std::io::Result<TcpListener> {
        self.run_in(site, || TcpListener::bind(addr))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("netns teardown: {e:#}");
            }
        }
    }
}

/// Runs `f` on a fresh thread that first enters the network namespace `ns` (a name under
/// `/run/netns`, as `ip netns` makes); the thread ends with `f`, so no other thread moves.
pub fn run_in_namespace<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    let file = std::fs::File::open(format!("/run/netns/{ns}"))?;
    std::thread::scope(|scope| {
        let joined = scope
            .spawn(move || {
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                Ok(f())
            })
            .join();
        match joined {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `ip ARGS...`; its stderr in the error when it fails.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
