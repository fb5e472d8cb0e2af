//! `/etc/hosts` (hosts(5)): names the administrator pinned, consulted before DNS as the C
//! library does, so a login server named there works without any nameserver.

use std::net::IpAddr;

/// The addresses `hosts_text` gives `name` (as canonical name or alias), IPv4 first, in file
/// order within each family; empty when the file does not name it. Lines that do not parse
/// are skipped, as the C library skips them; so are scoped IPv6 addresses (`fe80::1%eth0`),
/// which need an interface index a dial target cannot carry.
pub(crate) fn addresses(hosts_text: &str, name: &str) -> Vec<IpAddr> {
    let wanted = name.strip_suffix('.').unwrap_or(name);
    let mut found: Vec<IpAddr> = hosts_text
        .lines()
        .filter_map(parse_line)
        .filter(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(wanted)))
        .map(|(address, _)| address)
        .collect();
    // Hosts often list ::1 or a global IPv6 address that has no route; IPv4 is the safer
    // first dial, and only the first address is dialed.
    found.sort_by_key(IpAddr::is_ipv6);
    found
}

/// An entry: an address and the names (canonical name, then aliases) after it.
fn parse_line(line: &str) -> Option<(IpAddr, Vec<&str>)> {
    let content = line.split('#').next().unwrap_or_default();
    let mut fields = content.split_whitespace();
    let address = fields.next()?.parse().ok()?;
    Some((address, fields.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    const HOSTS: &str = "\
# The usual.
127.0.0.1\tlocalhost
::1     localhost ip6-localhost   # loopback
10.0.0.5 Control.Example control   # our login server
2001:db8::5 control.example
fe80::1%eth0 control.example
not-an-address control.example
   192.0.2.9   mirror.example   control.example
#10.9.9.9 control.example
";

    fn ips(texts: &[&str]) -> Vec<IpAddr> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn names_and_aliases_match_without_case_ipv4_first() {
        let expected = ips(&["10.0.0.5", "192.0.2.9", "2001:db8::5"]);
        assert_eq!(addresses(HOSTS, "control.example"), expected);
        assert_eq!(addresses(HOSTS, "CONTROL.EXAMPLE."), expected);
        assert_eq!(addresses(HOSTS, "control"), ips(&["10.0.0.5"]));
        assert_eq!(addresses(HOSTS, "localhost"), ips(&["127.0.0.1", "::1"]));
        assert_eq!(addresses(HOSTS, "ip6-localhost"), ips(&["::1"]));
    }

    #[test]
    fn unknown_names_and_comments_give_nothing() {
        assert!(addresses(HOSTS, "absent.example").is_empty());
        assert!(addresses(HOSTS, "loopback").is_empty());
        assert!(addresses(HOSTS, "our").is_empty());
        assert!(addresses("", "localhost").is_empty());
        assert!(addresses("127.0.0.1", "").is_empty());
    }

    #[test]
    fn random_text_never_panics() {
        shake(0x686f_7374, 3000, HOSTS.as_bytes(), |bytes| {
            let text = String::from_utf8_lossy(bytes);
            for name in ["control.example", "localhost", ""] {
                addresses(&text, name);
            }
        });
    }
}
