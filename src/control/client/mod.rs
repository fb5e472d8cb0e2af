//! The control client: fetches the server's key, keeps one ts2021 session up, registers the
//! node, streams the netmap and pushes endpoint changes — a sans-IO state machine.
//!
//! The driver (the daemon's poll loop) performs [`Action`]s (open or close the TCP/TLS
//! connection), moves bytes ([`ControlClient::handle_input`], [`ControlClient::poll_output`]),
//! reports closes, calls [`ControlClient::handle_timeout`] at [`ControlClient::poll_timeout`],
//! and consumes [`Event`]s (a new netmap, "persist the keys", a failed login).

use super::backoff::{Backoff, Jitter};
use super::error::{
    server_text, ControlError, LoginError, NetworkError, Refusal, Remedy, Request, Step, Violation,
};
use super::http2::hpack::HeaderField;
use super::http2::{Event as H2Event, H2Error, StreamId};
use super::map_state::{Changed, MapError, MapState, Update};
use super::mapstream::FrameReader;
use super::noise::{key_request_path, parse_server_key_response};
use super::server_url::ServerUrl;
use super::session::Session;
use super::tailcfg::{
    Endpoint, Hostinfo, MapRequest, MapResponse, NetInfo, PingRequest, RegionId, RegisterAuth,
    RegisterRequest, RegisterResponse, Service, WireKey, CAPABILITY_VERSION,
};
use crate::keys::{AuthKey, PrivateKey, PublicKey};
use crate::netmap::{Netmap, PeerDelta};
use crate::wall_clock::WallClock;
pub(crate) use ping_request::PeerPing;
use ping_request::Task;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// No frame (not even a keep-alive) for this long: the stream is dead.
const MAP_WATCHDOG: Duration = Duration::from_secs(120);
/// Largest register response read.
const MAX_REGISTER_RESPONSE: usize = 1 << 20;
/// Largest `/key` response read.
const MAX_KEY_RESPONSE: usize = 64 << 10;
/// Giving up on a connection that never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The pause after a 429 that names no Retry-After, before jitter.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Most of a refused register's body read for its text.
const MAX_REFUSAL_TEXT: usize = 4 << 10;

/// Secret randomness for Noise ephemeral keys: the driver hands in
/// the OS's random source. Key material never comes from the jitter generator.
pub(crate) type KeyEntropy = Box<dyn FnMut(&mut [u8; 32]) -> std::io::Result<()>>;

/// What the client needs from the OS, read by the driver. The client never reads the random
/// source or the wall clock itself, so the same environment and inputs replay the same run.
pub(crate) struct Environment {
    /// Seeds the retry jitter, which needs no secrecy.
    pub jitter_seed: u64,
    /// The wall clock, read together with the `now` given to [`ControlClient::new`].
    pub clock: WallClock,
    /// The public half of the daemon's disco key, which lives as long as the daemon: sent in
    /// every MapRequest so peers can seal disco messages to the engine, which holds the
    /// private half.
    pub disco_key: PublicKey,
    pub key_entropy: KeyEntropy,
}

/// Why the driver's connection ended or never opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkFailure {
    /// DNS, TCP or TLS failed, or the peer closed.
    Network(String),
    /// Our side: a bad TLS configuration, the poll registry refusing the socket.
    Local(String),
}

/// The node's long-lived keys.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Identity {
    /// Names this machine to the control server (Noise static key).
    pub machine_key: PrivateKey,
    /// The WireGuard key the tailnet knows this node by.
    pub node_key: PrivateKey,
}

/// What the driver must do with the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Open a fresh connection (closing any previous one).
    Connect {
        host: String,
        port: u16,
        tls: bool,
    },
    Disconnect,
}

/// What happened that the daemon must act on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Event {
    /// The server accepted the node key: persist the identity now.
    Registered,
    /// A new netmap to run.
    Netmap(Box<Netmap>),
    /// A change to a few peers of the running netmap, and to nothing else.
    PeerDelta(PeerDelta),
    /// The login cannot succeed without the user (bad or expired auth key, server refusal).
    LoginFailed(ControlError),
    /// The server confirmed the logout; forget the keys.
    LoggedOut,
    /// Control asks for a ping of a peer; its result goes back with
    /// [`ControlClient::post_ping_result`].
    PingPeer(PeerPing),
}

/// The user-visible login state, with tailscale's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendState {
    /// Logged in earlier, but the user asked for the node to be down (`weft down`); only the
    /// daemon reports it, the client is never running in this state.
    Stopped,
    NeedsLogin,
    NeedsMachineAuth,
    Starting,
    Running,
}

