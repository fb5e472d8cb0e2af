//! `weft status`: a table like `tailscale status`, or the JSON the daemon sent.

use super::{fetch_status, parse_flags, say};
use crate::engine::status::{PeerStatus, Status};
use crate::inert_text::escape_controls;
use std::path::Path;

pub(super) fn run(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optflag("", "json", "print the status as JSON");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    super::expect_no_arguments("status", &m)?;
    let status = fetch_status(&socket)?;
    if m.opt_present("json") {
        let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
        text.lines().for_each(say);
        return Ok(0);
    }
    let (lines, running) = render(&status);
    lines.iter().for_each(|line| say(line));
    // Like tailscale: scripts can tell a node that is not up from the exit code.
    Ok(if running { 0 } else { 1 })
}

/// The plain-text status: self first, then peers by name, then any health problems; or, when
/// the node is not up, a sentence saying so. The flag says the node is up.
pub(super) fn render(status: &Status) -> (Vec<String>, bool) {
    let (mut lines, running) = match not_running(status) {
        Some(sentences) => (sentences, false),
        None => {
            let mut peers: Vec<&PeerStatus> = status.peer.values().collect();
            peers.sort_by(|a, b| (&a.host_name, &a.public_key).cmp(&(&b.host_name, &b.public_key)));
            let mut rows = vec![row(status, &status.self_node, true)];
            rows.extend(peers.into_iter().map(|p| row(status, p, false)));
            let mut lines = table(&rows);
            lines.extend(notes(status));
            (lines, true)
        }
    };
    if !status.health.is_empty() {
        lines.push(String::new());
        lines.push("# Health check:".into());
        lines.extend(status.health.iter().map(|problem| format!("#     - {problem}")));
    }
    (lines, running)
}

/// Lines under the table: a fake TUN, shields up, and the drop counters that are not zero.
fn notes(status: &Status) -> Vec<String> {
    let mut lines = Vec::new();
    if status.tun_name == crate::platform::tun::fake::NAME {
        lines
            .push("# TUN: fake (no kernel interface; only pings to this node are answered)".into());
    }
    if status.shields_up {
        lines.push("# Shields up: incoming connections are refused.".to_string());
    }
    let counted: Vec<String> = status
        .drops
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(reason, count)| format!("{} {count}", words(reason)))
        .collect();
    if !counted.is_empty() {
        lines.push(format!("# Dropped: {}", counted.join(", ")));
    }
    lines
}

