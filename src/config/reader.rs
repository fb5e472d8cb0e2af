//! Reads a whole config: feeds each line to the section it belongs to, enforces where keys may
//! appear and how often, then checks what only the whole file can show (a missing
//! `[Interface]`, peers sharing a key) and builds the netmap.

use super::error::{quote, ConfigError};
use super::fields::{self, Role};
use super::lines::{lines, Line, SectionKind};
use super::sections::{InterfaceSection, PeerSection};
use super::StaticConfig;
use crate::netmap::{Netmap, Peer, SelfNode};

/// The section whose settings the lines now being read fill in.
enum OpenSection {
    Interface(InterfaceSection),
    Peer(PeerSection),
}

impl OpenSection {
    fn kind(&self) -> SectionKind {
        match self {
            OpenSection::Interface(_) => SectionKind::Interface,
            OpenSection::Peer(_) => SectionKind::Peer,
        }
    }
}

/// The state of one pass over a config text.
struct Reader<'a> {
    origin: &'a str,
    open: Option<OpenSection>,
    /// Keys already set in the open section, with their lines, to refuse a second one.
    set_in_open: Vec<(&'static str, usize)>,
    interface: Option<InterfaceSection>,
    peers: Vec<PeerSection>,
    warnings: Vec<String>,
}

/// Parses a config text; `origin` names it in messages.
pub(crate) fn parse(text: &str, origin: &str) -> Result<StaticConfig, ConfigError> {
    // Editors on some systems start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        origin,
        open: None,
        set_in_open: Vec::new(),
        interface: None,
        peers: Vec::new(),
        warnings: Vec::new(),
    };
    for (number, line) in lines(text) {
        line.and_then(|line| reader.read(number, line))
            .map_err(|message| ConfigError::at_line(origin, number, message))?;
    }
    reader.finish()
}

impl Reader<'_> {
    fn read(&mut self, number: usize, line: Line<'_>) -> Result<(), String> {
        match line {
            Line::Header(kind) => self.begin_section(kind, number),
            Line::Setting { key, value } => self.apply(key, value, number),
        }
    }

    fn begin_section(&mut self, kind: SectionKind, number: usize) -> Result<(), String> {
        self.close_section();
        match kind {
            SectionKind::Interface => {
                if let Some(first) = &self.interface {
                    return Err(format!(
                        "a second [Interface] section; the first is on line {}",
                        first.line
                    ));
                }
                self.open = Some(OpenSection::Interface(InterfaceSection::new(number)));
            }
            SectionKind::Peer => self.open = Some(OpenSection::Peer(PeerSection::new(number))),
        }
        Ok(())
    }

    fn close_section(&mut self) {
        self.set_in_open.clear();
        match self.open.take() {
            Some(OpenSection::Interface(section)) => self.interface = Some(section),
            Some(OpenSection::Peer(section)) => self.peers.push(section),
            None => {}
        }
    }

    fn apply(&mut self, key: &str, value: &str, number: usize) -> Result<(), String> {
        let open_kind = self.open.as_ref().map(OpenSection::kind);
        let (name, role) =
            fields::lookup(key, open_kind).ok_or_else(|| format!("unknown key {}", quote(key)))?;
        match (role, &mut self.open) {
            (Role::ShellHook, _) => Err(format!(
                "{name}: shell hooks are refused: weft runs no commands from its config"
            )),
            (Role::Ignored, Some(OpenSection::Interface(_))) => {
                self.warnings.push(format!(
                    "{}:{number}: {name} is a wg-quick setting weft does not use; ignored",
                    self.origin
                ));
                Ok(())
            }
            (Role::Interface(field), Some(OpenSection::Interface(section))) => {
                admit(&mut self.set_in_open, name, role, value, number, || {
                    section.set(field, value, number)
                })
            }
            (Role::Peer(field), Some(OpenSection::Peer(section))) => {
                admit(&mut self.set_in_open, name, role, value, number, || {
                    section.set(field, value, number)
                })
            }
            (role, open) => Err(misplaced(name, role, open.as_ref().map(OpenSection::kind))),
        }
    }

    fn finish(mut self) -> Result<StaticConfig, ConfigError> {
        self.close_section();
        let origin = self.origin;
        let at = |line| move |message| ConfigError::at_line(origin, line, message);
        let interface = self
            .interface
            .ok_or_else(|| ConfigError::whole_file(origin, "no [Interface] section".into()))?;
        let interface_line = interface.line;
        let shields_up = interface.shields_up();
        let (self_node, private_key_line) = interface.finish().map_err(at(interface_line))?;
        let mut peers = self
            .peers
            .into_iter()
            .map(|section| {
                let section_line = section.line;
                section.finish().map_err(at(section_line))
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_peer_keys(&self_node, private_key_line, &mut peers)
            .map_err(|(line, message)| at(line)(message))?;
        let netmap = Netmap {
            peers: peers.into_iter().map(|(peer, _)| peer).collect(),
            ..Netmap::new(self_node)
        };
        Ok(StaticConfig { netmap, shields_up, warnings: self.warnings })
    }
}

/// Refuses an empty value and a second setting of a key that may appear only once per section,
/// then lets `set` apply the value, naming the key in any complaint it has about it.
fn admit(
    set_in_open: &mut Vec<(&'static str, usize)>,
    name: &'static str,
    role: Role,
    value: &str,
    number: usize,
    set: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{name}: no value given"));
    }
    if !role.repeatable() {
        if let Some((_, first)) = set_in_open.iter().find(|(seen, _)| *seen == name) {
            return Err(format!("{name} is already set on line {first}"));
        }
    }
    set_in_open.push((name, number));
    set().map_err(|reason| format!("{name}: {reason}"))
}

fn misplaced(name: &str, role: Role, open: Option<SectionKind>) -> String {
    let home = role.section().map_or("", SectionKind::header);
    match open {
        Some(open) => format!("{name} belongs in {home}, not in {}", open.header()),
        None => format!("{name} comes before any section; it belongs in {home}"),
    }
}

/// Sorts the peers (each with its PublicKey line) by key and refuses a peer that is this node
/// or that shares its key with another: WireGuard tells peers apart by key alone. The error
/// names the line at fault and the message the other line.
fn check_peer_keys(
    self_node: &SelfNode,
    private_key_line: usize,
    peers: &mut [(Peer, usize)],
) -> Result<(), (usize, String)> {
    let own_key = self_node.private_key.public_key();
    if let Some((_, line)) = peers.iter().find(|(peer, _)| peer.public_key == own_key) {
        return Err((
            *line,
            format!("PublicKey is this node's own, from the PrivateKey on line {private_key_line}"),
        ));
    }
    peers.sort_by_key(|(peer, line)| (peer.public_key, *line));
    match peers.windows(2).find(|pair| pair[0].0.public_key == pair[1].0.public_key) {
        Some(pair) => {
            Err((pair[1].1, format!("PublicKey is the same as the peer's on line {}", pair[0].1)))
        }
        None => Ok(()),
    }
}
