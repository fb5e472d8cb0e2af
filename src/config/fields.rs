//! The keys a config may hold: which section each belongs to, and which wg-quick keys weft
//! tolerates or refuses. Keys are matched case-insensitively, as wg-quick does.

use super::lines::SectionKind;

/// A key weft reads in `[Interface]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InterfaceField {
    PrivateKey,
    Address,
    ListenPort,
    Mtu,
    Name,
    ShieldsUp,
}

/// A key weft reads in `[Peer]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PeerField {
    PublicKey,
    AllowedIps,
    Endpoint,
    PersistentKeepalive,
    PresharedKey,
    Name,
}

/// What a known key means to weft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Interface(InterfaceField),
    Peer(PeerField),
    /// A wg-quick `[Interface]` key about the host (DNS, routing table, firewall mark) that
    /// weft manages its own way: accepted with a warning so a wg-quick file still loads.
    Ignored,
    /// wg-quick's shell hooks. A config is data; running commands from it would turn anyone
    /// who can write the file into root.
    ShellHook,
}

impl Role {
    /// The section the key belongs in; `None` for keys refused wherever they appear.
    pub(super) fn section(self) -> Option<SectionKind> {
        match self {
            Role::Interface(_) | Role::Ignored => Some(SectionKind::Interface),
            Role::Peer(_) => Some(SectionKind::Peer),
            Role::ShellHook => None,
        }
    }

    /// Keys that accumulate over several lines, as wg-quick allows; all others may appear once.
    pub(super) fn repeatable(self) -> bool {
        matches!(self, Role::Interface(InterfaceField::Address) | Role::Peer(PeerField::AllowedIps))
    }
}

/// Every known key in its canonical spelling, which messages use.
const KEYS: &[(&str, Role)] = &[
    ("PrivateKey", Role::Interface(InterfaceField::PrivateKey)),
    ("Address", Role::Interface(InterfaceField::Address)),
    ("ListenPort", Role::Interface(InterfaceField::ListenPort)),
    ("MTU", Role::Interface(InterfaceField::Mtu)),
    ("Name", Role::Interface(InterfaceField::Name)),
    ("ShieldsUp", Role::Interface(InterfaceField::ShieldsUp)),
    ("PublicKey", Role::Peer(PeerField::PublicKey)),
    ("AllowedIPs", Role::Peer(PeerField::AllowedIps)),
    ("Endpoint", Role::Peer(PeerField::Endpoint)),
    ("PersistentKeepalive", Role::Peer(PeerField::PersistentKeepalive)),
    ("PresharedKey", Role::Peer(PeerField::PresharedKey)),
    ("Name", Role::Peer(PeerField::Name)),
    ("DNS", Role::Ignored),
    ("Table", Role::Ignored),
    ("FwMark", Role::Ignored),
    ("SaveConfig", Role::Ignored),
    ("PreUp", Role::ShellHook),
    ("PostUp", Role::ShellHook),
    ("PreDown", Role::ShellHook),
    ("PostDown", Role::ShellHook),
];

/// The canonical name and role of `key` as it reads in `section`. A key known only in the
/// other section comes back with that section's role, so the caller can say where it belongs.
/// `None` for an unknown key: a typo must never be skipped silently.
pub(super) fn lookup(key: &str, section: Option<SectionKind>) -> Option<(&'static str, Role)> {
    let matching = || KEYS.iter().copied().filter(|(name, _)| name.eq_ignore_ascii_case(key));
    matching().find(|(_, role)| role.section() == section).or_else(|| matching().next())
}
