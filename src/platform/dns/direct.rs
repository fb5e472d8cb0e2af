//! Direct mode: weft writes /etc/resolv.conf itself, keeping the original beside it and
//! putting it back when it stops (or, after a crash, at the next start).
//!
//! The original is kept by a hard link (so a symlink, as resolved's or NetworkManager's
//! often is, stays a symlink), or by a copy where a link cannot be made. Our file goes in by
//! rename, so readers see the old file or ours, never half of one; where resolv.conf is a
//! bind mount (containers, a test's private mount namespace), rename cannot replace it and
//! the bytes are written in place instead. Nothing here follows a symlink when writing.

use super::resolv_file::{writer_of, Writer};
use crate::private_fs::write_file_atomically;
use crate::regular_file;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// resolv.conf is a few hundred bytes; a bigger one is read up to this much.
const MAX_RESOLV_CONF: u64 = 1 << 20;
/// What everyone may read and only root change, whatever weftd's umask.
pub(super) const RESOLV_CONF_MODE: u32 = 0o644;

/// Whether the original goes back only if the file is still ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PutBack {
    /// Direct mode: a file someone else wrote since is theirs to keep.
    IfOurs,
    /// OpenBSD: resolvd rewrites the file (and may drop our marker) while ours is applied.
    Always,
}

/// The file at `path` as text; `None` when there is nothing there at all (a dangling
/// symlink reads as empty text).
pub(super) fn read(path: &Path) -> Result<Option<String>, String> {
    match regular_file::read(path, MAX_RESOLV_CONF) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.is_not_found() && fs::symlink_metadata(path).is_ok() => Ok(Some(String::new())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Puts `text` at `path`, first keeping the original at `backup` unless the file there is
/// already ours (an earlier apply of this run, or of a run that crashed).
pub(super) fn replace(path: &Path, backup: &Path, text: &str) -> Result<(), String> {
    if let Some(current) = read(path)? {
        if writer_of(&current) != Writer::Weft {
            back_up(path, backup, &current)?;
        }
    }
    write(path, text)
}

/// Puts the original back (see [`PutBack`]); with no original, removes our file. `Ok(Some)`
/// is a note for the log: the file was no longer ours and is left alone.
pub(super) fn restore(path: &Path, backup: &Path, when: PutBack) -> Result<Option<String>, String> {
    let current = read(path)?;
    let ours = current.as_deref().is_none_or(|text| writer_of(text) == Writer::Weft);
    let has_backup = fs::symlink_metadata(backup).is_ok();
    if !ours && when == PutBack::IfOurs {
        remove(backup)?;
        let note = format!(
            "{} was rewritten by someone else while weft's was in place: it is kept, and \
             weft's copy of the original ({}) is dropped",
            path.display(),
            backup.display()
        );
        return Ok(has_backup.then_some(note));
    }
    if has_backup {
        match fs::rename(backup, path) {
            Ok(()) => {}
            Err(e) if is_mount_point_refusal(&e) => {
                let original = read(backup)?.unwrap_or_default();
                write_in_place(path, &original)?;
                remove(backup)?;
            }
            Err(e) => return Err(format!("putting {} back: {e}", path.display())),
        }
    } else if current.is_some() {
        remove(path)?;
    }
    Ok(None)
}

fn back_up(path: &Path, backup: &Path, current: &str) -> Result<(), String> {
    // A backup left beside a file that is not ours is older than that file: drop it.
    remove(backup)?;
    if fs::hard_link(path, backup).is_ok() {
        return Ok(());
    }
    write_file_atomically(backup, current.as_bytes(), RESOLV_CONF_MODE)
        .map_err(|e| format!("keeping {} as {}: {e}", path.display(), backup.display()))
}

/// Writes `text` to `path` atomically (mode 0644), or in place where `path` is a mount
/// point.
pub(super) fn write(path: &Path, text: &str) -> Result<(), String> {
    match write_file_atomically(path, text.as_bytes(), RESOLV_CONF_MODE) {
        Ok(()) => Ok(()),
        Err(e) if is_mount_point_refusal(&e) => write_in_place(path, text),
        Err(e) => Err(format!("writing {}: {e}", path.display())),
    }
}

/// rename(2) onto a bind-mounted file fails with EBUSY (or EXDEV across mounts).
fn is_mount_point_refusal(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EBUSY) | Some(libc::EXDEV))
}

