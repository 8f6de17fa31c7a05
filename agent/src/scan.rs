//! `ward-agent scan`: how IT staff test a wordlist change, and how detection quality is measured.
//!
//! One JSON object per input line, matches or not, so output lines pair with input lines. Offsets
//! are code points into the line as read (Python's `line[start:end]` is the matched text).

use std::io::{BufRead, Write};

use anyhow::Context;
use serde_json::json;
use ward_detector::Scratch;

use crate::cli::ScanArgs;

pub mod wordlists;

/// Scans standard input line by line.
///
/// # Errors
/// The wordlists cannot be loaded, or standard input is not readable.
pub fn run(args: ScanArgs) -> anyhow::Result<()> {
    let shipped = match args.wordlists {
        Some(dir) => dir,
        None => wordlists::default_dir()?,
    };
    let local = args.local.or_else(wordlists::default_local_dir);
    let detector = wordlists::load(&shipped, local.as_deref())?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    scan(&detector, args.min_severity, stdin, &mut stdout)
}

/// Scans `input` and writes one JSON object per line to `output`.
///
/// # Errors
/// Reading or writing fails.
pub fn scan(
    detector: &ward_detector::Detector,
    min_severity: u8,
    mut input: impl BufRead,
    output: &mut impl Write,
) -> anyhow::Result<()> {
    let mut scratch = Scratch::default();
    let mut raw = Vec::new();
    let mut number = 0u64;
    loop {
        raw.clear();
        if input
            .read_until(b'\n', &mut raw)
            .context("cannot read standard input")?
            == 0
        {
            break;
        }
        number += 1;
        while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            raw.pop();
        }
        // A stray invalid byte must not stop a measurement run: it becomes U+FFFD, one code point.
        let line = String::from_utf8_lossy(&raw);
        let mut matches = Vec::new();
        detector.scan(&line, &mut scratch, |m| {
            if m.severity >= min_severity {
                matches.push(json!({
                    "category": m.category.as_str(),
                    "severity": m.severity,
                    "phrase": m.phrase,
                    "start": m.start,
                    "end": m.end,
                    "language": m.language,
                    "entry": m.entry,
                    "normalised": m.normalised,
                    "no_capture": m.no_capture,
                }));
            }
        });
        let record = json!({ "line": number, "matches": matches });
        writeln!(output, "{record}").context("cannot write standard output")?;
        output.flush().context("cannot write standard output")?;
    }
    Ok(())
}
