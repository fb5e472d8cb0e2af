//! `weft ping`: tailscale's `ping` — disco pings by default, reporting the path each pong
//! came on (direct `ip:port` or `DERP(code)`), until a direct path answers; or one ICMP echo
//! or TSMP ping through the tunnel.

use super::{fetch_status, parse_flags, say};
use crate::engine::ping::{PingKind, PingResult};
use crate::http1::percent_encode;
use crate::localapi::client::request;
use crate::localapi::PING_PATH;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

const DEFAULT_COUNT: u32 = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
const PAUSE_BETWEEN_PINGS: Duration = Duration::from_secs(1);

/// What the flags ask for.
#[derive(Debug, PartialEq)]
struct Options {
    kind: PingKind,
    /// 0: no limit.
    count: u32,
    timeout: Duration,
    until_direct: bool,
}

pub(super) fn run(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optopt("c", "", "max number of pings (default 10; 0 = no limit)", "N");
    spec.optopt("", "timeout", "wait this long for each pong (default 5s)", "DURATION");
    spec.optflagopt("", "until-direct", "stop at the first direct pong (default true)", "BOOL");
    spec.optflag("", "icmp", "ping with an ICMP echo through the tunnel");
    spec.optflag("", "tsmp", "ping with TSMP, answered by the peer's daemon");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    let options = options(&m)?;
    let [target] = m.free.as_slice() else {
        return Err("ping: need exactly one IP address or peer name".into());
    };
    let (ip, is_self) = resolve(target, &socket)?;
    if is_self {
        say(&format!("{ip} is local Tailscale IP"));
        return Ok(0);
    }
    let mut run = Run::default();
    loop {
        let result = ping_once(&socket, ip, &options)?;
        let (line, next) = run.judge(&result, &options);
        line.as_deref().map(say);
        match next {
            Next::Again { pause } => {
                if pause {
                    std::thread::sleep(PAUSE_BETWEEN_PINGS);
                }
            }
            Next::Done(outcome) => return outcome.map(|()| 0),
        }
    }
}

fn options(m: &getopts::Matches) -> Result<Options, String> {
    let count = match m.opt_str("c") {
        None => DEFAULT_COUNT,
        Some(s) => s.parse().map_err(|_| format!("ping: -c {s:?} is not a count"))?,
    };
    let timeout = match m.opt_str("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(s) => parse_timeout(&s)
            .ok_or_else(|| format!("ping: --timeout {s:?} must be a duration up to 60s"))?,
    };
    let until_direct = match m.opt_str("until-direct").as_deref() {
        None | Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => return Err(format!("ping: --until-direct={other:?} is not true or false")),
    };
    let kind = match (m.opt_present("icmp"), m.opt_present("tsmp")) {
        (false, false) => PingKind::Disco,
        (true, false) => PingKind::Icmp,
        (false, true) => PingKind::Tsmp,
        (true, true) => return Err("ping: --icmp and --tsmp exclude each other".into()),
    };
    Ok(Options { kind, count, timeout, until_direct })
}

/// A Go duration (`5s`, `500ms`, `1.5s`) or plain seconds, above zero and at most a minute.
fn parse_timeout(text: &str) -> Option<Duration> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let seconds = number.parse::<f64>().ok().filter(|n| n.is_finite())? * scale;
    let timeout = Duration::try_from_secs_f64(seconds).ok()?;
    (!timeout.is_zero() && timeout <= MAX_TIMEOUT).then_some(timeout)
}

/// What comes after one ping.
#[derive(Debug, PartialEq)]
enum Next {
    /// Ping again, after the pause when this one was answered.
    Again { pause: bool },
    /// Stop: exit 0, or fail with this message.
    Done(Result<(), String>),
}

/// The attempts so far.
#[derive(Default)]
struct Run {
    attempts: u32,
    any_pong: bool,
}

