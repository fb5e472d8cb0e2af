//! A logger for tests: it keeps the lines logged on the calling thread while a capture is on.
//! Tests run on parallel threads of one process, so each capture sees only its own test's
//! lines; with no capture on, lines go nowhere.

// `LINES` has a const initializer; on OpenBSD and illumos (emulated thread-locals) the
// macro's expansion still trips this lint, a false positive.
#![allow(clippy::missing_const_for_thread_local)]

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LINES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LINES.with(|lines| {
            if let Some(lines) = lines.borrow_mut().as_mut() {
                lines.push(format!("{} {}", record.level(), record.args()));
            }
        });
    }

    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

/// Runs `f`, returning its result and the lines it logged on this thread, at every level
/// (`LEVEL message`).
pub(crate) fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
    let result = f();
    (result, LINES.with(|lines| lines.borrow_mut().take().unwrap_or_default()))
}
