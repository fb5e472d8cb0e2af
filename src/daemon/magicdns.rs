//! The daemon's side of MagicDNS forwarding: the UDP sockets queries leave from towards
//! upstream resolvers outside the tunnel. Every forwarded query gets sockets of its own (one
//! per family it needs), on a fresh ephemeral port, opened when it is sent and closed when it
//! is answered or times out, so a forger must guess the port as well as the ID, and an answer
//! read from a query's socket is believed for that query only. There are at most
//! [`MAX_PENDING`] queries at once, so at most twice that many sockets. They are made by
//! `platform::socket` like every daemon socket, so they are pinned off the tunnel. The engine
//! decides what to send and what to believe; this driver only carries datagrams.

use super::tokens;
use crate::engine::{Engine, PacketSink};
use crate::magicdns::{Ticket, Transmit, MAX_PENDING};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The largest upstream answer read whole: a UDP datagram's limit, so an EDNS answer is never
/// cut into something that fails to parse.
const MAX_ANSWER_LEN: usize = 65535;
/// Sockets open at once: one per family for each waiting query.
pub(super) const MAX_SOCKETS: usize = 2 * MAX_PENDING;

/// A socket of one forwarded query.
struct QuerySocket {
    ticket: Ticket,
    ipv6: bool,
    /// Towards a loopback nameserver: not pinned off Linux (`bind_udp_towards`), so never
    /// shared with a query's remote upstream.
    loopback: bool,
    socket: UdpSocket,
}

pub(super) struct DnsUpstream {
    /// By token offset ([`tokens::dns_upstream`]); a free slot is `None`.
    slots: Vec<Option<QuerySocket>>,
    /// Allocated at the first answer, so a node without MagicDNS never carries it.
    buffer: Vec<u8>,
}

impl DnsUpstream {
    pub(super) fn new() -> DnsUpstream {
        DnsUpstream { slots: Vec::new(), buffer: Vec::new() }
    }

    /// Closes the sockets of the queries that ended, then sends the queries the engine queued.
    pub(super) fn sync(&mut self, engine: &mut Engine, registry: &Registry) {
        while let Some(ticket) = engine.poll_dns_finished() {
            self.close(ticket, registry);
        }
        while let Some(transmit) = engine.poll_dns_transmit() {
            self.send(&transmit, registry);
        }
    }

    /// A socket is readable: every waiting datagram goes to the engine under the socket's
    /// ticket, and the engine writes the answers it believes to `sink`.
    pub(super) fn on_ready(
        &mut self,
        token: Token,
        engine: &mut Engine,
        sink: &mut dyn PacketSink,
    ) {
        self.receive(token, |ticket, from, datagram| {
            engine.handle_dns_upstream(ticket, from, datagram, sink)
        });
    }

    /// Reads every datagram waiting on the socket of `token`, handing each to `deliver`.
    fn receive(&mut self, token: Token, mut deliver: impl FnMut(Ticket, SocketAddr, &[u8])) {
        let slot = tokens::dns_upstream_slot(token).and_then(|slot| self.slots.get(slot));
        let Some(Some(QuerySocket { ticket, socket, .. })) = slot else { return };
        if self.buffer.is_empty() {
            self.buffer = vec![0; MAX_ANSWER_LEN];
        }
        loop {
            match socket.recv_from(&mut self.buffer) {
                Ok((len, from)) => deliver(*ticket, from, &self.buffer[..len]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here (ECONNREFUSED and the like); the socket stays
                    // until its query ends.
                    log::debug!("MagicDNS upstream socket: {e}");
                    return;
                }
            }
        }
    }

    /// Sends `transmit` from its query's socket of the destination's family, opened on first
    /// use. A lost query is no error here: it times out into a SERVFAIL and the host retries.
    fn send(&mut self, transmit: &Transmit, registry: &Registry) {
        let to = transmit.to;
        match self.socket_for(transmit.ticket, to, registry) {
            Ok(socket) => {
                if let Err(e) = socket.send_to(&transmit.datagram, to) {
                    log::debug!("MagicDNS: query to {to}: {e}");
                }
            }
            Err(e) => log::warn!("MagicDNS: no socket to reach {to}: {e}"),
        }
    }

    /// The socket of `ticket`'s query for `to`'s family: the open one, or a new one in a free
    /// slot, registered under that slot's token.
    fn socket_for(
        &mut self,
        ticket: Ticket,
        to: SocketAddr,
        registry: &Registry,
    ) -> io::Result<&UdpSocket> {
        let open = self.slots.iter().position(|slot| {
            slot.as_ref().is_some_and(|q| {
                q.ticket == ticket && q.ipv6 == to.is_ipv6() && q.loopback == to.ip().is_loopback()
            })
        });
        let index = match open {
            Some(index) => index,
            None => self.open(ticket, to, registry)?,
        };
        let query = self.slots[index].as_ref();
        query.map(|query| &query.socket).ok_or_else(|| io::Error::other("no socket in its slot"))
    }

