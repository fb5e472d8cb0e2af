//! The daemon's end of the local API socket: accepts connections, reads one request from each,
//! writes one response. Non-blocking, driven by the event loop's readiness events.

use crate::http1::{parse_request, response, Parse, Request};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Connections beyond this are refused, so a misbehaving client can't exhaust descriptors.
const MAX_CONNECTIONS: usize = 64;
/// A client gets this long to send its request and read the answer (pings add their own
/// timeout on top).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Collecting the request.
    Reading,
    /// The request went to the daemon; its answer is awaited (a ping may take seconds).
    Answering,
    /// The answer is queued; the connection closes once it is written.
    Writing,
}

struct Connection {
    stream: UnixStream,
    received: Vec<u8>,
    unsent: Vec<u8>,
    stage: Stage,
    deadline: Instant,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    connections: HashMap<Token, Connection>,
    first_token: usize,
    next_token: usize,
}

impl Server {
    /// Binds the socket at `path` (mode 0600, so only root may talk to the daemon), refusing to
    /// take over the socket of a daemon that still answers.
    pub fn bind(path: &Path, first_token: usize) -> io::Result<Server> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another weftd is already listening on {}", path.display()),
            ));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            connections: HashMap::new(),
            first_token: first_token + 1,
            next_token: first_token + 1,
        })
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    pub fn owns(&self, token: Token) -> bool {
        self.connections.contains_key(&token)
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.connections.len() >= MAX_CONNECTIONS {
                        log::warn!("local API: too many connections, refusing one");
                        continue;
                    }
                    let token = self.allocate_token();
                    if registry
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        self.connections.insert(
                            token,
                            Connection {
                                stream,
                                received: Vec::new(),
                                unsent: Vec::new(),
                                stage: Stage::Reading,
                                deadline: now + CONNECTION_TIMEOUT,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("local API: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn allocate_token(&mut self) -> Token {
        loop {
            let token = Token(self.next_token);
            self.next_token = self.next_token.checked_add(1).unwrap_or(self.first_token);
            if !self.connections.contains_key(&token) {
                return token;
            }
        }
    }

    /// Reads what the client sent and flushes what we owe it. Returns a request once one is
    /// complete; malformed requests are answered with a 400 here.
    pub fn handle_event(&mut self, token: Token, registry: &Registry) -> Option<Request> {
        let conn = self.connections.get_mut(&token)?;
        let mut closed = read_available(conn);
        let mut request = None;
        if conn.stage == Stage::Reading && !closed {
            match parse_request(&conn.received) {
                Parse::Incomplete => {}
                Parse::Complete(r) => {
                    conn.stage = Stage::Answering;
                    request = Some(r);
                }
                Parse::Invalid(why) => {
                    conn.stage = Stage::Writing;
                    conn.unsent = response(400, &error_body(&why));
                }
            }
        }
        closed |= flush(conn);
        if closed {
            self.close(token, registry);
        }
        request
    }

    /// Sends the answer to the request read from `token` and closes once it is written.
    pub fn respond(&mut self, token: Token, status: u16, body: &[u8], registry: &Registry) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.unsent = response(status, body);
        conn.stage = Stage::Writing;
        if flush(conn) {
            self.close(token, registry);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.connections.values().map(|c| c.deadline).min()
    }

    /// Drops connections past their deadline; returns their tokens so pending work is
    /// forgotten too.
    pub fn expire(&mut self, now: Instant, registry: &Registry) -> Vec<Token> {
        let late: Vec<Token> =
            self.connections.iter().filter(|(_, c)| c.deadline <= now).map(|(t, _)| *t).collect();
        for token in &late {
            self.close(*token, registry);
        }
        late
    }

    /// Gives a connection more time, for requests that wait on the network (pings).
    pub fn extend_deadline(&mut self, token: Token, by: Duration) {
        if let Some(conn) = self.connections.get_mut(&token) {
            conn.deadline += by;
        }
    }

    fn close(&mut self, token: Token, registry: &Registry) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = registry.deregister(&mut conn.stream);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The JSON body of an error answer.
pub fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&super::ErrorBody { error: message.to_string() }).unwrap_or_default()
}

/// Reads until the socket would block; true when the client is gone (hung up before its answer
/// was queued, or sent more than any request may be).
fn read_available(conn: &mut Connection) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return conn.stage == Stage::Reading,
            Ok(n) => {
                conn.received.extend_from_slice(&buf[..n]);
                if conn.received.len() > crate::http1::MAX_HEAD + crate::http1::MAX_BODY {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Writes what is pending; true when the connection should close: its answer is fully sent, or
/// the client can no longer take it.
fn flush(conn: &mut Connection) -> bool {
    while !conn.unsent.is_empty() {
        match conn.stream.write(&conn.unsent) {
            Ok(n) => {
                conn.unsent.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    conn.stage == Stage::Writing
}
