//! The control server's Noise key from `GET /key?v=<capver>`: JSON
//! `{"legacyPublicKey":"mkey:…","publicKey":"mkey:<64 hex>"}` (tailcfg.OverTLSPublicKeyResponse).

use crate::keys::PublicKey;
use serde::Deserialize;
use std::fmt;

/// `/key` bodies are tiny; the official client reads at most this much.
const MAX_BODY_LEN: usize = 64 * 1024;
const MACHINE_KEY_PREFIX: &str = "mkey:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerKeyError {
    BodyTooLarge(usize),
    /// Not the JSON object, or a key that is not `mkey:` + 64 hex digits.
    Malformed(String),
    /// Only a legacy (pre-Noise) key, or a zero Noise key: this server cannot speak ts2021.
    ServerTooOld,
}

impl fmt::Display for ServerKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerKeyError::BodyTooLarge(n) => write!(f, "/key response of {n} bytes is too large"),
            ServerKeyError::Malformed(why) => write!(f, "malformed /key response: {why}"),
            ServerKeyError::ServerTooOld => {
                f.write_str("control server has no Noise key (too old)")
            }
        }
    }
}

impl std::error::Error for ServerKeyError {}

/// The path and query for the key request; the version is the capability version claimed
/// in the handshake as well.
pub(crate) fn key_request_path(protocol_version: u16) -> String {
    format!("/key?v={protocol_version}")
}

#[derive(Deserialize)]
struct KeyResponse {
    /// The legacy NaCl key is ignored: weft only speaks ts2021.
    #[serde(rename = "publicKey", default)]
    public_key: Option<String>,
}

/// The server's Noise static key from a `/key` response body.
pub(crate) fn parse_server_key_response(body: &[u8]) -> Result<PublicKey, ServerKeyError> {
    if body.len() > MAX_BODY_LEN {
        return Err(ServerKeyError::BodyTooLarge(body.len()));
    }
    let response: KeyResponse = match serde_json::from_slice(body) {
        Ok(response) => response,
        // Very old servers answered with the bare hex of their legacy key.
        Err(_) if is_bare_hex_key(body) => return Err(ServerKeyError::ServerTooOld),
        Err(error) => return Err(ServerKeyError::Malformed(error.to_string())),
    };
    let text = response.public_key.ok_or(ServerKeyError::ServerTooOld)?;
    let key = parse_machine_key(&text)?;
    if key.0 == [0; 32] {
        return Err(ServerKeyError::ServerTooOld);
    }
    Ok(key)
}

fn is_bare_hex_key(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii();
    trimmed.len() == 64 && trimmed.iter().all(u8::is_ascii_hexdigit)
}

/// `mkey:` followed by 64 hex digits of either case.
fn parse_machine_key(text: &str) -> Result<PublicKey, ServerKeyError> {
    PublicKey::from_prefixed_hex(MACHINE_KEY_PREFIX, text)
        .map_err(|_| ServerKeyError::Malformed(format!("not an mkey: {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    const HEX: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn body(public_key: &str) -> String {
        format!(r#"{{"legacyPublicKey":"mkey:{ZERO}","publicKey":"{public_key}"}}"#)
    }

    #[test]
    fn parses_the_noise_key() {
        let key = parse_server_key_response(body(&format!("mkey:{HEX}")).as_bytes()).unwrap();
        assert_eq!(crate::keys::hex(&key.0), HEX);
        let upper =
            parse_server_key_response(body(&format!("mkey:{}", HEX.to_uppercase())).as_bytes());
        assert_eq!(upper, Ok(key));
    }

    #[test]
    fn request_path_carries_the_version() {
        assert_eq!(key_request_path(138), "/key?v=138");
    }

    #[test]
    fn servers_without_a_noise_key_are_too_old() {
        let too_old = Err(ServerKeyError::ServerTooOld);
        assert_eq!(parse_server_key_response(body(&format!("mkey:{ZERO}")).as_bytes()), too_old);
        assert_eq!(parse_server_key_response(br#"{"legacyPublicKey":"mkey:00"}"#), too_old);
        assert_eq!(parse_server_key_response(format!("{HEX}\n").as_bytes()), too_old);
    }

    #[test]
    fn malformed_keys_and_bodies_are_refused() {
        for bad in [
            format!("nodekey:{HEX}"),
            format!("mkey:{}", &HEX[1..]),
            format!("mkey:{}g", &HEX[1..]),
            "mkey:é".into(),
        ] {
            assert!(
                matches!(
                    parse_server_key_response(body(&bad).as_bytes()),
                    Err(ServerKeyError::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(parse_server_key_response(b"<html>"), Err(ServerKeyError::Malformed(_))));
        assert!(matches!(
            parse_server_key_response(br#"{"publicKey":7}"#),
            Err(ServerKeyError::Malformed(_))
        ));
        let huge = vec![b' '; MAX_BODY_LEN + 1];
        assert_eq!(
            parse_server_key_response(&huge),
            Err(ServerKeyError::BodyTooLarge(MAX_BODY_LEN + 1))
        );
    }

    #[test]
    fn shaken_bodies_never_panic() {
        let valid = body(&format!("mkey:{HEX}"));
        shake(0x6b65_7973, 2500, valid.as_bytes(), |broken| {
            let _ = parse_server_key_response(broken);
        });
    }
}
