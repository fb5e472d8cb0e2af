//! weft: a Tailscale-compatible mesh VPN node daemon.
//!
//! The module tree follows the life of a packet; `docs/architecture.md` draws it.
//!
//! The crate is a program, not a library: its only public items are the multicall entry point
//! and, behind features, the fuzzing and scale-bench harnesses. Everything else is private so
//! the compiler reports dead code and `unreachable_pub` keeps visibilities honest.

#![warn(unreachable_pub)]

mod cli;
mod config;
mod control;
mod daemon;
mod derp;
mod disco;
mod engine;
mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http1;
mod inert_text;
mod keys;
mod localapi;
#[cfg(test)]
mod log_capture;
mod magicdns;
mod naclbox;
mod netcheck;
mod netmap;
mod packet;
mod platform;
mod prefix;
mod private_fs;
mod redact;
mod regular_file;
mod resolver;
#[cfg(feature = "bench")]
pub mod scale_bench;
mod state;
mod stun;
#[cfg(test)]
mod testing;
mod wall_clock;
mod wg;
mod xorshift;

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
