//! Which way a peer's packets leave, and where an arriving packet came from: a UDP address, or
//! a DERP relay region that forwards by node key. The one place that chooses the outbound path
//! is [`PeerState::path_for`].

use super::peers::PeerState;
use super::PacketSink;
use crate::control::tailcfg::RegionId;
use crate::keys::PublicKey;
use crate::wg::handshake_limiter::HandshakeSource;
use std::cell::Cell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// Where a peer's packets go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Udp(SocketAddr),
    /// Through the relay of this region, addressed by the peer's node key.
    Derp(RegionId),
    /// Nowhere yet: no trusted endpoint and no home relay.
    None,
}

/// The address that stands for "relayed through DERP region N" where a socket address is
/// expected (ping results, the address handshake cookies are bound to): tailscale's
/// `127.3.3.40:N`, which no real packet can come from.
const DERP_MAGIC_IP: Ipv4Addr = Ipv4Addr::new(127, 3, 3, 40);

/// Where an arriving datagram came from; replies that answer it go back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Udp(SocketAddr),
    Derp { region: RegionId, key: PublicKey },
}

impl Source {
    /// The source as a socket address; DERP regions as tailscale's magic address.
    pub(super) fn addr(&self) -> SocketAddr {
        match self {
            Source::Udp(addr) => *addr,
            Source::Derp { region, .. } => SocketAddr::new(IpAddr::V4(DERP_MAGIC_IP), *region),
        }
    }

    /// Who the handshake gate holds to a share: the sending address, or for a relayed
    /// message the sender's key (every relayed sender shares the magic address).
    pub(super) fn handshake_source(&self) -> HandshakeSource {
        match self {
            Source::Udp(addr) => HandshakeSource::Address(addr.ip()),
            Source::Derp { key, .. } => {
                HandshakeSource::Relayed { address: self.addr().ip(), sender: *key }
            }
        }
    }

    /// The UDP address, when there is one: only those may become a peer's endpoint.
    pub(super) fn udp(&self) -> Option<SocketAddr> {
        match self {
            Source::Udp(addr) => Some(*addr),
            Source::Derp { .. } => None,
        }
    }

    /// Sends `datagram` back to where this source's packet came from.
    pub(super) fn reply(&self, sink: &mut dyn PacketSink, datagram: &[u8]) {
        match self {
            Source::Udp(addr) => sink.send_udp(*addr, datagram),
            Source::Derp { region, key } => sink.send_derp(*region, *key, datagram),
        }
    }
}

impl PeerState {
    /// The peer's outbound path, the one choice magicsock's endpoint makes per packet: a direct
    /// path a disco pong proved (while its trust lasts), else — for a peer without disco only —
    /// a UDP endpoint proven by authenticated WireGuard, else the peer's home DERP region, else
    /// (only for a peer without a relay, which has nothing better) the first unproven candidate
    /// control gave. A plain WireGuard peer (no disco, no relay: a static config's or control's
    /// WireGuard-only peer) trusts its configured endpoint; a Tailscale node's candidates are
    /// not trusted, even before its home region is known.
    pub(super) fn path_for(&self, now: Instant) -> Path {
        if let Some(direct) = self.disco.as_ref().and_then(|d| d.paths.trusted_best(now)) {
            return Path::Udp(direct);
        }
        let plain_wireguard = self.config.disco_key.is_none() && self.config.derp_region.is_none();
        let trusted = self.wireguard_proven_endpoint().is_some() || plain_wireguard;
        match (self.endpoint, trusted, self.config.derp_region) {
            (Some(addr), true, _) => Path::Udp(addr),
            (_, _, Some(region)) => Path::Derp(region),
            (Some(addr), false, None) => Path::Udp(addr),
            (None, _, None) => Path::None,
        }
    }

    /// The direct address in use and proven (tailscale's `CurAddr`): a pong's path, or where
    /// authenticated WireGuard came from; never a merely configured or listed endpoint.
    pub(super) fn proven_direct(&self, now: Instant) -> Option<SocketAddr> {
        let by_disco = self.disco.as_ref().and_then(|d| d.paths.trusted_best(now));
        by_disco.or(self.wireguard_proven_endpoint())
    }

    /// Where authenticated WireGuard last came from, for a peer without disco. A disco peer's
    /// paths are proven by pongs alone, as magicsock's are: WireGuard arriving on an address
    /// says nothing about whether our packets still reach it, and keeping that address after
    /// the pongs stop would hold the peer on a dead path instead of falling back to DERP.
    fn wireguard_proven_endpoint(&self) -> Option<SocketAddr> {
        let proven = self.endpoint_proven && self.config.disco_key.is_none();
        self.endpoint.filter(|_| proven)
    }

