//! From the tailnet's DNS settings (as control sends them) to what the OS resolver can be
//! told: plain nameservers on port 53, search domains, and the domains they answer for.
//! Pure, so every rule is tested without touching a host.

use crate::control::tailcfg::{DnsConfig, Resolver};
use crate::magicdns::zone::{self, SERVICE_V4};
use crate::resolver::DNS_PORT;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// What the OS resolver is to use while the tailnet's DNS is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OsDnsConfig {
    /// Asked in order, on port 53.
    pub nameservers: Vec<IpAddr>,
    /// Appended to short names, without trailing dots.
    pub search_domains: Vec<String>,
    /// Empty: the nameservers answer every name. Otherwise they answer only names under
    /// these domains (split DNS), where the OS can do that.
    pub match_domains: Vec<String>,
}

impl OsDnsConfig {
    /// Whether only 100.100.100.100 is asked: it can answer every name (it forwards what is
    /// not the tailnet's), so an OS without split DNS may take it for all names.
    pub(crate) fn is_quad100(&self) -> bool {
        self.nameservers == [IpAddr::V4(SERVICE_V4)]
    }
}

/// The translation, with what was left out and why (for the log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Translation {
    pub config: Option<OsDnsConfig>,
    pub notes: Vec<String>,
}

/// What the OS should use for `dns` on the node named `self_dns_name`: with MagicDNS on
/// (`Proxied`) only 100.100.100.100, where weftd answers (`magicdns`); otherwise the tailnet's
/// plain resolvers. `None` when there is nothing the OS could use.
pub(crate) fn os_config(dns: &DnsConfig, self_dns_name: &str) -> Translation {
    let mut notes = Vec::new();
    let search_domains = clean_domains(&dns.domains);
    if dns.proxied {
        // Without resolvers for every name, the responder is asked only for the domains it
        // answers or routes itself; the host's resolver keeps the rest. Not for the plain
        // search domains: quad-100 would hand those to the host's resolver, which (were it
        // systemd-resolved) would send them back to quad-100.
        let match_domains = if dns.resolvers.is_empty() {
            clean_domains(&zone::own_domains(self_dns_name, dns))
        } else {
            Vec::new()
        };
        let nameservers = vec![IpAddr::V4(SERVICE_V4)];
        let config = OsDnsConfig { nameservers, search_domains, match_domains };
        return Translation { config: Some(config), notes };
    }
    let mut global = plain_nameservers(&dns.resolvers, &mut notes);
    add_new(&mut global, dns.nameservers.iter().copied());
    let (nameservers, match_domains) =
        if global.is_empty() { split_nameservers(dns, &mut notes) } else { (global, Vec::new()) };
    if nameservers.is_empty() {
        if !search_domains.is_empty() {
            notes
                .push("the tailnet names search domains but no plain resolver: not applied".into());
        }
        return Translation { config: None, notes };
    }
    Translation { config: Some(OsDnsConfig { nameservers, search_domains, match_domains }), notes }
}

/// The resolvers of the split domains, all together, and those domains.
fn split_nameservers(dns: &DnsConfig, notes: &mut Vec<String>) -> (Vec<IpAddr>, Vec<String>) {
    let mut nameservers: Vec<IpAddr> = Vec::new();
    let mut domains = Vec::new();
    for (name, resolvers) in &dns.routes {
        let Some(domain) = clean_domains([name]).pop() else {
            notes.push(format!("split DNS domain {name:?} skipped: not a domain name"));
            continue;
        };
        let plain = plain_nameservers(resolvers.as_deref().unwrap_or_default(), notes);
        if !plain.is_empty() {
            domains.push(domain);
            add_new(&mut nameservers, plain);
        }
    }
    (nameservers, clean_domains(&domains))
}

/// Appends the addresses `list` does not hold yet, in order.
fn add_new(list: &mut Vec<IpAddr>, ips: impl IntoIterator<Item = IpAddr>) {
    for ip in ips {
        if !list.contains(&ip) {
            list.push(ip);
        }
    }
}

/// The resolvers the OS can ask: an address, or an address with port 53. Others (DNS over
/// HTTPS, other ports, names) get a note.
fn plain_nameservers(resolvers: &[Resolver], notes: &mut Vec<String>) -> Vec<IpAddr> {
    let mut plain: Vec<IpAddr> = Vec::new();
    for resolver in resolvers {
        match os_address(resolver) {
            Ok(ip) => add_new(&mut plain, [ip]),
            Err(why) => notes.push(format!("resolver {:?} skipped: {why}", resolver.addr)),
        }
    }
    plain
}

/// The address of `resolver` if the OS resolver can ask it: a plain one on port 53.
fn os_address(resolver: &Resolver) -> Result<IpAddr, String> {
    match resolver.plain_address() {
        Ok(socket) if socket.port() == DNS_PORT => Ok(socket.ip()),
        Ok(socket) => Err(format!("port {}: the OS resolver asks port 53 only", socket.port())),
        Err(why) => Err(format!("{why}: the OS resolver cannot use it")),
    }
}

/// Domains without trailing dots, lower case, each once, in first-seen order; names that
/// could not be a domain (empty, or with `/`, `\`, `:` or white space, which would break a
/// file name or a config line) are dropped.
fn clean_domains<'a>(domains: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    domains
        .into_iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| is_domain(d) && seen.insert(d.clone()))
        .collect()
}

