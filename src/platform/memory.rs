//! Handing freed heap back to the OS after a large one-off burst of allocations: a netmap of
//! thousands of peers parsed from a config file or a control response, a `weft status`
//! answer of megabytes. glibc keeps what was freed in its arenas, so each burst's peak would
//! otherwise stay in the daemon's RSS for as long as it runs (measured at 10,000 peers: 2.7
//! KiB per peer after one status answer, against the 1 KiB the engine keeps).

/// Returns the free pages of the C allocator's heap to the OS. Only glibc needs asking
/// (`malloc_trim`); elsewhere this does nothing.
pub(crate) fn release_free_heap() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}
