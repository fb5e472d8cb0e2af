//! Entry points for the `cargo fuzz` targets in `fuzz/`: one function per parser of bytes
//! from outside, each feeding the fuzzer's input to the private parser and asserting what
//! must hold beyond "no panic" (round trips, bounded outputs, refused input changing nothing).
//!
//! Compiled only with the `fuzzing` feature, so the library's internals stay private and the
//! normal build does not carry this code. `docs/security.md` lists the targets.

use crate::control::client::ping_request::{self, assert_task_invariants};
use crate::control::http2::frame::{self, DEFAULT_MAX_FRAME_SIZE};
use crate::control::http2::hpack::Decoder;
use crate::control::http2::Connection;
use crate::control::map_state::MapState;
use crate::control::mapstream::FrameReader;
use crate::control::noise::{self, ClientHandshake, ResponseReader, UpgradeResponseReader};
use crate::control::tailcfg::{FilterRule, MapResponse};
use crate::filter::Filter;
use crate::http1::{self, Parse, MAX_BODY};
use crate::keys::PrivateKey;
use crate::packet::gso::{self, VirtioHdr, GSO_NONE, VIRTIO_NET_HDR_LEN};
use crate::packet::transport::TransportView;
use crate::packet::tsmp::{self, TsmpPacket};
use crate::packet::{checksum, gro::Coalescer, icmp, IpHeader};
use crate::prefix::Prefix;
use crate::resolver::message::{self, Question, RecordType, Reply};
use crate::resolver::name::Name;
use crate::resolver::{hosts, resolv_conf};
use crate::wg::demux::{route_datagram, Destination};
use crate::wg::gate::{
    HandshakeGate, COOKIE_REPLY_LEN, HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES,
};
use crate::wg::handshake_limiter::HandshakeSource;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Our WireGuard/machine key in every target: fixed, so a crash reproduces from its input.
const OWN_KEY: PrivateKey = PrivateKey([7; 32]);
/// A control-server clock reading for map responses (2026-08-01).
const MAP_NOW_SECS: u64 = 1_785_578_400;

/// WireGuard datagram demux, both with a quiet gate and with one under load (it has just
/// admitted a second's worth of the fuzzer's own bytes, where they carry a valid mac1).
pub fn wg_demux(data: &[u8]) {
    let now = Instant::now();
    let from = HandshakeSource::Address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let mut gate = HandshakeGate::new(&OWN_KEY);
    for _ in 0..=HANDSHAKE_MESSAGES_PER_SECOND_BEFORE_COOKIES {
        if let Destination::CookieReply(reply) =
            route_datagram(&OWN_KEY, &mut gate, now, from, data)
        {
            assert_eq!(reply.len(), COOKIE_REPLY_LEN);
        }
    }
}

/// IP header, transport view and ICMP echo reply parsing: what they report lies inside the
/// bytes.
pub fn packet_views(data: &[u8]) {
    if let Ok(header) = IpHeader::parse(data) {
        assert!(header.payload_offset <= header.total_len && header.total_len <= data.len());
    }
    if let Ok(view) = TransportView::parse(data) {
        assert!(view.ip.total_len <= data.len());
    }
    let _ = icmp::parse_echo_reply(data);
    if let Ok(message) = TsmpPacket::parse(data) {
        assert!(tsmp::carries_tsmp(data));
        // A pong built from whatever was read is itself a readable pong.
        if let Some(pong) = tsmp::pong_for(&message, 0) {
            assert!(TsmpPacket::parse(&pong).is_ok());
        }
    }
}

/// Allow-all, and SSH from one peer only: the rule sets control sends most.
const FILTER_RULES: &str = r#"[
    {"SrcIPs":["*"],"DstPorts":[{"IP":"100.64.0.1","Ports":{"First":80,"Last":443}}]},
    {"SrcIPs":["100.64.0.2","fd7a:115c:a1e0::2"],"DstPorts":[{"IP":"*","Ports":{"First":22,"Last":22}}],"IPProto":[6,17,1,58]}
]"#;

