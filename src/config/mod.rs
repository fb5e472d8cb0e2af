//! The static tailnet config: a WireGuard-style INI file turned into a [`Netmap`].
//!
//! The format is wg-quick's, so an existing `wg0.conf` loads: `[Interface]` with PrivateKey,
//! Address, ListenPort and MTU; `[Peer]` sections with PublicKey, AllowedIPs, Endpoint,
//! PersistentKeepalive and PresharedKey; plus a weft `Name` in either and weft's `ShieldsUp` in
//! `[Interface]`. wg-quick's host settings
//! (DNS, Table, FwMark, SaveConfig) load with a warning; its shell hooks are refused. Parsing is
//! pure — no name resolution, no hostname lookup — so the same text always gives the same netmap.

mod error;
mod fields;
mod lines;
mod load;
mod reader;
mod sections;
#[cfg(test)]
mod tests;
mod values;

use crate::netmap::Netmap;

pub(crate) use load::load;
pub(crate) use reader::parse;

// Named by tests (and fuzz targets) only; the daemon reaches them through the types above.
#[cfg(test)]
pub(crate) use error::ConfigError;

/// A config file read into a netmap, with the warnings to show the operator.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StaticConfig {
    /// Peers sorted by public key; the domain is empty.
    pub netmap: Netmap,
    /// `ShieldsUp = true` in `[Interface]`: refuse every new inbound connection.
    pub shields_up: bool,
    /// One `file:line: ...` message per setting that was accepted but ignored.
    pub warnings: Vec<String>,
}
