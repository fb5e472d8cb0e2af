//! The host's own resolver settings as they are without weft's changes: what the daemon's
//! own lookups (control, DERP) ask, and where MagicDNS sends the names the tailnet has no
//! resolver for. Once `--accept-dns` rewrote the host's resolver, its files may name only
//! 100.100.100.100 or tailnet resolvers reachable only through the tunnel, which the
//! daemon's sockets (kept off the tunnel) cannot reach and MagicDNS must never forward to.
//!
//! So the settings are read at start, before anything is applied, and read again (after
//! every apply and network change, so a DHCP change is followed) from the original: weft's
//! backup of resolv.conf where it keeps one, the file itself otherwise, with every server
//! weft told the manager taken out (and systemd-resolved's stub, which would send the names
//! back to us, replaced by resolved's upstreams while it holds ours). Where nothing is left (openresolv's exclusive mode names
//! only ours) the last known servers stay.

use super::direct;
use super::manager::Manager;
use super::resolv_file::{writer_of, Writer};
use super::DnsPaths;
use crate::magicdns::zone::is_service;
use crate::resolver::resolv_conf::{self, ResolvConf};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// systemd-resolved's stub listeners: with the tailnet's settings on a link of resolved's,
/// a name asked there may come back to MagicDNS, so they are replaced by resolved's own
/// upstream servers.
const RESOLVED_STUBS: [IpAddr; 2] =
    [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 54))];

/// What weft holds in the host's resolver now (see `DnsConfigurator::held`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub(super) manager: Manager,
    /// The nameservers weft told it; empty when not known (an apply that failed half-way).
    pub(super) nameservers: Vec<IpAddr>,
}

/// The host's resolver settings without weft's, kept up to date by [`HostResolver::refresh`].
#[derive(Debug)]
pub(crate) struct HostResolver {
    resolv_conf: PathBuf,
    backup: PathBuf,
    resolved_upstreams: PathBuf,
    known: ResolvConf,
}

impl HostResolver {
    /// Knows no settings until the first [`HostResolver::refresh`], which must come before
    /// weft applies anything (and after an earlier run's settings are taken back).
    pub(crate) fn new(paths: &DnsPaths) -> HostResolver {
        HostResolver {
            resolv_conf: paths.resolv_conf.clone(),
            backup: paths.backup.clone(),
            resolved_upstreams: paths.resolved_upstreams.clone(),
            known: ResolvConf::default(),
        }
    }

    /// The settings: nameservers (none of weft's) and the resolver's options.
    pub(crate) fn conf(&self) -> &ResolvConf {
        &self.known
    }

    /// Reads the original again, `held` being what weft holds in the host's resolver now;
    /// returns whether the settings changed.
    pub(crate) fn refresh(&mut self, held: Option<&Held>) -> bool {
        let Some(mut fresh) = self.read_original() else { return false };
        if held.is_some_and(|held| held.manager == Manager::Resolved) {
            replace_stubs(&mut fresh, resolved_upstreams(&self.resolved_upstreams));
        }
        let usable = |ns: &SocketAddr| !may_be_ours(ns.ip(), held);
        fresh.nameservers.retain(usable);
        if fresh.nameservers.is_empty() {
            // The manager's file names only ours: the original is as last read.
            fresh = self.known.clone();
            fresh.nameservers.retain(usable);
        }
        let changed = fresh != self.known;
        if changed {
            log::info!("the host's own nameservers: {:?}", fresh.nameservers);
        }
        self.known = fresh;
        changed
    }

    /// resolv.conf, or weft's backup of the original while direct mode's file is in place
    /// (a file someone wrote over ours is theirs, and read as it is).
    fn read_original(&self) -> Option<ResolvConf> {
        let current = read_text(&self.resolv_conf)?.unwrap_or_default();
        let text = match writer_of(&current) {
            Writer::Weft => read_text(&self.backup)?.unwrap_or(current),
            _ => current,
        };
        Some(resolv_conf::parse(&text))
    }
}

/// Whether `ip` may be one of weft's own servers: the MagicDNS service addresses, what weft
/// told the manager, and resolved's stubs while resolved holds weft's settings.
fn may_be_ours(ip: IpAddr, held: Option<&Held>) -> bool {
    is_service(ip)
        || held.is_some_and(|held| {
            held.nameservers.contains(&ip)
                || (held.manager == Manager::Resolved && RESOLVED_STUBS.contains(&ip))
        })
}

/// resolved's stub listeners in `conf` replaced by its `upstreams`.
fn replace_stubs(conf: &mut ResolvConf, upstreams: Vec<SocketAddr>) {
    if !conf.nameservers.iter().any(|ns| RESOLVED_STUBS.contains(&ns.ip())) {
        return;
    }
    conf.nameservers.retain(|ns| !RESOLVED_STUBS.contains(&ns.ip()));
    conf.nameservers.extend(upstreams);
}

/// The file's text (`Some(None)`: there is none); `None`, with a warning, when it cannot
/// be read.
fn read_text(path: &Path) -> Option<Option<String>> {
    direct::read(path).map_err(|e| log::warn!("the host's nameservers: {e}")).ok()
}

