//! The route/link monitor driver: reads the kernel's change socket (netlink on Linux,
//! `PF_ROUTE` elsewhere; see `platform::monitor_socket`), has `platform::link_monitor`
//! judge each batch, and after a major change reports [`NetworkChanged`] once the burst is
//! over: the kernel announces one cable plug-in as a dozen link, address and route
//! messages, and the loop should rebind and re-probe once, not a dozen times.
//!
//! Changes on our own TUN are ignored (its index is given at start), so the routes and
//! addresses the router adds never trigger another round.

use super::tokens;
use crate::platform::interfaces;
use crate::platform::link_monitor::{Change, Monitor};
use crate::platform::monitor_socket::MonitorSocket;
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long after the first major change of a burst the loop reacts: long enough for the
/// rest of the burst (addresses after links, routes after addresses) to arrive, short
/// enough that peers barely notice the move.
const SETTLE: Duration = Duration::from_millis(500);

/// A major change, reported once per burst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NetworkChanged {
    /// The first major change of the burst, for the log.
    pub cause: Change,
    /// How many batches of messages the burst had.
    pub batches: usize,
}

pub(super) struct LinkMonitor {
    /// `None` where the OS gives no change socket: the daemon then never reacts (said once
    /// at start).
    socket: Option<MonitorSocket>,
    monitor: Monitor,
    burst: Burst,
    event: Option<NetworkChanged>,
}

impl LinkMonitor {
    /// Opens the change socket and learns the current interfaces and addresses, so that the
    /// kernel's re-announcements of them are not taken for changes. `own_tun` is our TUN's
    /// name (the fake has no interface).
    pub(super) fn open(own_tun: &str) -> LinkMonitor {
        let socket = MonitorSocket::open()
            .inspect_err(|e| {
                log::warn!("no route/link monitor ({e}): network changes go unnoticed")
            })
            .ok();
        let mut monitor = Monitor::new();
        monitor.set_own_tun(interfaces::index_of(own_tun));
        seed(&mut monitor);
        LinkMonitor { socket, monitor, burst: Burst::default(), event: None }
    }

    pub(super) fn register(&mut self, registry: &Registry) -> io::Result<()> {
        match &self.socket {
            Some(socket) => registry.register(
                &mut SourceFd(&socket.as_raw_fd()),
                tokens::LINK_MONITOR,
                Interest::READABLE,
            ),
            None => Ok(()),
        }
    }

    /// Reads and judges what the kernel announced.
    pub(super) fn on_ready(&mut self, now: Instant) {
        let Some(socket) = &self.socket else { return };
        let changes = match socket.read_changes() {
            Ok(changes) => changes,
            Err(e) => {
                log::warn!("route/link monitor: {e}");
                return;
            }
        };
        if let Some(cause) = self.monitor.first_major(&changes) {
            log::debug!("route/link monitor: {cause:?}");
            self.burst.major(now, cause);
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.burst.due()
    }

    /// Ends a settled burst: the change is reported and the interface state read afresh.
    pub(super) fn on_timeout(&mut self, now: Instant) {
        if let Some(changed) = self.burst.settled(now) {
            seed(&mut self.monitor);
            self.event = Some(changed);
        }
    }

    pub(super) fn poll_event(&mut self) -> Option<NetworkChanged> {
        self.event.take()
    }
}

/// The monitor learns the interfaces and addresses as they are now.
fn seed(monitor: &mut Monitor) {
    let snapshot = interfaces::snapshot();
    monitor.seed(&snapshot.interfaces, &snapshot.addresses);
}

/// The debounce: a burst starts at its first major change and is over [`SETTLE`] later,
/// however many changes follow (a flapping link must not postpone the reaction forever).
#[derive(Debug, Default)]
struct Burst {
    open: Option<(Instant, NetworkChanged)>,
}

impl Burst {
    fn major(&mut self, now: Instant, cause: &Change) {
        match &mut self.open {
            Some((_, changed)) => changed.batches += 1,
            None => {
                let changed = NetworkChanged { cause: cause.clone(), batches: 1 };
                self.open = Some((now + SETTLE, changed));
            }
        }
    }

    fn due(&self) -> Option<Instant> {
        self.open.as_ref().map(|(due, _)| *due)
    }

    fn settled(&mut self, now: Instant) -> Option<NetworkChanged> {
        match &self.open {
            Some((due, _)) if *due <= now => self.open.take().map(|(_, changed)| changed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32) -> Change {
        Change::LinkDeparted { index }
    }

    #[test]
    fn a_burst_is_reported_once_when_it_has_settled() {
        let start = Instant::now();
        let mut burst = Burst::default();
        assert_eq!(burst.due(), None);
        burst.major(start, &link(2));
        burst.major(start + Duration::from_millis(100), &link(3));
        burst.major(start + Duration::from_millis(400), &link(4));
        assert_eq!(burst.due(), Some(start + SETTLE), "later changes do not postpone it");
        assert_eq!(burst.settled(start + SETTLE - Duration::from_millis(1)), None);
        let reported = burst.settled(start + SETTLE);
        assert_eq!(reported, Some(NetworkChanged { cause: link(2), batches: 3 }));
        assert_eq!(burst.settled(start + SETTLE * 2), None, "once");
        assert_eq!(burst.due(), None);
        burst.major(start + SETTLE * 3, &link(5));
        assert_eq!(burst.due(), Some(start + SETTLE * 4), "the next burst starts afresh");
    }
}
