//! Messages built byte by byte from each OS's documented layout (the offsets are written
//! out here again, from the headers, rather than taken from [`layout`]), then parsed.

use super::*;
use crate::testing::shake;

const ALL: [OsKind; 5] = OsKind::BSD_FAMILY;

/// The documented header facts for one OS: (version, route header size, interface header
/// size, address header size), the RTM numbers of ADD, IFINFO, NEWADDR, DELADDR, and the
/// (index, flags, addrs) offsets of the route, interface and address headers.
struct Doc {
    version: u8,
    sizes: [usize; 3],
    rtm_add: u8,
    rtm_ifinfo: u8,
    rtm_newaddr: u8,
    rtm_deladdr: u8,
    offsets: [[usize; 3]; 3],
    /// Sockaddr alignment, 0 for illumos (no sa_len).
    align: usize,
}

fn doc(os: OsKind) -> Doc {
    let classic = [[4, 8, 12], [12, 8, 4], [12, 8, 4]];
    match os {
        OsKind::FreeBsd => Doc {
            version: 5,
            sizes: [152, 168, 20],
            rtm_add: 1,
            rtm_ifinfo: 0xe,
            rtm_newaddr: 0xc,
            rtm_deladdr: 0xd,
            offsets: classic,
            align: 8,
        },
        OsKind::NetBsd => Doc {
            version: 4,
            sizes: [120, 152, 32],
            rtm_add: 1,
            rtm_ifinfo: 0x14,
            rtm_newaddr: 0x16,
            rtm_deladdr: 0x17,
            offsets: [[4, 8, 12], [12, 8, 4], [4, 8, 12]],
            align: 8,
        },
        OsKind::OpenBsd => Doc {
            version: 5,
            sizes: [96, 168, 24],
            rtm_add: 1,
            rtm_ifinfo: 0xe,
            rtm_newaddr: 0xc,
            rtm_deladdr: 0xd,
            offsets: [[6, 16, 12], [6, 16, 12], [6, 16, 12]],
            align: 8,
        },
        OsKind::Darwin => Doc {
            version: 5,
            sizes: [92, 112, 20],
            rtm_add: 1,
            rtm_ifinfo: 0xe,
            rtm_newaddr: 0xc,
            rtm_deladdr: 0xd,
            offsets: classic,
            align: 4,
        },
        OsKind::Illumos => Doc {
            version: 3,
            sizes: [76, 84, 20],
            rtm_add: 1,
            rtm_ifinfo: 0xe,
            rtm_newaddr: 0xc,
            rtm_deladdr: 0xd,
            offsets: classic,
            align: 0,
        },
        OsKind::Linux => unreachable!("no PF_ROUTE"),
    }
}

const ROUTE: usize = 0;
const INTERFACE: usize = 1;
const ADDRESS: usize = 2;

/// A header of kind `which` with the given type, index, flags and address bitmap, followed
/// by `sockaddrs`; msglen (and OpenBSD's hdrlen) filled in.
fn message(
    os: OsKind,
    which: usize,
    kind: u8,
    index: u16,
    flags: u32,
    sockaddrs: &[Vec<u8>],
) -> Vec<u8> {
    let d = doc(os);
    let mut m = vec![0u8; d.sizes[which]];
    m[2] = d.version;
    m[3] = kind;
    let [at_index, at_flags, at_addrs] = d.offsets[which];
    m[at_index..at_index + 2].copy_from_slice(&index.to_ne_bytes());
    m[at_flags..at_flags + 4].copy_from_slice(&flags.to_ne_bytes());
    let addrs: u32 =
        sockaddrs.iter().enumerate().filter(|(_, s)| !s.is_empty()).map(|(i, _)| 1 << i).sum();
    m[at_addrs..at_addrs + 4].copy_from_slice(&addrs.to_ne_bytes());
    if os == OsKind::OpenBsd {
        let hdrlen = m.len() as u16;
        m[4..6].copy_from_slice(&hdrlen.to_ne_bytes());
    }
    sockaddrs.iter().for_each(|s| m.extend_from_slice(s));
    let msglen = m.len() as u16;
    m[..2].copy_from_slice(&msglen.to_ne_bytes());
    m
}

