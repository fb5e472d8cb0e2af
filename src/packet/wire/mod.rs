//! The wire layer: typed views of the headers weft reads and writes, over any byte buffer.
//!
//! Each view wraps a `T: AsRef<[u8]>` (and `AsMut<[u8]>` for the setters) and names its fields
//! as byte ranges in a `field` module, so no other code counts offsets. A view is made with
//! `new_checked`, which validates every length its accessors rely on and returns a
//! [`WireError`]; after that no accessor can panic, whatever the bytes say. `new_unchecked`
//! exists for buffers the caller is filling in, or has checked itself.
//!
//! Views borrow; nothing here allocates, so the per-packet path can parse and rewrite packets
//! in place.

pub(crate) mod icmp;
mod ip;
pub(crate) mod ipv4;
pub(crate) mod ipv6;
pub(crate) mod ipv6_fragment;
pub(crate) mod sctp;
pub(crate) mod tcp;
pub(crate) mod tsmp;
pub(crate) mod udp;

pub(crate) use icmp::IcmpPacket;
pub(crate) use ip::IpPacket;
pub(crate) use ipv4::Ipv4Packet;
pub(crate) use ipv6::Ipv6Packet;
pub(crate) use ipv6_fragment::Ipv6FragmentHeader;
pub(crate) use sctp::SctpPacket;
pub(crate) use tcp::TcpSegment;
pub(crate) use udp::UdpDatagram;

use std::ops::Range;

/// IANA protocol numbers (the IPv4 Protocol and IPv6 Next Header fields), defined once.
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
/// IPv6 Fragment extension header.
pub(crate) const PROTO_IPV6_FRAGMENT: u8 = 44;
pub(crate) const PROTO_ICMPV6: u8 = 58;
/// Tailscale Message Protocol: node-to-node notices such as "connection rejected".
pub(crate) const PROTO_TSMP: u8 = 99;
pub(crate) const PROTO_SCTP: u8 = 132;

/// Why a buffer cannot be viewed as a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The buffer ends before the fixed part of the header does.
    Truncated,
    /// The IP version nibble is not the view's (or, for [`IpPacket`], not 4 or 6).
    Version(u8),
    /// A header-length field is below the fixed header's size or reaches past the buffer
    /// (IPv4 IHL, TCP data offset).
    BadHeaderLength,
    /// A length field claims less than the header or more than the buffer (IPv4 total
    /// length, IPv6 payload length).
    BadLength,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => f.write_str("buffer shorter than the header"),
            WireError::Version(v) => write!(f, "unexpected IP version {v}"),
            WireError::BadHeaderLength => f.write_str("header length field out of bounds"),
            WireError::BadLength => f.write_str("length field out of bounds"),
        }
    }
}

impl std::error::Error for WireError {}

/// The big-endian 16-bit field at `at` (a two-byte range the caller's check covers).
fn read_u16(bytes: &[u8], at: Range<usize>) -> u16 {
    u16::from_be_bytes([bytes[at.start], bytes[at.start + 1]])
}

fn write_u16(bytes: &mut [u8], at: Range<usize>, value: u16) {
    bytes[at].copy_from_slice(&value.to_be_bytes());
}

/// The big-endian 32-bit field at `at` (a four-byte range the caller's check covers).
fn read_u32(bytes: &[u8], at: Range<usize>) -> u32 {
    let b = &bytes[at];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn write_u32(bytes: &mut [u8], at: Range<usize>, value: u32) {
    bytes[at].copy_from_slice(&value.to_be_bytes());
}

/// The `N` bytes at `at` as an array (an address field the caller's check covers).
fn read_array<const N: usize>(bytes: &[u8], at: Range<usize>) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at]);
    out
}

#[cfg(test)]
mod tests;
