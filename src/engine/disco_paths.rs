//! One peer's direct UDP paths as disco sees them: the candidate addresses, the pings in
//! flight, and the best path a pong has proven. Sans-IO and crypto-free: the engine opens and
//! seals the messages, this decides whom to ping and which address WireGuard may use.
//!
//! Semantics and timing follow tailscale's magicsock endpoint (restated in
//! /work/shared/protocol/disco.md §5–§7): only a pong to one of our own pings, from the address
//! it was sent to, proves a path, and that proof expires unless heartbeats refresh it.

use crate::disco::TxId;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// While the peer is in use, its best path is pinged this often (magicsock heartbeatInterval).
pub(super) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// A pong makes its path the only one used until this long after (trustUDPAddrDuration).
pub(super) const TRUST_DURATION: Duration = Duration::from_millis(6500);
/// Discovery pings to one address are at least this far apart (discoPingInterval).
pub(super) const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A ping unanswered this long is forgotten (pingTimeoutDuration).
pub(super) const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// No traffic to the peer for this long: heartbeats stop (sessionActiveTimeout). Addresses
/// learned only from the peer's pings are forgotten after it too.
pub(super) const SESSION_ACTIVE_TIMEOUT: Duration = Duration::from_secs(45);
/// Even with a proven path, all candidates are re-pinged this often (upgradeUDPDirectInterval)…
pub(super) const UPGRADE_INTERVAL: Duration = Duration::from_secs(60);
/// …unless the best path is already this fast (goodEnoughLatency).
pub(super) const GOOD_ENOUGH_LATENCY: Duration = Duration::from_millis(5);
/// Candidates kept per peer; addresses learned from pings beyond it are dropped first.
const MAX_CANDIDATES: usize = 100;
/// Pings in flight per peer; the oldest is forgotten beyond it.
const MAX_PINGS_IN_FLIGHT: usize = 64;
/// Pongs we send one peer per second, whatever the sources: each costs a seal.
const MAX_PONGS_PER_SECOND: u32 = 16;

/// An address the peer might be reached at, and why we think so.
#[derive(Debug)]
struct Candidate {
    addr: SocketAddr,
    /// Listed in the peer's `Endpoints` by control.
    from_netmap: bool,
    /// Listed in the peer's latest CallMeMaybe.
    from_call_me_maybe: bool,
    /// The peer last pinged us from here (the address its NAT gave it).
    pinged_us_at: Option<Instant>,
    /// When we last pinged it.
    pinged_at: Option<Instant>,
}

impl Candidate {
    fn new(addr: SocketAddr) -> Candidate {
        Candidate {
            addr,
            from_netmap: false,
            from_call_me_maybe: false,
            pinged_us_at: None,
            pinged_at: None,
        }
    }

    fn due_for_ping(&self, now: Instant) -> bool {
        self.pinged_at.is_none_or(|at| now.saturating_duration_since(at) >= PING_INTERVAL)
    }

    /// Still worth keeping: someone vouches for it, or the peer pinged from it lately.
    fn is_live(&self, now: Instant) -> bool {
        self.from_netmap
            || self.from_call_me_maybe
            || self
                .pinged_us_at
                .is_some_and(|at| now.saturating_duration_since(at) < SESSION_ACTIVE_TIMEOUT)
    }
}

#[derive(Debug)]
struct SentPing {
    tx_id: TxId,
    to: SocketAddr,
    at: Instant,
}

/// The path a pong proved, and until when it alone carries the peer's traffic.
#[derive(Debug, Clone, Copy)]
struct BestPath {
    addr: SocketAddr,
    latency: Duration,
    trusted_until: Instant,
}

/// What a pong meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PongOutcome {
    /// No ping of ours in flight has this transaction id (late, duplicate or made up).
    Unknown,
    /// Our ping's id, but it came back from another address than we sent it to: proves nothing.
    WrongSource,
    /// The path to `addr` works; `best` says whether it is now the one in use.
    Proven { addr: SocketAddr, latency: Duration, best: bool },
}

