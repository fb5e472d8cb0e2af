use super::*;
use crate::control::tailcfg::{DerpNode, DerpRegion, Endpoint, EndpointType};
use crate::testing::shake;

const V4_ONLY: Families = Families { v4: true, v6: false };
const DUAL: Families = Families { v4: true, v6: true };

fn node(region: RegionId, ipv4: &str, ipv6: &str) -> DerpNode {
    DerpNode {
        name: format!("{region}{ipv4}"),
        region_id: region,
        host_name: format!("derp{region}.example"),
        ipv4: ipv4.into(),
        ipv6: ipv6.into(),
        ..DerpNode::default()
    }
}

fn region(id: RegionId, nodes: Vec<DerpNode>) -> DerpRegion {
    DerpRegion {
        region_id: id,
        region_code: format!("r{id}"),
        region_name: format!("Region {id}"),
        nodes,
        ..DerpRegion::default()
    }
}

fn map(regions: Vec<DerpRegion>) -> DerpMap {
    DerpMap {
        regions: regions.into_iter().map(|r| (r.region_id, r)).collect(),
        ..DerpMap::default()
    }
}

/// Two regions, one IPv4 server each: 192.0.2.1 (region 1) and 192.0.2.2 (region 2).
fn two_regions() -> DerpMap {
    map(vec![region(1, vec![node(1, "192.0.2.1", "")]), region(2, vec![node(2, "192.0.2.2", "")])])
}

/// Tailscale's STUN server's answer: one XOR-MAPPED-ADDRESS.
fn response(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
    let tx_id: &[u8] = &request[8..20];
    let cookie = [0x21, 0x12, 0xa4, 0x42];
    let mut value = vec![0, if mapped.is_ipv4() { 1 } else { 2 }];
    value.extend_from_slice(&(mapped.port() ^ 0x2112).to_be_bytes());
    let ip: Vec<u8> = match mapped.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let key: Vec<u8> = cookie.iter().chain(tx_id).copied().collect();
    value.extend(ip.iter().zip(&key).map(|(a, k)| a ^ k));
    let mut out = vec![0x01, 0x01];
    out.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    out.extend_from_slice(&cookie);
    out.extend_from_slice(tx_id);
    out.extend_from_slice(&0x0020u16.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(&value);
    out
}

fn drain(netcheck: &mut Netcheck) -> Vec<Datagram> {
    std::iter::from_fn(|| netcheck.poll_transmit()).collect()
}

fn mapped(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Runs the clock to `until` in the core's own timer steps, collecting what it sends.
fn advance(netcheck: &mut Netcheck, until: Instant) -> Vec<(Instant, Datagram)> {
    let mut sent = Vec::new();
    while let Some(at) = netcheck.poll_timeout().filter(|at| *at <= until) {
        netcheck.handle_timeout(at);
        sent.extend(drain(netcheck).into_iter().map(|d| (at, d)));
    }
    sent
}

/// Answers every request in `requests` after `rtt`, as each server's NAT mapping says.
fn answer_all(
    netcheck: &mut Netcheck,
    sent_at: Instant,
    requests: &[Datagram],
    rtt: impl Fn(SocketAddr) -> Duration,
    mapping: impl Fn(SocketAddr) -> SocketAddr,
) {
    let mut order: Vec<&Datagram> = requests.iter().collect();
    order.sort_by_key(|d| rtt(d.to));
    for d in order {
        let reply = response(&d.bytes, mapping(d.to));
        netcheck.handle_stun(sent_at + rtt(d.to), d.to, &reply).unwrap();
    }
}

fn rtt_by_last_octet(to: SocketAddr) -> Duration {
    match to.ip() {
        IpAddr::V4(a) => Duration::from_millis(10 * u64::from(a.octets()[3])),
        IpAddr::V6(_) => Duration::from_millis(15),
    }
}

#[test]
fn without_a_derp_map_netcheck_does_nothing() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(DUAL, 1);
    netcheck.start(now);
    netcheck.set_derp_map(now, None);
    assert!(!netcheck.is_enabled() && !netcheck.is_running());
    assert_eq!((netcheck.poll_timeout(), netcheck.poll_transmit()), (None, None));
}

#[test]
fn udp_that_works_gives_latencies_endpoints_and_the_nearest_home() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 7);
    netcheck.set_derp_map(now, Some(&two_regions()));
    let first = drain(&mut netcheck);
    let servers: BTreeSet<SocketAddr> = first.iter().map(|d| d.to).collect();
    assert_eq!(servers, [mapped("192.0.2.1:3478"), mapped("192.0.2.2:3478")].into());
    assert!(first.iter().all(|d| stun::is_binding_message(&d.bytes)));
    answer_all(&mut netcheck, now, &first, rtt_by_last_octet, |_| mapped("203.0.113.5:40000"));
    // Every region answered: the run ends without waiting for the timeout.
    assert!(!netcheck.is_running());
    let report = netcheck.poll_report().cloned().unwrap();
    assert!(netcheck.poll_report().is_none(), "a report is handed out once");
    assert!(report.udp && report.ipv4 && !report.ipv6);
    assert_eq!(report.global_v4, Some(mapped("203.0.113.5:40000")));
    assert_eq!(report.mapping_varies_by_dest_ip, Some(false));
    assert_eq!(report.region_latency[&1], Duration::from_millis(10));
    assert_eq!(report.region_latency[&2], Duration::from_millis(20));
    assert_eq!(report.preferred_derp, 1);
    let endpoints = report.stun_endpoints(41641);
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert_eq!(endpoints[0].kind, EndpointType::Stun);
}

