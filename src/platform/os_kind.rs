//! Which operating system's conventions to follow. Usually the one we were built for, but
//! the portable code (command grammar, routing-message layouts, TUN framing) takes it as a
//! value so that every OS's rules compile and are tested everywhere.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum OsKind {
    Linux,
    FreeBsd,
    NetBsd,
    OpenBsd,
    Darwin,
    Illumos,
}

impl OsKind {
    pub(crate) const ALL: [OsKind; 6] = [
        OsKind::Linux,
        OsKind::FreeBsd,
        OsKind::NetBsd,
        OsKind::OpenBsd,
        OsKind::Darwin,
        OsKind::Illumos,
    ];

    /// The BSD-derived systems, whose routes are set with `route(8)` and `ifconfig(8)`.
    #[cfg(test)]
    pub(crate) const BSD_FAMILY: [OsKind; 5] =
        [OsKind::FreeBsd, OsKind::NetBsd, OsKind::OpenBsd, OsKind::Darwin, OsKind::Illumos];

    /// The OS this binary was built for, when it is one we know.
    pub(crate) fn current() -> Option<OsKind> {
        match std::env::consts::OS {
            "macos" => Some(OsKind::Darwin),
            "solaris" => Some(OsKind::Illumos),
            other => other.parse().ok(),
        }
    }

    /// The lower-case name used in `WEFT_ROUTER` and in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OsKind::Linux => "linux",
            OsKind::FreeBsd => "freebsd",
            OsKind::NetBsd => "netbsd",
            OsKind::OpenBsd => "openbsd",
            OsKind::Darwin => "darwin",
            OsKind::Illumos => "illumos",
        }
    }

    /// Whether a TUN interface stays when its descriptor is closed (the BSDs' `/dev/tunN`,
    /// illumos's persistently linked `tunN`), so that it must be destroyed (`ifconfig tunN
    /// destroy`, `unplumb` on illumos) at stop and after a crash. macOS's utun and Linux's
    /// TUN go with their descriptor.
    pub(crate) fn tun_outlives_descriptor(self) -> bool {
        matches!(self, OsKind::FreeBsd | OsKind::NetBsd | OsKind::OpenBsd | OsKind::Illumos)
    }

    /// `AF_INET6` on this OS (`AF_INET` is 2 everywhere).
    pub(crate) fn af_inet6(self) -> u32 {
        match self {
            OsKind::Linux => 10,
            OsKind::FreeBsd => 28,
            OsKind::NetBsd | OsKind::OpenBsd => 24,
            OsKind::Darwin => 30,
            OsKind::Illumos => 26,
        }
    }
}

/// `AF_INET`, the same number on every OS we know.
pub(crate) const AF_INET: u32 = 2;

impl fmt::Display for OsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OsKind {
    type Err = String;

    fn from_str(name: &str) -> Result<OsKind, String> {
        OsKind::ALL.into_iter().find(|os| os.name() == name).ok_or_else(|| {
            let known: Vec<&str> = OsKind::ALL.iter().map(|os| os.name()).collect();
            format!("unknown OS {name:?}; expected one of {}", known.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for os in OsKind::ALL {
            assert_eq!(os.name().parse::<OsKind>(), Ok(os));
        }
        let err = "macos".parse::<OsKind>().unwrap_err();
        assert!(err.contains("freebsd, netbsd"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_build_target_is_known_here() {
        assert_eq!(OsKind::current(), Some(OsKind::Linux));
    }
}
