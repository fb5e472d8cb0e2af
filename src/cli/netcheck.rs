//! `weft netcheck`: asks the daemon for a fresh netcheck run and prints the report laid out
//! like `tailscale netcheck` (or, with `--json`, the report as JSON with tailscale's names).

use super::{parse_flags, say, say_indented};
use crate::control::tailcfg::RegionId;
use crate::localapi::client::request;
use crate::localapi::{NetcheckAnswer, NETCHECK_PATH};
use crate::netcheck::Report;
use std::path::Path;
use std::time::Duration;

/// A run takes at most 5 s; the rest is slack for a busy daemon.
const NETCHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// Go prints latencies rounded to a tenth of a millisecond.
const LATENCY_ROUNDING_NANOS: u128 = 100_000;

pub(super) fn run(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optflag("", "json", "print the report as JSON");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    super::expect_no_arguments("netcheck", &m)?;
    let body =
        request(&socket, "POST", NETCHECK_PATH, NETCHECK_TIMEOUT).map_err(|e| e.to_string())?;
    let answer: NetcheckAnswer = serde_json::from_slice(&body)
        .map_err(|e| format!("unexpected netcheck answer from weftd: {e}"))?;
    if m.opt_present("json") {
        let text = serde_json::to_string_pretty(&answer.report).map_err(|e| e.to_string())?;
        text.lines().for_each(say);
    } else {
        say("");
        for (depth, line) in render(&answer) {
            say_indented(depth, &line);
        }
    }
    Ok(0)
}

/// The report's lines with their indentation depth (in tabs).
pub(super) fn render(answer: &NetcheckAnswer) -> Vec<(usize, String)> {
    let report = &answer.report;
    let mut lines = vec![
        (0, "Report:".to_string()),
        (1, format!("* UDP: {}", report.udp)),
        (1, ipv4_line(report)),
        (1, ipv6_line(report)),
        (
            1,
            format!("* MappingVariesByDestIP: {}", optional_bool(report.mapping_varies_by_dest_ip)),
        ),
        (1, "* PortMapping: not checked".to_string()),
    ];
    if report.region_latency.is_empty() {
        lines.push((1, "* Nearest DERP: unknown (no response to latency probes)".to_string()));
        return lines;
    }
    let name = |id: &RegionId| answer.regions.get(id).map(|r| r.name.clone()).unwrap_or_default();
    lines.push((1, format!("* Nearest DERP: {}", name(&report.preferred_derp))));
    lines.push((1, "* DERP latency:".to_string()));
    let mut regions: Vec<&RegionId> = answer.regions.keys().collect();
    // Measured regions first, fastest first; then the others by id.
    regions.sort_by_key(|id| {
        (!report.region_latency.contains_key(id), report.region_latency.get(id), **id)
    });
    for id in regions {
        let latency = report.region_latency.get(id).map(|d| go_duration(*d)).unwrap_or_default();
        let code = &answer.regions[id].code;
        lines.push((2, format!("- {code:>3}: {latency:<7} ({})", name(id))));
    }
    lines
}

fn ipv4_line(report: &Report) -> String {
    match report.global_v4 {
        Some(addr) => format!("* IPv4: yes, {addr}"),
        None => "* IPv4: (no addr found)".to_string(),
    }
}

fn ipv6_line(report: &Report) -> String {
    match (report.global_v6, report.ipv6, report.os_has_ipv6) {
        (Some(addr), ..) => format!("* IPv6: yes, {addr}"),
        (None, true, _) => "* IPv6: (no addr found)".to_string(),
        (None, false, true) => "* IPv6: no, but OS has support".to_string(),
        (None, false, false) => "* IPv6: no, unavailable in OS".to_string(),
    }
}

/// Go's `opt.Bool`: empty when unknown.
fn optional_bool(value: Option<bool>) -> String {
    value.map(|b| b.to_string()).unwrap_or_default()
}

/// A latency as Go prints a `time.Duration` rounded to 100 µs: `800µs`, `10.3ms`, `1.2345s`.
fn go_duration(latency: Duration) -> String {
    let nanos = (latency.as_nanos() + LATENCY_ROUNDING_NANOS / 2) / LATENCY_ROUNDING_NANOS
        * LATENCY_ROUNDING_NANOS;
    let (unit_nanos, unit) = match nanos {
        0 => return "0s".to_string(),
        n if n < 1_000_000 => (1_000, "µs"),
        n if n < 1_000_000_000 => (1_000_000, "ms"),
        _ => (1_000_000_000, "s"),
    };
    let whole = nanos / unit_nanos;
    let fraction = format!("{:09}", nanos % unit_nanos);
    let digits = unit_nanos.ilog10() as usize;
    let fraction = fraction[9 - digits..].trim_end_matches('0');
    if fraction.is_empty() {
        format!("{whole}{unit}")
    } else {
        format!("{whole}.{fraction}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::localapi::RegionLabel;

    fn label(code: &str, name: &str) -> RegionLabel {
        RegionLabel { code: code.into(), name: name.into() }
    }

    fn answer() -> NetcheckAnswer {
        let report: Report = serde_json::from_str(
            r#"{"UDP": true, "IPv4": true, "OSHasIPv6": true, "MappingVariesByDestIP": false,
                "PreferredDERP": 2, "GlobalV4": "203.0.113.5:41641", "GlobalV6": "",
                "RegionLatency": {"1": 45678901, "2": 10340000}}"#,
        )
        .unwrap();
        let regions = [
            (1, label("fra", "Frankfurt")),
            (2, label("nl", "Amsterdam")),
            (3, label("sin", "Singapore")),
        ]
        .into_iter()
        .collect();
        NetcheckAnswer { report, regions }
    }

    fn text(lines: &[(usize, String)]) -> String {
        lines.iter().map(|(depth, line)| format!("{}{line}\n", "\t".repeat(*depth))).collect()
    }

    #[test]
    fn the_report_reads_like_tailscale_netcheck() {
        let expected = "Report:
\t* UDP: true
\t* IPv4: yes, 203.0.113.5:41641
\t* IPv6: no, but OS has support
\t* MappingVariesByDestIP: false
\t* PortMapping: not checked
\t* Nearest DERP: Amsterdam
\t* DERP latency:
\t\t-  nl: 10.3ms  (Amsterdam)
\t\t- fra: 45.7ms  (Frankfurt)
\t\t- sin:         (Singapore)
";
        assert_eq!(text(&render(&answer())), expected);
    }

    #[test]
    fn without_answers_the_nearest_region_is_unknown() {
        let mut answer = answer();
        answer.report = Report::default();
        let shown = text(&render(&answer));
        assert!(
            shown.contains(
                "\t* UDP: false\n\t* IPv4: (no addr found)\n\t* IPv6: no, unavailable in OS\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("\t* MappingVariesByDestIP: \n"), "{shown}");
        assert!(
            shown.ends_with("\t* Nearest DERP: unknown (no response to latency probes)\n"),
            "{shown}"
        );
    }

    #[test]
    fn latencies_are_printed_like_go_durations() {
        let ms = Duration::from_micros;
        let cases = [
            (0, "0s"),
            (40, "0s"),
            (800, "800µs"),
            (10_340, "10.3ms"),
            (10_000, "10ms"),
            (1_234_560, "1.2346s"),
            (2_000_000, "2s"),
        ];
        for (micros, shown) in cases {
            assert_eq!(go_duration(ms(micros)), shown, "{micros} µs");
        }
    }
}
