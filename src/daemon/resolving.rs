//! The daemon's side of name resolution: reads `/etc/hosts`, asks the host's own nameservers
//! (`platform::dns::HostResolver`, never weft's changes to them), owns the
//! UDP sockets a [`Lookup`]'s queries leave from, and carries datagrams and deadlines between
//! them and the poll loop, so a slow nameserver never stalls the data path.

use crate::regular_file;
use crate::resolver::hosts;
use crate::resolver::lookup::Lookup;
use crate::resolver::resolv_conf::ResolvConf;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

const HOSTS_PATH: &str = "/etc/hosts";
/// We send no EDNS, so answers should fit in 512 bytes; room for more costs nothing and keeps
/// a generous server's answer whole rather than cut into something that fails to parse.
const MAX_RESPONSE_LEN: usize = 4096;

/// A lookup in flight with its sockets, registered with poll.
pub(super) struct Resolving {
    lookup: Lookup,
    /// Unconnected sockets, one for each family the nameservers use.
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

pub(super) enum Resolution {
    /// Known without asking anyone: an IP literal, a name in /etc/hosts, or an error.
    Finished(Result<Vec<IpAddr>, String>),
    Running(Box<Resolving>),
}

impl Resolving {
    /// Resolves `host` from /etc/hosts at once, or starts asking the host's nameservers
    /// (`conf`) with sockets registered under `token`. /etc/hosts is read on every call, so
    /// edits apply to the next connection attempt without a restart.
    pub(super) fn begin(
        host: &str,
        conf: &ResolvConf,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> Resolution {
        let pinned = hosts::addresses(&read_or_empty(HOSTS_PATH), host);
        if !pinned.is_empty() {
            return Resolution::Finished(Ok(pinned));
        }
        Resolving::start(host, conf, registry, token, now)
    }

    fn start(
        host: &str,
        conf: &ResolvConf,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> Resolution {
        // Unguessable query IDs are what keep forged answers out.
        let seed = match super::environment::random_u64() {
            Ok(seed) => seed,
            Err(e) => return Resolution::Finished(Err(format!("no randomness for DNS IDs: {e}"))),
        };
        let lookup = Lookup::start(host, &conf.nameservers, conf.settings, now, seed);
        if let Some(result) = lookup.result() {
            return Resolution::Finished(result);
        }
        let mut resolving = Resolving { lookup, v4: None, v6: None };
        if let Err(e) = resolving.open_sockets(&conf.nameservers, registry, token) {
            return Resolution::Finished(Err(e));
        }
        resolving.transmit();
        Resolution::Running(Box::new(resolving))
    }

    /// When [`Resolving::on_timeout`] must run.
    #[must_use]
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.lookup.poll_timeout()
    }

    /// The addresses, IPv4 first, or why there are none; `None` while running.
    pub(super) fn result(&self) -> Option<Result<Vec<IpAddr>, String>> {
        self.lookup.result()
    }

    /// A socket is readable: hands every waiting datagram to the lookup (poll is
    /// edge-triggered, so both sockets are drained).
    pub(super) fn on_readable(&mut self, now: Instant) {
        let mut buf = [0u8; MAX_RESPONSE_LEN];
        for socket in [&self.v4, &self.v6].into_iter().flatten() {
            loop {
                match socket.recv_from(&mut buf) {
                    Ok((len, from)) => self.lookup.handle_response(now, from, &buf[..len]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::debug!("DNS socket: {e}");
                        break;
                    }
                }
            }
        }
        self.transmit();
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        self.lookup.handle_timeout(now);
        self.transmit();
    }

    /// Takes the sockets out of poll; dropping `self` closes them.
    pub(super) fn stop(mut self, registry: &Registry) {
        for socket in [&mut self.v4, &mut self.v6].into_iter().flatten() {
            let _ = registry.deregister(socket);
        }
    }

    /// Opens a socket for each family among `nameservers`; fails only when none opens, since
    /// the lookup moves past a nameserver it cannot reach.
    fn open_sockets(
        &mut self,
        nameservers: &[SocketAddr],
        registry: &Registry,
        token: Token,
    ) -> Result<(), String> {
        let mut failure = None;
        for (slot, any) in [
            (&mut self.v4, IpAddr::from(Ipv4Addr::UNSPECIFIED)),
            (&mut self.v6, IpAddr::from(Ipv6Addr::UNSPECIFIED)),
        ] {
            if !nameservers.iter().any(|ns| ns.is_ipv6() == any.is_ipv6()) {
                continue;
            }
            match open_socket(SocketAddr::new(any, 0), nameservers, registry, token) {
                Ok(socket) => *slot = Some(socket),
                Err(e) => {
                    log::warn!("no DNS socket on {any}: {e}");
                    failure = Some(e);
                }
            }
        }
        match (&self.v4, &self.v6, failure) {
            (None, None, Some(e)) => Err(format!("opening a DNS socket: {e}")),
            _ => Ok(()),
        }
    }

    /// Sends what the lookup queued. A lost query is no error here: the lookup's timeout
    /// moves on to the next nameserver.
    fn transmit(&mut self) {
        while let Some((to, query)) = self.lookup.poll_transmit() {
            let socket = if to.is_ipv4() { &self.v4 } else { &self.v6 };
            if let Some(Err(e)) = socket.as_ref().map(|s| s.send_to(&query, to)) {
                log::debug!("DNS query to {to}: {e}");
            }
        }
    }
}

/// A non-blocking UDP socket on `bind` for `nameservers`, kept off the tunnel's routes
/// where it can reach them so (`platform::socket::bind_udp_towards`), registered for reading.
fn open_socket(
    bind: SocketAddr,
    nameservers: &[SocketAddr],
    registry: &Registry,
    token: Token,
) -> io::Result<UdpSocket> {
    let socket = crate::platform::socket::bind_udp_towards(bind, nameservers)?;
    let mut socket = UdpSocket::from_std(socket);
    registry.register(&mut socket, token, Interest::READABLE)?;
    Ok(socket)
}

/// Generous for hosts files that carry block lists; still bounded, as all of it is read on the
/// daemon's one thread.
const MAX_HOSTS_BYTES: u64 = 16 << 20;

/// A missing file reads as empty: no hosts entries. So does one that
/// cannot be used (a FIFO, a device, a huge file), with a warning, rather than stalling the
/// daemon's one thread.
fn read_or_empty(path: &str) -> String {
    match regular_file::read(std::path::Path::new(path), MAX_HOSTS_BYTES) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_default(),
        Err(error) if error.is_not_found() => String::new(),
        Err(error) => {
            log::warn!("{path}: {error}; reading it as empty");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::resolv_conf::Settings;
    use crate::resolver::test_responses::{asks_for_aaaa, respond, Data};
    use mio::{Events, Poll};
    use std::time::Duration;

    #[test]
    fn a_fifo_or_device_as_host_file_reads_as_empty_without_blocking() {
        let dir = crate::testing::fresh_dir("hosts-fifo");
        let fifo = dir.join("hosts");
        crate::testing::mkfifo(&fifo);
        let fifo = fifo.to_str().unwrap().to_string();
        assert_eq!(crate::testing::within(5, move || read_or_empty(&fifo)), "");
        assert_eq!(crate::testing::within(5, || read_or_empty("/dev/zero")), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A nameserver on loopback that answers two queries: A with 192.0.2.44, AAAA with
    /// nothing, each preceded by a forgery with the wrong ID that the lookup must ignore.
    fn fake_nameserver() -> (SocketAddr, std::thread::JoinHandle<()>) {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let address = server.local_addr().unwrap();
        let answering = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (len, from) = server.recv_from(&mut buf).unwrap();
                let query = &buf[..len];
                let answers = if asks_for_aaaa(query) {
                    vec![]
                } else {
                    vec![("control.test", Data::A([192, 0, 2, 44].into()))]
                };
                let mut forged =
                    respond(query, 0, &[("control.test", Data::A([6, 6, 6, 6].into()))]);
                forged[0] ^= 0xff;
                server.send_to(&forged, from).unwrap();
                server.send_to(&respond(query, 0, &answers), from).unwrap();
            }
        });
        (address, answering)
    }

    #[test]
    fn resolves_through_a_nameserver_on_loopback() {
        let (nameserver, answering) = fake_nameserver();
        let mut poll = Poll::new().unwrap();
        let conf = ResolvConf { nameservers: vec![nameserver], settings: Settings::default() };
        let started =
            Resolving::start("control.test", &conf, poll.registry(), Token(0), Instant::now());
        let Resolution::Running(mut resolving) = started else {
            panic!("a name needs the nameserver");
        };
        let mut events = Events::with_capacity(4);
        let give_up = Instant::now() + Duration::from_secs(5);
        while resolving.result().is_none() && Instant::now() < give_up {
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            resolving.on_readable(Instant::now());
        }
        answering.join().unwrap();
        assert_eq!(resolving.result(), Some(Ok(vec![IpAddr::from([192, 0, 2, 44])])));
        resolving.stop(poll.registry());
    }

    #[test]
    fn literals_need_no_socket() {
        let poll = Poll::new().unwrap();
        let conf = ResolvConf { nameservers: vec![], settings: Settings::default() };
        let started = Resolving::start("::1", &conf, poll.registry(), Token(0), Instant::now());
        assert!(
            matches!(started, Resolution::Finished(Ok(ips)) if ips == [IpAddr::from(Ipv6Addr::LOCALHOST)])
        );
    }
}
