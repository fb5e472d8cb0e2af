//! The single `mio` poll loop, and the one place that routes between the drivers and the
//! engine and router. Each driver owns its IO (see its module); the loop hands readiness to
//! the driver that owns the token ([`tokens::driver_of`]), collects the drivers' events and
//! commands, and applies them to the engine and the router. Drivers never see each other.

use super::api::{Api, ApiCommand, Caller, Refusal};
use super::control::{Control, ControlEvent};
use super::datapath::{answer_from_fake_tun, DataPath};
use super::derp::{Derp, DerpEvent};
use super::signals::{Signal, Signals};
use super::tokens::{self, Driver};
use super::{environment, Options};
use crate::engine::{Engine, NetmapChange};
use crate::keys::PrivateKey;
use crate::localapi::{NetcheckAnswer, RegionLabel};
use crate::netcheck::{Families, Netcheck};
use crate::netmap::{Netmap, SelfNode};
use crate::platform::router::{Router, RouterConfig};
use crate::platform::tun::fake::NAME as FAKE_TUN;
use crate::private_fs::{create_private_dir, exposure_warning};
use crate::state::StateStore;
use mio::{Events, Poll};
use std::io;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

/// The loop's state: the drivers, and the engine and router their events feed.
struct Daemon {
    options: Options,
    poll: Poll,
    engine: Engine,
    router: Option<Router>,
    datapath: DataPath,
    control: Control,
    derp: Derp,
    /// STUN probes to the DERP regions; see [`Daemon::route_netcheck`].
    netcheck: Netcheck,
    api: Api,
    signals: Signals,
    /// Problems with the host (routes, config reloads) shown in `weft status`.
    router_problem: Option<String>,
    reload_problem: Option<String>,
    /// The files holding private keys: the config, or the login state.
    key_files: Vec<PathBuf>,
    /// Warnings about those of them other users can read, found at start and on SIGHUP.
    exposed_key_files: Vec<String>,
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
            crate::platform::check_supported()?;
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
        let mut daemon = Daemon {
            engine: Engine::new(netmap, now, environment::for_engine(now, disco_key)),
            netcheck,
            options,
            poll,
            router: None,
            datapath,
            control,
            derp: Derp::new(environment::for_derp()),
            api,
            signals,
            router_problem: None,
            reload_problem: None,
            key_files,
            exposed_key_files,
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
        daemon.apply_routes();
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
        self.api.register(registry)
    }

    /// Runs until a terminating signal.
    fn serve(&mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_deadline().map(|d| d.saturating_duration_since(Instant::now()));
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
                self.relay_outbox(Instant::now());
                self.take_stun_answers();
            }
            Driver::Signals => {
                for signal in self.signals.on_ready() {
                    match signal {
                        Signal::Terminate => return ControlFlow::Break(()),
                        Signal::Reload => self.reload(),
                    }
                }
            }
            Driver::Control => {
                let now = Instant::now();
                self.control.on_ready(token, registry, now);
                self.route_control_events(now);
            }
            Driver::Derp => {
                let now = Instant::now();
                self.derp.on_ready(token, registry, now);
                self.route_derp_events(now);
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
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        if self.next_deadline().is_some_and(|d| d <= now) {
            // Dropping the sink sends what the timers queued.
            self.engine.handle_timeout(now, &mut self.datapath.sink());
            self.api.on_timeout(now, self.poll.registry());
            self.control.on_timeout(self.poll.registry(), now);
            self.route_control_events(now);
            self.derp.on_timeout(self.poll.registry(), now);
            self.route_derp_events(now);
            self.netcheck.handle_timeout(now);
            self.route_netcheck(now);
        }
        self.relay_outbox(now);
        self.answer_finished_pings();
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
                DerpEvent::Connected(_) | DerpEvent::Disconnected(..) => {
                    connectivity_changed = true
                }
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
                ControlEvent::Stopped => {
                    let key = self.engine.self_node().private_key.clone();
                    self.engine.apply_netmap(Netmap::new(SelfNode::new(key)), now)
                }
            };
            self.follow_netmap_change(&change);
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

    /// Serves a local API command and answers its caller (a ping answers later).
    fn serve_api(&mut self, caller: Caller, command: ApiCommand) {
        let now = Instant::now();
        let registry = self.poll.registry();
        let done = |result: Result<(), String>| {
            result.map(|()| b"{}".to_vec()).map_err(Refusal::bad_request)
        };
        let answer = match command {
            ApiCommand::Status => {
                let mut status = self.engine.status(now, self.datapath.fake_counters().is_none());
                status.tun_name = self.datapath.tun_name().to_string();
                self.control.add_to_status(&mut status);
                let derp_dropped = self.derp.dropped() + self.datapath.derp_outbox().dropped();
                status.drops.insert("DerpDropped".to_string(), derp_dropped);
                serde_json::to_vec_pretty(&status)
                    .map_err(|e| Refusal::internal(format!("encoding status: {e}")))
            }
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

    /// Why `weft netcheck` cannot run, if it cannot.
    fn netcheck_unavailable(&self) -> Option<&'static str> {
        if self.netcheck.is_enabled() {
            None
        } else if self.options.config.is_some() {
            Some("netcheck measures the DERP servers a control server names; a static config has none")
        } else if self.engine.netmap().derp_map.is_none() {
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
            .netmap()
            .derp_map
            .iter()
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

    /// Sends every finished ping's result to the connection that asked for it.
    fn answer_finished_pings(&mut self) {
        while let Some((id, result)) = self.engine.poll_ping() {
            let body = serde_json::to_vec(&result).unwrap_or_default();
            self.api.ping_finished(id, body, self.poll.registry(), Instant::now());
        }
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
        }
    }

    /// After a netmap change: the OS's routes and addresses are applied again when they may
    /// differ or when the last attempt failed. A change of endpoints alone, as most control
    /// deltas are, leaves the kernel and its 10,000 routes alone.
    fn follow_netmap_change(&mut self, change: &NetmapChange) {
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

    fn publish_health(&mut self) {
        let derp_problem = (self.derp.has_map() && !self.derp.home_connected())
            .then(|| "not connected to DERP".to_string());
        let problems = [&self.router_problem, &self.reload_problem, &derp_problem]
            .into_iter()
            .flatten()
            .chain(&self.exposed_key_files)
            .cloned()
            .collect();
        self.engine.set_health(problems);
    }

    fn shutdown(&mut self) {
        if let Some(router) = &mut self.router {
            if let Err(e) = router.shutdown() {
                log::error!("removing routes: {e}");
            }
        }
        if let Some(counters) = self.datapath.fake_counters() {
            log::info!("fake TUN: {counters:?}");
        }
        log::info!("weftd stopped");
    }
}
