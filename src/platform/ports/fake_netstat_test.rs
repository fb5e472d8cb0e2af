//! The netstat command lines of FreeBSD and illumos run against fakes of their `netstat`
//! (tests/fake-os-tools/<os>/netstat), which print a socket table in that OS's layout and
//! refuse the options the real one refuses (illumos: `-f tcp`). Tested on Linux against
//! fakes, not on the real systems.

use super::source::{Source, SourceError};
use super::{ListeningPort, Proto};
use crate::platform::os_kind::OsKind;
use crate::platform::router::bsd::PathRunner;
use crate::testing::fresh_dir;
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A fake kernel's socket table and the log of the commands run against it.
struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let lab = Lab { dir: fresh_dir(&format!("ports-{test}")) };
        let socket = |proto, family, local, remote, state| json!({"proto": proto, "family": family, "local": local, "remote": remote, "state": state});
        let table = json!({"sockets": [
            socket("tcp", 4, "*.22", "*.*", "LISTEN"),
            socket("tcp", 6, "*.22", "*.*", "LISTEN"),
            socket("tcp", 4, "127.0.0.1.25", "*.*", "LISTEN"),
            socket("tcp", 6, "::1.631", "*.*", "LISTEN"),
            socket("tcp", 4, "192.0.2.10.22", "198.51.100.7.50122", "ESTABLISHED"),
            socket("tcp", 6, "2001:db8::10.8443", "*.*", "LISTEN"),
            socket("udp", 4, "*.68", "", "Idle"),
            socket("udp", 6, "*.546", "", "Idle"),
            socket("udp", 4, "127.0.0.1.53", "", "Idle"),
        ]});
        std::fs::write(lab.dir.join("table.json"), table.to_string()).unwrap();
        lab
    }

    /// A runner whose `PATH` starts with `tools` (a fake OS's directory, or one without
    /// `netstat`).
    fn runner(&self, tools: &Path) -> PathRunner {
        let mut path = OsString::from(tools);
        // The system's python3 before any version-manager shim, which costs a fork per run.
        path.push(":/usr/bin:");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        PathRunner::with_env(vec![
            ("PATH".into(), path),
            ("FAKE_OS_TABLE".into(), self.dir.join("table.json").into()),
            ("FAKE_OS_LOG".into(), self.dir.join("commands.log").into()),
        ])
    }

    fn commands(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("commands.log")).unwrap_or_default();
        log.lines().map(str::to_string).collect()
    }
}

fn fake_tools(os: OsKind) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-os-tools").join(os.name())
}

fn listed(ports: &[ListeningPort]) -> Vec<String> {
    ports.iter().map(ToString::to_string).collect()
}

#[test]
fn illumos_asks_for_each_family_and_protocol_and_reads_every_table() {
    let lab = Lab::new("illumos");
    let ports = Source::for_os(OsKind::Illumos).read(&lab.runner(&fake_tools(OsKind::Illumos)));
    let ports = ports.expect("the fake accepts every command line");
    assert_eq!(listed(&ports), ["22/tcp", "68/udp", "546/udp", "8443/tcp"]);
    assert_eq!(
        lab.commands(),
        [
            "netstat -an -f inet -P tcp",
            "netstat -an -f inet6 -P tcp",
            "netstat -an -f inet -P udp",
            "netstat -an -f inet6 -P udp",
        ]
    );
}

#[test]
fn freebsd_asks_for_each_protocol() {
    let lab = Lab::new("freebsd");
    let ports = Source::for_os(OsKind::FreeBsd).read(&lab.runner(&fake_tools(OsKind::FreeBsd)));
    let ports = ports.expect("the fake accepts every command line");
    assert!(ports.contains(&ListeningPort { port: 8443, proto: Proto::Tcp }));
    assert_eq!(listed(&ports), ["22/tcp", "68/udp", "546/udp", "8443/tcp"]);
    assert_eq!(lab.commands(), ["netstat -an -p tcp", "netstat -an -p udp"]);
}

#[test]
fn a_refused_command_line_is_an_error_with_netstats_words() {
    let lab = Lab::new("refused");
    // illumos's grammar does not take FreeBSD's `-p`.
    let ports = Source::for_os(OsKind::FreeBsd).read(&lab.runner(&fake_tools(OsKind::Illumos)));
    match ports {
        Err(SourceError::Failed { command, stderr }) => {
            assert_eq!(command, "netstat -an -p tcp");
            assert!(stderr.contains("illegal option"), "{stderr}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_missing_netstat_is_an_error() {
    let lab = Lab::new("missing");
    let empty = lab.dir.join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let runner = PathRunner::with_env(vec![("PATH".into(), empty.into())]);
    let ports = Source::for_os(OsKind::OpenBsd).read(&runner);
    assert!(matches!(ports, Err(SourceError::Run { .. })), "{ports:?}");
}
