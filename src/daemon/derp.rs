//! The DERP driver: one relay connection per region in use, non-blocking in the poll loop.
//! The home region's connection is kept up (reconnecting with jittered backoff); a connection
//! to another region opens when a peer homed there is sent to, and closes after
//! [`IDLE_TIMEOUT`] without sends. Framing and login are the sans-IO [`DerpClient`]'s; this
//! module owns name lookup, TCP, TLS (with the DERP map's `InsecureForTests` and
//! `sha256-raw:` pinning), the per-region send queue and the timers.

use super::control_socket::{ControlSocket, Progress};
use super::resolving::{Resolution, Resolving};
use super::tokens;
use crate::control::backoff::{Backoff, Jitter};
use crate::control::tailcfg::{DerpNode, DerpRegion, RegionId};
use crate::derp::{DerpClient, DerpError, Event, PeerGoneReason};
use crate::keys::{PrivateKey, PublicKey};
use crate::netmap::DerpMap;
use crate::resolver::resolv_conf::ResolvConf;
use mio::{Interest, Registry, Token};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Packets waiting per region while its connection logs in or its socket is full (tailscaled
/// keeps 32); more are dropped and counted.
pub(super) const QUEUE_LIMIT: usize = 32;
/// A non-home connection nobody sent through for this long is closed (tailscaled: 60 s).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many regions can be connected at once: each takes two poll tokens.
pub(super) const MAX_CONNECTIONS: usize = 8;
/// Port of a DERP node that names none: HTTPS, or tailscaled's debug plain-HTTP port.
const DEFAULT_TLS_PORT: u16 = 443;
const DEFAULT_HTTP_PORT: u16 = 3340;
const CERT_PIN_PREFIX: &str = "sha256-raw:";

/// Packets the engine relays while the data path handles a burst; the loop hands them to
/// [`Derp::send`] after it. Bounded: the driver's per-region queues bound them again.
#[derive(Default)]
pub(super) struct Outbox {
    packets: VecDeque<Relayed>,
    dropped: u64,
}

/// One packet for a relay.
pub(super) struct Relayed {
    pub region: RegionId,
    pub to: PublicKey,
    pub payload: Vec<u8>,
}

impl Outbox {
    const LIMIT: usize = QUEUE_LIMIT * MAX_CONNECTIONS;

    pub(super) fn push(&mut self, region: RegionId, to: PublicKey, payload: &[u8]) {
        if self.packets.len() >= Outbox::LIMIT {
            self.dropped += 1;
            return;
        }
        self.packets.push_back(Relayed { region, to, payload: payload.to_vec() });
    }

    pub(super) fn pop(&mut self) -> Option<Relayed> {
        self.packets.pop_front()
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// What the loop learns from the relays.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DerpEvent {
    Received {
        region: RegionId,
        from: PublicKey,
        payload: Vec<u8>,
    },
    /// `peer` left `region`'s server, or was never there.
    PeerGone {
        region: RegionId,
        peer: PublicKey,
        reason: PeerGoneReason,
    },
    Connected(RegionId),
    Disconnected(RegionId, String),
    /// A region's server said it has a problem, or that it is over.
    ServerHealth(RegionId),
}

/// Driver settings read once from the daemon's environment.
pub(super) struct DerpOptions {
    /// Seeds the reconnect jitter.
    pub jitter_seed: u64,
    /// `WEFT_DEBUG_USE_DERP_HTTP=1`: speak DERP over plain HTTP (test servers only).
    pub plain_http: bool,
}

pub(super) struct Derp {
    node_key: Option<PrivateKey>,
    map: DerpMap,
    home: Option<RegionId>,
    /// netcheck's choice, which overrides the lowest-numbered region.
    home_override: Option<RegionId>,
    regions: BTreeMap<RegionId, Region>,
    plain_http: bool,
    jitter: Jitter,
    roots: Option<Arc<rustls::ClientConfig>>,
    events: VecDeque<DerpEvent>,
    /// Packets dropped: queue full, region unknown, no free connection slot, too large.
    dropped: u64,
    /// The host's own nameservers, which look up the DERP nodes' names.
    host_resolver: ResolvConf,
}

/// One region's connection and what waits for it.
struct Region {
    slot: usize,
    link: Link,
    queue: VecDeque<(PublicKey, Vec<u8>)>,
    backoff: Backoff,
    last_send: Instant,
    /// Which of the region's dialable nodes the next attempt dials: a failure moves on to
    /// the next, so one dead node does not keep us off a region its siblings still serve.
    node_turn: usize,
    /// The problem the region's server last said it has (its Health frame), for status.
    server_problem: Option<String>,
}

enum Link {
    /// Waiting to (re)connect.
    Idle {
        retry_at: Instant,
    },
    Resolving {
        resolving: Box<Resolving>,
        node: DerpNode,
        started: Instant,
    },
    /// Boxed: the client and TLS state are large, and most regions sit idle.
    Open(Box<Open>),
}

struct Open {
    socket: ControlSocket,
    client: DerpClient,
}

/// Why a connection attempt or connection failed.
#[derive(Debug)]
enum LinkError {
    NoNode,
    Resolve(String),
    Connect(String),
    Tls(String),
    Closed(String),
    Protocol(DerpError),
    NoRandomness(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::NoNode => f.write_str("the region has no DERP node to dial"),
            LinkError::Resolve(e) => write!(f, "resolving the DERP node: {e}"),
            LinkError::Connect(e) => write!(f, "connecting to the DERP node: {e}"),
            LinkError::Tls(e) => write!(f, "DERP TLS settings: {e}"),
            LinkError::Closed(e) => write!(f, "DERP connection lost: {e}"),
            LinkError::Protocol(e) => e.fmt(f),
            LinkError::NoRandomness(e) => write!(f, "no randomness for the DERP login: {e}"),
        }
    }
}

impl Derp {
    pub(super) fn new(options: DerpOptions) -> Derp {
        Derp {
            node_key: None,
            map: DerpMap::default(),
            home: None,
            home_override: None,
            regions: BTreeMap::new(),
            plain_http: options.plain_http,
            jitter: Jitter::new(options.jitter_seed),
            roots: None,
            events: VecDeque::new(),
            dropped: 0,
            host_resolver: ResolvConf::default(),
        }
    }

    /// The host's own nameservers (`platform::dns::HostResolver`), for the next lookups.
    pub(super) fn set_host_resolver(&mut self, conf: ResolvConf) {
        self.host_resolver = conf;
    }

    /// The key connections log in with; a new key reconnects everything.
    pub(super) fn set_node_key(&mut self, key: PrivateKey, registry: &Registry, now: Instant) {
        if self.node_key.as_ref() != Some(&key) {
            self.node_key = Some(key);
            self.close_all(registry, "node key changed");
            self.ensure_home(now);
        }
    }

    /// A new DERP map (or none: every connection closes). The home is `home_region` when
    /// given and present, else netcheck's choice, else the lowest-numbered region.
    pub(super) fn set_derp_map(
        &mut self,
        map: Option<&DerpMap>,
        home_region: Option<RegionId>,
        registry: &Registry,
        now: Instant,
    ) {
        let map = map.cloned().unwrap_or_default();
        if map != self.map {
            self.map = map;
            self.close_all(registry, "DERP map changed");
        }
        if home_region.is_some() {
            self.home_override = home_region;
        }
        self.choose_home(registry, now);
    }

    /// netcheck's preferred region becomes the home (the loop's call once netcheck runs).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn set_home_region(&mut self, region: RegionId, registry: &Registry, now: Instant) {
        self.home_override = Some(region);
        self.choose_home(registry, now);
    }

    pub(super) fn home_region(&self) -> Option<RegionId> {
        self.home
    }

    /// True when there is a home region and its connection is logged in.
    pub(super) fn home_connected(&self) -> bool {
        let home = self.home.and_then(|h| self.regions.get(&h));
        matches!(home, Some(Region { link: Link::Open(open), .. }) if open.client.is_connected())
    }

    pub(super) fn has_map(&self) -> bool {
        !self.map.regions.is_empty()
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(super) fn poll_event(&mut self) -> Option<DerpEvent> {
        self.events.pop_front()
    }

    /// Relays `payload` to `to` through `region`, connecting to it if needed.
    pub(super) fn send(
        &mut self,
        now: Instant,
        region: RegionId,
        to: PublicKey,
        payload: &[u8],
        registry: &Registry,
    ) {
        if !self.map.regions.contains_key(&region) || !self.open_region(region, now) {
            self.dropped += 1;
            return;
        }
        let Some(state) = self.regions.get_mut(&region) else {
            return;
        };
        state.last_send = now;
        if state.queue.len() >= QUEUE_LIMIT {
            self.dropped += 1;
            return;
        }
        state.queue.push_back((to, payload.to_vec()));
        self.pump(region, registry, now);
    }

    /// The next moment [`Derp::on_timeout`] must run.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.regions.iter().filter_map(|(id, r)| self.region_deadline(*id, r)).min()
    }

    fn region_deadline(&self, id: RegionId, region: &Region) -> Option<Instant> {
        let idle = (Some(id) != self.home).then_some(region.last_send + IDLE_TIMEOUT);
        let link = match &region.link {
            Link::Idle { retry_at } => Some(*retry_at),
            Link::Resolving { resolving, started, .. } => {
                let login = *started + crate::derp::LOGIN_TIMEOUT;
                Some(resolving.deadline().map_or(login, |d| d.min(login)))
            }
            Link::Open(open) => Some(open.client.poll_timeout()),
        };
        [idle, link].into_iter().flatten().min()
    }

    pub(super) fn on_timeout(&mut self, registry: &Registry, now: Instant) {
        let ids: Vec<RegionId> = self.regions.keys().copied().collect();
        for id in ids {
            let Some(region) = self.regions.get_mut(&id) else {
                continue;
            };
            if Some(id) != self.home && now >= region.last_send + IDLE_TIMEOUT {
                self.close(id, registry, "idle");
                self.regions.remove(&id);
                continue;
            }
            let result = match &mut region.link {
                Link::Idle { retry_at } if now >= *retry_at => {
                    self.dial(id, registry, now);
                    Ok(())
                }
                Link::Idle { .. } => Ok(()),
                Link::Resolving { resolving, started, .. } => {
                    if now >= *started + crate::derp::LOGIN_TIMEOUT {
                        Err(LinkError::Protocol(DerpError::LoginTimeout))
                    } else {
                        resolving.on_timeout(now);
                        Ok(())
                    }
                }
                Link::Open(open) => open.client.handle_timeout(now).map_err(LinkError::Protocol),
            };
            match result {
                Ok(()) => self.advance(id, registry, now),
                Err(e) => self.fail(id, e, registry, now),
            }
        }
    }

    /// Drops (and redials after the backoff's first, short step) every connection that left
    /// from an address the host no longer has (`host`: its addresses now), instead of
    /// waiting out the two minutes of silence that would reveal it.
    pub(super) fn drop_links_from_vanished_addresses(
        &mut self,
        host: &[IpAddr],
        registry: &Registry,
        now: Instant,
    ) {
        let stale: Vec<(RegionId, IpAddr)> = self
            .regions
            .iter()
            .filter_map(|(id, region)| match &region.link {
                Link::Open(open) => open.socket.vanished_local_address(host).map(|ip| (*id, ip)),
                _ => None,
            })
            .collect();
        for (id, local) in stale {
            let why = LinkError::Closed(format!("the local address {local} is gone"));
            self.fail(id, why, registry, now);
        }
    }

    /// A readiness event on one of the driver's tokens.
    pub(super) fn on_ready(&mut self, token: Token, registry: &Registry, now: Instant) {
        let Some((slot, is_resolver)) = tokens::derp_slot(token) else {
            return;
        };
        let Some(id) = self.regions.iter().find(|(_, r)| r.slot == slot).map(|(id, _)| *id) else {
            return;
        };
        let Some(region) = self.regions.get_mut(&id) else {
            return;
        };
        match (&mut region.link, is_resolver) {
            (Link::Resolving { resolving, .. }, true) => resolving.on_readable(now),
            (Link::Open(open), false) => {
                let Open { socket, client } = &mut **open;
                let mut received = Vec::new();
                let progress = socket.on_ready(&mut received);
                let mut result = client.handle_input(now, &received).map_err(LinkError::Protocol);
                if let (Ok(()), Progress::Closed(why)) = (&result, progress) {
                    result = Err(LinkError::Closed(why));
                }
                if let Err(e) = result {
                    return self.fail(id, e, registry, now);
                }
            }
            _ => return,
        }
        self.advance(id, registry, now);
    }

    /// Connects the home region when one is due and not yet there.
    fn choose_home(&mut self, registry: &Registry, now: Instant) {
        let wanted = self
            .home_override
            .filter(|r| self.map.regions.contains_key(r))
            .or_else(|| self.lowest_homeable_region());
        if wanted != self.home {
            let previous = self.home;
            self.home = wanted;
            for region in [previous, wanted].into_iter().flatten() {
                self.note_preferred(region, registry, now);
            }
        }
        self.ensure_home(now);
    }

    fn lowest_homeable_region(&self) -> Option<RegionId> {
        let usable = |r: &DerpRegion| !r.no_measure_no_home && r.nodes.iter().any(|n| !n.stun_only);
        self.map.regions.iter().find(|(_, r)| usable(r)).map(|(id, _)| *id)
    }

    fn ensure_home(&mut self, now: Instant) {
        if let Some(home) = self.home {
            self.open_region(home, now);
        }
    }

    /// Makes sure `region` has an entry (a connection or a pending attempt); false when all
    /// slots are taken or we have no key to log in with.
    fn open_region(&mut self, region: RegionId, now: Instant) -> bool {
        if self.regions.contains_key(&region) {
            return true;
        }
        if self.node_key.is_none() {
            return false;
        }
        let used: Vec<usize> = self.regions.values().map(|r| r.slot).collect();
        let Some(slot) = (0..MAX_CONNECTIONS).find(|s| !used.contains(s)) else {
            return false;
        };
        let entry = Region {
            slot,
            link: Link::Idle { retry_at: now },
            queue: VecDeque::new(),
            backoff: Backoff::default(),
            last_send: now,
            node_turn: 0,
            server_problem: None,
        };
        self.regions.insert(region, entry);
        true
    }

    /// Starts an attempt on the region's dialable node whose turn it is.
    fn dial(&mut self, id: RegionId, registry: &Registry, now: Instant) {
        let Some(region) = self.regions.get_mut(&id) else {
            return;
        };
        let dialable: Vec<&DerpNode> = self
            .map
            .regions
            .get(&id)
            .map(|r| r.nodes.iter().filter(|n| !n.stun_only).collect())
            .unwrap_or_default();
        let Some(node) = dialable.get(region.node_turn % dialable.len().max(1)) else {
            return self.fail(id, LinkError::NoNode, registry, now);
        };
        let node = (*node).clone();
        let resolver_token = tokens::derp_resolver(region.slot);
        match node_address(&node) {
            Some(ip) => self.connect(id, &node, Ok(vec![ip]), registry, now),
            None => match Resolving::begin(
                &node.host_name,
                &self.host_resolver,
                registry,
                resolver_token,
                now,
            ) {
                Resolution::Finished(result) => self.connect(id, &node, result, registry, now),
                Resolution::Running(resolving) => {
                    region.link = Link::Resolving { resolving, node, started: now };
                }
            },
        }
    }

    fn connect(
        &mut self,
        id: RegionId,
        node: &DerpNode,
        resolved: Result<Vec<IpAddr>, String>,
        registry: &Registry,
        now: Instant,
    ) {
        match self.open_connection(id, node, resolved, registry, now) {
            Ok(()) => self.advance(id, registry, now),
            Err(e) => self.fail(id, e, registry, now),
        }
    }

    fn open_connection(
        &mut self,
        id: RegionId,
        node: &DerpNode,
        resolved: Result<Vec<IpAddr>, String>,
        registry: &Registry,
        now: Instant,
    ) -> Result<(), LinkError> {
        let ip = resolved
            .map_err(LinkError::Resolve)?
            .first()
            .copied()
            .ok_or_else(|| LinkError::Resolve("no address".into()))?;
        let default_port = if self.plain_http { DEFAULT_HTTP_PORT } else { DEFAULT_TLS_PORT };
        let port = if node.derp_port == 0 { default_port } else { node.derp_port };
        let tls = if self.plain_http {
            None
        } else {
            let config = self.tls_config_for(node).map_err(LinkError::Tls)?;
            Some((config, node.host_name.clone()))
        };
        let addr = SocketAddr::new(ip, port);
        let mut socket = ControlSocket::connect(addr, tls)
            .map_err(|e| LinkError::Connect(format!("{addr}: {e}")))?;
        let host = if port == DEFAULT_TLS_PORT {
            node.host_name.clone()
        } else {
            format!("{}:{port}", node.host_name)
        };
        let key = self.node_key.clone().ok_or(LinkError::NoNode)?;
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).map_err(|e| LinkError::NoRandomness(e.to_string()))?;
        let mut client = DerpClient::new(now, key, &host, nonce).map_err(LinkError::Protocol)?;
        let Some(region) = self.regions.get_mut(&id) else {
            return Ok(());
        };
        let token = tokens::derp_socket(region.slot);
        registry
            .register(socket.source(), token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| LinkError::Connect(e.to_string()))?;
        socket.send(&client.take_output()).map_err(|e| LinkError::Connect(e.to_string()))?;
        region.link = Link::Open(Box::new(Open { socket, client }));
        Ok(())
    }

    /// The node's TLS settings: no checks for test nodes, a pinned leaf hash, or the system
    /// roots checked against `CertName` or `HostName`.
    fn tls_config_for(&mut self, node: &DerpNode) -> Result<Arc<rustls::ClientConfig>, String> {
        if node.insecure_for_tests {
            return super::control_socket::tls_config_with(Arc::new(tls_pin::AnyCert::new()));
        }
        if let Some(hex) = node.cert_name.strip_prefix(CERT_PIN_PREFIX) {
            return super::control_socket::tls_config_with(Arc::new(tls_pin::PinnedLeaf::new(
                hex,
            )?));
        }
        if let Some(roots) = &self.roots {
            return Ok(roots.clone());
        }
        let roots = super::control_socket::tls_config(None)?;
        self.roots = Some(roots.clone());
        Ok(roots)
    }

    /// After input or a dial: finishes a lookup, reports events, flushes the queue.
    fn advance(&mut self, id: RegionId, registry: &Registry, now: Instant) {
        let Some(region) = self.regions.get_mut(&id) else {
            return;
        };
        if let Link::Resolving { resolving, node, .. } = &mut region.link {
            let Some(result) = resolving.result() else {
                return;
            };
            let node = node.clone();
            let Link::Resolving { resolving, .. } =
                std::mem::replace(&mut region.link, Link::Idle { retry_at: now })
            else {
                return;
            };
            resolving.stop(registry);
            return self.connect(id, &node, result, registry, now);
        }
        self.take_client_events(id, registry, now);
        self.pump(id, registry, now);
    }

    fn take_client_events(&mut self, id: RegionId, registry: &Registry, now: Instant) {
        loop {
            let Some(Region { link: Link::Open(open), backoff, .. }) = self.regions.get_mut(&id)
            else {
                return;
            };
            let Some(event) = open.client.poll_event() else {
                return;
            };
            match event {
                Event::Connected { .. } => {
                    backoff.reset();
                    log::info!("DERP region {id}: connected");
                    self.events.push_back(DerpEvent::Connected(id));
                    if self.home == Some(id) {
                        self.note_preferred(id, registry, now);
                    }
                }
                Event::Packet { src, packet } => self.events.push_back(DerpEvent::Received {
                    region: id,
                    from: src,
                    payload: packet,
                }),
                Event::PeerGone { peer, reason } => {
                    self.events.push_back(DerpEvent::PeerGone { region: id, peer, reason })
                }
                Event::Health(problem) => self.note_server_health(id, problem),
                Event::Restarting { reconnect_in, .. } => {
                    log::info!("DERP region {id}: server restarting");
                    return self.close_for_retry(
                        id,
                        registry,
                        reconnect_in,
                        now,
                        "server restarting",
                    );
                }
                Event::PeerPresent { .. } | Event::PingAnswered { .. } => {}
            }
        }
    }

    /// Keeps what region `id`'s server says of its health, for status; logged, and told to
    /// the loop, only when it changes (a server may repeat it as often as it likes).
    fn note_server_health(&mut self, id: RegionId, problem: Option<String>) {
        let Some(region) = self.regions.get_mut(&id) else { return };
        if region.server_problem == problem {
            return;
        }
        match &problem {
            Some(problem) => log::warn!("DERP region {id}: server says {problem}"),
            None => log::info!("DERP region {id}: server healthy again"),
        }
        region.server_problem = problem;
        self.events.push_back(DerpEvent::ServerHealth(id));
    }

    /// What the servers of the regions in use say is wrong with them.
    pub(super) fn server_problems(&self) -> Vec<String> {
        self.regions
            .iter()
            .filter_map(|(id, region)| {
                let problem = region.server_problem.as_ref()?;
                Some(format!("DERP region {id}: server says {problem}"))
            })
            .collect()
    }

    /// Writes the client's output and as many queued packets as the socket takes.
    fn pump(&mut self, id: RegionId, registry: &Registry, now: Instant) {
        let Some(Region { link: Link::Open(open), queue, .. }) = self.regions.get_mut(&id) else {
            return;
        };
        let Open { socket, client } = &mut **open;
        if client.is_connected() {
            while !socket.is_backlogged() {
                let Some((to, payload)) = queue.pop_front() else {
                    break;
                };
                if client.send_packet(now, to, &payload).is_err() {
                    self.dropped += 1;
                }
                let out = client.take_output();
                if let Err(e) = socket.send(&out) {
                    return self.fail(id, LinkError::Closed(e.to_string()), registry, now);
                }
            }
        }
        let out = client.take_output();
        if !out.is_empty() {
            if let Err(e) = socket.send(&out) {
                self.fail(id, LinkError::Closed(e.to_string()), registry, now);
            }
        }
    }

    fn note_preferred(&mut self, id: RegionId, registry: &Registry, now: Instant) {
        let preferred = self.home == Some(id);
        if let Some(Region { link: Link::Open(open), .. }) = self.regions.get_mut(&id) {
            if open.client.note_preferred(preferred).is_ok() {
                self.pump(id, registry, now);
            }
        }
    }

    /// Drops the connection and schedules a retry after the backoff.
    fn fail(&mut self, id: RegionId, error: LinkError, registry: &Registry, now: Instant) {
        let Some(region) = self.regions.get_mut(&id) else {
            return;
        };
        let delay = region.backoff.next_delay(self.jitter.draw());
        region.node_turn = region.node_turn.wrapping_add(1);
        log::warn!("DERP region {id}: {error}; retrying in {delay:?}");
        self.close_for_retry(id, registry, delay, now, &error.to_string());
    }

    fn close_for_retry(
        &mut self,
        id: RegionId,
        registry: &Registry,
        delay: Duration,
        now: Instant,
        why: &str,
    ) {
        self.close(id, registry, why);
        if let Some(region) = self.regions.get_mut(&id) {
            region.link = Link::Idle { retry_at: now + delay };
        }
    }

    /// Closes the region's connection, if any, and reports it.
    fn close(&mut self, id: RegionId, registry: &Registry, why: &str) {
        let Some(region) = self.regions.get_mut(&id) else {
            return;
        };
        let was_connected = matches!(&region.link, Link::Open(open) if open.client.is_connected());
        match std::mem::replace(&mut region.link, Link::Idle { retry_at: region.last_send }) {
            Link::Open(mut open) => {
                let _ = registry.deregister(open.socket.source());
            }
            Link::Resolving { resolving, .. } => resolving.stop(registry),
            Link::Idle { .. } => {}
        }
        self.dropped += region.queue.len() as u64;
        region.queue.clear();
        if was_connected {
            self.events.push_back(DerpEvent::Disconnected(id, why.to_string()));
        }
    }

    fn close_all(&mut self, registry: &Registry, why: &str) {
        let ids: Vec<RegionId> = self.regions.keys().copied().collect();
        for id in ids {
            self.close(id, registry, why);
        }
        self.regions.clear();
        self.home = None;
    }
}

