//! Cryptokey routing: which peer owns a destination address, by longest-prefix match over every
//! peer's AllowedIPs. Used for every outbound packet (pick the peer) and every inbound one (the
//! source must belong to the peer that sent it).

use crate::prefix::Prefix;
use std::collections::HashMap;
use std::net::IpAddr;

/// A longest-prefix-match table. One hash map per prefix length in use, probed from the longest
/// length down: a lookup costs one hash probe per distinct length (typically two or three),
/// whatever the number of peers.
#[derive(Clone, Debug, Default)]
pub struct AllowedIps<V> {
    v4: LengthMaps<u32, V>,
    v6: LengthMaps<u128, V>,
}

#[derive(Clone, Debug)]
struct LengthMaps<K, V> {
    /// (prefix length, masked network → value), longest length first.
    by_length: Vec<(u8, HashMap<K, V>)>,
}

impl<K, V> Default for LengthMaps<K, V> {
    fn default() -> Self {
        LengthMaps { by_length: Vec::new() }
    }
}

impl<K: std::hash::Hash + Eq + Copy, V: Copy> LengthMaps<K, V> {
    fn insert(&mut self, len: u8, key: K, value: V) {
        let at = match self.by_length.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.by_length[i].0 == len => i,
            Some(i) => {
                self.by_length.insert(i, (len, HashMap::new()));
                i
            }
            None => {
                self.by_length.push((len, HashMap::new()));
                self.by_length.len() - 1
            }
        };
        self.by_length[at].1.insert(key, value);
    }

    fn lookup(&self, mask: impl Fn(u8) -> K) -> Option<V> {
        self.by_length.iter().find_map(|(len, map)| map.get(&mask(*len)).copied())
    }
}

impl<V: Copy> AllowedIps<V> {
    pub fn new() -> AllowedIps<V> {
        AllowedIps { v4: LengthMaps::default(), v6: LengthMaps::default() }
    }

    /// Adds a prefix. A prefix given twice keeps the last value, as `wg` does.
    pub fn insert(&mut self, prefix: Prefix, value: V) {
        let network = prefix.network();
        match network.addr() {
            IpAddr::V4(a) => self.v4.insert(prefix.bits(), u32::from(a), value),
            IpAddr::V6(a) => self.v6.insert(prefix.bits(), u128::from(a), value),
        }
    }

    /// The value of the longest prefix containing `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<V> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.lookup(|len| a & mask32(len))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.lookup(|len| a & mask128(len))
            }
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AllowedIps<u32> {
        let mut t = AllowedIps::new();
        t.insert("0.0.0.0/0".parse().unwrap(), 0);
        t.insert("100.64.0.0/10".parse().unwrap(), 1);
        t.insert("100.64.0.7/32".parse().unwrap(), 2);
        t.insert("10.1.2.3/16".parse().unwrap(), 3);
        t.insert("fd7a:115c:a1e0::/48".parse().unwrap(), 4);
        t.insert("fd7a:115c:a1e0::9/128".parse().unwrap(), 5);
        t
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        let at = |s: &str| t.lookup(s.parse().unwrap());
        assert_eq!(at("100.64.0.7"), Some(2));
        assert_eq!(at("100.64.0.8"), Some(1));
        assert_eq!(at("10.1.200.1"), Some(3), "host bits of 10.1.2.3/16 are masked");
        assert_eq!(at("192.0.2.1"), Some(0));
        assert_eq!(at("fd7a:115c:a1e0::9"), Some(5));
        assert_eq!(at("fd7a:115c:a1e0::a"), Some(4));
        assert_eq!(at("2001:db8::1"), None, "no IPv6 default route");
    }

    #[test]
    fn later_insert_of_same_prefix_replaces() {
        let mut t = table();
        t.insert("100.64.0.7/32".parse().unwrap(), 9);
        assert_eq!(t.lookup("100.64.0.7".parse().unwrap()), Some(9));
    }
}
