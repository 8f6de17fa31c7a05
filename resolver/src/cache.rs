//! The answer cache: upstream answers kept as wire bytes, keyed by question (name, type, class and
//! DNSSEC-OK), served with the client's id and TTLs reduced by the time spent in the cache.
//!
//! Entries hold the answer as received (minus OPT) with the offsets of every TTL field, so a hit is a
//! copy and a few 4-byte writes. Negative answers (NXDOMAIN, no data) are cached for the SOA's
//! minimum, capped by `negative_ttl`. Expired entries stay for `stale_for` so that, when every
//! upstream is down, the resolver can answer stale data instead of failing (if configured).
//! Sharded mutexes keep lock hold times to a copy; nothing is awaited while a lock is held.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::CacheConfig;
use crate::wire;

const SHARDS: usize = 16;
/// TTL given to stale answers.
pub const STALE_TTL: u32 = 30;

/// A small, fast hasher for cache keys (they are not attacker-chosen in a way that matters: each
/// shard is bounded, and collisions only cost time).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        self.0 = h;
    }
}

type Map = HashMap<Box<[u8]>, Entry, BuildHasherDefault<KeyHasher>>;

struct Entry {
    wire: Box<[u8]>,
    ttl_offsets: Box<[u16]>,
    stored: Instant,
    expires: Instant,
    stale_until: Instant,
}

/// The outcome of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh answer was written.
    Fresh,
    /// An expired answer was written with [`STALE_TTL`].
    Stale,
    /// Nothing usable.
    Miss,
}

/// The answer cache.
pub struct Cache {
    shards: Vec<Mutex<Map>>,
    per_shard: usize,
    config: CacheConfig,
}

/// Builds the cache key for a question into `key`: the lower-cased wire name, type, class and DO.
pub fn key_into(key: &mut Vec<u8>, packet: &[u8], request: &wire::Request) {
    key.clear();
    key.extend(
        packet[wire::HEADER..request.name_end]
            .iter()
            .map(u8::to_ascii_lowercase),
    );
    key.extend_from_slice(&request.qtype.to_be_bytes());
    key.extend_from_slice(&request.qclass.to_be_bytes());
    key.push(u8::from(request.edns.is_some_and(|e| e.dnssec_ok)));
}

