//! MagicDNS: the DNS server at 100.100.100.100 (and `fd7a:115c:a1e0::53`) inside the tunnel.
//! The tailnet's names are answered from the netmap ([`zone`]); every other name is forwarded
//! to an upstream resolver and its answer relayed back.
//!
//! Sans-IO: [`MagicDns`] is fed queries, upstream datagrams and the time, and hands back
//! answers and the datagrams to send upstream. The engine carries queries from the TUN to it
//! and answers back as IP packets; the daemon owns the upstream sockets (one per query, keyed by
//! its [`Ticket`]).
//!
//! Forwarding is bounded and checked: at most [`MAX_PENDING`] queries wait, each for
//! [`FORWARD_TIMEOUT`] (then the client gets SERVFAIL); each goes upstream under an ID no one
//! can predict ([`ids`]), and an upstream datagram is believed only when its ID, its sender,
//! the path it came by (the tunnel, or the daemon's socket for that one query) and its question
//! all match a waiting query.

mod ids;
pub(crate) mod message;
mod reverse;
pub(crate) mod zone;

use ids::QueryIds;
pub(crate) use ids::Ticket;
#[cfg(test)]
use message::Rcode;
use message::{Query, QueryError};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zone::{Resolution, Zone};

/// Forwarded queries waiting for an upstream at once; more get SERVFAIL at once. The host's
/// resolver retries, so this only bounds memory when upstreams are slow or gone.
pub(crate) const MAX_PENDING: usize = 256;
/// How long a forwarded query waits (tailscaled's bound on a query's life).
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime of local answers: short, so a renamed node is seen soon (tailscaled's).
const LOCAL_TTL: u32 = 5;
/// Upstreams asked at once for one query; the first answer wins.
const MAX_UPSTREAMS_PER_QUERY: usize = 3;
/// Tries at finding an upstream ID no waiting query uses; with at most [`MAX_PENDING`] of
/// 65,536 taken, running out means something is badly wrong.
const ID_TRIES: usize = 16;

/// The way a forwarded query left, and so the only way its answer is believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// Through WireGuard, to a resolver the tunnel routes.
    Tunnel,
    /// From the daemon's own socket for the query with this ticket.
    Socket(Ticket),
}

/// A forwarded query for one upstream: the query's ticket, where it goes, the DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transmit {
    pub ticket: Ticket,
    pub to: SocketAddr,
    pub datagram: Vec<u8>,
}

/// An answer for the host: where it goes (the asking socket) and the DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub client: SocketAddr,
    pub message: Vec<u8>,
}

/// What happened to messages that got no answer of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Queries too short for a header, or responses sent to us.
    pub unanswerable: u64,
    /// Queries answered SERVFAIL because [`MAX_PENDING`] were already waiting.
    pub overflow: u64,
    /// Forwarded queries no upstream answered in time.
    pub timed_out: u64,
    /// Upstream datagrams that matched no waiting query (ID, sender, path or question).
    pub foreign_answers: u64,
    /// Queries answered SERVFAIL because the same question already waited on the host's
    /// nameservers: a resolver that sends our own forwards back to us (systemd-resolved
    /// pointed at quad-100) would otherwise loop until the table is full.
    pub loops: u64,
}

impl Counters {
    /// Each counter under the name `weft status --json` lists it with the engine's drops.
    pub(crate) fn by_name(&self) -> impl Iterator<Item = (String, u64)> {
        [
            ("MagicDNSUnanswerable", self.unanswerable),
            ("MagicDNSOverflow", self.overflow),
            ("MagicDNSTimedOut", self.timed_out),
            ("MagicDNSForeignAnswers", self.foreign_answers),
            ("MagicDNSLoops", self.loops),
        ]
        .into_iter()
        .map(|(name, count)| (name.to_string(), count))
    }
}

/// A forwarded query.
struct Pending {
    ticket: Ticket,
    client: SocketAddr,
    query: Query,
    /// The upstreams it was sent to and the path to each: an answer is believed only from one
    /// of them by the same path.
    sent: Vec<(SocketAddr, Path)>,
    /// Whether it was asked of the host's nameservers, which may ask us back.
    to_host: bool,
    deadline: Instant,
}

impl Pending {
    /// Whether a socket of its own was opened for it, to be closed when it ends.
    fn has_socket(&self) -> bool {
        self.sent.iter().any(|(_, path)| matches!(path, Path::Socket(_)))
    }
}

