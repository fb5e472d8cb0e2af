//! `weft status` answers shared between the clients that ask at about the same time. On a
//! 10,000-peer node an answer is megabytes of JSON; producing one per request would let a
//! few clients polling `weft status` hold the loop's one thread for most of its time.
//!
//! So at most one answer is in the making, written a slice of peers per loop turn
//! ([`Engine::write_status_slice`]) so that packets keep moving while it grows, and a
//! request that comes while it is being written gets it too — unless the daemon's state
//! generation moved since it started (the loop bumps it on everything but packets: a netmap,
//! a login step, health, a command): that request waits for the next answer, which starts
//! when this one is done. A finished answer is not given again: a client that asks after
//! some traffic expects to see it (a path that was just proven, the bytes just sent).

use super::api::Caller;
use crate::engine::status::{StatusBuild, STATUS_SLICE};
use crate::engine::Engine;
use std::time::Instant;

/// The answer in the making and who waits for it.
struct Building {
    build: StatusBuild,
    /// The state generation when it started.
    generation: u64,
    waiting: Vec<Caller>,
}

/// A finished build and the callers to answer with it.
pub(super) struct Done {
    pub(super) build: StatusBuild,
    pub(super) callers: Vec<Caller>,
}

#[derive(Default)]
pub(super) struct StatusAnswers {
    building: Option<Building>,
    /// Callers for the next answer: they asked when none was in the making, or after the
    /// state changed under the one that is.
    next: Vec<Caller>,
    /// Answers started since the daemon began: what sharing saves shows here.
    started: u64,
}

impl StatusAnswers {
    /// `caller` wants the status: it waits for [`StatusAnswers::work`] to finish one, the
    /// one in the making if that started in this generation, else the next.
    pub(super) fn request(&mut self, caller: Caller, generation: u64) {
        match &mut self.building {
            Some(building) if building.generation == generation => building.waiting.push(caller),
            _ => self.next.push(caller),
        }
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
        let Building { build, waiting, .. } = self.building.take()?;
        Some(Done { build, callers: waiting })
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
    fn work_to_end(answers: &mut StatusAnswers, engine: &Engine, generation: u64) -> (Done, usize) {
        for slices in 1..100 {
            if let Some(done) = answers.work(engine, Instant::now(), generation) {
                return (done, slices);
            }
        }
        panic!("the answer never finished");
    }

    fn peer_count(engine: &Engine, done: &Done) -> usize {
        let body = done.build.to_json(&engine.status_without_peers(true)).unwrap();
        serde_json::from_slice::<Status>(&body).unwrap().peer.len()
    }

    fn tokens(done: &Done) -> Vec<usize> {
        done.callers.iter().map(|c| c.0 .0).collect()
    }

    #[test]
    fn requests_while_an_answer_is_made_share_it() {
        let engine = engine_with_peers(ONE_SLICE_AND_ONE, Instant::now());
        let mut answers = StatusAnswers::default();
        assert!(!answers.is_wanted());
        for caller in 0..5 {
            answers.request(Caller(Token(caller)), 7);
        }
        assert!(answers.is_wanted());
        assert!(answers.work(&engine, Instant::now(), 7).is_none(), "more peers than one slice");
        // A request in the middle of the answer joins it.
        answers.request(Caller(Token(5)), 7);
        let (done, slices) = work_to_end(&mut answers, &engine, 7);
        assert_eq!(slices, 1);
        assert_eq!(tokens(&done), [0, 1, 2, 3, 4, 5]);
        assert_eq!(answers.started(), 1, "one computation for six requests");
        assert_eq!(peer_count(&engine, &done), usize::from(ONE_SLICE_AND_ONE));
        assert!(!answers.is_wanted());
    }

    #[test]
    fn a_finished_answer_is_not_given_again() {
        let mut engine = engine_with_peers(3, Instant::now());
        let mut answers = StatusAnswers::default();
        answers.request(Caller(Token(0)), 1);
        let (done, slices) = work_to_end(&mut answers, &engine, 1);
        assert_eq!((slices, peer_count(&engine, &done)), (1, 3));

        // Packets change what a status shows without moving the generation: the next
        // request, even in the same generation, gets an answer of its own.
        let delta = PeerDelta { upsert: vec![], remove: vec![peer_key(2)] };
        engine.apply_peer_delta(delta, Instant::now());
        answers.request(Caller(Token(1)), 1);
        let (done, _) = work_to_end(&mut answers, &engine, 1);
        assert_eq!(answers.started(), 2);
        assert_eq!(peer_count(&engine, &done), 2);
    }

    #[test]
    fn a_request_after_a_change_waits_for_the_next_answer() {
        let mut engine = engine_with_peers(ONE_SLICE_AND_ONE, Instant::now());
        let mut answers = StatusAnswers::default();
        answers.request(Caller(Token(0)), 1);
        assert!(answers.work(&engine, Instant::now(), 1).is_none());
        // The state changed under the answer in the making: this caller gets a newer one.
        let delta = PeerDelta { upsert: vec![], remove: vec![peer_key(0)] };
        engine.apply_peer_delta(delta, Instant::now());
        answers.request(Caller(Token(1)), 2);
        let (first, _) = work_to_end(&mut answers, &engine, 2);
        assert_eq!(tokens(&first), [0]);
        assert_eq!(peer_count(&engine, &first), usize::from(ONE_SLICE_AND_ONE), "its snapshot");
        assert!(answers.is_wanted());
        let (second, _) = work_to_end(&mut answers, &engine, 2);
        assert_eq!(tokens(&second), [1]);
        assert_eq!(peer_count(&engine, &second), usize::from(ONE_SLICE_AND_ONE) - 1);
        assert_eq!(answers.started(), 2);
    }
}
