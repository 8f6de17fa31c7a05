//! The decision for one DNS query: a pure function of who is asking, what they asked, the policy
//! snapshot and the time. No IO, no clock, no randomness: the server, `ward-resolver check` and the
//! tests all call this one function, so what IT staff check is what clients get.
//!
//! Order (each step ends the decision when it applies):
//! 1. unliftable lists (`illegal`, `csam`): blocked for everyone, nothing can lift them;
//! 2. bypass protection: DoH canary, iCloud Private Relay, DDR, and the bypass categories (DoH,
//!    VPN/proxy hosts);
//! 3. the tier's explicit deny list;
//! 4. the tier's explicit allow list (lifts category blocks, not safe search);
//! 5. the tier's blocked categories, as changed by any schedule open at the local time;
//! 6. safe search and YouTube rewrites;
//! 7. forward to the upstream (through the cache).

use jiff::Timestamp;
use ward_protocol::Category;

use crate::domain;
use crate::identity::Identity;
use crate::lists::Categories;
use crate::policy::{BlockResponse, Policy};
use crate::safesearch;

/// The question, as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Lower-case name without the trailing dot (`www.example.com`; empty for the root).
    pub name: &'a str,
    /// Record type number (1 = A, 28 = AAAA, 65 = HTTPS, ...).
    pub qtype: u16,
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Resolve normally (cache or upstream).
    Forward,
    /// Blocked: answer as the tier says (block page or NXDOMAIN).
    Block(BlockResponse),
    /// Answer NXDOMAIN (bypass signals where a negative answer is the contract).
    NxDomain,
    /// Answer NOERROR with no records.
    NoData,
    /// Answer a CNAME to this host plus its records (safe search).
    Rewrite(&'static str),
}

/// Which rule decided, for the log and for `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The name (from `suffix_start` on) is on an unliftable list.
    Unliftable {
        /// Offset of the listed suffix in the name.
        suffix_start: usize,
    },
    /// A fixed bypass signal.
    Bypass(&'static str),
    /// The name is on a bypass category list.
    BypassList {
        /// Offset of the listed suffix in the name.
        suffix_start: usize,
    },
    /// Entry `index` of the tier's deny list.
    Deny(u32),
    /// Entry `index` of the tier's allow list.
    Allow(u32),
    /// A blocked category of the tier.
    Category {
        /// Offset of the listed suffix in the name.
        suffix_start: usize,
    },
    /// A category blocked by schedule `index` of the tier.
    ScheduleBlock {
        /// The schedule.
        schedule: u16,
        /// Offset of the listed suffix in the name.
        suffix_start: usize,
    },
    /// Listed in a category a schedule unblocked (schedule `index`).
    ScheduleAllow(u16),
    /// Safe search for a site.
    SafeSearch(safesearch::Site),
    /// Nothing matched.
    Default,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What to answer.
    pub action: Action,
    /// The category behind it, when there is one.
    pub category: Option<Category>,
    /// The rule that decided.
    pub rule: Rule,
}

impl Verdict {
    fn new(action: Action, category: Option<Category>, rule: Rule) -> Verdict {
        Verdict {
            action,
            category,
            rule,
        }
    }

    /// `allow`, `block` or `rewrite`, as the log and `check` print it.
    pub fn verdict_str(&self) -> &'static str {
        match self.action {
            Action::Forward => "allow",
            Action::Rewrite(_) => "rewrite",
            Action::Block(_) | Action::NxDomain | Action::NoData => "block",
        }
    }

    /// Whether the answer is a block (for alerts and EDE).
    pub fn is_block(&self) -> bool {
        matches!(
            self.action,
            Action::Block(_) | Action::NxDomain | Action::NoData
        )
    }

    /// The rule as text: which list, entry, schedule or signal decided.
    pub fn rule_text(&self, policy: &Policy, identity: &Identity, name: &str) -> String {
        let tier = &policy.tiers[identity.tier];
        let listed = |start: usize| name.get(start..).unwrap_or(name).to_string();
        match self.rule {
            Rule::Unliftable { suffix_start } => {
                format!("unliftable-list {}", listed(suffix_start))
            }
            Rule::Bypass(what) => format!("bypass {what}"),
            Rule::BypassList { suffix_start } => format!("bypass-list {}", listed(suffix_start)),
            Rule::Deny(i) => format!("tier {} deny {}", tier.name, tier.deny.entries[i as usize]),
            Rule::Allow(i) => {
                format!(
                    "tier {} allow {}",
                    tier.name, tier.allow.entries[i as usize]
                )
            }
            Rule::Category { suffix_start } => {
                format!("tier {} category-list {}", tier.name, listed(suffix_start))
            }
            Rule::ScheduleBlock {
                schedule,
                suffix_start,
            } => format!(
                "tier {} schedule \"{}\" category-list {}",
                tier.name,
                tier.schedules[schedule as usize].name,
                listed(suffix_start)
            ),
            Rule::ScheduleAllow(s) => format!(
                "tier {} schedule \"{}\"",
                tier.name, tier.schedules[s as usize].name
            ),
            Rule::SafeSearch(site) => format!("safe-search {}", site.as_str()),
            Rule::Default => "default".to_string(),
        }
    }
}

