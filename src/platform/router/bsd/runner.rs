//! The one place that starts `route`, `ifconfig` and `ipadm`. Behind a trait so tests can see
//! the commands; the real runner takes its environment explicitly, so a test can point
//! `PATH` at fake tools without touching the process-wide environment other threads share.

use super::op::CommandLine;
use crate::platform::router::ToolOutput;
use std::ffi::OsString;
use std::io;
use std::process::{Command, Stdio};

pub(crate) trait CommandRunner {
    fn run(&mut self, command: &CommandLine) -> io::Result<ToolOutput>;
}

/// Runs the first program of that name on `PATH` (the daemon's, unless overridden).
#[derive(Debug, Default)]
pub(crate) struct PathRunner {
    env: Vec<(OsString, OsString)>,
}

impl PathRunner {
    /// A runner whose children see the daemon's environment plus `env` (a `PATH` given here
    /// is also where the program is looked up).
    #[cfg(test)]
    pub(crate) fn with_env(env: Vec<(OsString, OsString)>) -> PathRunner {
        PathRunner { env }
    }
}

impl CommandRunner for PathRunner {
    fn run(&mut self, command: &CommandLine) -> io::Result<ToolOutput> {
        let output = Command::new(command.program)
            .args(&command.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        Ok(ToolOutput {
            success: output.status.success(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
