//! The scale rows of `make bench`: builds netmaps of N peers in memory and times what the
//! daemon's one thread does with them — the first load, a full reconfiguration, one-peer
//! deltas, a status answer (a slice of peers at a time, as the daemon writes it), and a
//! one-peer change arriving from control — and measures the engine's resident memory per
//! peer. Prints one JSON object per N on stdout.
//!
//! `cargo run --release --features bench --example scale -- 1000 10000`
//!
//! Run it in release: debug timings mean nothing. Times are the CPU time of the one thread.

use crate::control::map_state::{MapState, Update};
use crate::engine::scale_fixtures::{key, peer, v4, v6};
use crate::engine::status::STATUS_SLICE;
use crate::engine::{Engine, Environment};
use crate::keys::{PrivateKey, PublicKey};
use crate::netmap::{Netmap, Peer, PeerDelta, SelfNode};
use crate::prefix::Prefix;
use crate::wall_clock::WallClock;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Repetitions of each one-peer delta; the median is reported.
const DELTA_ROUNDS: u32 = 201;
/// Repetitions of each whole-netmap operation.
const FULL_ROUNDS: u32 = 5;

/// Entry point of `examples/scale.rs`: one JSON line per peer count given as argument.
pub fn main() {
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 10_000] } else { sizes };
    for n in sizes {
        println!("{}", measure(n));
    }
}

fn measure(n: u32) -> serde_json::Value {
    let now = Instant::now();
    let rss_before = rss_kib();
    let netmap = netmap_of(n, 41641);
    let mut engine = None;
    let load = timed(|| engine = Some(Engine::new(netmap, now, environment(now))));
    let mut engine = engine.expect("just built");
    let rss_kib_per_peer = (rss_kib() - rss_before) as f64 / f64::from(n);

    // Every peer's endpoint moves: each peer is compared and updated, no session is made.
    let reconfigure = median(FULL_ROUNDS, |round| {
        let netmap = netmap_of(n, 42000 + round as u16);
        timed(|| engine.apply_netmap(netmap, now))
    });
    let unchanged = median(FULL_ROUNDS, |_| {
        let netmap = engine.netmap();
        timed(|| engine.apply_netmap(netmap, now))
    });
    let delta_add = median(DELTA_ROUNDS, |round| {
        let delta = PeerDelta { upsert: vec![peer(n + round, 41641)], remove: vec![] };
        timed(|| engine.apply_peer_delta(delta, now))
    });
    let delta_remove = median(DELTA_ROUNDS, |round| {
        let delta = PeerDelta { upsert: vec![], remove: vec![key(n + round)] };
        timed(|| engine.apply_peer_delta(delta, now))
    });
    let delta_routes = median(DELTA_ROUNDS, |round| {
        let mut moved = peer(round % n, 41641);
        moved.allowed_ips.push(Prefix::host(Ipv4Addr::new(10, 99, 0, round as u8).into()));
        let delta = PeerDelta { upsert: vec![moved], remove: vec![] };
        timed(|| engine.apply_peer_delta(delta, now))
    });
    let status = status_answer(&engine, now);
    let routes = median(FULL_ROUNDS, |_| timed(|| black_box(engine.routes())));
    let (control_full, control_delta) = control_path(n);
    let config = config_text(n);
    let config_parse = median(FULL_ROUNDS, |_| {
        timed(|| crate::config::parse(&config, "scale.conf").expect("a config of our own making"))
    });
    serde_json::json!({
        "peers": n,
        "load_ms": ms(load),
        "reconfigure_ms": ms(reconfigure),
        "reapply_unchanged_ms": ms(unchanged),
        "delta_add_us": us(delta_add),
        "delta_remove_us": us(delta_remove),
        "delta_routes_us": us(delta_routes),
        "status_ms": ms(status.whole),
        "status_slice_max_ms": ms(status.slice),
        "status_finish_ms": ms(status.finish),
        "status_bytes": status.bytes,
        "routes_ms": ms(routes),
        "control_full_ms": ms(control_full),
        "control_delta_ms": ms(control_delta),
        "config_bytes": config.len(),
        "config_parse_ms": ms(config_parse),
        "engine_rss_kib_per_peer": rss_kib_per_peer,
        "tunn_bytes": std::mem::size_of::<boringtun::noise::Tunn>(),
    })
}

/// A `weft status` answer as the daemon writes it: medians of the whole answer's time, of
/// the longest slice of peers (the longest the loop is held while the answer grows) and of
/// the last step that puts the answer together; and the answer's size.
fn status_answer(engine: &Engine, now: Instant) -> StatusTimes {
    let mut bytes = 0;
    let (mut slices, mut finishes) = (Vec::new(), Vec::new());
    let whole = median(FULL_ROUNDS, |_| {
        let mut longest = Duration::ZERO;
        let started = thread_cpu_time();
        let mut build = engine.start_status();
        while !build.is_done() {
            longest =
                longest.max(timed(|| engine.write_status_slice(&mut build, now, STATUS_SLICE)));
        }
        finishes.push(timed(|| {
            let status = engine.status_without_peers(true);
            bytes = build.to_json(&status).expect("a status of our own making").len();
        }));
        slices.push(longest);
        thread_cpu_time().saturating_sub(started)
    });
    let mid = |mut times: Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    StatusTimes { whole, slice: mid(slices), finish: mid(finishes), bytes }
}

