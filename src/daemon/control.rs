//! The control connection driver: owns everything of the node's login — the control client,
//! its socket and TLS settings, the name lookup that precedes the socket, the state store the
//! keys are saved in, and the last login error. It moves bytes between the socket and the
//! sans-IO [`ControlClient`], carries out the client's actions, persists keys when the server
//! accepts them, and serves the login commands (`up`, `down`, `logout`).
//!
//! What the rest of the node must do about it leaves as [`ControlEvent`]s, taken by the loop
//! with [`Control::poll_event`] after every call: the driver never touches the engine or the
//! routes, and the engine never sees the login.

use super::control_socket::{tls_config, ControlSocket, Progress};
use super::resolving::{Resolution, Resolving};
use super::{environment, tokens};
use crate::control::client::{
    Action, BackendState, ControlClient, Event, Identity, LinkFailure, PeerPing,
};
use crate::control::server_url::ServerUrl;
use crate::control::tailcfg::{Endpoint, EndpointType, NetInfo, RegionId, Service};
use crate::engine::status::Status;
use crate::keys::{AuthKey, PrivateKey, PublicKey};
use crate::localapi::UpRequest;
use crate::netmap::{Netmap, PeerDelta};
use crate::resolver::resolv_conf::ResolvConf;
use crate::state::{NodeState, StateStore};
use mio::{Interest, Registry, Token};
use rustls::ClientConfig;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What the loop must do for the control connection.
#[derive(Debug, PartialEq)]
pub(super) enum ControlEvent {
    /// A netmap from the server, to run.
    Netmap(Box<Netmap>),
    /// A change to a few peers of the running netmap, and to nothing else.
    PeerDelta(PeerDelta),
    /// The connection is gone by the user's wish (`weft down`, `weft logout`, a new
    /// `weft up`): the node leaves the tailnet — no peers, routes or addresses — but keeps
    /// its key.
    Stopped,
    /// Whether the node refuses new inbound connections, as the login asks (`weft up
    /// --shields-up`, kept in the state file).
    ShieldsUp(bool),
    /// Whether the tailnet's DNS goes into the host's resolver, as the login asks (`weft up
    /// --accept-dns`, kept in the state file).
    AcceptDns(bool),
    /// Control asks for a ping of a peer: run it and hand the result to
    /// [`Control::post_ping_result`].
    PingPeer(PeerPing),
}

pub(super) struct Control {
    /// The node runs a static config (`--config`): there is no login to manage.
    static_config: bool,
    store: StateStore,
    /// Extra CA certificates for the server's TLS.
    ca_file: Option<PathBuf>,
    /// The UDP port the node's endpoints are announced with.
    udp_port: u16,
    /// The public half of the daemon's disco key, for every client this driver starts.
    disco_key: PublicKey,
    /// The connection, when the node is logged in and up.
    link: Option<ControlLink>,
    /// Why the last login failed, for `weft up` and `weft status`.
    login_error: Option<String>,
    /// What netcheck last found: our STUN-seen endpoints and `Hostinfo.NetInfo`.
    stun_endpoints: Vec<Endpoint>,
    net_info: Option<NetInfo>,
    /// TLS settings, built on first use.
    tls: Option<Result<Arc<ClientConfig>, String>>,
    /// Our home DERP region, for every client this driver starts.
    home_derp: Option<RegionId>,
    /// The host's own nameservers, which look up the control server's name.
    host_resolver: ResolvConf,
    events: VecDeque<ControlEvent>,
}

/// A control server connection in the making or running.
struct ControlLink {
    client: ControlClient,
    /// What to persist once the server accepts the node key.
    state: NodeState,
    socket: Option<ControlSocket>,
    /// The server's name being looked up, before there can be a socket.
    dialing: Option<Dialing>,
}

/// An `Action::Connect` waiting for its host's address.
struct Dialing {
    resolving: Box<Resolving>,
    host: String,
    port: u16,
    tls: bool,
}

