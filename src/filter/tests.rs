//! The filter as the engine drives it: realistic rule sets from control, replies to our own
//! traffic, expiry, floods and broken packets.

use super::*;
use crate::packet::test_packets::{fragment_v4, fragment_v6, icmp, ip, tcp, udp};
use crate::packet::transport::{TcpFlags, PROTO_SCTP, PROTO_TSMP};
use crate::testing::shake;

const ME: &str = "100.64.0.1";
const ME_V6: &str = "fd7a:115c:a1e0::1";
const PEER: &str = "100.64.0.2";
const OTHER_PEER: &str = "100.64.0.3";
const SYN: u8 = TcpFlags::SYN;
const SYN_ACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
const ACK: u8 = TcpFlags::ACK;
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const UNREACHABLE: u8 = 3;
const GRE: u8 = 47;

/// Allow-all as Tailscale's test control server and a default Headscale policy send it.
const ALLOW_ALL: &str =
    r#"[{"SrcIPs":["*"],"DstPorts":[{"IP":"*","Ports":{"First":0,"Last":65535}}]}]"#;

fn rules(json: &str) -> Vec<FilterRule> {
    serde_json::from_str(json).expect("rules parse")
}

fn local() -> Vec<Prefix> {
    [ME, ME_V6].iter().map(|a| Prefix::host(a.parse().unwrap())).collect()
}

fn filter(json: &str) -> Filter {
    Filter::new(Some(&rules(json)), &local())
}

