//! Category lists: reading list files in the usual formats and the compact table every query consults.
//!
//! Formats, detected per line so mixed files work: plain domains (`example.com`), hosts files
//! (`0.0.0.0 example.com`, several names per line allowed), adblock (`||example.com^`, exceptions and
//! cosmetic rules ignored). Comments start with `#` or `!`. Every entry covers the domain and all its
//! subdomains, as in UT1 and most published lists.
//!
//! The table is one sorted `Vec<u64>`: the name's hash with its low five bits replaced by the category
//! index. A 16-bit bucket index over the top bits narrows every lookup to a handful of entries, so a
//! query costs one short search per label of its name.

use std::io::BufRead;
use std::path::Path;

use ward_protocol::Category;

use crate::domain;

/// The bits of an entry that carry the category.
const CATEGORY_BITS: u64 = 0x1f;
/// How many top bits of the hash index the buckets.
const BUCKET_BITS: u32 = 16;

/// A set of categories as a bit mask (bit = position in [`Category::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Categories(pub u32);

impl Categories {
    /// The empty set.
    pub const NONE: Categories = Categories(0);

    /// The set holding one category.
    pub fn one(category: Category) -> Categories {
        Categories(1 << index_of(category))
    }

    /// Whether `category` is in the set.
    pub fn contains(self, category: Category) -> bool {
        self.0 & (1 << index_of(category)) != 0
    }

    /// Adds `category`.
    pub fn insert(&mut self, category: Category) {
        self.0 |= 1 << index_of(category);
    }

    /// Removes `category`.
    pub fn remove(&mut self, category: Category) {
        self.0 &= !(1 << index_of(category));
    }

    /// Categories in both sets.
    pub fn and(self, other: Categories) -> Categories {
        Categories(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in vocabulary order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| c)
    }
}

fn index_of(category: Category) -> u32 {
    Category::ALL
        .iter()
        .position(|c| *c == category)
        .expect("every category is in ALL") as u32
}

/// The result of looking a name up: every category it is listed in, and the listed domain (the
/// longest matching suffix) for the log's `rule` field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListMatch {
    /// Categories the name or a parent domain is listed in.
    pub categories: Categories,
    /// Byte offset into the queried name where the most specific listed suffix starts.
    pub suffix_start: usize,
}

/// Every category list, merged into one compact table.
#[derive(Debug, Default)]
pub struct CategoryTable {
    entries: Vec<u64>,
    /// `buckets[b]..buckets[b + 1]` are the entries whose top bits are `b`.
    buckets: Vec<u32>,
}

impl CategoryTable {
    /// Builds the table from raw entries (see [`TableBuilder`]).
    fn from_entries(mut entries: Vec<u64>) -> CategoryTable {
        entries.sort_unstable();
        entries.dedup();
        entries.shrink_to_fit();
        let mut buckets = vec![0u32; (1 << BUCKET_BITS) + 1];
        for &e in &entries {
            buckets[(e >> (64 - BUCKET_BITS)) as usize + 1] += 1;
        }
        for i in 1..buckets.len() {
            buckets[i] += buckets[i - 1];
        }
        CategoryTable { entries, buckets }
    }

    /// Number of (domain, category) entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of memory the table occupies.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * 8 + self.buckets.capacity() * 4
    }

    /// Looks up `name` (lower case, no trailing dot) and every parent domain of it.
    pub fn lookup(&self, name: &[u8]) -> ListMatch {
        self.lookup_suffixes(&domain::Suffixes::of(name))
    }

    /// Looks up a name by its precomputed suffix hashes.
    #[inline]
    pub fn lookup_suffixes(&self, suffixes: &domain::Suffixes) -> ListMatch {
        let mut found = ListMatch::default();
        if self.entries.is_empty() {
            return found;
        }
        for (hash, start) in suffixes.iter() {
            let mask = self.categories_of(hash);
            if mask != 0 {
                found.categories.0 |= mask;
                found.suffix_start = start;
            }
        }
        found
    }

    /// Categories of the entries whose hash (ignoring the category bits) equals `hash`.
    #[inline]
    fn categories_of(&self, hash: u64) -> u32 {
        let key = hash & !CATEGORY_BITS;
        let bucket = (key >> (64 - BUCKET_BITS)) as usize;
        let (lo, hi) = (
            self.buckets[bucket] as usize,
            self.buckets[bucket + 1] as usize,
        );
        let slice = &self.entries[lo..hi];
        let mut i = slice.partition_point(|&e| e < key);
        let mut mask = 0;
        while i < slice.len() && slice[i] & !CATEGORY_BITS == key {
            mask |= 1 << (slice[i] & CATEGORY_BITS);
            i += 1;
        }
        mask
    }
}

/// Collects entries from list files, then builds a [`CategoryTable`].
#[derive(Debug, Default)]
pub struct TableBuilder {
    entries: Vec<u64>,
}

impl TableBuilder {
    /// Adds one domain (already normalised) in `category`.
    pub fn add(&mut self, name: &str, category: Category) {
        let hash = domain::hash_name(name.as_bytes());
        self.entries
            .push((hash & !CATEGORY_BITS) | u64::from(index_of(category)));
    }

    /// Reads a list file into `category`, returning how many entries it added.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn add_file(&mut self, path: &Path, category: Category) -> std::io::Result<usize> {
        let file = std::fs::File::open(path)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut line = String::new();
        let before = self.entries.len();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            for_each_entry(&line, |name| self.add(name, category));
        }
        Ok(self.entries.len() - before)
    }

    /// Builds the table.
    pub fn build(self) -> CategoryTable {
        CategoryTable::from_entries(self.entries)
    }
}

