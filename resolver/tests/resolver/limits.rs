//! Per-client limits over TCP: a client past its query rate gets REFUSED on TCP without losing its
//! UDP answers, holds only its share of connections, and the school's own networks are never
//! limited.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use socket2::{Domain, Socket, Type};

use crate::harness::{self, Options, Ward};

const UNKNOWN: &str = "127.0.0.1";
const STAFF: &str = "127.0.0.10";

/// A TCP connection to `server` from the loopback address `from`.
fn connect(from: &str, server: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// One query on an open connection: the answer's RCODE, or `None` when the server closed it.
fn ask(stream: &mut TcpStream, name: &str) -> Option<ResponseCode> {
    let packet = harness::query(name, RecordType::A, false);
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    stream.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).ok()?;
    Some(Message::from_vec(&answer).unwrap().metadata.response_code)
}

#[test]
fn tcp_queries_and_connections_are_limited_per_client_but_never_for_the_school() {
    let mut options = Options::new("127.0.0.1:9".parse().unwrap());
    options.extra =
        "[rate_limit]\nqueries_per_second = 5\nburst = 5\ntcp_connections_per_client = 2\n".into();
    let ward = Ward::start(options);

    // An unknown device floods over TCP: its burst is answered, then it is refused.
    let mut first = connect(UNKNOWN, ward.addr);
    let codes: Vec<ResponseCode> = (0..20)
        .map(|_| ask(&mut first, "adult.test.").expect("an answer"))
        .collect();
    let refused = codes
        .iter()
        .filter(|c| **c == ResponseCode::Refused)
        .count();
    assert!(refused >= 8, "{codes:?}");
    assert!(
        codes[..5].iter().all(|c| *c == ResponseCode::NXDomain),
        "{codes:?}"
    );
    // Its UDP answers come from a bucket of their own.
    let udp = ward.ask(UNKNOWN, "adult.test.", RecordType::A);
    assert_eq!(udp.metadata.response_code, ResponseCode::NXDomain);
    assert!(!udp.metadata.truncation);

    // Two connections at once, not three.
    let _second = connect(UNKNOWN, ward.addr);
    let mut third = connect(UNKNOWN, ward.addr);
    assert_eq!(
        ask(&mut third, "adult.test."),
        None,
        "third connection closed"
    );
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect(UNKNOWN, ward.addr);
        if ask(&mut again, "adult.test.").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed connection's place came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The staff VLAN (one NAT address for many machines) is never limited.
    let mut held: Vec<TcpStream> = (0..5).map(|_| connect(STAFF, ward.addr)).collect();
    for stream in &mut held {
        for _ in 0..10 {
            assert_eq!(ask(stream, "adult.test."), Some(ResponseCode::NoError));
        }
    }
}
