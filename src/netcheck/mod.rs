//! Netcheck: what the network between us and the DERP relays looks like — whether UDP gets
//! out, which public address(es) our WireGuard socket is seen from, whether a NAT maps it
//! differently per destination, the round trip to every region, and from those the home
//! region. Facts from tailscale `net/netcheck` (restated in /work/shared/protocol/stun.md and
//! derp.md §6).
//!
//! Sans-IO: the loop feeds `(now, input)` — the DERP map, STUN answers that arrived on the
//! WireGuard sockets, timeouts — and sends the datagrams [`Netcheck::poll_transmit`] returns
//! from those same sockets, so the mapping found is the one peers must use. Transaction ids
//! come from a generator seeded by the caller. A run probes every measurable region's nodes
//! three times per address family, 100 ms apart (the retries for lost datagrams), and ends when
//! every region has answered on every family or after 5 s; a new run follows every 20–26 s
//! (the interval magicsock re-STUNs at, which also keeps NAT mappings alive), or at once when
//! the loop calls [`Netcheck::start`] (a link change, `weft netcheck`).
//!
//! Only literal addresses are probed: a node with neither `IPv4`/`IPv6` nor an IP as
//! `HostName` is skipped (the core has no resolver).

mod report;
#[cfg(test)]
mod tests;

pub(crate) use report::Report;

use crate::control::tailcfg::{DerpNode, RegionId};
use crate::netmap::DerpMap;
use crate::stun::{self, StunError, TxId, REQUEST_LEN, TX_ID_LEN};
use crate::xorshift::Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The STUN port a node's `STUNPort: 0` stands for.
pub(crate) const DEFAULT_STUN_PORT: u16 = 3478;
/// Probes per region and address family in one run, and the spacing between them.
const PROBES_PER_FAMILY: u32 = 3;
const PROBE_SPACING: Duration = Duration::from_millis(100);
/// A run ends this long after it began, answered or not.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Runs repeat after a random interval in [RERUN_MIN, RERUN_MIN + RERUN_JITTER).
const RERUN_MIN: Duration = Duration::from_secs(20);
const RERUN_JITTER_MS: usize = 6_000;
/// How far back a region's best latency counts when choosing the home (5 min + 5 s).
const LATENCY_MEMORY: Duration = Duration::from_secs(305);

/// Which of our UDP sockets exist to probe from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Families {
    pub v4: bool,
    pub v6: bool,
}

/// A binding request to send from the WireGuard socket of `to`'s family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub to: SocketAddr,
    pub bytes: [u8; REQUEST_LEN],
}

/// Why a STUN datagram changed nothing; the caller counts or logs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ignored {
    Malformed(StunError),
    /// Not an answer to a request of the running probe (late, forged or someone else's).
    UnknownTransaction,
}

/// One region's STUN servers, per address family.
#[derive(Clone, Debug, PartialEq)]
struct Target {
    region: RegionId,
    v4: Vec<SocketAddr>,
    v6: Vec<SocketAddr>,
}

/// A request of the running probe: to whom, for which region, when.
struct Sent {
    region: RegionId,
    to: SocketAddr,
    at: Instant,
}

struct Run {
    deadline: Instant,
    /// Requests not yet due, earliest first.
    planned: VecDeque<(Instant, RegionId, SocketAddr)>,
    in_flight: HashMap<TxId, Sent>,
    /// (region, over IPv6) pairs still without an answer.
    unanswered: BTreeSet<(RegionId, bool)>,
    /// The mapping each server IP saw, for MappingVariesByDestIP.
    mapping_by_server: BTreeMap<IpAddr, SocketAddr>,
    report: Report,
}

pub(crate) struct Netcheck {
    families: Families,
    targets: Vec<Target>,
    /// Regions that may become home (not `Avoid`).
    homeable: BTreeSet<RegionId>,
    region_score: BTreeMap<RegionId, f64>,
    rng: Rng,
    run: Option<Run>,
    next_run: Option<Instant>,
    /// Each finished run's per-region latencies, oldest first, for LATENCY_MEMORY.
    history: VecDeque<(Instant, BTreeMap<RegionId, Duration>)>,
    home: Option<RegionId>,
    last: Option<Report>,
    /// A finished report not yet taken by [`Netcheck::poll_report`].
    fresh: bool,
    outbox: VecDeque<Datagram>,
}

