//! What clients get: per-tier decisions, identity precedence, blocks with EDE, bypass signals, safe
//! search, the cache, truncation and TCP, ECH stripping.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{self, answers, ede, Options, Ward};
use crate::upstream::{Upstream, ADDRESS, SAFE_ADDRESS};

const UNKNOWN: &str = "127.0.0.1";
const STAFF: &str = "127.0.0.10";
const PUPIL: &str = "127.0.0.20";

#[test]
fn each_tier_gets_its_own_answer() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let allowed = format!("{ADDRESS}");
    let check = |from: &str, name: &str, expected: &str| {
        let msg = ward.ask(from, name, RecordType::A);
        let got = match msg.metadata.response_code {
            ResponseCode::NoError => msg
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(","),
            rc => rc.to_string(),
        };
        assert_eq!(got, expected, "{from} asking {name}");
    };
    // Schedules depend on the clock; these names are in categories without schedules.
    check(STAFF, "bet.test.", &allowed);
    check(PUPIL, "bet.test.", "192.0.2.80");
    check(PUPIL, "www.bet.test.", "192.0.2.80");
    check(UNKNOWN, "bet.test.", "Non-Existent Domain");
    check(PUPIL, "harm.test.", "192.0.2.80");
    check(PUPIL, "denied.test.", "192.0.2.80");
    check(STAFF, "denied.test.", &allowed);
    check(STAFF, "adult.test.", "192.0.2.80");
    check(PUPIL, "example.test.", &allowed);
    // Nothing can lift the illegal list, not even for staff.
    check(STAFF, "abuse.test.", "192.0.2.80");
    check(STAFF, "cdn.abuse.test.", "192.0.2.80");
    // The block page has an IPv6 address too.
    let msg = ward.ask(PUPIL, "bet.test.", RecordType::AAAA);
    assert_eq!(answers(&msg), ["bet.test. 60 IN AAAA 2001:db8::80"]);
}

#[test]
fn blocked_answers_carry_an_extended_dns_error_naming_the_category() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let msg = ward.ask(PUPIL, "harm.test.", RecordType::A);
    let (code, text) = ede(&msg).expect("an EDE option");
    assert_eq!(code, 15, "Blocked");
    assert!(
        text.contains("self-harm") && text.contains("pupil"),
        "{text}"
    );
    let msg = ward.ask(UNKNOWN, "adult.test.", RecordType::A);
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    assert!(ede(&msg).unwrap().1.contains("adult"));
    assert!(!msg.authorities.is_empty(), "a SOA for negative caching");
    // dig shows it the way a technician would see it.
    let out = harness::dig(ward.addr, &["-b", PUPIL, "harm.test"]);
    assert!(
        out.contains("EDE: 15 (Blocked)") && out.contains("self-harm"),
        "{out}"
    );
    // High-risk blocks are queued as alerts for the collector.
    let queue = ward.state().join("alerts/queue.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&queue).unwrap_or_default();
        if text.contains("harm.test") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let alert: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(alert["source"], "dns");
    assert_eq!(alert["category"], "self-harm");
    assert_eq!(alert["phrase"], "harm.test");
    assert_eq!(alert["client_ip"], PUPIL);
    assert_eq!(
        text.lines().count(),
        1,
        "repeats within ten minutes are one alert: {text}"
    );
}

#[test]
fn bypass_signals_get_their_negative_answers() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    for (name, rtype, rcode) in [
        (
            "use-application-dns.net.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        ("mask.icloud.com.", RecordType::A, ResponseCode::NXDomain),
        (
            "mask-h2.icloud.com.",
            RecordType::AAAA,
            ResponseCode::NXDomain,
        ),
        (
            "_dns.resolver.arpa.",
            RecordType::SVCB,
            ResponseCode::NoError,
        ),
        ("doh.test.", RecordType::A, ResponseCode::NXDomain),
    ] {
        let msg = ward.ask(STAFF, name, rtype);
        assert_eq!(msg.metadata.response_code, rcode, "{name}");
        assert!(msg.answers.is_empty(), "{name}: {:?}", answers(&msg));
        assert_eq!(ede(&msg).map(|e| e.0), Some(15), "{name}");
    }
    assert_eq!(up.queries(), 0, "bypass answers never reach the upstream");
}

#[test]
fn safe_search_answers_a_cname_with_the_target_address() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let check = |from: &str, name: &str, target: &str| {
        let msg = ward.ask(from, name, RecordType::A);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{name}");
        let got = answers(&msg);
        assert_eq!(got.len(), 2, "{name}: {got:?}");
        assert!(
            got[0].contains(&format!("CNAME {target}.")),
            "{name}: {got:?}"
        );
        assert!(
            got[1].starts_with(&format!("{target}.")) && got[1].contains(&SAFE_ADDRESS.to_string()),
            "{got:?}"
        );
        assert_eq!(ede(&msg).map(|e| e.0), Some(17), "Filtered");
    };
    check(PUPIL, "www.google.co.uk.", "forcesafesearch.google.com");
    check(PUPIL, "www.google.com.", "forcesafesearch.google.com");
    check(PUPIL, "www.youtube.com.", "restrict.youtube.com");
    check(STAFF, "m.youtube.com.", "restrictmoderate.youtube.com");
    check(PUPIL, "www.bing.com.", "strict.bing.com");
    check(UNKNOWN, "duckduckgo.com.", "safe.duckduckgo.com");
    let out = harness::dig(ward.addr, &["-b", PUPIL, "www.google.de"]);
    assert!(
        out.contains("CNAME\tforcesafesearch.google.com.")
            && out.contains(&SAFE_ADDRESS.to_string()),
        "{out}"
    );
}