pub(crate) struct MagicDns {
    /// `None` until built from the current netmap (it is built when first needed after a
    /// change, so a burst of netmap deltas costs one build).
    zone: Option<Zone>,
    /// By the ID the query went upstream with.
    pending: HashMap<u16, Pending>,
    transmit: VecDeque<Transmit>,
    /// Queries that had a socket of their own and ended (answered or timed out).
    finished: VecDeque<Ticket>,
    ids: QueryIds,
    counters: Counters,
    /// The host's own nameservers, for names the tailnet has no resolver for.
    host_nameservers: Vec<SocketAddr>,
    /// Unusable upstreams and missing ones are logged once a run, not once a query.
    warned_unsupported: bool,
    warned_no_upstream: bool,
}

impl MagicDns {
    /// `key` makes upstream IDs unpredictable; the daemon draws it from the OS.
    pub(crate) fn new(key: &[u8; 32]) -> MagicDns {
        MagicDns {
            zone: None,
            pending: HashMap::new(),
            transmit: VecDeque::new(),
            finished: VecDeque::new(),
            ids: QueryIds::new(key),
            counters: Counters::default(),
            host_nameservers: Vec::new(),
            warned_unsupported: false,
            warned_no_upstream: false,
        }
    }

    /// Whether the zone must be built (again) before the next query.
    pub(crate) fn needs_zone(&self) -> bool {
        self.zone.is_none()
    }

    /// The netmap changed: the zone is rebuilt at the next query.
    pub(crate) fn invalidate_zone(&mut self) {
        self.zone = None;
    }

    /// The host's nameservers as they were before MagicDNS (the daemon reads them at start);
    /// the zone is rebuilt with them at the next query.
    pub(crate) fn set_host_nameservers(&mut self, nameservers: Vec<SocketAddr>) {
        self.host_nameservers = nameservers;
        self.zone = None;
    }

    pub(crate) fn host_nameservers(&self) -> &[SocketAddr] {
        &self.host_nameservers
    }

