//! The one place that starts the host's tools: `route`, `ifconfig` and `ipadm` for the
//! routes, `netstat` for the listening ports. Behind a trait so tests can see the commands;
//! the real runner takes its environment explicitly, so a test can point `PATH` at fake tools
//! without touching the process-wide environment other threads share.

use super::op::CommandLine;
use crate::platform::router::ToolOutput;
use std::ffi::OsString;
use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// What a run whose output is read left behind.
#[derive(Debug)]
pub(crate) struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// How long and how much a tool whose output is read may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CaptureLimits {
    pub timeout: Duration,
    /// More stdout than this is refused (the child is killed), not buffered.
    pub max_stdout: usize,
}

/// Most of a tool's stderr kept for an error message.
const MAX_STDERR: u64 = 4 << 10;
/// How often a running child is checked against its deadline.
const WAIT_STEP: Duration = Duration::from_millis(5);

impl PathRunner {
    /// Runs `command` and reads its stdout and stderr, killing it when it outlives
    /// `limits.timeout` and keeping at most `limits.max_stdout` bytes (more is an error): a
    /// hung or runaway tool costs the caller a bounded pause and bounded memory, never a stuck
    /// daemon.
    pub(crate) fn capture(
        &self,
        command: &CommandLine,
        limits: CaptureLimits,
    ) -> io::Result<Captured> {
        let mut child = Command::new(command.program)
            .args(&command.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the child's pipes are missing"));
        };
        let cap = limits.max_stdout as u64 + 1;
        // The pipes drain on their own threads while this one watches the clock; killing the
        // child closes them, which ends both reads.
        let (status, stdout, stderr) = std::thread::scope(|scope| {
            let out = scope.spawn(move || read_at_most(stdout, cap));
            let err = scope.spawn(move || read_at_most(stderr, MAX_STDERR));
            let status = wait_until(&mut child, Instant::now() + limits.timeout);
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            (status, stdout, stderr)
        });
        let status = status?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still running after {:?}", limits.timeout),
            )
        })?;
        if stdout.len() > limits.max_stdout {
            return Err(io::Error::other(format!(
                "more than {} bytes of output",
                limits.max_stdout
            )));
        }
        Ok(Captured { status, stdout, stderr: String::from_utf8_lossy(&stderr).into_owned() })
    }
}

/// The first `cap` bytes of a pipe, the rest drained (so the writer never blocks on it).
fn read_at_most(mut pipe: impl Read, cap: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = pipe.by_ref().take(cap).read_to_end(&mut bytes);
    let _ = io::copy(&mut pipe, &mut io::sink());
    bytes
}

/// The child's exit status, or `None` once it ran past `deadline` (then it is killed and
/// reaped).
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(WAIT_STEP);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn command(program: &'static str, args: &[&str]) -> CommandLine {
        CommandLine { program, args: args.iter().map(|a| a.to_string()).collect() }
    }

    const LIMITS: CaptureLimits =
        CaptureLimits { timeout: Duration::from_secs(5), max_stdout: 1000 };

    #[test]
    fn captures_stdout_stderr_and_the_status() {
        let runner = PathRunner::default();
        let script = "printf 'out\\n'; printf 'err\\n' >&2; exit 3";
        let captured = runner.capture(&command("sh", &["-c", script]), LIMITS).unwrap();
        assert_eq!(captured.stdout, b"out\n");
        assert_eq!(captured.stderr, "err\n");
        assert_eq!(captured.status.code(), Some(3));
    }

    #[test]
    fn a_hung_tool_is_killed_at_the_timeout() {
        let runner = PathRunner::default();
        let limits = CaptureLimits { timeout: Duration::from_millis(200), ..LIMITS };
        let started = Instant::now();
        let error = runner.capture(&command("sleep", &["30"]), limits).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn too_much_output_is_refused() {
        let runner = PathRunner::default();
        let error = runner.capture(&command("head", &["-c", "5000", "/dev/zero"]), LIMITS);
        assert!(error.unwrap_err().to_string().contains("more than 1000 bytes"));
    }
}