fn at(port: u16, addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn dropped(reason: DropReason) -> Verdict {
    Verdict::Drop(reason)
}

#[test]
fn no_policy_passes_everything() {
    let mut open = Filter::new(None, &local());
    let now = Instant::now();
    assert_eq!(
        open.check_inbound(now, &tcp(&at(1, PEER), &at(22, "10.9.9.9"), SYN)),
        Verdict::Accept
    );
    assert_eq!(open.check_inbound(now, &icmp(PEER, "224.0.0.1", ECHO_REQUEST, 0)), Verdict::Accept);
    assert_eq!(open.check_inbound(now, b"not a packet"), Verdict::Accept);
}

#[test]
fn allow_all_opens_every_port_of_both_families_but_only_to_us() {
    let mut f = filter(ALLOW_ALL);
    let now = Instant::now();
    assert_eq!(f.check_inbound(now, &tcp(&at(40000, PEER), &at(22, ME), SYN)), Verdict::Accept);
    assert_eq!(f.check_inbound(now, &udp(&at(1, PEER), &at(65535, ME))), Verdict::Accept);
    let v6 = tcp(&at(1, "fd7a:115c:a1e0::2"), &at(443, ME_V6), SYN);
    assert_eq!(f.check_inbound(now, &v6), Verdict::Accept);
    assert_eq!(f.check_inbound(now, &icmp(PEER, ME, ECHO_REQUEST, 0)), Verdict::Accept);
    let elsewhere = tcp(&at(1, PEER), &at(22, "100.64.0.9"), SYN);
    assert_eq!(f.check_inbound(now, &elsewhere), dropped(DropReason::NotLocal));
    // The default protocols are TCP, UDP and ICMP: GRE needs its own rule.
    assert_eq!(f.check_inbound(now, &ip(PEER, ME, GRE, &[0; 8])), dropped(DropReason::NoRule));
}

#[test]
fn ssh_from_one_peer_only() {
    let mut f = filter(
        r#"[{"SrcIPs":["100.64.0.2"],"DstPorts":[{"IP":"100.64.0.1","Ports":{"First":22,"Last":22}}],"IPProto":[6]}]"#,
    );
    let now = Instant::now();
    let mut check = |packet: Vec<u8>| f.check_inbound(now, &packet);
    assert_eq!(check(tcp(&at(40000, PEER), &at(22, ME), SYN)), Verdict::Accept);
    assert_eq!(check(tcp(&at(40000, PEER), &at(80, ME), SYN)), dropped(DropReason::NoRule));
    assert_eq!(check(tcp(&at(40000, OTHER_PEER), &at(22, ME), SYN)), dropped(DropReason::NoRule));
    assert_eq!(check(udp(&at(40000, PEER), &at(22, ME))), dropped(DropReason::NoRule));
    // Segments of an established connection, and answers to our own SYNs, pass from anyone.
    assert_eq!(check(tcp(&at(80, OTHER_PEER), &at(40000, ME), SYN_ACK)), Verdict::Accept);
    assert_eq!(check(tcp(&at(80, OTHER_PEER), &at(40000, ME), ACK)), Verdict::Accept);
    // Anyone allowed some port may ping the address; nobody else.
    assert_eq!(check(icmp(PEER, ME, ECHO_REQUEST, 0)), Verdict::Accept);
    assert_eq!(check(icmp(OTHER_PEER, ME, ECHO_REQUEST, 0)), dropped(DropReason::NoRule));
}

#[test]
fn deny_all_still_lets_replies_in() {
    let mut f = filter("[]");
    let now = Instant::now();
    assert_eq!(
        f.check_inbound(now, &tcp(&at(1, PEER), &at(22, ME), SYN)),
        dropped(DropReason::NoRule)
    );
    assert_eq!(
        f.check_inbound(now, &udp(&at(53, PEER), &at(5000, ME))),
        dropped(DropReason::NoRule)
    );
    assert_eq!(f.check_inbound(now, &icmp(PEER, ME, ECHO_REQUEST, 0)), dropped(DropReason::NoRule));

    f.note_outbound(now, &udp(&at(5000, ME), &at(53, PEER)));
    f.note_outbound(now, &icmp(ME, PEER, ECHO_REQUEST, 0));
    assert_eq!(f.check_inbound(now, &udp(&at(53, PEER), &at(5000, ME))), Verdict::Accept);
    assert_eq!(
        f.check_inbound(now, &udp(&at(54, PEER), &at(5000, ME))),
        dropped(DropReason::NoRule)
    );
    assert_eq!(
        f.check_inbound(now, &udp(&at(53, OTHER_PEER), &at(5000, ME))),
        dropped(DropReason::NoRule)
    );
    assert_eq!(f.check_inbound(now, &icmp(PEER, ME, ECHO_REPLY, 0)), Verdict::Accept);
    assert_eq!(f.check_inbound(now, &icmp(PEER, ME, UNREACHABLE, 3)), Verdict::Accept);
    assert_eq!(f.check_inbound(now, &tcp(&at(22, PEER), &at(40000, ME), SYN_ACK)), Verdict::Accept);
    let notice = ip(PEER, ME, PROTO_TSMP, b"A\x00\x00\x00\x00\x00\x00");
    assert_eq!(f.check_inbound(now, &notice), Verdict::Accept);
}

#[test]
fn ipv6_rules_and_replies() {
    let mut f = filter(
        r#"[{"SrcIPs":["fd7a:115c:a1e0::2-fd7a:115c:a1e0::9"],"DstPorts":[{"IP":"fd7a:115c:a1e0::/48","Ports":{"First":8000,"Last":8999}}]}]"#,
    );
    let now = Instant::now();
    let peer = "fd7a:115c:a1e0::5";
    assert_eq!(f.check_inbound(now, &tcp(&at(1, peer), &at(8999, ME_V6), SYN)), Verdict::Accept);
    let outsider = "fd7a:115c:a1e0::10";
    let refused = tcp(&at(1, outsider), &at(8000, ME_V6), SYN);
    assert_eq!(f.check_inbound(now, &refused), dropped(DropReason::NoRule));
    assert_eq!(f.check_inbound(now, &icmp(outsider, ME_V6, 128, 0)), dropped(DropReason::NoRule));
    assert_eq!(f.check_inbound(now, &icmp(outsider, ME_V6, 129, 0)), Verdict::Accept);
    assert_eq!(f.check_inbound(now, &icmp(outsider, ME_V6, 2, 0)), Verdict::Accept, "too big");
    f.note_outbound(now, &udp(&at(7000, ME_V6), &at(53, outsider)));
    assert_eq!(f.check_inbound(now, &udp(&at(53, outsider), &at(7000, ME_V6))), Verdict::Accept);
    // An IPv4 source never matches an IPv6 range.
    assert_eq!(
        f.check_inbound(now, &tcp(&at(1, PEER), &at(8000, ME), SYN)),
        dropped(DropReason::NoRule)
    );
}

#[test]
fn flows_expire_when_idle_and_survive_new_rules() {
    let mut f = filter("[]");
    let t0 = Instant::now();
    let reply = udp(&at(53, PEER), &at(5000, ME));
    f.note_outbound(t0, &udp(&at(5000, ME), &at(53, PEER)));
    f.replace_rules(Some(&[]), &local());
    let later = t0 + FLOW_IDLE_TIMEOUT;
    assert_eq!(f.check_inbound(later, &reply), Verdict::Accept, "kept across new rules");
    let idle = later + FLOW_IDLE_TIMEOUT + Duration::from_secs(1);
    assert_eq!(f.check_inbound(idle, &reply), dropped(DropReason::NoRule));
}

#[test]
fn a_flood_of_flows_stays_bounded() {
    let mut f = filter("[]");
    let capacity = f.flows.capacity();
    let t0 = Instant::now();
    let flow = |n: u32| {
        let peer = format!("100.65.{}.{}", n >> 8 & 0xff, n & 0xff);
        (udp(&at(5000, ME), &at(53, &peer)), udp(&at(53, &peer), &at(5000, ME)))
    };
    for n in 0..20_000 {
        f.note_outbound(t0, &flow(n).0);
    }
    assert!(f.flows.live_count(t0) <= capacity);
    assert_eq!(f.flows.capacity(), capacity, "never grows");
    assert_eq!(f.check_inbound(t0, &flow(19_999).1), Verdict::Accept, "the newest flow is kept");
}

#[test]
fn special_destinations_and_fragments() {
    let mut f = filter(ALLOW_ALL);
    let now = Instant::now();
    let mut check = |packet: Vec<u8>| f.check_inbound(now, &packet);
    assert_eq!(check(udp(&at(1, PEER), &at(5353, "224.0.0.251"))), dropped(DropReason::Multicast));
    assert_eq!(
        check(udp(&at(1, "fe80::2"), &at(5353, "ff02::fb"))),
        dropped(DropReason::Multicast)
    );
    assert_eq!(check(icmp("fe80::2", "fe80::1", 128, 0)), dropped(DropReason::LinkLocal));
    assert_eq!(check(udp(&at(1, PEER), &at(53, "169.254.1.1"))), dropped(DropReason::LinkLocal));
    let metadata = udp(&at(1, PEER), &at(53, "169.254.169.254"));
    assert_eq!(check(metadata), dropped(DropReason::NotLocal), "past the link-local rule");

    // Later fragments carry no header to judge; a first fragment is judged like a packet.
    let ssh = tcp(&at(1, OTHER_PEER), &at(22, ME), SYN);
    assert_eq!(check(fragment_v4(ssh.clone(), 185, false)), Verdict::Accept);
    assert_eq!(check(fragment_v4(ssh.clone(), 3, false)), dropped(DropReason::Malformed));
    let v6 = udp(&at(1, "fd7a:115c:a1e0::2"), &at(53, ME_V6));
    assert_eq!(check(fragment_v6(v6.clone(), 100, true)), Verdict::Accept);
    assert_eq!(check(fragment_v6(v6, 0, true)), Verdict::Accept);
    assert_eq!(check(ip(PEER, ME, 0, &[0; 8])), dropped(DropReason::UnknownProtocol));
    assert_eq!(check(ssh[..30].to_vec()), dropped(DropReason::Malformed));
}

#[test]
fn deny_all_judges_the_first_fragment_and_passes_the_rest() {
    let mut f = filter("[]");
    let now = Instant::now();
    let syn = tcp(&at(1, PEER), &at(22, ME), SYN);
    let first = fragment_v4(syn.clone(), 0, true);
    assert_eq!(f.check_inbound(now, &first), dropped(DropReason::NoRule));
    assert_eq!(f.check_inbound(now, &fragment_v4(syn, 185, false)), Verdict::Accept);
}

#[test]
fn portless_protocols_need_every_port_open() {
    let mut f = filter(
        r#"[{"SrcIPs":["100.64.0.2"],"DstPorts":[{"IP":"100.64.0.1","Ports":{"First":0,"Last":65535}}],"IPProto":[47,132]},
            {"SrcIPs":["100.64.0.3"],"DstPorts":[{"IP":"100.64.0.1","Ports":{"First":0,"Last":1000}}],"IPProto":[47]}]"#,
    );
    let now = Instant::now();
    assert_eq!(f.check_inbound(now, &ip(PEER, ME, GRE, &[0; 8])), Verdict::Accept);
    let partial = ip(OTHER_PEER, ME, GRE, &[0; 8]);
    assert_eq!(f.check_inbound(now, &partial), dropped(DropReason::NoRule));
    // A UDP datagram's 12 bytes read as an SCTP common header.
    let mut sctp = udp(&at(9, PEER), &at(36412, ME));
    sctp[9] = PROTO_SCTP;
    assert_eq!(f.check_inbound(now, &sctp), Verdict::Accept);
}

