//! The control client's picture of the tailnet: the first MapResponse of a stream sets it,
//! later ones change it (capver-5 delta netmaps), and [`MapState::netmap`] turns it into the
//! [`Netmap`](crate::netmap::Netmap) the engine runs. Pure data: no I/O, time passed in.

mod clock;
mod derp;
mod filters;
mod netmap;
mod peers;
#[cfg(test)]
mod tests;

#[cfg(test)]
use crate::control::tailcfg::NodeId;
use crate::control::tailcfg::{
    DisplayMessage, DnsConfig, JsonError, MapResponse, Node, UserId, UserProfile,
};
use crate::netmap::DerpMap;
use clock::ClockSkew;
use filters::NamedFilters;
pub(crate) use netmap::Update;
use peers::PeerTable;
use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

/// Everything the map stream has said so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MapState {
    /// This node; `None` until the first full MapResponse.
    self_node: Option<Node>,
    peers: PeerTable,
    derp_map: Option<DerpMap>,
    filters: NamedFilters,
    dns: Option<DnsConfig>,
    domain: String,
    user_profiles: BTreeMap<UserId, UserProfile>,
    collect_services: Option<bool>,
    /// The user accepts peers' subnet routes (`weft up --accept-routes`); without it a peer
    /// is routed only its own addresses.
    accept_subnet_routes: bool,
    /// Control's health warnings; empty = healthy.
    health: Vec<String>,
    /// Control's display messages by ID, as "title: text".
    display_messages: BTreeMap<String, String>,
    skew: ClockSkew,
}

/// Which parts of the state a MapResponse touched. A flag set means "may have changed";
/// all clear (a keep-alive) means the netmap need not be rebuilt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Changed {
    pub self_node: bool,
    pub peers: bool,
    pub derp_map: bool,
    pub packet_filter: bool,
    pub dns: bool,
    pub domain: bool,
    pub user_profiles: bool,
    pub health: bool,
    /// Control's clock moved relative to ours: key-expiry verdicts may differ.
    pub clock_skew: bool,
}

impl Changed {
    pub(crate) fn any(&self) -> bool {
        *self != Changed::default()
    }
}

/// Why a MapResponse was refused. The state is left exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MapError {
    Json(JsonError),
    /// The first non-keep-alive response of a stream must describe this node.
    NoSelfNode,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Json(e) => e.fmt(f),
            MapError::NoSelfNode => f.write_str("first map response lacks this node (Node)"),
        }
    }
}

impl std::error::Error for MapError {}

impl MapState {
    pub(crate) fn new() -> MapState {
        MapState::default()
    }

    /// A state whose netmaps route peers' subnets to them when `accept` holds.
    pub(crate) fn accepting_subnet_routes(accept: bool) -> MapState {
        MapState { accept_subnet_routes: accept, ..MapState::default() }
    }

    /// Decodes one frame body and applies it.
    #[cfg(any(test, feature = "fuzzing", feature = "bench"))]
    pub(crate) fn apply_frame(
        &mut self,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Changed, MapError> {
        let response = MapResponse::from_json(body).map_err(MapError::Json)?;
        self.apply(response, now)
    }

    /// Applies one MapResponse received at `now` (local clock). Requests addressed to the
    /// client rather than to the state — `ping_request`, `pop_browser_url`, `debug` — are not
    /// looked at; the caller acts on them before handing the response over.
    pub(crate) fn apply(
        &mut self,
        response: MapResponse,
        now: SystemTime,
    ) -> Result<Changed, MapError> {
        if !response.keep_alive && self.self_node.is_none() && response.node.is_none() {
            return Err(MapError::NoSelfNode);
        }
        let mut changed = Changed::default();
        if let Some(control_time) = response.control_time {
            changed.clock_skew = self.skew.observe(control_time, now);
        }
        if response.keep_alive {
            return Ok(changed);
        }
        self.apply_update(response, now, &mut changed);
        Ok(changed)
    }

    #[cfg(test)]
    pub(crate) fn peer(&self, id: NodeId) -> Option<&Node> {
        self.peers.get(&id)
    }

    /// Control's health warnings and display messages (empty when healthy).
    pub(crate) fn health(&self) -> Vec<String> {
        self.health.iter().chain(self.display_messages.values()).cloned().collect()
    }

    /// Whether control wants the node's service list (Hostinfo.Services) reported.
    pub(crate) fn collect_services(&self) -> Option<bool> {
        self.collect_services
    }

    /// The order follows the official client: peers first, then the node and tailnet-wide
    /// settings.
    fn apply_update(&mut self, mut response: MapResponse, now: SystemTime, changed: &mut Changed) {
        changed.peers = peers::apply(&mut self.peers, &mut response, now);
        if let Some(mut node) = response.node {
            node.normalize();
            self.self_node = Some(node);
            changed.self_node = true;
        }
        changed.user_profiles = !response.user_profiles.is_empty();
        for profile in response.user_profiles {
            self.user_profiles.insert(profile.id, profile);
        }
        if let Some(update) = response.derp_map {
            derp::merge(&mut self.derp_map, update);
            changed.derp_map = true;
        }
        changed.packet_filter = self.filters.apply(response.packet_filter, response.packet_filters);
        if let Some(dns) = response.dns_config {
            self.dns = Some(dns);
            changed.dns = true;
        }
        if response.collect_services.is_some() {
            self.collect_services = response.collect_services;
        }
        if !response.domain.is_empty() && response.domain != self.domain {
            self.domain = response.domain;
            changed.domain = true;
        }
        if let Some(health) = response.health {
            self.health = health;
            changed.health = true;
        }
        if let Some(patches) = response.display_messages {
            self.patch_display_messages(patches);
            changed.health = true;
        }
    }

    fn patch_display_messages(&mut self, patches: BTreeMap<String, Option<DisplayMessage>>) {
        if patches.get("*").is_some_and(Option::is_none) {
            self.display_messages.clear();
        }
        for (id, message) in patches {
            match message {
                Some(m) if m.text.is_empty() => self.display_messages.insert(id, m.title),
                Some(m) => self.display_messages.insert(id, format!("{}: {}", m.title, m.text)),
                None => self.display_messages.remove(&id),
            };
        }
    }
}
