//! The inbound packet filter: the tailnet's ACLs, as control compiles them into `FilterRule`s,
//! enforced on packets arriving from peers with the semantics of tailscaled's
//! `wgengine/filter`. Outbound packets are never filtered; they only teach the filter which
//! UDP and SCTP replies to expect.
//!
//! An inbound packet, in order:
//! 1. to a multicast or link-local address: dropped (169.254.169.254, cloud metadata DNS, is
//!    exempt from the link-local rule);
//! 2. a later fragment: accepted, as it carries no header to judge and the receiving kernel
//!    discards it if the first fragment was refused;
//! 3. protocol 0 or 255: dropped, nothing we can read;
//! 4. not to one of this node's addresses or served routes: dropped;
//! 5. by protocol — TSMP: accepted; TCP: any segment but a bare SYN accepted, as only a SYN
//!    opens a connection, and a SYN needs a rule for its port; UDP and SCTP: accepted when it
//!    answers a flow this node opened, or a rule allows its port; ICMP: echo replies and
//!    errors accepted, anything else if a rule lets the source reach the destination address
//!    on any port; other protocols: a rule for that protocol must open every port.
//!
//! Shields up (`weft up --shields-up`, `ShieldsUp = true`) is tailscaled's shields-up filter:
//! the same steps with no rule at all, whatever control (or a static config's absence of
//! policy) says. New inbound flows are dropped, counted apart; replies to this node's own flows
//! still pass — TCP by its flags, UDP and SCTP by the flow table, which is kept, ICMP by type.
//! A peer control jailed (`IsJailed`) meets the same shields on its own packets alone
//! ([`Filter::check_inbound_shielded`]): it can answer this node's flows but open none.

mod address_range;
pub(crate) mod flow_table;
mod protocol_set;
mod rule;
#[cfg(test)]
mod tests;

use crate::control::tailcfg::FilterRule;
use crate::packet::transport::{Transport, TransportView};
use crate::prefix::Prefix;
use address_range::AddrRange;
use flow_table::{FlowKey, FlowTable};
use rule::{Rule, Scope};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// 512 buckets × 4 slots: 2048 concurrent UDP/SCTP flows (tailscaled keeps 512), about
/// 110 KiB allocated once.
const FLOW_BUCKETS: usize = 512;
/// A flow is forgotten after this long without a packet either way — on the order of Linux
/// conntrack's UDP stream timeout. tailscaled keeps flows until displaced.
const FLOW_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Cloud metadata DNS (GCP): the one link-local destination tailscaled lets through.
const CLOUD_METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));
/// IPv6 hop-by-hop options (extension headers are not walked) and the reserved protocol.
const UNREADABLE_PROTOCOLS: [u8; 2] = [0, 255];

pub(crate) struct Filter {
    /// `None`: no policy at all (a static config), so everything passes as in plain WireGuard.
    rules: Option<Vec<Rule>>,
    /// This node's addresses and the routes it serves: all a peer may send to.
    local: Vec<AddrRange>,
    flows: FlowTable,
    /// No rule applies: every new inbound flow is refused.
    shields_up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    Drop(DropReason),
}

/// Why an inbound packet was dropped, one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Not IPv4/IPv6, a transport header cut short, a fragment overlapping its header, or
    /// fragmented TSMP.
    Malformed,
    /// Protocol 0 (IPv6 hop-by-hop options) or 255.
    UnknownProtocol,
    /// To a multicast group: the tunnel is point-to-point.
    Multicast,
    /// To a link-local address.
    LinkLocal,
    /// To an address that is neither this node's nor a route it serves.
    NotLocal,
    /// No rule allows it and it answers nothing this node sent.
    NoRule,
    /// Shields are up (this node's, or those a jailed sender meets) and it answers nothing
    /// this node sent.
    ShieldsUp,
}

impl Filter {
    /// Compiles control's rules for a node whose own addresses (and served routes) are
    /// `local`. `None` allows everything.
    pub(crate) fn new(rules: Option<&[FilterRule]>, local: &[Prefix]) -> Filter {
        let flows = FlowTable::new(FLOW_BUCKETS, FLOW_IDLE_TIMEOUT);
        let mut filter = Filter { rules: None, local: Vec::new(), flows, shields_up: false };
        filter.replace_rules(rules, local);
        filter
    }

    /// Replaces rules and addresses but keeps the flow table, so sessions survive a netmap
    /// update. Entries that cannot be compiled are logged and skipped, as tailscaled does.
    pub(crate) fn replace_rules(&mut self, rules: Option<&[FilterRule]>, local: &[Prefix]) {
        self.local = local.iter().map(|&prefix| AddrRange::of_prefix(prefix)).collect();
        self.rules = rules.map(|wire| {
            let compiled = rule::compile(wire, &self.local);
            compiled.problems.iter().for_each(|problem| log::warn!("{problem}"));
            compiled.rules
        });
    }

