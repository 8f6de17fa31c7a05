//! Identical cache misses in flight share one upstream query.
//!
//! When a popular name expires, or a whole school opens the same page at 9:00, hundreds of clients
//! miss the cache for the same question within milliseconds. The first miss for a key becomes the
//! leader and asks the upstream; later identical misses follow it and wait, each with its own
//! deadline, for the leader's outcome. Each client's answer is still built from that shared outcome
//! with its own id, flags and question spelling, after its own policy decision, so only the upstream
//! fetch is shared.
//!
//! The table is bounded twice: at most `max_keys` questions in flight are tracked, and at most
//! `max_followers` clients wait on one of them. A miss past either bound goes to the upstream on its
//! own, as if nothing were shared, so a flood of unique names costs no memory here and a huge burst
//! on one name still gets answered. A leader that ends without an outcome (its task dropped at
//! shutdown) releases its followers at once; they then answer as for a failed upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::cache::KeyHasher;

/// Questions in flight tracked at once.
pub const MAX_KEYS: usize = 8192;
/// Clients waiting on one question.
pub const MAX_FOLLOWERS: usize = 2048;

/// What the leader's upstream query came to, shared with its followers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// An answer as stored in the cache (no OPT, id zero), ready to be made a client's.
    Answer(Arc<[u8]>),
    /// An upstream answered with something that cannot be used: answer SERVFAIL.
    Unusable,
    /// No upstream answered in time: answer stale data if allowed, else SERVFAIL.
    Failed,
}

struct Flight {
    outcome: watch::Receiver<Option<Fetched>>,
    followers: usize,
}

type Map = HashMap<Box<[u8]>, Flight, std::hash::BuildHasherDefault<KeyHasher>>;

/// The questions currently being asked upstream.
pub struct Inflight {
    flights: Mutex<Map>,
    max_keys: usize,
    max_followers: usize,
}

/// A miss's role for its question.
pub enum Join<'a> {
    /// First in: ask the upstream, then [`Lead::finish`].
    Leader(Lead<'a>),
    /// Another client is already asking: [`Follow::wait`] for its outcome.
    Follower(Follow),
    /// A bound is reached: ask the upstream without sharing.
    Alone,
}

/// The leader's hold on a question; dropping it without [`Lead::finish`] releases the followers
/// with no outcome.
pub struct Lead<'a> {
    table: &'a Inflight,
    key: Box<[u8]>,
    outcome: watch::Sender<Option<Fetched>>,
}

/// A follower's wait for the leader.
pub struct Follow {
    outcome: watch::Receiver<Option<Fetched>>,
}

impl Inflight {
    /// An empty table with the given bounds.
    pub fn new(max_keys: usize, max_followers: usize) -> Inflight {
        Inflight {
            flights: Mutex::new(Map::default()),
            max_keys,
            max_followers,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the flight for `key` (the cache key plus anything else that shapes the stored answer).
    pub fn join(&self, key: &[u8]) -> Join<'_> {
        let mut flights = self.lock();
        if let Some(flight) = flights.get_mut(key) {
            if flight.followers >= self.max_followers {
                return Join::Alone;
            }
            flight.followers += 1;
            return Join::Follower(Follow {
                outcome: flight.outcome.clone(),
            });
        }
        if flights.len() >= self.max_keys {
            return Join::Alone;
        }
        let (sender, receiver) = watch::channel(None);
        let key: Box<[u8]> = key.into();
        flights.insert(
            key.clone(),
            Flight {
                outcome: receiver,
                followers: 0,
            },
        );
        Join::Leader(Lead {
            table: self,
            key,
            outcome: sender,
        })
    }

    /// Questions in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Inflight {
    fn default() -> Inflight {
        Inflight::new(MAX_KEYS, MAX_FOLLOWERS)
    }
}

impl Lead<'_> {
    /// Hands `outcome` to every follower and ends the flight. The answer is already in the cache,
    /// so a miss arriving after this finds it there.
    pub fn finish(self, outcome: Fetched) {
        // Followers hold receivers; a send fails only when none is left, which is fine.
        let _ = self.outcome.send(Some(outcome));
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.table.lock().remove(&self.key);
    }
}

impl Follow {
    /// The leader's outcome, or `None` when `within` passes first or the leader ended without one.
    pub async fn wait(mut self, within: Duration) -> Option<Fetched> {
        match tokio::time::timeout(within, self.outcome.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => outcome.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(join: Join<'_>) -> Lead<'_> {
        match join {
            Join::Leader(lead) => lead,
            _ => panic!("expected to lead"),
        }
    }

    fn follower(join: Join<'_>) -> Follow {
        match join {
            Join::Follower(follow) => follow,
            _ => panic!("expected to follow"),
        }
    }

    #[test]
    fn followers_and_keys_are_bounded() {
        let table = Inflight::new(2, 3);
        let a = leader(table.join(b"a"));
        let waiting: Vec<Follow> = (0..3).map(|_| follower(table.join(b"a"))).collect();
        assert!(matches!(table.join(b"a"), Join::Alone), "a fourth follower");
        let b = leader(table.join(b"b"));
        assert!(matches!(table.join(b"c"), Join::Alone), "a third key");
        assert_eq!(table.len(), 2);
        a.finish(Fetched::Failed);
        assert_eq!(table.len(), 1);
        let c = leader(table.join(b"c"));
        assert!(matches!(table.join(b"d"), Join::Alone));
        drop((b, c, waiting));
        assert!(table.is_empty());
    }

    #[test]
    fn a_unique_name_flood_stays_within_the_key_bound() {
        let table = Inflight::new(64, 8);
        let leads: Vec<_> = (0..10_000u32)
            .map(|i| table.join(&i.to_be_bytes()))
            .collect();
        assert_eq!(table.len(), 64);
        let led = leads
            .iter()
            .filter(|j| matches!(j, Join::Leader(_)))
            .count();
        assert_eq!(led, 64);
        drop(leads);
        assert!(table.is_empty());
    }

    #[tokio::test]
    async fn followers_get_the_leaders_outcome_or_are_released() {
        let table = Inflight::default();
        let lead = leader(table.join(b"k"));
        let first = follower(table.join(b"k"));
        let second = follower(table.join(b"k"));
        let answer: Arc<[u8]> = Arc::from(&b"answer"[..]);
        lead.finish(Fetched::Answer(answer.clone()));
        let within = Duration::from_secs(5);
        assert_eq!(
            first.wait(within).await,
            Some(Fetched::Answer(answer.clone()))
        );
        assert_eq!(second.wait(within).await, Some(Fetched::Answer(answer)));
        assert!(table.is_empty());

        // A leader dropped without an outcome releases its followers at once.
        let lead = leader(table.join(b"k"));
        let waiting = follower(table.join(b"k"));
        drop(lead);
        let started = std::time::Instant::now();
        assert_eq!(waiting.wait(within).await, None);
        assert!(started.elapsed() < within);

        // A follower gives up at its own deadline.
        let _lead = leader(table.join(b"k"));
        let waiting = follower(table.join(b"k"));
        assert_eq!(waiting.wait(Duration::from_millis(20)).await, None);
    }
}