/// The address the DERP map gives for the node: its IPv4 or IPv6 field, or a HostName that is
/// an IP literal; `None`: look the name up.
fn node_address(node: &DerpNode) -> Option<IpAddr> {
    let v4 = node.ipv4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
    let v6 = node.ipv6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    v4.or(v6).or_else(|| node.host_name.parse().ok())
}

/// Certificate checks the DERP map may ask for instead of the web PKI.
mod tls_pin {
    use crate::keys::hex;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    /// `InsecureForTests`: any certificate (the handshake's signatures are still checked).
    #[derive(Debug)]
    pub(super) struct AnyCert(CryptoProvider);

    impl AnyCert {
        pub(super) fn new() -> AnyCert {
            AnyCert(provider())
        }
    }

    /// `CertName: "sha256-raw:<hex>"`: only a leaf whose DER hashes to that value.
    #[derive(Debug)]
    pub(super) struct PinnedLeaf {
        provider: CryptoProvider,
        sha256_hex: String,
    }

    impl PinnedLeaf {
        pub(super) fn new(sha256_hex: &str) -> Result<PinnedLeaf, String> {
            let valid = sha256_hex.len() == 64 && sha256_hex.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid {
                return Err("CertName sha256-raw value is not 64 hex digits".into());
            }
            Ok(PinnedLeaf { provider: provider(), sha256_hex: sha256_hex.to_ascii_lowercase() })
        }
    }