/// The packet filter: the fuzzer's bytes as our outbound packet, then as inbound packets
/// (alone, and as the answer to themselves, also from a jailed peer), so both the rule match
/// and the flow table run.
pub fn filter(data: &[u8]) {
    let rules: Vec<FilterRule> = serde_json::from_str(FILTER_RULES).expect("rules parse");
    let local: Vec<Prefix> = ["100.64.0.1", "fd7a:115c:a1e0::1"]
        .iter()
        .map(|a| Prefix::host(a.parse().expect("address")))
        .collect();
    let mut filter = Filter::new(Some(&rules), &local);
    let now = Instant::now();
    let _ = filter.check_inbound(now, data);
    filter.note_outbound(now, data);
    let _ = filter.check_inbound(now, data);
    let _ = filter.check_inbound_shielded(now, data);
}

/// GSO: `data` is a `virtio_net_hdr` and what the TUN read with it. Every segment must fit
/// the output buffer and carry `gso_size` payload bytes at most, the IP length fields must
/// match the segment, and the payload must come out whole and in order.
pub fn gso_split(data: &[u8]) {
    let Some(hdr) = VirtioHdr::parse(data) else {
        return;
    };
    let mut packet = data[VIRTIO_NET_HDR_LEN..].to_vec();
    let original = packet.clone();
    let mut out = vec![0u8; 65_535];
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let result = gso::split(&hdr, &mut packet, &mut out, |s| segments.push(s.to_vec()));
    if result.is_err() {
        return;
    }
    if hdr.gso_type & !gso::GSO_ECN == GSO_NONE {
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].len(), original.len());
        return;
    }
    assert!(!segments.is_empty());
    for segment in &segments {
        assert_ip_length_matches(segment);
    }
    // Every segment repeats the same headers; the original carries them once.
    let total: usize = segments.iter().map(Vec::len).sum();
    let repeats = segments.len() - 1;
    if repeats == 0 {
        assert_eq!(total, original.len());
        return;
    }
    let extra_headers = total - original.len();
    assert_eq!(extra_headers % repeats, 0);
    let headers = extra_headers / repeats;
    let payload: Vec<u8> = segments.iter().flat_map(|s| s[headers..].to_vec()).collect();
    assert_eq!(payload, original[headers..]);
    for segment in &segments {
        assert!(segment.len() - headers <= usize::from(hdr.gso_size));
    }
}

fn assert_ip_length_matches(segment: &[u8]) {
    if segment[0] >> 4 == 6 {
        assert_eq!(usize::from(u16::from_be_bytes([segment[4], segment[5]])) + 40, segment.len());
    } else {
        assert_eq!(usize::from(u16::from_be_bytes([segment[2], segment[3]])), segment.len());
        let header_len = usize::from(segment[0] & 0x0f) * 4;
        let header = &segment[..header_len];
        assert_eq!(checksum::finish(checksum::add(0, header)), 0, "IPv4 header checksum");
    }
}