/// Pings to send now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Probe {
    pub pings: Vec<(SocketAddr, TxId)>,
    /// Discovery pings went out: tell the peer (over DERP) to ping us back at once.
    pub call_me_maybe: bool,
    /// A ping through the peer's home DERP region (`weft ping` while no direct path is
    /// trusted); its pong proves no path.
    pub derp_ping: Option<TxId>,
}

#[derive(Debug)]
pub(super) struct DiscoPaths {
    candidates: Vec<Candidate>,
    in_flight: Vec<SentPing>,
    best: Option<BestPath>,
    /// The last time packets from the TUN (or `weft ping`) went to the peer; WireGuard's own
    /// keepalives and handshakes do not count, so they cannot keep the heartbeat alive.
    last_send: Option<Instant>,
    next_heartbeat: Option<Instant>,
    last_full_ping: Option<Instant>,
    /// Start of the current one-second pong window and the pongs sent in it.
    pong_window: Option<(Instant, u32)>,
}

impl DiscoPaths {
    pub(super) fn new(endpoints: &[SocketAddr]) -> DiscoPaths {
        let mut paths = DiscoPaths {
            candidates: Vec::new(),
            in_flight: Vec::new(),
            best: None,
            last_send: None,
            next_heartbeat: None,
            last_full_ping: None,
            pong_window: None,
        };
        paths.set_endpoints(endpoints);
        paths
    }

    /// Control's list of the peer's endpoints changed.
    pub(super) fn set_endpoints(&mut self, endpoints: &[SocketAddr]) {
        for candidate in &mut self.candidates {
            candidate.from_netmap = endpoints.contains(&candidate.addr);
        }
        for addr in endpoints {
            self.candidate(*addr).from_netmap = true;
        }
        self.candidates
            .retain(|c| c.from_netmap || c.from_call_me_maybe || c.pinged_us_at.is_some());
    }

    fn candidate(&mut self, addr: SocketAddr) -> &mut Candidate {
        let at = match self.candidates.iter().position(|c| c.addr == addr) {
            Some(at) => at,
            None => {
                self.candidates.push(Candidate::new(addr));
                self.candidates.len() - 1
            }
        };
        &mut self.candidates[at]
    }

    /// The proven path WireGuard should use now, if any.
    pub(super) fn trusted_best(&self, now: Instant) -> Option<SocketAddr> {
        self.best.filter(|b| now < b.trusted_until).map(|b| b.addr)
    }

    /// Traffic is going to the peer. Returns whether the engine should run [`Self::discover`]
    /// now: no path is trusted. Arms the heartbeat if it was idle.
    pub(super) fn note_send(&mut self, now: Instant) -> bool {
        self.last_send = Some(now);
        if self.next_heartbeat.is_none() {
            self.next_heartbeat = Some(now + HEARTBEAT_INTERVAL);
        }
        self.trusted_best(now).is_none()
    }

    /// Whether traffic went to the peer within the session timeout (tailscale's `Active`).
    pub(super) fn is_active(&self, now: Instant) -> bool {
        self.last_send.is_some_and(|at| now.saturating_duration_since(at) < SESSION_ACTIVE_TIMEOUT)
    }

