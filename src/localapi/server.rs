//! The daemon's end of the local API socket: accepts connections, reads one request from each,
//! writes one response. Non-blocking, driven by the event loop's readiness events; how long
//! each connection may take and who gives way when too many are open is `table`'s policy.

use super::socket_path::{self, FileId, ListenError};
use super::table::{Admission, Stage, Table};
use crate::http1::{parse_request, response, Parse, Refusal, Request, MAX_REQUEST};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Connection {
    stream: UnixStream,
    received: Vec<u8>,
    unsent: Unsent,
}

/// An answer this large (a `weft status` of thousands of peers, and the answer's parts built
/// before it) leaves its pages with the allocator when it is gone; they are handed back.
const LARGE_ANSWER: usize = 1 << 20;

/// An answer on its way out: its bytes and how many of them the socket has taken. A
/// 10,000-peer status answer is megabytes and leaves in many writes; moving the rest to the
/// front after each one would copy it over and over.
#[derive(Default)]
struct Unsent {
    bytes: Vec<u8>,
    sent: usize,
}

impl Unsent {
    fn new(bytes: Vec<u8>) -> Unsent {
        Unsent { bytes, sent: 0 }
    }

    fn rest(&self) -> &[u8] {
        self.bytes.get(self.sent..).unwrap_or_default()
    }

    fn taken(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.bytes.len());
    }
}

pub(crate) struct Server {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file we bound, removed on exit only if still the same file.
    bound: Option<FileId>,
    connections: Table<Connection>,
}

