//! Control's clock versus ours. Key expiry is decided by control's notion of "now", so a
//! node with a wrong local clock neither drops valid peers nor keeps expired ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Smaller differences are noise (network delay, ordinary drift) and are ignored.
const MIN_SKEW: Duration = Duration::from_secs(60);

/// 2023-01-10: an adjusted "now" before this comes from a bogus ControlTime, and expiry is not
/// judged at all rather than wrongly.
const SANE_TIME_FLOOR: Duration = Duration::from_secs(1_673_373_066);

/// How far control's clock is from the local one, when that matters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum ClockSkew {
    #[default]
    None,
    ControlAhead(Duration),
    ControlBehind(Duration),
}

impl ClockSkew {
    /// Records a ControlTime received at local time `now`; true if the correction changed.
    pub(super) fn observe(&mut self, control_time: SystemTime, now: SystemTime) -> bool {
        let measured = match control_time.duration_since(now) {
            Ok(ahead) if ahead > MIN_SKEW => ClockSkew::ControlAhead(ahead),
            Err(behind) if behind.duration() > MIN_SKEW => {
                ClockSkew::ControlBehind(behind.duration())
            }
            _ => ClockSkew::None,
        };
        let changed = measured != *self;
        *self = measured;
        changed
    }

    /// Control's "now" for local time `now`, or `None` when it is not plausible enough to
    /// judge key expiry by.
    pub(super) fn control_now(&self, now: SystemTime) -> Option<SystemTime> {
        let adjusted = match *self {
            ClockSkew::None => Some(now),
            ClockSkew::ControlAhead(by) => now.checked_add(by),
            ClockSkew::ControlBehind(by) => now.checked_sub(by),
        }?;
        (adjusted >= UNIX_EPOCH + SANE_TIME_FLOOR).then_some(adjusted)
    }

    /// The local time at which control's clock reads `control_time`.
    pub(super) fn local_time_of(&self, control_time: SystemTime) -> Option<SystemTime> {
        match *self {
            ClockSkew::None => Some(control_time),
            ClockSkew::ControlAhead(by) => control_time.checked_sub(by),
            ClockSkew::ControlBehind(by) => control_time.checked_add(by),
        }
    }
}
