//! Per-client rate limiting against floods (a broken app, a reflection attempt), shaped so it never
//! breaks a school that sits behind one NAT address: the policy's own networks and configured exempt
//! ranges are never limited, IPv6 clients are counted per /64, and a client over its limit gets every
//! other answer as a truncated reply (so a real client retries over TCP, which is never limited)
//! instead of silence.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
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
}

struct Bucket {
    tokens: f64,
    last: Instant,
    over: u32,
}

/// Token buckets per client.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    exempt: Vec<IpNet>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
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

    /// Decides for a UDP query from `ip` at `now`.
    pub fn check(&self, policy: &Policy, ip: IpAddr, now: Instant) -> Limit {
        let ip = canonical(ip);
        if self.exempt.iter().any(|n| n.contains(&ip)) || policy.network_of(ip).is_some() {
            return Limit::Pass;
        }
        let key = match ip {
            IpAddr::V6(v6) => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
            v4 => v4,
        };
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
            Limit::Pass
        } else {
            bucket.over = bucket.over.wrapping_add(1);
            if bucket.over % 2 == 1 {
                Limit::Slip
            } else {
                Limit::Drop
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
        })
        .unwrap();
        let t0 = Instant::now();
        let count = |ip: &str, n: usize, at: Instant| {
            let ip: IpAddr = ip.parse().unwrap();
            (0..n).fold([0usize; 3], |mut acc, _| {
                acc[limiter.check(&policy, ip, at) as usize] += 1;
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
    }
}
