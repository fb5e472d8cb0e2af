//! Directories and files that hold secrets — the state directory and file (machine and node
//! keys), the local API socket's directory — made so that no other user can read or replace
//! them, whatever the umask and whatever was left lying at the path.
//!
//! A umask can only take permission bits away, so creating with an explicit narrow mode is
//! umask-proof on the wide side; the mode is then set exactly so a strict umask does not lock
//! the owner out. A file is never opened if it already exists: a stale temp file would lend
//! its mode, and a symlink planted in its place would make root write the keys wherever it
//! points.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a directory is not fit to hold secrets. Displays without the path; callers add it.
#[derive(Debug)]
pub(crate) enum PrivateDirError {
    Create(io::Error),
    NotADirectory,
    /// Its owner could rename or replace what weft puts there.
    NotOwned {
        owner: u32,
        us: u32,
    },
    /// Group or other users could rename or replace what weft puts there.
    Writable {
        mode: u32,
    },
}

impl fmt::Display for PrivateDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivateDirError::Create(error) => write!(f, "cannot create: {error}"),
            PrivateDirError::NotADirectory => f.write_str("exists but is not a directory"),
            PrivateDirError::NotOwned { owner, us } => write!(
                f,
                "is owned by uid {owner}, not by this process (uid {us}); refusing to keep keys there"
            ),
            PrivateDirError::Writable { mode } => write!(
                f,
                "is writable by other users (mode {mode:04o}); refusing to keep keys there \
                 (chmod 700 it, or choose another directory)"
            ),
        }
    }
}

impl std::error::Error for PrivateDirError {}

/// Makes `dir` with mode 0700 (missing parents with 0755 at most), or accepts an existing
/// one, then checks that it is a directory (a symlink to one is followed), owned by this
/// process's effective user, and not writable by group or others — refusing it otherwise.
/// An existing directory's mode is not changed: a wider one the owner chose (0755) is
/// fine, as the files weft puts there are 0600.
///
/// For any directory weft keeps secrets or its control socket in: the state directory
/// (`--statedir`) and the local API socket's directory.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(PrivateDirError::Create)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        // The umask may have taken the owner's own bits as well.
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(0o700))
            .map_err(PrivateDirError::Create)?,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(PrivateDirError::Create(error)),
    }
    check_private_dir(dir)
}

fn check_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    let meta = fs::metadata(dir).map_err(PrivateDirError::Create)?;
    if !meta.is_dir() {
        return Err(PrivateDirError::NotADirectory);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let us = unsafe { libc::geteuid() };
    if meta.uid() != us {
        return Err(PrivateDirError::NotOwned { owner: meta.uid(), us });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(PrivateDirError::Writable { mode });
    }
    Ok(())
}

/// Replaces `path` with `bytes` in one atomic step, as a file of mode 0600: a temp file beside
/// it (`.<name>.tmp`), fsync, rename over `path`, fsync of the directory, so readers see the
/// old file or the new one, never a mix. A stale temp file — or a symlink in its place — is
/// unlinked, never opened; the temp file is then created with `O_CREAT|O_EXCL|O_NOFOLLOW`, so
/// if anything reappears at the path in between, the write fails instead of following it.
/// The directory should have passed [`create_private_dir`].
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file_atomically(path, bytes, 0o600)
}

/// [`write_private_file`] with another exact `mode`: for files others must read (a
/// resolv.conf is 0644), written with the same care.
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = temp_path(path);
    match fs::remove_file(&temp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(mode)
        .open(&temp)?;
    let written = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    fs::File::open(dir)?.sync_all()
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// A warning for the log and `weft status` when `path`, a file holding a private key (a
/// config, the state file), can be read or written by group or others; `None` when it is
/// private or absent.
pub(crate) fn exposure_warning(path: &Path) -> Option<String> {
    let mode = fs::metadata(path).ok()?.mode() & 0o7777;
    (mode & 0o066 != 0).then(|| {
        format!(
            "{} holds a private key but other users can read or change it (mode {mode:04o}); \
             chmod 600 it",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_dir;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn makes_missing_directories_private_and_accepts_existing_safe_ones() {
        let base = fresh_dir("private-dir");
        let dir = base.join("a/b/keys");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.join("a/b")) & 0o022, 0);
        create_private_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755, "an existing directory's mode was changed");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_files_and_shared_directories() {
        let base = fresh_dir("private-dir-refused");
        let file = base.join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(create_private_dir(&file), Err(PrivateDirError::NotADirectory)));
        fs::set_permissions(&base, Permissions::from_mode(0o1777)).unwrap();
        let error = create_private_dir(&base).unwrap_err();
        assert!(matches!(error, PrivateDirError::Writable { mode: 0o1777 }), "{error}");
        assert!(error.to_string().contains("mode 1777"), "{error}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn writes_replace_the_file_whole() {
        let base = fresh_dir("private-write");
        let path = base.join("secret");
        write_private_file(&path, b"first").unwrap();
        write_private_file(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_dir(&base).unwrap().count(), 1, "a temp file was left behind");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn warns_about_key_files_others_can_read() {
        let base = fresh_dir("exposure");
        let path = base.join("wg0.conf");
        assert_eq!(exposure_warning(&path), None);
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        assert_eq!(exposure_warning(&path), None);
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let warning = exposure_warning(&path).unwrap();
        assert!(warning.contains("wg0.conf") && warning.contains("mode 0640"), "{warning}");
        fs::remove_dir_all(&base).unwrap();
    }
}
