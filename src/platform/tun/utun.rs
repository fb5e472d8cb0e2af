//! macOS's utun: a `PF_SYSTEM` control socket connected to the kernel control
//! `com.apple.net.utun_control`; the unit it connects to names the interface (`utunN` is
//! unit N+1, unit 0 lets the kernel pick), and closing the socket destroys it. Every packet
//! carries the 4-byte address-family header (`framing`).
//!
//! The request and address are built here as bytes on every OS (`struct ctl_info`,
//! `struct sockaddr_ctl` of `sys/kern_control.h`); only the calls are macOS code.

/// `CTLIOCGINFO = _IOWR('N', 3, struct ctl_info)`.
const CTLIOCGINFO: u64 = 0xc064_4e03;
const CONTROL_NAME: &[u8] = b"com.apple.net.utun_control";
/// `struct ctl_info`: `ctl_id` u32, then a 96-byte name.
const CTL_INFO_LEN: usize = 100;
/// `struct sockaddr_ctl`: len u8, family u8, `ss_sysaddr` u16, id u32, unit u32, 5 × u32.
const SOCKADDR_CTL_LEN: usize = 32;
/// `AF_SYSTEM` and `AF_SYS_CONTROL` (`sys/sys_domain.h`).
const AF_SYSTEM: u8 = 32;
const AF_SYS_CONTROL: u16 = 2;

/// The unit to connect to for the interface name asked for: `utun` lets the kernel pick,
/// `utunN` is unit N+1.
pub(crate) fn unit_for(name: &str) -> Result<u32, String> {
    let refuse = || {
        format!("on macOS the TUN interface is named utun (any free unit) or utunN, not {name:?}")
    };
    match name.strip_prefix("utun") {
        Some("") => Ok(0),
        Some(digits)
            if digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0')) =>
        {
            digits.parse::<u32>().ok().and_then(|n| n.checked_add(1)).ok_or_else(refuse)
        }
        _ => Err(refuse()),
    }
}

/// The `ctl_info` that asks `CTLIOCGINFO` for the utun control's id.
fn ctl_info_request() -> [u8; CTL_INFO_LEN] {
    let mut info = [0u8; CTL_INFO_LEN];
    info[4..4 + CONTROL_NAME.len()].copy_from_slice(CONTROL_NAME);
    info
}

/// The control id the kernel wrote into the `ctl_info`.
fn ctl_id(info: &[u8; CTL_INFO_LEN]) -> u32 {
    u32::from_ne_bytes([info[0], info[1], info[2], info[3]])
}

/// The `sockaddr_ctl` to connect to unit `unit` of control `id`.
fn sockaddr_ctl(id: u32, unit: u32) -> [u8; SOCKADDR_CTL_LEN] {
    let mut address = [0u8; SOCKADDR_CTL_LEN];
    address[0] = SOCKADDR_CTL_LEN as u8;
    address[1] = AF_SYSTEM;
    address[2..4].copy_from_slice(&AF_SYS_CONTROL.to_ne_bytes());
    address[4..8].copy_from_slice(&id.to_ne_bytes());
    address[8..12].copy_from_slice(&unit.to_ne_bytes());
    address
}

#[cfg(target_os = "macos")]
pub(super) use shim::open;

#[cfg(target_os = "macos")]
mod shim {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    const SYSPROTO_CONTROL: libc::c_int = 2;
    const UTUN_OPT_IFNAME: libc::c_int = 2;

    /// Opens the utun `name` asks for; the descriptor and the kernel's name for it.
    pub(in crate::platform::tun) fn open(name: &str) -> io::Result<(OwnedFd, String)> {
        let unit =
            super::unit_for(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let domain = libc::c_int::from(super::AF_SYSTEM);
        let fd = crate::platform::socket::raw_socket(domain, libc::SOCK_DGRAM, SYSPROTO_CONTROL)?;
        let raw = fd.as_raw_fd();
        let mut info = super::ctl_info_request();
        // SAFETY: CTLIOCGINFO reads and writes a ctl_info, which `info` is in size.
        if unsafe { libc::ioctl(raw, super::CTLIOCGINFO as libc::c_ulong, info.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let address = super::sockaddr_ctl(super::ctl_id(&info), unit);
        // SAFETY: the pointer and length describe `address`, a sockaddr_ctl in bytes.
        let rc = unsafe {
            libc::connect(raw, address.as_ptr().cast(), address.len() as libc::socklen_t)
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("connecting to utun unit {unit}: {e}")));
        }
        let kernel_name = interface_name(&fd)?;
        crate::platform::fd::set_nonblocking_cloexec(fd.as_raw_fd())?;
        Ok((fd, kernel_name))
    }

    fn interface_name(fd: &OwnedFd) -> io::Result<String> {
        let mut name = [0u8; 16];
        let mut len = name.len() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `name` and updates `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                SYSPROTO_CONTROL,
                UTUN_OPT_IFNAME,
                name.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let name = &name[..(len as usize).min(name.len())];
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        Ok(String::from_utf8_lossy(&name[..end]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_units() {
        assert_eq!(unit_for("utun"), Ok(0));
        assert_eq!(unit_for("utun0"), Ok(1));
        assert_eq!(unit_for("utun7"), Ok(8));
        for bad in ["weft0", "tun0", "utun01", "utun-1", "utunx", "utun4294967295"] {
            assert!(unit_for(bad).unwrap_err().contains("utunN"), "{bad}");
        }
    }

    #[test]
    fn the_request_numbers_and_layouts_are_the_documented_ones() {
        // _IOWR('N', 3, 100): in/out, the size, the group, the number.
        assert_eq!(CTLIOCGINFO, 0xc000_0000 | (100 << 16) | (u64::from(b'N') << 8) | 3);
        let info = ctl_info_request();
        assert_eq!(&info[4..30], b"com.apple.net.utun_control");
        assert!(info[..4].iter().chain(&info[30..]).all(|b| *b == 0));
        let mut reply = info;
        reply[..4].copy_from_slice(&0x1234u32.to_ne_bytes());
        assert_eq!(ctl_id(&reply), 0x1234);
        let address = sockaddr_ctl(0x1234, 5);
        assert_eq!(address[..2], [32, 32], "sc_len 32, sc_family AF_SYSTEM");
        assert_eq!(address[2..4], 2u16.to_ne_bytes(), "ss_sysaddr AF_SYS_CONTROL");
        assert_eq!(address[4..8], 0x1234u32.to_ne_bytes());
        assert_eq!(address[8..12], 5u32.to_ne_bytes());
        assert!(address[12..].iter().all(|b| *b == 0));
    }
}
