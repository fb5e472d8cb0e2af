//! `weft ping`: a disco ping (the default, as tailscale's: it names the path, direct or
//! through which DERP region), an ICMP echo or a TSMP ping (answered by the peer's daemon
//! without its OS) through the tunnel. The daemon sends and recognises them itself, and
//! control's `PingRequest`s are served the same way.

use super::path::Source;
use super::{Engine, PacketSink};
use crate::control::tailcfg::{PingResponse, RegionId};
use crate::disco::TxId;
use crate::packet::icmp::{echo_request, parse_echo_reply, Echo};
use crate::packet::tsmp::{self, TsmpMessage, TsmpPacket};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Identifies one ping request across the local API.
pub(crate) type PingId = u64;

const PAYLOAD: &[u8] = b"weft ping";

/// Pings in flight at most: control may ask for pings in every message and local callers
/// may start them at will, but each one waits in a list scanned per reply.
pub(crate) const MAX_PENDING_PINGS: usize = 64;

/// What a ping sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PingKind {
    /// A disco ping, answered by the peer's magicsock over the path it came on.
    Disco,
    /// An ICMP echo request, answered by the peer's OS.
    Icmp,
    /// A TSMP ping, answered by the peer's daemon.
    Tsmp,
}

impl PingKind {
    /// The local API's `type=` value (tailscale's names, any case); `None` for one weft does
    /// not send.
    pub(crate) fn from_api_name(name: &str) -> Option<PingKind> {
        match name.to_ascii_lowercase().as_str() {
            "disco" => Some(PingKind::Disco),
            "icmp" => Some(PingKind::Icmp),
            "tsmp" => Some(PingKind::Tsmp),
            _ => None,
        }
    }

    /// tailscale's name of the kind (`tailcfg.PingType`), as control and the local API
    /// spell it.
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            PingKind::Disco => "disco",
            PingKind::Icmp => "ICMP",
            PingKind::Tsmp => "TSMP",
        }
    }
}

/// The answer to one ping, shaped like tailscale's `PingResult` JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PingResult {
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "NodeIP")]
    pub node_ip: String,
    #[serde(rename = "NodeName")]
    pub node_name: String,
    /// Empty on success.
    #[serde(rename = "Err")]
    pub err: String,
    #[serde(rename = "LatencySeconds")]
    pub latency_seconds: f64,
    /// The peer's `ip:port` the reply came from directly; empty when it came through DERP.
    #[serde(rename = "Endpoint", default)]
    pub endpoint: String,
    /// The DERP region a disco pong came through; 0 (left out) when it came directly.
    #[serde(rename = "DERPRegionID", default, skip_serializing_if = "is_zero")]
    pub derp_region_id: RegionId,
    /// That region's short code from the DERP map.
    #[serde(rename = "DERPRegionCode", default, skip_serializing_if = "String::is_empty")]
    pub derp_region_code: String,
    /// A TSMP pong's PeerAPI port of the responder; 0 (left out) otherwise.
    #[serde(rename = "PeerAPIPort", default, skip_serializing_if = "is_zero")]
    pub peerapi_port: u16,
}

fn is_zero(port: &u16) -> bool {
    *port == 0
}

impl PingResult {
    /// The result as control wants it back for its `PingRequest` of `kind`.
    pub(crate) fn to_ping_response(&self, kind: PingKind) -> PingResponse {
        PingResponse {
            kind: kind.api_name().to_string(),
            ip: self.ip.clone(),
            node_ip: self.node_ip.clone(),
            node_name: self.node_name.clone(),
            err: self.err.clone(),
            latency_seconds: self.latency_seconds,
            endpoint: self.endpoint.clone(),
            derp_region_id: self.derp_region_id,
            derp_region_code: self.derp_region_code.clone(),
            peerapi_port: self.peerapi_port,
        }
    }

    /// A ping that could not even start, for `target`.
    pub(crate) fn failed(target: IpAddr, err: String) -> PingResult {
        PingResult {
            ip: target.to_string(),
            node_ip: String::new(),
            node_name: String::new(),
            err,
            latency_seconds: 0.0,
            endpoint: String::new(),
            derp_region_id: 0,
            derp_region_code: String::new(),
            peerapi_port: 0,
        }
    }

    /// Whether the ping went unanswered within its timeout (tailscale's CLI says so and tries
    /// again, where any other error ends it).
    pub(crate) fn timed_out(&self) -> bool {
        self.err == timeout_message(&self.ip)
    }
}

fn timeout_message(ip: &str) -> String {
    format!("ping {ip:?} timed out")
}

struct Pending {
    id: PingId,
    kind: PingKind,
    sequence: u16,
    target: IpAddr,
    node_name: String,
    started: Instant,
    deadline: Instant,
    /// A disco ping's peer and the transaction ids of its pings on each path: the first
    /// pong to any of them answers it.
    disco: Option<(u32, Vec<TxId>)>,
}

/// Pings in flight and answers not yet collected.
pub(crate) struct Pings {
    identifier: u16,
    next_sequence: u16,
    next_id: PingId,
    pending: Vec<Pending>,
    finished: VecDeque<(PingId, PingResult)>,
}