    /// When [`Self::heartbeat`] is due; `None` while the peer is idle.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.next_heartbeat
    }

    /// The heartbeat timer: keeps the best path proven while the peer is in use, searches for
    /// a better one when it is missing, slow or old, and goes quiet once the peer is idle.
    pub(super) fn heartbeat(&mut self, now: Instant, tx_ids: &mut dyn FnMut() -> TxId) -> Probe {
        if self.next_heartbeat.is_none_or(|at| now < at) {
            return Probe::default();
        }
        if !self.is_active(now) {
            self.next_heartbeat = None;
            return Probe::default();
        }
        self.next_heartbeat = Some(now + HEARTBEAT_INTERVAL);
        let mut probe = Probe::default();
        if let Some(best) = self.trusted_best(now) {
            self.ping(now, best, tx_ids, &mut probe);
        }
        if self.wants_full_ping(now) {
            let discovery = self.discover(now, tx_ids);
            probe.pings.extend(discovery.pings);
            probe.call_me_maybe = discovery.call_me_maybe;
        }
        probe
    }

    fn wants_full_ping(&self, now: Instant) -> bool {
        let Some(last_full) = self.last_full_ping else {
            return true;
        };
        match (self.trusted_best(now), self.best) {
            (Some(_), Some(best)) => {
                best.latency > GOOD_ENOUGH_LATENCY
                    && now.saturating_duration_since(last_full) >= UPGRADE_INTERVAL
            }
            _ => true,
        }
    }

    /// Pings every candidate not pinged in the last [`PING_INTERVAL`].
    pub(super) fn discover(&mut self, now: Instant, tx_ids: &mut dyn FnMut() -> TxId) -> Probe {
        self.forget_stale(now);
        let due: Vec<SocketAddr> =
            self.candidates.iter().filter(|c| c.due_for_ping(now)).map(|c| c.addr).collect();
        let mut probe = Probe::default();
        for addr in due {
            self.ping(now, addr, tx_ids, &mut probe);
        }
        if !probe.pings.is_empty() {
            self.last_full_ping = Some(now);
            probe.call_me_maybe = true;
        }
        probe
    }

    /// A ping the user asked for (`weft ping`): to the trusted best path alone while there is
    /// one (so the answers do not hop between near-equal paths), else to every candidate
    /// whatever the interval. Their pongs prove paths like any other.
    pub(super) fn user_probe(&mut self, now: Instant, tx_ids: &mut dyn FnMut() -> TxId) -> Probe {
        self.forget_stale(now);
        let targets: Vec<SocketAddr> = match self.trusted_best(now) {
            Some(best) => vec![best],
            None => self.candidates.iter().map(|c| c.addr).collect(),
        };
        let mut probe = Probe::default();
        for addr in targets {
            self.ping(now, addr, tx_ids, &mut probe);
        }
        probe
    }

    fn ping(
        &mut self,
        now: Instant,
        to: SocketAddr,
        tx_ids: &mut dyn FnMut() -> TxId,
        probe: &mut Probe,
    ) {
        let tx_id = tx_ids();
        self.candidate(to).pinged_at = Some(now);
        if self.in_flight.len() >= MAX_PINGS_IN_FLIGHT {
            self.in_flight.remove(0);
        }
        self.in_flight.push(SentPing { tx_id, to, at: now });
        probe.pings.push((to, tx_id));
    }

    fn forget_stale(&mut self, now: Instant) {
        self.in_flight.retain(|p| now.saturating_duration_since(p.at) < PING_TIMEOUT);
        self.candidates.retain(|c| c.is_live(now));
    }

    /// A pong from `from`, authenticated by the peer's disco key.
    pub(super) fn on_pong(&mut self, now: Instant, tx_id: TxId, from: SocketAddr) -> PongOutcome {
        self.in_flight.retain(|p| now.saturating_duration_since(p.at) < PING_TIMEOUT);
        let Some(at) = self.in_flight.iter().position(|p| p.tx_id == tx_id) else {
            return PongOutcome::Unknown;
        };
        if self.in_flight[at].to != from {
            return PongOutcome::WrongSource;
        }
        let sent = self.in_flight.remove(at);
        let latency = now.saturating_duration_since(sent.at);
        let candidate = BestPath { addr: sent.to, latency, trusted_until: now + TRUST_DURATION };
        let replace = match self.best {
            None => true,
            Some(best) => now >= best.trusted_until || is_better(&candidate, &best),
        };
        if replace || self.best.is_some_and(|b| b.addr == candidate.addr) {
            self.best = Some(candidate);
        }
        let best = self.best.is_some_and(|b| b.addr == sent.to);
        PongOutcome::Proven { addr: sent.to, latency, best }
    }

    /// The peer pinged us from `from`: an address its NAT opened, worth pinging back.
    pub(super) fn on_ping(&mut self, now: Instant, from: SocketAddr) {
        if self.candidates.len() >= MAX_CANDIDATES
            && !self.candidates.iter().any(|c| c.addr == from)
        {
            self.forget_stale(now);
            if self.candidates.len() >= MAX_CANDIDATES {
                return;
            }
        }
        self.candidate(from).pinged_us_at = Some(now);
    }

    /// Whether a pong may go out now (a per-peer budget; a flood of valid pings from many
    /// sources cannot make us seal without bound).
    pub(super) fn allow_pong(&mut self, now: Instant) -> bool {
        match &mut self.pong_window {
            Some((start, count))
                if now.saturating_duration_since(*start) < Duration::from_secs(1) =>
            {
                *count += 1;
                *count <= MAX_PONGS_PER_SECOND
            }
            window => {
                *window = Some((now, 1));
                true
            }
        }
    }

    /// The peer asks to be pinged at `endpoints` now (its CallMeMaybe): they replace the ones
    /// its previous CallMeMaybe listed, and every candidate becomes due for a ping.
    pub(super) fn on_call_me_maybe(&mut self, endpoints: &[SocketAddr]) {
        for candidate in &mut self.candidates {
            candidate.from_call_me_maybe = false;
            candidate.pinged_at = None;
        }
        for addr in endpoints.iter().filter(|a| !is_link_local_v6(a.ip())).take(MAX_CANDIDATES) {
            self.candidate(*addr).from_call_me_maybe = true;
        }
        self.candidates
            .retain(|c| c.from_netmap || c.from_call_me_maybe || c.pinged_us_at.is_some());
    }
}

