//! Claiming the local API socket's path safely. The socket is the daemon's root-only control
//! interface, so its directory must be ours alone (else anyone who can write there could
//! swap the socket), and nothing at the path is deleted unless it is a socket nobody answers
//! on: a regular file given by mistake as `--socket` survives, and a live daemon keeps its
//! socket.

use std::fmt;
use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the socket's path can't be used.
#[derive(Debug)]
pub(crate) enum ListenError {
    /// The directory exists but is a symlink or not a directory.
    NotADirectory(PathBuf),
    /// Group or others may write into the directory (and so replace the socket).
    SharedDirectory(PathBuf, u32),
    /// The directory belongs to another user (who could replace the socket).
    ForeignDirectory(PathBuf, u32),
    /// Something that is not a socket is in the way.
    NotASocket(PathBuf),
    /// A process answers on the socket: most likely another weftd.
    InUse(PathBuf),
    Io(&'static str, PathBuf, io::Error),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::NotADirectory(dir) => {
                write!(f, "{} is not a directory (symlinks are not followed)", dir.display())
            }
            ListenError::SharedDirectory(dir, mode) => write!(
                f,
                "directory {} is writable by group or others (mode {:04o}); use a private one",
                dir.display(),
                mode & 0o7777
            ),
            ListenError::ForeignDirectory(dir, uid) => write!(
                f,
                "directory {} belongs to uid {uid}, not to this user or root",
                dir.display()
            ),
            ListenError::NotASocket(path) => {
                write!(f, "{} exists and is not a socket; refusing to replace it", path.display())
            }
            ListenError::InUse(path) => write!(
                f,
                "another process (a running weftd?) is listening on {}; refusing to start",
                path.display()
            ),
            ListenError::Io(what, path, e) => write!(f, "{what} {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for ListenError {}

/// Makes `path` ready to bind: its directory private (created 0700 when missing), any stale
/// socket removed.
pub(crate) fn prepare(path: &Path) -> Result<(), ListenError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    private_directory(dir)?;
    remove_stale_socket(path)
}

fn private_directory(dir: &Path) -> Result<(), ListenError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let io_error = |e| ListenError::Io("creating directory", dir.to_path_buf(), e);
            DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_error)?;
            // The umask may have taken bits away; 0700 is what we mean, whatever it is.
            fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(io_error)?;
        }
        Err(e) => return Err(ListenError::Io("checking directory", dir.to_path_buf(), e)),
    }
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| ListenError::Io("checking directory", dir.to_path_buf(), e))?;
    if !meta.is_dir() {
        return Err(ListenError::NotADirectory(dir.to_path_buf()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ListenError::SharedDirectory(dir.to_path_buf(), meta.mode()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(ListenError::ForeignDirectory(dir.to_path_buf(), meta.uid()));
    }
    Ok(())
}

/// Removes a socket left behind by a daemon that is gone; refuses anything else.
fn remove_stale_socket(path: &Path) -> Result<(), ListenError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ListenError::Io("checking", path.to_path_buf(), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket(path.to_path_buf()));
    }
    // Non-blocking, so a live daemon with a full backlog counts as live instead of hanging us.
    match mio::net::UnixStream::connect(path) {
        Ok(_) => Err(ListenError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(ListenError::InUse(path.to_path_buf()))
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path)
            .map_err(|e| ListenError::Io("removing stale socket", path.to_path_buf(), e)),
        Err(e) => Err(ListenError::Io("checking the existing socket", path.to_path_buf(), e)),
    }
}

/// Identifies the socket file we bound, so we delete it on exit only if it is still ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(crate) fn of(path: &Path) -> io::Result<FileId> {
        let meta = fs::symlink_metadata(path)?;
        Ok(FileId { dev: meta.dev(), ino: meta.ino() })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A private scratch directory under the system temp dir, removed on drop.
    pub(crate) struct Scratch(pub PathBuf);

    impl Scratch {
        pub(crate) fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("weft-socket-test-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            DirBuilder::new().mode(0o700).create(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn missing_directory_is_created_private() {
        let scratch = Scratch::new("create");
        let dir = scratch.0.join("run/weft");
        prepare(&dir.join("weftd.sock")).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn shared_or_linked_directories_are_refused() {
        let scratch = Scratch::new("shared");
        let shared = scratch.0.join("shared");
        DirBuilder::new().mode(0o700).create(&shared).unwrap();
        fs::set_permissions(&shared, Permissions::from_mode(0o1777)).unwrap();
        let e = prepare(&shared.join("weftd.sock")).unwrap_err();
        assert!(matches!(e, ListenError::SharedDirectory(..)), "{e}");
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        let link = scratch.0.join("link");
        std::os::unix::fs::symlink(&scratch.0, &link).unwrap();
        assert!(matches!(prepare(&link.join("weftd.sock")), Err(ListenError::NotADirectory(_))));
    }

    #[test]
    fn foreign_owned_directories_are_refused() {
        let scratch = Scratch::new("foreign");
        let foreign = scratch.0.join("foreign");
        DirBuilder::new().mode(0o700).create(&foreign).unwrap();
        // SAFETY: plain chown of a path we created; nobody = 65534 on Linux and the BSDs.
        let c_path = std::ffi::CString::new(foreign.as_os_str().as_encoded_bytes()).unwrap();
        if unsafe { libc::chown(c_path.as_ptr(), 65534, 65534) } != 0 {
            return; // not root: cannot make a foreign directory to test with
        }
        let e = prepare(&foreign.join("weftd.sock")).unwrap_err();
        assert!(matches!(e, ListenError::ForeignDirectory(_, 65534)), "{e}");
    }

    #[test]
    fn a_regular_file_at_the_path_is_left_alone() {
        let scratch = Scratch::new("file");
        let path = scratch.0.join("weftd.sock");
        fs::write(&path, b"precious").unwrap();
        let e = prepare(&path).unwrap_err();
        assert!(matches!(e, ListenError::NotASocket(_)), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn a_live_socket_is_kept_and_a_stale_one_replaced() {
        let scratch = Scratch::new("live");
        let path = scratch.0.join("weftd.sock");
        let live = UnixListener::bind(&path).unwrap();
        let e = prepare(&path).unwrap_err();
        assert!(matches!(e, ListenError::InUse(_)), "{e}");
        assert!(e.to_string().contains("refusing to start"), "{e}");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
        drop(live); // the file stays behind, with nobody listening
        prepare(&path).unwrap();
        assert!(fs::symlink_metadata(&path).is_err(), "the stale socket is gone");
    }
}