    /// Raises or lowers the shields; the flow table is kept either way.
    pub(crate) fn set_shields_up(&mut self, on: bool) {
        self.shields_up = on;
    }

    pub(crate) fn shields_up(&self) -> bool {
        self.shields_up
    }

    /// An outbound packet (from the TUN into the tunnel): a UDP or SCTP one makes its replies
    /// welcome. O(1) and allocation-free.
    pub(crate) fn note_outbound(&mut self, now: Instant, packet: &[u8]) {
        let view = TransportView::parse(packet).ok();
        if let Some(key) = view.as_ref().and_then(FlowKey::of_tracked) {
            self.flows.record(now, key.reversed(), ());
        }
    }

    /// An inbound packet (decrypted, source already checked against the peer's AllowedIPs).
    #[must_use]
    pub(crate) fn check_inbound(&mut self, now: Instant, packet: &[u8]) -> Verdict {
        self.check(now, packet, self.shields_up)
    }

    /// An inbound packet judged as if the shields were up, whatever they are: from a peer
    /// control jailed, which tailscaled judges by the shields-up filter. The flow table is
    /// the same, so the peer's replies to this node's flows pass.
    #[must_use]
    pub(crate) fn check_inbound_shielded(&mut self, now: Instant, packet: &[u8]) -> Verdict {
        self.check(now, packet, true)
    }

    /// `shielded`: no rule applies.
    fn check(&mut self, now: Instant, packet: &[u8], shielded: bool) -> Verdict {
        if self.rules.is_none() && !shielded {
            return Verdict::Accept;
        }
        let judged = match TransportView::parse(packet) {
            Ok(view) => self.judge(now, &view, shielded),
            Err(_) => Err(DropReason::Malformed),
        };
        match judged {
            Ok(()) => Verdict::Accept,
            Err(reason) => Verdict::Drop(reason),
        }
    }

    fn judge(
        &mut self,
        now: Instant,
        view: &TransportView,
        shielded: bool,
    ) -> Result<(), DropReason> {
        refuse_special_destination(view.ip.dst)?;
        if view.transport == Transport::LaterFragment {
            return Ok(());
        }
        if view.transport == Transport::Other && UNREADABLE_PROTOCOLS.contains(&view.protocol) {
            return Err(DropReason::UnknownProtocol);
        }
        if !self.local.iter().any(|range| range.contains(view.ip.dst)) {
            return Err(DropReason::NotLocal);
        }
        match (self.admits(now, view, shielded), shielded) {
            (true, _) => Ok(()),
            (false, false) => Err(DropReason::NoRule),
            (false, true) => Err(DropReason::ShieldsUp),
        }
    }

    #[must_use]
    fn admits(&mut self, now: Instant, view: &TransportView, shielded: bool) -> bool {
        let protocol = view.protocol;
        let rules_allow = |filter: &Filter, scope| !shielded && filter.any_rule_allows(view, scope);
        match view.transport {
            Transport::Tsmp => true,
            Transport::Tcp { ports, flags } => {
                !flags.opens_connection()
                    || rules_allow(self, Scope::Port { protocol, port: ports.dst })
            }
            Transport::Udp(ports) | Transport::Sctp(ports) => {
                self.answers_outbound_flow(now, view)
                    || rules_allow(self, Scope::Port { protocol, port: ports.dst })
            }
            Transport::Icmp(icmp) => {
                icmp.is_echo_reply() || icmp.is_error() || rules_allow(self, Scope::AddressesOnly)
            }
            // Later fragments were passed before the destination check and never get here.
            Transport::Other | Transport::LaterFragment => {
                rules_allow(self, Scope::WholeAddress { protocol })
            }
        }
    }

    fn answers_outbound_flow(&mut self, now: Instant, view: &TransportView) -> bool {
        FlowKey::of_tracked(view).is_some_and(|key| self.flows.refresh(now, key))
    }

    fn any_rule_allows(&self, view: &TransportView, scope: Scope) -> bool {
        self.rules.iter().flatten().any(|rule| rule.allows(view.ip.src, view.ip.dst, scope))
    }
}

fn refuse_special_destination(dst: IpAddr) -> Result<(), DropReason> {
    let link_local = match dst {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.is_unicast_link_local(),
    };
    if dst.is_multicast() {
        Err(DropReason::Multicast)
    } else if link_local && dst != CLOUD_METADATA {
        Err(DropReason::LinkLocal)
    } else {
        Ok(())
    }
}
