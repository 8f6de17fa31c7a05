//! Domain names as the filter sees them: lower-case ASCII, no trailing dot, hashed label by label from
//! the right so that one pass over a query name yields the hash of every parent domain.
//!
//! Why hashes: a 1,000,000-domain category list kept as strings costs tens of megabytes and a
//! pointer-chasing lookup; kept as sorted 64-bit hashes it costs 8 bytes a domain and a cache-friendly
//! binary search. Five bits of each hash carry the category, so a domain in two categories is two
//! adjacent entries and a lookup collects both. With 59 bits of hash and a million entries, the chance
//! that an unlisted name collides with a listed one is about one in 10^11 per lookup.

/// Hash seed for the empty (root) suffix.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Calls `each(hash, suffix_start)` for every suffix of `name` made of whole labels, from the
/// top-level domain down to the full name. `name` must already be lower case and without a trailing
/// dot; `suffix_start` is the byte offset where that suffix begins.
#[inline]
pub fn for_each_suffix(name: &[u8], mut each: impl FnMut(u64, usize) -> bool) {
    let mut state = SEED;
    let mut end = name.len();
    while end > 0 {
        let start = name[..end]
            .iter()
            .rposition(|&b| b == b'.')
            .map_or(0, |dot| dot + 1);
        state = mix_label(state, &name[start..end]);
        if !each(finish(state), start) {
            return;
        }
        end = start.saturating_sub(1);
        if start == 0 {
            break;
        }
    }
}

/// Suffixes kept per name, counted from the top-level domain (list entries and safe-search hosts are
/// never deeper; a deeper name is still matched on its 32 outermost suffixes).
const MAX_LABELS: usize = 32;

/// Every suffix hash of one name, computed once per query and shared by every lookup the decision
/// makes (lists, allow and deny rules, safe search).
pub struct Suffixes {
    hashes: [(u64, u16); MAX_LABELS],
    len: usize,
}

impl Suffixes {
    /// The suffixes of `name` (lower case, no trailing dot), top-level domain first.
    #[inline]
    pub fn of(name: &[u8]) -> Suffixes {
        let mut s = Suffixes {
            hashes: [(0, 0); MAX_LABELS],
            len: 0,
        };
        for_each_suffix(name, |h, start| {
            if s.len < MAX_LABELS {
                s.hashes[s.len] = (h, start as u16);
                s.len += 1;
            }
            true
        });
        s
    }

    /// `(hash, start offset)` pairs, top-level domain first, the whole name last.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.hashes[..self.len]
            .iter()
            .map(|&(h, s)| (h, usize::from(s)))
    }

    /// The hash of the whole name, if it has any label.
    #[inline]
    pub fn whole(&self) -> Option<u64> {
        self.len.checked_sub(1).map(|i| self.hashes[i].0)
    }
}

/// The hash of a whole name (the last value [`for_each_suffix`] yields for it).
pub fn hash_name(name: &[u8]) -> u64 {
    let mut last = finish(SEED);
    for_each_suffix(name, |h, _| {
        last = h;
        true
    });
    last
}

#[inline]
fn mix_label(state: u64, label: &[u8]) -> u64 {
    // FNV-1a over the label, folded into the running state with a multiply-rotate so that
    // "a.bc" and "ab.c" differ.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in label {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (state.rotate_left(23) ^ h).wrapping_mul(0xff51_afd7_ed55_8ccd) ^ (label.len() as u64)
}

#[inline]
fn finish(mut h: u64) -> u64 {
    // splitmix64's finaliser: spreads every input bit over the whole word.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Normalises a domain written by a person or found in a list file: trims, lower-cases, drops a
/// trailing dot and a leading `*.`/`.`. Returns `None` for something that is not a plausible domain
/// (empty, spaces, over-long, characters DNS names do not use).
pub fn normalise(text: &str) -> Option<String> {
    let mut s = text.trim();
    s = s.strip_suffix('.').unwrap_or(s);
    s = s.strip_prefix("*.").unwrap_or(s);
    s = s.strip_prefix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return None;
    }
    let ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suffixes(name: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for_each_suffix(name.as_bytes(), |h, start| {
            out.push((h, name[start..].to_string()));
            true
        });
        out
    }

    #[test]
    fn suffix_hashes_equal_whole_name_hashes() {
        let got = suffixes("a.b.example.co.uk");
        let names: Vec<_> = got.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "uk",
                "co.uk",
                "example.co.uk",
                "b.example.co.uk",
                "a.b.example.co.uk"
            ]
        );
        for (h, s) in got {
            assert_eq!(h, hash_name(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn label_boundaries_matter() {
        assert_ne!(hash_name(b"ab.c"), hash_name(b"a.bc"));
        assert_ne!(hash_name(b"example.com"), hash_name(b"xample.com"));
    }

    #[test]
    fn normalise_table() {
        let check = |input: &str, expected: Option<&str>| {
            assert_eq!(normalise(input).as_deref(), expected, "{input:?}");
        };
        check("  Example.COM. ", Some("example.com"));
        check("*.bet365.com", Some("bet365.com"));
        check(".bet365.com", Some("bet365.com"));
        check("_dns.resolver.arpa", Some("_dns.resolver.arpa"));
        check("", None);
        check("a..b", None);
        check("has space.com", None);
        check("ünïcode.com", None);
    }
}