#[test]
fn no_answer_within_five_seconds_means_udp_false_after_three_tries_per_region() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 7);
    netcheck.set_derp_map(now, Some(&two_regions()));
    let mut sent: Vec<(Instant, Datagram)> =
        drain(&mut netcheck).into_iter().map(|d| (now, d)).collect();
    sent.extend(advance(&mut netcheck, now + Duration::from_secs(5)));
    let to_region_1: Vec<Duration> = sent
        .iter()
        .filter(|(_, d)| d.to == mapped("192.0.2.1:3478"))
        .map(|(at, _)| *at - now)
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(to_region_1, [ms(0), ms(100), ms(200)]);
    assert_eq!(sent.len(), 6);
    let tx_ids: BTreeSet<&[u8]> = sent.iter().map(|(_, d)| &d.bytes[8..20]).collect();
    assert_eq!(tx_ids.len(), 6, "every try has its own transaction id");
    let report = netcheck.poll_report().unwrap();
    assert!(!report.udp && report.region_latency.is_empty());
    assert_eq!((report.preferred_derp, report.global_v4), (0, None));
    assert!(report.stun_endpoints(1).is_empty());
}

#[test]
fn a_lost_request_is_retried_and_the_latency_is_the_retrys() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 3);
    netcheck.set_derp_map(now, Some(&map(vec![region(1, vec![node(1, "192.0.2.1", "")])])));
    let _lost = drain(&mut netcheck);
    let retry = advance(&mut netcheck, now + Duration::from_millis(100));
    assert_eq!(retry.len(), 1);
    let (sent_at, request) = &retry[0];
    let reply = response(&request.bytes, mapped("203.0.113.5:1"));
    netcheck.handle_stun(*sent_at + Duration::from_millis(7), request.to, &reply).unwrap();
    let report = netcheck.poll_report().unwrap();
    assert_eq!(report.region_latency[&1], Duration::from_millis(7));
    // The answered region's third try is never sent.
    assert!(advance(&mut netcheck, now + Duration::from_secs(1)).is_empty());
}

#[test]
fn a_nat_that_maps_per_destination_is_reported_and_advertised_with_the_local_port() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 5);
    netcheck.set_derp_map(now, Some(&two_regions()));
    let requests = drain(&mut netcheck);
    let per_server = |to: SocketAddr| {
        SocketAddr::new(
            [203, 0, 113, 5].into(),
            50000 + to.port() % 7 + u16::from(to.ip() == mapped("192.0.2.2:0").ip()),
        )
    };
    answer_all(&mut netcheck, now, &requests, rtt_by_last_octet, per_server);
    let report = netcheck.poll_report().unwrap();
    assert_eq!(report.mapping_varies_by_dest_ip, Some(true));
    // The fastest server's view is the global address.
    assert_eq!(report.global_v4, Some(per_server(mapped("192.0.2.1:3478"))));
    let endpoints = report.stun_endpoints(41641);
    assert!(endpoints.contains(&Endpoint {
        addr: mapped("203.0.113.5:41641"),
        kind: EndpointType::Stun4LocalPort
    }));
    assert_eq!(report.net_info().mapping_varies_by_dest_ip, Some(true));
}