/// GRO: a flow of TCP segments described by the fuzzer's bytes goes through the coalescer;
/// cutting every super-segment it writes up again (GSO) must give back exactly the packets
/// that went in, in order, and no super-segment may exceed 64 KiB.
pub fn gro_round_trip(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let v6 = first & 1 == 1;
    let mut seq = u32::from(first).wrapping_mul(0x0101_0101);
    let mut ip_id = u16::from(first);
    let mut sent = Vec::new();
    for step in rest.chunks(3) {
        let [control, len_hi, len_lo] = *step else {
            break;
        };
        let payload_len = usize::from(u16::from_be_bytes([len_hi & 0x07, len_lo]));
        let packet = flow_segment(v6, control, seq, ip_id, payload_len);
        // Mostly in order; a control bit sends a gap or a repeat.
        seq = match control & 0x30 {
            0x10 => seq.wrapping_add(1),
            0x20 => seq,
            _ => seq.wrapping_add(payload_len as u32),
        };
        ip_id = ip_id.wrapping_add(1 + u16::from(control & 0x40 != 0));
        sent.push(packet);
    }
    let mut coalescer = Coalescer::new();
    let mut written: Vec<([u8; VIRTIO_NET_HDR_LEN], Vec<u8>)> = Vec::new();
    for packet in &sent {
        coalescer.push(packet, |hdr, p| written.push((*hdr, p.to_vec())));
    }
    coalescer.flush(|hdr, p| written.push((*hdr, p.to_vec())));
    let mut received = Vec::new();
    let mut out = vec![0u8; 65_535];
    for (hdr, mut packet) in written {
        assert!(packet.len() <= 65_535);
        let hdr = VirtioHdr::parse(&hdr).expect("ten bytes");
        gso::split(&hdr, &mut packet, &mut out, |s| received.push(s.to_vec()))
            .expect("our own super-segment splits");
    }
    assert_eq!(received, sent);
}

/// One TCP segment of a fixed flow with a valid checksum, as it leaves the tunnel. `control`
/// picks the flags (mostly plain ACK, sometimes PSH, FIN or SYN).
fn flow_segment(v6: bool, control: u8, seq: u32, ip_id: u16, payload_len: usize) -> Vec<u8> {
    const TCP: u8 = 6;
    let ip_len = if v6 { 40 } else { 20 };
    let tcp_len = 20;
    let total = ip_len + tcp_len + payload_len;
    let mut p = vec![0u8; total];
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        let (src, dst) =
            ("fd7a:115c:a1e0::1".parse().unwrap(), "fd7a:115c:a1e0::2".parse().unwrap());
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
        p[6] = TCP;
        p[7] = 64;
        p[8..24].copy_from_slice(&ip_octets(src));
        p[24..40].copy_from_slice(&ip_octets(dst));
        (src, dst)
    } else {
        let (src, dst) = ("100.64.0.1".parse().unwrap(), "100.64.0.2".parse().unwrap());
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&ip_id.to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = TCP;
        p[12..16].copy_from_slice(&ip_octets(src));
        p[16..20].copy_from_slice(&ip_octets(dst));
        let sum = checksum::finish(checksum::add(0, &p[..20]));
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        (src, dst)
    };
    let t = ip_len;
    p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
    p[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
    p[t + 8..t + 12].copy_from_slice(&77u32.to_be_bytes());
    p[t + 12] = (tcp_len as u8 / 4) << 4;
    p[t + 13] = [0x10, 0x10, 0x10, 0x18, 0x11, 0x02, 0x10, 0x18][usize::from(control & 0x07)];
    p[t + 14..t + 16].copy_from_slice(&512u16.to_be_bytes());
    for (i, byte) in p[t + tcp_len..].iter_mut().enumerate() {
        *byte = (i as u8) ^ control;
    }
    let sum = checksum::pseudo_header(src, dst, TCP, (total - ip_len) as u32);
    let sum = checksum::finish(checksum::add(sum, &p[t..]));
    p[t + 16..t + 18].copy_from_slice(&sum.to_be_bytes());
    p
}

fn ip_octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The Noise handshake response from the control server, split at the fuzzer's chosen point.
pub fn noise_response(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let control_key = PrivateKey([8; 32]).public_key();
    let (handshake, _) = ClientHandshake::new(&OWN_KEY, &control_key, 1, [3; 32]).expect("keys");
    let cut = usize::from(cut).min(stream.len());
    let mut reader = ResponseReader::new();
    let complete = match reader.feed(&stream[..cut]) {
        Ok(None) => reader.feed(&stream[cut..]),
        other => other,
    };
    if let Ok(Some(complete)) = complete {
        if let Ok(mut transport) = handshake.handle_response(&complete.message) {
            let _ = transport.open(&complete.trailing, &mut Vec::new());
        }
    }
}