fn write_in_place(path: &Path, text: &str) -> Result<(), String> {
    let written = OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()));
    written.map_err(|e| format!("writing {} in place: {e}", path.display()))
}

pub(super) fn remove(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_dir;
    use std::os::unix::fs::{symlink, PermissionsExt};

    const ORIGINAL: &str = "# Generated by NetworkManager\nnameserver 192.168.1.1\n";
    const OURS: &str = "# resolv.conf generated by weft\nnameserver 100.100.100.100\n";

    fn paths(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        (dir.join("resolv.conf"), dir.join("resolv.pre-weft-backup.conf"))
    }

    #[test]
    fn replaces_with_mode_0644_and_puts_the_original_back_byte_for_byte() {
        let dir = fresh_dir("dns-direct");
        let (path, backup) = paths(&dir);
        fs::write(&path, ORIGINAL).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        replace(&path, &backup, OURS).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), OURS);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o644);
        assert_eq!(fs::read_to_string(&backup).unwrap(), ORIGINAL);
        // A second apply keeps the original, not our first file.
        replace(&path, &backup, &format!("{OURS}search a.example\n")).unwrap();
        assert_eq!(fs::read_to_string(&backup).unwrap(), ORIGINAL);
        assert_eq!(restore(&path, &backup, PutBack::IfOurs).unwrap(), None);
        assert_eq!(fs::read_to_string(&path).unwrap(), ORIGINAL);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o600);
        assert!(fs::symlink_metadata(&backup).is_err());
    }

    #[test]
    fn a_symlinked_original_stays_a_symlink_and_its_target_is_never_written() {
        let dir = fresh_dir("dns-direct-link");
        let (path, backup) = paths(&dir);
        let target = dir.join("stub-resolv.conf");
        fs::write(&target, ORIGINAL).unwrap();
        symlink(&target, &path).unwrap();
        replace(&path, &backup, OURS).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), ORIGINAL, "target untouched");
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        restore(&path, &backup, PutBack::IfOurs).unwrap();
        assert_eq!(fs::read_link(&path).unwrap(), target);
    }

    #[test]
    fn a_file_someone_else_wrote_meanwhile_is_kept() {
        let dir = fresh_dir("dns-direct-trampled");
        let (path, backup) = paths(&dir);
        fs::write(&path, ORIGINAL).unwrap();
        replace(&path, &backup, OURS).unwrap();
        fs::write(&path, "nameserver 10.9.9.9\n").unwrap();
        let note = restore(&path, &backup, PutBack::IfOurs).unwrap().unwrap();
        assert!(note.contains("rewritten by someone else"), "{note}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "nameserver 10.9.9.9\n");
        assert!(fs::symlink_metadata(&backup).is_err());
        // OpenBSD's resolvd rewrites the file under us: the original goes back anyway.
        fs::write(&path, ORIGINAL).unwrap();
        replace(&path, &backup, OURS).unwrap();
        fs::write(&path, "nameserver 10.9.9.9 # resolvd: tun0\n").unwrap();
        restore(&path, &backup, PutBack::Always).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), ORIGINAL);
    }

    #[test]
    fn with_no_original_our_file_is_removed() {
        let dir = fresh_dir("dns-direct-none");
        let (path, backup) = paths(&dir);
        replace(&path, &backup, OURS).unwrap();
        restore(&path, &backup, PutBack::IfOurs).unwrap();
        assert!(fs::symlink_metadata(&path).is_err());
    }
}
