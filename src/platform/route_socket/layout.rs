//! Where each OS's routing-socket messages keep the fields we read (64-bit layouts, from
//! net/route.h and net/if.h of each system; see the platform notes for the full tables).
//! Every message starts with msglen u16 @0, version u8 @2, type u8 @3 on all of them.

use crate::platform::os_kind::OsKind;

/// The message types we react to. `None` where the OS has no such message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageTypes {
    pub add: u8,
    pub delete: u8,
    pub change: u8,
    pub new_address: u8,
    pub deleted_address: u8,
    pub interface_info: u8,
    pub announce: Option<u8>,
    /// OpenBSD's "the kernel dropped messages for you": everything must be re-read.
    pub desync: Option<u8>,
}

/// Offsets in one fixed header: its size, the interface index (u16), flags and the
/// address bitmap (u32 each).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub len: usize,
    pub index: usize,
    pub flags: usize,
    pub addrs: usize,
}

/// `if_announcemsghdr`: size, interface index (u16) and `what` (u16: 0 arrival, 1 departure).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Announce {
    pub len: usize,
    pub index: usize,
    pub what: usize,
}

/// How the sockaddrs after a header are sized.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SockaddrSizing {
    /// `sa_len` in byte 0 and the family in byte 1; each takes `sa_len` rounded up to
    /// `align`, and a zero `sa_len` still takes `align` bytes.
    ByLength { align: usize },
    /// illumos: no `sa_len`; a u16 family at 0 decides the size, and the kernel packs
    /// them back to back, unpadded (`rts_fill_msg` advances by `sizeof`: 16, 32, and 252
    /// for a `sockaddr_dl`).
    ByFamily,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub version: u8,
    pub types: MessageTypes,
    pub route: Header,
    pub interface: Header,
    pub address: Header,
    pub announce: Option<Announce>,
    /// OpenBSD keeps the header length in the message (u16 @4); sockaddrs start there.
    pub header_len_at: Option<usize>,
    pub sockaddrs: SockaddrSizing,
    pub af_inet6: u16,
    /// Where the route header keeps what a lookup's answer is matched and judged by;
    /// `None` where the daemon dumps the table by sysctl instead of asking (all but illumos).
    pub lookup: Option<LookupFields>,
}

/// The route-header fields of an `RTM_GET` exchange, and the link-level family the answer
/// names the interface with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LookupFields {
    /// `rtm_seq` (i32): the question's number, echoed in the answer.
    pub seq: usize,
    /// `rtm_errno` (i32): why there is no answer (`ESRCH`: no such route).
    pub errno: usize,
    /// `AF_LINK`, the family of the `RTA_IFP` sockaddr.
    pub af_link: u16,
}

/// illumos `AF_LINK` (sys/socket.h).
pub(crate) const ILLUMOS_AF_LINK: u16 = 25;
/// `AF_INET`, `AF_INET6`, `AF_LINK` and their sizes on illumos, where sockaddrs carry no
/// length.
pub(crate) const ILLUMOS_SOCKADDR_SIZES: [(u16, usize); 3] =
    [(2, 16), (26, 32), (ILLUMOS_AF_LINK, 252)];
/// Any other illumos family is a plain 16-byte `struct sockaddr`.
pub(crate) const ILLUMOS_DEFAULT_SOCKADDR_SIZE: usize = 16;

pub(crate) const IFF_UP: u32 = 0x1;
pub(crate) const RTF_HOST: u32 = 0x4;

/// The common route-message numbering of FreeBSD, OpenBSD, macOS and illumos.
const CLASSIC: MessageTypes = MessageTypes {
    add: 0x1,
    delete: 0x2,
    change: 0x3,
    new_address: 0xc,
    deleted_address: 0xd,
    interface_info: 0xe,
    announce: None,
    desync: None,
};

/// The usual order: msglen, version, type, addrs @4, flags @8, index @12.
const fn if_style(len: usize) -> Header {
    Header { len, index: 12, flags: 8, addrs: 4 }
}

/// The usual route header: index @4, flags @8, addrs @12.
const fn rt_style(len: usize) -> Header {
    Header { len, index: 4, flags: 8, addrs: 12 }
}

impl Layout {
    /// `None` for Linux, which speaks netlink instead.
    pub(crate) fn of(os: OsKind) -> Option<Layout> {
        let af_inet6 = os.af_inet6() as u16;
        let layout = match os {
            OsKind::Linux => return None,
            OsKind::FreeBsd => Layout {
                version: 5,
                types: MessageTypes { announce: Some(0x11), ..CLASSIC },
                route: rt_style(152),
                interface: if_style(168),
                address: if_style(20),
                announce: Some(Announce { len: 24, index: 4, what: 22 }),
                header_len_at: None,
                sockaddrs: SockaddrSizing::ByLength { align: 8 },
                af_inet6,
                lookup: None,
            },
            // NetBSD 8 renumbered the interface messages and moved ifam_index forward.
            OsKind::NetBsd => Layout {
                version: 4,
                types: MessageTypes {
                    new_address: 0x16,
                    deleted_address: 0x17,
                    interface_info: 0x14,
                    announce: Some(0x10),
                    ..CLASSIC
                },
                route: rt_style(120),
                interface: if_style(152),
                address: Header { len: 32, index: 4, flags: 8, addrs: 12 },
                announce: Some(Announce { len: 24, index: 4, what: 22 }),
                header_len_at: None,
                sockaddrs: SockaddrSizing::ByLength { align: 8 },
                af_inet6,
                lookup: None,
            },
            OsKind::OpenBsd => Layout {
                version: 5,
                types: MessageTypes { announce: Some(0xf), desync: Some(0x10), ..CLASSIC },
                route: Header { len: 96, index: 6, flags: 16, addrs: 12 },
                interface: Header { len: 168, index: 6, flags: 16, addrs: 12 },
                address: Header { len: 24, index: 6, flags: 16, addrs: 12 },
                announce: Some(Announce { len: 26, index: 6, what: 8 }),
                header_len_at: Some(4),
                sockaddrs: SockaddrSizing::ByLength { align: 8 },
                af_inet6,
                lookup: None,
            },
            OsKind::Darwin => Layout {
                version: 5,
                types: CLASSIC,
                route: rt_style(92),
                interface: if_style(112),
                address: if_style(20),
                announce: None,
                header_len_at: None,
                sockaddrs: SockaddrSizing::ByLength { align: 4 },
                af_inet6,
                lookup: None,
            },
            OsKind::Illumos => Layout {
                version: 3,
                types: CLASSIC,
                route: rt_style(76),
                interface: if_style(84),
                address: if_style(20),
                announce: None,
                header_len_at: None,
                sockaddrs: SockaddrSizing::ByFamily,
                af_inet6,
                lookup: Some(LookupFields { seq: 20, errno: 24, af_link: ILLUMOS_AF_LINK }),
            },
        };
        Some(layout)
    }
}