/// Noise transport records. The fuzzer's bytes are sealed and must open to themselves
/// (split anywhere), and, fed as a received stream in chunks, may only ever yield plaintext
/// shorter than what came in.
pub fn noise_records(data: &[u8]) {
    let key = [5u8; 32];
    let (mut sender, mut receiver) =
        (noise::fuzzing_transport(&key), noise::fuzzing_transport(&key));
    let mut sealed = Vec::new();
    sender.seal(data, &mut sealed).expect("seal");
    let mut opened = Vec::new();
    let cut = sealed.len() / 3;
    receiver.open(&sealed[..cut], &mut opened).expect("open first part");
    receiver.open(&sealed[cut..], &mut opened).expect("open rest");
    assert_eq!(opened, data);

    let mut stranger = noise::fuzzing_transport(&key);
    let chunk = 1 + data.first().map_or(0, |&b| usize::from(b)) * 16;
    let mut plaintext = Vec::new();
    for piece in data.chunks(chunk) {
        if stranger.open(piece, &mut plaintext).is_err() {
            break;
        }
    }
    assert!(plaintext.len() <= data.len());
}

/// The HTTP/1.1 `101 Switching Protocols` head that starts a control connection, fed in two
/// pieces: whatever followed the head in the bytes fed so far comes back untouched.
pub fn noise_upgrade(data: &[u8]) {
    let (first, second) = data.split_at(data.len() / 2);
    let mut reader = UpgradeResponseReader::new();
    let (fed, outcome) = match reader.feed(first) {
        Ok(None) => (data, reader.feed(second)),
        other => (first, other),
    };
    if let Ok(Some(rest)) = outcome {
        assert!(fed.ends_with(&rest));
    }
}

/// HTTP/2 frames: the frame parser on its own (each frame inside the bytes), then a client
/// connection with one request open, fed the bytes in two pieces.
pub fn http2_frames(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((_, used))) = frame::parse(rest, DEFAULT_MAX_FRAME_SIZE) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
    let mut client = Connection::new();
    let stream = client.send_request("GET", "/machine/map", &[], None).expect("request");
    let (first, second) = data.split_at(data.len() / 2);
    let _ = client.handle_input(first).and_then(|_| client.handle_input(second));
    client.consume(stream, data.len());
    while client.poll_event().is_some() {}
    client.poll_output(&mut Vec::new());
}

/// Limits the HTTP/2 client decodes header blocks with.
const HPACK_TABLE_SIZE: usize = 4096;
const HPACK_MAX_LIST: usize = 65_536;

/// HPACK header blocks, one decoder across the blocks the bytes split into (at 0xff bytes),
/// so the dynamic table carries state from block to block.
pub fn hpack(data: &[u8]) {
    let mut decoder = Decoder::new(HPACK_TABLE_SIZE, HPACK_MAX_LIST);
    for block in data.split(|&b| b == 0xff) {
        if let Ok(fields) = decoder.decode(block) {
            let size: usize = fields.iter().map(|f| f.name.len() + f.value.len() + 32).sum();
            assert!(size <= HPACK_MAX_LIST);
        }
    }
}

/// Most a map-stream frame may be in this target (the real limit is megabytes).
const MAP_FRAME_LIMIT: usize = 4096;

/// The map stream: length-prefixed frames fed in small chunks, each complete frame applied
/// to the map state.
pub fn map_stream(data: &[u8]) {
    let mut reader = FrameReader::new(MAP_FRAME_LIMIT);
    let mut state = MapState::new();
    for chunk in data.chunks(7) {
        reader.push(chunk);
        while let Ok(Some(frame)) = reader.next_frame() {
            assert!(!frame.is_empty() && frame.len() <= MAP_FRAME_LIMIT);
            apply_map_frame(&mut state, &frame);
        }
    }
    assert!(reader.pending_len() <= data.len());
}

/// One MapResponse JSON body, applied to a fresh state and decoded on its own; its
/// PingRequest, if any, read as the control client reads it.
pub fn map_response(data: &[u8]) {
    if let Ok(response) = MapResponse::from_json(data) {
        if let Some(request) = &response.ping_request {
            assert_task_invariants(request, &ping_request::task(request));
        }
    }
    apply_map_frame(&mut MapState::new(), data);
}

