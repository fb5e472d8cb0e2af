//! The single `mio` poll loop: TUN, UDP, local API, signals and one deadline, all on one thread.

use super::api::PendingPings;
use super::control::ControlLink;
use super::datapath::{Buffers, Io};
use super::signals::{Signal, SignalPipe};
use super::udp::UdpSockets;
use super::Options;
use crate::engine::Engine;
use crate::keys::PrivateKey;
use crate::localapi::server::Server;
use crate::netmap::{Netmap, SelfNode};
use crate::platform::router::{Router, RouterConfig};
use crate::platform::tun::Tun;
use crate::state::StateStore;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

const TUN: Token = Token(0);
const UDP4: Token = Token(1);
const UDP6: Token = Token(2);
const SIGNALS: Token = Token(3);
pub(super) const CONTROL: Token = Token(4);
/// The DNS sockets of the control server's name lookup.
pub(super) const RESOLVER: Token = Token(5);
/// The local API listener; its connections take the tokens after it.
const API: Token = Token(6);

/// Everything the loop owns.
pub(super) struct Daemon {
    pub options: Options,
    pub poll: Poll,
    pub engine: Engine,
    pub tun: Tun,
    pub udp: UdpSockets,
    pub router: Option<Router>,
    pub api: Server,
    pub pings: PendingPings,
    /// The control server connection, when the node is logged in and up.
    pub control: Option<ControlLink>,
    pub store: StateStore,
    /// Why the last login failed, for `weft up` and `weft status`.
    pub login_error: Option<String>,
    /// TLS settings, built on first use.
    pub tls: Option<Result<std::sync::Arc<rustls::ClientConfig>, String>>,
    signals: SignalPipe,
    /// Problems with the host (routes, config reloads) shown in `weft status`.
    router_problem: Option<String>,
    reload_problem: Option<String>,
    /// The data path's reusable buffers and outgoing batch.
    pub dp: Buffers,
}

pub(super) fn run(options: &Options) -> Result<(), String> {
    let store = StateStore::new(&options.statedir);
    let saved = match &options.config {
        Some(_) => None,
        None => store.load()?,
    };
    let netmap = match (&options.config, &saved) {
        (Some(path), _) => load_netmap(path)?,
        (None, Some(state)) => Netmap::new(SelfNode::new(state.node_key.clone())),
        // Not logged in: the engine idles with a throwaway key until `weft up`.
        (None, None) => Netmap::new(SelfNode::new(PrivateKey::generate()?)),
    };
    let mut daemon = Daemon::start(options.clone(), netmap, store)?;
    if let Some(state) = saved.filter(|s| s.want_running) {
        daemon.start_control(state, None, Instant::now());
    }
    let result = daemon.serve();
    daemon.shutdown();
    result
}

fn load_netmap(path: &std::path::Path) -> Result<Netmap, String> {
    let config = crate::config::load(path).map_err(|e| e.to_string())?;
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    Ok(with_default_names(config.netmap))
}

/// Static configs may leave names out: the node takes the host's name, a peer the start of
/// its key, so status output always has something to show.
fn with_default_names(mut netmap: Netmap) -> Netmap {
    if netmap.self_node.name.is_empty() {
        netmap.self_node.name = hostname();
    }
    for peer in &mut netmap.peers {
        if peer.name.is_empty() {
            peer.name = peer.public_key.to_base64()[..8].to_string();
        }
    }
    netmap
}

