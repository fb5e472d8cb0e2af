//! macOS's answer to "which physical interface does this utun ride on":
//! `SIOCGIFDELEGATE`, what `ifconfig` prints as "effective interface".
//!
//! The request and reply are built and read here as bytes on every OS; only the ioctl
//! itself is macOS code. The answer is never cached: it changes when the user reorders
//! network services.

use std::fmt;

/// `struct ifreq` on macOS: 16 bytes of name, then a 16-byte union.
const IFREQ_LEN: usize = 32;
const IFNAMSIZ: usize = 16;
/// `ifr_delegated` (u32) in the union.
const DELEGATED_AT: usize = 16;

/// `_IOWR(group, number, size)` of BSD `sys/ioccom.h`.
const fn iowr(group: u8, number: u8, size: usize) -> u64 {
    const IOC_INOUT: u64 = 0xc000_0000;
    const IOCPARM_MASK: u64 = 0x1fff;
    IOC_INOUT | ((size as u64 & IOCPARM_MASK) << 16) | ((group as u64) << 8) | number as u64
}

/// `SIOCGIFDELEGATE = _IOWR('i', 157, struct ifreq)` from xnu's private
/// `bsd/sys/sockio.h`; neither the SDK headers nor the `libc` crate have it.
pub(crate) const SIOCGIFDELEGATE: u64 = iowr(b'i', 157, IFREQ_LEN);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadInterfaceName(String);

impl fmt::Display for BadInterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interface name {:?} does not fit an ifreq", self.0)
    }
}

impl std::error::Error for BadInterfaceName {}

/// The `ifreq` that asks for `name`'s delegate: the name NUL-terminated, the rest zero.
pub(crate) fn request(name: &str) -> Result<[u8; IFREQ_LEN], BadInterfaceName> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(BadInterfaceName(name.to_string()));
    }
    let mut ifreq = [0u8; IFREQ_LEN];
    ifreq[..bytes.len()].copy_from_slice(bytes);
    Ok(ifreq)
}

/// The delegate's index in the kernel's reply; 0 means "none".
pub(crate) fn delegate_in(reply: &[u8; IFREQ_LEN]) -> Option<u32> {
    let mut index = [0u8; 4];
    index.copy_from_slice(&reply[DELEGATED_AT..DELEGATED_AT + 4]);
    Some(u32::from_ne_bytes(index)).filter(|i| *i != 0)
}

/// Asks the running macOS kernel.
#[cfg(target_os = "macos")]
pub(crate) struct KernelDelegates;

#[cfg(target_os = "macos")]
impl super::select::DelegateLookup for KernelDelegates {
    /// Failures (an interface gone meanwhile) count as "no delegate".
    fn delegate_of(&self, interface: &super::select::InterfaceInfo) -> Option<u32> {
        let mut ifreq = request(&interface.name).ok()?;
        let socket =
            crate::platform::socket::raw_socket(libc::AF_INET, libc::SOCK_DGRAM, 0).ok()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        // SAFETY: ifreq is a live 32-byte buffer, the size SIOCGIFDELEGATE encodes.
        let rc = unsafe { libc::ioctl(fd, SIOCGIFDELEGATE as libc::c_ulong, ifreq.as_mut_ptr()) };
        if rc < 0 {
            return None;
        }
        delegate_in(&ifreq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_number_is_the_documented_one() {
        assert_eq!(SIOCGIFDELEGATE, 0xc020_699d);
        // The same encoding gives the public SIOCGIFMTU = _IOWR('i', 51, struct ifreq).
        assert_eq!(iowr(b'i', 51, IFREQ_LEN), 0xc020_6933);
    }

    #[test]
    fn the_request_carries_the_name_and_nothing_else() {
        let ifreq = request("utun3").unwrap();
        assert_eq!(&ifreq[..6], b"utun3\0");
        assert!(ifreq[6..].iter().all(|b| *b == 0));
        for bad in ["", "a-name-of-16-byt", "ut\0un"] {
            assert!(request(bad).is_err(), "{bad:?}");
        }
        assert!(request("fifteen-bytes-x").is_ok());
    }

    #[test]
    fn the_reply_names_the_delegate_or_none() {
        let mut reply = request("utun3").unwrap();
        assert_eq!(delegate_in(&reply), None);
        reply[16..20].copy_from_slice(&6u32.to_ne_bytes());
        assert_eq!(delegate_in(&reply), Some(6));
        reply[12..16].copy_from_slice(&[0xff; 4]);
        reply[20..].copy_from_slice(&[0xff; 12]);
        assert_eq!(delegate_in(&reply), Some(6), "only bytes 16..20 count");
    }
}