impl Netcheck {
    /// A netcheck that probes from the sockets in `families`, with transaction ids drawn from
    /// a generator seeded with `seed`. It does nothing until it has a DERP map.
    pub(crate) fn new(families: Families, seed: u64) -> Netcheck {
        Netcheck {
            families,
            targets: Vec::new(),
            homeable: BTreeSet::new(),
            region_score: BTreeMap::new(),
            rng: Rng::new(seed),
            run: None,
            next_run: None,
            history: VecDeque::new(),
            home: None,
            last: None,
            fresh: false,
            outbox: VecDeque::new(),
        }
    }

    /// The relays to measure; `None` (a static config, or logged out) stops netcheck. A new
    /// map with other servers starts a run at once.
    pub(crate) fn set_derp_map(&mut self, now: Instant, map: Option<&DerpMap>) {
        let targets = map.map(|m| targets(m, self.families)).unwrap_or_default();
        self.homeable = map
            .map(|m| m.regions.values().filter(|r| !r.avoid).map(|r| r.region_id).collect())
            .unwrap_or_default();
        self.region_score = map.map(|m| m.region_score.clone()).unwrap_or_default();
        if targets == self.targets {
            return;
        }
        self.targets = targets;
        self.run = None;
        self.outbox.clear();
        self.next_run = None;
        if self.is_enabled() {
            self.start(now);
        } else {
            self.last = None;
            self.home = None;
        }
    }

    /// There are servers to probe.
    pub(crate) fn is_enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Starts a run now unless one is running (the network changed, or a user asked).
    pub(crate) fn start(&mut self, now: Instant) {
        if !self.is_enabled() || self.run.is_some() {
            return;
        }
        let mut planned = Vec::new();
        let mut unanswered = BTreeSet::new();
        for target in &self.targets {
            for (v6, servers) in [(false, &target.v4), (true, &target.v6)] {
                if servers.is_empty() {
                    continue;
                }
                unanswered.insert((target.region, v6));
                for try_number in 0..PROBES_PER_FAMILY {
                    let server = servers[try_number as usize % servers.len()];
                    planned.push((now + PROBE_SPACING * try_number, target.region, server));
                }
            }
        }
        planned.sort_by_key(|(at, ..)| *at);
        self.next_run = None;
        self.run = Some(Run {
            deadline: now + REPORT_TIMEOUT,
            planned: planned.into(),
            in_flight: HashMap::new(),
            unanswered,
            mapping_by_server: BTreeMap::new(),
            report: Report::new(self.families.v6),
        });
        self.send_due(now);
    }

    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.run.is_some()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Datagram> {
        self.outbox.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.run {
            Some(run) => {
                let next_probe = run.planned.front().map(|(at, ..)| *at);
                Some(next_probe.map_or(run.deadline, |at| at.min(run.deadline)))
            }
            None => self.next_run,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match &self.run {
            Some(run) if run.deadline <= now => self.finish(now),
            Some(_) => self.send_due(now),
            None if self.next_run.is_some_and(|at| at <= now) => self.start(now),
            None => {}
        }
    }

    /// A STUN datagram that arrived from `from` on one of our WireGuard sockets.
    pub(crate) fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), Ignored> {
        let (tx_id, mapped) = stun::parse_response(datagram).map_err(Ignored::Malformed)?;
        let run = self.run.as_mut().ok_or(Ignored::UnknownTransaction)?;
        let sent = run.in_flight.remove(&tx_id).ok_or(Ignored::UnknownTransaction)?;
        log::trace!("netcheck: {from} (region {}) sees us as {mapped}", sent.region);
        let latency = now.saturating_duration_since(sent.at);
        let server = sent.to.ip();
        run.report.add_answer(sent.region, server, mapped, latency);
        run.mapping_by_server.insert(server, mapped);
        run.report.note_v4_server(&run.mapping_by_server);
        run.unanswered.remove(&(sent.region, server.is_ipv6()));
        if run.unanswered.is_empty() {
            self.finish(now);
        }
        Ok(())
    }