pub(super) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "weft".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Daemon {
    fn start(options: Options, netmap: Netmap, store: StateStore) -> Result<Daemon, String> {
        crate::platform::check_supported()?;
        std::fs::create_dir_all(&options.statedir)
            .map_err(|e| format!("creating state directory {}: {e}", options.statedir.display()))?;
        let port = netmap.self_node.listen_port.unwrap_or(options.port);
        if let Err(e) = Router::remove_stale(&options.tun) {
            log::warn!("removing leftovers of an earlier run: {e}");
        }
        let tun =
            Tun::open(&options.tun).map_err(|e| format!("opening TUN {}: {e}", options.tun))?;
        let udp = UdpSockets::bind(port).map_err(|e| format!("binding UDP port {port}: {e}"))?;
        let api = Server::bind(&options.socket, API.0)
            .map_err(|e| format!("local API socket {}: {e}", options.socket.display()))?;
        let signals =
            SignalPipe::install().map_err(|e| format!("installing signal handlers: {e}"))?;
        let poll = Poll::new().map_err(|e| format!("creating poll: {e}"))?;
        let dp = Buffers::new(&udp);
        let mut daemon = Daemon {
            engine: Engine::new(netmap, Instant::now()),
            options,
            poll,
            tun,
            udp,
            router: None,
            api,
            pings: PendingPings::default(),
            control: None,
            store,
            login_error: None,
            tls: None,
            signals,
            router_problem: None,
            reload_problem: None,
            dp,
        };
        daemon.register().map_err(|e| format!("registering with poll: {e}"))?;
        daemon.router = match Router::new() {
            Ok(r) => Some(r),
            Err(e) => {
                daemon.router_problem = Some(e.to_string());
                None
            }
        };
        daemon.apply_routes();
        log::info!(
            "weftd {} running: {} on {}, UDP port {}, {} peers",
            crate::VERSION,
            daemon.engine.netmap().self_node.private_key.public_key(),
            daemon.tun.name(),
            daemon.udp.port(),
            daemon.engine.netmap().peers.len()
        );
        Ok(daemon)
    }

    fn register(&mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        registry.register(&mut SourceFd(&self.tun.as_raw_fd()), TUN, Interest::READABLE)?;
        registry.register(&mut self.udp.v4, UDP4, Interest::READABLE)?;
        if let Some(v6) = &mut self.udp.v6 {
            registry.register(v6, UDP6, Interest::READABLE)?;
        }
        registry.register(&mut SourceFd(&self.signals.as_raw_fd()), SIGNALS, Interest::READABLE)?;
        self.api.register(registry, API)
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
                match event.token() {
                    TUN => self.read_tun(),
                    UDP4 => self.read_udp(false),
                    UDP6 => self.read_udp(true),
                    SIGNALS => {
                        for signal in self.signals.drain() {
                            match signal {
                                Signal::Terminate => return Ok(()),
                                Signal::Reload => self.reload(),
                            }
                        }
                    }
                    CONTROL => self.handle_control_socket(Instant::now()),
                    RESOLVER => self.handle_resolver_socket(Instant::now()),
                    API => self.api.accept(self.poll.registry(), Instant::now()),
                    token => self.handle_api_event(token),
                }
            }
            self.run_timers();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.engine.poll_timeout(),
            self.api.poll_timeout(),
            self.control_timeout(),
            self.resolver_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        if self.next_deadline().is_some_and(|d| d <= now) {
            let (engine, mut io) = self.io_parts();
            engine.handle_timeout(now, &mut io);
            // Dropping the sink sends what the timers queued.
            drop(io);
            for token in self.api.expire(now, self.poll.registry()) {
                self.pings.forget(token);
            }
            self.handle_control_timeout(now);
            self.handle_resolver_timeout(now);
        }
        self.answer_finished_pings();
    }

    /// SIGHUP: re-read the config and apply only the difference.
    fn reload(&mut self) {
        let Some(path) = self.options.config.clone() else {
            log::info!("SIGHUP ignored: there is no config file to re-read in control mode");
            return;
        };
        let result = load_netmap(&path);
        match result {
            Ok(netmap) => {
                if netmap.self_node.listen_port.is_some_and(|p| p != self.udp.port()) {
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
                self.apply_routes();
            }
            Err(e) => {
                log::error!("config reload failed, keeping the running config: {e}");
                self.reload_problem = Some(format!("config reload failed: {e}"));
                self.publish_health();
            }
        }
    }

    fn router_config(&self) -> RouterConfig {
        let netmap = self.engine.netmap();
        RouterConfig {
            tun: self.tun.name().to_string(),
            mtu: netmap.self_node.mtu,
            addresses: netmap.self_node.addresses.clone(),
            routes: self.engine.routes(),
        }
    }

    pub(super) fn apply_routes(&mut self) {
        let desired = self.router_config();
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
        let problems =
            [&self.router_problem, &self.reload_problem].into_iter().flatten().cloned().collect();
        self.engine.set_health(problems);
    }

    fn shutdown(&mut self) {
        if let Some(router) = &mut self.router {
            if let Err(e) = router.shutdown() {
                log::error!("removing routes: {e}");
            }
        }
        log::info!("weftd stopped");
    }

    pub(super) fn io_parts(&mut self) -> (&mut Engine, Io<'_>) {
        (&mut self.engine, self.dp.io(&self.tun, &self.udp))
    }
}
