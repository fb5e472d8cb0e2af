//! How the DNS managers start programs (`resolvectl`, `resolvconf`, `route`): through the
//! daemon's one runner (`router::bsd::PathRunner`: a deadline, so resolvectl hung on a stuck
//! D-Bus costs the loop seconds, not minutes). Unlike the router's tools, these read a
//! configuration on stdin (resolvconf) and answer on stdout and with exit codes that matter
//! (`resolvconf --version`), so a run takes input and keeps all three. Behind a trait so
//! tests see every command.

use crate::platform::router::bsd::{CaptureLimits, CommandLine, PathRunner};
use std::io;
use std::time::Duration;

/// resolvectl answers at once, or hangs for D-Bus's own 25 s when resolved is stuck: give up
/// well before. The answers are a few lines.
const DNS_TOOL_LIMITS: CaptureLimits =
    CaptureLimits { timeout: Duration::from_secs(5), max_stdout: 64 << 10 };

/// How a tool's run ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ToolReply {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ToolReply {
    pub(crate) fn succeeded(&self) -> bool {
        self.code == Some(0)
    }
}

pub(crate) trait DnsTools {
    /// Runs `command` with `stdin` as its input.
    fn run(&mut self, command: &CommandLine, stdin: &str) -> io::Result<ToolReply>;
}

impl DnsTools for PathRunner {
    fn run(&mut self, command: &CommandLine, stdin: &str) -> io::Result<ToolReply> {
        let captured = self.capture(command, stdin, DNS_TOOL_LIMITS)?;
        Ok(ToolReply {
            code: captured.status.code(),
            stdout: String::from_utf8_lossy(&captured.stdout).into_owned(),
            stderr: captured.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_dir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_tool_on_the_given_path_gets_its_input_and_its_answers_are_kept() {
        let dir = fresh_dir("dns-tools");
        let tool = dir.join("resolvconf");
        std::fs::write(&tool, "#!/bin/sh\nwhile read -r line; do echo \"$line\"; done\necho \"args $*\" >&2\nexit 99\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut tools = PathRunner::with_env(vec![("PATH".into(), dir.clone().into())]);
        let command =
            CommandLine { program: "resolvconf", args: vec!["-a".into(), "weft0".into()] };
        let reply = tools.run(&command, "nameserver 10.0.0.53\n").unwrap();
        assert_eq!(reply.stdout, "nameserver 10.0.0.53\n");
        assert_eq!(reply.stderr, "args -a weft0\n");
        assert_eq!(reply.code, Some(99));
        assert!(!reply.succeeded());
        let missing = CommandLine { program: "resolvectl", args: Vec::new() };
        assert_eq!(tools.run(&missing, "").unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hung_tool_is_killed_at_the_timeout() {
        let dir = fresh_dir("dns-tools-hung");
        let tool = dir.join("resolvectl");
        std::fs::write(&tool, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", dir.display());
        let mut tools = PathRunner::with_env(vec![("PATH".into(), path.into())])
            .with_timeout_cap(Duration::from_millis(200));
        let command = CommandLine { program: "resolvectl", args: vec!["revert".into()] };
        let error = crate::testing::within(10, move || tools.run(&command, "").unwrap_err());
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