impl BackendState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BackendState::Stopped => "Stopped",
            BackendState::NeedsLogin => "NeedsLogin",
            BackendState::NeedsMachineAuth => "NeedsMachineAuth",
            BackendState::Starting => "Starting",
            BackendState::Running => "Running",
        }
    }
}

/// Where the connection is.
enum Link {
    /// Nothing open; the next attempt is at the given time.
    Waiting(Instant),
    /// An HTTP/1.1 `/key` request is out; the response is collected until the server closes.
    FetchingKey { request_sent: bool, response: Vec<u8>, since: Instant },
    /// A ts2021 session is being set up or is up.
    Session { session: Box<Session>, since: Instant, streams: Streams },
    /// Logged out or failed for good: nothing happens until the user acts.
    Parked,
}

/// The HTTP/2 requests in flight on the session.
#[derive(Default)]
struct Streams {
    register: Option<RegisterStream>,
    map: Option<StreamId>,
    lite: Option<StreamId>,
    /// The session's first request went out: the register, or the map poll once logged in.
    started: bool,
}

/// The register request's answer, collected until its stream ends.
struct RegisterStream {
    id: StreamId,
    /// An error status and its Retry-After: the body is the server's reason.
    refused: Option<(u16, Option<Duration>)>,
    body: Vec<u8>,
}

/// Streams open on the Noise session at most for a `PingRequest` to be answered: control
/// may send one in every message and never answer our HEADs and POSTs, and a stream beyond
/// its own limit would fail the session.
pub(super) const MAX_OPEN_STREAMS: usize = 32;

pub(crate) struct ControlClient {
    server: ServerUrl,
    identity: Identity,
    disco_key: PublicKey,
    hostname: String,
    /// Sent with the first register, and dropped once control accepted it (or the login
    /// failed for good): the secret lives no longer than it is needed.
    auth_key: Option<AuthKey>,
    /// Control accepted our register in this run. Later sessions go straight to the map poll,
    /// as tailscaled's map routine does after a broken connection: a register without the
    /// (spent) auth key is refused by servers that want a key in every one (testcontrol
    /// `--authkey`). Cleared when control refuses the map poll itself.
    logged_in: bool,
    /// The pending interactive login URL, if any.
    auth_url: String,
    control_key: Option<PublicKey>,
    link: Link,
    map: MapState,
    frames: FrameReader,
    last_frame: Option<Instant>,
    /// When the next node key in the netmap expires (judged on control's clock).
    next_key_expiry: Option<Instant>,
    /// Wall-clock times (key expiry, control's clock) follow the `now` the driver passes in.
    clock: WallClock,
    backoff: Backoff,
    jitter: Jitter,
    key_entropy: KeyEntropy,
    state: BackendState,
    /// Why the last attempt failed, for status output.
    last_error: Option<ControlError>,
    endpoints: Vec<Endpoint>,
    /// Netcheck's findings, for `Hostinfo.NetInfo` (how peers learn our home region).
    net_info: Option<NetInfo>,
    /// Our home DERP region (the DERP driver's connected home), told to control as
    /// NetInfo.PreferredDERP: how peers learn where to relay to us.
    home_derp: Option<RegionId>,
    /// The host's listening services, for `Hostinfo.Services`; told only while
    /// [`ControlClient::wants_services`].
    services: Vec<Service>,
    /// Endpoints, NetInfo, the home region or the services changed since control last heard
    /// them.
    state_unsent: bool,
    /// Told to control in Hostinfo: the node refuses inbound connections.
    shields_up: bool,
    /// Route peers' subnets to them (`weft up --accept-routes`); set before the map poll.
    accept_subnet_routes: bool,
    logging_out: bool,
    /// The last `PingRequest`'s URL: control may repeat a request, which is served once.
    last_ping_url: String,
    /// `PingRequest`s refused in whole or in part, for the log (one line each).
    refused_ping_requests: u64,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl ControlClient {
    /// A client for `server` that starts connecting at once.
    pub(crate) fn new(
        server: ServerUrl,
        identity: Identity,
        hostname: String,
        auth_key: Option<AuthKey>,
        environment: Environment,
        now: Instant,
    ) -> ControlClient {
        let Environment { jitter_seed, clock, disco_key, key_entropy } = environment;
        ControlClient {
            server,
            identity,
            disco_key,
            hostname,
            auth_key,
            logged_in: false,
            auth_url: String::new(),
            control_key: None,
            link: Link::Waiting(now),
            map: MapState::new(),
            frames: FrameReader::default(),
            last_frame: None,
            next_key_expiry: None,
            clock,
            backoff: Backoff::default(),
            jitter: Jitter::new(jitter_seed),
            key_entropy,
            state: BackendState::Starting,
            last_error: None,
            endpoints: Vec::new(),
            net_info: None,
            home_derp: None,
            services: Vec::new(),
            state_unsent: false,
            shields_up: false,
            accept_subnet_routes: false,
            logging_out: false,
            last_ping_url: String::new(),
            refused_ping_requests: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    pub(crate) fn state(&self) -> BackendState {
        self.state
    }

    pub(crate) fn auth_url(&self) -> &str {
        &self.auth_url
    }

    /// What control itself says is wrong (Health, DisplayMessages).
    pub(crate) fn control_health(&self) -> Vec<String> {
        self.map.health()
    }

    pub(crate) fn last_error(&self) -> Option<&ControlError> {
        self.last_error.as_ref()
    }

    /// True while the map stream is delivering.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(&self.link, Link::Session { streams, .. } if streams.map.is_some())
            && self.last_frame.is_some()
    }

    #[must_use]
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next moment [`ControlClient::handle_timeout`] must run.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.link_timeout(), self.next_key_expiry].into_iter().flatten().min()
    }

