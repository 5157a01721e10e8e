//! A cluster over three sites (or two) of two nodes each, for erasure coding across sites (issue
//! 15): every site is its own network namespace ([`Netns::create`]: the sites reach only
//! the `wan` namespace), and every byte between two sites crosses the [`Relay`] in `wan`,
//! which adds the WAN's delay and can cut a site off.
//!
//! The nodes know each other by their real addresses (`<site address>:<port>`). Inside
//! each site, nftables rewrites a connection to another site's node (`dnat` in the output
//! hook) to the relay link for that (site, node) pair; the relay connects on to the node.
//! So no node is told about the relay, and traffic inside a site stays direct. Ports are
//! fixed (7101, 7102 in each site): the namespaces are this harness's own, so nothing
//! else can hold them.
//!
//! Dropping the cluster kills its servers (by pid), then the relay, then deletes the
//! namespaces.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::relay::{Dir, Relay, Shape};
use crate::sites::{ctl_in, json};
use crate::{Server, runtime};

/// The sites, in order.
pub const SITES: [&str; 3] = ["a", "b", "c"];
/// Nodes in each site (named `a1`, `a2`, `b1`, ...).
pub const PER_SITE: usize = 2;
/// Disks of each node.
pub const DISKS: usize = 2;
const RPC_PORT: u16 = 7101;

/// One node: its name, its site, its node-to-node address and its process (`None` while
/// it is stopped).
pub struct Node {
    pub name: String,
    pub site: &'static str,
    pub rpc: String,
    pub server: Option<Server>,
}

/// Three sites of two nodes in one cluster (see the module doc).
pub struct GeoCluster {
    // Fields drop in this order: the servers, then the relay, then the namespaces.
    pub nodes: Vec<Node>,
    pub relay: Relay,
    pub ns: Netns,
    pub dir: tempfile::TempDir,
    /// Flags every node gets (the erasure coding, the workers' intervals).
    flags: Vec<String>,
    sites: Vec<&'static str>,
}

impl GeoCluster {
    /// Starts the namespaces, the relay (each way `delay_ms` ± 1 ms between sites) and six
    /// nodes with `flags` (e.g. `--ec 5+4`); `a1` makes the cluster, the others join
    /// through it. Returns once all six agree on one leader with six voters and every
    /// node knows all twelve disks online.
    pub fn start(flags: &[&str], delay_ms: u64) -> GeoCluster {
        GeoCluster::start_sites(&SITES, flags, delay_ms)
    }