impl Run {
    /// The line to print for `result` and what comes next, as tailscale's CLI decides: a
    /// timeout is reported and retried, any other error ends the run, a pong ends it when it
    /// is direct (with `--until-direct`) or not a disco ping; the last attempt ends it with
    /// `no reply` when nothing ever answered, or `direct connection not established` when
    /// only relayed pongs came and a direct one was wanted.
    /// An error is not printed here: it ends the run as its message.
    fn judge(&mut self, result: &PingResult, options: &Options) -> (Option<String>, Next) {
        self.attempts += 1;
        let last = options.count != 0 && self.attempts >= options.count;
        if result.timed_out() {
            let line = format!("ping {:?} timed out", result.ip);
            let next = match (last, self.any_pong) {
                (false, _) => Next::Again { pause: false },
                (true, true) => Next::Done(Ok(())),
                (true, false) => Next::Done(Err("no reply".into())),
            };
            return (Some(line), next);
        }
        if !result.err.is_empty() {
            return (None, Next::Done(Err(result.err.clone())));
        }
        self.any_pong = true;
        let line = pong_line(result, options.kind);
        let next = if options.kind != PingKind::Disco
            || (options.until_direct && !result.endpoint.is_empty())
        {
            Next::Done(Ok(()))
        } else if !last {
            Next::Again { pause: true }
        } else if options.until_direct {
            Next::Done(Err("direct connection not established".into()))
        } else {
            Next::Done(Ok(()))
        };
        (Some(line), next)
    }
}

fn ping_once(socket: &Path, ip: IpAddr, options: &Options) -> Result<PingResult, String> {
    let timeout_ms = options.timeout.as_millis();
    let path = format!(
        "{PING_PATH}?ip={}&type={}&timeout_ms={timeout_ms}",
        percent_encode(&ip.to_string()),
        options.kind.api_name()
    );
    let wait = options.timeout + Duration::from_secs(5);
    let body = request(socket, "POST", &path, wait).map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("unexpected ping answer from weftd: {e}"))
}

/// `pong from NAME (IP[, PEERAPI-PORT]) via PATH in LATENCY`, as tailscale prints it: the path
/// is `DERP(code)` for a relayed pong, else the direct endpoint, else the kind of ping.
fn pong_line(r: &PingResult, kind: PingKind) -> String {
    let via = if r.derp_region_id != 0 {
        format!("DERP({})", r.derp_region_code)
    } else if !r.endpoint.is_empty() {
        r.endpoint.clone()
    } else {
        kind.api_name().to_string()
    };
    let port = if r.peerapi_port != 0 { format!(", {}", r.peerapi_port) } else { String::new() };
    let latency = latency(r.latency_seconds);
    format!("pong from {} ({}{port}) via {via} in {latency}", r.node_name, r.node_ip)
}

