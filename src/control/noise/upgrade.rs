//! The HTTP/1.1 exchange that switches a TCP (or TLS) connection to the Noise stream:
//! `POST /ts2021` carrying the initiation in a header, answered by `101 Switching Protocols`.
//! Names and values from tailscale `control/controlhttp` (`controlhttpcommon`, `client.go`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::fmt;

pub(crate) const UPGRADE_PATH: &str = "/ts2021";
const UPGRADE_PROTOCOL: &str = "tailscale-control-protocol";
const HANDSHAKE_HEADER: &str = "X-Tailscale-Handshake";
/// The server's 101 head is a few short lines; anything this long is not a ts2021 server.
const MAX_RESPONSE_HEAD_LEN: usize = 16 * 1024;
const SWITCHING_PROTOCOLS: u16 = 101;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpgradeError {
    /// The host would break the request line structure (control characters, spaces, empty).
    InvalidHost,
    /// No blank line within the size limit.
    HeadTooLarge,
    /// Not an HTTP/1.x status line.
    MalformedStatusLine,
    /// The server answered, but did not switch protocols (status and reason phrase).
    NotSwitched(u16, String),
    /// It switched, but to something else (or named no protocol).
    WrongProtocol(String),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::InvalidHost => f.write_str("control host is not a valid HTTP Host value"),
            UpgradeError::HeadTooLarge => {
                write!(f, "upgrade response head exceeds {MAX_RESPONSE_HEAD_LEN} bytes")
            }
            UpgradeError::MalformedStatusLine => {
                f.write_str("upgrade response has no HTTP/1.x status line")
            }
            UpgradeError::NotSwitched(code, reason) => {
                write!(f, "control server answered {code} {reason}")
            }
            UpgradeError::WrongProtocol(name) => {
                write!(f, "server switched to unexpected protocol {name:?}")
            }
        }
    }
}

impl std::error::Error for UpgradeError {}

/// The upgrade request for `host` (with `:port` when not the default), carrying the handshake
/// `initiation` as standard padded base64. Go sends `Content-Length: 0` for the empty POST.
pub(crate) fn upgrade_request(host: &str, initiation: &[u8]) -> Result<Vec<u8>, UpgradeError> {
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(UpgradeError::InvalidHost);
    }
    let handshake = BASE64.encode(initiation);
    let request = format!(
        "POST {UPGRADE_PATH} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: {UPGRADE_PROTOCOL}\r\n\
         Connection: upgrade\r\n\
         {HANDSHAKE_HEADER}: {handshake}\r\n\
         Content-Length: 0\r\n\
         \r\n"
    );
    Ok(request.into_bytes())
}

/// Collects the server's response head from arbitrary reads and validates it.
#[derive(Debug, Default)]
pub(crate) struct UpgradeResponseReader {
    received: Vec<u8>,
}

impl UpgradeResponseReader {
    pub(crate) fn new() -> UpgradeResponseReader {
        UpgradeResponseReader::default()
    }

    /// Adds received bytes. `Ok(None)`: the head is still incomplete. `Ok(Some(rest))`: the
    /// server switched to ts2021; `rest` are the bytes after the head, the start of the
    /// Noise stream (normally the handshake response).
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<Option<Vec<u8>>, UpgradeError> {
        let search_from = self.received.len().saturating_sub(3);
        self.received.extend_from_slice(input);
        let Some(head_len) = find_head_end(&self.received, search_from) else {
            return if self.received.len() > MAX_RESPONSE_HEAD_LEN {
                Err(UpgradeError::HeadTooLarge)
            } else {
                Ok(None)
            };
        };
        if head_len > MAX_RESPONSE_HEAD_LEN {
            return Err(UpgradeError::HeadTooLarge);
        }
        check_head(&self.received[..head_len])?;
        let rest = self.received.split_off(head_len);
        self.received.clear();
        Ok(Some(rest))
    }
}

