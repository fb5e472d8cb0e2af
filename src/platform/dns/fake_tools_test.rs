//! Every OS's DNS manager driven through [`DnsConfigurator`] in a temporary root, with the
//! tools replaced by a recorder that answers as the real ones do: detection from recorded
//! resolv.conf headers, the exact commands and files of apply, change and remove, and the
//! crash record taken back at the next start.

use super::tools::{DnsTools, ToolReply};
use super::*;
use crate::magicdns::zone::SERVICE_V4;
use crate::platform::router::bsd::CommandLine;
use crate::testing::fresh_dir;
use std::cell::RefCell;
use std::fs;
use std::io;
use std::rc::Rc;

/// What was run: the command line and its stdin.
type Log = Rc<RefCell<Vec<(String, String)>>>;

/// Answers by the start of the command line (the first that fits); a program with no
/// answer is not installed.
struct FakeTools {
    log: Log,
    replies: Vec<(&'static str, ToolReply)>,
}

impl DnsTools for FakeTools {
    fn run(&mut self, command: &CommandLine, stdin: &str) -> io::Result<ToolReply> {
        self.log.borrow_mut().push((command.to_string(), stdin.to_string()));
        let line = command.to_string();
        let reply = self.replies.iter().find(|(start, _)| line.starts_with(start));
        reply.map(|(_, reply)| reply.clone()).ok_or(io::ErrorKind::NotFound.into())
    }
}

fn ok(stdout: &str) -> ToolReply {
    ToolReply { code: Some(0), stdout: stdout.into(), stderr: String::new() }
}

struct Host {
    root: PathBuf,
    paths: DnsPaths,
    log: Log,
}

impl Host {
    /// A root whose resolv.conf holds `resolv_conf` (none when `None`).
    fn new(name: &str, resolv_conf: Option<&str>) -> Host {
        let root = fresh_dir(name);
        fs::create_dir_all(root.join("etc")).unwrap();
        let paths = DnsPaths::under(&root, &root.join("state"));
        fs::create_dir_all(root.join("state")).unwrap();
        if let Some(text) = resolv_conf {
            fs::write(&paths.resolv_conf, text).unwrap();
        }
        Host { root, paths, log: Log::default() }
    }

