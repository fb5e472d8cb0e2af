//! Linux's router programs, iproute2's `ip` and `nft`, run by the one runner
//! (`bsd::PathRunner`: a deadline and bounded output). Behind a trait so that tests can stand
//! in for them and see the exact command text.

#[cfg(target_os = "linux")]
use super::bsd::{CommandLine, PathRunner, ROUTE_TOOL_LIMITS};
use std::io;

/// What a run of the tool left behind that matters to us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ToolOutput {
    pub success: bool,
    pub stderr: String,
}

/// Runs one program (`ip` or `nft`) with `args`, feeding `stdin` to it.
pub(crate) trait Tool {
    fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput>;
}

/// The real program of that name from `PATH`.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct SystemTool {
    program: &'static str,
    runner: PathRunner,
}

#[cfg(target_os = "linux")]
impl SystemTool {
    /// iproute2's `ip`.
    pub(crate) fn ip() -> SystemTool {
        SystemTool { program: "ip", runner: PathRunner::default() }
    }

    /// nftables' `nft`.
    pub(crate) fn nft() -> SystemTool {
        SystemTool { program: "nft", runner: PathRunner::default() }
    }
}

#[cfg(target_os = "linux")]
impl Tool for SystemTool {
    fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput> {
        let args = args.iter().map(|a| a.to_string()).collect();
        let command = CommandLine { program: self.program, args };
        let captured = self.runner.capture(&command, stdin, ROUTE_TOOL_LIMITS)?;
        Ok(ToolOutput { success: captured.status.success(), stderr: captured.stderr })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_hung_router_tool_is_killed_at_the_timeout() {
        let runner = PathRunner::default().with_timeout_cap(Duration::from_millis(200));
        let mut tool = SystemTool { program: "sh", runner };
        let error = crate::testing::within(10, move || {
            tool.run(&["-c", "read -r line; sleep 30"], "batch\n").unwrap_err()
        });
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn reads_its_input_and_reports_failure_with_stderr() {
        let mut tool = SystemTool { program: "sh", runner: PathRunner::default() };
        let output = tool.run(&["-c", "read -r line; echo \"bad $line\" >&2; exit 1"], "route\n");
        assert_eq!(output.unwrap(), ToolOutput { success: false, stderr: "bad route\n".into() });
    }
}