/// A refused frame must leave the state exactly as it was; an accepted one must yield a
/// state the netmap can be built from without panicking.
fn apply_map_frame(state: &mut MapState, frame: &[u8]) {
    let now = UNIX_EPOCH + Duration::from_secs(MAP_NOW_SECS);
    let before = state.clone();
    match state.apply_frame(frame, now) {
        Ok(_) => {
            let _ = state.netmap(OWN_KEY, now);
            let _ = state.next_key_expiry(now);
            let _ = state.health();
        }
        Err(_) => assert_eq!(*state, before),
    }
}

/// A local API request: a complete request stays the same request whatever follows it, and
/// its body is bounded.
pub fn http1_request(data: &[u8]) {
    if let Parse::Complete(request) = http1::parse_request(data) {
        assert!(request.body.len() <= MAX_BODY);
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(http1::parse_request(&longer), Parse::Complete(request));
    }
}

/// An HTTP/1 response (the control server's `/key` answer): the body is the input's tail.
pub fn http1_response(data: &[u8]) {
    if let Ok((_, body)) = http1::parse_response(data) {
        assert!(data.ends_with(body));
    }
}

/// The WireGuard-style config file: peers come out sorted and unique, errors name the file.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match crate::config::parse(&text, "fuzz.conf") {
        Ok(config) => {
            let keys: Vec<_> = config.netmap.peers.iter().map(|p| p.public_key).collect();
            assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "peers unsorted or repeated");
        }
        Err(error) => assert!(error.to_string().starts_with("fuzz.conf"), "{error}"),
    }
}

/// A DNS response to an A and to an AAAA question for the name the bytes ask about (or
/// `control.example`): addresses can't outnumber the bytes that carry them. Names are read
/// from every offset too.
pub fn dns_response(data: &[u8]) {
    let name = Name::from_text("control.example").expect("name");
    for record_type in [RecordType::A, RecordType::Aaaa] {
        let question = Question { name: name.clone(), record_type };
        let id = message::message_id(data).unwrap_or(0);
        if let Ok(Reply::Addresses(addresses)) = message::parse_response(data, id, &question) {
            assert!(addresses.len() <= data.len() / 4);
        }
    }
    for start in 0..data.len().min(64) {
        if let Ok((name, end)) = Name::read(data, start) {
            assert!(name.wire().len() <= 255 && end <= data.len());
        }
    }
}

/// A MagicDNS query from the host, then the same bytes as an upstream's answer to every query
/// forwarded so far: a query is answered under its own ID (a FORMERR or NOTIMP header when
/// broken) or forwarded, never both, and a datagram completes at most one waiting query.
pub fn magicdns(data: &[u8]) {
    use crate::magicdns::{zone::Zone, MagicDns, Path, Transmit};
    use crate::netmap::SelfNode;
    let me = SelfNode {
        dns_name: "me.tail.ts.net.".into(),
        addresses: vec![Prefix::host(IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1)))],
        ..SelfNode::new(OWN_KEY)
    };
    let upstream =
        crate::control::tailcfg::Resolver { addr: "192.0.2.53".into(), ..Default::default() };
    let dns = crate::control::tailcfg::DnsConfig {
        proxied: true,
        resolvers: vec![upstream],
        ..Default::default()
    };
    let mut magic = MagicDns::new(&[1; 32]);
    magic.set_zone(Zone::new(&me, std::iter::empty(), &dns, &[]));
    let client = "100.64.0.1:40000".parse().expect("address");
    let now = Instant::now();
    // A query that is forwarded first, so the input has a waiting query to try to answer.
    let seed =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x00\x00\x01\x00\x01";
    assert_eq!(magic.handle_query(now, client, seed), None);
    let answer = magic.handle_query(now, client, data);
    let transmits: Vec<Transmit> = std::iter::from_fn(|| magic.poll_transmit()).collect();
    for transmit in &transmits {
        magic.record_path(transmit, Path::Socket(transmit.ticket));
    }
    let sent: Vec<&[u8]> = transmits.iter().map(|t| &t.datagram[..]).collect();
    assert_eq!(sent[0][2..], seed[2..], "forwarded but for the ID");
    match answer {
        Some(answer) => {
            assert!(answer.len() >= 12 && answer[..2] == data[..2]);
            assert_eq!(sent.len(), 1, "answered queries are not forwarded");
        }
        None => assert!(sent.len() == 1 || sent[1][2..] == data[2..]),
    }
    let from = "192.0.2.53:53".parse().expect("address");
    let path = Path::Socket(transmits[0].ticket);
    let answered = usize::from(magic.handle_upstream(path, from, data).is_some());
    let expired = magic.handle_timeout(now + crate::magicdns::FORWARD_TIMEOUT).len();
    assert!(answered + expired <= 2);
}

