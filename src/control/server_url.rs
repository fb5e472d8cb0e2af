//! The login server's URL as a dial target: `http://host[:port]` is plain TCP (port 80 by
//! default), `https://host[:port]` is TLS (443).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl ServerUrl {
    pub(crate) fn parse(url: &str) -> Result<ServerUrl, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("login server {url:?} must start with http:// or https://"));
        };
        if rest.contains(['?', '#']) {
            return Err(format!(
                "login server {url:?} has a query or fragment; give the server's base URL"
            ));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("login server {url:?} has no usable host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| format!("login server {url:?}: bad host or port"))?;
        Ok(ServerUrl { host, port, tls })
    }

    /// The `Host`/`:authority` value: the host, with the port when it is not the default.
    pub(crate) fn authority(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the host a DNS name or an IP address, the port
/// 1 to 65535 in plain digits.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            host.parse::<Ipv6Addr>().ok()?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?)),
            }
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.parse::<Ipv4Addr>().is_err() && !is_dns_name(host) {
                return None;
            }
            (host, port)
        }
    };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().ok().filter(|p| *p != 0)?
        }
        Some(_) => return None,
    };
    Some((host.to_string(), port))
}

/// Dot-separated labels of letters, digits, `-` (not at either end) and `_`, with an optional
/// final dot; all-numeric names are refused, since they can only be a mistyped IPv4 address.
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let all_numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    name.len() <= 253 && !all_numeric && name.split('.').all(label_ok)
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let u = ServerUrl::parse("http://10.1.0.1:8080").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("10.1.0.1", 8080, false));
        assert_eq!(u.authority(), "10.1.0.1:8080");
        let u = ServerUrl::parse("https://hs.example.com/").unwrap();
        assert_eq!((u.port, u.tls, u.authority()), (443, true, "hs.example.com".to_string()));
        let u = ServerUrl::parse("http://[fd00::1]:9000/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fd00::1", 9000));
        assert_eq!(u.to_string(), "http://[fd00::1]:9000");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:99999",
            "http://u@h",
            "https://[::1",
            "http://[::1]:0",
            "http://[::1]:",
            "http://h:+80",
            "http://h:80:90",
            "http://::1",
            "http://[not-an-ip]",
            "http://[1.2.3.4]",
            "http://h?x=1",
            "http://h#frag",
            "http://h\\evil.example",
            "http://h%2fx",
            "http://a..b",
            "http://.",
            "http://-h",
            "http://999.1.1.1",
            "http://1.2.3",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_names_addresses_and_a_trailing_dot() {
        for (url, host, port) in [
            ("http://[::1]:8080", "::1", 8080),
            ("https://hs-1.example.com.", "hs-1.example.com.", 443),
            ("http://192.0.2.1/", "192.0.2.1", 80),
            ("http://my_host:1", "my_host", 1),
            ("https://HS.Example.COM/path", "HS.Example.COM", 443),
        ] {
            let u = ServerUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((u.host.as_str(), u.port), (host, port), "{url}");
        }
    }
}
