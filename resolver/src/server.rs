//! The DNS server: thin UDP and TCP tasks feeding one handler.
//!
//! The handler has two halves. [`Resolver::fast`] is synchronous and answers everything it can
//! without waiting: malformed packets, rate limiting, blocks, bypass signals and cache hits. What
//! needs the upstream (cache misses, safe-search targets) becomes a [`Work`] item that
//! [`Resolver::slow`] finishes in its own task, so one slow upstream never holds up other clients.
//! Every loop selects on one cancellation token; in-flight work is tracked and drained on shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::AlertQueue;
use crate::answer;
use crate::cache::{self, Cache, Lookup};
use crate::config::Config;
use crate::decide::{decide, Action, Query, Verdict};
use crate::identity::{self, Identity};
use crate::inflight::{Fetched, Inflight, Join};
use crate::querylog::{QueryLog, Record};
use crate::ratelimit::{Limit, RateLimiter, TcpClients};
use crate::state::{Local, Snapshot, State};
use crate::upstream::{self, Upstreams};
use crate::wire::{self, rcode, Request};

/// Largest TCP message.
const TCP_MAX: usize = 65_535;
/// A TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Most TCP connections at once.
const TCP_CONNECTIONS: usize = 512;
/// TTL of the CNAME in safe-search answers.
const REWRITE_TTL: u32 = 300;
/// RFC 8914 "No Reachable Authority".
const EDE_NO_REACHABLE: u16 = 22;

