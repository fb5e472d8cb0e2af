//! Parsers for the values of each key. Each returns the reason a value is wrong, without the
//! key's name or the line, which the caller adds. Secret values are never echoed back.

use super::error::quote;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::netmap::DEFAULT_MTU;
use crate::prefix::Prefix;
use crate::redact::holds_secret;
use std::net::SocketAddr;

pub(super) fn private_key(value: &str) -> Result<PrivateKey, String> {
    PrivateKey::from_base64(value)
}

pub(super) fn public_key(value: &str) -> Result<PublicKey, String> {
    PublicKey::from_base64(value).map_err(|reason| format!("{} — {reason}", quote(value)))
}

/// A preshared key is 32 secret bytes in the same base64 form as a private key, so it is read
/// (and kept out of messages) the same way.
pub(super) fn preshared_key(value: &str) -> Result<PresharedKey, String> {
    PrivateKey::from_base64(value).map(|key| PresharedKey(key.0))
}

/// A comma-separated list of prefixes; a bare address is a host prefix.
pub(super) fn prefixes(value: &str) -> Result<Vec<Prefix>, String> {
    value
        .split(',')
        .map(str::trim)
        .map(|entry| {
            if entry.is_empty() {
                return Err(format!("{} has an empty entry", quote(value)));
            }
            if entry.len() > MAX_PREFIX_CHARS {
                return Err(format!("{} — too long to be an IP address or prefix", quote(entry)));
            }
            entry.parse::<Prefix>().map_err(|reason| match holds_secret(entry) {
                // The parser's reason repeats the entry, which here may be a pasted key.
                true => format!("{} — not an IP address or prefix", quote(entry)),
                false => format!("{} — {reason}", quote(entry)),
            })
        })
        .collect()
}

/// The longest prefix text there is, `0000:0000:0000:0000:0000:ffff:255.255.255.255/128`.
/// Longer entries are refused before parsing, whose messages would repeat them in full.
const MAX_PREFIX_CHARS: usize = 49;

/// A UDP port; 0 asks the OS for any free port, as in wg(8).
pub(super) fn listen_port(value: &str) -> Result<u16, String> {
    value.parse().map_err(|_| format!("{} — not a port number from 0 to 65535", quote(value)))
}

/// The tunnel MTU, bounded below by the 1280 bytes every IPv6 link must carry.
pub(super) fn mtu(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(mtu) if mtu >= DEFAULT_MTU => Ok(mtu),
        _ => Err(format!(
            "{} — must be a number from {DEFAULT_MTU} to 65535 (IPv6 needs at least {DEFAULT_MTU})",
            quote(value)
        )),
    }
}

/// Seconds between keepalives; `off` or `0` turns them off.
pub(super) fn persistent_keepalive(value: &str) -> Result<Option<u16>, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<u16>() {
        Ok(0) => Ok(None),
        Ok(seconds) => Ok(Some(seconds)),
        Err(_) => Err(format!(
            "{} — must be \"off\" or a number of seconds from 0 to 65535",
            quote(value)
        )),
    }
}

/// An IP literal and port. Names are refused rather than resolved: parsing stays pure, and a
/// name resolved once at start-up would silently go stale.
pub(super) fn endpoint(value: &str) -> Result<SocketAddr, String> {
    match value.parse::<SocketAddr>() {
        Ok(address) if address.port() == 0 => {
            Err(format!("{} — port 0 cannot be reached", quote(value)))
        }
        Ok(address) => Ok(address),
        Err(_) if names_a_host(value) => {
            Err(format!("{} — hostnames are not supported yet, use an IP address", quote(value)))
        }
        Err(_) => Err(format!(
            "{} — expected an IP address and port, like 192.0.2.1:51820 or [2001:db8::1]:51820",
            quote(value)
        )),
    }
}

/// True for `host.example:51820`: a DNS name (with at least one letter, so a mistyped IPv4
/// address is not taken for one) and a port.
fn names_a_host(value: &str) -> bool {
    let Some((host, port)) = value.rsplit_once(':') else {
        return false;
    };
    let name_chars = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    port.parse::<u16>().is_ok()
        && host.chars().all(name_chars)
        && host.chars().any(|c| c.is_ascii_alphabetic())
}

/// A display name. Anything printable goes; control characters would garble status output.
pub(super) fn name(value: &str) -> Result<String, String> {
    if value.chars().any(char::is_control) {
        return Err(format!("{} — contains a control character", quote(value)));
    }
    Ok(value.to_string())
}

/// A switch: `true` or `false` (any case), as tailscale's own config files spell them.
pub(super) fn switch(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{} — must be true or false", quote(value))),
    }
}