/// magicsock's `betterAddr`: the faster path earns up to 100 points by how much faster it is,
/// and the kind of address adds a little (loopback, link-local, private, IPv6). A new path has
/// to win by more than a point, so two near-equal paths do not flap.
fn is_better(new: &BestPath, current: &BestPath) -> bool {
    if new.addr == current.addr {
        return false;
    }
    let (mut new_points, mut current_points) =
        (kind_points(new.addr.ip()), kind_points(current.addr.ip()));
    let (fast, slow) = (new.latency.min(current.latency), new.latency.max(current.latency));
    if !slow.is_zero() && fast != slow {
        let speed = 100 - (100 * fast.as_nanos() / slow.as_nanos()) as i64;
        if new.latency < current.latency {
            new_points += speed;
        } else {
            current_points += speed;
        }
    }
    if new_points <= 1 && current_points == 0 {
        return false;
    }
    new_points > current_points
}

fn kind_points(ip: IpAddr) -> i64 {
    let kind = if ip.is_loopback() {
        50
    } else if is_link_local_v6(ip) {
        30
    } else if is_private(ip) {
        20
    } else {
        0
    };
    kind + if ip.is_ipv6() { 10 } else { 0 }
}

fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// RFC 1918 and IPv6 unique-local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn counter() -> impl FnMut() -> TxId {
        let mut n = 0u8;
        move || {
            n += 1;
            [n; 12]
        }
    }

    fn path(a: &str, latency_ms: u64, now: Instant) -> BestPath {
        BestPath { addr: addr(a), latency: Duration::from_millis(latency_ms), trusted_until: now }
    }

    #[test]
    fn better_addr_prefers_faster_with_hysteresis_and_kind_bonus() {
        let now = Instant::now();
        assert!(is_better(&path("203.0.113.1:1", 10, now), &path("203.0.113.2:1", 20, now)));
        assert!(!is_better(&path("203.0.113.1:1", 20, now), &path("203.0.113.2:1", 10, now)));
        // 1% faster is within the hysteresis.
        assert!(!is_better(&path("203.0.113.1:1", 99, now), &path("203.0.113.2:1", 100, now)));
        // IPv6 gets 10 points: wins at equal speed, loses when much slower.
        assert!(is_better(&path("[2001:db8::1]:1", 10, now), &path("203.0.113.2:1", 10, now)));
        assert!(!is_better(&path("[2001:db8::1]:1", 30, now), &path("203.0.113.2:1", 10, now)));
        // A private address beats a public one of equal speed.
        assert!(is_better(&path("192.168.1.2:1", 10, now), &path("203.0.113.2:1", 10, now)));
    }

    #[test]
    fn only_a_pong_from_the_pinged_address_proves_a_path_and_trust_expires() {
        let now = Instant::now();
        let target = addr("192.0.2.9:41641");
        let mut paths = DiscoPaths::new(&[target]);
        assert!(paths.note_send(now));
        let probe = paths.discover(now, &mut counter());
        assert_eq!(probe.pings.len(), 1);
        assert!(probe.call_me_maybe);
        let tx = probe.pings[0].1;
        let later = now + Duration::from_millis(20);
        assert_eq!(paths.on_pong(later, [9; 12], target), PongOutcome::Unknown);
        assert_eq!(paths.on_pong(later, tx, addr("198.51.100.1:1")), PongOutcome::WrongSource);
        assert_eq!(paths.trusted_best(later), None);
        let proven = paths.on_pong(later, tx, target);
        assert_eq!(
            proven,
            PongOutcome::Proven { addr: target, latency: Duration::from_millis(20), best: true }
        );
        assert_eq!(paths.on_pong(later, tx, target), PongOutcome::Unknown, "once only");
        assert_eq!(paths.trusted_best(later + Duration::from_secs(6)), Some(target));
        assert_eq!(paths.trusted_best(later + TRUST_DURATION), None);
    }

    #[test]
    fn heartbeats_run_only_while_traffic_flows() {
        let now = Instant::now();
        let mut paths = DiscoPaths::new(&[addr("192.0.2.9:41641")]);
        assert_eq!(paths.poll_timeout(), None, "never used: no timer");
        paths.note_send(now);
        let mut at = now;
        let mut beats = 0;
        while let Some(next) = paths.poll_timeout() {
            at = next;
            paths.heartbeat(at, &mut counter());
            beats += 1;
            assert!(beats < 100);
        }
        assert!(
            at >= now + SESSION_ACTIVE_TIMEOUT
                && at < now + SESSION_ACTIVE_TIMEOUT + HEARTBEAT_INTERVAL * 2
        );
    }

    #[test]
    fn call_me_maybe_replaces_its_endpoints_and_makes_all_due() {
        let now = Instant::now();
        let mut paths = DiscoPaths::new(&[addr("192.0.2.9:1")]);
        paths.discover(now, &mut counter());
        assert!(paths.discover(now, &mut counter()).pings.is_empty(), "spaced by the interval");
        paths.on_call_me_maybe(&[addr("203.0.113.4:2"), addr("[fe80::1]:3")]);
        let pinged: Vec<_> =
            paths.discover(now, &mut counter()).pings.into_iter().map(|p| p.0).collect();
        assert_eq!(pinged, vec![addr("192.0.2.9:1"), addr("203.0.113.4:2")]);
        paths.on_call_me_maybe(&[]);
        let pinged: Vec<_> =
            paths.discover(now, &mut counter()).pings.into_iter().map(|p| p.0).collect();
        assert_eq!(pinged, vec![addr("192.0.2.9:1")], "the earlier CallMeMaybe's address is gone");
    }

    #[test]
    fn pongs_are_budgeted_per_second() {
        let now = Instant::now();
        let mut paths = DiscoPaths::new(&[]);
        let allowed = (0..100).filter(|_| paths.allow_pong(now)).count();
        assert_eq!(allowed, MAX_PONGS_PER_SECOND as usize);
        assert!(paths.allow_pong(now + Duration::from_secs(1)));
    }
}
