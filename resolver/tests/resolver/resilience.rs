//! Bad days: dead upstreams, stale data, malformed and random packets.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use proptest::prelude::*;

use crate::harness::{self, Options, Ward};
use crate::upstream::Upstream;

#[test]
fn a_dead_upstream_gets_servfail_within_the_deadline() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    up.stop();
    std::thread::sleep(Duration::from_millis(100));
    for name in ["dead1.test.", "dead2.test."] {
        let started = Instant::now();
        let msg = ward.ask("127.0.0.10", name, RecordType::A);
        let took = started.elapsed();
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail, "{name}");
        assert!(
            took < Duration::from_millis(2500),
            "{name} took {took:?} (deadline 900 ms)"
        );
        assert_eq!(harness::ede(&msg).map(|e| e.0), Some(22));
    }
}

#[test]
fn stale_answers_are_served_when_configured_and_upstreams_are_dead() {
    let up = Upstream::start();
    let mut options = Options::new(up.addr);
    options.extra = "[cache]\nserve_stale = true\nstale_for = 3600\n".into();
    let ward = Ward::start(options);
    let fresh = ward.ask("127.0.0.10", "short-lived.test.", RecordType::A);
    assert_eq!(fresh.answers[0].ttl, 1);
    up.stop();
    std::thread::sleep(Duration::from_millis(1500));
    let stale = ward.ask("127.0.0.10", "short-lived.test.", RecordType::A);
    assert_eq!(stale.metadata.response_code, ResponseCode::NoError);
    assert_eq!(stale.answers.len(), 1);
    assert_eq!(
        stale.answers[0].ttl, 30,
        "stale data is served with a short TTL"
    );
}

#[test]
fn malformed_packets_get_formerr_or_nothing_and_never_stop_the_server() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let good = harness::query("ok.test.", RecordType::A, false);
    // Two questions: FORMERR echoing the id.
    let mut two = good.clone();
    two[5] = 2;
    let answer =
        harness::exchange_udp(ward.addr, "127.0.0.1", &two, Duration::from_secs(5)).unwrap();
    assert_eq!(&answer[0..2], &two[0..2]);
    assert_eq!(answer[3] & 0xf, 1, "FORMERR");
    // A name running past the packet's end: FORMERR.
    let cut = &good[..good.len() - 6];
    let answer =
        harness::exchange_udp(ward.addr, "127.0.0.1", cut, Duration::from_secs(5)).unwrap();
    assert_eq!(answer[3] & 0xf, 1);
    // Too short to answer, or a response: dropped.
    for junk in [vec![1u8, 2, 3], {
        let mut r = good.clone();
        r[2] |= 0x80;
        r
    }] {
        assert!(
            harness::exchange_udp(ward.addr, "127.0.0.1", &junk, Duration::from_millis(300))
                .is_none()
        );
    }
    // A burst of random bytes over UDP and TCP, then a normal question still works.
    let mut seed = 0x1234_5678_u64;
    for i in 0..300 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (seed >> 33) as usize % 80;
        let mut packet: Vec<u8> = (0..len)
            .map(|j| (seed >> (j % 56)) as u8 ^ j as u8)
            .collect();
        if i % 3 == 0 && packet.len() > 12 {
            packet[..12].copy_from_slice(&good[..12]);
        }
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(&packet, ward.addr).unwrap();
        if i % 50 == 0 {
            let _ = harness::exchange_tcp(ward.addr, &packet);
        }
    }
    let msg = ward.ask("127.0.0.10", "ok.test.", RecordType::A);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The request parser and the error answers never panic, whatever arrives.
    #[test]
    fn the_request_parser_never_panics(packet in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut name = String::new();
        match ward_resolver::wire::parse_request(&packet, &mut name) {
            Ok(request) => {
                let mut out = Vec::new();
                ward_resolver::wire::minimal_answer(&mut out, &packet, &request, 2, true, 1232);
                prop_assert!(out.len() >= 12);
            }
            Err(reject) => {
                let _ = ward_resolver::wire::reject_answer(&packet, reject, 1232);
            }
        }
        let _ = ward_resolver::wire::ttl_offsets(&packet);
        let _ = ward_resolver::upstream::without_opt(&packet);
    }

    /// Valid questions with random names and types parse back to what was sent.
    #[test]
    fn valid_questions_round_trip(labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?", 1..6), qtype in 1u16..300) {
        let name = labels.join(".");
        let packet = harness::query(&format!("{name}."), RecordType::from(qtype), true);
        let mut parsed = String::new();
        let request = ward_resolver::wire::parse_request(&packet, &mut parsed).unwrap();
        prop_assert_eq!(parsed, name);
        prop_assert_eq!(request.qtype, qtype);
    }
}