impl ControlLink {
    /// Drops the connection or the lookup that precedes it.
    fn close(&mut self, registry: &Registry) {
        if let Some(mut socket) = self.socket.take() {
            let _ = registry.deregister(socket.source());
        }
        if let Some(dialing) = self.dialing.take() {
            dialing.resolving.stop(registry);
        }
    }
}

impl Control {
    /// A driver with no connection yet; `static_config` refuses the login commands.
    pub(super) fn new(
        store: StateStore,
        ca_file: Option<PathBuf>,
        udp_port: u16,
        static_config: bool,
        disco_key: PublicKey,
    ) -> Control {
        Control {
            static_config,
            store,
            ca_file,
            udp_port,
            disco_key,
            link: None,
            login_error: None,
            stun_endpoints: Vec::new(),
            net_info: None,
            tls: None,
            home_derp: None,
            host_resolver: ResolvConf::default(),
            events: VecDeque::new(),
        }
    }

    /// The host's own nameservers (`platform::dns::HostResolver`), for the next lookup.
    pub(super) fn set_host_resolver(&mut self, conf: ResolvConf) {
        self.host_resolver = conf;
    }

    /// Tells control our home DERP region, so peers relay to us there.
    pub(super) fn set_home_derp(
        &mut self,
        region: Option<RegionId>,
        registry: &Registry,
        now: Instant,
    ) {
        self.home_derp = region;
        if let Some(link) = &mut self.link {
            link.client.set_home_derp(now, region);
            self.pump(registry, now);
        }
    }

    /// Whether control wants the host's services now (it asks for them and the shields are
    /// down); the loop reads the listening ports only then.
    pub(super) fn wants_services(&self) -> bool {
        self.link.as_ref().is_some_and(|link| link.client.wants_services())
    }

    /// The host's listening services; control hears of them (in a lite update) when they
    /// changed.
    pub(super) fn set_services(
        &mut self,
        services: Vec<Service>,
        registry: &Registry,
        now: Instant,
    ) {
        if let Some(link) = &mut self.link {
            link.client.set_services(now, services);
            self.pump(registry, now);
        }
    }

    /// Sends the result of a ping control asked for to the path it named (dropped when the
    /// connection is gone meanwhile: control asks again if it still cares).
    pub(super) fn post_ping_result(
        &mut self,
        path: &str,
        response_json: &[u8],
        registry: &Registry,
        now: Instant,
    ) {
        if let Some(link) = &mut self.link {
            link.client.post_ping_result(now, path, response_json);
            self.pump(registry, now);
        }
    }

    /// Netcheck's latest findings; control hears of them (in a lite update, sent at once) if
    /// they changed.
    pub(super) fn set_netcheck(
        &mut self,
        registry: &Registry,
        now: Instant,
        stun_endpoints: Vec<Endpoint>,
        net_info: NetInfo,
    ) {
        self.stun_endpoints = stun_endpoints;
        self.net_info = Some(net_info);
        let endpoints = self.endpoints();
        if let Some(link) = &mut self.link {
            link.client.set_endpoints(now, endpoints);
            if let Some(net_info) = &self.net_info {
                link.client.set_net_info(now, net_info.clone());
            }
        }
        self.pump(registry, now);
    }

    /// The host's addresses changed: control hears of our endpoints again (the local ones
    /// are read afresh; the STUN ones stay until netcheck has new ones).
    pub(super) fn refresh_endpoints(&mut self, registry: &Registry, now: Instant) {
        let endpoints = self.endpoints();
        if let Some(link) = &mut self.link {
            link.client.set_endpoints(now, endpoints);
        }
        self.pump(registry, now);
    }

    /// Reconnects with a saved login, at start-up.
    pub(super) fn resume(&mut self, state: NodeState, registry: &Registry, now: Instant) {
        self.start(state, None, registry, now);
    }

