//! `weft ip`: this node's Tailscale IPs, or a peer's.

use super::{fetch_status, parse_flags, say};
use crate::engine::status::Status;
use std::path::Path;

pub(super) fn run(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optflag("4", "", "only the IPv4 address");
    spec.optflag("6", "", "only the IPv6 address");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    if m.opt_present("4") && m.opt_present("6") {
        return Err("ip: -4 and -6 exclude each other".into());
    }
    if m.free.len() > 1 {
        return Err("ip: at most one peer name".into());
    }
    let status = fetch_status(&socket)?;
    let ips = addresses(&status, m.free.first().map(String::as_str))?;
    let wanted = ips.iter().filter(|ip| {
        let v4 = !ip.contains(':');
        (!m.opt_present("4") || v4) && (!m.opt_present("6") || !v4)
    });
    for ip in wanted {
        say(ip);
    }
    Ok(0)
}

/// The IPs of `peer` (by name or IP), or our own.
fn addresses(status: &Status, peer: Option<&str>) -> Result<Vec<String>, String> {
    let Some(wanted) = peer else {
        return Ok(status.self_node.tailscale_ips.clone());
    };
    status
        .peer
        .values()
        .find(|p| {
            p.host_name.eq_ignore_ascii_case(wanted)
                || p.tailscale_ips.iter().any(|ip| ip == wanted)
        })
        .map(|p| p.tailscale_ips.clone())
        .ok_or_else(|| format!("ip: no peer named {wanted:?}"))
}
