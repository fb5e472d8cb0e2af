//! The one place that starts the Linux router's programs, iproute2's `ip` and `nft`. Behind
//! a trait so that tests can stand in for them and see the exact command text.

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

/// Runs one program (`ip` or `nft`) with `args`, feeding `stdin` to it.
pub(crate) trait Tool {
    fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput>;
}

/// The real program of that name from `PATH`.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct SystemTool {
    program: &'static str,
}

#[cfg(target_os = "linux")]
impl SystemTool {
    /// iproute2's `ip`.
    pub(crate) const IP: SystemTool = SystemTool { program: "ip" };
    /// nftables' `nft`.
    pub(crate) const NFT: SystemTool = SystemTool { program: "nft" };
}

#[cfg(target_os = "linux")]
impl Tool for SystemTool {
    fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput> {
        let mut child = Command::new(self.program)
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
                    // A write error means the program quit early; its status and stderr say why.
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
