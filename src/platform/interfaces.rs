//! This host's own addresses, for the endpoints a control server tells peers to try.

use std::net::IpAddr;

/// Unicast addresses on up interfaces, without loopback, link-local and the tailnet's own
/// ranges (the tunnel's addresses are no way to reach the tunnel).
pub fn endpoint_candidates() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> =
        all_addresses().into_iter().filter(|ip| usable_endpoint(*ip)).collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// Whether a peer could plausibly reach us at `ip`.
pub fn usable_endpoint(ip: IpAddr) -> bool {
    let tailnet_v4: crate::prefix::Prefix = "100.64.0.0/10".parse().expect("constant");
    let tailnet_v6: crate::prefix::Prefix = "fd7a:115c:a1e0::/48".parse().expect("constant");
    match ip {
        IpAddr::V4(a) => {
            !a.is_loopback()
                && !a.is_link_local()
                && !a.is_unspecified()
                && !tailnet_v4.contains(ip)
        }
        IpAddr::V6(a) => {
            !a.is_loopback()
                && !a.is_unspecified()
                && (a.segments()[0] & 0xffc0) != 0xfe80
                && !tailnet_v6.contains(ip)
        }
    }
}

/// Whether an interface's `ifa_flags` say it is up; they are a `c_uint` on most systems and a
/// `u64` on illumos.
fn is_up(flags: impl Into<u64>) -> bool {
    flags.into() & libc::IFF_UP as u64 != 0
}

fn all_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return found;
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: cursor points into the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        if is_up(entry.ifa_flags) && !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points at a sockaddr of its family's size.
            if let Some(ip) = unsafe { ip_of(entry.ifa_addr) } {
                found.push(ip);
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// # Safety
/// `addr` must point at a valid sockaddr of the size its family implies.
unsafe fn ip_of(addr: *const libc::sockaddr) -> Option<IpAddr> {
    match i32::from((*addr).sa_family) {
        libc::AF_INET => {
            let sin = &*(addr as *const libc::sockaddr_in);
            Some(IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            let sin6 = &*(addr as *const libc::sockaddr_in6);
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_is_read_from_flags_of_either_width() {
        let up = libc::IFF_UP as libc::c_uint;
        assert!(is_up(up) && is_up(up | 0x40) && is_up(u64::from(up) | 1 << 40));
        assert!(!is_up(0u32) && !is_up(!up) && !is_up(1u64 << 40));
    }

    #[test]
    fn filters_what_peers_cannot_use() {
        for bad in [
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.5",
            "::1",
            "fe80::1",
            "fd7a:115c:a1e0::9",
            "0.0.0.0",
        ] {
            assert!(!usable_endpoint(bad.parse().unwrap()), "{bad}");
        }
        for good in ["10.1.2.3", "192.0.2.7", "2001:db8::1", "fd00::5"] {
            assert!(usable_endpoint(good.parse().unwrap()), "{good}");
        }
    }

    /// The interface walk itself: loopback is up on every host, so reading it back as
    /// 127.0.0.1 checks the walk and the byte order; the candidates are then exactly the
    /// usable addresses the walk found, loopback not among them.
    #[test]
    fn candidates_are_the_usable_addresses_of_up_interfaces() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let all = all_addresses();
        assert!(all.contains(&loopback), "getifaddrs walk missed 127.0.0.1: {all:?}");
        let candidates = endpoint_candidates();
        assert!(!candidates.contains(&loopback));
        let mut expected: Vec<IpAddr> = all.into_iter().filter(|ip| usable_endpoint(*ip)).collect();
        expected.sort();
        expected.dedup();
        assert_eq!(candidates, expected);
    }
}
