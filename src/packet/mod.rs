//! Views of IP packets as they cross the tunnel: just enough parsing to route, to enforce
//! cryptokey routing and to answer our own pings. Zero-copy: a view borrows the caller's buffer.

pub mod checksum;
pub mod gro;
pub mod gso;
pub mod icmp;
pub mod masquerade;
#[cfg(test)]
pub mod test_packets;
pub mod transport;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The addressing facts of an IP packet, read from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
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
pub enum PacketError {
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
    pub fn parse(packet: &[u8]) -> Result<IpHeader, PacketError> {
        match packet.first().map(|b| b >> 4) {
            None => Err(PacketError::Empty),
            Some(4) => Self::parse_v4(packet),
            Some(6) => Self::parse_v6(packet),
            Some(v) => Err(PacketError::UnknownVersion(v)),
        }
    }

    fn parse_v4(p: &[u8]) -> Result<IpHeader, PacketError> {
        if p.len() < 20 {
            return Err(PacketError::Truncated);
        }
        let header_len = usize::from(p[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
        if header_len < 20 || total_len < header_len || total_len > p.len() {
            return Err(PacketError::Truncated);
        }
        Ok(IpHeader {
            src: IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])),
            dst: IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])),
            protocol: p[9],
            payload_offset: header_len,
            total_len,
        })
    }

    fn parse_v6(p: &[u8]) -> Result<IpHeader, PacketError> {
        if p.len() < 40 {
            return Err(PacketError::Truncated);
        }
        let total_len = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
        if total_len > p.len() {
            return Err(PacketError::Truncated);
        }
        let addr = |at: usize| {
            let bytes: [u8; 16] = p[at..at + 16].try_into().expect("16-byte slice");
            IpAddr::V6(Ipv6Addr::from(bytes))
        };
        Ok(IpHeader { src: addr(8), dst: addr(24), protocol: p[6], payload_offset: 40, total_len })
    }
}

/// The Internet checksum (RFC 1071) over `data`, continuing from `sum`, sixteen bits at a
/// time: the plain reference the tests check the fast [`checksum`] module against.
#[cfg(test)]
pub fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
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
pub fn checksum_finish(mut sum: u32) -> u16 {
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