/// Bound sockets to serve on. Tests bind port 0 and read the addresses back.
pub struct Listeners {
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address. Port 0 picks one free port used for both. An IPv6
    /// address is dual-stack (it also takes IPv4 clients) unless an IPv4 address in the list uses
    /// the same port: then it is IPv6-only, so `0.0.0.0:53` and `[::]:53` can both be listed.
    ///
    /// # Errors
    /// An address cannot be bound.
    pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Listeners> {
        let mut listeners = Listeners {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for &addr in addrs {
            let v6_only = addr.is_ipv6()
                && addrs
                    .iter()
                    .any(|a| a.is_ipv4() && a.port() == addr.port() && a.port() != 0);
            let (udp, tcp) = bind_pair(addr, v6_only)?;
            listeners.udp.push(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }

    /// The addresses actually bound (UDP and TCP share them).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

fn bind_pair(addr: SocketAddr, v6_only: bool) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = bind_socket(addr, v6_only, Type::DGRAM)?;
        let bound = udp.local_addr()?.as_socket().unwrap_or(addr);
        match bind_socket(bound, v6_only, Type::STREAM) {
            Ok(tcp) => {
                tcp.listen(1024)?;
                return Ok((
                    UdpSocket::from_std(udp.into())?,
                    TcpListener::from_std(tcp.into())?,
                ));
            }
            // Port 0 chose a UDP port whose TCP twin is taken: try another.
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// A non-blocking socket bound to `addr`; TCP sockets reuse the address so a restart does not
/// wait for old connections to time out.
fn bind_socket(addr: SocketAddr, v6_only: bool, kind: Type) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6_only)?;
    }
    if kind == Type::STREAM {
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Everything the handler shares across tasks. Owned by `run`'s caller through an `Arc`.
pub struct Resolver {
    /// Settings from resolver.toml (after command-line overrides).
    pub config: Config,
    /// Policy and leases.
    pub state: Arc<State>,
    /// Answer cache.
    pub cache: Cache,
    /// Upstream resolvers.
    pub upstreams: Upstreams,
    /// Upstream queries in flight, shared by identical misses.
    pub inflight: Inflight,
    /// Per-client limits, when on.
    pub limiter: Option<RateLimiter>,
    /// Open TCP connections per client.
    pub tcp_clients: TcpClients,
    /// Decision log.
    pub log: QueryLog,
    /// High-risk block alerts.
    pub alerts: AlertQueue,
}

/// Per-loop scratch buffers, reused for every packet.
#[derive(Default)]
pub struct Scratch {
    name: String,
    key: Vec<u8>,
}

/// What [`Resolver::fast`] decided.
pub enum Step {
    /// `out` holds the answer.
    Reply,
    /// Send nothing.
    Drop,
    /// Needs the upstream: finish with [`Resolver::slow`].
    Slow(Box<Work>),
}

/// A question for the upstream, with the cache key its answer is stored under.
struct Question<'a> {
    key: &'a [u8],
    name_wire: &'a [u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
}

/// A query waiting for the upstream.
pub struct Work {
    packet: Vec<u8>,
    request: Request,
    name: String,
    key: Vec<u8>,
    client: IpAddr,
    identity: Identity,
    verdict: Verdict,
    snapshot: Arc<Snapshot>,
    time: Timestamp,
    started: Instant,
    limit: usize,
}

impl Resolver {
    fn our_payload(&self) -> u16 {
        self.config.udp_payload
    }

    /// Answers what can be answered at once. `tcp` lifts the UDP size limit; TCP queries over
    /// the client's rate get REFUSED instead of a truncated answer.
    pub fn fast(
        &self,
        snapshot: &Arc<Snapshot>,
        packet: &[u8],
        client: IpAddr,
        tcp: bool,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Step {
        let started = Instant::now();
        let request = match wire::parse_request(packet, &mut scratch.name) {
            Ok(r) => r,
            Err(reject) => {
                return match wire::reject_answer(packet, reject, self.our_payload()) {
                    Some(answer) => {
                        *out = answer;
                        Step::Reply
                    }
                    None => Step::Drop,
                }
            }
        };
        let policy = &snapshot.policy;
        let verdict = self
            .limiter
            .as_ref()
            .map_or(Limit::Pass, |l| l.check(policy, client, tcp, started));
        let refuse = match verdict {
            Limit::Drop => return Step::Drop,
            Limit::Slip => {
                let payload = self.our_payload();
                wire::minimal_answer(out, packet, &request, rcode::NOERROR, true, payload);
                return Step::Reply;
            }
            Limit::Refuse => true,
            // Only the Internet class is served.
            Limit::Pass => request.qclass != 1,
        };
        if refuse {
            let payload = self.our_payload();
            wire::minimal_answer(out, packet, &request, rcode::REFUSED, false, payload);
            return Step::Reply;
        }
        let limit = if tcp {
            TCP_MAX
        } else {
            request.udp_limit(self.our_payload())
        };
        let time = Timestamp::now();
        let identity = identity::identify(policy, &snapshot.leases, client, time);
        let query = Query {
            name: &scratch.name,
            qtype: request.qtype,
        };
        let verdict = decide(&identity, query, policy, time);
        let tier = &policy.tiers[identity.tier].name;
        if answer::write_block(
            out,
            packet,
            &request,
            &verdict,
            policy,
            tier,
            self.our_payload(),
        ) {
            self.alert(snapshot, &verdict, client, &identity, &scratch.name);
            self.truncate_if_needed(out, packet, &request, limit);
            self.log(
                snapshot,
                time,
                client,
                identity,
                &scratch.name,
                &request,
                verdict,
                out,
                false,
                started,
            );
            return Step::Reply;
        }
        if verdict.action == Action::Forward {
            cache::key_into(&mut scratch.key, packet, &request);
            if self.cache.answer_into(&scratch.key, started, false, out) == Lookup::Fresh {
                self.finish_cached(out, packet, &request, limit);
                self.log(
                    snapshot,
                    time,
                    client,
                    identity,
                    &scratch.name,
                    &request,
                    verdict,
                    out,
                    true,
                    started,
                );
                return Step::Reply;
            }
        }
        Step::Slow(Box::new(Work {
            packet: packet.to_vec(),
            request,
            name: scratch.name.clone(),
            key: scratch.key.clone(),
            client,
            identity,
            verdict,
            snapshot: snapshot.clone(),
            time,
            started,
            limit,
        }))
    }

    /// Finishes a query that needs the upstream; always produces an answer within the deadline.
    pub async fn slow(&self, work: Box<Work>) -> Vec<u8> {
        let Work {
            packet,
            request,
            name,
            key,
            client,
            identity,
            verdict,
            snapshot,
            time,
            started,
            limit,
        } = *work;
        let mut out = Vec::with_capacity(512);
        let mut cached = false;
        match verdict.action {
            Action::Rewrite(target) => {
                match self
                    .rewrite(&packet, &request, target, &snapshot, &identity, &verdict)
                    .await
                {
                    Some(answer) => out = answer,
                    None => self.servfail(&mut out, &packet, &request),
                }
            }
            _ => {
                let question = Question {
                    key: &key,
                    name_wire: &packet[wire::HEADER..request.name_end],
                    qtype: request.qtype,
                    qclass: request.qclass,
                    dnssec_ok: request.edns.is_some_and(|e| e.dnssec_ok),
                };
                match self.fetch(question, &snapshot).await {
                    Fetched::Answer(stored) => {
                        out.clear();
                        out.extend_from_slice(&stored);
                        self.finish_cached(&mut out, &packet, &request, limit);
                    }
                    Fetched::Unusable => self.servfail(&mut out, &packet, &request),
                    Fetched::Failed => {
                        let stale = self.config.cache.serve_stale
                            && self.cache.answer_into(&key, Instant::now(), true, &mut out)
                                != Lookup::Miss;
                        if stale {
                            cached = true;
                            self.finish_cached(&mut out, &packet, &request, limit);
                        } else {
                            tracing::debug!(%name, "answering SERVFAIL");
                            self.servfail(&mut out, &packet, &request);
                        }
                    }
                }
            }
        }
        self.truncate_if_needed(&mut out, &packet, &request, limit);
        self.log(
            &snapshot, time, client, identity, &name, &request, verdict, &out, cached, started,
        );
        out
    }

    /// The upstream's answer to `question`, stored in the cache. Identical misses already in
    /// flight share one upstream query: the first asks, the rest wait for its outcome up to the
    /// upstream deadline, and are released as failed if it ends without one.
    async fn fetch(&self, question: Question<'_>, snapshot: &Snapshot) -> Fetched {
        let strip_ech = snapshot.policy.bypass.strip_ech && matches!(question.qtype, 64 | 65);
        // What is stored depends on ECH stripping too, so a reload that changes it never hands
        // one policy's answer to a client under the other.
        let mut flight = Vec::with_capacity(question.key.len() + 1);
        flight.extend_from_slice(question.key);
        flight.push(u8::from(strip_ech));
        match self.inflight.join(&flight) {
            Join::Follower(follow) => follow
                .wait(self.upstreams.deadline())
                .await
                .unwrap_or(Fetched::Failed),
            Join::Leader(lead) => {
                let outcome = self.fetch_upstream(&question, strip_ech).await;
                lead.finish(outcome.clone());
                outcome
            }
            Join::Alone => self.fetch_upstream(&question, strip_ech).await,
        }
    }

    async fn fetch_upstream(&self, question: &Question<'_>, strip_ech: bool) -> Fetched {
        let answer = self
            .upstreams
            .query(
                question.name_wire,
                question.qtype,
                question.qclass,
                question.dnssec_ok,
            )
            .await;
        match answer {
            Ok(answer) => match self.store(question.key, &answer, strip_ech) {
                Some(stored) => Fetched::Answer(stored.into()),
                None => Fetched::Unusable,
            },
            Err(e) => {
                tracing::debug!(error = %e, "no upstream answer");
                Fetched::Failed
            }
        }
    }

    /// Prepares an upstream answer for the cache (no OPT, no ECH if the policy strips it), stores it,
    /// and returns it ready for [`Self::finish_cached`].
    /// `strip_ech` is set for HTTPS (65) and SVCB (64) answers when the policy strips ECH keys,
    /// which hide the real server name.
    fn store(&self, key: &[u8], answer: &[u8], strip_ech: bool) -> Option<Vec<u8>> {
        let mut clean = upstream::without_opt(answer)?;
        if strip_ech {
            if let Some(stripped) = answer::strip_ech(&clean) {
                clean = stripped;
            }
        }
        self.cache.insert(key, &clean, Instant::now());
        Some(clean)
    }

    async fn rewrite(
        &self,
        packet: &[u8],
        request: &Request,
        target: &'static str,
        snapshot: &Snapshot,
        identity: &Identity,
        verdict: &Verdict,
    ) -> Option<Vec<u8>> {
        let mut name_wire = Vec::with_capacity(target.len() + 2);
        for label in target.split('.') {
            name_wire.push(label.len() as u8);
            name_wire.extend_from_slice(label.as_bytes());
        }
        name_wire.push(0);
        let mut key = name_wire.clone();
        key.extend_from_slice(&request.qtype.to_be_bytes());
        key.extend_from_slice(&1u16.to_be_bytes());
        key.push(0);
        let mut target_answer = Vec::new();
        if self
            .cache
            .answer_into(&key, Instant::now(), false, &mut target_answer)
            == Lookup::Miss
        {
            let question = Question {
                key: &key,
                name_wire: &name_wire,
                qtype: request.qtype,
                qclass: 1,
                dnssec_ok: false,
            };
            target_answer = match self.fetch(question, snapshot).await {
                Fetched::Answer(a) => a.to_vec(),
                Fetched::Unusable => return None,
                Fetched::Failed if self.config.cache.serve_stale => {
                    let mut stale = Vec::new();
                    if self
                        .cache
                        .answer_into(&key, Instant::now(), true, &mut stale)
                        == Lookup::Miss
                    {
                        return None;
                    }
                    stale
                }
                Fetched::Failed => return None,
            };
        }
        let tier = &snapshot.policy.tiers[identity.tier].name;
        let text = answer::ede_text(verdict, tier);
        answer::rewrite(
            packet,
            request,
            target,
            &target_answer,
            REWRITE_TTL,
            Some(&text),
            self.our_payload(),
        )
        .map_err(|e| tracing::warn!(error = %e, "cannot build safe-search answer"))
        .ok()
    }

    /// Turns a stored answer into this client's: its id, flags and question spelling, and an OPT
    /// record if it sent one.
    fn finish_cached(&self, out: &mut Vec<u8>, packet: &[u8], request: &Request, limit: usize) {
        let code = out[3] & 0xf;
        out[0..2].copy_from_slice(&packet[0..2]);
        out[2..4].copy_from_slice(&wire::response_flags(request.flags, code, false).to_be_bytes());
        let name = wire::HEADER..request.name_end;
        if out.len() >= request.name_end {
            out[name.clone()].copy_from_slice(&packet[name]);
        }
        if let Some(e) = request.edns {
            let ar = u16::from_be_bytes([out[10], out[11]]) + 1;
            out[10..12].copy_from_slice(&ar.to_be_bytes());
            wire::push_opt(out, self.our_payload(), e.dnssec_ok);
        }
        self.truncate_if_needed(out, packet, request, limit);
    }

    fn truncate_if_needed(
        &self,
        out: &mut Vec<u8>,
        packet: &[u8],
        request: &Request,
        limit: usize,
    ) {
        if out.len() > limit {
            let code = out[3] & 0xf;
            wire::minimal_answer(out, packet, request, code, true, self.our_payload());
        }
    }

    fn servfail(&self, out: &mut Vec<u8>, packet: &[u8], request: &Request) {
        wire::minimal_answer(
            out,
            packet,
            request,
            rcode::SERVFAIL,
            false,
            self.our_payload(),
        );
        if request.edns.is_some() {
            // Replace the bare OPT with one carrying "No Reachable Authority".
            out.truncate(out.len() - 11);
            let text = b"no upstream resolver answered";
            let e = request.edns.map(|e| e.dnssec_ok).unwrap_or(false);
            out.push(0);
            out.extend_from_slice(&wire::TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&self.our_payload().to_be_bytes());
            out.extend_from_slice(&[0, 0, if e { 0x80 } else { 0 }, 0]);
            let option_len = (2 + text.len()) as u16;
            out.extend_from_slice(&(option_len + 4).to_be_bytes());
            out.extend_from_slice(&answer::OPTION_EDE.to_be_bytes());
            out.extend_from_slice(&option_len.to_be_bytes());
            out.extend_from_slice(&EDE_NO_REACHABLE.to_be_bytes());
            out.extend_from_slice(text);
        }
    }

    fn alert(
        &self,
        snapshot: &Snapshot,
        verdict: &Verdict,
        client: IpAddr,
        identity: &Identity,
        name: &str,
    ) {
        let Some(category) = verdict.category else {
            return;
        };
        if !snapshot.policy.alert_categories.contains(category) {
            return;
        }
        let listed = match verdict.rule {
            crate::decide::Rule::Unliftable { suffix_start }
            | crate::decide::Rule::Category { suffix_start }
            | crate::decide::Rule::ScheduleBlock { suffix_start, .. } => {
                name.get(suffix_start..).unwrap_or(name)
            }
            _ => name,
        };
        self.alerts.blocked(
            client,
            identity.user.as_deref(),
            listed,
            category,
            Instant::now(),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        snapshot: &Arc<Snapshot>,
        time: Timestamp,
        client: IpAddr,
        identity: Identity,
        name: &str,
        request: &Request,
        verdict: Verdict,
        out: &[u8],
        cached: bool,
        started: Instant,
    ) {
        if !self.log.enabled() {
            return;
        }
        self.log.record(Record {
            time,
            client,
            identity,
            name: name.into(),
            qtype: request.qtype,
            verdict,
            policy: snapshot.policy.clone(),
            rcode: out.get(3).map_or(0, |b| b & 0xf),
            cached,
            latency: started.elapsed(),
        });
    }
}

/// Serves on `listeners` until `shutdown` is cancelled, then drains in-flight queries for up to
/// [`ward_service::shutdown::GRACE`].
///
/// # Errors
/// Never at present; the signature leaves room for listener failures worth stopping for.
pub async fn run(
    resolver: Arc<Resolver>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let handle = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    for socket in listeners.udp {
        let socket = socket.into_std()?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(UDP_WAKE))?;
        for i in 0..workers {
            let socket = socket.try_clone()?;
            let (resolver, shutdown, tracker, handle) = (
                resolver.clone(),
                shutdown.clone(),
                tracker.clone(),
                handle.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("udp-{i}"))
                    .spawn(move || udp_thread(resolver, socket, shutdown, tracker, handle))?,
            );
        }
    }
    for listener in listeners.tcp {
        tracker.spawn(tcp_accept(
            resolver.clone(),
            listener,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    shutdown.cancelled().await;
    // The UDP threads notice within UDP_WAKE; wait for them so no answer is half sent.
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    tracker.close();
    if tokio::time::timeout(ward_service::shutdown::GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some queries were still in flight at shutdown");
    }
    Ok(())
}

/// How often a UDP thread blocked in `recv_from` wakes to check for shutdown.
const UDP_WAKE: Duration = Duration::from_millis(200);

/// One UDP serving thread: a blocking receive, the synchronous fast path, a blocking send; work
/// that needs the upstream is handed to the async runtime. Plain threads on blocking sockets rather
/// than tasks on the runtime, because this is most of the resolver's work: the kernel wakes the
/// thread straight from the socket, with no readiness events or task wake-ups in between.
fn udp_thread(
    resolver: Arc<Resolver>,
    socket: std::net::UdpSocket,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    handle: tokio::runtime::Handle,
) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    let mut scratch = Scratch::default();
    let mut local = Local::new(&resolver.state);
    while !shutdown.is_cancelled() {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) {
                    tracing::debug!(error = %e, "udp receive failed");
                }
                continue;
            }
        };
        let snapshot = local.get(&resolver.state);
        match resolver.fast(
            snapshot,
            &buf[..n],
            peer.ip(),
            false,
            &mut scratch,
            &mut out,
        ) {
            Step::Reply => {
                let _ = socket.send_to(&out, peer);
            }
            Step::Drop => {}
            Step::Slow(work) => {
                let (resolver, socket) = (resolver.clone(), socket.clone());
                tracker.spawn_on(
                    async move {
                        let answer = resolver.slow(work).await;
                        // A UDP send does not wait for the peer; blocking here is momentary.
                        let _ = socket.send_to(&answer, peer);
                    },
                    &handle,
                );
            }
        }
    }
}

async fn tcp_accept(
    resolver: Arc<Resolver>,
    listener: TcpListener,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(TCP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Full: close this connection rather than queue without bound.
            continue;
        };
        let Some(slot) = resolver
            .tcp_clients
            .open(&resolver.state.snapshot().policy, peer.ip())
        else {
            tracing::debug!(%peer, "client holds its share of TCP connections; closed");
            continue;
        };
        let (resolver, shutdown) = (resolver.clone(), shutdown.clone());
        tracker.spawn(async move {
            if let Err(e) = tcp_connection(resolver, stream, peer, shutdown).await {
                tracing::debug!(%peer, error = %e, "tcp connection ended");
            }
            drop((permit, slot));
        });
    }
}

async fn tcp_connection(
    resolver: Arc<Resolver>,
    mut stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(1024);
    let mut buf = Vec::new();
    loop {
        let len = tokio::select! {
            r = tokio::time::timeout(TCP_IDLE, stream.read_u16()) => match r {
                Ok(Ok(len)) => usize::from(len),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()),
            },
            () = shutdown.cancelled() => return Ok(()),
        };
        buf.resize(len, 0);
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out reading a query"))??;
        let snapshot = resolver.state.snapshot();
        let answer = match resolver.fast(&snapshot, &buf, peer.ip(), true, &mut scratch, &mut out) {
            Step::Reply => std::mem::take(&mut out),
            Step::Drop => continue,
            Step::Slow(work) => resolver.slow(work).await,
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        framed.extend_from_slice(&answer);
        stream.write_all(&framed).await?;
    }
}
