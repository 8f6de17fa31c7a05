//! A small authoritative DNS server for the tests, on loopback port 0 (UDP and TCP), built with
//! hickory-proto. It answers a fixed zone, counts the queries it gets, can answer UDP after a delay
//! (each answer on its own thread, so queries still arrive while earlier ones wait), and can be
//! stopped to play a dead upstream.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode};
use hickory_proto::rr::rdata::svcb::{Alpn, EchConfigList, SvcParamKey, SvcParamValue, SVCB};
use hickory_proto::rr::rdata::{A, AAAA, HTTPS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Address answered for every name this zone knows.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Address of the safe-search front ends.
pub const SAFE_ADDRESS: Ipv4Addr = Ipv4Addr::new(216, 239, 38, 120);

/// A running test upstream. Stops when dropped.
pub struct Upstream {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

/// A UDP socket and a TCP listener on one free loopback port. The kernel picks the UDP port; its TCP
/// twin may be taken already (another test's connection), so a few ports are tried.
fn bind_pair() -> (UdpSocket, SocketAddr, std::net::TcpListener) {
    let mut last = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        match std::net::TcpListener::bind(addr) {
            Ok(tcp) => return (udp, addr, tcp),
            Err(e) => last = Some(e),
        }
    }
    panic!("no loopback port free for both UDP and TCP: {last:?}");
}

impl Upstream {
    /// Starts the server on a free loopback port.
    pub fn start() -> Upstream {
        let (udp, addr, tcp) = bind_pair();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (q, s, d) = (queries.clone(), stop.clone(), delay_ms.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    q.fetch_add(1, Ordering::Relaxed);
                    let Some(answer) = respond(&buf[..n], Some(512)) else {
                        continue;
                    };
                    let delay = d.load(Ordering::Relaxed);
                    if delay == 0 {
                        let _ = udp.send_to(&answer, peer);
                        continue;
                    }
                    let Ok(socket) = udp.try_clone() else {
                        continue;
                    };
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(delay));
                        let _ = socket.send_to(&answer, peer);
                    });
                }
            }
        });
        let (q, s) = (queries.clone(), stop.clone());
        thread::spawn(move || {
            use std::io::{Read, Write};
            while !s.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut msg).is_err() {
                    continue;
                }
                q.fetch_add(1, Ordering::Relaxed);
                if let Some(answer) = respond(&msg, None) {
                    let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&answer);
                    let _ = stream.write_all(&framed);
                }
            }
        });
        Upstream {
            addr,
            queries,
            stop,
            delay_ms,
        }
    }

    /// Answers UDP queries only after `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    /// Stops answering (the port stays bound by nothing; queries to it are lost or refused).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// The zone: what each name answers.
fn records(qname: &Name, qtype: RecordType) -> Option<Vec<Record>> {
    let owner = qname.clone();
    let lower = qname.to_lowercase().to_ascii();
    let rec = |ttl, data| Record::from_rdata(owner.clone(), ttl, data);
    let safe = [
        "forcesafesearch.google.com.",
        "restrict.youtube.com.",
        "restrictmoderate.youtube.com.",
        "strict.bing.com.",
        "safe.duckduckgo.com.",
    ];
    if safe.contains(&lower.as_str()) {
        return Some(match qtype {
            RecordType::A => vec![rec(300, RData::A(A(SAFE_ADDRESS)))],
            _ => vec![],
        });
    }
    if lower.starts_with("nx") || lower.ends_with(".invalid.") {
        return None;
    }
    if lower == "big.test." && qtype == RecordType::TXT {
        let strings = (0..10)
            .map(|i| format!("{i:02}{}", "x".repeat(98)))
            .collect();
        return Some(vec![rec(300, RData::TXT(TXT::new(strings)))]);
    }
    if lower == "ech.test." && qtype == RecordType::HTTPS {
        let params = vec![
            (
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec!["h2".into()])),
            ),
            (
                SvcParamKey::EchConfigList,
                SvcParamValue::EchConfigList(EchConfigList(vec![0, 4, 1, 2, 3, 4])),
            ),
        ];
        return Some(vec![rec(
            300,
            RData::HTTPS(HTTPS(SVCB::new(1, name("."), params))),
        )]);
    }
    let ttl = if lower.starts_with("short") { 1 } else { 300 };
    Some(match qtype {
        RecordType::A => vec![rec(ttl, RData::A(A(ADDRESS)))],
        RecordType::AAAA => vec![rec(ttl, RData::AAAA(AAAA("2001:db8::1".parse().unwrap())))],
        _ => vec![],
    })
}

fn respond(packet: &[u8], udp_limit: Option<usize>) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let question = query.queries.first()?.clone();
    let mut msg = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    msg.metadata.authoritative = true;
    msg.metadata.recursion_desired = query.metadata.recursion_desired;
    msg.add_query(question.clone());
    match records(&question.name, question.query_type) {
        Some(answers) => {
            msg.add_answers(answers);
        }
        None => {
            msg.metadata.response_code = hickory_proto::op::ResponseCode::NXDomain;
            let soa = SOA::new(
                name("ns.test."),
                name("hostmaster.test."),
                1,
                3600,
                600,
                86400,
                120,
            );
            msg.add_authority(Record::from_rdata(name("test."), 600, RData::SOA(soa)));
        }
    }
    let limit = match (&query.edns, udp_limit) {
        (Some(e), Some(_)) => Some(usize::from(e.max_payload())),
        (None, Some(l)) => Some(l),
        (_, None) => None,
    };
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        msg.set_edns(edns);
    }
    let bytes = msg.to_vec().ok()?;
    match limit {
        Some(l) if bytes.len() > l => msg.truncate().to_vec().ok(),
        _ => Some(bytes),
    }
}