#[test]
fn the_cache_answers_repeats_with_decreasing_ttls() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let ttl = |msg: &hickory_proto::op::Message| msg.answers[0].ttl;
    let first = ward.ask(STAFF, "cached.test.", RecordType::A);
    assert_eq!(ttl(&first), 300);
    let asked = up.queries();
    std::thread::sleep(Duration::from_millis(2100));
    let again = ward.ask(STAFF, "CACHED.test.", RecordType::A);
    assert_eq!(up.queries(), asked, "answered from the cache");
    assert!(
        ttl(&again) <= 298 && ttl(&again) >= 290,
        "ttl {}",
        ttl(&again)
    );
    assert_eq!(
        again.queries[0].name.to_ascii(),
        "CACHED.test.",
        "the client's spelling is echoed"
    );
    // Negative answers are cached too.
    let nx = ward.ask(STAFF, "nx-cached.test.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let asked = up.queries();
    let nx = ward.ask(STAFF, "nx-cached.test.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.queries(), asked);
}

#[test]
fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let plain = harness::ask_udp(
        ward.addr,
        STAFF,
        &harness::query("big.test.", RecordType::TXT, false),
    )
    .unwrap();
    assert!(plain.metadata.truncation, "no EDNS: 512-byte limit");
    assert!(plain.answers.is_empty());
    let tcp = ward.ask_tcp("big.test.", RecordType::TXT);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 1);
    let edns = ward.ask(STAFF, "big.test.", RecordType::TXT);
    assert!(!edns.metadata.truncation, "fits in 1232 bytes");
    assert!(edns.edns.is_some(), "EDNS answered with OPT");
    let out = harness::dig(ward.addr, &["big.test", "TXT", "+noedns"]);
    assert!(
        out.contains("Truncated, retrying in TCP mode") || out.contains("(TCP)"),
        "{out}"
    );
}

#[test]
fn ech_keys_are_stripped_from_https_records() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let msg = ward.ask(STAFF, "ech.test.", RecordType::HTTPS);
    let got = answers(&msg);
    assert_eq!(got.len(), 1, "{got:?}");
    let rdata = got[0].split("HTTPS").nth(1).unwrap();
    assert!(rdata.contains("alpn") && !rdata.contains("ech"), "{got:?}");
    // Without stripping, the key reaches the client.
    let mut options = Options::new(up.addr);
    options.policy = harness::POLICY.replace(
        "[[lists]]\npath = \"lists\"",
        "[bypass]\nstrip_ech = false\n\n[[lists]]\npath = \"lists\"",
    );
    let plain = Ward::start(options);
    let got = answers(&plain.ask(STAFF, "ech.test.", RecordType::HTTPS));
    assert!(
        got[0].split("HTTPS").nth(1).unwrap().contains("ech"),
        "{got:?}"
    );
}

#[test]
fn the_query_log_has_one_line_per_decision() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    ward.ask(PUPIL, "bet.test.", RecordType::A);
    ward.ask(STAFF, "fine.test.", RecordType::AAAA);
    let path = ward.state().join("querylog/queries.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
            break text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lines.len(), 2);
    let blocked = &lines[0];
    for field in [
        "time",
        "client",
        "identity",
        "tier",
        "name",
        "type",
        "decision",
        "category",
        "rule",
        "latency_us",
    ] {
        assert!(blocked.get(field).is_some(), "{field} missing: {blocked}");
    }
    assert_eq!(blocked["client"], PUPIL);
    assert_eq!(blocked["tier"], "pupil");
    assert_eq!(blocked["decision"], "block");
    assert_eq!(blocked["category"], "gambling");
    assert_eq!(lines[1]["decision"], "allow");
    assert_eq!(lines[1]["type"], "AAAA");
}

/// A port free for UDP and TCP on IPv4 and IPv6 (held dual-stack for a moment, then released).
fn free_port() -> u16 {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("[::]:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("::", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

#[test]
fn listening_on_both_the_ipv4_and_ipv6_wildcards_on_one_port_serves_both() {
    let up = Upstream::start();
    let port = free_port();
    let mut options = Options::new(up.addr);
    options.listen = vec![format!("0.0.0.0:{port}"), format!("[::]:{port}")];
    let ward = Ward::start(options);
    ward.wait_for_log(&format!("listening on [::]:{port}"));
    let v4: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: std::net::SocketAddr = format!("[::1]:{port}").parse().unwrap();
    for (server, from) in [(v4, "127.0.0.10"), (v6, "::1")] {
        let packet = harness::query("fine.test.", RecordType::A, true);
        let udp = harness::ask_udp(server, from, &packet).expect("a UDP answer");
        assert_eq!(answers(&udp).len(), 1, "{server} UDP: {udp:?}");
        let tcp = harness::exchange_tcp(server, &packet).expect("a TCP answer");
        let tcp = hickory_proto::op::Message::from_vec(&tcp).unwrap();
        assert_eq!(answers(&tcp), answers(&udp), "{server} TCP");
    }
}
