//! Running a list of commands as `ip -force -batch -`, one process per address family, and
//! turning its complaints into one error that names every command that really failed.

use super::op::{Family, IpOp};
use super::tool::Tool;
use super::RouterError;

/// Runs `ops`, IPv4 (with link settings) before IPv6, so the MTU is set before IPv6
/// addresses arrive. `-force` keeps going past a failed line, so one bad route does not
/// keep the others out; every real failure is still reported.
pub(super) fn run(tool: &mut dyn Tool, ops: &[IpOp]) -> Result<(), RouterError> {
    let mut failures = Vec::new();
    for family in [Family::V4, Family::V6] {
        let batch: Vec<&IpOp> =
            ops.iter().filter(|op| op.family().unwrap_or(Family::V4) == family).collect();
        if let Err(failure) = run_family(tool, family, &batch) {
            failures.push(failure);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(RouterError(failures.join("; ")))
    }
}

fn run_family(tool: &mut dyn Tool, family: Family, batch: &[&IpOp]) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    let args = [family.flag(), "-force", "-batch", "-"];
    let invocation = format!("ip {}", args.join(" "));
    let script: String = batch.iter().map(|op| op.command_line() + "\n").collect();
    let output =
        tool.run(&args, &script).map_err(|err| format!("cannot run `{invocation}`: {err}"))?;
    if output.success {
        return Ok(());
    }
    let complaints = failed_lines(&output.stderr);
    if complaints.is_empty() {
        let stderr = output.stderr.trim();
        return Err(format!("`{invocation}` failed: {stderr}"));
    }
    let real: Vec<String> = complaints
        .into_iter()
        .filter_map(|(line, message)| describe_failure(batch, line, &message))
        .collect();
    if real.is_empty() {
        Ok(())
    } else {
        Err(format!("`{invocation}` failed: {}", real.join("; ")))
    }
}

/// `None` when the failure is benign; otherwise the failed command and `ip`'s words.
fn describe_failure(batch: &[&IpOp], line: usize, message: &str) -> Option<String> {
    match line.checked_sub(1).and_then(|index| batch.get(index)) {
        Some(op) if op.failure_is_benign(message) => None,
        Some(op) => Some(format!("`{}`: {message}", op.command_line())),
        None => Some(format!("line {line}: {message}")),
    }
}

