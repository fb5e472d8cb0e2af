//! illumos shim: the third-party STREAMS TUN driver ("tuntap", `/dev/tun`). Unlike a BSD
//! `/dev/tunN`, opening the device makes no interface: the daemon asks the driver for the
//! unit (PPA) N of `tunN` (`TUNNEWPPA`), then plumbs a second stream of that unit under IP
//! (`I_PUSH "ip"`, `IF_UNITSEL`, a persistent `I_PLINK` into a `/dev/udp` multiplexor,
//! `SIOCSLIFMUXID` so `ifconfig` finds the link). Packets are bare (no family header), one
//! per STREAMS message; the read side is switched to message-discard mode so one `read`
//! returns exactly one message. The persistent link outlives every descriptor, so the router
//! unplumbs `tunN` at stop and after a crash (`ifconfig tunN unplumb`).
//!
//! The numbers and layouts are from illumos's `sys/stropts.h`, `sys/sockio.h`, `net/if.h`
//! and the tuntap driver's `if_tun.h` (see shared notes); they are checked here on Linux as
//! bytes, and the sequence has never run on illumos.

/// `STR = 'S' << 8`: the STREAMS ioctl group of `sys/stropts.h`.
const STR: u32 = 0x5300;
/// `I_PUSH = STR | 02`: push a module (here `ip`) onto a stream.
const I_PUSH: u32 = STR | 0o2;
/// `I_SRDOPT = STR | 06`: set the read mode.
const I_SRDOPT: u32 = STR | 0o6;
/// `I_STR = STR | 010`: send a `strioctl` down the stream to the driver.
const I_STR: u32 = STR | 0o10;
/// `I_PLINK = STR | 026`: link a stream persistently under a multiplexor; returns its id.
const I_PLINK: u32 = STR | 0o26;
/// `RMSGD`: message-discard read mode, one `read` per message (a short buffer drops the rest).
const RMSGD: libc::c_int = 0x0001;
/// The tuntap driver's `TUNNEWPPA = ('T' << 16) | 0x0001`: allocate unit N (its argument,
/// or any free unit for -1); the ioctl returns the unit.
const TUNNEWPPA: i32 = 0x0054_0001;
/// `IF_UNITSEL = _IOW('s', 54, int)` (the socket group): select the unit of the stream IP was pushed onto.
const IF_UNITSEL: u32 = 0x8004_7336;
/// `SIOCSLIFMUXID = _IOW('i', 132, struct lifreq)`: record the mux id of an interface.
const SIOCSLIFMUXID: u32 = 0x8078_6984;

/// `LIFNAMSIZ`: the bytes of `lifr_name`, NUL included.
const LIFNAMSIZ: usize = 32;
/// `sizeof(struct lifreq)` on 64-bit illumos.
const LIFREQ_LEN: usize = 0x178;
/// Offset of `lifr_lifru.lif_muxid[0]` (the IP mux id) in `struct lifreq`.
const LIFREQ_MUXID_OFFSET: usize = 40;

/// `struct strioctl` of `sys/stropts.h`: the command the driver sees, its timeout (0: the
/// default) and the argument buffer (24 bytes on a 64-bit target).
#[repr(C)]
struct StrIoctl {
    ic_cmd: libc::c_int,
    ic_timout: libc::c_int,
    ic_len: libc::c_int,
    ic_dp: *mut libc::c_char,
}

/// The unit (PPA) the driver is asked for: the N of `tunN`. Only `tunN` names exist on this
/// driver, so any other name is refused with the form it must take.
fn unit_of(name: &str) -> Result<i32, String> {
    name.strip_prefix("tun")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| {
            format!(
                "on illumos the tuntap driver names its interfaces tunN: name it tunN (--tun \
                 tun0), not {name:?}"
            )
        })
}

/// A `struct lifreq` naming `name` and carrying the IP mux id `muxid` (`SIOCSLIFMUXID`).
fn lifreq_with_muxid(name: &str, muxid: i32) -> [u8; LIFREQ_LEN] {
    let mut lifreq = [0u8; LIFREQ_LEN];
    let name = &name.as_bytes()[..name.len().min(LIFNAMSIZ - 1)];
    lifreq[..name.len()].copy_from_slice(name);
    lifreq[LIFREQ_MUXID_OFFSET..LIFREQ_MUXID_OFFSET + 4].copy_from_slice(&muxid.to_ne_bytes());
    lifreq
}

#[cfg(target_os = "illumos")]
pub(super) use device::open;

#[cfg(target_os = "illumos")]
mod device {
    use super::*;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// Creates and plumbs `name` (`tunN`); returns the packet stream, non-blocking, in
    /// message-discard read mode.
    pub(in crate::platform::tun) fn open(name: &str) -> io::Result<OwnedFd> {
        let unit = unit_of(name).map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        let ip = open_path(c"/dev/udp", 0)?;
        let packets = open_path(c"/dev/tun", libc::O_NONBLOCK)?;
        let unit = new_ppa(&packets, unit).map_err(|e| context(e, "TUNNEWPPA on /dev/tun"))?;
        let muxid = plumb(&ip, unit)?;
        let lifreq = lifreq_with_muxid(name, muxid);
        // SAFETY: SIOCSLIFMUXID reads one `struct lifreq`, which `lifreq` is in size.
        check(unsafe { libc::ioctl(ip.as_raw_fd(), SIOCSLIFMUXID as libc::c_int, &lifreq) })
            .map_err(|e| context(e, "SIOCSLIFMUXID"))?;
        // SAFETY: I_SRDOPT takes the read mode as an integer argument.
        check(unsafe { libc::ioctl(packets.as_raw_fd(), I_SRDOPT as libc::c_int, RMSGD) })
            .map_err(|e| context(e, "I_SRDOPT on /dev/tun"))?;
        Ok(packets)
    }

