//! The connection-tracking memory of the filter: UDP and SCTP flows this node opened, so their
//! replies pass without a rule. The engine keeps a second one, of TCP connections this node is
//! opening, to answer a peer's refusal with a reset (a value per flow: the SYN's sequence).
//!
//! A fixed set-associative table rather than a map: every flow hashes to one bucket of a few
//! slots, and a new flow takes the bucket's empty, expired or least recently used slot. Lookups
//! and insertions are O(1), the memory is allocated once and never grows, and a flood of new
//! flows only ever displaces the stalest ones.

use crate::packet::transport::{Transport, TransportView};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Slots per bucket: enough that a few colliding flows coexist, few enough to scan.
const WAYS: usize = 4;

/// The addresses, ports and protocol of one direction of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    protocol: u8,
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
}

impl FlowKey {
    /// The flow of a UDP or SCTP packet; `None` for protocols the table does not track (TCP
    /// replies pass as non-SYN segments, ICMP replies by their type).
    pub(crate) fn of_tracked(view: &TransportView) -> Option<FlowKey> {
        match view.transport {
            Transport::Udp(_) | Transport::Sctp(_) => FlowKey::of_ported(view),
            _ => None,
        }
    }

    /// The flow of a TCP, UDP or SCTP packet.
    pub(crate) fn of_ported(view: &TransportView) -> Option<FlowKey> {
        let (Transport::Tcp { ports, .. } | Transport::Udp(ports) | Transport::Sctp(ports)) =
            view.transport
        else {
            return None;
        };
        let (src, dst) = (view.ip.src, view.ip.dst);
        Some(FlowKey::new(view.protocol, (src, ports.src).into(), (dst, ports.dst).into()))
    }

    pub(crate) fn new(protocol: u8, src: SocketAddr, dst: SocketAddr) -> FlowKey {
        FlowKey {
            protocol,
            src: src.ip(),
            src_port: src.port(),
            dst: dst.ip(),
            dst_port: dst.port(),
        }
    }