/// A counter's JSON name in words: `ShieldsUp` → `shields-up`, `OutboundTSMP` →
/// `outbound-tsmp`, `MagicDNSLoops` → `magic-dns-loops` (an acronym ends where a word
/// starts).
fn words(pascal_case: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pascal_case.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_lowercase();
        let ends_acronym = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|next| next.is_lowercase());
        if c.is_uppercase() && (after_lower || ends_acronym) {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// What to say instead of the table when the node is not up (the states tailscale's status
/// words the same way).
fn not_running(status: &Status) -> Option<Vec<String>> {
    let lines = match status.backend_state.as_str() {
        "Starting" if status.self_node.tailscale_ips.is_empty() => {
            vec!["Starting; not connected to the control server yet.".into()]
        }
        "Running" | "Starting" => return None,
        "NeedsLogin" if status.auth_url.is_empty() => {
            vec!["Logged out.".into(), "Log in with `weft up --login-server URL`.".into()]
        }
        "NeedsLogin" => vec!["Logged out.".into(), format!("Log in at: {}", status.auth_url)],
        "NeedsMachineAuth" => vec!["Machine is not yet approved by the tailnet admin.".into()],
        "Stopped" => vec!["Stopped; run `weft up` to connect.".into()],
        other => vec![format!("Unexpected state: {other}")],
    };
    Some(lines)
}

/// One table row; every cell is escaped already, so the columns line up as printed.
fn row(status: &Status, peer: &PeerStatus, is_self: bool) -> Vec<String> {
    let or_dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    [
        or_dash(peer.tailscale_ips.first().map_or("", String::as_str)),
        or_dash(&peer.host_name),
        owner(status, peer.user_id),
        or_dash(&peer.os),
        if is_self { "-".into() } else { activity(peer) },
    ]
    .into_iter()
    .map(|cell| escape_controls(&cell).into_owned())
    .collect()
}

/// The owner column: the login name up to and including its `@`, as tailscale shortens it.
fn owner(status: &Status, user_id: i64) -> String {
    if user_id == 0 {
        return "-".into();
    }
    match status.user.get(&user_id.to_string()) {
        Some(user) => match user.login_name.split_once('@') {
            Some((name, _)) => format!("{name}@"),
            None => user.login_name.clone(),
        },
        None => user_id.to_string(),
    }
}

/// The status column, worded as tailscale words it: while active, the path in use (a direct
/// address, else the home DERP region's code); else idle, offline or `-`. weft adds `jailed`
/// for a peer control jailed.
fn activity(peer: &PeerStatus) -> String {
    let traffic = peer.tx_bytes > 0 || peer.rx_bytes > 0;
    let offline = if peer.online { "" } else { "; offline" };
    let mut text = if peer.active {
        let path = match (peer.cur_addr.as_str(), peer.relay.as_str()) {
            ("", "") => String::new(),
            ("", relay) => format!("relay {relay:?}"),
            (addr, _) => format!("direct {addr}"),
        };
        format!("active; {path}{offline}")
    } else if traffic {
        format!("idle{offline}")
    } else if !peer.online && !peer.last_handshake.starts_with("0001-") {
        "offline".to_string()
    } else {
        "-".to_string()
    };
    if peer.jailed {
        text = if text == "-" { "jailed".to_string() } else { format!("{text}; jailed") };
    }
    if traffic {
        text.push_str(&format!(", tx {} rx {}", peer.tx_bytes, peer.rx_bytes));
    }
    text
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> =
                r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, ip: &str) -> PeerStatus {
        PeerStatus {
            host_name: name.into(),
            tailscale_ips: vec![ip.into()],
            public_key: format!("nodekey:{name}"),
            last_handshake: "0001-01-01T00:00:00Z".into(),
            ..PeerStatus::default()
        }
    }

    fn running(self_node: PeerStatus) -> Status {
        Status { backend_state: "Running".into(), self_node, ..Status::default() }
    }

    #[test]
    fn renders_like_tailscale() {
        let mut status = running(peer("box1", "100.64.0.1"));
        status.self_node.os = "linux".into();
        let mut laptop = peer("laptop", "100.64.0.22");
        laptop.active = true;
        laptop.online = true;
        laptop.cur_addr = "192.0.2.4:41641".into();
        laptop.tx_bytes = 1234;
        laptop.rx_bytes = 5678;
        let mut nas = peer("nas", "100.64.0.3");
        nas.last_handshake = "2026-11-21T00:00:00Z".into();
        status.peer.insert("b".into(), nas);
        status.peer.insert("a".into(), laptop);
        status.health = vec!["routing: ip failed".into()];
        status.peer.get_mut("b").unwrap().user_id = 7;
        let alice = crate::engine::status::UserStatus {
            id: 7,
            login_name: "alice@example.com".into(),
            ..Default::default()
        };
        status.user.insert("7".into(), alice);
        let (lines, up) = render(&status);
        assert!(up);
        assert_eq!(
            lines.join("\n") + "\n",
            "100.64.0.1   box1    -       linux  -\n\
             100.64.0.22  laptop  -       -      active; direct 192.0.2.4:41641, tx 1234 rx 5678\n\
             100.64.0.3   nas     alice@  -      offline\n\
             \n# Health check:\n#     - routing: ip failed\n"
        );
    }

    #[test]
    fn an_active_peer_shows_its_path_direct_or_through_its_relay() {
        let mut p = peer("laptop", "100.64.0.22");
        (p.online, p.relay, p.tx_bytes, p.rx_bytes) = (true, "fra".into(), 10, 20);
        assert_eq!(activity(&p), "idle, tx 10 rx 20");
        p.active = true;
        assert_eq!(activity(&p), "active; relay \"fra\", tx 10 rx 20");
        p.cur_addr = "192.0.2.4:41641".into();
        assert_eq!(activity(&p), "active; direct 192.0.2.4:41641, tx 10 rx 20");
        p.online = false;
        assert_eq!(activity(&p), "active; direct 192.0.2.4:41641; offline, tx 10 rx 20");
        p.active = false;
        assert_eq!(activity(&p), "idle; offline, tx 10 rx 20");
    }

    #[test]
    fn a_jailed_peer_is_marked_in_its_status_column() {
        let mut p = peer("laptop", "100.64.0.22");
        p.jailed = true;
        assert_eq!(activity(&p), "jailed");
        (p.online, p.active, p.relay, p.tx_bytes, p.rx_bytes) = (true, true, "fra".into(), 10, 20);
        assert_eq!(activity(&p), "active; relay \"fra\"; jailed, tx 10 rx 20");
    }

    #[test]
    fn shields_up_and_non_zero_drops_are_noted_under_the_table() {
        let mut status = running(peer("box1", "100.64.0.1"));
        let (lines, _) = render(&status);
        assert_eq!(lines.len(), 1, "nothing to note: {lines:?}");
        status.shields_up = true;
        for (reason, count) in
            [("Filtered", 0), ("ShieldsUp", 3), ("SpoofedSource", 1), ("OutboundTSMP", 2)]
                .into_iter()
                .chain([("MagicDNSLoops", 4)])
        {
            status.drops.insert(reason.into(), count);
        }
        let (lines, _) = render(&status);
        assert_eq!(
            lines[1..],
            [
                "# Shields up: incoming connections are refused.",
                "# Dropped: magic-dns-loops 4, outbound-tsmp 2, shields-up 3, spoofed-source 1",
            ]
        );
    }

    #[test]
    fn a_fake_tun_is_noted_and_a_kernel_one_is_not() {
        let mut status = running(peer("box1", "100.64.0.1"));
        status.tun_name = "weft0".into();
        assert_eq!(render(&status).0.len(), 1);
        status.tun_name = "fake".into();
        let (lines, _) = render(&status);
        assert!(lines[1].starts_with("# TUN: fake"), "{lines:?}");
    }

    #[test]
    fn a_node_that_is_not_up_gets_a_sentence_not_an_empty_row() {
        let mut status = Status { self_node: peer("box1", "100.64.0.1"), ..Status::default() };
        let said = |status: &Status| {
            let (lines, up) = render(status);
            assert!(!up, "{lines:?}");
            lines
        };
        status.backend_state = "NeedsLogin".into();
        assert_eq!(said(&status), ["Logged out.", "Log in with `weft up --login-server URL`."]);
        status.auth_url = "https://hs.example/register/x".into();
        assert_eq!(said(&status), ["Logged out.", "Log in at: https://hs.example/register/x"]);
        status.backend_state = "Stopped".into();
        status.health = vec!["dial tcp: Connection refused".into()];
        assert_eq!(
            said(&status),
            [
                "Stopped; run `weft up` to connect.",
                "",
                "# Health check:",
                "#     - dial tcp: Connection refused"
            ]
        );
        status.backend_state = "NeedsMachineAuth".into();
        assert_eq!(said(&status)[0], "Machine is not yet approved by the tailnet admin.");
        status.backend_state = "Starting".into();
        status.self_node.tailscale_ips.clear();
        assert_eq!(said(&status)[0], "Starting; not connected to the control server yet.");
        status.self_node.tailscale_ips.push("100.64.0.1".into());
        assert!(render(&status).1, "a node with addresses shows its table while starting");
    }

    #[test]
    fn names_from_the_server_cannot_drive_the_terminal_or_break_rows() {
        let mut status = running(peer("box1", "100.64.0.1"));
        status.peer.insert("x".into(), peer("evil\x1b[2J\nfake-row\u{9b}", "100.64.0.9"));
        let (lines, _) = render(&status);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("evil\\u001b[2J\\u000afake-row\\u009b"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.chars().any(char::is_control)));
    }
}
