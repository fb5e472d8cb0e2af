use super::message::record_type::{self, A, AAAA, PTR};
use super::message::tests::query_bytes;
use super::message::RecordData;
use super::zone::{Resolution, Zone};
use super::*;
use crate::control::tailcfg::{DnsConfig, DnsRecord, Resolver};
use crate::keys::PrivateKey;
use crate::netmap::{Peer, SelfNode};
use crate::resolver::message::{parse_response, Question, RecordType, Reply as ParsedReply};
use crate::resolver::name::Name;
use crate::testing::shake;
use std::net::IpAddr;

const CLIENT: &str = "100.64.0.1:40000";

fn client() -> SocketAddr {
    CLIENT.parse().unwrap()
}

fn resolver(addr: &str) -> Resolver {
    Resolver { addr: addr.into(), ..Resolver::default() }
}

fn me() -> SelfNode {
    SelfNode {
        dns_name: "me.tail.ts.net.".into(),
        addresses: vec!["100.64.0.1/32".parse().unwrap(), "fd7a:115c:a1e0::1/128".parse().unwrap()],
        ..SelfNode::new(PrivateKey([1; 32]))
    }
}

fn peer() -> Peer {
    Peer {
        dns_name: "peer.tail.ts.net.".into(),
        addresses: vec!["100.64.0.2/32".parse().unwrap(), "fd7a:115c:a1e0::2/128".parse().unwrap()],
        ..Peer::new(PrivateKey([2; 32]).public_key())
    }
}

fn dns() -> DnsConfig {
    let mut routes = std::collections::BTreeMap::new();
    routes.insert("corp.example".to_string(), Some(vec![resolver("192.0.2.53")]));
    routes.insert("eng.corp.example".to_string(), Some(vec![resolver("[2001:db8::53]:5353")]));
    routes.insert("local.example".to_string(), None);
    DnsConfig {
        resolvers: vec![resolver("198.51.100.1"), resolver("https://dns.example/dns-query")],
        routes,
        proxied: true,
        extra_records: vec![
            DnsRecord {
                name: "db.tail.ts.net".into(),
                value: "100.64.9.9".into(),
                ..Default::default()
            },
            DnsRecord {
                name: "svc.other.example.".into(),
                record_type: "AAAA".into(),
                value: "fd7a:115c:a1e0::99".into(),
            },
            DnsRecord {
                name: "txt.tail.ts.net".into(),
                record_type: "TXT".into(),
                value: "hello".into(),
            },
        ],
        ..DnsConfig::default()
    }
}

fn zone() -> Zone {
    Zone::new(&me(), [peer()].iter(), &dns(), &[])
}

fn magic_dns() -> MagicDns {
    let mut magic = MagicDns::new(&[0x5e; 32]);
    magic.set_zone(zone());
    magic
}

/// The addresses a local answer for `name` of `record_type` carries, read back with the
/// client resolver's parser.
fn ask(magic: &mut MagicDns, name: &str, record_type: RecordType) -> ParsedReply {
    let code = match record_type {
        RecordType::A => A,
        RecordType::Aaaa => AAAA,
    };
    let answer = magic.handle_query(Instant::now(), client(), &query_bytes(name, code)).unwrap();
    let question = Question { name: Name::from_text(name).unwrap(), record_type };
    parse_response(&answer, 0x1234, &question).unwrap()
}

fn ips(list: &[&str]) -> ParsedReply {
    ParsedReply::Addresses(list.iter().map(|ip| ip.parse().unwrap()).collect())
}

fn resolve(name: &str, record_type: u16) -> Resolution {
    zone().resolve(&message::Query::parse(&query_bytes(name, record_type)).unwrap())
}

fn local(rcode: Rcode, records: Vec<RecordData>) -> Resolution {
    Resolution::Local(rcode, records)
}

fn upstreams(list: &[&str]) -> Resolution {
    Resolution::Forward(list.iter().map(|a| a.parse().unwrap()).collect())
}