    /// The report of the run that finished since the last call, once.
    pub(crate) fn poll_report(&mut self) -> Option<&Report> {
        if !std::mem::take(&mut self.fresh) {
            return None;
        }
        self.last.as_ref()
    }

    /// The latest finished report.
    pub(crate) fn last_report(&self) -> Option<&Report> {
        self.last.as_ref()
    }

    /// Queues the planned requests that are due, skipping those of regions that answered.
    fn send_due(&mut self, now: Instant) {
        let Some(run) = &mut self.run else { return };
        while run.planned.front().is_some_and(|(at, ..)| *at <= now) {
            let Some((_, region, to)) = run.planned.pop_front() else { break };
            if !run.unanswered.contains(&(region, to.is_ipv6())) {
                continue;
            }
            let mut tx_id = [0u8; TX_ID_LEN];
            tx_id.copy_from_slice(&self.rng.bytes(TX_ID_LEN));
            run.in_flight.insert(tx_id, Sent { region, to, at: now });
            self.outbox.push_back(Datagram { to, bytes: stun::binding_request(&tx_id) });
        }
    }

    fn finish(&mut self, now: Instant) {
        let Some(run) = self.run.take() else { return };
        let mut report = run.report;
        self.history.retain(|(at, _)| now.saturating_duration_since(*at) <= LATENCY_MEMORY);
        self.history.push_back((now, report.region_latency.clone()));
        self.home = report::choose_home(&self.home_candidates(&report), self.home);
        report.preferred_derp = self.home.unwrap_or(0);
        let jitter = Duration::from_millis(self.rng.below(RERUN_JITTER_MS) as u64);
        self.next_run = Some(now + RERUN_MIN + jitter);
        self.last = Some(report);
        self.fresh = true;
    }

    /// The regions of `report` that may be home, each with its best latency of the last five
    /// minutes scaled by control's score for it.
    fn home_candidates(&self, report: &Report) -> BTreeMap<RegionId, Duration> {
        report
            .region_latency
            .keys()
            .filter(|region| self.homeable.contains(region))
            .filter_map(|region| {
                let best = self.history.iter().filter_map(|(_, l)| l.get(region)).min()?;
                let score = self.region_score.get(region).copied().filter(|s| *s > 0.0);
                Some((*region, best.mul_f64(score.unwrap_or(1.0))))
            })
            .collect()
    }
}

/// The STUN servers of every measurable region, for the families we have sockets of.
fn targets(map: &DerpMap, families: Families) -> Vec<Target> {
    map.regions
        .values()
        .filter(|region| !region.no_measure_no_home)
        .map(|region| {
            let servers = |v6: bool| -> Vec<SocketAddr> {
                region.nodes.iter().filter_map(|node| stun_server(node, v6)).collect()
            };
            Target {
                region: region.region_id,
                v4: if families.v4 { servers(false) } else { Vec::new() },
                v6: if families.v6 { servers(true) } else { Vec::new() },
            }
        })
        .filter(|t| !t.v4.is_empty() || !t.v6.is_empty())
        .collect()
}

/// Where `node` answers STUN over IPv4 (or IPv6): its address of that family — `STUNTestIP`,
/// else the `IPv4`/`IPv6` field, else `HostName` if it is an IP — on its STUN port.
fn stun_server(node: &DerpNode, v6: bool) -> Option<SocketAddr> {
    let port = match node.stun_port {
        0 => DEFAULT_STUN_PORT,
        p => u16::try_from(p).ok()?,
    };
    let field = if v6 { &node.ipv6 } else { &node.ipv4 };
    let ip = [node.stun_test_ip.as_str(), field.as_str(), node.host_name.as_str()]
        .into_iter()
        .find(|text| !text.is_empty())
        .filter(|text| *text != "none")
        .and_then(|text| text.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == v6)?;
    Some(SocketAddr::new(ip, port))
}
