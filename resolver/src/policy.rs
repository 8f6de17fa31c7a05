//! The filter policy (`policy.toml`): the raw file as serde sees it, and the validated, immutable
//! snapshot every query is decided against.
//!
//! A snapshot is built whole (lists included) and swapped in whole on reload, so a query is always
//! decided against one consistent policy. Building refuses a policy that would lift an unliftable
//! category (`illegal`, `csam`), naming the file, line and entry.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use serde::Deserialize;
use ward_protocol::Category;
use ward_service::config::{relative_to, ConfigError};

use crate::domain;
use crate::lists::{category_for_list_name, Categories, CategoryTable, TableBuilder};

/// Index of a tier in [`Policy::tiers`].
pub type TierId = usize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default = "default_timezone")]
    timezone: String,
    default_tier: String,
    block_page: RawBlockPage,
    #[serde(default)]
    bypass: RawBypass,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    lists: Vec<RawList>,
    #[serde(default)]
    networks: Vec<RawNetwork>,
    #[serde(default)]
    groups: HashMap<String, String>,
    tiers: toml::Table,
}

fn default_timezone() -> String {
    "Europe/London".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlockPage {
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    #[serde(default = "default_block_ttl")]
    ttl: u32,
}

fn default_block_ttl() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBypass {
    #[serde(default = "yes")]
    doh_canary: bool,
    #[serde(default = "yes")]
    private_relay: bool,
    #[serde(default = "yes")]
    ddr: bool,
    #[serde(default = "yes")]
    strip_ech: bool,
    #[serde(default = "default_bypass_categories")]
    categories: Vec<Category>,
}

impl Default for RawBypass {
    fn default() -> Self {
        RawBypass {
            doh_canary: true,
            private_relay: true,
            ddr: true,
            strip_ech: true,
            categories: default_bypass_categories(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_bypass_categories() -> Vec<Category> {
    vec![Category::Doh, Category::VpnProxy]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default = "default_alert_categories")]
    categories: Vec<Category>,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts {
            categories: default_alert_categories(),
        }
    }
}

fn default_alert_categories() -> Vec<Category> {
    vec![
        Category::Suicide,
        Category::SelfHarm,
        Category::EatingDisorder,
        Category::Extremism,
        Category::Illegal,
        Category::Csam,
        Category::Weapons,
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    path: PathBuf,
    category: Option<Category>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    cidr: IpNet,
    tier: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    #[serde(default)]
    description: String,
    #[serde(default)]
    block: Vec<Category>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    safe_search: Mode,
    #[serde(default)]
    youtube: Mode,
    #[serde(default)]
    block_response: BlockResponse,
    #[serde(default)]
    schedule: Vec<RawSchedule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: String,
    #[serde(default)]
    allow: Vec<Category>,
    #[serde(default)]
    block: Vec<Category>,
    days: Vec<String>,
    from: String,
    to: String,
}

/// Safe search and YouTube restriction levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// No rewrite.
    #[default]
    Off,
    /// Moderate (YouTube: restrictmoderate.youtube.com; search engines: their safe host).
    Moderate,
    /// Strict (YouTube: restrict.youtube.com; search engines: their safe host).
    Strict,
}

impl Mode {
    /// The name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Moderate => "moderate",
            Mode::Strict => "strict",
        }
    }
}

/// How a tier's blocked answers look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockResponse {
    /// A/AAAA of the block page, which tells the user why and how to ask for a review.
    #[default]
    BlockPage,
    /// NXDOMAIN: the name does not exist.
    Nxdomain,
}

impl BlockResponse {
    /// The name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockResponse::BlockPage => "block-page",
            BlockResponse::Nxdomain => "nxdomain",
        }
    }
}

/// Where blocked users are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPage {
    /// Address answered for A queries.
    pub ipv4: Option<Ipv4Addr>,
    /// Address answered for AAAA queries.
    pub ipv6: Option<Ipv6Addr>,
    /// TTL of block answers, short so an unblock takes effect quickly.
    pub ttl: u32,
}

