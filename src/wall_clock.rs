//! The wall clock as the sans-IO cores see it: one reading of both clocks, taken by the driver,
//! so every wall-clock time a core needs follows from the monotonic `now` it is handed. The
//! same `now` then always means the same wall time (a status request does not drift, a test
//! replays exactly), and a core never reads the OS clock itself.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WallClock {
    instant: Instant,
    wall: SystemTime,
}

impl WallClock {
    /// `wall` is the wall-clock reading taken at the same moment as `instant`.
    pub(crate) fn new(instant: Instant, wall: SystemTime) -> WallClock {
        WallClock { instant, wall }
    }

    /// Both clocks read now; for drivers only.
    pub(crate) fn read_os(now: Instant) -> WallClock {
        WallClock::new(now, SystemTime::now())
    }

    /// The wall-clock time of `instant`, before the anchor as well as after it (an event
    /// recorded before the reading keeps its place). A time the platform cannot represent
    /// reads as the anchor's own, or as 1970.
    pub(crate) fn wall_at(&self, instant: Instant) -> SystemTime {
        match instant.checked_duration_since(self.instant) {
            Some(after) => self.wall.checked_add(after).unwrap_or(self.wall),
            None => self.wall.checked_sub(self.instant - instant).unwrap_or(UNIX_EPOCH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_map_to_wall_times_on_both_sides_of_the_anchor() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = WallClock::new(t0, wall);
        assert_eq!(clock.wall_at(t0), wall);
        assert_eq!(clock.wall_at(t0 + Duration::from_secs(5)), wall + Duration::from_secs(5));
        assert_eq!(clock.wall_at(t0 - Duration::from_secs(5)), wall - Duration::from_secs(5));
    }
}
