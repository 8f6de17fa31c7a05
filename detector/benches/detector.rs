//! Detector throughput and keystroke cost, side by side with a bare Aho-Corasick scan in the same
//! run (the ceiling: the same phrases, no normalisation, no verification).
//!
//! Run: `cargo bench -p ward-detector --bench detector`. Text: the Brown corpus from
//! `../shared/data` when present (benign edited English), else a built-in paragraph repeated.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ward_detector::{Detector, Origin, Scratch, Window, WordlistFile};

const TEXT_BYTES: usize = 2 << 20;

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

fn benches(c: &mut Criterion) {
    let lists = wordlists();
    let files: Vec<WordlistFile<'_>> = lists
        .iter()
        .map(|(name, text)| WordlistFile {
            name,
            text,
            origin: Origin::Shipped,
        })
        .collect();
    let detector = Detector::build(&files).expect("shipped lists load");
    let phrases = raw_phrases(&lists);
    let bare = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .build(&phrases)
        .expect("bare automaton");
    let text = benign_text();
    let lines: Vec<&str> = text.lines().collect();
    println!(
        "{} entries ({} phrases as written), {} MB of text in {} lines",
        detector.entry_count(),
        phrases.len(),
        text.len() >> 20,
        lines.len()
    );

    let mut group = c.benchmark_group("throughput");
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
        |b| b.iter(|| black_box(bare.find_overlapping_iter(text.as_str()).count())),
    );
    group.finish();

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
