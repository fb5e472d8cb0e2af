//! The daemon's sockets: made non-blocking and close-on-exec, and kept off the tunnel.
//!
//! When table 52 holds a route that covers a peer's, DERP's or control's address (an exit
//! node's `0.0.0.0/0`, a subnet route), the daemon's encrypted UDP and TCP would be routed
//! back into its own TUN. Marked sockets match the bypass rules (prefs 5210–5250) instead and
//! use the main table.

use super::bind::pinning::pin_socket;
use super::bind::policy::SocketFamily;
use super::sockaddr::to_sockaddr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The fwmark that tells the policy rules "this packet comes from the daemon itself".
/// It sits in the bits 0xff0000 that the Tailscale scheme reserves for itself.
pub(crate) const BYPASS_MARK: u32 = 0x80000;

/// socket(2) as an owned descriptor: the one place the daemon makes a socket by hand (the
/// UDP/TCP sockets here, the netlink and routing sockets, macOS's control sockets).
pub(crate) fn raw_socket(
    domain: libc::c_int,
    kind: libc::c_int,
    protocol: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); ownership passes to the OwnedFd right after.
    let fd = unsafe { libc::socket(domain, kind, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes reads on a blocking socket give up after `timeout` (`WouldBlock`): for the
/// kernel sockets asked one question and read at once, which must not hang the loop on a
/// kernel that never answers.
// Linux's netlink dump and illumos's route lookup; the BSDs and macOS read by sysctl.
#[cfg_attr(not(any(target_os = "linux", target_os = "illumos")), allow(dead_code))]
pub(crate) fn set_receive_timeout(fd: RawFd, timeout: std::time::Duration) -> io::Result<()> {
    // Seconds clamped to what a 32-bit time_t holds; microseconds are under a million.
    let seconds = timeout.as_secs().min(i32::MAX as u64);
    let timeout = libc::timeval { tv_sec: seconds as _, tv_usec: timeout.subsec_micros() as _ };
    // SAFETY: the option value is a live timeval whose size we pass alongside it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A fresh non-blocking, close-on-exec socket of `addr`'s family.
fn open(addr: &SocketAddr, kind: libc::c_int) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let owned = raw_socket(domain, kind | CREATE_FLAGS, 0)?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    super::fd::set_nonblocking_cloexec(owned.as_raw_fd())?;
    Ok(owned)
}

/// Makes a socket non-blocking and close-on-exec as it is created, where the OS can.
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const CREATE_FLAGS: libc::c_int = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
/// Apple's `socket(2)` takes no such flags: [`open`] sets them afterwards.
#[cfg(any(target_os = "macos", target_os = "ios"))]
const CREATE_FLAGS: libc::c_int = 0;

/// A non-blocking, close-on-exec IPv4 UDP socket bound to nothing: what holds a socket's
/// place while the port it had is bound again (see `daemon::udp`).
pub(crate) fn unbound_udp() -> io::Result<std::net::UdpSocket> {
    let any = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0));
    open(&any, libc::SOCK_DGRAM).map(std::net::UdpSocket::from)
}

/// A non-blocking UDP socket bound to `addr`, pinned to bypass the tunnel before it can send
/// (`bind::pinning::pin_socket`: the mark on Linux); an IPv6 one is v6-only, so an IPv4
/// socket can hold the same port. A failed pin (no CAP_NET_ADMIN) is logged, not fatal:
/// without tunnel routes over our peers it is not needed.
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    bind_udp_pinned(addr, true)
}

/// [`bind_udp`] for a socket that talks to `peers` only (nameservers): pinned unless, off
/// Linux, every peer of `addr`'s family is on loopback (a local resolver), which a socket bound
/// to the physical interface or pointed at a second table could not reach at all. On Linux it
/// is pinned as always: the mark is harmless there, as the local table comes first.
pub(crate) fn bind_udp_towards(
    addr: SocketAddr,
    peers: &[SocketAddr],
) -> io::Result<std::net::UdpSocket> {
    bind_udp_pinned(addr, pins_towards(addr, peers, cfg!(target_os = "linux")))
}

/// Whether a socket on `addr` for `peers` is pinned ([`bind_udp_towards`]).
fn pins_towards(addr: SocketAddr, peers: &[SocketAddr], on_linux: bool) -> bool {
    let mut family = peers.iter().filter(|peer| peer.is_ipv6() == addr.is_ipv6()).peekable();
    let loopback_only = family.peek().is_some() && family.all(|peer| peer.ip().is_loopback());
    on_linux || !loopback_only
}

/// Says once per run, then only at debug, that a UDP socket could not be pinned: the
/// cause (no CAP_NET_ADMIN) is the same for every socket, and MagicDNS opens one per query.
fn warn_unpinned_once(addr: SocketAddr, e: &io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        log::debug!("could not pin the UDP socket on {addr} to bypass the tunnel: {e}");
    } else {
        log::warn!("could not pin the UDP socket on {addr} to bypass the tunnel: {e}");
    }
}