/// Calls `each` with every domain one line of a list file names, whatever its format.
pub fn for_each_entry(line: &str, mut each: impl FnMut(&str)) {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') || line.starts_with('[') {
        return;
    }
    if let Some(rule) = line.strip_prefix("||") {
        // Adblock: `||domain^` optionally followed by options; anything with a path is not a DNS rule.
        let end = rule.find(['^', '$']).unwrap_or(rule.len());
        let domain_part = &rule[..end];
        if domain_part.contains('/') || domain_part.contains('*') {
            return;
        }
        if let Some(name) = domain::normalise(domain_part) {
            each(&name);
        }
        return;
    }
    // The common case (one plain, lower-case domain per line) needs no copying.
    if line.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
    }) && line.contains('.')
        && !line.starts_with('.')
        && !line.ends_with('.')
        && !line.contains("..")
        && line.len() <= 253
        && !line.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        each(line);
        return;
    }
    if line.starts_with("@@") || line.contains("##") {
        return;
    }
    let line = line.split('#').next().unwrap_or_default();
    let mut fields = line.split_whitespace();
    let Some(first) = fields.next() else { return };
    if first.parse::<std::net::IpAddr>().is_ok() {
        // Hosts file: the address is a sinkhole; every following name is listed.
        for name in fields.filter_map(domain::normalise) {
            if !matches!(
                name.as_str(),
                "localhost" | "localhost.localdomain" | "local" | "broadcasthost"
            ) {
                each(&name);
            }
        }
    } else if let Some(name) = domain::normalise(first) {
        if name.parse::<std::net::IpAddr>().is_err() && name.contains('.') {
            each(&name);
        }
    }
}

/// The category a list file belongs to when the policy does not say: the file's stem read as a
/// Ward category, or a UT1 category name mapped to the shared vocabulary.
pub fn category_for_list_name(stem: &str) -> Option<Category> {
    if let Ok(category) = stem.parse::<Category>() {
        return Some(category);
    }
    ut1_category(stem)
}

/// UT1 category names (French and English) mapped to Ward's vocabulary. Categories with no Ward
/// counterpart (`celebrity`, `forums`, `shortener`, ...) map to `None` and must be named explicitly.
pub fn ut1_category(name: &str) -> Option<Category> {
    Some(match name {
        "adult" | "mixed_adult" | "lingerie" => Category::Adult,
        "agressif" | "dangerous_material" => Category::Violence,
        "drogue" | "drugs" => Category::Drugs,
        "gambling" => Category::Gambling,
        "games" => Category::Games,
        "dating" => Category::Dating,
        "social_networks" => Category::SocialMedia,
        "audio-video" => Category::Streaming,
        "chat" => Category::Chat,
        "vpn" | "redirector" | "residential-proxies" => Category::VpnProxy,
        "doh" => Category::Doh,
        "malware" | "phishing" | "cryptojacking" | "stalkerware" => Category::Malware,
        "hacking" | "ddos" => Category::Hacking,
        "warez" => Category::Piracy,
        "sect" => Category::Extremism,
        "suicide" => Category::Suicide,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_entry(line, |n| out.push(n.to_string()));
        out
    }

    #[test]
    fn list_line_formats() {
        let check = |line: &str, expected: &[&str]| {
            assert_eq!(entries_of(line), expected, "{line:?}");
        };
        check("bet365.com", &["bet365.com"]);
        check("  Bet365.COM  # comment", &["bet365.com"]);
        check(
            "0.0.0.0 ads.example.com tracker.example.net",
            &["ads.example.com", "tracker.example.net"],
        );
        check("127.0.0.1 localhost", &[]);
        check("||doh.example.org^", &["doh.example.org"]);
        check("||doh.example.org^$important", &["doh.example.org"]);
        check("||example.org/path^", &[]);
        check("@@||allowed.example^", &[]);
        check("example.com##.banner", &[]);
        check("# comment", &[]);
        check("! adblock comment", &[]);
        check("[Adblock Plus 2.0]", &[]);
        check("1.0.0.1", &[]);
        check("localhost", &[]);
    }

    #[test]
    fn lookup_finds_parents_and_every_category() {
        let mut b = TableBuilder::default();
        b.add("bet365.com", Category::Gambling);
        b.add("bet365.com", Category::Games);
        b.add("casino.example.org", Category::Gambling);
        let table = b.build();
        let check = |name: &str, expected: &[Category], suffix: &str| {
            let m = table.lookup(name.as_bytes());
            assert_eq!(m.categories.iter().collect::<Vec<_>>(), expected, "{name}");
            if !expected.is_empty() {
                assert_eq!(&name[m.suffix_start..], suffix, "{name}");
            }
        };
        check(
            "bet365.com",
            &[Category::Gambling, Category::Games],
            "bet365.com",
        );
        check(
            "www.sports.bet365.com",
            &[Category::Gambling, Category::Games],
            "bet365.com",
        );
        check("notbet365.com", &[], "");
        check("example.org", &[], "");
        check(
            "a.casino.example.org",
            &[Category::Gambling],
            "casino.example.org",
        );
    }

    #[test]
    fn ut1_names_map_to_the_vocabulary() {
        assert_eq!(category_for_list_name("drogue"), Some(Category::Drugs));
        assert_eq!(category_for_list_name("agressif"), Some(Category::Violence));
        assert_eq!(category_for_list_name("vpn"), Some(Category::VpnProxy));
        assert_eq!(
            category_for_list_name("self-harm"),
            Some(Category::SelfHarm)
        );
        assert_eq!(category_for_list_name("celebrity"), None);
    }
}
