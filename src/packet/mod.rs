//! IP packets as they cross the tunnel: just enough parsing to route, to enforce cryptokey
//! routing, to filter and to answer our own pings. Every header is read and written through the
//! typed views of [`wire`]; the modules here are what the engine does with them. Zero-copy: a
//! view borrows the caller's buffer.

pub(crate) mod build;
pub(crate) mod checksum;
pub(crate) mod gro;
pub(crate) mod gso;
pub(crate) mod icmp;
pub(crate) mod masquerade;
pub(crate) mod tcp_reset;
#[cfg(test)]
pub(crate) mod test_packets;
pub(crate) mod transport;
pub(crate) mod tsmp;
pub(crate) mod wire;

use std::net::IpAddr;
use wire::{IpPacket, WireError};

/// The addressing facts of an IP packet, read from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IANA protocol number of the payload (IPv6: the first Next Header, extension headers are
    /// not walked).
    pub protocol: u8,
    /// Offset of the payload within the packet.
    pub payload_offset: usize,
    /// Total length the header claims; never more than the buffer.
    pub total_len: usize,
}

/// Why a buffer is not an IP packet we can handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PacketError {
    Empty,
    UnknownVersion(u8),
    Truncated,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketError::Empty => f.write_str("empty packet"),
            PacketError::UnknownVersion(v) => write!(f, "IP version {v} is not 4 or 6"),
            PacketError::Truncated => f.write_str("packet shorter than its header says"),
        }
    }
}

impl IpHeader {
    /// Parses the IPv4 or IPv6 header at the start of `packet`.
    pub(crate) fn parse(packet: &[u8]) -> Result<IpHeader, PacketError> {
        ip_view(packet).map(|ip| IpHeader::of(&ip))
    }

    /// The addressing facts of a checked view.
    pub(crate) fn of<T: AsRef<[u8]>>(ip: &IpPacket<T>) -> IpHeader {
        IpHeader {
            src: ip.src(),
            dst: ip.dst(),
            protocol: ip.protocol(),
            payload_offset: ip.header_len(),
            total_len: ip.total_len(),
        }
    }
}

/// A checked view of the IPv4 or IPv6 packet at the start of `packet`, failing with the
/// reasons the data path counts.
pub(crate) fn ip_view<T: AsRef<[u8]>>(packet: T) -> Result<IpPacket<T>, PacketError> {
    if packet.as_ref().is_empty() {
        return Err(PacketError::Empty);
    }
    Ok(IpPacket::new_checked(packet)?)
}

impl From<WireError> for PacketError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Version(v) => PacketError::UnknownVersion(v),
            WireError::Truncated | WireError::BadHeaderLength | WireError::BadLength => {
                PacketError::Truncated
            }
        }
    }
}

/// The Internet checksum (RFC 1071) over `data`, continuing from `sum`, sixteen bits at a
/// time: the plain reference the tests check the fast [`checksum`] module against.
#[cfg(test)]
pub(crate) fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a running sum into the final one's-complement checksum.
#[cfg(test)]
pub(crate) fn checksum_finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    fn v4_packet() -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[9] = 1;
        p[12..16].copy_from_slice(&[100, 64, 0, 1]);
        p[16..20].copy_from_slice(&[100, 64, 0, 2]);
        p
    }

    #[test]
    fn parses_v4_and_v6() {
        let h = IpHeader::parse(&v4_packet()).unwrap();
        assert_eq!(h.src.to_string(), "100.64.0.1");
        assert_eq!(h.dst.to_string(), "100.64.0.2");
        assert_eq!((h.protocol, h.payload_offset, h.total_len), (1, 20, 28));

        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        v6[6] = 58;
        v6[23] = 1;
        v6[39] = 2;
        let h = IpHeader::parse(&v6).unwrap();
        assert_eq!(h.src.to_string(), "::1");
        assert_eq!(h.dst.to_string(), "::2");
        assert_eq!(h.total_len, 48);
    }

    #[test]
    fn rejects_truncated_and_odd_versions() {
        assert_eq!(IpHeader::parse(&[]), Err(PacketError::Empty));
        assert_eq!(IpHeader::parse(&[0x55; 40]), Err(PacketError::UnknownVersion(5)));
        let p = v4_packet();
        assert_eq!(IpHeader::parse(&p[..27]), Err(PacketError::Truncated));
        assert_eq!(IpHeader::parse(&[0x60; 39]), Err(PacketError::Truncated));
    }

    #[test]
    fn random_bytes_never_panic() {
        shake(7, 5000, &v4_packet(), |b| {
            if let Ok(h) = IpHeader::parse(b) {
                assert!(h.total_len <= b.len() && h.payload_offset <= h.total_len);
            }
        });
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2 (checksum is its complement).
        let sum = checksum_add(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(checksum_finish(sum), !0xddf2);
    }
}
