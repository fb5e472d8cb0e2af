//! The firewall table against a real kernel: a namespace of the test's own holds the TUN and
//! the router, a second one plays a LAN host on the far end of a veth pair. The LAN host
//! sends a datagram whose source is a tailnet address; with reverse-path filtering loose (as
//! systemd sets it) only weft's table stops it.

use super::{Router, RouterConfig};
use crate::packet::test_packets;
use crate::packet::{checksum_add, checksum_finish};
use crate::platform::tun::Tun;
use crate::testing::{in_new_network_namespace, ip};
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TUN: &str = "weftspoof0";
const RENAMED_TUN: &str = "weftspoof1";
/// The router's end of the veth pair, and the LAN host's.
const ROUTER_END: &str = "weftlan0";
const LAN_END: &str = "weftlan1";
const ROUTER_LAN_ADDRESS: &str = "10.77.0.1";
const LAN_ADDRESS: &str = "10.77.0.2";
/// A tailnet address the LAN host claims as its own.
const SPOOFED: &str = "100.64.0.7";
/// A peer behind the tunnel.
const PEER: &str = "100.64.0.2";

#[test]
fn tailnet_sources_are_dropped_unless_they_come_through_the_tun() {
    in_new_network_namespace("spoof-firewall", || {
        nft(&["--version"]).map_err(|e| format!("no usable nft: {e}"))?;
        let tun = Tun::open(TUN).map_err(|e| format!("open TUN: {e}"))?;
        let name = tun.name().to_string();
        let mut router = Router::new().expect("router");
        router.apply(&config(&name)).expect("apply");
        let table = list_table().expect("weft's table is installed with the routes");
        assert!(table.contains(&format!("iifname {{ \"lo\", \"{name}\" }} accept")), "{table}");

        let lan = LanHost::connect()?;
        loosen_reverse_path_filter(&name);
        let listener = UdpSocket::bind("0.0.0.0:0").expect("listening socket");
        listener.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let to_router = format!("{ROUTER_LAN_ADDRESS}:{port}");

        lan.honest.send_to(b"honest 1", &to_router).expect("send");
        assert_eq!(receive(&listener).as_deref(), Some("honest 1"), "the LAN path works");
        lan.spoofing.send_to(b"spoofed", &to_router).expect("send");
        lan.honest.send_to(b"honest 2", &to_router).expect("send");
        // Datagrams over one veth arrive in order: the spoofed one would come first.
        assert_eq!(receive(&listener).as_deref(), Some("honest 2"), "spoofed one let in");
        assert!(list_table().unwrap().contains("counter packets 1 "), "{}", list_table().unwrap());

        let through_tun = tailnet_datagram(SPOOFED, "100.64.0.1", port);
        tun.write(&through_tun).expect("write into the TUN");
        assert_eq!(receive(&listener).as_deref(), Some("data"), "the tunnel's way was blocked");
        forwarding_into_the_tunnel_keeps_tailnet_sources_out(&tun, &lan);

        let renamed = Tun::open(RENAMED_TUN).expect("open a second TUN");
        router.apply(&config(renamed.name())).expect("apply to the renamed TUN");
        let table = list_table().expect("the table stays through a rename");
        assert!(table.contains(renamed.name()) && !table.contains(&name), "{table}");

        router.shutdown().expect("shutdown");
        assert_eq!(list_table(), None, "the table outlived the shutdown");

        let mut crashed = Router::new().expect("router of the crashed run");
        crashed.apply(&config(&name)).expect("apply of the crashed run");
        drop(crashed);
        assert!(list_table().is_some(), "the crash left the table");
        Router::remove_stale(&name).expect("remove leftovers");
        assert_eq!(list_table(), None, "the next start left the table");
        Ok(())
    });
}

fn config(tun: &str) -> RouterConfig {
    RouterConfig {
        tun: tun.into(),
        mtu: 1280,
        addresses: vec!["100.64.0.1/32".parse().unwrap()],
        // The whole range through the tunnel, so loose reverse-path filtering passes it.
        routes: vec!["100.64.0.0/10".parse().unwrap()],
        ..RouterConfig::default()
    }
}

/// The LAN host's sockets, living in its own namespace: one sending from its real address,
/// one from the tailnet address it claims.
struct LanHost {
    honest: UdpSocket,
    spoofing: UdpSocket,
}