impl Cache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
            per_shard: config.max_entries.div_ceil(SHARDS),
            config,
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Map> {
        let mut h = KeyHasher::default();
        h.write(key);
        &self.shards[(h.finish() >> 60) as usize % SHARDS]
    }

    /// Writes the cached answer for `key` into `out` (id and question still those stored) with
    /// TTLs aged to `now`. Stale entries are used only when `allow_stale`.
    pub fn answer_into(
        &self,
        key: &[u8],
        now: Instant,
        allow_stale: bool,
        out: &mut Vec<u8>,
    ) -> Lookup {
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = shard.get(key) else {
            return Lookup::Miss;
        };
        let (result, age) = if now < entry.expires {
            (Lookup::Fresh, None)
        } else if allow_stale && now < entry.stale_until {
            (Lookup::Stale, Some(STALE_TTL))
        } else {
            return Lookup::Miss;
        };
        out.clear();
        out.extend_from_slice(&entry.wire);
        let elapsed = now.saturating_duration_since(entry.stored).as_secs() as u32;
        for &at in entry.ttl_offsets.iter() {
            let at = usize::from(at);
            let ttl = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
            let aged = age.unwrap_or_else(|| ttl.saturating_sub(elapsed));
            out[at..at + 4].copy_from_slice(&aged.to_be_bytes());
        }
        result
    }

    /// Stores an upstream answer (OPT already removed). Returns false when the answer is not
    /// cacheable (server failure, refused, malformed).
    pub fn insert(&self, key: &[u8], answer: &[u8], now: Instant) -> bool {
        let Some(ttl) = self.ttl_for(answer) else {
            return false;
        };
        let Some((offsets, _)) = wire::ttl_offsets(answer) else {
            return false;
        };
        // TTLs are stored clamped, so the aged values a hit writes are never above the policy.
        let mut stored = answer.to_vec().into_boxed_slice();
        for &at in &offsets {
            let at = usize::from(at);
            let t =
                u32::from_be_bytes([stored[at], stored[at + 1], stored[at + 2], stored[at + 3]]);
            let t = t.clamp(self.config.min_ttl, self.config.max_ttl.max(1));
            stored[at..at + 4].copy_from_slice(&t.to_be_bytes());
        }
        let expires = now + Duration::from_secs(u64::from(ttl));
        let entry = Entry {
            wire: stored,
            ttl_offsets: offsets.into_boxed_slice(),
            stored: now,
            expires,
            stale_until: expires + self.config.stale_for,
        };
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(key) {
            evict(&mut shard, now);
        }
        shard.insert(key.to_vec().into_boxed_slice(), entry);
        true
    }

    /// How long `answer` may be cached, or `None` if it must not be.
    fn ttl_for(&self, answer: &[u8]) -> Option<u32> {
        if answer.len() < wire::HEADER {
            return None;
        }
        let rcode = answer[3] & 0xf;
        let answers = u16::from_be_bytes([answer[6], answer[7]]);
        let (_, min) = wire::ttl_offsets(answer)?;
        let negative =
            rcode == wire::rcode::NXDOMAIN || (rcode == wire::rcode::NOERROR && answers == 0);
        if negative {
            // RFC 2308: the SOA's TTL/minimum; without a SOA, a short default.
            return Some(min.unwrap_or(30).min(self.config.negative_ttl));
        }
        if rcode != wire::rcode::NOERROR {
            return None;
        }
        Some(
            min.unwrap_or(0)
                .clamp(self.config.min_ttl, self.config.max_ttl),
        )
        .filter(|&t| t > 0)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: drops everything past its stale window, or failing that, the entry
/// closest to expiry among a sample.
fn evict(shard: &mut Map, now: Instant) {
    let before = shard.len();
    shard.retain(|_, e| e.stale_until > now);
    if shard.len() < before {
        return;
    }
    let victim = shard
        .iter()
        .take(32)
        .min_by_key(|(_, e)| e.expires)
        .map(|(k, _)| k.clone());
    if let Some(k) = victim {
        shard.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CacheConfig {
        CacheConfig {
            max_entries: 64,
            min_ttl: 0,
            max_ttl: 3600,
            negative_ttl: 120,
            serve_stale: true,
            stale_for: Duration::from_secs(600),
        }
    }

    /// example.com A answer with TTL `ttl`, or NXDOMAIN with a SOA (TTL 900, minimum 300).
    fn answer(ttl: u32, nxdomain: bool) -> Vec<u8> {
        let mut p = vec![
            0,
            0,
            0x81,
            if nxdomain { 0x83 } else { 0x80 },
            0,
            1,
            0,
            u8::from(!nxdomain),
            0,
            u8::from(nxdomain),
            0,
            0,
        ];
        p.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        if nxdomain {
            p.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1]);
            p.extend_from_slice(&900u32.to_be_bytes());
            let mut rdata = b"\x02ns\xc0\x0c\x04host\xc0\x0c".to_vec();
            for v in [1u32, 2, 3, 4, 300] {
                rdata.extend_from_slice(&v.to_be_bytes());
            }
            p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            p.extend_from_slice(&rdata);
        } else {
            p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            p.extend_from_slice(&ttl.to_be_bytes());
            p.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        }
        p
    }

    fn ttl_of(p: &[u8]) -> u32 {
        let (offsets, _) = wire::ttl_offsets(p).unwrap();
        let at = usize::from(offsets[0]);
        u32::from_be_bytes(p[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn ttls_age_then_expire_then_go_stale() {
        let cache = Cache::new(config());
        let t0 = Instant::now();
        assert!(cache.insert(b"k", &answer(100, false), t0));
        let mut out = Vec::new();
        let check = |secs: u64, stale: bool, expected: Lookup, ttl: Option<u32>| {
            let mut out = Vec::new();
            let got = cache.answer_into(b"k", t0 + Duration::from_secs(secs), stale, &mut out);
            assert_eq!(got, expected, "at {secs}s");
            if let Some(ttl) = ttl {
                assert_eq!(ttl_of(&out), ttl, "at {secs}s");
            }
        };
        check(0, false, Lookup::Fresh, Some(100));
        check(40, false, Lookup::Fresh, Some(60));
        check(100, false, Lookup::Miss, None);
        check(100, true, Lookup::Stale, Some(STALE_TTL));
        check(800, true, Lookup::Miss, None);
        assert_eq!(
            cache.answer_into(b"other", t0, true, &mut out),
            Lookup::Miss
        );
    }

    #[test]
    fn negative_answers_use_soa_minimum_capped() {
        let cache = Cache::new(config());
        let t0 = Instant::now();
        assert!(cache.insert(b"nx", &answer(0, true), t0));
        let mut out = Vec::new();
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            cache.answer_into(b"nx", at(119), false, &mut out),
            Lookup::Fresh
        );
        assert_eq!(
            cache.answer_into(b"nx", at(121), false, &mut out),
            Lookup::Miss
        );
        let mut servfail = answer(100, false);
        servfail[3] = 0x82;
        assert!(!cache.insert(b"sf", &servfail, t0));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = Cache::new(config());
        let t0 = Instant::now();
        for i in 0..1000u32 {
            cache.insert(&i.to_be_bytes(), &answer(100, false), t0);
        }
        assert!(cache.len() <= 64 + SHARDS, "{}", cache.len());
    }
}