    /// When the connection's current step has waited too long.
    fn link_timeout(&self) -> Option<Instant> {
        match &self.link {
            Link::Waiting(at) => Some(*at),
            Link::FetchingKey { since, .. } => Some(*since + CONNECT_TIMEOUT),
            Link::Session { since, session, .. } if !session.is_open() => {
                Some(*since + CONNECT_TIMEOUT)
            }
            Link::Session { since, streams, .. } => Some(match (streams.map, self.last_frame) {
                (Some(_), Some(last)) => last + MAP_WATCHDOG,
                (Some(_), None) => *since + MAP_WATCHDOG,
                // Registering: an interactive follow-up may legitimately wait a long time.
                (None, _) if !self.auth_url.is_empty() => return None,
                (None, _) => *since + CONNECT_TIMEOUT + MAP_WATCHDOG,
            }),
            Link::Parked => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.next_key_expiry.is_some_and(|at| at <= now) {
            // A key (ours or a peer's) expires now: the netmap changes without a message.
            self.publish_netmap(now, self.clock.wall_at(now));
        }
        match &self.link {
            Link::Waiting(at) if *at <= now => self.connect(now),
            Link::FetchingKey { since, .. } if *since + CONNECT_TIMEOUT <= now => {
                self.fail(now, NetworkError::TimedOut(Step::FetchingKey).into())
            }
            Link::Session { .. } if self.link_timeout().is_some_and(|t| t <= now) => {
                self.fail(now, NetworkError::TimedOut(Step::Session).into())
            }
            _ => {}
        }
    }

    /// The endpoints peers may reach us at, with their types; sent with the next map request,
    /// or as a lite update while the stream runs.
    pub(crate) fn set_endpoints(&mut self, now: Instant, endpoints: Vec<Endpoint>) {
        if endpoints != self.endpoints {
            self.endpoints = endpoints;
            self.state_unsent = true;
            self.send_lite_update_if_due(now);
        }
    }

    /// Netcheck's latest findings for `Hostinfo.NetInfo`; sent like the endpoints when more
    /// than the latencies changed (they change on every run, and control needs them only
    /// with something else).
    pub(crate) fn set_net_info(&mut self, now: Instant, net_info: NetInfo) {
        let news = !self.net_info.as_ref().is_some_and(|old| old.basically_equal(&net_info));
        self.net_info = Some(net_info);
        if news {
            self.state_unsent = true;
            self.send_lite_update_if_due(now);
        }
    }

    /// Whether peers' subnet routes are routed to them, from the next map poll on (each
    /// `weft up` makes a new client, so it is set before the first).
    pub(crate) fn set_accept_routes(&mut self, on: bool) {
        self.accept_subnet_routes = on;
    }

    /// Whether the node has shields up, for the Hostinfo of the next requests.
    pub(crate) fn set_shields_up(&mut self, on: bool) {
        self.shields_up = on;
    }

    /// Whether control hears of the host's services: when it asks for them
    /// (`MapResponse.CollectServices`, per map stream) and the shields are down, as
    /// tailscaled decides (`shouldUploadServices`). The daemon reads the ports only then.
    pub(crate) fn wants_services(&self) -> bool {
        self.map.collect_services() == Some(true) && !self.shields_up
    }

    /// The host's listening services; sent like the endpoints when they changed and control
    /// wants them (kept otherwise, for when it does).
    pub(crate) fn set_services(&mut self, now: Instant, services: Vec<Service>) {
        if services != self.services {
            self.services = services;
            self.state_unsent |= self.wants_services();
            self.send_lite_update_if_due(now);
        }
    }

    /// Our home DERP region; sent like the endpoints (with the next map request, or as a
    /// lite update while the stream runs).
    pub(crate) fn set_home_derp(&mut self, now: Instant, region: Option<RegionId>) {
        if region != self.home_derp {
            self.home_derp = region;
            self.state_unsent = true;
            self.send_lite_update_if_due(now);
        }
    }

    /// What the node says about itself in each request: the host, shields-up and the latest
    /// NetInfo, whose PreferredDERP is the home region we are connected to once there is one
    /// (netcheck's choice becomes that home when its connection is up), netcheck's before.
    fn hostinfo(&self) -> Hostinfo {
        let net_info = match (&self.net_info, self.home_derp) {
            (Some(found), home) => Some(NetInfo {
                preferred_derp: home.unwrap_or(found.preferred_derp),
                ..found.clone()
            }),
            (None, Some(home)) => Some(NetInfo { preferred_derp: home, ..NetInfo::default() }),
            (None, None) => None,
        };
        let services = if self.wants_services() { self.services.clone() } else { Vec::new() };
        Hostinfo {
            shields_up: self.shields_up,
            net_info,
            services,
            ..Hostinfo::for_this_host(&self.hostname)
        }
    }

    /// Asks the server to expire our node key; [`Event::LoggedOut`] follows (or, with no
    /// connection, at once).
    pub(crate) fn logout(&mut self, now: Instant) {
        self.logging_out = true;
        if matches!(self.link, Link::Session { ref streams, .. } if streams.started) {
            self.send_register(now);
        } else {
            self.park();
            self.events.push_back(Event::LoggedOut);
        }
    }

    fn connect(&mut self, now: Instant) {
        self.actions.push_back(Action::Connect {
            host: self.server.host.clone(),
            port: self.server.port,
            tls: self.server.tls,
        });
        self.link = match self.control_key {
            None => Link::FetchingKey { request_sent: false, response: Vec::new(), since: now },
            Some(key) => match self.start_session(key) {
                Ok(session) => Link::Session {
                    session: Box::new(session),
                    since: now,
                    streams: Streams::default(),
                },
                Err(e) => return self.fail(now, e),
            },
        };
    }

    fn start_session(&mut self, control_key: PublicKey) -> Result<Session, ControlError> {
        let mut seed = [0u8; 32];
        (self.key_entropy)(&mut seed)
            .map_err(|e| ControlError::Local(format!("no randomness available: {e}")))?;
        let authority = self.server.authority();
        let session = Session::start(
            &self.identity.machine_key,
            &control_key,
            &authority,
            CAPABILITY_VERSION as u16,
            seed,
        )?;
        Ok(session)
    }

    /// Bytes for the socket: the `/key` request right after connecting, or session output.
    pub(crate) fn poll_output(&mut self, now: Instant, out: &mut Vec<u8>) {
        match &mut self.link {
            Link::FetchingKey { request_sent, .. } if !*request_sent => {
                let request = format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: weft/{}\r\nConnection: close\r\n\r\n",
                    key_request_path(CAPABILITY_VERSION as u16),
                    self.server.authority(),
                    crate::VERSION
                );
                out.extend_from_slice(request.as_bytes());
                *request_sent = true;
            }
            Link::Session { session, .. } => {
                if let Err(e) = session.poll_output(out) {
                    self.fail(now, e.into());
                }
            }
            _ => {}
        }
    }

