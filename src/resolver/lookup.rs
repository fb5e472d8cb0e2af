//! One host name's lookup over UDP, as a sans-IO state machine: the driver sends what
//! [`Lookup::poll_transmit`] yields, feeds back datagrams and timeouts, and reads
//! [`Lookup::result`]. A and AAAA are asked together; each try asks one nameserver and waits
//! `timeout`, moving on to the next nameserver, for `attempts` rounds over all of them — the
//! C library's schedule, so a lookup fails over no slower than `getaddrinfo` would.

use super::message::{encode_query, message_id, parse_response, Question, RecordType, Reply};
use super::name::Name;
use super::resolv_conf::Settings;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub(crate) struct Lookup {
    /// The A question first, so IPv4 addresses come first in the result.
    asked: Vec<Asked>,
    nameservers: Vec<SocketAddr>,
    settings: Settings,
    /// Try `n` asks nameserver `n % nameservers.len()`.
    try_number: usize,
    deadline: Option<Instant>,
    /// Every query sent, so a late answer from an earlier try still counts.
    sent: Vec<SentQuery>,
    outgoing: VecDeque<(SocketAddr, Vec<u8>)>,
    id_state: u64,
    /// Why the last nameserver that answered could not help, for the error message.
    last_failure: Option<String>,
    result: Option<Result<Vec<IpAddr>, String>>,
}

struct Asked {
    question: Question,
    answer: Option<Answer>,
}

enum Answer {
    Addresses(Vec<IpAddr>),
    NoSuchName,
}

struct SentQuery {
    to: SocketAddr,
    id: u16,
    /// Index into `Lookup::asked`.
    asked: usize,
}

impl Lookup {
    /// Starts looking up `name`, queueing the first queries. `id_seed` (from a random source)
    /// makes the query IDs unguessable, which is what keeps off-path forgeries out. An IP
    /// literal, a malformed name or an empty nameserver list finishes at once.
    pub(crate) fn start(
        name: &str,
        nameservers: &[SocketAddr],
        settings: Settings,
        now: Instant,
        id_seed: u64,
    ) -> Lookup {
        let mut lookup = Lookup {
            asked: Vec::new(),
            nameservers: nameservers.to_vec(),
            settings,
            try_number: 0,
            deadline: None,
            sent: Vec::new(),
            outgoing: VecDeque::new(),
            id_state: id_seed,
            last_failure: None,
            result: None,
        };
        if let Ok(ip) = name.parse::<IpAddr>() {
            lookup.result = Some(Ok(vec![ip]));
            return lookup;
        }
        let name = match Name::from_text(name) {
            Ok(name) => name,
            Err(e) => {
                lookup.result = Some(Err(e));
                return lookup;
            }
        };
        if nameservers.is_empty() {
            lookup.result = Some(Err("no nameservers to ask".into()));
            return lookup;
        }
        lookup.asked = [RecordType::A, RecordType::Aaaa]
            .into_iter()
            .map(|record_type| Asked {
                question: Question { name: name.clone(), record_type },
                answer: None,
            })
            .collect();
        lookup.begin_try(now);
        lookup
    }

    /// The next datagram to send, and where to.
    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outgoing.pop_front()
    }

    /// When [`Lookup::handle_timeout`] must run; `None` once finished.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The addresses found, IPv4 first, or why there are none; `None` while running.
    pub(crate) fn result(&self) -> Option<Result<Vec<IpAddr>, String>> {
        self.result.clone()
    }

    /// A datagram from `from`. Only a well-formed answer from a nameserver we asked, carrying
    /// the ID we sent it, to a question still open, counts; anything else is dropped.
    pub(crate) fn handle_response(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.result.is_some() {
            return;
        }
        let Some(id) = message_id(bytes) else {
            return;
        };
        let matched = self.sent.iter().filter(|s| s.to == from && s.id == id).find_map(|sent| {
            let asked = &self.asked[sent.asked];
            let reply = parse_response(bytes, id, &asked.question).ok()?;
            asked.answer.is_none().then_some((sent.asked, reply))
        });
        let Some((index, reply)) = matched else {
            return;
        };
        self.asked[index].answer = match reply {
            Reply::Addresses(addresses) => Some(Answer::Addresses(addresses)),
            Reply::NoSuchName => Some(Answer::NoSuchName),
            Reply::Failed(why) => {
                self.last_failure = Some(format!("{from} answered: {why}"));
                // Another nameserver may do better; no point waiting out this one's timeout.
                if from == self.current_nameserver() {
                    self.next_try(now);
                }
                return;
            }
        };
        if self.asked.iter().all(|a| a.answer.is_some()) {
            self.finish();
        }
    }

    /// The current try's time is up: ask the next nameserver, or give up. Addresses of one
    /// family already in hand end the lookup here: the caller dials one address, and waiting
    /// on for a family that a broken nameserver or middlebox never answers would only delay it.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        if self.addresses().next().is_some() {
            self.finish();
        } else {
            self.next_try(now);
        }
    }

    fn current_nameserver(&self) -> SocketAddr {
        self.nameservers[self.try_number % self.nameservers.len()]
    }

    /// Sends every open question to this try's nameserver and starts its clock.
    fn begin_try(&mut self, now: Instant) {
        let to = self.current_nameserver();
        for index in 0..self.asked.len() {
            if self.asked[index].answer.is_some() {
                continue;
            }
            let id = self.next_id();
            self.outgoing.push_back((to, encode_query(id, &self.asked[index].question)));
            self.sent.push(SentQuery { to, id, asked: index });
        }
        self.deadline = Some(now + self.settings.timeout);
    }

    fn next_try(&mut self, now: Instant) {
        self.try_number += 1;
        let tries = self.settings.attempts as usize * self.nameservers.len();
        if self.try_number < tries {
            self.begin_try(now);
        } else {
            self.finish();
        }
    }

    fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.asked
            .iter()
            .flat_map(|asked| match &asked.answer {
                Some(Answer::Addresses(addresses)) => addresses.as_slice(),
                _ => &[],
            })
            .copied()
    }

    fn finish(&mut self) {
        let addresses: Vec<IpAddr> = self.addresses().collect();
        let no_such_name = self.asked.iter().any(|a| matches!(a.answer, Some(Answer::NoSuchName)));
        let all_answered = self.asked.iter().all(|a| a.answer.is_some());
        self.result = Some(if !addresses.is_empty() {
            Ok(addresses)
        } else if no_such_name {
            Err("no such host".into())
        } else if all_answered {
            Err("the name has no addresses".into())
        } else {
            Err(self.last_failure.take().unwrap_or_else(|| "no nameserver answered".into()))
        });
        self.deadline = None;
        self.outgoing.clear();
    }

    /// splitmix64 over the seed: a fresh, unpredictable ID for every query of the lookup.
    fn next_id(&mut self) -> u16 {
        self.id_state = self.id_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.id_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u16
    }
}

#[cfg(test)]
mod tests;