/// `/etc/hosts` text.
pub fn hosts(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for name in ["control.example", "localhost", ""] {
        let _ = hosts::addresses(&text, name);
    }
}

/// `resolv.conf` text: always some nameserver, never more than resolver(5) allows; the DNS
/// configurator's reading of who wrote it never panics, and its search-line edit always
/// leaves a file it recognises as its own, with exactly one `search` line.
pub fn resolv_conf(data: &[u8]) {
    use crate::platform::dns::{with_search, writer_of, Writer};
    let text = String::from_utf8_lossy(data);
    let conf = resolv_conf::parse(&text);
    assert!((1..=3).contains(&conf.nameservers.len()));
    assert!((1..=5).contains(&conf.settings.attempts));
    let _ = writer_of(&text);
    let edited = with_search(&text, &["tail.ts.net".to_string()]);
    assert_eq!(writer_of(&edited), Writer::Weft);
    let searches = edited.lines().filter(|l| l.split_whitespace().next() == Some("search"));
    assert_eq!(searches.count(), 1);
}

/// The listening-port sources (`/proc/net`, the BSDs' and illumos's `netstat` layouts),
/// whose text may carry names users chose: any bytes give at most one port a line, none of
/// them port 0.
pub fn listening_ports(data: &[u8]) {
    use crate::platform::ports::{netstat, netstat_illumos, proc_net, Proto};
    let lines = data.split(|&b| b == b'\n').count();
    let readings = [
        netstat::parse(data),
        netstat_illumos::parse(data),
        proc_net::parse(data, Proto::Tcp),
        proc_net::parse(data, Proto::Udp),
    ];
    for ports in readings {
        assert!(ports.len() <= lines);
        assert!(ports.iter().all(|p| p.port != 0));
    }
}

/// rtnetlink messages, the Linux route monitor's input, judged by a monitor as the daemon
/// will: never more events than messages fit in the bytes.
pub fn netlink(data: &[u8]) {
    use crate::platform::link_monitor::{Change, Monitor};
    let Ok(events) = crate::platform::netlink::parse(data) else {
        return;
    };
    assert!(events.len() <= data.len() / 16);
    let mut monitor = Monitor::new();
    monitor.set_own_tun(Some(9));
    let changes: Vec<Change> = events.iter().filter_map(|e| Change::from_netlink(e, 52)).collect();
    monitor.first_major(&changes);
}

/// A STUN answer on our UDP sockets: whatever parses names the transaction it answers and an
/// address; anything else is an error, never a panic.
pub fn stun_response(data: &[u8]) {
    if crate::stun::parse_response(data).is_ok() {
        assert!(crate::stun::is_stun(data), "a parsed response carries the magic cookie");
    }
}

/// The DERP client key of the seed session (`derp::tests`, recorded from Tailscale's derper), so
/// the seed logs in all the way and the fuzzer starts from a connected client.
const DERP_CLIENT_KEY: PrivateKey = PrivateKey([0x17; 32]);

