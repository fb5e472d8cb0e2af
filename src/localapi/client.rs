//! The CLI's end of the local API: one blocking request per connection.

use crate::http1::parse_response;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why a request to the daemon failed.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// Nobody listens at the socket: no such file, or nothing bound to it.
    NotRunning(String),
    /// The socket is there but this user may not use it.
    PermissionDenied(String),
    /// Connecting failed for another reason.
    Connect(String, io::Error),
    /// The daemon answered with an error.
    Daemon(u16, String),
    /// The answer made no sense.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning(path) => {
                write!(f, "weftd is not running (nothing listens on {path})")
            }
            ClientError::PermissionDenied(path) => {
                write!(f, "permission denied: {path} (run as root?)")
            }
            ClientError::Connect(path, e) => write!(f, "cannot connect to weftd at {path}: {e}"),
            ClientError::Daemon(status, message) => write!(f, "weftd: {message} (HTTP {status})"),
            ClientError::Protocol(why) => write!(f, "unexpected answer from weftd: {why}"),
        }
    }
}

impl ClientError {
    /// Names the cause of a failed connect: only a missing socket or one nobody listens on
    /// means the daemon is not running.
    fn of_connect(socket: &Path, e: io::Error) -> ClientError {
        let path = socket.display().to_string();
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ECONNREFUSED) => ClientError::NotRunning(path),
            Some(libc::EACCES | libc::EPERM) => ClientError::PermissionDenied(path),
            _ => ClientError::Connect(path, e),
        }
    }
}

/// Sends `method path` with no body and returns the 200 answer's body.
pub(crate) fn request(
    socket: &Path,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    request_with_body(socket, method, path, b"", timeout)
}

/// Sends `method path` with a (JSON) body and returns the 200 answer's body.
pub(crate) fn request_with_body(
    socket: &Path,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|e| ClientError::of_connect(socket, e))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: local-tailscaled.sock\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let sent = stream.write_all(&[head.as_bytes(), body].concat());
    let (answer, read_error) = read_answer(&mut stream);
    let (status, body) = match (parse_response(&answer), sent, read_error) {
        (Ok(parsed), _, _) => parsed,
        (Err(_), Err(e), _) => {
            return Err(ClientError::Protocol(format!("sending the request: {e}")))
        }
        (Err(_), Ok(()), Some(e)) => {
            return Err(ClientError::Protocol(format!("reading the answer: {e}")))
        }
        (Err(why), Ok(()), None) => return Err(ClientError::Protocol(why)),
    };
    if status != 200 {
        let message = serde_json::from_slice::<super::ErrorBody>(body)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
        return Err(ClientError::Daemon(status, message));
    }
    Ok(body.to_vec())
}

/// Reads until the daemon closes. An error (a reset after a refusal, a timeout) still leaves
/// what arrived before it to look at: a daemon answers before it hangs up.
fn read_answer(stream: &mut UnixStream) -> (Vec<u8>, Option<io::Error>) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (answer, None),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (answer, Some(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_error(errno: i32) -> String {
        let e = io::Error::from_raw_os_error(errno);
        ClientError::of_connect(Path::new("/run/weft/weftd.sock"), e).to_string()
    }

    #[test]
    fn connect_errors_name_their_cause() {
        for errno in [libc::ENOENT, libc::ECONNREFUSED] {
            assert_eq!(
                connect_error(errno),
                "weftd is not running (nothing listens on /run/weft/weftd.sock)"
            );
        }
        for errno in [libc::EACCES, libc::EPERM] {
            assert_eq!(
                connect_error(errno),
                "permission denied: /run/weft/weftd.sock (run as root?)"
            );
        }
        let other = connect_error(libc::ENOTSOCK);
        assert!(other.starts_with("cannot connect to weftd at /run/weft/weftd.sock: "), "{other}");
    }
}
