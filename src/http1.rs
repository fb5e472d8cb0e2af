//! The little HTTP/1.1 weft speaks: the local API over its Unix socket (the transport
//! tailscale's CLI uses too) and the control client's `/key` fetch. One request per
//! connection, `Connection: close`, bounded sizes.

/// Most a request head may take; longer is refused rather than buffered.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most a request body may take.
pub(crate) const MAX_BODY: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// Decoded `key=value` pairs of the query string, in order.
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn query_value(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Outcome of looking at the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parse {
    /// Need more bytes.
    Incomplete,
    Complete(Request),
    /// The client sent something we won't serve; answered with this status and reason.
    Invalid(Refusal),
}

/// Why a request is refused, as the HTTP status the client gets back before the connection
/// closes: a client that overran a limit learns which one instead of seeing a reset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    fn malformed(reason: String) -> Parse {
        Parse::Invalid(Refusal { status: 400, reason })
    }

    fn head_too_large() -> Parse {
        Parse::Invalid(Refusal {
            status: 431,
            reason: format!("request head larger than {MAX_HEAD} bytes"),
        })
    }

    fn body_too_large() -> Parse {
        Parse::Invalid(Refusal {
            status: 413,
            reason: format!("request body larger than {MAX_BODY} bytes"),
        })
    }
}

/// The most a complete, acceptable request can take; a reader may stop buffering here, since
/// `parse_request` has decided by then.
pub(crate) const MAX_REQUEST: usize = MAX_HEAD + 4 + MAX_BODY;

/// Parses a request from the start of `input`.
pub(crate) fn parse_request(input: &[u8]) -> Parse {
    let Some(head_end) = find(input, b"\r\n\r\n") else {
        return if input.len() > MAX_HEAD + 3 {
            Refusal::head_too_large()
        } else {
            Parse::Incomplete
        };
    };
    if head_end > MAX_HEAD {
        return Refusal::head_too_large();
    }
    let Ok(head) = std::str::from_utf8(&input[..head_end]) else {
        return Refusal::malformed("request head is not UTF-8".into());
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Refusal::malformed(format!("malformed request line {request_line:?}"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Refusal::malformed(format!("malformed request line {request_line:?}"));
    }
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Refusal::malformed(format!("malformed header line {line:?}"));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Refusal::malformed(format!("bad Content-Length {value:?}"));
            }
            match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => content_length = n,
                _ => return Refusal::body_too_large(),
            }
        }
    }
    let body_start = head_end + 4;
    if input.len() < body_start + content_length {
        return Parse::Incomplete;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Parse::Complete(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: parse_query(query),
        body: input[body_start..body_start + content_length].to_vec(),
    })
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+`; malformed escapes are kept literally.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query value so it survives `percent_decode`.
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A complete response with a JSON (or text) body.
pub(crate) fn response(status: u16, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Splits a complete response (read until the server closed) into status and body.
pub(crate) fn parse_response(input: &[u8]) -> Result<(u16, &[u8]), String> {
    let head_end = find(input, b"\r\n\r\n").ok_or("truncated HTTP response")?;
    let head = std::str::from_utf8(&input[..head_end]).map_err(|_| "response head is not UTF-8")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed status line in {head:?}"))?;
    Ok((status, &input[head_end + 4..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    const PING: &[u8] = b"POST /localapi/v0/ping?ip=100.64.0.2&type=ICMP HTTP/1.1\r\nHost: local-tailscaled.sock\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn parses_a_request_in_any_split() {
        for cut in 0..PING.len() {
            assert_eq!(parse_request(&PING[..cut]), Parse::Incomplete, "cut at {cut}");
        }
        let Parse::Complete(r) = parse_request(PING) else { panic!() };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/localapi/v0/ping"));
        assert_eq!(r.query_value("ip"), Some("100.64.0.2"));
        assert_eq!(r.body, b"{}");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET noslash HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(bad), Parse::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(parse_request(&huge), Parse::Invalid(_)));
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}"), 400);
    }

    fn status_of(input: &[u8]) -> u16 {
        match parse_request(input) {
            Parse::Invalid(refusal) => refusal.status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_requests_are_answered_413_or_431() {
        let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(status_of(long_header.as_bytes()), 431);
        // Still without its end, the head is refused as soon as it outgrows the limit.
        assert_eq!(status_of(&long_header.as_bytes()[..MAX_HEAD + 4]), 431);
        let at_limit = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD - 21));
        assert_eq!(at_limit.len(), MAX_HEAD);
        assert_eq!(parse_request(at_limit.as_bytes()), Parse::Incomplete);
        let big_body = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert_eq!(status_of(big_body.as_bytes()), 413);
        assert!(response(413, b"{}").starts_with(b"HTTP/1.1 413 Content Too Large\r\n"));
        assert!(
            response(431, b"{}").starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        );
    }

    #[test]
    fn query_escapes_round_trip() {
        for s in ["fd7a:115c:a1e0::1", "a b&c=d", "ünï", "%zz"] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
        }
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn responses_round_trip() {
        let r = response(404, b"{\"error\":\"x\"}");
        assert_eq!(parse_response(&r).unwrap(), (404, &b"{\"error\":\"x\"}"[..]));
        assert!(parse_response(b"HTTP/1.1").is_err());
    }

    #[test]
    fn random_requests_never_panic() {
        shake(3, 5000, PING, |b| {
            let _ = parse_request(b);
            let _ = parse_response(b);
        });
    }
}
