//! Cryptokey routing: which peer owns a destination address, by longest-prefix match over every
//! peer's AllowedIPs. Used for every outbound packet (pick the peer) and every inbound one (the
//! source must belong to the peer that sent it), and changed one peer at a time as the netmap
//! changes.

use crate::prefix::{mask128, mask32, Prefix};
use std::collections::hash_map::{Entry, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A longest-prefix-match table from prefixes to their owners.
///
/// Each address family keeps one hash map per prefix length in use, probed from the longest
/// length down. The exact addresses that make up nearly every tailnet route (/32, /128) are
/// therefore the first probe, and a lookup costs at most one probe per distinct length in use
/// (at most 33 for IPv4 and 129 for IPv6, two or three in practice) whatever the number of
/// peers. Claiming and withdrawing a prefix cost one hash operation, plus a shift of that short
/// list when a length comes into or out of use; nothing walks the entries.
///
/// Several owners may claim the same prefix (two peers listing one subnet). The earliest
/// claimant still present owns it and the others wait in claim order, so a newcomer cannot take
/// a route from a peer that holds it, and withdrawing one claim never takes the route from
/// another claimant.
#[derive(Clone, Debug)]
pub(crate) struct AllowedIps<V> {
    v4: LengthMaps<u32, V>,
    v6: LengthMaps<u128, V>,
}

#[derive(Clone, Debug)]
struct LengthMaps<K, V> {
    /// (prefix length, masked network → claims), longest length first; no map is empty.
    by_length: Vec<(u8, HashMap<K, Claims<V>>)>,
}

/// The claimants of one prefix, earliest first.
#[derive(Clone, Debug)]
struct Claims<V> {
    owner: V,
    /// Later claimants; `None` unless AllowedIPs overlap exactly. Boxed, so that the
    /// common entry is two words: a large tailnet has two of them per peer. (A thin pointer
    /// on purpose: a `Vec` or a boxed slice would be three or two words in every entry.)
    #[allow(clippy::box_collection)]
    waiting: Option<Box<Vec<V>>>,
}

impl<V> Claims<V> {
    fn waiting(&self) -> &[V] {
        self.waiting.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<V> Default for AllowedIps<V> {
    fn default() -> Self {
        AllowedIps { v4: LengthMaps::default(), v6: LengthMaps::default() }
    }
}

impl<K, V> Default for LengthMaps<K, V> {
    fn default() -> Self {
        LengthMaps { by_length: Vec::new() }
    }
}

impl<K: Hash + Eq + Copy, V: Copy + PartialEq> LengthMaps<K, V> {
    /// Where length `len` is or would go in the longest-first list.
    fn slot(&self, len: u8) -> Result<usize, usize> {
        self.by_length.binary_search_by(|(l, _)| len.cmp(l))
    }

    fn claim(&mut self, len: u8, key: K, value: V) {
        let at = self.slot(len).unwrap_or_else(|at| {
            self.by_length.insert(at, (len, HashMap::new()));
            at
        });
        match self.by_length[at].1.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(Claims { owner: value, waiting: None });
            }
            Entry::Occupied(mut occupied) => {
                let claims = occupied.get_mut();
                if claims.owner != value && !claims.waiting().contains(&value) {
                    claims.waiting.get_or_insert_with(Box::default).push(value);
                }
            }
        }
    }

    /// Withdraws `value`'s claim; true if it had one.
    fn withdraw(&mut self, len: u8, key: K, value: V) -> bool {
        let Ok(at) = self.slot(len) else {
            return false;
        };
        let map = &mut self.by_length[at].1;
        let Some(claims) = map.get_mut(&key) else {
            return false;
        };
        if claims.owner == value {
            match claims.waiting.as_mut() {
                None => {
                    map.remove(&key);
                    if map.is_empty() {
                        self.by_length.remove(at);
                    }
                }
                Some(waiting) => {
                    claims.owner = waiting.remove(0);
                    if waiting.is_empty() {
                        claims.waiting = None;
                    }
                }
            }
            return true;
        }
        let Some(waiting) = claims.waiting.as_mut() else {
            return false;
        };
        let before = waiting.len();
        waiting.retain(|w| *w != value);
        let withdrew = waiting.len() != before;
        if waiting.is_empty() {
            claims.waiting = None;
        }
        withdrew
    }

    fn lookup(&self, mask: impl Fn(u8) -> K) -> Option<V> {
        self.by_length.iter().find_map(|(len, map)| map.get(&mask(*len)).map(|c| c.owner))
    }

    fn networks(&self) -> impl Iterator<Item = (u8, K)> + '_ {
        self.by_length.iter().flat_map(|(len, map)| map.keys().map(move |key| (*len, *key)))
    }

    fn len(&self) -> usize {
        self.by_length.iter().map(|(_, map)| map.len()).sum()
    }
}

