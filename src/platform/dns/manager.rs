//! The OS's DNS managers: which one keeps the host's resolver (detection), and how each is
//! told the tailnet's settings and told to forget them. All of it is portable: every OS's
//! manager runs on Linux against fake tools and a temporary root.

use super::darwin;
use super::direct::{self, PutBack};
use super::resolv_file::{self, writer_of, Writer};
use super::tools::{DnsTools, ToolReply};
use super::translate::OsDnsConfig;
use super::DnsPaths;
use crate::platform::os_kind::OsKind;
use crate::platform::router::bsd::CommandLine;
use crate::regular_file;
use std::io;
use std::path::Path;

/// Who is told the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Manager {
    /// systemd-resolved, per link with `resolvectl`: the only Linux manager with split DNS.
    Resolved,
    /// openresolv's `resolvconf` (Linux, FreeBSD, NetBSD), exclusive while we are up.
    Openresolv,
    /// Debian's `resolvconf`, which merges our servers with the others.
    DebianResolvconf,
    /// OpenBSD's resolvd, given nameservers with `route nameserver`.
    Resolvd,
    /// macOS: one file per split domain in `/etc/resolver`.
    ResolverFiles,
    /// weft writes resolv.conf itself, keeping the original.
    Direct,
}

/// What openresolv's key and Debian's interface name are made of: Debian orders its
/// records by name, and `tun*` comes before the physical interfaces.
fn debian_record(tun: &str) -> String {
    format!("tun-{tun}.inet")
}

impl Manager {
    /// The name in the crash record and in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Manager::Resolved => "systemd-resolved",
            Manager::Openresolv => "openresolv",
            Manager::DebianResolvconf => "debian-resolvconf",
            Manager::Resolvd => "resolvd",
            Manager::ResolverFiles => "resolver-files",
            Manager::Direct => "direct",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Manager> {
        [
            Manager::Resolved,
            Manager::Openresolv,
            Manager::DebianResolvconf,
            Manager::Resolvd,
            Manager::ResolverFiles,
            Manager::Direct,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }

    /// Whether the manager can send only some names to our nameservers.
    fn splits(self) -> bool {
        matches!(self, Manager::Resolved | Manager::ResolverFiles)
    }
}

/// The manager that keeps `os`'s resolver now, and notes for the log.
pub(super) fn detect(
    os: OsKind,
    paths: &DnsPaths,
    tools: &mut dyn DnsTools,
) -> Result<(Manager, Vec<String>), String> {
    let writer = direct::read(&paths.resolv_conf)?.map_or(Writer::Unknown, |t| writer_of(&t));
    let mut notes = Vec::new();
    let manager = match (os, writer) {
        (OsKind::Darwin, _) => Manager::ResolverFiles,
        (OsKind::Illumos, _) => {
            notes.extend(nsswitch_warning(&paths.nsswitch));
            Manager::Direct
        }
        (OsKind::OpenBsd, Writer::Resolvd) => Manager::Resolvd,
        (OsKind::Linux, Writer::SystemdResolved) => Manager::Resolved,
        (OsKind::Linux | OsKind::FreeBsd | OsKind::NetBsd, Writer::Resolvconf) => {
            match resolvconf_flavour(tools) {
                // The BSDs' base resolvconf is openresolv.
                Some(Manager::DebianResolvconf) if os == OsKind::Linux => Manager::DebianResolvconf,
                Some(_) => Manager::Openresolv,
                None => Manager::Direct,
            }
        }
        (OsKind::Linux, Writer::NetworkManager) => {
            notes.push(format!(
                "{} is written by NetworkManager, which may overwrite weft's (then the \
                 tailnet's DNS is gone until the next change)",
                paths.resolv_conf.display()
            ));
            Manager::Direct
        }
        _ => Manager::Direct,
    };
    Ok((manager, notes))
}

/// `resolvconf --version`: Debian's answers with its name (old ones refuse the option with
/// exit code 99); anything else is openresolv. `None`: there is no resolvconf.
fn resolvconf_flavour(tools: &mut dyn DnsTools) -> Option<Manager> {
    let version = command("resolvconf", &["--version"]);
    match tools.run(&version, "") {
        Ok(reply) if reply.code == Some(99) || reply.stdout.starts_with("Debian resolvconf") => {
            Some(Manager::DebianResolvconf)
        }
        Ok(_) => Some(Manager::Openresolv),
        Err(_) => None,
    }
}

/// illumos: without `dns` on the `hosts:` line of nsswitch.conf, resolv.conf is never read.
pub(super) fn nsswitch_warning(path: &Path) -> Option<String> {
    let text = match regular_file::read(path, 1 << 20) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            return Some(format!("{}: {e}; names may not be looked up in DNS", path.display()))
        }
    };
    let hosts = text.lines().find_map(|line| line.trim_start().strip_prefix("hosts:"));
    let uses_dns = hosts.is_some_and(|sources| {
        sources.split('#').next().unwrap_or_default().split_whitespace().any(|s| s == "dns")
    });
    (!uses_dns).then(|| {
        format!(
            "the hosts line of {} does not name dns: the tailnet's nameservers are written \
             but not asked (copy /etc/nsswitch.dns over it, or add dns)",
            path.display()
        )
    })
}