#[test]
fn peers_and_own_names_are_answered_case_insensitively() {
    let mut magic = magic_dns();
    assert_eq!(ask(&mut magic, "peer.tail.ts.net", RecordType::A), ips(&["100.64.0.2"]));
    assert_eq!(ask(&mut magic, "PEER.Tail.TS.net.", RecordType::A), ips(&["100.64.0.2"]));
    assert_eq!(ask(&mut magic, "me.tail.ts.net", RecordType::A), ips(&["100.64.0.1"]));
    // tailscaled's rule: IPv6 of a node with IPv4 only with control's magicdns-aaaa.
    assert_eq!(ask(&mut magic, "peer.tail.ts.net", RecordType::Aaaa), ips(&[]));
    let aaaa_me = SelfNode { magicdns_peer_aaaa: true, ..me() };
    magic.set_zone(Zone::new(&aaaa_me, [peer()].iter(), &dns(), &[]));
    assert_eq!(ask(&mut magic, "peer.tail.ts.net", RecordType::Aaaa), ips(&["fd7a:115c:a1e0::2"]));
    assert_eq!(ask(&mut magic, "me.tail.ts.net", RecordType::Aaaa), ips(&["fd7a:115c:a1e0::1"]));
}

#[test]
fn an_ipv6_only_node_sees_only_ipv6_addresses() {
    let v6_me = SelfNode { addresses: vec!["fd7a:115c:a1e0::1/128".parse().unwrap()], ..me() };
    let zone = Zone::new(&v6_me, [peer()].iter(), &dns(), &[]);
    let query = message::Query::parse(&query_bytes("peer.tail.ts.net", AAAA)).unwrap();
    let v6: IpAddr = "fd7a:115c:a1e0::2".parse().unwrap();
    assert_eq!(zone.resolve(&query), local(Rcode::NoError, vec![RecordData::Address(v6)]));
    let query = message::Query::parse(&query_bytes("peer.tail.ts.net", A)).unwrap();
    assert_eq!(zone.resolve(&query), local(Rcode::NoError, vec![]));
}

#[test]
fn unknown_names_under_the_tailnet_are_nxdomain_and_others_are_forwarded() {
    assert_eq!(resolve("nobody.tail.ts.net", A), local(Rcode::NameError, vec![]));
    assert_eq!(resolve("deep.peer.tail.ts.net", AAAA), local(Rcode::NameError, vec![]));
    assert_eq!(resolve("x.local.example", A), local(Rcode::NameError, vec![]), "empty route");
    assert_eq!(resolve("hidden.onion", A), local(Rcode::NameError, vec![]));
    // The default route: the plain resolver only, DoH skipped.
    assert_eq!(resolve("example.com", A), upstreams(&["198.51.100.1:53"]));
    assert_eq!(resolve("ts.net", A), upstreams(&["198.51.100.1:53"]));
}

#[test]
fn without_tailnet_resolvers_other_names_go_to_the_hosts_nameservers() {
    let host: Vec<SocketAddr> = vec!["127.0.0.53:53".parse().unwrap()];
    let no_resolvers = DnsConfig { resolvers: vec![], ..dns() };
    let zone = Zone::new(&me(), [peer()].iter(), &no_resolvers, &host);
    let query = message::Query::parse(&query_bytes("example.com", A)).unwrap();
    assert_eq!(zone.resolve(&query), upstreams(&["127.0.0.53:53"]));
    let query = message::Query::parse(&query_bytes("www.corp.example", A)).unwrap();
    assert_eq!(zone.resolve(&query), upstreams(&["192.0.2.53:53"]), "routes still win");
    // The tailnet's resolvers, when it has some, win over the host's.
    let zone = Zone::new(&me(), [peer()].iter(), &dns(), &host);
    let query = message::Query::parse(&query_bytes("example.com", A)).unwrap();
    assert_eq!(zone.resolve(&query), upstreams(&["198.51.100.1:53"]));
}

