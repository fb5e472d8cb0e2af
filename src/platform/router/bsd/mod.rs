//! The router for FreeBSD, NetBSD, OpenBSD, macOS and illumos: the same reconcile as on
//! Linux (remember what was applied, run only the difference, accept "already done"
//! complaints), driving each OS's `route`/`ifconfig` (`ipadm` on illumos) one command at a
//! time in that OS's grammar.
//!
//! What is applied is also recorded in a file (see `state_file`), so that routes and
//! addresses left by a crash are removed at the next start, and the first apply of a run
//! removes recorded entries it no longer wants.

mod op;
mod plan;
mod runner;
mod state_file;

#[cfg(test)]
mod fake_tools_test;

// Also the command type of the DNS managers' tools (`platform::dns`) and the ports' netstat.
pub(crate) use op::CommandLine;
pub(crate) use op::{BsdOp, HostRoute, TableDefault};
pub(crate) use runner::{CaptureLimits, CommandRunner, PathRunner};
// Linux's `ip` and `nft` (`router::tool`) run with the BSDs' route tools' limits.
#[cfg(target_os = "linux")]
pub(crate) use runner::ROUTE_TOOL_LIMITS;
pub(crate) use state_file::DEFAULT_DIR;

use super::{RouterConfig, RouterError};
use crate::platform::os_kind::OsKind;
use plan::KernelState;
use std::path::PathBuf;

pub(crate) struct BsdRouter {
    os: OsKind,
    runner: Box<dyn CommandRunner>,
    record: PathBuf,
    /// What the kernel was last brought to (normalized); `None` before the first apply of
    /// this run and after shutdown.
    applied: Option<RouterConfig>,
}

impl BsdRouter {
    /// A router speaking `os`'s grammar through `runner`, recording in `state_dir`.
    pub(crate) fn new(os: OsKind, runner: Box<dyn CommandRunner>, state_dir: PathBuf) -> BsdRouter {
        BsdRouter { os, runner, record: state_file::path_in(&state_dir), applied: None }
    }

    /// The OS whose grammar this router speaks.
    pub(crate) fn os(&self) -> OsKind {
        self.os
    }

    /// Brings the kernel to `desired`. Every command is tried; the failures come back as
    /// one error naming each command with the tool's words, and the remembered state stays
    /// as it was, so the next call tries the unfinished part again.
    pub(crate) fn apply(&mut self, desired: &RouterConfig) -> Result<(), RouterError> {
        let desired = plan::normalize(self.os, desired);
        let target = plan::kernel_state(self.os, &desired);
        let mut problems = Vec::new();
        let (recorded, ops) = match &self.applied {
            Some(applied) if *applied == desired => return Ok(()),
            Some(applied) => {
                let before = plan::kernel_state(self.os, applied);
                (vec![applied.clone()], plan::apply_ops(Some(&before), &target))
            }
            None => {
                let leftovers = state_file::load(&self.record).unwrap_or_else(|e| {
                    problems.push(e);
                    Vec::new()
                });
                let ops = self.first_ops(&leftovers, &target);
                (leftovers, ops)
            }
        };
        // Record before acting, so that nothing reaches the kernel unrecorded.
        let mut intent: Vec<&RouterConfig> = recorded.iter().collect();
        intent.push(&desired);
        problems.extend(state_file::save(&self.record, &intent).err());
        let failures = self.run(&ops);
        if failures.is_empty() {
            problems.extend(state_file::save(&self.record, &[&desired]).err());
            self.applied = Some(desired);
        }
        problems.extend(failures);
        joined(problems)
    }

    /// The first apply of a run: recorded leftovers we no longer want go, and everything we
    /// want is added (already-present entries answer "File exists", which is fine), since
    /// a record says what was added, not what survived.
    fn first_ops(&self, leftovers: &[RouterConfig], target: &KernelState) -> Vec<BsdOp> {
        let mut ops: Vec<BsdOp> = leftovers
            .iter()
            .flat_map(|old| plan::apply_ops(Some(&plan::kernel_state(self.os, old)), target))
            .filter(|op| matches!(op, BsdOp::DeleteRoute { .. } | BsdOp::DeleteAddress { .. }))
            .collect();
        ops.extend(plan::apply_ops(None, target));
        ops
    }

    /// Runs the routes that keep our own traffic off the tunnel, as `platform::bind`
    /// planned them: NetBSD's host routes to peer endpoints, the OpenBSD rtable's or
    /// FreeBSD FIB's default. Not recorded in the state file: the planner's owner keeps
    /// what was applied, and a leftover route points outside the tunnel, through the
    /// physical gateway.
    pub(crate) fn run_bypass_routes(&mut self, ops: &[BsdOp]) -> Result<(), RouterError> {
        joined(self.run(ops))
    }

    /// Removes our routes and addresses; the record goes once they are gone.
    pub(crate) fn shutdown(&mut self) -> Result<(), RouterError> {
        match self.applied.take() {
            Some(applied) => self.undo(&[applied]),
            None => Ok(()),
        }
    }

    /// Removes everything the record names: what a crashed run left, the TUN interface
    /// included where it outlives its descriptor (the BSDs). Call before the first apply
    /// and before the TUN is opened.
    pub(crate) fn remove_stale(&mut self) -> Result<(), RouterError> {
        let leftovers = state_file::load(&self.record).map_err(RouterError)?;
        let undone = self.undo(&leftovers);
        let tuns: Vec<&str> = leftovers.iter().map(|config| config.tun.as_str()).collect();
        let destroyed = self.destroy(&tuns);
        undone.and(destroyed)
    }

    /// Destroys our TUN interface where it outlives its descriptor: call after closing it.
    pub(crate) fn destroy_interface(&mut self, tun: &str) -> Result<(), RouterError> {
        self.destroy(&[tun])
    }

    fn destroy(&mut self, tuns: &[&str]) -> Result<(), RouterError> {
        if !self.os.tun_outlives_descriptor() {
            return Ok(());
        }
        let mut tuns = tuns.to_vec();
        tuns.sort_unstable();
        tuns.dedup();
        let ops: Vec<BsdOp> =
            tuns.iter().map(|tun| BsdOp::DestroyInterface { tun: tun.to_string() }).collect();
        joined(self.run(&ops))
    }

    fn undo(&mut self, configs: &[RouterConfig]) -> Result<(), RouterError> {
        let ops: Vec<BsdOp> =
            configs.iter().flat_map(|c| plan::undo_ops(&plan::kernel_state(self.os, c))).collect();
        let mut problems = self.run(&ops);
        if problems.is_empty() {
            problems.extend(state_file::remove(&self.record).err());
        }
        joined(problems)
    }

    /// Runs every op, even after a failure, and describes the failures.
    fn run(&mut self, ops: &[BsdOp]) -> Vec<String> {
        ops.iter().filter_map(|op| self.run_one(op).err()).collect()
    }

    fn run_one(&mut self, op: &BsdOp) -> Result<(), String> {
        let command = op.command(self.os);
        let output =
            self.runner.run(&command).map_err(|e| format!("cannot run `{command}`: {e}"))?;
        if output.success || op.failure_is_benign(&output.stderr) {
            return Ok(());
        }
        let stderr: Vec<&str> =
            output.stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        match stderr.is_empty() {
            true => Err(format!("`{command}` failed")),
            false => Err(format!("`{command}` failed: {}", stderr.join(" / "))),
        }
    }
}

fn joined(problems: Vec<String>) -> Result<(), RouterError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RouterError(problems.join("; ")))
    }
}
