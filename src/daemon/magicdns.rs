//! The daemon's side of MagicDNS forwarding: the UDP sockets queries leave from towards the
//! tailnet's upstream resolvers, one per family, opened when the first query of that family
//! needs one. They are made by `platform::socket` like every daemon socket, so they are
//! pinned off the tunnel. The engine decides what to send and what to believe; this driver
//! only carries datagrams.

use super::tokens;
use crate::engine::{Engine, PacketSink};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The largest upstream answer read whole: a UDP datagram's limit, so an EDNS answer is never
/// cut into something that fails to parse.
const MAX_ANSWER_LEN: usize = 65535;

pub(super) struct DnsUpstream {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    /// Allocated at the first answer, so a node without MagicDNS never carries it.
    buffer: Vec<u8>,
}

impl DnsUpstream {
    pub(super) fn new() -> DnsUpstream {
        DnsUpstream { v4: None, v6: None, buffer: Vec::new() }
    }

    /// Sends the queries the engine queued.
    pub(super) fn transmit(&mut self, engine: &mut Engine, registry: &Registry) {
        while let Some((to, query)) = engine.poll_dns_transmit() {
            match self.socket_for(to, registry) {
                Ok(socket) => {
                    if let Err(e) = socket.send_to(&query, to) {
                        // The query times out into a SERVFAIL; the host's resolver retries.
                        log::debug!("MagicDNS: query to {to}: {e}");
                    }
                }
                Err(e) => log::warn!("MagicDNS: no socket to reach {to}: {e}"),
            }
        }
    }

    /// A socket is readable: every waiting datagram goes to the engine, which writes the
    /// answers it believes to `sink`.
    pub(super) fn on_ready(
        &mut self,
        token: Token,
        engine: &mut Engine,
        sink: &mut dyn PacketSink,
    ) {
        let socket = match token {
            tokens::DNS_UPSTREAM4 => &self.v4,
            tokens::DNS_UPSTREAM6 => &self.v6,
            _ => return,
        };
        let Some(socket) = socket else { return };
        if self.buffer.is_empty() {
            self.buffer = vec![0; MAX_ANSWER_LEN];
        }
        loop {
            match socket.recv_from(&mut self.buffer) {
                Ok((len, from)) => engine.handle_dns_upstream(from, &self.buffer[..len], sink),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here (ECONNREFUSED and the like); the socket stays.
                    log::debug!("MagicDNS upstream socket: {e}");
                    return;
                }
            }
        }
    }

    /// The socket of `to`'s family, opened and registered on first use.
    fn socket_for(&mut self, to: SocketAddr, registry: &Registry) -> io::Result<&UdpSocket> {
        let (slot, any, token) = match to.ip() {
            IpAddr::V4(_) => {
                (&mut self.v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED), tokens::DNS_UPSTREAM4)
            }
            IpAddr::V6(_) => {
                (&mut self.v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED), tokens::DNS_UPSTREAM6)
            }
        };
        match slot {
            Some(socket) => Ok(socket),
            None => {
                let socket = crate::platform::socket::bind_udp(SocketAddr::new(any, 0))?;
                let mut socket = UdpSocket::from_std(socket);
                registry.register(&mut socket, token, Interest::READABLE)?;
                Ok(slot.insert(socket))
            }
        }
    }
}