impl Server {
    /// Binds the socket at `path` (mode 0600 in a 0700 directory, so only root may talk to the
    /// daemon), refusing to take over anything but a stale socket.
    pub(crate) fn bind(path: &Path, first_token: usize) -> Result<Server, ListenError> {
        socket_path::prepare(path)?;
        let io_error = |what| move |e| ListenError::Io(what, path.to_path_buf(), e);
        let listener = UnixListener::bind(path).map_err(io_error("binding"))?;
        let bound = FileId::of(path).ok();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("setting the mode of"))?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            bound,
            connections: Table::new(first_token + 1),
        })
    }

    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    pub(crate) fn owns(&self, token: Token) -> bool {
        self.connections.contains(token)
    }

    /// Accepts every pending connection.
    pub(crate) fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, registry, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("local API: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: UnixStream, registry: &Registry, now: Instant) {
        let conn = Connection { stream, received: Vec::new(), unsent: Unsent::default() };
        match self.connections.admit(conn, now) {
            Admission::Admitted { token, evicted } => {
                if let Some((_, mut stalled)) = evicted {
                    log::debug!("local API: table full, dropping the oldest unfinished request");
                    let _ = registry.deregister(&mut stalled.stream);
                }
                let Some((conn, _)) = self.connections.get_mut(token) else { return };
                let interest = Interest::READABLE | Interest::WRITABLE;
                if registry.register(&mut conn.stream, token, interest).is_err() {
                    self.connections.remove(token);
                }
            }
            Admission::Full(mut conn) => {
                log::warn!("local API: every connection is busy, refusing one");
                // A fresh socket's buffer takes this small answer whole; best effort.
                let _ = conn.stream.write(&response(503, &error_body("weftd is busy, try again")));
            }
        }
    }

    /// Reads what the client sent and flushes what we owe it. Returns a request once one is
    /// complete; a request we won't serve is answered here with its refusal.
    pub(crate) fn handle_event(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
    ) -> Option<Request> {
        let (conn, stage) = self.connections.get_mut(token)?;
        let mut input = read_available(conn, stage);
        let mut request = None;
        let mut next_stage = stage;
        if stage == Stage::Reading && input != Input::Broken {
            match parse_request(&conn.received) {
                // Hung up before sending a whole request: nobody to answer.
                Parse::Incomplete if input == Input::Ended => input = Input::Broken,
                Parse::Incomplete => {}
                Parse::Complete(r) => {
                    next_stage = Stage::Answering;
                    request = Some(r);
                }
                Parse::Invalid(Refusal { status, reason }) => {
                    conn.unsent = Unsent::new(response(status, &error_body(&reason)));
                    conn.received = Vec::new();
                    next_stage = Stage::Refusing;
                    // What is left of the request is still unread; with edge-triggered
                    // readiness nobody would tell us about it again.
                    input = read_available(conn, next_stage);
                }
            }
        }
        if input == Input::Broken || finished(conn, next_stage, input) {
            self.close(token, registry);
            return None;
        } else if next_stage != stage {
            self.connections.advance(token, next_stage, now);
        }
        request
    }

    /// Sends the answer to the request read from `token` and closes once it is written.
    pub(crate) fn respond(
        &mut self,
        token: Token,
        status: u16,
        body: &[u8],
        registry: &Registry,
        now: Instant,
    ) {
        let Some((conn, _)) = self.connections.get_mut(token) else {
            return;
        };
        conn.unsent = Unsent::new(response(status, body));
        if finished(conn, Stage::Writing, Input::Open) {
            self.close(token, registry);
        } else {
            self.connections.advance(token, Stage::Writing, now);
        }
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.connections.next_deadline()
    }

    /// Drops connections past their deadline; returns their tokens so pending work is
    /// forgotten too.
    pub(crate) fn expire(&mut self, now: Instant, registry: &Registry) -> Vec<Token> {
        let late = self.connections.expire(now);
        late.into_iter()
            .map(|(token, mut conn)| {
                let _ = registry.deregister(&mut conn.stream);
                token
            })
            .collect()
    }

    /// Gives a connection more time, for requests that wait on the network (pings).
    pub(crate) fn extend_deadline(&mut self, token: Token, by: Duration) {
        self.connections.extend(token, by);
    }

    fn close(&mut self, token: Token, registry: &Registry) {
        if let Some(mut conn) = self.connections.remove(token) {
            let _ = registry.deregister(&mut conn.stream);
            let large = conn.unsent.bytes.len() >= LARGE_ANSWER;
            drop(conn);
            if large {
                crate::platform::memory::release_free_heap();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.bound.is_some() && FileId::of(&self.path).ok() == self.bound {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The JSON body of an error answer.
pub(crate) fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&super::ErrorBody { error: message.to_string() }).unwrap_or_default()
}

/// What reading found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Nothing more for now.
    Open,
    /// The client has finished sending (it may still read).
    Ended,
    /// The connection is unusable.
    Broken,
}

/// Reads until the socket would block. Keeps at most one request's worth (`parse_request`
/// decides within that); in any later stage what arrives is thrown away, so a refused client
/// can finish sending and then read its refusal.
fn read_available(conn: &mut Connection, stage: Stage) -> Input {
    let mut buf = [0u8; 4096];
    loop {
        if stage == Stage::Reading && conn.received.len() >= MAX_REQUEST {
            return Input::Open;
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => return Input::Ended,
            Ok(n) if stage == Stage::Reading => {
                let room = MAX_REQUEST - conn.received.len();
                conn.received.extend_from_slice(&buf[..n.min(room)]);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Input::Broken,
        }
    }
}

/// Writes what is pending; true when the connection should close: its answer is fully sent,
/// its refusal is sent and the client has stopped sending, or the client can no longer take
/// it. A sent refusal closes our sending side, so the client sees the end of it.
fn finished(conn: &mut Connection, stage: Stage, input: Input) -> bool {
    while !conn.unsent.rest().is_empty() {
        match conn.stream.write(conn.unsent.rest()) {
            Ok(n) => conn.unsent.taken(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    match stage {
        Stage::Writing => true,
        Stage::Refusing => {
            let _ = conn.stream.shutdown(Shutdown::Write);
            input == Input::Ended
        }
        Stage::Reading | Stage::Answering => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::socket_path::tests::Scratch;
    use super::super::table::CAPACITY;
    use super::*;
    use crate::http1::{MAX_BODY, MAX_HEAD};
    use mio::{Events, Poll};
    use std::os::unix::net::UnixStream as StdStream;

    const LISTENER: Token = Token(100);

    /// A server on a scratch socket, driven by hand; every request is answered `{}`.
    struct Harness {
        _scratch: Scratch,
        path: PathBuf,
        poll: Poll,
        server: Server,
    }

    impl Harness {
        fn new(name: &str) -> Harness {
            let scratch = Scratch::new(name);
            let path = scratch.0.join("weftd.sock");
            let poll = Poll::new().unwrap();
            let mut server = Server::bind(&path, LISTENER.0).unwrap();
            server.register(poll.registry(), LISTENER).unwrap();
            Harness { _scratch: scratch, path, poll, server }
        }

        /// Serves until `client` (run on its own thread) returns.
        fn serve<T: Send + 'static>(
            &mut self,
            client: impl FnOnce(PathBuf) -> T + Send + 'static,
        ) -> T {
            let path = self.path.clone();
            let client = std::thread::spawn(move || client(path));
            let mut events = Events::with_capacity(64);
            while !client.is_finished() {
                self.poll.poll(&mut events, Some(Duration::from_millis(20))).unwrap();
                for event in events.iter() {
                    self.handle(event.token());
                }
            }
            client.join().unwrap()
        }

        fn handle(&mut self, token: Token) {
            let registry = self.poll.registry();
            if token == LISTENER {
                self.server.accept(registry, Instant::now());
            } else if let Some(request) = self.server.handle_event(token, registry, Instant::now())
            {
                let body = match request.path.as_str() {
                    "/big" => big_answer(),
                    _ => b"{}".to_vec(),
                };
                self.server.respond(token, 200, &body, registry, Instant::now());
            }
        }
    }

    /// An answer the size of a 10,000-peer status, too big for one write.
    fn big_answer() -> Vec<u8> {
        (0..6_000_000u32).map(|i| b'a' + (i % 26) as u8).collect()
    }

    #[test]
    fn a_big_answer_arrives_whole() {
        let mut harness = Harness::new("big");
        let answer = harness.serve(|path| {
            super::super::client::request(&path, "GET", "/big", Duration::from_secs(20))
        });
        assert!(answer.unwrap() == big_answer());
    }

    fn raw_exchange(path: &Path, request: &[u8]) -> String {
        let mut stream = StdStream::connect(path).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[test]
    fn oversized_requests_get_their_status_instead_of_a_reset() {
        let mut harness = Harness::new("oversized");
        let mut big_body =
            format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1).into_bytes();
        big_body.resize(big_body.len() + MAX_BODY + 1, b'{');
        let answer = harness.serve(move |path| raw_exchange(&path, &big_body));
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        let big_head = format!("GET /x HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(4 * MAX_HEAD));
        let answer = harness.serve(move |path| raw_exchange(&path, big_head.as_bytes()));
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    }

    #[test]
    fn a_client_that_half_closes_after_its_request_is_answered() {
        let mut harness = Harness::new("halfclose");
        let answer = harness.serve(|path| {
            let mut stream = StdStream::connect(path).unwrap();
            stream.write_all(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        });
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("{}"), "{answer}");
    }

    #[test]
    fn half_open_connections_do_not_lock_out_a_new_client() {
        let mut harness = Harness::new("flood");
        let path = harness.path.clone();
        let stalled: Vec<StdStream> =
            (0..CAPACITY + 8).map(|_| StdStream::connect(&path).unwrap()).collect();
        // Let the server accept the whole flood before the real client comes.
        harness.serve(|_| std::thread::sleep(Duration::from_millis(200)));
        let answer = harness.serve(|path| {
            super::super::client::request(&path, "GET", "/x", Duration::from_secs(5))
        });
        assert_eq!(answer.unwrap(), b"{}");
        drop(stalled);
    }

    #[test]
    fn the_socket_is_private_and_removed_on_exit_only_if_still_ours() {
        let harness = Harness::new("cleanup");
        let mode = std::fs::metadata(&harness.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(harness.server);
        assert!(std::fs::symlink_metadata(&harness.path).is_err());

        let replaced = Harness::new("replaced");
        std::fs::remove_file(&replaced.path).unwrap();
        std::fs::write(&replaced.path, b"not ours").unwrap();
        drop(replaced.server);
        assert_eq!(std::fs::read(&replaced.path).unwrap(), b"not ours");
    }
}
