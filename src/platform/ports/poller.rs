//! When to read the listening ports, and what of a reading is news: sans-IO, fed the time
//! and each reading's result by the daemon's loop.
//!
//! Readings happen only while control wants the services (and the shields are down), at the
//! source's interval, the first one as soon as they are wanted. A list equal to the last one
//! handed on is no news. A failing source is logged once, retried at a slower pace, and
//! logged again only after it worked in between.

use super::source::SourceError;
use super::ListeningPort;
use std::time::{Duration, Instant};

/// The pause after a failed reading: a missing `netstat` is not worth a process start every
/// few seconds.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct PortPoller {
    interval: Duration,
    /// The next reading; `None` while the ports are not wanted.
    next: Option<Instant>,
    /// What was last handed on since the ports became wanted.
    last: Option<Vec<ListeningPort>>,
    /// The last reading failed (and that was logged).
    failing: bool,
}

impl PortPoller {
    pub(crate) fn new(interval: Duration) -> PortPoller {
        PortPoller { interval, next: None, last: None, failing: false }
    }

    /// Starts readings (the first at once) or stops them. Once stopped, the next start hands
    /// its first list on whatever it holds: whoever asked may have forgotten the old one.
    pub(crate) fn set_wanted(&mut self, wanted: bool, now: Instant) {
        match (wanted, self.next) {
            (true, None) => self.next = Some(now),
            (false, Some(_)) => {
                self.next = None;
                self.last = None;
            }
            _ => {}
        }
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next.is_some_and(|at| at <= now)
    }

    /// Takes the reading made at `now`: the list when it is news, else `None`.
    pub(crate) fn on_reading(
        &mut self,
        now: Instant,
        reading: Result<Vec<ListeningPort>, SourceError>,
    ) -> Option<Vec<ListeningPort>> {
        // A reading finished after the ports stopped being wanted is dropped.
        self.next?;
        let ports = match reading {
            Ok(ports) => ports,
            Err(error) => {
                if !self.failing {
                    log::warn!(
                        "listening ports: {error}; control hears of no change until it works \
                         (next try in {}s)",
                        RETRY_AFTER_FAILURE.as_secs()
                    );
                }
                self.failing = true;
                self.next = Some(now + RETRY_AFTER_FAILURE);
                return None;
            }
        };
        if std::mem::take(&mut self.failing) {
            log::info!("listening ports: readable again");
        }
        self.next = Some(now + self.interval);
        if self.last.as_ref() == Some(&ports) {
            return None;
        }
        self.last = Some(ports.clone());
        Some(ports)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Proto;
    use super::*;
    use crate::log_capture::capture_logs;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn tcp(port: u16) -> ListeningPort {
        ListeningPort { port, proto: Proto::Tcp }
    }

    fn missing_netstat() -> SourceError {
        SourceError::Run {
            command: "netstat -na".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
    }

    #[test]
    fn reads_only_while_wanted_and_hands_on_only_changes() {
        let t0 = Instant::now();
        let mut poller = PortPoller::new(INTERVAL);
        assert_eq!(poller.poll_timeout(), None, "not wanted: no reading");
        poller.set_wanted(true, t0);
        assert!(poller.is_due(t0), "the first reading at once");
        assert_eq!(poller.on_reading(t0, Ok(vec![tcp(22)])), Some(vec![tcp(22)]));
        assert_eq!(poller.poll_timeout(), Some(t0 + INTERVAL));
        assert!(!poller.is_due(t0 + INTERVAL / 2));
        let t1 = t0 + INTERVAL;
        assert_eq!(poller.on_reading(t1, Ok(vec![tcp(22)])), None, "unchanged: no news");
        let t2 = t1 + INTERVAL;
        assert_eq!(poller.on_reading(t2, Ok(vec![tcp(22), tcp(80)])), Some(vec![tcp(22), tcp(80)]));
        poller.set_wanted(false, t2);
        assert_eq!(poller.poll_timeout(), None);
        assert_eq!(poller.on_reading(t2, Ok(vec![tcp(443)])), None, "a late reading is dropped");
        poller.set_wanted(true, t2);
        assert_eq!(
            poller.on_reading(t2, Ok(vec![tcp(22), tcp(80)])),
            Some(vec![tcp(22), tcp(80)]),
            "wanted again: the first list is told even if it did not change"
        );
    }

    #[test]
    fn a_failing_source_is_logged_once_and_retried_slowly() {
        let t0 = Instant::now();
        let t1 = t0 + RETRY_AFTER_FAILURE;
        let mut poller = PortPoller::new(INTERVAL);
        poller.set_wanted(true, t0);
        let ((), lines) = capture_logs(|| {
            assert_eq!(poller.on_reading(t0, Err(missing_netstat())), None);
            assert_eq!(poller.poll_timeout(), Some(t1));
            assert_eq!(poller.on_reading(t1, Err(missing_netstat())), None);
        });
        assert_eq!(warnings(&lines), 1, "{lines:?}");
        let ((), lines) = capture_logs(|| {
            assert_eq!(poller.on_reading(t1, Ok(vec![tcp(22)])), Some(vec![tcp(22)]));
            assert_eq!(poller.poll_timeout(), Some(t1 + INTERVAL), "back to the normal pace");
            poller.on_reading(t1 + INTERVAL, Err(missing_netstat()));
        });
        assert_eq!(warnings(&lines), 1, "failing again after working is told again: {lines:?}");
    }

    fn warnings(lines: &[String]) -> usize {
        lines.iter().filter(|l| l.starts_with("WARN") && l.contains("`netstat -na`")).count()
    }
}