/// A sockaddr for `ip` in `os`'s encoding, padded.
fn sockaddr(os: OsKind, ip: &str) -> Vec<u8> {
    let d = doc(os);
    let ip: IpAddr = ip.parse().unwrap();
    let (family, mut bytes) = match ip {
        IpAddr::V4(a) => (2u16, [&[0u8; 4][..], &a.octets(), &[0; 8]].concat()),
        IpAddr::V6(a) => (os.af_inet6() as u16, [&[0u8; 8][..], &a.octets(), &[0; 4]].concat()),
    };
    if d.align == 0 {
        bytes[..2].copy_from_slice(&family.to_ne_bytes());
        if ip.is_ipv6() {
            bytes.extend_from_slice(&[0; 4]); // __sin6_src_id
        }
        return bytes;
    }
    bytes[0] = bytes.len() as u8;
    bytes[1] = family as u8;
    pad(bytes, d.align)
}

fn pad(mut bytes: Vec<u8>, align: usize) -> Vec<u8> {
    bytes.resize(bytes.len().next_multiple_of(align), 0);
    bytes
}

/// A /0 netmask the way the BSD kernels send it: `sa_len` 0 (illumos: a zero sockaddr_in).
fn zero_mask(os: OsKind) -> Vec<u8> {
    match doc(os).align {
        0 => [&2u16.to_ne_bytes()[..], &[0; 14]].concat(),
        align => vec![0; align],
    }
}

fn none() -> Vec<u8> {
    Vec::new()
}

#[test]
fn default_routes_coming_and_going() {
    for os in ALL {
        let d = doc(os);
        let v4 = message(
            os,
            ROUTE,
            d.rtm_add,
            3,
            0x2,
            &[sockaddr(os, "0.0.0.0"), sockaddr(os, "192.168.1.1"), zero_mask(os)],
        );
        let v6 = message(
            os,
            ROUTE,
            2,
            4,
            0x2,
            &[sockaddr(os, "::"), sockaddr(os, "fe80::1"), zero_mask(os)],
        );
        let both = [v4, v6].concat();
        assert_eq!(
            parse(os, &both),
            Ok(vec![
                LinkEvent::DefaultRoute { change: RouteChange::Added, ipv6: false, interface: 3 },
                LinkEvent::DefaultRoute { change: RouteChange::Deleted, ipv6: true, interface: 4 },
            ]),
            "{os}"
        );
    }
}

#[test]
fn other_routes_are_not_events() {
    for os in ALL {
        let mask = sockaddr(os, "255.0.0.0");
        let subnet = message(
            os,
            ROUTE,
            1,
            3,
            0x2,
            &[sockaddr(os, "10.0.0.0"), sockaddr(os, "192.168.1.1"), mask],
        );
        let host =
            message(os, ROUTE, 1, 3, 0x4, &[sockaddr(os, "0.0.0.0"), sockaddr(os, "192.168.1.1")]);
        assert_eq!(parse(os, &[subnet, host].concat()), Ok(vec![]), "{os}");
    }
}

#[test]
fn interfaces_going_up_and_down() {
    for os in ALL {
        let ifinfo = doc(os).rtm_ifinfo;
        let up = message(os, INTERFACE, ifinfo, 7, 0x1 | 0x40, &[]);
        let down = message(os, INTERFACE, ifinfo, 7, 0x40, &[]);
        assert_eq!(
            parse(os, &[up, down].concat()),
            Ok(vec![
                LinkEvent::Interface { index: 7, up: true },
                LinkEvent::Interface { index: 7, up: false }
            ]),
            "{os}"
        );
    }
}

#[test]
fn addresses_after_a_netmask_and_an_interface_name() {
    for os in ALL {
        let d = doc(os);
        let v6_mask = sockaddr(os, "ffff:ffff:ffff::");
        let link = match d.align {
            // sockaddr_dl: 252 bytes, and illumos packs the next one right after it.
            0 => [&25u16.to_ne_bytes()[..], &[0; 250]].concat(),
            align => pad(vec![12, 18, 7, 0, 0, 4, 0, 0, b't', b'u', b'n', b'0'], align),
        };
        let added = message(
            os,
            ADDRESS,
            d.rtm_newaddr,
            9,
            0,
            &[none(), none(), v6_mask, none(), link, sockaddr(os, "fd7a:115c:a1e0::1")],
        );
        let removed = message(
            os,
            ADDRESS,
            d.rtm_deladdr,
            9,
            0,
            &[none(), none(), none(), none(), none(), sockaddr(os, "100.64.0.1")],
        );
        assert_eq!(
            parse(os, &[added, removed].concat()),
            Ok(vec![
                LinkEvent::AddressAdded { index: 9, address: "fd7a:115c:a1e0::1".parse().unwrap() },
                LinkEvent::AddressRemoved { index: 9, address: "100.64.0.1".parse().unwrap() },
            ]),
            "{os}"
        );
    }
}

