//! Upstream query IDs: the first two bytes of keyed BLAKE2s (a pseudo-random function) over a
//! counter, under a key the daemon draws from the OS at start. Unlike a seeded generator, whose
//! outputs give its state away, no number of IDs seen tells anything about the next one, so an
//! off-path attacker forging an answer must guess the ID blindly — on top of the source port of
//! the query's own socket.

use blake2::digest::consts::U8;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2sMac;

/// The ephemeral range (RFC 6335) the tunnel port is drawn from.
const EPHEMERAL_PORTS: std::ops::Range<u16> = 49152..65535;

/// A forwarded query's own number this run (the counter its ID came from): the daemon keys the
/// query's socket with it, and an answer read from that socket is believed for this query only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Ticket(u64);

#[cfg(test)]
impl Ticket {
    /// The ticket of the `n`th query, for tests of the code that carries tickets.
    pub(crate) fn numbered(n: u64) -> Ticket {
        Ticket(n)
    }
}

pub(super) struct QueryIds {
    prf: Blake2sMac<U8>,
    next: u64,
}

impl QueryIds {
    pub(super) fn new(key: &[u8; 32]) -> QueryIds {
        QueryIds { prf: <Blake2sMac<U8> as KeyInit>::new(key.into()), next: 0 }
    }

    /// A ticket never handed out before this run, and its ID.
    pub(super) fn draw(&mut self) -> (Ticket, u16) {
        let ticket = Ticket(self.next);
        self.next += 1;
        (ticket, self.value(ticket.0) as u16)
    }

    /// The source port of this run's queries through the tunnel: from the same function at
    /// an input no ticket reaches, so it tells nothing about the IDs either.
    pub(super) fn tunnel_port(&self) -> u16 {
        let span = u64::from(EPHEMERAL_PORTS.end - EPHEMERAL_PORTS.start);
        EPHEMERAL_PORTS.start + (self.value(u64::MAX) % span) as u16
    }

    fn value(&self, input: u64) -> u64 {
        let mut prf = self.prf.clone();
        prf.update(&input.to_le_bytes());
        let output = prf.finalize().into_bytes();
        u64::from_le_bytes(output.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed_blake2s(key: &[u8; 32], input: u64) -> [u8; 8] {
        let mut mac = <Blake2sMac<U8> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(&input.to_le_bytes());
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn ids_are_keyed_blake2s_of_a_counter() {
        let key = [7u8; 32];
        let mut ids = QueryIds::new(&key);
        for counter in 0..64 {
            let (ticket, id) = ids.draw();
            assert_eq!(ticket, Ticket(counter));
            let expected = keyed_blake2s(&key, counter);
            assert_eq!(id.to_le_bytes(), expected[..2], "ID {counter}");
        }
    }

    #[test]
    fn another_key_gives_other_ids_and_another_tunnel_port() {
        let mut key = [7u8; 32];
        let first: Vec<u16> = (0..16)
            .map({
                let mut ids = QueryIds::new(&key);
                move |_| ids.draw().1
            })
            .collect();
        let port = QueryIds::new(&key).tunnel_port();
        key[31] ^= 1;
        let mut ids = QueryIds::new(&key);
        let second: Vec<u16> = (0..16).map(|_| ids.draw().1).collect();
        assert_ne!(first, second);
        assert!(EPHEMERAL_PORTS.contains(&port));
        assert!(EPHEMERAL_PORTS.contains(&ids.tunnel_port()));
    }
}
