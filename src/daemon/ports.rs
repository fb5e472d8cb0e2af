//! The listening-ports driver: reads the host's listening ports (see
//! [`crate::platform::ports`]) on the poller's schedule, only while control wants them, and
//! hands a changed list to the loop as services for control. A reading is a file read on
//! Linux and a bounded `netstat` run elsewhere, done from the loop's timers, never while
//! packets are being moved.

use crate::control::tailcfg::Service;
use crate::platform::os_kind::OsKind;
use crate::platform::ports::poller::PortPoller;
use crate::platform::ports::services;
use crate::platform::ports::source::Source;
use crate::platform::router::bsd::PathRunner;
use std::time::Instant;

pub(super) struct Ports {
    /// `None` on an OS we know no source for: the ports are never read.
    source: Option<Source>,
    runner: PathRunner,
    poller: PortPoller,
}

impl Ports {
    /// The driver for the OS this binary was built for.
    pub(super) fn new() -> Ports {
        Ports::with_source(OsKind::current().map(Source::for_os), PathRunner::default())
    }

    fn with_source(source: Option<Source>, runner: PathRunner) -> Ports {
        let interval = source.as_ref().map(Source::interval).unwrap_or_default();
        Ports { source, runner, poller: PortPoller::new(interval) }
    }

    /// Whether control wants the services now (`CollectServices`, shields down).
    pub(super) fn set_wanted(&mut self, wanted: bool, now: Instant) {
        self.poller.set_wanted(wanted && self.source.is_some(), now);
    }

    #[must_use]
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.poller.poll_timeout()
    }

    /// Reads the ports if a reading is due: the services to tell control when they changed.
    pub(super) fn on_timeout(&mut self, now: Instant) -> Option<Vec<Service>> {
        if !self.poller.is_due(now) {
            return None;
        }
        let reading = self.source.as_ref()?.read(&self.runner);
        let ports = self.poller.on_reading(now, reading)?;
        let list: Vec<String> = ports.iter().map(ToString::to_string).collect();
        log::debug!("listening ports: {}", list.join(" "));
        Some(services(&ports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fresh_dir;
    use std::path::Path;
    use std::time::Duration;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    /// A `/proc/net/tcp` (little-endian layout) with listeners on 0.0.0.0 at `ports`.
    fn write_tcp(dir: &Path, ports: &[u16]) {
        let rows: String = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                format!("{i:4}: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {i} 1\n")
            })
            .collect();
        std::fs::write(dir.join("tcp"), format!("{HEADER}{rows}")).unwrap();
    }

    fn ports(services: Option<Vec<Service>>) -> Option<Vec<u16>> {
        services.map(|s| s.iter().map(|s| s.port).collect())
    }

    #[test]
    fn reads_only_while_wanted_and_tells_only_changes() {
        let dir = fresh_dir("daemon-ports");
        write_tcp(&dir, &[22]);
        let source = Source::ProcNet(dir.clone());
        let interval = source.interval();
        let mut driver = Ports::with_source(Some(source), PathRunner::default());
        let t0 = Instant::now();
        driver.set_wanted(false, t0);
        assert_eq!(driver.poll_timeout(), None);
        assert_eq!(driver.on_timeout(t0 + Duration::from_secs(3600)), None, "never while unwanted");
        driver.set_wanted(true, t0);
        assert_eq!(ports(driver.on_timeout(t0)), Some(vec![22]), "at once when wanted");
        let t1 = t0 + interval;
        assert_eq!(driver.poll_timeout(), Some(t1));
        write_tcp(&dir, &[22, 8080]);
        assert_eq!(driver.on_timeout(t1 - Duration::from_millis(1)), None, "not before it is due");
        assert_eq!(ports(driver.on_timeout(t1)), Some(vec![22, 8080]));
        assert_eq!(driver.on_timeout(t1 + interval), None, "unchanged: nothing to tell");
    }

    #[test]
    fn an_os_without_a_source_never_reads() {
        let mut driver = Ports::with_source(None, PathRunner::default());
        let now = Instant::now();
        driver.set_wanted(true, now);
        assert_eq!(driver.poll_timeout(), None);
        assert_eq!(driver.on_timeout(now), None);
    }
}
