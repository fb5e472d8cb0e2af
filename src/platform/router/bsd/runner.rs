//! The one place the daemon starts the host's tools: `route`, `ifconfig` and `ipadm` for the
//! BSDs' routes, `netstat` for the listening ports, Linux's `ip` and `nft`, and the DNS
//! managers' `resolvectl`, `resolvconf` and `route` (through the traits their callers' tests
//! replace: [`CommandRunner`], `router::Tool`, `dns::DnsTools`). Every run has a deadline and
//! bounded output: the daemon's one thread waits for it, so a hung tool (resolvectl on a
//! stuck D-Bus) must cost a bounded pause, never a stuck daemon. The real runner takes its
//! environment explicitly, so a test can point `PATH` at fake tools without touching the
//! process-wide environment other threads share.

use super::op::CommandLine;
use crate::platform::router::ToolOutput;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) trait CommandRunner {
    fn run(&mut self, command: &CommandLine) -> io::Result<ToolOutput>;
}

/// Runs the first program of that name on `PATH` (the daemon's, unless overridden).
#[derive(Debug, Default)]
pub(crate) struct PathRunner {
    env: Vec<(OsString, OsString)>,
    /// Shortens every run's timeout (tests of a hung tool).
    timeout_cap: Option<Duration>,
}

impl PathRunner {
    /// A runner whose children see the daemon's environment plus `env` (a `PATH` given here
    /// is also where the program is looked up).
    #[cfg(test)]
    pub(crate) fn with_env(env: Vec<(OsString, OsString)>) -> PathRunner {
        PathRunner { env, timeout_cap: None }
    }

    /// This runner with every run killed after `timeout` at the latest.
    #[cfg(test)]
    pub(crate) fn with_timeout_cap(self, timeout: Duration) -> PathRunner {
        PathRunner { timeout_cap: Some(timeout), ..self }
    }
}

/// What a run left behind.
#[derive(Debug)]
pub(crate) struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// How long a tool may run and how much it may print.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CaptureLimits {
    /// Past this the tool (and whatever it started) is killed, and the run is an error.
    pub timeout: Duration,
    /// More stdout than this makes the run an error; the rest is drained (so the tool is
    /// not stalled on a full pipe), not buffered.
    pub max_stdout: usize,
}

/// Limits for the tools that change the routes: their output is a line or two, and a large
/// batch (`ip -batch`, `nft -f` with thousands of routes) takes a few seconds.
pub(crate) const ROUTE_TOOL_LIMITS: CaptureLimits =
    CaptureLimits { timeout: Duration::from_secs(30), max_stdout: 1 << 20 };

/// Most of a tool's stderr kept for an error message.
const MAX_STDERR: u64 = 4 << 10;
/// How often a running child is checked against its deadline.
const WAIT_STEP: Duration = Duration::from_millis(5);