/// The servers resolved asks (its upstreams file): none when it names none, where resolver(5)
/// would read the local machine's.
fn resolved_upstreams(path: &Path) -> Vec<SocketAddr> {
    let text = read_text(path).flatten().unwrap_or_default();
    let names_any = text.lines().any(|line| line.split_whitespace().next() == Some("nameserver"));
    match names_any {
        true => resolv_conf::parse(&text).nameservers,
        false => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::dns::{DnsConfigurator, OsDnsConfig, Translation};
    use crate::platform::os_kind::OsKind;
    use crate::platform::router::bsd::PathRunner;
    use crate::testing::fresh_dir;
    use std::fs;

    const ORIGINAL: &str = "# written by hand\nnameserver 192.168.1.1\noptions timeout:2\n";

    /// A root holding `resolv_conf`, its paths, and the host's nameservers read there.
    fn host(name: &str, resolv_conf: &str) -> (PathBuf, DnsPaths, HostResolver) {
        let root = fresh_dir(name);
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("state")).unwrap();
        let paths = DnsPaths::under(&root, &root.join("state"));
        fs::write(&paths.resolv_conf, resolv_conf).unwrap();
        let mut host = HostResolver::new(&paths);
        assert!(host.refresh(None));
        (root, paths, host)
    }

    fn servers(host: &HostResolver) -> Vec<String> {
        host.conf().nameservers.iter().map(|ns| ns.ip().to_string()).collect()
    }

    /// The tailnet's `nameservers` for every name.
    fn applied(nameservers: &[&str]) -> Translation {
        let config = OsDnsConfig {
            nameservers: nameservers.iter().map(|ip| ip.parse().unwrap()).collect(),
            search_domains: vec!["tail.ts.net".into()],
            match_domains: Vec::new(),
        };
        Translation { config: Some(config), notes: Vec::new() }
    }

    fn held(manager: Manager, nameservers: &[&str]) -> Held {
        Held { manager, nameservers: nameservers.iter().map(|ip| ip.parse().unwrap()).collect() }
    }

    #[test]
    fn after_direct_mode_the_hosts_own_servers_are_still_the_original_ones() {
        let (root, paths, mut host) = host("dns-host-direct", ORIGINAL);
        let mut dns =
            DnsConfigurator::new(OsKind::Linux, paths.clone(), Box::<PathRunner>::default());
        for wanted in [applied(&["100.100.100.100"]), applied(&["10.64.0.53"])] {
            dns.set("weft0", wanted).unwrap();
            assert!(!fs::read_to_string(&paths.resolv_conf).unwrap().contains("192.168.1.1"));
            host.refresh(dns.held().as_ref());
            assert_eq!(servers(&host), ["192.168.1.1"]);
            assert_eq!(host.conf().settings.timeout, std::time::Duration::from_secs(2));
            // Read afresh, from weft's backup of the original.
            let mut fresh = HostResolver::new(&paths);
            fresh.refresh(dns.held().as_ref());
            assert_eq!(fresh.conf(), host.conf());
        }
        // A DHCP client that writes over ours: its servers are the host's now.
        fs::write(&paths.resolv_conf, "nameserver 192.168.7.1\n").unwrap();
        assert!(host.refresh(dns.held().as_ref()));
        assert_eq!(servers(&host), ["192.168.7.1"]);
        dns.remove().unwrap();
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn with_nothing_applied_every_change_of_the_file_is_followed() {
        let (root, paths, mut host) = host("dns-host-follow", ORIGINAL);
        assert!(!host.refresh(None));
        fs::write(&paths.resolv_conf, "nameserver 192.168.7.1\nnameserver 100.100.100.100\n")
            .unwrap();
        assert!(host.refresh(None));
        assert_eq!(servers(&host), ["192.168.7.1"], "the service address is never the host's");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_managers_file_naming_only_ours_keeps_the_last_known_servers() {
        let (root, paths, mut host) = host("dns-host-openresolv", ORIGINAL);
        // openresolv's exclusive mode names only ours.
        fs::write(&paths.resolv_conf, "# Generated by resolvconf\nnameserver 10.64.0.53\n")
            .unwrap();
        assert!(!host.refresh(Some(&held(Manager::Openresolv, &["10.64.0.53"]))));
        assert_eq!(servers(&host), ["192.168.1.1"]);
        // Debian's merges ours with the others, which follow DHCP.
        let merged = "nameserver 100.100.100.100\nnameserver 192.168.7.1\n";
        fs::write(&paths.resolv_conf, merged).unwrap();
        host.refresh(Some(&held(Manager::DebianResolvconf, &["100.100.100.100"])));
        assert_eq!(servers(&host), ["192.168.7.1"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn resolveds_stub_is_replaced_by_its_upstreams_while_it_holds_ours() {
        let stub = "# managed by man:systemd-resolved(8).\nnameserver 127.0.0.53\n";
        let (root, paths, mut host) = host("dns-host-resolved", stub);
        assert_eq!(servers(&host), ["127.0.0.53"], "nothing of ours there: the stub is fine");
        fs::create_dir_all(paths.resolved_upstreams.parent().unwrap()).unwrap();
        let upstreams =
            "nameserver 192.168.1.1\nnameserver 100.100.100.100\nnameserver 10.64.0.53\n";
        fs::write(&paths.resolved_upstreams, upstreams).unwrap();
        host.refresh(Some(&held(Manager::Resolved, &["10.64.0.53"])));
        assert_eq!(servers(&host), ["192.168.1.1"]);
        // resolved knows no upstream: nothing rather than a loop through the stub.
        fs::write(&paths.resolved_upstreams, "# No DNS servers known.\n").unwrap();
        let mut fresh = HostResolver::new(&paths);
        fresh.refresh(Some(&held(Manager::Resolved, &["100.100.100.100"])));
        assert_eq!(servers(&fresh), Vec::<String>::new());
        fs::remove_dir_all(root).unwrap();
    }
}
