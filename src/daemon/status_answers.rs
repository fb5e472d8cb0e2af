//! `weft status` answers shared between the clients that ask at about the same time. On a
//! 10,000-peer node an answer is megabytes of JSON; producing one per request would let a
//! few clients polling `weft status` hold the loop's one thread for most of its time.
//!
//! So at most one answer is in the making: a request that comes while one is being written
//! waits for it, and a request that comes shortly after one was finished, with nothing
//! changed since, gets the same bytes. The answer is written a slice of peers per loop turn
//! ([`Engine::write_status_slice`]), so packets keep moving while it grows.
//!
//! "Nothing changed" is the daemon's state generation, which the loop bumps on everything
//! but packets (a netmap, a login step, health, a command); what packets change — byte
//! counters, handshake times, paths — is at most [`REUSE_WINDOW`] old in a reused answer.

use super::api::Caller;
use crate::engine::status::{StatusBuild, STATUS_SLICE};
use crate::engine::Engine;
use std::time::{Duration, Instant};

/// How long a finished answer serves later requests while the generation stays the same.
pub(super) const REUSE_WINDOW: Duration = Duration::from_secs(1);

/// The answer in the making and who waits for it.
struct Building {
    build: StatusBuild,
    /// The state generation when it started.
    generation: u64,
    waiting: Vec<Caller>,
}

/// A finished answer, kept for requests that come while it is fresh.
struct Finished {
    body: Vec<u8>,
    generation: u64,
    at: Instant,
}

/// A finished build and the callers to answer with it.
pub(super) struct Done {
    pub(super) build: StatusBuild,
    pub(super) generation: u64,
    pub(super) callers: Vec<Caller>,
}

#[derive(Default)]
pub(super) struct StatusAnswers {
    building: Option<Building>,
    /// Callers who asked after the state changed under the answer in the making: they get
    /// the next one.
    next: Vec<Caller>,
    last: Option<Finished>,
    /// Answers started since the daemon began: what coalescing saves shows here.
    started: u64,
}

impl StatusAnswers {
    /// `caller` wants the status. Returns the last answer at once when it is fresh; otherwise
    /// the caller waits for [`StatusAnswers::work`] to finish one: the one in the making if
    /// it started in this generation, else the next.
    pub(super) fn request(
        &mut self,
        caller: Caller,
        now: Instant,
        generation: u64,
    ) -> Option<&[u8]> {
        let last = self.last.as_ref().filter(|last| {
            last.generation == generation && now.saturating_duration_since(last.at) < REUSE_WINDOW
        });
        if let Some(last) = last {
            return Some(&last.body);
        }
        match &mut self.building {
            Some(building) if building.generation == generation => building.waiting.push(caller),
            _ => self.next.push(caller),
        }
        None
    }

    /// Whether an answer is wanted: the loop then works on it instead of sleeping.
    pub(super) fn is_wanted(&self) -> bool {
        self.building.is_some() || !self.next.is_empty()
    }

    /// One slice of work: starts an answer if callers wait and none is in the making, writes
    /// the next peers, and returns the build once every peer is written.
    pub(super) fn work(&mut self, engine: &Engine, now: Instant, generation: u64) -> Option<Done> {
        if self.building.is_none() && !self.next.is_empty() {
            self.started += 1;
            let waiting = std::mem::take(&mut self.next);
            self.building = Some(Building { build: engine.start_status(), generation, waiting });
        }
        let building = self.building.as_mut()?;
        engine.write_status_slice(&mut building.build, now, STATUS_SLICE);
        if !building.build.is_done() {
            return None;
        }
        let Building { build, generation, waiting } = self.building.take()?;
        Some(Done { build, generation, callers: waiting })
    }

    /// Keeps a finished answer for the requests that come while it is fresh.
    pub(super) fn finished(&mut self, body: Vec<u8>, generation: u64, now: Instant) {
        self.last = Some(Finished { body, generation, at: now });
    }