/// Bypass protection switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bypass {
    /// `use-application-dns.net` answers NXDOMAIN, so browsers keep their DNS here.
    pub doh_canary: bool,
    /// iCloud Private Relay hosts answer NXDOMAIN, so Apple devices fall back to normal DNS.
    pub private_relay: bool,
    /// `_dns.resolver.arpa` answers NODATA, so clients do not discover an encrypted resolver.
    pub ddr: bool,
    /// Remove `ech` parameters from HTTPS/SVCB answers, so the server name stays visible to filters.
    pub strip_ech: bool,
    /// Categories blocked for every tier before any allow list is consulted.
    pub categories: Categories,
}

/// A domain list rule set (a tier's allow or deny list).
#[derive(Debug, Clone, Default)]
pub struct DomainRules {
    /// The entries as written, for logs and diffs.
    pub entries: Vec<String>,
    by_hash: HashMap<u64, RuleRef>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RuleRef {
    exact: Option<u32>,
    subtree: Option<u32>,
}

impl DomainRules {
    /// Builds rules from entries: `example.com` covers the domain and all its subdomains;
    /// `=example.com` covers that exact name only.
    fn parse(entries: &[String]) -> Result<DomainRules, String> {
        let mut rules = DomainRules::default();
        for (i, entry) in entries.iter().enumerate() {
            let (exact, text) = match entry.strip_prefix('=') {
                Some(rest) => (true, rest),
                None => (false, entry.as_str()),
            };
            let name =
                domain::normalise(text).ok_or_else(|| format!("`{entry}` is not a domain"))?;
            let slot = rules
                .by_hash
                .entry(domain::hash_name(name.as_bytes()))
                .or_default();
            if exact {
                slot.exact = Some(i as u32);
            } else {
                slot.subtree = Some(i as u32);
            }
            rules.entries.push(entry.clone());
        }
        Ok(rules)
    }

    /// The entry covering `name`, most specific first.
    pub fn find(&self, name: &[u8]) -> Option<u32> {
        self.find_suffixes(&domain::Suffixes::of(name))
    }

    /// The entry covering a name given by its suffix hashes.
    #[inline]
    pub fn find_suffixes(&self, suffixes: &domain::Suffixes) -> Option<u32> {
        if self.by_hash.is_empty() {
            return None;
        }
        let mut found = None;
        for (hash, start) in suffixes.iter() {
            if let Some(r) = self.by_hash.get(&hash) {
                let hit = if start == 0 {
                    r.exact.or(r.subtree)
                } else {
                    r.subtree
                };
                if hit.is_some() {
                    found = hit;
                }
            }
        }
        found
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A time window that changes which categories a tier blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Name for logs ("lunchtime games").
    pub name: String,
    /// Days it applies, Monday first.
    pub days: [bool; 7],
    /// Start (local time, inclusive).
    pub from: Time,
    /// End (local time, exclusive). Earlier than `from` means the window runs past midnight.
    pub to: Time,
    /// Categories unblocked during the window.
    pub allow: Categories,
    /// Categories blocked during the window.
    pub block: Categories,
}

impl Schedule {
    /// Whether the window is open at local `weekday` and `time`.
    pub fn active(&self, weekday: Weekday, time: Time) -> bool {
        let day = weekday.to_monday_zero_offset() as usize;
        if self.from <= self.to {
            self.days[day] && self.from <= time && time < self.to
        } else {
            // Overnight: the window belongs to the day it starts on.
            let yesterday = (day + 6) % 7;
            (self.days[day] && time >= self.from) || (self.days[yesterday] && time < self.to)
        }
    }
}

/// One filter tier.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Its name (`staff`, `pupil`, `byod-strict`, ...).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Categories blocked outside schedules.
    pub blocked: Categories,
    /// Names always allowed (after illegal and bypass checks).
    pub allow: DomainRules,
    /// Names always blocked.
    pub deny: DomainRules,
    /// Time windows.
    pub schedules: Vec<Schedule>,
    /// Search engine safe search.
    pub safe_search: Mode,
    /// YouTube restriction.
    pub youtube: Mode,
    /// Block page or NXDOMAIN.
    pub block_response: BlockResponse,
}

/// A list file and what it contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSource {
    /// The file.
    pub path: PathBuf,
    /// Its category.
    pub category: Category,
    /// Entries read.
    pub entries: usize,
}