    /// Bytes read from the socket.
    pub(crate) fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        match &mut self.link {
            Link::FetchingKey { response, .. } => {
                response.extend_from_slice(bytes);
                if response.len() > MAX_KEY_RESPONSE {
                    self.fail(now, Violation::KeyResponseTooLarge.into());
                }
            }
            Link::Session { session, .. } => {
                if let Err(e) = session.handle_input(bytes) {
                    return self.fail_session(now, e.into());
                }
                self.drive_session(now);
            }
            _ => {}
        }
    }

    /// The connection closed (or failed to open).
    /// A close after we already gave up on the connection (a retry or a parked login) changes
    /// nothing: the reason that made us give up stays the one reported.
    pub(crate) fn handle_closed(&mut self, now: Instant, failure: LinkFailure) {
        let during = match &self.link {
            Link::FetchingKey { .. } => Step::FetchingKey,
            Link::Session { .. } => Step::Session,
            Link::Waiting(_) | Link::Parked => return,
        };
        let error = match failure {
            LinkFailure::Network(reason) => NetworkError::Closed { during, reason }.into(),
            LinkFailure::Local(reason) => ControlError::Local(reason),
        };
        match &self.link {
            Link::FetchingKey { response, .. } if !response.is_empty() => {
                let response = response.clone();
                self.finish_key_fetch(now, &response)
            }
            Link::Session { .. } => self.fail_session(now, error),
            _ => self.fail(now, error),
        }
    }

    /// The session failed. If Noise never came up, the server never proved it holds the key
    /// we dialed — it may have changed (a restarted or reinstalled server).
    fn fail_session(&mut self, now: Instant, error: ControlError) {
        let noise_open = matches!(&self.link, Link::Session { session, .. } if session.is_open());
        match noise_open {
            true => self.fail(now, error),
            false => self.fail(now, ControlError::ServerKey(Box::new(error))),
        }
    }

    fn finish_key_fetch(&mut self, now: Instant, response: &[u8]) {
        match self.parse_key_response(response) {
            Ok(key) => {
                self.control_key = Some(key);
                self.connect(now);
            }
            Err(e) => self.fail(now, e),
        }
    }

    fn parse_key_response(&self, response: &[u8]) -> Result<PublicKey, ControlError> {
        let (status, body) =
            crate::http1::parse_response(response).map_err(Violation::KeyResponseHttp)?;
        if status != 200 {
            return Err(self.refusal(Request::Key, status, body, None));
        }
        Ok(parse_server_key_response(body).map_err(Violation::KeyResponse)?)
    }

    /// A refusal keeping the server's text, without our auth key should it be echoed.
    fn refusal(
        &self,
        request: Request,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> ControlError {
        let text = server_text(&String::from_utf8_lossy(body), self.auth_key.as_ref());
        ControlError::Refused(Refusal { request, status, text, retry_after })
    }

    /// Sends what the session state calls for and handles HTTP/2 events.
    fn drive_session(&mut self, now: Instant) {
        let Link::Session { session, streams, .. } = &mut self.link else {
            return;
        };
        if session.h2().is_none() {
            return;
        }
        if !streams.started {
            streams.started = true;
            match self.logged_in {
                true => self.start_map_poll(now),
                false => self.send_register(now),
            }
        }
        while let Some(event) = self.next_h2_event() {
            self.handle_h2_event(now, event);
            if !matches!(self.link, Link::Session { .. }) {
                return;
            }
        }
    }

    fn next_h2_event(&mut self) -> Option<H2Event> {
        match &mut self.link {
            Link::Session { session, .. } => session.h2()?.poll_event(),
            _ => None,
        }
    }

    fn handle_h2_event(&mut self, now: Instant, event: H2Event) {
        match event {
            H2Event::Response { stream, status, headers } => {
                self.on_response_head(now, stream, status, &headers)
            }
            H2Event::Data { stream, bytes } => self.on_data(now, stream, &bytes),
            H2Event::StreamEnd { stream } => self.on_stream_end(now, stream),
            H2Event::StreamReset { .. } => self.fail(now, NetworkError::RequestReset.into()),
            H2Event::GoAway { .. } => self.fail(now, NetworkError::GoingAway.into()),
        }
    }

    fn on_response_head(
        &mut self,
        now: Instant,
        stream: StreamId,
        status: u16,
        headers: &[HeaderField],
    ) {
        if status == 200 {
            return;
        }
        if let Link::Session { streams, .. } = &mut self.link {
            if let Some(register) = streams.register.as_mut().filter(|r| r.id == stream) {
                // Decided once the body (the server's reason) is in.
                register.refused = Some((status, retry_after(headers)));
                return;
            }
        }
        if self.is_stream(stream, |s| s.map) || self.is_stream(stream, |s| s.lite) {
            self.fail(now, self.refusal(Request::Map, status, &[], retry_after(headers)));
        }
        // Answers to our answers (ping HEADs) don't matter.
    }

    fn is_stream(&self, stream: StreamId, pick: impl Fn(&Streams) -> Option<StreamId>) -> bool {
        matches!(&self.link, Link::Session { streams, .. } if pick(streams) == Some(stream))
    }

    fn on_data(&mut self, now: Instant, stream: StreamId, bytes: &[u8]) {
        let Link::Session { session, streams, .. } = &mut self.link else {
            return;
        };
        if let Some(h2) = session.h2() {
            h2.consume(stream, bytes.len());
        }
        if let Some(register) = streams.register.as_mut().filter(|r| r.id == stream) {
            let limit = match register.refused {
                Some(_) => MAX_REFUSAL_TEXT,
                None => MAX_REGISTER_RESPONSE,
            };
            let room = (limit + 1).saturating_sub(register.body.len());
            register.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if register.refused.is_none() && register.body.len() > MAX_REGISTER_RESPONSE {
                self.fail(now, Violation::RegisterResponseTooLarge.into());
            }
            return;
        }
        if streams.map == Some(stream) {
            self.frames.push(bytes);
            self.read_map_frames(now);
        }
    }

    fn on_stream_end(&mut self, now: Instant, stream: StreamId) {
        let Link::Session { streams, .. } = &mut self.link else {
            return;
        };
        if let Some(register) = streams.register.take() {
            if register.id == stream {
                return match register.refused {
                    Some((status, wait)) => {
                        let body = &register.body[..register.body.len().min(MAX_REFUSAL_TEXT)];
                        self.fail(now, self.refusal(Request::Register, status, body, wait))
                    }
                    None => self.on_register_response(now, &register.body),
                };
            }
            streams.register = Some(register);
        }
        if streams.lite == Some(stream) {
            streams.lite = None;
            return self.send_lite_update_if_due(now);
        }
        if streams.map == Some(stream) {
            self.fail(now, NetworkError::MapStreamEnded.into());
        }
    }

    fn send_register(&mut self, now: Instant) {
        let mut request = RegisterRequest::new(
            WireKey::new(self.identity.node_key.public_key()),
            self.hostinfo(),
        );
        if self.logging_out {
            // Any time in the past on the current key means "log out"; the official client
            // uses this one.
            request.expiry = Some(UNIX_EPOCH + Duration::from_secs(123));
        } else if !self.auth_url.is_empty() {
            request.followup = self.auth_url.clone();
        } else if let Some(key) = &self.auth_key {
            request.auth = Some(RegisterAuth { auth_key: key.clone() });
        }
        self.send_request(now, "POST", "/machine/register", &request.to_json(), |streams, id| {
            streams.register = Some(RegisterStream { id, refused: None, body: Vec::new() })
        });
    }

    fn send_request(
        &mut self,
        now: Instant,
        method: &str,
        path: &str,
        body: &[u8],
        remember: impl FnOnce(&mut Streams, StreamId),
    ) {
        let Link::Session { session, streams, .. } = &mut self.link else {
            return;
        };
        let Some(h2) = session.h2() else {
            return;
        };
        let length = body.len().to_string();
        let body = Some(body).filter(|b| !b.is_empty());
        match h2.send_request(method, path, &[("content-length", &length)], body) {
            Ok(id) => remember(streams, id),
            Err(error) => self.fail(now, send_error(path, error)),
        }
    }

    fn on_register_response(&mut self, now: Instant, body: &[u8]) {
        let response = match RegisterResponse::from_json(body) {
            Ok(r) => r,
            Err(e) => return self.fail(now, Violation::RegisterResponse(e).into()),
        };
        if !response.error.is_empty() {
            let text = server_text(&response.error, self.auth_key.as_ref());
            return self.fail(now, LoginError::Refused(text).into());
        }
        if self.logging_out {
            self.park();
            self.events.push_back(Event::LoggedOut);
            return;
        }
        if response.node_key_expired {
            return self.fail(now, LoginError::NodeKeyExpired.into());
        }
        if !response.auth_url.is_empty() {
            let fresh = response.auth_url != self.auth_url;
            self.auth_url = response.auth_url;
            self.state = BackendState::NeedsLogin;
            if fresh {
                // Ask again with Followup: the server answers once the user has logged in.
                return self.send_register(now);
            }
            return self.fail(now, LoginError::NotFinished.into());
        }
        self.auth_url.clear();
        self.auth_key = None;
        self.logged_in = true;
        self.last_error = None;
        self.state = if response.machine_authorized {
            BackendState::Starting
        } else {
            BackendState::NeedsMachineAuth
        };
        self.events.push_back(Event::Registered);
        self.start_map_poll(now);
    }

    fn start_map_poll(&mut self, now: Instant) {
        self.frames = FrameReader::default();
        self.map = MapState::accepting_subnet_routes(self.accept_subnet_routes);
        self.last_frame = None;
        let mut request = MapRequest::long_poll(
            WireKey::new(self.identity.node_key.public_key()),
            WireKey::new(self.disco_key),
            self.hostinfo(),
        );
        request.set_endpoints(&self.endpoints);
        self.send_request(now, "POST", "/machine/map", &request.to_json(), |streams, id| {
            streams.map = Some(id)
        });
        // The streaming request may be read-only for the server: push our state separately.
        self.state_unsent =
            !self.endpoints.is_empty() || self.net_info.is_some() || self.home_derp.is_some();
        self.send_lite_update_if_due(now);
    }

    fn send_lite_update_if_due(&mut self, now: Instant) {
        let ready = matches!(&self.link, Link::Session { streams, .. } if streams.map.is_some() && streams.lite.is_none());
        if !ready || !self.state_unsent {
            return;
        }
        self.state_unsent = false;
        let mut request = MapRequest::lite_update(
            WireKey::new(self.identity.node_key.public_key()),
            WireKey::new(self.disco_key),
            self.hostinfo(),
        );
        request.set_endpoints(&self.endpoints);
        self.send_request(now, "POST", "/machine/map", &request.to_json(), |streams, id| {
            streams.lite = Some(id)
        });
    }

    fn read_map_frames(&mut self, now: Instant) {
        loop {
            let frame = match self.frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => return self.fail(now, Violation::MapFrame(e).into()),
            };
            self.last_frame = Some(now);
            let wall = self.clock.wall_at(now);
            let response = match MapResponse::from_json(&frame) {
                Ok(response) => response,
                Err(e) => return self.fail(now, Violation::MapResponse(MapError::Json(e)).into()),
            };
            let ping = response.ping_request.clone();
            let wanted_services = self.wants_services();
            match self.map.apply(response, wall) {
                Ok(changed) if changed.any() => self.publish(now, wall, changed),
                Ok(_) => {}
                Err(e) => return self.fail(now, Violation::MapResponse(e).into()),
            }
            if self.wants_services() && !wanted_services && !self.services.is_empty() {
                // Control asks for services we already know of: no need to wait for a change.
                self.state_unsent = true;
                self.send_lite_update_if_due(now);
            }
            if let Some(ping) = ping {
                self.answer_ping_request(now, &ping);
            }
        }
    }

    /// Control's `PingRequest`: a proof-of-life HEAD (capability versions 12 and 31), sent at
    /// once, or pings of a peer, handed to the daemon as events. A request repeating the last
    /// one's URL is ignored, as tailscale's client does; refusals are counted and logged.
    fn answer_ping_request(&mut self, now: Instant, ping: &PingRequest) {
        if ping.url == self.last_ping_url {
            return;
        }
        self.last_ping_url.clone_from(&ping.url);
        if !self.has_room_for_ping_answer() {
            return self.refuse_ping_request("too many of our answers are still open");
        }
        match ping_request::task(ping) {
            Ok(Task::Head(path)) => self.send_request(now, "HEAD", &path, &[], |_, _| {}),
            Ok(Task::Pings { pings, refused }) => {
                if refused.count > 0 {
                    let more = refused.count - refused.names.len();
                    let and_more =
                        if more > 0 { format!(" and {more} more") } else { String::new() };
                    let names = &refused.names;
                    self.refuse_ping_request(&format!(
                        "ping types {names:?}{and_more} are not supported"
                    ));
                }
                self.events.extend(pings.into_iter().map(Event::PingPeer));
            }
            Err(why) => self.refuse_ping_request(&why),
        }
    }

    /// Counts a refusal. Control may send a request to refuse in every message, so the log
    /// tells the first and then those at each doubling of the count: a handful of lines for
    /// any number of refusals.
    fn refuse_ping_request(&mut self, why: &str) {
        self.refused_ping_requests += 1;
        let count = self.refused_ping_requests;
        if count.is_power_of_two() {
            log::info!("control: ping request refused ({count} so far): {why}");
        }
    }

    /// Sends the result of a ping control asked for (a `PingResponse` as JSON) to the path it
    /// named, over the Noise session; its answer is not waited for.
    pub(crate) fn post_ping_result(&mut self, now: Instant, path: &str, response_json: &[u8]) {
        if !self.has_room_for_ping_answer() {
            return self.refuse_ping_request("too many of our answers are still open");
        }
        self.send_request(now, "POST", path, response_json, |_, _| {});
    }

    /// Whether the Noise session has fewer than [`MAX_OPEN_STREAMS`] streams open.
    fn has_room_for_ping_answer(&mut self) -> bool {
        let Link::Session { session, .. } = &mut self.link else {
            return true;
        };
        session.h2().is_none_or(|h2| h2.open_streams() < MAX_OPEN_STREAMS)
    }

    /// Hands on the whole netmap, as when a key expires with no message.
    fn publish_netmap(&mut self, now: Instant, wall: SystemTime) {
        let everything = Changed { self_node: true, peers: true, ..Changed::default() };
        self.publish(now, wall, everything);
    }

    /// Hands on what a MapResponse `changed`: a delta when only some peers changed, else the
    /// whole netmap.
    fn publish(&mut self, now: Instant, wall: SystemTime, changed: Changed) {
        let Some(update) = self.map.take_update(self.identity.node_key.clone(), wall, changed)
        else {
            return;
        };
        self.next_key_expiry = self
            .map
            .next_key_expiry(wall)
            .map(|at| now + at.duration_since(wall).unwrap_or_default());
        self.backoff.reset();
        let netmap = match update {
            Update::Peers(delta) => return self.events.push_back(Event::PeerDelta(delta)),
            Update::Full(netmap) => netmap,
        };
        self.state = if !netmap.self_node.machine_authorized {
            BackendState::NeedsMachineAuth
        } else if netmap.self_node.key_expired {
            BackendState::NeedsLogin
        } else {
            BackendState::Running
        };
        self.events.push_back(Event::Netmap(netmap));
    }

    /// Something failed: what happens next is decided by the kind of error alone.
    fn fail(&mut self, now: Instant, error: ControlError) {
        match error.remedy() {
            Remedy::Retry => self.retry(now, error),
            Remedy::RefetchKeyAndRetry => {
                self.control_key = None;
                self.retry(now, error);
            }
            Remedy::RetryAfter(wait) => {
                self.retry(now, error);
                // HTTP 429 (capability version 137): wait as the server asks, within reason.
                let wait =
                    wait.unwrap_or_else(|| DEFAULT_RETRY_AFTER.mul_f64(1.0 + self.jitter.draw()));
                self.link = Link::Waiting(now + wait);
            }
            Remedy::RegisterAndRetry => {
                self.logged_in = false;
                self.retry(now, error);
            }
            Remedy::GiveUp => self.fail_login(error),
        }
    }

    /// The connection failed: close it and try again after a backoff.
    fn retry(&mut self, now: Instant, error: ControlError) {
        log::warn!("control: {error}");
        self.last_error = Some(error);
        self.actions.push_back(Action::Disconnect);
        let delay = self.backoff.next_delay(self.jitter.draw());
        self.link = Link::Waiting(now + delay);
        self.last_frame = None;
    }

    /// The login cannot work as asked: stop and tell the user.
    fn fail_login(&mut self, error: ControlError) {
        log::error!("control: {error}");
        self.last_error = Some(error.clone());
        self.state = BackendState::NeedsLogin;
        self.park();
        self.events.push_back(Event::LoginFailed(error));
    }

    /// Nothing more until the user acts, which makes a new client: the auth key is of no
    /// more use.
    fn park(&mut self) {
        self.auth_key = None;
        self.actions.push_back(Action::Disconnect);
        self.link = Link::Parked;
        self.last_frame = None;
    }
}

/// A request that could not go out: our own malformed request, or a connection that takes no
/// more work.
fn send_error(path: &str, error: H2Error) -> ControlError {
    match error {
        H2Error::InvalidRequest(_) => ControlError::Local(format!("sending {path}: {error}")),
        error => NetworkError::Send { path: path.to_string(), error }.into(),
    }
}

/// A `Retry-After` given in seconds, capped at an hour (longer or unreadable: ignored).
fn retry_after(headers: &[HeaderField]) -> Option<Duration> {
    let value =
        headers.iter().find(|h| h.name.eq_ignore_ascii_case(b"retry-after"))?.value_str()?;
    let seconds: u64 = value.trim().parse().ok()?;
    (seconds <= 3600).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod fake_server;
pub(crate) mod ping_request;
#[cfg(test)]
mod tests;
