//! The exchange against a fake illumos kernel at the other end of a datagram socket pair:
//! it reads each question and answers the way `ip_rts.c` does (the question echoed with
//! `RTF_DONE`, the interface's index written into its `sockaddr_dl`, or `rtm_errno` set),
//! after other traffic of a routing socket.

use super::*;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::thread;

/// `rt_msghdr_t`: 76 bytes; `rtm_flags` @8, `rtm_seq` @20, `rtm_errno` @24; `RTM_ADD` 1.
const HEADER: usize = 76;
const AT_FLAGS: usize = 8;
const AT_ERRNO: usize = 24;
const SOCKADDR_DL: usize = 252;
const ESRCH: u32 = 3;

fn socket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fresh descriptors into `fds`.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    // SAFETY: both are fresh descriptors owned by nobody else.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let timeout = std::time::Duration::from_millis(200);
    crate::platform::socket::set_receive_timeout(pair.0.as_raw_fd(), timeout).unwrap();
    pair
}

fn read_question(kernel: &OwnedFd) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    // SAFETY: the pointer and length describe `buf`.
    let n = unsafe { libc::read(kernel.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(usize::try_from(n).expect("a question"));
    buf
}

fn send(kernel: &OwnedFd, message: &[u8]) {
    // SAFETY: the pointer and length describe `message`.
    let n = unsafe { libc::write(kernel.as_raw_fd(), message.as_ptr().cast(), message.len()) };
    assert_eq!(usize::try_from(n).ok(), Some(message.len()));
}

/// The question as the kernel returns it when the route leaves by interface `index`.
fn answered(question: &[u8], index: u16) -> Vec<u8> {
    let mut answer = question.to_vec();
    answer[AT_FLAGS] |= 0x40; // RTF_DONE
    let sdl = answer.len() - SOCKADDR_DL;
    answer[sdl + 2..sdl + 4].copy_from_slice(&index.to_ne_bytes());
    answer
}

fn refused(question: &[u8]) -> Vec<u8> {
    let mut answer = question.to_vec();
    answer[AT_ERRNO..AT_ERRNO + 4].copy_from_slice(&ESRCH.to_ne_bytes());
    answer
}

/// Another process's route change: an `RTM_ADD` that otherwise looks like our answer.
fn someone_elses(question: &[u8]) -> Vec<u8> {
    let mut other = answered(question, 9);
    other[3] = 1;
    other
}

#[test]
fn the_answers_are_found_among_other_routing_messages() {
    let (daemon, kernel) = socket_pair();
    let fake_kernel = thread::spawn(move || {
        let v4 = read_question(&kernel);
        assert_eq!(u16::from_ne_bytes([v4[HEADER], v4[HEADER + 1]]), 2, "AF_INET first");
        send(&kernel, &someone_elses(&v4));
        send(&kernel, &[1, 2, 3]);
        send(&kernel, &answered(&v4, 5));
        let v6 = read_question(&kernel);
        assert_eq!(u16::from_ne_bytes([v6[HEADER], v6[HEADER + 1]]), 26, "then AF_INET6");
        send(&kernel, &answered(&v4, 6)); // a late copy of the first answer: not this one's
        send(&kernel, &refused(&v6));
    });
    let routes = ask_default_routes(daemon.as_fd(), OsKind::Illumos).unwrap();
    fake_kernel.join().unwrap();
    let expected = DumpedDefault { ipv6: false, gateway: None, interface: 5, scoped: false };
    assert_eq!(routes, vec![expected]);
}

#[test]
fn a_kernel_that_never_answers_is_an_error_not_a_hang() {
    let (daemon, kernel) = socket_pair();
    let silent = thread::spawn(move || {
        let question = read_question(&kernel);
        send(&kernel, &someone_elses(&question));
        kernel
    });
    let e = ask_default_routes(daemon.as_fd(), OsKind::Illumos).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    drop(silent.join().unwrap());

    let (daemon, kernel) = socket_pair();
    let chatty = thread::spawn(move || {
        let question = read_question(&kernel);
        for _ in 0..MESSAGES_PER_ANSWER {
            send(&kernel, &someone_elses(&question));
        }
        kernel
    });
    let e = ask_default_routes(daemon.as_fd(), OsKind::Illumos).unwrap_err();
    assert!(e.to_string().contains("among 64 routing messages"), "{e}");
    drop(chatty.join().unwrap());
}

#[test]
fn only_illumos_asks() {
    let (daemon, _kernel) = socket_pair();
    let e = ask_default_routes(daemon.as_fd(), OsKind::FreeBsd).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
}
