//! UDP segmentation offloads: one `sendmsg` carries many equal-sized datagrams (`UDP_SEGMENT`,
//! "GSO") and one `recvmsg` returns many datagrams of one sender glued together (`UDP_GRO`),
//! with the size to cut them at. Linux only; elsewhere every call says `Unsupported` and the
//! caller sends and receives one datagram at a time.

#[cfg(target_os = "linux")]
use super::sockaddr::{from_sockaddr, to_sockaddr};
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Most datagrams one GSO send may carry (the kernel's `UDP_MAX_SEGMENTS`).
pub(crate) const MAX_SEGMENTS: usize = 64;

/// Largest payload one GSO send may carry: an IP packet's 64 KiB less IPv6 and UDP headers.
pub(crate) const MAX_GSO_BYTES: usize = 65535 - 40 - 8;

/// Asks the kernel to coalesce received datagrams (`UDP_GRO`). Failure is harmless: reads then
/// return one datagram each.
#[cfg(target_os = "linux")]
pub(crate) fn enable_gro(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable_gro(_fd: RawFd) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18+). An older one would ignore the
/// control message and send the whole batch as one oversized datagram, so we ask first.
#[cfg(target_os = "linux")]
pub(crate) fn probe_gso(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn probe_gso(_fd: RawFd) -> bool {
    false
}

/// Sends `buf` to `to` as datagrams of `segment` bytes each (the last may be shorter). The
/// kernel refuses (`EIO`, `EINVAL`, `EOPNOTSUPP`…) when the route's device or an old kernel
/// can't segment; the caller then falls back to one datagram per call.
#[cfg(target_os = "linux")]
pub(crate) fn send_segments(
    fd: RawFd,
    to: SocketAddr,
    buf: &[u8],
    segment: u16,
) -> io::Result<usize> {
    let (mut name, name_len) = to_sockaddr(to);
    let mut iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = name_len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is pure arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as _;
    // SAFETY: the control buffer is large enough for one cmsghdr with a u16 (checked by
    // CMSG_FIRSTHDR returning non-null), and CMSG_DATA points inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
    // SAFETY: msg describes live buffers; sendmsg only reads them.
    let n = unsafe { libc::sendmsg(fd, &msg, 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn send_segments(
    _fd: RawFd,
    _to: SocketAddr,
    _buf: &[u8],
    _segment: u16,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// One receive: the bytes read, the sender, and the size to cut them at (0: one datagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Received {
    pub len: usize,
    pub from: SocketAddr,
    pub segment: usize,
}

/// Receives one datagram, or with GRO on a run of same-sized datagrams from one sender.
#[cfg(target_os = "linux")]
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg describes live, writable buffers of the sizes given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let from = from_sockaddr(&name).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    let mut segment = 0;
    // SAFETY: the CMSG_* walk stays within msg_controllen as the kernel set it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                segment = usize::try_from(size).unwrap_or(0);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "datagram truncated"));
    }
    Ok(Received { len, from, segment })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn recv(_fd: RawFd, _buf: &mut [u8]) -> io::Result<Received> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Loopback GSO send + GRO receive on this host's kernel, when it has them: 3 datagrams
    /// leave in one call and arrive in one read with the segment size.
    #[test]
    fn segments_round_trip_over_loopback() {
        use std::os::fd::AsRawFd;
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let gro = enable_gro(rx.as_raw_fd()).is_ok();
        let payload: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        let to = rx.local_addr().unwrap();
        if send_segments(tx.as_raw_fd(), to, &payload, 100).is_err() {
            return; // no UDP GSO here: the daemon falls back, nothing to test
        }
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while got.len() < payload.len() {
            let r = recv(rx.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(r.from, tx.local_addr().unwrap());
            if gro && r.len > 100 {
                assert_eq!(r.segment, 100);
            }
            got.extend_from_slice(&buf[..r.len]);
        }
        assert_eq!(got, payload);
    }
}
