//! This host's interfaces and own addresses: the endpoints a control server tells peers to
//! try, and the interface list the physical-interface selection and the link monitor start
//! from.

use crate::platform::bind::select::InterfaceInfo;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::IpAddr;

/// Unicast addresses on up interfaces, without loopback, link-local and the tailnet's own
/// ranges (the tunnel's addresses are no way to reach the tunnel).
pub(crate) fn endpoint_candidates() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> =
        all_addresses().into_iter().filter(|ip| usable_endpoint(*ip)).collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// Whether a peer could plausibly reach us at `ip`.
pub(crate) fn usable_endpoint(ip: IpAddr) -> bool {
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

/// The interfaces and their addresses (with the interface's index) as the kernel lists them
/// now: what `bind::select` chooses among and `link_monitor::Monitor::seed` starts from.
/// An interface counts as up when it is administratively up and running (has a carrier).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub interfaces: Vec<InterfaceInfo>,
    pub addresses: Vec<(u32, IpAddr)>,
}

pub(crate) fn snapshot() -> Snapshot {
    let mut interfaces: BTreeMap<u32, InterfaceInfo> = BTreeMap::new();
    let mut addresses = Vec::new();
    each_entry(|entry| {
        // SAFETY: ifa_name is a NUL-terminated name in the list getifaddrs returned.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) };
        // SAFETY: as above; if_nametoindex only reads the name.
        let index = unsafe { libc::if_nametoindex(entry.ifa_name) };
        if index == 0 {
            return;
        }
        let up = has_flag(entry, libc::IFF_UP) && has_flag(entry, libc::IFF_RUNNING);
        let name = name.to_string_lossy().into_owned();
        interfaces.entry(index).or_insert(InterfaceInfo { name, index, up });
        // SAFETY: a non-null ifa_addr points at a sockaddr of its family's size.
        if let Some(ip) =
            (!entry.ifa_addr.is_null()).then(|| unsafe { ip_of(entry.ifa_addr) }).flatten()
        {
            addresses.push((index, ip));
        }
    });
    Snapshot { interfaces: interfaces.into_values().collect(), addresses }
}

/// The kernel's index of interface `name`; `None` when there is no such interface.
pub(crate) fn index_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: if_nametoindex only reads the NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

fn all_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    each_entry(|entry| {
        if has_flag(entry, libc::IFF_UP) && !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points at a sockaddr of its family's size.
            found.extend(unsafe { ip_of(entry.ifa_addr) });
        }
    });
    found
}

fn has_flag(entry: &libc::ifaddrs, flag: libc::c_int) -> bool {
    flag_set(entry.ifa_flags, flag)
}

/// Whether `flag` is set in `ifa_flags`, a `c_uint` on most systems and a `u64` on illumos.
fn flag_set(flags: impl Into<u64>, flag: libc::c_int) -> bool {
    flags.into() & flag as u64 != 0
}

/// Calls `visit` with each entry of `getifaddrs`; nothing when the call fails.
fn each_entry(mut visit: impl FnMut(&libc::ifaddrs)) {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return;
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: cursor points into the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        visit(entry);
        cursor = entry.ifa_next;
    }
    // SAFETY: list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
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
        let is_up = |flags: u64| flag_set(flags, libc::IFF_UP);
        assert!(flag_set(up, libc::IFF_UP) && flag_set(up | 0x40, libc::IFF_UP));
        assert!(is_up(u64::from(up) | 1 << 40));
        assert!(!flag_set(0u32, libc::IFF_UP) && !flag_set(!up, libc::IFF_UP) && !is_up(1 << 40));
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

    /// Loopback is up on every host: the snapshot finds it once, up, with 127.0.0.1 under
    /// its own index.
    #[test]
    fn the_snapshot_has_loopback_up_with_its_address() {
        let snapshot = snapshot();
        let lo = snapshot.interfaces.iter().find(|i| i.name == "lo" || i.name == "lo0");
        let lo = lo.expect("a loopback interface");
        assert!(lo.up && lo.index > 0, "{lo:?}");
        assert!(snapshot.addresses.contains(&(lo.index, "127.0.0.1".parse().unwrap())));
        assert_eq!(index_of(&lo.name), Some(lo.index));
        assert_eq!(index_of("no-such-if0"), None);
        let mut indexes: Vec<u32> = snapshot.interfaces.iter().map(|i| i.index).collect();
        indexes.dedup();
        assert_eq!(indexes.len(), snapshot.interfaces.len(), "one entry per interface");
    }
}
