//! Retry timing for control connections: n² × 10 ms, capped at 30 s, randomised by ×[0.5, 1.5)
//! so a fleet that lost its server doesn't come back in lockstep.

use crate::xorshift::Rng;
use std::time::Duration;

const STEP: Duration = Duration::from_millis(10);
const CAP: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait before the next attempt after one more failure. `jitter` in [0, 1).
    #[must_use]
    pub(crate) fn next_delay(&mut self, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let n = u64::from(self.failures.min(1000));
        let base = STEP.saturating_mul((n * n) as u32).min(CAP);
        base.mul_f64(0.5 + jitter.clamp(0.0, 0.999))
    }

    /// Success: the next failure starts from the shortest wait again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Jitter values in [0, 1) from a seed the driver read from the OS once: different on every
/// node, yet the same schedule again for the same seed (tests, replays).
pub(crate) struct Jitter(Rng);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Jitter {
        Jitter(Rng::new(seed))
    }

    pub(crate) fn draw(&mut self) -> f64 {
        self.0.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_quadratically_then_caps() {
        let mut b = Backoff::default();
        let waits: Vec<_> = (0..100).map(|_| b.next_delay(0.5)).collect();
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[1], Duration::from_millis(40));
        assert_eq!(waits[9], Duration::from_secs(1));
        assert_eq!(*waits.last().unwrap(), CAP);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(5));
        assert!(b.next_delay(0.9999) < Duration::from_millis(60));
    }

    #[test]
    fn jitter_is_spread_over_the_unit_interval_and_follows_its_seed() {
        let draws: Vec<f64> = {
            let mut jitter = Jitter::new(7);
            (0..1000).map(|_| jitter.draw()).collect()
        };
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let low = draws.iter().filter(|j| **j < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
        let mut again = Jitter::new(7);
        assert!(draws.iter().all(|j| *j == again.draw()));
        assert_ne!(Jitter::new(8).draw(), draws[0]);
    }
}
