//! The CLI's end of the local API: one blocking request per connection.

use crate::http1::parse_response;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why a request to the daemon failed.
#[derive(Debug)]
pub enum ClientError {
    /// The daemon isn't running (or the socket is somewhere else).
    NotRunning(String),
    /// The daemon answered with an error.
    Daemon(u16, String),
    /// The answer made no sense.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning(why) => write!(f, "{why}"),
            ClientError::Daemon(status, message) => write!(f, "weftd: {message} (HTTP {status})"),
            ClientError::Protocol(why) => write!(f, "unexpected answer from weftd: {why}"),
        }
    }
}

/// Sends `method path` with no body and returns the 200 answer's body.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    request_with_body(socket, method, path, b"", timeout)
}

/// Sends `method path` with a (JSON) body and returns the 200 answer's body.
pub fn request_with_body(
    socket: &Path,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        ClientError::NotRunning(format!(
            "weftd is not running, or not listening on {} ({e})",
            socket.display()
        ))
    })?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: local-tailscaled.sock\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(&[head.as_bytes(), body].concat())
        .map_err(|e| ClientError::Protocol(format!("sending the request: {e}")))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| ClientError::Protocol(format!("reading the answer: {e}")))?;
    let (status, body) = parse_response(&answer).map_err(ClientError::Protocol)?;
    if status != 200 {
        let message = serde_json::from_slice::<super::ErrorBody>(body)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
        return Err(ClientError::Daemon(status, message));
    }
    Ok(body.to_vec())
}
