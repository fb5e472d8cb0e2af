//! The lookup state machine against scripted nameservers on a virtual clock.

use super::*;
use crate::resolver::test_responses::{asks_for_aaaa, respond, Data};
use crate::testing::{mutate, Rng};
use std::time::Duration;

const NAME: &str = "control.example";

fn ns(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 53))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn settings(attempts: u32) -> Settings {
    Settings { timeout: Duration::from_secs(5), attempts }
}

/// Everything the lookup wants sent, as (destination, query, asks for AAAA).
fn drain(lookup: &mut Lookup) -> Vec<(SocketAddr, Vec<u8>, bool)> {
    std::iter::from_fn(|| lookup.poll_transmit())
        .map(|(to, query)| {
            let aaaa = asks_for_aaaa(&query);
            (to, query, aaaa)
        })
        .collect()
}

/// The nameserver each query went to answers it.
fn answer_all(
    lookup: &mut Lookup,
    now: Instant,
    queries: &[(SocketAddr, Vec<u8>, bool)],
    reply: impl Fn(bool) -> (u8, Vec<(&'static str, Data<'static>)>),
) {
    for (to, query, aaaa) in queries {
        let (rcode, answers) = reply(*aaaa);
        lookup.handle_response(now, *to, &respond(query, rcode, &answers));
    }
}

fn addresses_for(aaaa: bool) -> (u8, Vec<(&'static str, Data<'static>)>) {
    if aaaa {
        (0, vec![(NAME, Data::Aaaa("2001:db8::7".parse().unwrap()))])
    } else {
        (0, vec![(NAME, Data::A([192, 0, 2, 7].into()))])
    }
}

#[test]
fn ip_literals_finish_without_queries() {
    let now = Instant::now();
    for literal in ["192.0.2.1", "2001:db8::1"] {
        let mut lookup = Lookup::start(literal, &[ns(1)], settings(2), now, 1);
        assert_eq!(lookup.result(), Some(Ok(vec![ip(literal)])));
        assert!(lookup.poll_transmit().is_none());
        assert_eq!(lookup.poll_timeout(), None);
    }
}

#[test]
fn bad_names_and_no_nameservers_fail_at_once() {
    let now = Instant::now();
    let mut bad = Lookup::start("a..example", &[ns(1)], settings(2), now, 1);
    assert!(matches!(bad.result(), Some(Err(_))));
    assert!(bad.poll_transmit().is_none());
    let lonely = Lookup::start(NAME, &[], settings(2), now, 1);
    assert_eq!(lonely.result(), Some(Err("no nameservers to ask".into())));
}

#[test]
fn both_families_are_asked_and_ipv4_comes_first() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(2), now, 42);
    let mut queries = drain(&mut lookup);
    assert_eq!(queries.len(), 2);
    assert!(queries.iter().all(|(to, _, _)| *to == ns(1)));
    assert_eq!(queries.iter().filter(|q| q.2).count(), 1);
    assert_eq!(lookup.poll_timeout(), Some(now + Duration::from_secs(5)));
    // The AAAA answer arriving first changes nothing about the order.
    queries.sort_by_key(|q| !q.2);
    answer_all(&mut lookup, now, &queries, addresses_for);
    assert_eq!(lookup.result(), Some(Ok(vec![ip("192.0.2.7"), ip("2001:db8::7")])));
    assert_eq!(lookup.poll_timeout(), None);
}

#[test]
fn a_timeout_moves_on_to_the_next_nameserver() {
    let start = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(2), start, 42);
    drain(&mut lookup);
    lookup.handle_timeout(start + Duration::from_secs(4));
    assert!(lookup.poll_transmit().is_none(), "not yet");
    let later = start + Duration::from_secs(5);
    lookup.handle_timeout(later);
    let queries = drain(&mut lookup);
    assert_eq!(queries.len(), 2);
    assert!(queries.iter().all(|(to, _, _)| *to == ns(2)));
    assert_eq!(lookup.poll_timeout(), Some(later + Duration::from_secs(5)));
    answer_all(&mut lookup, later, &queries, addresses_for);
    assert_eq!(lookup.result(), Some(Ok(vec![ip("192.0.2.7"), ip("2001:db8::7")])));
}

