//! Whether the kernel can carry IPv6 policy routing. Without it every IPv6 command would
//! fail, so the router leaves IPv6 out instead of reporting the same error forever.

/// Reads `/proc/sys/net/ipv6/conf/all/disable_ipv6`: missing means the kernel has no IPv6
/// at all (`ipv6.disable=1` or no module); `1` means an administrator switched it off.
pub(super) fn enabled_in_proc(disable_ipv6: Option<&str>) -> bool {
    disable_ipv6.map(str::trim) == Some("0")
}

/// The kernel's answer, confirmed by `ip -6 rule` working (a kernel can have IPv6 but lack
/// IPv6 multiple routing tables).
#[cfg(target_os = "linux")]
pub(super) fn detect(tool: &mut dyn super::Tool) -> bool {
    let proc = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").ok();
    enabled_in_proc(proc.as_deref())
        && tool.run(&["-6", "rule", "show"], "").is_ok_and(|out| out.success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proc_switch() {
        assert!(enabled_in_proc(Some("0\n")));
        assert!(!enabled_in_proc(Some("1\n")));
        assert!(!enabled_in_proc(None));
        assert!(!enabled_in_proc(Some("")));
    }
}
