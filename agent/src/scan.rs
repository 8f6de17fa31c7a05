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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_scan(input: &str, min_severity: u8) -> Vec<serde_json::Value> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wordlists");
        let detector = wordlists::load(&dir, None).expect("shipped wordlists load");
        let mut out = Vec::new();
        scan(&detector, min_severity, input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_object_per_line_with_code_point_offsets() {
        let out = run_scan("héllo wörld\nça va? i want to k!ll mys3lf\r\n\n", 1);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], json!({"line": 1, "matches": []}));
        assert_eq!(out[2], json!({"line": 3, "matches": []}));
        let m = &out[1]["matches"][0];
        assert_eq!(m["category"], "suicide");
        assert_eq!(m["severity"], 5);
        assert_eq!(m["phrase"], "kill myself");
        assert_eq!(m["language"], "en");
        assert_eq!(m["normalised"], "kil myself");
        let line: Vec<char> = "ça va? i want to k!ll mys3lf".chars().collect();
        let (start, end) = (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap());
        let typed: String = line[start as usize..end as usize].iter().collect();
        assert_eq!(typed, "k!ll mys3lf");
    }

    #[test]
    fn min_severity_filters_and_invalid_utf8_does_not_stop_the_run() {
        let mut input = b"send nudes\n".to_vec();
        input.extend_from_slice(b"\xff\xfe kill myself\n");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wordlists");
        let detector = wordlists::load(&dir, None).unwrap();
        let mut out = Vec::new();
        scan(&detector, 5, &input[..], &mut out).unwrap();
        let out: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(out[0]["matches"], json!([]), "severity 4 is below 5");
        assert_eq!(out[1]["matches"][0]["start"], 3);
    }

    #[test]
    fn a_source_checkout_finds_its_own_wordlists() {
        if std::path::Path::new(wordlists::INSTALLED_DIR).is_dir() {
            return;
        }
        let dir = wordlists::default_dir().unwrap();
        assert!(dir.join("en/suicide.txt").is_file(), "{}", dir.display());
    }

    #[test]
    fn local_lists_add_and_suppress() {
        let local = std::env::temp_dir().join(format!("ward-scan-local-{}", std::process::id()));
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(
            local.join("school.txt"),
            "@category bullying\n- you slag\n3 teacher's pet\n",
        )
        .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wordlists");
        let detector = wordlists::load(&dir, Some(&local)).unwrap();
        std::fs::remove_dir_all(&local).unwrap();
        let mut out = Vec::new();
        scan(&detector, 1, &b"you slag\nteachers pet\n"[..], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"line":1,"matches":[]}"#);
        assert!(
            lines[1].contains(r#""entry":"local/school.txt:3""#),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_broken_file_is_named_with_its_line() {
        let dir = std::env::temp_dir().join(format!("ward-scan-broken-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en")).unwrap();
        std::fs::write(dir.join("en/suicide.txt"), "5 kill myself\n9 oops\n").unwrap();
        let err = wordlists::load(&dir, None).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.contains("en/suicide.txt:2: severity must be 1 to 5"),
            "{err}"
        );
    }
}