#[test]
fn the_sockaddr_padding_is_each_oss_own() {
    // A 28-byte sockaddr_in6 takes 28 bytes on macOS and 32 on the 8-byte systems: read
    // with the wrong rule, the address after it is garbage or missing.
    let inet6_len28 = |os: OsKind| {
        let mut s = sockaddr(os, "ffff::");
        s.truncate(28);
        s
    };
    let darwin = message(
        OsKind::Darwin,
        ADDRESS,
        0xc,
        1,
        0,
        &[
            none(),
            none(),
            inet6_len28(OsKind::Darwin),
            none(),
            none(),
            sockaddr(OsKind::Darwin, "100.64.0.1"),
        ],
    );
    assert_eq!(
        parse(OsKind::Darwin, &darwin),
        Ok(vec![LinkEvent::AddressAdded { index: 1, address: "100.64.0.1".parse().unwrap() }])
    );
    // The same bytes under FreeBSD's rule (8; same header otherwise) skip 4 bytes too many.
    assert_ne!(parse(OsKind::FreeBsd, &darwin), parse(OsKind::Darwin, &darwin));
}

#[test]
fn netbsd_8_numbering_is_not_the_old_one() {
    let old_newaddr = message(
        OsKind::NetBsd,
        ADDRESS,
        0xc,
        1,
        0,
        &[none(), none(), none(), none(), none(), sockaddr(OsKind::NetBsd, "100.64.0.1")],
    );
    assert_eq!(parse(OsKind::NetBsd, &old_newaddr), Ok(vec![]));
}

#[test]
fn announcements_and_desync() {
    let cases: [(OsKind, u8, usize, usize, usize); 3] = [
        (OsKind::FreeBsd, 0x11, 24, 4, 22),
        (OsKind::NetBsd, 0x10, 24, 4, 22),
        (OsKind::OpenBsd, 0xf, 26, 6, 8),
    ];
    for (os, kind, len, at_index, at_what) in cases {
        let mut m = vec![0u8; len];
        m[..2].copy_from_slice(&(len as u16).to_ne_bytes());
        m[2] = doc(os).version;
        m[3] = kind;
        m[at_index..at_index + 2].copy_from_slice(&5u16.to_ne_bytes());
        let arrival = m.clone();
        m[at_what..at_what + 2].copy_from_slice(&1u16.to_ne_bytes());
        assert_eq!(
            parse(os, &[arrival, m].concat()),
            Ok(vec![
                LinkEvent::InterfaceArrived { index: 5 },
                LinkEvent::InterfaceDeparted { index: 5 }
            ]),
            "{os}"
        );
    }
    let desync = [4, 0, 5, 0x10];
    assert_eq!(parse(OsKind::OpenBsd, &desync), Ok(vec![LinkEvent::Resync]));
}

#[test]
fn openbsd_sockaddrs_start_at_the_header_length_it_sends() {
    let os = OsKind::OpenBsd;
    let mut m = message(os, ROUTE, 1, 2, 0x2, &[]);
    m.extend_from_slice(&[0; 8]); // a header grown by a later release
    m[12..16].copy_from_slice(&0x5u32.to_ne_bytes()); // DST | NETMASK
    let hdrlen = m.len() as u16;
    m[4..6].copy_from_slice(&hdrlen.to_ne_bytes());
    m.extend_from_slice(&sockaddr(os, "0.0.0.0"));
    m.extend_from_slice(&zero_mask(os));
    let msglen = m.len() as u16;
    m[..2].copy_from_slice(&msglen.to_ne_bytes());
    assert_eq!(
        parse(os, &m),
        Ok(vec![LinkEvent::DefaultRoute { change: RouteChange::Added, ipv6: false, interface: 2 }])
    );
    m[4..6].copy_from_slice(&(msglen + 1).to_ne_bytes());
    assert!(matches!(parse(os, &m), Err(ParseError::HeaderLength { .. })));
}