/// Splits batch-mode stderr into (line number, message) pairs. `ip` prints a failing
/// command's own error text first and then `Command failed -:N`.
fn failed_lines(stderr: &str) -> Vec<(usize, String)> {
    let mut failures = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    for text in stderr.lines().map(str::trim).filter(|t| !t.is_empty()) {
        let line_number = text
            .strip_prefix("Command failed ")
            .and_then(|place| place.rsplit(':').next())
            .and_then(|n| n.parse::<usize>().ok());
        match line_number {
            Some(n) => failures.push((n, std::mem::take(&mut pending).join(" "))),
            None => pending.push(text),
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::super::tool::ToolOutput;
    use super::*;
    use std::io;

    /// Records every run and answers each with the next canned output (success when none).
    #[derive(Default)]
    struct FakeIp {
        runs: Vec<(String, String)>,
        answers: Vec<io::Result<ToolOutput>>,
    }

    impl Tool for FakeIp {
        fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput> {
            self.runs.push((args.join(" "), stdin.to_string()));
            if self.answers.is_empty() {
                return Ok(ToolOutput { success: true, stderr: String::new() });
            }
            self.answers.remove(0)
        }
    }

    fn failed(stderr: &str) -> io::Result<ToolOutput> {
        Ok(ToolOutput { success: false, stderr: stderr.into() })
    }

    fn route(op: &str, prefix: &str) -> IpOp {
        let (tun, route) = ("t0".to_string(), prefix.parse().unwrap());
        match op {
            "add" => IpOp::AddRoute { tun, route },
            _ => IpOp::DeleteRoute { tun, route },
        }
    }

    #[test]
    fn sends_one_batch_per_family_with_link_settings_in_the_ipv4_one() {
        let ops = [
            route("add", "fd7a:115c:a1e0::/48"),
            IpOp::SetMtu { tun: "t0".into(), mtu: 1280 },
            route("del", "10.0.0.0/8"),
        ];
        let mut ip = FakeIp::default();
        run(&mut ip, &ops).unwrap();
        assert_eq!(
            ip.runs,
            [
                (
                    "-4 -force -batch -".to_string(),
                    "link set dev t0 mtu 1280\nroute del 10.0.0.0/8 dev t0 table 52\n".to_string()
                ),
                (
                    "-6 -force -batch -".to_string(),
                    "route add fd7a:115c:a1e0::/48 dev t0 table 52\n".to_string()
                ),
            ]
        );
    }

    #[test]
    fn runs_nothing_for_nothing() {
        let mut ip = FakeIp::default();
        run(&mut ip, &[]).unwrap();
        assert!(ip.runs.is_empty());
    }

    #[test]
    fn ignores_complaints_that_mean_done_already() {
        let ops = [route("add", "10.0.0.0/8"), route("del", "10.2.0.0/16")];
        let stderr = "RTNETLINK answers: File exists\nCommand failed -:1\n\
                      RTNETLINK answers: No such process\nCommand failed -:2\n";
        let mut ip = FakeIp { answers: vec![failed(stderr)], ..FakeIp::default() };
        assert!(run(&mut ip, &ops).is_ok());
    }

    #[test]
    fn names_each_real_failure_and_still_runs_the_other_family() {
        let ops = [
            route("add", "10.0.0.0/8"),
            route("add", "10.1.0.0/16"),
            route("add", "fd7a:115c:a1e0::/48"),
        ];
        let stderr = "Error: Nexthop device is not up.\nCommand failed -:2\n";
        let mut ip = FakeIp {
            answers: vec![failed(stderr), failed("Error: boom\nCommand failed -:1\n")],
            ..FakeIp::default()
        };
        let message = run(&mut ip, &ops).unwrap_err().to_string();
        assert_eq!(ip.runs.len(), 2);
        assert!(message.contains("`ip -4 -force -batch -` failed"), "{message}");
        assert!(
            message.contains(
                "`route add 10.1.0.0/16 dev t0 table 52`: Error: Nexthop device is not up."
            ),
            "{message}"
        );
        assert!(!message.contains("10.0.0.0/8"), "{message}");
        assert!(
            message.contains("`route add fd7a:115c:a1e0::/48 dev t0 table 52`: Error: boom"),
            "{message}"
        );
    }

    #[test]
    fn reports_a_failure_it_cannot_attribute() {
        let mut ip =
            FakeIp { answers: vec![failed("ip: invalid option -- 'b'\n")], ..FakeIp::default() };
        let message = run(&mut ip, &[route("add", "10.0.0.0/8")]).unwrap_err().to_string();
        assert!(message.contains("invalid option"), "{message}");
    }

    #[test]
    fn reports_a_missing_tool() {
        let mut ip = FakeIp {
            answers: vec![Err(io::Error::new(io::ErrorKind::NotFound, "No such file"))],
            ..FakeIp::default()
        };
        let message = run(&mut ip, &[route("add", "10.0.0.0/8")]).unwrap_err().to_string();
        assert!(message.contains("cannot run `ip -4 -force -batch -`"), "{message}");
    }

    #[test]
    fn survives_garbage_on_stderr() {
        let ops = [route("add", "10.0.0.0/8")];
        for stderr in
            ["Command failed -:99\n", "Command failed -:x\n", "Command failed -:0\n", "\n\n"]
        {
            let mut ip = FakeIp { answers: vec![failed(stderr)], ..FakeIp::default() };
            assert!(run(&mut ip, &ops).is_err(), "{stderr:?}");
        }
    }

    #[test]
    fn pairs_messages_with_their_line_numbers() {
        let stderr = "Error: a\nmore about a\nCommand failed -:3\nCommand failed -:7\n";
        assert_eq!(
            failed_lines(stderr),
            [(3, "Error: a more about a".to_string()), (7, String::new())]
        );
    }
}