/// The byte stream a DERP server sends after our upgrade request, cut in two at a point the
/// first byte chooses: a connection either goes on or fails with a typed error, and once it
/// failed the driver drops it (so nothing is fed after an error here either).
pub fn derp_stream(data: &[u8]) {
    let now = Instant::now();
    let Ok(mut client) =
        crate::derp::DerpClient::new(now, DERP_CLIENT_KEY, "derp1.example.com", [5; 24])
    else {
        unreachable!("a fixed valid host");
    };
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for part in [&data[..cut], &data[cut..]] {
        if client.handle_input(now, part).is_err() {
            return;
        }
        while client.poll_event().is_some() {}
        let _ = client.take_output();
    }
}

/// A routing-socket read on each OS whose layout we parse: events or a typed error; and on
/// illumos, the same bytes as the answer to a default-route lookup (numbered by the first
/// bytes, so that the fuzzer can find the matching answer's deeper paths).
pub fn route_socket(data: &[u8]) {
    use crate::platform::os_kind::OsKind;
    use crate::platform::route_socket::{lookup, parse};
    for os in OsKind::ALL.into_iter().filter(|os| *os != OsKind::Linux) {
        let _ = parse(os, data);
    }
    let seq = data.get(20..24).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    let _ = lookup::answer(OsKind::Illumos, data, seq);
}

/// Disco on the shared UDP socket, into an engine with one disco peer: once as raw bytes
/// after the magic and the peer's sender key (the framing and the box check), once sealed
/// with the peer's real key (every message parser and handler behind it). Whatever arrives,
/// nothing reaches the TUN and at most one pong goes back, to the sender.
pub fn disco_datagram(data: &[u8]) {
    use crate::disco::MAGIC;
    use crate::engine::{Engine, Environment, PacketSink};
    use crate::naclbox::SharedBox;
    use crate::netmap::{Netmap, Peer, SelfNode};
    use std::net::SocketAddr;

    #[derive(Default)]
    struct Outputs {
        udp: Vec<SocketAddr>,
        derp: usize,
        tun: usize,
    }
    impl PacketSink for Outputs {
        fn send_udp(&mut self, to: SocketAddr, _: &[u8]) {
            self.udp.push(to);
        }
        fn send_derp(
            &mut self,
            _: crate::control::tailcfg::RegionId,
            _: crate::keys::PublicKey,
            _: &[u8],
        ) {
            self.derp += 1;
        }
        fn write_tun(&mut self, _: &[u8]) {
            self.tun += 1;
        }
    }

    let (ours, theirs) = (PrivateKey([10; 32]), PrivateKey([9; 32]));
    let mut netmap = Netmap::new(SelfNode::new(OWN_KEY));
    let peer = Peer::new(PrivateKey([8; 32]).public_key());
    netmap.peers.push(Peer { disco_key: Some(theirs.public_key()), ..peer });
    let now = Instant::now();
    let environment = Environment {
        index_seed: 1,
        ping_id: 1,
        clock: crate::wall_clock::WallClock::new(now, UNIX_EPOCH),
        disco_key: ours.clone(),
        disco_seed: [0; 16],
        dns_key: [0; 32],
        lazy: Default::default(),
    };
    let mut engine = Engine::new(netmap, now, environment);
    let from: SocketAddr = (Ipv4Addr::new(192, 0, 2, 1), 41641).into();
    let header: Vec<u8> = MAGIC.iter().chain(&theirs.public_key().0).copied().collect();
    let sealed = SharedBox::new(&theirs, &ours.public_key()).seal(&[1; 24], data);
    for body in [data, &sealed[..]] {
        let packet: Vec<u8> = header.iter().chain(body).copied().collect();
        let mut out = Outputs::default();
        engine.handle_datagram(now, from, &packet, &mut out);
        assert_eq!((out.tun, out.derp), (0, 0));
        assert!(out.udp.len() <= 1 && out.udp.iter().all(|to| *to == from));
    }
}
