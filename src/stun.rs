//! STUN (RFC 5389) Binding, exactly as Tailscale speaks it: the 40-byte request derper's
//! STUN server insists on (`SOFTWARE "tailnode"` and a FINGERPRINT), and the parser of its
//! answer, the address our UDP socket is seen from. Layouts from tailscale `net/stun`
//! (restated in /work/shared/protocol/stun.md). Sans-IO: the caller supplies the random
//! transaction id and matches answers to requests. Not yet wired into the daemon.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub(crate) const TX_ID_LEN: usize = 12;
pub(crate) type TxId = [u8; TX_ID_LEN];

pub(crate) const REQUEST_LEN: usize = 40;
const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// The comprehension-optional code some servers use for XOR-MAPPED-ADDRESS.
const ATTR_XOR_MAPPED_ADDRESS_ALT: u16 = 0x8020;
const ATTR_SOFTWARE: u16 = 0x8022;
const ATTR_FINGERPRINT: u16 = 0x8028;
/// Tailscale's STUN server answers only requests naming this software (8 bytes: no padding).
const SOFTWARE: &[u8; 8] = b"tailnode";
const FINGERPRINT_XOR: u32 = 0x5354_554e;
const ATTR_HEADER_LEN: usize = 4;
const FINGERPRINT_ATTR_LEN: usize = ATTR_HEADER_LEN + 4;
const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StunError {
    /// No STUN header (too short, wrong leading bits or no magic cookie).
    NotStun,
    /// STUN, but not a Binding success response (the type it has).
    NotSuccessResponse(u16),
    /// The header claims more attribute bytes than arrived, or an attribute overruns.
    MalformedAttributes,
    /// An address attribute with an unknown family or too short a value.
    MalformedAddress,
    /// A FINGERPRINT attribute that does not match the message.
    BadFingerprint,
    /// Well-formed, but without any mapped address.
    NoAddress,
}

impl fmt::Display for StunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StunError::NotStun => f.write_str("not a STUN packet"),
            StunError::NotSuccessResponse(t) => {
                write!(f, "STUN message type {t:#06x} is not a binding success response")
            }
            StunError::MalformedAttributes => f.write_str("STUN response has malformed attributes"),
            StunError::MalformedAddress => f.write_str("STUN response has a malformed address"),
            StunError::BadFingerprint => f.write_str("STUN response has a bogus fingerprint"),
            StunError::NoAddress => f.write_str("STUN response carries no mapped address"),
        }
    }
}

impl std::error::Error for StunError {}

/// The Binding request with transaction id `tx_id`.
pub(crate) fn binding_request(tx_id: &TxId) -> [u8; REQUEST_LEN] {
    let attributes_len = (ATTR_HEADER_LEN + SOFTWARE.len() + FINGERPRINT_ATTR_LEN) as u16;
    let mut out = [0u8; REQUEST_LEN];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    out[2..4].copy_from_slice(&attributes_len.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_COOKIE);
    out[8..20].copy_from_slice(tx_id);
    out[20..22].copy_from_slice(&ATTR_SOFTWARE.to_be_bytes());
    out[22..24].copy_from_slice(&(SOFTWARE.len() as u16).to_be_bytes());
    out[24..32].copy_from_slice(SOFTWARE);
    out[32..34].copy_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    out[34..36].copy_from_slice(&4u16.to_be_bytes());
    // Covers everything before the FINGERPRINT attribute, whose length the header counts.
    let crc = fingerprint(&out[..32]);
    out[36..40].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Any STUN message: long enough for a header, top two bits clear, the magic cookie.
pub(crate) fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] & 0xc0 == 0 && datagram[4..8] == MAGIC_COOKIE
}

/// The demultiplexing test for the shared WireGuard/disco socket (disco.md §4, step 1): a
/// STUN Binding message (request or success response). WireGuard's second byte is always 0
/// and disco's is `'S'`, so neither can pass.
pub(crate) fn is_binding_message(datagram: &[u8]) -> bool {
    is_stun(datagram) && datagram[1] == 0x01
}