#[test]
fn lying_lengths_are_typed_errors() {
    for os in ALL {
        let d = doc(os);
        let good = message(
            os,
            ROUTE,
            d.rtm_add,
            1,
            0x2,
            &[sockaddr(os, "0.0.0.0"), none(), zero_mask(os)],
        );
        let mut longer = good.clone();
        longer[..2].copy_from_slice(&(good.len() as u16 + 1).to_ne_bytes());
        assert!(matches!(parse(os, &longer), Err(ParseError::Truncated { .. })), "{os}");
        assert!(matches!(parse(os, &[2, 0]), Err(ParseError::BadLength { msglen: 2 })), "{os}");
        assert!(matches!(parse(os, &[9]), Err(ParseError::Truncated { .. })), "{os}");
        let short_header = [&8u16.to_ne_bytes()[..], &[d.version, d.rtm_add, 0, 0, 0, 0]].concat();
        assert!(parse(os, &short_header).is_err(), "{os}");
        let mut wrong_version = good.clone();
        wrong_version[2] = d.version + 1;
        assert!(matches!(parse(os, &wrong_version), Err(ParseError::Version { .. })), "{os}");
        // The destination sockaddr cut off: the message ends inside it.
        let mut cut = good[..d.sizes[ROUTE] + 6].to_vec();
        let cut_len = cut.len() as u16;
        cut[..2].copy_from_slice(&cut_len.to_ne_bytes());
        assert!(
            matches!(parse(os, &cut), Err(ParseError::Sockaddr { index: 0, .. })),
            "{os}: {:?}",
            parse(os, &cut)
        );
    }
    assert_eq!(parse(OsKind::Linux, &[]), Err(ParseError::NoRoutingSocket(OsKind::Linux)));
}

#[test]
fn random_damage_never_panics() {
    for (seed, os) in (1u64..).zip(ALL) {
        let d = doc(os);
        let samples = [
            message(
                os,
                ROUTE,
                d.rtm_add,
                1,
                0x2,
                &[sockaddr(os, "0.0.0.0"), sockaddr(os, "10.0.0.1"), zero_mask(os)],
            ),
            message(
                os,
                ADDRESS,
                d.rtm_newaddr,
                2,
                0,
                &[none(), none(), none(), none(), none(), sockaddr(os, "fd7a::1")],
            ),
            message(os, INTERFACE, d.rtm_ifinfo, 3, 1, &[]),
        ];
        for sample in samples {
            shake(seed, 3000, &sample, |bytes| {
                if let Err(e) = parse(os, bytes) {
                    assert!(!e.to_string().is_empty());
                }
            });
        }
    }
}

/// A table dump: each OS's default via a gateway, a macOS scoped default via en7, a link-level
/// IPv6 default (gateway `link#N`), a subnet and a host route.
#[test]
fn a_table_dump_yields_its_default_routes() {
    for os in ALL {
        let get = 4;
        let gateway_default = message(
            os,
            ROUTE,
            get,
            3,
            0x2,
            &[sockaddr(os, "0.0.0.0"), sockaddr(os, "192.168.1.1"), zero_mask(os)],
        );
        let scoped = message(
            os,
            ROUTE,
            get,
            7,
            0x2 | 0x100_0000,
            &[sockaddr(os, "0.0.0.0"), sockaddr(os, "10.0.0.1"), zero_mask(os)],
        );
        let link_default =
            message(os, ROUTE, get, 4, 0x1, &[sockaddr(os, "::"), none(), zero_mask(os)]);
        let subnet = message(
            os,
            ROUTE,
            get,
            3,
            0x1,
            &[sockaddr(os, "10.0.0.0"), none(), sockaddr(os, "255.0.0.0")],
        );
        let host = message(os, ROUTE, get, 3, 0x4, &[sockaddr(os, "0.0.0.0"), none(), none()]);
        let dump = [gateway_default, scoped, link_default, subnet, host].concat();
        let defaults = default_routes(os, &dump).unwrap();
        let darwin = os == OsKind::Darwin;
        let expected = vec![
            DumpedDefault {
                ipv6: false,
                gateway: Some("192.168.1.1".parse().unwrap()),
                interface: 3,
                scoped: false,
            },
            DumpedDefault {
                ipv6: false,
                gateway: Some("10.0.0.1".parse().unwrap()),
                interface: 7,
                scoped: darwin,
            },
            DumpedDefault { ipv6: true, gateway: None, interface: 4, scoped: false },
        ];
        assert_eq!(defaults, expected, "{os}");
        assert!(default_routes(os, &dump[..dump.len() - 1]).is_err(), "{os}");
    }
}

#[test]
fn a_broken_dump_never_panics() {
    for os in ALL {
        let dump = message(
            os,
            ROUTE,
            4,
            3,
            0x2,
            &[sockaddr(os, "0.0.0.0"), sockaddr(os, "192.168.1.1"), zero_mask(os)],
        );
        shake(0x6475_6d70, 2_000, &dump, |broken| {
            let _ = default_routes(os, broken);
        });
    }
}