/// Go's duration rounded to the millisecond: `23ms`, `1.204s`, `0s`.
fn latency(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    match ms {
        0 => "0s".to_string(),
        1..1000 => format!("{ms}ms"),
        _ => format!("{}s", (ms as f64 / 1000.0)),
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

    fn result(endpoint: &str, derp: u16, err: &str) -> PingResult {
        PingResult {
            ip: "100.64.0.2".into(),
            node_ip: "100.64.0.2".into(),
            node_name: "b".into(),
            err: err.into(),
            latency_seconds: 0.001,
            endpoint: endpoint.into(),
            derp_region_id: derp,
            derp_region_code: if derp != 0 { "nyc".into() } else { String::new() },
            peerapi_port: 0,
        }
    }

    fn disco(count: u32, until_direct: bool) -> Options {
        Options { kind: PingKind::Disco, count, timeout: DEFAULT_TIMEOUT, until_direct }
    }

    fn parse(args: &str) -> Result<Options, String> {
        let mut spec = getopts::Options::new();
        spec.optopt("c", "", "", "N");
        spec.optopt("", "timeout", "", "D");
        spec.optflagopt("", "until-direct", "", "B");
        spec.optflag("", "icmp", "");
        spec.optflag("", "tsmp", "");
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        options(&spec.parse(args).unwrap())
    }

    #[test]
    fn latency_reads_like_go() {
        assert_eq!(latency(0.0234), "23ms");
        assert_eq!(latency(1.2041), "1.204s");
        assert_eq!(latency(2.0), "2s");
        assert_eq!(latency(0.0001), "0s");
    }

    #[test]
    fn pong_lines_name_the_path_as_tailscale_does() {
        let direct = result("10.9.0.2:41641", 0, "");
        assert_eq!(
            pong_line(&direct, PingKind::Disco),
            "pong from b (100.64.0.2) via 10.9.0.2:41641 in 1ms"
        );
        let relayed = result("", 3, "");
        assert_eq!(
            pong_line(&relayed, PingKind::Disco),
            "pong from b (100.64.0.2) via DERP(nyc) in 1ms"
        );
        let tsmp = PingResult { peerapi_port: 4242, ..result("", 0, "") };
        assert_eq!(
            pong_line(&tsmp, PingKind::Tsmp),
            "pong from b (100.64.0.2, 4242) via TSMP in 1ms"
        );
    }

    #[test]
    fn flags_default_to_ten_disco_pings_until_direct() {
        assert_eq!(parse("").unwrap(), disco(10, true));
        let o = parse("-c 3 --timeout 500ms --until-direct=false").unwrap();
        assert_eq!(o, Options { timeout: Duration::from_millis(500), ..disco(3, false) });
        assert_eq!(parse("--timeout 2").unwrap().timeout, Duration::from_secs(2));
        assert_eq!(parse("--icmp").unwrap().kind, PingKind::Icmp);
        assert_eq!(parse("--tsmp").unwrap().kind, PingKind::Tsmp);
        for bad in
            ["--icmp --tsmp", "--timeout 0", "--timeout 2m", "--timeout x", "--until-direct=maybe"]
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relayed_pongs_go_on_and_a_direct_one_stops_the_run() {
        let mut run = Run::default();
        let options = disco(10, true);
        let (line, next) = run.judge(&result("", 3, ""), &options);
        assert!(line.unwrap().ends_with("via DERP(nyc) in 1ms"));
        assert_eq!(next, Next::Again { pause: true });
        let (_, next) = run.judge(&result("192.0.2.7:41641", 0, ""), &options);
        assert_eq!(next, Next::Done(Ok(())));
        // Without --until-direct, a direct pong is no reason to stop.
        let (_, next) = Run::default().judge(&result("192.0.2.7:41641", 0, ""), &disco(10, false));
        assert_eq!(next, Next::Again { pause: true });
    }

    #[test]
    fn the_last_attempt_decides_the_exit_as_tailscale_does() {
        let timeout = result("", 0, "ping \"100.64.0.2\" timed out");
        let mut run = Run::default();
        let (line, next) = run.judge(&timeout, &disco(2, true));
        assert_eq!(line.unwrap(), "ping \"100.64.0.2\" timed out");
        assert_eq!(next, Next::Again { pause: false });
        assert_eq!(run.judge(&timeout, &disco(2, true)).1, Next::Done(Err("no reply".into())));

        let mut run = Run::default();
        run.judge(&result("", 3, ""), &disco(2, true));
        let (_, next) = run.judge(&result("", 3, ""), &disco(2, true));
        assert_eq!(next, Next::Done(Err("direct connection not established".into())));

        let mut run = Run::default();
        run.judge(&result("", 3, ""), &disco(2, false));
        assert_eq!(run.judge(&result("", 3, ""), &disco(2, false)).1, Next::Done(Ok(())));
        // A final timeout after a pong is no failure.
        let mut run = Run::default();
        run.judge(&result("", 3, ""), &disco(2, true));
        assert_eq!(run.judge(&timeout, &disco(2, true)).1, Next::Done(Ok(())));
    }

    #[test]
    fn icmp_and_tsmp_stop_at_the_first_pong_and_errors_end_the_run() {
        let icmp = Options { kind: PingKind::Icmp, ..disco(10, true) };
        assert_eq!(Run::default().judge(&result("", 0, ""), &icmp).1, Next::Done(Ok(())));
        let (line, next) = Run::default().judge(&result("", 0, "no path to b"), &disco(10, true));
        assert_eq!((line, next), (None, Next::Done(Err("no path to b".into()))));
    }
}