pub(super) fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

impl Translation {
    /// A translation to apply, for the managers' tests: these nameservers, search domains
    /// and split domains, no notes.
    #[cfg(test)]
    pub(crate) fn of(nameservers: &[&str], search: &[&str], only_for: &[&str]) -> Translation {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let config = OsDnsConfig {
            nameservers: nameservers.iter().map(|ip| ip.parse().unwrap()).collect(),
            search_domains: strings(search),
            match_domains: strings(only_for),
        };
        Translation { config: Some(config), notes: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me.tail1234.ts.net.";

    fn resolvers(addrs: &[&str]) -> Vec<Resolver> {
        addrs.iter().map(|a| Resolver { addr: a.to_string(), ..Resolver::default() }).collect()
    }

    fn ips(texts: &[&str]) -> Vec<IpAddr> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    fn tailnet() -> DnsConfig {
        DnsConfig {
            resolvers: resolvers(&[
                "1.1.1.1",
                "[2606:4700::1111]:53",
                "9.9.9.9:5353",
                "https://dns.example/q",
            ]),
            domains: strings(&["tail1234.ts.net.", "Corp.Example", "corp.example", "bad/name"]),
            ..DnsConfig::default()
        }
    }

    #[test]
    fn plain_resolvers_and_search_domains_are_applied_and_the_rest_is_named() {
        let t = os_config(&tailnet(), ME);
        let config = t.config.unwrap();
        assert_eq!(config.nameservers, ips(&["1.1.1.1", "2606:4700::1111"]));
        assert_eq!(config.search_domains, strings(&["tail1234.ts.net", "corp.example"]));
        assert!(config.match_domains.is_empty());
        assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
        assert!(t.notes[0].contains("9.9.9.9:5353") && t.notes[0].contains("port 5353"));
        assert!(t.notes[1].contains("https://dns.example/q") && t.notes[1].contains("HTTPS"));
    }

    #[test]
    fn magic_dns_with_the_responder_asks_only_quad100() {
        let dns = DnsConfig { proxied: true, ..tailnet() };
        let config = os_config(&dns, ME).config.unwrap();
        assert_eq!(config.nameservers, [IpAddr::V4(SERVICE_V4)]);
        assert!(config.is_quad100());
        assert_eq!(config.search_domains, strings(&["tail1234.ts.net", "corp.example"]));
        assert!(config.match_domains.is_empty(), "global resolvers: every name");
        // Without global resolvers the responder is asked for its own names, split domains
        // and reverse zones, but not for plain search domains, which it could only hand back
        // to the host's resolver (a loop, were that systemd-resolved pointed at quad-100).
        let mut dns = DnsConfig { resolvers: Vec::new(), ..dns };
        dns.routes.insert("internal.example".into(), None);
        dns.routes.insert("lab.example".into(), Some(resolvers(&["10.0.0.53"])));
        let config = os_config(&dns, ME).config.unwrap();
        assert_eq!(config.search_domains, strings(&["tail1234.ts.net", "corp.example"]));
        assert_eq!(
            config.match_domains[..3],
            strings(&["tail1234.ts.net", "internal.example", "lab.example"])
        );
        assert!(config.match_domains.contains(&"64.100.in-addr.arpa".to_string()));
        assert!(config.match_domains.contains(&"127.100.in-addr.arpa".to_string()));
        assert!(config.match_domains.contains(&"0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa".to_string()));
        assert!(!config.match_domains.contains(&"corp.example".to_string()));
    }

    #[test]
    fn split_dns_resolvers_answer_their_domains_only() {
        let mut dns = DnsConfig::default();
        dns.routes.insert("corp.example".into(), Some(resolvers(&["10.0.0.53"])));
        dns.routes.insert("lab.example".into(), Some(resolvers(&["10.0.0.53", "10.1.0.53"])));
        dns.routes.insert("magic.example".into(), None);
        let config = os_config(&dns, ME).config.unwrap();
        assert_eq!(config.nameservers, ips(&["10.0.0.53", "10.1.0.53"]));
        assert_eq!(config.match_domains, strings(&["corp.example", "lab.example"]));
        // A domain that is no name never makes its resolvers answer every name.
        let mut dns = DnsConfig::default();
        dns.routes.insert("bad\nnameserver 6.6.6.6".into(), Some(resolvers(&["10.0.0.53"])));
        let t = os_config(&dns, ME);
        assert_eq!(t.config, None);
        assert!(t.notes[0].contains("not a domain name"), "{:?}", t.notes);
    }

    #[test]
    fn deprecated_nameservers_count_as_resolvers() {
        let dns = DnsConfig { nameservers: ips(&["8.8.8.8"]), ..DnsConfig::default() };
        assert_eq!(os_config(&dns, ME).config.unwrap().nameservers, ips(&["8.8.8.8"]));
    }

    #[test]
    fn nothing_usable_means_nothing_to_apply() {
        assert_eq!(os_config(&DnsConfig::default(), ME), Translation::default());
        let dns = DnsConfig {
            resolvers: resolvers(&["https://dns.example/q"]),
            domains: strings(&["corp.example"]),
            ..DnsConfig::default()
        };
        let t = os_config(&dns, ME);
        assert_eq!(t.config, None);
        assert!(t.notes.iter().any(|n| n.contains("search domains")), "{:?}", t.notes);
    }
}
