//! The control server's Noise key from `GET /key?v=<capver>`: JSON
//! `{"legacyPublicKey":"mkey:…","publicKey":"mkey:<64 hex>"}` (tailcfg.OverTLSPublicKeyResponse).

use crate::keys::PublicKey;
use serde::Deserialize;
use std::fmt;

/// `/key` bodies are tiny; the official client reads at most this much.
const MAX_BODY_LEN: usize = 64 * 1024;
const MACHINE_KEY_PREFIX: &str = "mkey:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKeyError {
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
            ServerKeyError::ServerTooOld => f.write_str("control server has no Noise key (too old)"),
        }
    }
}

impl std::error::Error for ServerKeyError {}

/// The path and query for the key request; the version is the capability version claimed
/// in the handshake as well.
pub fn key_request_path(protocol_version: u16) -> String {
    format!("/key?v={protocol_version}")
}

#[derive(Deserialize)]
struct KeyResponse {
    /// The legacy NaCl key is ignored: weft only speaks ts2021.
    #[serde(rename = "publicKey", default)]
    public_key: Option<String>,
}

/// The server's Noise static key from a `/key` response body.
pub fn parse_server_key_response(body: &[u8]) -> Result<PublicKey, ServerKeyError> {
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
    let malformed = || ServerKeyError::Malformed(format!("not an mkey: {text:?}"));
    let hex = text.strip_prefix(MACHINE_KEY_PREFIX).ok_or_else(malformed)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| malformed())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| malformed())?;
    }
    Ok(PublicKey(key))
}
