//! The login server's URL as a dial target: `http://host[:port]` is plain TCP (port 80 by
//! default), `https://host[:port]` is TLS (443).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl ServerUrl {
    pub fn parse(url: &str) -> Result<ServerUrl, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("login server {url:?} must start with http:// or https://"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("login server {url:?} has no usable host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| format!("login server {url:?}: bad host or port"))?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("login server {url:?} has no usable host"));
        }
        Ok(ServerUrl { host, port, tls })
    }

    /// The `Host`/`:authority` value: the host, with the port when it is not the default.
    pub fn authority(&self) -> String {
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

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok().filter(|p| *p != 0)?)),
        None => Some((authority.to_string(), default_port)),
    }
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
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
