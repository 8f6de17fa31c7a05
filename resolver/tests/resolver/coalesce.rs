//! Identical misses at once: many clients asking the same uncached name share one upstream query,
//! and each still gets its own id and question spelling back, in time, whatever the upstream does.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::{self, Options, Ward};
use crate::upstream::{self, Upstream};

/// One client's exchange: what it sent, what came back, and how long that took.
struct Exchange {
    sent: Vec<u8>,
    answer: Vec<u8>,
    took: Duration,
}

/// `name` spelled with the letters picked by the bits of `pattern` in upper case.
fn spelling(name: &str, pattern: usize) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if pattern >> (i % usize::BITS as usize) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Sends `name` A from `clients` sockets on distinct loopback addresses, each with its own
/// id and letter case, all before reading any answer; then collects every answer.
fn burst(server: SocketAddr, name: &str, clients: usize) -> Vec<Exchange> {
    let mut sockets = Vec::new();
    for i in 0..clients {
        let socket = UdpSocket::bind(format!("127.0.1.{}:0", i + 1)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut packet = harness::query(&spelling(name, i), RecordType::A, true);
        packet[0..2].copy_from_slice(&(0x5000 + i as u16).to_be_bytes());
        sockets.push((socket, packet));
    }
    let started = Instant::now();
    for (socket, packet) in &sockets {
        socket.send_to(packet, server).unwrap();
    }
    sockets
        .into_iter()
        .map(|(socket, sent)| {
            let mut buf = [0u8; 4096];
            let (n, _) = socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("no answer for id {:?}: {e}", &sent[0..2]));
            Exchange {
                sent,
                answer: buf[..n].to_vec(),
                took: started.elapsed(),
            }
        })
        .collect()
}

/// Checks each answer carries its client's id and exact question bytes; returns them parsed.
fn own_answers(exchanges: &[Exchange]) -> Vec<Message> {
    exchanges
        .iter()
        .map(|e| {
            assert_eq!(e.answer[0..2], e.sent[0..2], "the client's id");
            let question = wire_question(&e.sent);
            assert_eq!(
                &e.answer[12..12 + question],
                &e.sent[12..12 + question],
                "the client's question, spelt as it asked"
            );
            Message::from_vec(&e.answer).unwrap()
        })
        .collect()
}

/// Length of the question section of a one-question packet.
fn wire_question(packet: &[u8]) -> usize {
    let mut at = 12;
    while packet[at] != 0 {
        at += usize::from(packet[at]) + 1;
    }
    at + 1 + 4 - 12
}

#[test]
fn fifty_identical_misses_make_one_upstream_query() {
    let up = Upstream::start();
    // Generous per-attempt time so a loaded machine never retries, which would be a second query.
    let mut options = Options::new(up.addr);
    options.attempt_timeout_ms = 3000;
    options.deadline_ms = 4000;
    let ward = Ward::start(options);
    up.set_delay(Duration::from_millis(300));
    let before = up.queries();
    let exchanges = burst(ward.addr, "coalesce.test.", 50);
    let answers = own_answers(&exchanges);
    for msg in &answers {
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            harness::answers(msg)
                .iter()
                .filter(|a| a.contains(&upstream::ADDRESS.to_string()))
                .count(),
            1,
            "{:?}",
            harness::answers(msg)
        );
    }
    assert_eq!(
        up.queries() - before,
        1,
        "one upstream query for 50 clients"
    );
}

#[test]
fn a_burst_of_searches_shares_the_safe_search_lookup() {
    let up = Upstream::start();
    let mut options = Options::new(up.addr);
    options.attempt_timeout_ms = 3000;
    options.deadline_ms = 4000;
    let ward = Ward::start(options);
    up.set_delay(Duration::from_millis(300));
    let before = up.queries();
    // Unknown clients get the strictest tier, which enforces safe search by CNAME.
    let exchanges = burst(ward.addr, "www.google.com.", 40);
    for msg in own_answers(&exchanges) {
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        let answers = harness::answers(&msg).join("\n");
        assert!(answers.contains("forcesafesearch.google.com."), "{answers}");
        assert!(
            answers.contains(&upstream::SAFE_ADDRESS.to_string()),
            "{answers}"
        );
    }
    assert_eq!(
        up.queries() - before,
        1,
        "one upstream query for the safe-search front end"
    );
}

#[test]
fn followers_of_a_leader_that_times_out_get_servfail_within_the_deadline() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    // Answers come long after the 900 ms deadline.
    up.set_delay(Duration::from_secs(3));
    let before = up.queries();
    let exchanges = burst(ward.addr, "slowleader.test.", 30);
    for (msg, e) in own_answers(&exchanges).iter().zip(&exchanges) {
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(
            harness::ede(msg).map(|e| e.0),
            Some(22),
            "No Reachable Authority"
        );
        assert!(e.took < Duration::from_millis(2500), "took {:?}", e.took);
    }
    // The leader's two attempts (one per round), not one per client.
    assert!(
        up.queries() - before <= 2,
        "{} upstream queries",
        up.queries() - before
    );
}

#[test]
fn followers_of_a_leader_that_times_out_get_stale_data_when_allowed() {
    let up = Upstream::start();
    let mut options = Options::new(up.addr);
    options.extra = "[cache]\nserve_stale = true\nstale_for = 3600\n".into();
    let ward = Ward::start(options);
    let fresh = ward.ask("127.0.0.10", "short-burst.test.", RecordType::A);
    assert_eq!(fresh.answers[0].ttl, 1);
    std::thread::sleep(Duration::from_millis(1500));
    up.set_delay(Duration::from_secs(3));
    let before = up.queries();
    let exchanges = burst(ward.addr, "short-burst.test.", 30);
    for (msg, e) in own_answers(&exchanges).iter().zip(&exchanges) {
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert_eq!(msg.answers.len(), 1);
        assert_eq!(msg.answers[0].ttl, 30, "stale data with a short TTL");
        assert!(e.took < Duration::from_millis(2500), "took {:?}", e.took);
    }
    assert!(
        up.queries() - before <= 2,
        "{} upstream queries",
        up.queries() - before
    );
}
