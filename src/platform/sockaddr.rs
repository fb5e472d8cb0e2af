//! `SocketAddr` to the C `sockaddr` the socket calls take, for sockets we create ourselves
//! (they must be marked before `bind`/`connect`, which std's constructors don't allow).

use std::net::SocketAddr;

/// The C form of `addr` and its length.
pub fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the family-specific view is written below.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            (storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            (storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_families() {
        let (s, len) = to_sockaddr("10.1.2.3:80".parse().unwrap());
        assert_eq!(i32::from(s.ss_family), libc::AF_INET);
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in>());
        let (s, len) = to_sockaddr("[::1]:443".parse().unwrap());
        assert_eq!(i32::from(s.ss_family), libc::AF_INET6);
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
    }
}
