//! illumos's way to its default routes: no routing sysctl to dump the table with, so one
//! `RTM_GET` per family is written to a routing socket and its answer read back
//! (`route_socket::lookup` builds and reads the bytes). Here is the exchange, on any
//! socket it is handed, so that it runs on Linux against a fake kernel at the other end
//! of a socket pair; `kernel`'s illumos shim hands it a real `PF_ROUTE` socket.

use crate::platform::os_kind::OsKind;
use crate::platform::route_socket::lookup::{self, Answer};
use crate::platform::route_socket::DumpedDefault;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// How many messages are read for one answer before giving up: a routing socket carries
/// every route change of the host, and a burst of them may come first.
const MESSAGES_PER_ANSWER: usize = 64;
/// Larger than any answer (a header and five sockaddrs: under 600 bytes).
const READ_BUFFER_LEN: usize = 2048;

/// Numbers the questions, so that a late answer to an earlier one is never taken for the
/// answer to this one.
static NEXT_SEQ: AtomicI32 = AtomicI32::new(1);

/// The IPv4 and IPv6 default routes, asked of the kernel on `socket`, a blocking routing
/// socket with a receive timeout (an answer that never comes is an error, not a hang).
/// A family without a default route is simply absent.
pub(crate) fn ask_default_routes(
    socket: BorrowedFd<'_>,
    os: OsKind,
) -> io::Result<Vec<DumpedDefault>> {
    let mut found = Vec::new();
    for ipv6 in [false, true] {
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let question = lookup::default_route_question(os, ipv6, seq)
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no route lookup"))?;
        if !send(socket, &question)? {
            continue;
        }
        found.extend(read_answer(socket, os, seq)?);
    }
    Ok(found)
}

/// Writes the question; `false` when the kernel refuses it because there is no such route
/// (it says so at once on the write as well as in the answer).
fn send(socket: BorrowedFd<'_>, question: &[u8]) -> io::Result<bool> {
    // SAFETY: the pointer and length describe `question`, which outlives the call.
    let n = unsafe { libc::write(socket.as_raw_fd(), question.as_ptr().cast(), question.len()) };
    if n >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::ENETUNREACH) => Ok(false),
        _ => Err(e),
    }
}

/// Reads until the answer to `seq` (skipping everyone else's messages, and damaged ones,
/// which cannot be ours); `None` when it says there is no default route.
fn read_answer(socket: BorrowedFd<'_>, os: OsKind, seq: i32) -> io::Result<Option<DumpedDefault>> {
    let mut buf = vec![0u8; READ_BUFFER_LEN];
    for _ in 0..MESSAGES_PER_ANSWER {
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe { libc::read(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let n = match usize::try_from(n) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(_) => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => continue,
                e if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer to RTM_GET"))
                }
                e => return Err(e),
            },
        };
        match lookup::answer(os, &buf[..n], seq) {
            Ok(Answer::Default(route)) => return Ok(Some(route)),
            Ok(Answer::NoRoute) => return Ok(None),
            Ok(Answer::NotOurs) => {}
            Err(e) => log::debug!("route lookup: skipped a damaged routing message: {e}"),
        }
    }
    Err(io::Error::other(format!(
        "no answer to RTM_GET among {MESSAGES_PER_ANSWER} routing messages"
    )))
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
