//! Answers local API requests from the engine's state: status now, pings when they finish.

use super::event_loop::Daemon;
use crate::engine::ping::{PingId, PingKind};
use crate::http1::Request;
use crate::localapi::json_object;
use crate::localapi::server::error_body;
use crate::localapi::{DOWN_PATH, LOGOUT_PATH, PING_PATH, START_PATH, STATUS_PATH};
use mio::Token;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a ping waits for its reply unless the request says otherwise.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_PING_TIMEOUT: Duration = Duration::from_secs(60);

/// Which API connection waits for which ping.
#[derive(Default)]
pub(super) struct PendingPings {
    waiting: HashMap<PingId, Token>,
}

impl PendingPings {
    /// The connection is gone: its ping's answer will be dropped.
    pub fn forget(&mut self, token: Token) {
        self.waiting.retain(|_, t| *t != token);
    }
}

enum Answer {
    Now(u16, Vec<u8>),
    Later,
}

impl Daemon {
    pub(super) fn handle_api_event(&mut self, token: Token) {
        if !self.api.owns(token) {
            return;
        }
        let Some(request) = self.api.handle_event(token, self.poll.registry(), Instant::now())
        else {
            return;
        };
        match self.answer(token, &request) {
            Answer::Now(status, body) => {
                self.api.respond(token, status, &body, self.poll.registry(), Instant::now())
            }
            Answer::Later => {}
        }
    }

    fn answer(&mut self, token: Token, request: &Request) -> Answer {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", STATUS_PATH) => match serde_json::to_vec_pretty(&self.status()) {
                Ok(body) => Answer::Now(200, body),
                Err(e) => error(500, &format!("encoding status: {e}")),
            },
            ("POST", PING_PATH) => self.start_ping(token, request),
            ("POST", START_PATH) => match json_object(&request.body) {
                Ok(up) => done(self.control_up(up, Instant::now())),
                Err(e) => error(400, &format!("bad start request: {e}")),
            },
            ("POST", DOWN_PATH) => done(self.control_down()),
            ("POST", LOGOUT_PATH) => done(self.control_logout(Instant::now())),
            (_, STATUS_PATH | PING_PATH | START_PATH | DOWN_PATH | LOGOUT_PATH) => {
                error(405, "method not allowed")
            }
            _ => error(404, &format!("no such endpoint {:?}", request.path)),
        }
    }

    /// The engine's status with what only the daemon knows: login state and its problems.
    fn status(&self) -> crate::engine::status::Status {
        let mut status = self.engine.status(Instant::now(), true);
        status.backend_state = self.backend_state().to_string();
        if let Some(link) = &self.control {
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
        status
    }

    fn start_ping(&mut self, token: Token, request: &Request) -> Answer {
        let Some(ip) = request.query_value("ip") else {
            return error(400, "missing ip= parameter");
        };
        let Ok(target) = ip.parse::<IpAddr>() else {
            return error(400, &format!("{ip:?} is not an IP address"));
        };
        let kind = match request.query_value("type").map(PingKind::from_api_name) {
            None => PingKind::Icmp,
            Some(Some(kind)) => kind,
            Some(None) => {
                return error(400, "ping type is not supported yet; weft pings with ICMP or TSMP")
            }
        };
        let timeout = match request.query_value("timeout_ms").map(str::parse::<u64>) {
            None => DEFAULT_PING_TIMEOUT,
            Some(Ok(ms)) => Duration::from_millis(ms).min(MAX_PING_TIMEOUT),
            Some(Err(_)) => return error(400, "timeout_ms must be a number of milliseconds"),
        };
        let now = Instant::now();
        let (engine, mut io) = self.io_parts();
        let started = engine.start_ping_of(now, kind, target, timeout, &mut io);
        drop(io); // sends the echo request
        match started {
            Ok(id) => {
                self.pings.waiting.insert(id, token);
                self.api.extend_deadline(token, timeout);
                Answer::Later
            }
            Err(e) => error(400, &e),
        }
    }

    /// Sends every finished ping's result to the connection that asked for it.
    pub(super) fn answer_finished_pings(&mut self) {
        while let Some((id, result)) = self.engine.poll_ping() {
            let Some(token) = self.pings.waiting.remove(&id) else {
                continue;
            };
            let body = serde_json::to_vec(&result).unwrap_or_default();
            self.api.respond(token, 200, &body, self.poll.registry(), Instant::now());
        }
    }
}

/// An empty JSON object on success, the error otherwise.
fn done(result: Result<(), String>) -> Answer {
    match result {
        Ok(()) => Answer::Now(200, b"{}".to_vec()),
        Err(e) => error(400, &e),
    }
}

fn error(status: u16, message: &str) -> Answer {
    Answer::Now(status, error_body(message))
}
