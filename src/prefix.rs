//! IP prefixes (`100.64.0.1/32`, `fd7a:115c:a1e0::/48`): the unit of AllowedIPs, addresses and routes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with a prefix length. The address is kept as written (host bits may be set, as in
/// an interface address `100.64.0.1/10`); [`Prefix::network`] gives the masked form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Builds a prefix, refusing lengths longer than the address family allows.
    pub(crate) fn new(addr: IpAddr, len: u8) -> Result<Prefix, String> {
        let max = Self::max_len_of(&addr);
        if len > max {
            return Err(format!("prefix length /{len} is longer than /{max}"));
        }
        Ok(Prefix { addr, len })
    }

    /// A single-address prefix: /32 for IPv4, /128 for IPv6.
    pub(crate) fn host(addr: IpAddr) -> Prefix {
        Prefix { addr, len: Self::max_len_of(&addr) }
    }

    fn max_len_of(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    pub(crate) fn addr(&self) -> IpAddr {
        self.addr
    }

    pub(crate) fn bits(&self) -> u8 {
        self.len
    }

    pub(crate) fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True when the prefix names exactly one address.
    pub(crate) fn is_host(&self) -> bool {
        self.len == Self::max_len_of(&self.addr)
    }

    /// The same prefix with its host bits cleared, as routes are written.
    pub(crate) fn network(&self) -> Prefix {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(self.len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(self.len)).into()),
        };
        Prefix { addr, len: self.len }
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let m = mask32(self.len);
                u32::from(p) & m == u32::from(a) & m
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let m = mask128(self.len);
                u128::from(p) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// The IPv4 netmask of a prefix length (`len` ≤ 32): its `len` leading bits set.
pub(crate) fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// The IPv6 netmask of a prefix length (`len` ≤ 128).
pub(crate) fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl FromStr for Prefix {
    type Err = String;

    /// Parses `addr/len` or a bare address (taken as a host prefix).
    fn from_str(s: &str) -> Result<Prefix, String> {
        let s = s.trim();
        match s.split_once('/') {
            Some((addr, len)) => {
                let addr: IpAddr =
                    addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
                let len: u8 = len.parse().map_err(|_| format!("{len:?} is not a prefix length"))?;
                Prefix::new(addr, len)
            }
            None => s
                .parse()
                .map(Prefix::host)
                .map_err(|_| format!("{s:?} is not an IP address or prefix")),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl serde::Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let p: Prefix = "100.64.1.2/10".parse().unwrap();
        assert_eq!(p.network().to_string(), "100.64.0.0/10");
        assert!(p.contains("100.127.255.255".parse().unwrap()));
        assert!(!p.contains("100.128.0.0".parse().unwrap()));
        let h: Prefix = "fd7a:115c:a1e0::1".parse().unwrap();
        assert!(h.is_host());
        assert_eq!(h.bits(), 128);
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "1.2.3.4/33", "::/129", "1.2.3/8", "x/1", "1.2.3.4/-1", "1.2.3.4/"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }
}
