//! Forwarding to the upstream resolvers: preference order with failover, simple health tracking,
//! UDP with TCP retry on truncation, and a hard deadline so a client always gets an answer in bounded
//! time when every upstream is dead.
//!
//! Each query uses a fresh socket on a random port and a random id, and only an answer whose id and
//! question match is accepted, so off-path spoofing has to guess both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::UpstreamConfig;
use crate::wire;

/// Failures in a row after which an upstream is skipped for a while.
const FAILS_BEFORE_DOWN: u32 = 3;
/// How long a failing upstream is skipped before it is tried again.
const DOWN_FOR: Duration = Duration::from_secs(5);

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// There are no upstreams configured.
    #[error("no upstream configured")]
    None,
    /// Every upstream failed or the deadline passed.
    #[error("no upstream answered within {0:?}")]
    Deadline(Duration),
}

struct Server {
    addr: SocketAddr,
    fails: AtomicU32,
    /// Milliseconds since `Upstreams::epoch` until which the server is skipped.
    down_until: AtomicU64,
}

/// The configured upstreams and their health.
pub struct Upstreams {
    servers: Vec<Server>,
    config: UpstreamConfig,
    epoch: Instant,
}

impl Upstreams {
    /// Upstreams in order of preference.
    pub fn new(addrs: &[SocketAddr], config: UpstreamConfig) -> Upstreams {
        Upstreams {
            servers: addrs
                .iter()
                .map(|&addr| Server {
                    addr,
                    fails: AtomicU32::new(0),
                    down_until: AtomicU64::new(0),
                })
                .collect(),
            config,
            epoch: Instant::now(),
        }
    }

    /// The deadline after which a client gets SERVFAIL.
    pub fn deadline(&self) -> Duration {
        self.config.deadline
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Healthy servers first (in preference order), then those marked down.
    fn order(&self) -> Vec<&Server> {
        let now = self.now_ms();
        let (up, down): (Vec<&Server>, Vec<&Server>) = self
            .servers
            .iter()
            .partition(|s| s.down_until.load(Ordering::Relaxed) <= now);
        up.into_iter().chain(down).collect()
    }

    fn succeeded(&self, server: &Server) {
        server.fails.store(0, Ordering::Relaxed);
        server.down_until.store(0, Ordering::Relaxed);
    }

    fn failed(&self, server: &Server) {
        let fails = server.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails >= FAILS_BEFORE_DOWN {
            let until = self.now_ms() + DOWN_FOR.as_millis() as u64;
            server.down_until.store(until, Ordering::Relaxed);
            if fails == FAILS_BEFORE_DOWN {
                tracing::warn!(upstream = %server.addr, "upstream not answering; trying others first");
            }
        }
    }

    /// Asks the upstreams for `name_wire` (a wire-format name), `qtype`, `qclass`; returns the
    /// first usable answer (NOERROR or NXDOMAIN; a SERVFAIL is returned only if nothing better came).
    ///
    /// # Errors
    /// No upstream gave any answer before the deadline.
    pub async fn query(
        &self,
        name_wire: &[u8],
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
    ) -> Result<Vec<u8>, UpstreamError> {
        if self.servers.is_empty() {
            return Err(UpstreamError::None);
        }
        let deadline = self.config.deadline;
        match tokio::time::timeout(deadline, self.try_all(name_wire, qtype, qclass, dnssec_ok))
            .await
        {
            Ok(Some(answer)) => Ok(answer),
            _ => Err(UpstreamError::Deadline(deadline)),
        }
    }

    async fn try_all(
        &self,
        name_wire: &[u8],
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
    ) -> Option<Vec<u8>> {
        let mut fallback = None;
        // Two rounds, so a single lost packet to a lone upstream is retried within the deadline.
        for _round in 0..2 {
            for server in self.order() {
                let id: u16 = rand::random();
                let query = build_query(id, name_wire, qtype, qclass, dnssec_ok);
                let attempt = tokio::time::timeout(
                    self.config.attempt_timeout,
                    exchange(server.addr, &query, id, name_wire),
                )
                .await;
                match attempt {
                    Ok(Ok(answer)) => {
                        let rcode = answer[3] & 0xf;
                        if rcode == wire::rcode::NOERROR || rcode == wire::rcode::NXDOMAIN {
                            self.succeeded(server);
                            return Some(answer);
                        }
                        self.failed(server);
                        fallback = Some(answer);
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(upstream = %server.addr, error = %e, "upstream exchange failed");
                        self.failed(server);
                    }
                    Err(_) => self.failed(server),
                }
            }
            if fallback.is_some() {
                break;
            }
        }
        fallback
    }
}

/// A recursive query with EDNS (payload 1232, DO as the client asked).
fn build_query(id: u16, name_wire: &[u8], qtype: u16, qclass: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut q = Vec::with_capacity(wire::HEADER + name_wire.len() + 4 + 11);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(name_wire);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    wire::push_opt(&mut q, 1232, dnssec_ok);
    q
}

/// Whether `answer` answers our query: a response with our id and our question (any case).
fn matches(answer: &[u8], id: u16, name_wire: &[u8]) -> bool {
    answer.len() >= wire::HEADER + name_wire.len() + 4
        && answer[0..2] == id.to_be_bytes()
        && answer[2] & 0x80 != 0
        && answer[4..6] == [0, 1]
        && answer[wire::HEADER..wire::HEADER + name_wire.len()].eq_ignore_ascii_case(name_wire)
}

async fn exchange(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    name_wire: &[u8],
) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal address")
    } else {
        "[::]:0".parse().expect("literal address")
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(addr).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).await?;
        let answer = &buf[..n];
        if !matches(answer, id, name_wire) {
            continue;
        }
        if answer[2] & 0x02 != 0 {
            return exchange_tcp(addr, query, id, name_wire).await;
        }
        buf.truncate(n);
        return Ok(buf);
    }
}

async fn exchange_tcp(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    name_wire: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = usize::from(stream.read_u16().await?);
    let mut answer = vec![0u8; len];
    stream.read_exact(&mut answer).await?;
    if !matches(&answer, id, name_wire) {
        return Err(std::io::Error::other("answer does not match the query"));
    }
    Ok(answer)
}

/// Removes the OPT record from an upstream answer (it is per-hop and must not be cached) and zeroes
/// the id. Returns `None` for an answer too malformed to walk.
pub fn without_opt(answer: &[u8]) -> Option<Vec<u8>> {
    let counts = |i: usize| u16::from_be_bytes([answer[i], answer[i + 1]]);
    if answer.len() < wire::HEADER {
        return None;
    }
    let (an, ns, ar) = (counts(6), counts(8), counts(10));
    let mut at = wire::skip_name(answer, wire::HEADER)? + 4;
    for _ in 0..(u32::from(an) + u32::from(ns)) {
        at = wire::skip_record(answer, at)?.next;
    }
    let mut out = answer[..at].to_vec();
    let mut kept = 0u16;
    for _ in 0..ar {
        let rec = wire::skip_record(answer, at)?;
        if rec.rtype != wire::TYPE_OPT {
            out.extend_from_slice(&answer[at..rec.next]);
            kept += 1;
        }
        at = rec.next;
    }
    out[0] = 0;
    out[1] = 0;
    out[10..12].copy_from_slice(&kept.to_be_bytes());
    Some(out)
}
