//! The router against a real kernel, inside a network namespace of its own so the host's
//! routing is never touched. The outer test creates the namespace and re-runs this test
//! binary inside it (`ip netns exec`), asking for the inner test alone; the inner test does
//! nothing unless that run marked it with an environment variable.

use super::{Router, RouterConfig};
use crate::platform::bind::pinning::pin_socket;
use crate::platform::bind::policy::SocketFamily;
use crate::platform::tun::Tun;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

const INNER_ENV: &str = "WEFT_ROUTER_NETNS_INNER";
const INNER_TEST: &str = "platform::router::netns_test::inner_router_session";
const OUR_PREFS: [&str; 4] = ["5210:", "5230:", "5250:", "5270:"];

#[test]
fn router_works_in_a_fresh_network_namespace() {
    if std::env::var_os(INNER_ENV).is_some() {
        return; // Already inside the namespace, where only the inner test was asked for.
    }
    if let Some(reason) = reason_to_skip() {
        return skip(&reason);
    }
    let namespace = match Namespace::create() {
        Ok(namespace) => namespace,
        Err(reason) => return skip(&reason),
    };
    let exe = std::env::current_exe().expect("path of the test binary");
    let output = Command::new("ip")
        .args(["netns", "exec", &namespace.name])
        .arg(exe)
        .args(["--exact", INNER_TEST, "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, "1")
        .output()
        .expect("run the inner test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "inner test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "inner test did not run:\n{stdout}\n{stderr}");
}

/// Prints why the test cannot run here; under `WEFT_LAB_REQUIRE=1` (as `make test` sets,
/// where root and `ip` are provided) not running is a failure.
fn skip(reason: &str) {
    if std::env::var("WEFT_LAB_REQUIRE").as_deref() == Ok("1") {
        panic!("the network-namespace router test cannot run: {reason}");
    }
    println!("skipping the network-namespace router test: {reason}");
}

fn reason_to_skip() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("the `ip` tool is not available".into()),
    }
}

/// A namespace that is deleted however the test ends.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create() -> Result<Namespace, String> {
        let name = format!("weft-router-test-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|err| err.to_string())?;
        if !out.status.success() {
            return Err(format!("ip netns add: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(Namespace { name })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[test]
fn inner_router_session() {
    if std::env::var_os(INNER_ENV).is_none() {
        return;
    }
    let tun = Tun::open("wefttest0").expect("open TUN");
    let name = tun.name().to_string();
    let mut router = Router::new().expect("router");
    let ipv6 = router.has_ipv6();
    let mut config = RouterConfig {
        tun: name.clone(),
        mtu: 1280,
        addresses: prefixes(&["100.64.0.1/32", "fd7a:115c:a1e0::1/128"]),
        routes: prefixes(&["100.64.0.2/32", "10.1.0.0/16", "fd7a:115c:a1e0::/48"]),
        ..RouterConfig::default()
    };
    router.apply(&config).expect("first apply");

    let link = ip(&["address", "show", "dev", &name]);
    for expected in ["mtu 1280", ",UP", "inet 100.64.0.1/32"] {
        assert!(link.contains(expected), "{expected} missing from\n{link}");
    }
    let table = ip(&["-4", "route", "show", "table", "52"]);
    assert!(table.contains(&format!("100.64.0.2 dev {name}")), "{table}");
    assert!(table.contains(&format!("10.1.0.0/16 dev {name}")), "{table}");
    assert_eq!(count_our_rules("-4"), 4, "{}", ip(&["-4", "rule", "show"]));
    if ipv6 {
        assert!(link.contains("inet6 fd7a:115c:a1e0::1/128"), "{link}");
        let table6 = ip(&["-6", "route", "show", "table", "52"]);
        assert!(table6.contains(&format!("fd7a:115c:a1e0::/48 dev {name}")), "{table6}");
        assert_eq!(count_our_rules("-6"), 4, "{}", ip(&["-6", "rule", "show"]));
    }
    packets_follow_the_rules(&tun);

    config.routes = prefixes(&["100.64.0.2/32", "10.2.0.0/16", "fd7a:115c:a1e0::/48"]);
    router.apply(&config).expect("second apply");
    let table = ip(&["-4", "route", "show", "table", "52"]);
    assert!(!table.contains("10.1.0.0/16") && table.contains("10.2.0.0/16"), "{table}");

    router.shutdown().expect("shutdown");
    assert_nothing_of_ours_left(ipv6);

    let mut crashed = Router::new().expect("router of the crashed run");
    crashed.apply(&config).expect("apply of the crashed run");
    drop(crashed);
    let mut restarted = Router::new().expect("router after the crash");
    restarted.apply(&config).expect("apply over leftovers accepts what exists");
    drop(restarted);
    Router::remove_stale(&name).expect("remove leftovers");
    assert_nothing_of_ours_left(ipv6);
    Router::remove_stale(&name).expect("nothing left to remove");
    Router::remove_stale("nosuchdev0").expect("leftovers of a vanished device");
}

/// Unmarked traffic to a peer enters the TUN through table 52; the daemon's marked traffic
/// must not, and here (no other routes) finds no way out at all.
fn packets_follow_the_rules(tun: &Tun) {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket.send_to(b"hello", "100.64.0.2:9").expect("send to a peer");
    assert!(wait_for_packet_to(tun, [100, 64, 0, 2]), "no packet arrived on the TUN");

    pin_socket(socket.as_raw_fd(), SocketFamily::Ipv4).expect("SO_MARK");
    assert!(socket.send_to(b"hello", "100.64.0.2:9").is_err(), "marked packet was routed");
}

fn wait_for_packet_to(tun: &Tun, destination: [u8; 4]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut raw = [0u8; 2048];
    // With offloads on, every read starts with a virtio_net_hdr.
    let skip = if tun.has_vnet_hdr() { crate::packet::gso::VIRTIO_NET_HDR_LEN } else { 0 };
    while Instant::now() < deadline {
        match tun.read(&mut raw) {
            Ok(n)
                if n >= skip + 20
                    && raw[skip] >> 4 == 4
                    && raw[skip + 16..skip + 20] == destination =>
            {
                return true
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(err) => panic!("TUN read: {err}"),
        }
    }
    false
}

fn assert_nothing_of_ours_left(ipv6: bool) {
    let families: &[&str] = if ipv6 { &["-4", "-6"] } else { &["-4"] };
    for &family in families {
        assert_eq!(count_our_rules(family), 0, "{}", ip(&[family, "rule", "show"]));
        let table = ip(&[family, "route", "show", "table", "52"]);
        assert!(table.trim().is_empty(), "table 52 still holds:\n{table}");
    }
}

fn count_our_rules(family: &str) -> usize {
    ip(&[family, "rule", "show"])
        .lines()
        .filter(|line| OUR_PREFS.iter().any(|pref| line.starts_with(pref)))
        .count()
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn prefixes(list: &[&str]) -> Vec<crate::prefix::Prefix> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}
