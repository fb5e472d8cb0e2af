//! Routing-socket messages (PF_ROUTE) of FreeBSD, NetBSD, OpenBSD, macOS and illumos, parsed
//! into the few link changes the daemon reacts to: the default route came or went, an
//! interface went up or down, arrived or left, an address was added or removed.
//!
//! Pure parsing of bytes the kernel wrote, in the kernel's byte order, with each OS's
//! layout taken as a value (see [`layout`]). Every length field is checked against the
//! bytes really there: a short or lying message is a [`ParseError`], never a panic or an
//! out-of-bounds read (Tailscale's Go parser needed a panic guard for exactly this).
//! Read from the monitor socket (`platform::monitor_socket`), from sysctl route dumps and
//! from the answers to a default-route lookup ([`lookup`]; both in `platform::bind::kernel`).

pub(crate) mod layout;
// Only illumos asks for its default route (the others dump the table): compiled and
// tested everywhere, used on illumos.
#[cfg_attr(not(target_os = "illumos"), allow(dead_code))]
pub(crate) mod lookup;
mod sockaddr;

use crate::platform::os_kind::OsKind;
use layout::{Header, Layout, IFF_UP, RTF_HOST};
use sockaddr::{Sockaddr, RTAX_DST, RTAX_GATEWAY, RTAX_IFA, RTAX_NETMASK};
use std::fmt;
use std::net::IpAddr;