struct StatusTimes {
    whole: Duration,
    slice: Duration,
    finish: Duration,
    bytes: usize,
}

/// The control path: a full MapResponse of `n` peers decoded, turned into a netmap and
/// loaded; then, per round, one peer's endpoint patched and everything the control client and
/// the daemon do with it — the control state updated, the update taken from it (a one-peer
/// delta) with the next key expiry, and the engine given that update.
fn control_path(n: u32) -> (Duration, Duration) {
    let wall = UNIX_EPOCH + Duration::from_secs(1_785_578_400);
    let now = Instant::now();
    let own = PrivateKey([9; 32]);
    let full = full_map_response(n, &own);
    let mut map = MapState::new();
    let mut update = None;
    let full_time = timed(|| {
        let changed = map.apply_frame(full.as_bytes(), wall).expect("a full map of our own making");
        update = map.take_update(own.clone(), wall, changed);
    });
    let Some(Update::Full(netmap)) = update else {
        panic!("a full map gives a full netmap");
    };
    let mut engine = Engine::new(*netmap, now, environment(now));
    let delta_time = median(FULL_ROUNDS, |round| {
        let patch = format!(
            r#"{{"PeersChangedPatch":[{{"NodeID":{},"Endpoints":["192.0.2.1:{}"]}}]}}"#,
            round % n + 2,
            1000 + round
        );
        timed(|| {
            let changed = map.apply_frame(patch.as_bytes(), wall).expect("a patch of our own");
            let update = map.take_update(own.clone(), wall, changed);
            black_box(map.next_key_expiry(wall));
            match update.expect("a netmap after a full map") {
                Update::Peers(delta) => engine.apply_peer_delta(delta, now),
                Update::Full(netmap) => engine.apply_netmap(*netmap, now),
            }
        })
    });
    (full_time, delta_time)
}

/// A static config of `n` peers, shaped like the one `make bench` gives weftd.
fn config_text(n: u32) -> String {
    let mut text = format!(
        "[Interface]\nName = scale\nPrivateKey = {}\nAddress = 100.64.0.1/32\n",
        PublicKey([9; 32]).to_base64()
    );
    for i in 0..n {
        text += &format!(
            "\n[Peer]\nName = peer{i}\nPublicKey = {}\nAllowedIPs = {}/32, {}/128\n\
             Endpoint = 192.0.2.{}:41641\n",
            key(i).to_base64(),
            v4(i),
            v6(i),
            i % 250 + 1
        );
    }
    text
}

fn full_map_response(n: u32, own: &PrivateKey) -> String {
    let me = own.public_key().to_prefixed_hex("nodekey:");
    let peers: Vec<String> = (0..n).map(|i| node_json(i + 2)).collect();
    format!(
        r#"{{"Node":{{"ID":1,"Name":"self.example.ts.net.","Key":"{me}",
            "Addresses":["100.64.0.1/32"],"MachineAuthorized":true}},
            "Peers":[{}]}}"#,
        peers.join(",")
    )
}

fn node_json(id: u32) -> String {
    let (v4, v6) = (v4(id), v6(id));
    format!(
        r#"{{"ID":{id},"StableID":"n{id}","Name":"peer{id}.example.ts.net.","User":7,
            "Key":"{}","DiscoKey":"{}","Addresses":["{v4}/32","{v6}/128"],
            "AllowedIPs":["{v4}/32","{v6}/128"],"Endpoints":["{v4}:41641"],"HomeDERP":1,
            "Hostinfo":{{"Hostname":"peer{id}","OS":"linux"}},"MachineAuthorized":true}}"#,
        key(id).to_prefixed_hex("nodekey:"),
        key(id ^ 0x8000_0000).to_prefixed_hex("discokey:"),
    )
}

fn environment(now: Instant) -> Environment {
    Environment {
        index_seed: 1,
        ping_id: 1,
        clock: WallClock::read_os(now),
        disco_key: PrivateKey([3; 32]),
        disco_seed: [0; 16],
        dns_key: [0; 32],
        lazy: Default::default(),
    }
}

fn netmap_of(n: u32, port: u16) -> Netmap {
    let me = SelfNode {
        addresses: vec!["100.64.0.1/32".parse().unwrap()],
        ..SelfNode::new(PrivateKey([9; 32]))
    };
    let mut peers: Vec<Peer> = (0..n).map(|i| peer(i, port)).collect();
    peers.sort_by_key(|p| p.public_key);
    Netmap { peers, ..Netmap::new(me) }
}

/// The CPU time `f` takes on this thread: on a shared machine, other processes' load would
/// swell wall-clock times by a factor that changes from run to run.
fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let started = thread_cpu_time();
    black_box(f());
    thread_cpu_time().saturating_sub(started)
}

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is unavailable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The median of `rounds` timings; `run` gets the round number.
fn median(rounds: u32, mut run: impl FnMut(u32) -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..rounds).map(&mut run).collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// This process's resident set, from /proc (Linux); 0 elsewhere.
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