#[test]
fn forwarding_picks_the_longest_route_suffix() {
    assert_eq!(resolve("www.corp.example", A), upstreams(&["192.0.2.53:53"]));
    assert_eq!(resolve("corp.example", A), upstreams(&["192.0.2.53:53"]));
    assert_eq!(resolve("git.eng.corp.example", A), upstreams(&["[2001:db8::53]:5353"]));
    assert_eq!(resolve("xcorp.example", A), upstreams(&["198.51.100.1:53"]));
}

#[test]
fn names_that_exist_answer_other_types_with_no_records() {
    assert_eq!(resolve("peer.tail.ts.net", 16), local(Rcode::NoError, vec![]), "TXT");
    assert_eq!(resolve("peer.tail.ts.net", record_type::SOA), local(Rcode::NotImplemented, vec![]));
    let any = resolve("peer.tail.ts.net", record_type::ANY);
    assert_eq!(any, local(Rcode::NoError, vec![RecordData::Address([100, 64, 0, 2].into())]));
}

#[test]
fn extra_records_are_answered_and_cover_their_names() {
    let record = |ip: &str| vec![RecordData::Address(ip.parse().unwrap())];
    assert_eq!(resolve("DB.tail.ts.net", A), local(Rcode::NoError, record("100.64.9.9")));
    assert_eq!(
        resolve("svc.other.example", AAAA),
        local(Rcode::NoError, record("fd7a:115c:a1e0::99"))
    );
    // A record name outside every route makes its subtree ours.
    assert_eq!(resolve("x.svc.other.example", A), local(Rcode::NameError, vec![]));
    assert_eq!(resolve("other.example", A), upstreams(&["198.51.100.1:53"]));
    // Types other than A/AAAA are not served.
    assert_eq!(resolve("txt.tail.ts.net", A), local(Rcode::NameError, vec![]));
}

#[test]
fn tailnet_addresses_have_pointer_records() {
    let pointer = |name: &str| vec![RecordData::Pointer(Name::from_text(name).unwrap())];
    assert_eq!(
        resolve("2.0.64.100.in-addr.arpa", PTR),
        local(Rcode::NoError, pointer("peer.tail.ts.net"))
    );
    let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa";
    assert_eq!(resolve(v6, PTR), local(Rcode::NoError, pointer("peer.tail.ts.net")));
    assert_eq!(
        resolve("9.9.64.100.in-addr.arpa", PTR),
        local(Rcode::NoError, pointer("db.tail.ts.net"))
    );
    assert_eq!(
        resolve("100.100.100.100.in-addr.arpa", PTR),
        local(Rcode::NoError, pointer("magicdns.localhost-tailscale-daemon"))
    );
    assert_eq!(resolve("7.7.64.100.in-addr.arpa", PTR), local(Rcode::NameError, vec![]));
    assert_eq!(resolve("1.2.0.192.in-addr.arpa", PTR), upstreams(&["198.51.100.1:53"]));
    assert_eq!(
        resolve("lb._dns-sd._udp.0.64.100.in-addr.arpa", PTR),
        upstreams(&["198.51.100.1:53"])
    );
}

/// Forwards a query for `name` from a socket of its own and returns the ID, destination and
/// datagram that went upstream, and the path its answer must come by.
fn forwarded(magic: &mut MagicDns, now: Instant, name: &str) -> (u16, SocketAddr, Vec<u8>, Path) {
    let query = query_bytes(name, A);
    assert_eq!(magic.handle_query(now, client(), &query), None);
    let transmit = magic.poll_transmit().unwrap();
    assert_eq!(transmit.datagram[2..], query[2..], "forwarded as asked but for the ID");
    let path = Path::Socket(transmit.ticket);
    magic.record_path(&transmit, path);
    let id = message::message_id(&transmit.datagram).unwrap();
    (id, transmit.to, transmit.datagram, path)
}

/// What an upstream answers to `datagram`: 192.0.2.80 for its name.
fn upstream_answer(datagram: &[u8]) -> Vec<u8> {
    let query = message::Query::parse(datagram).unwrap();
    query.answer(Rcode::NoError, &[RecordData::Address([192, 0, 2, 80].into())], 300)
}

