//! macOS: split DNS by files in `/etc/resolver`, one per domain (`nameserver` lines), which
//! the system resolver reads for names under that domain; the search domains go into one
//! more such file, under a name no real domain takes.
//!
//! What this does not do: make the tailnet's nameservers answer *every* name. That needs
//! the System Configuration dynamic store (`scutil`, a DNS dictionary under a service key),
//! which weft does not drive; so with resolvers meant for all names, only the search
//! domains are applied and every other name keeps using the Mac's own nameservers.

use super::direct::RESOLV_CONF_MODE;
use super::translate::{is_domain, OsDnsConfig};
use crate::regular_file;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// The first line of every file weft puts there: only such files are ever removed.
const MARKER: &str = "# Added by weft";
/// The file holding the search domains.
const SEARCH_FILE: &str = "search.weft";

/// Writes the files for `config` and removes our files it no longer names.
pub(super) fn apply(dir: &Path, config: &OsDnsConfig) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let mut files: Vec<(String, String)> = Vec::new();
    let servers: String =
        config.nameservers.iter().map(|ip| format!("nameserver {ip}\n")).collect();
    for domain in config.match_domains.iter().filter(|d| is_domain(d) && *d != SEARCH_FILE) {
        files.push((domain.clone(), format!("{MARKER}\n{servers}")));
    }
    if config.match_domains.is_empty() {
        notes.push(
            "macOS: nameservers for every name need the System Configuration store \
             (scutil), which weft does not drive; only the search domains are applied"
                .to_string(),
        );
    }
    if !config.search_domains.is_empty() {
        let search = format!("{MARKER}\nsearch {}\n", config.search_domains.join(" "));
        files.push((SEARCH_FILE.to_string(), search));
    }
    make_dir(dir)?;
    remove_ours_except(dir, &files.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>())?;
    for (name, text) in &files {
        let path = dir.join(name);
        crate::private_fs::write_file_atomically(&path, text.as_bytes(), RESOLV_CONF_MODE)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(notes)
}

/// Removes every file of ours.
pub(super) fn remove(dir: &Path) -> Result<(), String> {
    remove_ours_except(dir, &[])
}

fn make_dir(dir: &Path) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(_) => DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("creating {}: {e}", dir.display())),
    }
}

/// Removes the regular files in `dir` that begin with our marker, but those in `keep`.
fn remove_ours_except(dir: &Path, keep: &[&str]) -> Result<(), String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("listing {}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = entry.path();
        let regular = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        if !regular || keep.iter().any(|k| name.as_os_str() == *k) || !is_ours(&path) {
            continue;
        }
        fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn is_ours(path: &Path) -> bool {
    regular_file::read(path, 64 * 1024)
        .is_ok_and(|bytes| bytes.split(|b| *b == b'\n').next() == Some(MARKER.as_bytes()))
}
