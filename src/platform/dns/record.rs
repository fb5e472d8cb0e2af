//! The record of which DNS manager was told what interface's settings, so that a run after
//! a crash can take them back: written before the manager is told anything, removed once it
//! has forgotten them.
//!
//! It lives in the state directory, not under `/var/run` as the router's record does: a
//! rewritten resolv.conf outlives a reboot, and so must the note that it is to be put back.
//!
//! Format: `manager NAME` and `tun NAME` lines.

use super::manager::Manager;
use crate::private_fs::write_private_file;
use crate::regular_file;
use std::path::Path;

/// A record is two short lines; anything bigger is not ours.
const MAX_RECORD_BYTES: u64 = 4096;

/// What the record names: the manager and the interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Touched {
    pub manager: Manager,
    pub tun: String,
}

pub(super) fn save(path: &Path, touched: &Touched) -> Result<(), String> {
    let text = format!(
        "# weft: DNS settings to take back after a crash\nmanager {}\ntun {}\n",
        touched.manager.name(),
        touched.tun
    );
    write_private_file(path, text.as_bytes())
        .map_err(|e| format!("recording the DNS settings in {}: {e}", path.display()))
}

/// The recorded settings; `None` when there is no record.
pub(super) fn load(path: &Path) -> Result<Option<Touched>, String> {
    let text = match regular_file::read(path, MAX_RECORD_BYTES) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    parse(&text).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Result<Touched, String> {
    let (mut manager, mut tun) = (None, None);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match line.split_once(' ') {
            Some(("manager", name)) => {
                manager = Some(Manager::from_name(name).ok_or(format!("unknown manager {name:?}"))?)
            }
            Some(("tun", name)) if !name.is_empty() => tun = Some(name.to_string()),
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    match (manager, tun) {
        (Some(manager), Some(tun)) => Ok(Touched { manager, tun }),
        _ => Err("a manager line and a tun line are needed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_dir;

    #[test]
    fn saves_loads_and_refuses_damage() {
        let dir = fresh_dir("dns-record");
        let path = dir.join("dns");
        assert_eq!(load(&path).unwrap(), None);
        let touched = Touched { manager: Manager::Resolvd, tun: "tun0".into() };
        save(&path, &touched).unwrap();
        assert_eq!(load(&path).unwrap(), Some(touched));
        for (text, why) in [
            ("manager bind\ntun tun0\n", "unknown manager"),
            ("tun tun0\n", "a manager line"),
            ("manager direct\ntun tun0\nroute x\n", "unexpected line"),
        ] {
            assert!(parse(text).unwrap_err().contains(why), "{text:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
