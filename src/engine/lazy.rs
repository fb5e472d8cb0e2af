//! Lazy WireGuard configuration: the engine keeps every peer of the netmap, but only peers in
//! use hold a WireGuard session (boringtun's `Tunn`, some 12 KB each). A peer whose AllowedIPs
//! are all single addresses and that moved no traffic either way for [`IDLE_THRESHOLD`] is
//! *trimmed*: its session is freed, and it costs only its netmap entry. A peer that never moved
//! traffic counts as idle for ever, so a fresh netmap of thousands of peers makes no sessions.
//!
//! The first outbound packet to a trimmed peer, its handshake initiation or its disco ping
//! brings it back with a fresh session. Packets sent while that first handshake completes wait
//! in a small queue of the peer's own ([`HELD_PACKETS`], and [`HELD_BYTES`] across all peers;
//! counted drops beyond).
//!
//! Subnet routers (a wider AllowedIP) are never trimmed: a packet routed to a subnet names no
//! single peer address, and such peers carry traffic for many hosts. Neither are peers with
//! persistent keepalives, whose configuration asks for a session kept open.

use super::peers::PeerState;
use super::{Engine, PacketSink};
use crate::keys::PrivateKey;
use crate::netmap::Peer;
use crate::wg::gate::HandshakeGate;
use crate::wg::Session;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// No traffic either way for this long and a trimmable peer loses its session (tailscaled's
/// `lazyPeerIdleThreshold`).
pub(crate) const IDLE_THRESHOLD: Duration = Duration::from_secs(5 * 60);
/// Outbound traffic to a peer is recorded at most this often, so the data path writes the
/// peer's activity time once per interval, not per packet (tailscaled's
/// `packetSendTimeUpdateFrequency`). Far below [`IDLE_THRESHOLD`], it never makes a busy peer
/// look idle.
pub(crate) const SEND_RECORD_INTERVAL: Duration = Duration::from_secs(10);
/// Packets held for a peer coming back while its first handshake completes; more are dropped
/// and counted (`Drops::handshake_queue_full`).
pub(crate) const HELD_PACKETS: usize = 32;
/// Bytes held across all peers at most: a program writing to every address of a large
/// tailnet of unreachable peers would otherwise have [`HELD_PACKETS`] held for each.
pub(crate) const HELD_BYTES: usize = 4 << 20;

/// The trimming policy, read by the daemon from its environment (`WEFT_DEBUG_TRIM_WIREGUARD`,
/// `WEFT_DEBUG_LAZY_IDLE`) and handed to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LazyConfig {
    /// `false`: every peer keeps its session for good (the full configuration).
    pub trim: bool,
    /// How long a peer must be idle to be trimmed.
    pub idle: Duration,
}

impl Default for LazyConfig {
    fn default() -> LazyConfig {
        LazyConfig { trim: true, idle: IDLE_THRESHOLD }
    }
}

/// The engine's side of lazy configuration: the policy and when to look at which peer next.
pub(super) struct Lazy {
    config: LazyConfig,
    /// Peers with a session that may be trimmed, by the time they would have been idle long
    /// enough. At most one entry per peer is current (`PeerActivity::idle_check`); others are
    /// skipped when they come due.
    idle_checks: BinaryHeap<Reverse<(Instant, u32)>>,
    /// Bytes held for all peers.
    held_bytes: HeldBudget,
}

/// Bytes held across all peers, shared by their queues (see [`HELD_BYTES`]).
#[derive(Clone, Debug, Default)]
struct HeldBudget(Arc<AtomicUsize>);

/// Packets held for one peer. Their bytes count against the engine's budget for as long as
/// they exist, however they go (sent, trimmed, or dropped with a peer control removed).
#[derive(Debug)]
struct Held {
    packets: VecDeque<Vec<u8>>,
    bytes: usize,
    budget: HeldBudget,
}

impl Held {
    fn new(budget: HeldBudget) -> Held {
        Held { packets: VecDeque::new(), bytes: 0, budget }
    }