#[test]
fn wrong_ids_and_strangers_are_ignored() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1)], settings(2), now, 7);
    let queries = drain(&mut lookup);
    for (to, query, aaaa) in &queries {
        let mut forged = respond(query, 0, &addresses_for(*aaaa).1);
        forged[1] = forged[1].wrapping_add(1);
        lookup.handle_response(now, *to, &forged);
        let good = respond(query, 0, &addresses_for(*aaaa).1);
        lookup.handle_response(now, ns(9), &good);
        lookup.handle_response(now, SocketAddr::from(([10, 0, 0, 1], 5353)), &good);
    }
    assert_eq!(lookup.result(), None);
    answer_all(&mut lookup, now, &queries, addresses_for);
    assert!(matches!(lookup.result(), Some(Ok(_))));
}

#[test]
fn no_such_name_is_an_error() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(2), now, 7);
    let queries = drain(&mut lookup);
    answer_all(&mut lookup, now, &queries, |_| (3, vec![]));
    assert_eq!(lookup.result(), Some(Err("no such host".into())));
    assert!(lookup.poll_transmit().is_none());
}

#[test]
fn a_name_without_addresses_is_an_error() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1)], settings(2), now, 7);
    let queries = drain(&mut lookup);
    answer_all(&mut lookup, now, &queries, |_| (0, vec![]));
    assert_eq!(lookup.result(), Some(Err("the name has no addresses".into())));
}

#[test]
fn alias_chains_lead_to_addresses() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1)], settings(2), now, 7);
    let queries = drain(&mut lookup);
    answer_all(&mut lookup, now, &queries, |aaaa| {
        let mut answers =
            vec![(NAME, Data::Cname("lb.example")), ("lb.example", Data::Cname("edge.example"))];
        if !aaaa {
            answers.push(("edge.example", Data::A([198, 51, 100, 1].into())));
        }
        (0, answers)
    });
    assert_eq!(lookup.result(), Some(Ok(vec![ip("198.51.100.1")])));
}

#[test]
fn a_failing_nameserver_is_skipped_at_once() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(1), now, 7);
    let queries = drain(&mut lookup);
    answer_all(&mut lookup, now, &queries[..1], |_| (2, vec![]));
    let retried = drain(&mut lookup);
    assert_eq!(retried.len(), 2);
    assert!(retried.iter().all(|(to, _, _)| *to == ns(2)));
    answer_all(&mut lookup, now, &retried, |_| (5, vec![]));
    assert_eq!(lookup.result(), Some(Err("10.0.0.2:53 answered: refused".into())));
}

#[test]
fn every_try_timing_out_is_an_error() {
    let mut now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(2), now, 7);
    let mut asked = Vec::new();
    while let Some(deadline) = lookup.poll_timeout() {
        asked.extend(drain(&mut lookup).into_iter().map(|(to, _, _)| to));
        now = deadline;
        lookup.handle_timeout(now);
    }
    assert_eq!(asked, [ns(1), ns(1), ns(2), ns(2), ns(1), ns(1), ns(2), ns(2)]);
    assert_eq!(lookup.result(), Some(Err("no nameserver answered".into())));
}

#[test]
fn one_family_answered_is_enough_when_time_is_up() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(2), now, 7);
    let queries = drain(&mut lookup);
    let a_only: Vec<_> = queries.into_iter().filter(|q| !q.2).collect();
    answer_all(&mut lookup, now, &a_only, addresses_for);
    assert_eq!(lookup.result(), None, "still waiting for AAAA");
    lookup.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(lookup.result(), Some(Ok(vec![ip("192.0.2.7")])));
}

#[test]
fn a_late_answer_from_an_earlier_try_counts() {
    let now = Instant::now();
    let mut lookup = Lookup::start(NAME, &[ns(1), ns(2)], settings(2), now, 7);
    let first = drain(&mut lookup);
    lookup.handle_timeout(now + Duration::from_secs(5));
    drain(&mut lookup);
    answer_all(&mut lookup, now + Duration::from_secs(6), &first, addresses_for);
    assert!(matches!(lookup.result(), Some(Ok(_))));
}

#[test]
fn mangled_responses_never_panic() {
    let mut rng = Rng::new(0x6c6f_6f6b);
    let now = Instant::now();
    for _ in 0..3000 {
        let mut lookup = Lookup::start(NAME, &[ns(1)], settings(1), now, rng.next_u64());
        for (to, query, aaaa) in drain(&mut lookup) {
            let good = respond(&query, 0, &addresses_for(aaaa).1);
            lookup.handle_response(now, to, &mutate(&mut rng, &good));
        }
        lookup.handle_timeout(now + Duration::from_secs(5));
        assert!(lookup.result().is_some(), "a single try ends at its deadline");
    }
}
