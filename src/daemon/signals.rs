//! The signals driver: owns the self-pipe the platform layer's handlers write to, so
//! SIGTERM, SIGINT and SIGHUP reach the loop as readiness like any other input. It has no
//! deadline; its events are the signals themselves.

use super::tokens;
pub(super) use crate::platform::signal_pipe::Signal;
use crate::platform::signal_pipe::SignalPipe;
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use std::io;
use std::os::fd::AsRawFd;

pub(super) struct Signals {
    pipe: SignalPipe,
}

impl Signals {
    /// Installs the handlers (and ignores SIGPIPE).
    pub(super) fn install() -> io::Result<Signals> {
        Ok(Signals { pipe: SignalPipe::install()? })
    }

    pub(super) fn register(&self, registry: &Registry) -> io::Result<()> {
        let fd = self.pipe.as_raw_fd();
        registry.register(&mut SourceFd(&fd), tokens::SIGNALS, Interest::READABLE)
    }

    /// The signals received since the last call, in order.
    pub(super) fn on_ready(&self) -> Vec<Signal> {
        self.pipe.drain()
    }
}
