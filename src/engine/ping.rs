//! `weft ping`: ICMP echo through the tunnel, sent and recognised by the daemon itself, so each
//! reply proves the encrypted path end to end and names the endpoint it came from.

use super::{Engine, PacketSink};
use crate::packet::icmp::{echo_request, parse_echo_reply, Echo};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Identifies one ping request across the local API.
pub type PingId = u64;

const PAYLOAD: &[u8] = b"weft ping";

/// The answer to one ping, shaped like tailscale's `PingResult` JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PingResult {
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
    /// The peer's `ip:port` the reply came from.
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
}

struct Pending {
    id: PingId,
    sequence: u16,
    target: IpAddr,
    node_name: String,
    started: Instant,
    deadline: Instant,
}

/// Pings in flight and answers not yet collected.
pub struct Pings {
    identifier: u16,
    next_sequence: u16,
    next_id: PingId,
    pending: Vec<Pending>,
    finished: VecDeque<(PingId, PingResult)>,
}

impl Pings {
    /// `identifier` goes into every echo so replies to the kernel's own pings are left alone.
    pub fn new(identifier: u16) -> Pings {
        Pings {
            identifier,
            next_sequence: 1,
            next_id: 1,
            pending: Vec::new(),
            finished: VecDeque::new(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Fails every ping whose deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        let (late, waiting): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|p| p.deadline <= now);
        self.pending = waiting;
        for p in late {
            let result =
                result_for(&p, format!("ping {:?} timed out", p.target.to_string()), 0.0, "");
            self.finished.push_back((p.id, result));
        }
    }

    /// If `packet` answers one of our pings, completes it and returns true (the kernel never
    /// sees it); otherwise false.
    pub fn take_reply(&mut self, packet: &[u8], now: Instant, from: SocketAddr) -> bool {
        let Some(echo) = parse_echo_reply(packet) else {
            return false;
        };
        if echo.identifier != self.identifier {
            return false;
        }
        let Some(at) =
            self.pending.iter().position(|p| p.sequence == echo.sequence && p.target == echo.src)
        else {
            return false;
        };
        let p = self.pending.swap_remove(at);
        let latency = now.saturating_duration_since(p.started).as_secs_f64();
        self.finished.push_back((p.id, result_for(&p, String::new(), latency, &from.to_string())));
        true
    }

    fn register(
        &mut self,
        now: Instant,
        target: IpAddr,
        node_name: String,
        timeout: Duration,
    ) -> (PingId, u16) {
        let (id, sequence) = (self.next_id, self.next_sequence);
        self.next_id += 1;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.pending.push(Pending {
            id,
            sequence,
            target,
            node_name,
            started: now,
            deadline: now + timeout,
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
    }
}

impl Engine {
    /// Sends one echo request to `target` through its peer's session.
    pub fn start_ping(
        &mut self,
        now: Instant,
        target: IpAddr,
        timeout: Duration,
        sink: &mut dyn PacketSink,
    ) -> Result<PingId, String> {
        let index = self
            .routes
            .lookup(target)
            .ok_or_else(|| format!("no peer's AllowedIPs contain {target}"))?;
        let src = self
            .netmap
            .self_node
            .addresses
            .iter()
            .map(|p| p.addr())
            .find(|a| a.is_ipv4() == target.is_ipv4())
            .ok_or_else(|| format!("this node has no address of {target}'s family to ping from"))?;
        let name = self.peers.get(&index).map(|p| p.config.name.clone()).unwrap_or_default();
        let (id, sequence) = self.pings.register(now, target, name, timeout);
        let echo = Echo { src, dst: target, identifier: self.pings.identifier, sequence };
        let packet = echo_request(&echo, PAYLOAD).expect("source chosen from the target's family");
        self.encrypt_to(index, now, &packet, sink);
        Ok(id)
    }

    /// The next finished ping, if any.
    pub fn poll_ping(&mut self) -> Option<(PingId, PingResult)> {
        self.pings.finished.pop_front()
    }
}