/// Decides `query` from `identity` against `policy` at `now`.
pub fn decide(identity: &Identity, query: Query<'_>, policy: &Policy, now: Timestamp) -> Verdict {
    let suffixes = domain::Suffixes::of(query.name.as_bytes());
    let tier = &policy.tiers[identity.tier];
    let listed = policy.lists.lookup_suffixes(&suffixes);

    // 1. Unliftable lists: nothing below can undo this.
    if let Some(c) = first_unliftable(listed.categories) {
        let rule = Rule::Unliftable {
            suffix_start: listed.suffix_start,
        };
        return Verdict::new(Action::Block(tier.block_response), Some(c), rule);
    }

    // 2. Bypass protection.
    if let Some(v) = bypass(query, policy) {
        return v;
    }
    if let Some(c) = listed
        .categories
        .and(policy.bypass.categories)
        .iter()
        .next()
    {
        let rule = Rule::BypassList {
            suffix_start: listed.suffix_start,
        };
        return Verdict::new(Action::NxDomain, Some(c), rule);
    }

    // 3, 4. The tier's explicit lists.
    if let Some(i) = tier.deny.find_suffixes(&suffixes) {
        return Verdict::new(Action::Block(tier.block_response), None, Rule::Deny(i));
    }
    // An allow entry lifts category blocks; safe search still applies (it is locked on).
    let allowed = tier.allow.find_suffixes(&suffixes);

    // 5. Categories, as the schedules open at this local time change them.
    if allowed.is_none() && !listed.categories.is_empty() {
        if let Some(v) = categories(policy, identity, listed, now) {
            return v;
        }
    }

    // 6. Safe search.
    if let Some(site) = suffixes.whole().and_then(safesearch::site_of_hash) {
        if let Some(target) = site.target(tier.safe_search, tier.youtube) {
            return Verdict::new(Action::Rewrite(target), None, Rule::SafeSearch(site));
        }
    }

    // 7. Forward.
    match allowed {
        Some(i) => Verdict::new(Action::Forward, None, Rule::Allow(i)),
        None => Verdict::new(Action::Forward, None, Rule::Default),
    }
}

fn first_unliftable(categories: Categories) -> Option<Category> {
    categories.iter().find(|c| c.unliftable())
}

