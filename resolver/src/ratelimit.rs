//! Per-client rate limiting against floods (a broken app, a reflection attempt), shaped so it never
//! breaks a school that sits behind one NAT address: the policy's own networks and configured exempt
//! ranges are never limited, and IPv6 clients are counted per /64.
//!
//! UDP and TCP queries have buckets of their own at the same rate. A UDP client over its limit gets
//! every other answer as a truncated reply instead of silence, so a real client retries over TCP;
//! a flood with its address forged (possible only over UDP) therefore cannot starve it. Over TCP the
//! sender is real, and past its limit it gets REFUSED. Each client may also hold only a few TCP
//! connections at once, so one device cannot take all of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ipnet::IpNet;

use crate::config::RateLimitConfig;
use crate::policy::{canonical, Policy};

/// What to do with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Answer normally.
    Pass,
    /// Over the limit: answer truncated, so a real client retries over TCP.
    Slip,
    /// Over the limit: do not answer.
    Drop,
    /// Over the limit on TCP: answer REFUSED (the client is already on the transport a truncated
    /// answer would send it to).
    Refuse,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    over: u32,
}

/// Token buckets per client and transport.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    exempt: Vec<IpNet>,
    buckets: Mutex<HashMap<(IpAddr, bool), Bucket>>,
}

/// The address a client is counted under, or `None` when it is never limited.
fn client_key(exempt: &[IpNet], policy: &Policy, ip: IpAddr) -> Option<IpAddr> {
    let ip = canonical(ip);
    if exempt.iter().any(|n| n.contains(&ip)) || policy.network_of(ip).is_some() {
        return None;
    }
    Some(match ip {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
        v4 => v4,
    })
}

impl RateLimiter {
    /// A limiter, or `None` when limiting is off.
    pub fn new(config: &RateLimitConfig) -> Option<RateLimiter> {
        (config.queries_per_second > 0).then(|| RateLimiter {
            rate: f64::from(config.queries_per_second),
            burst: f64::from(config.burst),
            exempt: config.exempt.clone(),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Decides for a query from `ip` at `now`, over TCP or UDP (each has its own buckets, so a UDP
    /// flood forging an address does not starve that client's TCP retries).
    pub fn check(&self, policy: &Policy, ip: IpAddr, tcp: bool, now: Instant) -> Limit {
        let Some(key) = client_key(&self.exempt, policy, ip) else {
            return Limit::Pass;
        };
        match self.take((key, tcp), now) {
            None => Limit::Pass,
            Some(_) if tcp => Limit::Refuse,
            Some(over) if over % 2 == 1 => Limit::Slip,
            Some(_) => Limit::Drop,
        }
    }

    /// Takes a token from `key`'s bucket: `None` when there was one, else how many queries in a
    /// row have found it empty.
    fn take(&self, key: (IpAddr, bool), now: Instant) -> Option<u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget idle clients rather than grow without bound.
            buckets.retain(|_, b| now.duration_since(b.last).as_secs() < 10);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            over: 0,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.over = 0;
            None
        } else {
            bucket.over = bucket.over.wrapping_add(1);
            Some(bucket.over)
        }
    }
}

/// Open TCP connections per client, capped (the policy's networks and exempt ranges are not).
pub struct TcpClients {
    per_client: usize,
    exempt: Vec<IpNet>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One client's TCP connection; its place is given back when dropped.
pub struct TcpSlot {
    key: Option<IpAddr>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl TcpClients {
    /// Caps from `config` (`tcp_connections_per_client` 0: no cap per client).
    pub fn new(config: &RateLimitConfig) -> TcpClients {
        TcpClients {
            per_client: config.tcp_connections_per_client,
            exempt: config.exempt.clone(),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for a new connection from `ip`, or `None` when it already holds its share.
    pub fn open(&self, policy: &Policy, ip: IpAddr) -> Option<TcpSlot> {
        let key = match client_key(&self.exempt, policy, ip) {
            Some(key) if self.per_client > 0 => key,
            _ => {
                return Some(TcpSlot {
                    key: None,
                    open: self.open.clone(),
                })
            }
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(TcpSlot {
            key: Some(key),
            open: self.open.clone(),
        })
    }
}

impl Drop for TcpSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::decide::tests::{fixture, POLICY};

    #[test]
    fn a_flooding_client_is_slowed_but_the_school_network_never_is() {
        let (_dir, policy) = fixture(POLICY);
        let policy = policy.unwrap();
        let limiter = RateLimiter::new(&RateLimitConfig {
            queries_per_second: 10,
            burst: 20,
            exempt: vec!["192.0.2.0/24".parse().unwrap()],
            tcp_connections_per_client: 2,
        })
        .unwrap();
        let t0 = Instant::now();
        let count = |ip: &str, n: usize, at: Instant| {
            let ip: IpAddr = ip.parse().unwrap();
            (0..n).fold([0usize; 3], |mut acc, _| {
                acc[limiter.check(&policy, ip, false, at) as usize] += 1;
                acc
            })
        };
        // An unknown address: the burst passes, then every other answer is truncated.
        assert_eq!(count("203.0.113.9", 40, t0), [20, 10, 10]);
        // A second later it has earned ten more.
        assert_eq!(
            count("203.0.113.9", 10, t0 + Duration::from_secs(1)),
            [10, 0, 0]
        );
        // The whole school behind one NAT address on a policy network, or an exempt range: never.
        assert_eq!(count("10.20.0.1", 10_000, t0), [10_000, 0, 0]);
        assert_eq!(count("192.0.2.7", 10_000, t0), [10_000, 0, 0]);
        // IPv6 clients share a bucket per /64.
        assert_eq!(count("2001:db8:1:2::1", 20, t0)[0], 20);
        assert_eq!(count("2001:db8:1:2::99", 1, t0), [0, 1, 0]);

        // TCP has buckets of its own: a UDP flood forging an address does not starve its TCP.
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let tcp: Vec<bool> = (0..25)
            .map(|_| limiter.check(&policy, ip, true, t0 + Duration::from_secs(1)) == Limit::Pass)
            .collect();
        assert_eq!(tcp.iter().filter(|p| **p).count(), 20);
        assert!(!tcp[20..].iter().any(|p| *p));
        let school: IpAddr = "10.20.0.1".parse().unwrap();
        assert!((0..1000).all(|_| limiter.check(&policy, school, true, t0) == Limit::Pass));
    }

    #[test]
    fn a_client_holds_only_its_share_of_tcp_connections() {
        let (_dir, policy) = fixture(POLICY);
        let policy = policy.unwrap();
        let clients = TcpClients::new(&RateLimitConfig {
            queries_per_second: 10,
            burst: 20,
            exempt: vec![],
            tcp_connections_per_client: 2,
        });
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let first = clients.open(&policy, ip).unwrap();
        let _second = clients.open(&policy, ip).unwrap();
        assert!(clients.open(&policy, ip).is_none());
        assert!(clients
            .open(&policy, "203.0.113.10".parse().unwrap())
            .is_some());
        drop(first);
        assert!(clients.open(&policy, ip).is_some());
        // The school network behind NAT is not capped per client.
        let school: IpAddr = "10.20.0.1".parse().unwrap();
        let held: Vec<TcpSlot> = (0..100)
            .filter_map(|_| clients.open(&policy, school))
            .collect();
        assert_eq!(held.len(), 100);
    }
}