    /// How many answers were started.
    pub(super) fn started(&self) -> u64 {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::{engine_with_peers, peer_key, Status};
    use crate::netmap::PeerDelta;
    use mio::Token;

    /// Enough peers for an answer of two slices.
    const ONE_SLICE_AND_ONE: u16 = STATUS_SLICE as u16 + 1;

    /// Works until an answer is done; returns it and how many slices it took.
    fn work_to_end(
        answers: &mut StatusAnswers,
        engine: &Engine,
        now: Instant,
        generation: u64,
    ) -> (Done, usize) {
        for slices in 1..100 {
            if let Some(done) = answers.work(engine, now, generation) {
                return (done, slices);
            }
        }
        panic!("the answer never finished");
    }

    fn finish(answers: &mut StatusAnswers, engine: &Engine, done: Done, now: Instant) -> Vec<u8> {
        let body = done.build.to_json(&engine.status_without_peers(true)).unwrap();
        answers.finished(body.clone(), done.generation, now);
        body
    }

    fn peer_count(body: &[u8]) -> usize {
        serde_json::from_slice::<Status>(body).unwrap().peer.len()
    }

    #[test]
    fn requests_while_an_answer_is_made_share_it() {
        let now = Instant::now();
        let engine = engine_with_peers(ONE_SLICE_AND_ONE, now);
        let mut answers = StatusAnswers::default();
        assert!(!answers.is_wanted());
        for caller in 0..5 {
            assert!(answers.request(Caller(Token(caller)), now, 7).is_none());
        }
        assert!(answers.is_wanted());
        assert!(answers.work(&engine, now, 7).is_none(), "more peers than one slice");
        // A request in the middle of the answer joins it.
        assert!(answers.request(Caller(Token(5)), now, 7).is_none());
        let (done, _) = work_to_end(&mut answers, &engine, now, 7);
        let callers: Vec<usize> = done.callers.iter().map(|c| c.0 .0).collect();
        assert_eq!(callers, [0, 1, 2, 3, 4, 5]);
        assert_eq!(answers.started(), 1, "one computation for six requests");
        let body = finish(&mut answers, &engine, done, now);
        assert_eq!(peer_count(&body), usize::from(ONE_SLICE_AND_ONE));
        assert!(!answers.is_wanted());

        // Shortly after, with nothing changed, the same bytes at once.
        let soon = now + REUSE_WINDOW / 2;
        assert_eq!(answers.request(Caller(Token(6)), soon, 7), Some(&body[..]));
        assert_eq!(answers.started(), 1);
        assert!(!answers.is_wanted());
    }

    #[test]
    fn a_change_or_age_makes_a_new_answer() {
        let now = Instant::now();
        let mut engine = engine_with_peers(3, now);
        let mut answers = StatusAnswers::default();
        answers.request(Caller(Token(0)), now, 1);
        let (done, slices) = work_to_end(&mut answers, &engine, now, 1);
        assert_eq!(slices, 1);
        finish(&mut answers, &engine, done, now);

        // A peer goes away and the daemon bumps its generation: the old answer is not reused.
        let delta = PeerDelta { upsert: vec![], remove: vec![peer_key(2)] };
        engine.apply_peer_delta(delta, now);
        assert!(answers.request(Caller(Token(1)), now, 2).is_none());
        let (done, _) = work_to_end(&mut answers, &engine, now, 2);
        assert_eq!(answers.started(), 2);
        assert_eq!(peer_count(&finish(&mut answers, &engine, done, now)), 2);

        // Nothing changed, but the answer's counters are too old.
        assert!(answers.request(Caller(Token(2)), now + REUSE_WINDOW, 2).is_none());
        work_to_end(&mut answers, &engine, now + REUSE_WINDOW, 2);
        assert_eq!(answers.started(), 3);
    }

    #[test]
    fn a_request_after_a_change_waits_for_the_next_answer() {
        let now = Instant::now();
        let engine = engine_with_peers(ONE_SLICE_AND_ONE, now);
        let mut answers = StatusAnswers::default();
        answers.request(Caller(Token(0)), now, 1);
        assert!(answers.work(&engine, now, 1).is_none());
        // The state changed under the answer in the making: this caller gets a newer one.
        answers.request(Caller(Token(1)), now, 2);
        let (first, _) = work_to_end(&mut answers, &engine, now, 2);
        assert_eq!(first.callers, [Caller(Token(0))]);
        assert_eq!(first.generation, 1);
        assert!(answers.is_wanted());
        let (second, _) = work_to_end(&mut answers, &engine, now, 2);
        assert_eq!(second.callers, [Caller(Token(1))]);
        assert_eq!(second.generation, 2);
        assert_eq!(answers.started(), 2);
    }
}