#[test]
fn broken_packets_never_panic() {
    let mut f = filter(
        r#"[{"SrcIPs":["100.64.0.0/10","fd7a:115c:a1e0::/48"],"DstPorts":[{"IP":"*","Ports":{"First":22,"Last":443}}]}]"#,
    );
    let now = Instant::now();
    let seeds = [
        tcp(&at(1, PEER), &at(22, ME), SYN),
        udp(&at(53, "fd7a:115c:a1e0::2"), &at(5000, ME_V6)),
        fragment_v6(udp(&at(53, "fd7a:115c:a1e0::2"), &at(5000, ME_V6)), 0, true),
        icmp(PEER, ME, ECHO_REQUEST, 0),
        fragment_v4(udp(&at(53, PEER), &at(5000, ME)), 0, true),
    ];
    for (seed, packet) in seeds.iter().enumerate() {
        shake(seed as u64 + 101, 3000, packet, |bytes| {
            f.note_outbound(now, bytes);
            let _ = f.check_inbound(now, bytes);
        });
    }
}

/// How a packet meets the shields: this node raised them, or (with them down) its sender is a
/// peer control jailed.
type Judge = fn(&mut Filter, Instant, &[u8]) -> Verdict;

#[test]
fn shields_up_refuses_new_flows_under_any_policy_but_passes_replies() {
    let now = Instant::now();
    let raised: Judge = |f, now, packet| {
        f.set_shields_up(true);
        f.check_inbound(now, packet)
    };
    let jailed: Judge = |f, now, packet| f.check_inbound_shielded(now, packet);
    for (judge, raises) in [(raised, true), (jailed, false)] {
        for mut f in [filter(ALLOW_ALL), Filter::new(None, &local())] {
            let mut check = |packet: Vec<u8>| judge(&mut f, now, &packet);
            let shielded = dropped(DropReason::ShieldsUp);
            assert_eq!(check(tcp(&at(40000, PEER), &at(22, ME), SYN)), shielded);
            assert_eq!(check(udp(&at(1, PEER), &at(53, ME))), shielded);
            assert_eq!(check(icmp(PEER, ME, ECHO_REQUEST, 0)), shielded);
            assert_eq!(check(ip(PEER, ME, GRE, &[0; 8])), shielded);
            // Replies to what this node opened.
            assert_eq!(check(tcp(&at(22, PEER), &at(40000, ME), SYN_ACK)), Verdict::Accept);
            assert_eq!(check(tcp(&at(22, PEER), &at(40000, ME), ACK)), Verdict::Accept);
            assert_eq!(check(icmp(PEER, ME, ECHO_REPLY, 0)), Verdict::Accept);
            assert_eq!(check(icmp(PEER, ME, UNREACHABLE, 1)), Verdict::Accept);
            assert_eq!(check(ip(PEER, ME, PROTO_TSMP, b"p12345678")), Verdict::Accept);
            f.note_outbound(now, &udp(&at(5000, ME), &at(53, PEER)));
            assert_eq!(judge(&mut f, now, &udp(&at(53, PEER), &at(5000, ME))), Verdict::Accept);
            assert_eq!(f.shields_up(), raises, "a jail raises no shields for anyone else");
            // Lowered again: the policy rules as before.
            f.set_shields_up(false);
            let syn = tcp(&at(40000, PEER), &at(22, ME), SYN);
            assert_eq!(f.check_inbound(now, &syn), Verdict::Accept);
        }
    }
}

#[test]
fn shields_up_keeps_flows_opened_before_it_went_up() {
    let mut f = filter("[]");
    let now = Instant::now();
    f.note_outbound(now, &udp(&at(5000, ME), &at(53, PEER)));
    f.set_shields_up(true);
    assert_eq!(f.check_inbound(now, &udp(&at(53, PEER), &at(5000, ME))), Verdict::Accept);
    assert_eq!(
        f.check_inbound(now, &udp(&at(53, PEER), &at(5001, ME))),
        dropped(DropReason::ShieldsUp)
    );
}
