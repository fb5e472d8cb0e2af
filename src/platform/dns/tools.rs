//! The one place the DNS managers start programs (`resolvectl`, `resolvconf`, `route`).
//! Unlike the router's runner, these tools read a configuration on stdin (resolvconf) and
//! answer on stdout and with exit codes that matter (`resolvconf --version`), so a run
//! takes input and keeps all three. Behind a trait so tests see every command; the real
//! runner takes its `PATH` explicitly, so a test can point it at fake tools without touching
//! the environment other threads share.

use crate::platform::router::bsd::CommandLine;
use std::ffi::OsString;
use std::io::{self, Write};
use std::process::{Command, Stdio};

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

/// Runs the first program of that name on `PATH` (the daemon's, unless overridden).
#[derive(Debug, Default)]
pub(crate) struct PathTools {
    env: Vec<(OsString, OsString)>,
}

impl PathTools {
    /// Tools whose children see the daemon's environment plus `env` (a `PATH` given here
    /// is also where the program is looked up).
    #[cfg(test)]
    pub(crate) fn with_env(env: Vec<(OsString, OsString)>) -> PathTools {
        PathTools { env }
    }
}

impl DnsTools for PathTools {
    fn run(&mut self, command: &CommandLine, stdin: &str) -> io::Result<ToolReply> {
        // With `PATH` set on the command, the program is also looked up there.
        let mut child = Command::new(command.program)
            .args(&command.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut input = child.stdin.take();
        // Feed stdin from a second thread while this one drains stdout and stderr, so that
        // neither side waits on a full pipe.
        let output = std::thread::scope(|scope| {
            scope.spawn(move || {
                if let Some(pipe) = input.as_mut() {
                    // A write error means the tool exited early; its status says why.
                    let _ = pipe.write_all(stdin.as_bytes());
                }
            });
            child.wait_with_output()
        })?;
        Ok(ToolReply {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
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
        let mut tools = PathTools::with_env(vec![("PATH".into(), dir.clone().into())]);
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
}