/// Tells `manager` to use `config` for `tun`; notes for the log on success.
pub(super) fn apply(
    manager: Manager,
    paths: &DnsPaths,
    tools: &mut dyn DnsTools,
    tun: &str,
    config: &OsDnsConfig,
) -> Result<Vec<String>, String> {
    if !manager.splits() && !config.match_domains.is_empty() && !config.is_quad100() {
        return Err(format!(
            "the tailnet's nameservers answer only names under {}, and {} cannot send just \
             those names to them (systemd-resolved or macOS can): not applied",
            config.match_domains.join(", "),
            manager.name()
        ));
    }
    let mut notes = Vec::new();
    match manager {
        Manager::Resolved => {
            for command in resolvectl_commands(tun, config) {
                run(tools, &command, "")?;
            }
        }
        Manager::Openresolv => {
            let add = command("resolvconf", &["-m", "0", "-x", "-a", tun]);
            run(tools, &add, &resolv_file::body(config))?;
        }
        Manager::DebianResolvconf => {
            let add = command("resolvconf", &["-a", &debian_record(tun)]);
            run(tools, &add, &resolv_file::body(config))?;
        }
        Manager::Resolvd => {
            let current = direct::read(&paths.resolv_conf)?.unwrap_or_default();
            let edited = resolv_file::with_search(&current, &config.search_domains);
            direct::replace(&paths.resolv_conf, &paths.backup, &edited)?;
            let mut args = vec!["nameserver".to_string(), tun.to_string()];
            args.extend(config.nameservers.iter().map(|ip| ip.to_string()));
            run(tools, &CommandLine { program: "route", args }, "")?;
        }
        Manager::ResolverFiles => notes.extend(darwin::apply(&paths.resolver_dir, config)?),
        Manager::Direct => {
            let text = resolv_file::ours(config, &paths.backup);
            direct::replace(&paths.resolv_conf, &paths.backup, &text)?;
        }
    }
    Ok(notes)
}

/// Takes back everything `manager` was told for `tun`; a note for the log on success.
pub(super) fn remove(
    manager: Manager,
    paths: &DnsPaths,
    tools: &mut dyn DnsTools,
    tun: &str,
) -> Result<Option<String>, String> {
    match manager {
        Manager::Resolved => {
            // The link's settings vanish with the link: after a crash there is none to revert.
            match run(tools, &command("resolvectl", &["revert", tun]), "") {
                Err(e)
                    if e.contains("No such device")
                        || e.contains("Failed to resolve interface") =>
                {
                    Ok(None)
                }
                other => other.map(|()| None),
            }
        }
        Manager::Openresolv => {
            run(tools, &command("resolvconf", &["-f", "-d", tun]), "").map(|()| None)
        }
        Manager::DebianResolvconf => {
            run(tools, &command("resolvconf", &["-d", &debian_record(tun)]), "").map(|()| None)
        }
        Manager::Resolvd => {
            run(tools, &command("route", &["nameserver", tun]), "")?;
            direct::restore(&paths.resolv_conf, &paths.backup, PutBack::Always)
        }
        Manager::ResolverFiles => darwin::remove(&paths.resolver_dir).map(|()| None),
        Manager::Direct => direct::restore(&paths.resolv_conf, &paths.backup, PutBack::IfOurs),
    }
}

/// The link's servers, its domains (search domains as they are, match domains as routing
/// domains `~name`; `~.` sends every name when there are none), and whether it is the
/// default route for names no link claims.
fn resolvectl_commands(tun: &str, config: &OsDnsConfig) -> Vec<CommandLine> {
    let mut dns = vec!["dns".to_string(), tun.to_string()];
    dns.extend(config.nameservers.iter().map(|ip| ip.to_string()));
    let mut domain = vec!["domain".to_string(), tun.to_string()];
    domain.extend(config.search_domains.iter().cloned());
    let every_name = config.match_domains.is_empty();
    match every_name {
        true => domain.push("~.".into()),
        false => domain.extend(config.match_domains.iter().map(|d| format!("~{d}"))),
    }
    let default_route = if every_name { "yes" } else { "no" };
    vec![
        CommandLine { program: "resolvectl", args: dns },
        CommandLine { program: "resolvectl", args: domain },
        command("resolvectl", &["default-route", tun, default_route]),
    ]
}

fn command(program: &'static str, args: &[&str]) -> CommandLine {
    CommandLine { program, args: args.iter().map(|a| a.to_string()).collect() }
}

/// Runs `command`; a failure names the command and the tool's own words.
fn run(tools: &mut dyn DnsTools, command: &CommandLine, stdin: &str) -> Result<(), String> {
    match tools.run(command, stdin) {
        Ok(reply) if reply.succeeded() => Ok(()),
        Ok(ToolReply { code, stderr, .. }) => Err(format!(
            "`{command}` failed ({}): {}",
            code.map_or("killed".to_string(), |c| format!("exit {c}")),
            stderr.trim()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(format!("`{command}`: {} is not installed", command.program))
        }
        Err(e) => Err(format!("`{command}`: {e}")),
    }
}