/// A static network → tier mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// The range.
    pub cidr: IpNet,
    /// Its tier.
    pub tier: TierId,
    /// Name for logs.
    pub name: std::sync::Arc<str>,
}

/// The validated policy: immutable, shared by `Arc`, replaced whole on reload.
#[derive(Debug)]
pub struct Policy {
    /// The file it came from.
    pub source: PathBuf,
    /// Schedules are read in this zone.
    pub timezone: TimeZone,
    /// The zone's name, for logs.
    pub timezone_name: String,
    /// Tier for clients no lease or network identifies.
    pub default_tier: TierId,
    /// Every tier.
    pub tiers: Vec<Tier>,
    /// Networks, most specific first.
    pub networks: Vec<Network>,
    /// Group name (from identity leases) → tier.
    pub groups: HashMap<String, TierId>,
    /// Every category list, merged.
    pub lists: CategoryTable,
    /// Where the lists came from.
    pub list_sources: Vec<ListSource>,
    /// Block page addresses.
    pub block_page: BlockPage,
    /// Bypass protection.
    pub bypass: Bypass,
    /// Blocks in these categories are reported to the collector as alerts.
    pub alert_categories: Categories,
}

/// The tiers every school starts with; a policy must define them (it may add more).
pub const REQUIRED_TIERS: [&str; 3] = ["staff", "pupil", "byod-strict"];