    /// Sends `datagram` along [`PeerState::path_for`]; false when there is no path. A path
    /// other than the last one used, and a handshake initiation sent while an earlier one is
    /// still unanswered, are logged (once each).
    pub(super) fn send(&self, now: Instant, sink: &mut dyn PacketSink, datagram: &[u8]) -> bool {
        let path = self.current_path(now);
        if datagram.first() == Some(&HANDSHAKE_INITIATION) {
            if let Some(waited) = self.path_log.note_initiation(now) {
                log::debug!(
                    "peer {}: handshake not completing: no answer for {}s to the initiation \
                     sent {path}; retrying",
                    log_name(&self.config),
                    waited.as_secs()
                );
            }
        }
        match path {
            Path::Udp(addr) => sink.send_udp(addr, datagram),
            Path::Derp(region) => sink.send_derp(region, self.config.public_key, datagram),
            Path::None => return false,
        }
        true
    }

    /// [`PeerState::path_for`], logged when it differs from the path last seen: called on
    /// every send, and where a path may change without one (a pong, a heartbeat).
    pub(super) fn current_path(&self, now: Instant) -> Path {
        let path = self.path_for(now);
        if let Some(change) = self.path_log.note_path(now, path) {
            log::debug!("peer {}: {change}", log_name(&self.config));
        }
        path
    }
}

/// The peer's name for the log (escaped: control chose it, and a newline or an escape
/// sequence in it would forge log lines), else its short key.
fn log_name(peer: &crate::netmap::Peer) -> String {
    match peer.name.as_str() {
        "" => peer.public_key.short(),
        name => name.escape_debug().to_string(),
    }
}

/// The first byte of a WireGuard handshake initiation.
const HANDSHAKE_INITIATION: u8 = 1;

impl fmt::Display for Path {
    /// How a log line names the path: `direct to ip:port`, `through DERP region N`, or `nowhere`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Udp(addr) => write!(f, "direct to {addr}"),
            Path::Derp(region) => write!(f, "through DERP region {region}"),
            Path::None => f.write_str("nowhere"),
        }
    }
}

/// Path changes are logged at most once per interval per peer; the ones between are counted
/// and told with the next line.
const PATH_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What the log last said about a peer's path and handshake, so that each change is told
/// once, not once per packet. Made at the first send: a peer never written to (most of a
/// large tailnet) carries one pointer's worth of it. Cells: [`PeerState::send`] borrows the
/// peer shared.
#[derive(Debug, Default)]
pub(super) struct PathLog(std::cell::OnceCell<Box<PathLogState>>);

#[derive(Debug, Default)]
struct PathLogState {
    /// The path of the last send; `None` before the first.
    path: Cell<Option<Path>>,
    /// When a path change was last told.
    told_at: Cell<Option<Instant>>,
    /// Changes since then, not told yet ([`PATH_LOG_INTERVAL`]).
    untold: Cell<u32>,
    /// When the first initiation still unanswered went out, and whether its silence was
    /// logged already.
    initiation: Cell<Option<(Instant, bool)>>,
}

impl PathLog {
    fn state(&self) -> &PathLogState {
        self.0.get_or_init(Box::default)
    }

    fn note_path(&self, now: Instant, path: Path) -> Option<String> {
        self.state().note_path(now, path)
    }

    fn note_initiation(&self, now: Instant) -> Option<std::time::Duration> {
        self.state().note_initiation(now)
    }

    /// A handshake completed: the next unanswered initiation is news again.
    pub(super) fn handshake_completed(&self) {
        if let Some(state) = self.0.get() {
            state.initiation.set(None);
        }
    }
}

impl PathLogState {
    /// The sentence for the log when `path` differs from the last one, at most once per
    /// [`PATH_LOG_INTERVAL`]: changes in between are counted, and the first look after it
    /// tells where the path is then and how many changes went untold.
    fn note_path(&self, now: Instant, path: Path) -> Option<String> {
        let before = self.path.replace(Some(path));
        let changed = before != Some(path);
        let untold = self.untold.get().saturating_add(u32::from(changed));
        if untold == 0 {
            return None;
        }
        if self.told_at.get().is_some_and(|at| now < at + PATH_LOG_INTERVAL) {
            self.untold.set(untold);
            return None;
        }
        self.told_at.set(Some(now));
        self.untold.set(0);
        let said = if changed { describe_change(before, path) } else { format!("path now {path}") };
        Some(match untold - u32::from(changed) {
            0 => said,
            skipped => format!("{said} ({skipped} earlier changes not logged)"),
        })
    }

