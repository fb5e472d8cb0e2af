//! An IP packet of either version, chosen by its first nibble: what the tunnel carries, since
//! a WireGuard data packet says nothing about the family of what it holds.

use super::{Ipv4Packet, Ipv6Packet, WireError};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpPacket<T> {
    V4(Ipv4Packet<T>),
    V6(Ipv6Packet<T>),
}

impl<T: AsRef<[u8]>> IpPacket<T> {
    /// A checked view of an IPv4 or IPv6 packet (see the two views' `new_checked`).
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        match buffer.as_ref().first().map(|b| b >> 4) {
            None => Err(WireError::Truncated),
            Some(4) => Ipv4Packet::new_checked(buffer).map(IpPacket::V4),
            Some(6) => Ipv6Packet::new_checked(buffer).map(IpPacket::V6),
            Some(v) => Err(WireError::Version(v)),
        }
    }

    pub(crate) fn src(&self) -> IpAddr {
        match self {
            IpPacket::V4(p) => p.src().into(),
            IpPacket::V6(p) => p.src().into(),
        }
    }

    pub(crate) fn dst(&self) -> IpAddr {
        match self {
            IpPacket::V4(p) => p.dst().into(),
            IpPacket::V6(p) => p.dst().into(),
        }
    }

    /// The IPv4 protocol or the first IPv6 Next Header (extension headers are not walked).
    pub(crate) fn protocol(&self) -> u8 {
        match self {
            IpPacket::V4(p) => p.protocol(),
            IpPacket::V6(p) => p.next_header(),
        }
    }

    /// Where the payload starts.
    pub(crate) fn header_len(&self) -> usize {
        match self {
            IpPacket::V4(p) => p.header_len(),
            IpPacket::V6(_) => super::ipv6::HEADER_LEN,
        }
    }

    /// The packet's length by its header; never more than the buffer.
    pub(crate) fn total_len(&self) -> usize {
        match self {
            IpPacket::V4(p) => p.total_len(),
            IpPacket::V6(p) => p.total_len(),
        }
    }

    pub(crate) fn payload(&self) -> &[u8] {
        match self {
            IpPacket::V4(p) => p.payload(),
            IpPacket::V6(p) => p.payload(),
        }
    }
}
