//! The WAN relay (`stele-relay`) and the namespace harness: each test fails if the relay does
//! not do what it claims (bytes unchanged when up, delay, rate, corruption, cut, one-way cut,
//! reset, control errors, clean exits) or if namespaces do not join or tear down.
//!
//! Times are only ever checked from below (a delay or a rate cap must cost at least so
//! much); no test asserts that something is fast.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rand::Rng;
use stele_tests::netns::Netns;
use stele_tests::relay::{Dir, Relay, Shape};

/// Upper bound on any wait for data that should come.
const PATIENCE: Duration = Duration::from_secs(10);

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rng().fill(&mut v[..]);
    v
}

/// A target listener on loopback and a relay with one link "l" in front of it.
fn relay_to_listener() -> (TcpListener, Relay) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let target = listener.local_addr().expect("addr").to_string();
    let relay = Relay::start(&[("l", "127.0.0.1:0", &target)]);
    (listener, relay)
}

/// Accepts one connection within `within`, or None.
fn accept_within(listener: &TcpListener, within: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + within;
    let got = loop {
        match listener.accept() {
            Ok((s, _)) => break Some(s),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    listener.set_nonblocking(false).expect("blocking");
    let s = got?;
    s.set_nonblocking(false).expect("blocking stream");
    Some(s)
}

/// A connection through `addr` (a relay link) and its far end accepted from `listener`:
/// (client, server), both with read timeouts.
fn pair_via(addr: SocketAddr, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect to the relay");
    let server = accept_within(listener, PATIENCE).expect("the relay connects to the target");
    for s in [&client, &server] {
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
    }
    (client, server)
}

fn read_exact_within(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("read the expected bytes");
    buf
}

/// Asserts nothing arrives on `s` for `quiet`: no data, no end of stream, no reset.
fn assert_silent(s: &mut TcpStream, quiet: Duration, what: &str) {
    s.set_read_timeout(Some(quiet)).expect("timeout");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("{what}: end of stream during a cut"),
        Ok(n) => panic!("{what}: {n} bytes arrived during a cut"),
        Err(e) => panic!("{what}: {e} during a cut"),
    }
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
}

/// Sends `data` then half-closes, on a thread; returns the thread.
fn send_and_close(mut s: TcpStream, data: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        s.write_all(&data).expect("write");
        s.shutdown(Shutdown::Write).expect("shutdown");
    })
}

fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to end");
    out
}

#[test]
fn up_link_passes_bytes_unchanged_both_ways() {
    let (listener, relay) = relay_to_listener();
    let (client, server) = pair_via(relay.link_addr("l"), &listener);
    let up = random_bytes(4 << 20);
    let down = random_bytes(3 << 20);
    let (mut client_r, mut server_r) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let tx_up = send_and_close(client, up.clone());
    let tx_down = send_and_close(server, down.clone());
    let got_up = std::thread::spawn(move || read_to_end(&mut server_r));
    let got_down = read_to_end(&mut client_r);
    let got_up = got_up.join().expect("server reader");
    tx_up.join().expect("client writer");
    tx_down.join().expect("server writer");

    assert_eq!(got_up.len(), up.len(), "client → server length");
    assert_eq!(got_down.len(), down.len(), "server → client length");
    assert_eq!(
        blake3::hash(&got_up),
        blake3::hash(&up),
        "client → server bytes"
    );
    assert_eq!(
        blake3::hash(&got_down),
        blake3::hash(&down),
        "server → client bytes"
    );
    // Each side saw the other's end of stream only after all bytes: the counters are final.
    let st = relay.stats("l");
    assert_eq!(st.fwd_bytes, up.len() as u64);
    assert_eq!(st.rev_bytes, down.len() as u64);
    assert_eq!(st.corrupted_bytes, 0);
    assert_eq!(st.connections, 1);
    assert_eq!(st.state, "up");
}

#[test]
fn delay_costs_a_round_trip_at_least_twice_the_delay() {
    let (listener, relay) = relay_to_listener();
    let shape = Shape {
        delay_ms: 100,
        ..Shape::default()
    };
    relay.set("l", Dir::Both, shape);
    let (mut client, mut server) = pair_via(relay.link_addr("l"), &listener);
    let echo = std::thread::spawn(move || {
        let ping = read_exact_within(&mut server, 4);
        server.write_all(b"pong").expect("pong");
        ping
    });
    let t0 = Instant::now();
    client.write_all(b"ping").expect("ping");
    let pong = read_exact_within(&mut client, 4);
    let rtt = t0.elapsed();
    assert_eq!(echo.join().expect("echo"), b"ping");
    assert_eq!(pong, b"pong");
    assert!(
        rtt >= Duration::from_millis(195),
        "round trip {rtt:?} with 100 ms each way"
    );
}