    /// Opens a socket for `ticket`'s query on an ephemeral port of `to`'s family in a free
    /// slot; fails when all [`MAX_SOCKETS`] are taken (the engine's cap makes that a bug).
    fn open(&mut self, ticket: Ticket, to: SocketAddr, registry: &Registry) -> io::Result<usize> {
        let index = match self.slots.iter().position(Option::is_none) {
            Some(index) => index,
            None if self.slots.len() < MAX_SOCKETS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(io::Error::other("every MagicDNS socket is in use")),
        };
        let any = match to.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        // Pinned off the tunnel, except towards a loopback nameserver where a pinned socket
        // could not reach it (off Linux).
        let socket = crate::platform::socket::bind_udp_towards(SocketAddr::new(any, 0), &[to])?;
        let mut socket = UdpSocket::from_std(socket);
        registry.register(&mut socket, tokens::dns_upstream(index), Interest::READABLE)?;
        let (ipv6, loopback) = (to.is_ipv6(), to.ip().is_loopback());
        self.slots[index] = Some(QuerySocket { ticket, ipv6, loopback, socket });
        Ok(index)
    }

    /// Takes the sockets of `ticket`'s query out of poll and closes them.
    fn close(&mut self, ticket: Ticket, registry: &Registry) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|query| query.ticket == ticket) {
                if let Some(mut query) = slot.take() {
                    let _ = registry.deregister(&mut query.socket);
                }
            }
        }
    }

    /// How many sockets are open.
    #[cfg(test)]
    fn open_sockets(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::{Duration, Instant};

    /// An upstream on loopback that reads `count` queries and returns their senders, echoing
    /// each back.
    fn echoing_upstream(count: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<SocketAddr>>) {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let address = server.local_addr().unwrap();
        let serving = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut senders = Vec::new();
            for _ in 0..count {
                let (len, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..len], from).unwrap();
                senders.push(from);
            }
            senders
        });
        (address, serving)
    }

    fn tickets(count: u64) -> Vec<Ticket> {
        (0..count).map(Ticket::numbered).collect()
    }

    #[test]
    fn every_query_leaves_from_its_own_socket_and_answers_keep_their_ticket() {
        let (upstream, serving) = echoing_upstream(3);
        let mut poll = Poll::new().unwrap();
        let mut driver = DnsUpstream::new();
        let tickets = tickets(2);
        for (ticket, datagram) in [(tickets[0], b"one"), (tickets[1], b"two"), (tickets[0], b"1+1")]
        {
            let transmit = Transmit { ticket, to: upstream, datagram: datagram.to_vec() };
            driver.send(&transmit, poll.registry());
        }
        let senders = serving.join().unwrap();
        assert_eq!(driver.open_sockets(), 2, "one socket per query, reused for its retries");
        assert_ne!(senders[0].port(), senders[1].port(), "two queries, two ports");
        assert_eq!(senders[0], senders[2], "one query, one socket");
        let mut received = Vec::new();
        let mut events = Events::with_capacity(8);
        let give_up = Instant::now() + Duration::from_secs(5);
        while received.len() < 3 && Instant::now() < give_up {
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            for event in &events {
                driver.receive(event.token(), |ticket, from, datagram| {
                    received.push((ticket, from, datagram.to_vec()))
                });
            }
        }
        received.sort_by_key(|(_, _, datagram)| datagram.clone());
        let expected = [(tickets[0], b"1+1"), (tickets[0], b"one"), (tickets[1], b"two")];
        let expected: Vec<_> =
            expected.iter().map(|(ticket, d)| (*ticket, upstream, d.to_vec())).collect();
        assert_eq!(received, expected);
    }

    #[test]
    fn an_ended_query_closes_its_socket_and_frees_its_slot() {
        let (upstream, serving) = echoing_upstream(2);
        let poll = Poll::new().unwrap();
        let mut driver = DnsUpstream::new();
        let tickets = tickets(2);
        let transmit = Transmit { ticket: tickets[0], to: upstream, datagram: b"q".to_vec() };
        driver.send(&transmit, poll.registry());
        driver.close(tickets[0], poll.registry());
        assert_eq!(driver.open_sockets(), 0);
        let transmit = Transmit { ticket: tickets[1], to: upstream, datagram: b"q".to_vec() };
        driver.send(&transmit, poll.registry());
        assert_eq!((driver.open_sockets(), driver.slots.len()), (1, 1), "the slot is reused");
        let senders = serving.join().unwrap();
        assert_ne!(senders[0].port(), senders[1].port(), "a fresh port for the next query");
    }
}