impl<V: Copy + PartialEq> AllowedIps<V> {
    pub(crate) fn new() -> AllowedIps<V> {
        AllowedIps::default()
    }

    /// Adds `value`'s claim to `prefix` (host bits ignored). It owns the prefix unless an
    /// earlier claimant still does; claiming twice is the same as once.
    pub(crate) fn insert(&mut self, prefix: Prefix, value: V) {
        match prefix.network().addr() {
            IpAddr::V4(a) => self.v4.claim(prefix.bits(), u32::from(a), value),
            IpAddr::V6(a) => self.v6.claim(prefix.bits(), u128::from(a), value),
        }
    }

    /// Withdraws `value`'s claim to `prefix`, handing the prefix to the next claimant if there
    /// is one; every other prefix is left as it was. False if `value` had no such claim.
    pub(crate) fn remove(&mut self, prefix: Prefix, value: V) -> bool {
        match prefix.network().addr() {
            IpAddr::V4(a) => self.v4.withdraw(prefix.bits(), u32::from(a), value),
            IpAddr::V6(a) => self.v6.withdraw(prefix.bits(), u128::from(a), value),
        }
    }

    /// The owner of the longest prefix containing `ip`.
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<V> {
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

    /// Every claimed prefix, as a network, once each, in no particular order.
    pub(crate) fn prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        let network = |addr: IpAddr, len| Prefix::new(addr, len).expect("length of a stored key");
        let v4 = self.v4.networks().map(move |(len, a)| network(Ipv4Addr::from(a).into(), len));
        let v6 = self.v6.networks().map(move |(len, a)| network(Ipv6Addr::from(a).into(), len));
        v4.chain(v6)
    }

    /// The number of distinct prefixes claimed.
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

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

    fn at(t: &AllowedIps<u32>, ip: &str) -> Option<u32> {
        t.lookup(ip.parse().unwrap())
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        assert_eq!(at(&t, "100.64.0.7"), Some(2));
        assert_eq!(at(&t, "100.64.0.8"), Some(1));
        assert_eq!(at(&t, "10.1.200.1"), Some(3), "host bits of 10.1.2.3/16 are masked");
        assert_eq!(at(&t, "192.0.2.1"), Some(0));
        assert_eq!(at(&t, "fd7a:115c:a1e0::9"), Some(5));
        assert_eq!(at(&t, "fd7a:115c:a1e0::a"), Some(4));
        assert_eq!(at(&t, "2001:db8::1"), None, "no IPv6 default route");
    }

    #[test]
    fn removing_a_prefix_leaves_the_others_intact() {
        let mut t = table();
        assert!(t.remove("100.64.0.7/32".parse().unwrap(), 2));
        assert_eq!(at(&t, "100.64.0.7"), Some(1), "the covering /10 answers now");
        assert!(t.remove("0.0.0.0/0".parse().unwrap(), 0));
        assert_eq!(at(&t, "192.0.2.1"), None);
        assert_eq!(at(&t, "10.1.200.1"), Some(3));
        assert_eq!(at(&t, "fd7a:115c:a1e0::9"), Some(5));
        assert_eq!(t.len(), 4);
        assert!(!t.remove("100.64.0.0/10".parse().unwrap(), 9), "not 9's prefix");
        assert!(!t.remove("100.64.0.0/11".parse().unwrap(), 1), "not a stored length");
        assert_eq!(at(&t, "100.64.0.7"), Some(1));
    }