    /// The key of the packets that answer this one.
    pub(crate) fn reversed(self) -> FlowKey {
        FlowKey {
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
            ..self
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot<V> {
    key: FlowKey,
    last_seen: Instant,
    value: V,
}

/// Flows with a value each (`()` when only their existence counts).
pub(crate) struct FlowTable<V: Copy = ()> {
    /// `buckets × WAYS` slots, bucket after bucket.
    slots: Vec<Option<Slot<V>>>,
    /// Keyed per process, so nobody can aim many flows at one bucket.
    hasher: RandomState,
    idle_timeout: Duration,
}

impl<V: Copy> FlowTable<V> {
    /// A table of `buckets` (rounded up to a power of two) × 4 flows, each forgotten after
    /// `idle_timeout` without a packet either way.
    pub(crate) fn new(buckets: usize, idle_timeout: Duration) -> FlowTable<V> {
        let slot_count = buckets.max(1).next_power_of_two() * WAYS;
        FlowTable { slots: vec![None; slot_count], hasher: RandomState::new(), idle_timeout }
    }

    /// Remembers `key` (with `value`) as seen `now`, displacing the stalest slot of its bucket
    /// if it is new.
    pub(crate) fn record(&mut self, now: Instant, key: FlowKey, value: V) {
        let bucket = self.bucket_mut(&key);
        let index = match bucket.iter().position(|slot| slot.is_some_and(|s| s.key == key)) {
            Some(index) => index,
            // `None` orders before any `Some`: an empty slot first, then the oldest one
            // (expired slots are the oldest of all).
            None => (0..WAYS).min_by_key(|&i| bucket[i].map(|s| s.last_seen)).unwrap_or(0),
        };
        bucket[index] = Some(Slot { key, last_seen: now, value });
    }

    /// True when `key` was seen within the idle timeout; counts as seeing it again.
    pub(crate) fn refresh(&mut self, now: Instant, key: FlowKey) -> bool {
        self.live_slot(now, key).map(|slot| slot.last_seen = now).is_some()
    }

    /// The value of `key` if it was seen within the idle timeout, forgetting the flow.
    pub(crate) fn take(&mut self, now: Instant, key: FlowKey) -> Option<V> {
        let idle_timeout = self.idle_timeout;
        let bucket = self.bucket_mut(&key);
        let slot = bucket.iter_mut().find(|s| s.is_some_and(|s| s.key == key))?;
        let live =
            slot.take().filter(|s| now.saturating_duration_since(s.last_seen) <= idle_timeout);
        live.map(|s| s.value)
    }

    fn live_slot(&mut self, now: Instant, key: FlowKey) -> Option<&mut Slot<V>> {
        let idle_timeout = self.idle_timeout;
        let bucket = self.bucket_mut(&key);
        bucket
            .iter_mut()
            .flatten()
            .find(|s| s.key == key && now.saturating_duration_since(s.last_seen) <= idle_timeout)
    }

    /// Flows remembered and not yet expired.
    #[cfg(test)]
    pub(crate) fn live_count(&self, now: Instant) -> usize {
        let is_live =
            |s: &&Slot<V>| now.saturating_duration_since(s.last_seen) <= self.idle_timeout;
        self.slots.iter().flatten().filter(is_live).count()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn bucket_mut(&mut self, key: &FlowKey) -> &mut [Option<Slot<V>>] {
        let buckets = self.slots.len() / WAYS;
        let start = (self.hasher.hash_one(key) as usize & (buckets - 1)) * WAYS;
        &mut self.slots[start..start + WAYS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_packets::udp;

    const TIMEOUT: Duration = Duration::from_secs(120);

    fn key(src_port: u16) -> FlowKey {
        let packet = udp(&format!("100.64.0.1:{src_port}"), "100.64.0.2:53");
        FlowKey::of_tracked(&TransportView::parse(&packet).unwrap()).unwrap()
    }

    #[test]
    fn remembers_until_idle_for_the_timeout() {
        let mut table = FlowTable::new(8, TIMEOUT);
        let t0 = Instant::now();
        table.record(t0, key(1000), ());
        assert!(table.refresh(t0 + TIMEOUT, key(1000)), "seen again just in time");
        assert!(table.refresh(t0 + 2 * TIMEOUT, key(1000)), "the refresh restarted the clock");
        assert!(!table.refresh(t0 + 3 * TIMEOUT + Duration::from_secs(1), key(1000)));
        assert!(!table.refresh(t0, key(1001)));
        assert_eq!(table.live_count(t0 + 4 * TIMEOUT), 0);
    }

    #[test]
    fn take_returns_the_value_once_and_only_while_live() {
        let mut table = FlowTable::<u32>::new(8, TIMEOUT);
        let t0 = Instant::now();
        table.record(t0, key(1), 41);
        table.record(t0, key(2), 42);
        assert_eq!(table.take(t0, key(1)), Some(41));
        assert_eq!(table.take(t0, key(1)), None, "forgotten once taken");
        assert_eq!(table.take(t0 + 2 * TIMEOUT, key(2)), None, "expired");
        let tcp = crate::packet::test_packets::tcp("100.64.0.1:1", "100.64.0.2:22", 2);
        let view = TransportView::parse(&tcp).unwrap();
        assert_eq!(FlowKey::of_tracked(&view), None, "TCP is not tracked for replies");
        let key = FlowKey::of_ported(&view).unwrap();
        assert_eq!(
            key,
            FlowKey::new(6, "100.64.0.1:1".parse().unwrap(), "100.64.0.2:22".parse().unwrap())
        );
    }

    #[test]
    fn reversed_key_is_the_reply() {
        let reply = udp("100.64.0.2:53", "100.64.0.1:1000");
        let reply = FlowKey::of_tracked(&TransportView::parse(&reply).unwrap()).unwrap();
        assert_eq!(key(1000).reversed(), reply);
        assert_eq!(reply.reversed().reversed(), reply);
    }

    #[test]
    fn a_flood_stays_within_capacity_and_keeps_the_newest() {
        let mut table = FlowTable::new(16, TIMEOUT);
        assert_eq!(table.capacity(), 16 * WAYS);
        let t0 = Instant::now();
        for port in 0..10_000u16 {
            table.record(t0 + Duration::from_millis(u64::from(port)), key(port), ());
        }
        let end = t0 + Duration::from_secs(10);
        assert!(table.live_count(end) <= table.capacity());
        assert!(table.refresh(end, key(9_999)), "the latest flow survives");
        assert!(!table.refresh(end, key(0)), "the oldest was displaced");
        assert_eq!(table.capacity(), 16 * WAYS, "never grows");
    }

    #[test]
    fn the_stalest_flow_makes_room() {
        let mut table = FlowTable::new(1, TIMEOUT);
        let t0 = Instant::now();
        for port in 0..WAYS as u16 {
            table.record(t0 + Duration::from_secs(u64::from(port) * 30), key(port), ());
        }
        let later = t0 + Duration::from_secs(100);
        assert!(table.refresh(later, key(0)), "the first flow is now the freshest");
        table.record(later, key(100), ());
        assert!(!table.refresh(later, key(1)), "the stalest one made room");
        assert!([0, 2, 3, 100].iter().all(|&port| table.refresh(later, key(port))));
    }
}
