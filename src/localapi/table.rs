//! The local API's connection table: which connections are open, what each is waiting for,
//! and until when. Sans-IO (the caller passes `now`), so the policy is testable with a
//! virtual clock.
//!
//! The policy keeps a slow or hostile client from locking out everyone else: a request must
//! arrive within a few seconds of connecting, and when the table is full a new client takes
//! the place of the oldest connection that still has not sent a complete request.

use mio::Token;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Open connections beyond this are not kept, so clients can't exhaust descriptors.
pub(super) const CAPACITY: usize = 64;
/// From connecting to a complete request: the CLI sends its request at once, so only a
/// client that stalls takes longer.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// From the request to the answer, unless the request asks for more (pings add their own
/// timeout).
pub(super) const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// For the client to take its answer.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a refusal (a few hundred bytes, written at once), how long the rest of the unwanted
/// request is read and thrown away, so the client reads the refusal instead of a reset.
pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Collecting the request.
    Reading,
    /// The request went to the daemon; its answer is awaited (a ping may take seconds).
    Answering,
    /// The answer is queued; the connection closes once it is written.
    Writing,
    /// A refusal is queued; the connection closes once it is written and the client has
    /// stopped sending.
    Refusing,
}

impl Stage {
    fn budget(self) -> Duration {
        match self {
            Stage::Reading => REQUEST_TIMEOUT,
            Stage::Answering => ANSWER_TIMEOUT,
            Stage::Writing => WRITE_TIMEOUT,
            Stage::Refusing => DRAIN_TIMEOUT,
        }
    }
}

struct Slot<C> {
    conn: C,
    stage: Stage,
    accepted: Instant,
    deadline: Instant,
}

/// Open connections of type `C`, keyed by the poll token each is registered under.
pub(super) struct Table<C> {
    slots: HashMap<Token, Slot<C>>,
    first_token: usize,
    next_token: usize,
}

/// What became of a new connection.
pub(super) enum Admission<C> {
    /// Taken under `token`; `evicted` is the stalled connection that made room, to be closed.
    Admitted { token: Token, evicted: Option<(Token, C)> },
    /// Every connection is busy with a request: the new one is handed back, to be refused.
    Full(C),
}

impl<C> Table<C> {
    /// Connections get the tokens from `first_token` up.
    pub(super) fn new(first_token: usize) -> Table<C> {
        Table { slots: HashMap::new(), first_token, next_token: first_token }
    }

    pub(super) fn admit(&mut self, conn: C, now: Instant) -> Admission<C> {
        let mut evicted = None;
        if self.slots.len() >= CAPACITY {
            match self.oldest_reading() {
                Some(token) => evicted = self.remove(token).map(|conn| (token, conn)),
                None => return Admission::Full(conn),
            }
        }
        let token = self.allocate_token();
        let slot =
            Slot { conn, stage: Stage::Reading, accepted: now, deadline: now + REQUEST_TIMEOUT };
        self.slots.insert(token, slot);
        Admission::Admitted { token, evicted }
    }