/// The transaction id and the mapped address of a Binding success response. The XOR form
/// wins over plain MAPPED-ADDRESS; IPv4-mapped IPv6 answers come back as IPv4. Bytes after
/// the declared length are ignored, as Tailscale does. A FINGERPRINT, if present, must be
/// right (RFC 5389 §15.5; Tailscale's parser skips it, its server never sends one).
pub(crate) fn parse_response(datagram: &[u8]) -> Result<(TxId, SocketAddr), StunError> {
    if !is_stun(datagram) {
        return Err(StunError::NotStun);
    }
    let message_type = u16::from_be_bytes([datagram[0], datagram[1]]);
    if message_type != BINDING_SUCCESS {
        return Err(StunError::NotSuccessResponse(message_type));
    }
    let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let message = datagram.get(..HEADER_LEN + declared).ok_or(StunError::MalformedAttributes)?;
    let mut tx_id = [0u8; TX_ID_LEN];
    tx_id.copy_from_slice(&message[8..HEADER_LEN]);
    let mut xor_mapped = None;
    let mut mapped = None;
    for attribute in Attributes::new(message) {
        let attribute = attribute?;
        match attribute.kind {
            ATTR_XOR_MAPPED_ADDRESS | ATTR_XOR_MAPPED_ADDRESS_ALT => {
                xor_mapped = Some(xor_address(&tx_id, attribute.value)?);
            }
            ATTR_MAPPED_ADDRESS => mapped = Some(address(attribute.value)?),
            ATTR_FINGERPRINT => check_fingerprint(&message[..attribute.offset], attribute.value)?,
            _ => {}
        }
    }
    xor_mapped.or(mapped).map(|addr| (tx_id, addr)).ok_or(StunError::NoAddress)
}

struct Attribute<'a> {
    kind: u16,
    value: &'a [u8],
    /// Where the attribute starts in the message (what a FINGERPRINT covers).
    offset: usize,
}

/// The attributes after the header; each value is padded to 4 bytes, the padding included
/// in the bounds check.
struct Attributes<'a> {
    message: &'a [u8],
    offset: usize,
}