fn bypass(query: Query<'_>, policy: &Policy) -> Option<Verdict> {
    let b = &policy.bypass;
    let name = query.name;
    let under = |domain: &str| {
        name == domain
            || (name.len() > domain.len()
                && name.ends_with(domain)
                && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
    };
    if b.doh_canary && under("use-application-dns.net") {
        return Some(Verdict::new(
            Action::NxDomain,
            Some(Category::Doh),
            Rule::Bypass("doh-canary"),
        ));
    }
    if b.private_relay && (name == "mask.icloud.com" || name == "mask-h2.icloud.com") {
        return Some(Verdict::new(
            Action::NxDomain,
            Some(Category::VpnProxy),
            Rule::Bypass("private-relay"),
        ));
    }
    if b.ddr && under("resolver.arpa") {
        return Some(Verdict::new(
            Action::NoData,
            Some(Category::Doh),
            Rule::Bypass("ddr"),
        ));
    }
    None
}

fn categories(
    policy: &Policy,
    identity: &Identity,
    listed: crate::lists::ListMatch,
    now: Timestamp,
) -> Option<Verdict> {
    let tier = &policy.tiers[identity.tier];
    let mut blocked = tier.blocked;
    let mut opened_by = None;
    let mut closed_by = None;
    if !tier.schedules.is_empty() {
        let local = policy.timezone.to_datetime(now);
        let (weekday, time) = (local.weekday(), local.time());
        for (i, s) in tier.schedules.iter().enumerate() {
            if !s.active(weekday, time) {
                continue;
            }
            if !s.block.and(listed.categories).is_empty() {
                closed_by = Some(i as u16);
            }
            if !s.allow.and(listed.categories).is_empty() {
                opened_by = Some(i as u16);
            }
            blocked.0 |= s.block.0;
            blocked.0 &= !s.allow.0;
        }
    }
    match blocked.and(listed.categories).iter().next() {
        Some(c) => {
            let rule = match closed_by {
                Some(schedule) if !tier.blocked.contains(c) => Rule::ScheduleBlock {
                    schedule,
                    suffix_start: listed.suffix_start,
                },
                _ => Rule::Category {
                    suffix_start: listed.suffix_start,
                },
            };
            Some(Verdict::new(
                Action::Block(tier.block_response),
                Some(c),
                rule,
            ))
        }
        None => opened_by.map(|s| {
            let c = listed.categories.and(tier.blocked).iter().next();
            Verdict::new(Action::Forward, c, Rule::ScheduleAllow(s))
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use super::*;
    use crate::identity::{self, Leases};
    use ward_protocol::IdentityLease;

    pub(crate) const POLICY: &str = r#"
default_tier = "byod-strict"
[block_page]
ipv4 = "192.0.2.80"
[[lists]]
path = "lists"
[[lists]]
path = "iwf.txt"
category = "illegal"
[[networks]]
cidr = "10.10.0.0/16"
tier = "staff"
[[networks]]
cidr = "10.20.0.0/16"
tier = "pupil"
[[networks]]
cidr = "10.20.5.0/24"
tier = "sixth-form"
[groups]
"Year 12" = "sixth-form"
[tiers.staff]
block = ["adult"]
allow = ["games-for-teaching.example"]
safe_search = "moderate"
youtube = "moderate"
[tiers.pupil]
block = ["adult", "games", "gambling", "self-harm"]
allow = ["=allowed.bet.example"]
deny = ["tiktok.com"]
safe_search = "strict"
youtube = "strict"
[[tiers.pupil.schedule]]
name = "lunchtime games"
allow = ["games"]
days = ["mon-fri"]
from = "12:30"
to = "13:15"
[tiers.sixth-form]
block = ["adult"]
[[tiers.sixth-form.schedule]]
name = "lesson time"
block = ["games"]
days = ["weekdays"]
from = "09:00"
to = "15:00"
[tiers.byod-strict]
block = ["adult", "games", "gambling", "social-media"]
safe_search = "strict"
youtube = "strict"
block_response = "nxdomain"
"#;

    /// A policy in a fresh folder with small lists, as a school would lay it out.
    pub(crate) fn fixture(
        policy_text: &str,
    ) -> (
        tempfile::TempDir,
        Result<Policy, ward_service::config::ConfigError>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lists")).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("lists/games.txt", "steampowered.com\nroblox.com\n");
        write(
            "lists/gambling.txt",
            "0.0.0.0 bet.example\n||casino.example^\n",
        );
        write("lists/adult.txt", "adult.example\n");
        write("lists/doh.txt", "dns.google\n");
        write("lists/self-harm.txt", "harm.example\n");
        write("lists/celebrity.txt", "ignored.example\n");
        write("iwf.txt", "abuse.example\n");
        write("policy.toml", policy_text);
        let path = dir.path().join("policy.toml");
        let policy = Policy::from_text(Path::new(&path), policy_text);
        (dir, policy)
    }

    struct Case<'a> {
        client: &'a str,
        user: Option<(&'a str, &'a str)>,
        at: &'a str,
        name: &'a str,
    }

    fn ask<'a>(client: &'a str, name: &'a str) -> Case<'a> {
        Case {
            client,
            user: None,
            at: "2026-11-24T10:00:00Z",
            name,
        }
    }

    /// Decides `case` and compares `tier verdict category rule`.
    fn check(case: Case<'_>, expected: &str) {
        let (_dir, policy) = fixture(POLICY);
        let policy = policy.unwrap();
        let ip: IpAddr = case.client.parse().unwrap();
        let at: Timestamp = case.at.parse().unwrap();
        let leases = match case.user {
            Some((user, group)) => Leases::from_wire(&[IdentityLease {
                version: 1,
                addresses: vec![ip],
                user: user.into(),
                group: group.into(),
                expires: at + jiff::SignedDuration::from_mins(10),
            }]),
            None => Leases::default(),
        };
        let who = identity::identify(&policy, &leases, ip, at);
        let v = decide(
            &who,
            Query {
                name: case.name,
                qtype: 1,
            },
            &policy,
            at,
        );
        let got = format!(
            "{} {} {} {}",
            policy.tiers[who.tier].name,
            v.verdict_str(),
            v.category.map_or("-", |c| c.as_str()),
            v.rule_text(&policy, &who, case.name)
        );
        assert_eq!(
            got, expected,
            "{} {} at {}",
            case.client, case.name, case.at
        );
    }

    #[test]
    fn tiers_lists_and_order() {
        check(ask("10.20.1.1", "www.bbc.co.uk"), "pupil allow - default");
        check(
            ask("10.20.1.1", "store.steampowered.com"),
            "pupil block games tier pupil category-list steampowered.com",
        );
        check(
            ask("10.10.1.1", "store.steampowered.com"),
            "staff allow - default",
        );
        check(
            ask("10.20.1.1", "www.casino.example"),
            "pupil block gambling tier pupil category-list casino.example",
        );
        check(
            ask("10.20.1.1", "bet.example"),
            "pupil block gambling tier pupil category-list bet.example",
        );
        check(
            ask("10.20.1.1", "allowed.bet.example"),
            "pupil allow - tier pupil allow =allowed.bet.example",
        );
        check(
            ask("10.20.1.1", "x.allowed.bet.example"),
            "pupil block gambling tier pupil category-list bet.example",
        );
        check(
            ask("10.20.1.1", "www.tiktok.com"),
            "pupil block - tier pupil deny tiktok.com",
        );
        check(ask("10.20.1.1", "ignored.example"), "pupil allow - default");
        // Unknown clients fail closed to byod-strict.
        check(
            ask("192.168.7.7", "roblox.com"),
            "byod-strict block games tier byod-strict category-list roblox.com",
        );
        check(
            ask("2001:db8::1", "adult.example"),
            "byod-strict block adult tier byod-strict category-list adult.example",
        );
    }

    #[test]
    fn unliftable_and_bypass_come_first() {
        check(
            ask("10.10.1.1", "abuse.example"),
            "staff block illegal unliftable-list abuse.example",
        );
        check(
            ask("10.10.1.1", "img.abuse.example"),
            "staff block illegal unliftable-list abuse.example",
        );
        check(
            ask("10.10.1.1", "use-application-dns.net"),
            "staff block doh bypass doh-canary",
        );
        check(
            ask("10.10.1.1", "mask.icloud.com"),
            "staff block vpn-proxy bypass private-relay",
        );
        check(
            ask("10.10.1.1", "mask-h2.icloud.com"),
            "staff block vpn-proxy bypass private-relay",
        );
        check(ask("10.10.1.1", "icloud.com"), "staff allow - default");
        check(
            ask("10.10.1.1", "_dns.resolver.arpa"),
            "staff block doh bypass ddr",
        );
        check(
            ask("10.10.1.1", "dns.google"),
            "staff block doh bypass-list dns.google",
        );
    }

    #[test]
    fn identity_precedence_lease_over_network_over_default() {
        let pupil_lease = |client| Case {
            user: Some(("jsmith", "pupil")),
            ..ask(client, "roblox.com")
        };
        // A pupil signed in on a staff-VLAN machine gets the pupil tier.
        check(
            pupil_lease("10.10.1.1"),
            "pupil block games tier pupil category-list roblox.com",
        );
        // A lease on an unknown network still identifies.
        check(
            pupil_lease("192.168.1.9"),
            "pupil block games tier pupil category-list roblox.com",
        );
        // Groups map through [groups]; the most specific network wins without a lease.
        let year12 = Case {
            user: Some(("asmith", "Year 12")),
            ..ask("10.20.1.1", "roblox.com")
        };
        check(year12, "sixth-form block games tier sixth-form schedule \"lesson time\" category-list roblox.com");
        check(
            ask("10.20.5.9", "adult.example"),
            "sixth-form block adult tier sixth-form category-list adult.example",
        );
        // An unknown group never widens access: the address's own tier applies.
        let odd = Case {
            user: Some(("x", "governors")),
            ..ask("192.168.1.9", "roblox.com")
        };
        check(
            odd,
            "byod-strict block games tier byod-strict category-list roblox.com",
        );
    }

    #[test]
    fn schedules_follow_london_time_across_dst() {
        let at = |at, name| Case {
            at,
            ..ask("10.20.1.1", name)
        };
        // Friday 27 March 2026, GMT: 12:45 UTC is 12:45 in London, inside lunch.
        check(
            at("2026-03-27T12:45:00Z", "roblox.com"),
            "pupil allow games tier pupil schedule \"lunchtime games\"",
        );
        // Monday 30 March 2026, BST: 12:45 UTC is 13:45 in London, after lunch.
        check(
            at("2026-03-30T12:45:00Z", "roblox.com"),
            "pupil block games tier pupil category-list roblox.com",
        );
        check(
            at("2026-03-30T11:45:00Z", "roblox.com"),
            "pupil allow games tier pupil schedule \"lunchtime games\"",
        );
        // Saturday: no lunchtime window.
        check(
            at("2026-03-28T12:45:00Z", "roblox.com"),
            "pupil block games tier pupil category-list roblox.com",
        );
        // The lunchtime window does not open other categories.
        check(
            at("2026-03-30T11:45:00Z", "bet.example"),
            "pupil block gambling tier pupil category-list bet.example",
        );
        // A block schedule: sixth form games closed during lessons only (25 Oct 2026: BST ends).
        let sixth = |at| Case {
            at,
            ..ask("10.20.5.9", "roblox.com")
        };
        check(sixth("2026-10-23T08:30:00Z"), "sixth-form block games tier sixth-form schedule \"lesson time\" category-list roblox.com");
        check(sixth("2026-10-26T08:30:00Z"), "sixth-form allow - default");
        check(sixth("2026-10-26T09:30:00Z"), "sixth-form block games tier sixth-form schedule \"lesson time\" category-list roblox.com");
    }

    #[test]
    fn safe_search_rewrites_after_allow() {
        check(
            ask("10.20.1.1", "www.google.co.uk"),
            "pupil rewrite - safe-search google",
        );
        check(
            ask("10.20.1.1", "www.youtube.com"),
            "pupil rewrite - safe-search youtube",
        );
        check(
            ask("10.10.1.1", "www.bing.com"),
            "staff rewrite - safe-search bing",
        );
        check(ask("10.20.1.1", "mail.google.com"), "pupil allow - default");
        let (_dir, policy) = fixture(POLICY);
        let policy = policy.unwrap();
        let who = identity::identify(
            &policy,
            &Leases::default(),
            "10.10.1.1".parse().unwrap(),
            Timestamp::UNIX_EPOCH,
        );
        let v = decide(
            &who,
            Query {
                name: "www.youtube.com",
                qtype: 28,
            },
            &policy,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(v.action, Action::Rewrite("restrictmoderate.youtube.com"));
    }

    #[test]
    fn unliftable_categories_cannot_be_allowed() {
        let allow_listed = POLICY.replace(
            "allow = [\"games-for-teaching.example\"]",
            "allow = [\"games-for-teaching.example\", \"cdn.abuse.example\"]",
        );
        let err = fixture(&allow_listed).1.unwrap_err().to_string();
        assert!(
            err.contains("policy.toml:")
                && err.contains("cdn.abuse.example")
                && err.contains("illegal"),
            "{err}"
        );
        let line = POLICY
            .lines()
            .position(|l| l.contains("games-for-teaching"))
            .unwrap()
            + 1;
        assert!(err.contains(&format!("policy.toml:{line}:")), "{err}");

        let scheduled = POLICY.replace("allow = [\"games\"]", "allow = [\"games\", \"csam\"]");
        let err = fixture(&scheduled).1.unwrap_err().to_string();
        assert!(
            err.contains("csam") && err.contains("lunchtime games"),
            "{err}"
        );
    }

    #[test]
    fn broken_policies_are_named() {
        let cases = [
            (
                POLICY.replace(
                    "default_tier = \"byod-strict\"",
                    "default_tier = \"nobody\"",
                ),
                "no tier called `nobody`",
            ),
            (
                POLICY.replace("[tiers.byod-strict]", "[tiers.guest]"),
                "`byod-strict` tier must be defined",
            ),
            (
                POLICY.replace("block = [\"adult\"]\nallow", "block = [\"porn\"]\nallow"),
                "porn",
            ),
            (
                POLICY.replace("to = \"13:15\"", "to = \"lunch\""),
                "`lunch` is not a time",
            ),
            (
                POLICY.replace("path = \"iwf.txt\"", "path = \"missing.txt\""),
                "missing.txt",
            ),
            (
                POLICY.replace("deny = [\"tiktok.com\"]", "deny = [\"tik tok\"]"),
                "`tik tok` is not a domain",
            ),
            (
                POLICY.replace("[block_page]", "[block_page]\ncolour = 1"),
                "colour",
            ),
        ];
        for (text, expected) in cases {
            let err = fixture(&text).1.unwrap_err().to_string();
            assert!(
                err.contains("policy.toml") && err.contains(expected),
                "{expected}: {err}"
            );
        }
    }
}
