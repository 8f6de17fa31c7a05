//! Which names are search engines and video sites, and where safe search sends them.
//!
//! Enforced by CNAME: the resolver answers `www.google.co.uk` with a CNAME to
//! `forcesafesearch.google.com` plus that host's addresses, so the browser reaches the engine's
//! locked safe-search front end whatever the user's settings say.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::domain;
use crate::policy::Mode;

/// The kind of site a rewritten name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Google search (every country domain).
    Google,
    /// Bing.
    Bing,
    /// DuckDuckGo.
    DuckDuckGo,
    /// YouTube (web, mobile and app API hosts).
    YouTube,
}

impl Site {
    /// Name for logs and `rule` fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Site::Google => "google",
            Site::Bing => "bing",
            Site::DuckDuckGo => "duckduckgo",
            Site::YouTube => "youtube",
        }
    }

    /// The rewrite target for this site at `search`/`youtube` modes, or `None` when off.
    pub fn target(self, search: Mode, youtube: Mode) -> Option<&'static str> {
        match (self, search, youtube) {
            (Site::YouTube, _, Mode::Moderate) => Some("restrictmoderate.youtube.com"),
            (Site::YouTube, _, Mode::Strict) => Some("restrict.youtube.com"),
            (Site::YouTube, _, Mode::Off) | (_, Mode::Off, _) => None,
            (Site::Google, _, _) => Some("forcesafesearch.google.com"),
            (Site::Bing, _, _) => Some("strict.bing.com"),
            (Site::DuckDuckGo, _, _) => Some("safe.duckduckgo.com"),
        }
    }
}

/// Google's search country domains (the `google.<suffix>` front ends).
const GOOGLE_SUFFIXES: &[&str] = &[
    "com", "ad", "ae", "com.af", "com.ag", "al", "am", "co.ao", "com.ar", "as", "at", "com.au",
    "az", "ba", "com.bd", "be", "bf", "bg", "com.bh", "bi", "bj", "com.bn", "com.bo", "com.br",
    "bs", "bt", "co.bw", "by", "com.bz", "ca", "cd", "cf", "cg", "ch", "ci", "co.ck", "cl", "cm",
    "cn", "com.co", "co.cr", "com.cu", "cv", "com.cy", "cz", "de", "dj", "dk", "dm", "com.do",
    "dz", "com.ec", "ee", "com.eg", "es", "com.et", "fi", "com.fj", "fm", "fr", "ga", "ge", "gg",
    "com.gh", "com.gi", "gl", "gm", "gr", "com.gt", "gy", "com.hk", "hn", "hr", "ht", "hu",
    "co.id", "ie", "co.il", "im", "co.in", "iq", "is", "it", "je", "com.jm", "jo", "co.jp",
    "co.ke", "com.kh", "ki", "kg", "co.kr", "com.kw", "kz", "la", "com.lb", "li", "lk", "co.ls",
    "lt", "lu", "lv", "com.ly", "co.ma", "md", "me", "mg", "mk", "ml", "com.mm", "mn", "com.mt",
    "mu", "mv", "mw", "com.mx", "com.my", "co.mz", "com.na", "com.ng", "com.ni", "ne", "nl", "no",
    "com.np", "nr", "nu", "co.nz", "com.om", "com.pa", "com.pe", "com.pg", "com.ph", "com.pk",
    "pl", "pn", "com.pr", "ps", "pt", "com.py", "com.qa", "ro", "ru", "rw", "com.sa", "com.sb",
    "sc", "se", "com.sg", "sh", "si", "sk", "com.sl", "sn", "so", "sm", "sr", "st", "com.sv", "td",
    "tg", "co.th", "com.tj", "tl", "tm", "tn", "to", "com.tr", "tt", "com.tw", "co.tz", "com.ua",
    "co.ug", "co.uk", "com.uy", "co.uz", "com.vc", "co.ve", "co.vi", "com.vn", "vu", "ws", "rs",
    "co.za", "co.zm", "co.zw", "cat",
];

const YOUTUBE_HOSTS: &[&str] = &[
    "www.youtube.com",
    "m.youtube.com",
    "youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
];

const BING_HOSTS: &[&str] = &["www.bing.com", "bing.com"];

const DUCKDUCKGO_HOSTS: &[&str] = &[
    "duckduckgo.com",
    "www.duckduckgo.com",
    "start.duckduckgo.com",
    "html.duckduckgo.com",
    "lite.duckduckgo.com",
];

fn table() -> &'static HashMap<u64, Site> {
    static TABLE: OnceLock<HashMap<u64, Site>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        for suffix in GOOGLE_SUFFIXES {
            for host in [format!("google.{suffix}"), format!("www.google.{suffix}")] {
                t.insert(domain::hash_name(host.as_bytes()), Site::Google);
            }
        }
        for (hosts, site) in [
            (YOUTUBE_HOSTS, Site::YouTube),
            (BING_HOSTS, Site::Bing),
            (DUCKDUCKGO_HOSTS, Site::DuckDuckGo),
        ] {
            for h in hosts {
                t.insert(domain::hash_name(h.as_bytes()), site);
            }
        }
        t
    })
}

/// The site `name` (lower case, no trailing dot) belongs to, if safe search concerns it.
pub fn site_of(name: &str) -> Option<Site> {
    site_of_hash(domain::hash_name(name.as_bytes()))
}

/// The site of a name given by its whole-name hash ([`domain::hash_name`]).
#[inline]
pub fn site_of_hash(hash: u64) -> Option<Site> {
    table().get(&hash).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_and_targets() {
        let check = |name: &str, search: Mode, yt: Mode, expected: Option<&str>| {
            let got = site_of(name).and_then(|s| s.target(search, yt));
            assert_eq!(got, expected, "{name} {search:?} {yt:?}");
        };
        use Mode::*;
        check(
            "www.google.co.uk",
            Strict,
            Off,
            Some("forcesafesearch.google.com"),
        );
        check(
            "google.de",
            Moderate,
            Off,
            Some("forcesafesearch.google.com"),
        );
        check(
            "www.google.com.au",
            Strict,
            Off,
            Some("forcesafesearch.google.com"),
        );
        check("www.google.co.uk", Off, Strict, None);
        check("mail.google.com", Strict, Strict, None);
        check("www.youtube.com", Off, Strict, Some("restrict.youtube.com"));
        check(
            "m.youtube.com",
            Strict,
            Moderate,
            Some("restrictmoderate.youtube.com"),
        );
        check("youtubei.googleapis.com", Strict, Off, None);
        check("www.bing.com", Moderate, Off, Some("strict.bing.com"));
        check("duckduckgo.com", Strict, Off, Some("safe.duckduckgo.com"));
    }
}