impl Policy {
    /// Reads `path` and every list it names.
    ///
    /// # Errors
    /// The file or a list cannot be read, does not parse, names unknown tiers or categories, or
    /// tries to lift an unliftable category.
    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_text(path, &text)
    }

    /// Builds a policy from `text`, the contents of `path` (list paths are relative to it).
    ///
    /// # Errors
    /// As [`Policy::load`].
    pub fn from_text(path: &Path, text: &str) -> Result<Policy, ConfigError> {
        let raw: RawPolicy = ward_service::config::parse(path, text)?;
        Builder { path, text }.build(raw)
    }

    /// For each tier, the categories it blocks (always or in a schedule) that no loaded list holds a
    /// single domain for. Such a block can never fire: a technician who ticks "gambling" must be
    /// told that nothing is blocked until the school's gambling list is added.
    pub fn blocks_without_lists(&self) -> Vec<(&str, Vec<Category>)> {
        let mut listed = Categories::NONE;
        for source in self.list_sources.iter().filter(|s| s.entries > 0) {
            listed.insert(source.category);
        }
        self.tiers
            .iter()
            .filter_map(|tier| {
                let blocks = |c: Category| {
                    tier.blocked.contains(c) || tier.schedules.iter().any(|s| s.block.contains(c))
                };
                let missing: Vec<Category> = Category::ALL
                    .into_iter()
                    .filter(|&c| blocks(c) && !listed.contains(c))
                    .collect();
                (!missing.is_empty()).then_some((tier.name.as_str(), missing))
            })
            .collect()
    }

    /// Logs one warning per tier whose blocked categories have no list behind them.
    pub fn warn_blocks_without_lists(&self) {
        for (tier, missing) in self.blocks_without_lists() {
            let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
            tracing::warn!(
                policy = %self.source.display(),
                tier,
                "tier {tier} blocks {} but no loaded list holds domains for them, so nothing is \
                 blocked there yet: add the school's lists with [[lists]]",
                names.join(", ")
            );
        }
    }

    /// The tier called `name`.
    pub fn tier_named(&self, name: &str) -> Option<TierId> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// The network containing `ip`, most specific first.
    pub fn network_of(&self, ip: IpAddr) -> Option<&Network> {
        let ip = canonical(ip);
        self.networks.iter().find(|n| n.cidr.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses (from a dual-stack socket) are treated as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

struct Builder<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Builder<'_> {
    /// An error located at the first line of the file that mentions `needle`.
    fn error_at(&self, needle: &str, message: String) -> ConfigError {
        match self.text.lines().position(|l| l.contains(needle)) {
            Some(i) => ConfigError::Parse {
                path: self.path.to_path_buf(),
                line: i + 1,
                column: 1,
                message,
            },
            None => ConfigError::invalid(self.path, message),
        }
    }

    fn build(&self, raw: RawPolicy) -> Result<Policy, ConfigError> {
        let RawPolicy {
            timezone,
            default_tier,
            block_page,
            bypass,
            alerts,
            lists,
            networks,
            groups,
            tiers,
        } = raw;
        let tz = TimeZone::get(&timezone).map_err(|e| {
            self.error_at(
                "timezone",
                format!("timezone: unknown time zone `{timezone}`: {e}"),
            )
        })?;
        let tiers = self.tiers(tiers)?;
        for required in REQUIRED_TIERS {
            if !tiers.iter().any(|t| t.name == required) {
                return Err(self.error_at(
                    "[tiers",
                    format!("tiers: the `{required}` tier must be defined"),
                ));
            }
        }
        let tier_id = |field: &str, name: &str| {
            tiers.iter().position(|t| t.name == name).ok_or_else(|| {
                self.error_at(
                    &format!("\"{name}\""),
                    format!("{field}: no tier called `{name}`"),
                )
            })
        };
        let default_tier = tier_id("default_tier", &default_tier)?;
        let mut nets = Vec::new();
        for n in networks {
            let tier = tier_id("networks.tier", &n.tier)?;
            nets.push(Network {
                cidr: n.cidr.trunc(),
                tier,
                name: n.name.into(),
            });
        }
        nets.sort_by_key(|n| std::cmp::Reverse(n.cidr.prefix_len()));
        let mut group_map = HashMap::new();
        for (group, tier) in groups {
            group_map.insert(group.clone(), tier_id(&format!("groups.{group}"), &tier)?);
        }
        let (table, list_sources) = self.lists(lists)?;
        self.refuse_lifting_unliftable(&tiers, &table, &list_sources)?;
        let RawBlockPage { ipv4, ipv6, ttl } = block_page;
        if ipv4.is_none() && ipv6.is_none() {
            return Err(self.error_at(
                "[block_page]",
                "block_page: give at least one of ipv4 and ipv6".to_string(),
            ));
        }
        let RawBypass {
            doh_canary,
            private_relay,
            ddr,
            strip_ech,
            categories,
        } = bypass;
        let bypass_categories = categories_of(&categories);
        if let Some(c) = categories.iter().find(|c| c.unliftable()) {
            return Err(self.error_at(
                "categories",
                format!(
                    "bypass.categories: `{c}` is always blocked first and cannot be listed here"
                ),
            ));
        }
        Ok(Policy {
            source: self.path.to_path_buf(),
            timezone: tz,
            timezone_name: timezone,
            default_tier,
            tiers,
            networks: nets,
            groups: group_map,
            lists: table,
            list_sources,
            block_page: BlockPage { ipv4, ipv6, ttl },
            bypass: Bypass {
                doh_canary,
                private_relay,
                ddr,
                strip_ech,
                categories: bypass_categories,
            },
            alert_categories: categories_of(&alerts.categories),
        })
    }

    fn tiers(&self, table: toml::Table) -> Result<Vec<Tier>, ConfigError> {
        let mut tiers = Vec::new();
        for (name, value) in table {
            let raw: RawTier = value.try_into().map_err(|e: toml::de::Error| {
                self.error_at(
                    &format!("[tiers.{name}"),
                    format!("tiers.{name}: {}", one_line(e.message())),
                )
            })?;
            tiers.push(self.tier(name, raw)?);
        }
        // Stable order for logs and diffs: the required tiers first, then the school's own.
        tiers.sort_by_key(|t| {
            (
                REQUIRED_TIERS
                    .iter()
                    .position(|r| *r == t.name)
                    .unwrap_or(REQUIRED_TIERS.len()),
                t.name.clone(),
            )
        });
        Ok(tiers)
    }

    fn tier(&self, name: String, raw: RawTier) -> Result<Tier, ConfigError> {
        let RawTier {
            description,
            block,
            allow,
            deny,
            safe_search,
            youtube,
            block_response,
            schedule,
        } = raw;
        let rules = |field: &str, entries: &[String]| {
            DomainRules::parse(entries).map_err(|m| {
                let entry = m.split('`').nth(1).unwrap_or(field).to_string();
                self.error_at(&entry, format!("tiers.{name}.{field}: {m}"))
            })
        };
        let allow = rules("allow", &allow)?;
        let deny = rules("deny", &deny)?;
        let mut schedules = Vec::new();
        for s in schedule {
            schedules.push(self.schedule(&name, s)?);
        }
        Ok(Tier {
            description,
            blocked: categories_of(&block),
            allow,
            deny,
            schedules,
            safe_search,
            youtube,
            block_response,
            name,
        })
    }

    fn schedule(&self, tier: &str, raw: RawSchedule) -> Result<Schedule, ConfigError> {
        let RawSchedule {
            name,
            allow,
            block,
            days,
            from,
            to,
        } = raw;
        let field = format!("tiers.{tier}.schedule `{name}`");
        if let Some(c) = allow.iter().find(|c| c.unliftable()) {
            return Err(self.error_at(
                &format!("\"{c}\""),
                format!(
                    "{field}: allows `{c}`, which no tier, schedule or administrator can unblock"
                ),
            ));
        }
        let time = |t: &str| {
            t.parse::<Time>().map_err(|_| {
                self.error_at(
                    &format!("\"{t}\""),
                    format!("{field}: `{t}` is not a time of day like 12:30"),
                )
            })
        };
        let mut day_set = [false; 7];
        for d in &days {
            for day in parse_days(d).ok_or_else(|| {
                self.error_at(
                    &format!("\"{d}\""),
                    format!("{field}: `{d}` is not a day (mon..sun, or a range like mon-fri)"),
                )
            })? {
                day_set[day] = true;
            }
        }
        Ok(Schedule {
            from: time(&from)?,
            to: time(&to)?,
            name,
            days: day_set,
            allow: categories_of(&allow),
            block: categories_of(&block),
        })
    }

    fn lists(&self, lists: Vec<RawList>) -> Result<(CategoryTable, Vec<ListSource>), ConfigError> {
        let mut builder = TableBuilder::default();
        let mut sources = Vec::new();
        for RawList { path, category } in lists {
            let full = relative_to(self.path, &path);
            let shown = path.display().to_string();
            let files = if full.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&full)
                    .map_err(|e| self.error_at(&shown, format!("lists: {shown}: {e}")))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "txt"))
                    .collect();
                files.sort();
                files
            } else {
                vec![full]
            };
            for file in files {
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                let category = match category.or_else(|| category_for_list_name(stem)) {
                    Some(c) => c,
                    // A folder of lists may hold categories Ward does not filter on; skip those.
                    None if files_from_dir(&path, &file) => continue,
                    None => {
                        return Err(self.error_at(
                            &shown,
                            format!(
                                "lists: `{shown}`: say which category it is (category = \"...\")"
                            ),
                        ))
                    }
                };
                let entries = builder.add_file(&file, category).map_err(|e| {
                    self.error_at(&shown, format!("lists: {}: {e}", file.display()))
                })?;
                sources.push(ListSource {
                    path: file,
                    category,
                    entries,
                });
            }
        }
        Ok((builder.build(), sources))
    }

    /// The safeguarding rule no one may break: nothing in an unliftable category is ever allowed.
    fn refuse_lifting_unliftable(
        &self,
        tiers: &[Tier],
        table: &CategoryTable,
        sources: &[ListSource],
    ) -> Result<(), ConfigError> {
        for tier in tiers {
            for entry in &tier.allow.entries {
                let name = domain::normalise(entry.trim_start_matches('=')).unwrap_or_default();
                let found = table.lookup(name.as_bytes());
                if let Some(c) = found.categories.iter().find(|c| c.unliftable()) {
                    let listed = &name[found.suffix_start..];
                    let file = sources
                        .iter()
                        .find(|s| s.category == c)
                        .map(|s| s.path.display().to_string())
                        .unwrap_or_default();
                    return Err(self.error_at(
                        &format!("\"{entry}\""),
                        format!(
                            "tiers.{}.allow: `{entry}` is in the `{c}` category ({listed} in {file}), \
                             which no tier, allow list or administrator can unblock",
                            tier.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn files_from_dir(configured: &Path, file: &Path) -> bool {
    configured != file && file.parent().is_some()
}

fn categories_of(list: &[Category]) -> Categories {
    let mut set = Categories::NONE;
    for c in list {
        set.insert(*c);
    }
    set
}

/// `mon`, `monday`, `mon-fri`, `weekdays`, `weekend`, `daily` → Monday-based day numbers.
fn parse_days(text: &str) -> Option<Vec<usize>> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let day = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        NAMES
            .iter()
            .position(|n| s.len() >= 3 && n.starts_with(&s[..3]))
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "weekdays" => return Some((0..5).collect()),
        "weekend" => return Some(vec![5, 6]),
        "daily" | "every day" => return Some((0..7).collect()),
        _ => {}
    }
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (day(a)?, day(b)?);
            let mut out = vec![a];
            let mut d = a;
            while d != b {
                d = (d + 1) % 7;
                out.push(d);
            }
            Some(out)
        }
        None => Some(vec![day(text)?]),
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_table() {
        let check = |input: &str, expected: Option<Vec<usize>>| {
            assert_eq!(parse_days(input), expected, "{input}");
        };
        check("mon-fri", Some(vec![0, 1, 2, 3, 4]));
        check("Friday", Some(vec![4]));
        check("fri-mon", Some(vec![4, 5, 6, 0]));
        check("weekend", Some(vec![5, 6]));
        check("someday", None);
    }

    #[test]
    fn rules_exact_and_subtree() {
        let rules = DomainRules::parse(&["bbc.co.uk".into(), "=www.example.com".into()]).unwrap();
        let check = |name: &str, expected: Option<u32>| {
            assert_eq!(rules.find(name.as_bytes()), expected, "{name}");
        };
        check("bbc.co.uk", Some(0));
        check("news.bbc.co.uk", Some(0));
        check("www.example.com", Some(1));
        check("a.www.example.com", None);
        check("example.com", None);
        assert!(DomainRules::parse(&["not a domain".into()]).is_err());
    }

    #[test]
    fn blocks_with_no_list_behind_them_are_reported_per_tier() {
        let dir = std::env::temp_dir().join(format!("ward-policy-unlisted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("gambling.txt"), "bet.example\n").unwrap();
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/policy.toml"
        ))
        .unwrap()
        .replace(
            "path = \"lists/doh.txt\"",
            &format!("path = \"{}/gambling.txt\"", dir.display()),
        );
        let policy = Policy::from_text(
            std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../config/policy.toml"
            )),
            &example,
        )
        .unwrap();
        let report = policy.blocks_without_lists();
        let strict = &report.iter().find(|(t, _)| *t == "byod-strict").unwrap().1;
        assert!(
            !strict.contains(&Category::Gambling),
            "gambling has a list: {strict:?}"
        );
        assert!(
            strict.contains(&Category::Adult),
            "no adult list was loaded: {strict:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn overnight_schedule_belongs_to_its_start_day() {
        let s = Schedule {
            name: "late".into(),
            days: [false, false, false, false, true, false, false],
            from: "22:00".parse().unwrap(),
            to: "02:00".parse().unwrap(),
            allow: Categories::NONE,
            block: Categories::NONE,
        };
        assert!(s.active(Weekday::Friday, "23:00".parse().unwrap()));
        assert!(s.active(Weekday::Saturday, "01:59".parse().unwrap()));
        assert!(!s.active(Weekday::Saturday, "02:00".parse().unwrap()));
        assert!(!s.active(Weekday::Thursday, "23:00".parse().unwrap()));
    }
}
