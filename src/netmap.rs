//! The one network map both sources produce — a static config file or a control server — and the
//! engine consumes. Nothing here knows where the data came from.

use crate::control::tailcfg::{DerpRegion, DnsConfig, FilterRule, RegionId, UserProfile};
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::prefix::Prefix;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

/// Everything the engine needs to run this node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Netmap {
    pub self_node: SelfNode,
    /// Peers, kept sorted by public key so diffs and output are stable.
    pub peers: Vec<Peer>,
    /// The tailnet's name (MapResponse.Domain); empty for a static config.
    pub domain: String,
    /// Owners of nodes, by user ID, for status output.
    pub user_profiles: BTreeMap<i64, UserProfile>,
    /// The relays; `None` until control sends one (and always for a static config).
    pub derp_map: Option<DerpMap>,
    /// Inbound packet filter rules as control sent them (all named filters, in name order).
    /// `None`: no filter configured (a static config), so nothing is filtered; `Some([])`:
    /// control denies everything.
    pub packet_filter: Option<Vec<FilterRule>>,
    /// MagicDNS and resolvers; `None` when nobody configured DNS.
    pub dns: Option<DnsConfig>,
}

impl Netmap {
    /// A netmap with only this node in it; sources fill in the rest with `..Netmap::new(me)`.
    pub(crate) fn new(self_node: SelfNode) -> Netmap {
        Netmap {
            self_node,
            peers: Vec::new(),
            domain: String::new(),
            user_profiles: BTreeMap::new(),
            derp_map: None,
            packet_filter: None,
            dns: None,
        }
    }
}

/// A change to some peers only, as a control server's delta or an edit of one peer gives it:
/// applying it costs time in proportion to the peers it names, not to the size of the netmap.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PeerDelta {
    /// Peers to add, or to replace the peer of the same public key.
    pub upsert: Vec<Peer>,
    /// Public keys of peers to drop; unknown keys are ignored.
    pub remove: Vec<PublicKey>,
}

/// The DERP relays after control's incremental updates are merged.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DerpMap {
    pub regions: BTreeMap<RegionId, DerpRegion>,
    /// Control's multipliers on measured latency when choosing a home region.
    pub region_score: BTreeMap<RegionId, f64>,
    /// Control asks not to add any built-in default regions.
    pub omit_default_regions: bool,
}

/// This node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SelfNode {
    pub name: String,
    pub private_key: PrivateKey,
    /// Interface addresses (Tailscale IPs), IPv4 first.
    pub addresses: Vec<Prefix>,
    /// UDP listen port from the config; `None` leaves the daemon's `--port` in force.
    pub listen_port: Option<u16>,
    pub mtu: u16,
    /// The control server's facts about this node; empty for a static config.
    pub node_id: i64,
    /// MagicDNS name with its trailing dot.
    pub dns_name: String,
    pub user_id: i64,
    /// When this node's key stops working; `None`: never.
    pub key_expiry: Option<SystemTime>,
    /// The key has expired: the node must log in again with a new key.
    pub key_expired: bool,
    /// False while an admin has yet to approve the node ("needs machine auth"). A static
    /// config is authorized by construction.
    pub machine_authorized: bool,
    /// Control's node attribute `disable-linux-cgnat-drop-rule`: the Linux router lets in
    /// packets from the tailnet range that arrive on other interfaces.
    pub cgnat_drop_disabled: bool,
    /// Control grants `magicdns-aaaa`: MagicDNS answers AAAA queries with nodes' IPv6
    /// addresses even when they have IPv4 ones.
    pub magicdns_peer_aaaa: bool,
}

impl SelfNode {
    /// This node with only its key known; sources fill in the rest with
    /// `..SelfNode::new(key)`.
    pub(crate) fn new(private_key: PrivateKey) -> SelfNode {
        SelfNode {
            name: String::new(),
            private_key,
            addresses: Vec::new(),
            listen_port: None,
            mtu: DEFAULT_MTU,
            node_id: 0,
            dns_name: String::new(),
            user_id: 0,
            key_expiry: None,
            key_expired: false,
            machine_authorized: true,
            cgnat_drop_disabled: false,
            magicdns_peer_aaaa: false,
        }
    }
}