#[test]
fn dual_stack_probes_both_families_and_reports_each() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(DUAL, 9);
    netcheck
        .set_derp_map(now, Some(&map(vec![region(1, vec![node(1, "192.0.2.1", "2001:db8::1")])])));
    let requests = drain(&mut netcheck);
    assert_eq!(requests.len(), 2);
    answer_all(&mut netcheck, now, &requests, rtt_by_last_octet, |to| match to {
        SocketAddr::V4(_) => mapped("203.0.113.5:9"),
        SocketAddr::V6(_) => mapped("[2001:db8::99]:9"),
    });
    let report = netcheck.poll_report().unwrap();
    assert!(report.ipv4 && report.ipv6 && report.os_has_ipv6);
    assert_eq!(report.global_v6, Some(mapped("[2001:db8::99]:9")));
    let info = report.net_info();
    assert_eq!(info.derp_latency["1-v4"], 0.01);
    assert_eq!(info.derp_latency["1-v6"], 0.015);
    assert_eq!(
        (info.working_udp, info.working_ipv6, info.preferred_derp),
        (Some(true), Some(true), 1)
    );
}

/// Runs one full probe where region `id` answers after `rtts[id]` ms.
fn run_with(netcheck: &mut Netcheck, now: Instant, rtts: &[(RegionId, u64)]) -> Report {
    netcheck.start(now);
    let requests = drain(netcheck);
    let rtt = |to: SocketAddr| {
        let id = RegionId::from(match to.ip() {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(_) => 0,
        });
        Duration::from_millis(rtts.iter().find(|(r, _)| *r == id).map_or(0, |(_, ms)| *ms))
    };
    let answered: Vec<Datagram> = requests
        .into_iter()
        .filter(|d| {
            rtts.iter().any(|(r, _)| SocketAddr::new([192, 0, 2, *r as u8].into(), 3478) == d.to)
        })
        .collect();
    answer_all(netcheck, now, &answered, rtt, |_| mapped("203.0.113.5:1"));
    advance(netcheck, now + Duration::from_secs(5));
    netcheck.poll_report().cloned().unwrap()
}

#[test]
fn home_moves_only_to_a_clearly_faster_region() {
    let start = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 11);
    let three = map(vec![
        region(1, vec![node(1, "192.0.2.1", "")]),
        region(2, vec![node(2, "192.0.2.2", "")]),
        region(3, vec![node(3, "192.0.2.3", "")]),
    ]);
    netcheck.set_derp_map(start, Some(&three));
    drain(&mut netcheck);
    advance(&mut netcheck, start + Duration::from_secs(5));
    let minute = |n: u32| start + Duration::from_secs(60) * n;
    assert_eq!(run_with(&mut netcheck, minute(1), &[(1, 60), (2, 80)]).preferred_derp, 1);
    // 52 ms is faster, but by less than 10 ms: stay.
    assert_eq!(run_with(&mut netcheck, minute(2), &[(1, 60), (2, 52)]).preferred_derp, 1);
    // 45 ms is 15 ms faster, but not under 60 × 2/3 = 40: stay.
    assert_eq!(run_with(&mut netcheck, minute(3), &[(1, 60), (2, 45)]).preferred_derp, 1);
    // 30 ms is both: move.
    assert_eq!(run_with(&mut netcheck, minute(4), &[(1, 60), (3, 30)]).preferred_derp, 3);
    // The home is silent: the best of the last five minutes among those that answer wins —
    // region 2's 45 ms of minute 3, though it answers in 70 ms now.
    assert_eq!(run_with(&mut netcheck, minute(5), &[(1, 60), (2, 70)]).preferred_derp, 2);
    // Nothing answers at all: keep the home peers know.
    assert_eq!(run_with(&mut netcheck, minute(6), &[]).preferred_derp, 2);
    // Six minutes on, region 2's 45 ms is forgotten: its 70 ms now is what counts, and 35 ms
    // is a clear gain over that (it would not be over 45 ms).
    assert_eq!(run_with(&mut netcheck, minute(12), &[(1, 35), (2, 70)]).preferred_derp, 1);
}

#[test]
fn avoided_regions_are_measured_but_never_home() {
    let now = Instant::now();
    let mut avoided = region(1, vec![node(1, "192.0.2.1", "")]);
    avoided.avoid = true;
    let mut unmeasured = region(3, vec![node(3, "192.0.2.3", "")]);
    unmeasured.no_measure_no_home = true;
    let mut netcheck = Netcheck::new(V4_ONLY, 2);
    netcheck.set_derp_map(
        now,
        Some(&map(vec![avoided, region(2, vec![node(2, "192.0.2.2", "")]), unmeasured])),
    );
    let requests = drain(&mut netcheck);
    assert!(requests.iter().all(|d| d.to.ip() != mapped("192.0.2.3:0").ip()));
    answer_all(&mut netcheck, now, &requests, rtt_by_last_octet, |_| mapped("203.0.113.5:1"));
    let report = netcheck.poll_report().unwrap();
    assert!(report.region_latency.contains_key(&1));
    assert_eq!(report.preferred_derp, 2);
}

