//! The local API driver: owns the Unix-socket server and the pings waiting for their answer.
//! It turns each complete request into an [`ApiCommand`] for the loop, answers malformed ones
//! itself, and sends the loop's replies back to the connection that asked. It knows nothing of
//! the engine or the control connection: serving a command is the loop's business.

use super::tokens;
use crate::engine::ping::{PingId, PingKind};
use crate::http1::Request;
use crate::localapi::server::{error_body, Server};
use crate::localapi::socket_path::ListenError;
use crate::localapi::{json_object, UpRequest};
use crate::localapi::{DOWN_PATH, LOGOUT_PATH, NETCHECK_PATH, PING_PATH, START_PATH, STATUS_PATH};
use mio::{Registry, Token};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a ping waits for its reply unless the request says otherwise.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_PING_TIMEOUT: Duration = Duration::from_secs(60);
/// How much longer a `weft netcheck` connection waits: a run ends within 5 s.
const NETCHECK_WAIT: Duration = Duration::from_secs(10);

/// What a client asked for, for the loop to serve.
#[derive(Debug, PartialEq)]
pub(super) enum ApiCommand {
    /// `weft status`: the engine's status with the login state.
    Status,
    /// `weft ping`: a disco ping, ICMP echo or TSMP ping to `target`, answered when it returns
    /// or `timeout` passes.
    Ping { kind: PingKind, target: IpAddr, timeout: Duration },
    /// `weft up`.
    Up(UpRequest),
    /// `weft down`.
    Down,
    /// `weft logout`.
    Logout,
    /// `weft netcheck`: a netcheck run, answered when it finishes.
    Netcheck,
}

/// The connection a command came from, to address the reply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Caller(pub(super) Token);

/// A request the loop could not serve: the HTTP status and the reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    status: u16,
    message: String,
}

impl Refusal {
    pub(super) fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal { status: 400, message: message.into() }
    }

    pub(super) fn internal(message: impl Into<String>) -> Refusal {
        Refusal { status: 500, message: message.into() }
    }
}

pub(super) struct Api {
    server: Server,
    /// Which connection waits for which ping.
    pings: HashMap<PingId, Token>,
    /// The connections waiting for the running netcheck's report.
    netchecks: Vec<Token>,
}

impl Api {
    /// Listens on `path`.
    pub(super) fn bind(path: &Path) -> Result<Api, ListenError> {
        Ok(Api {
            server: Server::bind(path, tokens::API.0)?,
            pings: HashMap::new(),
            netchecks: Vec::new(),
        })
    }

    pub(super) fn register(&mut self, registry: &Registry) -> std::io::Result<()> {
        self.server.register(registry, tokens::API)
    }

    /// The listener or a connection is ready; returns a complete, well-formed request.
    pub(super) fn on_ready(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
    ) -> Option<(Caller, ApiCommand)> {
        if token == tokens::API {
            self.server.accept(registry, now);
            return None;
        }
        if !self.server.owns(token) {
            return None;
        }
        let request = self.server.handle_event(token, registry, now)?;
        match command(&request) {
            Ok(command) => Some((Caller(token), command)),
            Err(refusal) => {
                self.reply(Caller(token), Err(refusal), registry, now);
                None
            }
        }
    }

    /// Answers `caller`: a JSON body with 200, or the refusal's status and reason.
    pub(super) fn reply(
        &mut self,
        caller: Caller,
        answer: Result<Vec<u8>, Refusal>,
        registry: &Registry,
        now: Instant,
    ) {
        let (status, body) = match answer {
            Ok(body) => (200, body),
            Err(refusal) => (refusal.status, error_body(&refusal.message)),
        };
        self.server.respond(caller.0, status, &body, registry, now);
    }

    /// Answers `caller` with a JSON body and 200.
    pub(super) fn reply_ok(
        &mut self,
        caller: Caller,
        body: &[u8],
        registry: &Registry,
        now: Instant,
    ) {
        self.server.respond(caller.0, 200, body, registry, now);
    }

    /// `caller`'s ping is out: its answer comes with [`Api::ping_finished`], and its
    /// connection waits `timeout` longer for it.
    pub(super) fn ping_started(&mut self, caller: Caller, id: PingId, timeout: Duration) {
        self.pings.insert(id, caller.0);
        self.server.extend_deadline(caller.0, timeout);
    }

    /// Sends a finished ping's result to the connection that asked, if it is still there.
    pub(super) fn ping_finished(
        &mut self,
        id: PingId,
        body: Vec<u8>,
        registry: &Registry,
        now: Instant,
    ) {
        if let Some(token) = self.pings.remove(&id) {
            self.server.respond(token, 200, &body, registry, now);
        }
    }

    /// `caller` waits for the running netcheck: [`Api::netcheck_finished`] answers it.
    pub(super) fn netcheck_started(&mut self, caller: Caller) {
        self.netchecks.push(caller.0);
        self.server.extend_deadline(caller.0, NETCHECK_WAIT);
    }

    /// Whether anyone waits for a netcheck report.
    pub(super) fn wants_netcheck(&self) -> bool {
        !self.netchecks.is_empty()
    }

    /// Sends a finished netcheck's report to every connection waiting for one.
    pub(super) fn netcheck_finished(&mut self, body: &[u8], registry: &Registry, now: Instant) {
        for token in std::mem::take(&mut self.netchecks) {
            self.server.respond(token, 200, body, registry, now);
        }
    }

