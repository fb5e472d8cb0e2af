//! Where each OS shows its listening sockets, and reading it: Linux's `/proc/net` files, or
//! the `netstat` command lines of the others, whose exact words live here for every OS.

use super::{netstat, netstat_illumos, proc_net, sort_and_dedup, ListeningPort};
use crate::platform::os_kind::OsKind;
use crate::platform::router::bsd::{CaptureLimits, CommandLine, PathRunner};
use crate::regular_file::{self, ReadError};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A `netstat` that has not answered by then is killed; the poll is a failure.
const NETSTAT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most output read from one source (file or command): a host with a few hundred thousand
/// sockets fits.
const MAX_OUTPUT: usize = 32 << 20;

/// One OS's source of listening ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// `/proc/net/{tcp,tcp6,udp,udp6}` under this directory (`/proc/net` but in tests).
    ProcNet(PathBuf),
    /// `netstat` runs whose outputs are read in `format`.
    Netstat { commands: Vec<CommandLine>, format: NetstatFormat },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetstatFormat {
    /// FreeBSD, NetBSD, OpenBSD, macOS: one socket a line, `address.port` columns.
    Dotted,
    /// illumos: `TCP: IPv4`-style sections.
    IllumosSections,
}

/// Why the ports could not be read.
#[derive(Debug)]
pub(crate) enum SourceError {
    Read { path: PathBuf, error: ReadError },
    Run { command: String, error: io::Error },
    Failed { command: String, stderr: String },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Read { path, error } => write!(f, "reading {}: {error}", path.display()),
            SourceError::Run { command, error } => write!(f, "running `{command}`: {error}"),
            SourceError::Failed { command, stderr } => {
                write!(f, "`{command}` failed: {}", stderr.trim())
            }
        }
    }
}

impl std::error::Error for SourceError {}

impl Source {
    /// The cheapest source on `os`.
    pub(crate) fn for_os(os: OsKind) -> Source {
        let netstat = |args: &[&[&str]], format| Source::Netstat {
            commands: args
                .iter()
                .map(|a| CommandLine {
                    program: "netstat",
                    args: a.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
            format,
        };
        use NetstatFormat::{Dotted, IllumosSections};
        match os {
            OsKind::Linux => Source::ProcNet(PathBuf::from("/proc/net")),
            // `-p` picks one protocol, both address families.
            OsKind::FreeBsd => netstat(&[&["-an", "-p", "tcp"], &["-an", "-p", "udp"]], Dotted),
            // `-f` picks one family, both protocols (and no UNIX sockets).
            OsKind::NetBsd | OsKind::OpenBsd => {
                netstat(&[&["-an", "-f", "inet"], &["-an", "-f", "inet6"]], Dotted)
            }
            // As tailscaled runs it; the UNIX sockets it also lists are skipped.
            OsKind::Darwin => netstat(&[&["-na"]], Dotted),
            // `-f tcp` is refused: a family and a protocol each time.
            OsKind::Illumos => netstat(
                &[
                    &["-an", "-f", "inet", "-P", "tcp"],
                    &["-an", "-f", "inet6", "-P", "tcp"],
                    &["-an", "-f", "inet", "-P", "udp"],
                    &["-an", "-f", "inet6", "-P", "udp"],
                ],
                IllumosSections,
            ),
        }
    }

    /// How often to look: reading `/proc` is cheap (tailscaled reads it every second), a
    /// `netstat` run is a process start (tailscaled runs it every 5 s on macOS).
    pub(crate) fn interval(&self) -> Duration {
        match self {
            Source::ProcNet(_) => Duration::from_secs(2),
            Source::Netstat { .. } => Duration::from_secs(5),
        }
    }

    /// The listening ports now, sorted and deduplicated.
    pub(crate) fn read(&self, runner: &PathRunner) -> Result<Vec<ListeningPort>, SourceError> {
        let mut ports = match self {
            Source::ProcNet(dir) => read_proc_net(dir)?,
            Source::Netstat { commands, format } => {
                let mut ports = Vec::new();
                for command in commands {
                    let output = run(runner, command)?;
                    ports.extend(match format {
                        NetstatFormat::Dotted => netstat::parse(&output),
                        NetstatFormat::IllumosSections => netstat_illumos::parse(&output),
                    });
                }
                ports
            }
        };
        sort_and_dedup(&mut ports);
        Ok(ports)
    }
}

/// Every file of `dir` that exists (a host without IPv6 has no `tcp6`).
fn read_proc_net(dir: &std::path::Path) -> Result<Vec<ListeningPort>, SourceError> {
    let mut ports = Vec::new();
    for (name, proto) in proc_net::FILES {
        let path = dir.join(name);
        match regular_file::read(&path, MAX_OUTPUT as u64) {
            Ok(contents) => ports.extend(proc_net::parse(&contents, proto)),
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(SourceError::Read { path, error }),
        }
    }
    Ok(ports)
}

fn run(runner: &PathRunner, command: &CommandLine) -> Result<Vec<u8>, SourceError> {
    let limits = CaptureLimits { timeout: NETSTAT_TIMEOUT, max_stdout: MAX_OUTPUT };
    let captured = runner
        .capture(command, "", limits)
        .map_err(|error| SourceError::Run { command: command.to_string(), error })?;
    if !captured.status.success() {
        return Err(SourceError::Failed { command: command.to_string(), stderr: captured.stderr });
    }
    Ok(captured.stdout)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::super::Proto;
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    /// Our own sockets, read back from this host's real `/proc/net`: the wildcard listener
    /// and the unconnected UDP socket are there, the loopback listener and the connected UDP
    /// socket are not.
    #[test]
    fn finds_this_processs_listeners_in_proc_net() {
        let public = TcpListener::bind("0.0.0.0:0").unwrap();
        let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
        let loopback6 = TcpListener::bind("[::1]:0").ok();
        let unconnected = UdpSocket::bind("0.0.0.0:0").unwrap();
        let connected = UdpSocket::bind("0.0.0.0:0").unwrap();
        connected.connect("127.0.0.1:9").unwrap();
        let port = |local: std::io::Result<std::net::SocketAddr>| local.unwrap().port();
        let ours = [
            (Proto::Tcp, port(public.local_addr())),
            (Proto::Tcp, port(loopback.local_addr())),
            (Proto::Udp, port(unconnected.local_addr())),
            (Proto::Udp, port(connected.local_addr())),
        ]
        .into_iter()
        .chain(loopback6.iter().map(|l| (Proto::Tcp, port(l.local_addr()))))
        .map(|(proto, port)| ListeningPort { port, proto })
        .collect::<Vec<_>>();
        let runner = PathRunner::default();
        let found = Source::for_os(OsKind::Linux).read(&runner).expect("/proc/net is readable");
        let mut seen: Vec<ListeningPort> = found.into_iter().filter(|p| ours.contains(p)).collect();
        seen.sort();
        let mut expected = vec![ours[0], ours[2]];
        expected.sort();
        assert_eq!(seen, expected);
    }
}