/// The length of the head including its terminating blank line. Like Go's reader, accepts
/// bare `\n` line ends as well as `\r\n`.
fn find_head_end(bytes: &[u8], search_from: usize) -> Option<usize> {
    (search_from..bytes.len()).find_map(|i| match &bytes[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

fn check_head(head: &[u8]) -> Result<(), UpgradeError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let (status, reason) = parse_status_line(lines.next().unwrap_or_default())?;
    if status != SWITCHING_PROTOCOLS {
        return Err(UpgradeError::NotSwitched(status, reason.to_string()));
    }
    let upgrade = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("upgrade"))
        .map(|(_, value)| value.trim())
        .unwrap_or_default();
    if upgrade != UPGRADE_PROTOCOL {
        return Err(UpgradeError::WrongProtocol(upgrade.to_string()));
    }
    Ok(())
}

/// `HTTP/1.1 101 Switching Protocols` → (101, "Switching Protocols").
fn parse_status_line(line: &str) -> Result<(u16, &str), UpgradeError> {
    let rest = line.strip_prefix("HTTP/1.").ok_or(UpgradeError::MalformedStatusLine)?;
    let (_minor, rest) = rest.split_once(' ').ok_or(UpgradeError::MalformedStatusLine)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UpgradeError::MalformedStatusLine);
    }
    let code = code.parse().map_err(|_| UpgradeError::MalformedStatusLine)?;
    Ok((code, reason.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    const SWITCHED: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: tailscale-control-protocol\r\n\
        Connection: upgrade\r\n\r\n";

    #[test]
    fn request_carries_the_initiation_in_the_handshake_header() {
        let initiation = [0xab; 101];
        let request =
            String::from_utf8(upgrade_request("ctl.example:8080", &initiation).unwrap()).unwrap();
        let encoded = BASE64.encode(initiation);
        assert_eq!(encoded.len(), 136);
        assert_eq!(
            request,
            format!(
                "POST /ts2021 HTTP/1.1\r\nHost: ctl.example:8080\r\nUpgrade: tailscale-control-protocol\r\n\
                 Connection: upgrade\r\nX-Tailscale-Handshake: {encoded}\r\nContent-Length: 0\r\n\r\n"
            )
        );
    }

    #[test]
    fn hosts_that_would_inject_headers_are_refused() {
        for host in ["", "a b", "evil\r\nX-Injected: 1", "tab\there"] {
            assert_eq!(upgrade_request(host, &[]), Err(UpgradeError::InvalidHost), "{host:?}");
        }
    }

    #[test]
    fn switched_response_returns_the_bytes_after_the_head() {
        let stream = [SWITCHED, &[2, 0, 48, 9, 9]].concat();
        assert_eq!(UpgradeResponseReader::new().feed(&stream), Ok(Some(vec![2, 0, 48, 9, 9])));
    }

    #[test]
    fn byte_at_a_time_finds_the_head_end() {
        let stream = [SWITCHED, b"noise"].concat();
        let mut reader = UpgradeResponseReader::new();
        for byte in &stream[..SWITCHED.len() - 1] {
            assert_eq!(reader.feed(std::slice::from_ref(byte)), Ok(None));
        }
        assert_eq!(reader.feed(&stream[SWITCHED.len() - 1..]), Ok(Some(b"noise".to_vec())));
    }

    #[test]
    fn header_names_are_case_insensitive_and_bare_newlines_accepted() {
        let head =
            b"HTTP/1.1 101 Switching Protocols\nupgrade:   tailscale-control-protocol  \n\nX";
        assert_eq!(UpgradeResponseReader::new().feed(head), Ok(Some(b"X".to_vec())));
    }

    #[test]
    fn other_statuses_and_protocols_are_refused() {
        let feed = |head: &[u8]| UpgradeResponseReader::new().feed(head);
        assert_eq!(
            feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
            Err(UpgradeError::NotSwitched(404, "Not Found".into()))
        );
        assert_eq!(
            feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
            Err(UpgradeError::WrongProtocol("websocket".into()))
        );
        assert_eq!(
            feed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Err(UpgradeError::WrongProtocol(String::new()))
        );
        assert_eq!(feed(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(UpgradeError::MalformedStatusLine));
        assert_eq!(feed(b"HTTP/1.1 1O1 Nope\r\n\r\n"), Err(UpgradeError::MalformedStatusLine));
    }

    #[test]
    fn endless_head_is_refused_at_the_limit() {
        let mut reader = UpgradeResponseReader::new();
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut result = Ok(None);
        for _ in 0..=MAX_RESPONSE_HEAD_LEN / line.len() {
            result = reader.feed(line);
        }
        assert_eq!(result, Err(UpgradeError::HeadTooLarge));
    }

    #[test]
    fn shaken_heads_never_panic() {
        let stream = [SWITCHED, &[2, 0, 48, 1, 2, 3]].concat();
        shake(0x6874_7470, 2500, &stream, |broken| {
            let mut reader = UpgradeResponseReader::new();
            let (first, second) = broken.split_at(broken.len() / 2);
            if let Ok(None) = reader.feed(first) {
                let _ = reader.feed(second);
            }
        });
    }
}
