//! The question and its answers, byte by byte from illumos's headers (`net/route.h`,
//! `net/if_dl.h`) and from how `ip_rts.c` builds an answer (`rts_rtmget`: destination,
//! gateway, netmask, then the interface's `sockaddr_dl` from `ill_dls_info` and its first
//! address, packed back to back). Offsets are written out here again rather than taken
//! from `layout`.

use super::*;
use crate::testing::shake;

const OS: OsKind = OsKind::Illumos;
/// `sizeof (rt_msghdr_t)` on illumos; version 3; `RTM_GET` 4; `RTM_ADD` 1.
const HEADER: usize = 76;
const VERSION: u8 = 3;
const GET: u8 = 4;
/// `rtm_index` u16 @4, `rtm_flags` @8, `rtm_addrs` @12, `rtm_seq` @20, `rtm_errno` @24.
const AT_INDEX: usize = 4;
const AT_FLAGS: usize = 8;
const AT_ADDRS: usize = 12;
const AT_SEQ: usize = 20;
const AT_ERRNO: usize = 24;
/// `AF_INET` 2, `AF_INET6` 26, `AF_LINK` 25.
const INET: u16 = 2;
const INET6: u16 = 26;
const LINK: u16 = 25;
const ESRCH: u32 = 3;

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// `sin_t`: family u16, port, address @4, zero padding: 16 bytes.
fn sin(address: [u8; 4]) -> Vec<u8> {
    [&INET.to_ne_bytes()[..], &[0; 2], &address, &[0; 8]].concat()
}

/// `sin6_t`: family, port, flowinfo, address @8, scope id, `__sin6_src_id`: 32 bytes.
fn sin6(address: &str) -> Vec<u8> {
    let address: std::net::Ipv6Addr = address.parse().unwrap();
    [&INET6.to_ne_bytes()[..], &[0; 6], &address.octets(), &[0; 8]].concat()
}

/// `sockaddr_dl` as `ill_dls_info` fills it: family, index, type (6: Ethernet), name
/// length, address length, selector length, then the name and the MAC in 244 bytes.
fn sdl(index: u16, name: &str) -> Vec<u8> {
    let mut data = [name.as_bytes(), &[2, 8, 32, 1, 2, 3]].concat();
    data.resize(244, 0);
    let head = [6, name.len() as u8, 6, 0];
    [&LINK.to_ne_bytes()[..], &index.to_ne_bytes(), &head, &data].concat()
}

/// An answer: `kind` numbered `seq` with `errno`, `addrs` and the sockaddrs after it.
fn answer_message(kind: u8, seq: u32, errno: u32, addrs: u32, sockaddrs: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0u8; HEADER];
    m[2] = VERSION;
    m[3] = kind;
    m[AT_FLAGS..AT_FLAGS + 4].copy_from_slice(&(0x1u32 | 0x2 | 0x40).to_ne_bytes());
    m[AT_ADDRS..AT_ADDRS + 4].copy_from_slice(&addrs.to_ne_bytes());
    m[AT_SEQ..AT_SEQ + 4].copy_from_slice(&seq.to_ne_bytes());
    m[AT_ERRNO..AT_ERRNO + 4].copy_from_slice(&errno.to_ne_bytes());
    sockaddrs.iter().for_each(|s| m.extend_from_slice(s));
    let len = m.len() as u16;
    m[..2].copy_from_slice(&len.to_ne_bytes());
    m
}

/// illumos's answer for the IPv4 default via 192.168.1.1 on e1000g0 (index 2), whose
/// address is 192.168.1.20: DST | GATEWAY | NETMASK | IFP | IFA.
fn v4_answer(seq: u32) -> Vec<u8> {
    let sockaddrs = [
        sin([0; 4]),
        sin([192, 168, 1, 1]),
        sin([0; 4]),
        sdl(2, "e1000g0"),
        sin([192, 168, 1, 20]),
    ];
    answer_message(GET, seq, 0, 0x1 | 0x2 | 0x4 | 0x10 | 0x20, &sockaddrs)
}