/// What a route-add, -delete or -change message did to a default route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteChange {
    Added,
    Deleted,
    Changed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    DefaultRoute {
        change: RouteChange,
        ipv6: bool,
        interface: u16,
    },
    Interface {
        index: u16,
        up: bool,
    },
    InterfaceArrived {
        index: u16,
    },
    InterfaceDeparted {
        index: u16,
    },
    AddressAdded {
        index: u16,
        address: IpAddr,
    },
    AddressRemoved {
        index: u16,
        address: IpAddr,
    },
    /// The kernel dropped messages (OpenBSD says so): re-read the whole state.
    Resync,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The OS speaks netlink, not PF_ROUTE.
    NoRoutingSocket(OsKind),
    /// Fewer bytes than a length field or a header promises.
    Truncated { need: usize, have: usize },
    /// A message length too small for even the common header.
    BadLength { msglen: usize },
    /// A message of another layout version than the one we know.
    Version { found: u8, expected: u8 },
    /// OpenBSD's header length outside the message or short of the fields we read.
    HeaderLength { hdrlen: usize, msglen: usize },
    /// A sockaddr whose size runs past the end of its message.
    Sockaddr { index: usize, size: usize, left: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NoRoutingSocket(os) => write!(f, "{os} has no PF_ROUTE socket"),
            ParseError::Truncated { need, have } => {
                write!(f, "routing message truncated: need {need} bytes, have {have}")
            }
            ParseError::BadLength { msglen } => write!(f, "routing message length {msglen}"),
            ParseError::Version { found, expected } => {
                write!(f, "routing message version {found}, expected {expected}")
            }
            ParseError::HeaderLength { hdrlen, msglen } => {
                write!(f, "routing header length {hdrlen} in a {msglen}-byte message")
            }
            ParseError::Sockaddr { index, size, left } => {
                write!(f, "sockaddr {index} of {size} bytes with {left} left in the message")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// The length, version and type every routing message starts with.
const COMMON_LEN: usize = 4;

/// The events in `buf`: one message as read from the socket, or several back to back as a
/// sysctl dump returns them. Stops at the first damaged message, since its length cannot be
/// trusted to find the next one.
pub(crate) fn parse(os: OsKind, buf: &[u8]) -> Result<Vec<LinkEvent>, ParseError> {
    let layout = Layout::of(os).ok_or(ParseError::NoRoutingSocket(os))?;
    let mut events = Vec::new();
    each_message(buf, |message| {
        events.extend(parse_message(&layout, message)?);
        Ok(())
    })?;
    Ok(events)
}

/// A default route of a routing-table dump or of a lookup's answer, as the
/// physical-interface selection needs it. (illumos has no routing sysctl to dump with: it
/// asks, [`lookup`], and the dump parts are unused there.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DumpedDefault {
    pub ipv6: bool,
    /// `None` for a link-level gateway (`link#N`: the interface itself).
    pub gateway: Option<IpAddr>,
    pub interface: u16,
    /// macOS's interface-scoped default (`RTF_IFSCOPE`).
    pub scoped: bool,
}

/// `RTM_GET`, the type of every message of a table dump (sysctl `NET_RT_DUMP`) and of a
/// lookup's question and answer ([`lookup`]): 4 on every PF_ROUTE system.
const RTM_GET: u8 = 4;
/// macOS's `RTM_GET2`, the type of a `NET_RT_DUMP2` dump (`rt_msghdr2`, whose index, flags
/// and address bitmap sit where `rt_msghdr` keeps them). NetBSD uses 0x14 for IFINFO.
#[cfg_attr(target_os = "illumos", allow(dead_code))]
const DARWIN_RTM_GET2: u8 = 0x14;
/// macOS `net/route.h`.
#[cfg_attr(target_os = "illumos", allow(dead_code))]
const DARWIN_RTF_IFSCOPE: u32 = 0x100_0000;

/// The default routes in a routing-table dump, in table order.
#[cfg_attr(target_os = "illumos", allow(dead_code))]
pub(crate) fn default_routes(os: OsKind, buf: &[u8]) -> Result<Vec<DumpedDefault>, ParseError> {
    let layout = Layout::of(os).ok_or(ParseError::NoRoutingSocket(os))?;
    let route_kinds = [RTM_GET, layout.types.add, layout.types.change];
    let mut found = Vec::new();
    each_message(buf, |message| {
        let kind = message[3];
        let dump2 = os == OsKind::Darwin && kind == DARWIN_RTM_GET2;
        if message[2] == layout.version && (route_kinds.contains(&kind) || dump2) {
            found.extend(dumped_default(os, &layout, message)?);
        }
        Ok(())
    })?;
    Ok(found)
}

#[cfg_attr(target_os = "illumos", allow(dead_code))]
fn dumped_default(
    os: OsKind,
    layout: &Layout,
    message: &[u8],
) -> Result<Option<DumpedDefault>, ParseError> {
    Ok(default_of(layout, message)?.map(|route| DumpedDefault {
        ipv6: route.ipv6,
        gateway: route.gateway,
        interface: route.fields.index,
        scoped: os == OsKind::Darwin && route.fields.flags & DARWIN_RTF_IFSCOPE != 0,
    }))
}

/// A route message's route when it is a default one (0/0 or ::/0; host routes never are).
struct DefaultOf {
    fields: Fields,
    ipv6: bool,
    gateway: Option<IpAddr>,
}

/// The one reading of a route message that both the monitor and the dump use.
fn default_of(layout: &Layout, message: &[u8]) -> Result<Option<DefaultOf>, ParseError> {
    let fields = Fields::read(layout, &layout.route, message)?;
    if fields.flags & RTF_HOST != 0 {
        return Ok(None);
    }
    let addresses = sockaddr::walk(layout, message, fields.sockaddrs_at, fields.addrs)?;
    let destination = addresses[RTAX_DST].and_then(|s| s.ip(layout));
    let mask_is_zero = addresses[RTAX_NETMASK].is_none_or(|mask| mask.is_zero_mask());
    Ok(match destination {
        Some(dst) if dst.is_unspecified() && mask_is_zero => Some(DefaultOf {
            ipv6: dst.is_ipv6(),
            gateway: addresses[RTAX_GATEWAY].and_then(|s| s.ip(layout)),
            fields,
        }),
        _ => None,
    })
}

/// Calls `visit` with each message of `buf` (exactly `msglen` bytes, at least the common
/// header); stops at the first damaged one.
fn each_message(
    buf: &[u8],
    mut visit: impl FnMut(&[u8]) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut rest = buf;
    while !rest.is_empty() {
        let msglen = usize::from(read_u16(rest, 0)?);
        if msglen < COMMON_LEN {
            return Err(ParseError::BadLength { msglen });
        }
        let message = rest.get(..msglen).ok_or(truncated(msglen, rest))?;
        visit(message)?;
        rest = &rest[msglen..];
    }
    Ok(())
}

/// One message, exactly `msglen` bytes long.
fn parse_message(layout: &Layout, message: &[u8]) -> Result<Option<LinkEvent>, ParseError> {
    let (version, kind) = (message[2], message[3]);
    if version != layout.version {
        return Err(ParseError::Version { found: version, expected: layout.version });
    }
    let types = &layout.types;
    if Some(kind) == types.desync {
        return Ok(Some(LinkEvent::Resync));
    }
    if Some(kind) == types.announce {
        return announcement(layout, message);
    }
    let change = match kind {
        k if k == types.add => RouteChange::Added,
        k if k == types.delete => RouteChange::Deleted,
        k if k == types.change => RouteChange::Changed,
        k if k == types.interface_info => {
            let fields = Fields::read(layout, &layout.interface, message)?;
            let up = fields.flags & IFF_UP != 0;
            return Ok(Some(LinkEvent::Interface { index: fields.index, up }));
        }
        k if k == types.new_address || k == types.deleted_address => {
            return address(layout, message, k == types.new_address);
        }
        _ => return Ok(None),
    };
    default_route(layout, message, change)
}

fn default_route(
    layout: &Layout,
    message: &[u8],
    change: RouteChange,
) -> Result<Option<LinkEvent>, ParseError> {
    Ok(default_of(layout, message)?.map(|route| LinkEvent::DefaultRoute {
        change,
        ipv6: route.ipv6,
        interface: route.fields.index,
    }))
}

fn address(layout: &Layout, message: &[u8], added: bool) -> Result<Option<LinkEvent>, ParseError> {
    let fields = Fields::read(layout, &layout.address, message)?;
    let addresses = sockaddr::walk(layout, message, fields.sockaddrs_at, fields.addrs)?;
    let Some(address) = addresses[RTAX_IFA].and_then(|s: Sockaddr| s.ip(layout)) else {
        return Ok(None);
    };
    let index = fields.index;
    Ok(Some(match added {
        true => LinkEvent::AddressAdded { index, address },
        false => LinkEvent::AddressRemoved { index, address },
    }))
}

fn announcement(layout: &Layout, message: &[u8]) -> Result<Option<LinkEvent>, ParseError> {
    let Some(announce) = layout.announce else {
        return Ok(None);
    };
    need(message, announce.len)?;
    let index = read_u16(message, announce.index)?;
    Ok(match read_u16(message, announce.what)? {
        0 => Some(LinkEvent::InterfaceArrived { index }),
        1 => Some(LinkEvent::InterfaceDeparted { index }),
        _ => None,
    })
}

/// The fields of a fixed header, and where its sockaddrs begin.
struct Fields {
    index: u16,
    flags: u32,
    addrs: u32,
    sockaddrs_at: usize,
}

impl Fields {
    fn read(layout: &Layout, header: &Header, message: &[u8]) -> Result<Fields, ParseError> {
        let sockaddrs_at = match layout.header_len_at {
            Some(at) => {
                let hdrlen = usize::from(read_u16(message, at)?);
                let fields_end = (header.index + 2).max(header.flags + 4).max(header.addrs + 4);
                if hdrlen < fields_end || hdrlen > message.len() {
                    return Err(ParseError::HeaderLength { hdrlen, msglen: message.len() });
                }
                hdrlen
            }
            None => need(message, header.len).map(|_| header.len)?,
        };
        Ok(Fields {
            index: read_u16(message, header.index)?,
            flags: read_u32(message, header.flags)?,
            addrs: read_u32(message, header.addrs)?,
            sockaddrs_at,
        })
    }
}

fn truncated(need: usize, have: &[u8]) -> ParseError {
    ParseError::Truncated { need, have: have.len() }
}

fn need(bytes: &[u8], len: usize) -> Result<(), ParseError> {
    match bytes.len() >= len {
        true => Ok(()),
        false => Err(truncated(len, bytes)),
    }
}

/// Bytes `at..at+N`, or a truncation error.
fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], ParseError> {
    bytes.get(at..at + N).and_then(|b| b.try_into().ok()).ok_or(truncated(at + N, bytes))
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16, ParseError> {
    field(bytes, at).map(u16::from_ne_bytes)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ParseError> {
    field(bytes, at).map(u32::from_ne_bytes)
}

#[cfg(test)]
mod tests;
