//! Who is asking: identity leases (IP → user and group, with expiry), then static networks, then the
//! default tier. Unknown clients get the default, which ships as byod-strict: filtering fails closed.
//!
//! The lease table is replaced whole when the lease file (or, once enrolled, the collector's stream)
//! changes; lookups read one immutable snapshot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use jiff::Timestamp;
use ward_protocol::IdentityLease;

use crate::policy::{canonical, Policy, TierId};

/// How the tier was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A live identity lease for the address.
    Lease,
    /// A configured network containing the address (its name).
    Network(std::sync::Arc<str>),
    /// Nothing identified the client.
    Default,
}

/// The requester as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The signed-in user, when a lease names one.
    pub user: Option<String>,
    /// The user's group, when a lease names one.
    pub group: Option<String>,
    /// The filter tier that applies.
    pub tier: TierId,
    /// How the tier was chosen.
    pub source: Source,
}

impl Identity {
    /// Text for logs: `user (group)`, the network name, or `unknown`.
    pub fn describe(&self) -> String {
        match (&self.user, &self.group, &self.source) {
            (Some(u), Some(g), _) => format!("{u} ({g})"),
            (Some(u), None, _) => u.clone(),
            (None, _, Source::Network(n)) if !n.is_empty() => format!("network {n}"),
            (None, _, Source::Network(_)) => "network".to_string(),
            _ => "unknown".to_string(),
        }
    }

    /// The source as a short word: `lease`, `network` or `default`.
    pub fn source_str(&self) -> &'static str {
        match self.source {
            Source::Lease => "lease",
            Source::Network(_) => "network",
            Source::Default => "default",
        }
    }
}

/// One live lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Signed-in user.
    pub user: String,
    /// Their group (maps to a tier).
    pub group: String,
    /// When it lapses.
    pub expires: Timestamp,
}

/// Every lease, by address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    by_ip: HashMap<IpAddr, Lease>,
}

/// The file leases are read from (in the state dir).
pub const LEASE_FILE: &str = "leases.json";

impl Leases {
    /// Builds the table from wire leases; the newest lease wins where two name one address.
    pub fn from_wire(leases: &[IdentityLease]) -> Leases {
        let mut by_ip: HashMap<IpAddr, Lease> = HashMap::new();
        for l in leases {
            for ip in &l.addresses {
                let lease = Lease {
                    user: l.user.clone(),
                    group: l.group.clone(),
                    expires: l.expires,
                };
                match by_ip.get(&canonical(*ip)) {
                    Some(old) if old.expires >= lease.expires => {}
                    _ => {
                        by_ip.insert(canonical(*ip), lease);
                    }
                }
            }
        }
        Leases { by_ip }
    }

    /// Reads a lease file: a JSON array of identity leases (the protocol's `IdentityLease`). A missing
    /// file is an empty table.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed.
    pub fn load(path: &Path) -> anyhow::Result<Leases> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Leases::default()),
            Err(e) => return Err(anyhow::anyhow!("{}: cannot read: {e}", path.display())),
        };
        let wire: Vec<IdentityLease> = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
        Ok(Leases::from_wire(&wire))
    }

    /// The live lease for `ip` at `now`.
    pub fn get(&self, ip: IpAddr, now: Timestamp) -> Option<&Lease> {
        self.by_ip.get(&canonical(ip)).filter(|l| l.expires > now)
    }

    /// A live lease naming `user`, for `check --user`.
    pub fn for_user(&self, user: &str, now: Timestamp) -> Option<&Lease> {
        self.by_ip
            .values()
            .find(|l| l.user == user && l.expires > now)
    }

    /// How many addresses have a lease.
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

/// Identifies the client at `ip`: a live lease whose group maps to a tier, else the most specific
/// network, else the default tier.
pub fn identify(policy: &Policy, leases: &Leases, ip: IpAddr, now: Timestamp) -> Identity {
    if let Some(lease) = leases.get(ip, now) {
        return from_lease(policy, ip, &lease.user, &lease.group);
    }
    network_or_default(policy, ip)
}

/// The identity a lease gives: its group's tier, or (for a group the policy does not know) the tier
/// the address would get anyway, so an unknown group never widens access.
pub fn from_lease(policy: &Policy, ip: IpAddr, user: &str, group: &str) -> Identity {
    let tier = policy
        .groups
        .get(group)
        .copied()
        .or_else(|| policy.tier_named(group));
    let fallback = network_or_default(policy, ip);
    Identity {
        user: Some(user.to_string()),
        group: Some(group.to_string()),
        tier: tier.unwrap_or(fallback.tier),
        source: if tier.is_some() {
            Source::Lease
        } else {
            fallback.source
        },
    }
}

fn network_or_default(policy: &Policy, ip: IpAddr) -> Identity {
    match policy.network_of(ip) {
        Some(n) => Identity {
            user: None,
            group: None,
            tier: n.tier,
            source: Source::Network(n.name.clone()),
        },
        None => Identity {
            user: None,
            group: None,
            tier: policy.default_tier,
            source: Source::Default,
        },
    }
}