    /// Holds `packet` if this peer's queue and the budget have room.
    fn hold(&mut self, packet: &[u8]) -> bool {
        let total = &self.budget.0;
        let room = |held: usize| held.checked_add(packet.len()).filter(|&t| t <= HELD_BYTES);
        if self.packets.len() >= HELD_PACKETS
            || total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, room).is_err()
        {
            return false;
        }
        self.bytes += packet.len();
        self.packets.push_back(packet.to_vec());
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.0.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A peer's activity, as lazy configuration needs it.
#[derive(Debug, Default)]
pub(super) struct PeerActivity {
    /// Last traffic either way; outbound traffic recorded at most every
    /// [`SEND_RECORD_INTERVAL`]. `None`: never any.
    active_at: Option<Instant>,
    /// The time of this peer's current entry in the idle-check heap.
    idle_check: Option<Instant>,
    /// Packets waiting for the first handshake of a session brought back by an outbound
    /// packet; `None` once that handshake is done (or when the peer was never trimmed).
    held: Option<Box<Held>>,
    /// The session is new and has accepted no initiation yet. WireGuard refuses an initiation
    /// whose timestamp is not newer than the last one accepted, but a new session knows no
    /// last one: its first initiation may be a replay, and answering it proves nothing.
    replayable: bool,
}

/// A trimmed peer was given a session: what it was like before, to go back to if what woke
/// it proves nothing (see [`Engine::trim_back`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Woken {
    active_at: Option<Instant>,
}

/// What wakes a trimmed peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Waker {
    /// A packet to send: it and the next ones wait for the handshake.
    Outbound,
    /// The peer's handshake initiation, or what looks like one until the session reads it:
    /// the peer is put in line for trimming only once the session accepted it
    /// ([`Engine::keep_woken`]), else trimmed back ([`Engine::trim_back`]).
    Initiation,
    /// A disco ping (authenticated) or a netmap that makes the peer untrimmable.
    Other,
}

/// What became of an outbound packet for a peer.
pub(super) enum Outbound {
    /// The session can take it.
    Encrypt,
    /// Held until the handshake completes; the handshake may need starting.
    Held,
    /// The hold queue is full: dropped.
    Dropped,
}

impl Lazy {
    pub(super) fn new(config: LazyConfig) -> Lazy {
        Lazy { config, idle_checks: BinaryHeap::new(), held_bytes: HeldBudget::default() }
    }

    /// Whether `peer` may go without a session while idle.
    pub(super) fn trimmable(&self, peer: &Peer) -> bool {
        self.config.trim
            && peer.persistent_keepalive.is_none()
            && peer.allowed_ips.iter().all(|prefix| prefix.is_host())
    }

