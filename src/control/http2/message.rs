//! HTTP semantics on HTTP/2 fields (RFC 9113 §8): the pseudo-headers of a request, the
//! checks that keep caller input from breaking the framing, and the status of a response.

use super::error::{ErrorCode, H2Error};
use super::hpack::HeaderField;

/// Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2); `te` is allowed only as
/// "trailers", which this client never needs, so it is refused too.
const CONNECTION_SPECIFIC: [&str; 6] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"];

/// The request's header list, pseudo-headers first as RFC 9113 §8.3 requires. `:scheme` is
/// "http": the transport is Noise, not TLS, and servers do not check it.
pub(super) fn request_fields<'a>(
    method: &'a str,
    path: &'a str,
    default_authority: Option<&'a str>,
    headers: &[(&'a str, &'a str)],
) -> Result<Vec<(&'a str, &'a str)>, H2Error> {
    if !is_token(method) {
        return Err(H2Error::InvalidRequest("method is not a token"));
    }
    if !path.starts_with('/') || !is_clean_value(path) || path.contains(' ') {
        return Err(H2Error::InvalidRequest("path must be an absolute path"));
    }
    let mut authority = default_authority;
    let mut regular = Vec::with_capacity(headers.len());
    for &(name, value) in headers {
        if !is_clean_value(value) {
            return Err(H2Error::InvalidRequest("header value with CR, LF or NUL"));
        }
        match name {
            ":authority" => authority = Some(value),
            _ if CONNECTION_SPECIFIC.contains(&name) || name == "host" => {
                return Err(H2Error::InvalidRequest("connection-specific or host header"))
            }
            _ if !is_token(name) || name.bytes().any(|byte| byte.is_ascii_uppercase()) => {
                return Err(H2Error::InvalidRequest("header name must be a lower-case token"))
            }
            _ => regular.push((name, value)),
        }
    }
    let mut fields = vec![(":method", method), (":scheme", "http")];
    if let Some(authority) = authority {
        fields.push((":authority", authority));
    }
    fields.push((":path", path));
    fields.extend(regular);
    Ok(fields)
}

/// RFC 9110 §5.6.2 token characters.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// Field values must not contain CR, LF or NUL (RFC 9113 §8.2.1).
fn is_clean_value(text: &str) -> bool {
    !text.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | 0))
}

/// Splits a response's `:status` from its regular fields. A missing or malformed status, or
/// any other pseudo-header, makes the response malformed (RFC 9113 §8.3.2).
pub(super) fn split_status(fields: Vec<HeaderField>) -> Result<(u16, Vec<HeaderField>), H2Error> {
    let malformed = || H2Error::protocol(ErrorCode::PROTOCOL_ERROR, "malformed response headers");
    let mut status = None;
    let mut regular = Vec::with_capacity(fields.len());
    for field in fields {
        match field.name.first() {
            Some(b':') if field.name == b":status" && status.is_none() && regular.is_empty() => {
                status = Some(parse_status(&field.value).ok_or_else(malformed)?)
            }
            Some(b':') => return Err(malformed()),
            _ => regular.push(field),
        }
    }
    Ok((status.ok_or_else(malformed)?, regular))
}

fn parse_status(value: &[u8]) -> Option<u16> {
    let [a, b, c] = value else { return None };
    let digits = [a, b, c];
    if !digits.iter().all(|digit| digit.is_ascii_digit()) || *a == b'0' {
        return None;
    }
    Some(digits.iter().fold(0, |status, digit| status * 10 + u16::from(**digit - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_headers_come_first_and_authority_can_be_overridden() {
        let fields = request_fields(
            "POST",
            "/machine/map",
            Some("default"),
            &[("ts-lb", "x"), (":authority", "own")],
        );
        assert_eq!(
            fields.unwrap(),
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "own"),
                (":path", "/machine/map"),
                ("ts-lb", "x")
            ]
        );
    }

    #[test]
    fn unsafe_request_input_is_refused() {
        for headers in [
            &[("Upper", "x")][..],
            &[("x", "a\r\nb")],
            &[("connection", "close")],
            &[(":path", "/")],
        ] {
            assert!(request_fields("GET", "/", None, headers).is_err(), "{headers:?}");
        }
        assert!(request_fields("GET", "no-slash", None, &[]).is_err());
        assert!(request_fields("G T", "/", None, &[]).is_err());
    }

    #[test]
    fn status_is_split_from_the_fields() {
        let fields = vec![HeaderField::new(b":status", b"204"), HeaderField::new(b"server", b"x")];
        assert_eq!(split_status(fields), Ok((204, vec![HeaderField::new(b"server", b"x")])));
        for bad in [&b"20"[..], b"2000", b"abc", b"099"] {
            assert!(split_status(vec![HeaderField::new(b":status", bad)]).is_err());
        }
        assert!(split_status(vec![HeaderField::new(b"server", b"x")]).is_err());
    }
}