#[test]
fn upstream_answers_go_back_under_the_clients_id() {
    let mut magic = magic_dns();
    let (_, to, datagram, path) = forwarded(&mut magic, Instant::now(), "www.example.com");
    assert_eq!(to, "198.51.100.1:53".parse().unwrap());
    let reply = magic.handle_upstream(path, to, &upstream_answer(&datagram)).unwrap();
    assert_eq!(reply.client, client());
    let question =
        Question { name: Name::from_text("www.example.com").unwrap(), record_type: RecordType::A };
    assert_eq!(parse_response(&reply.message, 0x1234, &question), Ok(ips(&["192.0.2.80"])));
    // Answered once: a repeat finds nothing waiting.
    assert_eq!(magic.handle_upstream(path, to, &upstream_answer(&datagram)), None);
    assert_eq!(magic.poll_timeout(), None);
}

#[test]
fn upstream_answers_that_do_not_match_are_dropped() {
    let mut magic = magic_dns();
    let (id, to, datagram, path) = forwarded(&mut magic, Instant::now(), "www.example.com");
    let good = upstream_answer(&datagram);
    let mut wrong_id = good.clone();
    message::set_message_id(&mut wrong_id, id.wrapping_add(1));
    assert_eq!(magic.handle_upstream(path, to, &wrong_id), None);
    let stranger = "192.0.2.66:53".parse().unwrap();
    assert_eq!(magic.handle_upstream(path, stranger, &good), None, "sender");
    let mut other_question = upstream_answer(&query_bytes("evil.example.com", A));
    message::set_message_id(&mut other_question, id);
    assert_eq!(magic.handle_upstream(path, to, &other_question), None);
    assert_eq!(magic.handle_upstream(path, to, &good[..5]), None);
    assert_eq!(magic.counters().foreign_answers, 4);
    assert!(magic.handle_upstream(path, to, &good).is_some(), "the real answer gets through");
}

#[test]
fn unanswered_queries_time_out_with_servfail() {
    let mut magic = magic_dns();
    let start = Instant::now();
    forwarded(&mut magic, start, "www.example.com");
    assert_eq!(magic.poll_timeout(), Some(start + FORWARD_TIMEOUT));
    assert!(magic.handle_timeout(start + FORWARD_TIMEOUT - Duration::from_millis(1)).is_empty());
    let replies = magic.handle_timeout(start + FORWARD_TIMEOUT);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].client, client());
    assert_eq!(rcode_of(&replies[0].message), Some(Rcode::ServerFailure));
    assert_eq!(message::message_id(&replies[0].message), Some(0x1234));
    assert_eq!((magic.poll_timeout(), magic.counters().timed_out), (None, 1));
}

#[test]
fn waiting_queries_are_capped() {
    let mut magic = magic_dns();
    let now = Instant::now();
    let query = query_bytes("www.example.com", A);
    for _ in 0..MAX_PENDING {
        assert_eq!(magic.handle_query(now, client(), &query), None);
    }
    let refused = magic.handle_query(now, client(), &query).unwrap();
    assert_eq!(rcode_of(&refused), Some(Rcode::ServerFailure));
    assert_eq!(magic.counters().overflow, 1);
    let mut ids: Vec<u16> = std::iter::from_fn(|| magic.poll_transmit())
        .map(|transmit| message::message_id(&transmit.datagram).unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), MAX_PENDING, "every waiting query has its own upstream ID");
    // Local names are still answered while the forwarder is full.
    assert_eq!(ask(&mut magic, "peer.tail.ts.net", RecordType::A), ips(&["100.64.0.2"]));
}

#[test]
fn without_upstream_or_zone_forwarded_names_fail() {
    let mut magic = MagicDns::new(&[1; 32]);
    let answer = magic.handle_query(Instant::now(), client(), &query_bytes("example.com", A));
    assert_eq!(rcode_of(&answer.unwrap()), Some(Rcode::ServerFailure));
    assert_eq!(magic.poll_transmit(), None);
}