    /// The next idle check, for the loop's timeout.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.idle_checks.peek().map(|Reverse((at, _))| *at)
    }

    /// Puts peer `index` in line for trimming when it may be trimmed and isn't already; a
    /// peer never active counts as active `now`.
    pub(super) fn arm(
        &mut self,
        index: u32,
        peer: &Peer,
        activity: &mut PeerActivity,
        now: Instant,
    ) {
        if activity.idle_check.is_some() || !self.trimmable(peer) {
            return;
        }
        // An idle time past the clock's range (any number of seconds may be configured):
        // never idle long enough.
        let Some(at) = activity.active_at.unwrap_or(now).checked_add(self.config.idle) else {
            return;
        };
        activity.idle_check = Some(at);
        self.idle_checks.push(Reverse((at, index)));
    }

    /// Gives peer `index` (`state`) a session again if it was trimmed; packets for it wait
    /// for the handshake when an outbound packet woke it. A no-op for a peer with a
    /// session, so the data path calls it for every packet at the cost of one test. `None`
    /// when the peer had a session.
    pub(super) fn wake(
        &mut self,
        index: u32,
        state: &mut PeerState,
        now: Instant,
        waker: Waker,
        own_key: &PrivateKey,
        gate: &HandshakeGate,
    ) -> Option<Woken> {
        if state.session.is_some() {
            return None;
        }
        let woken = Woken { active_at: state.activity.active_at };
        state.session = Some(Box::new(Session::new(
            own_key,
            &state.config.public_key,
            state.config.preshared_key.as_ref().map(|key| key.0),
            state.config.persistent_keepalive,
            index,
            gate.session_limiter(),
        )));
        state.activity.note_receive(now);
        state.activity.held =
            (waker == Waker::Outbound).then(|| Box::new(Held::new(self.held_bytes.clone())));
        state.activity.replayable = true;
        if waker != Waker::Initiation {
            self.arm(index, &state.config, &mut state.activity, now);
        }
        // Trace: forged initiations can wake a peer (for a moment) at will.
        log::trace!("peer {index}: back in the WireGuard configuration");
        Some(woken)
    }

    /// Takes the peers whose idle check is due at `now`.
    fn take_due(&mut self, now: Instant, out: &mut Vec<(Instant, u32)>) {
        while let Some(Reverse((at, index))) = self.idle_checks.peek().copied() {
            if at > now {
                break;
            }
            self.idle_checks.pop();
            out.push((at, index));
        }
    }
}

impl PeerActivity {
    /// Traffic was received from the peer (or it came back).
    pub(super) fn note_receive(&mut self, now: Instant) {
        self.active_at = Some(now);
    }

    /// A packet is going to the peer: recorded when the last record is
    /// [`SEND_RECORD_INTERVAL`] old, so the data path mostly compares two instants.
    pub(super) fn note_send(&mut self, now: Instant) {
        if self.active_at.is_none_or(|at| now >= at + SEND_RECORD_INTERVAL) {
            self.active_at = Some(now);
        }
    }

    /// Decides about an outbound packet: straight to the session, or held while the
    /// session's first handshake completes.
    pub(super) fn outbound(&mut self, packet: &[u8]) -> Outbound {
        match &mut self.held {
            None => Outbound::Encrypt,
            Some(held) => match held.hold(packet) {
                true => Outbound::Held,
                false => Outbound::Dropped,
            },
        }
    }

    /// An initiation was accepted: whether it was the session's first, which a replay could
    /// have been.
    pub(super) fn take_first_initiation(&mut self) -> bool {
        std::mem::take(&mut self.replayable)
    }

    /// The session that [`Lazy::wake`] made is gone again: the peer is as it was before.
    fn undo_wake(&mut self, woken: Woken) {
        *self = PeerActivity { active_at: woken.active_at, ..PeerActivity::default() };
    }

    /// The first handshake is done: the held packets, to send now.
    pub(super) fn release_held(&mut self) -> VecDeque<Vec<u8>> {
        self.held.take().map(|mut held| std::mem::take(&mut held.packets)).unwrap_or_default()
    }
}

impl Engine {
    /// Gives trimmed peer `index` a session again (see [`Lazy::wake`]).
    pub(super) fn wake(&mut self, index: u32, now: Instant, waker: Waker) -> Option<Woken> {
        let state = self.peers.get_mut(&index)?;
        let own_key = &self.netmap.self_node.private_key;
        self.lazy.wake(index, state, now, waker, own_key, &self.handshake_gate)
    }

    /// Peer `index`, woken by an initiation its session accepted, is in use again: in line
    /// for trimming when idle.
    pub(super) fn keep_woken(&mut self, index: u32, now: Instant) {
        if let Some(state) = self.peers.get_mut(&index) {
            self.lazy.arm(index, &state.config, &mut state.activity, now);
        }
    }

    /// Trims peer `index` back at once: the initiation that woke it proved nothing. Anyone
    /// who can compute mac1 (who knows our public key) can name any peer's key in an
    /// initiation, and only the session finds it forged; without this, each forged
    /// initiation would keep a session (some 12 KB) for the idle time.
    pub(super) fn trim_back(&mut self, index: u32, woken: Woken) {
        if let Some(state) = self.peers.get_mut(&index) {
            state.trim();
            state.activity.undo_wake(woken);
        }
    }