fn bind_udp_pinned(addr: SocketAddr, pin: bool) -> io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::from(open(&addr, libc::SOCK_DGRAM)?);
    if addr.is_ipv6() {
        set_int_option(socket.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    if pin {
        if let Err(e) = pin_socket(socket.as_raw_fd(), SocketFamily::of(&addr)) {
            warn_unpinned_once(addr, &e);
        }
    }
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of `len` bytes for the socket's family.
    let rc = unsafe {
        libc::bind(socket.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// A non-blocking connect to `addr` on a socket pinned before the SYN leaves, so the route
/// chosen is never the tunnel's (loopback needs no pin).
pub(crate) fn connect_tcp(addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    let stream = std::net::TcpStream::from(open(&addr, libc::SOCK_STREAM)?);
    if !addr.ip().is_loopback() {
        if let Err(e) = pin_socket(stream.as_raw_fd(), SocketFamily::of(&addr)) {
            log::debug!("TCP socket to {addr} not pinned: {e}");
        }
    }
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: storage holds a sockaddr of `len` bytes for the socket's family.
    let rc = unsafe {
        libc::connect(stream.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Socket buffer size asked for: bursts of a fast TCP stream through the tunnel overflow the
/// default (~200 KiB) and every overflow is a lost packet TCP must retransmit.
const BULK_BUFFER_BYTES: libc::c_int = 4 << 20;

/// Raises both socket buffers of `fd` for bulk traffic; on Linux past the sysctl maximum when
/// we are root (the FORCE variants). Failure leaves the defaults, which work, only slower.
pub(crate) fn grow_buffers(fd: RawFd) {
    for (force, plain) in BUFFER_OPTIONS {
        let forced = force.is_some_and(|force| {
            set_int_option(fd, libc::SOL_SOCKET, force, BULK_BUFFER_BYTES).is_ok()
        });
        if !forced {
            let _ = set_int_option(fd, libc::SOL_SOCKET, plain, BULK_BUFFER_BYTES);
        }
    }
}

/// The receive and send buffer options, each with its privileged variant where there is one.
#[cfg(target_os = "linux")]
const BUFFER_OPTIONS: [(Option<libc::c_int>, libc::c_int); 2] =
    [(Some(libc::SO_RCVBUFFORCE), libc::SO_RCVBUF), (Some(libc::SO_SNDBUFFORCE), libc::SO_SNDBUF)];
#[cfg(not(target_os = "linux"))]
const BUFFER_OPTIONS: [(Option<libc::c_int>, libc::c_int); 2] =
    [(None, libc::SO_RCVBUF), (None, libc::SO_SNDBUF)];

/// `setsockopt` of one `int`-sized option.
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn both_families_share_a_port_and_talk() {
        let v4 = bind_udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = v4.local_addr().unwrap().port();
        // v6-only: the IPv6 socket can take the same port (where the host has IPv6).
        if let Ok(v6) = bind_udp(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            assert_eq!(v6.local_addr().unwrap().port(), port);
        }
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"hi", v4.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let n = loop {
            match v4.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "nothing arrived");
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"hi", "non-blocking and bound");
    }

    #[test]
    fn a_socket_for_loopback_nameservers_only_is_pinned_on_linux_only() {
        let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
        let local4: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let local6: SocketAddr = "[::1]:53".parse().unwrap();
        let remote4: SocketAddr = "192.0.2.53:53".parse().unwrap();
        assert!(!pins_towards(any4, &[local4, local6], false));
        assert!(!pins_towards(any6, &[remote4, local6], false), "only its own family counts");
        assert!(pins_towards(any4, &[local4, remote4], false));
        assert!(pins_towards(any4, &[local6], false), "no peer of its family: pinned");
        assert!(pins_towards(any4, &[local4], true));
        // And it talks to loopback wherever the tests run.
        let server = std::net::UdpSocket::bind(local4.ip().to_string() + ":0").unwrap();
        let socket = bind_udp_towards(any4, &[server.local_addr().unwrap()]).unwrap();
        socket.send_to(b"q", server.local_addr().unwrap()).unwrap();
        server.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        assert_eq!(server.recv(&mut [0u8; 4]).unwrap(), 1);
    }

    #[test]
    fn a_connect_starts_without_blocking() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = connect_tcp(listener.local_addr().unwrap()).unwrap();
        let (accepted, from) = listener.accept().unwrap();
        assert_eq!(from, stream.local_addr().unwrap());
        drop(accepted);
    }

    /// No child the daemon starts (`ip`, `route`) may inherit a socket, and the loop must never
    /// block on one: both flags are set on every OS, by socket(2) or by fcntl on Darwin.
    #[test]
    fn sockets_are_close_on_exec_and_non_blocking() {
        let udp = bind_udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = connect_tcp(listener.local_addr().unwrap()).unwrap();
        for fd in [udp.as_raw_fd(), tcp.as_raw_fd()] {
            // SAFETY: fcntl queries on descriptors owned by this test.
            let (fd_flags, status) =
                unsafe { (libc::fcntl(fd, libc::F_GETFD), libc::fcntl(fd, libc::F_GETFL)) };
            assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "close-on-exec");
            assert_ne!(status & libc::O_NONBLOCK, 0, "non-blocking");
        }
    }
}
