//! weft: a Tailscale-compatible mesh VPN node daemon.
//!
//! The module tree follows the life of a packet; `docs/architecture.md` draws it.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod derp;
pub mod disco;
pub mod engine;
pub mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod http1;
pub mod keys;
pub mod localapi;
pub mod naclbox;
pub mod netmap;
pub mod packet;
pub mod platform;
pub mod prefix;
pub mod private_fs;
pub mod redact;
pub mod regular_file;
pub mod resolver;
pub mod state;
pub mod stun;
#[cfg(test)]
pub mod testing;
pub mod wall_clock;
pub mod wg;
pub mod xorshift;

/// The version every binary reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the daemon when invoked as `weftd`, the CLI otherwise (dispatch on argv[0]).
pub fn run_multicall(args: Vec<String>) -> i32 {
    let invoked_as = args
        .first()
        .map(|a| {
            std::path::Path::new(a).file_name().unwrap_or_default().to_string_lossy().into_owned()
        })
        .unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    if invoked_as == "weftd" {
        daemon::main(rest)
    } else {
        cli::main(rest)
    }
}
