//! What the sans-IO cores would otherwise read from the OS — randomness, the wall clock, the
//! process id — read here, once per core, and handed in at construction, so a core's run
//! follows from its inputs alone.

use crate::control::client;
use crate::engine;
use crate::engine::lazy::LazyConfig;
use crate::keys::{PrivateKey, PublicKey};
use crate::wall_clock::WallClock;
use std::time::{Duration, Instant};

/// Eight bytes from the OS random source, or why there are none.
pub(super) fn random_u64() -> Result<u64, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The disco key pair of this run: made once at start, its private half for the engine and
/// its public half for every control client the daemon starts until it exits.
pub(super) fn disco_key() -> Result<PrivateKey, String> {
    PrivateKey::generate().map_err(|e| format!("making the disco key: {e}"))
}

/// The engine's environment, read with `now`; `disco_key` is the run's disco private key.
pub(super) fn for_engine(now: Instant, disco_key: PrivateKey) -> engine::Environment {
    let mut disco_seed = [0u8; 16];
    if let Err(e) = getrandom::getrandom(&mut disco_seed) {
        // The nonces stay unique (a counter follows the seed) under a key new to this run.
        log::warn!("engine: no randomness for disco nonces: {e}");
    }
    let index_seed = random_u64().unwrap_or_else(|e| {
        // Only index reuse across restarts depends on it: a peer's old session would fail.
        log::warn!("engine: no randomness for session indexes: {e}");
        0
    });
    let mut dns_key = [0u8; 32];
    if let Err(e) = getrandom::getrandom(&mut dns_key) {
        // Forged answers would then only need the query's socket port right.
        log::warn!("engine: no randomness for MagicDNS query IDs: {e}");
    }
    engine::Environment {
        index_seed: index_seed as u32,
        ping_id: std::process::id() as u16,
        clock: WallClock::read_os(now),
        disco_key,
        disco_seed,
        dns_key,
        lazy: lazy_config(
            std::env::var("WEFT_DEBUG_TRIM_WIREGUARD").ok().as_deref(),
            std::env::var("WEFT_DEBUG_LAZY_IDLE").ok().as_deref(),
        ),
    }
}

/// The engine's trimming policy from `WEFT_DEBUG_TRIM_WIREGUARD` (`false` or `0`: every peer
/// keeps its WireGuard session) and `WEFT_DEBUG_LAZY_IDLE` (seconds of idleness before a peer
/// is trimmed, for tests; 5 minutes otherwise). A value that does not parse is reported and
/// ignored.
fn lazy_config(trim: Option<&str>, idle: Option<&str>) -> LazyConfig {
    let mut config = LazyConfig::default();
    match trim {
        None => {}
        Some("false" | "0") => {
            config.trim = false;
            log::info!("WEFT_DEBUG_TRIM_WIREGUARD=false: every peer keeps its WireGuard session");
        }
        Some("true" | "1") => {}
        Some(other) => log::warn!("WEFT_DEBUG_TRIM_WIREGUARD={other:?} ignored: true or false"),
    }
    match idle.map(str::parse::<u64>) {
        None => {}
        Some(Ok(seconds)) if seconds > 0 => {
            config.idle = Duration::from_secs(seconds);
            log::info!("WEFT_DEBUG_LAZY_IDLE: idle peers are trimmed after {seconds} s");
        }
        Some(_) => log::warn!("WEFT_DEBUG_LAZY_IDLE ignored: a whole number of seconds above 0"),
    }
    config
}

/// The DERP driver's settings: its reconnect jitter seed and the test-only plain-HTTP switch.
pub(super) fn for_derp() -> super::derp::DerpOptions {
    let jitter_seed = random_u64().unwrap_or_else(|e| {
        // Only the reconnect jitter depends on it.
        log::warn!("DERP: no randomness for the retry jitter: {e}");
        0
    });
    let plain_http = std::env::var_os("WEFT_DEBUG_USE_DERP_HTTP").is_some_and(|v| v == "1");
    if plain_http {
        log::warn!("WEFT_DEBUG_USE_DERP_HTTP=1: DERP over plain HTTP, for test servers only");
    }
    super::derp::DerpOptions { jitter_seed, plain_http }
}

/// The control client's environment, read with `now`; `disco_key` is the run's disco public
/// key.
pub(super) fn for_control(now: Instant, disco_key: PublicKey) -> client::Environment {
    let jitter_seed = random_u64().unwrap_or_else(|e| {
        // Only the retry jitter depends on it: nodes would retry in step, nothing worse.
        log::warn!("control: no randomness for the retry jitter: {e}");
        0
    });
    client::Environment {
        jitter_seed,
        clock: WallClock::read_os(now),
        disco_key,
        key_entropy: Box::new(|bytes| {
            getrandom::getrandom(bytes).map_err(|e| std::io::Error::other(e.to_string()))
        }),
    }
}

/// The seed of netcheck's STUN transaction ids.
pub(super) fn netcheck_seed() -> u64 {
    random_u64().unwrap_or_else(|e| {
        // Ids would repeat across restarts; a stale answer could then count once, nothing worse.
        log::warn!("netcheck: no randomness for STUN transaction ids: {e}");
        std::process::id().into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_settings_come_from_the_two_variables_and_bad_values_are_ignored() {
        assert_eq!(lazy_config(None, None), LazyConfig::default());
        assert!(!lazy_config(Some("false"), None).trim);
        assert!(!lazy_config(Some("0"), None).trim);
        assert!(lazy_config(Some("maybe"), None).trim);
        assert_eq!(lazy_config(None, Some("2")).idle, Duration::from_secs(2));
        for bad in ["0", "-1", "2s", ""] {
            assert_eq!(lazy_config(None, Some(bad)).idle, LazyConfig::default().idle, "{bad}");
        }
    }
}