    /// `weft up`: starts (or restarts) the control client. Keys are reused when the server is
    /// the one we are registered with; otherwise new ones are made and saved only once the
    /// server accepts them, so a refused login leaves nothing behind.
    pub(super) fn up(
        &mut self,
        request: UpRequest,
        registry: &Registry,
        now: Instant,
    ) -> Result<(), String> {
        if self.static_config {
            return Err(
                "weftd runs a static config (--config); `weft up` is for control servers".into()
            );
        }
        let saved = self.store.load()?;
        let server_text = match (request.login_server.is_empty(), &saved) {
            (false, _) => request.login_server.clone(),
            (true, Some(s)) => s.login_server.clone(),
            (true, None) => return Err("no login server known: give --login-server".into()),
        };
        let server = ServerUrl::parse(&server_text)?;
        let hostname = match (request.hostname.is_empty(), &saved) {
            (false, _) => request.hostname.clone(),
            (true, Some(s)) if !s.hostname.is_empty() => s.hostname.clone(),
            _ => crate::platform::hostname::hostname(),
        };
        let (shields_up, accept_routes, accept_dns) =
            (request.shields_up, request.accept_routes, request.accept_dns);
        let state = match saved {
            Some(s) if ServerUrl::parse(&s.login_server).ok() == Some(server.clone()) => {
                let state = NodeState {
                    hostname,
                    want_running: true,
                    shields_up,
                    accept_routes,
                    accept_dns,
                    ..s
                };
                // Already registered with these keys: remember that the user wants them up.
                self.store.save(&state)?;
                state
            }
            _ => NodeState {
                login_server: server.to_string(),
                hostname,
                machine_key: PrivateKey::generate()?,
                node_key: PrivateKey::generate()?,
                want_running: true,
                shields_up,
                accept_routes,
                accept_dns,
            },
        };
        let auth_key = Some(request.auth_key).filter(|k| !k.is_empty());
        self.start(state, auth_key, registry, now);
        Ok(())
    }

    /// `weft down`: disconnect, leave the tailnet, keep the keys.
    pub(super) fn down(&mut self, registry: &Registry) -> Result<(), String> {
        if self.static_config {
            return Err("weftd runs a static config (--config); stop the daemon instead".into());
        }
        self.stop(registry);
        if let Some(mut state) = self.store.load()? {
            state.want_running = false;
            self.store.save(&state)?;
        }
        Ok(())
    }

    /// `weft logout`: tell the server, then forget the keys.
    pub(super) fn logout(&mut self, registry: &Registry, now: Instant) -> Result<(), String> {
        if self.static_config {
            return Err("weftd runs a static config (--config); there is no login".into());
        }
        self.login_error = None;
        match &mut self.link {
            Some(link) => {
                link.client.logout(now);
                self.pump(registry, now);
                Ok(())
            }
            None => self.forget_login(registry),
        }
    }

    /// The next event for the loop.
    #[must_use]
    pub(super) fn poll_event(&mut self) -> Option<ControlEvent> {
        self.events.pop_front()
    }

    /// The socket ([`tokens::CONTROL`]) or a DNS socket ([`tokens::RESOLVER`]) is ready.
    pub(super) fn on_ready(&mut self, token: Token, registry: &Registry, now: Instant) {
        match token {
            tokens::CONTROL => self.on_socket_ready(registry, now),
            tokens::RESOLVER => {
                if let Some(dialing) = self.link.as_mut().and_then(|l| l.dialing.as_mut()) {
                    dialing.resolving.on_readable(now);
                }
                self.finish_dialing(registry, now);
            }
            _ => {}
        }
    }