    /// [`GeoCluster::start`] over `sites` (two, to see what two sites refuse).
    pub fn start_sites(sites: &[&'static str], flags: &[&str], delay_ms: u64) -> GeoCluster {
        GeoCluster::start_layout(sites, PER_SITE, flags, delay_ms)
    }

    /// [`GeoCluster::start_sites`] with `per_site` nodes in each site (one site of six:
    /// the benchmark's baseline, no byte through the relay).
    pub fn start_layout(
        sites: &[&'static str],
        per_site: usize,
        flags: &[&str],
        delay_ms: u64,
    ) -> GeoCluster {
        let ns = Netns::create(sites).expect("namespaces");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nodes = Vec::new();
        for &site in sites {
            for i in 0..per_site {
                nodes.push(Node {
                    name: format!("{site}{}", i + 1),
                    site,
                    rpc: format!("{}:{}", ns.addr(site), RPC_PORT + i as u16),
                    server: None,
                });
            }
        }
        let wan = ns.wan_addr();
        // One link per (site, node of another site).
        let links: Vec<(String, String, String)> = sites
            .iter()
            .flat_map(|from| {
                nodes
                    .iter()
                    .filter(|n| n.site != *from)
                    .map(|n| {
                        (
                            format!("{from}-{}", n.name),
                            format!("{wan}:0"),
                            n.rpc.clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        // One site has no link: the relay wants one, so it gets an idle one nothing uses.
        let mut links = links;
        if links.is_empty() {
            links.push(("idle".into(), format!("{wan}:0"), format!("{wan}:9")));
        }
        let refs: Vec<(&str, &str, &str)> = links
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        let relay = Relay::start_in(&ns, crate::netns::WAN, &refs);
        for (name, _, _) in links.iter().filter(|(n, _, _)| n != "idle") {
            relay.set(
                name,
                Dir::Both,
                Shape {
                    delay_ms,
                    jitter_ms: u64::from(delay_ms > 0),
                    ..Shape::default()
                },
            );
        }
        for &from in sites {
            let rules: String = nodes
                .iter()
                .filter(|n| n.site != from)
                .map(|n| {
                    let (addr, port) = n.rpc.split_once(':').expect("addr");
                    format!(
                        "ip daddr {addr} tcp dport {port} dnat to {};\n",
                        relay.link_addr(&format!("{from}-{}", n.name))
                    )
                })
                .collect();
            ns.nft(
                from,
                &format!(
                    "table ip stele_route {{\n chain out {{ type nat hook output priority -100; \
                     policy accept;\n{rules} }}\n}}\n"
                ),
            );
        }
        let mut g = GeoCluster {
            nodes,
            relay,
            ns,
            dir,
            flags: flags.iter().map(|s| (*s).to_owned()).collect(),
            sites: sites.to_vec(),
        };
        let first = g.spawn(0, &[]);
        g.nodes[0].server = Some(first);
        let init = json(&g.ctl("a1", &["--json", "cluster", "init"]));
        let fingerprint = init["ca_fingerprint"].as_str().expect("fp").to_owned();
        for i in 1..g.nodes.len() {
            let token = json(&g.ctl("a1", &["--json", "cluster", "join-token"]));
            let join = [
                "--join".to_owned(),
                g.nodes[0].rpc.clone(),
                "--join-token".to_owned(),
                token["token"].as_str().expect("token").to_owned(),
                "--ca-fingerprint".to_owned(),
                fingerprint.clone(),
            ];
            let s = g.spawn(i, &join);
            g.nodes[i].server = Some(s);
        }
        g.until_settled("six voters agree and every disk is online");
        g
    }

    fn spawn(&self, i: usize, extra: &[String]) -> Server {
        let n = &self.nodes[i];
        let home = self.dir.path().join(&n.name);
        let mut config = String::new();
        for d in 0..DISKS {
            config.push_str(&format!(
                "[[disk]]\npath = {:?}\nsite = {:?}\n",
                home.join(format!("disk{d}")),
                n.site
            ));
        }
        std::fs::create_dir_all(&home).expect("home");
        let config_path = home.join("stele.toml");
        std::fs::write(&config_path, config).expect("config");
        let mut args: Vec<String> = vec![
            "--data".into(),
            home.join("data").to_str().expect("path").into(),
            "--key-dir".into(),
            home.join("keys").to_str().expect("path").into(),
            "--config".into(),
            config_path.to_str().expect("path").into(),
            "--cluster-addr".into(),
            n.rpc.clone(),
            // Plain HTTP on the namespaces' own addresses (TLS is tls.rs's subject).
            "--tls".into(),
            "off".into(),
        ];
        args.extend(self.flags.iter().cloned());
        args.extend(extra.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_in(&self.ns, n.site, &refs, self.dir.path())
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The running node `name`.
    pub fn server(&self, name: &str) -> &Server {
        self.nodes[self.index(name)]
            .server
            .as_ref()
            .unwrap_or_else(|| panic!("{name} is stopped"))
    }

    /// `name`'s site.
    pub fn site_of(&self, name: &str) -> &'static str {
        self.nodes[self.index(name)].site
    }

    /// The names of the running nodes.
    pub fn running(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.server.is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    /// `stelectl ARGS` against node `name`, from inside its site.
    pub fn ctl(&self, name: &str, args: &[&str]) -> String {
        ctl_in(&self.ns, self.site_of(name), self.server(name), args)
    }

    /// `stelectl ARGS` against node `name`, expecting a failure: its output.
    pub fn ctl_fails(&self, name: &str, args: &[&str]) -> String {
        crate::sites::ctl_in_fails(&self.ns, self.site_of(name), self.server(name), args)
    }

    /// An admin API call to node `name` from inside its site: (status, body).
    pub fn admin(&self, name: &str, method: &str, path: &str) -> (u16, String) {
        let s = self.server(name);
        self.ns
            .run_in(self.site_of(name), || s.admin(method, path, None))
            .expect("in the site")
    }

    /// Runs `f` (async, on a fresh runtime) on a thread inside `site`: its connections
    /// start there.
    pub fn in_site<T: Send, F: std::future::Future<Output = T>>(
        &self,
        site: &str,
        f: impl FnOnce() -> F + Send,
    ) -> T {
        self.ns
            .run_in(site, || runtime().block_on(f()))
            .expect("in the site")
    }

    /// `cmd` (a client: aws, restic) run inside `site` instead, with its arguments and
    /// environment.
    pub fn command_in(&self, site: &str, cmd: &Command) -> Command {
        let mut c = self.ns.command(site, cmd.get_program());
        c.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// SIGKILLs every node of `site`.
    pub fn kill_site(&mut self, site: &str) {
        for n in self.nodes.iter_mut().filter(|n| n.site == site) {
            if let Some(s) = n.server.take() {
                s.kill();
            }
        }
    }

    /// Drops the handles of `site`'s nodes (killed by pid meanwhile: each is reaped).
    pub fn forget_site(&mut self, site: &str) {
        for n in self.nodes.iter_mut().filter(|n| n.site == site) {
            n.server = None;
        }
    }

    /// Starts the nodes of `site` again (their data and identities kept).
    pub fn restart_site(&mut self, site: &str) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].site == site && self.nodes[i].server.is_none() {
                let s = self.spawn(i, &[]);
                self.nodes[i].server = Some(s);
            }
        }
    }

    /// Cuts (blackholes) every relay link into and out of `site`.
    pub fn cut_site(&self, site: &str) {
        for name in self.site_links(site) {
            self.relay.cut(&name);
        }
    }

    /// Heals what [`GeoCluster::cut_site`] cut.
    pub fn heal_site(&self, site: &str) {
        for name in self.site_links(site) {
            self.relay.heal(&name);
        }
    }

    fn site_links(&self, site: &str) -> Vec<String> {
        self.sites
            .iter()
            .flat_map(|from| {
                self.nodes
                    .iter()
                    .filter(move |n| n.site != *from && (*from == site || n.site == site))
                    .map(move |n| format!("{from}-{}", n.name))
            })
            .collect()
    }

    /// The running nodes' `cluster status --json`.
    pub fn statuses(&self) -> Vec<serde_json::Value> {
        self.running()
            .iter()
            .map(|n| json(&self.ctl(n, &["--json", "cluster", "status"])))
            .collect()
    }

    /// Polls until `f` holds over the running nodes' statuses (a bound on progress of
    /// 120 s for a loaded machine, not a speed check).
    pub fn until(&self, what: &str, f: impl Fn(&[serde_json::Value]) -> bool) {
        let start = Instant::now();
        loop {
            let all = self.statuses();
            if f(&all) {
                return;
            }
            if start.elapsed() > Duration::from_secs(120) {
                panic!("not within 120 s: {what}: {all:#?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until every node runs, all agree on one leader (every node a voter) and one
    /// applied log position, and each sees every disk online.
    pub fn until_settled(&self, what: &str) {
        let disks = self.nodes.len() * DISKS;
        self.until(what, |all| {
            all.len() == self.nodes.len()
                && crate::sites::raft_agree(all, self.nodes.len())
                && all.iter().all(|v| {
                    v["raft"]["last_applied"] == all[0]["raft"]["last_applied"]
                        && v["disks"].as_array().is_some_and(|d| {
                            d.len() == disks && d.iter().all(|d| d["state"] == "online")
                        })
                })
        });
    }

    /// `GET /v1/repair` of node `name`.
    pub fn repair_status(&self, name: &str) -> serde_json::Value {
        let (status, body) = self.admin(name, "GET", "/v1/repair");
        assert_eq!(status, 200, "{body}");
        json(&body)
    }

    /// The disk folders of node `name`.
    pub fn disks(&self, name: &str) -> Vec<PathBuf> {
        (0..DISKS)
            .map(|d| self.dir.path().join(name).join(format!("disk{d}")))
            .collect()
    }
}