    /// Asks the driver of `packets` for unit `unit`; the ioctl's value is the unit given.
    fn new_ppa(packets: &OwnedFd, unit: i32) -> io::Result<i32> {
        let mut argument = unit;
        let mut request = StrIoctl {
            ic_cmd: TUNNEWPPA,
            ic_timout: 0,
            ic_len: 4,
            ic_dp: (&mut argument as *mut i32).cast(),
        };
        // SAFETY: I_STR reads `request`, whose buffer `argument` (ic_len bytes) outlives it.
        check(unsafe { libc::ioctl(packets.as_raw_fd(), I_STR as libc::c_int, &mut request) })
    }

    /// Links a second stream of unit `unit`, with IP pushed onto it, under `ip`; returns the
    /// mux id. The link is persistent: the interface stays until it is unplumbed.
    fn plumb(ip: &OwnedFd, unit: i32) -> io::Result<i32> {
        let interface = open_path(c"/dev/tun", 0)?;
        let fd = interface.as_raw_fd();
        // SAFETY: I_PUSH reads the NUL-terminated module name.
        check(unsafe { libc::ioctl(fd, I_PUSH as libc::c_int, c"ip".as_ptr()) })
            .map_err(|e| context(e, "I_PUSH ip"))?;
        // SAFETY: IF_UNITSEL reads one c_int through the pointer.
        check(unsafe { libc::ioctl(fd, IF_UNITSEL as libc::c_int, &unit) })
            .map_err(|e| context(e, "IF_UNITSEL"))?;
        // SAFETY: I_PLINK takes the descriptor to link as its integer argument.
        check(unsafe { libc::ioctl(ip.as_raw_fd(), I_PLINK as libc::c_int, fd) })
            .map_err(|e| context(e, "I_PLINK under /dev/udp"))
    }

    fn open_path(path: &std::ffi::CStr, extra: libc::c_int) -> io::Result<OwnedFd> {
        // SAFETY: `path` is NUL-terminated; the flags are plain integers.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | extra) };
        let raw = check(raw).map_err(|e| context(e, &path.to_string_lossy()))?;
        // SAFETY: raw is a fresh descriptor owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    fn check(rc: libc::c_int) -> io::Result<i32> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }

    fn context(e: io::Error, what: &str) -> io::Error {
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn stream_ioctl_numbers_are_the_stropts_ones() {
        assert_eq!([I_PUSH, I_SRDOPT, I_STR, I_PLINK], [0x5302, 0x5306, 0x5308, 0x5316]);
        assert_eq!(TUNNEWPPA, i32::from(b'T') << 16 | 1);
    }

    /// `_IOW(group, number, size)` of illumos `sys/ioccom.h`: IOC_IN, the size's low 8
    /// bits at 16, the group at 8.
    #[test]
    fn interface_ioctls_are_iow_of_their_argument_size() {
        let iow = |group: u8, number: u32, size: usize| {
            0x8000_0000 | ((size as u32 & 0xff) << 16) | (u32::from(group) << 8) | number
        };
        assert_eq!(IF_UNITSEL, iow(b's', 54, size_of::<libc::c_int>()));
        assert_eq!(SIOCSLIFMUXID, iow(b'i', 132, LIFREQ_LEN));
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn strioctl_has_the_64_bit_layout() {
        assert_eq!(size_of::<StrIoctl>(), 24);
        assert_eq!(
            [offset_of!(StrIoctl, ic_cmd), offset_of!(StrIoctl, ic_timout)],
            [0, 4],
            "command then timeout"
        );
        assert_eq!([offset_of!(StrIoctl, ic_len), offset_of!(StrIoctl, ic_dp)], [8, 16]);
    }

    #[test]
    fn lifreq_carries_the_name_and_the_ip_mux_id() {
        let lifreq = lifreq_with_muxid("tun7", 0x0102_0304);
        assert_eq!(lifreq.len(), 376);
        assert_eq!(&lifreq[..5], b"tun7\0");
        assert!(lifreq[5..40].iter().all(|b| *b == 0));
        assert_eq!(lifreq[40..44], 0x0102_0304i32.to_ne_bytes());
        assert!(lifreq[44..].iter().all(|b| *b == 0), "the ARP mux id stays 0");
    }

    #[test]
    fn the_unit_is_the_number_of_tun_n() {
        assert_eq!(unit_of("tun0"), Ok(0));
        assert_eq!(unit_of("tun42"), Ok(42));
        for bad in ["tun", "weft0", "tun-1", "tun1a", "tun99999999999", "utun3"] {
            let why = unit_of(bad).unwrap_err();
            assert!(why.contains("name it tunN"), "{bad}: {why}");
        }
    }
}
