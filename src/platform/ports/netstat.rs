//! `netstat -an` of FreeBSD, NetBSD, OpenBSD and macOS: one socket a line, the protocol
//! first (`tcp`, `tcp4`, `tcp6`, `tcp46`, `udp`…), then queue sizes, the local and the remote
//! `address.port`, and for TCP the state last. Other lines (headers, UNIX sockets, the
//! routing and interface tables some releases append) are skipped, and so is any line this
//! reading does not fit: the output may carry names users chose.

use super::endpoint::{self, Endpoint};
use super::{ListeningPort, Proto};

/// The listening ports `output` shows, unsorted (loopback-only ones left out).
pub(crate) fn parse(output: &[u8]) -> Vec<ListeningPort> {
    output.split(|&b| b == b'\n').filter_map(listener).collect()
}

/// The port of a line showing a TCP listener or an unconnected UDP socket.
fn listener(line: &[u8]) -> Option<ListeningPort> {
    let columns: Vec<&[u8]> =
        line.split(u8::is_ascii_whitespace).filter(|c| !c.is_empty()).collect();
    let protocol = columns.first()?.to_ascii_lowercase();
    // TCP: local, remote, state last; UDP has no state.
    let (proto, local, remote) = if protocol.starts_with(b"tcp") {
        let [.., local, remote, state] = columns[..] else { return None };
        if !state.starts_with(b"LISTEN") {
            return None;
        }
        (Proto::Tcp, local, remote)
    } else if protocol.starts_with(b"udp") {
        let [_, .., local, remote] = columns[..] else { return None };
        (Proto::Udp, local, remote)
    } else {
        return None;
    };
    let local = endpoint::parse(local)?;
    let remote = endpoint::parse(remote)?;
    unconnected(local, remote).map(|port| ListeningPort { port, proto })
}

/// The local port of a socket bound to a non-loopback address and connected nowhere.
pub(super) fn unconnected(local: Endpoint, remote: Endpoint) -> Option<u16> {
    if local.loopback || remote.port.is_some() {
        return None;
    }
    local.port.filter(|&port| port != 0)
}

#[cfg(test)]
mod tests {
    use super::super::sort_and_dedup;
    use super::*;
    use crate::testing::shake;

    /// FreeBSD `netstat -an -p tcp` and `-p udp`, written from the samples and column rules
    /// in /work/shared/platform/freebsd.md §7 (`tcp4`/`tcp6` prefixes, `*.*` remote for
    /// listeners), with connected and loopback rows added.
    const FREEBSD: &str = "\
Active Internet connections (including servers)
Proto Recv-Q Send-Q Local Address          Foreign Address        (state)
tcp4       0      0 192.0.2.10.22          198.51.100.7.50122     ESTABLISHED
tcp4       0      0 *.22                   *.*                    LISTEN
tcp6       0      0 *.22                   *.*                    LISTEN
tcp4       0      0 127.0.0.1.25           *.*                    LISTEN
tcp6       0      0 ::1.8187               *.*                    LISTEN
tcp4       0      0 192.0.2.10.8080        *.*                    LISTEN
tcp4       0      0 192.0.2.10.51000       203.0.113.9.443        TIME_WAIT
Active Internet connections (including servers)
Proto Recv-Q Send-Q Local Address          Foreign Address        (state)
udp4       0      0 *.68                   *.*
udp6       0      0 *.546                  *.*
udp4       0      0 127.0.0.1.53           *.*
udp4       0      0 192.0.2.10.123         198.51.100.1.123
";

    /// NetBSD `netstat -an -f inet` then `-f inet6`, from the row shapes in
    /// /work/shared/platform/netbsd.md §7 (`tcp`/`tcp6`, UDP rows without a state).
    const NETBSD: &str = "\
Active Internet connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        State
tcp        0      0  *.22                   *.*                    LISTEN
tcp        0      0  127.0.0.1.631          *.*                    LISTEN
tcp        0     48  192.0.2.20.22          198.51.100.7.60000     ESTABLISHED
udp        0      0  *.514                  *.*
Active Internet6 connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp6       0      0  *.22                   *.*                    LISTEN
tcp6       0      0  *.80                   *.*                    LISTEN
udp6       0      0  ::1.53                 *.*
";

    /// OpenBSD `netstat -an -f inet` then `-f inet6`, from /work/shared/platform/openbsd.md
    /// §7.
    const OPENBSD: &str = "\
Active Internet connections (including servers)
Proto   Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp          0      0  *.22                   *.*                    LISTEN
tcp          0      0  127.0.0.1.25           *.*                    LISTEN
udp          0      0  *.68                   *.*
udp          0      0  192.0.2.30.41641       *.*
Active Internet connections (including servers)
Proto   Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp6         0      0  *.22                   *.*                    LISTEN
tcp6         0      0  fe80::1%lo0.4000       *.*                    LISTEN
";

    /// macOS `netstat -na`, from /work/shared/platform/darwin.md §7 (the rows tailscale's
    /// parser is tested with: `tcp46`, `udp46`, a `LISTEN` state), plus the UNIX-socket
    /// section that follows the internet one.
    const MACOS: &str = "\
Active Internet connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp4       0      0  *.23                   *.*                    LISTEN
tcp6       0      0  ::1.8187               *.*                    LISTEN
tcp46      0      0  *.5900                 *.*                    LISTEN
tcp4       0      0  192.168.1.5.49160      17.57.144.20.5223      ESTABLISHED
udp4       0      0  *.104                  *.*
udp46      0      0  *.146                  *.*
udp4       0      0  127.0.0.1.5353         *.*
Active LOCAL (UNIX) domain sockets
Address          Type   Recv-Q Send-Q            Inode             Conn             Refs          Nextref Addr
ffffff8012a3b000 stream      0      0                0 ffffff8012a3b0c8                0                0 /var/run/mDNSResponder
";

    fn listed(output: &str) -> Vec<String> {
        let mut ports = parse(output.as_bytes());
        sort_and_dedup(&mut ports);
        ports.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn freebsd() {
        assert_eq!(listed(FREEBSD), ["22/tcp", "68/udp", "546/udp", "8080/tcp"]);
    }

    #[test]
    fn netbsd() {
        assert_eq!(listed(NETBSD), ["22/tcp", "80/tcp", "514/udp"]);
    }

    #[test]
    fn openbsd() {
        assert_eq!(listed(OPENBSD), ["22/tcp", "68/udp", "4000/tcp", "41641/udp"]);
    }

    #[test]
    fn macos() {
        assert_eq!(listed(MACOS), ["23/tcp", "104/udp", "146/udp", "5900/tcp"]);
    }

    #[test]
    fn a_process_name_or_junk_in_a_line_does_not_confuse_the_columns() {
        let output = "tcp4 0 0 *.22 *.*\nudp4 0 0 *.68\ntcp4 0 0 *.x *.* LISTEN\n\
                      tcp LISTEN\nudp\n\u{1b}[31mtcp4 0 0 *.99 *.* LISTEN\n\
                      tcp4 0 0 *.0 *.* LISTEN\nTCP4 0 0 *.7 *.* LISTEN\r\n";
        assert_eq!(listed(output), ["7/tcp"]);
    }

    #[test]
    fn shaken_output_never_panics_and_lists_only_ports_it_shows() {
        let all = [FREEBSD, NETBSD, OPENBSD, MACOS].concat();
        shake(0x5eed_0917, 3000, all.as_bytes(), |bytes| {
            let ports = parse(bytes);
            assert!(ports.len() <= bytes.split(|&b| b == b'\n').count());
            assert!(ports.iter().all(|p| p.port != 0));
        });
    }
}