    #[test]
    fn the_earliest_claimant_owns_and_the_next_takes_over() {
        let mut t = table();
        let host = "100.64.0.7/32".parse().unwrap();
        t.insert(host, 9);
        t.insert(host, 9);
        assert_eq!(at(&t, "100.64.0.7"), Some(2), "a later claim does not take the route");
        assert!(t.remove(host, 2));
        assert_eq!(at(&t, "100.64.0.7"), Some(9));
        assert!(t.remove(host, 9));
        assert!(!t.remove(host, 9), "claiming twice withdraws once");
        assert_eq!(at(&t, "100.64.0.7"), Some(1));
    }

    #[test]
    fn lists_each_claimed_network_once() {
        let mut t = table();
        t.insert("100.64.0.7/32".parse().unwrap(), 9);
        let mut listed: Vec<String> = t.prefixes().map(|p| p.to_string()).collect();
        listed.sort();
        let want = [
            "0.0.0.0/0",
            "10.1.0.0/16",
            "100.64.0.0/10",
            "100.64.0.7/32",
            "fd7a:115c:a1e0::/48",
            "fd7a:115c:a1e0::9/128",
        ];
        assert_eq!(listed, want);
    }

    /// The obvious implementation: every claim in a list, scanned in full for each lookup.
    #[derive(Default)]
    struct Reference {
        claims: Vec<(Prefix, u32)>,
    }

    impl Reference {
        fn insert(&mut self, prefix: Prefix, owner: u32) {
            let prefix = prefix.network();
            if !self.claims.contains(&(prefix, owner)) {
                self.claims.push((prefix, owner));
            }
        }

        fn remove(&mut self, prefix: Prefix, owner: u32) -> bool {
            let before = self.claims.len();
            self.claims.retain(|claim| *claim != (prefix.network(), owner));
            self.claims.len() != before
        }

        /// Longest containing prefix; among claims of that prefix, the earliest.
        fn lookup(&self, ip: IpAddr) -> Option<u32> {
            let longest = self.claims.iter().filter(|(p, _)| p.contains(ip)).map(|(p, _)| p.bits());
            let len = longest.max()?;
            self.claims.iter().find(|(p, _)| p.bits() == len && p.contains(ip)).map(|(_, o)| *o)
        }
    }

    /// Addresses crowded into a few small ranges, so that random prefixes nest and collide.
    fn random_ip(rng: &mut Rng) -> IpAddr {
        let low = rng.next_u64() as u16 & 0x0f0f;
        if rng.below(2) == 0 {
            let high = [0x0a00_0000u32, 0x6440_0000][rng.below(2)];
            IpAddr::V4((high | u32::from(low)).into())
        } else {
            let high = [0xfd7a_115c_a1e0u128 << 80, 0x2001_0db8u128 << 96][rng.below(2)];
            IpAddr::V6((high | u128::from(low)).into())
        }
    }

    fn random_prefix(rng: &mut Rng) -> Prefix {
        let ip = random_ip(rng);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match rng.below(4) {
            0 => max,
            1 => rng.below(max + 1),
            _ => max - rng.below(17),
        };
        Prefix::new(ip, len as u8).unwrap()
    }

    #[test]
    fn randomized_changes_match_a_naive_longest_prefix_match() {
        for seed in 1..=20u64 {
            let mut rng = Rng::new(seed);
            let (mut table, mut reference) = (AllowedIps::new(), Reference::default());
            let mut claimed: Vec<(Prefix, u32)> = Vec::new();
            for step in 0..400 {
                if claimed.is_empty() || rng.below(3) != 0 {
                    let (prefix, owner) = (random_prefix(&mut rng), rng.below(8) as u32);
                    table.insert(prefix, owner);
                    reference.insert(prefix, owner);
                    claimed.push((prefix, owner));
                } else {
                    let (prefix, owner) = claimed.swap_remove(rng.below(claimed.len()));
                    assert_eq!(
                        table.remove(prefix, owner),
                        reference.remove(prefix, owner),
                        "seed {seed} step {step}: remove {prefix} of {owner}"
                    );
                }
                for _ in 0..8 {
                    let ip = random_ip(&mut rng);
                    let (got, want) = (table.lookup(ip), reference.lookup(ip));
                    assert_eq!(got, want, "seed {seed} step {step}: lookup {ip}");
                }
            }
        }
    }
}