impl Pings {
    /// `identifier` goes into every echo so replies to the kernel's own pings are left alone.
    pub(crate) fn new(identifier: u16) -> Pings {
        Pings {
            identifier,
            next_sequence: 1,
            next_id: 1,
            pending: Vec::new(),
            finished: VecDeque::new(),
        }
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Fails every ping whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        let (late, waiting): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|p| p.deadline <= now);
        self.pending = waiting;
        for p in late {
            let result = result_for(&p, timeout_message(&p.target.to_string()), 0.0, "");
            self.finished.push_back((p.id, result));
        }
    }

    /// If `packet` answers one of our pings, completes it and returns true (the kernel never
    /// sees it); otherwise false.
    #[must_use]
    pub(super) fn take_reply(
        &mut self,
        packet: &[u8],
        now: Instant,
        via: &Source,
        region_code: impl FnOnce(RegionId) -> String,
    ) -> bool {
        let Some(echo) = parse_echo_reply(packet) else {
            return false;
        };
        let answers = |p: &Pending| {
            p.kind == PingKind::Icmp && p.sequence == echo.sequence && p.target == echo.src
        };
        echo.identifier == self.identifier && self.complete(answers, now, via, region_code, 0)
    }

    /// If `pong` answers one of our TSMP pings, completes it and returns true.
    #[must_use]
    pub(super) fn take_tsmp_pong(
        &mut self,
        pong: &TsmpPacket,
        now: Instant,
        via: &Source,
        region_code: impl FnOnce(RegionId) -> String,
    ) -> bool {
        let TsmpMessage::Pong { data, peerapi_port } = pong.message else {
            return false;
        };
        let (identifier, sequence) = tsmp_data_fields(data);
        let answers = |p: &Pending| {
            p.kind == PingKind::Tsmp && p.sequence == sequence && p.target == pong.src
        };
        identifier == Some(self.identifier)
            && self.complete(answers, now, via, region_code, peerapi_port)
    }

    /// If the authenticated disco pong `tx_id` from peer `index` answers one of our disco
    /// pings, completes it and returns true.
    pub(super) fn take_disco_pong(
        &mut self,
        index: u32,
        tx_id: &TxId,
        now: Instant,
        via: &Source,
        region_code: impl FnOnce(RegionId) -> String,
    ) -> bool {
        let answers = |p: &Pending| {
            p.disco.as_ref().is_some_and(|(peer, ids)| *peer == index && ids.contains(tx_id))
        };
        self.complete(answers, now, via, region_code, 0)
    }

    /// Completes the first pending ping `answers` accepts, with the path the answer came on:
    /// the peer's `ip:port`, or the DERP region (with its code) that relayed it.
    fn complete(
        &mut self,
        answers: impl Fn(&Pending) -> bool,
        now: Instant,
        via: &Source,
        region_code: impl FnOnce(RegionId) -> String,
        peerapi_port: u16,
    ) -> bool {
        let Some(at) = self.pending.iter().position(answers) else {
            return false;
        };
        let p = self.pending.swap_remove(at);
        let latency = now.saturating_duration_since(p.started).as_secs_f64();
        let mut result = match via {
            Source::Udp(addr) => result_for(&p, String::new(), latency, &addr.to_string()),
            Source::Derp { region, .. } => PingResult {
                derp_region_id: *region,
                derp_region_code: region_code(*region),
                ..result_for(&p, String::new(), latency, "")
            },
        };
        result.peerapi_port = peerapi_port;
        self.finished.push_back((p.id, result));
        true
    }

    fn register(
        &mut self,
        now: Instant,
        kind: PingKind,
        target: IpAddr,
        node_name: String,
        timeout: Duration,
        disco: Option<(u32, Vec<TxId>)>,
    ) -> (PingId, u16) {
        let (id, sequence) = (self.next_id, self.next_sequence);
        self.next_id += 1;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.pending.push(Pending {
            id,
            kind,
            sequence,
            target,
            node_name,
            started: now,
            deadline: now + timeout,
            disco,
        });
        (id, sequence)
    }
}

fn result_for(p: &Pending, err: String, latency_seconds: f64, endpoint: &str) -> PingResult {
    PingResult {
        ip: p.target.to_string(),
        node_ip: p.target.to_string(),
        node_name: p.node_name.clone(),
        err,
        latency_seconds,
        endpoint: endpoint.to_string(),
        derp_region_id: 0,
        derp_region_code: String::new(),
        peerapi_port: 0,
    }
}

/// The 8 bytes a TSMP ping carries for the pong to echo: this daemon's identifier and the
/// sequence number, then a fixed tag.
fn tsmp_data(identifier: u16, sequence: u16) -> [u8; 8] {
    let (i, s) = (identifier.to_be_bytes(), sequence.to_be_bytes());
    [i[0], i[1], s[0], s[1], b'w', b'e', b'f', b't']
}

/// The identifier (`None` when the tag is not ours) and sequence of echoed TSMP ping data.
fn tsmp_data_fields(data: [u8; 8]) -> (Option<u16>, u16) {
    let identifier = u16::from_be_bytes([data[0], data[1]]);
    let ours = data[4..] == *b"weft";
    (ours.then_some(identifier), u16::from_be_bytes([data[2], data[3]]))
}