#[test]
fn jitter_never_reorders_chunks() {
    let (listener, relay) = relay_to_listener();
    let shape = Shape {
        delay_ms: 30,
        jitter_ms: 25,
        ..Shape::default()
    };
    relay.set("l", Dir::Fwd, shape);
    let (mut client, mut server) = pair_via(relay.link_addr("l"), &listener);
    const N: u32 = 200;
    let writer = std::thread::spawn(move || {
        // Separate writes with pauses, so the relay reads (and delays) them as separate chunks.
        for i in 0..N {
            client.write_all(&i.to_be_bytes()).expect("write");
            std::thread::sleep(Duration::from_millis(1));
        }
        client.shutdown(Shutdown::Write).expect("shutdown");
    });
    let got = read_to_end(&mut server);
    writer.join().expect("writer");
    let want: Vec<u8> = (0..N).flat_map(u32::to_be_bytes).collect();
    assert!(got == want, "the chunks arrived reordered or changed");
}

#[test]
fn corruption_flips_bits_and_is_counted() {
    let (listener, relay) = relay_to_listener();
    let shape = Shape {
        corrupt_prob: 0.01,
        ..Shape::default()
    };
    relay.set("l", Dir::Fwd, shape);
    let (client, mut server) = pair_via(relay.link_addr("l"), &listener);
    let sent = random_bytes(1 << 20);
    let tx = send_and_close(client, sent.clone());
    let got = read_to_end(&mut server);
    tx.join().expect("writer");
    assert_eq!(
        got.len(),
        sent.len(),
        "corruption changes bytes, not lengths"
    );
    let mut differing = 0u64;
    for (a, b) in got.iter().zip(&sent) {
        if a != b {
            differing += 1;
            assert_eq!(
                (a ^ b).count_ones(),
                1,
                "one bit flipped per corrupted byte"
            );
        }
    }
    // p = 0.01 over 1 MiB: about 10,486 bytes (standard deviation about 102).
    assert!(
        (5_000..20_000).contains(&differing),
        "{differing} bytes differ"
    );
    let st = relay.stats("l");
    assert_eq!(st.fwd_corrupted, differing, "stats count what changed");
    assert_eq!(st.rev_corrupted, 0);
    assert_eq!(st.corrupted_bytes, differing);
}

#[test]
fn cut_blackholes_until_heal_then_the_same_connection_resumes() {
    let (listener, relay) = relay_to_listener();
    let (mut client, mut server) = pair_via(relay.link_addr("l"), &listener);
    client.write_all(b"one").expect("write");
    assert_eq!(read_exact_within(&mut server, 3), b"one");

    relay.cut("l");
    assert_eq!(relay.stats("l").state, "cut");
    client.write_all(b"two").expect("write during the cut");
    server.write_all(b"back").expect("write during the cut");
    // A new connection is accepted, but does not reach the target while cut.
    let mut late = TcpStream::connect_timeout(&relay.link_addr("l"), PATIENCE)
        .expect("the relay accepts during a cut");
    late.set_read_timeout(Some(PATIENCE)).expect("timeout");
    late.write_all(b"three").expect("write");
    assert_silent(&mut server, Duration::from_secs(1), "server");
    assert_silent(&mut client, Duration::from_millis(200), "client");
    assert_silent(&mut late, Duration::from_millis(200), "new client");
    assert!(
        accept_within(&listener, Duration::from_millis(200)).is_none(),
        "the relay connected to the target during a cut"
    );

    relay.heal("l");
    assert_eq!(read_exact_within(&mut server, 3), b"two");
    assert_eq!(read_exact_within(&mut client, 4), b"back");
    let mut late_server = accept_within(&listener, PATIENCE).expect("connects after heal");
    late_server
        .set_read_timeout(Some(PATIENCE))
        .expect("timeout");
    assert_eq!(read_exact_within(&mut late_server, 5), b"three");
    let st = relay.stats("l");
    assert_eq!(st.state, "up");
    assert_eq!(st.connections, 2);
}

#[test]
fn cut_oneway_blackholes_only_client_to_target() {
    let (listener, relay) = relay_to_listener();
    let (mut client, mut server) = pair_via(relay.link_addr("l"), &listener);
    relay.cut_oneway("l");
    client.write_all(b"up").expect("write");
    server.write_all(b"down").expect("write");
    assert_eq!(
        read_exact_within(&mut client, 4),
        b"down",
        "rev still flows"
    );
    assert_silent(&mut server, Duration::from_secs(1), "server");
    relay.heal("l");
    assert_eq!(read_exact_within(&mut server, 2), b"up");
}

#[test]
fn reset_sends_rst_to_both_sides_and_the_link_stays_usable() {
    let (listener, relay) = relay_to_listener();
    let (mut client, mut server) = pair_via(relay.link_addr("l"), &listener);
    client.write_all(b"hi").expect("write");
    assert_eq!(read_exact_within(&mut server, 2), b"hi");
    // Reset also ends a cut.
    relay.cut("l");
    relay.reset("l");
    let mut buf = [0u8; 8];
    for (s, who) in [(&mut client, "client"), (&mut server, "server")] {
        match s.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("{who} should see a reset (RST), got {other:?}"),
        }
    }
    let st = relay.stats("l");
    assert_eq!(st.state, "up");
    let (mut client, mut server) = pair_via(relay.link_addr("l"), &listener);
    client.write_all(b"again").expect("write");
    assert_eq!(read_exact_within(&mut server, 5), b"again");
}

