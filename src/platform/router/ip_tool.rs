//! The one place that starts the `ip` program. Behind a trait so that tests can stand in for
//! it and see the exact command text.

use std::io;
#[cfg(target_os = "linux")]
use std::io::Write;
#[cfg(target_os = "linux")]
use std::process::{Command, Stdio};

/// What a run of the tool left behind that matters to us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ToolOutput {
    pub success: bool,
    pub stderr: String,
}

/// Runs iproute2's `ip` with `args`, feeding `stdin` to it.
pub(crate) trait IpTool {
    fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput>;
}

/// The real `ip` from `PATH`.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
pub(crate) struct SystemIpTool;

#[cfg(target_os = "linux")]
impl IpTool for SystemIpTool {
    fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput> {
        let mut child = Command::new("ip")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut input = child.stdin.take();
        // Feed stdin from a second thread while this one drains stderr: a long batch whose
        // every line fails could otherwise fill the stderr pipe and stall both processes.
        let output = std::thread::scope(|scope| {
            scope.spawn(move || {
                if let Some(pipe) = input.as_mut() {
                    // A write error means `ip` exited early; its status and stderr say why.
                    let _ = pipe.write_all(stdin.as_bytes());
                }
            });
            child.wait_with_output()
        })?;
        Ok(ToolOutput {
            success: output.status.success(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