    #[must_use]
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    /// Drops connections past their deadline, and the pings they waited for.
    pub(super) fn on_timeout(&mut self, now: Instant, registry: &Registry) {
        for token in self.server.expire(now, registry) {
            self.pings.retain(|_, t| *t != token);
            self.netchecks.retain(|t| *t != token);
        }
    }
}

/// What `request` asks for, or why it can't be served.
fn command(request: &Request) -> Result<ApiCommand, Refusal> {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", STATUS_PATH) => Ok(ApiCommand::Status),
        ("POST", PING_PATH) => ping_command(request),
        ("POST", START_PATH) => json_object(&request.body)
            .map(ApiCommand::Up)
            .map_err(|e| Refusal::bad_request(format!("bad start request: {e}"))),
        ("POST", DOWN_PATH) => Ok(ApiCommand::Down),
        ("POST", LOGOUT_PATH) => Ok(ApiCommand::Logout),
        ("POST", NETCHECK_PATH) => Ok(ApiCommand::Netcheck),
        (_, STATUS_PATH | PING_PATH | START_PATH | DOWN_PATH | LOGOUT_PATH | NETCHECK_PATH) => {
            Err(Refusal { status: 405, message: "method not allowed".into() })
        }
        _ => Err(Refusal { status: 404, message: format!("no such endpoint {:?}", request.path) }),
    }
}

fn ping_command(request: &Request) -> Result<ApiCommand, Refusal> {
    let Some(ip) = request.query_value("ip") else {
        return Err(Refusal::bad_request("missing ip= parameter"));
    };
    let Ok(target) = ip.parse::<IpAddr>() else {
        return Err(Refusal::bad_request(format!("{ip:?} is not an IP address")));
    };
    let kind = match request.query_value("type") {
        None => PingKind::Icmp,
        Some(name) => PingKind::from_api_name(name).ok_or_else(|| {
            Refusal::bad_request(format!(
                "ping type {name:?} is not supported; weft pings with disco, ICMP or TSMP"
            ))
        })?,
    };
    let timeout = match request.query_value("timeout_ms").map(str::parse::<u64>) {
        None => DEFAULT_PING_TIMEOUT,
        Some(Ok(ms)) => Duration::from_millis(ms).min(MAX_PING_TIMEOUT),
        Some(Err(_)) => {
            return Err(Refusal::bad_request("timeout_ms must be a number of milliseconds"))
        }
    };
    Ok(ApiCommand::Ping { kind, target, timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn requests_become_commands() {
        assert_eq!(command(&request("GET", STATUS_PATH, &[], "")), Ok(ApiCommand::Status));
        assert_eq!(command(&request("POST", DOWN_PATH, &[], "")), Ok(ApiCommand::Down));
        assert_eq!(command(&request("POST", LOGOUT_PATH, &[], "")), Ok(ApiCommand::Logout));
        assert_eq!(command(&request("POST", NETCHECK_PATH, &[], "")), Ok(ApiCommand::Netcheck));
        let up = command(&request("POST", START_PATH, &[], r#"{"LoginServer": "http://c"}"#));
        assert_eq!(
            up,
            Ok(ApiCommand::Up(UpRequest {
                login_server: "http://c".into(),
                ..UpRequest::default()
            }))
        );
        let ping = command(&request(
            "POST",
            PING_PATH,
            &[("ip", "100.64.0.2"), ("timeout_ms", "90000")],
            "",
        ));
        let target = [100, 64, 0, 2].into();
        let timeout = MAX_PING_TIMEOUT;
        assert_eq!(ping, Ok(ApiCommand::Ping { kind: PingKind::Icmp, target, timeout }));
        let tsmp =
            command(&request("POST", PING_PATH, &[("ip", "100.64.0.2"), ("type", "TSMP")], ""));
        let timeout = DEFAULT_PING_TIMEOUT;
        assert_eq!(tsmp, Ok(ApiCommand::Ping { kind: PingKind::Tsmp, target, timeout }));
        let disco =
            command(&request("POST", PING_PATH, &[("ip", "100.64.0.2"), ("type", "disco")], ""));
        assert_eq!(disco, Ok(ApiCommand::Ping { kind: PingKind::Disco, target, timeout }));
    }

    #[test]
    fn bad_requests_are_refused_with_their_status() {
        let status = |r: Request| command(&r).unwrap_err().status;
        assert_eq!(status(request("POST", STATUS_PATH, &[], "")), 405);
        assert_eq!(status(request("GET", NETCHECK_PATH, &[], "")), 405);
        assert_eq!(status(request("GET", "/elsewhere", &[], "")), 404);
        assert_eq!(status(request("POST", START_PATH, &[], "[1]")), 400);
        assert_eq!(status(request("POST", PING_PATH, &[], "")), 400);
        assert_eq!(status(request("POST", PING_PATH, &[("ip", "x")], "")), 400);
        assert_eq!(
            status(request("POST", PING_PATH, &[("ip", "::1"), ("type", "peerapi")], "")),
            400
        );
        assert_eq!(
            status(request("POST", PING_PATH, &[("ip", "::1"), ("timeout_ms", "-1")], "")),
            400
        );
    }
}