impl PathRunner {
    /// Runs `command` with `stdin` as its input and reads its stdout and stderr, killing it
    /// (with its process group) when it outlives `limits.timeout`, keeping at most
    /// `limits.max_stdout` bytes (more is an error) and the start of stderr.
    pub(crate) fn capture(
        &self,
        command: &CommandLine,
        stdin: &str,
        limits: CaptureLimits,
    ) -> io::Result<Captured> {
        let mut child = Command::new(command.program)
            .args(&command.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so a timeout also kills what a tool (or a script) started,
            // which would otherwise hold the pipes open.
            .process_group(0)
            .spawn()?;
        let (Some(mut input), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill(&mut child);
            return Err(io::Error::other("the child's pipes are missing"));
        };
        let timeout = self.timeout_cap.map_or(limits.timeout, |cap| cap.min(limits.timeout));
        let cap = limits.max_stdout as u64 + 1;
        // stdin is fed and the pipes drained on their own threads while this one watches the
        // clock: neither side waits on a full pipe, and killing the child closes them all,
        // which ends the writes and reads.
        let (status, stdout, stderr) = std::thread::scope(|scope| {
            scope.spawn(move || {
                // A write error means the tool exited early; its status says why.
                let _ = input.write_all(stdin.as_bytes());
            });
            let out = scope.spawn(move || read_at_most(stdout, cap));
            let err = scope.spawn(move || read_at_most(stderr, MAX_STDERR));
            let drained = || out.is_finished() && err.is_finished();
            let status = wait_until(&mut child, Instant::now() + timeout, drained);
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            (status, stdout, stderr)
        });
        let status = status?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still running after {timeout:?}, killed"),
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

/// The child's exit status once it has exited and its pipes are closed (`drained`), or
/// `None` when it ran past `deadline`. At the deadline the child's process group is killed
/// and the child reaped: that also ends whatever it left running with the pipes held open,
/// whose group still exists, so its id cannot have been reused.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
    drained: impl Fn() -> bool,
) -> io::Result<Option<ExitStatus>> {
    let mut status = None;
    loop {
        if status.is_none() {
            status = child.try_wait()?;
        }
        if status.is_some() && drained() {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            kill(child);
            return Ok(status);
        }
        std::thread::sleep(WAIT_STEP);
    }
}

/// Kills the child's process group (it leads it: see [`PathRunner::capture`]) and reaps the
/// child if it is not yet.
fn kill(child: &mut Child) {
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the group our own child leads; see `wait_until` for why the id
        // is still that group's.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl CommandRunner for PathRunner {
    fn run(&mut self, command: &CommandLine) -> io::Result<ToolOutput> {
        let captured = self.capture(command, "", ROUTE_TOOL_LIMITS)?;
        Ok(ToolOutput { success: captured.status.success(), stderr: captured.stderr })
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
        let captured = runner.capture(&command("sh", &["-c", script]), "", LIMITS).unwrap();
        assert_eq!(captured.stdout, b"out\n");
        assert_eq!(captured.stderr, "err\n");
        assert_eq!(captured.status.code(), Some(3));
    }

    #[test]
    fn a_hung_tool_is_killed_at_the_timeout() {
        let runner = PathRunner::default();
        let limits = CaptureLimits { timeout: Duration::from_millis(200), ..LIMITS };
        let started = Instant::now();
        // The shell's child holds the pipes too: it goes with the group.
        let hung = command("sh", &["-c", "sleep 30; echo late"]);
        let error = runner.capture(&hung, "", limits).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn what_a_tool_leaves_running_with_the_pipes_is_killed_at_the_timeout() {
        let runner = PathRunner::default().with_timeout_cap(Duration::from_millis(200));
        let script = command("sh", &["-c", "sleep 30 & echo started"]);
        let captured =
            crate::testing::within(10, move || runner.capture(&script, "", LIMITS).unwrap());
        assert_eq!(captured.stdout, b"started\n");
        assert!(captured.status.success());
    }

    #[test]
    fn a_hung_route_tool_is_killed_at_the_timeout() {
        let mut runner = PathRunner::default().with_timeout_cap(Duration::from_millis(200));
        let hung = command("sh", &["-c", "sleep 30"]);
        let error = crate::testing::within(10, move || runner.run(&hung).unwrap_err());
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn stdin_is_fed_while_a_big_answer_is_read() {
        let input = "x".repeat(256 << 10);
        let limits = CaptureLimits { max_stdout: 1 << 20, ..LIMITS };
        let captured = PathRunner::default().capture(&command("cat", &[]), &input, limits).unwrap();
        assert_eq!(captured.stdout.len(), input.len());
    }

    #[test]
    fn too_much_output_is_refused() {
        let runner = PathRunner::default();
        let error = runner.capture(&command("head", &["-c", "5000", "/dev/zero"]), "", LIMITS);
        assert!(error.unwrap_err().to_string().contains("more than 1000 bytes"));
    }
}
