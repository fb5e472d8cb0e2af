//! Asking the kernel for the default route with one `RTM_GET` on a routing socket, and
//! reading its answer: how illumos, which has no routing sysctl to dump the table with,
//! finds the interface its default route leaves by.
//!
//! The question names the default exactly (destination and netmask all zeros, so that an
//! exit node's `0/1` + `128/1` never answer for it) and asks for the interface (`RTA_IFP`).
//! illumos answers with the route's gateway and an `RTA_IFP` `sockaddr_dl` whose
//! `sdl_index` names the interface; it copies `rtm_index` from the question rather than
//! filling it in (`rts_rtmget`), so the index is read from the sockaddr. A routing socket
//! also carries every other route message of the system: an answer is ours only when it is
//! an `RTM_GET` with our sequence number.

use super::layout::{
    Layout, LookupFields, SockaddrSizing, ILLUMOS_DEFAULT_SOCKADDR_SIZE, ILLUMOS_SOCKADDR_SIZES,
};
use super::sockaddr::{self, RTAX_IFP};
use super::{default_of, each_message, read_u32, DumpedDefault, ParseError, RTM_GET};
use crate::platform::os_kind::{OsKind, AF_INET};

/// `RTA_DST | RTA_NETMASK | RTA_IFP`: the route named exactly, and its interface wanted.
const QUESTION_ADDRS: u32 = 0x1 | 0x4 | 0x10;
/// `RTF_UP | RTF_GATEWAY`, as `route get` asks. Never `RTF_HOST`: the kernel would then
/// ignore our netmask and look up the host 0.0.0.0.
const QUESTION_FLAGS: u32 = 0x1 | 0x2;

/// What one message read from the routing socket says about our question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Someone else's message (another route change, another process's lookup).
    NotOurs,
    /// No default route of this family to leave by: the kernel said so (`rtm_errno`,
    /// usually `ESRCH`), or the route it found has no interface (a reject or blackhole).
    NoRoute,
    /// The default route, with the interface it leaves by.
    Default(DumpedDefault),
}

/// The `RTM_GET` for the IPv4 or IPv6 default route, numbered `seq`; `None` on an OS whose
/// default routes are dumped by sysctl rather than asked for.
pub(crate) fn default_route_question(os: OsKind, ipv6: bool, seq: i32) -> Option<Vec<u8>> {
    let layout = Layout::of(os)?;
    let fields = layout.lookup?;
    let SockaddrSizing::ByFamily = layout.sockaddrs else { return None };
    let family = if ipv6 { layout.af_inet6 } else { AF_INET as u16 };
    let mut message = vec![0u8; layout.route.len];
    message[2] = layout.version;
    message[3] = RTM_GET;
    put(&mut message, layout.route.flags, QUESTION_FLAGS);
    put(&mut message, layout.route.addrs, QUESTION_ADDRS);
    put(&mut message, fields.seq, seq as u32);
    // Destination and netmask: the unspecified address of the family; the interface: an
    // empty sockaddr_dl (index 0: any interface) for the kernel to fill in.
    for family in [family, family, fields.af_link] {
        message.extend(zeroed_sockaddr(family));
    }
    let len = u16::try_from(message.len()).ok()?;
    message[..2].copy_from_slice(&len.to_ne_bytes());
    Some(message)
}

/// Reads the first message of `datagram` (a routing socket returns one per read) as the
/// answer to question `seq`, or as someone else's message.
pub(crate) fn answer(os: OsKind, datagram: &[u8], seq: i32) -> Result<Answer, ParseError> {
    let layout = Layout::of(os).ok_or(ParseError::NoRoutingSocket(os))?;
    let fields = layout.lookup.ok_or(ParseError::NoRoutingSocket(os))?;
    let mut found = None;
    each_message(datagram, |message| {
        if found.is_none() {
            found = Some(judge(&layout, &fields, message, seq)?);
        }
        Ok(())
    })?;
    Ok(found.unwrap_or(Answer::NotOurs))
}

fn judge(
    layout: &Layout,
    fields: &LookupFields,
    message: &[u8],
    seq: i32,
) -> Result<Answer, ParseError> {
    let ours = message[2] == layout.version
        && message[3] == RTM_GET
        && read_u32(message, fields.seq)? == seq as u32;
    if !ours {
        return Ok(Answer::NotOurs);
    }
    if read_u32(message, fields.errno)? != 0 {
        return Ok(Answer::NoRoute);
    }
    let Some(route) = default_of(layout, message)? else {
        return Ok(Answer::NoRoute);
    };
    let sockaddrs = sockaddr::walk(layout, message, route.fields.sockaddrs_at, route.fields.addrs)?;
    let interface = sockaddrs[RTAX_IFP]
        .and_then(|ifp| ifp.link_index(fields.af_link))
        .or(Some(route.fields.index))
        .filter(|&index| index != 0);
    let Some(interface) = interface else {
        return Ok(Answer::NoRoute);
    };
    Ok(Answer::Default(DumpedDefault {
        ipv6: route.ipv6,
        gateway: route.gateway,
        interface,
        scoped: false,
    }))
}

/// An all-zero illumos sockaddr of `family`, as long as the kernel reads it.
fn zeroed_sockaddr(family: u16) -> Vec<u8> {
    let size = ILLUMOS_SOCKADDR_SIZES
        .iter()
        .find(|(f, _)| *f == family)
        .map_or(ILLUMOS_DEFAULT_SOCKADDR_SIZE, |(_, size)| *size);
    let mut bytes = vec![0u8; size];
    bytes[..2].copy_from_slice(&family.to_ne_bytes());
    bytes
}

fn put(message: &mut [u8], at: usize, value: u32) {
    message[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

#[cfg(test)]
mod tests;
