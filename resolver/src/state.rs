//! The policy and lease snapshot every query reads, swapped whole on reload.
//!
//! Readers never block writers for long and never see half a policy: a reload builds a complete new
//! [`Policy`] off to the side and swaps one `Arc`. Each serving loop keeps its own `Arc` and only
//! re-reads it when the generation counter moves (one atomic load per query), so queries in flight
//! finish on the snapshot they started with and none is dropped by a reload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::identity::Leases;
use crate::policy::Policy;

/// One consistent view: policy plus leases.
#[derive(Debug)]
pub struct Snapshot {
    /// The policy.
    pub policy: Arc<Policy>,
    /// The identity leases.
    pub leases: Arc<Leases>,
}

/// The current snapshot and its generation.
#[derive(Debug)]
pub struct State {
    current: RwLock<Arc<Snapshot>>,
    generation: AtomicU64,
}

impl State {
    /// Starts with `policy` and `leases`.
    pub fn new(policy: Policy, leases: Leases) -> State {
        State {
            current: RwLock::new(Arc::new(Snapshot {
                policy: Arc::new(policy),
                leases: Arc::new(leases),
            })),
            generation: AtomicU64::new(1),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Bumped on every swap.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the policy, keeping the leases.
    pub fn set_policy(&self, policy: Policy) {
        self.swap(|old| Snapshot {
            policy: Arc::new(policy),
            leases: old.leases.clone(),
        });
    }

    /// Replaces the leases, keeping the policy.
    pub fn set_leases(&self, leases: Leases) {
        self.swap(|old| Snapshot {
            policy: old.policy.clone(),
            leases: Arc::new(leases),
        });
    }

    fn swap(&self, make: impl FnOnce(&Snapshot) -> Snapshot) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(make(&current));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// A serving loop's copy of the snapshot, refreshed when the generation moves.
pub struct Local {
    generation: u64,
    snapshot: Arc<Snapshot>,
}

impl Local {
    /// The current snapshot of `state`.
    pub fn new(state: &State) -> Local {
        Local {
            generation: state.generation(),
            snapshot: state.snapshot(),
        }
    }

    /// The snapshot, re-read if `state` changed since the last call.
    #[inline]
    pub fn get(&mut self, state: &State) -> &Arc<Snapshot> {
        let generation = state.generation();
        if generation != self.generation {
            self.snapshot = state.snapshot();
            self.generation = generation;
        }
        &self.snapshot
    }
}
