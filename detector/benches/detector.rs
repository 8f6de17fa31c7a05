//! Detector throughput and keystroke cost, side by side with a bare Aho-Corasick scan in the same
//! run (the ceiling: the same phrases, no normalisation, no verification).
//!
//! Run: `cargo bench -p ward-detector --bench detector`. Text: the Brown corpus from
//! `../shared/data` when present (benign edited English), else a built-in paragraph repeated.
//!
//! Two list sizes: the shipped wordlists, and the shipped wordlists plus generated phrases up to
//! [`LARGE_LIST`] (the size the published peer figures are for). The generated phrases are
//! combinations of ordinary words, shaped like list entries ("going to hurt ...", "my ... said"),
//! so a benign text starts walks in them about as often as in real lists and rarely completes one.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ward_detector::{Detector, Origin, Scratch, Window, WordlistFile};

const TEXT_BYTES: usize = 2 << 20;

/// Entries in the larger list: shipped plus generated.
const LARGE_LIST: usize = 2_000;

/// Words that open list-like phrases (mostly verbs and pronoun-led openings).
const OPENERS: &[&str] = &[
    "going to",
    "want to",
    "gonna",
    "need to",
    "tried to",
    "i will",
    "ill",
    "dont want to",
    "cant stop",
    "keep thinking about",
    "they said",
    "he made me",
    "she made me",
    "we should",
    "meet me at",
    "send me",
    "come to",
    "bring the",
    "hide the",
    "sell the",
    "buy some",
    "take the",
    "give me",
    "find the",
    "watch the",
    "left the",
    "lost my",
    "hate my",
    "my mum",
    "my dad",
    "my brother",
    "my friend",
    "your mum",
    "at the",
    "in the back of",
    "behind the",
    "outside the",
    "after school",
    "before the",
    "nobody cares about",
];

/// Words that close them (ordinary nouns and objects).
const CLOSERS: &[&str] = &[
    "car", "park", "bridge", "station", "shop", "garage", "money", "phone", "bag", "knife",
    "window", "door", "roof", "river", "field", "house", "flat", "estate", "corner", "bus",
    "train", "school", "teacher", "class", "party", "package", "parcel", "box", "bottle", "pills",
    "cash", "line", "block", "stairs", "lift", "gate", "fence", "wall", "room", "kitchen",
    "garden", "woods", "canal", "alley", "tonight", "tomorrow", "later", "again", "forever",
    "everyone", "them", "him", "her", "you", "myself", "it all", "the lot",
];

/// Deterministic phrases (a fixed linear congruential sequence over the word lists), none of
/// them already in `existing`, as wordlist lines in one file.
fn generated_list(existing: &[String], count: usize) -> String {
    let mut seen: std::collections::HashSet<String> = existing.iter().cloned().collect();
    let mut text = String::from("@category violence\n@language en\n");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    let mut added = 0;
    while added < count {
        let opener = OPENERS[next(OPENERS.len())];
        let closer = CLOSERS[next(CLOSERS.len())];
        // A third of them carry a middle word, as "going to hurt my ..." entries do.
        let phrase = match next(3) {
            0 => format!(
                "{opener} {} {closer}",
                ["my", "the", "your", "his"][next(4)]
            ),
            _ => format!("{opener} {closer}"),
        };
        if seen.insert(phrase.clone()) {
            text.push_str(&format!("{} {phrase}\n", 1 + next(5)));
            added += 1;
        }
    }
    text
}

fn wordlists() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wordlists");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("wordlists folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "txt") {
                let name = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((name, std::fs::read_to_string(&path).expect("list")));
            }
        }
    }
    out
}