/// A peer node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Peer {
    pub public_key: PublicKey,
    pub name: String,
    /// Destinations routed to this peer (its Tailscale IPs and any subnets it serves).
    pub allowed_ips: Vec<Prefix>,
    /// Where the peer may be reached directly. Static configs give at most one; a control
    /// server gives several candidates, among which NAT traversal chooses.
    pub endpoints: Vec<SocketAddr>,
    /// Seconds between keepalives, `None` when off.
    pub persistent_keepalive: Option<u16>,
    /// Boxed: rare, and 32 bytes inline in each of a large tailnet's peers.
    pub preshared_key: Option<Box<PresharedKey>>,
    // What a control server says about the peer besides WireGuard; all empty for a static
    // config.
    /// Control's node ID; 0 for a static config.
    pub node_id: i64,
    /// The ID `tailscale status --json` shows.
    pub stable_id: String,
    /// MagicDNS FQDN with its trailing dot.
    pub dns_name: String,
    /// The peer's own idea of its host name (Hostinfo.Hostname).
    pub host_name: String,
    pub os: String,
    pub user_id: i64,
    /// The peer's Tailscale IPs (Node.Addresses), kept even when it cannot be routed to.
    pub addresses: Vec<Prefix>,
    pub tags: Vec<String>,
    /// Subnet routes this peer is currently primary for.
    pub primary_routes: Vec<Prefix>,
    /// Connected to control; `None` = unknown.
    pub online: Option<bool>,
    pub last_seen: Option<SystemTime>,
    /// `None`: the key never expires.
    pub key_expiry: Option<SystemTime>,
    /// An expired peer stays listed for status but has no routes, endpoints or relay.
    pub key_expired: bool,
    // Where the peer's packets can go besides `endpoints`: inputs for disco and DERP, which
    // will own the peer's path.
    /// The key for disco pings; `None`: the peer does not speak disco.
    pub disco_key: Option<PublicKey>,
    /// The peer's home DERP region.
    pub derp_region: Option<RegionId>,
    /// The addresses this peer knows *us* by, where control says they differ from ours
    /// (shared nodes, 4via6): our source is rewritten to them on the way out, and back on the
    /// way in.
    pub masquerade_as: Vec<IpAddr>,
    /// Control jailed the peer (`Node.IsJailed`): it may answer flows this node opens but
    /// not open any of its own, as if this node's shields were up for it alone.
    pub jailed: bool,
}

impl Peer {
    /// A peer with only its key known; sources fill in the rest with `..Peer::new(key)`.
    pub(crate) fn new(public_key: PublicKey) -> Peer {
        Peer {
            public_key,
            name: String::new(),
            allowed_ips: Vec::new(),
            endpoints: Vec::new(),
            persistent_keepalive: None,
            preshared_key: None,
            node_id: 0,
            stable_id: String::new(),
            dns_name: String::new(),
            host_name: String::new(),
            os: String::new(),
            user_id: 0,
            addresses: Vec::new(),
            tags: Vec::new(),
            primary_routes: Vec::new(),
            online: None,
            last_seen: None,
            key_expiry: None,
            key_expired: false,
            disco_key: None,
            derp_region: None,
            masquerade_as: Vec::new(),
            jailed: false,
        }
    }

    /// The peer's own addresses as `tailscale status` lists them: control's Addresses, or for a
    /// static config the single-host AllowedIPs.
    pub(crate) fn tailscale_ips(&self) -> Vec<IpAddr> {
        if !self.addresses.is_empty() {
            return self.addresses.iter().map(|p| p.addr()).collect();
        }
        self.allowed_ips.iter().filter(|p| p.is_host()).map(|p| p.addr()).collect()
    }

    /// True when only the endpoints changed: a running WireGuard session can be kept.
    pub(crate) fn same_session(&self, other: &Peer) -> bool {
        self.public_key == other.public_key
            && self.preshared_key == other.preshared_key
            && self.persistent_keepalive == other.persistent_keepalive
    }
}

pub(crate) const DEFAULT_MTU: u16 = 1280;
