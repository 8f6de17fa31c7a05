//! The whole-text scan (plain words take the fast path) and the keystroke path (every character
//! through the general normaliser) must find the same matches at the same offsets, whatever mix of
//! plain words and evasions the text holds.

use ward_detector::{Detector, Match, Scratch, Window};

use crate::support::{detector, shipped};

/// An entry for every verification rule, so each is exercised beside plain words.
const LIST: &str = "\
@category violence
5 kill myself
3 kill ; except: kill the process, kill time
2 killing me ; unless: homework, exam
3 self harm ; stem
3 weed ; strict
3 grooming ; near: online, secret
4 kys
4 1488
! kill switch
";

/// Pieces of text: plain words (phrase words and others), and the same words evaded.
const PIECES: &[&str] = &[
    "kill",
    "Kill",
    "KILL",
    "killing",
    "me",
    "myself",
    "my",
    "self",
    "harm",
    "harming",
    "the",
    "process",
    "time",
    "switch",
    "weed",
    "we'd",
    "weeed",
    "grooming",
    "online",
    "secret",
    "homework",
    "a",
    "I",
    "k",
    "y",
    "s",
    "kys",
    "k y s",
    "k!ll",
    "mys3lf",
    "$elf",
    "h@rm",
    "k i l l",
    "m y s e l f",
    "s.e.l.f",
    "ｋｉｌｌ",
    "ki\u{200b}ll",
    "кill",
    "kiiill",
    "KiLl",
    "Llama",
    "bookkeeper",
    "sellself",
    "1488",
    "14",
    "88",
    "want",
    "to",
    "die",
    "suicide",
    "su1c1de",
    "don't",
    "café",
    "!",
    "@",
    "x",
];
const GAPS: &[&str] = &[" ", "  ", ".", ", ", "\n", "-", "", "...", " \r\n", "'"];

/// splitmix64 with a fixed seed: a failure names a text that fails every time.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    fn text(&mut self) -> String {
        let n = self.below(30);
        let mut out = String::new();
        for _ in 0..n {
            out.push_str(PIECES[self.below(PIECES.len())]);
            out.push_str(GAPS[self.below(GAPS.len())]);
        }
        out
    }
}

type Found = Vec<(String, usize, usize, usize)>;

fn key(m: &Match<'_>) -> (String, usize, usize, usize) {
    (m.entry.to_string(), m.start, m.end, m.context.start)
}

fn scanned(d: &Detector, text: &str) -> Found {
    let mut out = Vec::new();
    d.scan(text, &mut Scratch::default(), |m| out.push(key(&m)));
    out
}

fn typed(d: &Detector, text: &str) -> Found {
    let mut out = Vec::new();
    let mut w = Window::new();
    for ch in text.chars() {
        w.push(ch, d, |m| out.push(key(&m)));
    }
    w.end_of_text(d, |m| out.push(key(&m)));
    out
}

fn pasted(d: &Detector, text: &str) -> Found {
    let mut out = Vec::new();
    let mut w = Window::new();
    w.push_str(text, d, |m| out.push(key(&m)));
    w.end_of_text(d, |m| out.push(key(&m)));
    out
}

fn compare(d: &Detector, seed: u64, cases: usize) -> usize {
    let mut rng = Rng(seed);
    let mut matched = 0;
    for _ in 0..cases {
        let text = rng.text();
        let keys = typed(d, &text);
        assert_eq!(scanned(d, &text), keys, "scan vs typed: {text:?}");
        assert_eq!(pasted(d, &text), keys, "pasted vs typed: {text:?}");
        matched += usize::from(!keys.is_empty());
    }
    matched
}

#[test]
fn fast_path_and_keystroke_path_agree_on_random_mixes() {
    let matched = compare(&detector(LIST), 1, 3000);
    // The mixes must actually exercise matching, not only quiet text.
    assert!(matched > 1000, "only {matched} texts matched");
}

#[test]
fn fast_path_and_keystroke_path_agree_with_the_shipped_lists() {
    let matched = compare(shipped(), 2, 1500);
    assert!(matched > 500, "only {matched} texts matched");
}

#[test]
fn paths_agree_when_more_phrase_prefixes_are_open_than_walks_are_kept() {
    // Every "go" starts a walk that stays alive, so more than eight are open at once and the
    // oldest must give way the same way on both paths.
    let d = detector("@category violence\n4 go go go go go go go go go go stop\n4 go go go stop\n");
    for n in [3, 8, 9, 10, 12, 20] {
        let text = format!("{}stop now", "go ".repeat(n));
        let keys = typed(&d, &text);
        assert_eq!(scanned(&d, &text), keys, "{text:?}");
        assert_eq!(pasted(&d, &text), keys, "{text:?}");
        assert!(!keys.is_empty(), "{text:?}");
    }
}

/// Types `keys` into a window (`\u{8}` is a backspace); `full_replay` makes every backspace rebuild
/// from the buffer instead of going back to the start of the word being typed.
fn typed_with_backspaces(d: &Detector, keys: &[char], full_replay: bool) -> Found {
    let mut out = Vec::new();
    let mut w = Window::new();
    let mut buffer = String::new();
    for &k in keys {
        if k == '\u{8}' {
            if buffer.pop().is_none() {
                continue;
            }
            if full_replay {
                // Feeding nothing forgets the word-start mark.
                w.push_str("", d, |m| out.push(key(&m)));
            }
            w.backspace(&buffer, d, |m| out.push(key(&m)));
        } else {
            buffer.push(k);
            w.push(k, d, |m| out.push(key(&m)));
        }
        assert_eq!(w.position(), buffer.chars().count());
    }
    w.end_of_text(d, |m| out.push(key(&m)));
    out
}

#[test]
fn backspace_to_the_word_start_matches_a_full_replay() {
    // Under 200 characters a full replay is the exact state, so the two must agree on every report.
    for (d, seed) in [(&detector(LIST), 3), (shipped(), 4)] {
        let mut rng = Rng(seed);
        let mut matched = 0;
        for _ in 0..1500 {
            let mut keys = Vec::new();
            while keys.len() < 150 {
                let piece = PIECES[rng.below(PIECES.len())];
                for ch in piece.chars() {
                    keys.push(ch);
                    if rng.below(8) == 0 {
                        keys.extend(std::iter::repeat_n('\u{8}', 1 + rng.below(3)));
                    }
                }
                keys.extend(GAPS[rng.below(GAPS.len())].chars());
            }
            keys.truncate(150);
            let fast = typed_with_backspaces(d, &keys, false);
            assert_eq!(
                fast,
                typed_with_backspaces(d, &keys, true),
                "{:?}",
                keys.iter().collect::<String>()
            );
            matched += usize::from(!fast.is_empty());
        }
        assert!(matched > 300, "only {matched} sessions matched");
    }
}