    /// A handshake initiation goes out: how long the first unanswered one has waited, the
    /// first time there is one to speak of.
    fn note_initiation(&self, now: Instant) -> Option<std::time::Duration> {
        match self.initiation.get() {
            None => {
                self.initiation.set(Some((now, false)));
                None
            }
            Some((since, false)) => {
                self.initiation.set(Some((since, true)));
                Some(now.saturating_duration_since(since))
            }
            Some((_, true)) => None,
        }
    }
}

/// How the log tells that the path went from `before` to `after` (they differ).
fn describe_change(before: Option<Path>, after: Path) -> String {
    match (before, after) {
        (_, Path::None) => {
            "no path: no endpoint proven and no home DERP region; packets are dropped \
             and no handshake can start"
                .to_string()
        }
        (None | Some(Path::None), Path::Udp(addr)) => format!("path found: direct to {addr}"),
        (None | Some(Path::None), Path::Derp(region)) => {
            format!("path found: through DERP region {region} (no direct path proven yet)")
        }
        (Some(Path::Udp(old)), Path::Udp(new)) => {
            format!("direct path changed from {old} to {new}")
        }
        (Some(Path::Derp(_)), Path::Udp(addr)) => format!("path now direct to {addr}"),
        (Some(Path::Udp(old)), Path::Derp(region)) => {
            format!("direct path to {old} lost; relaying through DERP region {region}")
        }
        (Some(Path::Derp(old)), Path::Derp(new)) => {
            format!("relay changed from DERP region {old} to {new}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_path_change_is_told_once() {
        let log = PathLog::default();
        let direct: SocketAddr = "192.0.2.4:41641".parse().unwrap();
        let t0 = Instant::now();
        let told: Vec<Option<String>> =
            [Path::Derp(7), Path::Derp(7), Path::Udp(direct), Path::Udp(direct), Path::Derp(7)]
                .into_iter()
                .zip(0..)
                .map(|(p, i)| log.note_path(t0 + i * PATH_LOG_INTERVAL, p))
                .collect();
        assert_eq!(
            told,
            [
                Some("path found: through DERP region 7 (no direct path proven yet)".into()),
                None,
                Some("path now direct to 192.0.2.4:41641".into()),
                None,
                Some("direct path to 192.0.2.4:41641 lost; relaying through DERP region 7".into()),
            ]
        );
        let later = t0 + 5 * PATH_LOG_INTERVAL;
        assert!(log.note_path(later, Path::None).unwrap().starts_with("no path"));
        assert_eq!(log.note_path(later + PATH_LOG_INTERVAL, Path::None), None);
    }

    /// A peer (or whoever races its packets from elsewhere) that flaps between two paths
    /// must not make a log line per packet: the changes between lines are counted.
    #[test]
    fn a_flapping_path_makes_a_line_per_interval_not_per_packet() {
        let log = PathLog::default();
        let (a, b): (SocketAddr, SocketAddr) =
            ("192.0.2.4:41641".parse().unwrap(), "198.51.100.7:4444".parse().unwrap());
        let t0 = Instant::now();
        let flaps = 1000;
        let told: Vec<String> = (0..flaps)
            .filter_map(|i| {
                let at = t0 + PATH_LOG_INTERVAL * i / flaps;
                log.note_path(at, Path::Udp(if i % 2 == 0 { a } else { b }))
            })
            .collect();
        assert_eq!(told.len(), 1, "{:?}", told.first());
        // After the interval, the next look tells where the path is now and how much was
        // left untold.
        let next = log.note_path(t0 + PATH_LOG_INTERVAL, Path::Udp(b)).expect("a summary");
        assert!(next.contains(&b.to_string()) && next.contains("999 earlier changes"), "{next}");
        assert_eq!(log.note_path(t0 + 3 * PATH_LOG_INTERVAL, Path::Udp(b)), None, "settled");
    }

    /// Control names the peers: a name must not break a log line or forge another one.
    #[test]
    fn a_peer_name_in_the_log_carries_no_control_characters() {
        let peer = crate::netmap::Peer {
            name: "box\nweftd: forged line\u{1b}[31m".into(),
            ..crate::netmap::Peer::new(PublicKey([4; 32]))
        };
        let name = log_name(&peer);
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.starts_with("box") && name.contains("forged line"), "still readable");
    }

    #[test]
    fn an_unanswered_handshake_is_told_once_until_one_completes() {
        let log = PathLog::default();
        let t0 = Instant::now();
        assert_eq!(log.note_initiation(t0), None, "the first initiation is no news");
        let retry = t0 + Duration::from_secs(5);
        assert_eq!(log.note_initiation(retry), Some(Duration::from_secs(5)));
        assert_eq!(log.note_initiation(retry + Duration::from_secs(5)), None);
        log.handshake_completed();
        assert_eq!(log.note_initiation(retry), None);
        assert_eq!(
            log.note_initiation(retry + Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
    }
}