    macro_rules! signatures_by_provider {
        () => {
            fn verify_tls12_signature(
                &self,
                message: &[u8],
                cert: &CertificateDer<'_>,
                dss: &DigitallySignedStruct,
            ) -> Result<HandshakeSignatureValid, Error> {
                verify_tls12_signature(
                    message,
                    cert,
                    dss,
                    &self.provider().signature_verification_algorithms,
                )
            }

            fn verify_tls13_signature(
                &self,
                message: &[u8],
                cert: &CertificateDer<'_>,
                dss: &DigitallySignedStruct,
            ) -> Result<HandshakeSignatureValid, Error> {
                verify_tls13_signature(
                    message,
                    cert,
                    dss,
                    &self.provider().signature_verification_algorithms,
                )
            }

            fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
                self.provider().signature_verification_algorithms.supported_schemes()
            }
        };
    }

    impl AnyCert {
        fn provider(&self) -> &CryptoProvider {
            &self.0
        }
    }

    impl PinnedLeaf {
        fn provider(&self) -> &CryptoProvider {
            &self.provider
        }
    }

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }
        signatures_by_provider!();
    }

    impl ServerCertVerifier for PinnedLeaf {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
            if hex(digest.as_ref()) == self.sha256_hex {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(Error::General("DERP certificate does not match the pinned hash".into()))
            }
        }
        signatures_by_provider!();
    }
}

#[cfg(test)]
mod tests;
