//! Reading a whole file weft was pointed at — its config, its state, the host's `/etc/hosts`
//! and `resolv.conf` — without letting the file stall or swamp the daemon's one thread.
//!
//! A path may name a FIFO (whose open and reads wait for a writer), a device such as
//! `/dev/zero` (endless), or a directory; its size in `metadata()` says nothing for those. So
//! the file is opened without blocking, the *open descriptor* is checked to be a regular file
//! (no window for a swap between check and read), and the read stops one byte past the limit.
//! Symlinks are followed: a config kept elsewhere and linked into place is common, and what
//! matters is where the link ends.

use std::fmt;
use std::fs::{FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Open(io::Error),
    /// A FIFO, device, directory or socket; the text says which.
    NotRegular(&'static str),
    /// Longer than the caller's limit, in bytes.
    TooLarge(u64),
    Read(io::Error),
}

impl ReadError {
    /// The file does not exist, which callers often treat as empty or "not yet".
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Open(error) if error.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Open(error) => write!(f, "cannot open: {error}"),
            ReadError::NotRegular(kind) => write!(f, "is {kind}, not a regular file"),
            ReadError::TooLarge(limit) => write!(f, "larger than {}", human_size(*limit)),
            ReadError::Read(error) => write!(f, "cannot read: {error}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The whole regular file at `path`, at most `limit` bytes, read without ever blocking on a
/// FIFO or reading a device.
pub(crate) fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK makes opening a FIFO return at once; O_NOCTTY keeps a terminal device from
    // becoming the daemon's controlling terminal. Neither changes how a regular file reads.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::Open)?;
    let file_type = file.metadata().map_err(ReadError::Open)?.file_type();
    if !file_type.is_file() {
        return Err(ReadError::NotRegular(kind(file_type)));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(ReadError::Read)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

fn kind(file_type: FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "something else"
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fresh_dir, mkfifo, within};

    #[test]
    fn reads_regular_files_up_to_the_limit_and_through_links() {
        let dir = fresh_dir("regular-file");
        let file = dir.join("file");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read(&file, 5).unwrap(), b"12345");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read(&link, 5).unwrap(), b"12345");
        let error = read(&file, 4).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge(4)), "{error}");
        assert_eq!(error.to_string(), "larger than 4 bytes");
        assert!(read(&dir.join("absent"), 5).unwrap_err().is_not_found());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = fresh_dir("special-files");
        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        let link_to_zero = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link_to_zero).unwrap();
        for (path, says) in [
            (fifo, "is a FIFO, not a regular file"),
            (link_to_zero, "is a character device, not a regular file"),
            (dir.clone(), "is a directory, not a regular file"),
        ] {
            let error = within(5, move || read(&path, 1 << 20)).unwrap_err();
            assert_eq!(error.to_string(), says);
            assert!(!error.is_not_found());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
