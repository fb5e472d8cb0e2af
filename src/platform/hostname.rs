//! The host's name, as `gethostname(2)` gives it.

/// The host's name, or "weft" when the OS has none to give: names shown in status and sent to
/// the control server must never be empty.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "weft".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match String::from_utf8_lossy(&buf[..end]) {
        name if name.is_empty() => "weft".into(),
        name => name.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_has_a_name() {
        let name = super::hostname();
        assert!(!name.is_empty() && !name.contains('\0'), "{name:?}");
    }
}