#[test]
fn malformed_queries_get_formerr_or_are_counted() {
    let mut magic = magic_dns();
    let query = query_bytes("peer.tail.ts.net", A);
    let answer = magic.handle_query(Instant::now(), client(), &query[..query.len() - 2]).unwrap();
    assert_eq!(rcode_of(&answer), Some(Rcode::FormatError));
    assert_eq!(magic.handle_query(Instant::now(), client(), &query[..7]), None);
    assert_eq!(magic.counters().unanswerable, 1);
}

#[test]
fn random_queries_and_upstream_datagrams_never_panic_and_stay_bounded() {
    let mut magic = magic_dns();
    let now = Instant::now();
    let upstream: SocketAddr = "198.51.100.1:53".parse().unwrap();
    let query = query_bytes("www.example.com", A);
    shake(0x7175_6164, 5000, &query, |bytes| {
        if let Some(answer) = magic.handle_query(now, client(), bytes) {
            assert!(answer.len() >= message::HEADER_LEN);
            assert_eq!(answer[..2], bytes[..2], "answers carry the query's ID");
        }
        while let Some(transmit) = magic.poll_transmit() {
            let path = Path::Socket(transmit.ticket);
            magic.record_path(&transmit, path);
            let _ = magic.handle_upstream(path, upstream, &transmit.datagram);
            let _ = magic.handle_upstream(path, upstream, bytes);
        }
        assert!(magic.pending.len() <= MAX_PENDING);
    });
    magic.handle_timeout(now + FORWARD_TIMEOUT);
    assert!(magic.pending.is_empty());
}

#[test]
fn an_answer_is_believed_only_by_the_path_its_query_took() {
    let mut magic = magic_dns();
    let now = Instant::now();
    let query = query_bytes("www.example.com", A);
    assert_eq!(magic.handle_query(now, client(), &query), None);
    let through_tunnel = magic.poll_transmit().unwrap();
    magic.record_path(&through_tunnel, Path::Tunnel);
    assert_eq!(magic.handle_query(now, client(), &query_bytes("www.example.org", A)), None);
    let by_socket = magic.poll_transmit().unwrap();
    magic.record_path(&by_socket, Path::Socket(by_socket.ticket));
    let (to, tunnel_answer) = (through_tunnel.to, upstream_answer(&through_tunnel.datagram));
    let socket_answer = upstream_answer(&by_socket.datagram);
    assert!(magic.waits_in_tunnel(to));
    // Spoofed off the tunnel, on either query's socket, the tunnel query's answer is dropped.
    for path in [Path::Socket(through_tunnel.ticket), Path::Socket(by_socket.ticket)] {
        assert_eq!(magic.handle_upstream(path, to, &tunnel_answer), None);
    }
    // The socket query's answer through the tunnel, or on another query's socket, too.
    for path in [Path::Tunnel, Path::Socket(through_tunnel.ticket)] {
        assert_eq!(magic.handle_upstream(path, by_socket.to, &socket_answer), None);
    }
    assert_eq!(magic.counters().foreign_answers, 4);
    assert!(magic.handle_upstream(Path::Tunnel, to, &tunnel_answer).is_some());
    let path = Path::Socket(by_socket.ticket);
    assert!(magic.handle_upstream(path, by_socket.to, &socket_answer).is_some());
}

#[test]
fn a_query_whose_path_was_never_recorded_takes_no_answer() {
    let mut magic = magic_dns();
    assert_eq!(magic.handle_query(Instant::now(), client(), &query_bytes("a.example", A)), None);
    let transmit = magic.poll_transmit().unwrap();
    let answer = upstream_answer(&transmit.datagram);
    for path in [Path::Tunnel, Path::Socket(transmit.ticket)] {
        assert_eq!(magic.handle_upstream(path, transmit.to, &answer), None);
    }
    assert!(!magic.waits_in_tunnel(transmit.to));
}

