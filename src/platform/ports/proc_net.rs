//! Linux's `/proc/net/{tcp,tcp6,udp,udp6}`: a header line, then one socket a line,
//! `sl local_address rem_address st …` with addresses as `HEXADDR:HEXPORT`. The address is
//! the kernel's in-memory bytes printed as native-endian 32-bit words (one for IPv4, four for
//! IPv6), so it is read back with this host's byte order: the file and this code always run
//! on the same machine.

use super::{ListeningPort, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP's `st` column for `LISTEN`.
const TCP_LISTEN: &[u8] = b"0A";

/// The files to read, and the protocol of each.
pub(crate) const FILES: [(&str, Proto); 4] =
    [("tcp", Proto::Tcp), ("tcp6", Proto::Tcp), ("udp", Proto::Udp), ("udp6", Proto::Udp)];

/// The listening ports one file shows (loopback-only ones left out), unsorted. Lines that do
/// not read as a socket are skipped.
pub(crate) fn parse(contents: &[u8], proto: Proto) -> Vec<ListeningPort> {
    contents.split(|&b| b == b'\n').skip(1).filter_map(|line| listener(line, proto)).collect()
}

/// A TCP socket in `LISTEN`, or a UDP socket with no remote end, on a non-loopback address.
fn listener(line: &[u8], proto: Proto) -> Option<ListeningPort> {
    let mut columns = line.split(u8::is_ascii_whitespace).filter(|c| !c.is_empty()).skip(1);
    let (local, remote, state) = (columns.next()?, columns.next()?, columns.next()?);
    let (address, port) = socket_address(local)?;
    let (_, remote_port) = socket_address(remote)?;
    let listening = match proto {
        Proto::Tcp => state == TCP_LISTEN,
        Proto::Udp => remote_port == 0,
    };
    if !listening || port == 0 || is_loopback(address) {
        return None;
    }
    Some(ListeningPort { port, proto })
}

/// `0100007F:0016` → (127.0.0.1, 22) on a little-endian host.
fn socket_address(column: &[u8]) -> Option<(IpAddr, u16)> {
    let column = std::str::from_utf8(column).ok()?;
    let (address, port) = column.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok().filter(|_| port.len() == 4)?;
    let address = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (chunk, out) in address.as_bytes().chunks(8).zip(bytes.chunks_mut(4)) {
                out.copy_from_slice(&word(std::str::from_utf8(chunk).ok()?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((address, port))
}

/// Eight hex digits of a word the kernel printed from memory, as those memory bytes.
fn word(hex: &str) -> Option<[u8; 4]> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

fn is_loopback(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sort_and_dedup;
    use super::*;
    use crate::testing::shake;

    /// Written in the layout of a little-endian Linux 6.x host's file (the header and column
    /// rules of /work/shared/platform/linux.md §7, addresses encoded by hand): sshd on 0.0.0.0:22, a resolver on 127.0.0.53:53, a listener on 192.168.1.5:8080, an
    /// established connection, and a `CLOSE` socket.
    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20519 1 0000000000000000 100 0 0 10 0
   1: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 18843 1 0000000000000000 100 0 0 10 5
   2: 0501A8C0:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 91123 1 0000000000000000 100 0 0 10 0
   3: 0501A8C0:0016 0A01A8C0:D2F0 01 00000000:00000000 02:0004F5C2 00000000     0        0 93317 4 0000000000000000 20 4 31 10 -1
   4: 0501A8C0:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 93400 1 0000000000000000 100 0 0 10 0
";

    /// The same host's `tcp6`: sshd on [::]:22, a listener on [::1]:631, one on
    /// [::ffff:127.0.0.1]:25 and one on [2001:db8::5]:443.
    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20530 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21000 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21001 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000005000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21002 1 0000000000000000 100 0 0 10 0
";

    /// The same host's `udp`: a DHCP client on 0.0.0.0:68, the resolver on 127.0.0.53:53,
    /// and a connected socket.
    const UDP: &str = "\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  120: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17001 2 0000000000000000 0
  200: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 18842 2 0000000000000000 0
  300: 0501A8C0:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 93500 2 0000000000000000 0
";

    fn listed(files: &[(&str, Proto)]) -> Vec<String> {
        let mut ports: Vec<ListeningPort> =
            files.iter().flat_map(|(contents, proto)| parse(contents.as_bytes(), *proto)).collect();
        sort_and_dedup(&mut ports);
        ports.iter().map(ToString::to_string).collect()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn reads_listeners_and_leaves_out_loopback_and_connected_sockets() {
        let files = [(TCP, Proto::Tcp), (TCP6, Proto::Tcp), (UDP, Proto::Udp)];
        assert_eq!(listed(&files), ["22/tcp", "68/udp", "443/tcp", "8080/tcp"]);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn reads_addresses_in_the_hosts_byte_order() {
        let read = |column: &str| socket_address(column.as_bytes());
        assert_eq!(read("0100007F:0016"), Some(("127.0.0.1".parse().unwrap(), 22)));
        assert_eq!(
            read("B80D0120000000000000000005000000:01BB"),
            Some(("2001:db8::5".parse().unwrap(), 443))
        );
        for bad in
            ["", "0100007F", "0100007F:16", "0100007F:0016x", "010007F:0016", "0100007G:0016"]
        {
            assert_eq!(read(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn shaken_files_never_panic() {
        for (contents, proto) in [(TCP, Proto::Tcp), (TCP6, Proto::Tcp), (UDP, Proto::Udp)] {
            shake(0x0070_c0de, 2000, contents.as_bytes(), |bytes| {
                let ports = parse(bytes, proto);
                assert!(ports.len() <= bytes.split(|&b| b == b'\n').count());
                assert!(ports.iter().all(|p| p.port != 0 && p.proto == proto));
            });
        }
    }
}
