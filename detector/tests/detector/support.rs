//! Shared helpers: build detectors from inline lists or from the repository's wordlists.

use std::path::{Path, PathBuf};

use ward_detector::{Detector, Origin, Scratch, WordlistFile};

/// The repository's `wordlists/` folder.
pub fn wordlists_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wordlists")
}

/// Every `*.txt` under `dir`, as (relative name, text), sorted by name.
pub fn read_lists(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "txt") {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The detector built from the repository's wordlists (must load without errors).
pub fn shipped() -> &'static Detector {
    static DETECTOR: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
    DETECTOR.get_or_init(|| {
        let lists = read_lists(&wordlists_dir());
        let files: Vec<WordlistFile<'_>> = lists
            .iter()
            .map(|(name, text)| WordlistFile {
                name,
                text,
                origin: Origin::Shipped,
            })
            .collect();
        Detector::build(&files).unwrap_or_else(|e| panic!("shipped wordlists: {e}"))
    })
}

/// A detector from one inline list, named `test/<category>.txt` unless the text sets headers.
pub fn detector(list: &str) -> Detector {
    let files = [WordlistFile {
        name: "en/test.txt",
        text: list,
        origin: Origin::Shipped,
    }];
    Detector::build(&files).unwrap_or_else(|e| panic!("{e}"))
}

/// Whole-text matches as (phrase, matched text as typed).
pub fn found(detector: &Detector, text: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    detector.scan(text, &mut Scratch::default(), |m| {
        out.push((m.phrase.to_string(), chars[m.start..m.end].iter().collect()));
    });
    out
}