#[test]
fn nodes_are_probed_on_their_stun_port_and_only_at_literal_addresses() {
    let mut custom = node(1, "192.0.2.1", "none");
    custom.stun_port = 3479;
    let mut disabled = node(2, "192.0.2.2", "");
    disabled.stun_port = -1;
    let by_name = node(3, "", "");
    let mut by_host_ip = node(4, "", "");
    by_host_ip.host_name = "192.0.2.4".into();
    by_host_ip.stun_only = true;
    let servers = |n: &DerpNode| (stun_server(n, false), stun_server(n, true));
    assert_eq!(servers(&custom), (Some(mapped("192.0.2.1:3479")), None));
    assert_eq!(servers(&disabled), (None, None));
    assert_eq!(servers(&by_name), (None, None));
    assert_eq!(servers(&by_host_ip), (Some(mapped("192.0.2.4:3478")), None));
}

#[test]
fn runs_repeat_every_twenty_to_twenty_six_seconds() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 4);
    netcheck.set_derp_map(now, Some(&two_regions()));
    drain(&mut netcheck);
    advance(&mut netcheck, now + Duration::from_secs(5));
    let finished = now + Duration::from_secs(5);
    let next = netcheck.poll_timeout().unwrap();
    assert!(
        next >= finished + Duration::from_secs(20) && next < finished + Duration::from_secs(26)
    );
    netcheck.handle_timeout(next);
    assert!(netcheck.is_running() && !drain(&mut netcheck).is_empty());
}

#[test]
fn answers_to_unknown_transactions_change_nothing() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(V4_ONLY, 8);
    netcheck.set_derp_map(now, Some(&two_regions()));
    let requests = drain(&mut netcheck);
    let mut forged = requests[0].bytes;
    forged[8] ^= 0xff;
    let reply = response(&forged, mapped("198.51.100.66:6666"));
    let result = netcheck.handle_stun(now, requests[0].to, &reply);
    assert_eq!(result, Err(Ignored::UnknownTransaction));
    assert_eq!(
        netcheck.handle_stun(now, requests[0].to, b"garbage"),
        Err(Ignored::Malformed(StunError::NotStun))
    );
    // A real answer counts once; its replay is unknown.
    let real = response(&requests[0].bytes, mapped("203.0.113.5:1"));
    netcheck.handle_stun(now, requests[0].to, &real).unwrap();
    assert_eq!(netcheck.handle_stun(now, requests[0].to, &real), Err(Ignored::UnknownTransaction));
    advance(&mut netcheck, now + Duration::from_secs(5));
    let report = netcheck.poll_report().unwrap();
    assert_eq!(report.global_v4, Some(mapped("203.0.113.5:1")));
    assert_eq!(report.mappings.len(), 1);
}

#[test]
fn mutated_answers_never_panic_and_never_match() {
    let now = Instant::now();
    let mut netcheck = Netcheck::new(DUAL, 21);
    netcheck
        .set_derp_map(now, Some(&map(vec![region(1, vec![node(1, "192.0.2.1", "2001:db8::1")])])));
    let requests = drain(&mut netcheck);
    for (seed, request) in requests.iter().enumerate() {
        let valid = response(&request.bytes, mapped("203.0.113.5:1"));
        shake(seed as u64 + 100, 3000, &valid, |broken| {
            // A mutation that keeps the id and a valid address may still count: what matters
            // is that nothing panics and only requested ids match.
            if netcheck.handle_stun(now, request.to, broken).is_ok() {
                assert_eq!(&broken[8..20], &request.bytes[8..20]);
            }
        });
    }
}

#[test]
fn the_report_json_uses_tailscale_names() {
    let mut report = Report::new(false);
    report.add_answer(1, [192, 0, 2, 1].into(), mapped("203.0.113.5:1"), Duration::from_millis(3));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["UDP"], true);
    assert_eq!(json["GlobalV4"], "203.0.113.5:1");
    assert_eq!(json["GlobalV6"], "");
    assert_eq!(json["RegionLatency"]["1"], 3_000_000);
    assert_eq!(json["MappingVariesByDestIP"], serde_json::Value::Null);
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!((back.global_v4, back.region_latency), (report.global_v4, report.region_latency));
}