impl Engine {
    /// Sends one echo request to `target` through its peer's session.
    #[cfg(test)]
    pub(crate) fn start_ping(
        &mut self,
        now: Instant,
        target: IpAddr,
        timeout: Duration,
        sink: &mut dyn PacketSink,
    ) -> Result<PingId, String> {
        self.start_ping_of(now, PingKind::Icmp, target, timeout, sink)
    }

    /// Sends one ping of `kind` to `target`: a disco ping along the peer's paths, or an echo
    /// through its session.
    pub(crate) fn start_ping_of(
        &mut self,
        now: Instant,
        kind: PingKind,
        target: IpAddr,
        timeout: Duration,
        sink: &mut dyn PacketSink,
    ) -> Result<PingId, String> {
        if self.pings.pending.len() >= MAX_PENDING_PINGS {
            return Err(format!("{MAX_PENDING_PINGS} pings are in flight already; try later"));
        }
        let index = self
            .routes
            .lookup(target)
            .ok_or_else(|| format!("no peer's AllowedIPs contain {target}"))?;
        let peer = self.peers.get(&index);
        let name = peer.map(|p| p.config.name.clone()).unwrap_or_default();
        let speaks_disco = peer.is_some_and(|p| p.disco.is_some());
        let echo = match kind {
            PingKind::Disco if speaks_disco => {
                return self.start_disco_ping(now, index, target, name, timeout, sink)
            }
            // A plain WireGuard peer (a static config's, control's WireGuard-only) has no
            // disco to answer: an echo through the tunnel is the ping it can answer, as
            // tailscale does for WireGuard-only peers.
            PingKind::Disco | PingKind::Icmp => PingKind::Icmp,
            PingKind::Tsmp => PingKind::Tsmp,
        };
        let src = self
            .netmap
            .self_node
            .addresses
            .iter()
            .map(|p| p.addr())
            .find(|a| a.is_ipv4() == target.is_ipv4())
            .ok_or_else(|| format!("this node has no address of {target}'s family to ping from"))?;
        let (id, sequence) = self.pings.register(now, echo, target, name, timeout, None);
        let identifier = self.pings.identifier;
        let packet = if echo == PingKind::Icmp {
            echo_request(&Echo { src, dst: target, identifier, sequence }, PAYLOAD)
        } else {
            tsmp::ping(src, target, u32::from(sequence), tsmp_data(identifier, sequence))
        };
        let packet = packet.expect("source chosen from the target's family");
        self.send_inside(index, now, src, &packet, sink);
        Ok(id)
    }

    /// Sends one ping of `kind` that control asked for, if `target` is a peer's own tailnet
    /// address: an address a peer only routes (a subnet router's LAN, an exit node's
    /// internet) is outside the tailnet, and control must not make this node probe it.
    pub(crate) fn start_control_ping(
        &mut self,
        now: Instant,
        kind: PingKind,
        target: IpAddr,
        timeout: Duration,
        sink: &mut dyn PacketSink,
    ) -> Result<PingId, String> {
        let owner = self.routes.lookup(target).and_then(|index| self.peers.get(&index));
        if !owner.is_some_and(|state| state.config.addresses.iter().any(|a| a.addr() == target)) {
            return Err(format!("{target} is no peer's tailnet address"));
        }
        self.start_ping_of(now, kind, target, timeout, sink)
    }

    /// Registers a disco ping to peer `index` whose pings carry `tx_ids`.
    pub(super) fn register_disco_ping(
        &mut self,
        now: Instant,
        target: IpAddr,
        name: String,
        timeout: Duration,
        (index, tx_ids): (u32, Vec<TxId>),
    ) -> PingId {
        let disco = Some((index, tx_ids));
        self.pings.register(now, PingKind::Disco, target, name, timeout, disco).0
    }

    /// The next finished ping, if any.
    #[must_use]
    pub(crate) fn poll_ping(&mut self) -> Option<(PingId, PingResult)> {
        self.pings.finished.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_goes_back_to_control_as_tailcfg_ping_response() {
        let relayed = PingResult {
            derp_region_id: 7,
            derp_region_code: "fra".into(),
            latency_seconds: 0.25,
            node_name: "b".into(),
            node_ip: "100.64.0.2".into(),
            ..PingResult::failed("100.64.0.2".parse().unwrap(), String::new())
        };
        let json = serde_json::to_value(relayed.to_ping_response(PingKind::Disco)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Type": "disco", "IP": "100.64.0.2", "NodeIP": "100.64.0.2",
                "NodeName": "b", "LatencySeconds": 0.25, "DERPRegionID": 7,
                "DERPRegionCode": "fra"})
        );
        let failed = PingResult::failed("100.64.0.9".parse().unwrap(), "no peer".into());
        let json = serde_json::to_value(failed.to_ping_response(PingKind::Tsmp)).unwrap();
        assert_eq!(json, serde_json::json!({"Type": "TSMP", "IP": "100.64.0.9", "Err": "no peer"}));
    }
}