    pub(crate) fn set_zone(&mut self, zone: Zone) {
        let unsupported = zone.unsupported_upstreams();
        if !unsupported.is_empty() && !self.warned_unsupported {
            self.warned_unsupported = true;
            log::warn!(
                "MagicDNS: skipping upstream resolvers {unsupported:?}: only plain IP[:port] \
                 resolvers over UDP are supported (no DNS-over-HTTPS)"
            );
        }
        self.zone = Some(zone);
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The source port of this run's queries through the tunnel.
    pub(crate) fn tunnel_port(&self) -> u16 {
        self.ids.tunnel_port()
    }

    /// A query from `client` on the host: the answer to send back now, or `None` when it was
    /// forwarded (the answer comes later) or dropped (counted).
    pub(crate) fn handle_query(
        &mut self,
        now: Instant,
        client: SocketAddr,
        message: &[u8],
    ) -> Option<Vec<u8>> {
        let query = match Query::parse(message) {
            Ok(query) => query,
            Err(QueryError::Refused(reply)) => return Some(reply),
            Err(QueryError::Unanswerable) => {
                self.counters.unanswerable += 1;
                return None;
            }
        };
        let resolution = match &self.zone {
            Some(zone) => zone.resolve(&query),
            None => Resolution::Forward(Vec::new()),
        };
        match resolution {
            Resolution::Local(rcode, records) => Some(query.answer(rcode, &records, LOCAL_TTL)),
            Resolution::Forward(upstreams) => self.forward(now, client, query, message, upstreams),
        }
    }

    fn forward(
        &mut self,
        now: Instant,
        client: SocketAddr,
        query: Query,
        message: &[u8],
        mut upstreams: Vec<SocketAddr>,
    ) -> Option<Vec<u8>> {
        if upstreams.is_empty() {
            if !self.warned_no_upstream {
                self.warned_no_upstream = true;
                log::warn!(
                    "MagicDNS: no upstream resolver for {:?}: SERVFAIL",
                    query.name.to_text()
                );
            }
            return Some(query.server_failure());
        }
        if self.pending.len() >= MAX_PENDING {
            self.counters.overflow += 1;
            return Some(query.server_failure());
        }
        let to_host = upstreams.iter().all(|upstream| self.host_nameservers.contains(upstream));
        if to_host && self.already_asks_host(&query) {
            self.counters.loops += 1;
            return Some(query.server_failure());
        }
        let Some((ticket, id)) = self.free_id() else {
            return Some(query.server_failure());
        };
        upstreams.truncate(MAX_UPSTREAMS_PER_QUERY);
        let mut datagram = message.to_vec();
        message::set_message_id(&mut datagram, id);
        for to in upstreams {
            self.transmit.push_back(Transmit { ticket, to, datagram: datagram.clone() });
        }
        let deadline = now + FORWARD_TIMEOUT;
        let sent = Vec::new();
        self.pending.insert(id, Pending { ticket, client, query, sent, to_host, deadline });
        None
    }

    /// Whether the same question already waits on the host's nameservers: asking them again
    /// is how a resolver that forwards to quad-100 would loop.
    fn already_asks_host(&self, query: &Query) -> bool {
        self.pending.values().any(|pending| {
            let asked = &pending.query;
            pending.to_host
                && asked.name == query.name
                && asked.record_type == query.record_type
                && asked.class == query.class
        })
    }

    fn free_id(&mut self) -> Option<(Ticket, u16)> {
        (0..ID_TRIES).map(|_| self.ids.draw()).find(|(_, id)| !self.pending.contains_key(id))
    }

    /// The next query to send upstream; the caller says by which path with
    /// [`MagicDns::record_path`].
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    /// `transmit` was sent by `path`: only there is its answer awaited.
    pub(crate) fn record_path(&mut self, transmit: &Transmit, path: Path) {
        let id = message::message_id(&transmit.datagram);
        let pending = id.and_then(|id| self.pending.get_mut(&id));
        if let Some(pending) = pending.filter(|pending| pending.ticket == transmit.ticket) {
            pending.sent.push((transmit.to, path));
        }
    }

    /// A datagram from upstream `from` that came by `path`: the answer for the waiting client
    /// when it matches a forwarded query (by ID, sender, path and question), else `None`
    /// (counted).
    pub(crate) fn handle_upstream(
        &mut self,
        path: Path,
        from: SocketAddr,
        message: &[u8],
    ) -> Option<Reply> {
        let matches = |pending: &Pending| {
            pending.sent.contains(&(from, path)) && pending.query.is_answered_by(message)
        };
        let id =
            message::message_id(message).filter(|id| self.pending.get(id).is_some_and(matches));
        let Some(pending) = id.and_then(|id| self.pending.remove(&id)) else {
            self.counters.foreign_answers += 1;
            log::trace!("MagicDNS: dropped an upstream datagram from {from} matching no query");
            return None;
        };
        self.finish(&pending);
        let mut answer = message.to_vec();
        message::set_message_id(&mut answer, pending.query.id);
        Some(Reply { client: pending.client, message: answer })
    }

    /// Notes the end of `pending`, so its socket is closed.
    fn finish(&mut self, pending: &Pending) {
        if pending.has_socket() {
            self.finished.push_back(pending.ticket);
        }
    }

    /// The next query that ended after it was sent from a socket of its own, which can close.
    pub(crate) fn poll_finished(&mut self) -> Option<Ticket> {
        self.finished.pop_front()
    }

    /// Whether any forwarded query waits: cheap, for every inbound packet.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether a forwarded query waits for an answer from `upstream` through the tunnel.
    pub(crate) fn waits_in_tunnel(&self, upstream: SocketAddr) -> bool {
        let sent = (upstream, Path::Tunnel);
        self.pending.values().any(|pending| pending.sent.contains(&sent))
    }

    /// When [`MagicDns::handle_timeout`] must run; `None` while nothing waits.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|pending| pending.deadline).min()
    }

    /// SERVFAIL for every forwarded query whose time is up.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<Reply> {
        let expired: Vec<u16> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        let mut replies = Vec::with_capacity(expired.len());
        for id in expired {
            if let Some(pending) = self.pending.remove(&id) {
                self.finish(&pending);
                self.counters.timed_out += 1;
                replies.push(Reply {
                    client: pending.client,
                    message: pending.query.server_failure(),
                });
            }
        }
        replies
    }
}

/// The response code of an answer.
#[cfg(test)]
pub(crate) fn rcode_of(message: &[u8]) -> Option<Rcode> {
    let code = message.get(3)? & 0x0f;
    [
        Rcode::NoError,
        Rcode::FormatError,
        Rcode::ServerFailure,
        Rcode::NameError,
        Rcode::NotImplemented,
    ]
    .into_iter()
    .find(|rcode| *rcode as u8 == code)
}

#[cfg(test)]
mod tests;
