//! illumos's `netstat -an -f inet|inet6 -P tcp|udp`: sections headed `TCP: IPv4`,
//! `TCP: IPv6`, `UDP: IPv4`, `UDP: IPv6`, each with a column header and a line of dashes,
//! then one socket a line with the local `address.port` first. A TCP listener's state is
//! `LISTEN`; an unconnected UDP socket has an empty remote column, so its state `Idle`
//! follows the local address. IPv6 tables add an `If` column last, which may be empty, so
//! the state is found by its word, not by its position.

use super::endpoint::{self, Endpoint};
use super::netstat::unconnected;
use super::{ListeningPort, Proto};

/// The listening ports `output` shows, unsorted (loopback-only ones left out). Lines outside
/// a known section, and lines that do not read as a socket, are skipped.
pub(crate) fn parse(output: &[u8]) -> Vec<ListeningPort> {
    let mut section = None;
    let mut ports = Vec::new();
    for line in output.split(|&b| b == b'\n') {
        let columns: Vec<&[u8]> =
            line.split(u8::is_ascii_whitespace).filter(|c| !c.is_empty()).collect();
        match columns[..] {
            [b"TCP:", _] => section = Some(Proto::Tcp),
            [b"UDP:", _] => section = Some(Proto::Udp),
            [first, ..] if first.ends_with(b":") => section = None,
            _ => ports.extend(section.and_then(|proto| listener(&columns, proto))),
        }
    }
    ports
}

fn listener(columns: &[&[u8]], proto: Proto) -> Option<ListeningPort> {
    let local = endpoint::parse(columns.first()?)?;
    let remote = match proto {
        Proto::Tcp if columns.contains(&&b"LISTEN"[..]) => endpoint::parse(columns.get(1)?)?,
        Proto::Udp if columns.get(1) == Some(&&b"Idle"[..]) => {
            Endpoint { port: None, loopback: false }
        }
        _ => return None,
    };
    unconnected(local, remote).map(|port| ListeningPort { port, proto })
}

#[cfg(test)]
mod tests {
    use super::super::sort_and_dedup;
    use super::*;
    use crate::testing::shake;

    /// The four runs concatenated, written from the samples and rules in
    /// /work/shared/platform/illumos.md §7 (section headers, dashes, `LISTEN`, UDP's empty
    /// remote column and `Idle`/`Unbound` states), with the IPv6 tables' `If` column as
    /// Solaris-derived netstat prints it, and connected and loopback rows added.
    const OUTPUT: &str = "
TCP: IPv4
   Local Address        Remote Address    Swind Send-Q Rwind Recv-Q    State
-------------------- -------------------- ----- ------ ----- ------ -----------
      *.22                 *.*                0      0 128000      0 LISTEN
127.0.0.1.8081             *.*                0      0 128000      0 LISTEN
192.168.1.10.22      192.168.1.2.51000    64128      0 128872      0 ESTABLISHED
192.168.1.10.9000          *.*                0      0 128000      0 LISTEN

TCP: IPv6
   Local Address                     Remote Address                 Swind Send-Q Rwind Recv-Q   State      If
--------------------------------- --------------------------------- ----- ------ ----- ------ ----------- -----
      *.22                              *.*                             0      0 128000      0 LISTEN
      ::1.5999                          *.*                             0      0 128000      0 LISTEN
      *.443                             *.*                             0      0 128000      0 LISTEN      e1000g0

UDP: IPv4
   Local Address        Remote Address      State
-------------------- -------------------- ----------
      *.68                                  Idle
      *.*                                   Unbound
127.0.0.1.53                                Idle
192.168.1.10.4500    198.51.100.3.4500      Connected

UDP: IPv6
   Local Address                     Remote Address                   State      If
--------------------------------- --------------------------------- ---------- -----
      *.546                                                         Idle
      *.*                                                           Unbound
";

    fn listed(output: &str) -> Vec<String> {
        let mut ports = parse(output.as_bytes());
        sort_and_dedup(&mut ports);
        ports.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_every_section() {
        assert_eq!(listed(OUTPUT), ["22/tcp", "68/udp", "443/tcp", "546/udp", "9000/tcp"]);
    }

    #[test]
    fn rows_before_any_section_or_in_an_unknown_one_count_for_nothing() {
        let output = "      *.22   *.*   0 0 128000 0 LISTEN\n\
                      SCTP:\n      *.99   *.*   0 0 128000 0 LISTEN\n\
                      TCP: IPv4\n      *.7   *.*   0 0 128000 0 LISTEN\n";
        assert_eq!(listed(output), ["7/tcp"]);
    }

    #[test]
    fn shaken_output_never_panics() {
        shake(0x111_0505, 3000, OUTPUT.as_bytes(), |bytes| {
            let ports = parse(bytes);
            assert!(ports.len() <= bytes.split(|&b| b == b'\n').count());
            assert!(ports.iter().all(|p| p.port != 0));
        });
    }
}