    /// The earliest of the client's and the name lookup's deadlines.
    #[must_use]
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let link = self.link.as_ref()?;
        let lookup = link.dialing.as_ref().and_then(|d| d.resolving.deadline());
        [link.client.poll_timeout(), lookup].into_iter().flatten().min()
    }

    pub(super) fn on_timeout(&mut self, registry: &Registry, now: Instant) {
        if let Some(link) = &mut self.link {
            if link.client.poll_timeout().is_some_and(|t| t <= now) {
                link.client.handle_timeout(now);
                self.pump(registry, now);
            }
        }
        if let Some(dialing) = self.link.as_mut().and_then(|l| l.dialing.as_mut()) {
            dialing.resolving.on_timeout(now);
        }
        self.finish_dialing(registry, now);
    }

    /// The login state `weft status` shows.
    pub(super) fn backend_state(&self) -> BackendState {
        if self.static_config {
            return BackendState::Running;
        }
        match &self.link {
            Some(link) => link.client.state(),
            None if self.store.load().ok().flatten().is_some() => BackendState::Stopped,
            None => BackendState::NeedsLogin,
        }
    }

    /// Adds what only the login knows to the engine's status: its state, the URL to visit,
    /// and its problems.
    pub(super) fn add_to_status(&self, status: &mut Status) {
        status.backend_state = self.backend_state().as_str().to_string();
        if let Some(link) = &self.link {
            status.auth_url = link.client.auth_url().to_string();
            status.health.extend(link.client.control_health());
            if let Some(problem) = link.client.last_error().filter(|_| !link.client.is_connected())
            {
                status.health.push(problem.to_string());
            }
        }
        if let Some(problem) = &self.login_error {
            status.login_error = problem.clone();
            status.health.push(problem.clone());
        }
    }

    fn start(
        &mut self,
        state: NodeState,
        auth_key: Option<AuthKey>,
        registry: &Registry,
        now: Instant,
    ) {
        self.stop(registry);
        let Ok(server) = ServerUrl::parse(&state.login_server) else {
            self.login_error =
                Some(format!("saved login server {:?} is not a URL", state.login_server));
            return;
        };
        let identity =
            Identity { machine_key: state.machine_key.clone(), node_key: state.node_key.clone() };
        let mut client = ControlClient::new(
            server,
            identity,
            state.hostname.clone(),
            auth_key,
            environment::for_control(now, self.disco_key),
            now,
        );
        client.set_endpoints(now, self.endpoints());
        if let Some(net_info) = &self.net_info {
            client.set_net_info(now, net_info.clone());
        }
        client.set_shields_up(state.shields_up);
        client.set_accept_routes(state.accept_routes);
        self.events.push_back(ControlEvent::ShieldsUp(state.shields_up));
        self.events.push_back(ControlEvent::AcceptDns(state.accept_dns));
        client.set_home_derp(now, self.home_derp);
        self.login_error = None;
        self.link = Some(ControlLink { client, state, socket: None, dialing: None });
        self.pump(registry, now);
    }

    fn forget_login(&mut self, registry: &Registry) -> Result<(), String> {
        self.stop(registry);
        self.store.remove()
    }

    /// Drops the connection; the node leaves the tailnet, and forgets what netcheck found
    /// (the next login's netcheck measures again before anything is announced).
    fn stop(&mut self, registry: &Registry) {
        if let Some(mut link) = self.link.take() {
            link.close(registry);
        }
        self.stun_endpoints.clear();
        self.net_info = None;
        self.events.push_back(ControlEvent::Stopped);
    }

    /// Drops the connection if it left from an address the host no longer has (`host`: its
    /// addresses now): it is dead, and the client reconnects as after any network failure,
    /// from an address that works, instead of the lite update waiting behind it.
    pub(super) fn drop_link_from_vanished_address(
        &mut self,
        host: &[IpAddr],
        registry: &Registry,
        now: Instant,
    ) {
        let Some(link) = &mut self.link else {
            return;
        };
        let Some(local) = link.socket.as_ref().and_then(|s| s.vanished_local_address(host)) else {
            return;
        };
        if let Some(mut socket) = link.socket.take() {
            let _ = registry.deregister(socket.source());
        }
        let why = format!("the local address {local} is gone");
        link.client.handle_closed(now, LinkFailure::Network(why));
        self.pump(registry, now);
    }

    fn on_socket_ready(&mut self, registry: &Registry, now: Instant) {
        let Some(link) = &mut self.link else {
            return;
        };
        let Some(socket) = &mut link.socket else {
            return;
        };
        let mut received = Vec::new();
        let progress = socket.on_ready(&mut received);
        if !received.is_empty() {
            link.client.handle_input(now, &received);
        }
        if let Progress::Closed(reason) = progress {
            if let Some(mut socket) = link.socket.take() {
                let _ = registry.deregister(socket.source());
            }
            link.client.handle_closed(now, LinkFailure::Network(reason));
        }
        self.pump(registry, now);
    }

    /// Carries out everything the client asked for, until it has nothing more to say.
    fn pump(&mut self, registry: &Registry, now: Instant) {
        loop {
            let Some(link) = &mut self.link else {
                return;
            };
            if let Some(action) = link.client.poll_action() {
                self.perform(action, registry, now);
                continue;
            }
            // Without a socket (still resolving) output would be lost: leave it in the client.
            if let Some(socket) = &mut link.socket {
                let mut out = Vec::new();
                link.client.poll_output(now, &mut out);
                if !out.is_empty() {
                    if let Err(e) = socket.send(&out) {
                        link.client.handle_closed(now, LinkFailure::Network(e.to_string()));
                    }
                    continue;
                }
            }
            match link.client.poll_event() {
                Some(event) => self.on_client_event(event, registry),
                None => return,
            }
        }
    }

    fn perform(&mut self, action: Action, registry: &Registry, now: Instant) {
        let Some(link) = &mut self.link else {
            return;
        };
        link.close(registry);
        let Action::Connect { host, port, tls } = action else {
            return;
        };
        match Resolving::begin(&host, &self.host_resolver, registry, tokens::RESOLVER, now) {
            Resolution::Finished(resolved) => self.dial(registry, now, &host, port, tls, resolved),
            Resolution::Running(resolving) => {
                link.dialing = Some(Dialing { resolving, host, port, tls });
            }
        }
    }

    /// Connects to the first address `host` resolved to, or tells the client why not, so its
    /// backoff applies to DNS failures as to refused connections.
    fn dial(
        &mut self,
        registry: &Registry,
        now: Instant,
        host: &str,
        port: u16,
        tls: bool,
        resolved: Result<Vec<IpAddr>, String>,
    ) {
        let Some(link) = &mut self.link else {
            return;
        };
        let first = resolved.and_then(|ips| ips.first().copied().ok_or("no address".into()));
        let resolved =
            first.map_err(|why| LinkFailure::Network(format!("resolving {host}: {why}")));
        let opened = resolved.and_then(|ip| {
            let addr = SocketAddr::new(ip, port);
            let tls = if tls {
                let config = self.tls.get_or_insert_with(|| tls_config(self.ca_file.as_deref()));
                Some((config.clone().map_err(LinkFailure::Local)?, host.to_string()))
            } else {
                None
            };
            ControlSocket::connect(addr, tls)
                .map_err(|e| LinkFailure::Network(format!("connecting to {addr}: {e}")))
        });
        match opened {
            Ok(mut socket) => {
                match registry.register(
                    socket.source(),
                    tokens::CONTROL,
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    Ok(()) => link.socket = Some(socket),
                    Err(e) => link.client.handle_closed(now, LinkFailure::Local(e.to_string())),
                }
            }
            Err(failure) => link.client.handle_closed(now, failure),
        }
    }

    /// Dials once the lookup has an answer.
    fn finish_dialing(&mut self, registry: &Registry, now: Instant) {
        let Some(link) = &mut self.link else {
            return;
        };
        let Some(resolved) = link.dialing.as_ref().and_then(|d| d.resolving.result()) else {
            return;
        };
        let Some(dialing) = link.dialing.take() else {
            return;
        };
        dialing.resolving.stop(registry);
        self.dial(registry, now, &dialing.host, dialing.port, dialing.tls, resolved);
        self.pump(registry, now);
    }

    /// Acts on what the client reports: keys are saved, login failures kept for status, and
    /// netmaps and the end of the login passed on to the loop.
    fn on_client_event(&mut self, event: Event, registry: &Registry) {
        match event {
            Event::Registered => {
                let Some(link) = &self.link else { return };
                if let Err(e) = self.store.save(&link.state) {
                    log::error!("{e}");
                    self.login_error = Some(e);
                }
            }
            Event::Netmap(netmap) => self.events.push_back(ControlEvent::Netmap(netmap)),
            Event::PeerDelta(delta) => self.events.push_back(ControlEvent::PeerDelta(delta)),
            Event::PingPeer(ping) => self.events.push_back(ControlEvent::PingPeer(ping)),
            Event::LoginFailed(why) => self.login_error = Some(why.to_string()),
            Event::LoggedOut => {
                if let Err(e) = self.forget_login(registry) {
                    log::error!("{e}");
                }
            }
        }
    }

    /// Where peers may reach us: what STUN servers saw first, then our UDP port on every
    /// usable local address.
    fn endpoints(&self) -> Vec<Endpoint> {
        let local = crate::platform::interfaces::endpoint_candidates().into_iter().map(|ip| {
            Endpoint { addr: SocketAddr::new(ip, self.udp_port), kind: EndpointType::Local }
        });
        let mut endpoints = self.stun_endpoints.clone();
        for endpoint in local {
            if !endpoints.iter().any(|e| e.addr == endpoint.addr) {
                endpoints.push(endpoint);
            }
        }
        endpoints
    }

    /// The addresses of [`Control::endpoints`]: what the engine offers peers in CallMeMaybe.
    pub(super) fn endpoint_addrs(&self) -> Vec<SocketAddr> {
        self.endpoints().into_iter().map(|endpoint| endpoint.addr).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client::Environment;
    use crate::control::error::ControlError;
    use crate::netmap::SelfNode;
    use crate::wall_clock::WallClock;
    use mio::Poll;
    use std::time::SystemTime;

    fn state(want_running: bool) -> NodeState {
        NodeState {
            login_server: "http://127.0.0.1:9".into(),
            hostname: "box".into(),
            machine_key: PrivateKey([1; 32]),
            node_key: PrivateKey([2; 32]),
            want_running,
            shields_up: false,
            accept_routes: false,
            accept_dns: false,
        }
    }

    /// A driver over a fresh state directory, logged in with `state` but not connected: the
    /// client's events are fed by hand.
    fn logged_in(name: &str, state: NodeState, now: Instant) -> (Control, PathBuf) {
        let dir = std::env::temp_dir().join(format!("weft-control-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut control =
            Control::new(StateStore::new(&dir), None, 41641, false, PublicKey([5; 32]));
        let environment = Environment {
            jitter_seed: 7,
            clock: WallClock::new(now, SystemTime::UNIX_EPOCH),
            disco_key: PrivateKey([4; 32]).public_key(),
            key_entropy: Box::new(|bytes| {
                bytes.fill(3);
                Ok(())
            }),
        };
        let identity =
            Identity { machine_key: state.machine_key.clone(), node_key: state.node_key.clone() };
        let server = ServerUrl::parse(&state.login_server).unwrap();
        let client =
            ControlClient::new(server, identity, state.hostname.clone(), None, environment, now);
        control.link = Some(ControlLink { client, state, socket: None, dialing: None });
        (control, dir)
    }

    fn events(control: &mut Control) -> Vec<ControlEvent> {
        std::iter::from_fn(|| control.poll_event()).collect()
    }

    #[test]
    fn netmaps_pass_to_the_loop_and_keys_are_saved_on_registration() {
        let poll = Poll::new().unwrap();
        let (mut control, dir) = logged_in("netmap", state(true), Instant::now());
        control.on_client_event(Event::Registered, poll.registry());
        assert_eq!(control.store.load().unwrap(), Some(state(true)), "saved once accepted");
        let netmap = Box::new(Netmap::new(SelfNode::new(PrivateKey([2; 32]))));
        control.on_client_event(Event::Netmap(netmap.clone()), poll.registry());
        assert_eq!(events(&mut control), [ControlEvent::Netmap(netmap)]);
        let delta =
            PeerDelta { upsert: Vec::new(), remove: vec![PrivateKey([3; 32]).public_key()] };
        control.on_client_event(Event::PeerDelta(delta.clone()), poll.registry());
        assert_eq!(events(&mut control), [ControlEvent::PeerDelta(delta)]);
        let ping = PeerPing {
            kind: crate::engine::ping::PingKind::Tsmp,
            ip: "100.64.0.2".parse().unwrap(),
            path: "/machine/ping/1".into(),
        };
        control.on_client_event(Event::PingPeer(ping.clone()), poll.registry());
        assert_eq!(events(&mut control), [ControlEvent::PingPeer(ping)]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_resumed_login_tells_the_loop_its_shields_and_dns_wish() {
        let poll = Poll::new().unwrap();
        let (mut control, dir) = logged_in("shields", state(true), Instant::now());
        let shielded = NodeState { shields_up: true, accept_dns: true, ..state(true) };
        control.resume(shielded, poll.registry(), Instant::now());
        let events = events(&mut control);
        assert!(events.contains(&ControlEvent::ShieldsUp(true)), "{events:?}");
        assert!(events.contains(&ControlEvent::AcceptDns(true)), "{events:?}");
        control.stop(poll.registry());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_confirmed_logout_forgets_the_keys_and_stops_the_node() {
        let poll = Poll::new().unwrap();
        let (mut control, dir) = logged_in("logout", state(true), Instant::now());
        control.store.save(&state(true)).unwrap();
        control.on_client_event(Event::LoggedOut, poll.registry());
        assert_eq!(events(&mut control), [ControlEvent::Stopped]);
        assert_eq!(control.store.load().unwrap(), None);
        assert_eq!(control.backend_state(), BackendState::NeedsLogin);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn what_netcheck_found_is_forgotten_when_the_node_leaves_the_tailnet() {
        let poll = Poll::new().unwrap();
        let now = Instant::now();
        let (mut control, dir) = logged_in("netcheck", state(true), now);
        let seen =
            Endpoint { addr: "203.0.113.5:41641".parse().unwrap(), kind: EndpointType::Stun };
        let home = NetInfo { preferred_derp: 3, ..NetInfo::default() };
        control.set_netcheck(poll.registry(), now, vec![seen], home);
        assert_eq!(control.endpoints().first(), Some(&seen), "STUN endpoints come first");
        control.down(poll.registry()).unwrap();
        // The next login's first requests must not announce a mapping from before.
        assert!(!control.endpoints().contains(&seen));
        assert_eq!(control.net_info, None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn down_stops_the_node_but_keeps_the_keys() {
        let poll = Poll::new().unwrap();
        let (mut control, dir) = logged_in("down", state(true), Instant::now());
        control.store.save(&state(true)).unwrap();
        control.down(poll.registry()).unwrap();
        assert_eq!(events(&mut control), [ControlEvent::Stopped]);
        assert_eq!(control.store.load().unwrap(), Some(state(false)));
        assert_eq!(control.backend_state(), BackendState::Stopped);
        let mut status = Status::default();
        control.add_to_status(&mut status);
        assert_eq!(status.backend_state, "Stopped");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_refused_login_shows_in_status_until_the_next_attempt() {
        let poll = Poll::new().unwrap();
        let (mut control, dir) = logged_in("refused", state(true), Instant::now());
        let why = ControlError::Local("the server said no".into());
        control.on_client_event(Event::LoginFailed(why.clone()), poll.registry());
        assert!(events(&mut control).is_empty(), "nothing for the engine");
        let mut status = Status::default();
        control.add_to_status(&mut status);
        assert_eq!(status.login_error, why.to_string());
        assert!(status.health.contains(&why.to_string()), "{:?}", status.health);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_static_config_has_no_login_to_manage() {
        let poll = Poll::new().unwrap();
        let dir = std::env::temp_dir().join("weft-control-static-never-created");
        let mut control =
            Control::new(StateStore::new(&dir), None, 41641, true, PublicKey([5; 32]));
        assert!(control.up(UpRequest::default(), poll.registry(), Instant::now()).is_err());
        assert!(control.down(poll.registry()).is_err());
        assert!(control.logout(poll.registry(), Instant::now()).is_err());
        assert!(events(&mut control).is_empty());
        assert_eq!(control.backend_state(), BackendState::Running);
        assert!(!dir.exists());
    }
}
