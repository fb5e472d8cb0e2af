//! `weft status`: a table like `tailscale status`, or the JSON the daemon sent.

use super::{fetch_status, parse_flags};
use crate::engine::status::{PeerStatus, Status};
use std::path::Path;

pub fn run(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optflag("", "json", "print the status as JSON");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    if let Some(extra) = m.free.first() {
        return Err(format!("status: unexpected argument {extra:?}"));
    }
    let status = fetch_status(&socket)?;
    if m.opt_present("json") {
        let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render(&status));
    }
    Ok(0)
}

/// The plain-text status: self first, then peers by name, then any health problems.
pub fn render(status: &Status) -> String {
    let mut peers: Vec<&PeerStatus> = status.peer.values().collect();
    peers.sort_by(|a, b| (&a.host_name, &a.public_key).cmp(&(&b.host_name, &b.public_key)));
    let mut rows = vec![row(status, &status.self_node, true)];
    rows.extend(peers.into_iter().map(|p| row(status, p, false)));
    let mut out = table(&rows);
    if !status.health.is_empty() {
        out.push_str("\n# Health check:\n");
        for problem in &status.health {
            out.push_str(&format!("#     - {problem}\n"));
        }
    }
    out
}

fn row(status: &Status, peer: &PeerStatus, is_self: bool) -> Vec<String> {
    vec![
        peer.tailscale_ips.first().cloned().unwrap_or_else(|| "-".into()),
        if peer.host_name.is_empty() { "-".into() } else { peer.host_name.clone() },
        owner(status, peer.user_id),
        if peer.os.is_empty() { "-".into() } else { peer.os.clone() },
        if is_self { "-".into() } else { activity(peer) },
    ]
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

/// The status column, worded as tailscale words it.
fn activity(peer: &PeerStatus) -> String {
    let traffic = peer.tx_bytes > 0 || peer.rx_bytes > 0;
    let mut text = if peer.active {
        match peer.cur_addr.as_str() {
            "" => "active".to_string(),
            addr => format!("active; direct {addr}"),
        }
    } else if !peer.online && peer.last_handshake.starts_with("0001-") {
        "-".to_string()
    } else if !peer.online {
        "offline".to_string()
    } else if traffic {
        "idle".to_string()
    } else {
        "-".to_string()
    };
    if traffic {
        text.push_str(&format!(", tx {} rx {}", peer.tx_bytes, peer.rx_bytes));
    }
    text
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> =
            r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
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

    #[test]
    fn renders_like_tailscale() {
        let mut status = Status { self_node: peer("box1", "100.64.0.1"), ..Status::default() };
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
        let text = render(&status);
        assert_eq!(
            text,
            "100.64.0.1   box1    -       linux  -\n\
             100.64.0.22  laptop  -       -      active; direct 192.0.2.4:41641, tx 1234 rx 5678\n\
             100.64.0.3   nas     alice@  -      offline\n\
             \n# Health check:\n#     - routing: ip failed\n"
        );
    }
}