    /// Trims every peer whose idle check is due and that stayed idle; a peer that was active
    /// in the meantime is looked at again when it would next be idle long enough.
    pub(super) fn trim_idle(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.lazy.take_due(now, &mut due);
        for (at, index) in due {
            let Some(state) = self.peers.get_mut(&index) else {
                continue;
            };
            if state.activity.idle_check != Some(at) {
                continue;
            }
            state.activity.idle_check = None;
            let idle_since = state.activity.active_at.unwrap_or(now);
            if now.saturating_duration_since(idle_since) < self.lazy.config.idle {
                self.lazy.arm(index, &state.config, &mut state.activity, now);
            } else if self.lazy.trimmable(&state.config) {
                state.trim();
                log::debug!("peer {index}: idle, trimmed from the WireGuard configuration");
            }
        }
    }

    /// Runs the held packets of peer `index` through its session, now that its handshake is
    /// done.
    pub(super) fn send_held(&mut self, index: u32, now: Instant, sink: &mut dyn PacketSink) {
        let Some(state) = self.peers.get_mut(&index) else {
            return;
        };
        for packet in state.activity.release_held() {
            self.encrypt_to(index, now, &packet, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;

    fn peer(allowed_ips: &[&str]) -> Peer {
        Peer {
            allowed_ips: allowed_ips.iter().map(|p| p.parse().unwrap()).collect(),
            ..Peer::new(PublicKey([4; 32]))
        }
    }

    #[test]
    fn only_peers_of_single_addresses_without_keepalive_are_trimmable() {
        let lazy = Lazy::new(LazyConfig::default());
        assert!(lazy.trimmable(&peer(&["100.64.0.2/32", "fd7a:115c:a1e0::2/128"])));
        assert!(!lazy.trimmable(&peer(&["100.64.0.2/32", "192.168.1.0/24"])));
        assert!(!lazy.trimmable(&peer(&["0.0.0.0/0"])));
        let keepalive = Peer { persistent_keepalive: Some(25), ..peer(&["100.64.0.2/32"]) };
        assert!(!lazy.trimmable(&keepalive));
        let full = Lazy::new(LazyConfig { trim: false, ..LazyConfig::default() });
        assert!(!full.trimmable(&peer(&["100.64.0.2/32"])));
    }

    #[test]
    fn sends_are_recorded_at_most_every_interval() {
        let t0 = Instant::now();
        let mut activity = PeerActivity::default();
        activity.note_send(t0);
        activity.note_send(t0 + Duration::from_secs(9));
        assert_eq!(activity.active_at, Some(t0), "within the interval: not recorded again");
        activity.note_send(t0 + SEND_RECORD_INTERVAL);
        assert_eq!(activity.active_at, Some(t0 + SEND_RECORD_INTERVAL));
        activity.note_receive(t0 + Duration::from_secs(11));
        assert_eq!(activity.active_at, Some(t0 + Duration::from_secs(11)), "receives always");
    }

    #[test]
    fn the_hold_queue_is_bounded() {
        let budget = HeldBudget::default();
        let held = Some(Box::new(Held::new(budget.clone())));
        let mut activity = PeerActivity { held, ..Default::default() };
        for _ in 0..HELD_PACKETS {
            assert!(matches!(activity.outbound(b"p"), Outbound::Held));
        }
        assert!(matches!(activity.outbound(b"p"), Outbound::Dropped));
        assert_eq!(budget.0.load(Ordering::Relaxed), HELD_PACKETS);
        assert_eq!(activity.release_held().len(), HELD_PACKETS);
        assert_eq!(budget.0.load(Ordering::Relaxed), 0, "released: off the budget");
        assert!(matches!(activity.outbound(b"p"), Outbound::Encrypt), "released: straight on");
    }
}
