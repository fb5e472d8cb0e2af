//! The per-packet header some TUN devices put before every packet: a 4-byte big-endian
//! address family on FreeBSD and NetBSD (after `TUNSIFHEAD`), always on OpenBSD and on
//! macOS's utun. Linux (`IFF_NO_PI`) and illumos (one packet per STREAMS message) have none.
//!
//! The family numbers differ per OS (`AF_INET6` is 28, 24 or 30), which is why this takes
//! the OS as a value: a header written with another OS's number is dropped by the kernel.

use crate::platform::os_kind::{OsKind, AF_INET};
use std::fmt;

/// Length of the address-family header where there is one.
pub(crate) const HEADER_LEN: usize = 4;

/// How one OS frames packets on its TUN descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Packets are read and written bare.
    Bare,
    /// Each packet follows a big-endian u32 address family; `inet6` is this OS's `AF_INET6`.
    FamilyHeader { inet6: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// Fewer bytes than the header (or than one byte of packet).
    Short { len: usize },
    /// A family number that is neither this OS's `AF_INET` nor its `AF_INET6`.
    UnknownFamily(u32),
    /// The packet's version nibble is neither 4 nor 6.
    NotIp { version: u8 },
    /// The header says one family, the packet's version nibble another.
    FamilyMismatch { family: u32, version: u8 },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::Short { len } => write!(f, "TUN frame of {len} bytes is too short"),
            FramingError::UnknownFamily(af) => write!(f, "TUN frame with unknown family {af}"),
            FramingError::NotIp { version } => write!(f, "packet with IP version {version}"),
            FramingError::FamilyMismatch { family, version } => {
                write!(f, "TUN frame says family {family} but carries an IPv{version} packet")
            }
        }
    }
}

impl std::error::Error for FramingError {}

impl Framing {
    pub(crate) fn of(os: OsKind) -> Framing {
        match os {
            OsKind::Linux | OsKind::Illumos => Framing::Bare,
            OsKind::FreeBsd | OsKind::NetBsd | OsKind::OpenBsd | OsKind::Darwin => {
                Framing::FamilyHeader { inet6: os.af_inet6() }
            }
        }
    }

    /// The header to write before `packet` (`None` for bare framing), chosen by the
    /// packet's own version nibble.
    pub(crate) fn header_for(
        self,
        packet: &[u8],
    ) -> Result<Option<[u8; HEADER_LEN]>, FramingError> {
        let version = ip_version(packet)?;
        Ok(match self {
            Framing::Bare => None,
            Framing::FamilyHeader { inet6 } => {
                let family = if version == 4 { AF_INET } else { inet6 };
                Some(family.to_be_bytes())
            }
        })
    }

    /// The packet inside a frame read from the device, after checking that the header and
    /// the packet agree on the IP version.
    pub(crate) fn packet_of(self, frame: &[u8]) -> Result<&[u8], FramingError> {
        match self {
            Framing::Bare => {
                ip_version(frame)?;
                Ok(frame)
            }
            Framing::FamilyHeader { .. } => {
                let (header, packet) = frame
                    .split_first_chunk::<HEADER_LEN>()
                    .ok_or(FramingError::Short { len: frame.len() })?;
                self.check(*header, packet)?;
                Ok(packet)
            }
        }
    }

    /// Checks that the family is this OS's and agrees with the packet's version.
    fn check(self, header: [u8; HEADER_LEN], packet: &[u8]) -> Result<(), FramingError> {
        let Framing::FamilyHeader { inet6 } = self else {
            return ip_version(packet).map(drop);
        };
        let family = u32::from_be_bytes(header);
        let expected = match family {
            AF_INET => 4,
            _ if family == inet6 => 6,
            _ => return Err(FramingError::UnknownFamily(family)),
        };
        let version = ip_version(packet)?;
        if version != expected {
            return Err(FramingError::FamilyMismatch { family, version });
        }
        Ok(())
    }
}

fn ip_version(packet: &[u8]) -> Result<u8, FramingError> {
    let first = packet.first().ok_or(FramingError::Short { len: 0 })?;
    match first >> 4 {
        version @ (4 | 6) => Ok(version),
        version => Err(FramingError::NotIp { version }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: [u8; 4] = [0x45, 0, 0, 20];
    const V6: [u8; 4] = [0x60, 0, 0, 0];

    fn framed(os: OsKind, packet: &[u8]) -> Vec<u8> {
        let framing = Framing::of(os);
        let mut frame = framing.header_for(packet).unwrap().map(Vec::from).unwrap_or_default();
        frame.extend_from_slice(packet);
        frame
    }

    #[test]
    fn writes_each_oss_family_numbers_big_endian() {
        let cases = [
            (OsKind::FreeBsd, [0, 0, 0, 28]),
            (OsKind::NetBsd, [0, 0, 0, 24]),
            (OsKind::OpenBsd, [0, 0, 0, 24]),
            (OsKind::Darwin, [0, 0, 0, 30]),
        ];
        for (os, inet6) in cases {
            assert_eq!(framed(os, &V6)[..4], inet6, "{os}");
            assert_eq!(framed(os, &V4)[..4], [0, 0, 0, 2], "{os}");
            assert_eq!(Framing::of(os).header_for(&V4).unwrap().map(|h| h.len()), Some(4));
        }
    }

    #[test]
    fn linux_and_illumos_frames_are_the_bare_packet() {
        for os in [OsKind::Linux, OsKind::Illumos] {
            assert_eq!(framed(os, &V6), V6);
            assert_eq!(Framing::of(os).packet_of(&V4), Ok(&V4[..]));
            assert_eq!(Framing::of(os).header_for(&V4), Ok(None));
        }
    }

    #[test]
    fn reading_strips_the_header_every_os_wrote() {
        for os in OsKind::ALL {
            for packet in [&V4[..], &V6[..]] {
                let frame = framed(os, packet);
                assert_eq!(Framing::of(os).packet_of(&frame), Ok(packet), "{os}");
            }
        }
    }

    #[test]
    fn another_oss_inet6_number_is_refused() {
        let darwin_frame = framed(OsKind::Darwin, &V6);
        assert_eq!(
            Framing::of(OsKind::FreeBsd).packet_of(&darwin_frame),
            Err(FramingError::UnknownFamily(30))
        );
    }

    #[test]
    fn refuses_short_mismatched_and_non_ip_frames() {
        let bsd = Framing::of(OsKind::NetBsd);
        assert_eq!(bsd.packet_of(&[0, 0, 0]), Err(FramingError::Short { len: 3 }));
        assert_eq!(bsd.packet_of(&[0, 0, 0, 2]), Err(FramingError::Short { len: 0 }));
        let v6_in_v4_frame = [&[0, 0, 0, 2][..], &V6].concat();
        assert_eq!(
            bsd.packet_of(&v6_in_v4_frame),
            Err(FramingError::FamilyMismatch { family: 2, version: 6 })
        );
        assert_eq!(bsd.header_for(&[0x50]), Err(FramingError::NotIp { version: 5 }));
        assert_eq!(Framing::Bare.packet_of(&[]), Err(FramingError::Short { len: 0 }));
    }
}
