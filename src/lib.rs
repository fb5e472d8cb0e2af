//! weft: a Tailscale-compatible mesh VPN node daemon.
//!
//! The module tree follows the life of a packet; `docs/architecture.md` draws it.

pub mod config;
pub mod control;
pub mod keys;
pub mod netmap;
pub mod platform;
pub mod prefix;
#[cfg(test)]
pub mod testing;

pub fn run_multicall(_args: Vec<String>) -> i32 {
    0
}