impl LanHost {
    /// Makes the veth pair here, moves one end into a namespace of a second thread, and has
    /// that thread address it and open the sockets (a socket stays in the namespace it was
    /// made in, and keeps that namespace alive).
    fn connect() -> Result<LanHost, String> {
        ip(&["link", "add", ROUTER_END, "type", "veth", "peer", "name", LAN_END])?;
        ip(&["address", "add", &format!("{ROUTER_LAN_ADDRESS}/24"), "dev", ROUTER_END])?;
        ip(&["link", "set", ROUTER_END, "up"])?;
        let (tid_sender, tid) = mpsc::channel();
        let (moved, wait_for_move) = mpsc::channel::<()>();
        let lan = std::thread::spawn(move || -> Result<LanHost, String> {
            // SAFETY: unshare only changes this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(format!("unshare: {}", std::io::Error::last_os_error()));
            }
            // SAFETY: gettid has no preconditions.
            let _ = tid_sender.send(unsafe { libc::syscall(libc::SYS_gettid) });
            wait_for_move.recv().map_err(|e| e.to_string())?;
            ip(&["address", "add", &format!("{LAN_ADDRESS}/24"), "dev", LAN_END])?;
            ip(&["address", "add", &format!("{SPOOFED}/32"), "dev", LAN_END])?;
            ip(&["link", "set", LAN_END, "up"])?;
            ip(&["route", "add", "100.64.0.0/10", "via", ROUTER_LAN_ADDRESS])?;
            let bind = |address: &str| UdpSocket::bind(format!("{address}:0"));
            Ok(LanHost {
                honest: bind(LAN_ADDRESS).map_err(|e| e.to_string())?,
                spoofing: bind(SPOOFED).map_err(|e| e.to_string())?,
            })
        });
        let tid = tid.recv().map_err(|_| "the LAN thread ended early".to_string())?;
        ip(&["link", "set", LAN_END, "netns", &tid.to_string()])?;
        let _ = moved.send(());
        lan.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// With the host a router (as for a subnet router or exit node), a LAN host's packets to a
/// peer are forwarded into the tunnel, but not with a tailnet source: a peer would take them
/// for another peer's.
fn forwarding_into_the_tunnel_keeps_tailnet_sources_out(tun: &Tun, lan: &LanHost) {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("enable forwarding");
    let to_peer = format!("{PEER}:9");
    lan.spoofing.send_to(b"spoofed", &to_peer).expect("send");
    lan.honest.send_to(b"honest", &to_peer).expect("send");
    // In order again: the spoofed one would be the first to reach the TUN.
    assert_eq!(next_source_towards(tun, PEER), Some(LAN_ADDRESS.parse().unwrap()));
}

/// The source of the next IPv4 packet the kernel sends into the TUN towards `destination`;
/// `None` after two seconds without one.
fn next_source_towards(tun: &Tun, destination: &str) -> Option<Ipv4Addr> {
    let destination: Ipv4Addr = destination.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    // With offloads on, every read starts with a virtio_net_hdr.
    let skip = if tun.has_vnet_hdr() { crate::packet::gso::VIRTIO_NET_HDR_LEN } else { 0 };
    let mut raw = [0u8; 2048];
    while Instant::now() < deadline {
        match tun.read(&mut raw) {
            Ok(n) if n >= skip + 20 && raw[skip] >> 4 == 4 => {
                let header = &raw[skip..skip + 20];
                let source: [u8; 4] = header[12..16].try_into().unwrap();
                if header[16..20] == destination.octets() {
                    return Some(source.into());
                }
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(err) => panic!("TUN read: {err}"),
        }
    }
    None
}

/// Reverse-path filtering as systemd leaves it (2, loose), under which a spoofed tailnet
/// source passes: the tunnel's route makes it "reachable".
fn loosen_reverse_path_filter(tun: &str) {
    for interface in ["all", "default", ROUTER_END, tun] {
        let path = format!("/proc/sys/net/ipv4/conf/{interface}/rp_filter");
        std::fs::write(&path, "2").unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// The next datagram's text; `None` after two seconds of silence.
fn receive(socket: &UdpSocket) -> Option<String> {
    let mut buffer = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

/// A UDP datagram ("data") as a peer's packet leaves the tunnel, with a valid IPv4 header
/// checksum (the kernel checks it; a zero UDP checksum means none).
fn tailnet_datagram(source: &str, destination: &str, port: u16) -> Vec<u8> {
    let mut packet = test_packets::udp(&format!("{source}:4000"), &format!("{destination}:{port}"));
    let checksum = checksum_finish(checksum_add(0, &packet[..20]));
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet
}

/// `nft list table inet weft`; `None` when there is no such table.
fn list_table() -> Option<String> {
    nft(&["list", "table", "inet", "weft"]).ok()
}

fn nft(args: &[&str]) -> Result<String, String> {
    let out = Command::new("nft").args(args).output().map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}
