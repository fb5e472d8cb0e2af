//! Linux rtnetlink messages (`NETLINK_ROUTE`), parsed into the link, address and route
//! changes the route monitor judges.
//!
//! Pure parsing of what the kernel wrote (host byte order, everything 4-byte aligned):
//! every length, the message's and each attribute's, is checked against the bytes really
//! there, so a short or lying message is a [`NetlinkError`], never a panic. Read from the monitor
//! socket (`platform::monitor_socket`) and from route dumps (`platform::bind::kernel`).

use crate::prefix::Prefix;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_addr.h`, `linux/if.h`.
mod abi {
    pub(super) const HEADER_LEN: usize = 16;
    pub(super) const NLMSG_ERROR: u16 = 2;
    pub(super) const RTM_GETROUTE: u16 = 26;
    pub(super) const NLM_F_REQUEST: u16 = 0x1;
    /// `NLM_F_ROOT | NLM_F_MATCH`: every entry.
    pub(super) const NLM_F_DUMP: u16 = 0x300;
    pub(super) const NLMSG_DONE: u16 = 3;
    pub(super) const NLMSG_OVERRUN: u16 = 4;
    pub(super) const RTM_NEWLINK: u16 = 16;
    pub(super) const RTM_DELLINK: u16 = 17;
    pub(super) const RTM_NEWADDR: u16 = 20;
    pub(super) const RTM_DELADDR: u16 = 21;
    pub(super) const RTM_NEWROUTE: u16 = 24;
    pub(super) const RTM_DELROUTE: u16 = 25;
    /// `struct ifinfomsg`: index i32 @4, flags u32 @8.
    pub(super) const IFINFOMSG_LEN: usize = 16;
    /// `struct ifaddrmsg`: family @0, prefixlen @1, index u32 @4.
    pub(super) const IFADDRMSG_LEN: usize = 8;
    /// `struct rtmsg`: family @0, dst_len @1, table @4, type @7.
    pub(super) const RTMSG_LEN: usize = 12;
    pub(super) const IFA_ADDRESS: u16 = 1;
    pub(super) const IFA_LOCAL: u16 = 2;
    pub(super) const RTA_DST: u16 = 1;
    pub(super) const RTA_OIF: u16 = 4;
    pub(super) const RTA_GATEWAY: u16 = 5;
    pub(super) const RTA_PRIORITY: u16 = 6;
    pub(super) const RTA_TABLE: u16 = 15;
    /// The attribute-type bits; the top two are the nested and byte-order flags.
    pub(super) const NLA_TYPE_MASK: u16 = 0x3fff;
    pub(super) const AF_INET: u8 = 2;
    pub(super) const AF_INET6: u8 = 10;
    pub(super) const IFF_UP: u32 = 0x1;
    pub(super) const IFF_RUNNING: u32 = 0x40;
}

/// `rtm_type` of an ordinary route (not local, broadcast, unreachable...).
pub(crate) const RTN_UNICAST: u8 = 1;
/// Linux's main routing table (`RT_TABLE_MAIN`), where the physical defaults live.
pub(crate) const RT_TABLE_MAIN: u32 = 254;

/// One change the kernel announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NetlinkEvent {
    /// `RTM_NEWLINK`, `RTM_DELLINK`. `usable` is administratively up with a carrier.
    Link { index: u32, usable: bool, removed: bool },
    /// `RTM_NEWADDR`, `RTM_DELADDR`: the interface's own (local) address.
    Address { index: u32, address: Prefix, removed: bool },
    /// `RTM_NEWROUTE`, `RTM_DELROUTE` of IPv4 and IPv6.
    Route(RouteMessage),
    /// `NLMSG_OVERRUN`: messages were lost, the state must be read again.
    Overrun,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteMessage {
    pub removed: bool,
    pub destination: Prefix,
    /// `RTA_TABLE` when present (tables above 255 need it), else the header's byte.
    pub table: u32,
    /// `rtm_type`: unicast 1, local 2, unreachable 7, throw 9...
    pub kind: u8,
    pub interface: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub priority: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NetlinkError {
    /// Fewer bytes than a header or a length field promises.
    Truncated { need: usize, have: usize },
    /// A message length shorter than the netlink header itself.
    BadLength { len: usize },
    /// An attribute whose length is below its own header or runs past its message.
    Attribute { at: usize, len: usize, left: usize },
    /// An address attribute of the wrong size for its family.
    AddressSize { family: u8, size: usize },
    /// A number attribute (interface, table, priority) that is not 4 bytes.
    NumberSize { kind: u16, size: usize },
    /// A prefix length longer than the family allows.
    PrefixLength { family: u8, len: u8 },
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Truncated { need, have } => {
                write!(f, "netlink message truncated: need {need} bytes, have {have}")
            }
            NetlinkError::BadLength { len } => write!(f, "netlink message length {len}"),
            NetlinkError::Attribute { at, len, left } => {
                write!(f, "netlink attribute at {at} of {len} bytes with {left} left")
            }
            NetlinkError::AddressSize { family, size } => {
                write!(f, "{size}-byte address in a family {family} message")
            }
            NetlinkError::NumberSize { kind, size } => {
                write!(f, "netlink attribute {kind} of {size} bytes, expected 4")
            }
            NetlinkError::PrefixLength { family, len } => {
                write!(f, "prefix length /{len} in a family {family} message")
            }
        }
    }
}

impl std::error::Error for NetlinkError {}

/// The events in one `recv` of a netlink socket (several messages back to back, as a dump
/// returns them). Stops at `NLMSG_DONE`, and at the first damaged message, since its length
/// cannot be trusted to find the next one.
pub(crate) fn parse(buf: &[u8]) -> Result<Vec<NetlinkEvent>, NetlinkError> {
    let mut events = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let len = read_u32(rest, 0)? as usize;
        if len < abi::HEADER_LEN {
            return Err(NetlinkError::BadLength { len });
        }
        let message = rest.get(..len).ok_or(truncated(len, rest))?;
        let kind = read_u16(message, 4)?;
        if kind == abi::NLMSG_DONE {
            break;
        }
        events.extend(parse_message(kind, &message[abi::HEADER_LEN..])?);
        rest = &rest[align(len).min(rest.len())..];
    }
    Ok(events)
}

/// The request for a dump of every route of both families (`RTM_GETROUTE` with
/// `NLM_F_DUMP`, an all-zero `rtmsg` of family `AF_UNSPEC`), numbered `seq`.
pub(crate) fn route_dump_request(seq: u32) -> Vec<u8> {
    let len = abi::HEADER_LEN + abi::RTMSG_LEN;
    let mut request = Vec::with_capacity(len);
    request.extend((len as u32).to_ne_bytes());
    request.extend(abi::RTM_GETROUTE.to_ne_bytes());
    request.extend((abi::NLM_F_REQUEST | abi::NLM_F_DUMP).to_ne_bytes());
    request.extend(seq.to_ne_bytes());
    request.extend(0u32.to_ne_bytes());
    request.resize(len, 0);
    request
}

/// Whether `buf` (one `recv` of a dump's answer) holds its end: `NLMSG_DONE`, or an
/// `NLMSG_ERROR` (the kernel refused the request). A damaged message ends it too, since
/// nothing after it can be found.
pub(crate) fn ends_dump(buf: &[u8]) -> bool {
    let mut rest = buf;
    while !rest.is_empty() {
        let (Ok(len), Ok(kind)) = (read_u32(rest, 0), read_u16(rest, 4)) else { return true };
        let len = len as usize;
        if len < abi::HEADER_LEN || len > rest.len() {
            return true;
        }
        if kind == abi::NLMSG_DONE || kind == abi::NLMSG_ERROR {
            return true;
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    false
}

/// One message's body (after the netlink header).
fn parse_message(kind: u16, body: &[u8]) -> Result<Option<NetlinkEvent>, NetlinkError> {
    match kind {
        abi::RTM_NEWLINK | abi::RTM_DELLINK => link(body, kind == abi::RTM_DELLINK).map(Some),
        abi::RTM_NEWADDR | abi::RTM_DELADDR => address(body, kind == abi::RTM_DELADDR),
        abi::RTM_NEWROUTE | abi::RTM_DELROUTE => route(body, kind == abi::RTM_DELROUTE),
        abi::NLMSG_OVERRUN => Ok(Some(NetlinkEvent::Overrun)),
        // Acks, errors, rules, neighbours: nothing the monitor judges.
        _ => Ok(None),
    }
}

fn link(body: &[u8], removed: bool) -> Result<NetlinkEvent, NetlinkError> {
    need(body, abi::IFINFOMSG_LEN)?;
    let flags = read_u32(body, 8)?;
    let usable = flags & abi::IFF_UP != 0 && flags & abi::IFF_RUNNING != 0;
    Ok(NetlinkEvent::Link { index: read_u32(body, 4)?, usable, removed })
}

fn address(body: &[u8], removed: bool) -> Result<Option<NetlinkEvent>, NetlinkError> {
    need(body, abi::IFADDRMSG_LEN)?;
    let (family, prefix_len, index) = (body[0], body[1], read_u32(body, 4)?);
    let attributes = attributes(body, abi::IFADDRMSG_LEN)?;
    if family != abi::AF_INET && family != abi::AF_INET6 {
        return Ok(None);
    }
    // On point-to-point links IFA_ADDRESS is the far end; IFA_LOCAL is ours when present.
    let own = find(&attributes, abi::IFA_LOCAL).or(find(&attributes, abi::IFA_ADDRESS));
    let Some(bytes) = own else {
        return Ok(None);
    };
    let address = prefix(family, ip(family, bytes)?, prefix_len)?;
    Ok(Some(NetlinkEvent::Address { index, address, removed }))
}

fn route(body: &[u8], removed: bool) -> Result<Option<NetlinkEvent>, NetlinkError> {
    need(body, abi::RTMSG_LEN)?;
    let (family, dst_len, header_table, kind) = (body[0], body[1], body[4], body[7]);
    let attributes = attributes(body, abi::RTMSG_LEN)?;
    if family != abi::AF_INET && family != abi::AF_INET6 {
        return Ok(None);
    }
    let destination = match find(&attributes, abi::RTA_DST) {
        Some(bytes) => ip(family, bytes)?,
        None => unspecified(family),
    };
    let gateway = find(&attributes, abi::RTA_GATEWAY).map(|b| ip(family, b)).transpose()?;
    let number = |kind| find(&attributes, kind).map(|b| number(kind, b)).transpose();
    Ok(Some(NetlinkEvent::Route(RouteMessage {
        removed,
        destination: prefix(family, destination, dst_len)?,
        table: number(abi::RTA_TABLE)?.unwrap_or(u32::from(header_table)),
        kind,
        interface: number(abi::RTA_OIF)?,
        gateway,
        priority: number(abi::RTA_PRIORITY)?.unwrap_or(0),
    })))
}

/// The `(type, payload)` of each attribute after a fixed header of `start` bytes.
fn attributes(body: &[u8], start: usize) -> Result<Vec<(u16, &[u8])>, NetlinkError> {
    let mut found = Vec::new();
    let mut at = start;
    while at < body.len() {
        let left = body.len() - at;
        let len = usize::from(read_u16(body, at)?);
        if len < 4 || len > left {
            return Err(NetlinkError::Attribute { at, len, left });
        }
        let kind = read_u16(body, at + 2)? & abi::NLA_TYPE_MASK;
        found.push((kind, &body[at + 4..at + len]));
        at += align(len).min(left);
    }
    Ok(found)
}

/// The first attribute of `kind` (the kernel sends each at most once).
fn find<'a>(attributes: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attributes.iter().find(|(k, _)| *k == kind).map(|(_, payload)| *payload)
}

fn ip(family: u8, bytes: &[u8]) -> Result<IpAddr, NetlinkError> {
    let wrong = || NetlinkError::AddressSize { family, size: bytes.len() };
    match family {
        abi::AF_INET => <[u8; 4]>::try_from(bytes).map(IpAddr::from).map_err(|_| wrong()),
        _ => <[u8; 16]>::try_from(bytes).map(IpAddr::from).map_err(|_| wrong()),
    }
}

fn unspecified(family: u8) -> IpAddr {
    match family {
        abi::AF_INET => Ipv4Addr::UNSPECIFIED.into(),
        _ => Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn prefix(family: u8, address: IpAddr, len: u8) -> Result<Prefix, NetlinkError> {
    Prefix::new(address, len).map_err(|_| NetlinkError::PrefixLength { family, len })
}

fn number(kind: u16, payload: &[u8]) -> Result<u32, NetlinkError> {
    <[u8; 4]>::try_from(payload)
        .map(u32::from_ne_bytes)
        .map_err(|_| NetlinkError::NumberSize { kind, size: payload.len() })
}

/// `NLMSG_ALIGN` / `RTA_ALIGN`: lengths round up to 4.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn truncated(need: usize, have: &[u8]) -> NetlinkError {
    NetlinkError::Truncated { need, have: have.len() }
}

fn need(bytes: &[u8], len: usize) -> Result<(), NetlinkError> {
    match bytes.len() >= len {
        true => Ok(()),
        false => Err(truncated(len, bytes)),
    }
}

fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], NetlinkError> {
    bytes.get(at..at + N).and_then(|b| b.try_into().ok()).ok_or(truncated(at + N, bytes))
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16, NetlinkError> {
    field(bytes, at).map(u16::from_ne_bytes)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, NetlinkError> {
    field(bytes, at).map(u32::from_ne_bytes)
}

#[cfg(test)]
mod tests;
