//! SIGTERM, SIGINT and SIGHUP as readable bytes on a pipe, so the poll loop sees signals like
//! any other event (the self-pipe trick; works on every Unix weft targets).

use super::fd::set_nonblocking_cloexec;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the pipe, for the handler. -1 until installed.
static PIPE_WRITE_END: AtomicI32 = AtomicI32::new(-1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Terminate,
    Reload,
}

pub(crate) struct SignalPipe {
    read_end: OwnedFd,
    _write_end: OwnedFd,
}

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE_WRITE_END.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte, and the loop
        // will already have earlier bytes of the same kind to read.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

impl SignalPipe {
    /// Installs handlers for SIGTERM, SIGINT and SIGHUP and ignores SIGPIPE (a CLI that hangs up
    /// must not kill the daemon).
    pub(crate) fn install() -> io::Result<SignalPipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe(2) fills the two-element array on success.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in fds {
            set_nonblocking_cloexec(fd)?;
        }
        PIPE_WRITE_END.store(write_end.as_raw_fd(), Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            set_handler(signal, on_signal as *const () as libc::sighandler_t)?;
        }
        set_handler(libc::SIGPIPE, libc::SIG_IGN)?;
        Ok(SignalPipe { read_end, _write_end: write_end })
    }

    /// The signals received since the last call, in order.
    pub(crate) fn drain(&self) -> Vec<Signal> {
        let mut signals = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a local buffer of the given length.
            let n = unsafe {
                libc::read(self.read_end.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
            };
            if n <= 0 {
                return signals;
            }
            signals.extend(buf[..n as usize].iter().map(|&b| {
                if i32::from(b) == libc::SIGHUP {
                    Signal::Reload
                } else {
                    Signal::Terminate
                }
            }));
        }
    }
}

impl AsRawFd for SignalPipe {
    fn as_raw_fd(&self) -> RawFd {
        self.read_end.as_raw_fd()
    }
}

fn set_handler(signal: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler address and an empty mask is well formed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
