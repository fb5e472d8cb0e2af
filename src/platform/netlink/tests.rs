//! Messages built byte by byte from the layouts in `linux/netlink.h` and
//! `linux/rtnetlink.h` (offsets written out again here), then parsed; and the same
//! messages shaken into thousands of broken ones, which must fail cleanly.

use super::*;
use crate::testing::shake;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// One netlink message: 16-byte header (len, type, flags, seq, pid) and `body`, padded.
fn message(kind: u16, body: &[u8]) -> Vec<u8> {
    message_with_flags(kind, 0, 7, body)
}

fn message_with_flags(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut out = Vec::new();
    out.extend((len as u32).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(flags.to_ne_bytes());
    out.extend(seq.to_ne_bytes());
    out.extend(0u32.to_ne_bytes());
    out.extend(body);
    out.resize(len.next_multiple_of(4), 0);
    out
}

/// One attribute: len u16, type u16, payload, padded to 4.
fn attribute(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(((4 + payload.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(payload);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// `ifinfomsg`: family, pad, type u16, index i32, flags u32, change u32.
fn link_body(index: u32, flags: u32) -> Vec<u8> {
    let mut body = vec![0, 0, 1, 0];
    body.extend(index.to_ne_bytes());
    body.extend(flags.to_ne_bytes());
    body.extend(0xffff_ffffu32.to_ne_bytes());
    body.extend(attribute(3, b"eth0\0"));
    body
}

/// `ifaddrmsg`: family, prefixlen, flags, scope, index u32; then attributes.
fn address_body(family: u8, prefix_len: u8, index: u32, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![family, prefix_len, 0, 0];
    body.extend(index.to_ne_bytes());
    attributes.iter().for_each(|a| body.extend(a));
    body
}

/// `rtmsg`: family, dst_len, src_len, tos, table, protocol, scope, type, flags u32.
fn route_body(family: u8, dst_len: u8, table: u8, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![family, dst_len, 0, 0, table, 3, 0, 1];
    body.extend(0u32.to_ne_bytes());
    attributes.iter().for_each(|a| body.extend(a));
    body
}

fn u32_attribute(kind: u16, value: u32) -> Vec<u8> {
    attribute(kind, &value.to_ne_bytes())
}

/// `default via 192.168.1.1 dev eth0 (2) metric 100` in the main table (254).
fn default_route_v4() -> Vec<u8> {
    message(
        24,
        &route_body(
            AF_INET,
            0,
            254,
            &[
                u32_attribute(15, 254),
                u32_attribute(6, 100),
                attribute(5, &[192, 168, 1, 1]),
                u32_attribute(4, 2),
            ],
        ),
    )
}

fn everything() -> Vec<u8> {
    let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut dump = Vec::new();
    dump.extend(message(16, &link_body(2, 0x1 | 0x40 | 0x1000)));
    dump.extend(message(17, &link_body(9, 0x1)));
    let peer = attribute(1, &[10, 0, 0, 2]);
    let local = attribute(2, &[10, 0, 0, 1]);
    dump.extend(message(20, &address_body(AF_INET, 24, 2, &[peer, local])));
    dump.extend(message(21, &address_body(AF_INET6, 64, 2, &[attribute(1, &v6.octets())])));
    dump.extend(default_route_v4());
    let tun_route =
        route_body(AF_INET, 10, 52, &[attribute(1, &[100, 64, 0, 0]), u32_attribute(4, 9)]);
    dump.extend(message(25, &tun_route));
    dump
}

#[test]
fn reads_each_kind_of_message() {
    let events = parse(&everything()).unwrap();
    let prefix = |s: &str| s.parse::<Prefix>().unwrap();
    assert_eq!(
        events,
        vec![
            NetlinkEvent::Link { index: 2, usable: true, removed: false },
            NetlinkEvent::Link { index: 9, usable: false, removed: true },
            NetlinkEvent::Address { index: 2, address: prefix("10.0.0.1/24"), removed: false },
            NetlinkEvent::Address { index: 2, address: prefix("2001:db8::1/64"), removed: true },
            NetlinkEvent::Route(RouteMessage {
                removed: false,
                destination: prefix("0.0.0.0/0"),
                table: 254,
                kind: 1,
                interface: Some(2),
                gateway: Some("192.168.1.1".parse().unwrap()),
                priority: 100,
            }),
            NetlinkEvent::Route(RouteMessage {
                removed: true,
                destination: prefix("100.64.0.0/10"),
                table: 52,
                kind: 1,
                interface: Some(9),
                gateway: None,
                priority: 0,
            }),
        ]
    );
}

#[test]
fn stops_at_done_and_skips_what_it_does_not_judge() {
    let mut dump = message(2, &[0; 20]);
    dump.extend(message(32, &route_body(AF_INET, 0, 254, &[])));
    dump.extend(message(24, &route_body(7, 0, 254, &[])));
    dump.extend(message(3, &[0; 4]));
    dump.extend(default_route_v4());
    assert_eq!(parse(&dump), Ok(vec![]));
    assert_eq!(parse(&message(4, &[])), Ok(vec![NetlinkEvent::Overrun]));
}

#[test]
fn a_route_dump_request_is_a_getroute_with_the_dump_flags_and_ends_at_done() {
    let request = route_dump_request(9);
    // len 28, type 26, flags REQUEST|ROOT|MATCH, seq 9, pid 0, rtmsg all zero (AF_UNSPEC).
    assert_eq!(request, message_with_flags(26, 0x301, 9, &[0; 12]));
    let mut answer = default_route_v4();
    assert!(!ends_dump(&answer), "more to come");
    assert!(!ends_dump(&[]));
    answer.extend(message(3, &[0; 4]));
    assert!(ends_dump(&answer));
    assert!(ends_dump(&message(2, &[0; 20])), "an error ends it");
    assert!(ends_dump(&answer[..answer.len() - 3]), "so does a damaged message");
}

#[test]
fn a_table_above_255_comes_from_its_attribute() {
    let body = route_body(AF_INET6, 0, 252, &[u32_attribute(15, 1000)]);
    let [NetlinkEvent::Route(route)] = &parse(&message(24, &body)).unwrap()[..] else {
        panic!("one route expected");
    };
    assert_eq!((route.table, route.destination.to_string()), (1000, "::/0".into()));
}

#[test]
fn lying_lengths_are_errors() {
    let good = default_route_v4();
    let mut short = good.clone();
    short[..4].copy_from_slice(&200u32.to_ne_bytes());
    assert_eq!(parse(&short), Err(NetlinkError::Truncated { need: 200, have: good.len() }));
    let mut tiny = good.clone();
    tiny[..4].copy_from_slice(&8u32.to_ne_bytes());
    assert_eq!(parse(&tiny), Err(NetlinkError::BadLength { len: 8 }));
    assert_eq!(parse(&good[..10]), Err(NetlinkError::Truncated { need: good.len(), have: 10 }));
    assert_eq!(parse(&good[..3]), Err(NetlinkError::Truncated { need: 4, have: 3 }));
    let mut long_attribute = good.clone();
    long_attribute[28..30].copy_from_slice(&99u16.to_ne_bytes());
    assert!(matches!(parse(&long_attribute), Err(NetlinkError::Attribute { at: 12, len: 99, .. })));
}

#[test]
fn wrong_sizes_are_errors() {
    let gateway_v6_in_v4 = route_body(AF_INET, 0, 254, &[attribute(5, &[0; 16])]);
    assert_eq!(
        parse(&message(24, &gateway_v6_in_v4)),
        Err(NetlinkError::AddressSize { family: AF_INET, size: 16 })
    );
    let short_oif = route_body(AF_INET, 0, 254, &[attribute(4, &[2, 0])]);
    assert_eq!(parse(&message(24, &short_oif)), Err(NetlinkError::NumberSize { kind: 4, size: 2 }));
    let long_prefix = route_body(AF_INET, 33, 254, &[]);
    assert_eq!(
        parse(&message(24, &long_prefix)),
        Err(NetlinkError::PrefixLength { family: AF_INET, len: 33 })
    );
    assert_eq!(parse(&message(16, &[0; 8])), Err(NetlinkError::Truncated { need: 16, have: 8 }));
}

#[test]
fn broken_messages_never_panic() {
    let valid = everything();
    let mut parsed = 0;
    shake(0x006e_6574_6c69_6e6b, 20_000, &valid, |broken| {
        if let Ok(events) = parse(broken) {
            parsed += 1;
            assert!(events.len() <= broken.len() / 16, "more events than messages fit");
        }
    });
    assert!(parsed > 0, "some mutations (flipped flags, payload bytes) still parse");
}