#[test]
fn queries_sent_from_their_own_socket_are_reported_when_they_end() {
    let mut magic = magic_dns();
    let start = Instant::now();
    let (_, to, datagram, path) = forwarded(&mut magic, start, "answered.example.com");
    let (_, _, _, expiring) = forwarded(&mut magic, start, "slow.example.com");
    assert_eq!(magic.handle_query(start, client(), &query_bytes("t.example.com", A)), None);
    let tunnel = magic.poll_transmit().unwrap();
    magic.record_path(&tunnel, Path::Tunnel);
    assert_eq!(magic.poll_finished(), None, "all three wait");
    magic.handle_upstream(path, to, &upstream_answer(&datagram)).unwrap();
    assert_eq!(magic.poll_finished().map(Path::Socket), Some(path));
    assert_eq!(magic.handle_timeout(start + FORWARD_TIMEOUT).len(), 2);
    assert_eq!(magic.poll_finished().map(Path::Socket), Some(expiring));
    assert_eq!(magic.poll_finished(), None, "the tunnel query had no socket");
}

#[test]
fn a_question_that_comes_back_while_the_host_is_asked_fails_instead_of_looping() {
    let host: Vec<SocketAddr> = vec!["127.0.0.53:53".parse().unwrap()];
    let mut magic = MagicDns::new(&[3; 32]);
    magic.set_host_nameservers(host.clone());
    let no_resolvers = DnsConfig { resolvers: vec![], ..dns() };
    magic.set_zone(Zone::new(&me(), [peer()].iter(), &no_resolvers, &host));
    let now = Instant::now();
    let query = query_bytes("www.example.com", A);
    assert_eq!(magic.handle_query(now, client(), &query), None);
    let asked = magic.poll_transmit().unwrap();
    assert_eq!(asked.to, host[0]);
    // The host's resolver (systemd-resolved pointed at quad-100) asks the same back.
    let resolved: SocketAddr = "100.64.0.1:51000".parse().unwrap();
    let mut looped = query_bytes("WWW.example.com", A);
    looped[..2].copy_from_slice(&[0xab, 0xcd]);
    let answer = magic.handle_query(now, resolved, &looped).unwrap();
    assert_eq!(rcode_of(&answer), Some(Rcode::ServerFailure));
    assert_eq!(answer[..2], [0xab, 0xcd]);
    assert_eq!((magic.poll_transmit(), magic.counters().loops), (None, 1));
    // Another question, or another type, still goes to the host.
    assert_eq!(magic.handle_query(now, resolved, &query_bytes("www.example.com", AAAA)), None);
    assert_eq!(magic.handle_query(now, resolved, &query_bytes("ftp.example.com", A)), None);
    // A split-DNS route's resolver never asks us back: the same question goes out again.
    let split = query_bytes("www.corp.example", A);
    assert_eq!(magic.handle_query(now, client(), &split), None);
    assert_eq!(magic.handle_query(now, resolved, &split), None);
    assert_eq!(magic.counters().loops, 1);
}

#[test]
fn the_service_addresses_are_never_an_upstream() {
    let mut own = dns();
    own.resolvers = vec![resolver("100.100.100.100"), resolver("[fd7a:115c:a1e0::53]:53")];
    own.resolvers.push(resolver("198.51.100.1"));
    let route = vec![resolver("100.100.100.100:53"), resolver("192.0.2.53")];
    own.routes.insert("corp.example".to_string(), Some(route));
    let zone = Zone::new(&me(), [peer()].iter(), &own, &[]);
    let forward = |name: &str| zone.resolve(&message::Query::parse(&query_bytes(name, A)).unwrap());
    assert_eq!(forward("example.com"), upstreams(&["198.51.100.1:53"]));
    assert_eq!(forward("www.corp.example"), upstreams(&["192.0.2.53:53"]));
    // A tailnet whose only resolver is quad-100 itself falls back to the host's.
    own.resolvers = vec![resolver("100.100.100.100")];
    let host: Vec<SocketAddr> = vec!["127.0.0.53:53".parse().unwrap()];
    let zone = Zone::new(&me(), [peer()].iter(), &own, &host);
    let query = message::Query::parse(&query_bytes("example.com", A)).unwrap();
    assert_eq!(zone.resolve(&query), upstreams(&["127.0.0.53:53"]));
}
