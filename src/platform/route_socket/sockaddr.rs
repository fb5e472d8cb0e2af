//! The sockaddrs that follow a routing-message header: one per bit set in the address
//! bitmap, in bit order, each padded per the OS's rule (see [`SockaddrSizing`]).

use super::layout::{
    Layout, SockaddrSizing, ILLUMOS_DEFAULT_SOCKADDR_SIZE, ILLUMOS_SOCKADDR_SIZES,
};
use super::ParseError;
use crate::platform::os_kind::AF_INET;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) const RTAX_DST: usize = 0;
pub(super) const RTAX_GATEWAY: usize = 1;
pub(super) const RTAX_NETMASK: usize = 2;
/// The interface of a route (a link-level sockaddr), as a lookup's answer names it.
pub(super) const RTAX_IFP: usize = 4;
/// The interface address of an address message; the last slot we read.
pub(super) const RTAX_IFA: usize = 5;

/// Where the address bytes sit: after len+family+port (IPv4), and after flowinfo (IPv6).
const INET_ADDR_AT: usize = 4;
const INET6_ADDR_AT: usize = 8;

/// One sockaddr: its family and its declared bytes (from the start, `sa_len` long).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sockaddr<'a> {
    family: u16,
    bytes: &'a [u8],
}

impl Sockaddr<'_> {
    /// The IPv4 or IPv6 address, reading a short sockaddr as if zero-padded (the kernel
    /// trims trailing zeros, notably from netmasks).
    pub(super) fn ip(&self, layout: &Layout) -> Option<IpAddr> {
        if u32::from(self.family) == AF_INET {
            let mut octets = [0u8; 4];
            copy_from(&mut octets, self.bytes, INET_ADDR_AT);
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        } else if self.family == layout.af_inet6 {
            let mut octets = [0u8; 16];
            copy_from(&mut octets, self.bytes, INET6_ADDR_AT);
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        } else {
            None
        }
    }

    /// The interface index of a link-level sockaddr (`sdl_index`, a u16 at 2 in every
    /// `sockaddr_dl`); `None` for another family or a sockaddr cut short.
    pub(super) fn link_index(&self, af_link: u16) -> Option<u16> {
        let index = self.bytes.get(2..4).filter(|_| self.family == af_link)?;
        Some(u16::from_ne_bytes([index[0], index[1]]))
    }

    /// Whether this netmask is /0: nothing but zeros after the length and family bytes.
    pub(super) fn is_zero_mask(&self) -> bool {
        self.bytes.iter().skip(2).all(|&b| b == 0)
    }
}

fn copy_from(out: &mut [u8], bytes: &[u8], at: usize) {
    let available = bytes.get(at..).unwrap_or(&[]);
    let n = available.len().min(out.len());
    out[..n].copy_from_slice(&available[..n]);
}

/// The sockaddrs in slots `0..=RTAX_IFA` of `message`, starting at `at`.
pub(super) fn walk<'a>(
    layout: &Layout,
    message: &'a [u8],
    mut at: usize,
    addrs: u32,
) -> Result<[Option<Sockaddr<'a>>; RTAX_IFA + 1], ParseError> {
    let mut found = [None; RTAX_IFA + 1];
    for (index, slot) in found.iter_mut().enumerate() {
        if addrs & (1 << index) == 0 {
            continue;
        }
        let rest = message.get(at..).unwrap_or(&[]);
        let (family, size, span) = measure(layout, rest, index)?;
        let bytes =
            rest.get(..size).ok_or(ParseError::Sockaddr { index, size, left: rest.len() })?;
        *slot = Some(Sockaddr { family, bytes });
        at = at.saturating_add(span);
    }
    Ok(found)
}

/// The family, declared size and padded size of the sockaddr at the start of `rest`.
fn measure(layout: &Layout, rest: &[u8], index: usize) -> Result<(u16, usize, usize), ParseError> {
    let missing = || ParseError::Sockaddr { index, size: 2, left: rest.len() };
    match layout.sockaddrs {
        SockaddrSizing::ByLength { align } => {
            let len = usize::from(*rest.first().ok_or_else(missing)?);
            let family = rest.get(1).copied().filter(|_| len >= 2).unwrap_or(0);
            let span = if len == 0 { align } else { len.next_multiple_of(align) };
            Ok((u16::from(family), len, span))
        }
        SockaddrSizing::ByFamily => {
            let family = rest.get(..2).ok_or_else(missing)?;
            let family = u16::from_ne_bytes([family[0], family[1]]);
            let size = ILLUMOS_SOCKADDR_SIZES
                .iter()
                .find(|(f, _)| *f == family)
                .map_or(ILLUMOS_DEFAULT_SOCKADDR_SIZE, |(_, size)| *size);
            Ok((family, size, size))
        }
    }
}