impl<'a> Attributes<'a> {
    fn new(message: &'a [u8]) -> Attributes<'a> {
        Attributes { message, offset: HEADER_LEN }
    }

    fn read(&mut self) -> Result<Attribute<'a>, StunError> {
        let offset = self.offset;
        let rest = &self.message[offset..];
        let [t0, t1, l0, l1, after_header @ ..] = rest else {
            return Err(StunError::MalformedAttributes);
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let padded = len.next_multiple_of(4);
        if padded > after_header.len() {
            return Err(StunError::MalformedAttributes);
        }
        self.offset += ATTR_HEADER_LEN + padded;
        Ok(Attribute { kind: u16::from_be_bytes([*t0, *t1]), value: &after_header[..len], offset })
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, StunError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.message.len() {
            return None;
        }
        let attribute = self.read();
        if attribute.is_err() {
            self.offset = self.message.len();
        }
        Some(attribute)
    }
}

/// `0 | family | port | address` (MAPPED-ADDRESS).
fn address(value: &[u8]) -> Result<SocketAddr, StunError> {
    let [_, family, p0, p1, ip @ ..] = value else {
        return Err(StunError::MalformedAddress);
    };
    let port = u16::from_be_bytes([*p0, *p1]);
    let ip = match *family {
        FAMILY_IPV4 => {
            IpAddr::V4(Ipv4Addr::from(*ip.first_chunk::<4>().ok_or(StunError::MalformedAddress)?))
        }
        FAMILY_IPV6 => {
            let octets = ip.first_chunk::<16>().ok_or(StunError::MalformedAddress)?;
            Ipv6Addr::from(*octets).to_canonical()
        }
        _ => return Err(StunError::MalformedAddress),
    };
    Ok(SocketAddr::new(ip, port))
}

/// XOR-MAPPED-ADDRESS: the port XORed with the cookie's top half, the address with the
/// cookie followed by the transaction id. Undone in place, then read as MAPPED-ADDRESS.
fn xor_address(tx_id: &TxId, value: &[u8]) -> Result<SocketAddr, StunError> {
    let mut mask = [0u8; 20];
    mask[2..4].copy_from_slice(&MAGIC_COOKIE[..2]);
    mask[4..8].copy_from_slice(&MAGIC_COOKIE);
    mask[8..20].copy_from_slice(tx_id);
    let plain: Vec<u8> =
        value.iter().enumerate().map(|(i, v)| v ^ mask.get(i).copied().unwrap_or(0)).collect();
    address(&plain)
}

fn check_fingerprint(covered: &[u8], value: &[u8]) -> Result<(), StunError> {
    let expected = fingerprint(covered).to_be_bytes();
    if value == expected {
        Ok(())
    } else {
        Err(StunError::BadFingerprint)
    }
}

/// RFC 5389's FINGERPRINT: CRC-32 of everything before it, XORed with `"STUN"`.
fn fingerprint(covered: &[u8]) -> u32 {
    crc32_ieee(covered) ^ FINGERPRINT_XOR
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and Go's `crc32.ChecksumIEEE`). Bitwise: STUN
/// only checksums 36-byte requests, so a table buys nothing.
fn crc32_ieee(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{shake, unhex};

    const TX_ID: TxId = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b];
    // Produced by tailscale.com v1.102.3 `net/stun`: Request(TX_ID) and Response(TX_ID, addr).
    const GO_REQUEST: &str =
        "000100142112a442303132333435363738393a3b802200087461696c6e6f646580280004e13efd83";
    const GO_RESPONSE_V4: &str = "0101000c2112a442303132333435363738393a3b002000080001f523ea12d54b";
    const GO_RESPONSE_V6: &str = "010100182112a442303132333435363738393a3b00200014000220a90113\
                                  a9fa3030323134353637383991f6";

    /// A success response with the given attributes (each already padded).
    fn response(attributes: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = attributes.concat();
        let mut out = vec![0x01, 0x01];
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&MAGIC_COOKIE);
        out.extend_from_slice(&TX_ID);
        out.extend_from_slice(&body);
        out
    }

    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    fn mapped_v4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut value = vec![0, FAMILY_IPV4];
        value.extend_from_slice(&port.to_be_bytes());
        value.extend_from_slice(&ip);
        attribute(ATTR_MAPPED_ADDRESS, &value)
    }

    fn xor_v4(kind: u16) -> Vec<u8> {
        let go = unhex(GO_RESPONSE_V4);
        attribute(kind, &go[24..])
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32_ieee(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32_ieee(b""), 0);
    }

    #[test]
    fn request_matches_tailscale_byte_for_byte() {
        assert_eq!(binding_request(&TX_ID).to_vec(), unhex(GO_REQUEST));
        let other = binding_request(&[7; TX_ID_LEN]);
        assert_eq!(&other[8..20], &[7; TX_ID_LEN]);
        assert!(is_binding_message(&other));
    }

    #[test]
    fn parses_tailscale_responses() {
        assert_eq!(
            parse_response(&unhex(GO_RESPONSE_V4)),
            Ok((TX_ID, "203.0.113.9:54321".parse().unwrap()))
        );
        assert_eq!(
            parse_response(&unhex(GO_RESPONSE_V6)),
            Ok((TX_ID, "[2001:db8:1:2::abcd]:443".parse().unwrap()))
        );
    }

    #[test]
    fn xor_form_wins_over_plain_mapped_address() {
        let plain = mapped_v4([192, 0, 2, 77], 1000);
        let expected = Ok((TX_ID, "203.0.113.9:54321".parse().unwrap()));
        for kind in [ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_MAPPED_ADDRESS_ALT] {
            assert_eq!(parse_response(&response(&[&plain, &xor_v4(kind)])), expected);
            assert_eq!(parse_response(&response(&[&xor_v4(kind), &plain])), expected);
        }
        assert_eq!(
            parse_response(&response(&[&plain])),
            Ok((TX_ID, "192.0.2.77:1000".parse().unwrap()))
        );
    }

    #[test]
    fn ipv4_mapped_answers_come_back_as_ipv4() {
        let mut value = vec![0, FAMILY_IPV6, 0x12, 0x34];
        value.extend_from_slice(&Ipv4Addr::new(198, 51, 100, 1).to_ipv6_mapped().octets());
        let reply = response(&[&attribute(ATTR_MAPPED_ADDRESS, &value)]);
        assert_eq!(parse_response(&reply), Ok((TX_ID, "198.51.100.1:4660".parse().unwrap())));
    }

    #[test]
    fn checks_a_fingerprint_when_present() {
        let software = attribute(ATTR_SOFTWARE, b"derp");
        let mut reply = response(&[&xor_v4(ATTR_XOR_MAPPED_ADDRESS), &software]);
        let with_fingerprint_len = (reply.len() - HEADER_LEN + FINGERPRINT_ATTR_LEN) as u16;
        reply[2..4].copy_from_slice(&with_fingerprint_len.to_be_bytes());
        let crc = fingerprint(&reply);
        reply.extend_from_slice(&attribute(ATTR_FINGERPRINT, &crc.to_be_bytes()));
        assert_eq!(parse_response(&reply).map(|r| r.1.port()), Ok(54321));
        *reply.last_mut().unwrap() ^= 1;
        assert_eq!(parse_response(&reply), Err(StunError::BadFingerprint));
    }

    #[test]
    fn refuses_what_is_not_a_well_formed_success_response() {
        use StunError::*;
        let good = unhex(GO_RESPONSE_V4);
        assert_eq!(parse_response(&[4, 0, 0, 0, 1, 2, 3, 4]), Err(NotStun));
        assert_eq!(parse_response(&good[..HEADER_LEN - 1]), Err(NotStun));
        let mut high_bits = good.clone();
        high_bits[0] |= 0x80;
        assert_eq!(parse_response(&high_bits), Err(NotStun));
        assert_eq!(parse_response(&unhex(GO_REQUEST)), Err(NotSuccessResponse(BINDING_REQUEST)));
        let mut error_response = good.clone();
        error_response[1] = 0x11;
        assert_eq!(parse_response(&error_response), Err(NotSuccessResponse(0x0111)));
        for cut in HEADER_LEN..good.len() {
            assert_eq!(parse_response(&good[..cut]), Err(MalformedAttributes), "cut {cut}");
        }
        // An attribute longer than the message it sits in.
        let mut overrun = good.clone();
        overrun[23] = 9;
        assert_eq!(parse_response(&overrun), Err(MalformedAttributes));
        let mut family = good.clone();
        family[25] = 3;
        assert_eq!(parse_response(&family), Err(MalformedAddress));
        let short_v6 = attribute(ATTR_XOR_MAPPED_ADDRESS, &[0, FAMILY_IPV6, 0, 1, 2, 3, 4, 5]);
        assert_eq!(parse_response(&response(&[&short_v6])), Err(MalformedAddress));
        assert_eq!(parse_response(&response(&[&attribute(0x8022, b"x")])), Err(NoAddress));
        assert_eq!(parse_response(&response(&[])), Err(NoAddress));
    }

    #[test]
    fn bytes_beyond_the_declared_length_are_ignored() {
        let mut padded = unhex(GO_RESPONSE_V4);
        padded.extend_from_slice(&[0xff; 7]);
        assert_eq!(parse_response(&padded).map(|r| r.1.port()), Ok(54321));
    }

    #[test]
    fn demultiplexing() {
        let request = unhex(GO_REQUEST);
        let reply = unhex(GO_RESPONSE_V4);
        assert!(is_binding_message(&request) && is_binding_message(&reply));
        let mut indication = reply.clone();
        indication[1] = 0x11;
        assert!(is_stun(&indication) && !is_binding_message(&indication));
        let wireguard_handshake = [1u8, 0, 0, 0, 0x21, 0x12, 0xa4, 0x42].repeat(4);
        assert!(!is_binding_message(&wireguard_handshake));
        let mut disco = b"TS\xF0\x9F\x92\xAC".to_vec();
        disco.resize(62, 0);
        assert!(!is_stun(&disco));
        assert!(!is_stun(&request[..HEADER_LEN - 1]));
    }

    #[test]
    fn mutated_responses_never_panic() {
        for (seed, valid) in [(11, GO_RESPONSE_V4), (12, GO_RESPONSE_V6), (13, GO_REQUEST)] {
            shake(seed, 5000, &unhex(valid), |broken| {
                let _ = is_binding_message(broken);
                if let Ok((tx_id, _)) = parse_response(broken) {
                    assert_eq!(&tx_id[..], &broken[8..20]);
                }
            });
        }
    }
}