    fn oldest_reading(&self) -> Option<Token> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.stage == Stage::Reading)
            .min_by_key(|(_, slot)| slot.accepted)
            .map(|(token, _)| *token)
    }

    fn allocate_token(&mut self) -> Token {
        loop {
            let token = Token(self.next_token);
            self.next_token = self.next_token.checked_add(1).unwrap_or(self.first_token);
            if !self.slots.contains_key(&token) {
                return token;
            }
        }
    }

    pub(super) fn contains(&self, token: Token) -> bool {
        self.slots.contains_key(&token)
    }

    /// The connection and the stage it is in.
    pub(super) fn get_mut(&mut self, token: Token) -> Option<(&mut C, Stage)> {
        self.slots.get_mut(&token).map(|slot| (&mut slot.conn, slot.stage))
    }

    /// Moves a connection to `stage`, which gets its own time budget from `now`.
    pub(super) fn advance(&mut self, token: Token, stage: Stage, now: Instant) {
        if let Some(slot) = self.slots.get_mut(&token) {
            slot.stage = stage;
            slot.deadline = now + stage.budget();
        }
    }

    /// Gives a connection more time, for requests that wait on the network (pings).
    pub(super) fn extend(&mut self, token: Token, by: Duration) {
        if let Some(slot) = self.slots.get_mut(&token) {
            slot.deadline += by;
        }
    }

    pub(super) fn remove(&mut self, token: Token) -> Option<C> {
        self.slots.remove(&token).map(|slot| slot.conn)
    }

    #[must_use]
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.slots.values().map(|slot| slot.deadline).min()
    }

    /// Takes out every connection past its deadline.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(Token, C)> {
        let late: Vec<Token> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.deadline <= now)
            .map(|(token, _)| *token)
            .collect();
        late.into_iter().filter_map(|token| Some((token, self.remove(token)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(table: &mut Table<u32>, conn: u32, now: Instant) -> (Token, Option<u32>) {
        match table.admit(conn, now) {
            Admission::Admitted { token, evicted } => (token, evicted.map(|(_, c)| c)),
            Admission::Full(_) => panic!("connection {conn} refused"),
        }
    }

    #[test]
    fn a_request_must_arrive_within_the_request_timeout() {
        let t0 = Instant::now();
        let mut table = Table::new(7);
        let (token, _) = admitted(&mut table, 1, t0);
        assert_eq!(token, Token(7));
        assert_eq!(table.next_deadline(), Some(t0 + REQUEST_TIMEOUT));
        assert!(REQUEST_TIMEOUT <= Duration::from_secs(5));
        assert!(table.expire(t0 + REQUEST_TIMEOUT - Duration::from_millis(1)).is_empty());
        let late = table.expire(t0 + REQUEST_TIMEOUT);
        assert_eq!(late.iter().map(|(t, c)| (*t, *c)).collect::<Vec<_>>(), [(token, 1)]);
        assert_eq!(table.slots.len(), 0);
    }

    #[test]
    fn each_stage_gets_its_own_budget() {
        let t0 = Instant::now();
        let mut table = Table::new(0);
        let (token, _) = admitted(&mut table, 1, t0);
        let t1 = t0 + Duration::from_secs(1);
        table.advance(token, Stage::Answering, t1);
        table.extend(token, Duration::from_secs(10));
        assert_eq!(table.next_deadline(), Some(t1 + ANSWER_TIMEOUT + Duration::from_secs(10)));
        table.advance(token, Stage::Writing, t1);
        assert_eq!(table.next_deadline(), Some(t1 + WRITE_TIMEOUT));
        assert_eq!(table.get_mut(token).map(|(c, s)| (*c, s)), Some((1, Stage::Writing)));
        table.advance(token, Stage::Refusing, t1);
        assert_eq!(table.next_deadline(), Some(t1 + DRAIN_TIMEOUT));
    }

    #[test]
    fn a_full_table_of_stalled_clients_makes_room_for_a_new_one() {
        let t0 = Instant::now();
        let mut table = Table::new(0);
        for i in 0..CAPACITY as u32 {
            admitted(&mut table, i, t0 + Duration::from_millis(u64::from(i)));
        }
        // The oldest still-reading connection goes, whatever its token.
        let (_, evicted) = admitted(&mut table, 1000, t0 + Duration::from_secs(1));
        assert_eq!(evicted, Some(0));
        let (_, evicted) = admitted(&mut table, 1001, t0 + Duration::from_secs(1));
        assert_eq!(evicted, Some(1));
        assert_eq!(table.slots.len(), CAPACITY);
    }

    #[test]
    fn connections_being_answered_are_not_evicted() {
        let t0 = Instant::now();
        let mut table = Table::new(0);
        let mut tokens = Vec::new();
        for i in 0..CAPACITY as u32 {
            tokens.push(admitted(&mut table, i, t0).0);
        }
        for token in &tokens[1..] {
            table.advance(*token, Stage::Answering, t0);
        }
        let later = t0 + Duration::from_millis(10);
        let (_, evicted) = admitted(&mut table, 500, later);
        assert_eq!(evicted, Some(0), "the only reading connection makes room");
        let newest = table.slots.iter().find(|(_, s)| s.conn == 500).map(|(t, _)| *t).unwrap();
        table.advance(newest, Stage::Writing, later);
        assert!(matches!(table.admit(501, later), Admission::Full(501)));
    }
}
