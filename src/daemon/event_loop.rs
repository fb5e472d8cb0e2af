//! The single `mio` poll loop, and the one place that routes between the drivers and the
//! engine and router. Each driver owns its IO (see its module); the loop hands readiness to
//! the driver that owns the token ([`tokens::driver_of`]), collects the drivers' events and
//! commands, and applies them to the engine and the router. Drivers never see each other.

use super::api::{Api, ApiCommand, Caller, Refusal};
use super::control::{Control, ControlEvent};
use super::datapath::{answer_from_fake_tun, DataPath};
use super::derp::{Derp, DerpEvent};
use super::link_monitor::{LinkMonitor, NetworkChanged};
use super::magicdns::DnsUpstream;
use super::ports::Ports;
use super::signals::{Signal, Signals};
use super::status_answers::{Done, StatusAnswers};
use super::tokens::{self, Driver};
use super::{environment, Options};
use crate::control::client::PeerPing;
use crate::engine::ping::{PingId, PingKind, PingResult};
use crate::engine::{Engine, NetmapChange};
use crate::keys::PrivateKey;
use crate::localapi::{NetcheckAnswer, RegionLabel};
use crate::netcheck::{Families, Netcheck};
use crate::netmap::{Netmap, SelfNode};
use crate::platform::bind::{kernel::effective_interface, pinning::Pinning};
use crate::platform::dns::{os_config, DnsConfigurator, DnsPaths, HostResolver, Translation};
use crate::platform::os_kind::OsKind;
use crate::platform::router::{Router, RouterConfig};
use crate::platform::tun::fake::NAME as FAKE_TUN;
use crate::private_fs::{create_private_dir, exposure_warning};
use crate::state::StateStore;
use mio::{Events, Poll};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a ping control asked for may take (tailscale's pinger allows 10 s).
const CONTROL_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The loop's state: the drivers, and the engine and router their events feed.
struct Daemon {
    options: Options,
    poll: Poll,
    engine: Engine,
    router: Option<Router>,
    datapath: DataPath,
    control: Control,
    derp: Derp,
    /// The sockets MagicDNS forwards queries from.
    dns_upstream: DnsUpstream,
    /// STUN probes to the DERP regions; see [`Daemon::route_netcheck`].
    netcheck: Netcheck,
    api: Api,
    /// Pings control asked for, by the engine's id: their kind and the path their result is
    /// POSTed to.
    control_pings: HashMap<PingId, (PingKind, String)>,
    signals: Signals,
    /// Network changes of the host; see [`Daemon::on_network_change`].
    link_monitor: LinkMonitor,
    /// The host's listening ports, read while control wants them; see
    /// [`Daemon::follow_listening_ports`].
    ports: Ports,
    /// How our own sockets are kept off the tunnel; see [`Daemon::follow_physical_path`].
    /// `None` on an OS we do not know.
    pinning: Option<Pinning>,
    /// The host's resolver, told the tailnet's DNS while `accept_dns` (`weft up
    /// --accept-dns`) asks for it; `None` on an OS we do not know and with a fake TUN.
    dns: Option<DnsConfigurator>,
    accept_dns: bool,
    /// The host's own nameservers, without weft's changes; see [`Daemon::follow_host_dns`].
    host_dns: HostResolver,
    /// Problems with the host (routes, config reloads) shown in `weft status`.
    router_problem: Option<String>,
    reload_problem: Option<String>,
    pinning_problem: Option<String>,
    dns_problem: Option<String>,
    /// The files holding private keys: the config, or the login state.
    key_files: Vec<PathBuf>,
    /// Warnings about those of them other users can read, found at start and on SIGHUP.
    exposed_key_files: Vec<String>,
    /// `weft status` answers, shared by the clients that ask while one is being written.
    status_answers: StatusAnswers,
    /// Bumped on every change `weft status` would show but those packets make: a request
    /// made after it does not join an answer started before it.
    generation: u64,
}

pub(super) fn run(options: &Options) -> Result<(), String> {
    let store = StateStore::new(&options.statedir);
    let saved = match &options.config {
        Some(_) => None,
        None => store.load()?,
    };
    let (netmap, shields_up) = match (&options.config, &saved) {
        (Some(path), _) => load_netmap(path)?,
        (None, Some(state)) => (Netmap::new(SelfNode::new(state.node_key.clone())), false),
        // Not logged in: the engine idles with a throwaway key until `weft up`.
        (None, None) => (Netmap::new(SelfNode::new(PrivateKey::generate()?)), false),
    };
    let mut daemon = Daemon::start(options.clone(), netmap, store)?;
    daemon.engine.set_shields_up(shields_up);
    if let Some(state) = saved.filter(|s| s.want_running) {
        let now = Instant::now();
        daemon.control.resume(state, daemon.poll.registry(), now);
        daemon.route_control_events(now);
    }
    let result = daemon.serve();
    daemon.shutdown();
    daemon.close_tun();
    result
}

/// Warnings about the key files other users can read; logged now and kept for `weft status`.
fn exposed_key_files(key_files: &[PathBuf]) -> Vec<String> {
    let warnings: Vec<String> =
        key_files.iter().filter_map(|path| exposure_warning(path)).collect();
    for warning in &warnings {
        log::warn!("{warning}");
    }
    warnings
}

/// The config's netmap and whether it raises the shields.
fn load_netmap(path: &std::path::Path) -> Result<(Netmap, bool), String> {
    let config = crate::config::load(path).map_err(|e| e.to_string())?;
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    Ok((with_default_names(config.netmap), config.shields_up))
}

/// Static configs may leave names out: the node takes the host's name, a peer the start of
/// its key, so status output always has something to show.
fn with_default_names(mut netmap: Netmap) -> Netmap {
    if netmap.self_node.name.is_empty() {
        netmap.self_node.name = crate::platform::hostname::hostname();
    }
    for peer in &mut netmap.peers {
        if peer.name.is_empty() {
            peer.name = peer.public_key.to_base64()[..8].to_string();
        }
    }
    netmap
}

impl Daemon {
    fn start(options: Options, netmap: Netmap, store: StateStore) -> Result<Daemon, String> {
        let fake_tun = options.tun == FAKE_TUN;
        // The fake TUN needs nothing from the OS but UDP sockets: it runs anywhere.
        if !fake_tun {
            if let Some(warning) = crate::platform::check_supported()? {
                log::warn!("{warning}");
            }
        }
        create_private_dir(&options.statedir)
            .map_err(|e| format!("state directory {}: {e}", options.statedir.display()))?;
        let key_files: Vec<PathBuf> =
            options.config.iter().cloned().chain([store.path()]).collect();
        let exposed_key_files = exposed_key_files(&key_files);
        let port = netmap.self_node.listen_port.unwrap_or(options.port);
        if !fake_tun {
            if let Err(e) = Router::remove_stale(&options.tun) {
                log::warn!("removing leftovers of an earlier run: {e}");
            }
        }
        let datapath = DataPath::open(&options.tun, port)?;
        let link_monitor = LinkMonitor::open(datapath.tun_name());
        let api = Api::bind(&options.socket).map_err(|e| format!("local API socket: {e}"))?;
        let signals = Signals::install().map_err(|e| format!("installing signal handlers: {e}"))?;
        let poll = Poll::new().map_err(|e| format!("creating poll: {e}"))?;
        let disco_key = environment::disco_key()?;
        let control = Control::new(
            store,
            options.ca_file.clone(),
            datapath.port(),
            options.config.is_some(),
            disco_key.public_key(),
        );
        let now = Instant::now();
        let families = Families { v4: true, v6: datapath.has_ipv6() };
        let netcheck = Netcheck::new(families, environment::netcheck_seed());
        let host_dns = HostResolver::new(&DnsPaths::system(&options.statedir));
        let mut daemon = Daemon {
            engine: Engine::new(netmap, now, environment::for_engine(now, disco_key)),
            netcheck,
            options,
            poll,
            router: None,
            datapath,
            control,
            derp: Derp::new(environment::for_derp()),
            dns_upstream: DnsUpstream::new(),
            api,
            control_pings: HashMap::new(),
            signals,
            link_monitor,
            ports: Ports::new(),
            pinning: None,
            dns: None,
            accept_dns: false,
            host_dns,
            router_problem: None,
            reload_problem: None,
            pinning_problem: None,
            dns_problem: None,
            key_files,
            exposed_key_files,
            status_answers: StatusAnswers::default(),
            generation: 0,
        };
        daemon.register().map_err(|e| format!("registering with poll: {e}"))?;
        // A fake TUN has no interface to route to: the host's tables stay untouched.
        daemon.router = match Router::new() {
            _ if fake_tun => None,
            Ok(r) => Some(r),
            Err(e) => {
                daemon.router_problem = Some(e.to_string());
                None
            }
        };
        daemon.pinning =
            daemon.router.as_ref().map(Router::os).or_else(OsKind::current).map(Pinning::new);
        daemon.apply_routes();
        daemon.take_back_stale_dns();
        // Read once an earlier run's settings are taken back: after a crash resolv.conf may
        // still name only 100.100.100.100, which MagicDNS must never forward to.
        daemon.follow_host_dns();
        daemon.follow_physical_path();
        // The config's text, its parse and the routing commands are gone: their pages go back.
        crate::platform::memory::release_free_heap();
        let endpoints = daemon.control.endpoint_addrs();
        daemon.engine.set_own_endpoints(endpoints);
        log::info!(
            "weftd {} running: {} on {}, UDP port {}, {} peers",
            crate::VERSION,
            daemon.engine.self_node().private_key.public_key(),
            daemon.datapath.tun_name(),
            daemon.datapath.port(),
            daemon.engine.peer_count()
        );
        Ok(daemon)
    }

    fn register(&mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        self.datapath.register(registry)?;
        self.signals.register(registry)?;
        self.link_monitor.register(registry)?;
        self.api.register(registry)
    }

    /// Runs until a terminating signal.
    fn serve(&mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(256);
        loop {
            // While a status answer is being written, the loop only looks for readiness
            // between its slices.
            let timeout = if self.status_answers.is_wanted() {
                Some(Duration::ZERO)
            } else {
                self.next_deadline().map(|d| d.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll failed: {e}"));
            }
            for event in events.iter() {
                if self.on_ready(event.token()).is_break() {
                    return Ok(());
                }
            }
            self.write_status_answer();
            self.run_timers();
        }
    }

    /// Hands a readiness event to its driver and routes what comes out; breaks on a
    /// terminating signal.
    fn on_ready(&mut self, token: mio::Token) -> ControlFlow<()> {
        let registry = self.poll.registry();
        match tokens::driver_of(token) {
            Driver::DataPath => {
                self.datapath.on_ready(token, &mut self.engine);
                self.dns_upstream.sync(&mut self.engine, registry);
                self.relay_outbox(Instant::now());
                self.take_stun_answers();
            }
            Driver::Signals => {
                self.generation += 1;
                for signal in self.signals.on_ready() {
                    match signal {
                        Signal::Terminate => return ControlFlow::Break(()),
                        Signal::Reload => self.reload(),
                    }
                }
            }
            Driver::Control => {
                self.generation += 1;
                let now = Instant::now();
                self.control.on_ready(token, registry, now);
                self.route_control_events(now);
            }
            Driver::LinkMonitor => self.link_monitor.on_ready(Instant::now()),
            Driver::Derp => {
                let now = Instant::now();
                self.derp.on_ready(token, registry, now);
                self.route_derp_events(now);
            }
            Driver::MagicDns => {
                // Dropping the sink writes the answers to the TUN.
                let mut sink = self.datapath.sink();
                self.dns_upstream.on_ready(token, &mut self.engine, &mut sink);
                drop(sink);
                self.dns_upstream.sync(&mut self.engine, registry);
            }
            Driver::Api => {
                if let Some((caller, command)) = self.api.on_ready(token, registry, Instant::now())
                {
                    self.serve_api(caller, command);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.engine.poll_timeout(),
            self.api.poll_timeout(),
            self.control.poll_timeout(),
            self.derp.poll_timeout(),
            self.netcheck.poll_timeout(),
            self.link_monitor.poll_timeout(),
            self.ports.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        if self.next_deadline().is_some_and(|d| d <= now) {
            // Control's timers may move its state (a retry, a login step).
            self.generation += 1;
            // Dropping the sink sends what the timers queued.
            self.engine.handle_timeout(now, &mut self.datapath.sink());
            self.dns_upstream.sync(&mut self.engine, self.poll.registry());
            self.api.on_timeout(now, self.poll.registry());
            self.control.on_timeout(self.poll.registry(), now);
            self.route_control_events(now);
            self.derp.on_timeout(self.poll.registry(), now);
            self.route_derp_events(now);
            self.netcheck.handle_timeout(now);
            self.route_netcheck(now);
            self.link_monitor.on_timeout(now);
            if let Some(changed) = self.link_monitor.poll_event() {
                self.on_network_change(changed, now);
            }
        }
        self.follow_listening_ports(now);
        self.relay_outbox(now);
        self.answer_finished_pings();
    }

    /// Reads the listening ports when due, while control wants them, and tells control of a
    /// change. Runs with the timers after each turn of the loop, so a change of what control
    /// wants is seen by the next turn.
    fn follow_listening_ports(&mut self, now: Instant) {
        self.ports.set_wanted(self.control.wants_services(), now);
        if let Some(services) = self.ports.on_timeout(now) {
            self.control.set_services(services, self.poll.registry(), now);
            self.route_control_events(now);
        }
    }

    /// Hands the engine's relayed datagrams to the DERP driver.
    fn relay_outbox(&mut self, now: Instant) {
        let registry = self.poll.registry();
        while let Some(packet) = self.datapath.derp_outbox().pop() {
            self.derp.send(now, packet.region, packet.to, &packet.payload, registry);
        }
        self.route_derp_events(now);
    }

    /// Applies what the DERP driver reported: relayed datagrams to the engine, connection
    /// changes to health.
    fn route_derp_events(&mut self, now: Instant) {
        let mut connectivity_changed = false;
        while let Some(event) = self.derp.poll_event() {
            match event {
                DerpEvent::Received { region, from, payload } => {
                    // Dropping the sink sends the engine's answers.
                    let mut sink = self.datapath.sink();
                    self.engine.handle_derp_datagram(now, region, from, &payload, &mut sink);
                    answer_from_fake_tun(now, &mut self.engine, &mut sink);
                }
                DerpEvent::PeerGone { region, peer, reason } => {
                    log::debug!("DERP region {region}: peer {peer} gone ({reason:?})");
                }
                DerpEvent::Connected(_)
                | DerpEvent::Disconnected(..)
                | DerpEvent::ServerHealth(_) => connectivity_changed = true,
            }
        }
        if connectivity_changed {
            self.publish_health();
        }
        // Peers are told to relay to us only once we are there to receive. Called after
        // every change of home (a new map, netcheck's `set_home_region`), since a home that
        // was already connected as another peer's region brings no new event.
        if self.derp.home_connected() {
            let registry = self.poll.registry();
            self.control.set_home_derp(self.derp.home_region(), registry, now);
        }
        // Answers to relayed datagrams may be relayed themselves.
        let registry = self.poll.registry();
        while let Some(packet) = self.datapath.derp_outbox().pop() {
            self.derp.send(now, packet.region, packet.to, &packet.payload, registry);
        }
    }

    /// Points the DERP driver at the netmap's relays and tells control our home among them.
    fn apply_derp_map(&mut self, now: Instant) {
        let registry = self.poll.registry();
        self.derp.set_node_key(self.engine.self_node().private_key.clone(), registry, now);
        self.derp.set_derp_map(self.engine.derp_map(), None, registry, now);
        if !self.derp.home_connected() {
            // A new home is announced when its connection is up (see route_derp_events).
            self.control.set_home_derp(None, registry, now);
        }
        self.route_derp_events(now);
    }

    /// Applies what the control driver reported.
    fn route_control_events(&mut self, now: Instant) {
        while let Some(event) = self.control.poll_event() {
            self.generation += 1;
            let full_netmap = matches!(event, ControlEvent::Netmap(_));
            let dns_may_change = matches!(
                event,
                ControlEvent::Netmap(_) | ControlEvent::Stopped | ControlEvent::AcceptDns(_)
            );
            let change = match event {
                ControlEvent::Netmap(netmap) => {
                    let change = self.engine.apply_netmap(*netmap, now);
                    log::info!(
                        "netmap: {} peers added, {} removed, {} updated",
                        change.added,
                        change.removed,
                        change.updated
                    );
                    change
                }
                ControlEvent::PeerDelta(delta) => {
                    let change = self.engine.apply_peer_delta(delta, now);
                    log::debug!(
                        "peer delta: {} peers added, {} removed, {} updated",
                        change.added,
                        change.removed,
                        change.updated
                    );
                    change
                }
                ControlEvent::ShieldsUp(on) => {
                    self.engine.set_shields_up(on);
                    NetmapChange::default()
                }
                ControlEvent::AcceptDns(on) => {
                    self.accept_dns = on;
                    NetmapChange::default()
                }
                ControlEvent::Stopped => {
                    let key = self.engine.self_node().private_key.clone();
                    self.engine.apply_netmap(Netmap::new(SelfNode::new(key)), now)
                }
                ControlEvent::PingPeer(ping) => {
                    self.start_control_ping(ping, now);
                    continue;
                }
            };
            self.follow_netmap_change(&change);
            if dns_may_change {
                self.apply_dns();
            }
            if full_netmap {
                // The response's JSON and its parse are gone: their pages go back.
                crate::platform::memory::release_free_heap();
            }
            self.apply_derp_map(now);
            self.netcheck.set_derp_map(now, self.engine.derp_map());
            self.route_netcheck(now);
        }
    }

    /// Hands the STUN answers the data path set aside to netcheck.
    fn take_stun_answers(&mut self) {
        let now = Instant::now();
        while let Some((from, datagram)) = self.datapath.take_stun() {
            if let Err(why) = self.netcheck.handle_stun(now, from, &datagram) {
                log::trace!("netcheck: ignored a STUN message from {from}: {why:?}");
            }
        }
        self.route_netcheck(now);
    }

    /// Sends netcheck's requests, and passes a finished report on: endpoints and NetInfo to
    /// control, the home region to DERP, the report to whoever ran `weft netcheck`.
    fn route_netcheck(&mut self, now: Instant) {
        while let Some(request) = self.netcheck.poll_transmit() {
            self.datapath.send_stun(request.to, &request.bytes);
        }
        let Some(report) = self.netcheck.poll_report() else { return };
        log::debug!(
            "netcheck: UDP {}, IPv4 {:?}, IPv6 {:?}, home region {}",
            report.udp,
            report.global_v4,
            report.global_v6,
            report.preferred_derp
        );
        let endpoints = report.stun_endpoints(self.datapath.port());
        let net_info = report.net_info();
        // 0: no region answered; DERP keeps the home it has.
        let preferred_derp = report.preferred_derp;
        // A finished netcheck is when we look at the host's addresses anyway: connections
        // left from one that is gone are dead, and the updates below would wait behind them.
        let host: Vec<IpAddr> = crate::platform::interfaces::snapshot()
            .addresses
            .into_iter()
            .map(|(_, ip)| ip)
            .collect();
        self.control.drop_link_from_vanished_address(&host, self.poll.registry(), now);
        self.derp.drop_links_from_vanished_addresses(&host, self.poll.registry(), now);
        self.route_derp_events(now);
        self.control.set_netcheck(self.poll.registry(), now, endpoints, net_info);
        self.engine.set_own_endpoints(self.control.endpoint_addrs());
        if preferred_derp != 0 {
            self.derp.set_home_region(preferred_derp, self.poll.registry(), now);
            self.route_derp_events(now);
        }
        self.answer_netcheck_waiters(now);
    }

    /// After a burst of major network changes (an address, a link, the default route):
    /// the sockets follow the new path where the OS's binding needs it, routes that failed
    /// are tried again, control hears of our local endpoints again, and netcheck looks for
    /// the public ones (its report reaches control and the engine in `route_netcheck`).
    fn on_network_change(&mut self, changed: NetworkChanged, now: Instant) {
        log::info!(
            "network changed ({:?}, {} batches of messages): re-reading endpoints{}{}",
            changed.cause,
            changed.batches,
            if self.router_problem.is_some() { ", re-applying routes" } else { "" },
            if self.netcheck.is_enabled() { ", re-running netcheck" } else { "" },
        );
        if self.router_problem.is_some() {
            self.apply_routes();
        }
        match self.dns_problem.is_some() {
            true => self.apply_dns(),
            false => self.follow_host_dns(),
        }
        self.follow_physical_path();
        self.control.refresh_endpoints(self.poll.registry(), now);
        self.engine.set_own_endpoints(self.control.endpoint_addrs());
        self.netcheck.start(now);
        self.route_netcheck(now);
    }

    /// Chooses the physical interface behind the default route again and keeps our own
    /// sockets on it: the OS's bypass routes follow it, and the UDP sockets are made again
    /// when their pinning changed (new TCP connections take it as they come).
    fn follow_physical_path(&mut self) {
        let Some(pinning) = &mut self.pinning else { return };
        let before = pinning.current().cloned();
        let outcome =
            pinning.follow(effective_interface(self.datapath.tun_name()), self.router.as_mut());
        match pinning.current() {
            Some(now) if Some(now) != before.as_ref() => log::info!(
                "own traffic leaves by {} (index {}, gateway {:?})",
                now.interface(),
                now.index(),
                now.gateway()
            ),
            None if before.is_some() => log::info!("no default route: own traffic is not pinned"),
            _ => {}
        }
        if outcome.rebind_sockets {
            if let Err(e) = self.datapath.rebind_udp(self.poll.registry()) {
                log::error!("rebinding the UDP sockets: {e}");
            }
        }
        if let Some(problem) = &outcome.problem {
            log::error!("{problem}");
        }
        self.pinning_problem = outcome.problem;
        self.publish_health();
    }

    /// NetBSD: host routes follow the peers' endpoints (elsewhere nothing to do).
    fn follow_peer_endpoints(&mut self) {
        // Only NetBSD asks.
        let Some(pinning) = self.pinning.as_mut().filter(|p| p.wants_peer_endpoints()) else {
            return;
        };
        let endpoints = self.engine.peer_endpoint_ips();
        if let Some(problem) = pinning.set_endpoints(endpoints, self.router.as_mut()) {
            log::error!("{problem}");
            self.pinning_problem = Some(problem);
        }
    }

    /// Serves a local API command and answers its caller (a ping, a netcheck and a status
    /// request answer later).
    fn serve_api(&mut self, caller: Caller, command: ApiCommand) {
        let now = Instant::now();
        if command != ApiCommand::Status {
            self.generation += 1;
        }
        let registry = self.poll.registry();
        let done = |result: Result<(), String>| {
            result.map(|()| b"{}".to_vec()).map_err(Refusal::bad_request)
        };
        let answer = match command {
            ApiCommand::Status => return self.status_answers.request(caller, self.generation),
            ApiCommand::Ping { kind, target, timeout } => {
                // Dropping the sink sends the echo request.
                let sink = &mut self.datapath.sink();
                let started = self.engine.start_ping_of(now, kind, target, timeout, sink);
                match started {
                    Ok(id) => return self.api.ping_started(caller, id, timeout),
                    Err(e) => Err(Refusal::bad_request(e)),
                }
            }
            ApiCommand::Up(request) => done(self.control.up(request, registry, now)),
            ApiCommand::Down => done(self.control.down(registry)),
            ApiCommand::Logout => done(self.control.logout(registry, now)),
            ApiCommand::Netcheck => match self.netcheck_unavailable() {
                Some(why) => Err(Refusal::bad_request(why)),
                None => {
                    self.api.netcheck_started(caller);
                    self.netcheck.start(now);
                    self.route_netcheck(now);
                    return;
                }
            },
        };
        self.route_control_events(now);
        self.api.reply(caller, answer, self.poll.registry(), now);
    }

    /// Writes the next slice of the status answer in the making, and sends it to everyone
    /// waiting once it is whole.
    fn write_status_answer(&mut self) {
        let now = Instant::now();
        let Some(Done { build, callers }) =
            self.status_answers.work(&self.engine, now, self.generation)
        else {
            return;
        };
        let mut status = self.engine.status_without_peers(self.datapath.fake_counters().is_none());
        status.tun_name = self.datapath.tun_name().to_string();
        self.control.add_to_status(&mut status);
        let derp_dropped = self.derp.dropped() + self.datapath.derp_outbox().dropped();
        status.drops.insert("DerpDropped".to_string(), derp_dropped);
        let registry = self.poll.registry();
        match build.to_json(&status) {
            Ok(body) => {
                log::debug!(
                    "status answer {} ({} bytes) for {} clients",
                    self.status_answers.started(),
                    body.len(),
                    callers.len()
                );
                for caller in callers {
                    self.api.reply_ok(caller, &body, registry, now);
                }
            }
            Err(e) => {
                for caller in callers {
                    let refusal = Refusal::internal(format!("encoding status: {e}"));
                    self.api.reply(caller, Err(refusal), registry, now);
                }
            }
        }
    }

    /// Why `weft netcheck` cannot run, if it cannot.
    fn netcheck_unavailable(&self) -> Option<&'static str> {
        if self.netcheck.is_enabled() {
            None
        } else if self.options.config.is_some() {
            Some("netcheck measures the DERP servers a control server names; a static config has none")
        } else if self.engine.derp_map().is_none() {
            Some("netcheck needs the DERP map from the control server, and there is none yet (is the node up?)")
        } else {
            Some("the DERP map names no server with an IP address to send STUN requests to")
        }
    }

    /// Answers every `weft netcheck` waiting, with the latest report and the region names.
    fn answer_netcheck_waiters(&mut self, now: Instant) {
        if !self.api.wants_netcheck() {
            return;
        }
        let Some(report) = self.netcheck.last_report() else { return };
        let regions = self
            .engine
            .derp_map()
            .into_iter()
            .flat_map(|map| map.regions.values())
            .map(|r| {
                let label =
                    RegionLabel { code: r.region_code.clone(), name: r.region_name.clone() };
                (r.region_id, label)
            })
            .collect();
        let answer = NetcheckAnswer { report: report.clone(), regions };
        let body = serde_json::to_vec_pretty(&answer).unwrap_or_default();
        self.api.netcheck_finished(&body, self.poll.registry(), now);
    }

    /// Sends every finished ping's result to whoever asked: control, or a local API caller.
    fn answer_finished_pings(&mut self) {
        while let Some((id, result)) = self.engine.poll_ping() {
            let now = Instant::now();
            if let Some((kind, path)) = self.control_pings.remove(&id) {
                self.post_ping_result(kind, &path, &result, now);
                continue;
            }
            let body = serde_json::to_vec(&result).unwrap_or_default();
            self.api.ping_finished(id, body, self.poll.registry(), now);
        }
    }

    /// Runs a ping control asked for; its result (or why it could not start) is POSTed back.
    fn start_control_ping(&mut self, ping: PeerPing, now: Instant) {
        let PeerPing { kind, ip, path } = ping;
        let started = {
            // Dropping the sink sends the ping.
            let sink = &mut self.datapath.sink();
            self.engine.start_control_ping(now, kind, ip, CONTROL_PING_TIMEOUT, sink)
        };
        match started {
            Ok(id) => {
                self.control_pings.insert(id, (kind, path));
            }
            Err(e) => self.post_ping_result(kind, &path, &PingResult::failed(ip, e), now),
        }
    }

    fn post_ping_result(&mut self, kind: PingKind, path: &str, result: &PingResult, now: Instant) {
        let body = serde_json::to_vec(&result.to_ping_response(kind)).unwrap_or_default();
        self.control.post_ping_result(path, &body, self.poll.registry(), now);
    }

    /// SIGHUP: re-read the config and apply only the difference.
    fn reload(&mut self) {
        let Some(path) = self.options.config.clone() else {
            log::info!("SIGHUP ignored: there is no config file to re-read in control mode");
            return;
        };
        // The operator may have just fixed the file's mode.
        self.exposed_key_files = exposed_key_files(&self.key_files);
        let result = load_netmap(&path);
        match result {
            Ok((netmap, shields_up)) => {
                self.engine.set_shields_up(shields_up);
                if netmap.self_node.listen_port.is_some_and(|p| p != self.datapath.port()) {
                    log::warn!("ListenPort changed: the new port takes effect at the next restart");
                }
                let change = self.engine.apply_netmap(netmap, Instant::now());
                log::info!(
                    "config reloaded: {} peers added, {} removed, {} updated",
                    change.added,
                    change.removed,
                    change.updated
                );
                self.reload_problem = None;
                self.follow_netmap_change(&change);
                crate::platform::memory::release_free_heap();
            }
            Err(e) => {
                log::error!("config reload failed, keeping the running config: {e}");
                self.reload_problem = Some(format!("config reload failed: {e}"));
                self.publish_health();
            }
        }
    }

    fn router_config(&self) -> RouterConfig {
        let self_node = self.engine.self_node();
        RouterConfig {
            tun: self.datapath.tun_name().to_string(),
            mtu: self_node.mtu,
            addresses: self_node.addresses.clone(),
            routes: self.engine.routes(),
            cgnat_drop_disabled: self_node.cgnat_drop_disabled,
        }
    }

    /// After a netmap change: the OS's routes and addresses are applied again when they may
    /// differ or when the last attempt failed. A change of endpoints alone, as most control
    /// deltas are, leaves the kernel and its 10,000 routes alone.
    fn follow_netmap_change(&mut self, change: &NetmapChange) {
        self.follow_peer_endpoints();
        if change.routes_changed || self.router_problem.is_some() {
            self.apply_routes();
        } else {
            self.publish_health();
        }
    }

    fn apply_routes(&mut self) {
        let desired = self.router_config();
        self.datapath.set_fake_addresses(desired.addresses.iter().map(|p| p.addr()));
        if let Some(router) = &mut self.router {
            self.router_problem = match router.apply(&desired) {
                Ok(()) => None,
                Err(e) => {
                    log::error!("routing: {e}");
                    Some(format!("routing: {e}"))
                }
            };
        }
        self.publish_health();
    }

    /// Takes back the DNS settings a crashed run left, as its record says (whatever this
    /// run's `--accept-dns`).
    fn take_back_stale_dns(&mut self) {
        // A fake TUN leaves the host alone, its resolver included (labs run many such
        // daemons that share the host's /etc).
        if self.options.tun == FAKE_TUN {
            return;
        }
        self.dns = DnsConfigurator::system(&self.options.statedir);
        let Some(dns) = &mut self.dns else { return };
        if let Err(e) = dns.remove_stale() {
            log::error!("DNS: taking back an earlier run's settings: {e}");
            self.dns_problem = Some(format!("DNS: taking back an earlier run's settings: {e}"));
        }
    }

    /// Brings the host's resolver to the tailnet's DNS while `--accept-dns` asks for it, and
    /// back to its own otherwise. A failure is shown in `weft status` and tried again at the
    /// next netmap or network change.
    fn apply_dns(&mut self) {
        let Some(dns) = &mut self.dns else { return };
        let wanted = match self.engine.dns_config() {
            Some(config) if self.accept_dns => os_config(config, &self.engine.self_node().dns_name),
            _ => Translation::default(),
        };
        self.dns_problem = dns.set(self.datapath.tun_name(), wanted).err().map(|e| {
            log::error!("DNS: {e}");
            format!("DNS: {e}")
        });
        self.follow_host_dns();
        self.publish_health();
    }

    /// Reads the host's own nameservers again from their original (never weft's changes;
    /// see `HostResolver`): after every apply, and after a network change, so a DHCP
    /// client's new servers are followed.
    fn follow_host_dns(&mut self) {
        let held = self.dns.as_ref().and_then(DnsConfigurator::held);
        if self.host_dns.refresh(held.as_ref()) {
            self.share_host_dns();
        }
    }

    /// Hands the host's own nameservers to those that ask them: the lookups of control's
    /// and DERP's names, and MagicDNS for the names the tailnet has no resolver for.
    fn share_host_dns(&mut self) {
        let conf = self.host_dns.conf();
        self.engine.set_host_nameservers(&conf.nameservers);
        self.control.set_host_resolver(conf.clone());
        self.derp.set_host_resolver(conf.clone());
    }

    fn publish_health(&mut self) {
        let derp_problem = (self.derp.has_map() && !self.derp.home_connected())
            .then(|| "not connected to DERP".to_string());
        let problems = [
            &self.router_problem,
            &self.reload_problem,
            &self.pinning_problem,
            &self.dns_problem,
            &derp_problem,
        ]
        .into_iter()
        .flatten()
        .chain(&self.exposed_key_files)
        .cloned()
        .chain(self.derp.server_problems())
        .collect();
        self.generation += 1;
        self.engine.set_health(problems);
    }

    /// Closes the TUN and, where the interface outlives its descriptor (the BSDs), destroys
    /// it: only once closed, since destroying an open one may wait for the close.
    fn close_tun(self) {
        let Daemon { datapath, router, .. } = self;
        let tun = datapath.tun_name().to_string();
        drop(datapath);
        if let Some(mut router) = router {
            if let Err(e) = router.destroy_interface(&tun) {
                log::error!("destroying {tun}: {e}");
            }
        }
    }

    fn shutdown(&mut self) {
        if let Some(problem) = self.pinning.as_mut().and_then(|p| p.shutdown(self.router.as_mut()))
        {
            log::error!("{problem}");
        }
        if let Some(router) = &mut self.router {
            if let Err(e) = router.shutdown() {
                log::error!("removing routes: {e}");
            }
        }
        if let Some(dns) = &mut self.dns {
            if let Err(e) = dns.remove() {
                log::error!("DNS: putting the host's resolver back: {e}");
            }
        }
        if let Some(counters) = self.datapath.fake_counters() {
            log::info!("fake TUN: {counters:?}");
        }
        log::info!("weftd stopped");
    }
}