    fn configurator(&self, os: OsKind, tools: &[(&'static str, ToolReply)]) -> DnsConfigurator {
        let tools = FakeTools { log: self.log.clone(), replies: tools.to_vec() };
        DnsConfigurator::new(os, self.paths.clone(), Box::new(tools))
    }

    /// The commands run since the last call (without `--version` probes).
    fn commands(&self) -> Vec<String> {
        let taken = std::mem::take(&mut *self.log.borrow_mut());
        taken.into_iter().map(|(c, _)| c).filter(|c| !c.ends_with("--version")).collect()
    }

    fn stdins(&self) -> Vec<String> {
        self.log.borrow().iter().map(|(_, s)| s.clone()).filter(|s| !s.is_empty()).collect()
    }

    fn resolv_conf(&self) -> String {
        fs::read_to_string(&self.paths.resolv_conf).unwrap()
    }

    fn recorded(&self) -> bool {
        self.paths.record.exists()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn config(nameservers: &[&str], search: &[&str], only_for: &[&str]) -> Translation {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let config = OsDnsConfig {
        nameservers: nameservers.iter().map(|ip| ip.parse().unwrap()).collect(),
        search_domains: strings(search),
        match_domains: strings(only_for),
    };
    Translation { config: Some(config), notes: Vec::new() }
}

const RESOLVED_STUB: &str =
    "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n\
                             # Do not edit.\nnameserver 127.0.0.53\noptions edns0 trust-ad\n";
const PLAIN: &str = "# written by hand\nnameserver 192.168.1.1\nsearch lan\n";

#[test]
fn systemd_resolved_gets_the_link_settings_and_reverts_them() {
    let host = Host::new("dns-resolved", Some(RESOLVED_STUB));
    let mut dns = host.configurator(OsKind::Linux, &[("resolvectl", ok(""))]);
    dns.set("weft0", config(&["100.100.100.100"], &["tail.ts.net"], &[])).unwrap();
    assert_eq!(
        host.commands(),
        [
            "resolvectl dns weft0 100.100.100.100",
            "resolvectl domain weft0 tail.ts.net ~.",
            "resolvectl default-route weft0 yes",
        ]
    );
    assert!(host.recorded());
    // The same settings again: nothing to do.
    dns.set("weft0", config(&["100.100.100.100"], &["tail.ts.net"], &[])).unwrap();
    assert!(host.commands().is_empty());
    // Split DNS: routing domains, and not the default route.
    dns.set("weft0", config(&["10.0.0.53"], &[], &["corp.example", "lab.example"])).unwrap();
    assert_eq!(
        host.commands(),
        [
            "resolvectl dns weft0 10.0.0.53",
            "resolvectl domain weft0 ~corp.example ~lab.example",
            "resolvectl default-route weft0 no",
        ]
    );
    dns.set("weft0", Translation::default()).unwrap();
    assert_eq!(host.commands(), ["resolvectl revert weft0"]);
    assert!(!host.recorded());
    assert_eq!(host.resolv_conf(), RESOLVED_STUB, "resolv.conf is resolved's, untouched");
}

#[test]
fn openresolv_and_debian_resolvconf_are_told_apart_and_fed_on_stdin() {
    let header = "# Generated by resolvconf\nnameserver 192.168.1.1\n";
    let openresolv = ("resolvconf", ok("openresolv 3.12.0\n"));
    let host = Host::new("dns-openresolv", Some(header));
    let mut dns = host.configurator(OsKind::Linux, std::slice::from_ref(&openresolv));
    dns.set("weft0", config(&["10.0.0.53"], &["corp.example"], &[])).unwrap();
    assert_eq!(host.stdins(), ["nameserver 10.0.0.53\nsearch corp.example\n"]);
    assert_eq!(host.commands(), ["resolvconf -m 0 -x -a weft0"]);
    dns.remove().unwrap();
    assert_eq!(host.commands(), ["resolvconf -f -d weft0"]);

    // Debian's: old releases refuse --version with 99, new ones print their name.
    for version in [
        ToolReply { code: Some(99), stdout: String::new(), stderr: "unrecognized option".into() },
        ok("Debian resolvconf 1.91\n"),
    ] {
        let host = Host::new("dns-debian-resolvconf", Some(header));
        let tools = [("resolvconf --version", version), ("resolvconf", ok(""))];
        let mut dns = host.configurator(OsKind::Linux, &tools);
        dns.set("weft0", config(&["10.0.0.53"], &[], &[])).unwrap();
        assert_eq!(host.stdins(), ["nameserver 10.0.0.53\n"]);
        assert_eq!(host.commands(), ["resolvconf -a tun-weft0.inet"]);
        dns.remove().unwrap();
        assert_eq!(host.commands(), ["resolvconf -d tun-weft0.inet"]);
    }

    // The BSDs' base resolvconf is openresolv.
    for os in [OsKind::FreeBsd, OsKind::NetBsd] {
        let host = Host::new("dns-bsd-resolvconf", Some(header));
        let mut dns = host.configurator(os, std::slice::from_ref(&openresolv));
        dns.set("tun0", config(&["10.0.0.53"], &[], &[])).unwrap();
        assert_eq!(host.commands(), ["resolvconf -m 0 -x -a tun0"]);
    }
}

#[test]
fn without_a_manager_resolv_conf_is_rewritten_and_put_back() {
    // A resolvconf header with no resolvconf installed, a hand-written file, no file.
    for (os, text) in [
        (OsKind::Linux, Some("# Generated by resolvconf\nnameserver 192.168.1.1\n")),
        (OsKind::FreeBsd, Some(PLAIN)),
        (OsKind::OpenBsd, Some(PLAIN)),
        (OsKind::Illumos, Some(PLAIN)),
        (OsKind::Linux, None),
    ] {
        let host = Host::new("dns-direct-managed", text);
        let mut dns = host.configurator(os, &[]);
        dns.set("tun0", config(&["10.0.0.53", "fd00::53"], &["corp.example"], &[])).unwrap();
        assert!(host.commands().is_empty(), "{os:?}");
        let ours = host.resolv_conf();
        assert!(ours.starts_with("# resolv.conf generated by weft"), "{os:?}: {ours}");
        assert!(ours.ends_with("nameserver 10.0.0.53\nnameserver fd00::53\nsearch corp.example\n"));
        dns.set("tun0", Translation::default()).unwrap();
        match text {
            Some(text) => assert_eq!(host.resolv_conf(), text, "{os:?}"),
            None => assert!(!host.paths.resolv_conf.exists()),
        }
        assert!(!host.paths.backup.exists() && !host.recorded());
    }
}

#[test]
fn openbsd_resolvd_gets_route_nameserver_and_the_search_line_is_edited() {
    let text = "nameserver 192.168.1.1 # resolvd: em0\nsearch lan\nlookup file bind\n";
    let host = Host::new("dns-resolvd", Some(text));
    let mut dns = host.configurator(OsKind::OpenBsd, &[("route", ok(""))]);
    dns.set("tun0", config(&["100.100.100.100"], &["tail.ts.net", "corp.example"], &[])).unwrap();
    assert_eq!(host.commands(), ["route nameserver tun0 100.100.100.100"]);
    let edited = host.resolv_conf();
    assert!(edited.contains("nameserver 192.168.1.1 # resolvd: em0\nlookup file bind\n"));
    assert!(edited.ends_with("search tail.ts.net corp.example\n") && !edited.contains("lan"));
    // resolvd rewrites the file with our server meanwhile; at stop the original comes back.
    fs::write(&host.paths.resolv_conf, "nameserver 100.100.100.100 # resolvd: tun0\n").unwrap();
    dns.remove().unwrap();
    assert_eq!(host.commands(), ["route nameserver tun0"]);
    assert_eq!(host.resolv_conf(), text);
}

#[test]
fn macos_gets_a_resolver_file_per_split_domain_and_keeps_others_files() {
    let host = Host::new("dns-darwin", Some(PLAIN));
    let dir = host.paths.resolver_dir.clone();
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("vpn.example"), "nameserver 10.9.9.9\n").unwrap();
    let mut dns = host.configurator(OsKind::Darwin, &[]);
    let only_tailnet =
        config(&["100.100.100.100"], &["tail.ts.net"], &["tail.ts.net", "corp.example"]);
    dns.set("utun4", only_tailnet).unwrap();
    let file = |name: &str| fs::read_to_string(dir.join(name)).ok();
    assert_eq!(file("corp.example").unwrap(), "# Added by weft\nnameserver 100.100.100.100\n");
    assert_eq!(file("search.weft").unwrap(), "# Added by weft\nsearch tail.ts.net\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir.join("tail.ts.net")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o644);
    dns.set("utun4", config(&["10.0.0.53"], &[], &["lab.example"])).unwrap();
    assert_eq!(file("corp.example"), None, "a domain no longer split loses its file");
    assert_eq!(file("search.weft"), None);
    assert_eq!(file("lab.example").unwrap(), "# Added by weft\nnameserver 10.0.0.53\n");
    dns.remove().unwrap();
    let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["vpn.example"], "someone else's file stays");
    assert_eq!(host.resolv_conf(), PLAIN);
}

#[test]
fn a_crashed_runs_settings_are_taken_back_at_the_next_start() {
    for (os, text, tools) in [
        (OsKind::Linux, PLAIN, vec![]),
        (OsKind::Linux, RESOLVED_STUB, vec![("resolvectl", ok(""))]),
        (OsKind::OpenBsd, "nameserver 192.168.1.1 # resolvd: em0\n", vec![("route", ok(""))]),
    ] {
        let host = Host::new("dns-crash", Some(text));
        let mut crashed = host.configurator(os, &tools);
        crashed.set("tun0", config(&["10.0.0.53"], &["corp.example"], &[])).unwrap();
        drop(crashed);
        host.commands();
        let mut next = host.configurator(os, &tools);
        next.remove_stale().unwrap();
        assert_eq!(host.resolv_conf(), text, "{os:?}");
        assert!(!host.recorded() && !host.paths.backup.exists());
        match os {
            OsKind::OpenBsd => assert_eq!(host.commands(), ["route nameserver tun0"]),
            _ if text == RESOLVED_STUB => assert_eq!(host.commands(), ["resolvectl revert tun0"]),
            _ => assert!(host.commands().is_empty()),
        }
        // Nothing recorded: nothing to do.
        next.remove_stale().unwrap();
        assert!(host.commands().is_empty());
    }
}

#[test]
fn a_failing_tool_is_reported_with_its_words_and_tried_again_at_the_next_change() {
    let host = Host::new("dns-failing", Some(RESOLVED_STUB));
    let refusal = ToolReply {
        code: Some(1),
        stdout: String::new(),
        stderr: "Failed to set DNS configuration: Link weft0 not known\n".into(),
    };
    let mut dns = host.configurator(OsKind::Linux, &[("resolvectl", refusal)]);
    let wanted = config(&["10.0.0.53"], &[], &[]);
    let error = dns.set("weft0", wanted.clone()).unwrap_err();
    assert_eq!(
        error,
        "`resolvectl dns weft0 10.0.0.53` failed (exit 1): Failed to set DNS configuration: \
         Link weft0 not known"
    );
    assert_eq!(host.commands().len(), 1);
    assert!(dns.set("weft0", wanted).is_err());
    assert_eq!(host.commands(), ["resolvectl dns weft0 10.0.0.53"], "tried again");
    // A missing tool is named as such.
    let host = Host::new("dns-missing-tool", Some(RESOLVED_STUB));
    let mut dns = host.configurator(OsKind::Linux, &[]);
    let error = dns.set("weft0", config(&["10.0.0.53"], &[], &[])).unwrap_err();
    assert!(error.contains("resolvectl is not installed"), "{error}");
}

#[test]
fn split_dns_is_refused_where_the_os_cannot_do_it_unless_quad100_answers_everything() {
    let host = Host::new("dns-no-split", Some(PLAIN));
    let mut dns = host.configurator(OsKind::FreeBsd, &[]);
    let error = dns.set("tun0", config(&["10.0.0.53"], &[], &["corp.example"])).unwrap_err();
    assert!(error.contains("only names under corp.example") && error.contains("direct"), "{error}");
    assert_eq!(host.resolv_conf(), PLAIN);
    dns.set("tun0", config(&[&SERVICE_V4.to_string()], &[], &["tail.ts.net"])).unwrap();
    assert!(host.resolv_conf().contains("nameserver 100.100.100.100"));
    dns.remove().unwrap();
    assert_eq!(host.resolv_conf(), PLAIN);
}

#[test]
fn illumos_warns_when_nsswitch_leaves_dns_out() {
    let host = Host::new("dns-nsswitch", Some(PLAIN));
    let nsswitch = &host.paths.nsswitch;
    fs::write(nsswitch, "passwd: files\nhosts:      files   # dns added by nsswitch.dns\n")
        .unwrap();
    let warning = manager::nsswitch_warning(nsswitch).unwrap();
    assert!(warning.contains("does not name dns"), "{warning}");
    fs::write(nsswitch, "hosts: files dns mdns\nipnodes: files dns\n").unwrap();
    assert_eq!(manager::nsswitch_warning(nsswitch), None);
    fs::remove_file(nsswitch).unwrap();
    assert!(manager::nsswitch_warning(nsswitch).is_some());
}

#[test]
fn a_new_interface_name_takes_the_settings_off_the_old_one_first() {
    let host = Host::new("dns-new-tun", Some(RESOLVED_STUB));
    let mut dns = host.configurator(OsKind::Linux, &[("resolvectl", ok(""))]);
    dns.set("weft0", config(&["10.0.0.53"], &[], &[])).unwrap();
    host.commands();
    dns.set("weft1", config(&["10.0.0.53"], &[], &[])).unwrap();
    assert_eq!(host.commands()[..2], ["resolvectl revert weft0", "resolvectl dns weft1 10.0.0.53"]);
}