#[test]
fn the_question_names_the_default_exactly_and_asks_for_its_interface() {
    for (ipv6, family, size) in [(false, INET, 16), (true, INET6, 32)] {
        let q = default_route_question(OS, ipv6, 77).unwrap();
        assert_eq!(usize::from(u16_at(&q, 0)), q.len());
        assert_eq!(q.len(), HEADER + 2 * size + 252, "ipv6 {ipv6}");
        assert_eq!((q[2], q[3]), (VERSION, GET));
        assert_eq!(u32_at(&q, AT_ADDRS), 0x1 | 0x4 | 0x10, "DST | NETMASK | IFP");
        assert_eq!(u32_at(&q, AT_FLAGS) & 0x4, 0, "never RTF_HOST: the netmask must count");
        assert_eq!(u32_at(&q, AT_SEQ), 77);
        assert_eq!(u16_at(&q, AT_INDEX), 0);
        let sockaddrs =
            [(HEADER, size, family), (HEADER + size, size, family), (HEADER + 2 * size, 252, LINK)];
        for (at, len, family) in sockaddrs {
            assert_eq!(u16_at(&q, at), family, "the sockaddr at {at}");
            assert!(q[at + 2..at + len].iter().all(|&b| b == 0), "all zeros after the family");
        }
    }
}

#[test]
fn the_other_oses_dump_their_tables_instead_of_asking() {
    for os in OsKind::ALL.into_iter().filter(|os| *os != OS) {
        assert_eq!(default_route_question(os, false, 1), None, "{os}");
        assert!(answer(os, &v4_answer(1), 1).is_err(), "{os}");
    }
}

#[test]
fn the_answer_names_the_gateway_and_the_interface_of_its_sockaddr_dl() {
    assert_eq!(
        answer(OS, &v4_answer(9), 9),
        Ok(Answer::Default(DumpedDefault {
            ipv6: false,
            gateway: Some("192.168.1.1".parse().unwrap()),
            interface: 2,
            scoped: false,
        }))
    );
    let v6 = answer_message(
        GET,
        10,
        0,
        0x1 | 0x2 | 0x4 | 0x10,
        &[sin6("::"), sin6("fe80::1"), sin6("::"), sdl(3, "vioif0")],
    );
    assert_eq!(
        answer(OS, &v6, 10),
        Ok(Answer::Default(DumpedDefault {
            ipv6: true,
            gateway: Some("fe80::1".parse().unwrap()),
            interface: 3,
            scoped: false,
        }))
    );
}

#[test]
fn other_messages_on_the_socket_are_not_the_answer() {
    assert_eq!(answer(OS, &v4_answer(9), 8), Ok(Answer::NotOurs), "another question's");
    let mut added = v4_answer(9);
    added[3] = 1;
    assert_eq!(answer(OS, &added, 9), Ok(Answer::NotOurs), "a route change");
    let mut older = v4_answer(9);
    older[2] = VERSION - 1;
    assert_eq!(answer(OS, &older, 9), Ok(Answer::NotOurs), "another layout");
}

#[test]
fn no_default_route_is_said_so() {
    let refused = answer_message(GET, 4, ESRCH, 0x1 | 0x4 | 0x10, &[sin([0; 4]), sin([0; 4])]);
    // The kernel echoes the question's sockaddrs; the IFP one it was given is cut here, to
    // show that a refusal is read from rtm_errno before any sockaddr.
    assert_eq!(answer(OS, &refused, 4), Ok(Answer::NoRoute));
    let blackhole = answer_message(
        GET,
        5,
        0,
        0x1 | 0x2 | 0x4,
        &[sin([0; 4]), sin([127, 0, 0, 1]), sin([0; 4])],
    );
    assert_eq!(answer(OS, &blackhole, 5), Ok(Answer::NoRoute), "no interface to leave by");
    let subnet = answer_message(
        GET,
        6,
        0,
        0x1 | 0x4 | 0x10,
        &[sin([10, 0, 0, 0]), sin([255, 0, 0, 0]), sdl(2, "e1000g0")],
    );
    assert_eq!(answer(OS, &subnet, 6), Ok(Answer::NoRoute), "not a default");
}

#[test]
fn a_cut_or_lying_answer_is_an_error_never_a_panic() {
    let good = v4_answer(7);
    let cut = &good[..good.len() - 1];
    assert!(answer(OS, cut, 7).is_err());
    let mut short_sdl = good[..HEADER + 48 + 100].to_vec();
    let len = short_sdl.len() as u16;
    short_sdl[..2].copy_from_slice(&len.to_ne_bytes());
    assert!(matches!(answer(OS, &short_sdl, 7), Err(ParseError::Sockaddr { .. })));
    shake(0x6c6f_6f6b, 3_000, &good, |broken| {
        let _ = answer(OS, broken, 7);
    });
}
