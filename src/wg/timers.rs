//! When to consult boringtun's WireGuard timers, so that an idle daemon sleeps.
//!
//! boringtun expects `update_timers` to be called often (its own device calls it four times a
//! second). We call it once a second only for *hot* peers — those that sent or received within
//! the last [`HOT_WINDOW`], or that keep persistent keepalives — which covers every timer
//! WireGuard has while traffic flows (handshake retries at 5 s, passive keepalive at 10 s,
//! rekeying). A peer that falls quiet gets a single *cold* check after [`EXPIRY_CHECK`], when
//! WireGuard wipes the session keys of a silent peer, and then no wake-ups at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub(crate) const TICK: Duration = Duration::from_secs(1);
pub(crate) const HOT_WINDOW: Duration = Duration::from_secs(30);
/// WireGuard's REJECT_AFTER_TIME × 3 (540 s) and a second of slack.
pub(crate) const EXPIRY_CHECK: Duration = Duration::from_secs(541);

/// Per-peer timer bookkeeping, kept beside the peer's session.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    pub last_activity: Instant,
    /// Listed in the schedule's hot set.
    pub hot: bool,
    /// Time of this peer's live entry in the cold heap.
    pub cold_at: Option<Instant>,
    /// Persistent keepalives keep a peer hot for good.
    pub keepalive: bool,
}

impl Clock {
    pub(crate) fn new(now: Instant, keepalive: bool) -> Clock {
        Clock { last_activity: now, hot: false, cold_at: None, keepalive }
    }
}

/// Why a peer's timers are due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Hot,
    Cold(Instant),
}

/// The hot set and the cold heap of all peers, keyed by local index.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    hot: Vec<u32>,
    next_hot_tick: Option<Instant>,
    cold: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl Schedule {
    /// Records traffic with peer `id`; called on the data path, so it is O(1).
    pub(crate) fn activity(&mut self, id: u32, clock: &mut Clock, now: Instant) {
        clock.last_activity = now;
        if !clock.hot {
            clock.hot = true;
            self.hot.push(id);
            self.next_hot_tick.get_or_insert(now + TICK);
        }
    }

    /// The earliest moment any peer's timers need consulting.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let cold = self.cold.peek().map(|Reverse((at, _))| *at);
        match (self.next_hot_tick, cold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves every peer whose timers are due at `now` into `out`. Hot peers leave the hot set
    /// and return to it through [`Schedule::settle`]; the caller clears `clock.hot` for them.
    pub(crate) fn take_due(&mut self, now: Instant, out: &mut Vec<(u32, Due)>) {
        if self.next_hot_tick.is_some_and(|t| t <= now) {
            self.next_hot_tick = None;
            out.extend(self.hot.drain(..).map(|id| (id, Due::Hot)));
        }
        while let Some(Reverse((at, id))) = self.cold.peek().copied() {
            if at > now {
                break;
            }
            self.cold.pop();
            out.push((id, Due::Cold(at)));
        }
    }

    /// After a peer's timers ran: keep it hot while it is busy, else give it one cold check.
    pub(crate) fn settle(&mut self, id: u32, clock: &mut Clock, now: Instant) {
        if clock.keepalive || now < clock.last_activity + HOT_WINDOW {
            if !clock.hot {
                clock.hot = true;
                self.hot.push(id);
            }
            self.next_hot_tick.get_or_insert(now + TICK);
            return;
        }
        let at = clock.last_activity + EXPIRY_CHECK;
        if at > now && clock.cold_at != Some(at) {
            clock.cold_at = Some(at);
            self.cold.push(Reverse((at, id)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives one peer as the engine does and returns how many times its timers ran.
    fn run(schedule: &mut Schedule, clock: &mut Clock, from: Instant, until: Instant) -> usize {
        let mut runs = 0;
        let mut due = Vec::new();
        while let Some(at) = schedule.poll_timeout() {
            if at > until {
                break;
            }
            assert!(at >= from);
            schedule.take_due(at, &mut due);
            for (id, why) in due.drain(..) {
                match why {
                    Due::Hot => clock.hot = false,
                    Due::Cold(t) if clock.hot || clock.cold_at != Some(t) => continue,
                    Due::Cold(_) => clock.cold_at = None,
                }
                runs += 1;
                schedule.settle(id, clock, at);
            }
        }
        runs
    }

    #[test]
    fn an_untouched_peer_never_wakes_the_loop() {
        let schedule = Schedule::default();
        assert_eq!(schedule.poll_timeout(), None);
    }

    #[test]
    fn a_quiet_peer_ticks_through_the_hot_window_then_once_more_then_sleeps() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let mut clock = Clock::new(t0, false);
        s.activity(7, &mut clock, t0);
        let runs = run(&mut s, &mut clock, t0, t0 + Duration::from_secs(3600));
        assert_eq!(runs, HOT_WINDOW.as_secs() as usize + 1, "30 hot ticks and one expiry check");
        assert_eq!(s.poll_timeout(), None, "asleep for good");
    }

    #[test]
    fn keepalive_keeps_ticking() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let mut clock = Clock::new(t0, true);
        s.activity(1, &mut clock, t0);
        let runs = run(&mut s, &mut clock, t0, t0 + Duration::from_secs(100));
        assert_eq!(runs, 100);
        assert!(s.poll_timeout().is_some());
    }

    #[test]
    fn activity_during_the_cold_wait_supersedes_the_stale_entry() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let mut clock = Clock::new(t0, false);
        s.activity(3, &mut clock, t0);
        run(&mut s, &mut clock, t0, t0 + Duration::from_secs(60));
        let later = t0 + Duration::from_secs(100);
        s.activity(3, &mut clock, later);
        let runs = run(&mut s, &mut clock, t0, later + Duration::from_secs(3600));
        assert_eq!(runs, 31, "the stale cold entry at t0+541s is skipped");
    }
}