fn benign_text() -> String {
    let brown = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/corpora/brown/brown-sentences.txt");
    let base = std::fs::read_to_string(brown).unwrap_or_else(|_| {
        "The committee met on Tuesday to discuss the new timetable for the spring term. Pupils in \
         Year 9 will start their options in March, and the library will open earlier on weekdays.\n"
            .to_string()
    });
    let mut text = String::with_capacity(TEXT_BYTES + base.len());
    while text.len() < TEXT_BYTES {
        text.push_str(&base);
    }
    let mut cut = TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

/// Every phrase as written, lower-cased: what a bare scanner would look for.
fn raw_phrases(lists: &[(String, String)]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter_map(|l| {
            let l = l.trim();
            let first = l.split(';').next()?;
            let (sev, phrase) = first.split_once(' ')?;
            sev.parse::<u8>().ok()?;
            Some(phrase.trim().to_lowercase())
        })
        .collect()
}

/// The detector and the bare automaton over the same list.
fn build(lists: &[(String, String)]) -> (Detector, AhoCorasick, usize) {
    let files: Vec<WordlistFile<'_>> = lists
        .iter()
        .map(|(name, text)| WordlistFile {
            name,
            text,
            origin: Origin::Shipped,
        })
        .collect();
    let detector = Detector::build(&files).expect("lists load");
    let phrases = raw_phrases(lists);
    let bare = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .build(&phrases)
        .expect("bare automaton");
    (detector, bare, phrases.len())
}

/// Ward's whole pipeline beside the bare automaton, over the same text, in one group.
fn throughput(c: &mut Criterion, name: &str, detector: &Detector, bare: &AhoCorasick, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("ward: normalise + match + verify, per line", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut n = 0usize;
            for line in &lines {
                detector.scan(line, &mut scratch, |_| n += 1);
            }
            black_box(n)
        })
    });
    group.bench_function(
        "bare aho-corasick DFA, overlapping, no normalisation",
        |b| b.iter(|| black_box(bare.find_overlapping_iter(text).count())),
    );
    group.finish();
}

fn benches(c: &mut Criterion) {
    let shipped = wordlists();
    let (detector, bare, phrases) = build(&shipped);
    let mut large = shipped.clone();
    let extra = LARGE_LIST.saturating_sub(detector.entry_count());
    large.push((
        "en/generated.txt".to_string(),
        generated_list(&raw_phrases(&shipped), extra),
    ));
    let (large_detector, large_bare, large_phrases) = build(&large);
    let text = benign_text();
    println!(
        "{} MB of text in {} lines",
        text.len() >> 20,
        text.lines().count()
    );
    for (name, d, n) in [
        ("shipped", &detector, phrases),
        ("shipped + generated", &large_detector, large_phrases),
    ] {
        println!(
            "{name} lists: {} entries ({n} phrases as written), {} automaton states, {} KiB",
            d.entry_count(),
            d.automaton_states(),
            d.automaton_bytes() >> 10
        );
    }
    let matches = |d: &Detector| {
        let mut scratch = Scratch::default();
        let mut n = 0usize;
        for line in text.lines() {
            d.scan(line, &mut scratch, |_| n += 1);
        }
        n
    };
    println!(
        "matches in the text: {} with the shipped lists, {} with {} entries",
        matches(&detector),
        matches(&large_detector),
        large_detector.entry_count()
    );

    throughput(c, "throughput shipped lists", &detector, &bare, &text);
    throughput(
        c,
        "throughput 2k phrases",
        &large_detector,
        &large_bare,
        &text,
    );

    let mut group = c.benchmark_group("keystroke");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    // A window already holding 200 typed characters; each iteration is one more key.
    let typed: Vec<char> = text.chars().filter(|c| *c != '\n').take(100_000).collect();
    group.bench_function("push one key (200-char window)", |b| {
        let mut window = Window::new();
        for &ch in &typed[..200] {
            window.push(ch, &detector, |_| {});
        }
        let mut i = 200;
        b.iter(|| {
            let ch = typed[i % typed.len()];
            i += 1;
            window.push(black_box(ch), &detector, |m| {
                black_box(m.start);
            });
        })
    });
    group.bench_function("backspace inside a typed word (back to its start)", |b| {
        let buffer: String = typed[..200].iter().collect();
        let mut window = Window::new();
        for &ch in &typed[..200] {
            window.push(ch, &detector, |_| {});
        }
        b.iter(|| {
            window.push('x', &detector, |_| {});
            window.backspace(black_box(&buffer), &detector, |_| {});
        })
    });
    // After a paste there is no typed word start to go back to: the window's tail is replayed
    // (as for a backspace over a word break).
    group.bench_function("backspace after a paste (replays the window's tail)", |b| {
        let buffer: String = typed[..200].iter().collect();
        let mut window = Window::new();
        window.push_str(&buffer, &detector, |_| {});
        b.iter(|| {
            window.push('x', &detector, |_| {});
            window.backspace(black_box(&buffer), &detector, |_| {});
        })
    });
    group.finish();
}

criterion_group!(detector_benches, benches);
criterion_main!(detector_benches);