#[test]
fn rate_limit_slows_a_transfer_to_the_rate() {
    let (listener, relay) = relay_to_listener();
    let shape = Shape {
        rate_bytes_per_s: 512 * 1024,
        ..Shape::default()
    };
    relay.set("l", Dir::Fwd, shape);
    let (client, mut server) = pair_via(relay.link_addr("l"), &listener);
    let sent = random_bytes(1 << 20);
    let t0 = Instant::now();
    let tx = send_and_close(client, sent.clone());
    let got = read_to_end(&mut server);
    let took = t0.elapsed();
    tx.join().expect("writer");
    assert!(got == sent, "bytes changed");
    // 1 MiB at 512 KiB/s is 2 s; the bucket's burst is a few KiB.
    assert!(
        took >= Duration::from_millis(1500),
        "1 MiB at 512 KiB/s took {took:?}"
    );
}

#[test]
fn control_refuses_bad_commands() {
    let (_listener, relay) = relay_to_listener();
    for bad in [
        "set nosuch both 0 0 0 0",
        "set l sideways 0 0 0 0",
        "set l both 0 0 0 2",
        "set l both ten 0 0 0",
        "set l both 0 0 0",
        "cut",
        "stats nosuch",
        "dance l",
    ] {
        assert!(relay.command(bad).is_err(), "`{bad}` was accepted");
    }
    // The connection survives refusals.
    assert_eq!(relay.command("heal l").as_deref(), Ok("ok"));
}

#[test]
fn quit_and_sigterm_exit_cleanly() {
    let (_listener, relay) = relay_to_listener();
    assert_eq!(relay.quit(PATIENCE), Some(0), "exit code after quit");
    let (_listener, relay) = relay_to_listener();
    assert_eq!(
        relay.terminate(PATIENCE),
        Some(0),
        "exit code after SIGTERM"
    );
}

/// Site A reaches site B only through the relay in `wan`; dropping the harness removes its
/// namespaces.
#[test]
fn relay_in_wan_joins_two_site_namespaces() {
    if !Netns::require_or_skip("relay_in_wan_joins_two_site_namespaces") {
        return;
    }
    let ns = Netns::create(&["a", "b"]).expect("namespaces");
    let names = ns.names();
    assert_eq!(names.len(), 3);
    let listed = netns_list();
    for n in &names {
        assert!(listed.contains(n), "{n} not in `ip netns list`: {listed:?}");
    }
    let relay_pid;
    {
        let b_listener = ns
            .listen("b", SocketAddr::new(ns.addr("b").into(), 0))
            .expect("listen in b");
        let b_addr = b_listener.local_addr().expect("addr");
        let relay = Relay::start_in(
            &ns,
            "wan",
            &[("ab", &format!("{}:0", ns.wan_addr()), &b_addr.to_string())],
        );
        relay_pid = relay.pid();
        let comm = std::fs::read_to_string(format!("/proc/{relay_pid}/comm")).expect("comm");
        assert_eq!(comm.trim(), "stele-relay", "the spawned pid is the relay's");

        let link = relay.link_addr("ab");
        assert_eq!(link.ip(), std::net::IpAddr::from(ns.wan_addr()));
        let client = ns.connect("a", link, PATIENCE).expect("a → relay in wan");
        let server = accept_within(&b_listener, PATIENCE).expect("relay → b");
        for s in [&client, &server] {
            s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        }
        let up = random_bytes(1 << 20);
        let down = random_bytes(1 << 20);
        let (mut client_r, mut server_r) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        let t1 = send_and_close(client, up.clone());
        let t2 = send_and_close(server, down.clone());
        let got_up = std::thread::spawn(move || read_to_end(&mut server_r));
        let got_down = read_to_end(&mut client_r);
        let got_up = got_up.join().expect("reader");
        t1.join().expect("writer");
        t2.join().expect("writer");
        assert_eq!(blake3::hash(&got_up), blake3::hash(&up), "a → b bytes");
        assert_eq!(blake3::hash(&got_down), blake3::hash(&down), "b → a bytes");
        assert_eq!(relay.stats("ab").fwd_bytes, up.len() as u64);

        // No way around the relay: a cannot reach b directly (isolated bridge ports).
        assert!(
            ns.connect("a", b_addr, Duration::from_secs(1)).is_err(),
            "a reached b without the relay"
        );
        // The relay (dropped here) goes before the namespaces.
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{relay_pid}")).exists(),
        "the relay process is gone"
    );
    drop(ns);
    let listed = netns_list();
    for n in &names {
        assert!(
            !listed.contains(n),
            "{n} still in `ip netns list` after drop"
        );
    }
}

/// The names `ip netns list` shows (first word of each line).
fn netns_list() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(out.status.success(), "ip netns list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}
