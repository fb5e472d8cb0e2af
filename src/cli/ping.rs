//! `weft ping`: ICMP echo through the tunnel, one line per reply with latency and endpoint.

use super::{fetch_status, parse_flags, say};
use crate::engine::ping::PingResult;
use crate::http1::percent_encode;
use crate::localapi::client::request;
use crate::localapi::PING_PATH;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

const DEFAULT_COUNT: u32 = 10;
const DEFAULT_TIMEOUT_SECS: f64 = 5.0;
const PAUSE_BETWEEN_PINGS: Duration = Duration::from_secs(1);

pub(super) fn run(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optopt("c", "", "number of pings (default 10; 0 = forever)", "N");
    spec.optopt("", "timeout", "seconds to wait for each reply (default 5)", "S");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    let count: u32 = match m.opt_str("c") {
        None => DEFAULT_COUNT,
        Some(s) => s.parse().map_err(|_| format!("ping: -c {s:?} is not a count"))?,
    };
    let timeout = match m.opt_str("timeout") {
        None => DEFAULT_TIMEOUT_SECS,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|t| *t > 0.0 && *t <= 60.0)
            .ok_or_else(|| format!("ping: --timeout {s:?} must be seconds between 0 and 60"))?,
    };
    let [target] = m.free.as_slice() else {
        return Err("ping: need exactly one IP address or peer name".into());
    };
    let (ip, is_self) = resolve(target, &socket)?;
    if is_self {
        say(&format!("{ip} is local Tailscale IP"));
        return Ok(0);
    }
    let mut answered = 0;
    let mut attempt = 0;
    while count == 0 || attempt < count {
        if attempt > 0 {
            std::thread::sleep(PAUSE_BETWEEN_PINGS);
        }
        attempt += 1;
        let result = ping_once(&socket, ip, timeout)?;
        if result.err.is_empty() {
            answered += 1;
            say(&pong_line(&result));
        } else {
            say(&result.err);
        }
    }
    if answered == 0 {
        return Err("no reply".into());
    }
    Ok(0)
}

fn ping_once(socket: &Path, ip: IpAddr, timeout_secs: f64) -> Result<PingResult, String> {
    let timeout_ms = (timeout_secs * 1000.0) as u64;
    let path = format!(
        "{PING_PATH}?ip={}&type=ICMP&timeout_ms={timeout_ms}",
        percent_encode(&ip.to_string())
    );
    let wait = Duration::from_millis(timeout_ms) + Duration::from_secs(5);
    let body = request(socket, "POST", &path, wait).map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("unexpected ping answer from weftd: {e}"))
}

/// `pong from NAME (IP) via ENDPOINT in LATENCY`, as tailscale prints it.
fn pong_line(r: &PingResult) -> String {
    let via = if r.endpoint.is_empty() { "ICMP" } else { r.endpoint.as_str() };
    format!("pong from {} ({}) via {via} in {}", r.node_name, r.node_ip, latency(r.latency_seconds))
}

/// Go's duration rounded to the millisecond: `23ms`, `1.204s`.
fn latency(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", (ms as f64 / 1000.0))
    }
}

/// An IP address as given, or a peer's name looked up in the status. The flag says the
/// address is our own.
fn resolve(target: &str, socket: &Path) -> Result<(IpAddr, bool), String> {
    let status = fetch_status(socket)?;
    let own = |ip: &str| status.self_node.tailscale_ips.iter().any(|a| a == ip);
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok((ip, own(&ip.to_string())));
    }
    if status.self_node.host_name.eq_ignore_ascii_case(target) {
        let ip = status.self_node.tailscale_ips.first().ok_or("this node has no address")?;
        return Ok((ip.parse().map_err(|_| "bad own address")?, true));
    }
    let peer = status
        .peer
        .values()
        .find(|p| p.host_name.eq_ignore_ascii_case(target))
        .ok_or_else(|| format!("ping: no peer named {target:?} and not an IP address"))?;
    let ip = peer
        .tailscale_ips
        .first()
        .ok_or_else(|| format!("ping: peer {target:?} has no address"))?;
    Ok((ip.parse().map_err(|_| format!("ping: peer {target:?} has a bad address"))?, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_reads_like_go() {
        assert_eq!(latency(0.0234), "23ms");
        assert_eq!(latency(1.2041), "1.204s");
        assert_eq!(latency(2.0), "2s");
    }

    #[test]
    fn pong_line_names_the_endpoint() {
        let r = PingResult {
            ip: "100.64.0.2".into(),
            node_ip: "100.64.0.2".into(),
            node_name: "b".into(),
            err: String::new(),
            latency_seconds: 0.001,
            endpoint: "10.9.0.2:41641".into(),
            peerapi_port: 0,
        };
        assert_eq!(pong_line(&r), "pong from b (100.64.0.2) via 10.9.0.2:41641 in 1ms");
    }
}
